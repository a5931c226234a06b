//! Metrics (feature `metrics`): what azad records through the [`metrics`](https://docs.rs/metrics)
//! facade, so the application chooses the exporter (Prometheus, OpenTelemetry/OTLP, StatsD...).
//!
//! Why the `metrics` facade rather than the OpenTelemetry API: it is one small crate (no
//! runtime, no SDK), a handle is registered once and then recording is one relaxed atomic add
//! on the exporter's own counter, and exporters exist for Prometheus
//! (`metrics-exporter-prometheus`) and for OpenTelemetry (`metrics-exporter-opentelemetry`), so
//! an application on either side loses nothing.
//!
//! # Installing a recorder
//!
//! Install the application's recorder **before** building the validator, the layer or the
//! token clients: azad registers its handles when those are built (and the rejection and
//! token-request handles on their first use), and a handle registered with no recorder
//! installed records nothing. With the feature on and no recorder, every hook is a call on a
//! no-op handle.
//!
//! ```
//! # #[cfg(feature = "dev")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use azad_core::{TokenValidator, dev::DevTenant};
//!
//! // 1. The application's exporter (here: whatever recorder it installs globally).
//! // metrics::set_global_recorder(recorder)?;
//! azad_core::metrics::describe(); // units and help texts, once
//! // 2. Then azad.
//! let tenant = DevTenant::start().await?;
//! let validator = TokenValidator::new(tenant.config_builder().authority_name("workforce").build()?);
//! validator.validate(&tenant.token().build()).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The metrics
//!
//! Names and units follow the Prometheus and OpenTelemetry conventions (`_total` for counters,
//! base units in the name: `_seconds`). No label carries a token, a user, a client or tenant
//! id, or anything else unbounded: every label value is one of the values listed here, except
//! `authority`, which is the name the application configured
//! ([`authority_name`](crate::config::AzureAdConfigBuilder::authority_name), or the name of the
//! authority in [`TokenValidator::authorities`](crate::TokenValidator::authorities); `default`
//! when none is given).
//!
//! | name | type | labels | what it counts |
//! | --- | --- | --- | --- |
//! | `azad_validations_total` | counter | `authority`, `outcome` = `accepted` | tokens accepted (from the validated-token cache or after full validation) |
//! | `azad_validations_total` | counter | `authority`, `outcome` = `rejected` (401) or `unavailable` (503), `reason`, `diagnostic` | tokens refused; `reason` is the [`ValidationError`](crate::ValidationError) variant in snake case (`expired`, `invalid_audience`, `keys_unavailable`...), `diagnostic` its server-side [`Diagnostic`](crate::Diagnostic) in snake case (`token_for_microsoft_graph`...) or `none` |
//! | `azad_validated_token_cache_requests_total` | counter | `authority`, `result` = `hit` \| `miss` | lookups in the validated-token cache (a hit skips every cryptographic check) |
//! | `azad_validated_token_cache_entries` | gauge | `authority` | entries in the validated-token cache, updated on each insert and by [`TokenValidator::update_metrics`](crate::TokenValidator::update_metrics) |
//! | `azad_key_refreshes_total` | counter | `authority`, `trigger` = `startup` \| `interval` \| `retry` \| `unknown_kid` \| `explicit`, `outcome` = `success` \| `partial` \| `failure` | fetches of discovery and signing keys: `startup` is the first load (first request or `warm_up`), `interval` the background refresh, `retry` a background attempt after a failure, `unknown_kid` a token naming a key not yet loaded, `explicit` a call of `JwksCache::refresh`; `partial` when the keys loaded but a part (v1.0 metadata, app-specific keys) did not |
//! | `azad_key_set_age_seconds` | gauge | `authority` | seconds since the key set was last loaded successfully; set at each refresh and by [`TokenValidator::update_metrics`](crate::TokenValidator::update_metrics) (call it before each scrape) |
//! | `azad_key_set_last_load_timestamp_seconds` | gauge | `authority` | Unix time of the last successful load (age = `time() - this`, exact between scrapes) |
//! | `azad_token_requests_total` | counter | `grant` = `client_credentials` \| `on_behalf_of` \| `refresh_token` \| `authorization_code` \| `device_code` \| `managed_identity`, `outcome` = `success` \| `error_response` \| `pending` \| `throttled` \| `transport_error` \| `invalid_response` \| `credential_error` \| `other_error` | requests to the token endpoint (or the managed identity endpoint), after retries; `pending` is the device code flow's `authorization_pending`/`slow_down`; `throttled` an HTTP 429 answer or a request refused locally inside a `Retry-After` window |
//! | `azad_token_request_duration_seconds` | histogram | `grant`, `outcome` (as above) | wall time of each token request, retries and back-off included (local throttle refusals, which send nothing, are not recorded) |
//! | `azad_token_requests_throttled_total` | counter | `grant`, `source` = `server` (HTTP 429 or 503 with `Retry-After`) \| `local` (refused inside the window, nothing sent) | throttled token requests |
//! | `azad_acquired_token_cache_requests_total` | counter | `cache` = `app` \| `on_behalf_of` \| `managed_identity` \| `signed_in_user`, `result` = `hit` \| `miss` | lookups in the acquired-token caches; a miss (or a refresh ahead of expiry) goes to the token endpoint |
//! | `azad_shared_cache_errors_total` | counter | `operation` = `get` \| `set` \| `delete` \| `lock` \| `unlock` | failed or timed-out calls of the [shared store](crate::store) (Redis); each one is served from memory or the identity endpoint instead |
//!
//! # Cost
//!
//! Every handle on a hot path (accepted tokens, cache hits and misses) is registered once,
//! when the validator is built; recording is then one relaxed atomic add on the exporter's
//! counter, with no lookup, lock, allocation or string formatting. Rejection handles (one per
//! reason and diagnostic) and token-request handles are registered on their first use and
//! kept. `BENCHMARKS.md` has the validated-token cache hit with a Prometheus recorder
//! installed and without.

