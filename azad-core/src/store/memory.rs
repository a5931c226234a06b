//! An in-process [`Store`]: bounded, entries expire with their TTL.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::backend::{Store, StoreError, StoreFuture};

#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Entry, _: std::time::Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A [`Store`] in this process's memory (moka; bounded, each entry expiring with its TTL).
///
/// Shares sealed entries between clients of one process (several [`TokenClient`](crate::TokenClient)s, a sign-in
/// client and its restarts inside one process, tests); across processes or replicas use the
/// [`RedisStore`](super::RedisStore) (feature `redis`). Cheap to clone: clones share entries.
#[derive(Clone)]
pub struct MemoryStore {
    entries: moka::sync::Cache<String, Entry>,
    /// Compare-and-set for the lock methods (moka's own operations are atomic per call only).
    lock: Arc<Mutex<()>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").field("entries", &self.entries.entry_count()).finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` entries (the least recently used go first).
    #[must_use]
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder().max_capacity(capacity).expire_after(PerEntryTtl).build(),
            lock: Arc::default(),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { Ok(self.entries.get(key).map(|e| e.value.to_vec())) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.entries.insert(key.to_owned(), Entry { value: value.into(), ttl });
            Ok(())
        })
    }

    fn set_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let _guard = self.guard();
            if self.entries.contains_key(key) {
                return Ok(false);
            }
            self.entries.insert(key.to_owned(), Entry { value: value.into(), ttl });
            Ok(true)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.entries.invalidate(key);
            Ok::<_, StoreError>(())
        })
    }

    fn delete_if_equals<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let _guard = self.guard();
            if self.entries.get(key).is_some_and(|e| *e.value == *value) {
                self.entries.invalidate(key);
                return Ok(true);
            }
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_delete_and_lock() {
        let store = MemoryStore::new(10);
        assert_eq!(store.get("k").await.unwrap(), None);
        store.set("k", b"v", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        store.delete("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(store.set_if_absent("l", b"a", Duration::from_secs(60)).await.unwrap());
        assert!(!store.set_if_absent("l", b"b", Duration::from_secs(60)).await.unwrap());
        assert!(!store.delete_if_equals("l", b"b").await.unwrap(), "another holder's lock");
        assert!(store.delete_if_equals("l", b"a").await.unwrap());
        assert!(store.set_if_absent("l", b"b", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn entries_expire_with_their_ttl() {
        let store = MemoryStore::new(10);
        store.set("k", b"v", Duration::from_millis(30)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
    }
}
