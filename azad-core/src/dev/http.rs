//! The ground floor of the dev tenant's server: the request and response every handler sees,
//! JSON and HTML answers, Entra-shaped OAuth errors, and form, query and CORS helpers. It
//! depends on nothing else of `dev/` but [`random`](super::random) and [`clock`](super::clock).
#![allow(clippy::result_large_err)] // errors are whole OAuth answers, by design

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use super::clock::now;
use super::random::random_guid;
use crate::authority::Authority;

/// A whole answer of the dev tenant.
pub(crate) type DevResponse = Response<Full<Bytes>>;

/// A parsed request as the endpoint handlers see it.
#[derive(Debug)]
pub(crate) struct DevRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl DevRequest {
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> DevResponse {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts")
}

/// An Entra-shaped OAuth error body.
pub(crate) fn oauth_error_body(error: &str, code: u32, description: &str) -> Value {
    let trace_id = random_guid();
    let correlation_id = random_guid();
    // Entra's shape: `2026-11-29 18:04:05Z`.
    let t = crate::client::expiry::format_date_time(now(), false);
    let timestamp = format!("{} {}Z", &t[..10], &t[11..19]);
    json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": Authority::error_uri(code),
    })
}

/// An Entra-shaped OAuth error response.
pub(crate) fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> DevResponse {
    json_response(status, &oauth_error_body(error, code, description))
}

pub(crate) fn invalid_request(description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", 900_144, description)
}

pub(crate) fn invalid_client(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", code, description)
}

pub(crate) fn invalid_grant(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
}

pub(crate) fn invalid_request_code(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", code, description)
}

/// Parses an `application/x-www-form-urlencoded` body; a repeated parameter is an error.
pub(crate) fn form(body: &[u8]) -> Result<HashMap<String, String>, DevResponse> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(invalid_request("A parameter was repeated."));
        }
    }
    Ok(map)
}

/// The `Origin` of a browser's cross-origin request (Fetch standard), if any.
pub(crate) fn origin(request: &DevRequest) -> Option<&str> {
    request.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|o| !o.is_empty())
}

pub(crate) fn html(status: StatusCode, body: String) -> DevResponse {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(crate) fn redirect(location: &str) -> DevResponse {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::new()))
        .expect("static response parts")
}

pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

/// Lets any page read the answer (public documents: MSAL.js fetches them from the browser).
pub(crate) fn any_origin(mut response: DevResponse) -> DevResponse {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
    response
}
