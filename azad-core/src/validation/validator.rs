//! Validation of Entra ID access tokens: structure, header, key, signature, issuer and tenant,
//! audience, lifetime, version, kind of token and scopes, in that order, with a cache of
//! validated tokens.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "dev")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use azad_core::{TokenValidator, ValidationError, dev::DevTenant};
//!
//! let tenant = DevTenant::start().await?;
//! let validator = TokenValidator::new(tenant.config());
//!
//! let token = tenant.token().scopes(["access_as_user"]).build();
//! let claims = validator.validate(&token).await?;
//! assert!(claims.has_scope("access_as_user"));
//!
//! let expired = tenant.token().expired().build();
//! assert_eq!(validator.validate(&expired).await.unwrap_err(), ValidationError::Expired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::clock::{now_secs, unix_secs};
use crate::config::AzureAdConfig;
use crate::error::{JwksError, TokenPart, ValidationError};
use crate::secret::BearerToken;
use crate::validation::claims::Claims;
use crate::validation::issuer::IssuerDiagnosis;
use crate::validation::jwks::{JwksCache, Snapshot};
use crate::validation::jwt::SigningAlgorithm;
use crate::validation::jwt::{self, JoseHeader};
use crate::validation::policy::ValidationPolicy;

/// Microsoft Graph's application id and resource URIs: tokens for Graph are not for this API.
const GRAPH_AUDIENCES: &[&str] = &[
    "00000003-0000-0000-c000-000000000000",
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "https://graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

/// The likely cause of a rejection, for server-side logs (never sent to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// The token was issued for Microsoft Graph: the client asked for a Graph scope
    /// (`User.Read`) instead of this API's scope (`api://{client id}/access_as_user`).
    TokenForMicrosoftGraph,
    /// The token was issued for another API.
    TokenForAnotherAudience,
    /// A v1.0 token where only v2.0 tokens are accepted (set `accessTokenAcceptedVersion`
    /// to 2 in the API's app manifest, or accept both versions).
    V1TokenWhereOnlyV2Allowed,
    /// A v2.0 token where only v1.0 tokens are accepted.
    V2TokenWhereOnlyV1Allowed,
    /// The token comes from another tenant than the one configured (or allowed).
    TokenFromAnotherTenant,
    /// The token's issuer belongs to another authority (cloud, B2C policy or provider).
    IssuerOfAnotherAuthority,
    /// The signing key is not in the authority's JWKS: the token comes from another authority,
    /// or the app needs its app-specific signing keys (`app_specific_signing_keys`).
    KeyNotInJwks,
    /// An ID token was sent where an access token belongs: the client must send the access
    /// token it got for this API's scope, not the ID token of its sign-in.
    IdTokenInsteadOfAccessToken,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TokenForMicrosoftGraph => {
                "the token was issued for Microsoft Graph, not for this API: the client must request this API's scope (api://<client id>/<scope>)"
            }
            Self::TokenForAnotherAudience => {
                "the token was issued for another audience: check the scope the client requests and the configured audiences"
            }
            Self::V1TokenWhereOnlyV2Allowed => {
                "a v1.0 token was presented but only v2.0 tokens are accepted: set accessTokenAcceptedVersion to 2 in the API's app manifest"
            }
            Self::V2TokenWhereOnlyV1Allowed => "a v2.0 token was presented but only v1.0 tokens are accepted",
            Self::TokenFromAnotherTenant => {
                "the token comes from another tenant: check the tenant id, or use `organizations`/`common` with an allow-list"
            }
            Self::IssuerOfAnotherAuthority => "the token's issuer belongs to another authority or cloud",
            Self::KeyNotInJwks => {
                "the signing key is not in the authority's JWKS: the token comes from another authority, or the app needs app-specific signing keys"
            }
            Self::IdTokenInsteadOfAccessToken => {
                "an ID token was sent instead of an access token: the client must send the access token it requested for this API's scope"
            }
        })
    }
}

mod token_cache;

use token_cache::{CachedToken, Served, ValidatedTokens};

