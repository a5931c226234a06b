//! The [`SecretSource`] trait every secret backend implements, the [`SecretValue`] it returns
//! and the typed [`SecretError`] it fails with.
//!
//! A source reads one named secret, the latest version or a given one. It never caches, never
//! retries and never falls back: the chain and the cache in front of it do
//! that, the same way for every source.
//!
//! Error texts carry names, versions, HTTP statuses and the server's error code, never a
//! secret value, token or response body that could hold one.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

/// A boxed, `Send` error cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The future returned by [`SecretSource::get`].
pub type SecretFuture<'a> = Pin<Box<dyn Future<Output = Result<SecretValue, SecretError>> + Send + 'a>>;

/// A place secrets are read from: Azure Key Vault, OpenBao/HashiCorp Vault KV v2, environment
/// variables, a dotenv file, a directory of mounted Kubernetes secrets.
///
/// Implementations read from their backend on every call (no caching, no retries: the chain and
/// the cache add those uniformly) and classify failures with [`SecretError`] so the chain can
/// tell "this secret does not exist" ([`SecretError::NotFound`]) from "the backend did not
/// answer" ([`SecretError::Unavailable`], the only retryable kind).
///
/// # Example
///
/// ```
/// use azad_core::secrets::{SecretError, SecretFuture, SecretSource, SecretValue};
///
/// /// A source with one fixed secret (tests, examples).
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl SecretSource for Fixed {
///     fn name(&self) -> &str {
///         "fixed"
///     }
///
///     fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
///         Box::pin(async move {
///             match (name, version) {
///                 ("db-password", None | Some("1")) => Ok(SecretValue::new("hunter2").with_version("1")),
///                 _ => Err(SecretError::not_found(name, version)),
///             }
///         })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let secret = Fixed.get("db-password", None).await.unwrap();
/// assert_eq!(secret.expose(), "hunter2");
/// assert_eq!(secret.version(), Some("1"));
/// assert!(matches!(Fixed.get("nope", None).await, Err(SecretError::NotFound { .. })));
/// # });
/// ```
pub trait SecretSource: Send + Sync + fmt::Debug + 'static {
    /// A short, stable name for audit events and errors (`"key-vault"`, `"openbao"`, `"env"`,
    /// `"dotenv"`, `"directory"`, or one the application chooses). Never a secret.
    fn name(&self) -> &str;

    /// Reads secret `name`: the latest version when `version` is `None`, else that version.
    ///
    /// # Errors
    ///
    /// [`SecretError::NotFound`] when the secret (or that version) does not exist,
    /// [`SecretError::Denied`] when the backend refuses this identity,
    /// [`SecretError::Unavailable`] when the backend could not be reached or answered with a
    /// transient failure (5xx, 429, timeout), [`SecretError::InvalidResponse`] when it answered
    /// with something unparseable, [`SecretError::Misconfigured`] when the source cannot work as
    /// configured.
    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a>;
}

impl<T: SecretSource + ?Sized> SecretSource for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        (**self).get(name, version)
    }
}

impl<T: SecretSource + ?Sized> SecretSource for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        (**self).get(name, version)
    }
}

/// A secret read from a source: the value (zeroized on drop, never printed), and what the
/// source says about it: its version, content type, and when it stops being valid.
///
/// Clones share one buffer. `Debug` prints `[redacted]` in place of the value.
#[derive(Clone)]
pub struct SecretValue {
    value: Arc<SecretString>,
    version: Option<String>,
    content_type: Option<String>,
    expires_at: Option<SystemTime>,
    not_before: Option<SystemTime>,
}

impl SecretValue {
    /// Wraps a value read from a source.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: Arc::new(SecretString::from(value.into())),
            version: None,
            content_type: None,
            expires_at: None,
            not_before: None,
        }
    }

    /// The source's version of this value (Key Vault's version id, KV v2's version number, a
    /// file's content hash...).
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The content type the source declares (Key Vault's `contentType`, e.g.
    /// `application/x-pem-file`).
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// When the value stops being valid (Key Vault's `attributes.exp`).
    #[must_use]
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// When the value starts being valid (Key Vault's `attributes.nbf`).
    #[must_use]
    pub fn with_not_before(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// The secret value.
    ///
    /// # Security Warning
    ///
    /// Leaking this value (in logs, error messages or responses) compromises what it protects.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// The source's version of this value, when it has versions.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The declared content type, if any.
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// When the value stops being valid, if the source says.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// When the value starts being valid, if the source says.
    #[must_use]
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"[redacted]")
            .field("version", &self.version)
            .field("content_type", &self.content_type)
            .field("expires_at", &self.expires_at)
            .field("not_before", &self.not_before)
            .finish()
    }
}

impl PartialEq for SecretValue {
    /// Constant-time on the value; versions and metadata compared as usual.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len()
            && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
            && self.version == other.version
            && self.content_type == other.content_type
            && self.expires_at == other.expires_at
            && self.not_before == other.not_before
    }
}

impl Eq for SecretValue {}

