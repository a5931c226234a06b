//! What the validator checks besides the signature: audiences, tenants, algorithms, clock
//! skew, token versions, scopes or roles, size, B2C user flows. Built by
//! [`AzureAdConfig::validation_policy`](crate::AzureAdConfig::validation_policy).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::authority::Authority;
use crate::clock::Clock;
use crate::validation::issuer::IssuerPolicy;
use crate::validation::jwt::SigningAlgorithm;

/// Which access-token versions (`ver` claim) are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenVersions {
    /// v1.0 and v2.0 tokens (the default, like Microsoft.Identity.Web).
    Both,
    /// Only v1.0 tokens.
    V1Only,
    /// Only v2.0 tokens.
    V2Only,
}

impl TokenVersions {
    pub(crate) fn accepts(self, ver: Option<&str>) -> bool {
        match self {
            Self::Both => true,
            Self::V1Only => ver == Some("1.0"),
            Self::V2Only => ver == Some("2.0"),
        }
    }
}

/// The validation policy of one authority's tokens, as [`TokenValidator`](crate::TokenValidator)
/// applies it (the steps of RFC 7519 §7.2 and RFC 8725 §3 that are not the signature).
///
/// Built from a validated configuration by
/// [`AzureAdConfig::validation_policy`](crate::AzureAdConfig::validation_policy); the sign-in
/// client derives the ID-token policy with [`for_id_tokens`](Self::for_id_tokens).
#[derive(Clone)]
pub struct ValidationPolicy {
    pub(crate) authority: Authority,
    pub(crate) audiences: Vec<String>,
    /// The issuer and tenant rules (steps 7 and 8).
    pub(crate) issuer: IssuerPolicy,
    pub(crate) token_versions: TokenVersions,
    pub(crate) algorithms: Vec<SigningAlgorithm>,
    pub(crate) leeway: Duration,
    pub(crate) require_scopes_or_roles: bool,
    pub(crate) max_token_bytes: usize,
    pub(crate) validated_token_cache_capacity: u64,
    pub(crate) b2c_user_flows: Option<Vec<String>>,
    pub(crate) authority_name: Option<Arc<str>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    /// ID tokens (sign-in) instead of access tokens: a token naming no client application is
    /// then expected.
    pub(crate) id_tokens: bool,
}

impl ValidationPolicy {
    /// The policy for the ID tokens of the application `client_id` (OpenID Connect Core 1.0
    /// §3.1.3.7): `aud` is the client id, no scopes or roles are required, the token names no
    /// client application, and nothing is cached. Tenants, algorithms and leeway stay.
    #[must_use]
    pub fn for_id_tokens(mut self, client_id: &str) -> Self {
        self.audiences = vec![client_id.to_owned()];
        self.require_scopes_or_roles = false;
        self.validated_token_cache_capacity = 0;
        self.id_tokens = true;
        self
    }

    /// The accepted audiences.
    #[must_use]
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The allowed clock skew for `exp` and `nbf`.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The allowed signing algorithms.
    #[must_use]
    pub fn algorithms(&self) -> &[SigningAlgorithm] {
        &self.algorithms
    }
}

impl fmt::Debug for ValidationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationPolicy")
            .field("authority", &self.authority.url())
            .field("audiences", &self.audiences)
            .field("allowed_tenants", &self.issuer.allowed_tenants)
            .field("required_tenant", &self.issuer.required_tenant)
            .field("token_versions", &self.token_versions)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("require_scopes_or_roles", &self.require_scopes_or_roles)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("id_tokens", &self.id_tokens)
            .finish_non_exhaustive()
    }
}
