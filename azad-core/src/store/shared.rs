//! The shared level: hashed keys, sealed entries, bounded calls, degrading to memory only.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretSlice};
use tokio::time::Instant;

use super::backend::{Store, StoreError, StoreFuture};
use super::sealed::{OVERHEAD, SealingKey, open, seal};

/// The largest plaintext an entry may hold (64 KiB): larger values are not stored, and larger
/// blobs read back are refused as garbage.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// The default bound on each store call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, calls skip the store (memory only) for this long, then one call probes it.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The shared token (and secret) store: a [`Store`] with sealed entries under hashed keys,
/// shared by every replica configured with the same store, namespace and [`SealingKey`].
/// See the [module docs](crate::store). Cheap to clone: clones share the connection and the
/// health state.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    keys: Vec<SealingKey>,
    namespace: String,
    timeout: Duration,
    down: AtomicBool,
    retry_at: std::sync::Mutex<Option<Instant>>,
    failures: AtomicU64,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("store", &self.inner.store)
            .field("namespace", &self.inner.namespace)
            .field("keys", &self.inner.keys.len())
            .field("timeout", &self.inner.timeout)
            .field("available", &self.is_available())
            .field("failures", &self.failures())
            .finish()
    }
}

/// Builds a [`SharedStore`]: [`SharedStore::builder`].
#[derive(Debug)]
#[must_use]
pub struct SharedStoreBuilder {
    store: Arc<dyn Store>,
    keys: Vec<SealingKey>,
    namespace: String,
    timeout: Duration,
}

impl SharedStoreBuilder {
    /// Also opens entries sealed with `key` (key rotation: seal with the new key, keep the old
    /// readable until its entries have expired). May be called several times.
    pub fn previous_key(mut self, key: SealingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Separates this application's entries from others' in the same store (default `azad`);
    /// the namespace is the only part of a storage key in clear. Short ASCII, no `:`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The bound on each store call (default 250 ms). A call that takes longer counts as a
    /// failure: the request goes on from memory (or the identity endpoint).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The shared store.
    #[must_use]
    pub fn build(self) -> SharedStore {
        SharedStore {
            inner: Arc::new(Inner {
                store: self.store,
                keys: self.keys,
                namespace: self.namespace,
                timeout: self.timeout,
                down: AtomicBool::new(false),
                retry_at: std::sync::Mutex::new(None),
                failures: AtomicU64::new(0),
            }),
        }
    }
}

/// The outcome of [`SharedStore::try_lock`].
pub(crate) enum Lock {
    /// This caller holds the lock (released with [`SharedStore::unlock`]).
    Acquired(String, [u8; 16]),
    /// Another caller (replica) holds it.
    Held,
    /// The store is unavailable: go on without a lock.
    Unavailable,
}

impl SharedStore {
    /// A shared store on `store`, sealing with `key`.
    pub fn builder(store: impl Store, key: SealingKey) -> SharedStoreBuilder {
        Self::builder_arc(Arc::new(store), key)
    }

    /// [`builder`](Self::builder) for a store already behind an `Arc`.
    pub fn builder_arc(store: Arc<dyn Store>, key: SealingKey) -> SharedStoreBuilder {
        SharedStoreBuilder { store, keys: vec![key], namespace: "azad".into(), timeout: DEFAULT_TIMEOUT }
    }

    /// Store failures (errors and timeouts) since this store was built. Also counted by the
    /// `azad_shared_cache_errors_total{operation}` metric (feature `metrics`).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// `false` between a failure and the next successful call (the cache serves from memory
    /// only meanwhile).
    #[must_use]
    pub fn is_available(&self) -> bool {
        !self.inner.down.load(Ordering::Relaxed)
    }

    /// The storage key of `key_material` for `purpose`: `{namespace}:{SHA-256 in hex}`; the
    /// hash covers the format version, namespace, purpose and key material.
    pub(crate) fn storage_key(&self, purpose: &str, key_material: &[u8]) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [b"azad-store/1".as_slice(), self.inner.namespace.as_bytes(), purpose.as_bytes(), key_material] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let digest = ctx.finish();
        let mut key = String::with_capacity(self.inner.namespace.len() + 65);
        key.push_str(&self.inner.namespace);
        key.push(':');
        for b in digest.as_ref() {
            key.push_str(&format!("{b:02x}"));
        }
        key
    }

