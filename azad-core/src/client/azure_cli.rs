//! The Azure CLI as a developer credential (feature `azure-cli`): the signed-in developer's
//! token from `az account get-access-token`, for local development.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::client::cache::AcquiredToken;
use crate::secret::AccessToken;

/// Why the Azure CLI gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AzureCliError {
    /// `az` is not installed (not found on `PATH`).
    #[error("the Azure CLI (`az`) is not installed or not on PATH")]
    NotInstalled,
    /// The developer is not signed in to the Azure CLI (or the sign-in expired).
    #[error("the Azure CLI is not signed in: run `az login` ({message})")]
    NotLoggedIn {
        /// The CLI's message.
        message: String,
    },
    /// `az` exited with an error.
    #[error("the Azure CLI failed (exit status {status:?}): {message}")]
    Failed {
        /// The exit code, if any.
        status: Option<i32>,
        /// The CLI's message (standard error, JWT-shaped text removed, at most 1000 characters).
        message: String,
    },
    /// `az` did not finish in time; it was killed.
    #[error("the Azure CLI did not answer within {}s", after.as_secs_f32())]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// `az` printed something that is not a token answer. The output is never quoted.
    #[error("the Azure CLI printed an unusable answer: {reason}")]
    UnusableOutput {
        /// What was wrong.
        reason: &'static str,
    },
    /// The scope or tenant has characters the CLI is never given (only letters, digits and
    /// `.-_:/` are passed on).
    #[error("invalid {what} for the Azure CLI")]
    InvalidArgument {
        /// `scope` or `tenant`.
        what: &'static str,
    },
}

impl AzureCliError {
    /// `true` when the CLI cannot be used at all here (not installed, not signed in): a
    /// credential chain then tries its next source, as Azure Identity's does.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::NotInstalled | Self::NotLoggedIn { .. })
    }
}

/// The Azure CLI as a developer credential (feature `azure-cli`): the signed-in developer's
/// token from `az account get-access-token`, for local development.
///
/// [`AzureCliCredential::acquire_token`] runs, as a subprocess (no shell):
///
/// ```text
/// az account get-access-token --output json --scope <scope> [--tenant <tenant>]
/// ```
///
/// with a timeout (10 seconds by default; the child is killed when it passes), and reads the
/// JSON the CLI prints:
///
/// ```json
/// {
///   "accessToken": "eyJ0eXAiOiJKV1Qi…",
///   "expiresOn": "2026-11-29 19:04:05.000000",
///   "expires_on": 1764443045,
///   "subscription": "…",
///   "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
///   "tokenType": "Bearer"
/// }
/// ```
///
/// The expiry is `expires_on` (POSIX seconds, printed by Azure CLI 2.54 and later) when
/// present; otherwise the token's own `exp`; otherwise `expiresOn`, which the CLI prints in the
/// machine's *local* time (`YYYY-MM-DD HH:MM:SS.ffffff`), converted with the local offset
/// (`TZ`, else `/etc/localtime`; UTC when neither can be read).
///
/// Errors never carry the token: the CLI's output is never quoted, and its error text (from
/// standard error) has anything shaped like a JWT removed. Not being signed in (`Please run 'az
/// login'`) and a missing `az` are [unavailable](AzureCliError::is_unavailable): a credential
/// chain moves on to its next source.
///
/// Source: Azure CLI `az account get-access-token`; Azure Identity's `AzureCliCredential`.
///
/// # Example
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::AzureCliCredential;
///
/// let cli = AzureCliCredential::new();
/// let token = cli.acquire_token("https://graph.microsoft.com/.default").await?;
/// assert!(!token.secret().is_empty());
/// # Ok::<(), azad_core::AzureCliError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct AzureCliCredential {
    program: PathBuf,
    tenant: Option<String>,
    timeout: Duration,
    search_path: Option<std::ffi::OsString>,
}

impl Default for AzureCliCredential {
    fn default() -> Self {
        Self::new()
    }
}

impl AzureCliCredential {
    /// Runs `az` from `PATH`, in the CLI's current tenant, with a 10-second timeout.
    #[must_use]
    pub fn new() -> Self {
        Self { program: PathBuf::from("az"), tenant: None, timeout: Duration::from_secs(10), search_path: None }
    }

