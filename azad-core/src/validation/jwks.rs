//! The signing-key cache: discovery metadata and JWKS behind lock-free reads, with safe refresh.
//!
//! - Readers load the current key set from an [`ArcSwap`](arc_swap) and never wait on a refresh.
//! - One fetch at a time: concurrent refreshes wait for the fetch in flight and use its result.
//! - An unknown `kid` may refresh the keys, at most once per
//!   [`min_refresh_interval`](JwksPolicy::min_refresh_interval).
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

use std::path::PathBuf;

use crate::authority::Authority;
use crate::error::{ConfigError, JwksError};
use crate::http::HttpClient;
use crate::validation::discovery::ProviderMetadata;
use crate::validation::issuer::{Issuers, template_matches};
use crate::validation::jwt::SigningAlgorithm;

/// How the signing-key cache refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksPolicy {
    /// Background refresh interval (default 12 hours, like Microsoft.IdentityModel).
    pub refresh_interval: Duration,
    /// Minimum time between refreshes caused by an unknown `kid` (default 5 minutes).
    pub min_refresh_interval: Duration,
    /// Wait after a failed fetch before the next attempt (default 10 seconds, at least 10 ms),
    /// doubled on each further failure up to 5 minutes (or this interval, if longer).
    pub retry_interval: Duration,
    /// Maximum number of keys a JWKS may hold; a larger document is refused (default 100).
    pub max_keys: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(12 * 3600),
            min_refresh_interval: Duration::from_secs(300),
            retry_interval: Duration::from_secs(10),
            max_keys: 100,
        }
    }
}

/// A JWKS document given up front, with the issuer(s) its tokens carry: no network at all.
///
/// For air-gapped deployments and for replaying recorded tokens. An issuer may contain
/// `{tenantid}` to accept any tenant (combine with an allow-list); with a tenant id configured,
/// only that tenant's tokens are accepted, and an issuer naming another tenant id fails the
/// build with [`ConfigError::Conflict`].
#[derive(Clone, PartialEq, Eq)]
pub struct StaticJwks {
    pub(crate) json: String,
    pub(crate) issuers: Vec<String>,
}

impl StaticJwks {
    /// A static key set from JWKS JSON text.
    #[must_use]
    pub fn from_json(json: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self { json: json.into(), issuers: vec![issuer.into()] }
    }

    /// Reads a JWKS file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] (`static_jwks`) if the file cannot be read.
    pub fn from_file(path: impl Into<PathBuf>, issuer: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.into();
        let json = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::invalid("static_jwks", format!("cannot read {}: {e}", path.display())))?;
        Ok(Self::from_json(json, issuer))
    }

    /// The issuers its tokens carry (templates may hold `{tenantid}`).
    #[must_use]
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Accepts one more issuer (for example both the v1 and v2 issuer of a tenant).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }
}

/// Everything the signing-key cache needs: the authority and application whose keys it loads,
/// the accepted algorithms, the key source and refresh policy, and the HTTP client. Built by
/// [`AzureAdConfig::jwks_options`](crate::AzureAdConfig::jwks_options).
#[derive(Clone)]
pub struct JwksOptions {
    pub(crate) authority: Authority,
    pub(crate) client_id: String,
    pub(crate) algorithms: Vec<SigningAlgorithm>,
    pub(crate) app_specific_signing_keys: bool,
    pub(crate) static_jwks: Option<StaticJwks>,
    pub(crate) policy: JwksPolicy,
    pub(crate) http_client: Option<Arc<dyn HttpClient>>,
    pub(crate) authority_name: Option<Arc<str>>,
}

impl fmt::Debug for JwksOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksOptions")
            .field("authority", &self.authority.url())
            .field("algorithms", &self.algorithms)
            .field("app_specific_signing_keys", &self.app_specific_signing_keys)
            .field("static_jwks", &self.static_jwks)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StaticJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticJwks").field("bytes", &self.json.len()).field("issuers", &self.issuers).finish()
    }
}

/// One usable verification key, parsed once when the JWKS is loaded.
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    pub(crate) alg: Option<SigningAlgorithm>,
    /// The key's own `issuer` (Entra publishes one on v2.0 keys; may contain `{tenantid}`).
    pub(crate) issuer: Option<String>,
    /// A hash of everything above as published (kid, modulus, exponent, issuer, alg): two
    /// entries with equal prints are the same key.
    print: u64,
    /// A hash of the key material alone (modulus, exponent).
    material: u64,
    /// The key parsed into aws-lc once, for each allowed algorithm it may verify: a
    /// verification then skips the per-call key construction (and its allocations) of
    /// `jsonwebtoken::crypto::verify`, with the same aws-lc algorithms (RSA 2048–8192 bits).
    pub(crate) parsed: Vec<(SigningAlgorithm, aws_lc_rs::signature::ParsedPublicKey)>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// A parsed key set: usable RSA verification keys by `kid`.
///
/// A `kid` maps to one key, or to several when the JWKS publishes different key material
/// under one `kid` (RFC 7517 §4.5 only says a `kid` *should* be unique). Identical entries
/// are merged, and the candidates are kept in an order that does not depend on the order of
/// the document, so that the answer for a token never depends on it either: the validator
/// tries each candidate, like Microsoft.IdentityModel does.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySet {
    keys: HashMap<String, Vec<Arc<SigningKey>>>,
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

/// Smallest and largest accepted RSA modulus, in bits.
const MIN_MODULUS_BITS: usize = 2048;
const MAX_MODULUS_BITS: usize = 8192;
/// Longest base64url text of an accepted modulus (8192 bits, plus slack for padding).
const MAX_MODULUS_CHARS: usize = MAX_MODULUS_BITS / 6 + 8;
/// Longest accepted exponent, in octets (RSA public exponents in use are 65537 or 3).
const MAX_EXPONENT_OCTETS: usize = 4;

