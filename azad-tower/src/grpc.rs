//! Tonic support (feature `tonic`): the services' `NamedService`, the method attributes' checks,
//! and [`RequestExt`], which gives a tonic method its caller's claims and on-behalf-of tokens
//! as easily as the azad-axum extractors give them to an axum handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use azad_core::{AcquiredToken, Claims, TokenClient, TokenRequest};

use crate::authority::RequireAuthorityService;
use crate::authorization::{Requirement, Start, authorize, start};
use crate::extension::Authentication;
use crate::rejection::{AuthRejection, status_of};
use crate::require::RequireService;
use crate::service::AzureAdAuthService;

// Required to use the services with tonic's router (`Server::add_service`).
impl<S: tonic::server::NamedService, E> tonic::server::NamedService for AzureAdAuthService<S, E> {
    const NAME: &'static str = S::NAME;
}

impl<S: tonic::server::NamedService, E> tonic::server::NamedService for RequireService<S, E> {
    const NAME: &'static str = S::NAME;
}

impl<S: tonic::server::NamedService, E> tonic::server::NamedService for RequireAuthorityService<S, E> {
    const NAME: &'static str = S::NAME;
}

/// Whether the answers for this request are verbose: the layer's choice
/// ([`Authentication::is_verbose`]), terse without a layer.
fn verbose<T>(request: &tonic::Request<T>) -> bool {
    Authentication::verbose_in(request.extensions())
}

/// The boxed rejection of a method desugared by `#[tonic::async_trait]`.
#[must_use]
pub fn reject_boxed<'a, T: Send + 'a>(
    status: tonic::Status,
) -> Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send + 'a>> {
    Box::pin(async move { Err(status) })
}

/// Checks a tonic request's [`Authentication`] against a requirement: what the method
/// attributes expand to. Answers as the layer would (terse or verbose as it decided).
///
/// # Errors
///
/// The [`AuthRejection`] as a `tonic::Status` ([`AuthRejection::to_status`]).
pub fn check_grpc<T>(request: &tonic::Request<T>, requirement: &Requirement) -> Result<(), tonic::Status> {
    authorize(request.extensions(), requirement).map(|_| ()).map_err(|r| r.to_status(verbose(request)))
}

/// Like [`check_grpc`], resolving a groups overage through the layer's `GroupResolver`.
/// The returned future owns what it needs (it borrows neither the request nor the
/// requirement), so a method can check before moving its request.
pub fn check_grpc_async<T>(
    request: &tonic::Request<T>,
    requirement: &Requirement,
) -> impl Future<Output = Result<(), tonic::Status>> + Send + 'static {
    let verbose = verbose(request);
    let started = match Authentication::of(request.extensions()) {
        Ok(authentication) => start(authentication, requirement),
        Err(rejection) => Start::Done(Err(rejection)),
    };
    let requirement = requirement.clone();
    async move {
        let result = match started {
            Start::Done(result) => result,
            // Boxed, as in `authorize_async`: a rare path, several kilobytes of future.
            Start::Resolve(resolution) => Box::pin(resolution.run(&requirement)).await.map(drop),
        };
        result.map_err(|r: AuthRejection| r.to_status(verbose))
    }
}

/// The caller of a tonic method, read from its `tonic::Request`: what the
/// [`AzureAdAuth`](crate::AzureAdAuth) layer stored (one [`Authentication`]), with failures
/// already shaped as `tonic::Status` by the same challenge and gRPC mapping as the layer's
/// answers.
///
/// # Example
///
/// ```
/// use azad_tower::RequestExt;
/// use tonic::{Request, Response, Status};
///
/// async fn whoami(request: Request<()>) -> Result<Response<String>, Status> {
///     let claims = request.claims()?;
///     Ok(Response::new(claims.object_id().unwrap_or_default().to_owned()))
/// }
///
/// async fn profile(request: Request<()>) -> Result<Response<String>, Status> {
///     // A token for a downstream API, as the signed-in user (on-behalf-of).
///     let token = request.on_behalf_of(&["https://graph.microsoft.com/User.Read"]).await?;
///     Ok(Response::new(format!("{} bytes", token.secret().len())))
/// }
/// ```
pub trait RequestExt {
    /// The layer's [`Authentication`] for this request.
    ///
    /// # Errors
    ///
    /// `INTERNAL` when no `AzureAdAuth` layer ran (fails closed; logged).
    fn authentication(&self) -> Result<&Authentication, tonic::Status>;

