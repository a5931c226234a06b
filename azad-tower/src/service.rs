//! [`AzureAdAuthService`]: the service produced by [`AzureAdAuth`](crate::AzureAdAuth).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use azad_core::{BearerToken, TokenValidator};
use http::{Request, Response};
use tower_service::Service;
use tracing::field::Empty;

use crate::bearer::{BearerError, bearer_candidate, cached_candidate, is_b64token};
use crate::extension::{Authentication, LayerContext, insert_authenticated};
use crate::future::{Pending, ResponseFuture};
use crate::on_error::OnAuthError;
use crate::rejection::{AuthRejection, Protocol};

/// What the layer hands its services: built by [`AzureAdAuth`](crate::AzureAdAuth), shared by
/// every clone of the service.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) validator: TokenValidator,
    pub(crate) optional: bool,
    pub(crate) context: Arc<LayerContext>,
}

/// Validates bearer tokens, then calls the inner service. Created by
/// [`AzureAdAuth`](crate::AzureAdAuth).
pub struct AzureAdAuthService<S, E> {
    inner: S,
    // Behind an `Arc`: axum clones the service for every request (and `Handler::layer` builds
    // it for every request), so a clone is a reference count, not a copy of the settings.
    auth: Arc<Shared>,
    on_error: E,
}

impl<S: Clone, E: Clone> Clone for AzureAdAuthService<S, E> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), auth: self.auth.clone(), on_error: self.on_error.clone() }
    }
}

impl<S: fmt::Debug, E: fmt::Debug> fmt::Debug for AzureAdAuthService<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdAuthService")
            .field("inner", &self.inner)
            .field("auth", &self.auth)
            .field("on_error", &self.on_error)
            .finish()
    }
}

impl<S, E> AzureAdAuthService<S, E> {
    pub(crate) fn new(inner: S, auth: Arc<Shared>, on_error: E) -> Self {
        Self { inner, auth, on_error }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody, E> Service<Request<ReqBody>> for AzureAdAuthService<S, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    E: OnAuthError<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // No subscriber wants it: a span without metadata, so that entering it on every poll
        // costs nothing. The global level is asked first (the span macro's own first test):
        // with tracing's `log` feature (which axum's default `tower-log` turns on) and no
        // subscriber, or one whose filters keep nothing at DEBUG anywhere, building the disabled
        // span would still format its fields for the `log` crate on every request. Past that
        // test the span's own callsite decides, so filters by span name (`[azad_auth]=debug`)
        // or kind keep working.
        let span = if tracing::Level::DEBUG <= tracing::level_filters::STATIC_MAX_LEVEL
            && tracing::Level::DEBUG <= tracing::level_filters::LevelFilter::current()
        {
            let span = tracing::debug_span!("azad_auth", tid = Empty, oid = Empty, azp = Empty);
            if span.is_disabled() { tracing::Span::none() } else { span }
        } else {
            tracing::Span::none()
        };

        // Paths that call the inner service right away call `self.inner`, which `poll_ready`
        // just readied: no clone of the inner service (axum's routes are boxed: a clone is an
        // allocation). Only validation, which calls it later, takes the readied service along.

        // Fast path: a token validated before, straight from the validated-token cache, looked
        // up by the header's bytes (a hit is byte for byte a token that passed every check, so
        // the header needs no other; every other request gets the full checks below).
        if let Some(candidate) = cached_candidate(request.headers(), request.uri())
            && let Some((claims, token)) = self.auth.validator.try_cached_bytes(candidate)
        {
            insert_authenticated(request.extensions_mut(), claims, token, &self.auth.context, &span);
            let fut = span.in_scope(|| self.inner.call(request));
            return ResponseFuture::inner(fut, span);
        }

        // Read only to answer a refusal in the caller's protocol (HTTP or gRPC).
        let protocol = Protocol::of(request.headers());
        let token = match bearer_candidate(request.headers(), request.uri()) {
            Ok(token) => token,
            Err(BearerError::Missing) if self.auth.optional => {
                request.extensions_mut().insert(Authentication::anonymous_with(self.auth.context.clone()));
                let fut = span.in_scope(|| self.inner.call(request));
                return ResponseFuture::inner(fut, span);
            }
            Err(e) => {
                tracing::debug!(target: "azad::auth", error = %e, "request refused");
                let response = self.on_error.on_error(&AuthRejection::from_bearer(e), protocol);
                return ResponseFuture::rejected(response, span);
            }
        };

        if !is_b64token(token) {
            let error = BearerError::Malformed;
            tracing::debug!(target: "azad::auth", error = %error, "request refused");
            let response = self.on_error.on_error(&AuthRejection::from_bearer(error), protocol);
            return ResponseFuture::rejected(response, span);
        }
        let clone = self.inner.clone();
        // mem::replace due to https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.auth.validator.clone();
        // One copy of the token: the cache entry and the request extensions share it.
        let token = BearerToken::new(token);
        let validation = Box::pin(async move {
            let result = validator.validate_bearer(&token).await;
            (result, token)
        });
        // Until the key cache's next attempt: 503s during an outage tell clients when to retry.
        let retry_after = self.auth.validator.jwks().retry_after();
        ResponseFuture::validating(
            validation,
            Pending {
                inner,
                request,
                on_error: self.on_error.clone(),
                protocol,
                retry_after,
                context: self.auth.context.clone(),
            },
            span,
        )
    }
}
