//! [`SecretCache`]: a TTL cache in front of a [`SecretChain`], one fetch per secret at a time,
//! with an optional second level ([`SecondLevelStore`], e.g. the shared encrypted Redis store).
//!
//! - A fresh entry is served from memory (audit event at DEBUG, `cache = "hit"`).
//! - A degraded answer (a fallback served) is kept only for the shorter `degraded_ttl`, so the
//!   primary is asked again soon; it is never written to the second level.
//! - [`SecretCache::refresh`] reads through to the sources; when a source reports a new version
//!   the entry is replaced at once (an INFO event `secret version changed`), which is how a
//!   rotation is picked up before the TTL ends. [`SecretCache::invalidate_on`] drops every entry
//!   whenever a watch (e.g. [`DirectorySource::watch`](super::DirectorySource::watch)) fires.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::audit;
use super::chain::{ResolvedSecret, SecretChain};
use super::source::{SecretError, SecretValue};

/// A second cache level shared by replicas (optional), consulted on a memory miss before the
/// sources.
///
/// Keys are 32-byte SHA-256 digests of the secret's name and version (nothing in the store
/// names a secret). The blob handed to [`save`](Self::save) holds the **plaintext** value:
/// implementations must seal it (AES-256-GCM with the key as associated data, as the `store`
/// module's Redis store does) and must treat anything they cannot open as a miss.
pub trait SecondLevelStore: Send + Sync + fmt::Debug + 'static {
    /// The blob saved under `key`, if any (a failure is a miss).
    fn load<'a>(&'a self, key: &'a [u8; 32]) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>>;
    /// Saves `blob` under `key` for `ttl` (a failure is logged by the store and ignored).
    fn save<'a>(
        &'a self,
        key: &'a [u8; 32],
        blob: Vec<u8>,
        ttl: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// The shared store of [`crate::store`] as the second level: entries are sealed there with
/// AES-256-GCM under the purpose `secret` and a hash of the cache key (so Redis holds no secret
/// name and no value in the clear), and it degrades to a miss when Redis is down.
impl SecondLevelStore for crate::store::SharedStore {
    fn load<'a>(&'a self, key: &'a [u8; 32]) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(async move {
            use secrecy::ExposeSecret as _;
            self.get(SECOND_LEVEL_PURPOSE, key).await.map(|blob| blob.expose_secret().to_vec())
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a [u8; 32],
        blob: Vec<u8>,
        ttl: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move { self.put(SECOND_LEVEL_PURPOSE, key, &blob, ttl).await })
    }
}

/// The purpose the secrets cache's entries are sealed under in a shared store (bound as
/// associated data: a token entry cannot be replayed as a secret entry).
const SECOND_LEVEL_PURPOSE: &str = "secret";

type Key = (String, Option<String>);

#[derive(Debug)]
struct Entry {
    secret: ResolvedSecret,
    until: Instant,
}

struct Inner {
    chain: SecretChain,
    ttl: Duration,
    degraded_ttl: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    second: Option<Arc<dyn SecondLevelStore>>,
    /// Names whose second-level entry must not be trusted until fetched again from the sources
    /// (an invalidation here cannot reach other replicas' memory, but the fresh fetch
    /// overwrites the shared entry for all of them).
    bypass: Mutex<Bypass>,
}

/// What an invalidation left to read from the sources rather than the second level.
#[derive(Debug, Default)]
struct Bypass {
    /// `invalidate_all`: every name, until each is fetched again.
    all: bool,
    /// Names fetched again since the last `invalidate_all`.
    refetched: std::collections::HashSet<String>,
    /// Names invalidated one by one.
    names: std::collections::HashSet<String>,
}

impl Bypass {
    fn applies(&self, name: &str) -> bool {
        self.names.contains(name) || (self.all && !self.refetched.contains(name))
    }

    fn fetched(&mut self, name: &str) {
        self.names.remove(name);
        if self.all {
            self.refetched.insert(name.to_owned());
        }
    }

    fn everything(&mut self) {
        self.all = true;
        self.refetched.clear();
        self.names.clear();
    }
}

