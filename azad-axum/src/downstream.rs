//! Calling downstream APIs: as the signed-in user ([`OnBehalfOf`]) or as the application
//! ([`AppToken`]), with the token client configured once on the layer.

use std::sync::Arc;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use azad_core::Challenge;
use azad_core::{AcquiredToken, BearerToken, TokenClient, TokenError, TokenRequest};
use azad_tower::{AuthRejection, Authentication};
use http::StatusCode;
use http::request::Parts;

use crate::rejection::{Rejection, respond};

/// The layer's token client, or a 500 naming the fix.
fn token_client(authentication: &Authentication) -> Result<TokenClient, AuthRejection> {
    authentication.token_client().cloned().ok_or_else(|| {
        tracing::error!(
            target: "azad::rejection",
            "no token client for downstream calls: configure `AzureAdAuth::new(config).with_token_client(client)`"
        );
        AuthRejection::MissingTokenClient
    })
}

/// Acquires tokens for downstream APIs on behalf of the signed-in user (OAuth 2.0
/// on-behalf-of), from the token this API received.
///
/// Its rejection is the same [`Rejection`] as the [`Claims`](crate::Claims) extractor's (401
/// for an anonymous caller, 500 without the layer or without a token client).
///
/// # Example
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use azad_axum::{AzureAdAuth, DownstreamError, OnBehalfOf, require_scope};
/// use azad_core::{ClientCredential, TokenClient, dev::DevTenant};
///
/// #[require_scope("access_as_user")]
/// async fn profile(obo: OnBehalfOf) -> Result<String, DownstreamError> {
///     let response = obo
///         .call(reqwest::Client::new().get("http://127.0.0.1:9/api/data"), &["api://azad-downstream/Data.Read"])
///         .await?;
///     Ok(response.text().await.unwrap_or_default())
/// }
///
/// # async fn app(tenant: DevTenant) -> Router {
/// let config = tenant.config();
/// let client = TokenClient::new(&config, ClientCredential::secret(tenant.api_client_secret()));
/// Router::new()
///     .route("/api/profile", get(profile))
///     .layer(AzureAdAuth::new(config).with_token_client(client))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OnBehalfOf {
    client: TokenClient,
    token: BearerToken,
    claims: Arc<azad_core::Claims>,
}

impl<S: Send + Sync> FromRequestParts<S> for OnBehalfOf {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let read = |authentication: &Authentication| {
            let claims = authentication.require()?.clone();
            let token = authentication.token().cloned().ok_or(AuthRejection::MissingToken)?;
            Ok(Self { client: token_client(authentication)?, token, claims })
        };
        Authentication::of(&parts.extensions).and_then(read).map_err(|r| Rejection::of(&parts.extensions, r))
    }
}

impl OnBehalfOf {
    /// The signed-in user's validated claims.
    #[must_use]
    pub fn claims(&self) -> &azad_core::Claims {
        &self.claims
    }

    /// A token for `scopes` of one downstream API, as the user (cached per user and scopes).
    ///
    /// # Errors
    ///
    /// An [`AcquireTokenError`] that answers the caller as [`TokenError::challenge`] documents.
    pub async fn token_for(&self, scopes: &[&str]) -> Result<AcquiredToken, AcquireTokenError> {
        let request = TokenRequest::on_behalf_of(self.token.clone(), scopes.iter().copied())
            .with_validated_claims(self.claims.clone());
        self.client.acquire(request).await.map_err(AcquireTokenError)
    }

    /// Like [`token_for`](Self::token_for), satisfying a claims challenge (JSON).
    ///
    /// # Errors
    ///
    /// An [`AcquireTokenError`].
    pub async fn token_for_with_claims(
        &self,
        scopes: &[&str],
        claims: &str,
    ) -> Result<AcquiredToken, AcquireTokenError> {
        let request = TokenRequest::on_behalf_of(self.token.clone(), scopes.iter().copied())
            .with_validated_claims(self.claims.clone())
            .with_claims(claims);
        self.client.acquire(request).await.map_err(AcquireTokenError)
    }