    /// Asks for a token in this tenant (`--tenant`).
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The time `az` may take before it is killed (10 seconds by default).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Looks for `az` in this `PATH` (and gives it to the CLI) instead of the process's.
    #[must_use]
    pub fn with_search_path(mut self, path: impl Into<std::ffi::OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// Runs this program instead of `az` from `PATH`.
    #[must_use]
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// A token for `scope` (a `…/.default` scope or a resource), as the signed-in developer.
    ///
    /// # Errors
    ///
    /// An [`AzureCliError`]; never one that contains the token.
    pub async fn acquire_token(&self, scope: &str) -> Result<AcquiredToken, AzureCliError> {
        // Never an option of the CLI's own (`--debug`...): no leading `-`.
        let safe = |s: &str| {
            !s.is_empty()
                && !s.starts_with('-')
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:/".contains(&b))
        };
        if !safe(scope) {
            return Err(AzureCliError::InvalidArgument { what: "scope" });
        }
        let mut command = tokio::process::Command::new(&self.program);
        command.args(["account", "get-access-token", "--output", "json", "--scope", scope]);
        if let Some(tenant) = &self.tenant {
            if !safe(tenant) {
                return Err(AzureCliError::InvalidArgument { what: "tenant" });
            }
            command.args(["--tenant", tenant]);
        }
        if let Some(path) = &self.search_path {
            command.env("PATH", path);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AzureCliError::NotInstalled,
            _ => AzureCliError::Failed { status: None, message: format!("cannot start the Azure CLI: {}", e.kind()) },
        })?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| AzureCliError::Timeout { after: self.timeout })?
            .map_err(|e| AzureCliError::Failed { status: None, message: e.kind().to_string() })?;
        if !output.status.success() {
            let message = clean_message(&String::from_utf8_lossy(&output.stderr));
            let lower = message.to_ascii_lowercase();
            if lower.contains("az login") || lower.contains("az account set") {
                return Err(AzureCliError::NotLoggedIn { message });
            }
            if lower.contains("not recognized as") || lower.contains("command not found") {
                return Err(AzureCliError::NotInstalled);
            }
            return Err(AzureCliError::Failed { status: output.status.code(), message });
        }
        parse_output(&output.stdout, SystemTime::now(), local_offset_seconds())
    }
}

