//! The device authorization grant (RFC 8628): `POST /{tenant}/oauth2/v2.0/devicecode`, the
//! user's approval at `GET /devicelogin`, and `grant_type=urn:ietf:params:oauth:grant-type:device_code`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use super::common::check_issued_to;
use super::sign_in::{Spa, issue_tokens, wants_client_info};
use crate::dev::http::{DevRequest, DevResponse, escape, form, html, invalid_request, json_response, oauth_error};
use crate::dev::random::{random_bytes, random_code};
use crate::dev::registry::DeviceGrant;
use crate::dev::state::Shared;

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) fn device_code(shared: &Arc<Shared>, request: &DevRequest) -> DevResponse {
    let f = match form(&request.body) {
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
        if let Err(refused) =
            check_issued_to(&grant.client_id, &f.get("client_id").cloned().unwrap_or_default(), "device code")
        {
            return refused;
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
