//! RFC 6750 bearer challenges: one type ([`Challenge`]) that owns the `WWW-Authenticate` and
//! `Retry-After` of every azad answer, one formatter and one parser beside it.
//!
//! - Formatting: `Bearer` then comma-separated auth-params, every value a quoted-string
//!   (RFC 7235 §2.1, RFC 6750 §3), in the order `realm`, `error`, `error_description`,
//!   `scope`, `claims`.
//! - `claims` is carried base64-encoded, as Microsoft Entra ID and MSAL do
//!   (`claims="<base64 of the JSON>"`), so a claims challenge can never break out of its
//!   quoted-string.
//! - Every value is restricted to the characters RFC 6750 §3 allows for it when it is *set*:
//!   what is stored is exactly what is sent, and the header always parses back to the same
//!   values.
//! - Parsing ([`parse_www_authenticate`]) follows RFC 7235's grammar: case-insensitive
//!   schemes, `token68` or auth-params, tokens or quoted-strings with quoted-pairs, several
//!   challenges in one header value.
//! - `Retry-After` is parsed as delta-seconds or an HTTP-date without overflow
//!   ([`parse_retry_after`]) and sent capped at [`MAX_RETRY_AFTER`].
//!
//! # Example
//!
//! ```
//! use azad_core::challenge::Challenge;
//! use http::StatusCode;
//!
//! let challenge = Challenge::new(StatusCode::UNAUTHORIZED)
//!     .with_error("insufficient_claims")
//!     .with_claims(r#"{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}"#);
//! let header = challenge.header_value();
//! assert_eq!(
//!     header,
//!     "Bearer error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlcyI6WyJjMSJdfX19\""
//! );
//!
//! // The parser reads it back to the same values.
//! let parsed = Challenge::parse(StatusCode::UNAUTHORIZED, header.to_str()?)?.expect("a Bearer challenge");
//! assert_eq!(parsed, challenge);
//!
//! // And the answer to send.
//! let response: http::Response<()> = challenge.to_response();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], header);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, SystemTime};

use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::{ChallengeParseError, OboRefusal, TokenError};

/// The longest `Retry-After` azad sends to its callers, and the default cap on the
/// `Retry-After` of token and managed identity endpoints (the local throttling window of
/// [`TokenClient`](crate::TokenClient) and the back-off of
/// [`ManagedIdentity`](crate::client::managed_identity::ManagedIdentity)): 60 seconds.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An RFC 6750 bearer challenge and the answer that carries it: HTTP status,
/// `WWW-Authenticate: Bearer …` and `Retry-After`.
///
/// Setters sanitise their input to the characters RFC 6750 §3 allows (see each one), so the
/// formatted header always parses back, with [`Challenge::parse`], to an equal `Challenge`.
///
/// See the [module docs](crate::challenge) for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Challenge {
    status: StatusCode,
    realm: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    scope: Vec<String>,
    claims: Option<String>,
    retry_after: Option<Duration>,
}

