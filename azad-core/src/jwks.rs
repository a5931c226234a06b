//! The signing-key cache: discovery metadata and JWKS behind lock-free reads, with safe refresh.
//!
//! - Readers load the current key set from an [`ArcSwap`](arc_swap) and never wait on a refresh.
//! - One fetch at a time: concurrent refreshes wait for the fetch in flight and use its result.
//! - An unknown `kid` may refresh the keys, at most once per
//!   [`min_refresh_interval`](crate::config::JwksPolicy::min_refresh_interval).
//! - A background task refreshes on an interval; a failed or garbage fetch never replaces the
//!   last-known-good keys. A cold start that cannot load any key fails closed.
//! - Conditional GETs (`If-None-Match`) keep refreshes cheap.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::config::{AzureAdConfig, JwksPolicy, SigningAlgorithm};
use crate::discovery::{Issuers, ProviderMetadata};
use crate::error::JwksError;
use crate::http::HttpClient;

/// One usable verification key, parsed once when the JWKS is loaded.
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    pub(crate) alg: Option<SigningAlgorithm>,
    /// The key's own `issuer` (Entra publishes one on v2.0 keys; may contain `{tenantid}`).
    pub(crate) issuer: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// A parsed key set: usable RSA verification keys by `kid`.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<SigningKey>>,
    fingerprint: u64,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    issuer: Option<String>,
}

/// Why a key was skipped (logged at debug level).
fn usable_key(raw: &RawJwk, allowed: &[SigningAlgorithm]) -> Result<(String, SigningKey, u64), &'static str> {
    if raw.kty.as_deref() != Some("RSA") {
        return Err("not an RSA key");
    }
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signing key");
    }
    if raw.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify")) {
        return Err("key_ops does not allow verify");
    }
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => match SigningAlgorithm::from_name(name) {
            Some(a) if allowed.contains(&a) => Some(a),
            _ => return Err("algorithm not allowed"),
        },
    };
    let kid = raw.kid.clone().filter(|k| crate::jwt::kid_shape_ok(k)).ok_or("no usable kid")?;
    let n = raw.n.as_deref().and_then(|n| URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()).ok_or("bad modulus")?;
    let e =
        raw.e.as_deref().and_then(|e| URL_SAFE_NO_PAD.decode(e.trim_end_matches('=')).ok()).ok_or("bad exponent")?;
    let n_trimmed: &[u8] = {
        let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
        &n[start..]
    };
    let bits = n_trimmed.len() * 8 - n_trimmed.first().map_or(8, |b| b.leading_zeros() as usize);
    if bits < 2048 {
        return Err("RSA modulus shorter than 2048 bits");
    }
    if bits > 8192 {
        return Err("RSA modulus longer than 8192 bits");
    }
    if e.is_empty() || e.len() > 4 {
        return Err("unsupported RSA exponent");
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&kid, n_trimmed, &e, &raw.issuer, raw.alg.as_deref()).hash(&mut h);
    let key = DecodingKey::from_rsa_raw_components(n_trimmed, &e);
    Ok((kid, SigningKey { key, alg, issuer: raw.issuer.clone() }, h.finish()))
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with the allowed algorithms.
    pub(crate) fn parse(
        body: &[u8],
        allowed: &[SigningAlgorithm],
        max_keys: usize,
        url: &str,
    ) -> Result<Self, JwksError> {
        let invalid = |reason: String| JwksError::InvalidDocument { url: url.to_owned(), document: "JWKS", reason };
        let doc: JwksDocument = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
        if doc.keys.len() > max_keys {
            return Err(JwksError::TooManyKeys { url: url.to_owned(), count: doc.keys.len(), max: max_keys });
        }
        let mut keys = HashMap::with_capacity(doc.keys.len());
        let mut prints = Vec::with_capacity(doc.keys.len());
        for value in doc.keys {
            let Ok(raw) = serde_json::from_value::<RawJwk>(value) else {
                tracing::debug!(target: "azad::jwks", url, "skipping a JWK that is not an object of strings");
                continue;
            };
            match usable_key(&raw, allowed) {
                Ok((kid, key, print)) => {
                    if keys.contains_key(&kid) {
                        tracing::warn!(target: "azad::jwks", url, kid, "duplicate kid in JWKS; keeping the first");
                        continue;
                    }
                    keys.insert(kid, Arc::new(key));
                    prints.push(print);
                }
                Err(why) => {
                    tracing::debug!(target: "azad::jwks", url, kid = raw.kid.as_deref().unwrap_or("-"), why, "skipping JWK");
                }
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { url: url.to_owned() });
        }
        prints.sort_unstable();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        prints.hash(&mut h);
        Ok(Self { keys, fingerprint: h.finish() })
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.get(kid)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// What the validator reads on every request: issuers and keys, replaced atomically.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) issuers: Issuers,
    pub(crate) keys: KeySet,
    pub(crate) metadata: Option<ProviderMetadata>,
    jwks_url: Option<String>,
    etag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    ColdStart,
    UnknownKid,
    Background,
    Explicit,
}

