//! The validated-token cache: tokens that passed every check, served again without verifying
//! them, until they expire or the key set that verified them is replaced.
//!
//! - **Bounded**: at most the configured capacity (`validated_token_cache_capacity`); when full,
//!   quick_cache's S3-FIFO-like policy (CLOCK) evicts, so a flood of distinct tokens keeps the
//!   memory flat.
//! - **Read-optimised**: a hit takes a per-thread read lock of one shard (crossbeam's
//!   `ShardedLock`, through quick_cache's `sharded-lock` feature) and sets a reference bit; no
//!   shared write, no read log, no clock read on the cache's side. Two threads hitting it do not
//!   contend.
//! - **Keyed by a fast hash, proven by the token**: the key is a 64-bit foldhash (its
//!   `quality` variant, with per-process seeds) of the end of the token's signature segment.
//!   The key only picks the slot: an entry serves a token only if the token is the very one it
//!   holds, byte for byte ([`CachedToken::serves`]). So a collision (by chance, or crafted:
//!   foldhash makes no claim of resisting that) can at worst cost a miss and a full
//!   validation, never serve one token's claims for another. Only tokens that passed every
//!   check are inserted, so nobody without valid tokens can fill a slot; the hash needs no
//!   cryptographic strength, only speed (it runs on every request) and an even spread over
//!   signatures, which are uniformly random anyway.
//! - **Expiry is checked on every hit**, against the token's own `exp`; entries whose `exp`
//!   passed are dropped when next looked up, and otherwise aged out by capacity.
//! - **Key-set changes invalidate**: each entry carries the generation of the key set that
//!   verified it, and serves only while that generation is current (the validator also clears
//!   the cache when the generation moves).
//! - **Hot tokens, per thread**: a token this thread served from the shared map twice among
//!   its recent hits gets a copy of its own in a small thread-local table of [`HOT_ENTRIES`]
//!   places, if a place is free or holds a copy with fewer hits (see [`Hot`]). Every
//!   hit hands out reference-counted handles that the request clones and drops several times;
//!   with one token on every core (a daemon calling with its app token), those counts were one
//!   cache line that all cores wrote, and two threads looked up more slowly than one. A copy
//!   serves only after the same three checks as the shared entry (generation, `exp`, the whole
//!   token), so it never outlives the trust of the entry it was copied from.

use std::cell::RefCell;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::secret::BearerToken;
use crate::validation::claims::Claims;

/// One validated token.
#[derive(Clone)]
pub(super) struct CachedToken {
    pub(super) claims: Arc<Claims>,
    /// The token itself: a hit must be the very same token, byte for byte. The claims read
    /// their untyped members from it too (no second copy of the payload).
    pub(super) token: BearerToken,
    pub(super) exp: i64,
    pub(super) generation: u64,
}

impl CachedToken {
    /// Whether this entry may answer for `token` now: the key set that verified it is still
    /// the current one, it has not expired, and it is the same token (compared in full: the
    /// cache key is not a proof of anything).
    pub(super) fn serves(&self, token: &[u8], generation: u64, now: i64) -> bool {
        self.generation == generation && now < self.exp && self.token.secret().as_bytes() == token
    }

    /// Same token (whatever its expiry or generation).
    pub(super) fn is(&self, token: &str) -> bool {
        self.token.secret() == token
    }
}

/// How many of a token's last characters its slot key hashes.
const KEYED_SUFFIX: usize = 64;

/// What the cache holds for a token.
pub(super) enum Served {
    /// An entry that serves it now.
    Hit(CachedToken),
    /// Its entry, expired or verified by a key set no longer current: to drop.
    Stale,
    /// Nothing for it (an empty slot, or another token's entry).
    Absent,
}

impl Served {
    /// The entry, on a hit.
    pub(super) fn hit(self) -> Option<CachedToken> {
        match self {
            Self::Hit(entry) => Some(entry),
            Self::Stale | Self::Absent => None,
        }
    }
}

/// The 64-bit slot key of a token: already a keyed hash, used as is by the map.
pub(super) type TokenKey = u64;

/// Passes the (already keyed, uniformly distributed) [`TokenKey`] through.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; fold anything else in all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// How many hot tokens each thread keeps a copy of, and how many candidates (tokens it served
/// from the shared map lately) it counts hits of.
pub(super) const HOT_ENTRIES: usize = 8;

/// Every this many of a thread's lookups, its copies' and candidates' hit counts are halved, so
/// that a token that was hot and is no more can be displaced, and a candidate's count reflects
/// its recent hits.
const HOT_AGING: u32 = 256;