/// Why a JWK was skipped: `hostile` for numbers no honest key has (logged as a warning),
/// otherwise a key azad simply does not use (an EC key, an encryption key; logged at debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) reason: &'static str,
    pub(crate) hostile: bool,
}

const fn unused(reason: &'static str) -> Skip {
    Skip { reason, hostile: false }
}

const fn hostile(reason: &'static str) -> Skip {
    Skip { reason, hostile: true }
}

/// The number of significant bits of a big-endian unsigned integer without leading zero
/// octets; `None` for an empty one. Checked arithmetic: no input can overflow it.
fn bit_length(be: &[u8]) -> Option<usize> {
    let first = *be.first()?;
    let leading = usize::try_from(first.leading_zeros()).ok()?;
    be.len().checked_mul(8)?.checked_sub(leading)
}

/// Decodes a base64url JWK number (RFC 7518 §6.3.1: unsigned big-endian, the minimum number
/// of octets). `max_chars` bounds the text before anything is allocated.
fn decode_number(value: Option<&str>, max_chars: usize, what: &'static str) -> Result<Vec<u8>, Skip> {
    let text = value.ok_or(hostile(what))?;
    if text.len() > max_chars {
        return Err(hostile(what));
    }
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| hostile(what))
}

/// A usable key from a JWK, with the values that identify it (for merging identical entries).
struct Parsed {
    kid: String,
    key: SigningKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// Checks a JWK and builds its verification key. No arithmetic here can overflow or panic
/// on any input, in debug builds too.
fn usable_key(raw: &RawJwk, allowed: &[SigningAlgorithm]) -> Result<Parsed, Skip> {
    if raw.kty.as_deref() != Some("RSA") {
        return Err(unused("not an RSA key"));
    }
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(unused("not a signing key"));
    }
    if raw.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify")) {
        return Err(unused("key_ops does not allow verify"));
    }
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => match SigningAlgorithm::from_name(name) {
            Some(a) if allowed.contains(&a) => Some(a),
            _ => return Err(unused("algorithm not allowed")),
        },
    };
    let kid = raw.kid.clone().filter(|k| crate::validation::jwt::kid_shape_ok(k)).ok_or(unused("no usable kid"))?;
    let n = decode_number(raw.n.as_deref(), MAX_MODULUS_CHARS, "modulus is not base64url or too long")?;
    let e = decode_number(raw.e.as_deref(), 16, "exponent is not base64url or too long")?;
    // The modulus: not empty, not zero, no leading zero octets, odd, 2048 to 8192 bits.
    let n_bits = match bit_length(&n) {
        None => return Err(hostile("empty modulus")),
        Some(_) if n.iter().all(|b| *b == 0) => return Err(hostile("zero modulus")),
        Some(_) if n[0] == 0 => return Err(hostile("modulus with leading zero octets")),
        Some(bits) => bits,
    };
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(hostile("even modulus"));
    }
    if n_bits < MIN_MODULUS_BITS {
        return Err(hostile("RSA modulus shorter than 2048 bits"));
    }
    if n_bits > MAX_MODULUS_BITS {
        return Err(hostile("RSA modulus longer than 8192 bits"));
    }
    // The exponent: 1 to 4 octets, no leading zero octets, odd and at least 3.
    if e.is_empty() || e.len() > MAX_EXPONENT_OCTETS {
        return Err(hostile("RSA exponent empty or longer than 4 octets"));
    }
    if e[0] == 0 {
        return Err(hostile("RSA exponent with leading zero octets"));
    }
    let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e_value < 3 || e_value & 1 == 0 {
        return Err(hostile("RSA exponent is 0, 1 or even"));
    }
    let key = DecodingKey::from_rsa_raw_components(&n, &e);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&kid, &n, &e, &raw.issuer, raw.alg.as_deref()).hash(&mut h);
    let print = h.finish();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&n, &e).hash(&mut h);
    let material = h.finish();
    let der = rsa_public_key_der(&n, &e);
    let parsed = allowed
        .iter()
        .filter(|a| alg.is_none_or(|k| k == **a))
        .filter_map(|a| aws_lc_rs::signature::ParsedPublicKey::new(a.aws_lc_params(), &der).ok().map(|k| (*a, k)))
        .collect();
    Ok(Parsed { kid, key: SigningKey { key, alg, issuer: raw.issuer.clone(), print, material, parsed }, n, e })
}

