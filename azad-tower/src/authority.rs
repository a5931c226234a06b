//! Per-route authority and audience selection, behind an [`AzureAdAuth`](crate::AzureAdAuth)
//! that accepts several authorities ([`AzureAdAuth::authorities`](crate::AzureAdAuth::authorities)).
//!
//! A token accepted by the layer is refused on a route restricted to other authorities (or
//! other audiences) with `401 invalid_token` (gRPC: `UNAUTHENTICATED`): for that route it is a
//! token from the wrong issuer (or for the wrong audience), not a token lacking a permission.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use azad_core::{Claims, ValidationError};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::extension::Authentication;
use crate::future::ResponseFuture;
use crate::on_error::{DefaultOnAuthError, OnAuthError, VerboseOnAuthError};
use crate::rejection::{AuthRejection, Protocol};

/// Which authorities and audiences a route accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Selection {
    /// Names of [`Claims::authority`]; empty: any.
    authorities: Vec<String>,
    /// Audiences (`aud`) of which the token must carry one; empty: any.
    audiences: Vec<String>,
}

impl Selection {
    fn check(&self, claims: &Claims) -> Result<(), ValidationError> {
        if !self.authorities.is_empty() && !claims.authority().is_some_and(|a| self.authorities.iter().any(|x| x == a))
        {
            return Err(ValidationError::InvalidIssuer);
        }
        if !self.audiences.is_empty() && !claims.audiences().iter().any(|a| self.audiences.contains(a)) {
            return Err(ValidationError::InvalidAudience);
        }
        Ok(())
    }
}

/// Checks that the claims the [`AzureAdAuth`](crate::AzureAdAuth) layer stored come from one of
/// `authorities` (by [`Claims::authority`]).
///
/// # Errors
///
/// [`AuthRejection::InvalidToken`] (`InvalidIssuer`, 401) for a token of another authority,
/// [`AuthRejection::MissingToken`] for an anonymous request (optional layer), and
/// [`AuthRejection::MissingLayer`] when no `AzureAdAuth` layer ran: the check fails closed.
pub fn require_authority<S: AsRef<str>>(
    extensions: &http::Extensions,
    authorities: &[S],
) -> Result<Arc<Claims>, AuthRejection> {
    let selection =
        Selection { authorities: authorities.iter().map(|a| a.as_ref().to_owned()).collect(), audiences: Vec::new() };
    select(extensions, &selection)
}

fn select(extensions: &http::Extensions, selection: &Selection) -> Result<Arc<Claims>, AuthRejection> {
    let claims = Authentication::of(extensions)?.require()?;
    selection.check(claims).map(|()| claims.clone()).map_err(AuthRejection::InvalidToken)
}

/// A layer that accepts only tokens of some of the authorities of an
/// [`AzureAdAuth::authorities`](crate::AzureAdAuth::authorities) layer (by name), or only
/// tokens for some audiences: for an API serving two audiences (a workforce app and a
/// customer app) on different routes. Anything else is 401 `invalid_token` (gRPC:
/// `UNAUTHENTICATED`).
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::dev::DevTenant;
/// use azad_tower::{AzureAdAuth, RequireAuthority};
/// use http::{Request, Response, StatusCode, header};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let workforce = DevTenant::start().await?;
/// let customers = DevTenant::start().await?;
/// let auth = AzureAdAuth::authorities([("workforce", workforce.config()), ("customers", customers.config())])?;
/// // A route for customers only.
/// let orders = ServiceBuilder::new()
///     .layer(auth)
///     .layer(RequireAuthority::authorities(["customers"]))
///     .service_fn(|_req: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::from("orders"))) });
///
/// let get = |token: String| Request::get("/orders").header(header::AUTHORIZATION, format!("Bearer {token}")).body(String::new());
/// assert_eq!(orders.clone().oneshot(get(customers.token().build())?).await?.status(), StatusCode::OK);
/// assert_eq!(orders.oneshot(get(workforce.token().build())?).await?.status(), StatusCode::UNAUTHORIZED);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireAuthority<E = DefaultOnAuthError> {
    selection: Arc<Selection>,
    on_error: E,
}

impl<E: fmt::Debug> fmt::Debug for RequireAuthority<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAuthority")
            .field("authorities", &self.selection.authorities)
            .field("audiences", &self.selection.audiences)
            .field("on_error", &self.on_error)
            .finish()
    }
}

impl RequireAuthority {
    /// Accepts only tokens accepted by one of these authorities (their names in
    /// [`AzureAdAuth::authorities`](crate::AzureAdAuth::authorities), or
    /// [`authority_name`](azad_core::AzureAdConfigBuilder::authority_name)).
    pub fn authorities<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let selection = Selection { authorities: names.into_iter().map(Into::into).collect(), audiences: Vec::new() };
        Self { selection: Arc::new(selection), on_error: DefaultOnAuthError }
    }

    /// Accepts only tokens whose `aud` is one of these audiences (each must also be an
    /// audience of the authority that accepted the token).
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(audiences: I) -> Self {
        let selection =
            Selection { authorities: Vec::new(), audiences: audiences.into_iter().map(Into::into).collect() };
        Self { selection: Arc::new(selection), on_error: DefaultOnAuthError }
    }
}

impl<E> RequireAuthority<E> {
    /// Also requires one of these audiences (see [`audiences`](RequireAuthority::audiences)).
    pub fn and_audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        Arc::make_mut(&mut self.selection).audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Shapes rejections with a custom hook.
    pub fn on_error<E2>(self, on_error: E2) -> RequireAuthority<E2> {
        RequireAuthority { selection: self.selection, on_error }
    }

    /// Adds `error_description` to rejections.
    pub fn verbose(self) -> RequireAuthority<VerboseOnAuthError> {
        self.on_error(VerboseOnAuthError)
    }
}

impl<S, E: Clone> Layer<S> for RequireAuthority<E> {
    type Service = RequireAuthorityService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthorityService { inner, selection: self.selection.clone(), on_error: self.on_error.clone() }
    }
}

/// The service of [`RequireAuthority`].
#[derive(Clone)]
pub struct RequireAuthorityService<S, E> {
    inner: S,
    selection: Arc<Selection>,
    on_error: E,
}

impl<S: fmt::Debug, E> fmt::Debug for RequireAuthorityService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAuthorityService")
            .field("inner", &self.inner)
            .field("authorities", &self.selection.authorities)
            .field("audiences", &self.selection.audiences)
            .finish()
    }
}

impl<S, E> RequireAuthorityService<S, E> {
    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody, E> Service<Request<ReqBody>> for RequireAuthorityService<S, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    E: OnAuthError<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The check is synchronous, so the service readied by poll_ready is called directly.
        match select(request.extensions(), &self.selection) {
            Ok(_) => ResponseFuture::inner(self.inner.call(request), tracing::Span::none()),
            Err(rejection) => {
                let response = self.on_error.on_error(&rejection, Protocol::of(request.headers()));
                ResponseFuture::rejected(response, tracing::Span::none())
            }
        }
    }
}