/// RFC 6750 §3 `NQSCHAR`: `%x20-21 / %x23-5B / %x5D-7E` (printable ASCII and space, without
/// `"` and `\`).
fn is_nqschar(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

impl Challenge {
    /// A challenge answered with `status` and no auth-params (`WWW-Authenticate: Bearer`).
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            realm: None,
            error: None,
            error_description: None,
            scope: Vec::new(),
            claims: None,
            retry_after: None,
        }
    }

    /// Sets `realm` (RFC 6750 §3). Characters other than printable ASCII and space
    /// (`%x20-7E`) are dropped; `"` and `\` are kept and escaped as quoted-pairs.
    pub fn with_realm(mut self, realm: impl AsRef<str>) -> Self {
        self.realm = Some(realm.as_ref().chars().filter(|c| matches!(c, '\x20'..='\x7e')).collect());
        self
    }

    /// Sets the RFC 6750 §3.1 `error` code (`invalid_request`, `invalid_token`,
    /// `insufficient_scope`, or Microsoft's `insufficient_claims`). Characters outside
    /// `NQSCHAR` are dropped; an empty code means none.
    pub fn with_error(mut self, error: impl AsRef<str>) -> Self {
        let error: String = error.as_ref().chars().filter(|&c| is_nqschar(c)).collect();
        self.error = (!error.is_empty()).then_some(error);
        self
    }

    /// Sets `error_description`: human-readable text for developers, never token content.
    /// Characters outside RFC 6750 §3's set (`%x20-21 / %x23-5B / %x5D-7E`: no `"`, no `\`,
    /// no control or non-ASCII characters) are dropped.
    pub fn with_error_description(mut self, description: impl AsRef<str>) -> Self {
        self.error_description = Some(description.as_ref().chars().filter(|&c| is_nqschar(c)).collect());
        self
    }

    /// Sets `scope`: the scopes that would satisfy the request (RFC 6750 §3), sent
    /// space-separated. Each scope is split at spaces; characters other than visible ASCII
    /// (`%x21-7E`) are dropped, and empty scopes are left out. RFC 6750's scope-token excludes
    /// `"` and `\` too (no Entra scope contains them); they are kept, escaped as quoted-pairs,
    /// so a scope that carries one is still read back exactly and cannot end the quoted-string.
    pub fn with_scope<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.scope = scopes
            .into_iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(' ')
                    .map(|t| t.chars().filter(|c| matches!(c, '\x21'..='\x7e')).collect::<String>())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        self
    }

    /// Sets a claims challenge: the claims request JSON (OpenID Connect Core §5.5) the caller
    /// must satisfy, e.g. `{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}`.
    /// Any text is accepted; it is sent base64-encoded (`claims="<base64>"`), as Entra ID does.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Sets `Retry-After`, capped at [`MAX_RETRY_AFTER`] and sent in whole seconds, at least 1.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(cap_retry_after(retry_after));
        self
    }

    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The gRPC status code of this answer: the one mapping from an azad answer to gRPC, used
    /// by the layer's gRPC responses, the method attributes' `tonic::Status` and the tonic
    /// helpers. After the gRPC project's HTTP-to-gRPC mapping
    /// ([http-grpc-status-mapping.md](https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md)),
    /// with one refinement: a 400 is an RFC 6750 `invalid_request` (malformed credentials),
    /// so it is `UNAUTHENTICATED` rather than `INTERNAL`.
    ///
    /// | HTTP | gRPC |
    /// | --- | --- |
    /// | 400, 401 | 16 `UNAUTHENTICATED` |
    /// | 403 | 7 `PERMISSION_DENIED` |
    /// | 404 | 12 `UNIMPLEMENTED` |
    /// | 429, 502, 503, 504 | 14 `UNAVAILABLE` |
    /// | 500 | 13 `INTERNAL` |
    /// | other | 2 `UNKNOWN` |
    #[must_use]
    pub fn grpc_code(&self) -> u8 {
        grpc_code_of(self.status)
    }

    /// The terse text of this answer, for response bodies and `grpc-message`: the same for
    /// every answer with this status, never a detail of the failure.
    ///
    /// | HTTP | text |
    /// | --- | --- |
    /// | 400, 401 | `Unauthenticated` |
    /// | 403 | `Permission denied` |
    /// | 500 | `Internal error` |
    /// | 503 | `Service unavailable` |
    /// | other | the status's canonical reason (`Bad Gateway`...) |
    #[must_use]
    pub fn message(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 401 => "Unauthenticated",
            403 => "Permission denied",
            500 => "Internal error",
            503 => "Service unavailable",
            _ => self.status.canonical_reason().unwrap_or("Error"),
        }
    }

    /// `realm`, if set.
    #[must_use]
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The RFC 6750 `error` code, if any.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// `error_description`, if any (already restricted to RFC 6750 §3's characters).
    #[must_use]
    pub fn error_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }

    /// The scopes of `scope`, if any.
    #[must_use]
    pub fn scope(&self) -> &[String] {
        &self.scope
    }

    /// The claims challenge JSON (decoded), if any.
    #[must_use]
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// `Retry-After` (at most [`MAX_RETRY_AFTER`], at least one second), if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The formatted `WWW-Authenticate` value: `Bearer`, or `Bearer k="v", k2="v2"`.
    #[must_use]
    pub fn header_value(&self) -> HeaderValue {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(realm) = &self.realm {
            params.push(("realm", realm.clone()));
        }
        if let Some(error) = &self.error {
            params.push(("error", error.clone()));
        }
        if let Some(description) = &self.error_description {
            params.push(("error_description", description.clone()));
        }
        if !self.scope.is_empty() {
            params.push(("scope", self.scope.join(" ")));
        }
        if let Some(claims) = &self.claims {
            params.push(("claims", base64::engine::general_purpose::STANDARD.encode(claims)));
        }
        let mut out = String::from("Bearer");
        for (i, (name, value)) in params.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(name);
            out.push('=');
            push_quoted(&mut out, value);
        }
        // Every value was restricted to visible ASCII and space by its setter.
        HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// `WWW-Authenticate`, when the status carries one: every 4xx (RFC 7235 §3.1 requires it
    /// with 401; RFC 6750 §3.1 defines `invalid_request` (400) and `insufficient_scope`
    /// (403)) and 503 (the keys to check a credential are not loaded yet). `None` for other
    /// statuses (500, 502), which say nothing about the caller's credential.
    #[must_use]
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        (self.status.is_client_error() || self.status == StatusCode::SERVICE_UNAVAILABLE).then(|| self.header_value())
    }

    /// The `Retry-After` value (delta-seconds, RFC 9110 §10.2.3), if any.
    #[must_use]
    pub fn retry_after_value(&self) -> Option<HeaderValue> {
        self.retry_after.map(|r| HeaderValue::from(r.as_secs().max(1)))
    }

    /// Inserts `WWW-Authenticate` and `Retry-After` (as [`www_authenticate`](Self::www_authenticate)
    /// and [`retry_after_value`](Self::retry_after_value) decide), replacing any present.
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        if let Some(v) = self.www_authenticate() {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.retry_after_value() {
            headers.insert(header::RETRY_AFTER, v);
        }
    }

    /// The answer: the status, `WWW-Authenticate` and `Retry-After`, and an empty body.
    #[must_use]
    pub fn to_response<B: Default>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        *response.status_mut() = self.status;
        self.apply_to(response.headers_mut());
        response
    }

    /// Reads the first `Bearer` challenge of a `WWW-Authenticate` value (which may hold several
    /// challenges). Known auth-params are read (`realm`, `error`, `error_description`, `scope`,
    /// `claims` base64-decoded); others are ignored. The values go through the same
    /// sanitising as the setters. `Ok(None)` when there is no `Bearer` challenge.
    ///
    /// # Errors
    ///
    /// [`ChallengeParseError`] when the value does not follow RFC 7235's grammar, when the
    /// Bearer challenge repeats an auth-param, or when `claims` is not base64 of UTF-8 text.
    pub fn parse(status: StatusCode, www_authenticate: &str) -> Result<Option<Self>, ChallengeParseError> {
        let challenges = parse_www_authenticate(www_authenticate)?;
        let Some(bearer) = challenges.into_iter().find(|c| c.scheme().eq_ignore_ascii_case("Bearer")) else {
            return Ok(None);
        };
        let params = bearer.params();
        for (i, (name, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|(n, _)| n == name) {
                return Err(ChallengeParseError::DuplicateParam { name: name.clone() });
            }
        }
        let mut challenge = Self::new(status);
        if let Some(realm) = bearer.param("realm") {
            challenge = challenge.with_realm(realm);
        }
        if let Some(error) = bearer.param("error") {
            challenge = challenge.with_error(error);
        }
        if let Some(description) = bearer.param("error_description") {
            challenge = challenge.with_error_description(description);
        }
        if let Some(scope) = bearer.param("scope") {
            challenge = challenge.with_scope([scope]);
        }
        if let Some(claims) = bearer.param("claims") {
            challenge = challenge.with_claims(decode_claims(claims).ok_or(ChallengeParseError::Claims)?);
        }
        Ok(Some(challenge))
    }

    /// Reads an answer's challenge: the first `Bearer` challenge among its `WWW-Authenticate`
    /// headers, and its `Retry-After`. Headers that are not visible ASCII, or do not parse,
    /// are skipped.
    #[must_use]
    pub fn from_response_parts(status: StatusCode, headers: &HeaderMap) -> Option<Self> {
        let challenge = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .find_map(|v| Self::parse(status, v.to_str().ok()?).ok().flatten())?;
        Some(match parse_retry_after(headers) {
            Some(r) => challenge.with_retry_after(r),
            None => challenge,
        })
    }
}