/// An RSAPublicKey (RFC 8017 §A.1.1) in DER: `SEQUENCE { INTEGER n, INTEGER e }`, from the
/// big-endian octets of a modulus and an exponent checked by [`usable_key`] (no leading zero
/// octets, at most 8192 bits).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn integer(out: &mut Vec<u8>, value: &[u8]) {
        out.push(0x02);
        // A positive INTEGER whose first octet has its high bit set takes a leading zero.
        let pad = value.first().is_some_and(|b| b & 0x80 != 0);
        length(out, value.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with the allowed algorithms.
    ///
    /// Unusable entries are skipped (hostile numbers with a warning). Entries that repeat a
    /// `kid` with identical content are one key; different key material under one `kid` is
    /// kept as several candidates; the same key material under one `kid` with contradicting
    /// `alg` or `issuer` makes that `kid` ambiguous, and it is dropped with a warning.
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
        let mut by_kid: HashMap<String, Vec<Parsed>> = HashMap::with_capacity(doc.keys.len());
        for value in doc.keys {
            let Ok(raw) = serde_json::from_value::<RawJwk>(value) else {
                tracing::debug!(target: "azad::jwks", url, "skipping a JWK that is not an object of strings");
                continue;
            };
            match usable_key(&raw, allowed) {
                Ok(parsed) => {
                    let same_kid = by_kid.entry(parsed.kid.clone()).or_default();
                    let identical = same_kid.iter().any(|p| {
                        p.n == parsed.n
                            && p.e == parsed.e
                            && p.key.alg == parsed.key.alg
                            && p.key.issuer == parsed.key.issuer
                    });
                    if identical {
                        tracing::debug!(target: "azad::jwks", url, kid = parsed.kid, "identical JWK listed twice; one key");
                    } else {
                        same_kid.push(parsed);
                    }
                }
                Err(skip) => {
                    let kid = raw.kid.as_deref().unwrap_or("-");
                    if skip.hostile {
                        tracing::warn!(target: "azad::jwks", url, kid, why = skip.reason, "skipping a JWK with a hostile number");
                    } else {
                        tracing::debug!(target: "azad::jwks", url, kid, why = skip.reason, "skipping JWK");
                    }
                }
            }
        }
        let mut keys = HashMap::with_capacity(by_kid.len());
        let mut prints = Vec::new();
        for (kid, mut candidates) in by_kid {
            // The same key material twice under one kid, with different metadata: which `alg`
            // or `issuer` applies cannot be decided, so the kid is not used at all.
            let ambiguous = candidates
                .iter()
                .enumerate()
                .any(|(i, a)| candidates[i + 1..].iter().any(|b| a.n == b.n && a.e == b.e));
            if ambiguous {
                tracing::warn!(target: "azad::jwks", url, kid, "the same key is listed under one kid with different alg or issuer; kid ignored");
                continue;
            }
            // Candidates in content order (by modulus), never document order.
            candidates.sort_by(|a, b| (&a.n, &a.e).cmp(&(&b.n, &b.e)));
            if candidates.len() > 1 {
                tracing::warn!(target: "azad::jwks", url, kid, candidates = candidates.len(), "different keys under one kid; each is tried");
            }
            prints.extend(candidates.iter().map(|p| p.key.print));
            keys.insert(kid, candidates.into_iter().map(|p| Arc::new(p.key)).collect());
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { url: url.to_owned() });
        }
        prints.sort_unstable();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        prints.hash(&mut h);
        Ok(Self { keys, fingerprint: h.finish() })
    }

    /// The keys published under `kid`: one, or several candidates to try in turn.
    pub(crate) fn get(&self, kid: &str) -> Option<&[Arc<SigningKey>]> {
        self.keys.get(kid).map(Vec::as_slice)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// A hash of the whole set, independent of the order of its keys.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `true` if every key here is also in `other`, under the same `kid`, as the same key.
    pub(crate) fn is_subset_of(&self, other: &Self) -> bool {
        self.keys.iter().all(|(kid, keys)| {
            other.keys.get(kid).is_some_and(|theirs| keys.iter().all(|k| theirs.iter().any(|t| t.print == k.print)))
        })
    }

    /// The keys of several documents together (the tenant's and the app-specific JWKS, which
    /// republishes the tenant's keys). The same key in two documents counts once; different
    /// key material under one kid is kept as candidates; the same material with different
    /// metadata keeps the first document's (the tenant's).
    pub(crate) fn union(sets: &[&Self]) -> Self {
        let mut keys: HashMap<String, Vec<Arc<SigningKey>>> = HashMap::new();
        for set in sets {
            for (kid, candidates) in &set.keys {
                let mine = keys.entry(kid.clone()).or_default();
                for key in candidates {
                    if mine.iter().any(|k| k.print == key.print) {
                        continue;
                    }
                    if mine.iter().any(|k| k.material == key.material) {
                        tracing::warn!(target: "azad::jwks", kid, "two documents publish one key under one kid with different metadata; keeping the tenant's");
                        continue;
                    }
                    if !mine.is_empty() {
                        tracing::warn!(target: "azad::jwks", kid, "two documents publish different keys under one kid; each is tried");
                    }
                    mine.push(key.clone());
                }
                mine.sort_by_key(|k| k.print);
            }
        }
        let mut prints: Vec<u64> = keys.values().flatten().map(|k| k.print).collect();
        prints.sort_unstable();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        prints.hash(&mut h);
        Self { keys, fingerprint: h.finish() }
    }

    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// What the validator reads on every request: issuers and keys, replaced atomically as one
/// value together with the generation that names them.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Names this key set and issuer list. It increments whenever trust is withdrawn (a key
    /// removed or changed, an issuer dropped), never when keys are only added: a validated-token
    /// cache entry carries the generation of the very snapshot that verified it, so a retired
    /// key stops working at once and a rotation that only publishes a new key costs nothing.
    pub(crate) generation: u64,
    pub(crate) issuers: Issuers,
    /// Every usable key: the tenant's keys and, when configured, the app-specific ones.
    pub(crate) keys: KeySet,
    pub(crate) metadata: Option<ProviderMetadata>,
    /// Issuers (templates) of token families whose metadata has not loaded yet: their tokens
    /// are answered with [`KeysUnavailable`](crate::ValidationError::KeysUnavailable) (503)
    /// while the cache retries, instead of failing the other families too.
    pub(crate) pending_issuers: Vec<String>,
    /// App-specific signing keys are configured but not loaded: a `kid` missing from
    /// [`keys`](Self::keys) may be one of them, so it is an outage (503), not a bad token.
    pub(crate) app_keys_pending: bool,
    tenant_source: Option<Source>,
    app_source: Option<Source>,
}

