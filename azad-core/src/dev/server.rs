//! The dev tenant's HTTP server: routing, fault injection, and the metadata and key endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{Endpoint, Fault, Shared};
use crate::authority::CONSUMERS_TENANT_ID;

pub(crate) type DevResponse = Response<Full<Bytes>>;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(target: "azad::dev", error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Ok(Err(e)) => tracing::debug!(target: "azad::dev", error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(target: "azad::dev", "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

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

#[derive(Debug)]
enum Route {
    Discovery { tenant: String, v2: bool },
    Jwks { tenant: String, v2: bool },
    Token { tenant: String },
    Authorize { tenant: String },
    Logout,
    DeviceCode,
    DeviceLogin,
    Imds,
    AppService,
    Secret { name: String },
    Graph { user: Option<String>, function: super::graph::Function },
}

impl Route {
    fn endpoint(&self) -> Endpoint {
        match self {
            Self::Discovery { v2: true, .. } => Endpoint::OpenIdConfiguration,
            Self::Discovery { v2: false, .. } => Endpoint::OpenIdConfigurationV1,
            Self::Jwks { .. } => Endpoint::Jwks,
            Self::Token { .. } => Endpoint::Token,
            Self::Authorize { .. } | Self::Logout | Self::DeviceLogin => Endpoint::Authorize,
            Self::DeviceCode => Endpoint::DeviceCode,
            Self::Imds => Endpoint::ManagedIdentity,
            Self::AppService => Endpoint::AppServiceIdentity,
            Self::Secret { .. } => Endpoint::Secrets,
            Self::Graph { .. } => Endpoint::Graph,
        }
    }
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let tenant = |t: &str| t.to_ascii_lowercase();
    match (method, segments.as_slice()) {
        (&Method::GET, [t, "v2.0", ".well-known", "openid-configuration"]) => {
            Some(Route::Discovery { tenant: tenant(t), v2: true })
        }
        (&Method::GET, [t, ".well-known", "openid-configuration"]) => {
            Some(Route::Discovery { tenant: tenant(t), v2: false })
        }
        (&Method::GET, [t, "discovery", "v2.0", "keys"]) => Some(Route::Jwks { tenant: tenant(t), v2: true }),
        // Azure AD B2C's shapes: the user flow (policy) between the tenant and the document.
        (&Method::GET, [t, _policy, "v2.0", ".well-known", "openid-configuration"]) => {
            Some(Route::Discovery { tenant: tenant(t), v2: true })
        }
        (&Method::GET, [t, _policy, "discovery", "v2.0", "keys"]) => Some(Route::Jwks { tenant: tenant(t), v2: true }),
        (&Method::GET, [t, "discovery", "keys"]) => Some(Route::Jwks { tenant: tenant(t), v2: false }),
        (&Method::POST, [t, "oauth2", "v2.0", "token"]) => Some(Route::Token { tenant: tenant(t) }),
        (&Method::GET, [t, "oauth2", "v2.0", "authorize"]) => Some(Route::Authorize { tenant: tenant(t) }),
        (&Method::GET, [_, "oauth2", "v2.0", "logout"]) => Some(Route::Logout),
        (&Method::POST, [_, "oauth2", "v2.0", "devicecode"]) => Some(Route::DeviceCode),
        (&Method::GET, ["devicelogin"]) => Some(Route::DeviceLogin),
        (&Method::GET, ["metadata", "identity", "oauth2", "token"]) => Some(Route::Imds),
        (&Method::GET, ["msi", "token"]) => Some(Route::AppService),
        (&Method::GET, ["secrets", name]) => Some(Route::Secret { name: (*name).to_owned() }),
        (&Method::POST, ["v1.0", "me", f]) => {
            super::graph::Function::parse(f).map(|function| Route::Graph { user: None, function })
        }
        (&Method::POST, ["v1.0", "users", id, f]) => {
            super::graph::Function::parse(f).map(|function| Route::Graph { user: Some((*id).to_owned()), function })
        }
        _ => None,
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
    let trace_id = super::random_guid();
    let correlation_id = super::random_guid();
    // Entra's shape: `2026-11-29 18:04:05Z`.
    let t = crate::client::expiry::format_date_time(super::endpoints::now(), false);
    let timestamp = format!("{} {}Z", &t[..10], &t[11..19]);
    json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    })
}

/// An Entra-shaped OAuth error response.
pub(crate) fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> DevResponse {
    json_response(status, &oauth_error_body(error, code, description))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<DevResponse, Infallible> {
    if shared.stopped.load(Ordering::SeqCst) {
        return Ok(json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": "temporarily_unavailable"})));
    }
    shared.served.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({"error": "invalid_request"})));
        }
    };
    let request = DevRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
    };
    if request.method == Method::POST && request.path == CONTROL_FAULTS_PATH {
        return Ok(control_faults(&shared, &request));
    }
    if request.method == Method::OPTIONS && matches!(route(&Method::POST, &request.path), Some(Route::Token { .. })) {
        return Ok(token_preflight(&request));
    }
    let Some(route) = route(&request.method, &request.path) else {
        return Ok(json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})));
    };
    // Entra echoes the client's `client-request-id` (a GUID; MSAL sends one with every request)
    // as the response header and as the `correlation_id` of error bodies.
    let client_request_id = request
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::authority::is_guid(v))
        .map(str::to_ascii_lowercase);
    let response = Box::pin(route_request(shared, route, request)).await;
    Ok(match client_request_id {
        Some(id) => echo_correlation_id(response, &id).await,
        None => response,
    })
}

