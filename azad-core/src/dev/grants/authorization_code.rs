//! The authorization code flow (RFC 6749 §4.1, with PKCE, RFC 7636): `GET
//! /{tenant}/oauth2/v2.0/authorize` with automatic sign-in of a test user (or a minimal page to
//! pick one), `grant_type=authorization_code`, and sign-out (`GET /{tenant}/oauth2/v2.0/logout`).
#![allow(clippy::result_large_err)] // errors are whole OAuth answers, as in `common`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::common::{authenticate, check_issued_to};
use super::sign_in::{Spa, answer_for_origin, check_spa, issue_tokens, wants_client_info};
use crate::authority::Authority;
use crate::dev::http::{DevRequest, DevResponse, escape, html, invalid_grant, invalid_request, redirect, with_params};
use crate::dev::random::{random_code, random_guid};
use crate::dev::registry::AuthCode;
use crate::dev::state::Shared;

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
    let session_state = random_guid();
    redirect(&with_params(&redirect_uri, &[("code", &code), ("state", &state), ("session_state", &session_state)]))
}

fn sign_in_page(shared: &Shared, tenant: &str, request: &DevRequest) -> DevResponse {
    let mut items = String::new();
    for (i, u) in shared.users.iter().enumerate() {
        let href = with_params(
            &format!(
                "{}?{}",
                Authority::tenant_endpoint(&shared.base_url, tenant, Authority::V2_AUTHORIZE_PATH),
                request.query
            ),
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

/// `grant_type=authorization_code`: the code, its client and redirect URI, and PKCE.
pub(crate) fn authorization_code(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
) -> DevResponse {
    answer_for_origin(origin, |spa| redeem_code(shared, tid, endpoint, f, origin, spa))
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
    if let Err(refused) = check_issued_to(&grant.client_id, &client_id, "authorization code") {
        return refused;
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

/// `GET /{tenant}/oauth2/v2.0/logout`: back to a registered `post_logout_redirect_uri`.
pub(crate) fn logout(shared: &Shared, request: &DevRequest) -> DevResponse {
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
