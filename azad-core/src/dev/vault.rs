//! The Key Vault–shaped secrets endpoint, `GET /secrets/{name}`, kept as it was (issue 11
//! moves it, with [`DevTenant::set_secret`](super::tenant::DevTenant::set_secret) and
//! [`DevTenant::vault_url`](super::tenant::DevTenant::vault_url), into `key_vault.rs`).

use http::{StatusCode, header};
use serde_json::{Value, json};

use super::http::{DevRequest, DevResponse, json_response};
use super::state::Shared;
use super::token::verify_dev_token;

/// `GET /secrets/{name}?api-version=…`: a Key Vault–shaped secret read, with a bearer token
/// for the vault audience.
pub(crate) fn secret(shared: &Shared, name: &str, request: &DevRequest) -> DevResponse {
    let challenge = format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        shared.base_url, shared.tenant_id
    );
    let unauthorized = |message: &str| {
        let mut r =
            json_response(StatusCode::UNAUTHORIZED, &json!({"error": {"code": "Unauthorized", "message": message}}));
        r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge.parse().expect("ASCII challenge"));
        r
    };
    let token = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(token) = token else {
        return unauthorized("AKV10000: Request is missing a Bearer or PoP token.");
    };
    // Only SP after the scheme (RFC 7235 §2.1), as the AzureAdAuth layer reads it.
    let claims = match verify_dev_token(shared, token.trim_start_matches(' ')) {
        Ok(c) => c,
        Err(why) => return unauthorized(&format!("AKV10032: Invalid token ({why}).")),
    };
    let aud_ok = matches!(
        claims.get("aud").and_then(Value::as_str),
        Some("https://vault.azure.net" | super::registry::KEY_VAULT_CLIENT_ID)
    );
    if !aud_ok {
        return unauthorized("AKV10022: Invalid audience.");
    }
    if request.query_param("api-version").is_none() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": "BadParameter", "message": "The request URI contains an invalid api-version."}}),
        );
    }
    match shared.registry().vault.get(name) {
        Some(value) => json_response(
            StatusCode::OK,
            &json!({
                "value": value,
                "id": format!("{}/secrets/{name}/{}", shared.base_url, "6a1f0e2b8c3d4e5f"),
                "attributes": {"enabled": true, "created": 1_767_225_600, "updated": 1_767_225_600, "recoveryLevel": "Recoverable+Purgeable"},
                "tags": {},
            }),
        ),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}}),
        ),
    }
}
