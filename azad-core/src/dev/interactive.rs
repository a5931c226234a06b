//! Sign-in flows of the dev tenant: `/authorize` with automatic sign-in of a test user (or a
//! minimal page to pick one), authorization codes bound to PKCE, ID tokens, refresh tokens,
//! the device code flow, and a Key Vault–shaped secrets endpoint.
#![allow(clippy::result_large_err)] // errors are whole OAuth answers, as in `endpoints`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use super::apps::{AuthCode, DeviceGrant, RefreshGrant};
use super::endpoints::{OIDC_SCOPES, authenticate, invalid_grant, invalid_request, parse_scopes, token_response};
use super::server::{DevRequest, DevResponse, json_response, oauth_error};
use super::{DevUser, Shared, TokenBuilder, random_bytes};

fn random_code(bytes: usize) -> String {
    let raw = random_bytes::<48>();
    URL_SAFE_NO_PAD.encode(&raw[..bytes.min(48)])
}

fn html(status: StatusCode, body: String) -> DevResponse {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn redirect(location: &str) -> DevResponse {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::new()))
        .expect("static response parts")
}

fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) fn authorize(shared: &Arc<Shared>, tenant: &str, request: &DevRequest) -> DevResponse {
    let q = |k: &str| request.query_param(k);
    let Some(client_id) = q("client_id") else {
        return html(StatusCode::BAD_REQUEST, "<h1>AADSTS900144: missing client_id</h1>".into());
    };
    let Some(redirect_uri) = q("redirect_uri") else {
        return html(StatusCode::BAD_REQUEST, "<h1>AADSTS900144: missing redirect_uri</h1>".into());
    };
    let (registered, spa) = shared.registry().app(&client_id).map_or((false, false), |a| {
        let spa = a.spa_redirect_uris.contains(&redirect_uri);
        (spa || a.redirect_uris.contains(&redirect_uri), spa)
    });
    if !registered {
        // Never redirect to an unregistered URI: an error page instead.
        return html(
            StatusCode::BAD_REQUEST,
            format!(
                "<h1>AADSTS50011</h1><p>The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{}'.</p>",
                escape(&redirect_uri),
                escape(&client_id)
            ),
        );
    }
    let state = q("state").unwrap_or_default();
    let fail = |error: &str, description: &str| {
        redirect(&with_params(
            &redirect_uri,
            &[("error", error), ("error_description", description), ("state", &state)],
        ))
    };
    if q("response_type").as_deref() != Some("code") {
        return fail("unsupported_response_type", "AADSTS700054: only response_type=code is supported.");
    }
    // Entra needs a scope, not `openid`: without it the code redeems for an access token alone
    // (Swagger UI asks for the API's scopes only).
    let scope = q("scope").unwrap_or_default();
    if scope.split(' ').all(str::is_empty) {
        return fail(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        );
    }
    let method = q("code_challenge_method");
    if q("code_challenge").is_some() && !matches!(method.as_deref(), None | Some("S256" | "plain")) {
        return fail("invalid_request", "AADSTS501491: Invalid code_challenge_method.");
    }
    // Pick the user: login_hint, a choice from the sign-in page, or the only user.
    let users = &shared.users;
    let chosen = q("login_hint")
        .and_then(|hint| users.iter().position(|u| u.username.eq_ignore_ascii_case(&hint)))
        .or_else(|| q("dev_user").and_then(|i| i.parse::<usize>().ok()).filter(|i| *i < users.len()))
        .or_else(|| (users.len() == 1).then_some(0));
    let Some(user) = chosen else {
        return sign_in_page(shared, tenant, request);
    };
    let code = random_code(32);
    shared.registry().codes.insert(
        code.clone(),
        AuthCode {
            client_id,
            redirect_uri: redirect_uri.clone(),
            user,
            scopes: scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            nonce: q("nonce"),
            code_challenge: q("code_challenge"),
            code_challenge_method: method,
            claims: q("claims"),
            expires: Instant::now() + Duration::from_secs(600),
            spa,
        },
    );
    let session_state = super::random_guid();
    redirect(&with_params(&redirect_uri, &[("code", &code), ("state", &state), ("session_state", &session_state)]))
}

fn sign_in_page(shared: &Shared, tenant: &str, request: &DevRequest) -> DevResponse {
    let mut items = String::new();
    for (i, u) in shared.users.iter().enumerate() {
        let href = with_params(
            &format!("{}/{tenant}/oauth2/v2.0/authorize?{}", shared.base_url, request.query),
            &[("dev_user", &i.to_string())],
        );
        items.push_str(&format!(
            "<li><a id=\"user-{i}\" href=\"{}\">{}</a> <small>{}</small></li>",
            escape(&href),
            escape(&u.name),
            escape(&u.username)
        ));
    }
    html(
        StatusCode::OK,
        format!(
            "<!doctype html><html><head><title>Sign in - azad dev tenant</title></head><body><h1>Pick an account</h1><p>azad dev tenant {}</p><ul>{items}</ul></body></html>",
            escape(&shared.tenant_id)
        ),
    )
}

