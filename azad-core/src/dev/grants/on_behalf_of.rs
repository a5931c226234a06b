//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with
//! `requested_token_use=on_behalf_of`: a token for a downstream API, for the user of the
//! assertion (Microsoft identity platform, "OAuth 2.0 On-Behalf-Of flow").

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use super::common::{apply_claims_request, authenticate, parse_scopes, token_response, user_from};
use crate::dev::http::{DevResponse, invalid_grant, invalid_request, json_response, oauth_error_body};
use crate::dev::registry::DevApp;
use crate::dev::state::Shared;
use crate::dev::token::{TokenBuilder, verify_dev_token};

pub(crate) fn on_behalf_of(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
) -> DevResponse {
    let client_id = match authenticate(shared, f, endpoint, false) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(assertion) = f.get("assertion") else {
        return invalid_request("AADSTS900144: The request body must contain the following parameter: 'assertion'.");
    };
    let claims = match verify_dev_token(shared, assertion) {
        Ok(c) => c,
        Err("expired") => {
            return invalid_grant(500_133, "Assertion is not within its valid time range.");
        }
        Err(why) => {
            return invalid_grant(50_013, &format!("Assertion failed signature validation. [Reason - {why}.]"));
        }
    };
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let registry = shared.registry();
    let caller = registry.app(&client_id).cloned().unwrap_or_else(|| DevApp::new("unknown"));
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let for_caller = auds.iter().any(|a| *a == caller.client_id || Some(*a) == caller.app_id_uri.as_deref());
    if !for_caller {
        return invalid_grant(50_013, "Assertion audience does not match the client app presenting the assertion.");
    }
    let opt = |k: &str| claims.get(k).and_then(Value::as_str);
    if crate::validation::claims::is_app_only_token(opt("idtyp"), opt("scp"), opt("oid"), opt("sub")) {
        return invalid_grant(50_013, "The assertion is an application token; on-behalf-of requires a user's token.");
    }
    let token_tid = s("tid").to_owned();
    if tid.is_some_and(|t| !t.eq_ignore_ascii_case(&token_tid)) {
        return invalid_grant(50_013, "Assertion is for another tenant.");
    }
    let (api, scopes) = match parse_scopes(&registry, f.get("scope").map(String::as_str).unwrap_or_default()) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let scopes: Vec<String> = if scopes.iter().any(|s| s == ".default") {
        registry.granted_scopes(&client_id, &api.client_id)
    } else {
        let granted = registry.granted_scopes(&client_id, &api.client_id);
        if let Some(missing) = scopes.iter().find(|s| !granted.contains(s)) {
            let mut body = oauth_error_body(
                "invalid_grant",
                65_001,
                &format!(
                    "The user or administrator has not consented to use the application with ID '{client_id}'. Send an interactive authorization request for this user and resource ({missing})."
                ),
            );
            body["suberror"] = "consent_required".into();
            return json_response(StatusCode::BAD_REQUEST, &body);
        }
        scopes
    };
    drop(registry);
    let user = user_from(&claims);
    let mut builder = TokenBuilder::new(shared.clone())
        .user(&user)
        .tenant(token_tid)
        .client_app(&client_id)
        .audience(api.audience())
        .scopes(scopes);
    if let Some(cc) = claims.get("xms_cc") {
        builder = builder.claim("xms_cc", cc.clone());
    }
    builder = apply_claims_request(builder, f.get("claims").map(String::as_str));
    if api.v1_tokens {
        builder = builder.v1();
    }
    token_response(&builder.build(), &[])
}
