//! [`Require`]: the route-group layer that requires a [`Requirement`] on the claims validated
//! by [`AzureAdAuth`](crate::AzureAdAuth), with its service and response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use azad_core::Claims;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::authorization::{Requirement, Start, start};
use crate::extension::Authentication;
use crate::on_error::{DefaultOnAuthError, OnAuthError, VerboseOnAuthError};
use crate::rejection::{AuthRejection, Protocol};

/// A layer that requires a [`Requirement`] (scopes, roles, scope-or-app-permission, groups,
/// authentication context, caller applications, tenants, no guests, any authenticated caller)
/// on the claims validated by [`AzureAdAuth`](crate::AzureAdAuth). A failure is 403
/// `insufficient_scope` (gRPC: `PERMISSION_DENIED`), or 401 `insufficient_claims` with a
/// claims challenge for an authentication context (gRPC: `UNAUTHENTICATED`), or 503 when a
/// groups overage cannot be resolved (gRPC: `UNAVAILABLE`).
///
/// Every requirement but groups is decided synchronously on the claims, with no allocation
/// beyond the rejection. A group requirement on a token with a groups overage awaits the
/// [`GroupResolver`](azad_core::groups::GroupResolver) given to the layer
/// ([`AzureAdAuth::with_group_resolver`](crate::AzureAdAuth::with_group_resolver)).
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::dev::DevTenant;
/// use azad_tower::{AzureAdAuth, Require};
/// use http::{Request, Response, StatusCode, header};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let tenant = DevTenant::start().await?;
/// let service = ServiceBuilder::new()
///     .layer(AzureAdAuth::new(tenant.config()))
///     .layer(Require::any_role(["Reports.Read.All"]))
///     .service_fn(|_req: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::from("report"))) });
///
/// let user = tenant.token().build(); // delegated, no app role
/// let request = Request::get("/reports").header(header::AUTHORIZATION, format!("Bearer {user}")).body(String::new())?;
/// let response = service.clone().oneshot(request).await?;
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
///
/// let app = tenant.token().app_only().roles(["Reports.Read.All"]).build();
/// let request = Request::get("/reports").header(header::AUTHORIZATION, format!("Bearer {app}")).body(String::new())?;
/// assert_eq!(service.oneshot(request).await?.status(), StatusCode::OK);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct Require<E = DefaultOnAuthError> {
    requirement: Arc<Requirement>,
    on_error: E,
}

impl<E: fmt::Debug> fmt::Debug for Require<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require").field("requirement", &self.requirement).field("on_error", &self.on_error).finish()
    }
}

impl Require {
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

    /// Membership in any one of these groups (object ids); see [`Requirement::any_group`].
    pub fn any_group<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        Self::new(Requirement::any_group(groups))
    }

    /// Membership in all of these groups.
    pub fn all_groups<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        Self::new(Requirement::all_groups(groups))
    }

    /// An authentication context (step-up); see [`Requirement::auth_context`].
    pub fn auth_context<I: IntoIterator<Item = S>, S: Into<String>>(contexts: I) -> Self {
        Self::new(Requirement::auth_context(contexts))
    }

    /// Only these calling applications (`azp`/`appid`).
    pub fn caller_app<I: IntoIterator<Item = S>, S: Into<String>>(client_ids: I) -> Self {
        Self::new(Requirement::caller_app(client_ids))
    }

    /// Only callers of these tenants (`tid`).
    pub fn tenant<I: IntoIterator<Item = S>, S: Into<String>>(tenant_ids: I) -> Self {
        Self::new(Requirement::tenant(tenant_ids))
    }

    /// No guest users.
    pub fn no_guests() -> Self {
        Self::new(Requirement::no_guests())
    }

    /// Any authenticated caller (refuses anonymous requests behind an optional layer).
    pub fn authenticated() -> Self {
        Self::new(Requirement::authenticated())
    }
}

