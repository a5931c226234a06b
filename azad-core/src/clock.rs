//! The one clock: wall-clock time in whole seconds since the Unix epoch, as JWT's `NumericDate`
//! (RFC 7519 §2), and an injectable [`Clock`] so a test can pin the validator, cache included,
//! to a fixed time.
//!
//! The ground floor: this module imports nothing of the crate.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//! use azad_core::{Clock, FixedClock};
//!
//! let clock = FixedClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let shared: Arc<dyn Clock> = Arc::new(clock.clone());
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(shared.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_060));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
///
/// The validator reads it for `exp` and `nbf` (RFC 7519 §4.1.4, §4.1.5) on every path, the
/// validated-token cache's included. The default is [`SystemClock`]; tests and replays inject
/// a [`FixedClock`] with [`AzureAdConfig::with_clock`](crate::AzureAdConfig::with_clock) or
/// [`AzureAdConfigBuilder::clock`](crate::AzureAdConfigBuilder::clock).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until it is set or advanced, in whole seconds. Clones share the
/// same time, so a test keeps one handle and gives another to the configuration.
#[derive(Clone)]
pub struct FixedClock {
    secs: Arc<AtomicI64>,
}

impl FixedClock {
    /// A clock showing `at` (truncated to whole seconds).
    #[must_use]
    pub fn new(at: SystemTime) -> Self {
        Self { secs: Arc::new(AtomicI64::new(unix_secs(at))) }
    }

    /// A clock showing the current system time, from now on standing still.
    #[must_use]
    pub fn now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Sets the time.
    pub fn set(&self, at: SystemTime) {
        self.secs.store(unix_secs(at), Ordering::Release);
    }

    /// Moves the time forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let _ = self.secs.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(s.saturating_add(by)));
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        from_unix_secs(self.secs.load(Ordering::Acquire))
    }
}

impl fmt::Debug for FixedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FixedClock").field(&self.secs.load(Ordering::Acquire)).finish()
    }
}

/// Seconds since the Unix epoch (negative before it), saturating: a JWT `NumericDate`.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The time `secs` seconds after (before, if negative) the Unix epoch.
fn from_unix_secs(secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { UNIX_EPOCH + magnitude } else { UNIX_EPOCH - magnitude }
}

/// The system time in seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    unix_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip_both_sides_of_the_epoch() {
        for secs in [0, 1, 1_700_000_000, -86_400] {
            assert_eq!(unix_secs(from_unix_secs(secs)), secs);
        }
        assert!(now_secs() > 1_600_000_000);
    }

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_clones_share_it() {
        let clock = FixedClock::new(UNIX_EPOCH + Duration::from_secs(1000));
        let other = clock.clone();
        assert_eq!(other.now(), UNIX_EPOCH + Duration::from_secs(1000));
        clock.advance(Duration::from_secs(5));
        assert_eq!(other.now(), UNIX_EPOCH + Duration::from_secs(1005));
        clock.set(UNIX_EPOCH);
        assert_eq!(other.now(), UNIX_EPOCH);
        assert!(format!("{other:?}").contains('0'));
    }
}
