//! Error types: build-time ([`ConfigError`]), metadata and key loading ([`JwksError`]),
//! per-request validation ([`ValidationError`]) and transport ([`HttpError`]).

use std::fmt;

/// A configuration value is missing or invalid.
///
/// Returned when an [`AzureAdConfig`](crate::AzureAdConfig) is built (from the builder, the
/// environment or a deserialised `AzureAd` section). Every variant names the offending field
/// in the vocabulary of its source: the builder method (`tenant_id`), the environment variable
/// (`AZURE_TENANT_ID`) or the configuration key (`TenantId`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required value was not given.
    #[error("`{field}` is required")]
    Missing {
        /// The field, environment variable or configuration key.
        field: &'static str,
    },
    /// A value was given but cannot be used.
    #[error("`{field}` is invalid: {reason}")]
    Invalid {
        /// The field, environment variable or configuration key.
        field: &'static str,
        /// Why the value was refused (never contains secret material).
        reason: String,
    },
    /// A URL uses plain `http` for a host that is not loopback.
    #[error("`{field}` must use https (plain http is only accepted for loopback hosts)")]
    InsecureUrl {
        /// The field, environment variable or configuration key.
        field: &'static str,
    },
    /// Two settings contradict each other.
    #[error("`{field}` conflicts with `{other}`: {reason}")]
    Conflict {
        /// The first field.
        field: &'static str,
        /// The field it conflicts with.
        other: &'static str,
        /// Why they cannot be combined.
        reason: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    /// The field, environment variable or configuration key this error is about.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Missing { field }
            | Self::Invalid { field, .. }
            | Self::InsecureUrl { field }
            | Self::Conflict { field, .. } => field,
        }
    }

    /// `true` if a required value was missing.
    #[must_use]
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. })
    }

    /// Renames the field, used when the same validation serves several sources.
    pub(crate) fn renamed(self, rename: impl Fn(&'static str) -> &'static str) -> Self {
        match self {
            Self::Missing { field } => Self::Missing { field: rename(field) },
            Self::Invalid { field, reason } => Self::Invalid { field: rename(field), reason },
            Self::InsecureUrl { field } => Self::InsecureUrl { field: rename(field) },
            Self::Conflict { field, other, reason } => {
                Self::Conflict { field: rename(field), other: rename(other), reason }
            }
        }
    }
}

/// What went wrong in a transport call (discovery, JWKS, token endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The connection could not be made.
    Connect,
    /// The request (or connecting) took longer than its timeout.
    Timeout,
    /// The response body was larger than the configured cap.
    TooLarge,
    /// The server answered with a redirect, which is never followed.
    Redirect,
    /// Any other transport failure.
    Other,
    /// Simulation replay (feature `simulation`): no recorded interaction matches the request;
    /// the error's [`source`](std::error::Error::source) names what was asked and what the
    /// cassette holds.
    Simulation,
}

/// A transport error from an [`HttpClient`](crate::http::HttpClient).
///
/// Deliberately opaque: the underlying client's error is available through
/// [`source`](std::error::Error::source) but its type is not part of the API.
#[derive(Debug, Clone)]
pub struct HttpError {
    kind: HttpErrorKind,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl HttpError {
    /// A transport error of the given kind, with an optional cause.
    #[must_use]
    pub fn new(kind: HttpErrorKind, source: Option<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind, source: source.map(std::sync::Arc::from) }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// `true` for timeouts, which callers may retry.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == HttpErrorKind::Timeout
    }
}