impl Snapshot {
    /// `true` if the token's issuer belongs to a family whose metadata has not loaded.
    pub(crate) fn issuer_pending(&self, iss: &str, tid: Option<&str>) -> bool {
        self.pending_issuers.iter().any(|p| template_matches(p, tid, iss))
    }

    /// `true` if `self` trusts nothing that `previous` did not: every key of `previous` is
    /// still here with the same material, and every issuer it accepted still is.
    fn keeps_trust_of(&self, previous: &Self) -> bool {
        previous.keys.is_subset_of(&self.keys)
            && previous.issuers.accepted.iter().all(|i| self.issuers.accepted.contains(i))
            && previous.issuers.tenant_id == self.issuers.tenant_id
    }
}

/// One JWKS document as last loaded: its URL, validator and keys.
#[derive(Debug, Clone)]
struct Source {
    url: String,
    etag: Option<String>,
    keys: Arc<KeySet>,
}

/// Why a fetch was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    ColdStart,
    UnknownKid,
    Background,
    Explicit,
}

/// The parts of a refresh that can fail on their own, each logged once per outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The v2.0 discovery document and the tenant's JWKS: without them nothing validates.
    Keys,
    /// The v1.0 discovery document of a custom Entra host: v1.0 tokens only.
    V1Metadata,
    /// The app-specific JWKS (`jwks_uri?appid=`): tokens signed with app-specific keys only.
    AppKeys,
}

impl Part {
    const ALL: [Self; 3] = [Self::Keys, Self::V1Metadata, Self::AppKeys];

    fn index(self) -> usize {
        self as usize
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Keys => "discovery document and signing keys",
            Self::V1Metadata => "v1.0 discovery document (v1.0 tokens)",
            Self::AppKeys => "app-specific signing keys",
        }
    }
}

/// Failure bookkeeping: back-off between attempts and one log line per outage.
#[derive(Debug, Default)]
struct Health {
    /// Consecutive refreshes that left some part failing.
    failures: u32,
    /// No fetch (other than an explicit one) before this instant.
    next_attempt: Option<Instant>,
    /// The error of the last failed attempt of the whole key set.
    last_error: Option<JwksError>,
    /// For each [`Part`]: since when it fails and how many attempts failed.
    outages: [Option<(Instant, u32)>; 3],
}

/// Longest wait between two attempts while something fails.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

struct Inner {
    authority: Authority,
    client_id: String,
    algorithms: Vec<SigningAlgorithm>,
    app_specific: bool,
    policy: JwksPolicy,
    http: Option<Arc<dyn HttpClient>>,
    is_static: bool,
    current: ArcSwapOption<Snapshot>,
    /// The generation of `current`, readable with one atomic load (the validated-token
    /// cache's hit path reads it on every request). Raised (never lowered) *before* a snapshot
    /// is published: a reader may see a new generation with the old snapshot still current,
    /// which only makes entries of that snapshot miss; it never sees an old generation after a
    /// newer snapshot withdrew trust.
    generation: AtomicU64,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Completed fetch attempts, successful or not.
    attempts: AtomicU64,
    last_on_demand: Mutex<Option<Instant>>,
    health: Mutex<Health>,
    /// [`Health::next_attempt`] as milliseconds after `created`, readable without the lock
    /// (`u64::MAX` before the first attempt).
    next_attempt_ms: AtomicU64,
    created: Instant,
    /// The last attempt to load the tenant's keys failed (the outage is not over).
    keys_outage: std::sync::atomic::AtomicBool,
    background: OnceLock<()>,
    /// Metric handles (feature `metrics`; nothing otherwise).
    metrics: crate::metrics::JwksMetrics,
}

impl Inner {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The cache of an authority's signing keys and issuers. Cheap to clone (an `Arc`).
///
/// Built by [`TokenValidator`](crate::TokenValidator); exposed for warm-up, explicit refresh
/// and monitoring.
///
/// # Outages
///
/// - A failed refresh keeps the last-known-good keys and issuers.
/// - Each part degrades on its own: when the v1.0 discovery document of a custom Entra host, or
///   the app-specific JWKS, cannot be loaded, only the tokens that need it are answered with
///   [`KeysUnavailable`](crate::ValidationError::KeysUnavailable) (503); the others validate.
/// - While anything fails, a background task retries with exponential back-off (from
///   [`retry_interval`](JwksPolicy::retry_interval), doubling, at most 5
///   minutes), so a service started while the identity provider is down recovers by itself.
/// - Each outage is logged once at WARN when it starts (with its cause) and once at INFO when
///   it ends; the attempts in between log at DEBUG.
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
    pub fn new(config: JwksOptions) -> Self {
        let is_static = config.static_jwks.is_some();
        let current = config.static_jwks.as_ref().map(|s| {
            let keys = KeySet::parse(s.json.as_bytes(), &config.algorithms, config.policy.max_keys, "static JWKS")
                .expect("static JWKS is validated when the configuration is built");
            Arc::new(Snapshot {
                generation: 1,
                issuers: Issuers { accepted: s.issuers.clone(), v2: s.issuers.first().cloned(), tenant_id: None },
                keys,
                metadata: None,
                pending_issuers: Vec::new(),
                app_keys_pending: false,
                tenant_source: None,
                app_source: None,
            })
        });
        let inner = Inner {
            authority: config.authority,
            client_id: config.client_id,
            algorithms: config.algorithms,
            app_specific: config.app_specific_signing_keys,
            policy: config.policy,
            http: if is_static { None } else { config.http_client },
            is_static,
            generation: AtomicU64::new(current.as_ref().map_or(0, |s| s.generation)),
            current: ArcSwapOption::new(current),
            refresh_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_on_demand: Mutex::new(None),
            health: Mutex::new(Health::default()),
            next_attempt_ms: AtomicU64::new(u64::MAX),
            created: Instant::now(),
            keys_outage: std::sync::atomic::AtomicBool::new(false),
            background: OnceLock::new(),
            metrics: crate::metrics::JwksMetrics::new(
                config.authority_name.as_deref().unwrap_or(crate::metrics::DEFAULT_AUTHORITY_LABEL),
            ),
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
        self.fetch_coalesced(Reason::Explicit, self.inner.attempts.load(Ordering::Acquire)).await.map(drop)
    }

    /// Refreshes metadata and keys now (ignoring the minimum interval and the back-off). The
    /// last-known-good keys stay in place if the fetch fails.
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

    /// The generation of the current key set (one atomic load; during a refresh that
    /// withdraws trust it moves just before the new set is published, so it may be ahead of
    /// the set still in use for an instant, never behind): 0 before the first load, then
    /// incremented each
    /// time a refresh withdraws trust (removes or changes a key, drops an issuer). Adding keys
    /// keeps the generation.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// `true` while keys are loaded and every configured part (v1.0 metadata, app-specific keys)
    /// is too. A failing *refresh* of keys already loaded does not make it `false`: tokens of
    /// those keys keep validating on the last-known-good set (a readiness probe wants exactly
    /// that); such an outage is logged instead.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.inner.current.load().as_ref().is_some_and(|s| s.pending_issuers.is_empty() && !s.app_keys_pending)
    }