/// A TTL cache in front of a [`SecretChain`]. Cheap to clone (clones share entries).
///
/// - A fresh entry is served from memory (audit event at DEBUG, `cache = "hit"`).
/// - A degraded answer (a fallback served) is kept only for the shorter `degraded_ttl`, so the
///   primary is asked again soon; it is never written to the second level.
/// - [`SecretCache::refresh`] reads through to the sources; when a source reports a new version
///   the entry is replaced at once (an INFO event `secret version changed`), which is how a
///   rotation is picked up before the TTL ends. [`SecretCache::invalidate_on`] drops every entry
///   whenever a watch (e.g. [`DirectorySource::watch`](super::DirectorySource::watch)) fires.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use azad_core::secrets::{EnvSource, SecretCache, SecretChain};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let chain = SecretChain::new([EnvSource::from_pairs([("DB_PASSWORD", "hunter2")])]);
/// let cache = SecretCache::new(chain, Duration::from_secs(300));
/// let first = cache.get("db-password", None).await.unwrap();
/// let again = cache.get("db-password", None).await.unwrap(); // from memory
/// assert_eq!(first, again);
/// # });
/// ```
#[derive(Clone)]
pub struct SecretCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCache")
            .field("chain", &self.inner.chain)
            .field("ttl", &self.inner.ttl)
            .field("degraded_ttl", &self.inner.degraded_ttl)
            .field("second_level", &self.inner.second)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Blob {
    value: String,
    version: Option<String>,
    content_type: Option<String>,
    source: String,
}