impl PartialEq for HttpError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            HttpErrorKind::Connect => "could not connect",
            HttpErrorKind::Timeout => "the request timed out",
            HttpErrorKind::TooLarge => "the response was larger than allowed",
            HttpErrorKind::Redirect => "the server answered with a redirect, which is not followed",
            HttpErrorKind::Other => "the request failed",
            HttpErrorKind::Simulation => "simulation replay: no recorded interaction matches the request",
        })
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Loading the authority's metadata (OpenID configuration) or signing keys (JWKS) failed.
///
/// These errors are logged by the key cache and surface to callers of
/// [`TokenValidator::warm_up`](crate::TokenValidator::warm_up); a request being validated only
/// ever sees [`ValidationError::KeysUnavailable`] or [`ValidationError::UnknownKey`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The HTTP request failed.
    #[error("request to {url} failed")]
    Http {
        /// The URL that was requested.
        url: String,
        /// The transport error.
        #[source]
        source: HttpError,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered with HTTP status {status}")]
    Status {
        /// The URL that was requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body was not the expected JSON document.
    #[error("{url} did not return a valid {document}: {reason}")]
    InvalidDocument {
        /// The URL that was requested.
        url: String,
        /// Which document was expected (`OpenID configuration`, `JWKS`).
        document: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The discovery document announces an issuer that does not belong to the authority
    /// it was fetched from.
    #[error("the OpenID configuration at {url} announces issuer {issuer}, which does not belong to this authority")]
    IssuerMismatch {
        /// The discovery URL.
        url: String,
        /// The issuer it announced.
        issuer: String,
    },
    /// The discovery document announces an issuer on another host than the one this
    /// authority's tokens are issued from (for example a China authority whose document
    /// names a public-cloud issuer). A configuration error: it does not go away by retrying.
    #[error(
        "the OpenID configuration at {url} announces its issuer on {announced}, but this authority's issuers are on {expected}"
    )]
    IssuerHostMismatch {
        /// The discovery URL.
        url: String,
        /// The issuer origin the authority expects (e.g. `https://login.partner.microsoftonline.cn`).
        expected: String,
        /// The issuer origin the document announced.
        announced: String,
    },
    /// The discovery document's `jwks_uri` is on an origin that is not trusted for this
    /// authority's keys (see `AzureAdConfigBuilder::trusted_jwks_origin`).
    #[error(
        "the OpenID configuration at {url} publishes its keys at {jwks_uri}, which is not on a trusted origin (expected {expected}); name that origin with `trusted_jwks_origin` to trust it"
    )]
    UntrustedJwksOrigin {
        /// The discovery URL.
        url: String,
        /// The `jwks_uri` it announced.
        jwks_uri: String,
        /// The origin keys are expected on.
        expected: String,
    },
    /// The JWKS contained no key usable for the allowed algorithms.
    #[error("{url} contains no usable signing key")]
    NoUsableKeys {
        /// The JWKS URL.
        url: String,
    },
    /// The JWKS has more keys than the configured cap.
    #[error("{url} contains {count} keys, more than the cap of {max}")]
    TooManyKeys {
        /// The JWKS URL.
        url: String,
        /// How many keys it contained.
        count: usize,
        /// The configured cap.
        max: usize,
    },
    /// A static JWKS document could not be read.
    #[error("the static JWKS could not be read: {reason}")]
    Static {
        /// What went wrong.
        reason: String,
    },
    /// No tokio runtime was available to fetch keys.
    #[error("no HTTP transport is available (enable the `reqwest` feature or configure an HttpClient)")]
    NoTransport,
}

impl JwksError {
    /// `true` when the authority's documents contradict the configuration (an issuer of
    /// another tenant or host, keys on an untrusted origin): retrying will not help, the
    /// configuration or the authority must change.
    #[must_use]
    pub fn is_configuration_error(&self) -> bool {
        matches!(self, Self::IssuerMismatch { .. } | Self::IssuerHostMismatch { .. } | Self::UntrustedJwksOrigin { .. })
    }
}

/// Where a malformed token failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenPart {
    /// The compact serialisation itself (number of segments, characters).
    Structure,
    /// The JOSE header.
    Header,
    /// The claims set.
    Payload,
    /// The signature segment.
    Signature,
}

/// Why the decoded JSON text of a token part (header or claims set) was refused, before any
/// member was read.
///
/// JSON exchanged between systems must be UTF-8 Unicode text (RFC 8259 §8.1; RFC 7519 §7.2
/// step 10). Entra ID writes small, flat objects: a bound on nesting keeps hostile input from
/// costing stack or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonTextError {
    /// The bytes are not valid UTF-8 (RFC 8259 §8.1).
    NotUtf8,
    /// A `\u` escape names a UTF-16 surrogate without its pair (`"\ud800"`): the string is
    /// not Unicode text (RFC 8259 §8.2, RFC 7493 §2.1).
    UnpairedSurrogate,
    /// Objects and arrays nest deeper than [`MAX_JSON_DEPTH`] levels (the outer object is
    /// level 1).
    TooDeep,
}

