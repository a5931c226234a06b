//! The acquired-token cache: bounded (moka), refresh ahead of expiry, single flight per key.
//!
//! - A fresh entry is served as is.
//! - Past its refresh time but still valid, one caller refreshes (concurrent callers share the
//!   refresh); if the refresh fails, the token is served only if it is *still* valid (outside
//!   its last minute) when the refresh gives up, and the next attempt waits a back-off.
//! - Absent or expired: one fetch per key however many callers wait for it.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::error::TokenError;
use crate::secret::AccessToken;

/// A token is not served in its last minute: it could expire in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// No acquired token is kept longer than this, whatever the server says.
const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// After a failed refresh-ahead, wait this long before the next attempt.
const REFRESH_BACKOFF: Duration = Duration::from_secs(30);

/// An access token acquired from a token endpoint or a managed identity.
#[derive(Clone)]
pub struct AcquiredToken {
    token: AccessToken,
    expires_at: SystemTime,
    pub(crate) valid_until: Instant,
    pub(crate) refresh_at: Instant,
    /// Shared by clones: a cache hit hands out a clone without allocating.
    token_type: Arc<str>,
}

impl fmt::Debug for AcquiredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquiredToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl AcquiredToken {
    /// A token valid for `expires_in` from now. Refreshed ahead of expiry: 5 minutes before,
    /// or at half-life for tokens living two hours or more (or at `refresh_in` when the
    /// server says so).
    pub(crate) fn new(
        token: AccessToken,
        expires_in: Duration,
        refresh_in: Option<Duration>,
        token_type: String,
    ) -> Self {
        // The lifetime comes from the server: bound it, so that no answer can overflow a clock.
        let expires_in = expires_in.min(MAX_LIFETIME);
        let now = Instant::now();
        let refresh_in = refresh_in.unwrap_or(if expires_in >= Duration::from_secs(2 * 3600) {
            expires_in / 2
        } else {
            expires_in.saturating_sub(Duration::from_secs(300))
        });
        Self {
            token,
            expires_at: SystemTime::now() + expires_in,
            valid_until: now + expires_in,
            refresh_at: now + refresh_in.min(expires_in),
            token_type: token_type.into(),
        }
    }

    /// The access token.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The token value, for an `Authorization: Bearer` header.
    ///
    /// # Security Warning
    ///
    /// Send it only to the API it was issued for; never log it.
    #[must_use]
    pub fn secret(&self) -> &str {
        self.token.secret()
    }

    /// When the token expires.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The token type (`Bearer`).
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    fn usable(&self, now: Instant) -> bool {
        now + EXPIRY_MARGIN < self.valid_until
    }
}

/// A boxed future of the shared level.
pub(crate) type SharedFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The fetch a [`SharedLevel`] runs when it holds no token (at most once).
pub(crate) type Fetch<'a> = Box<dyn FnOnce() -> SharedFuture<'a, Result<AcquiredToken, TokenError>> + Send + 'a>;

/// The second level of a [`TokenCache`], shared by replicas (implemented in `store::tokens`;
/// defined here so that this cache does not depend on the store).
pub(crate) trait SharedLevel: Send + Sync {
    /// The token stored under `key`, else the result of `fetch` (stored for the others).
    fn get_or_fetch<'a>(
        &'a self,
        key: &'a [u8],
        fetch: Fetch<'a>,
    ) -> SharedFuture<'a, Result<AcquiredToken, TokenError>>;
    /// Stores `token` under `key`.
    fn save<'a>(&'a self, key: &'a [u8], token: &'a AcquiredToken) -> SharedFuture<'a, ()>;
}

pub(crate) struct TokenCache<K> {
    /// Acquired tokens: synchronous reads on the hot path.
    tokens: moka::sync::Cache<K, Arc<AcquiredToken>>,
    /// Fetches in flight, so that concurrent callers of one key share one request.
    inflight: moka::future::Cache<K, Arc<AcquiredToken>>,
    /// Fetches carrying a claims challenge in flight, per key and challenge: when a downstream
    /// revokes a token that many calls in flight carry, each is challenged at once, and they
    /// share one new token instead of asking the identity endpoint once each.
    claims_inflight: moka::future::Cache<(K, Arc<str>), Arc<AcquiredToken>>,
    /// The shared level behind memory (over a [`SharedStore`](crate::store::SharedStore)), if any.
    pub(crate) shared: Option<Arc<dyn SharedLevel>>,
}

struct UntilExpiry;