    /// Sends `request` with a bearer token for `scopes`. A downstream 401 with a claims
    /// challenge (continuous access evaluation) is retried once with a token satisfying it;
    /// if that is not possible (the retry is challenged too, or the request has a streaming
    /// body and is sent only once), the challenge is surfaced to this API's caller (401
    /// `insufficient_claims`, [`DownstreamError::ClaimsChallenge`]), who must sign the user
    /// in again.
    ///
    /// # Errors
    ///
    /// A [`DownstreamError`].
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub async fn call(
        &self,
        request: reqwest::RequestBuilder,
        scopes: &[&str],
    ) -> Result<reqwest::Response, DownstreamError> {
        send_answering_claims_challenge(request, Caller::User, move |claims: Option<String>| async move {
            match claims {
                None => self.token_for(scopes).await,
                Some(claims) => self.token_for_with_claims(scopes, &claims).await,
            }
        })
        .await
    }
}

/// Whose token a downstream call carries: what a claims challenge the retry cannot satisfy
/// becomes.
#[cfg(feature = "reqwest")]
#[derive(Clone, Copy)]
enum Caller {
    /// The signed-in user's (on-behalf-of): the challenge goes to this API's caller, who can
    /// sign the user in again ([`DownstreamError::ClaimsChallenge`], 401).
    User,
    /// The application's own (client credentials): nobody upstream can satisfy it
    /// ([`DownstreamError::AppTokenRefused`], 502).
    Application,
}

/// Sends `request` with the token `acquire(None)` gives. A downstream 401 with a claims
/// challenge (continuous access evaluation: a revoked session, a moved IP, an authentication
/// context; [Microsoft: claims challenges](https://learn.microsoft.com/entra/identity-platform/claims-challenge))
/// is retried once, with the token `acquire(Some(claims))` gives (a new token request carrying
/// the challenge, past the cache, whose answer then replaces the cached token). A challenge
/// the retry does not end, or one on a request that cannot be sent twice (a streaming body:
/// sent once, never retried), is answered as `caller` says.
#[cfg(feature = "reqwest")]
async fn send_answering_claims_challenge<Acquiring>(
    request: reqwest::RequestBuilder,
    caller: Caller,
    acquire: impl Fn(Option<String>) -> Acquiring,
) -> Result<reqwest::Response, DownstreamError>
where
    Acquiring: Future<Output = Result<AcquiredToken, AcquireTokenError>>,
{
    let unanswered = |claims: String| match caller {
        Caller::User => DownstreamError::ClaimsChallenge { claims },
        Caller::Application => DownstreamError::AppTokenRefused { claims },
    };
    // `None` for a streaming body, and for a builder that holds an error (sending it reports
    // that error).
    let retry = request.try_clone();
    let token = acquire(None).await?;
    let response = request.bearer_auth(token.secret()).send().await.map_err(DownstreamError::request)?;
    let Some(claims) = wire::claims_challenge(&response) else {
        return Ok(response);
    };
    let Some(retry) = retry else {
        tracing::info!(target: "azad::downstream", "downstream API sent a claims challenge on a request that cannot be sent twice (streaming body)");
        return Err(unanswered(claims));
    };
    tracing::info!(target: "azad::downstream", status = response.status().as_u16(), "downstream API sent a claims challenge; retrying with it");
    let token = acquire(Some(claims)).await?;
    let response = retry.bearer_auth(token.secret()).send().await.map_err(DownstreamError::request)?;
    match wire::claims_challenge(&response) {
        Some(claims) => Err(unanswered(claims)),
        None => Ok(response),
    }
}

/// Acquires tokens as the application itself (client credentials), for handlers that call
/// other APIs with the app's own permissions.
#[derive(Debug, Clone)]
pub struct AppToken {
    client: TokenClient,
}

impl<S: Send + Sync> FromRequestParts<S> for AppToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Authentication::of(&parts.extensions)
            .and_then(token_client)
            .map(|client| Self { client })
            .map_err(|r| Rejection::of(&parts.extensions, r))
    }
}