/// The deepest nesting of objects and arrays accepted in a token's header or claims set (the
/// outer object counts as level 1). Entra ID's deepest claims (`_claim_sources`) reach level 3.
pub const MAX_JSON_DEPTH: usize = 16;

impl fmt::Display for JsonTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "not UTF-8",
            Self::UnpairedSurrogate => "an unpaired surrogate escape",
            Self::TooDeep => "nested too deeply",
        })
    }
}

/// Why an access token was rejected.
///
/// One variant per reason, in the order the checks run. Each maps to an RFC 6750 error code
/// ([`error_code`](Self::error_code)) and a fixed [`description`](Self::description) that is safe
/// to send to a client: neither ever contains token content. The likely cause of a rejection,
/// as far as it can be detected, is available server-side from
/// [`TokenValidator::diagnose`](crate::TokenValidator::diagnose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is longer than the configured maximum; nothing was decoded.
    #[error("the token is too large")]
    TokenTooLarge,
    /// The token is not a well-formed JWS compact serialisation with JSON object parts.
    #[error("the token is malformed ({0:?})")]
    Malformed(TokenPart),
    /// The decoded header or claims set is not acceptable JSON text: not UTF-8, an unpaired
    /// surrogate escape, or nested deeper than [`MAX_JSON_DEPTH`] (RFC 8259 §8.1, §8.2).
    #[error("the token's {0:?} is not acceptable JSON text ({1})")]
    InvalidJsonText(TokenPart, JsonTextError),
    /// A JSON object in the token has the same member name twice.
    #[error("the token contains a duplicate member ({0:?})")]
    DuplicateMember(TokenPart),
    /// A well-known claim has the wrong JSON type (for example a string `exp`).
    #[error("the claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
    /// The `alg` header is not in the allow-list (or does not match the key's `alg`).
    #[error("the signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The header carries a parameter that is refused (`crit`, `jku`, `jwk`, `x5u`, `x5c`).
    #[error("the token header contains the refused parameter `{0}`")]
    ForbiddenHeader(&'static str),
    /// The header's `typ` names another kind of token. Accepted: no `typ`, `JWT` or
    /// `application/jwt` (RFC 7519 §5.1; Entra ID writes `JWT`), and `at+jwt` or
    /// `application/at+jwt` (RFC 9068 §2.1), compared without regard to case (media types are
    /// case-insensitive, RFC 7515 §4.1.9). Refused: `JOSE`, `id_token+jwt`, `dpop+jwt`,
    /// `logout+jwt`, any other value (RFC 8725 §3.11).
    #[error("the token type is not accepted")]
    InvalidTokenType,
    /// The header declares content other than a plain JWT claims set: `cty` (nested JWT or
    /// other content, RFC 7515 §4.1.10, RFC 7519 §5.2), `zip` (compressed, RFC 7516 §4.1.3) or
    /// `enc` (encrypted, RFC 7516 §4.1.2). Entra ID's access tokens carry none of them.
    #[error("the token header declares unsupported content (`{0}`)")]
    UnsupportedContent(&'static str),
    /// The `kid` header is missing or not shaped like a key id.
    #[error("the token has no valid key id")]
    InvalidKeyId,
    /// No signing keys could be loaded from the authority (cold start with the identity
    /// endpoint unreachable). A server-side failure: answer 503, not 401.
    #[error("no signing keys are available")]
    KeysUnavailable,
    /// The `kid` is not in the authority's key set, even after any allowed refresh.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify with the key named by `kid`.
    #[error("the token signature is invalid")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
    /// The issuer is not one of this authority's issuers (or does not match the token's `tid`).
    #[error("the token issuer is not accepted")]
    InvalidIssuer,
    /// A multi-tenant configuration's allow-list does not contain the token's tenant.
    #[error("the token's tenant is not allowed")]
    TenantNotAllowed,
    /// The `tid` claim of a token from an Entra ID authority is not a tenant id in Entra's
    /// canonical form, a lower-case GUID (an upper-case or non-GUID `tid`). A missing `tid` is
    /// [`MissingClaim("tid")`](Self::MissingClaim).
    #[error("the token's tenant id is not in canonical form")]
    InvalidTenantId,
    /// The signing key's own `issuer` (published in the JWKS) does not match the token's issuer.
    #[error("the signing key does not belong to the token's issuer")]
    KeyIssuerMismatch,
    /// None of the token's audiences is accepted by this API.
    #[error("the token audience is not accepted")]
    InvalidAudience,
    /// The token has expired (beyond the allowed clock skew).
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf` in the future beyond the allowed clock skew).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token version (`ver`) is not allowed by the configuration.
    #[error("the token version is not accepted")]
    VersionNotAllowed,
    /// The `ver` claim of a token from an Entra ID authority contradicts its issuer: a v2.0
    /// issuer (`…/v2.0`) with a `ver` other than `2.0`, or a v1.0 issuer
    /// (`https://sts.windows.net/{tid}/` and its sovereign-cloud forms) with a `ver` other
    /// than `1.0`. A missing `ver` is [`MissingClaim("ver")`](Self::MissingClaim). Other
    /// OpenID Connect authorities (Azure AD B2C, ...) keep their own versions.
    #[error("the token version does not match its issuer")]
    VersionMismatch,
    /// A token from an Entra ID authority names no client application (`azp` in v2.0 tokens,
    /// `appid` in v1.0 tokens): an ID token, or no access token of Entra's.
    #[error("the token is not an access token")]
    NotAnAccessToken,
    /// The token has neither `scp` nor `roles`, and the configuration requires one of them.
    #[error("the token carries neither scopes nor roles")]
    NoScopesOrRoles,
}

impl ValidationError {
    /// The RFC 6750 `error` code for a `WWW-Authenticate` header, or `None` for server-side
    /// failures that must not be reported as the client's fault.
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::KeysUnavailable => None,
            _ => Some("invalid_token"),
        }
    }

    /// A fixed description, safe to send to a client (`error_description`).
    #[must_use]
    pub fn description(&self) -> &'static str {
        match self {
            Self::TokenTooLarge => "The access token is too large",
            Self::Malformed(_) => "The access token is malformed",
            Self::InvalidJsonText(..) => "The access token is not valid JSON text",
            Self::DuplicateMember(_) => "The access token contains a duplicate member",
            Self::InvalidClaim(_) => "The access token has a claim with an invalid value",
            Self::AlgorithmNotAllowed => "The access token signing algorithm is not allowed",
            Self::ForbiddenHeader(_) => "The access token header contains a refused parameter",
            Self::InvalidTokenType => "The token type is not accepted",
            Self::UnsupportedContent(_) => "The access token declares unsupported content",
            Self::InvalidKeyId => "The access token has no valid key id",
            Self::KeysUnavailable => "The signing keys are temporarily unavailable",
            Self::UnknownKey => "The access token was signed by an unknown key",
            Self::InvalidSignature => "The access token signature is invalid",
            Self::MissingClaim(_) => "The access token is missing a required claim",
            Self::InvalidIssuer => "The access token issuer is not accepted",
            Self::TenantNotAllowed => "The access token tenant is not allowed",
            Self::InvalidTenantId => "The access token tenant id is not in canonical form",
            Self::KeyIssuerMismatch => "The access token signing key does not match its issuer",
            Self::InvalidAudience => "The access token audience is not accepted",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not valid yet",
            Self::VersionNotAllowed => "The access token version is not accepted",
            Self::VersionMismatch => "The access token version does not match its issuer",
            Self::NotAnAccessToken => "The token is not an access token",
            Self::NoScopesOrRoles => "The access token carries neither scopes nor roles",
        }
    }

    /// `true` when the failure is on the server's side (no keys could be loaded).
    #[must_use]
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::KeysUnavailable)
    }

    /// `true` for [`Expired`](Self::Expired).
    #[must_use]
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired)
    }
}

