//! The dev tenant's clock: the crate's one clock ([`crate::clock`]), named for the dev tenant's
//! handlers.

/// Now, in seconds since the Unix epoch (0 before it).
pub(crate) fn now() -> i64 {
    crate::clock::now_secs()
}
