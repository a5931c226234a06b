//! Why a request was refused, and how that maps to HTTP (RFC 6750) and gRPC.

use std::time::Duration;

use azad_core::{Challenge, ValidationError};
use http::{HeaderValue, Response, StatusCode, header};

use crate::bearer::BearerError;

/// The wire protocol of a request, which decides the shape of a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain HTTP: an HTTP status and `WWW-Authenticate`.
    Http,
    /// gRPC (`content-type: application/grpc*`): HTTP 200 with `grpc-status` and `grpc-message`.
    Grpc,
}

impl Protocol {
    /// Detects gRPC requests by their content type.
    #[must_use]
    pub fn of(headers: &http::HeaderMap) -> Self {
        match headers.get(header::CONTENT_TYPE) {
            Some(ct) if ct.as_bytes().starts_with(b"application/grpc") => Self::Grpc,
            _ => Self::Http,
        }
    }
}

/// Why claims did not meet a [`Requirement`](crate::Requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Insufficient {
    /// The scopes that would satisfy the requirement (for the `scope` auth-param); empty when
    /// the requirement is about app roles.
    pub required_scopes: Vec<String>,
    /// A fixed description, safe for clients.
    pub description: &'static str,
    /// A claims challenge (JSON) the caller can satisfy by acquiring a new token with it (an
    /// authentication context): the answer is then 401 `insufficient_claims` with
    /// `claims="<base64>"` rather than 403.
    pub claims: Option<String>,
}

impl Insufficient {
    pub(crate) fn new(description: &'static str) -> Self {
        Self { required_scopes: Vec::new(), description, claims: None }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer credentials: 401 with a bare `WWW-Authenticate: Bearer`.
    MissingToken,
    /// A malformed request (two `Authorization` headers, bad syntax, token in the query):
    /// 400 `invalid_request`.
    InvalidRequest(BearerError),
    /// The token was refused: 401 `invalid_token`.
    InvalidToken(ValidationError),
    /// No signing keys could be loaded: 503 with `Retry-After`. A server-side failure.
    Unavailable {
        /// When to retry.
        retry_after: Duration,
    },
    /// The token lacks a required scope or app role, or the caller is not allowed (group,
    /// application, tenant, guest): 403 `insufficient_scope` (RFC 6750 §3.1: the request needs
    /// other privileges than the token carries; `invalid_token` would wrongly tell the client
    /// to get a new token for the same grant).
    Forbidden(Insufficient),
    /// The token does not satisfy a claims challenge the caller can meet by acquiring a new
    /// token (an authentication context): 401 `insufficient_claims` with `claims="<base64>"`,
    /// as Entra ID and Microsoft Graph answer (gRPC: `UNAUTHENTICATED`, the challenge in the
    /// `www-authenticate` metadata). The [`Insufficient::claims`] holds the JSON.
    InsufficientClaims(Insufficient),
    /// Group membership could not be resolved through Microsoft Graph (throttled, down,
    /// refused): 503 with `Retry-After` (gRPC `UNAVAILABLE`). Never an allow.
    GroupsUnavailable {
        /// When to retry.
        retry_after: Duration,
    },
    /// Claims were expected but the `AzureAdAuth` layer is not installed in front of this
    /// route: 500, so that a misconfigured route fails closed.
    MissingLayer,
    /// A handler needs the layer's token client (on-behalf-of, app tokens) but the layer has
    /// none: 500, so that a misconfigured route fails closed; the text names
    /// [`AzureAdAuth::with_token_client`](crate::AzureAdAuth::with_token_client).
    MissingTokenClient,
}

impl AuthRejection {
    /// Classifies a validation failure.
    #[must_use]
    pub fn from_validation(error: ValidationError, retry_after: Duration) -> Self {
        if error.is_server_error() { Self::Unavailable { retry_after } } else { Self::InvalidToken(error) }
    }

