//! The dev tenant's HTTP server and its dispatch: accepting connections (HTTP or HTTPS),
//! routing each request to the handler of its endpoint, counting it and applying any injected
//! fault, echoing `client-request-id`, the token endpoint's dispatch by `grant_type`, the CORS
//! preflight of the token endpoint, and the fault control route `POST /_azad/faults`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::faults::{Endpoint, Fault, apply_fault};
use super::grants::common::request_tenant;
use super::grants::{authorization_code, client_credentials, device_code, on_behalf_of, refresh_token};
use super::graph::{self, Function};
use super::http::{DevRequest, DevResponse, any_origin, form, invalid_request, json_response, oauth_error, origin};
use super::state::Shared;
use super::{key_vault, kubernetes, managed_identity, metadata};
use crate::authority::Authority;

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
    Secret { name: String, version: Option<String> },
    TokenReview,
    Graph { user: Option<String>, function: Function },
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
            Self::TokenReview => Endpoint::TokenReview,
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
        (&Method::GET, ["secrets", name]) => Some(Route::Secret { name: (*name).to_owned(), version: None }),
        (&Method::GET, ["secrets", name, version]) => {
            Some(Route::Secret { name: (*name).to_owned(), version: Some((*version).to_owned()) })
        }
        (&Method::POST, ["apis", "authentication.k8s.io", "v1", "tokenreviews"]) => Some(Route::TokenReview),
        (&Method::POST, ["v1.0", "me", f]) => Function::parse(f).map(|function| Route::Graph { user: None, function }),
        (&Method::POST, ["v1.0", "users", id, f]) => {
            Function::parse(f).map(|function| Route::Graph { user: Some((*id).to_owned()), function })
        }
        _ => None,
    }
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
    shared.faults.count(endpoint);
    if let Some(fault) = shared.faults.take(endpoint)
        && let Some(response) = apply_fault(fault).await
    {
        return response;
    }
    match route {
        // Public documents: any page may read them (MSAL.js fetches them from the browser).
        Route::Discovery { tenant, v2 } => any_origin(metadata::discovery(&shared, &tenant, v2)),
        Route::Jwks { tenant, v2 } => any_origin(metadata::jwks(&shared, &tenant, v2, &request)),
        Route::Token { tenant } => token(&shared, &tenant, &request),
        Route::Authorize { tenant } => authorization_code::authorize(&shared, &tenant, &request),
        Route::Logout => authorization_code::logout(&shared, &request),
        Route::DeviceCode => device_code::device_code(&shared, &request),
        Route::DeviceLogin => device_code::device_login(&shared, &request),
        Route::Imds => managed_identity::managed_identity(&shared, &request, false),
        Route::AppService => managed_identity::managed_identity(&shared, &request, true),
        Route::Secret { name, version } => key_vault::get_secret(&shared, &name, version.as_deref(), &request),
        Route::TokenReview => kubernetes::token_review(&shared, &request),
        Route::Graph { user, function } => graph::membership(&shared, user.as_deref(), function, &request),
    }
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
            shared.faults.clear(endpoint);
            return json_response(StatusCode::OK, &json!({"cleared": format!("{endpoint:?}")}));
        }
        _ => return bad("fault: interaction_required, invalid_grant, status, unavailable, too_many_requests or none"),
    };
    let times = usize::try_from(times).unwrap_or(usize::MAX);
    shared.faults.set(endpoint, fault, (times > 0).then_some(times));
    json_response(StatusCode::OK, &json!({"injected": format!("{endpoint:?}"), "times": times}))
}

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `POST /{tenant}/oauth2/v2.0/token`: the grant named by `grant_type`.
fn token(shared: &Arc<Shared>, tenant: &str, request: &DevRequest) -> DevResponse {
    let f = match form(&request.body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tid = request_tenant(shared, tenant);
    let endpoint = Authority::tenant_endpoint(&shared.base_url, tenant, Authority::V2_TOKEN_PATH);
    let grant = f.get("grant_type").map(String::as_str).unwrap_or_default();
    match grant {
        "client_credentials" => {
            let Some(tid) = tid else {
                return invalid_request(
                    "AADSTS900023: Specified tenant identifier is neither a valid DNS name, nor a valid external domain.",
                );
            };
            client_credentials::client_credentials(shared, &tid, &endpoint, &f)
        }
        JWT_BEARER_GRANT if f.get("requested_token_use").map(String::as_str) == Some("on_behalf_of") => {
            on_behalf_of::on_behalf_of(shared, tid.as_deref(), &endpoint, &f)
        }
        "authorization_code" => {
            authorization_code::authorization_code(shared, tid.as_deref(), &endpoint, &f, origin(request))
        }
        "refresh_token" => refresh_token::refresh_token(shared, tid.as_deref(), &endpoint, &f, origin(request)),
        "urn:ietf:params:oauth:grant-type:device_code" => device_code::device_code_grant(shared, tid.as_deref(), &f),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
        ),
    }
}