impl<E> Require<E> {
    /// The requirement this layer enforces (for documentation, e.g.
    /// [`AzureAdSecurity::route_group`](crate::openapi::AzureAdSecurity::route_group) with the
    /// `utoipa` feature).
    #[must_use]
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }

    /// Shapes rejections with a custom hook.
    pub fn on_error<E2>(self, on_error: E2) -> Require<E2> {
        Require { requirement: self.requirement, on_error }
    }

    /// Adds `error_description` to rejections.
    pub fn verbose(self) -> Require<VerboseOnAuthError> {
        self.on_error(VerboseOnAuthError)
    }
}

impl<S, E: Clone> Layer<S> for Require<E> {
    type Service = RequireService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService { inner, requirement: self.requirement.clone(), on_error: self.on_error.clone() }
    }
}

/// The service of the [`Require`] layer.
#[derive(Clone)]
pub struct RequireService<S, E> {
    inner: S,
    requirement: Arc<Requirement>,
    on_error: E,
}

impl<S: fmt::Debug, E> fmt::Debug for RequireService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireService").field("inner", &self.inner).field("requirement", &self.requirement).finish()
    }
}

impl<S, E> RequireService<S, E> {
    define_inner_service_accessors!();
}

type Check = Pin<Box<dyn Future<Output = Result<Arc<Claims>, AuthRejection>> + Send>>;

pin_project! {
    /// Response future of [`RequireService`]: the inner service's, a rejection, or a group
    /// resolution then the inner service's.
    pub struct RequireFuture<S, ReqBody, E>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: RequireState<S, ReqBody, E>,
    }
}

pin_project! {
    #[project = RequireStateProj]
    enum RequireState<S, ReqBody, E>
    where
        S: Service<Request<ReqBody>>,
    {
        Inner {
            #[pin]
            fut: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
        Resolving {
            check: Check,
            pending: Option<(S, Request<ReqBody>, E, Protocol)>,
        },
    }
}

impl<S, ReqBody, E> fmt::Debug for RequireFuture<S, ReqBody, E>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            RequireState::Inner { .. } => "Inner",
            RequireState::Rejected { .. } => "Rejected",
            RequireState::Resolving { .. } => "Resolving",
        };
        f.debug_struct("RequireFuture").field("state", &state).finish()
    }
}

impl<S, ReqBody, ResBody, E> Future for RequireFuture<S, ReqBody, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    E: OnAuthError<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                RequireStateProj::Inner { fut } => return fut.poll(cx),
                RequireStateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("future polled after completion")));
                }
                RequireStateProj::Resolving { check, pending } => {
                    let result = ready!(check.as_mut().poll(cx));
                    let (mut inner, request, on_error, protocol) =
                        pending.take().expect("future polled after completion");
                    match result {
                        Ok(_) => {
                            let fut = inner.call(request);
                            this.state.set(RequireState::Inner { fut });
                        }
                        Err(rejection) => return Poll::Ready(Ok(on_error.on_error(&rejection, protocol))),
                    }
                }
            }
        }
    }
}

impl<S, ReqBody, ResBody, E> Service<Request<ReqBody>> for RequireService<S, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    E: OnAuthError<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequireFuture<S, ReqBody, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Decided synchronously (every requirement but a groups overage): the service readied
        // by poll_ready is called directly.
        let started = match Authentication::of(request.extensions()) {
            Ok(authentication) => start(authentication, &self.requirement),
            Err(rejection) => Start::Done(Err(rejection)),
        };
        let state = match started {
            Start::Done(Ok(())) => RequireState::Inner { fut: self.inner.call(request) },
            Start::Done(Err(rejection)) => {
                let response = self.on_error.on_error(&rejection, Protocol::of(request.headers()));
                RequireState::Rejected { response: Some(response) }
            }
            Start::Resolve(resolution) => {
                // The readied service waits for Graph; this one takes a fresh clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let requirement = self.requirement.clone();
                let protocol = Protocol::of(request.headers());
                RequireState::Resolving {
                    check: Box::pin(async move { resolution.run(&requirement).await }),
                    pending: Some((inner, request, self.on_error.clone(), protocol)),
                }
            }
        };
        RequireFuture { state }
    }
}