    /// Runs a store call within the bound, recording failures and recoveries; `None` when the
    /// store is skipped (just failed) or failed.
    async fn run<T>(&self, operation: &'static str, call: StoreFuture<'_, T>) -> Option<T> {
        let inner = &self.inner;
        if inner.down.load(Ordering::Relaxed) {
            let mut retry_at = inner.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match *retry_at {
                Some(at) if Instant::now() < at => return None,
                // This call probes the store; others keep skipping it meanwhile.
                _ => *retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE),
            }
        }
        let outcome = match tokio::time::timeout(inner.timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Timeout(inner.timeout)),
        };
        match outcome {
            Ok(value) => {
                if inner.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "azad::store", store = ?inner.store, "the shared token store is reachable again");
                }
                Some(value)
            }
            Err(error) => {
                inner.failures.fetch_add(1, Ordering::Relaxed);
                crate::metrics::shared_cache_error(operation);
                *inner.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(Instant::now() + RETRY_AFTER_FAILURE);
                if !inner.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "azad::store",
                        store = ?inner.store,
                        operation,
                        %error,
                        "the shared token store failed; serving from memory only until it answers again"
                    );
                } else {
                    tracing::debug!(target: "azad::store", operation, %error, "the shared token store is still unavailable");
                }
                None
            }
        }
    }

    /// The value stored for `purpose` under `key_material`, opened: `None` when absent, when
    /// the store is unavailable, or when the entry does not open (garbage, tampered, sealed
    /// with an unknown key, moved from another key): such an entry is a miss (logged at WARN
    /// without its content) that the next [`put`](Self::put) overwrites.
    pub async fn get(&self, purpose: &str, key_material: &[u8]) -> Option<SecretSlice<u8>> {
        let key = self.storage_key(purpose, key_material);
        let sealed = self.run("get", self.inner.store.get(&key)).await??;
        let opened = (sealed.len() <= MAX_ENTRY_BYTES + OVERHEAD + EXPIRY_BYTES)
            .then(|| open(&self.inner.keys, purpose, &key, &sealed))
            .flatten();
        if opened.is_none() {
            tracing::warn!(
                target: "azad::store",
                purpose,
                bytes = sealed.len(),
                "a shared store entry does not open (garbage, tampered, another key or another entry's); treated as a miss"
            );
        }
        // The entry's own expiry, sealed with it: an entry written back after its TTL (a replay
        // by someone who can write to the store, or a store that lost the TTL) stays expired.
        let opened = SecretSlice::from(opened?);
        let plain = opened.expose_secret();
        let expires_at_ms = plain.first_chunk::<EXPIRY_BYTES>().map(|b| u64::from_be_bytes(*b))?;
        if unix_millis() >= expires_at_ms {
            tracing::debug!(target: "azad::store", purpose, "a shared store entry past its sealed expiry; treated as a miss");
            return None;
        }
        // `opened` (zeroized on drop) keeps the plaintext with its expiry; the answer is a copy.
        Some(SecretSlice::from(plain[EXPIRY_BYTES..].to_vec()))
    }

    /// Seals `value` and stores it for `purpose` under `key_material` for `ttl`. Best effort:
    /// an unavailable store or a value over [`MAX_ENTRY_BYTES`] is skipped (memory only).
    pub async fn put(&self, purpose: &str, key_material: &[u8], value: &[u8], ttl: Duration) {
        if value.len() > MAX_ENTRY_BYTES || ttl.is_zero() {
            tracing::debug!(target: "azad::store", purpose, bytes = value.len(), "not stored: too large or already expired");
            return;
        }
        let key = self.storage_key(purpose, key_material);
        let Some(first) = self.inner.keys.first() else { return };
        let expires_at_ms = unix_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut plain = Vec::with_capacity(EXPIRY_BYTES + value.len());
        plain.extend_from_slice(&expires_at_ms.to_be_bytes());
        plain.extend_from_slice(value);
        let sealed = seal(first, purpose, &key, &plain);
        // The plaintext copy holds a token or secret: wipe it before freeing.
        plain.zeroize();
        self.run("set", self.inner.store.set(&key, &sealed, ttl)).await;
    }

    /// Removes the entry for `purpose` under `key_material` (best effort).
    pub async fn delete(&self, purpose: &str, key_material: &[u8]) {
        let key = self.storage_key(purpose, key_material);
        self.run("delete", self.inner.store.delete(&key)).await;
    }

    /// A short lock on the entry (`SET NX PX`): single flight across replicas.
    pub(crate) async fn try_lock(&self, purpose: &str, key_material: &[u8], ttl: Duration) -> Lock {
        let key = format!("{}:lock", self.storage_key(purpose, key_material));
        let mut token = [0u8; 16];
        aws_lc_rs::rand::fill(&mut token).expect("system randomness");
        match self.run("lock", self.inner.store.set_if_absent(&key, &token, ttl)).await {
            Some(true) => Lock::Acquired(key, token),
            Some(false) => Lock::Held,
            None => Lock::Unavailable,
        }
    }

    /// Releases a lock taken by [`try_lock`](Self::try_lock) (only if still ours).
    pub(crate) async fn unlock(&self, lock: Lock) {
        if let Lock::Acquired(key, token) = lock {
            self.run("unlock", self.inner.store.delete_if_equals(&key, &token)).await;
        }
    }

    /// Seals a serialisable value (JSON), wiping the plaintext afterwards.
    pub(crate) async fn put_json<T: serde::Serialize>(
        &self,
        purpose: &str,
        key_material: &[u8],
        value: &T,
        ttl: Duration,
    ) {
        if let Ok(mut json) = serde_json::to_vec(value) {
            self.put(purpose, key_material, &json, ttl).await;
            json.zeroize();
        }
    }
}