#[cfg(feature = "metrics")]
pub use imp::describe;

pub(crate) use imp::{AcquiredCache, JwksMetrics, TokenMetrics, ValidationMetrics, shared_cache_error};

/// The name of the validations counter.
pub const VALIDATIONS_TOTAL: &str = "azad_validations_total";
/// The name of the validated-token cache lookups counter.
pub const VALIDATED_TOKEN_CACHE_REQUESTS_TOTAL: &str = "azad_validated_token_cache_requests_total";
/// The name of the validated-token cache size gauge.
pub const VALIDATED_TOKEN_CACHE_ENTRIES: &str = "azad_validated_token_cache_entries";
/// The name of the key refreshes counter.
pub const KEY_REFRESHES_TOTAL: &str = "azad_key_refreshes_total";
/// The name of the key-set age gauge, in seconds.
pub const KEY_SET_AGE_SECONDS: &str = "azad_key_set_age_seconds";
/// The name of the last key-set load gauge, in seconds since the Unix epoch.
pub const KEY_SET_LAST_LOAD_TIMESTAMP_SECONDS: &str = "azad_key_set_last_load_timestamp_seconds";
/// The name of the token requests counter.
pub const TOKEN_REQUESTS_TOTAL: &str = "azad_token_requests_total";
/// The name of the token request latency histogram, in seconds.
pub const TOKEN_REQUEST_DURATION_SECONDS: &str = "azad_token_request_duration_seconds";
/// The name of the throttled token requests counter.
pub const TOKEN_REQUESTS_THROTTLED_TOTAL: &str = "azad_token_requests_throttled_total";
/// The name of the acquired-token cache lookups counter.
pub const ACQUIRED_TOKEN_CACHE_REQUESTS_TOTAL: &str = "azad_acquired_token_cache_requests_total";

/// The name of the shared store (Redis) failures counter.
pub const SHARED_CACHE_ERRORS_TOTAL: &str = "azad_shared_cache_errors_total";

/// The `authority` label of a configuration that names none.
pub const DEFAULT_AUTHORITY_LABEL: &str = "default";

/// What triggered a key refresh (the `trigger` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    Startup,
    Interval,
    Retry,
    UnknownKid,
    Explicit,
}

/// How a key refresh ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    Success,
    Partial,
    Failure,
}

/// A token-endpoint grant (the `grant` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    ClientCredentials,
    OnBehalfOf,
    RefreshToken,
    AuthorizationCode,
    DeviceCode,
    ManagedIdentity,
}