    /// Classifies a bearer extraction failure.
    #[must_use]
    pub fn from_bearer(error: BearerError) -> Self {
        if error.is_missing() { Self::MissingToken } else { Self::InvalidRequest(error) }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) | Self::InsufficientClaims(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable { .. } | Self::GroupsUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MissingLayer | Self::MissingTokenClient => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code: 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED`, 14 `UNAVAILABLE`,
    /// 13 `INTERNAL`, by the one mapping of [`Challenge::grpc_code`].
    #[must_use]
    pub fn grpc_code(&self) -> u8 {
        Challenge::new(self.status()).grpc_code()
    }

    /// The RFC 6750 error code, if any.
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken
            | Self::Unavailable { .. }
            | Self::GroupsUnavailable { .. }
            | Self::MissingLayer
            | Self::MissingTokenClient => None,
            Self::InsufficientClaims(_) => Some("insufficient_claims"),
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(e) => e.error_code(),
            Self::Forbidden(_) => Some("insufficient_scope"),
        }
    }

    /// A fixed description, safe for clients (never token content).
    #[must_use]
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingToken => "No bearer token",
            Self::InvalidRequest(e) => e.description(),
            Self::InvalidToken(e) => e.description(),
            Self::Unavailable { .. } => "Authentication is temporarily unavailable",
            Self::Forbidden(i) | Self::InsufficientClaims(i) => i.description,
            Self::GroupsUnavailable { .. } => "Group membership cannot be checked at the moment",
            Self::MissingLayer => {
                "Authentication is not configured for this route: add the `AzureAdAuth` layer (`.layer(AzureAdAuth::new(config))`) in front of it"
            }
            Self::MissingTokenClient => {
                "No token client for downstream calls: configure `AzureAdAuth::new(config).with_token_client(client)`"
            }
        }
    }

    /// The RFC 6750 challenge of this rejection: status, `error`, `scope` for 403, and
    /// `Retry-After` for 503. `error_description` (the fixed [`description`](Self::description))
    /// only when `verbose`.
    pub fn challenge(&self, verbose: bool) -> Challenge {
        let mut challenge = Challenge::new(self.status());
        if let Some(code) = self.error_code() {
            challenge = challenge.with_error(code);
            if verbose {
                challenge = challenge.with_error_description(self.description());
            }
        }
        match self {
            Self::Forbidden(i) => challenge.with_scope(&i.required_scopes),
            Self::InsufficientClaims(i) => match &i.claims {
                Some(claims) => challenge.with_claims(claims.clone()),
                None => challenge,
            },
            Self::Unavailable { retry_after } | Self::GroupsUnavailable { retry_after } => {
                challenge.with_retry_after(*retry_after)
            }
            _ => challenge,
        }
    }

    /// The `WWW-Authenticate` value: `Bearer`, then comma-separated auth-params (RFC 6750 §3),
    /// as [`Challenge`] formats them. `error_description` only when `verbose`.
    #[must_use]
    pub fn www_authenticate(&self, verbose: bool) -> HeaderValue {
        self.challenge(verbose).header_value()
    }

    /// The message for `grpc-message` and for response bodies: the fixed
    /// [`description`](Self::description) when `verbose`, else the terse text of the status
    /// ([`Challenge::message`]). [`MissingLayer`](Self::MissingLayer) and
    /// [`MissingTokenClient`](Self::MissingTokenClient) are deployment errors, not facts about
    /// the caller: their text names the fix in both modes.
    #[must_use]
    pub fn message(&self, verbose: bool) -> &'static str {
        if verbose || matches!(self, Self::MissingLayer | Self::MissingTokenClient) {
            self.description()
        } else {
            Challenge::new(self.status()).message()
        }
    }

    /// Builds the standard response: RFC 6750 for HTTP, a trailers-only gRPC error for gRPC
    /// (with `WWW-Authenticate` kept). Bodies are empty.
    #[must_use]
    pub fn to_response<B: Default>(&self, protocol: Protocol, verbose: bool) -> Response<B> {
        let mut response: Response<B> = self.challenge(verbose).to_response();
        if protocol == Protocol::Grpc {
            *response.status_mut() = StatusCode::OK;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from(u16::from(self.grpc_code())));
            // The same text a `tonic::Status` would carry (`status_of`).
            headers.insert("grpc-message", grpc_message(self.message(verbose)));
        }
        response
    }

    /// The gRPC status of this rejection, for code that answers with a `tonic::Status` (the
    /// method attributes): the code of [`grpc_code`](Self::grpc_code), the message of
    /// [`message`](Self::message), and the challenge's `WWW-Authenticate` and `Retry-After`
    /// in the metadata.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    #[must_use]
    pub fn to_status(&self, verbose: bool) -> tonic::Status {
        status_of(&self.challenge(verbose), self.message(verbose))
    }
}

impl std::fmt::Display for AuthRejection {
    /// The fixed [`description`](AuthRejection::description) (never token content).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AuthRejection {}

/// The `tonic::Status` of an answer: the code of [`Challenge::grpc_code`], `message`, and the
/// challenge's `WWW-Authenticate` and `Retry-After` in the metadata. The one way a gRPC status
/// is written.
#[cfg(feature = "tonic")]
pub(crate) fn status_of(challenge: &Challenge, message: &str) -> tonic::Status {
    let mut headers = http::HeaderMap::new();
    challenge.apply_to(&mut headers);
    tonic::Status::with_metadata(
        tonic::Code::from(i32::from(challenge.grpc_code())),
        message,
        tonic::metadata::MetadataMap::from_headers(headers),
    )
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec requires.
fn grpc_message(message: &str) -> HeaderValue {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_headers() {
        assert_eq!(AuthRejection::MissingToken.www_authenticate(true), "Bearer");
        assert_eq!(
            AuthRejection::InvalidToken(ValidationError::Expired).www_authenticate(false),
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            AuthRejection::InvalidToken(ValidationError::Expired).www_authenticate(true),
            "Bearer error=\"invalid_token\", error_description=\"The access token expired\""
        );
        assert_eq!(
            AuthRejection::InvalidRequest(BearerError::MultipleHeaders).www_authenticate(false),
            "Bearer error=\"invalid_request\""
        );
        let forbidden = AuthRejection::Forbidden(Insufficient {
            required_scopes: vec!["a".into(), "b\"c".into()],
            description: "x",
            claims: None,
        });
        assert_eq!(forbidden.www_authenticate(false), "Bearer error=\"insufficient_scope\", scope=\"a b\\\"c\"");
    }

    #[test]
    fn statuses() {
        let r: Response<()> =
            AuthRejection::Unavailable { retry_after: Duration::from_secs(10) }.to_response(Protocol::Http, false);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "10");
        let g: Response<()> = AuthRejection::MissingToken.to_response(Protocol::Grpc, false);
        assert_eq!(g.status(), 200);
        assert_eq!(g.headers()["grpc-status"], "16");
        assert_eq!(g.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let f: Response<()> =
            AuthRejection::Forbidden(Insufficient { required_scopes: vec![], description: "d", claims: None })
                .to_response(Protocol::Grpc, true);
        assert_eq!(f.headers()["grpc-status"], "7");
        assert_eq!(f.headers()["grpc-message"], "d");
        let m: Response<()> = AuthRejection::MissingLayer.to_response(Protocol::Http, false);
        assert_eq!(m.status(), 500);
        assert!(m.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn step_up_and_graph_outage_answers() {
        let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
        let step_up = AuthRejection::InsufficientClaims(Insufficient {
            required_scopes: vec![],
            description: "d",
            claims: Some(claims.into()),
        });
        let r: Response<()> = step_up.to_response(Protocol::Http, false);
        assert_eq!(r.status(), 401);
        // Microsoft's documented example value for c1.
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
        );
        let g: Response<()> = step_up.to_response(Protocol::Grpc, false);
        assert_eq!(g.headers()["grpc-status"], "16");
        let down: Response<()> =
            AuthRejection::GroupsUnavailable { retry_after: Duration::from_secs(7) }.to_response(Protocol::Http, false);
        assert_eq!(down.status(), 503);
        assert_eq!(down.headers()[header::RETRY_AFTER], "7");
        let g: Response<()> =
            AuthRejection::GroupsUnavailable { retry_after: Duration::from_secs(7) }.to_response(Protocol::Grpc, false);
        assert_eq!(g.headers()["grpc-status"], "14");
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(grpc_message("a b%c\u{e9}"), "a b%25c%C3%A9");
    }
}