/// Bytes of the expiry (Unix milliseconds, big-endian) sealed in front of every value.
const EXPIRY_BYTES: usize = 8;

/// Milliseconds since the Unix epoch (0 before it).
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn entries_round_trip_sealed_under_hashed_keys() {
        let memory = MemoryStore::new(100);
        let shared = SharedStore::builder(memory.clone(), SealingKey::generate()).namespace("t").build();
        shared.put("p", b"user@contoso", b"secret value", Duration::from_secs(60)).await;
        let key = shared.storage_key("p", b"user@contoso");
        assert!(key.starts_with("t:") && key.len() == 2 + 64 && !key.contains("user"));
        let raw = memory.get(&key).await.unwrap().unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        assert_eq!(shared.get("p", b"user@contoso").await.unwrap().expose_secret(), b"secret value");
        assert!(shared.get("q", b"user@contoso").await.is_none(), "another purpose, another key");
        shared.delete("p", b"user@contoso").await;
        assert!(shared.get("p", b"user@contoso").await.is_none());
    }

    /// An entry written back after its TTL (by someone who can write to Redis, keeping the
    /// sealed bytes but dropping the TTL) stays expired: the expiry is sealed with the value.
    #[tokio::test]
    async fn a_replayed_entry_stays_expired() {
        let memory = MemoryStore::new(100);
        let shared = SharedStore::builder(memory.clone(), SealingKey::generate()).build();
        shared.put("p", b"a", b"old refresh token", Duration::from_millis(30)).await;
        let key = shared.storage_key("p", b"a");
        let raw = memory.get(&key).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        memory.set(&key, &raw, Duration::from_secs(3600)).await.unwrap();
        assert_eq!(memory.get(&key).await.unwrap().as_deref(), Some(raw.as_slice()), "the replay is in place");
        assert!(shared.get("p", b"a").await.is_none(), "a replayed, expired entry does not open");
        // A fresh entry with a live expiry still opens.
        shared.put("p", b"a", b"new", Duration::from_secs(60)).await;
        assert_eq!(shared.get("p", b"a").await.unwrap().expose_secret(), b"new");
    }

    #[tokio::test]
    async fn swapped_or_garbage_entries_are_misses() {
        let memory = MemoryStore::new(100);
        let shared = SharedStore::builder(memory.clone(), SealingKey::generate()).build();
        shared.put("p", b"a", b"value a", Duration::from_secs(60)).await;
        shared.put("p", b"b", b"value b", Duration::from_secs(60)).await;
        let (ka, kb) = (shared.storage_key("p", b"a"), shared.storage_key("p", b"b"));
        let a = memory.get(&ka).await.unwrap().unwrap();
        memory.set(&kb, &a, Duration::from_secs(60)).await.unwrap();
        assert!(shared.get("p", b"b").await.is_none(), "an entry moved to another key opens");
        memory.set(&ka, b"garbage", Duration::from_secs(60)).await.unwrap();
        assert!(shared.get("p", b"a").await.is_none());
        assert_eq!(shared.failures(), 0, "garbage is not a store failure");
        let big = vec![0u8; MAX_ENTRY_BYTES + 1];
        shared.put("p", b"big", &big, Duration::from_secs(60)).await;
        assert!(memory.get(&shared.storage_key("p", b"big")).await.unwrap().is_none());
    }

    /// A store that fails every call until told otherwise, counting calls.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
        memory: MemoryStore,
    }

    impl Store for Flaky {
        // Calls are counted when polled (a store call's future does nothing until then).
        fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                self.memory.get(key).await
            })
        }
        fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    return Err(StoreError::Unavailable("refused".into()));
                }
                self.memory.set(key, value, ttl).await
            })
        }
        fn set_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
            self.memory.set_if_absent(key, value, ttl)
        }
        fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
            self.memory.delete(key)
        }
        fn delete_if_equals<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, bool> {
            self.memory.delete_if_equals(key, value)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_is_bounded_skipped_then_probed() {
        let flaky = Arc::new(Flaky::default());
        let shared = SharedStore::builder_arc(flaky.clone(), SealingKey::generate()).build();
        flaky.down.store(true, Ordering::SeqCst);
        // A hanging call ends at the timeout.
        assert!(shared.get("p", b"k").await.is_none());
        assert_eq!((shared.failures(), shared.is_available()), (1, false));
        // Skipped while down: no call reaches the store.
        let calls = flaky.calls.load(Ordering::SeqCst);
        shared.put("p", b"k", b"v", Duration::from_secs(60)).await;
        assert!(shared.get("p", b"k").await.is_none());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), calls);
        // Back up: the next call after the pause probes it and succeeds.
        flaky.down.store(false, Ordering::SeqCst);
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        shared.put("p", b"k", b"v", Duration::from_secs(60)).await;
        assert!(shared.is_available());
        assert_eq!(shared.get("p", b"k").await.unwrap().expose_secret(), b"v");
        assert_eq!(shared.failures(), 1);
    }
}
