//! Layers that require scopes or app roles for a group of routes, behind [`AzureAdAuth`](crate::AzureAdAuth).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use azad_core::dev::DevTenant;
//! use azad_tower::{AzureAdAuth, RequireLayer};
//! use http::{Request, Response, StatusCode, header};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let tenant = DevTenant::start().await?;
//! let service = ServiceBuilder::new()
//!     .layer(AzureAdAuth::new(tenant.config()))
//!     .layer(RequireLayer::any_role(["Reports.Read.All"]))
//!     .service_fn(|_req: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::from("report"))) });
//!
//! let user = tenant.token().build(); // delegated, no app role
//! let request = Request::get("/reports").header(header::AUTHORIZATION, format!("Bearer {user}")).body(String::new())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//!
//! let app = tenant.token().app_only().roles(["Reports.Read.All"]).build();
//! let request = Request::get("/reports").header(header::AUTHORIZATION, format!("Bearer {app}")).body(String::new())?;
//! assert_eq!(service.oneshot(request).await?.status(), StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use azad_core::Claims;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::on_error::{DefaultOnAuthError, OnAuthError, VerboseOnAuthError};
use crate::rejection::{AuthRejection, Protocol};
use crate::requirement::Requirement;
use crate::service::Anonymous;

/// Checks the claims the [`AzureAdAuth`](crate::AzureAdAuth) layer stored in `extensions`
/// against `requirement`.
///
/// # Errors
///
/// [`AuthRejection::Forbidden`] when the claims fall short, [`AuthRejection::MissingToken`] for
/// an anonymous request (optional layer), and [`AuthRejection::MissingLayer`] when no
/// `AzureAdAuth` layer ran: the check fails closed.
pub fn authorize(extensions: &http::Extensions, requirement: &Requirement) -> Result<Arc<Claims>, AuthRejection> {
    match extensions.get::<Arc<Claims>>() {
        Some(claims) => requirement.check(claims).map(|()| claims.clone()).map_err(AuthRejection::Forbidden),
        None if extensions.get::<Anonymous>().is_some() => Err(AuthRejection::MissingToken),
        None => {
            tracing::error!(
                target: "azad::auth",
                "a route requires scopes or roles but no AzureAdAuth layer validated the request: add `.layer(AzureAdAuth::new(config))` in front of it"
            );
            Err(AuthRejection::MissingLayer)
        }
    }
}

/// A layer that requires a [`Requirement`] (scopes, roles, scope-or-app-permission) on the
/// claims validated by [`AzureAdAuth`](crate::AzureAdAuth). A failure is 403
/// `insufficient_scope` (gRPC: `PERMISSION_DENIED`).
///
/// See the [module docs](crate::require) for an example.
#[derive(Clone)]
#[must_use]
pub struct RequireLayer<E = DefaultOnAuthError> {
    requirement: Arc<Requirement>,
    on_error: E,
}

impl<E: fmt::Debug> fmt::Debug for RequireLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer")
            .field("requirement", &self.requirement)
            .field("on_error", &self.on_error)
            .finish()
    }
}

impl RequireLayer {
    /// Requires `requirement`.
    pub fn new(requirement: Requirement) -> Self {
        Self { requirement: Arc::new(requirement), on_error: DefaultOnAuthError }
    }

    /// Any one of these delegated scopes.
    pub fn any_scope<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::new(Requirement::any_scope(scopes))
    }

    /// All of these delegated scopes.
    pub fn all_scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::new(Requirement::all_scopes(scopes))
    }

    /// Any one of these app roles.
    pub fn any_role<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self::new(Requirement::any_role(roles))
    }

    /// A scope for delegated tokens, an app permission for app-only tokens.
    pub fn scope_or_app_permission<I, S, J, T>(scopes: I, app_permissions: J) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
        J: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self::new(Requirement::scope_or_app_permission(scopes, app_permissions))
    }
}

impl<E> RequireLayer<E> {
    /// The requirement this layer enforces (for documentation, e.g.
    /// [`AzureAdSecurity::route_group`](crate::openapi::AzureAdSecurity::route_group) with the
    /// `utoipa` feature).
    #[must_use]
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }

    /// Shapes rejections with a custom hook.
    pub fn on_error<E2>(self, on_error: E2) -> RequireLayer<E2> {
        RequireLayer { requirement: self.requirement, on_error }
    }

    /// Adds `error_description` to rejections.
    pub fn verbose(self) -> RequireLayer<VerboseOnAuthError> {
        self.on_error(VerboseOnAuthError)
    }
}

impl<S, E: Clone> Layer<S> for RequireLayer<E> {
    type Service = Require<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        Require { inner, requirement: self.requirement.clone(), on_error: self.on_error.clone() }
    }
}

/// The service of [`RequireLayer`].
#[derive(Clone)]
pub struct Require<S, E> {
    inner: S,
    requirement: Arc<Requirement>,
    on_error: E,
}

impl<S: fmt::Debug, E> fmt::Debug for Require<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require").field("inner", &self.inner).field("requirement", &self.requirement).finish()
    }
}

impl<S, E> Require<S, E> {
    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody, E> Service<Request<ReqBody>> for Require<S, E>
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
        match authorize(request.extensions(), &self.requirement) {
            Ok(_) => ResponseFuture::inner(self.inner.call(request), tracing::Span::none()),
            Err(rejection) => {
                let response = self.on_error.on_error(&rejection, Protocol::of(request.headers()));
                ResponseFuture::rejected(response, tracing::Span::none())
            }
        }
    }
}

#[cfg(feature = "tonic")]
impl<S: tonic::server::NamedService, E> tonic::server::NamedService for Require<S, E> {
    // Required to use the service with tonic's router (`Server::add_service`).
    const NAME: &'static str = S::NAME;
}