/// Sets `client-request-id` on the response and, in an error body, `correlation_id`.
async fn echo_correlation_id(response: DevResponse, id: &str) -> DevResponse {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = http::HeaderValue::from_str(id) {
        parts.headers.insert("client-request-id", value);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut doc) if parts.status.is_client_error() || parts.status.is_server_error() => {
            match doc.get("correlation_id").and_then(Value::as_str).map(str::to_owned) {
                Some(old) => {
                    doc["correlation_id"] = id.into();
                    if let Some(d) = doc.get("error_description").and_then(Value::as_str) {
                        doc["error_description"] = d.replace(&old, id).into();
                    }
                    Bytes::from(doc.to_string())
                }
                None => bytes,
            }
        }
        _ => bytes,
    };
    Response::from_parts(parts, Full::new(body))
}

async fn route_request(shared: Arc<Shared>, route: Route, request: DevRequest) -> DevResponse {
    let endpoint = match route {
        Route::Jwks { .. } if request.query_param("appid").is_some() => Endpoint::AppSpecificJwks,
        _ => route.endpoint(),
    };
    shared.count(endpoint);
    if let Some(fault) = shared.take_fault(endpoint)
        && let Some(response) = apply_fault(fault).await
    {
        return response;
    }
    match route {
        // Public documents: any page may read them (MSAL.js fetches them from the browser).
        Route::Discovery { tenant, v2 } => any_origin(discovery(&shared, &tenant, v2)),
        Route::Jwks { tenant, v2 } => any_origin(jwks(&shared, &tenant, v2, &request)),
        Route::Token { tenant } => super::endpoints::token(&shared, &tenant, &request),
        Route::Authorize { tenant } => super::interactive::authorize(&shared, &tenant, &request),
        Route::Logout => logout(&shared, &request),
        Route::DeviceCode => super::interactive::device_code(&shared, &request),
        Route::DeviceLogin => super::interactive::device_login(&shared, &request),
        Route::Imds => super::endpoints::managed_identity(&shared, &request, false),
        Route::AppService => super::endpoints::managed_identity(&shared, &request, true),
        Route::Secret { name } => super::interactive::secret(&shared, &name, &request),
        Route::Graph { user, function } => super::graph::membership(&shared, user.as_deref(), function, &request),
    }
}

fn any_origin(mut response: DevResponse) -> DevResponse {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
    response
}

/// `OPTIONS` on the token endpoint: the CORS preflight a browser sends before a redemption
/// with headers beyond the CORS-safelisted ones (Swagger UI adds `X-Requested-With`). The
/// preflight names no client, so it is allowed for any origin; whether the redemption itself
/// is readable depends on the redirect URI's platform (`spa`), decided on the `POST`.
fn token_preflight(request: &DevRequest) -> DevResponse {
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS")
        .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
        .header(header::VARY, "Origin, Access-Control-Request-Headers")
        .body(Full::new(Bytes::new()))
        .expect("static response parts");
    let headers = response.headers_mut();
    if let Some(origin) = request.headers.get(header::ORIGIN) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    if let Some(asked) = request.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    response
}

