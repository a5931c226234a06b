//! The shared, encrypted token store: the acquired-token caches' second level, shared by the
//! replicas of an application (Redis with the `redis` feature), so that a restart or a second
//! replica neither signs users out nor asks the identity endpoint again.
//!
//! # Design
//!
//! - **A generic contract.** A [`Store`] holds opaque byte blobs with a time to live under
//!   short ASCII keys: `get`, `set`, `delete`, and `set_if_absent`/`delete_if_equals` for a
//!   lock. It knows nothing of tokens, so any cache of azad (acquired tokens; secrets later)
//!   can put its entries in the same store. Backends: [`MemoryStore`] (one process) and
//!   [`RedisStore`] (feature `redis`).
//! - **Sealed entries under hashed keys.** A [`SharedStore`] wraps a store with the
//!   application's [`SealingKey`]: each entry is sealed with AES-256-GCM (aws-lc-rs), a fresh
//!   random nonce per entry, and the associated data `"azad-store" || format version ||
//!   purpose || storage key`, so an entry moved to another key, or read for another purpose
//!   (an on-behalf-of token as an app token), fails authentication. A storage key is
//!   `{namespace}:{SHA-256(format version, namespace, purpose, cache key)}` where the cache key
//!   is itself a SHA-256 (of the token endpoint, client, the incoming assertion or the account,
//!   and the scopes): nothing in the store names a user, tenant or client, and no value holds a
//!   plaintext token, secret or assertion. Entries are bounded ([`MAX_ENTRY_BYTES`]). Key
//!   rotation: seal with the first key, open with any
//!   ([`SharedStoreBuilder::previous_key`]).
//! - **Two levels.** Each acquired-token cache keeps its in-memory level in front: a hit in
//!   memory never touches the network. A miss reads the shared store, then (still a miss) the
//!   identity endpoint; a fetched token is written to both. A stored token lives until its
//!   refresh-ahead time (its lifetime minus the refresh margin: 5 minutes, or half of a
//!   lifetime of two hours or more), after which the next replica to need it refreshes it.
//! - **One fetch across replicas.** Within a process, concurrent misses of one key already
//!   share one request. Across replicas, a miss takes a short lock in the store (`SET NX PX`,
//!   10 s); another replica missing the same key meanwhile polls for the holder's token (every
//!   25 ms, up to 3 s) instead of fetching, then fetches itself if nothing came (the holder
//!   failed or died). Sequential calls on two replicas therefore make one request, and so do
//!   concurrent ones unless the store fails.
//! - **Failures never reach the user.** Every store call is bounded
//!   ([`SharedStoreBuilder::timeout`], 250 ms by default). A failure or timeout turns the
//!   shared level off for a second (memory and identity endpoint only; the request succeeds),
//!   then one call probes the store again. One WARN per outage, one INFO when it answers
//!   again, a counter ([`SharedStore::failures`], and `azad_shared_cache_errors_total` with
//!   the `metrics` feature). An entry that does not open or parse (garbage, tampered, another
//!   key's) is a miss, logged at WARN without its content, and overwritten by the next fetch.
//!
//! Which caches use it: [`TokenClient::with_token_store`](crate::TokenClient::with_token_store)
//! (app tokens and on-behalf-of tokens) and
//! [`SignInClient::with_token_store`](crate::client::signin::SignInClient::with_token_store) (signed-in
//! users' refresh and access tokens, so that a restarted web app keeps its users signed in).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "redis")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use azad_core::ClientCredential;
//! use azad_core::dev::DevTenant;
//! use azad_core::store::{RedisStore, SealingKey, SharedStore};
//! use azad_core::TokenClient;
//!
//! // The same URL and key on every replica (the key from the application's secrets:
//! // `openssl rand -base64 32`). Connecting is lazy: Redis may be down now.
//! let key = SealingKey::from_base64("q83vEi1Y0FQ0Rq1l7pBv6U9f7VZ0M1v3v5L1t6v0C2A=")?;
//! let shared = SharedStore::builder(RedisStore::new("redis://127.0.0.1:6379")?, key).build();
//!
//! let tenant = DevTenant::start().await?;
//! let client = TokenClient::new(&tenant.config(), ClientCredential::secret(tenant.api_client_secret()))
//!     .with_token_store(shared);
//! // Served from memory, else from Redis, else from the token endpoint (and stored in both);
//! // with Redis down, it still succeeds.
//! let token = client.acquire_app_token(&["api://azad-downstream/.default"]).await?;
//! assert!(!token.secret().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod backend;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod sealed;
mod shared;
pub(crate) mod tokens;

pub use self::backend::{Store, StoreError, StoreFuture};
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisStore, RedisStoreOptions};
pub use self::sealed::{SealingKey, SealingKeyError};
pub use self::shared::{DEFAULT_TIMEOUT, MAX_ENTRY_BYTES, SharedStore, SharedStoreBuilder};
