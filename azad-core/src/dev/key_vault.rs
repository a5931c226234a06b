//! The dev tenant's Azure Key Vault–shaped secrets endpoint: `GET /secrets/{name}` (latest) and
//! `GET /secrets/{name}/{version}`, both with a required `api-version`, a bearer token for the
//! vault audience, and Key Vault's JSON shapes (the `SecretBundle`: `value`, `id`
//! = `{vault}/secrets/{name}/{version}`, `attributes {enabled, created, updated, recoveryLevel}`,
//! `tags`) and errors (`{"error": {"code", "message"}}`).
//!
//! Source: <https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret> and
//! <https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses>.

use http::{StatusCode, header};
use serde_json::{Value, json};

use super::http::{DevRequest, DevResponse, json_response};
use super::registry::KEY_VAULT_CLIENT_ID;
use super::state::Shared;
use super::token::verify_dev_token;

/// Key Vault's answer for a request without a usable bearer token: 401 with the challenge
/// naming the authority and the vault resource.
fn unauthorized(shared: &Shared, message: &str) -> DevResponse {
    let challenge = format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        shared.base_url, shared.tenant_id
    );
    let mut r =
        json_response(StatusCode::UNAUTHORIZED, &json!({"error": {"code": "Unauthorized", "message": message}}));
    r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge.parse().expect("ASCII challenge"));
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> DevResponse {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

/// `GET /secrets/{name}[/{version}]?api-version=…`.
pub(crate) fn get_secret(shared: &Shared, name: &str, version: Option<&str>, request: &DevRequest) -> DevResponse {
    let token = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(token) = token else {
        return unauthorized(shared, "AKV10000: Request is missing a Bearer or PoP token.");
    };
    // Only SP after the scheme (RFC 7235 §2.1), as the AzureAdAuth layer reads it.
    let claims = match verify_dev_token(shared, token.trim_start_matches(' ')) {
        Ok(c) => c,
        Err(why) => return unauthorized(shared, &format!("AKV10032: Invalid token ({why}).")),
    };
    let audience = claims.get("aud").and_then(Value::as_str);
    if !matches!(audience, Some("https://vault.azure.net" | KEY_VAULT_CLIENT_ID)) {
        return unauthorized(
            shared,
            &format!(
                "AKV10022: Invalid audience. Expected https://vault.azure.net, found: {}.",
                audience.unwrap_or("")
            ),
        );
    }
    if request.query_param("api-version").is_none_or(|v| v.is_empty()) {
        return error(StatusCode::BAD_REQUEST, "BadParameter", "The request URI contains an invalid api-version.");
    }
    let principals: Vec<&str> =
        ["oid", "appid", "azp"].iter().filter_map(|c| claims.get(*c).and_then(Value::as_str)).collect();
    let registry = shared.registry();
    let vault = &registry.vault;
    if principals.iter().any(|p| vault.denied.contains(*p)) {
        let caller = principals.join(";");
        let mut r = json_response(
            StatusCode::FORBIDDEN,
            &json!({"error": {
                "code": "Forbidden",
                "message": format!("Caller is not authorized to perform action on resource.\r\nCaller: {caller}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nAssignment: (not found)\r\n"),
                "innererror": {"code": "ForbiddenByRbac"},
            }}),
        );
        r.headers_mut().insert("x-ms-keyvault-service-version", http::HeaderValue::from_static("1.9.0.0"));
        return r;
    }
    let not_found = || {
        let id = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
        error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!(
                "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        )
    };
    let Some(versions) = vault.secrets.get(&name.to_ascii_lowercase()) else {
        return not_found();
    };
    let found = match version {
        Some(v) => versions.iter().find(|s| s.version.eq_ignore_ascii_case(v)),
        None => versions.last(),
    };
    let Some(secret) = found else {
        return not_found();
    };
    if !secret.enabled {
        return error(StatusCode::FORBIDDEN, "Forbidden", "Operation get is not allowed on a disabled secret.");
    }
    let mut body = json!({
        "value": secret.value,
        "id": format!("{}/secrets/{name}/{}", shared.base_url, secret.version),
        "attributes": {
            "enabled": true,
            "created": secret.created,
            "updated": secret.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        },
        "tags": {},
    });
    if let Some(content_type) = &secret.content_type {
        body["contentType"] = json!(content_type);
    }
    json_response(StatusCode::OK, &body)
}
