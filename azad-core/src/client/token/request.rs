//! [`TokenRequest`]: what [`TokenClient::acquire`](super::TokenClient::acquire) is asked for.

use std::sync::Arc;

use crate::secret::BearerToken;
use crate::validation::claims::Claims;

/// One token request, for [`TokenClient::acquire`](crate::TokenClient::acquire): client
/// credentials ([`app`](Self::app), RFC 6749 §4.4) or on-behalf-of
/// ([`on_behalf_of`](Self::on_behalf_of), the
/// [OAuth 2.0 on-behalf-of flow](https://learn.microsoft.com/entra/identity-platform/v2-oauth2-on-behalf-of-flow)),
/// with optional extras: the incoming token's validated claims, a claims challenge, a forced
/// refresh.
///
/// ```
/// use azad_core::{BearerToken, TokenRequest};
///
/// let incoming = BearerToken::new("eyJ0eXAiOiJKV1Qi.e30.sig");
/// let request = TokenRequest::on_behalf_of(incoming, ["api://downstream/Data.Read"])
///     .with_claims(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
///     .with_force_refresh(true);
/// # let _ = request;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenRequest {
    pub(super) scopes: Vec<String>,
    pub(super) assertion: Option<BearerToken>,
    pub(super) validated_claims: Option<Arc<Claims>>,
    pub(super) claims: Option<String>,
    pub(super) force_refresh: bool,
}

impl TokenRequest {
    /// Client credentials for `scopes` (usually one `…/.default`).
    pub fn app<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
            assertion: None,
            validated_claims: None,
            claims: None,
            force_refresh: false,
        }
    }

    /// On-behalf-of the user whose token this API received.
    pub fn on_behalf_of<I: IntoIterator<Item = S>, S: Into<String>>(assertion: BearerToken, scopes: I) -> Self {
        Self { assertion: Some(assertion), ..Self::app(scopes) }
    }

    /// The incoming token's claims, already validated (by the `AzureAdAuth` layer): the
    /// on-behalf-of pre-checks read them instead of decoding the token again.
    pub fn with_validated_claims(mut self, claims: Arc<Claims>) -> Self {
        self.validated_claims = Some(claims);
        self
    }

    /// A claims challenge (JSON) to satisfy, from a downstream API or Entra; bypasses the cache.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Fetches a new token even if a cached one is fresh.
    pub fn with_force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}
