//! A [`Store`] on Redis (feature `redis`), through redis-rs's tokio `ConnectionManager`.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::backend::{Store, StoreError, StoreFuture};

/// Deletes `KEYS[1]` only if it holds `ARGV[1]`: releasing a lock never removes another
/// holder's (the pattern of Redis's `SET` documentation, "Patterns").
const DELETE_IF_EQUALS: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Connection bounds of a [`RedisStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStoreOptions {
    /// Bound on establishing a connection (default 250 ms).
    pub connection_timeout: Duration,
    /// Bound on each command's answer (default 250 ms).
    pub response_timeout: Duration,
    /// Reconnection attempts per failure before the call fails (default 1; the next call
    /// tries again, so the store reconnects by itself whenever Redis is back).
    pub reconnect_attempts: usize,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_millis(250),
            response_timeout: Duration::from_millis(250),
            reconnect_attempts: 1,
        }
    }
}

/// A [`Store`] on a Redis server (or anything speaking its protocol: Valkey, Azure Cache for
/// Redis...): `GET`, `SET … PX`, `SET … NX PX`, `DEL`, and one `EVAL` for compare-and-delete.
///
/// One multiplexed connection, managed by redis-rs's `ConnectionManager`: it is opened lazily
/// (a server down at start-up is not an error: the shared store serves from memory until it
/// answers) and reopened by itself after a failure. Cheap to clone.
///
/// The URL is `redis://[[user]:password@]host[:port][/db]` (Redis's URI scheme); `rediss://`
/// (TLS) is not compiled in. Its password never appears in `Debug`.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// `redis://host:port/db`, without credentials, for logs.
    address: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisStore").field(&self.address).finish()
    }
}

impl RedisStore {
    /// A store on the server at `url`, with the default [`RedisStoreOptions`]. Connects on first
    /// use; must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URL is not a Redis URL (nothing is sent).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_options(url, RedisStoreOptions::default())
    }

    /// [`new`](Self::new) with other connection bounds.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(url: &str, options: RedisStoreOptions) -> Result<Self, StoreError> {
        let address = url::Url::parse(url).map_or_else(
            |_| "redis://[unparsable]".to_owned(),
            |u| {
                format!(
                    "{}://{}:{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port().unwrap_or(6379),
                    u.path()
                )
            },
        );
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("not a Redis URL ({})", e.category())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connection_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(options.reconnect_attempts)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Unavailable(e.category().to_owned()))?;
        Ok(Self { connection, address })
    }

    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        command.query_async(&mut connection).await.map_err(|e| {
            // The error's kind and detail only: redis-rs never puts a command's arguments
            // (sealed values, keys) in its errors.
            let detail = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
            StoreError::Unavailable(detail)
        })
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(key);
            self.query(cmd).await
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value).arg("PX").arg(millis(ttl));
            self.query(cmd).await
        })
    }

    fn set_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value).arg("NX").arg("PX").arg(millis(ttl));
            let answer: Option<String> = self.query(cmd).await?;
            Ok(answer.is_some())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            self.query::<i64>(cmd).await.map(|_| ())
        })
    }

    fn delete_if_equals<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(DELETE_IF_EQUALS).arg(1).arg(key).arg(value);
            self.query::<i64>(cmd).await.map(|n| n == 1)
        })
    }
}