/// The second-level key of a secret: SHA-256 over a purpose label, the name and the version
/// (latest, or one version), each part length-prefixed, so that no two reads share a key
/// whatever bytes a name holds.
fn store_key(name: &str, version: Option<&str>) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"azad-secret-cache\0");
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    part(name.as_bytes());
    match version {
        None => part(b"latest"),
        Some(v) => {
            part(b"version");
            part(v.as_bytes());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl SecretCache {
    /// Caches `chain`'s answers for `ttl` (degraded answers for at most 30 s).
    #[must_use]
    pub fn new(chain: SecretChain, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                chain,
                ttl,
                degraded_ttl: ttl.min(Duration::from_secs(30)),
                entries: Mutex::new(HashMap::new()),
                flights: Mutex::new(HashMap::new()),
                second: None,
                bypass: Mutex::default(),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            chain: shared.chain.clone(),
            ttl: shared.ttl,
            degraded_ttl: shared.degraded_ttl,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            second: shared.second.clone(),
            bypass: Mutex::default(),
        });
        let mut inner = inner;
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// How long a degraded answer is kept (default: the TTL, at most 30 s).
    #[must_use]
    pub fn with_degraded_ttl(self, ttl: Duration) -> Self {
        self.rebuild(|i| i.degraded_ttl = ttl)
    }

    /// A second level consulted on a memory miss (see [`SecondLevelStore`]).
    #[must_use]
    pub fn with_second_level(self, store: Arc<dyn SecondLevelStore>) -> Self {
        self.rebuild(|i| i.second = Some(store))
    }

    /// The chain behind the cache.
    #[must_use]
    pub fn chain(&self) -> &SecretChain {
        &self.inner.chain
    }

    fn fresh(&self, key: &Key) -> Option<ResolvedSecret> {
        let entries = self.inner.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|e| Instant::now() < e.until).map(|e| e.secret.clone())
    }

    fn store(&self, key: Key, secret: &ResolvedSecret) {
        let ttl = if secret.degraded() { self.inner.degraded_ttl } else { self.inner.ttl };
        let mut entries = self.inner.entries.lock().unwrap_or_else(|e| e.into_inner());
        if key.1.is_none()
            && let Some(old) = entries.get(&key)
            && old.secret.version() != secret.version()
        {
            tracing::info!(
                target: audit::AUDIT_TARGET, name = key.0.as_str(), source = secret.source(),
                old_version = old.secret.version().unwrap_or(""), version = secret.version().unwrap_or(""),
                "secret version changed"
            );
        }
        entries.insert(key, Entry { secret: secret.clone(), until: Instant::now() + ttl });
    }

    fn flight(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|e| e.into_inner());
        flights.retain(|_, lock| Arc::strong_count(lock) > 1);
        flights.entry(key.clone()).or_default().clone()
    }

    /// Secret `name` (latest, or `version`): from memory while fresh, else from the second
    /// level, else from the chain (one fetch at a time per secret).
    ///
    /// # Errors
    ///
    /// The chain's error (nothing is cached on error).
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<ResolvedSecret, SecretError> {
        let started = Instant::now();
        let key: Key = (name.to_owned(), version.map(str::to_owned));
        if let Some(hit) = self.fresh(&key) {
            audit::served(hit.source(), name, hit.version(), hit.degraded(), "hit", started.elapsed());
            return Ok(hit);
        }
        let flight = self.flight(&key);
        let _guard = flight.lock().await;
        if let Some(hit) = self.fresh(&key) {
            audit::served(hit.source(), name, hit.version(), hit.degraded(), "hit", started.elapsed());
            return Ok(hit);
        }
        let bypass = self.inner.bypass.lock().unwrap_or_else(|e| e.into_inner()).applies(name);
        if let Some(second) = &self.inner.second
            && !bypass
            && let Some(blob) = second.load(&store_key(name, version)).await
            && let Ok(blob) = serde_json::from_slice::<Blob>(&blob)
        {
            let mut value = SecretValue::new(blob.value);
            if let Some(v) = blob.version {
                value = value.with_version(v);
            }
            if let Some(ct) = blob.content_type {
                value = value.with_content_type(ct);
            }
            let secret = ResolvedSecret::new(value, Arc::from(blob.source.as_str()), false);
            audit::served(secret.source(), name, secret.version(), false, "second_level", started.elapsed());
            self.store(key, &secret);
            return Ok(secret);
        }
        self.fetch(key).await
    }

    async fn fetch(&self, key: Key) -> Result<ResolvedSecret, SecretError> {
        let secret = self.inner.chain.get_with_cache_label(&key.0, key.1.as_deref(), "miss").await?;
        self.inner.bypass.lock().unwrap_or_else(|e| e.into_inner()).fetched(&key.0);
        if !secret.degraded()
            && let Some(second) = &self.inner.second
        {
            let blob = Blob {
                value: secret.expose().to_owned(),
                version: secret.version().map(str::to_owned),
                content_type: secret.value().content_type().map(str::to_owned),
                source: secret.source().to_owned(),
            };
            if let Ok(bytes) = serde_json::to_vec(&blob) {
                second.save(&store_key(&key.0, key.1.as_deref()), bytes, self.inner.ttl).await;
            }
        }
        self.store(key, &secret);
        Ok(secret)
    }

    /// Reads the latest version of `name` from the sources now, bypassing memory and the
    /// second level, and replaces the cached entry (a rotation check).
    ///
    /// # Errors
    ///
    /// The chain's error; the cached entry is then kept.
    pub async fn refresh(&self, name: &str) -> Result<ResolvedSecret, SecretError> {
        let key: Key = (name.to_owned(), None);
        let flight = self.flight(&key);
        let _guard = flight.lock().await;
        self.fetch(key).await
    }

    /// Drops the cached entries of `name` (every version). The next read goes to the sources,
    /// not the second level, and overwrites the shared entry for the other replicas.
    pub fn invalidate(&self, name: &str) {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner()).retain(|(n, _), _| n != name);
        self.inner.bypass.lock().unwrap_or_else(|e| e.into_inner()).names.insert(name.to_owned());
    }

    /// Drops every cached entry; each name's next read goes to the sources (as
    /// [`invalidate`](Self::invalidate)).
    pub fn invalidate_all(&self) {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.inner.bypass.lock().unwrap_or_else(|e| e.into_inner()).everything();
    }

    /// Drops every entry each time `changes` fires (e.g. a mounted secret directory's
    /// [`watch`](super::DirectorySource::watch)); the task ends with the sender. Needs a Tokio
    /// runtime.
    pub fn invalidate_on(&self, mut changes: watch::Receiver<u64>) {
        let cache = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(inner) = cache.upgrade() else { break };
                inner.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
                inner.bypass.lock().unwrap_or_else(|e| e.into_inner()).everything();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::store_key;

    /// Different reads never share a second-level key (a name holding a 0 byte shared the key
    /// of another name and version when parts ended with 0).
    #[test]
    fn store_keys_of_different_reads_differ() {
        let base = store_key("a", Some("b"));
        assert_eq!(base, store_key("a", Some("b")));
        for other in [
            store_key("a\0b", None),
            store_key("a\0b", Some("")),
            store_key("a", None),
            store_key("a", Some("")),
            store_key("ab", None),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(store_key("a", None), store_key("a", Some("")));
        assert_ne!(store_key("a\0", Some("b")), store_key("a", Some("\0b")));
    }
}