/// A thread's copy of a hot entry.
struct HotEntry {
    /// The cache it belongs to (see [`NEXT_CACHE_ID`]) and its slot key.
    id: u64,
    key: TokenKey,
    copy: CachedToken,
    /// Hits since it was copied (halved every [`HOT_AGING`] lookups of the thread).
    hits: u32,
}

/// One thread's copies of hot entries, across every validator (told apart by cache id).
///
/// Admission is by frequency: a candidate is copied on its second hit from the shared map,
/// into a free place or over the copy with the fewest hits, and only if that copy has fewer
/// hits than the candidate. A thread that serves more users than it has places thus keeps the
/// copies it has instead of copying (allocating) on a large share of its hits, which a
/// "second hit among the last few" rule did with 9 to 32 users in turn.
struct Hot {
    entries: [Option<HotEntry>; HOT_ENTRIES],
    /// `(cache id, slot key, hits)` of candidates: this thread's recent hits served from the
    /// shared map (cache id 0: an empty place), replaced oldest first.
    recent: [(u64, TokenKey, u32); HOT_ENTRIES],
    recent_next: usize,
    /// This thread's lookups, for aging.
    ticks: u32,
}

impl Hot {
    const fn new() -> Self {
        Self { entries: [const { None }; HOT_ENTRIES], recent: [(0, 0, 0); HOT_ENTRIES], recent_next: 0, ticks: 0 }
    }

    /// Counts a lookup of this thread and ages the counts every [`HOT_AGING`] lookups.
    fn tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(HOT_AGING) {
            for entry in self.entries.iter_mut().flatten() {
                entry.hits /= 2;
            }
            for candidate in &mut self.recent {
                candidate.2 /= 2;
            }
        }
    }

    /// Counts a hit of `(id, key)` served from the shared map; returns its place among the
    /// candidates and its count. One pass: its own place, else a place freed by an admitted
    /// candidate, else the oldest.
    fn count_candidate(&mut self, id: u64, key: TokenKey) -> (usize, u32) {
        let mut free = None;
        for (at, candidate) in self.recent.iter_mut().enumerate() {
            if candidate.0 == id && candidate.1 == key {
                candidate.2 = candidate.2.saturating_add(1);
                return (at, candidate.2);
            }
            if candidate.0 == 0 && free.is_none() {
                free = Some(at);
            }
        }
        let at = free.unwrap_or_else(|| {
            let at = self.recent_next;
            self.recent_next = (at + 1) % HOT_ENTRIES;
            at
        });
        self.recent[at] = (id, key, 1);
        (at, 1)
    }

    /// The place a candidate with `hits` would take: a free one, else the copy with the fewest
    /// hits if it has fewer than `hits`.
    fn place_for(&self, hits: u32) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (at, entry) in self.entries.iter().enumerate() {
            let Some(entry) = entry else { return Some(at) };
            if best.is_none_or(|(_, fewest)| entry.hits < fewest) {
                best = Some((at, entry.hits));
            }
        }
        best.filter(|(_, fewest)| *fewest < hits).map(|(at, _)| at)
    }
}

thread_local! {
    static HOT: RefCell<Hot> = const { RefCell::new(Hot::new()) };
}