/// An ID token for `user`, for the client app.
fn id_token(shared: &Arc<Shared>, user: &DevUser, client_id: &str, tid: &str, nonce: Option<&str>) -> String {
    let mut b = TokenBuilder::new(shared.clone())
        .user(user)
        .tenant(tid)
        .audience(client_id)
        .scopes(Vec::<String>::new())
        .claim("email", user.username.clone())
        .without_claim("azp")
        .without_claim("azpacr")
        .without_claim("scp")
        .without_claim("sid")
        .without_claim("uti");
    if let Some(n) = nonce {
        b = b.claim("nonce", n);
    }
    b.build()
}

/// The access token (and scope string) for the scopes of a sign-in: the API they name, or
/// Microsoft Graph `User.Read` when only OpenID scopes were asked for (as Entra does).
fn access_token_for(
    shared: &Arc<Shared>,
    user: &DevUser,
    client_id: &str,
    tid: &str,
    scopes: &[String],
    claims: Option<&str>,
) -> Result<(String, String), DevResponse> {
    let api_scopes: Vec<&str> = scopes.iter().map(String::as_str).filter(|s| !OIDC_SCOPES.contains(s)).collect();
    let scope_text =
        if api_scopes.is_empty() { "https://graph.microsoft.com/User.Read".to_owned() } else { api_scopes.join(" ") };
    let (api, names) = {
        let registry = shared.registry();
        parse_scopes(&registry, &scope_text)?
    };
    // The dev tenant consents on the user's behalf (it has no consent prompt).
    {
        let mut registry = shared.registry();
        let granted = registry.scope_grants.entry((client_id.to_owned(), api.client_id.clone())).or_default();
        for n in &names {
            if n != ".default" && !granted.contains(n) {
                granted.push(n.clone());
            }
        }
    }
    let names = if names.iter().any(|n| n == ".default") {
        shared.registry().granted_scopes(client_id, &api.client_id)
    } else {
        names
    };
    let mut b = TokenBuilder::new(shared.clone())
        .user(user)
        .tenant(tid)
        .client_app(client_id)
        .audience(api.audience())
        .scopes(names.clone());
    b = super::endpoints::apply_claims_request(b, claims);
    if api.v1_tokens {
        b = b.v1();
    }
    let granted_text = names
        .iter()
        .map(|n| format!("{}/{n}", api.app_id_uri.clone().unwrap_or(api.client_id.clone())))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((b.build(), granted_text))
}

/// How a grant was redeemed: by a single-page application (cross-origin), or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spa(pub(crate) bool);

#[allow(clippy::too_many_arguments)] // one per part of the answer, as Entra's token response has
fn issue_tokens(
    shared: &Arc<Shared>,
    client_id: &str,
    user_index: usize,
    tid: &str,
    scopes: &[String],
    nonce: Option<&str>,
    client_info: bool,
    spa: Spa,
    claims: Option<&str>,
) -> DevResponse {
    let user = shared.users[user_index].clone();
    let (access, granted) = match access_token_for(shared, &user, client_id, tid, scopes, claims) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut extra: Vec<(&str, Value)> = vec![("scope", Value::String(granted))];
    if scopes.iter().any(|s| s == "offline_access") {
        let rt = format!("0.A{}", random_code(48));
        shared.registry().refresh_tokens.insert(
            rt.clone(),
            RefreshGrant { client_id: client_id.to_owned(), user: user_index, scopes: scopes.to_vec(), spa: spa.0 },
        );
        extra.push(("refresh_token", Value::String(rt)));
    }
    if scopes.iter().any(|s| s == "openid") {
        extra.push(("id_token", Value::String(id_token(shared, &user, client_id, tid, nonce))));
    }
    if client_info {
        // `client_info=1` (MSAL sends it): the account's home identifiers, base64url JSON.
        let info = json!({"uid": user.oid, "utid": tid});
        extra.push(("client_info", Value::String(URL_SAFE_NO_PAD.encode(info.to_string()))));
    }
    token_response(&access, &extra)
}

/// `client_info=1` in a token request: the answer carries `client_info`, as Entra's does.
fn wants_client_info(f: &HashMap<String, String>) -> bool {
    f.get("client_info").is_some_and(|v| v == "1")
}