struct Inner {
    /// The configuration the validator was built from (for [`TokenValidator::config`]).
    config: AzureAdConfig,
    /// What is checked: the part of the configuration the validator reads.
    policy: ValidationPolicy,
    jwks: JwksCache,
    /// The validated-token cache (`None` with capacity 0); its keys include a hash of everything
    /// in the configuration that affects validation.
    cache: Option<ValidatedTokens>,
    flushed_generation: AtomicU64,
    /// Tests only: awaited between a successful check and the cache insert, so a test can
    /// swap the key set while a validation is in flight.
    #[cfg(test)]
    after_check: std::sync::Mutex<Option<Arc<tests::Pause>>>,
    /// Metric handles (feature `metrics`; nothing otherwise).
    metrics: crate::metrics::ValidationMetrics,
    /// Several authorities behind this validator: tokens are routed to one of them by their
    /// unverified issuer before any other work (see [`TokenValidator::authorities`]).
    router: Option<authorities::Router>,
}

/// Validates access tokens for one API. Cheap to clone (an `Arc`); share one per API.
///
/// Validation of Entra ID access tokens: structure, header, key, signature, issuer and tenant,
/// audience, lifetime, version, kind of token and scopes, in that order, with a cache of
/// validated tokens.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "dev")]
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::{TokenValidator, ValidationError, dev::DevTenant};
///
/// let tenant = DevTenant::start().await?;
/// let validator = TokenValidator::new(tenant.config());
///
/// let token = tenant.token().scopes(["access_as_user"]).build();
/// let claims = validator.validate(&token).await?;
/// assert!(claims.has_scope("access_as_user"));
///
/// let expired = tenant.token().expired().build();
/// assert_eq!(validator.validate(&expired).await.unwrap_err(), ValidationError::Expired);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("config", &self.inner.config)
            .field("jwks", &self.inner.jwks)
            .field("cached_tokens", &self.inner.cache.as_ref().map(ValidatedTokens::entry_count))
            .finish()
    }
}

impl TokenValidator {
    /// A validator for `config`. Synchronous: keys are fetched lazily on first use, or by
    /// [`warm_up`](Self::warm_up).
    pub fn new(config: AzureAdConfig) -> Self {
        Self::with_policy(config.validation_policy(), config)
    }

    /// A validator checking `policy`, with the keys (and [`config`](Self::config)) of `config`.
    pub(crate) fn with_policy(policy: ValidationPolicy, config: AzureAdConfig) -> Self {
        let jwks = JwksCache::new(config.jwks_options());
        let cache = (policy.validated_token_cache_capacity > 0)
            .then(|| ValidatedTokens::new(policy.validated_token_cache_capacity, format!("{config:?}").as_bytes()));
        Self {
            inner: Arc::new(Inner {
                jwks,
                cache,
                flushed_generation: AtomicU64::new(0),
                #[cfg(test)]
                after_check: std::sync::Mutex::new(None),
                metrics: crate::metrics::ValidationMetrics::new(
                    policy.authority_name.as_deref().unwrap_or(crate::metrics::DEFAULT_AUTHORITY_LABEL),
                ),
                router: None,
                policy,
                config,
            }),
        }
    }

    /// A validator of ID tokens (for sign-in) of the application of `config`: every check of
    /// an access token but the one that refuses tokens naming no client application, for the
    /// audience of the client id (see [`ValidationPolicy::for_id_tokens`]).
    pub(crate) fn for_id_tokens(config: AzureAdConfig) -> Self {
        let policy = config.validation_policy().for_id_tokens(config.client_id());
        Self::with_policy(policy, config)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AzureAdConfig {
        &self.inner.config
    }

    /// The signing-key cache.
    pub fn jwks(&self) -> &JwksCache {
        &self.inner.jwks
    }

    /// Updates the gauges that change with time rather than with events (feature `metrics`):
    /// `azad_key_set_age_seconds` and `azad_validated_token_cache_entries`, of every
    /// authority. Call it before rendering a scrape (the quickstart's `/metrics` does); the
    /// counters need no such call.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn update_metrics(&self) {
        for (_, validator) in self.authority_validators() {
            validator.update_metrics();
        }
        if self.inner.router.is_none() {
            self.inner.jwks.update_age_metric();
            if let Some(cache) = &self.inner.cache {
                self.inner.metrics.cache_entries(|| cache.entry_count());
            }
        }
    }