#[cfg(test)]
thread_local! {
    /// How many copies of hot entries this thread made (tests).
    pub(super) static COPIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Ids of caches, so that one thread's hot copies never serve another validator (0: none).
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

impl CachedToken {
    /// A copy that shares no reference count with `self` (the claims and the token copied).
    fn own_copy(&self) -> Self {
        #[cfg(test)]
        COPIES.with(|c| c.set(c.get() + 1));
        Self {
            claims: Arc::new((*self.claims).clone()),
            token: BearerToken::new(self.token.secret()),
            exp: self.exp,
            generation: self.generation,
        }
    }
}

/// The validated-token cache of one validator.
pub(super) struct ValidatedTokens {
    /// Tells this cache's hot copies from other validators' in the thread-local table.
    id: u64,
    map: quick_cache::sync::Cache<TokenKey, CachedToken, quick_cache::UnitWeighter, BuildHasherDefault<KeyHasher>>,
    /// Seeds of this cache (per process, per validator).
    hasher: foldhash::quality::RandomState,
    /// Hash of the validator's configuration: part of every key.
    salt: u64,
}

impl ValidatedTokens {
    /// A cache of at most `capacity` tokens; `salt` identifies the validator's configuration.
    pub(super) fn new(capacity: u64, salt: &[u8]) -> Self {
        let items = usize::try_from(capacity).unwrap_or(usize::MAX);
        let hasher = foldhash::quality::RandomState::default();
        let salt = hasher.hash_one(salt);
        Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            map: quick_cache::sync::Cache::with(
                items,
                capacity,
                quick_cache::UnitWeighter,
                BuildHasherDefault::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            hasher,
            salt,
        }
    }

    /// The slot key of `token`: a keyed hash of the last 64 characters of the token, which
    /// are signature (an RS256 signature is 342 characters; 64 of them are 384 bits of it).
    /// Only a slot: a hit still compares the whole token, so any two tokens may share a key.
    /// Hashing 64 bytes instead of the whole signature keeps the hash to a few nanoseconds.
    pub(super) fn key(&self, token: &[u8]) -> TokenKey {
        let tail = &token[token.len().saturating_sub(KEYED_SUFFIX)..];
        let mut h = self.hasher.build_hasher();
        h.write_u64(self.salt);
        h.write(tail);
        h.finish()
    }

    /// The entry in `key`'s slot, if any, whatever token it holds (tests).
    #[cfg(test)]
    pub(super) fn get(&self, key: TokenKey) -> Option<CachedToken> {
        self.map.get(&key)
    }

    /// The entry that serves `token` now (same token, `generation` current, not expired at
    /// `now`): this thread's own copy if the token is hot here, else the shared entry (copied
    /// for this thread on a later hit if [`Hot`]'s admission lets it in). Anything but a hit
    /// tells whether the slot holds this token's stale entry, for the caller to drop.
    pub(super) fn serve(&self, key: TokenKey, token: &[u8], generation: u64, now: i64) -> Served {
        let served = HOT.try_with(|hot| {
            let Ok(mut hot) = hot.try_borrow_mut() else { return self.serve_shared(key, token, generation, now) };
            hot.tick();
            if let Some(slot) =
                hot.entries.iter_mut().find(|e| e.as_ref().is_some_and(|e| e.id == self.id && e.key == key))
            {
                if let Some(entry) = slot.as_mut()
                    && entry.copy.serves(token, generation, now)
                {
                    entry.hits = entry.hits.saturating_add(1);
                    return Served::Hit(entry.copy.clone());
                }
                // Stale, or another token in the slot: the shared map decides.
                *slot = None;
            }
            let shared = match self.serve_shared(key, token, generation, now) {
                Served::Hit(shared) => shared,
                other => return other,
            };
            let (candidate, hits) = hot.count_candidate(self.id, key);
            if hits >= 2
                && let Some(at) = hot.place_for(hits)
            {
                let copy = shared.own_copy();
                hot.entries[at] = Some(HotEntry { id: self.id, key, copy: copy.clone(), hits });
                hot.recent[candidate] = (0, 0, 0);
                return Served::Hit(copy);
            }
            Served::Hit(shared)
        });
        served.unwrap_or_else(|_| self.serve_shared(key, token, generation, now))
    }

    /// Whether `claims` is the shared entry's of `key`, or this thread's copy of it (tests:
    /// "served from the cache" is identity with one of those, never a new validation).
    #[cfg(test)]
    pub(super) fn holds(&self, key: TokenKey, claims: &Arc<Claims>) -> bool {
        self.map.get(&key).is_some_and(|e| Arc::ptr_eq(&e.claims, claims))
            || HOT.with_borrow(|hot| {
                hot.entries
                    .iter()
                    .flatten()
                    .any(|e| e.id == self.id && e.key == key && Arc::ptr_eq(&e.copy.claims, claims))
            })
    }

    /// Whether this thread holds a copy of `key`'s entry.
    #[cfg(test)]
    pub(super) fn is_hot_here(&self, key: TokenKey) -> bool {
        HOT.with_borrow(|hot| hot.entries.iter().flatten().any(|e| e.id == self.id && e.key == key))
    }

    fn serve_shared(&self, key: TokenKey, token: &[u8], generation: u64, now: i64) -> Served {
        match self.map.get(&key) {
            Some(entry) if entry.serves(token, generation, now) => Served::Hit(entry),
            Some(entry) if entry.token.secret().as_bytes() == token => Served::Stale,
            _ => Served::Absent,
        }
    }

    /// Stores a validated token, replacing whatever held its slot.
    pub(super) fn insert(&self, key: TokenKey, entry: CachedToken) {
        self.map.insert(key, entry);
    }

    /// Drops the entry of `token` (expired, or verified by a withdrawn key set); an entry of
    /// another token in the same slot stays.
    pub(super) fn invalidate(&self, key: TokenKey, token: &str) {
        self.map.remove_if(&key, |entry| entry.is(token));
    }

    /// Drops every entry (the key set changed).
    pub(super) fn invalidate_all(&self) {
        self.map.clear();
    }

    /// The number of cached tokens.
    pub(super) fn entry_count(&self) -> u64 {
        self.map.len() as u64
    }
}