/// `grant_type=authorization_code`: the code, its client and redirect URI, and PKCE.
pub(crate) fn authorization_code(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
) -> DevResponse {
    let mut spa = false;
    let response = redeem_code(shared, tid, endpoint, f, origin, &mut spa);
    allow_spa_origin(response, spa, origin)
}

/// CORS for a single-page application's redemption: its answers (tokens or errors) are
/// readable by the page. Any other cross-origin redemption gets no CORS headers, so the browser
/// withholds the answer, as Entra's does for web redirect URIs.
fn allow_spa_origin(mut response: DevResponse, spa: bool, origin: Option<&str>) -> DevResponse {
    if let Some(origin) = origin.filter(|_| spa)
        && let Ok(value) = http::HeaderValue::from_str(origin)
    {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        response.headers_mut().insert(header::VARY, http::HeaderValue::from_static("Origin"));
    }
    response
}

fn redeem_code(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
    spa: &mut bool,
) -> DevResponse {
    // A browser's cross-origin request is a public client's, like one that proves PKCE.
    let public = (f.get("code_verifier").is_some() || origin.is_some())
        && f.get("client_secret").is_none()
        && f.get("client_assertion").is_none();
    let client_id = match authenticate(shared, f, endpoint, public) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(code) = f.get("code") else {
        return invalid_request("AADSTS900144: The request body must contain the following parameter: 'code'.");
    };
    // Codes are single-use: removed whatever happens next.
    let Some(grant) = shared.registry().codes.remove(code) else {
        return invalid_grant(
            70_008,
            "The provided authorization code or refresh token has expired or was already redeemed.",
        );
    };
    *spa = grant.spa;
    if grant.expires < Instant::now() {
        return invalid_grant(70_008, "The provided authorization code has expired.");
    }
    if grant.client_id != client_id {
        return invalid_grant(70_000, "The authorization code was issued to another client.");
    }
    if f.get("redirect_uri") != Some(&grant.redirect_uri) {
        return invalid_grant(
            500_112,
            "The reply address does not match the one used to request the authorization code.",
        );
    }
    if let Err(refused) = check_spa(grant.spa, origin) {
        return refused;
    }
    if grant.spa && grant.code_challenge.is_none() {
        return invalid_grant(
            9_002_325,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        );
    }
    if let Some(challenge) = &grant.code_challenge {
        let Some(verifier) = f.get("code_verifier") else {
            return invalid_grant(501_481, "The code_verifier is missing.");
        };
        let computed = match grant.code_challenge_method.as_deref() {
            Some("plain") => verifier.clone(),
            _ => URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes())),
        };
        if computed != *challenge {
            return invalid_grant(
                501_481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    } else if public {
        return invalid_grant(9_002_325, "Proof Key for Code Exchange is required for public clients.");
    }
    let tid = tid.map_or_else(|| shared.tenant_id.clone(), str::to_owned);
    let (nonce, info) = (grant.nonce.as_deref(), wants_client_info(f));
    let claims = f.get("claims").or(grant.claims.as_ref()).map(String::as_str);
    issue_tokens(shared, &client_id, grant.user, &tid, &grant.scopes, nonce, info, Spa(grant.spa), claims)
}

/// Entra's rule for single-page applications: a code or refresh token issued for an `spa`
/// redirect URI is redeemed only cross-origin (from the browser, with `Origin`), and a
/// cross-origin redemption is refused for any other client type.
fn check_spa(spa: bool, origin: Option<&str>) -> Result<(), DevResponse> {
    match (spa, origin) {
        (true, None) => Err(invalid_request_code(
            9_002_327,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        )),
        (false, Some(origin)) => Err(invalid_request_code(
            9_002_326,
            &format!(
                "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{origin}'."
            ),
        )),
        _ => Ok(()),
    }
}

fn invalid_request_code(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", code, description)
}

/// `grant_type=refresh_token`: a token for the requested scopes (any consented API), and a new
/// refresh token.
pub(crate) fn refresh_token(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
) -> DevResponse {
    let mut spa = false;
    let response = redeem_refresh_token(shared, tid, endpoint, f, origin, &mut spa);
    allow_spa_origin(response, spa, origin)
}