impl Grant {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Self; 6] = [
        Self::ClientCredentials,
        Self::OnBehalfOf,
        Self::RefreshToken,
        Self::AuthorizationCode,
        Self::DeviceCode,
        Self::ManagedIdentity,
    ];

    /// The grant of a `grant` name used in the token client's logs.
    pub(crate) fn from_name(name: &str) -> Self {
        match name {
            "on_behalf_of" => Self::OnBehalfOf,
            "refresh_token" => Self::RefreshToken,
            "authorization_code" => Self::AuthorizationCode,
            "device_code" => Self::DeviceCode,
            "managed_identity" => Self::ManagedIdentity,
            _ => Self::ClientCredentials,
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::OnBehalfOf => "on_behalf_of",
            Self::RefreshToken => "refresh_token",
            Self::AuthorizationCode => "authorization_code",
            Self::DeviceCode => "device_code",
            Self::ManagedIdentity => "managed_identity",
        }
    }
}

/// The `reason` label of a rejection: the variant's name in snake case, and its index.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn reason(error: &crate::ValidationError) -> (usize, &'static str) {
    use crate::ValidationError as E;
    match error {
        E::TokenTooLarge => (0, "token_too_large"),
        E::Malformed(_) => (1, "malformed"),
        E::InvalidJsonText(..) => (2, "invalid_json_text"),
        E::DuplicateMember(_) => (3, "duplicate_member"),
        E::InvalidClaim(_) => (4, "invalid_claim"),
        E::AlgorithmNotAllowed => (5, "algorithm_not_allowed"),
        E::ForbiddenHeader(_) => (6, "forbidden_header"),
        E::InvalidTokenType => (7, "invalid_token_type"),
        E::UnsupportedContent(_) => (8, "unsupported_content"),
        E::InvalidKeyId => (9, "invalid_key_id"),
        E::KeysUnavailable => (10, "keys_unavailable"),
        E::UnknownKey => (11, "unknown_key"),
        E::InvalidSignature => (12, "invalid_signature"),
        E::MissingClaim(_) => (13, "missing_claim"),
        E::InvalidIssuer => (14, "invalid_issuer"),
        E::TenantNotAllowed => (15, "tenant_not_allowed"),
        E::InvalidTenantId => (16, "invalid_tenant_id"),
        E::KeyIssuerMismatch => (17, "key_issuer_mismatch"),
        E::InvalidAudience => (18, "invalid_audience"),
        E::Expired => (19, "expired"),
        E::NotYetValid => (20, "not_yet_valid"),
        E::VersionNotAllowed => (21, "version_not_allowed"),
        E::VersionMismatch => (22, "version_mismatch"),
        E::NotAnAccessToken => (23, "not_an_access_token"),
        E::NoScopesOrRoles => (24, "no_scopes_or_roles"),
    }
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const REASONS: usize = 25;

/// The `diagnostic` label: the [`Diagnostic`](crate::Diagnostic) in snake case, and its index.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn diagnostic(d: Option<crate::Diagnostic>) -> (usize, &'static str) {
    use crate::Diagnostic as D;
    match d {
        None => (0, "none"),
        Some(D::TokenForMicrosoftGraph) => (1, "token_for_microsoft_graph"),
        Some(D::TokenForAnotherAudience) => (2, "token_for_another_audience"),
        Some(D::V1TokenWhereOnlyV2Allowed) => (3, "v1_token_where_only_v2_allowed"),
        Some(D::V2TokenWhereOnlyV1Allowed) => (4, "v2_token_where_only_v1_allowed"),
        Some(D::TokenFromAnotherTenant) => (5, "token_from_another_tenant"),
        Some(D::IssuerOfAnotherAuthority) => (6, "issuer_of_another_authority"),
        Some(D::KeyNotInJwks) => (7, "key_not_in_jwks"),
        Some(D::IdTokenInsteadOfAccessToken) => (8, "id_token_instead_of_access_token"),
    }
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const DIAGNOSTICS: usize = 9;