/// The dev tenant's control route for fault injection from another process (a test harness in
/// another language): `POST` a form with `endpoint`, `fault` and its parameters.
pub(crate) const CONTROL_FAULTS_PATH: &str = "/_azad/faults";

/// `POST /_azad/faults`: `endpoint` = `token`, `authorize`, `devicecode`, `jwks`,
/// `openid-configuration` or `graph`; `fault` = `interaction_required` (with `claims`),
/// `invalid_grant`, `status` (with `status`), `unavailable` or `too_many_requests` (with
/// `retry_after`) or `none` (clears it); `times` limits it to the next N requests.
fn control_faults(shared: &Shared, request: &DevRequest) -> DevResponse {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&request.body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str);
    let bad = |why: &str| {
        json_response(StatusCode::BAD_REQUEST, &json!({"error": "invalid_request", "error_description": why}))
    };
    let endpoint = match get("endpoint") {
        Some("token") => Endpoint::Token,
        Some("authorize") => Endpoint::Authorize,
        Some("devicecode") => Endpoint::DeviceCode,
        Some("jwks") => Endpoint::Jwks,
        Some("openid-configuration") => Endpoint::OpenIdConfiguration,
        Some("graph") => Endpoint::Graph,
        _ => return bad("endpoint: token, authorize, devicecode, jwks, openid-configuration or graph"),
    };
    // A missing number takes its default; a malformed one is refused.
    let number = |k: &str, default: u64| get(k).map_or(Some(default), |v| v.parse::<u64>().ok());
    let (Some(status), Some(retry_after), Some(times)) =
        (number("status", 500), number("retry_after", 1), number("times", 0))
    else {
        return bad("status, retry_after and times are numbers");
    };
    let fault = match get("fault") {
        Some("interaction_required") => {
            Fault::InteractionRequired { claims: get("claims").unwrap_or_default().to_owned() }
        }
        Some("invalid_grant") => Fault::InvalidGrant,
        Some("status") => Fault::Status(u16::try_from(status).unwrap_or(500)),
        Some("unavailable") => Fault::Unavailable { retry_after },
        Some("too_many_requests") => Fault::TooManyRequests { retry_after },
        Some("none") => {
            shared.clear_fault(endpoint);
            return json_response(StatusCode::OK, &json!({"cleared": format!("{endpoint:?}")}));
        }
        _ => return bad("fault: interaction_required, invalid_grant, status, unavailable, too_many_requests or none"),
    };
    let times = usize::try_from(times).unwrap_or(usize::MAX);
    shared.set_fault(endpoint, fault, (times > 0).then_some(times));
    json_response(StatusCode::OK, &json!({"injected": format!("{endpoint:?}"), "times": times}))
}

/// `GET /{tenant}/oauth2/v2.0/logout`: back to a registered `post_logout_redirect_uri`.
fn logout(shared: &Shared, request: &DevRequest) -> DevResponse {
    let target = request.query_param("post_logout_redirect_uri");
    let registered = target.as_deref().is_some_and(|t| {
        shared
            .registry()
            .apps
            .iter()
            .any(|a| a.redirect_uris.iter().chain(&a.spa_redirect_uris).any(|r| r == t || r.starts_with(t)))
    });
    match target {
        Some(t) if registered => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, t)
            .body(Full::new(Bytes::new()))
            .expect("static response parts"),
        _ => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Full::new(Bytes::from_static(b"<p>You signed out of your account.</p>")))
            .expect("static response parts"),
    }
}

