//! The audit events of secret reads (target `azad::secrets`): one per read, with the source,
//! the secret's name and version, the outcome, whether the answer is degraded, and the latency.
//! Never the value.

use std::time::Duration;

use super::source::SecretError;

/// The `tracing` target of every secret audit event.
pub const AUDIT_TARGET: &str = "azad::secrets";

/// A successful read from the chain (or the cache): INFO, WARN when degraded.
pub(crate) fn served(source: &str, name: &str, version: Option<&str>, degraded: bool, cache: &str, latency: Duration) {
    let version = version.unwrap_or("");
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    if degraded {
        tracing::warn!(
            target: AUDIT_TARGET, source, name, version, outcome = "ok", degraded, cache, latency_us,
            "secret served by a fallback source"
        );
    } else if cache == "hit" {
        tracing::debug!(target: AUDIT_TARGET, source, name, version, outcome = "ok", degraded, cache, latency_us, "secret read");
    } else {
        tracing::info!(target: AUDIT_TARGET, source, name, version, outcome = "ok", degraded, cache, latency_us, "secret read");
    }
}

/// One source failed (after its retries): WARN, with the error's kind and text (never a value).
pub(crate) fn source_failed(
    source: &str,
    name: &str,
    version: Option<&str>,
    error: &SecretError,
    attempts: u32,
    latency: Duration,
) {
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let outcome = error.kind();
    let version = version.unwrap_or("");
    if error.is_not_found() {
        tracing::debug!(target: AUDIT_TARGET, source, name, version, outcome, attempts, latency_us, "secret not in this source");
    } else {
        tracing::warn!(target: AUDIT_TARGET, source, name, version, outcome, attempts, latency_us, error = %error, "secret source failed");
    }
}

/// No source could serve: ERROR, naming each source's failure.
pub(crate) fn unserved(name: &str, version: Option<&str>, error: &SecretError, latency: Duration) {
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let version = version.unwrap_or("");
    tracing::error!(
        target: AUDIT_TARGET, source = "none", name, version, outcome = error.kind(), degraded = false, latency_us,
        error = %error, "no secret source could serve the secret"
    );
}