/// Why a secret could not be read.
///
/// Only [`Unavailable`](Self::Unavailable) is retryable ([`is_retryable`](Self::is_retryable)):
/// the others will give the same answer again. No variant ever holds a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret, or that version of it, does not exist in this source (Key Vault 404
    /// `SecretNotFound`, KV v2 404, no such variable or file).
    #[error("secret {name:?}{} not found", version_suffix(.version))]
    NotFound {
        /// The secret's name.
        name: String,
        /// The version asked for, if any.
        version: Option<String>,
    },
    /// The backend refused this identity (HTTP 401/403, a Vault `permission denied`, a file
    /// the process may not read).
    #[error("access to secret {name:?} denied: {detail}")]
    Denied {
        /// The secret's name.
        name: String,
        /// Status and error code from the backend (never a body that could hold a secret).
        detail: String,
    },
    /// The backend could not be reached, timed out, or answered with a transient failure
    /// (HTTP 5xx, 429); trying again may succeed.
    #[error("secret source unavailable: {detail}")]
    Unavailable {
        /// What failed.
        detail: String,
        /// How long the backend asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The underlying error, if any.
        #[source]
        cause: Option<BoxError>,
    },
    /// The backend answered with something that is not a well-formed secret response.
    #[error("invalid response from secret source: {detail}")]
    InvalidResponse {
        /// What was wrong (never the body itself).
        detail: String,
    },
    /// The source cannot work as configured (missing address, unreadable token file, bad
    /// URL...).
    #[error("secret source misconfigured: {detail}")]
    Misconfigured {
        /// What is wrong.
        detail: String,
    },
    /// Every source of a chain failed; one entry per source, in order.
    #[error("no source could provide secret {name:?}: {}", SourceFailures(.failures))]
    AllSourcesFailed {
        /// The secret's name.
        name: String,
        /// Each source's name and failure, in the order they were tried.
        failures: Vec<SourceFailure>,
    },
}

fn version_suffix(version: &Option<String>) -> String {
    version.as_ref().map(|v| format!(" (version {v:?})")).unwrap_or_default()
}

struct SourceFailures<'a>(&'a [SourceFailure]);

impl fmt::Display for SourceFailures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", failure.source_name, failure.error)?;
        }
        Ok(())
    }
}

/// One source's failure inside [`SecretError::AllSourcesFailed`].
#[derive(Debug)]
pub struct SourceFailure {
    /// The source's [`SecretSource::name`].
    pub source_name: String,
    /// Its last error (after retries).
    pub error: SecretError,
}

impl SecretError {
    /// [`SecretError::NotFound`] for `name` (and `version`).
    #[must_use]
    pub fn not_found(name: &str, version: Option<&str>) -> Self {
        Self::NotFound { name: name.to_owned(), version: version.map(str::to_owned) }
    }

    /// [`SecretError::Denied`] for `name`.
    #[must_use]
    pub fn denied(name: &str, detail: impl Into<String>) -> Self {
        Self::Denied { name: name.to_owned(), detail: detail.into() }
    }

    /// [`SecretError::Unavailable`] with no cause and no `Retry-After`.
    #[must_use]
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable { detail: detail.into(), retry_after: None, cause: None }
    }

    /// [`SecretError::Unavailable`] with its underlying cause.
    #[must_use]
    pub fn unavailable_with(detail: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Unavailable { detail: detail.into(), retry_after: None, cause: Some(cause.into()) }
    }

    /// [`SecretError::InvalidResponse`].
    #[must_use]
    pub fn invalid_response(detail: impl Into<String>) -> Self {
        Self::InvalidResponse { detail: detail.into() }
    }

    /// [`SecretError::Misconfigured`].
    #[must_use]
    pub fn misconfigured(detail: impl Into<String>) -> Self {
        Self::Misconfigured { detail: detail.into() }
    }

    /// Whether trying again may succeed: only [`SecretError::Unavailable`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the secret does not exist: [`SecretError::NotFound`], or
    /// [`SecretError::AllSourcesFailed`] where every source said not found.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. } => true,
            Self::AllSourcesFailed { failures, .. } => {
                !failures.is_empty() && failures.iter().all(|f| f.error.is_not_found())
            }
            _ => false,
        }
    }

    /// The `Retry-After` the backend sent, for [`SecretError::Unavailable`].
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, stable label for audit events and metrics: `not_found`, `denied`,
    /// `unavailable`, `invalid_response`, `misconfigured`, `all_sources_failed`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Denied { .. } => "denied",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::Misconfigured { .. } => "misconfigured",
            Self::AllSourcesFailed { .. } => "all_sources_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_debug_is_redacted() {
        let value = SecretValue::new("CANARY-value-77").with_version("v1");
        let text = format!("{value:?} {value:#?}");
        assert!(!text.contains("CANARY"), "{text}");
        assert!(text.contains("[redacted]") && text.contains("v1"));
    }

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(SecretError::unavailable("down").is_retryable());
        assert!(!SecretError::not_found("a", None).is_retryable());
        assert!(!SecretError::denied("a", "403").is_retryable());
        assert!(!SecretError::invalid_response("garbage").is_retryable());
        assert!(!SecretError::misconfigured("no url").is_retryable());
    }

    #[test]
    fn all_sources_failed_names_each_source() {
        let error = SecretError::AllSourcesFailed {
            name: "db".into(),
            failures: vec![
                SourceFailure { source_name: "key-vault".into(), error: SecretError::unavailable("HTTP 503") },
                SourceFailure { source_name: "env".into(), error: SecretError::not_found("db", Some("3")) },
            ],
        };
        let text = error.to_string();
        assert!(text.contains("key-vault: secret source unavailable: HTTP 503"), "{text}");
        assert!(text.contains("env: secret \"db\" (version \"3\") not found"), "{text}");
    }
}
