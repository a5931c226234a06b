//! The acquired-token caches' shared level: what an entry holds, its TTL, and single flight
//! across replicas.

use std::borrow::Cow;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::shared::{Lock, SharedStore};
use crate::client::cache::{AcquiredToken, Fetch, SharedFuture, SharedLevel};
use crate::error::TokenError;
use crate::secret::{AccessToken, RefreshToken};

/// Purposes (bound into each entry's storage key and associated data).
pub(crate) mod purpose {
    /// App tokens of [`TokenClient`](crate::TokenClient) (client credentials).
    pub(crate) const APP_TOKEN: &str = "app_token";
    /// On-behalf-of tokens of [`TokenClient`](crate::TokenClient).
    pub(crate) const ON_BEHALF_OF: &str = "on_behalf_of";
    /// Access tokens of signed-in users ([`SignInClient`](crate::client::signin::SignInClient)).
    pub(crate) const USER_TOKEN: &str = "user_token";
    /// Refresh tokens of signed-in users.
    pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
}

/// How long a replica that finds another's lock waits for its token before fetching itself.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// The lock's own lifetime (a replica dying mid-fetch holds it no longer than this).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// Polling interval while another replica fetches.
const LOCK_POLL: Duration = Duration::from_millis(25);
/// A refresh token is kept this long after its last use (Entra's default inactivity lifetime
/// of refresh tokens is 90 days).
pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// A token is not served in its last minute (as the in-memory cache).
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct TokenEntry<'a> {
    /// The access token.
    t: Cow<'a, str>,
    /// Expiry, Unix milliseconds.
    e: u64,
    /// Refresh-ahead time, Unix milliseconds.
    r: u64,
    /// Token type.
    y: Cow<'a, str>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One acquired-token cache's shared level: a [`SharedStore`] and the cache's purpose.
#[derive(Debug, Clone)]
pub(crate) struct SharedTokens {
    store: SharedStore,
    purpose: &'static str,
}

impl SharedTokens {
    pub(crate) fn new(store: SharedStore, purpose: &'static str) -> Self {
        Self { store, purpose }
    }

    /// The token stored under `key`, if still fresh (before its refresh-ahead time and outside
    /// its last minute); an entry that does not parse is a miss.
    pub(crate) async fn load(&self, key: &[u8]) -> Option<AcquiredToken> {
        let plain = self.store.get(self.purpose, key).await?;
        let entry: TokenEntry<'_> = serde_json::from_slice(plain.expose_secret()).ok()?;
        let now = unix_ms(SystemTime::now());
        let expires_in = Duration::from_millis(entry.e.saturating_sub(now));
        let refresh_in = Duration::from_millis(entry.r.saturating_sub(now));
        if refresh_in.is_zero() || expires_in <= EXPIRY_MARGIN {
            return None;
        }
        Some(AcquiredToken::new(
            AccessToken::new(entry.t.into_owned()),
            expires_in,
            Some(refresh_in),
            entry.y.into_owned(),
        ))
    }

    /// Stores `token` under `key` until its refresh-ahead time (its lifetime minus the refresh
    /// margin): another replica past that time refreshes instead of reusing it.
    pub(crate) async fn save(&self, key: &[u8], token: &AcquiredToken) {
        let ttl = token.refresh_at.saturating_duration_since(Instant::now());
        if ttl < Duration::from_secs(1) {
            return;
        }
        let refresh_at = token.expires_at().checked_sub(token.valid_until.saturating_duration_since(token.refresh_at));
        let entry = TokenEntry {
            t: Cow::Borrowed(token.secret()),
            e: unix_ms(token.expires_at()),
            r: refresh_at.map_or(0, unix_ms),
            y: Cow::Borrowed(token.token_type()),
        };
        self.store.put_json(self.purpose, key, &entry, ttl).await;
    }

    /// The shared level of a miss in memory: the stored token, or one fetch across replicas
    /// (a short `SET NX PX` lock; a replica finding it waits for the holder's token, up to
    /// [`LOCK_WAIT`], then fetches itself), stored for the others.
    async fn get_or_fetch_inner<F, Fut>(&self, key: &[u8], fetch: F) -> Result<AcquiredToken, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AcquiredToken, TokenError>>,
    {
        if let Some(token) = self.load(key).await {
            return Ok(token);
        }
        let deadline = Instant::now() + LOCK_WAIT;
        let lock = loop {
            match self.store.try_lock(self.purpose, key, LOCK_TTL).await {
                Lock::Held if Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                    if let Some(token) = self.load(key).await {
                        return Ok(token);
                    }
                }
                other => break other,
            }
        };
        let fetched = fetch().await;
        if let Ok(token) = &fetched {
            self.save(key, token).await;
        }
        self.store.unlock(lock).await;
        fetched
    }
}