    /// How long until the next attempt to load what is missing (at least one second, at most
    /// 5 minutes). The layer sends it as the `Retry-After` of a 503 answered while keys are
    /// unavailable, capped there at [`MAX_RETRY_AFTER`](crate::challenge::MAX_RETRY_AFTER).
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        let inner = &self.inner;
        let wait = match inner.next_attempt_ms.load(Ordering::Relaxed) {
            u64::MAX => inner.policy.retry_interval,
            ms => (inner.created + Duration::from_millis(ms)).saturating_duration_since(Instant::now()),
        };
        wait.clamp(Duration::from_secs(1), MAX_BACKOFF)
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

    /// The current snapshot, loading it on a cold start. Fails closed when nothing can be
    /// loaded; during an outage, attempts are spaced by the back-off.
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

    /// `true` while the identity provider's keys cannot be fetched: a `kid` that is not loaded
    /// may be a new key that could not be learned, so it is an outage (503), not a bad token.
    pub(crate) fn in_outage(&self) -> bool {
        self.inner.keys_outage.load(Ordering::Relaxed)
    }

    pub(crate) fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Acquire)
    }

    async fn fetch_coalesced(&self, reason: Reason, seen_attempts: u64) -> Result<Arc<Snapshot>, JwksError> {
        let inner = &self.inner;
        let _guard = inner.refresh_lock.lock().await;
        let last_error = || inner.health().last_error.clone();
        // Another caller completed a fetch while we waited: share its outcome.
        if inner.attempts.load(Ordering::Acquire) != seen_attempts {
            return inner.current.load_full().ok_or_else(|| last_error().unwrap_or(JwksError::NoTransport));
        }
        let now = Instant::now();
        match reason {
            Reason::ColdStart | Reason::Background => {
                if reason == Reason::ColdStart
                    && let Some(s) = inner.current.load_full()
                {
                    return Ok(s);
                }
                let not_yet = inner.health().next_attempt.is_some_and(|t| now < t);
                if not_yet {
                    return inner.current.load_full().ok_or_else(|| last_error().unwrap_or(JwksError::NoTransport));
                }
            }
            Reason::UnknownKid => {
                let mut last = inner.last_on_demand.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_some_and(|t| now.duration_since(t) < inner.policy.min_refresh_interval) {
                    return inner.current.load_full().ok_or_else(|| last_error().unwrap_or(JwksError::NoTransport));
                }
                *last = Some(now);
            }
            Reason::Explicit => {}
        }
        let trigger = self.trigger(reason);
        let outcome = self.fetch(reason).await;
        inner.attempts.fetch_add(1, Ordering::AcqRel);
        self.record(reason, &outcome);
        inner.metrics.refreshed(
            trigger,
            match &outcome {
                Ok((_, errors)) if errors.iter().any(Option::is_some) => crate::metrics::RefreshOutcome::Partial,
                Ok(_) => crate::metrics::RefreshOutcome::Success,
                Err(_) => crate::metrics::RefreshOutcome::Failure,
            },
        );
        self.spawn_background();
        match outcome {
            Ok((snapshot, _)) => Ok(snapshot),
            Err(e) => Err(e),
        }
    }

    /// The metric trigger of a fetch about to start: the first load is `startup` whatever
    /// started it, a background attempt after a failure `retry`.
    fn trigger(&self, reason: Reason) -> crate::metrics::Trigger {
        use crate::metrics::Trigger;
        let inner = &self.inner;
        if inner.current.load().is_none() {
            return Trigger::Startup;
        }
        match reason {
            Reason::ColdStart => Trigger::Startup,
            Reason::UnknownKid => Trigger::UnknownKid,
            Reason::Background if inner.health().failures > 0 => Trigger::Retry,
            Reason::Background => Trigger::Interval,
            Reason::Explicit => Trigger::Explicit,
        }
    }

    /// Sets the key-set age gauge (feature `metrics`) to the time since the last successful load.
    #[cfg(feature = "metrics")]
    pub(crate) fn update_age_metric(&self) {
        self.inner.metrics.update_age();
    }

    /// Updates the back-off and logs each part's outage once, when it starts and when it ends.
    fn record(&self, reason: Reason, outcome: &Result<(Arc<Snapshot>, PartErrors), JwksError>) {
        let inner = &self.inner;
        let now = Instant::now();
        let mut failed: PartErrors = [None, None, None];
        match outcome {
            Ok((_, errors)) => failed.clone_from(errors),
            Err(e) => failed[Part::Keys.index()] = Some(e.clone()),
        }
        let mut health = inner.health();
        for part in Part::ALL {
            let slot = &mut health.outages[part.index()];
            match (&failed[part.index()], slot.as_mut()) {
                (Some(e), None) if e.is_configuration_error() => {
                    *slot = Some((now, 1));
                    tracing::error!(
                        target: "azad::jwks",
                        authority = %inner.authority,
                        part = part.describe(),
                        error = %e,
                        "the authority's discovery document contradicts the configuration: its tokens cannot be validated until one of them changes (logged once)"
                    );
                }
                (Some(e), None) => {
                    *slot = Some((now, 1));
                    tracing::warn!(
                        target: "azad::jwks",
                        authority = %inner.authority,
                        part = part.describe(),
                        reason = ?reason,
                        error = %e,
                        cause = ?std::error::Error::source(e).map(ToString::to_string),
                        keeping_last_known_good = inner.current.load().is_some(),
                        "identity provider outage: retrying with back-off (logged once per outage)"
                    );
                }
                (Some(e), Some((_, count))) => {
                    *count += 1;
                    tracing::debug!(target: "azad::jwks", part = part.describe(), attempts = *count, error = %e, "still failing");
                }
                (None, Some((since, count))) => {
                    tracing::info!(
                        target: "azad::jwks",
                        authority = %inner.authority,
                        part = part.describe(),
                        failed_attempts = *count,
                        outage_seconds = now.duration_since(*since).as_secs(),
                        "identity provider outage over"
                    );
                    *slot = None;
                }
                (None, None) => {}
            }
        }
        if let Err(e) = outcome {
            health.last_error = Some(e.clone());
        } else {
            health.last_error = None;
        }
        if failed.iter().any(Option::is_some) {
            health.failures = health.failures.saturating_add(1);
            let exponent = health.failures.saturating_sub(1).min(16);
            let base = inner.policy.retry_interval.max(Duration::from_millis(10));
            let backoff = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF.max(base));
            health.next_attempt = now.checked_add(backoff);
        } else {
            health.failures = 0;
            health.next_attempt = now.checked_add(inner.policy.refresh_interval);
        }
        let ms = health
            .next_attempt
            .map_or(u64::MAX, |t| u64::try_from(t.duration_since(inner.created).as_millis()).unwrap_or(u64::MAX - 1));
        inner.next_attempt_ms.store(ms, Ordering::Relaxed);
        inner.keys_outage.store(health.outages[Part::Keys.index()].is_some(), Ordering::Relaxed);
    }

    #[tracing::instrument(level = "debug", target = "azad::jwks", skip(self), fields(authority = %self.inner.authority))]
    async fn fetch(&self, reason: Reason) -> Result<(Arc<Snapshot>, PartErrors), JwksError> {
        let inner = &self.inner;
        let http = inner.http.as_deref().ok_or(JwksError::NoTransport)?;
        let previous = inner.current.load_full();
        let mut errors: PartErrors = [None, None, None];
        // Discovery on a cold start and on the background interval; unknown-kid refreshes only
        // re-read the keys.
        let (issuers, metadata, pending_issuers) = match (&previous, reason) {
            (Some(p), Reason::UnknownKid) if p.metadata.is_some() => {
                (p.issuers.clone(), p.metadata.clone(), p.pending_issuers.clone())
            }
            _ => {
                let found = crate::validation::discovery::discover(&inner.authority, http).await?;
                let mut issuers = found.issuers;
                let mut pending = Vec::new();
                if let Some((v1_issuer, e)) = found.v1_outage {
                    // Last-known-good applies per family: a v1.0 issuer learned before stays.
                    if previous.as_ref().is_some_and(|p| p.issuers.accepted.contains(&v1_issuer)) {
                        issuers.accepted.push(v1_issuer);
                    } else {
                        pending.push(v1_issuer);
                    }
                    errors[Part::V1Metadata.index()] = Some(e);
                }
                (issuers, Some(found.metadata), pending)
            }
        };
        let jwks_uri = metadata.as_ref().map(|m| m.jwks_uri.clone()).ok_or(JwksError::NoTransport)?;

        let tenant =
            self.fetch_source(http, jwks_uri.clone(), previous.as_ref().and_then(|p| p.tenant_source.as_ref())).await?;
        let (app_source, app_keys_pending) = if inner.app_specific {
            let sep = if jwks_uri.contains('?') { '&' } else { '?' };
            let url = format!("{jwks_uri}{sep}appid={}", inner.client_id);
            let before = previous.as_ref().and_then(|p| p.app_source.as_ref());
            match self.fetch_source(http, url, before).await {
                Ok(s) => (Some(s), false),
                Err(e) => {
                    errors[Part::AppKeys.index()] = Some(e);
                    // Last-known-good app keys stay; without any, their tokens get 503.
                    (before.cloned(), before.is_none())
                }
            }
        } else {
            (None, false)
        };
        let keys = match &app_source {
            Some(app) => KeySet::union(&[&tenant.keys, &app.keys]),
            None => KeySet::clone(&tenant.keys),
        };
        let mut snapshot = Snapshot {
            generation: previous.as_ref().map_or(0, |p| p.generation),
            issuers,
            keys,
            metadata,
            pending_issuers,
            app_keys_pending,
            tenant_source: Some(tenant),
            app_source,
        };
        match &previous {
            None => snapshot.generation += 1,
            Some(p) if !snapshot.keeps_trust_of(p) => {
                snapshot.generation = p.generation + 1;
                tracing::info!(target: "azad::jwks", keys = snapshot.keys.len(), generation = snapshot.generation, "signing keys changed: trust of removed keys withdrawn");
            }
            Some(p) if p.keys.fingerprint() != snapshot.keys.fingerprint() => {
                tracing::info!(target: "azad::jwks", keys = snapshot.keys.len(), generation = snapshot.generation, "signing keys added");
            }
            Some(_) => {}
        }
        if previous.is_none() {
            tracing::info!(target: "azad::jwks", keys = snapshot.keys.len(), generation = snapshot.generation, "signing keys loaded");
        }
        let snapshot = Arc::new(snapshot);
        // Under `refresh_lock` (the only writer of `current` besides the static set made in
        // `new`), with no await between these two lines: the generation first, then the set.
        inner.generation.fetch_max(snapshot.generation, Ordering::AcqRel);
        inner.current.store(Some(snapshot.clone()));
        Ok((snapshot, errors))
    }

    /// Fetches one JWKS document, conditionally when `previous` came from the same URL.
    async fn fetch_source(
        &self,
        http: &dyn HttpClient,
        url: String,
        previous: Option<&Source>,
    ) -> Result<Source, JwksError> {
        let inner = &self.inner;
        let mut request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|_| JwksError::InvalidDocument { url: url.clone(), document: "JWKS", reason: "bad URL".into() })?;
        let reusable = previous.filter(|p| p.url == url);
        if let Some(etag) = reusable.and_then(|p| p.etag.as_deref())
            && let Ok(v) = http::HeaderValue::from_str(etag)
        {
            request.headers_mut().insert(http::header::IF_NONE_MATCH, v);
        }
        let response = http.send(request).await.map_err(|source| JwksError::Http { url: url.clone(), source })?;
        let etag = response.headers().get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if response.status() == http::StatusCode::NOT_MODIFIED {
            let Some(p) = reusable else {
                return Err(JwksError::Status { url, status: 304 });
            };
            return Ok(Source { url, etag: etag.or_else(|| p.etag.clone()), keys: p.keys.clone() });
        }
        if response.status() != http::StatusCode::OK {
            return Err(JwksError::Status { url, status: response.status().as_u16() });
        }
        let keys = KeySet::parse(response.body(), &inner.algorithms, inner.policy.max_keys, &url)?;
        // Unchanged content: keep the already-parsed keys (and their decoded material).
        let keys = match reusable.or(previous) {
            Some(p) if p.keys.fingerprint() == keys.fingerprint() => p.keys.clone(),
            _ => Arc::new(keys),
        };
        Ok(Source { url, etag, keys })
    }

    /// Starts the background refresh once: every refresh interval while healthy, with
    /// exponential back-off while anything fails (a cold start that failed included).
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
        handle.spawn(async move {
            loop {
                let wait = {
                    let Some(inner) = weak.upgrade() else { return };
                    let next = inner.health().next_attempt;
                    next.map_or(inner.policy.retry_interval, |t| t.saturating_duration_since(Instant::now()))
                };
                tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = Self { inner };
                let seen = cache.attempts();
                // Errors are recorded (and logged once per outage) by `fetch_coalesced`.
                let _ = cache.fetch_coalesced(Reason::Background, seen).await;
            }
        });
    }
}