/// An OAuth error answered by the token endpoint (Entra's error body) or a managed identity
/// endpoint, kept whole; [`endpoint`](Self::endpoint) says which.
///
/// `error_description` is Entra's text (it names the failing check and carries trace and
/// correlation ids; it never contains the client's secrets).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[non_exhaustive]
pub struct EntraError {
    /// The HTTP status of the answer.
    #[serde(skip)]
    pub status: u16,
    /// The OAuth error code (`invalid_grant`, `invalid_client`, `interaction_required`...).
    #[serde(default)]
    pub error: String,
    /// Entra's description.
    #[serde(default)]
    pub error_description: Option<String>,
    /// Entra's numeric error codes (`AADSTS50173` is `50173`).
    #[serde(default)]
    pub error_codes: Vec<u32>,
    /// Correlation id, for support requests.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Trace id, for support requests.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Timestamp of the error.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// A claims challenge (JSON) the caller must satisfy, for `interaction_required`.
    #[serde(default)]
    pub claims: Option<String>,
    /// A finer error (`consent_required`, `basic_action`...).
    #[serde(default)]
    pub suberror: Option<String>,
    /// `Retry-After` of the answer, if any (capped by the client's retry policy).
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
    /// Which endpoint answered (the token endpoint unless set otherwise).
    #[serde(skip)]
    pub endpoint: IdentityEndpoint,
}