impl SharedLevel for SharedTokens {
    fn get_or_fetch<'a>(
        &'a self,
        key: &'a [u8],
        fetch: Fetch<'a>,
    ) -> SharedFuture<'a, Result<AcquiredToken, TokenError>> {
        Box::pin(self.get_or_fetch_inner(key, fetch))
    }

    fn save<'a>(&'a self, key: &'a [u8], token: &'a AcquiredToken) -> SharedFuture<'a, ()> {
        Box::pin(Self::save(self, key, token))
    }
}

#[derive(Serialize, Deserialize)]
struct RefreshEntry<'a> {
    rt: Cow<'a, str>,
}

/// Signed-in users' refresh tokens in the shared store.
#[derive(Debug, Clone)]
pub(crate) struct SharedRefreshTokens {
    store: SharedStore,
}

impl SharedRefreshTokens {
    pub(crate) fn new(store: SharedStore) -> Self {
        Self { store }
    }

    pub(crate) async fn load(&self, key: &[u8]) -> Option<RefreshToken> {
        let plain = self.store.get(purpose::REFRESH_TOKEN, key).await?;
        let mut entry: RefreshEntry<'_> = serde_json::from_slice(plain.expose_secret()).ok()?;
        let token = RefreshToken::new(entry.rt.as_ref());
        if let Cow::Owned(s) = &mut entry.rt {
            s.zeroize();
        }
        Some(token)
    }

    pub(crate) async fn save(&self, key: &[u8], token: &RefreshToken) {
        let entry = RefreshEntry { rt: Cow::Borrowed(token.secret()) };
        self.store.put_json(purpose::REFRESH_TOKEN, key, &entry, REFRESH_TOKEN_TTL).await;
    }

    pub(crate) async fn delete(&self, key: &[u8]) {
        self.store.delete(purpose::REFRESH_TOKEN, key).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::sealed::SealingKey;

    fn token(value: &str, lifetime: u64) -> AcquiredToken {
        AcquiredToken::new(AccessToken::new(value), Duration::from_secs(lifetime), None, "Bearer".into())
    }

    fn shared(memory: &MemoryStore, key: &[u8; 32]) -> SharedTokens {
        let key = SealingKey::new(&secrecy::SecretBox::new(Box::new(*key)));
        SharedTokens::new(SharedStore::builder(memory.clone(), key).build(), purpose::ON_BEHALF_OF)
    }

    #[tokio::test]
    async fn a_token_round_trips_with_its_schedule_and_expires_at_its_refresh_time() {
        let memory = MemoryStore::new(10);
        let level = shared(&memory, &[1; 32]);
        let t = token("the-token", 3600);
        level.save(b"k", &t).await;
        let loaded = level.load(b"k").await.unwrap();
        assert_eq!(loaded.secret(), "the-token");
        assert_eq!(loaded.token_type(), "Bearer");
        let skew = |a: Instant, b: Instant| a.max(b) - a.min(b);
        assert!(skew(loaded.refresh_at, t.refresh_at) < Duration::from_secs(2));
        assert!(skew(loaded.valid_until, t.valid_until) < Duration::from_secs(2));
        // Another replica (same store and key) sees it; another sealing key does not.
        assert_eq!(shared(&memory, &[1; 32]).load(b"k").await.unwrap().secret(), "the-token");
        assert!(shared(&memory, &[2; 32]).load(b"k").await.is_none());
        // A token whose refresh time has come is not stored (another replica must refresh).
        let due = AcquiredToken::new(
            AccessToken::new("due"),
            Duration::from_secs(3600),
            Some(Duration::ZERO),
            "Bearer".into(),
        );
        level.save(b"due", &due).await;
        assert!(level.load(b"due").await.is_none());
    }

    #[tokio::test]
    async fn two_replicas_share_one_fetch() {
        let memory = MemoryStore::new(10);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(token("shared", 3600))
        };
        let (a, b) = (shared(&memory, &[1; 32]), shared(&memory, &[1; 32]));
        let (x, y) = tokio::join!(a.get_or_fetch_inner(b"k", fetch), b.get_or_fetch_inner(b"k", fetch));
        assert_eq!((x.unwrap().secret(), y.unwrap().secret()), ("shared", "shared"));
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "the lock made the second replica wait");
    }

    #[tokio::test]
    async fn refresh_tokens_round_trip() {
        let memory = MemoryStore::new(10);
        let key = SealingKey::generate();
        let level = SharedRefreshTokens::new(SharedStore::builder(memory, key).build());
        level.save(b"user", &RefreshToken::new("rt-1")).await;
        assert_eq!(level.load(b"user").await.unwrap().secret(), "rt-1");
        level.delete(b"user").await;
        assert!(level.load(b"user").await.is_none());
    }
}