/// Per [`Part`], the error of the last attempt (none for a part that loaded or is not used).
type PartErrors = [Option<JwksError>; 3];

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

    fn jwk_with(kid: &str, n: &[u8], e: &[u8]) -> serde_json::Value {
        serde_json::json!({"kty": "RSA", "use": "sig", "kid": kid, "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
    }

    fn modulus(bits: usize, fill: u8) -> Vec<u8> {
        let mut n = vec![fill | 1; bits / 8];
        n[0] = 0xC5;
        n
    }

    #[test]
    fn hostile_numbers_are_skipped_without_panicking() {
        let good = modulus(2048, 0xC5);
        let mut even = good.clone();
        *even.last_mut().unwrap() = 0xC4;
        let mut leading_zero = vec![0u8];
        leading_zero.extend_from_slice(&good);
        let hostile = [
            jwk_with("empty-n", &[], b"\x01\x00\x01"),
            jwk_with("zero-n", &[0u8; 256], b"\x01\x00\x01"),
            jwk_with("one-zero-n", &[0u8], b"\x01\x00\x01"),
            jwk_with("leading-zero-n", &leading_zero, b"\x01\x00\x01"),
            jwk_with("even-n", &even, b"\x01\x00\x01"),
            jwk_with("huge-n", &modulus(8200, 0xC5), b"\x01\x00\x01"),
            jwk_with("e-empty", &good, &[]),
            jwk_with("e-zero", &good, &[0]),
            jwk_with("e-one", &good, &[1]),
            jwk_with("e-even", &good, &[1, 0, 0]),
            jwk_with("e-leading-zero", &good, &[0, 1, 0, 1]),
            jwk_with("e-huge", &good, &[0xFF; 64]),
            jwk_with("e-five-octets", &good, &[1, 0, 0, 0, 1]),
            serde_json::json!({"kty": "RSA", "kid": "n-not-b64", "n": "!!!!", "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "kid": "n-too-long", "n": "A".repeat(100_000), "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "kid": "no-n", "e": "AQAB"}),
        ];
        for jwk in &hostile {
            let raw: RawJwk = serde_json::from_value(jwk.clone()).unwrap();
            let skip = usable_key(&raw, RS).err().unwrap_or_else(|| panic!("accepted {jwk}"));
            assert!(skip.hostile, "{jwk}: {skip:?}");
        }
        let mut keys = hostile.to_vec();
        keys.push(jwk_with("good", &good, &[1, 0, 1]));
        let doc = serde_json::json!({ "keys": keys }).to_string();
        let set = KeySet::parse(doc.as_bytes(), RS, 100, "u").unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["good"]);
        let only_hostile = serde_json::json!({ "keys": hostile }).to_string();
        assert!(matches!(KeySet::parse(only_hostile.as_bytes(), RS, 100, "u"), Err(JwksError::NoUsableKeys { .. })));
        // The bit length of any input, computed without overflow.
        assert_eq!(bit_length(&[]), None);
        assert_eq!(bit_length(&[0]), Some(0));
        assert_eq!(bit_length(&[1]), Some(1));
        assert_eq!(bit_length(&[0x80, 0]), Some(16));
    }

    #[test]
    fn identical_entries_under_one_kid_are_one_key() {
        let doc = serde_json::json!({"keys": [rsa_jwk("k", 2048), rsa_jwk("k", 2048), rsa_jwk("k", 2048)]}).to_string();
        let set = KeySet::parse(doc.as_bytes(), RS, 10, "u").unwrap();
        assert_eq!(set.get("k").unwrap().len(), 1);
        let single = serde_json::json!({"keys": [rsa_jwk("k", 2048)]}).to_string();
        assert_eq!(set.fingerprint, KeySet::parse(single.as_bytes(), RS, 10, "u").unwrap().fingerprint);
    }

    #[test]
    fn different_keys_under_one_kid_do_not_depend_on_document_order() {
        let (a, b) = (jwk_with("k", &modulus(2048, 0x11), &[1, 0, 1]), jwk_with("k", &modulus(2048, 0x33), &[1, 0, 1]));
        let ab = KeySet::parse(serde_json::json!({"keys": [&a, &b]}).to_string().as_bytes(), RS, 10, "u").unwrap();
        let ba = KeySet::parse(serde_json::json!({"keys": [b, a]}).to_string().as_bytes(), RS, 10, "u").unwrap();
        assert_eq!(ab.get("k").unwrap().len(), 2, "both candidates are kept");
        assert_eq!(ab.fingerprint, ba.fingerprint);
        // Same candidates in the same order: compare through their Debug-free identity (issuer
        // and alg are equal here, so compare the decoding keys' public numbers via re-parse).
        assert_eq!(ab.len(), 2);
        assert_eq!(ba.len(), 2);
    }

    #[test]
    fn one_key_with_contradicting_metadata_under_one_kid_is_ambiguous() {
        let mut a = rsa_jwk("k", 2048);
        a["issuer"] = "https://login.microsoftonline.com/{tenantid}/v2.0".into();
        let mut b = rsa_jwk("k", 2048);
        b["issuer"] = "https://evil.example.com/{tenantid}/v2.0".into();
        for keys in [vec![a.clone(), b.clone(), rsa_jwk("other", 2048)], vec![b, a, rsa_jwk("other", 2048)]] {
            let set = KeySet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes(), RS, 10, "u").unwrap();
            assert!(set.get("k").is_none(), "an ambiguous kid is not used");
            assert!(set.get("other").is_some());
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn b64(bytes: Vec<u8>) -> String {
            URL_SAFE_NO_PAD.encode(bytes)
        }

        fn number() -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..600).prop_map(|b| serde_json::Value::String(b64(b))),
                ".{0,40}".prop_map(serde_json::Value::String),
                any::<i64>().prop_map(serde_json::Value::from),
                Just(serde_json::Value::Null),
            ]
        }

        fn jwk() -> impl Strategy<Value = serde_json::Value> {
            (
                prop_oneof![Just("RSA".to_owned()), Just("EC".to_owned()), ".{0,4}"],
                prop_oneof![Just("k".to_owned()), "[A-Za-z0-9_-]{1,8}", ".{0,8}"],
                number(),
                number(),
                proptest::option::of(prop_oneof![Just("RS256".to_owned()), Just("HS256".to_owned()), ".{0,6}"]),
                proptest::option::of(".{0,30}"),
            )
                .prop_map(|(kty, kid, n, e, alg, issuer)| {
                    let mut v = serde_json::json!({"kty": kty, "kid": kid, "n": n, "e": e});
                    if let Some(alg) = alg {
                        v["alg"] = alg.into();
                    }
                    if let Some(issuer) = issuer {
                        v["issuer"] = issuer.into();
                    }
                    v
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any bytes: an error or a key set, never a panic.
            #[test]
            fn parse_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = KeySet::parse(&body, RS, 100, "u");
            }

            /// Any JWKS-shaped document: never a panic, never more keys than entries, and the
            /// same key set (fingerprint) whatever the order of its entries.
            #[test]
            fn parse_is_total_and_order_independent(keys in proptest::collection::vec(jwk(), 0..6)) {
                let doc = serde_json::json!({ "keys": keys }).to_string();
                let parsed = KeySet::parse(doc.as_bytes(), RS, 100, "u");
                let mut reversed = keys.clone();
                reversed.reverse();
                let doc_r = serde_json::json!({ "keys": reversed }).to_string();
                let parsed_r = KeySet::parse(doc_r.as_bytes(), RS, 100, "u");
                match (parsed, parsed_r) {
                    (Ok(a), Ok(b)) => {
                        prop_assert!(a.len() <= keys.len());
                        prop_assert_eq!(a.fingerprint, b.fingerprint);
                        prop_assert_eq!(a.len(), b.len());
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a, b),
                    (a, b) => prop_assert!(false, "order changed the outcome: {:?} vs {:?}", a.map(|s| s.len()), b.map(|s| s.len())),
                }
            }
        }
    }
}