struct Inner {
    authority: crate::Authority,
    client_id: String,
    algorithms: Vec<SigningAlgorithm>,
    app_specific: bool,
    policy: JwksPolicy,
    http: Option<Arc<dyn HttpClient>>,
    is_static: bool,
    current: ArcSwapOption<Snapshot>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Completed fetch attempts, successful or not.
    attempts: AtomicU64,
    generation: AtomicU64,
    last_on_demand: Mutex<Option<Instant>>,
    last_failure: Mutex<Option<(Instant, JwksError)>>,
    background: OnceLock<()>,
}

/// The cache of an authority's signing keys and issuers. Cheap to clone (an `Arc`).
///
/// Built by [`TokenValidator`](crate::TokenValidator); exposed for warm-up, explicit refresh
/// and monitoring.
#[derive(Clone)]
#[must_use]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.inner.current.load();
        f.debug_struct("JwksCache")
            .field("authority", &self.inner.authority.url())
            .field("static", &self.inner.is_static)
            .field("keys", &snap.as_ref().map(|s| s.keys.len()))
            .field("generation", &self.generation())
            .finish()
    }
}

impl JwksCache {
    /// A cache for the configured authority (or static key set). Nothing is fetched yet.
    pub fn new(config: &AzureAdConfig) -> Self {
        let is_static = config.static_jwks.is_some();
        let current = config.static_jwks.as_ref().map(|s| {
            let keys = KeySet::parse(s.json.as_bytes(), &config.algorithms, config.jwks_policy.max_keys, "static JWKS")
                .expect("static JWKS is validated when the configuration is built");
            Arc::new(Snapshot {
                issuers: Issuers { accepted: s.issuers.clone(), v2: s.issuers.first().cloned(), tenant_id: None },
                keys,
                metadata: None,
                jwks_url: None,
                etag: None,
            })
        });
        let inner = Inner {
            authority: config.authority.clone(),
            client_id: config.client_id.clone(),
            algorithms: config.algorithms.clone(),
            app_specific: config.app_specific_signing_keys,
            policy: config.jwks_policy,
            http: if is_static { None } else { config.http_client() },
            is_static,
            generation: AtomicU64::new(u64::from(is_static)),
            current: ArcSwapOption::new(current),
            refresh_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_on_demand: Mutex::new(None),
            last_failure: Mutex::new(None),
            background: OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Loads metadata and keys now, so a server can fail fast at start-up. Returns at once if
    /// keys are already loaded.
    ///
    /// # Errors
    ///
    /// The [`JwksError`] of the failed fetch.
    pub async fn warm_up(&self) -> Result<(), JwksError> {
        if self.inner.current.load().is_some() {
            return Ok(());
        }
        self.fetch_coalesced(Reason::ColdStart, self.inner.attempts.load(Ordering::Acquire)).await.map(drop)
    }

    /// Refreshes metadata and keys now (ignoring the minimum interval). The last-known-good keys
    /// stay in place if the fetch fails.
    ///
    /// # Errors
    ///
    /// The [`JwksError`] of the failed fetch.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        if self.inner.is_static {
            return Ok(());
        }
        self.fetch_coalesced(Reason::Explicit, self.inner.attempts.load(Ordering::Acquire)).await.map(drop)
    }