/// The `outcome` label of a token request, from its result.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn token_outcome<T>(result: &Result<T, crate::TokenError>) -> (usize, &'static str) {
    use crate::TokenError as E;
    match result {
        Ok(_) => (0, "success"),
        Err(E::ServerResponse(e)) if e.status == 429 => (3, "throttled"),
        Err(E::ServerResponse(e)) if matches!(e.error.as_str(), "authorization_pending" | "slow_down") => {
            (2, "pending")
        }
        Err(E::ServerResponse(_)) => (1, "error_response"),
        Err(E::Throttled { .. }) => (3, "throttled"),
        Err(E::Request(_)) => (4, "transport_error"),
        Err(E::Parse { .. }) => (5, "invalid_response"),
        Err(E::Credential(_)) => (6, "credential_error"),
        Err(_) => (7, "other_error"),
    }
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const TOKEN_OUTCOMES: usize = 8;

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use metrics::{Counter, Gauge, Histogram, SharedString, Unit, counter, gauge, histogram};

    use super::{
        DIAGNOSTICS, Grant, REASONS, RefreshOutcome, TOKEN_OUTCOMES, Trigger, diagnostic, reason, token_outcome,
    };
    use crate::error::{TokenError, ValidationError};

    /// Registers the unit and help text of every azad metric with the installed recorder.
    /// Call it once, after installing the recorder (exporters show the help text; OTLP
    /// exporters also use the unit).
    pub fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            super::VALIDATIONS_TOTAL,
            Unit::Count,
            "Access tokens validated, by outcome and rejection reason"
        );
        describe_counter!(
            super::VALIDATED_TOKEN_CACHE_REQUESTS_TOTAL,
            Unit::Count,
            "Lookups in the validated-token cache, by result"
        );
        describe_gauge!(super::VALIDATED_TOKEN_CACHE_ENTRIES, Unit::Count, "Entries in the validated-token cache");
        describe_counter!(super::KEY_REFRESHES_TOTAL, Unit::Count, "Signing key refreshes, by trigger and outcome");
        describe_gauge!(super::KEY_SET_AGE_SECONDS, Unit::Seconds, "Seconds since the signing keys were last loaded");
        describe_gauge!(
            super::KEY_SET_LAST_LOAD_TIMESTAMP_SECONDS,
            Unit::Seconds,
            "Unix time of the last successful signing key load"
        );
        describe_counter!(super::TOKEN_REQUESTS_TOTAL, Unit::Count, "Token endpoint requests, by grant and outcome");
        describe_histogram!(
            super::TOKEN_REQUEST_DURATION_SECONDS,
            Unit::Seconds,
            "Token endpoint request latency, retries included"
        );
        describe_counter!(super::TOKEN_REQUESTS_THROTTLED_TOTAL, Unit::Count, "Throttled token requests");
        describe_counter!(
            super::ACQUIRED_TOKEN_CACHE_REQUESTS_TOTAL,
            Unit::Count,
            "Lookups in the acquired-token caches, by result"
        );
        describe_counter!(
            super::SHARED_CACHE_ERRORS_TOTAL,
            Unit::Count,
            "Failed or timed-out calls of the shared token store, by operation"
        );
    }

    /// A shared store call failed (`operation`: one of a fixed set of names).
    pub(crate) fn shared_cache_error(operation: &'static str) {
        counter!(super::SHARED_CACHE_ERRORS_TOTAL, "operation" => operation).increment(1);
    }

    /// Validation handles of one authority.
    pub(crate) struct ValidationMetrics {
        authority: SharedString,
        accepted: Counter,
        hit: Counter,
        miss: Counter,
        entries: Gauge,
        rejected: Box<[OnceLock<Counter>]>,
    }

    impl ValidationMetrics {
        pub(crate) fn new(authority: &str) -> Self {
            let authority = SharedString::from(authority.to_owned());
            let a = authority.clone();
            Self {
                accepted: counter!(super::VALIDATIONS_TOTAL, "authority" => a.clone(), "outcome" => "accepted"),
                hit: counter!(super::VALIDATED_TOKEN_CACHE_REQUESTS_TOTAL, "authority" => a.clone(), "result" => "hit"),
                miss: counter!(super::VALIDATED_TOKEN_CACHE_REQUESTS_TOTAL, "authority" => a.clone(), "result" => "miss"),
                entries: gauge!(super::VALIDATED_TOKEN_CACHE_ENTRIES, "authority" => a),
                rejected: (0..REASONS * DIAGNOSTICS).map(|_| OnceLock::new()).collect(),
                authority,
            }
        }

        /// A token served from the validated-token cache: a hit and an acceptance.
        #[inline]
        pub(crate) fn cache_hit(&self) {
            self.hit.increment(1);
            self.accepted.increment(1);
        }

        #[inline]
        pub(crate) fn cache_miss(&self) {
            self.miss.increment(1);
        }

        #[inline]
        pub(crate) fn accepted(&self) {
            self.accepted.increment(1);
        }

        /// Sets the entries gauge to `entries()` (counting takes every shard's read lock:
        /// called only when metrics are compiled in).
        pub(crate) fn cache_entries(&self, entries: impl FnOnce() -> u64) {
            #[allow(clippy::cast_precision_loss)]
            self.entries.set(entries() as f64);
        }

        /// `true`: the caller should compute the diagnostic for [`rejected`](Self::rejected).
        pub(crate) const fn wants_diagnostic(&self) -> bool {
            true
        }

        pub(crate) fn rejected(&self, error: &ValidationError, d: Option<crate::Diagnostic>) {
            let (r, r_label) = reason(error);
            let (d, d_label) = diagnostic(d);
            let outcome = if error.is_server_error() { "unavailable" } else { "rejected" };
            self.rejected[r * DIAGNOSTICS + d]
                .get_or_init(|| {
                    counter!(super::VALIDATIONS_TOTAL,
                        "authority" => self.authority.clone(), "outcome" => outcome,
                        "reason" => r_label, "diagnostic" => d_label)
                })
                .increment(1);
        }
    }

    /// Key-cache handles of one authority.
    pub(crate) struct JwksMetrics {
        authority: SharedString,
        refreshes: Box<[OnceLock<Counter>]>,
        age: Gauge,
        last_load: Gauge,
        /// Milliseconds after `created` of the last successful load; `u64::MAX` before it.
        loaded_ms: AtomicU64,
        created: Instant,
    }

    impl JwksMetrics {
        pub(crate) fn new(authority: &str) -> Self {
            let authority = SharedString::from(authority.to_owned());
            Self {
                age: gauge!(super::KEY_SET_AGE_SECONDS, "authority" => authority.clone()),
                last_load: gauge!(super::KEY_SET_LAST_LOAD_TIMESTAMP_SECONDS, "authority" => authority.clone()),
                refreshes: (0..5 * 3).map(|_| OnceLock::new()).collect(),
                loaded_ms: AtomicU64::new(u64::MAX),
                created: Instant::now(),
                authority,
            }
        }

        pub(crate) fn refreshed(&self, trigger: Trigger, outcome: RefreshOutcome) {
            let (t, t_label) = match trigger {
                Trigger::Startup => (0, "startup"),
                Trigger::Interval => (1, "interval"),
                Trigger::Retry => (2, "retry"),
                Trigger::UnknownKid => (3, "unknown_kid"),
                Trigger::Explicit => (4, "explicit"),
            };
            let (o, o_label) = match outcome {
                RefreshOutcome::Success => (0, "success"),
                RefreshOutcome::Partial => (1, "partial"),
                RefreshOutcome::Failure => (2, "failure"),
            };
            self.refreshes[t * 3 + o]
                .get_or_init(|| {
                    counter!(super::KEY_REFRESHES_TOTAL,
                        "authority" => self.authority.clone(), "trigger" => t_label, "outcome" => o_label)
                })
                .increment(1);
            if outcome != RefreshOutcome::Failure {
                let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
                self.loaded_ms.store(ms, Ordering::Relaxed);
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                self.last_load.set(now);
            }
            self.update_age();
        }

        /// Sets the key-set age gauge to the time since the last successful load.
        pub(crate) fn update_age(&self) {
            let ms = self.loaded_ms.load(Ordering::Relaxed);
            if ms != u64::MAX {
                let since = self.created.elapsed().as_millis().saturating_sub(u128::from(ms));
                #[allow(clippy::cast_precision_loss)]
                self.age.set(since as f64 / 1000.0);
            }
        }
    }

    /// Which acquired-token cache (the `cache` label).
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum AcquiredCache {
        App,
        OnBehalfOf,
        ManagedIdentity,
        SignedInUser,
    }

    /// Token-request handles, registered on first use.
    pub(crate) struct TokenMetrics {
        requests: Box<[OnceLock<Counter>]>,
        durations: Box<[OnceLock<Histogram>]>,
        throttled: Box<[OnceLock<Counter>]>,
        caches: Box<[OnceLock<Counter>]>,
    }

    impl TokenMetrics {
        pub(crate) fn new() -> Self {
            let cells = |n: usize| (0..n).map(|_| OnceLock::new()).collect();
            Self {
                requests: cells(Grant::ALL.len() * TOKEN_OUTCOMES),
                durations: (0..Grant::ALL.len() * TOKEN_OUTCOMES).map(|_| OnceLock::new()).collect(),
                throttled: cells(Grant::ALL.len() * 2),
                caches: cells(4 * 2),
            }
        }

        /// A token request ended after `started` with `result`.
        pub(crate) fn request<T>(&self, grant: Grant, started: Instant, result: &Result<T, TokenError>) {
            let g = grant as usize;
            let (o, o_label) = token_outcome(result);
            let g_label = grant.label();
            self.requests[g * TOKEN_OUTCOMES + o]
                .get_or_init(|| counter!(super::TOKEN_REQUESTS_TOTAL, "grant" => g_label, "outcome" => o_label))
                .increment(1);
            let local = matches!(result, Err(TokenError::Throttled { .. }));
            if !local {
                self.durations[g * TOKEN_OUTCOMES + o]
                    .get_or_init(
                        || histogram!(super::TOKEN_REQUEST_DURATION_SECONDS, "grant" => g_label, "outcome" => o_label),
                    )
                    .record(started.elapsed().as_secs_f64());
            }
            let source = match result {
                Err(TokenError::Throttled { .. }) => Some((1, "local")),
                Err(TokenError::ServerResponse(e))
                    if e.status == 429 || (e.status == 503 && e.retry_after.is_some()) =>
                {
                    Some((0, "server"))
                }
                _ => None,
            };
            if let Some((s, s_label)) = source {
                self.throttled[g * 2 + s]
                    .get_or_init(
                        || counter!(super::TOKEN_REQUESTS_THROTTLED_TOTAL, "grant" => g_label, "source" => s_label),
                    )
                    .increment(1);
            }
        }

        /// A lookup in an acquired-token cache: `hit` when served without a request.
        pub(crate) fn cache(&self, cache: AcquiredCache, hit: bool) {
            let (c, c_label) = match cache {
                AcquiredCache::App => (0, "app"),
                AcquiredCache::OnBehalfOf => (1, "on_behalf_of"),
                AcquiredCache::ManagedIdentity => (2, "managed_identity"),
                AcquiredCache::SignedInUser => (3, "signed_in_user"),
            };
            let (h, h_label) = if hit { (0, "hit") } else { (1, "miss") };
            self.caches[c * 2 + h]
                .get_or_init(
                    || counter!(super::ACQUIRED_TOKEN_CACHE_REQUESTS_TOTAL, "cache" => c_label, "result" => h_label),
                )
                .increment(1);
        }
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code)]
mod imp {
    //! Without the feature: the same hooks, doing nothing (and compiled away).