/// Returns the faulty response, or `None` to continue normally (after a delay).
async fn apply_fault(fault: Fault) -> Option<DevResponse> {
    let with_retry_after = |status: StatusCode, secs: u64| {
        let mut r = json_response(status, &json!({"error": "temporarily_unavailable"}));
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        r
    };
    Some(match fault {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::Status(code) => {
            json_response(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &json!({}))
        }
        Fault::Body(body) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts"),
        Fault::Oversized(n) => {
            let mut body = String::with_capacity(n + 16);
            body.push_str("{\"keys\":[],\"pad\":\"");
            body.extend(std::iter::repeat_n('x', n));
            body.push_str("\"}");
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("static response parts")
        }
        Fault::TooManyRequests { retry_after } => with_retry_after(StatusCode::TOO_MANY_REQUESTS, retry_after),
        Fault::Unavailable { retry_after } => with_retry_after(StatusCode::SERVICE_UNAVAILABLE, retry_after),
        Fault::InvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked.",
        ),
        Fault::InteractionRequired { claims } => {
            let mut body = oauth_error_body(
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
            );
            body["claims"] = claims.into();
            json_response(StatusCode::BAD_REQUEST, &body)
        }
    })
}

/// The tenant part of issuers for a tenant path segment, or `None` for an unknown tenant.
fn tenant_part(shared: &Shared, tenant: &str) -> Option<String> {
    match tenant {
        "common" | "organizations" => Some(crate::authority::TENANT_TEMPLATE.to_owned()),
        "consumers" => Some(CONSUMERS_TENANT_ID.to_owned()),
        t if t == shared.domain || t == shared.tenant_id => Some(shared.tenant_id.clone()),
        t if shared.is_known_tenant(t) => Some(t.to_owned()),
        _ => None,
    }
}

fn unknown_tenant(tenant: &str) -> DevResponse {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

fn discovery(shared: &Shared, tenant: &str, v2: bool) -> DevResponse {
    let Some(part) = tenant_part(shared, tenant) else {
        return unknown_tenant(tenant);
    };
    let base = &shared.base_url;
    let doc = if v2 {
        json!({
            "issuer": shared.issuer_v2(&part),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [shared.signing_algorithm.as_str()],
            "code_challenge_methods_supported": ["plain", "S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username", "oid", "tid", "ver"],
            "request_uri_parameter_supported": false,
            "tenant_region_scope": "EU",
            "cloud_instance_name": "azad.dev",
        })
    } else {
        json!({
            "issuer": shared.issuer_v1(&part),
            "jwks_uri": format!("{base}/{tenant}/discovery/keys"),
            "token_endpoint": format!("{base}/{tenant}/oauth2/token"),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/authorize"),
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/logout"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [shared.signing_algorithm.as_str()],
            "cloud_instance_name": "azad.dev",
        })
    };
    json_response(StatusCode::OK, &doc)
}

/// The published JWKS: v2.0 keys carry their issuer, v1.0 keys do not (like Entra).
pub(crate) fn jwks_document(shared: &Shared, issuer: Option<&str>, appid: Option<&str>) -> Value {
    let ring = shared.keys.read().unwrap_or_else(|e| e.into_inner());
    let mut keys: Vec<Value> = ring.published.iter().map(|k| k.jwk(issuer)).collect();
    if let Some(key) = appid.and_then(|a| ring.app_keys.get(a)) {
        keys.push(key.jwk(issuer));
    }
    if shared.signing_algorithm != crate::config::SigningAlgorithm::RS256 {
        for key in &mut keys {
            key["alg"] = shared.signing_algorithm.as_str().into();
        }
    }
    json!({ "keys": keys })
}

fn jwks(shared: &Shared, tenant: &str, v2: bool, request: &DevRequest) -> DevResponse {
    let Some(part) = tenant_part(shared, tenant) else {
        return unknown_tenant(tenant);
    };
    let issuer = v2.then(|| shared.issuer_v2(&part));
    let appid = request.query_param("appid");
    let doc = jwks_document(shared, issuer.as_deref(), appid.as_deref());
    let body = doc.to_string();
    let etag = {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
        format!("\"{}\"", base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &d.as_ref()[..12]))
    };
    if request.headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Full::new(Bytes::new()))
            .expect("static response parts");
    }
    let mut r = json_response(StatusCode::OK, &doc);
    r.headers_mut().insert(header::ETAG, etag.parse().expect("etag is ASCII"));
    r
}