impl AppToken {
    /// An app token for `scopes` (usually one `{resource}/.default`).
    ///
    /// # Errors
    ///
    /// An [`AcquireTokenError`] (the same mapping to answers).
    pub async fn token_for(&self, scopes: &[&str]) -> Result<AcquiredToken, AcquireTokenError> {
        self.client.acquire_app_token(scopes).await.map_err(AcquireTokenError)
    }

    /// Like [`token_for`](Self::token_for), satisfying a claims challenge (JSON): a new token
    /// request carrying it (merged with the client capabilities the token client declares,
    /// such as `cp1`), past the cache; the new token then replaces the cached one for
    /// `scopes`. Continuous access evaluation for workload identities challenges an app token
    /// this way (for example `{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}`
    /// once the app's tokens are revoked).
    ///
    /// # Errors
    ///
    /// An [`AcquireTokenError`].
    pub async fn token_for_with_claims(
        &self,
        scopes: &[&str],
        claims: &str,
    ) -> Result<AcquiredToken, AcquireTokenError> {
        let request = TokenRequest::app(scopes.iter().copied()).with_claims(claims);
        self.client.acquire(request).await.map_err(AcquireTokenError)
    }

    /// Sends `request` with an app token for `scopes`. A downstream 401 with a claims
    /// challenge is retried once with a token satisfying it, as [`OnBehalfOf::call`] does. A
    /// challenge the retry does not end (or one on a request with a streaming body, sent only
    /// once) is [`DownstreamError::AppTokenRefused`] (502): it is about this application's
    /// own credential, which this API's caller cannot satisfy.
    ///
    /// # Errors
    ///
    /// A [`DownstreamError`].
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub async fn call(
        &self,
        request: reqwest::RequestBuilder,
        scopes: &[&str],
    ) -> Result<reqwest::Response, DownstreamError> {
        send_answering_claims_challenge(request, Caller::Application, move |claims: Option<String>| async move {
            match claims {
                None => self.token_for(scopes).await,
                Some(claims) => self.token_for_with_claims(scopes, &claims).await,
            }
        })
        .await
    }
}

/// A token could not be acquired for a downstream call, on behalf of the user
/// ([`OnBehalfOf`]) or as the application ([`AppToken`]). Answers this API's caller as
/// [`TokenError::challenge`] documents:
///
/// | failure | answer |
/// | --- | --- |
/// | incoming token expired or not for this API | 401 `invalid_token` |
/// | `interaction_required` / claims challenge | 401 `insufficient_claims`, `claims="<base64>"` |
/// | app-only incoming token, missing consent | 403 `insufficient_scope` |
/// | throttled | 503 with `Retry-After` |
/// | this API's credential refused, misconfiguration | 500 (logged) |
/// | transport failure, other errors | 502 |
#[derive(Debug, Clone, PartialEq)]
pub struct AcquireTokenError(pub TokenError);

impl std::fmt::Display for AcquireTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AcquireTokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

impl From<TokenError> for AcquireTokenError {
    fn from(e: TokenError) -> Self {
        Self(e)
    }
}

impl IntoResponse for AcquireTokenError {
    fn into_response(self) -> Response {
        let challenge = self.0.challenge();
        let status = challenge.status();
        if status.is_server_error() {
            tracing::error!(target: "azad::downstream", error = %self.0, status = status.as_u16(), "acquiring a downstream token failed");
        } else {
            tracing::info!(target: "azad::downstream", error = %self.0, status = status.as_u16(), "acquiring a downstream token failed");
        }
        respond(&challenge, challenge.message())
    }
}

/// A downstream call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DownstreamError {
    /// No token could be acquired.
    Token(AcquireTokenError),
    /// The downstream API requires claims the user must satisfy by signing in again: 401
    /// `insufficient_claims` with `claims` (base64-encoded again, as Entra ID sends it) to this
    /// API's caller. Only the claims are passed on, never the downstream's other auth-params.
    ClaimsChallenge {
        /// The claims challenge JSON, decoded from the downstream's base64.
        claims: String,
    },
    /// The downstream API refused this application's own token ([`AppToken`]) with a claims
    /// challenge that a new token did not end: 502, logged with the claims; nothing is passed
    /// to this API's caller, who cannot satisfy it.
    AppTokenRefused {
        /// The claims challenge JSON, decoded from the downstream's base64.
        claims: String,
    },
    /// The request failed (502).
    #[cfg(feature = "reqwest")]
    Request(reqwest::Error),
    /// The request has a streaming body and cannot be retried (500). No longer returned: such
    /// a request is sent once, without a retry.
    #[deprecated(note = "`call` sends a request with a streaming body once, without a retry, instead of refusing it")]
    NotCloneable,
}