/// The CLI's error text, trimmed, without anything shaped like a JWT, at most 1000 characters.
fn clean_message(stderr: &str) -> String {
    let words: Vec<&str> = stderr
        .split_whitespace()
        .map(|w| if w.contains("eyJ") && w.matches('.').count() >= 2 { "[redacted]" } else { w })
        .collect();
    let mut message = words.join(" ");
    if message.len() > 1000 {
        let mut end = 1000;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[derive(Deserialize)]
struct CliToken {
    #[serde(rename = "accessToken")]
    access_token: Option<String>,
    #[serde(rename = "expiresOn", default)]
    expires_on_local: Option<String>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(rename = "tokenType", default)]
    token_type: Option<String>,
}

/// Reads the CLI's JSON answer. `offset` is the local time's offset from UTC in seconds, for
/// `expiresOn`.
fn parse_output(stdout: &[u8], now: SystemTime, offset: i64) -> Result<AcquiredToken, AzureCliError> {
    let unusable = |reason| AzureCliError::UnusableOutput { reason };
    let parsed: CliToken = serde_json::from_slice(stdout).map_err(|_| unusable("not the JSON of a token"))?;
    let token = parsed.access_token.filter(|t| !t.trim().is_empty()).ok_or(unusable("no accessToken"))?;
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let expires_at = parsed
        .expires_on
        .as_ref()
        .and_then(crate::client::expiry::seconds)
        .and_then(|s| i64::try_from(s).ok())
        .or_else(|| crate::client::expiry::lifetime(None, None, &token, now).map(|d| now_secs + d.as_secs() as i64))
        .or_else(|| parsed.expires_on_local.as_deref().and_then(parse_local).map(|local| local - offset))
        .ok_or(unusable("no readable expiry (expires_on, the token's exp, or expiresOn)"))?;
    let lifetime = u64::try_from(expires_at - now_secs).unwrap_or(0);
    if lifetime == 0 {
        return Err(unusable("the token has already expired"));
    }
    Ok(AcquiredToken::new(
        AccessToken::new(token),
        Duration::from_secs(lifetime),
        None,
        parsed.token_type.unwrap_or_else(|| "Bearer".into()),
    ))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as seconds since the epoch, as if it were UTC.
fn parse_local(value: &str) -> Option<i64> {
    let value = value.trim();
    let (date, time) = value.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if d.next().is_some() || t.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    if h > 23 || min > 59 || s > 60 {
        return None;
    }
    crate::client::expiry::parse_date_time(&format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}Z"))
}

/// The local time's offset from UTC now, in seconds: from the time zone named by `TZ`, else
/// `/etc/localtime` (TZif); 0 when neither can be read (Windows, or no zone database).
fn local_offset_seconds() -> i64 {
    let now = crate::clock::now_secs();
    let path = match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => {
            let tz = tz.trim_start_matches(':');
            if tz.starts_with('/') { PathBuf::from(tz) } else { PathBuf::from("/usr/share/zoneinfo").join(tz) }
        }
        _ => PathBuf::from("/etc/localtime"),
    };
    std::fs::read(path).ok().and_then(|b| tzif_offset(&b, now)).unwrap_or(0)
}

/// The UTC offset in force at `at` (Unix seconds) in a TZif file (RFC 8536), from its
/// version 1 data block.
fn tzif_offset(b: &[u8], at: i64) -> Option<i64> {
    if b.get(..4)? != b"TZif" {
        return None;
    }
    let count = |i: usize| -> Option<usize> {
        let s = b.get(20 + 4 * i..24 + 4 * i)?;
        Some(u32::from_be_bytes(s.try_into().ok()?) as usize)
    };
    let (timecnt, typecnt) = (count(3)?, count(4)?);
    if typecnt == 0 {
        return None;
    }
    let times = 44;
    let indices = times + 4 * timecnt;
    let types = indices + timecnt;
    let mut kind = 0usize;
    for i in 0..timecnt {
        let t = i64::from(i32::from_be_bytes(b.get(times + 4 * i..times + 4 * i + 4)?.try_into().ok()?));
        if t > at {
            break;
        }
        kind = usize::from(*b.get(indices + i)?);
    }
    let entry = b.get(types + 6 * kind..types + 6 * kind + 4)?;
    Some(i64::from(i32::from_be_bytes(entry.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_440_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn expires_on_posix_seconds_wins() {
        let out = format!(
            r#"{{"accessToken":"opaque-token","expiresOn":"2000-01-01 00:00:00.000000","expires_on":{},"tenant":"t","tokenType":"Bearer"}}"#,
            NOW + 3600
        );
        let t = parse_output(out.as_bytes(), now(), 0).unwrap();
        assert_eq!(t.secret(), "opaque-token");
        let left = t.expires_at().duration_since(SystemTime::now()).unwrap_or_default().as_secs();
        assert!((3590..=3600).contains(&left), "{left}");
    }

    #[test]
    fn expires_on_local_time_uses_the_offset() {
        // 1_764_443_600 is 2025-11-29 19:13:20 UTC; in UTC+1 the CLI prints 20:13:20.
        let out = br#"{"accessToken":"opaque","expiresOn":"2025-11-29 20:13:20.123456","tokenType":"Bearer"}"#;
        let t = parse_output(out, now(), 3600).unwrap();
        let left = t.expires_at().duration_since(SystemTime::now()).unwrap_or_default().as_secs();
        assert!((3590..=3600).contains(&left), "{left}");
        // Read as UTC it would be an hour longer.
        let t = parse_output(out, now(), 0).unwrap();
        let left = t.expires_at().duration_since(SystemTime::now()).unwrap_or_default().as_secs();
        assert!((7190..=7200).contains(&left), "{left}");
    }

    #[test]
    fn garbage_and_expired_answers_are_typed_and_never_quote_the_token() {
        for out in [&b"not json"[..], br#"{"expiresOn":"2026-11-29 20:13:20.0"}"#, br#"[1,2]"#] {
            assert!(matches!(parse_output(out, now(), 0), Err(AzureCliError::UnusableOutput { .. })));
        }
        let expired = br#"{"accessToken":"SECRET-TOKEN","expires_on":"1000000000"}"#;
        let e = parse_output(expired, now(), 0).unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let no_expiry = br#"{"accessToken":"SECRET-TOKEN","expiresOn":"yesterday"}"#;
        assert!(!parse_output(no_expiry, now(), 0).unwrap_err().to_string().contains("SECRET"));
    }

    #[test]
    fn messages_drop_jwts() {
        let m = clean_message("ERROR: bad token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl here\n");
        assert_eq!(m, "ERROR: bad token [redacted] here");
    }

    #[test]
    fn local_times_parse_strictly() {
        assert_eq!(parse_local("1970-01-01 00:00:10.5"), Some(10));
        assert_eq!(parse_local("1970-01-01 00:00:10"), Some(10));
        for bad in ["1970-01-01", "1970-13-01 00:00:00", "1970-01-01 25:00:00", "x-y-z a:b:c"] {
            assert_eq!(parse_local(bad), None, "{bad}");
        }
    }

    #[test]
    fn tzif_offsets() {
        // The zone database (Debian's tzdata) is needed: no skipping without it.
        let utc = std::fs::read("/usr/share/zoneinfo/UTC").expect("tzdata: /usr/share/zoneinfo/UTC");
        assert_eq!(tzif_offset(&utc, NOW as i64), Some(0));
        // Paris: +1 h in November, +2 h in June.
        let paris = std::fs::read("/usr/share/zoneinfo/Europe/Paris").expect("tzdata: Europe/Paris");
        assert_eq!(tzif_offset(&paris, NOW as i64), Some(3600));
        assert_eq!(tzif_offset(&paris, 1_782_000_000), Some(7200));
        assert_eq!(tzif_offset(b"nope", 0), None);
        assert_eq!(tzif_offset(b"TZif2", 0), None);
    }
}
