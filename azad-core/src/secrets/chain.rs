//! [`SecretChain`]: sources tried in order, each with bounded retries and exponential back-off
//! with jitter; a later source serves when an earlier one fails, and its answer is marked
//! degraded (an audit event at WARN); no source at all is [`SecretError::AllSourcesFailed`]
//! naming each source's failure (an event at ERROR). Nothing falls back silently.
//!
//! # Not found is not a failure
//!
//! A source answering [`SecretError::NotFound`] is consulted normally: the chain goes on to the
//! next source, and an answer found there is **not** degraded (the chain is then a layered
//! lookup: Key Vault for what it holds, the environment for the rest). Set
//! [`SecretChain::with_not_found_falls_through`]`(false)` to make the first source
//! authoritative: its `NotFound` ends the read. Every other failure (unavailable after
//! retries, denied, invalid response, misconfigured) falls through and marks a later answer
//! degraded.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::audit;
use super::source::{SecretError, SecretSource, SecretValue, SourceFailure};

/// How often and how long the chain retries one source's transient failures
/// ([`SecretError::Unavailable`]) before moving to the next.
///
/// The wait before retry `n` (1-based) is `initial_backoff × 2^(n-1)`, capped at
/// `max_backoff`, then "full jitter": a uniformly random duration in `[wait/2, wait]`. A
/// server's `Retry-After` is honoured up to `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretRetryPolicy {
    /// Attempts per source, the first included (default 3; at least 1).
    pub max_attempts: u32,
    /// The first wait (default 200 ms).
    pub initial_backoff: Duration,
    /// The longest wait (default 5 s).
    pub max_backoff: Duration,
}

impl Default for SecretRetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 3, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(5) }
    }
}

impl SecretRetryPolicy {
    /// No retries: one attempt per source.
    #[must_use]
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// `max_attempts` attempts per source, waits from `initial_backoff` up to `max_backoff`.
    #[must_use]
    pub fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self { max_attempts: max_attempts.max(1), initial_backoff, max_backoff }
    }

    /// The wait before retry `retry` (1-based), jitter applied, a `Retry-After` honoured.
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let wait = exp.min(self.max_backoff);
        let jittered = jitter(wait);
        match retry_after {
            Some(server) => server.min(self.max_backoff).max(jittered),
            None => jittered,
        }
    }
}

/// A uniformly random duration in `[wait/2, wait]`.
fn jitter(wait: Duration) -> Duration {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return wait;
    }
    #[allow(clippy::cast_precision_loss)]
    let fraction = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    wait.mul_f64(0.5 + fraction / 2.0)
}

/// A secret as the chain (or the cache) serves it: the value, which source served it, and
/// whether it is degraded (an earlier source failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSecret {
    value: SecretValue,
    source: Arc<str>,
    degraded: bool,
}

impl ResolvedSecret {
    pub(crate) fn new(value: SecretValue, source: Arc<str>, degraded: bool) -> Self {
        Self { value, source, degraded }
    }

    /// The value and its metadata.
    #[must_use]
    pub fn value(&self) -> &SecretValue {
        &self.value
    }

    /// The secret value (see [`SecretValue::expose`]).
    #[must_use]
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// The source's version of the value.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.value.version()
    }

    /// The [`SecretSource::name`] of the source that served it.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `true` when an earlier source failed and a fallback served.
    #[must_use]
    pub fn degraded(&self) -> bool {
        self.degraded
    }
}

/// Sources tried in order, each with bounded retries and exponential back-off with jitter; a
/// later source serves when an earlier one fails, and its answer is marked degraded (an audit
/// event at WARN); no source at all is [`SecretError::AllSourcesFailed`] naming each source's
/// failure (an event at ERROR). Nothing falls back silently.
///
/// # Not found is not a failure
///
/// A source answering [`SecretError::NotFound`] is consulted normally: the chain goes on to the
/// next source, and an answer found there is **not** degraded (the chain is then a layered
/// lookup: Key Vault for what it holds, the environment for the rest). Set
/// [`SecretChain::with_not_found_falls_through`]`(false)` to make the first source
/// authoritative: its `NotFound` ends the read. Every other failure (unavailable after
/// retries, denied, invalid response, misconfigured) falls through and marks a later answer
/// degraded.
///
/// # Example
///
/// ```
/// use azad_core::secrets::{EnvSource, SecretChain, SecretRetryPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let primary = EnvSource::from_pairs([("DB_PASSWORD", "from-primary")]).with_name("primary");
/// let fallback = EnvSource::from_pairs([("DB_PASSWORD", "from-fallback"), ("API_KEY", "k")]);
/// let chain = SecretChain::new([primary]).with_source(fallback).with_retry_policy(SecretRetryPolicy::none());
///
/// let password = chain.get("DB_PASSWORD", None).await.unwrap();
/// assert_eq!((password.expose(), password.source(), password.degraded()), ("from-primary", "primary", false));
/// // Not in the primary: the next source answers, not degraded (a layered lookup).
/// let key = chain.get("API_KEY", None).await.unwrap();
/// assert_eq!((key.source(), key.degraded()), ("env", false));
/// assert!(chain.get("NOPE", None).await.unwrap_err().is_not_found());
/// # });
/// ```
#[derive(Clone)]
pub struct SecretChain {
    sources: Vec<(Arc<str>, Arc<dyn SecretSource>)>,
    retry: SecretRetryPolicy,
    not_found_falls_through: bool,
}