fn redeem_refresh_token(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
    spa: &mut bool,
) -> DevResponse {
    let client_id = match authenticate(shared, f, endpoint, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(rt) = f.get("refresh_token") else {
        return invalid_request(
            "AADSTS900144: The request body must contain the following parameter: 'refresh_token'.",
        );
    };
    let Some(grant) = shared.registry().refresh_tokens.get(rt).cloned() else {
        return invalid_grant(9_002_313, "Invalid request. The refresh token is malformed or not valid.");
    };
    *spa = grant.spa;
    if grant.client_id != client_id {
        return invalid_grant(70_000, "The refresh token was issued to another client.");
    }
    if let Err(refused) = check_spa(grant.spa, origin) {
        return refused;
    }
    let mut scopes: Vec<String> = f
        .get("scope")
        .map_or_else(|| grant.scopes.clone(), |s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect());
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    let tid = tid.map_or_else(|| shared.tenant_id.clone(), str::to_owned);
    let claims = f.get("claims").map(String::as_str);
    issue_tokens(shared, &client_id, grant.user, &tid, &scopes, None, wants_client_info(f), Spa(grant.spa), claims)
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) fn device_code(shared: &Arc<Shared>, request: &DevRequest) -> DevResponse {
    let f = match super::endpoints::form(&request.body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(client_id) = f.get("client_id").cloned() else {
        return invalid_request("AADSTS900144: The request body must contain the following parameter: 'client_id'.");
    };
    if shared.registry().app(&client_id).is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            "Application not found in the directory.",
        );
    }
    let device_code = random_code(40);
    let user_code: String = random_bytes::<8>().iter().map(|b| char::from(b'A' + b % 26)).collect();
    let scopes =
        f.get("scope").map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
    shared.registry().device_codes.insert(
        device_code.clone(),
        DeviceGrant {
            client_id,
            user_code: user_code.clone(),
            scopes,
            approved_by: None,
            expires: Instant::now() + Duration::from_secs(900),
            last_poll: None,
        },
    );
    let verification_uri = format!("{}/devicelogin", shared.base_url);
    json_response(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "expires_in": 900,
            "interval": 1,
            "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
        }),
    )
}

/// `GET /devicelogin?code=…[&user=i]`: the user approves a device code (signed in as the
/// default user unless another is chosen).
pub(crate) fn device_login(shared: &Shared, request: &DevRequest) -> DevResponse {
    let Some(code) = request.query_param("code") else {
        return html(
            StatusCode::OK,
            "<!doctype html><form><label>Code <input name=\"code\"></label><button>Next</button></form>".into(),
        );
    };
    let user = request
        .query_param("user")
        .and_then(|u| u.parse::<usize>().ok())
        .filter(|u| *u < shared.users.len())
        .unwrap_or(0);
    let mut registry = shared.registry();
    match registry.device_codes.values_mut().find(|g| g.user_code.eq_ignore_ascii_case(code.trim())) {
        Some(grant) if grant.expires > Instant::now() => {
            grant.approved_by = Some(user);
            html(
                StatusCode::OK,
                format!("<p>Signed in as {}. You can close this window.</p>", escape(&shared.users[user].name)),
            )
        }
        _ => html(StatusCode::BAD_REQUEST, "<p>AADSTS70000: that code is not valid.</p>".into()),
    }
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
pub(crate) fn device_code_grant(shared: &Arc<Shared>, tid: Option<&str>, f: &HashMap<String, String>) -> DevResponse {
    let Some(code) = f.get("device_code").or_else(|| f.get("code")) else {
        return invalid_request("AADSTS900144: The request body must contain the following parameter: 'device_code'.");
    };
    let pending =
        |error: &str, code: u32, description: &str| oauth_error(StatusCode::BAD_REQUEST, error, code, description);
    let (user, client_id, scopes) = {
        let mut registry = shared.registry();
        let Some(grant) = registry.device_codes.get_mut(code) else {
            return pending("expired_token", 70_019, "Verification code expired.");
        };
        if grant.client_id != f.get("client_id").cloned().unwrap_or_default() {
            return invalid_grant(70_000, "The device code was issued to another client.");
        }
        let now = Instant::now();
        if grant.expires < now {
            return pending("expired_token", 70_019, "Verification code expired.");
        }
        let too_fast = grant.last_poll.is_some_and(|t| now.duration_since(t) < Duration::from_millis(900));
        grant.last_poll = Some(now);
        match grant.approved_by {
            None if too_fast => return pending("slow_down", 70_016, "Poll less often."),
            None => {
                return pending(
                    "authorization_pending",
                    70_016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                );
            }
            Some(user) => (user, grant.client_id.clone(), grant.scopes.clone()),
        }
    };
    shared.registry().device_codes.remove(code);
    let tid = tid.map_or_else(|| shared.tenant_id.clone(), str::to_owned);
    let claims = f.get("claims").map(String::as_str);
    issue_tokens(shared, &client_id, user, &tid, &scopes, None, wants_client_info(f), Spa(false), claims)
}
