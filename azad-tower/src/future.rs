//! The response future of [`AzureAdAuthService`](crate::AzureAdAuthService): a state enum,
//! validating then calling the inner service, or answering a rejection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use azad_core::{BearerToken, Claims, ValidationError};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::extension::{LayerContext, insert_authenticated};
use crate::on_error::OnAuthError;
use crate::rejection::{AuthRejection, Protocol};

pub(crate) type Validation = Pin<Box<dyn Future<Output = (Result<Arc<Claims>, ValidationError>, BearerToken)> + Send>>;

/// What the future needs once validation finishes.
pub(crate) struct Pending<S, ReqBody, E> {
    pub(crate) inner: S,
    pub(crate) request: Request<ReqBody>,
    pub(crate) on_error: E,
    pub(crate) protocol: Protocol,
    pub(crate) retry_after: Duration,
    pub(crate) context: Arc<LayerContext>,
}

pin_project! {
    /// Response future of [`AzureAdAuthService`](crate::AzureAdAuthService).
    pub struct ResponseFuture<S, ReqBody, E>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, E>,
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, E>
    where
        S: Service<Request<ReqBody>>,
    {
        Validating {
            validation: Validation,
            pending: Option<Pending<S, ReqBody, E>>,
        },
        Inner {
            #[pin]
            fut: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody, E> fmt::Debug for ResponseFuture<S, ReqBody, E>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Validating { .. } => "Validating",
            State::Inner { .. } => "Inner",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<S, ReqBody, E> ResponseFuture<S, ReqBody, E>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn inner(fut: S::Future, span: tracing::Span) -> Self {
        Self { state: State::Inner { fut }, span }
    }

    pub(crate) fn rejected(response: S::Response, span: tracing::Span) -> Self {
        Self { state: State::Rejected { response: Some(response) }, span }
    }

    pub(crate) fn validating(validation: Validation, pending: Pending<S, ReqBody, E>, span: tracing::Span) -> Self {
        Self { state: State::Validating { validation, pending: Some(pending) }, span }
    }
}

impl<S, ReqBody, ResBody, E> Future for ResponseFuture<S, ReqBody, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    E: OnAuthError<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Validating { validation, pending } => {
                    let (result, token) = ready!(validation.as_mut().poll(cx));
                    let Pending { mut inner, mut request, on_error, protocol, retry_after, context } =
                        pending.take().expect("future polled after completion");
                    match result {
                        Ok(claims) => {
                            insert_authenticated(request.extensions_mut(), claims, token, &context, this.span);
                            let fut = this.span.in_scope(|| inner.call(request));
                            this.state.set(State::Inner { fut });
                        }
                        Err(error) => {
                            let rejection = AuthRejection::from_validation(error, retry_after);
                            return Poll::Ready(Ok(on_error.on_error(&rejection, protocol)));
                        }
                    }
                }
                StateProj::Inner { fut } => {
                    let _guard = this.span.enter();
                    return fut.poll(cx);
                }
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("future polled after completion")));
                }
            }
        }
    }
}
