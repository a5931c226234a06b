//! The dev tenant's public documents, for its tenants and for `common`, `organizations` and
//! `consumers`: the OpenID configurations (`/{tenant}/v2.0/.well-known/openid-configuration`,
//! v1.0 `/{tenant}/.well-known/openid-configuration`, and B2C's `/{tenant}/{user flow}/v2.0/…`)
//! and the key sets (`/{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys`, with an
//! `ETag`, and `?appid=` for application-specific keys).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use super::http::{DevRequest, DevResponse, json_response, oauth_error};
use super::state::Shared;
use crate::authority::{Authority, CONSUMERS_TENANT_ID, TENANT_TEMPLATE};

/// The tenant part of issuers for a tenant path segment, or `None` for an unknown tenant.
fn tenant_part(shared: &Shared, tenant: &str) -> Option<String> {
    match tenant {
        "common" | "organizations" => Some(TENANT_TEMPLATE.to_owned()),
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

pub(crate) fn discovery(shared: &Shared, tenant: &str, v2: bool) -> DevResponse {
    let Some(part) = tenant_part(shared, tenant) else {
        return unknown_tenant(tenant);
    };
    let url = |path: &str| Authority::tenant_endpoint(&shared.base_url, tenant, path);
    let doc = if v2 {
        json!({
            "issuer": shared.issuer_v2(&part),
            "jwks_uri": url(Authority::V2_JWKS_PATH),
            "token_endpoint": url(Authority::V2_TOKEN_PATH),
            "authorization_endpoint": url(Authority::V2_AUTHORIZE_PATH),
            "device_authorization_endpoint": url(Authority::V2_DEVICE_CODE_PATH),
            "end_session_endpoint": url(Authority::V2_LOGOUT_PATH),
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
            "jwks_uri": url(Authority::V1_JWKS_PATH),
            "token_endpoint": url(Authority::V1_TOKEN_PATH),
            "authorization_endpoint": url(Authority::V1_AUTHORIZE_PATH),
            "end_session_endpoint": url(Authority::V1_LOGOUT_PATH),
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
    if shared.signing_algorithm != crate::validation::jwt::SigningAlgorithm::RS256 {
        for key in &mut keys {
            key["alg"] = shared.signing_algorithm.as_str().into();
        }
    }
    json!({ "keys": keys })
}

pub(crate) fn jwks(shared: &Shared, tenant: &str, v2: bool, request: &DevRequest) -> DevResponse {
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