impl fmt::Debug for SecretChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretChain")
            .field("sources", &self.sources.iter().map(|(n, _)| &**n).collect::<Vec<_>>())
            .field("retry", &self.retry)
            .field("not_found_falls_through", &self.not_found_falls_through)
            .finish()
    }
}

impl SecretChain {
    /// A chain of these sources, in order (the first is the primary).
    #[must_use]
    pub fn new<I, S>(sources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: SecretSource,
    {
        let chain = Self { sources: Vec::new(), retry: SecretRetryPolicy::default(), not_found_falls_through: true };
        sources.into_iter().fold(chain, Self::with_source)
    }

    /// Adds a source after the others.
    #[must_use]
    pub fn with_source(self, source: impl SecretSource) -> Self {
        self.with_shared_source(Arc::new(source))
    }

    /// Adds a shared source after the others.
    #[must_use]
    pub fn with_shared_source(mut self, source: Arc<dyn SecretSource>) -> Self {
        self.sources.push((Arc::from(source.name()), source));
        self
    }

    /// The retry policy for each source's transient failures.
    #[must_use]
    pub fn with_retry_policy(mut self, retry: SecretRetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Whether a source's [`SecretError::NotFound`] moves on to the next source (default
    /// `true`; see [`SecretChain`]).
    #[must_use]
    pub fn with_not_found_falls_through(mut self, falls_through: bool) -> Self {
        self.not_found_falls_through = falls_through;
        self
    }

    /// The sources' names, in order.
    #[must_use]
    pub fn source_names(&self) -> Vec<&str> {
        self.sources.iter().map(|(n, _)| &**n).collect()
    }

    /// Reads secret `name` (latest, or `version`), emitting one audit event for the answer and
    /// one per failing source.
    ///
    /// # Errors
    ///
    /// [`SecretError::AllSourcesFailed`] with each source's failure, in order, when no source
    /// served ([`SecretError::is_not_found`] is then `true` if every source said not found);
    /// [`SecretError::Misconfigured`] for a chain without sources.
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<ResolvedSecret, SecretError> {
        self.get_with_cache_label(name, version, "miss").await
    }

    pub(crate) async fn get_with_cache_label(
        &self,
        name: &str,
        version: Option<&str>,
        cache: &str,
    ) -> Result<ResolvedSecret, SecretError> {
        let started = Instant::now();
        if self.sources.is_empty() {
            let error = SecretError::misconfigured("the secret chain has no source");
            audit::unserved(name, version, &error, started.elapsed());
            return Err(error);
        }
        let mut failures = Vec::new();
        let mut degraded = false;
        for (index, (source_name, source)) in self.sources.iter().enumerate() {
            let source_started = Instant::now();
            let mut attempt = 1;
            let outcome = loop {
                match source.get(name, version).await {
                    Ok(value) => break Ok(value),
                    Err(e) if e.is_retryable() && attempt < self.retry.max_attempts => {
                        let wait = self.retry.backoff(attempt, e.retry_after());
                        tracing::debug!(
                            target: audit::AUDIT_TARGET, source = &**source_name, name, attempt, error = %e,
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "secret source unavailable; retrying"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => break Err(e),
                }
            };
            match outcome {
                Ok(value) => {
                    let resolved = ResolvedSecret::new(value, source_name.clone(), degraded);
                    audit::served(source_name, name, resolved.version(), degraded, cache, started.elapsed());
                    return Ok(resolved);
                }
                Err(error) => {
                    audit::source_failed(source_name, name, version, &error, attempt, source_started.elapsed());
                    let not_found = error.is_not_found();
                    failures.push(SourceFailure { source_name: source_name.to_string(), error });
                    if not_found {
                        if index == 0 && !self.not_found_falls_through {
                            break;
                        }
                    } else {
                        degraded = true;
                    }
                }
            }
        }
        let error = SecretError::AllSourcesFailed { name: name.to_owned(), failures };
        audit::unserved(name, version, &error, started.elapsed());
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = SecretRetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(350));
        for _ in 0..50 {
            let first = p.backoff(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let second = p.backoff(2, None);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200), "{second:?}");
            let capped = p.backoff(10, None);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350), "{capped:?}");
            // Retry-After honoured, but bounded.
            assert_eq!(p.backoff(1, Some(Duration::from_secs(60))), Duration::from_millis(350));
        }
        let waits: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(3, None)).collect();
        assert!(waits.len() > 1, "jitter varies the waits");
        assert_eq!(SecretRetryPolicy::new(0, Duration::ZERO, Duration::ZERO).max_attempts, 1);
    }
}