    /// The validated claims of the caller.
    ///
    /// # Errors
    ///
    /// `UNAUTHENTICATED` (with `www-authenticate: Bearer` in the metadata) for an anonymous
    /// caller of an optional layer; `INTERNAL` when no layer ran.
    fn claims(&self) -> Result<&Arc<Claims>, tonic::Status>;

    /// The layer's token client ([`AzureAdAuth::with_token_client`](crate::AzureAdAuth::with_token_client)),
    /// for app tokens or any other [`TokenRequest`].
    ///
    /// # Errors
    ///
    /// `INTERNAL` (logged) when the layer has no token client or did not run.
    fn token_client(&self) -> Result<&TokenClient, tonic::Status>;

    /// A token for `scopes` of one downstream API, as the signed-in user (OAuth 2.0
    /// on-behalf-of, from the token this API received; cached per user and scopes).
    ///
    /// # Errors
    ///
    /// As [`claims`](Self::claims) and [`token_client`](Self::token_client); a token that could
    /// not be acquired answers as [`TokenError::challenge`](azad_core::TokenError::challenge)
    /// says, mapped to gRPC by [`Challenge::grpc_code`](azad_core::Challenge::grpc_code) (for
    /// example `UNAUTHENTICATED` with an `insufficient_claims` challenge in the metadata).
    fn on_behalf_of(
        &self,
        scopes: &[&str],
    ) -> impl Future<Output = Result<AcquiredToken, tonic::Status>> + Send + 'static;
}

impl<T> RequestExt for tonic::Request<T> {
    fn authentication(&self) -> Result<&Authentication, tonic::Status> {
        Authentication::of(self.extensions()).map_err(|r| r.to_status(false))
    }

    fn claims(&self) -> Result<&Arc<Claims>, tonic::Status> {
        let authentication = self.authentication()?;
        authentication.require().map_err(|r| r.to_status(authentication.is_verbose()))
    }

    fn token_client(&self) -> Result<&TokenClient, tonic::Status> {
        let authentication = self.authentication()?;
        authentication.token_client().ok_or_else(|| {
            tracing::error!(
                target: "azad::downstream",
                "no token client for downstream calls: configure `AzureAdAuth::new(config).with_token_client(client)`"
            );
            AuthRejection::MissingTokenClient.to_status(authentication.is_verbose())
        })
    }

    fn on_behalf_of(
        &self,
        scopes: &[&str],
    ) -> impl Future<Output = Result<AcquiredToken, tonic::Status>> + Send + 'static {
        let request = self.claims().and_then(|claims| {
            let authentication = self.authentication()?;
            let client = self.token_client()?.clone();
            // `claims` succeeded: an authenticated caller always has its token.
            let token = authentication.token().cloned().ok_or_else(|| AuthRejection::MissingToken.to_status(false))?;
            let request =
                TokenRequest::on_behalf_of(token, scopes.iter().copied()).with_validated_claims(claims.clone());
            Ok((client, request))
        });
        async move {
            let (client, request) = request?;
            client.acquire(request).await.map_err(|e| {
                let challenge = e.challenge();
                if challenge.status().is_server_error() {
                    tracing::error!(target: "azad::downstream", error = %e, "acquiring a downstream token failed");
                } else {
                    tracing::info!(target: "azad::downstream", error = %e, "acquiring a downstream token failed");
                }
                status_of(&challenge, challenge.message())
            })
        }
    }
}