    /// Loads metadata and keys now, so a server can fail fast at start-up.
    ///
    /// # Errors
    ///
    /// The [`JwksError`] that prevented loading.
    pub async fn warm_up(&self) -> Result<(), JwksError> {
        if let Some(router) = &self.inner.router {
            return Box::pin(router.warm_up()).await;
        }
        self.inner.jwks.warm_up().await
    }

    /// Validates a token against the current time (or the configured
    /// [`clock`](crate::AzureAdConfigBuilder::clock)), returning its claims behind an `Arc`.
    ///
    /// A token validated before is served from the validated-token cache (one hash and one
    /// lookup, no copy) until it expires or the key set changes; any other runs every check.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`ValidationError`].
    pub async fn validate(&self, token: &str) -> Result<Arc<Claims>, ValidationError> {
        self.validate_inner(token, || BearerToken::new(token)).await
    }

    /// Like [`validate`](Self::validate), for a token already held as a [`BearerToken`]: the
    /// validated-token cache keeps this handle instead of a copy.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`ValidationError`].
    pub async fn validate_bearer(&self, token: &BearerToken) -> Result<Arc<Claims>, ValidationError> {
        self.validate_inner(token.secret(), || token.clone()).await
    }

    async fn validate_inner(
        &self,
        token: &str,
        keep: impl FnOnce() -> BearerToken,
    ) -> Result<Arc<Claims>, ValidationError> {
        let now = self.now();
        if token.len() > self.inner.policy.max_token_bytes {
            return Err(self.rejected(token, ValidationError::TokenTooLarge));
        }
        if let Some(router) = &self.inner.router {
            // A token one of the authorities validated before: its cache, before any decoding.
            if let Some((claims, _)) = router.cached(token.as_bytes()) {
                return Ok(claims);
            }
            return match router.route(token) {
                Ok(validator) => Box::pin(validator.validate_inner(token, keep)).await,
                Err(e) => Err(self.rejected(token, e)),
            };
        }
        let Some(cache) = &self.inner.cache else {
            let outcome = self.check(token, now).await.map(|(c, _)| Arc::new(c)).map_err(|e| self.rejected(token, e));
            if outcome.is_ok() {
                self.inner.metrics.accepted();
            }
            return outcome;
        };
        let generation = self.flush_on_key_change(cache);
        let key = cache.key(token.as_bytes());
        match cache.serve(key, token.as_bytes(), generation, now) {
            Served::Hit(hit) => {
                self.inner.metrics.cache_hit();
                return Ok(hit.claims);
            }
            // This token's entry, expired or from an older key set: dropped. A different
            // token in the same slot (a tampered payload with a genuine signature) stays.
            Served::Stale => cache.invalidate(key, token),
            Served::Absent => {}
        }
        self.inner.metrics.cache_miss();
        match self.check(token, now).await {
            Ok((claims, verified_by)) => {
                #[cfg(test)]
                {
                    let pause = self.inner.after_check.lock().unwrap().clone();
                    if let Some(p) = pause {
                        p.hold().await;
                    }
                }
                let exp = claims.expires_at().unwrap_or(now);
                if exp > now {
                    // Frees the entries of a withdrawn key set; the tag itself is the generation of
                    // the key set that verified this token (never one read afterwards): if that set
                    // has been replaced since, the entry never serves.
                    self.flush_on_key_change(cache);
                    let token = keep();
                    // The entry holds the token; the claims read their untyped members from it
                    // instead of keeping a second copy of the payload.
                    // The tower layer serves a cached token before checking the header's
                    // alphabet: that is sound because every entry is base64url segments.
                    debug_assert!(token.secret().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
                    let mut claims = claims;
                    claims.read_others_from(token.clone());
                    let claims = Arc::new(claims);
                    cache.insert(key, CachedToken { claims: claims.clone(), token, exp, generation: verified_by });
                    self.inner.metrics.cache_entries(|| cache.entry_count());
                    self.inner.metrics.accepted();
                    Ok(claims)
                } else {
                    self.inner.metrics.accepted();
                    Ok(Arc::new(claims))
                }
            }
            Err(e) => Err(self.rejected(token, e)),
        }
    }

    /// The synchronous fast path of the tower layer: the claims and the cached
    /// [`BearerToken`] handle of a token validated before and still valid, from the
    /// validated-token cache, with one hash and one lookup. `None` on a miss (then call
    /// [`validate_bearer`](Self::validate_bearer)). Not a way to validate: a hook for
    /// azad-tower, hidden from the documentation.
    #[doc(hidden)]
    #[must_use]
    pub fn try_cached(&self, token: &str) -> Option<(Arc<Claims>, BearerToken)> {
        self.try_cached_bytes(token.as_bytes())
    }

    /// [`try_cached`](Self::try_cached) of the token's bytes as received (the tower layer
    /// looks the `Authorization` header's token up before checking its alphabet: a hit is
    /// byte for byte a token that passed every check, so it needs no other). Hidden, as
    /// `try_cached`.
    #[doc(hidden)]
    #[must_use]
    pub fn try_cached_bytes(&self, token: &[u8]) -> Option<(Arc<Claims>, BearerToken)> {
        if let Some(router) = &self.inner.router {
            return router.cached(token);
        }
        let cache = self.inner.cache.as_ref()?;
        if token.len() > self.inner.policy.max_token_bytes {
            return None;
        }
        let generation = self.inner.jwks.generation();
        let hit = cache.serve(cache.key(token), token, generation, self.now()).hit()?;
        self.inner.metrics.cache_hit();
        Some((hit.claims, hit.token))
    }

    /// Validates a token as of `time` (to replay recorded tokens against a fixed clock).
    /// Bypasses the validated-token cache.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`ValidationError`].
    pub async fn validate_at(&self, token: &str, time: SystemTime) -> Result<Claims, ValidationError> {
        if token.len() > self.inner.policy.max_token_bytes {
            return Err(self.rejected(token, ValidationError::TokenTooLarge));
        }
        if let Some(router) = &self.inner.router {
            return match router.route(token) {
                Ok(validator) => Box::pin(validator.validate_at(token, time)).await,
                Err(e) => Err(self.rejected(token, e)),
            };
        }
        self.check(token, unix_secs(time)).await.map(|(c, _)| c).map_err(|e| self.rejected(token, e))
    }

    /// Names the likely cause of a rejection, where it can be detected, by reading the
    /// (unverified) token. For server-side logs only.
    #[must_use]
    pub fn diagnose(&self, token: &str, error: &ValidationError) -> Option<Diagnostic> {
        let segments = jwt::split(token).ok()?;
        let has_nonce = jwt::decode_segment(segments.header, TokenPart::Header)
            .ok()
            .and_then(|h| JoseHeader::parse(&h).ok().map(|h| h.nonce));
        let claims =
            jwt::decode_segment(segments.payload, TokenPart::Payload).ok().and_then(|p| Claims::from_json(&p).ok())?;
        let graph = claims.audiences().iter().any(|a| GRAPH_AUDIENCES.contains(&a.as_str()));
        let cfg = &self.inner.policy;
        match error {
            ValidationError::InvalidAudience | ValidationError::InvalidSignature | ValidationError::UnknownKey
                if graph || has_nonce == Some(true) =>
            {
                Some(Diagnostic::TokenForMicrosoftGraph)
            }
            ValidationError::InvalidAudience => Some(Diagnostic::TokenForAnotherAudience),
            ValidationError::VersionNotAllowed => match claims.version() {
                Some("1.0") => Some(Diagnostic::V1TokenWhereOnlyV2Allowed),
                Some("2.0") => Some(Diagnostic::V2TokenWhereOnlyV1Allowed),
                _ => None,
            },
            ValidationError::InvalidIssuer | ValidationError::TenantNotAllowed => {
                Some(match cfg.issuer.diagnose(claims.tenant_id()?, error) {
                    IssuerDiagnosis::AnotherTenant => Diagnostic::TokenFromAnotherTenant,
                    IssuerDiagnosis::AnotherAuthority => Diagnostic::IssuerOfAnotherAuthority,
                })
            }
            ValidationError::UnknownKey => Some(Diagnostic::KeyNotInJwks),
            ValidationError::NotAnAccessToken => Some(Diagnostic::IdTokenInsteadOfAccessToken),
            _ => None,
        }
    }

    /// Logs a rejection with its diagnostic, and counts it (feature `metrics`). The diagnostic
    /// is computed only when it will be logged or counted, and at most once.
    fn rejected(&self, token: &str, error: ValidationError) -> ValidationError {
        let server = error.is_server_error();
        let log = !server && tracing::enabled!(target: "azad::validation", tracing::Level::INFO);
        let diagnostic =
            if !server && (log || self.inner.metrics.wants_diagnostic()) { self.diagnose(token, &error) } else { None };
        self.inner.metrics.rejected(&error, diagnostic);
        if server {
            // The outage itself is logged once, when it starts, by the key cache.
            tracing::debug!(target: "azad::validation", error = %error, "token could not be validated: no signing keys");
        } else if log {
            match diagnostic {
                Some(d) => {
                    tracing::info!(target: "azad::validation", error = %error, diagnostic = %d, "token rejected");
                }
                None => {
                    tracing::debug!(target: "azad::validation", error = %error, "token rejected");
                }
            }
        }
        error
    }

    /// The time tokens are checked against, in seconds since the Unix epoch: the configured
    /// clock, or the system's (read directly, without a call through the trait object).
    fn now(&self) -> i64 {
        match &self.inner.policy.clock {
            None => now_secs(),
            Some(clock) => unix_secs(clock.now()),
        }
    }

    /// Flushes the validated-token cache when the key set has changed; returns the current
    /// key-set generation.
    fn flush_on_key_change(&self, cache: &ValidatedTokens) -> u64 {
        let generation = self.inner.jwks.generation();
        // A plain load first: the swap (a write every core would fight over) only when the
        // generation moved.
        if self.inner.flushed_generation.load(Ordering::Acquire) != generation
            && self.inner.flushed_generation.swap(generation, Ordering::AcqRel) != generation
        {
            cache.invalidate_all();
        }
        generation
    }

    /// The checks that need no key: audience, lifetime and the configured tenant. Used only
    /// when keys are unavailable, to tell a token that can never be valid (401) from one that
    /// must wait for the keys (503). Answers nothing about the token's authenticity.
    fn refused_without_keys(&self, claims: &Claims, now: i64) -> Option<ValidationError> {
        if let Err(e) = self.audience_check(claims).and_then(|()| self.expiry_check(claims, now)) {
            return Some(e);
        }
        if !self.inner.policy.issuer.is_required_tenant(claims.tenant_id()) {
            return Some(ValidationError::InvalidIssuer);
        }
        None
    }

    /// Step 9: one of the token's audiences is ours.
    fn audience_check(&self, claims: &Claims) -> Result<(), ValidationError> {
        if claims.audiences().is_empty() {
            return Err(ValidationError::MissingClaim("aud"));
        }
        if !claims.audiences().iter().any(|a| self.inner.policy.audiences.contains(a)) {
            return Err(ValidationError::InvalidAudience);
        }
        Ok(())
    }

    /// Step 10, first half: `exp` is present and not past (with the leeway).
    fn expiry_check(&self, claims: &Claims, now: i64) -> Result<(), ValidationError> {
        let exp = claims.expires_at().ok_or(ValidationError::MissingClaim("exp"))?;
        if now > exp.saturating_add(self.leeway()) {
            return Err(ValidationError::Expired);
        }
        Ok(())
    }

    /// The configured clock-skew leeway, in seconds.
    fn leeway(&self) -> i64 {
        i64::try_from(self.inner.policy.leeway.as_secs()).unwrap_or(i64::MAX)
    }

    /// Cheap checks that decide whether an unknown `kid` may trigger a key refresh: only a
    /// token that could have come from our authority may cause network traffic.
    ///
    /// - the `kid` is made of the characters Entra's key ids use (base64url, which covers
    ///   hex thumbprints), at most 64 of them;
    /// - the header has no `nonce` (Microsoft Graph's access tokens carry one, and are never
    ///   for this API);
    /// - the issuer is one of ours and names an accepted tenant;
    /// - one of the audiences is ours.
    fn looks_right(&self, header: &JoseHeader<'_>, kid: &str, claims: &Claims, snapshot: &Snapshot) -> bool {
        let cfg = &self.inner.policy;
        let kid_ok = !kid.is_empty()
            && kid.len() <= 64
            && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let iss_ok = !claims.issuer().is_empty() && snapshot.issuers.matches(claims.issuer(), claims.tenant_id());
        let tenant_ok = cfg.issuer.tenant_check(&snapshot.issuers, claims.tenant_id()).is_ok();
        let aud_ok = claims.audiences().iter().any(|a| cfg.audiences.contains(a));
        kid_ok && !header.nonce && iss_ok && tenant_ok && aud_ok
    }

    /// Runs every check; on success also returns the generation of the key set that verified
    /// the signature.
    async fn check(&self, token: &str, now: i64) -> Result<(Claims, u64), ValidationError> {
        let cfg = &self.inner.policy;
        // 1. Size was checked by the caller. 2. Structure, header, claims.
        let segments = jwt::split(token)?;
        let (mut header_buf, mut header_spill) = ([0u8; 768], Vec::new());
        let header = JoseHeader::parse(jwt::decode_header(segments.header, &mut header_buf, &mut header_spill)?)?;
        let claims = Claims::from_json_owned(jwt::decode_segment(segments.payload, TokenPart::Payload)?)?;

        // 3. Algorithm from the allow-list; never guessed from the key.
        let alg = header
            .alg
            .as_deref()
            .and_then(SigningAlgorithm::from_name)
            .filter(|a| cfg.algorithms.contains(a))
            .ok_or(ValidationError::AlgorithmNotAllowed)?;
        // 4. Refused header parameters; a plain JWT access token (RFC 8725 §3.11): its `typ`
        // names a JWT, and no member declares nested, compressed or encrypted content.
        if let Some(p) = header.forbidden {
            return Err(ValidationError::ForbiddenHeader(p));
        }
        if !jwt::typ_ok(header.typ.as_deref()) {
            return Err(ValidationError::InvalidTokenType);
        }
        if let Some(member) = header.content {
            return Err(ValidationError::UnsupportedContent(member));
        }
        // 5. Key lookup (lock-free), refreshing on an unknown kid only if the token looks right.
        let kid = header.kid.as_deref().filter(|k| jwt::kid_shape_ok(k)).ok_or(ValidationError::InvalidKeyId)?;
        let seen = self.inner.jwks.attempts();
        // Without keys, a token that can never be valid is still refused as such (401), so its
        // client does not retry it through the outage; any other token waits (503).
        let Ok(mut snapshot) = self.inner.jwks.snapshot().await else {
            return Err(self.refused_without_keys(&claims, now).unwrap_or(ValidationError::KeysUnavailable));
        };
        // A family whose metadata has not loaded yet (the v1.0 document of a custom host) is
        // an outage for its tokens only.
        if snapshot.issuer_pending(claims.issuer(), claims.tenant_id()) {
            return Err(ValidationError::KeysUnavailable);
        }
        if snapshot.keys.get(kid).is_none() {
            // The key may be among the app-specific keys that could not be loaded.
            if snapshot.app_keys_pending {
                return Err(ValidationError::KeysUnavailable);
            }
            if !self.looks_right(&header, kid, &claims, &snapshot) {
                return Err(ValidationError::UnknownKey);
            }
            match self.inner.jwks.refresh_for_unknown_kid(seen).await {
                Some(s) => snapshot = s,
                None => return Err(ValidationError::UnknownKey),
            }
        }
        let candidates = match snapshot.keys.get(kid) {
            Some(c) => c,
            // A key published during an outage cannot be learned yet: retry later.
            None if self.inner.jwks.in_outage() => {
                return Err(self.refused_without_keys(&claims, now).unwrap_or(ValidationError::KeysUnavailable));
            }
            None => return Err(ValidationError::UnknownKey),
        };

        // 6. Signature. Usually one key per kid; where a JWKS lists different keys under one
        // kid, each is tried (in an order that does not depend on the document), and the one
        // that verifies the signature is the token's key.
        let key = verify_with_candidates(candidates, alg, &segments)?;
        // 7. Issuer and tenant; 8. the key's own issuer, where the JWKS publishes one.
        let iss = claims.issuer();
        cfg.issuer.check(&snapshot.issuers, iss, claims.tenant_id(), key.issuer.as_deref())?;
        let entra = cfg.authority.is_entra();
        // 9. Audience.
        self.audience_check(&claims)?;
        // 10. Lifetime.
        self.expiry_check(&claims, now)?;
        if claims.not_before().is_some_and(|nbf| now.saturating_add(self.leeway()) < nbf) {
            return Err(ValidationError::NotYetValid);
        }
        // 11. Version: allowed, and (Entra) the version of the issuer: `…/v2.0` issues 2.0 tokens,
        // the v1.0 issuers (`https://sts.windows.net/{tid}/` ...) 1.0 tokens.
        if !cfg.token_versions.accepts(claims.version()) {
            return Err(ValidationError::VersionNotAllowed);
        }
        if entra {
            let ver = claims.version().ok_or(ValidationError::MissingClaim("ver"))?;
            let expected = if ver_is_v2(iss) { "2.0" } else { "1.0" };
            if ver != expected {
                return Err(ValidationError::VersionMismatch);
            }
        }
        // 12. An access token names its client application (`azp` in v2.0, `appid` in v1.0);
        // Entra's ID tokens carry neither. Then scopes or roles.
        if entra && !cfg.id_tokens {
            // The claim of the token's own version, and not empty.
            let client = if ver_is_v2(iss) { claims.azp() } else { claims.appid() };
            if client.is_none_or(str::is_empty) {
                return Err(ValidationError::NotAnAccessToken);
            }
        }
        if cfg.require_scopes_or_roles
            && claims.scopes().next().is_none()
            && !claims.roles().iter().any(|r| !r.is_empty())
        {
            return Err(ValidationError::NoScopesOrRoles);
        }
        // 13. Azure AD B2C: the user flow (policy) that issued the token is one of ours.
        if let Some(flows) = &cfg.b2c_user_flows {
            authorities::user_flow_check(&claims, flows)?;
        }
        let mut claims = claims;
        claims.set_authority(cfg.authority_name.clone());
        Ok((claims, snapshot.generation))
    }
}

/// `true` for a v2.0 Entra issuer (`…/v2.0`), whose tokens carry `ver` 2.0 and `azp`; v1.0
/// issuers' tokens carry `ver` 1.0 and `appid`.
fn ver_is_v2(iss: &str) -> bool {
    iss.ends_with("/v2.0")
}

/// Verifies the signature with the first candidate key that accepts it. A key whose `alg`
/// differs from the token's is not a candidate.
fn verify_with_candidates(
    candidates: &[Arc<crate::validation::jwks::SigningKey>],
    alg: SigningAlgorithm,
    segments: &jwt::Segments<'_>,
) -> Result<Arc<crate::validation::jwks::SigningKey>, ValidationError> {
    let mut outcome = ValidationError::AlgorithmNotAllowed;
    for key in candidates.iter().filter(|k| k.alg.is_none_or(|a| a == alg)) {
        // The key parsed once when the key set loaded; the same verification as
        // `jsonwebtoken::crypto::verify` (base64url without padding, the same aws-lc
        // algorithm), without building the key again for every token.
        let verified = match key.parsed.iter().find(|(a, _)| *a == alg) {
            Some((_, parsed)) => {
                // On the stack: an RSA signature is at most 1024 bytes (8192-bit keys); a
                // longer one is decoded on the heap, to be refused by the verification as before.
                let engine = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let mut buf = [0u8; 1024];
                match base64::Engine::decode_slice(engine, segments.signature, &mut buf) {
                    Ok(n) => Ok(parsed.verify_sig(segments.signing_input.as_bytes(), &buf[..n]).is_ok()),
                    Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                        match base64::Engine::decode(engine, segments.signature) {
                            Ok(signature) => {
                                Ok(parsed.verify_sig(segments.signing_input.as_bytes(), &signature).is_ok())
                            }
                            Err(_) => Err(()),
                        }
                    }
                    Err(base64::DecodeSliceError::DecodeError(_)) => Err(()),
                }
            }
            None => jsonwebtoken::crypto::verify(
                segments.signature,
                segments.signing_input.as_bytes(),
                &key.key,
                alg.to_jwt(),
            )
            .map_err(|_| ()),
        };
        match verified {
            Ok(true) => return Ok(key.clone()),
            Ok(false) if outcome == ValidationError::AlgorithmNotAllowed => outcome = ValidationError::InvalidSignature,
            Ok(false) => {}
            Err(_) => outcome = ValidationError::Malformed(TokenPart::Signature),
        }
    }
    Err(outcome)
}

mod authorities;

#[cfg(all(test, feature = "dev"))]
mod tests;

#[cfg(all(test, feature = "dev"))]
mod issuer_tests;
