//! The token-endpoint wire format shared by every client in this folder (the token client,
//! the sign-in client, managed identity): form requests, token answers (RFC 6749 §5.1, §5.2),
//! `Retry-After`, and the redaction of answers kept for diagnosis. The floor below them: it
//! imports none of them.

use std::time::{Duration, SystemTime};

use http::{StatusCode, header};
use serde::Deserialize;

use crate::client::cache::AcquiredToken;
use crate::error::{EntraError, IdentityEndpoint, TokenError};
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::{AccessToken, BearerToken};

/// `grant_type` of on-behalf-of (RFC 7523 §2.1, as Entra's
/// [on-behalf-of flow](https://learn.microsoft.com/entra/identity-platform/v2-oauth2-on-behalf-of-flow)
/// uses it).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) of an identity endpoint's
/// answer, without overflow; see [`parse_retry_after`](crate::challenge::parse_retry_after).
/// Each client caps it with its own retry policy.
pub(crate) fn retry_after(response: &HttpResponse) -> Option<Duration> {
    crate::challenge::parse_retry_after(response.headers())
}

/// A response body for diagnostics, with every token-bearing member redacted.
pub(crate) fn redact_body(body: &[u8]) -> String {
    const SECRET_MEMBERS: [&str; 5] = ["access_token", "refresh_token", "id_token", "client_secret", "assertion"];
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            for member in SECRET_MEMBERS {
                if let Some(v) = map.get_mut(member) {
                    *v = "[redacted]".into();
                }
            }
            let text = serde_json::Value::Object(map).to_string();
            text.chars().take(2048).collect()
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            if text.contains("eyJ") {
                "[redacted: unparsable body]".to_owned()
            } else {
                text.chars().take(512).collect()
            }
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    refresh_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// What a token endpoint grants: an access token, and for sign-ins a refresh token and an ID
/// token.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    pub(crate) token: AcquiredToken,
    pub(crate) refresh_token: Option<crate::secret::RefreshToken>,
    pub(crate) id_token: Option<BearerToken>,
}

/// An unusable answer of `endpoint`, with its body kept for diagnosis (tokens redacted).
pub(crate) fn unusable(endpoint: IdentityEndpoint, response: &HttpResponse, reason: &str) -> TokenError {
    TokenError::Parse {
        endpoint,
        status: response.status().as_u16(),
        reason: reason.to_owned(),
        body: redact_body(response.body()),
    }
}

/// An acquired token from an answer of `endpoint`, whose lifetime the
/// [expiry normaliser](crate::client::expiry::lifetime) read. An answer with no readable expiry, or
/// whose token has already expired, is unusable: it would be handed out expired.
pub(crate) fn acquired(
    endpoint: IdentityEndpoint,
    response: &HttpResponse,
    access_token: String,
    expires_in: Option<Duration>,
    refresh_in: Option<Duration>,
    token_type: Option<String>,
) -> Result<AcquiredToken, TokenError> {
    let expires_in = expires_in.ok_or_else(|| {
        unusable(endpoint, response, "no readable expiry: neither expires_in, expires_on nor the token's exp")
    })?;
    if expires_in.is_zero() {
        return Err(unusable(endpoint, response, "the token has already expired"));
    }
    Ok(AcquiredToken::new(
        AccessToken::new(access_token),
        expires_in,
        refresh_in,
        token_type.unwrap_or_else(|| "Bearer".into()),
    ))
}

/// Parses a token endpoint answer.
pub(crate) fn parse_token_response(response: &HttpResponse) -> Result<TokenGrant, TokenError> {
    let status = response.status().as_u16();
    if response.status() != StatusCode::OK {
        let mut e: EntraError = serde_json::from_slice(response.body()).map_err(|_| TokenError::Parse {
            endpoint: IdentityEndpoint::TokenEndpoint,
            status,
            reason: "not an OAuth error response".into(),
            body: redact_body(response.body()),
        })?;
        if e.error.is_empty() {
            return Err(TokenError::Parse {
                endpoint: IdentityEndpoint::TokenEndpoint,
                status,
                reason: "no `error` member".into(),
                body: redact_body(response.body()),
            });
        }
        e.status = status;
        e.retry_after = retry_after(response);
        return Err(TokenError::ServerResponse(Box::new(e)));
    }
    let r: TokenResponse = serde_json::from_slice(response.body())
        .map_err(|_| unusable(IdentityEndpoint::TokenEndpoint, response, "not a token response"))?;
    if r.access_token.is_empty() {
        return Err(unusable(IdentityEndpoint::TokenEndpoint, response, "empty access_token"));
    }
    let expires_in = crate::client::expiry::lifetime(
        r.expires_in.as_ref(),
        r.expires_on.as_ref(),
        &r.access_token,
        SystemTime::now(),
    );
    let token = acquired(
        IdentityEndpoint::TokenEndpoint,
        response,
        r.access_token,
        expires_in,
        r.refresh_in.as_ref().and_then(crate::client::expiry::seconds).map(Duration::from_secs),
        r.token_type,
    )?;
    Ok(TokenGrant {
        token,
        refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(crate::secret::RefreshToken::new),
        id_token: r.id_token.filter(|t| !t.is_empty()).map(BearerToken::new),
    })
}

/// Builds a form POST to the token endpoint.
pub(crate) fn form_request(endpoint: &str, params: &[(&str, &str)]) -> Result<HttpRequest, TokenError> {
    let body = serde_urlencoded::to_string(params).map_err(|_| TokenError::Configuration("unencodable form"))?;
    http::Request::post(endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body.into_bytes())
        .map_err(|_| TokenError::Configuration("invalid token endpoint URL"))
}