/// Decodes a `claims` auth-param: base64 (standard or URL-safe alphabet, padded or not) of
/// UTF-8 text.
fn decode_claims(value: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let value = value.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(value).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Appends `value` as an RFC 7230 quoted-string, escaping `"` and `\`.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The gRPC status code of an HTTP status (see [`Challenge::grpc_code`]).
fn grpc_code_of(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 | 401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        500 => 13,
        _ => 2,
    }
}

/// The answer policy of token acquisition: what an API answers its own caller when a token it
/// needed (on-behalf-of, client credentials) could not be acquired. Kept beside the formatter,
/// so that error.rs holds error data only.
impl TokenError {
    /// What an API should answer its own caller when a token it needed could not be acquired,
    /// as a [`Challenge`](Challenge) (status, `WWW-Authenticate`,
    /// `Retry-After`).
    ///
    /// | failure | answer |
    /// | --- | --- |
    /// | incoming token expired (locally, or `AADSTS500133`) or not for this API | 401 `invalid_token` |
    /// | `interaction_required` or any claims challenge | 401 `insufficient_claims` with `claims` (base64) |
    /// | incoming token is app-only, or consent is missing | 403 `insufficient_scope` |
    /// | throttled (429/503 with `Retry-After`, or locally) | 503 with `Retry-After` (capped at [`MAX_RETRY_AFTER`](MAX_RETRY_AFTER)) |
    /// | this API's own credential refused (`invalid_client`), misconfiguration | 500 (logged) |
    /// | transport failure, other 5xx, unparsable answer, other grant errors | 502 |
    pub fn challenge(&self) -> Challenge {
        let with_error = |status: StatusCode, error: &str| Challenge::new(status).with_error(error);
        match self {
            Self::OnBehalfOf(OboRefusal::Expired | OboRefusal::WrongAudience | OboRefusal::Malformed) => {
                with_error(StatusCode::UNAUTHORIZED, "invalid_token")
            }
            Self::OnBehalfOf(OboRefusal::AppOnly) => with_error(StatusCode::FORBIDDEN, "insufficient_scope"),
            Self::Throttled { retry_after } => {
                Challenge::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(*retry_after)
            }
            Self::ServerResponse(e) => {
                if let Some(claims) = e.claims_challenge() {
                    return with_error(StatusCode::UNAUTHORIZED, "insufficient_claims").with_claims(claims);
                }
                if e.is_expired_assertion() {
                    return with_error(StatusCode::UNAUTHORIZED, "invalid_token");
                }
                if e.error == "interaction_required" {
                    return with_error(StatusCode::UNAUTHORIZED, "insufficient_claims");
                }
                if e.is_client_rejected() {
                    return Challenge::new(StatusCode::INTERNAL_SERVER_ERROR);
                }
                if e.suberror.as_deref() == Some("consent_required") || e.error_codes.contains(&65_001) {
                    return with_error(StatusCode::FORBIDDEN, "insufficient_scope");
                }
                if let (Some(retry_after), 429 | 503) = (e.retry_after, e.status) {
                    return Challenge::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(retry_after);
                }
                Challenge::new(StatusCode::BAD_GATEWAY)
            }
            Self::Credential(_) | Self::Configuration(_) => Challenge::new(StatusCode::INTERNAL_SERVER_ERROR),
            Self::SignInRequired(_) => Challenge::new(StatusCode::UNAUTHORIZED),
            Self::Request(_) | Self::Parse { .. } => Challenge::new(StatusCode::BAD_GATEWAY),
        }
    }
}

/// Rounds a `Retry-After` up to whole seconds (a client told 1 s for 1.9 s would come back
/// too early), at least one, and caps it at [`MAX_RETRY_AFTER`].
#[must_use]
pub fn cap_retry_after(retry_after: Duration) -> Duration {
    let secs = retry_after.as_secs().saturating_add(u64::from(retry_after.subsec_nanos() > 0));
    Duration::from_secs(secs).clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delta-seconds (any number of digits; values too
/// large for a `u64` saturate) or an HTTP-date (a date in the past is zero). `None` when
/// absent or unreadable. Not capped: callers cap with their policy (see [`MAX_RETRY_AFTER`]).
#[must_use]
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// One challenge of a `WWW-Authenticate` value, as RFC 7235 §2.1 defines it: an auth-scheme,
/// then either a `token68` or auth-params.
///
/// See [`parse_www_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl AuthChallenge {
    /// The auth-scheme as sent (compare it case-insensitively).
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The `token68`, for schemes that use one.
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The auth-params in order: names lowercased (they are case-insensitive), values
    /// unquoted and unescaped.
    #[must_use]
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of the first auth-param called `name` (case-insensitive).
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 7235 `token68` characters (before the trailing `=`).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    fn error(&self) -> ChallengeParseError {
        ChallengeParseError::Syntax { position: self.i }
    }

    /// After a comma: does an auth-param (`token BWS "="`) follow, rather than a new challenge?
    fn at_param(&self) -> bool {
        let mut probe = Cursor { s: self.s, i: self.i };
        if probe.token().is_empty() {
            return false;
        }
        probe.skip_ws();
        probe.peek() == Some(b'=')
    }

    /// A token68 followed by the end of the challenge (end of input or a comma).
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        let mut probe = Cursor { s: self.s, i: self.i };
        while probe.peek().is_some_and(is_token68_char) {
            probe.i += 1;
        }
        if probe.i == start {
            return None;
        }
        while probe.peek() == Some(b'=') {
            probe.i += 1;
        }
        let end = probe.i;
        probe.skip_ws();
        if !matches!(probe.peek(), None | Some(b',')) {
            return None;
        }
        self.i = probe.i;
        Some(String::from_utf8_lossy(&self.s[start..end]).into_owned())
    }

    /// `token BWS "=" BWS ( token / quoted-string )`.
    fn param(&mut self) -> Result<(String, String), ChallengeParseError> {
        let name = self.token().to_ascii_lowercase();
        if name.is_empty() {
            return Err(self.error());
        }
        self.skip_ws();
        if self.peek() != Some(b'=') {
            return Err(self.error());
        }
        self.i += 1;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            let v = self.token().to_owned();
            if v.is_empty() {
                return Err(self.error());
            }
            v
        };
        Ok((name, value))
    }

    /// RFC 7230 §3.2.6 quoted-string, unescaped.
    fn quoted_string(&mut self) -> Result<String, ChallengeParseError> {
        self.i += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(value).map_err(|_| self.error());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                            value.push(c);
                            self.i += 1;
                        }
                        _ => return Err(self.error()),
                    }
                }
                Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                    value.push(c);
                    self.i += 1;
                }
                // The end of input (unterminated) or a control character.
                _ => return Err(self.error()),
            }
        }
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235 §4.1:
/// `1#challenge`, `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`).
///
/// Empty list elements are allowed, as RFC 7230 §7 asks of recipients. Auth-param names are
/// lowercased; quoted-string values are unescaped.
///
/// # Errors
///
/// [`ChallengeParseError::Syntax`] with the byte position where the grammar broke (an
/// unterminated quoted-string, a missing value, a control character…).
pub fn parse_www_authenticate(value: &str) -> Result<Vec<AuthChallenge>, ChallengeParseError> {
    let mut c = Cursor { s: value.as_bytes(), i: 0 };
    let mut out: Vec<AuthChallenge> = Vec::new();
    loop {
        // Empty list elements and separators.
        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
            c.i += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token().to_owned();
        if scheme.is_empty() {
            return Err(c.error());
        }
        let mut challenge = AuthChallenge { scheme, token68: None, params: Vec::new() };
        let had_space = matches!(c.peek(), Some(b' ' | b'\t'));
        c.skip_ws();
        if c.peek().is_some_and(|b| b != b',') {
            if !had_space {
                return Err(c.error());
            }
            {
                if let Some(t) = c.token68() {
                    challenge.token68 = Some(t);
                } else {
                    challenge.params.push(c.param()?);
                    // More auth-params of this challenge follow commas, until a new scheme.
                    loop {
                        c.skip_ws();
                        match c.peek() {
                            None => break,
                            Some(b',') => {
                                let save = c.i;
                                while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
                                    c.i += 1;
                                }
                                if c.peek().is_some() && c.at_param() {
                                    challenge.params.push(c.param()?);
                                } else {
                                    c.i = save;
                                    break;
                                }
                            }
                            Some(_) => return Err(c.error()),
                        }
                    }
                }
            }
        }
        out.push(challenge);
        c.skip_ws();
        match c.peek() {
            None | Some(b',') => {}
            Some(_) => return Err(c.error()),
        }
    }
    if out.is_empty() {
        return Err(ChallengeParseError::Syntax { position: 0 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