    use std::time::Instant;

    use super::{Grant, RefreshOutcome, Trigger};
    use crate::error::{TokenError, ValidationError};

    pub(crate) struct ValidationMetrics;

    impl ValidationMetrics {
        pub(crate) fn new(_authority: &str) -> Self {
            Self
        }
        #[inline]
        pub(crate) fn cache_hit(&self) {}
        #[inline]
        pub(crate) fn cache_miss(&self) {}
        #[inline]
        pub(crate) fn accepted(&self) {}
        #[inline]
        pub(crate) fn cache_entries(&self, _entries: impl FnOnce() -> u64) {}
        #[inline]
        pub(crate) const fn wants_diagnostic(&self) -> bool {
            false
        }
        #[inline]
        pub(crate) fn rejected(&self, _error: &ValidationError, _d: Option<crate::Diagnostic>) {}
    }

    pub(crate) struct JwksMetrics;

    impl JwksMetrics {
        pub(crate) fn new(_authority: &str) -> Self {
            Self
        }
        #[inline]
        pub(crate) fn refreshed(&self, _trigger: Trigger, _outcome: RefreshOutcome) {}
        #[inline]
        pub(crate) fn update_age(&self) {}
    }

    #[derive(Debug, Clone, Copy)]
    pub(crate) enum AcquiredCache {
        App,
        OnBehalfOf,
        ManagedIdentity,
        SignedInUser,
    }

    pub(crate) struct TokenMetrics;

    impl TokenMetrics {
        pub(crate) fn new() -> Self {
            Self
        }
        #[inline]
        pub(crate) fn request<T>(&self, _grant: Grant, _started: Instant, _result: &Result<T, TokenError>) {}
        #[inline]
        pub(crate) fn cache(&self, _cache: AcquiredCache, _hit: bool) {}
    }

    #[inline]
    pub(crate) fn shared_cache_error(_operation: &'static str) {}
}