    /// Number of usable keys currently loaded (0 before the first load).
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.inner.current.load().as_ref().map_or(0, |s| s.keys.len())
    }

    /// The key ids currently loaded.
    #[must_use]
    pub fn key_ids(&self) -> Vec<String> {
        self.inner.current.load().as_ref().map(|s| s.keys.kids().map(str::to_owned).collect()).unwrap_or_default()
    }

    /// Increments whenever the key set changes; 0 before the first load.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The provider metadata from discovery, once loaded.
    #[must_use]
    pub fn metadata(&self) -> Option<ProviderMetadata> {
        self.inner.current.load().as_ref().and_then(|s| s.metadata.clone())
    }

    /// The current snapshot, without waiting.
    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        self.inner.current.load_full()
    }

    /// The current snapshot, loading it on a cold start. Fails closed when nothing can be loaded.
    pub(crate) async fn snapshot(&self) -> Result<Arc<Snapshot>, JwksError> {
        if let Some(s) = self.inner.current.load_full() {
            return Ok(s);
        }
        let seen = self.inner.attempts.load(Ordering::Acquire);
        self.fetch_coalesced(Reason::ColdStart, seen).await
    }

    /// Called when a token names a `kid` that is not loaded (after the cheap checks passed).
    /// Refreshes at most once per minimum interval; concurrent callers share one fetch.
    pub(crate) async fn refresh_for_unknown_kid(&self, seen_attempts: u64) -> Option<Arc<Snapshot>> {
        if self.inner.is_static {
            return self.current();
        }
        self.fetch_coalesced(Reason::UnknownKid, seen_attempts).await.ok().or_else(|| self.current())
    }

    pub(crate) fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Acquire)
    }

    async fn fetch_coalesced(&self, reason: Reason, seen_attempts: u64) -> Result<Arc<Snapshot>, JwksError> {
        let inner = &self.inner;
        let _guard = inner.refresh_lock.lock().await;
        let last_error =
            || inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, e)| e.clone());
        // Another caller completed a fetch while we waited: share its outcome.
        if inner.attempts.load(Ordering::Acquire) != seen_attempts {
            return match (inner.current.load_full(), reason) {
                (Some(s), _) => Ok(s),
                (None, _) => Err(last_error().unwrap_or(JwksError::NoTransport)),
            };
        }
        let now = Instant::now();
        match reason {
            Reason::ColdStart => {
                if let Some(s) = inner.current.load_full() {
                    return Ok(s);
                }
                let recent = inner
                    .last_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .filter(|(at, _)| now.duration_since(*at) < inner.policy.retry_interval)
                    .map(|(_, e)| e.clone());
                if let Some(e) = recent {
                    return Err(e);
                }
            }
            Reason::UnknownKid => {
                let mut last = inner.last_on_demand.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| now.duration_since(t) < inner.policy.min_refresh_interval) {
                    return inner.current.load_full().ok_or_else(|| last_error().unwrap_or(JwksError::NoTransport));
                }
                *last = Some(now);
            }
            Reason::Background | Reason::Explicit => {}
        }
        let result = self.fetch(reason).await;
        inner.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(snapshot) => {
                *inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.spawn_background();
                Ok(snapshot)
            }
            Err(e) => {
                tracing::warn!(
                    target: "azad::jwks",
                    authority = %inner.authority,
                    reason = ?reason,
                    error = %e,
                    cause = ?std::error::Error::source(&e).map(ToString::to_string),
                    keeping_last_known_good = inner.current.load().is_some(),
                    "signing key refresh failed"
                );
                *inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, e.clone()));
                Err(e)
            }
        }
    }

    #[tracing::instrument(level = "debug", target = "azad::jwks", skip(self), fields(authority = %self.inner.authority))]
    async fn fetch(&self, reason: Reason) -> Result<Arc<Snapshot>, JwksError> {
        let inner = &self.inner;
        let http = inner.http.as_deref().ok_or(JwksError::NoTransport)?;
        let previous = inner.current.load_full();
        // Discovery on a cold start and on the background interval; unknown-kid refreshes only
        // re-read the keys.
        let (issuers, metadata) = match (&previous, reason) {
            (Some(p), Reason::UnknownKid) if p.metadata.is_some() => (p.issuers.clone(), p.metadata.clone()),
            _ => {
                let (meta, issuers) = crate::discovery::discover(&inner.authority, http).await?;
                (issuers, Some(meta))
            }
        };
        let jwks_uri = metadata.as_ref().map(|m| m.jwks_uri.clone()).ok_or(JwksError::NoTransport)?;
        let jwks_url = if inner.app_specific {
            let sep = if jwks_uri.contains('?') { '&' } else { '?' };
            format!("{jwks_uri}{sep}appid={}", inner.client_id)
        } else {
            jwks_uri
        };

        let mut request = http::Request::get(jwks_url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|_| JwksError::InvalidDocument {
                url: jwks_url.clone(),
                document: "JWKS",
                reason: "bad URL".into(),
            })?;
        let reusable = previous.as_ref().filter(|p| p.jwks_url.as_deref() == Some(jwks_url.as_str()));
        if let Some(etag) = reusable.and_then(|p| p.etag.as_deref())
            && let Ok(v) = http::HeaderValue::from_str(etag)
        {
            request.headers_mut().insert(http::header::IF_NONE_MATCH, v);
        }
        let response = http.send(request).await.map_err(|source| JwksError::Http { url: jwks_url.clone(), source })?;
        let etag = response.headers().get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);

        let (keys, changed) = if response.status() == http::StatusCode::NOT_MODIFIED {
            if reusable.is_none() {
                return Err(JwksError::Status { url: jwks_url, status: 304 });
            };
            (None, false)
        } else if response.status() == http::StatusCode::OK {
            let keys = KeySet::parse(response.body(), &inner.algorithms, inner.policy.max_keys, &jwks_url)?;
            let changed = previous.as_ref().is_none_or(|p| p.keys.fingerprint != keys.fingerprint);
            (Some(keys), changed)
        } else {
            return Err(JwksError::Status { url: jwks_url, status: response.status().as_u16() });
        };

        let generation = if changed {
            inner.generation.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            inner.generation.load(Ordering::Acquire)
        };
        let keys = match keys {
            Some(k) if changed => k,
            // Unchanged: keep the already-parsed keys (the Arc'd entries are reused).
            _ => {
                let prev = previous.as_ref().expect("unchanged implies a previous snapshot");
                KeySet { keys: prev.keys.keys.clone(), fingerprint: prev.keys.fingerprint }
            }
        };
        if changed {
            tracing::info!(target: "azad::jwks", url = %jwks_url, keys = keys.len(), generation, "signing keys loaded");
        }
        let snapshot = Arc::new(Snapshot { issuers, keys, metadata, jwks_url: Some(jwks_url), etag });
        inner.current.store(Some(snapshot.clone()));
        Ok(snapshot)
    }

    fn spawn_background(&self) {
        if self.inner.is_static || self.inner.background.get().is_some() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.background.set(()).is_err() {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let policy = self.inner.policy;
        handle.spawn(async move {
            let mut delay = policy.refresh_interval;
            loop {
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = Self { inner };
                let seen = cache.attempts();
                delay = match cache.fetch_coalesced(Reason::Background, seen).await {
                    Ok(_) => policy.refresh_interval,
                    Err(_) => policy.retry_interval.max(Duration::from_secs(1)),
                };
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(kid: &str, bits: usize) -> serde_json::Value {
        // A syntactically valid modulus of the requested size (not a real key: parsing only).
        let mut n = vec![0xC5u8; bits / 8];
        n[0] = 0xC5;
        serde_json::json!({"kty": "RSA", "use": "sig", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    }

    const RS: &[SigningAlgorithm] = &[SigningAlgorithm::RS256];

    #[test]
    fn unusable_keys_are_skipped() {
        let mut ec = rsa_jwk("ec", 2048);
        ec["kty"] = "EC".into();
        let mut enc = rsa_jwk("enc", 2048);
        enc["use"] = "enc".into();
        let mut hs = rsa_jwk("hs", 2048);
        hs["alg"] = "HS256".into();
        let mut ps = rsa_jwk("ps", 2048);
        ps["alg"] = "PS256".into();
        let mut rs = rsa_jwk("rs", 2048);
        rs["alg"] = "RS256".into();
        let mut no_kid = rsa_jwk("x", 2048);
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut ops = rsa_jwk("ops", 2048);
        ops["key_ops"] = serde_json::json!(["encrypt"]);
        let doc = serde_json::json!({"keys": [
            rsa_jwk("good", 2048), rsa_jwk("small", 1024), ec, enc, hs, ps, rs, no_kid, ops, "junk", rsa_jwk("big", 4096)
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes(), RS, 100, "u").unwrap();
        let mut kids: Vec<_> = set.kids().collect();
        kids.sort_unstable();
        assert_eq!(kids, ["big", "good", "rs"]);
    }

    #[test]
    fn garbage_and_oversized_documents_are_refused() {
        assert!(matches!(KeySet::parse(b"<html>", RS, 100, "u"), Err(JwksError::InvalidDocument { .. })));
        assert!(matches!(KeySet::parse(b"{\"keys\":{}}", RS, 100, "u"), Err(JwksError::InvalidDocument { .. })));
        assert!(matches!(KeySet::parse(b"{\"keys\":[]}", RS, 100, "u"), Err(JwksError::NoUsableKeys { .. })));
        let many: Vec<_> = (0..5).map(|i| rsa_jwk(&format!("k{i}"), 2048)).collect();
        let doc = serde_json::json!({ "keys": many }).to_string();
        assert!(matches!(
            KeySet::parse(doc.as_bytes(), RS, 4, "u"),
            Err(JwksError::TooManyKeys { count: 5, max: 4, .. })
        ));
    }

    #[test]
    fn fingerprint_tracks_content_not_order() {
        let a = serde_json::json!({"keys": [rsa_jwk("a", 2048), rsa_jwk("b", 2048)]}).to_string();
        let b = serde_json::json!({"keys": [rsa_jwk("b", 2048), rsa_jwk("a", 2048)]}).to_string();
        let c = serde_json::json!({"keys": [rsa_jwk("a", 2048)]}).to_string();
        let fa = KeySet::parse(a.as_bytes(), RS, 10, "u").unwrap().fingerprint;
        assert_eq!(fa, KeySet::parse(b.as_bytes(), RS, 10, "u").unwrap().fingerprint);
        assert_ne!(fa, KeySet::parse(c.as_bytes(), RS, 10, "u").unwrap().fingerprint);
    }
}