impl EntraError {
    /// `invalid_grant`: the grant (assertion, refresh token, code) was refused.
    #[must_use]
    pub fn is_invalid_grant(&self) -> bool {
        self.error == "invalid_grant"
    }

    /// `invalid_client` or `unauthorized_client`: this application's own credential or
    /// registration was refused.
    #[must_use]
    pub fn is_client_rejected(&self) -> bool {
        self.error == "invalid_client" || self.error == "unauthorized_client"
    }

    /// `invalid_client` because the secret or certificate is not (or no longer) valid:
    /// AADSTS7000215 (invalid client secret), AADSTS7000222 (client secret expired),
    /// AADSTS700027 (assertion signed with a key not registered on the app). What a rotated
    /// credential answers.
    #[must_use]
    pub fn is_stale_client_proof(&self) -> bool {
        self.error == "invalid_client" && self.error_codes.iter().any(|c| matches!(c, 7_000_215 | 7_000_222 | 700_027))
    }

    /// The user must interact (MFA, consent, conditional access): `interaction_required`,
    /// or any error carrying a claims challenge.
    #[must_use]
    pub fn is_interaction_required(&self) -> bool {
        self.error == "interaction_required" || self.claims.as_deref().is_some_and(|c| !c.is_empty())
    }

    /// The incoming assertion expired (`AADSTS500133`).
    #[must_use]
    pub fn is_expired_assertion(&self) -> bool {
        self.error_codes.contains(&500_133)
    }

    /// The claims challenge, if any.
    #[must_use]
    pub fn claims_challenge(&self) -> Option<&str> {
        self.claims.as_deref().filter(|c| !c.is_empty())
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} answered `{}` (HTTP {}", self.endpoint, self.error, self.status)?;
        for code in &self.error_codes {
            write!(f, ", AADSTS{code}")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, ", correlation id {c}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for EntraError {}

/// A client credential could not produce its proof (secret, signed assertion, federated token).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A certificate or private key could not be read or used.
    #[error("the certificate credential is unusable: {0}")]
    Certificate(String),
    /// The federated token file is missing, unreadable or empty.
    #[error("the federated token file {path} is unusable: {reason}")]
    TokenFile {
        /// The file path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The managed identity endpoint did not deliver a token.
    #[error("the managed identity could not get a token")]
    ManagedIdentity(#[source] Box<TokenError>),
    /// A custom assertion callback failed.
    #[error("the assertion callback failed: {0}")]
    Callback(String),
    /// No credential could be chosen from the environment.
    #[error("no client credential in the environment: set {0}")]
    NotConfigured(&'static str),
    /// The secret source of a rotating credential (feature `secrets`) could not provide it.
    #[error("the client credential's secret source failed: {0}")]
    SecretSource(String),
}

/// Why an on-behalf-of exchange was refused before any network call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OboRefusal {
    /// The incoming token has expired.
    #[error("the incoming token has expired")]
    Expired,
    /// The incoming token is app-only: there is no user to act for.
    #[error("the incoming token is app-only; on-behalf-of needs a user")]
    AppOnly,
    /// The incoming token was not issued for this API.
    #[error("the incoming token was not issued for this API")]
    WrongAudience,
    /// The incoming token is not a well-formed JWT.
    #[error("the incoming token is malformed")]
    Malformed,
}

/// Which kind of identity endpoint answered, named in [`TokenError::Parse`] and
/// [`EntraError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdentityEndpoint {
    /// An OAuth 2.0 token endpoint (client credentials, on-behalf-of, sign-in, device code).
    #[default]
    TokenEndpoint,
    /// A managed identity endpoint (IMDS, App Service and the hosts that copy it).
    ManagedIdentity,
}

impl fmt::Display for IdentityEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TokenEndpoint => "token endpoint",
            Self::ManagedIdentity => "managed identity endpoint",
        })
    }
}