impl DownstreamError {
    #[cfg(feature = "reqwest")]
    fn request(e: reqwest::Error) -> Self {
        Self::Request(e.without_url())
    }
}

impl From<AcquireTokenError> for DownstreamError {
    fn from(e: AcquireTokenError) -> Self {
        Self::Token(e)
    }
}

impl std::fmt::Display for DownstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("no token for the downstream API"),
            Self::ClaimsChallenge { .. } => {
                f.write_str("the downstream API requires the user to satisfy a claims challenge")
            }
            Self::AppTokenRefused { .. } => {
                f.write_str("the downstream API refused the application's token with a claims challenge")
            }
            #[cfg(feature = "reqwest")]
            Self::Request(_) => f.write_str("the downstream request failed"),
            #[allow(deprecated)]
            Self::NotCloneable => f.write_str("the downstream request cannot be retried (streaming body)"),
        }
    }
}

impl std::error::Error for DownstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            #[cfg(feature = "reqwest")]
            Self::Request(e) => Some(e),
            _ => None,
        }
    }
}

impl DownstreamError {
    /// What this API answers its caller, as a [`Challenge`]: the token failure's (see
    /// [`TokenError::challenge`]), 401 `insufficient_claims` with the claims (base64) for a
    /// claims challenge on the user's token, 502 for a refused application token and for a
    /// failed request.
    pub fn challenge(&self) -> Challenge {
        match self {
            Self::Token(e) => e.0.challenge(),
            Self::ClaimsChallenge { claims } => {
                Challenge::new(StatusCode::UNAUTHORIZED).with_error("insufficient_claims").with_claims(claims.clone())
            }
            Self::AppTokenRefused { .. } => Challenge::new(StatusCode::BAD_GATEWAY),
            #[cfg(feature = "reqwest")]
            Self::Request(_) => Challenge::new(StatusCode::BAD_GATEWAY),
            #[allow(deprecated)]
            Self::NotCloneable => Challenge::new(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl IntoResponse for DownstreamError {
    fn into_response(self) -> Response {
        match &self {
            // Logged by `AcquireTokenError`.
            Self::Token(_) => {}
            Self::ClaimsChallenge { .. } => {
                tracing::info!(target: "azad::downstream", "surfacing a downstream claims challenge to the caller");
            }
            // The claims name conditions, never a secret.
            Self::AppTokenRefused { claims } => {
                tracing::error!(target: "azad::downstream", claims = %claims, "the downstream API refused the application's token again after a new token with its claims challenge");
            }
            #[cfg(feature = "reqwest")]
            Self::Request(e) => tracing::warn!(target: "azad::downstream", error = %e, "downstream request failed"),
            #[allow(deprecated)]
            Self::NotCloneable => tracing::error!(target: "azad::downstream", "{self}"),
        }
        if let Self::Token(e) = self {
            return e.into_response();
        }
        let challenge = self.challenge();
        respond(&challenge, challenge.message())
    }
}

#[cfg(feature = "reqwest")]
mod wire {
    use azad_core::Challenge;

    /// The claims challenge of a 401 whose `WWW-Authenticate` holds a Bearer challenge
    /// `error="insufficient_claims", claims="<base64>"`, decoded to JSON. Read with the one
    /// RFC 7235 parser ([`Challenge::from_response_parts`]).
    pub(super) fn claims_challenge(response: &reqwest::Response) -> Option<String> {
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return None;
        }
        let challenge = Challenge::from_response_parts(response.status(), response.headers())?;
        if challenge.error() != Some("insufficient_claims") {
            return None;
        }
        challenge.claims().map(str::to_owned)
    }
}
