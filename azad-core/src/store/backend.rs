//! The storage contract behind the shared level: opaque byte blobs with a time to live.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a [`Store`] operation returns: a boxed future, so that the trait stays object safe
/// (`Arc<dyn Store>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store operation failed. Never carries a key's owner or a value: only what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within the bound (the
    /// [`SharedStoreBuilder::timeout`](super::SharedStoreBuilder::timeout), or the store's own).
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store is unreachable or answered an error (connection refused, reset, `-ERR`...).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// A key-value store for sealed entries: the backend of a [`SharedStore`](super::SharedStore).
///
/// Keys are short ASCII strings that the shared store derived by hashing (they name no user,
/// tenant or client); values are opaque, already sealed (AES-256-GCM) byte blobs. A store never
/// sees a plaintext token or secret, so an implementation need not (and must not try to)
/// interpret what it holds.
///
/// Every method should answer promptly: the shared store bounds each call with its own timeout
/// anyway and treats an error as "store down" (memory only), never as an error for the caller.
///
/// Implementations: [`MemoryStore`](super::MemoryStore) (one process) and, with the `redis`
/// feature, [`RedisStore`](super::RedisStore).
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The value under `key`, or `None` when absent or expired.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Stores `value` under `key` for `ttl` (replacing any value).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;

    /// Stores `value` under `key` for `ttl` only if `key` is absent (Redis `SET NX PX`);
    /// `true` when it was stored. The shared store's cross-replica lock.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn set_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool>;

    /// Removes `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Removes `key` only if it holds `value` (atomically); `true` when removed. Releases a
    /// lock taken with [`set_if_absent`](Self::set_if_absent) without removing another
    /// holder's lock.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn delete_if_equals<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, bool>;
}