/// Acquiring a token failed.
///
/// Three ways of failing at the token endpoint (its error answer, the transport, an
/// unparsable answer), plus local refusals. Display never contains tokens, secrets or
/// assertions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token endpoint answered with an OAuth error.
    #[error("{0}")]
    ServerResponse(Box<EntraError>),
    /// The request could not be completed (connection, timeout, size cap).
    #[error("the token request failed")]
    Request(#[source] HttpError),
    /// The answer could not be parsed; `body` is kept for diagnosis, with any token redacted.
    #[error("the {endpoint} answered HTTP {status} with an unusable body: {reason}")]
    Parse {
        /// Which endpoint answered.
        endpoint: IdentityEndpoint,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
        /// The body, tokens redacted.
        body: String,
    },
    /// An identical request was throttled (429/503 with `Retry-After`) and its window has not
    /// passed: refused locally, with no network call.
    #[error("throttled by the token endpoint; retry after {}s", retry_after.as_secs())]
    Throttled {
        /// Time left in the window.
        retry_after: std::time::Duration,
    },
    /// The client credential could not produce its proof.
    #[error("the client credential failed")]
    Credential(#[source] CredentialError),
    /// An on-behalf-of exchange was refused before any network call.
    #[error("on-behalf-of refused: {0}")]
    OnBehalfOf(OboRefusal),
    /// The client is misconfigured (no token endpoint, no scopes...).
    #[error("the token client is misconfigured: {0}")]
    Configuration(&'static str),
    /// No token can be had without the user: sign them in (again).
    #[error("the user must sign in: {0}")]
    SignInRequired(&'static str),
}

impl TokenError {
    /// The Entra error answer, if that is what this is.
    #[must_use]
    pub fn entra(&self) -> Option<&EntraError> {
        match self {
            Self::ServerResponse(e) => Some(e),
            _ => None,
        }
    }

    /// `true` when a later identical request may succeed: the one definition of "retryable"
    /// that the token client's retry, the managed identity's retries and callers share.
    ///
    /// | failure | retryable |
    /// | --- | --- |
    /// | a timeout ([`HttpErrorKind::Timeout`]) | yes |
    /// | any 5xx answer, OAuth error or unparsable | yes |
    /// | 429 Too Many Requests, or [`Throttled`](Self::Throttled) locally | yes, after its `Retry-After` |
    /// | no connection ([`HttpErrorKind::Connect`]), a redirect, a body over the cap | no: the endpoint is not there, or answers what it will answer again |
    /// | any other 4xx (`invalid_grant`, `invalid_client`…), a credential, on-behalf-of or configuration refusal | no |
    ///
    /// The token client retries once, after its [`retry_delay`](crate::TokenRetryPolicy),
    /// what is retryable except a 429 (the server asked it to slow down: an answer with
    /// `Retry-After` opens a local throttling window instead), as MSAL retries 5xx once.
    /// The managed identity adds the statuses IMDS documents (404, 408, 410).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Request(e) => e.is_timeout(),
            Self::Throttled { .. } => true,
            Self::ServerResponse(e) => e.status >= 500 || e.status == 429,
            Self::Parse { status, .. } => *status >= 500,
            Self::Credential(_) | Self::OnBehalfOf(_) | Self::Configuration(_) | Self::SignInRequired(_) => false,
        }
    }
}

impl From<HttpError> for TokenError {
    fn from(e: HttpError) -> Self {
        Self::Request(e)
    }
}

/// A `WWW-Authenticate` value could not be read (see
/// [`parse_www_authenticate`](crate::challenge::parse_www_authenticate)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeParseError {
    /// The value does not follow RFC 7235's grammar; `position` is the byte offset where it
    /// broke.
    #[error("malformed WWW-Authenticate value at byte {position}")]
    Syntax {
        /// Byte offset in the header value.
        position: usize,
    },
    /// The Bearer challenge repeats an auth-param (RFC 7235 §2.1: each may occur only once).
    #[error("the Bearer challenge repeats `{name}`")]
    DuplicateParam {
        /// The repeated auth-param name (lowercased).
        name: String,
    },
    /// `claims` is not base64 of UTF-8 text.
    #[error("the claims challenge is not base64 of UTF-8 text")]
    Claims,
}