impl<K> moka::Expiry<K, Arc<AcquiredToken>> for UntilExpiry {
    fn expire_after_create(&self, _: &K, value: &Arc<AcquiredToken>, _: std::time::Instant) -> Option<Duration> {
        Some(value.valid_until.saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        key: &K,
        value: &Arc<AcquiredToken>,
        updated_at: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

impl<K: Hash + Eq + Clone + AsRef<[u8]> + Send + Sync + 'static> TokenCache<K> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            tokens: moka::sync::Cache::builder().max_capacity(capacity).expire_after(UntilExpiry).build(),
            inflight: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(60))
                .build(),
            claims_inflight: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(60))
                .build(),
            shared: None,
        }
    }

    /// [`get_or_fetch`](Self::get_or_fetch), or with a claims challenge
    /// [`fetch_with_claims`](Self::fetch_with_claims): what a token request asks of its cache.
    pub(crate) async fn serve<F, Fut>(
        &self,
        key: K,
        claims: Option<&str>,
        bypass: bool,
        fetch: F,
    ) -> Result<Arc<AcquiredToken>, TokenError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AcquiredToken, TokenError>> + Send,
    {
        match claims {
            Some(claims) => self.fetch_with_claims(key, claims, fetch).await,
            None => self.get_or_fetch(key, bypass, fetch).await,
        }
    }

    /// A new token for `key` that satisfies the claims challenge `claims`, past the cache, and
    /// stored as `key`'s token. Concurrent callers with the same key and challenge share one
    /// fetch.
    pub(crate) async fn fetch_with_claims<F, Fut>(
        &self,
        key: K,
        claims: &str,
        fetch: F,
    ) -> Result<Arc<AcquiredToken>, TokenError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AcquiredToken, TokenError>> + Send,
    {
        let inflight = (key.clone(), Arc::<str>::from(claims));
        let result = self.claims_inflight.try_get_with(inflight.clone(), self.fetch_and_store(key, fetch)).await;
        self.claims_inflight.invalidate(&inflight).await;
        result.map_err(|e| (*e).clone())
    }

    /// Fetches a new token for `key` and stores it, in memory and in the shared level.
    async fn fetch_and_store<F, Fut>(&self, key: K, fetch: F) -> Result<Arc<AcquiredToken>, TokenError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AcquiredToken, TokenError>> + Send,
    {
        let token = Arc::new(fetch().await?);
        if let Some(shared) = &self.shared {
            shared.save(key.as_ref(), &token).await;
        }
        self.tokens.insert(key, token.clone());
        Ok(token)
    }

    /// Serves `key` from the cache, refreshing ahead or fetching as needed. `bypass` (a forced
    /// refresh; a claims challenge goes through [`fetch_with_claims`](Self::fetch_with_claims))
    /// fetches anew and stores the result.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        key: K,
        bypass: bool,
        fetch: F,
    ) -> Result<Arc<AcquiredToken>, TokenError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AcquiredToken, TokenError>> + Send,
    {
        if bypass {
            return self.fetch_and_store(key, fetch).await;
        }
        let now = Instant::now();
        let stale = match self.tokens.get(&key) {
            Some(entry) if now < entry.refresh_at && entry.usable(now) => return Ok(entry),
            Some(entry) if entry.usable(now) => Some(entry),
            Some(_) => {
                self.tokens.invalidate(&key);
                None
            }
            None => None,
        };
        match (self.coalesced(key.clone(), fetch).await, stale) {
            (Ok(token), _) => Ok(token),
            (Err(e), None) => Err(e),
            // "Still usable" was decided before the refresh, which may have taken minutes
            // (managed identity retries with back-off): look at the clock again after the await.
            (Err(e), Some(stale)) if !stale.usable(Instant::now()) => {
                self.tokens.invalidate(&key);
                Err(e)
            }
            (Err(error), Some(stale)) => {
                tracing::warn!(
                    target: "azad::token",
                    error = %error,
                    "refreshing a token ahead of its expiry failed; serving the cached token, which is still valid"
                );
                let mut kept = (*stale).clone();
                kept.refresh_at = Instant::now() + REFRESH_BACKOFF;
                let kept = Arc::new(kept);
                self.tokens.insert(key, kept.clone());
                Ok(kept)
            }
        }
    }

    /// One fetch per key at a time: concurrent callers wait for it and share its outcome.
    async fn coalesced<F, Fut>(&self, key: K, fetch: F) -> Result<Arc<AcquiredToken>, TokenError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AcquiredToken, TokenError>> + Send,
    {
        let (tokens, shared) = (&self.tokens, &self.shared);
        let k = key.clone();
        let result = self
            .inflight
            .try_get_with(key.clone(), async move {
                // Memory missed: the shared level (another replica's token, or one fetch
                // across replicas), else the identity endpoint.
                let token = Arc::new(match shared {
                    Some(shared) => shared.get_or_fetch(k.as_ref(), Box::new(move || Box::pin(fetch()))).await?,
                    None => fetch().await?,
                });
                tokens.insert(k, token.clone());
                Ok::<_, TokenError>(token)
            })
            .await;
        self.inflight.invalidate(&key).await;
        result.map_err(|e| (*e).clone())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.tokens.run_pending_tasks();
        self.tokens.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::HttpError;

    fn token(value: &str, lifetime: u64) -> AcquiredToken {
        AcquiredToken::new(AccessToken::new(value), Duration::from_secs(lifetime), None, "Bearer".into())
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_schedule() {
        let short = token("a", 3600);
        assert_eq!(short.refresh_at - Instant::now(), Duration::from_secs(3300));
        let long = token("b", 24 * 3600);
        assert_eq!(long.refresh_at - Instant::now(), Duration::from_secs(12 * 3600));
        let server = AcquiredToken::new(
            AccessToken::new("c"),
            Duration::from_secs(3600),
            Some(Duration::from_secs(600)),
            "Bearer".into(),
        );
        assert_eq!(server.refresh_at - Instant::now(), Duration::from_secs(600));
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_lifetimes_are_bounded() {
        let t = token("a", u64::MAX);
        assert_eq!(t.valid_until - Instant::now(), MAX_LIFETIME);
    }

    /// Calls challenged at once with one claims challenge share one new token, which then
    /// serves the key; another challenge gets its own fetch.
    #[tokio::test]
    async fn concurrent_fetches_with_one_claims_challenge_share_one_request() {
        let cache = TokenCache::<String>::new(10);
        let fetches = AtomicUsize::new(0);
        let fetch = |value: &'static str| {
            let fetches = &fetches;
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(token(value, 3600))
            }
        };
        let (a, b, c) = tokio::join!(
            cache.fetch_with_claims(
                "k".into(),
                r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#,
                fetch("new")
            ),
            cache.fetch_with_claims(
                "k".into(),
                r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#,
                fetch("new")
            ),
            cache.fetch_with_claims(
                "k".into(),
                r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#,
                fetch("other")
            ),
        );
        assert_eq!((a.unwrap().secret(), b.unwrap().secret()), ("new", "new"));
        assert_eq!(c.unwrap().secret(), "other");
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "one fetch per challenge");
        // The key now serves the last new token, without another fetch.
        let served = cache.get_or_fetch("k".into(), false, fetch("unused")).await.unwrap();
        assert!(["new", "other"].contains(&served.secret()));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_entries_are_served_without_fetching() {
        let cache = TokenCache::<String>::new(10);
        let fetches = AtomicUsize::new(0);
        for _ in 0..5 {
            let t = cache
                .get_or_fetch("k".into(), false, || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Ok(token("one", 3600))
                })
                .await
                .unwrap();
            assert_eq!(t.secret(), "one");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_ahead_serves_the_valid_token_then_backs_off() {
        let cache = TokenCache::<String>::new(10);
        cache.get_or_fetch("k".into(), false, || async { Ok(token("first", 3600)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(3400)).await; // past refresh_at, still valid
        let fetches = AtomicUsize::new(0);
        let failing = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Err(TokenError::Request(HttpError::new(crate::HttpErrorKind::Timeout, None)))
        };
        assert_eq!(cache.get_or_fetch("k".into(), false, failing).await.unwrap().secret(), "first");
        // Within the back-off: no new attempt.
        assert_eq!(cache.get_or_fetch("k".into(), false, failing).await.unwrap().secret(), "first");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(REFRESH_BACKOFF).await;
        let t = cache.get_or_fetch("k".into(), false, || async { Ok(token("second", 3600)) }).await.unwrap();
        assert_eq!(t.secret(), "second");
        // Once expired, a failure is an error.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(cache.get_or_fetch("k".into(), false, failing).await.is_err());
    }

    /// A refresh-ahead that fails only after the cached token expired (managed identity: several
    /// attempts with back-off) must not hand out the expired token.
    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_that_outlives_the_token_is_an_error() {
        let cache = TokenCache::<String>::new(10);
        cache.get_or_fetch("k".into(), false, || async { Ok(token("first", 3600)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(3400)).await; // past refresh_at, still valid
        let slow_failure = || async {
            tokio::time::sleep(Duration::from_secs(300)).await; // the token expires meanwhile
            Err(TokenError::Request(HttpError::new(crate::HttpErrorKind::Timeout, None)))
        };
        let outcome = cache.get_or_fetch("k".into(), false, slow_failure).await;
        assert!(outcome.is_err(), "an expired token was served: {outcome:?}");
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    /// The same when the failing refresh ends inside the token's last minute (the token client's
    /// one retry after a second): the token is not served where it could expire in flight.
    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_ending_in_the_last_minute_is_an_error() {
        let cache = TokenCache::<String>::new(10);
        cache.get_or_fetch("k".into(), false, || async { Ok(token("first", 3600)) }).await.unwrap();
        // 1 s before the last minute begins.
        tokio::time::advance(Duration::from_secs(3600 - 60 - 1)).await;
        let failure_after_retry = || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(TokenError::Request(HttpError::new(crate::HttpErrorKind::Timeout, None)))
        };
        assert!(cache.get_or_fetch("k".into(), false, failure_after_retry).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn bypass_fetches_and_stores() {
        let cache = TokenCache::<String>::new(10);
        cache.get_or_fetch("k".into(), false, || async { Ok(token("old", 3600)) }).await.unwrap();
        let t = cache.get_or_fetch("k".into(), true, || async { Ok(token("challenged", 3600)) }).await.unwrap();
        assert_eq!(t.secret(), "challenged");
        let t = cache.get_or_fetch("k".into(), false, || async { Ok(token("never", 3600)) }).await.unwrap();
        assert_eq!(t.secret(), "challenged");
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_flight_per_key() {
        let cache = Arc::new(TokenCache::<String>::new(10));
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch("same".into(), false, || async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(token("t", 3600))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().secret(), "t");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}
