//! A user's tokens, shared by the grants a user signs in with (authorization code, refresh
//! token, device code): the access token for the scopes asked, the ID token, a refresh token,
//! `client_info`, and the single-page application rules of cross-origin redemption.
#![allow(clippy::result_large_err)] // errors are whole OAuth answers, as in `common`

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header;
use serde_json::{Value, json};

use super::common::{OIDC_SCOPES, apply_claims_request, parse_scopes, token_response};
use crate::dev::http::{DevResponse, invalid_request_code};
use crate::dev::random::random_code;
use crate::dev::registry::{DevUser, RefreshGrant};
use crate::dev::state::Shared;
use crate::dev::token::TokenBuilder;

/// An ID token for `user`, for the client app.
pub(crate) fn id_token(
    shared: &Arc<Shared>,
    user: &DevUser,
    client_id: &str,
    tid: &str,
    nonce: Option<&str>,
) -> String {
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
pub(crate) fn access_token_for(
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
    b = apply_claims_request(b, claims);
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
pub(crate) fn issue_tokens(
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
pub(crate) fn wants_client_info(f: &HashMap<String, String>) -> bool {
    f.get("client_info").is_some_and(|v| v == "1")
}

/// CORS for a single-page application's redemption: its answers (tokens or errors) are
/// readable by the page. Any other cross-origin redemption gets no CORS headers, so the browser
/// withholds the answer, as Entra's does for web redirect URIs.
pub(crate) fn allow_spa_origin(mut response: DevResponse, spa: bool, origin: Option<&str>) -> DevResponse {
    if let Some(origin) = origin.filter(|_| spa)
        && let Ok(value) = http::HeaderValue::from_str(origin)
    {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        response.headers_mut().insert(header::VARY, http::HeaderValue::from_static("Origin"));
    }
    response
}

/// Entra's rule for single-page applications: a code or refresh token issued for an `spa`
/// redirect URI is redeemed only cross-origin (from the browser, with `Origin`), and a
/// cross-origin redemption is refused for any other client type.
pub(crate) fn check_spa(spa: bool, origin: Option<&str>) -> Result<(), DevResponse> {
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

/// Redeems a grant whose answer a single-page application may read: `redeem` sets its flag
/// when the grant was issued for an `spa` redirect URI, and the answer then gets CORS headers
/// for `origin` ([`allow_spa_origin`]).
pub(crate) fn answer_for_origin(origin: Option<&str>, redeem: impl FnOnce(&mut bool) -> DevResponse) -> DevResponse {
    let mut spa = false;
    let response = redeem(&mut spa);
    allow_spa_origin(response, spa, origin)
}
