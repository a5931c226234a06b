//! The managed identity endpoints: IMDS's shape (`GET /metadata/identity/oauth2/token`,
//! `Metadata: true`) and App Service's (`GET /msi/token`, `X-IDENTITY-HEADER`), answering the
//! expiry in the shape chosen with [`ManagedIdentityExpiry`].

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use super::clock::now;
use super::http::{DevRequest, DevResponse, json_response};
use super::registry::{DevManagedIdentity, ManagedIdentityExpiry, TOKEN_EXCHANGE_AUDIENCE};
use super::state::Shared;
use super::token::TokenBuilder;

/// The managed identity endpoints: IMDS (`Metadata: true`) and App Service (`X-IDENTITY-HEADER`).
pub(crate) fn managed_identity(shared: &Arc<Shared>, request: &DevRequest, app_service: bool) -> DevResponse {
    if app_service {
        let ok =
            request.headers.get("x-identity-header").is_some_and(|v| v.as_bytes() == shared.identity_header.as_bytes());
        if !ok {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"statusCode": 401, "message": "Unauthorized request: missing or invalid X-IDENTITY-HEADER"}),
            );
        }
    } else if request.headers.get("metadata").is_none_or(|v| v.as_bytes() != b"true") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
        );
    }
    let Some(resource) = request.query_param("resource") else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"}),
        );
    };
    let names: [&str; 3] =
        if app_service { ["client_id", "principal_id", "mi_res_id"] } else { ["client_id", "object_id", "msi_res_id"] };
    let identity = {
        let registry = shared.registry();
        let pick = |f: &dyn Fn(&DevManagedIdentity) -> &str, v: &str| {
            registry.identities.iter().find(|i| f(i).eq_ignore_ascii_case(v)).cloned()
        };
        if let Some(v) = request.query_param(names[0]) {
            pick(&|i| &i.client_id, &v)
        } else if let Some(v) = request.query_param(names[1]) {
            pick(&|i| &i.object_id, &v)
        } else if let Some(v) = request.query_param(names[2]) {
            pick(&|i| &i.resource_id, &v)
        } else {
            registry.identities.iter().find(|i| i.system_assigned).cloned()
        }
    };
    let Some(identity) = identity else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Identity not found"}),
        );
    };
    let resource = resource.trim_end_matches('/');
    let (audience, roles, v1) = if resource == TOKEN_EXCHANGE_AUDIENCE {
        (TOKEN_EXCHANGE_AUDIENCE.to_owned(), Vec::new(), false)
    } else {
        let registry = shared.registry();
        let Some(api) = registry.resource(resource).cloned() else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_resource", "error_description": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant.")}),
            );
        };
        (api.audience(), registry.granted_roles(&identity.client_id, &api.client_id), api.v1_tokens)
    };
    let mut builder = TokenBuilder::new(shared.clone())
        .app_only()
        .client_app(&identity.client_id)
        .audience(audience)
        .roles(roles)
        .claim("oid", identity.object_id.clone())
        .claim("sub", identity.object_id.clone())
        .claim("xms_mirid", identity.resource_id.clone());
    if v1 {
        builder = builder.v1();
    }
    let token = builder.build();
    let expires_on = now() + 3599;
    // IMDS answers numbers as strings; App Service (2019-08-01) answers expires_on as a number;
    // other hosts send date-time strings, or nothing but the token.
    let shape = *shared.mi_expiry.lock().unwrap_or_else(|e| e.into_inner());
    let mut body = if app_service {
        json!({"access_token": token, "expires_on": expires_on, "resource": resource, "token_type": "Bearer", "client_id": identity.client_id})
    } else {
        json!({"access_token": token, "refresh_token": "", "expires_in": "3599", "expires_on": expires_on.to_string(), "not_before": (expires_on - 3599).to_string(), "resource": resource, "token_type": "Bearer"})
    };
    let stated = match shape {
        ManagedIdentityExpiry::EpochString => Some(expires_on.to_string()),
        ManagedIdentityExpiry::Rfc3339 => Some(crate::client::expiry::format_date_time(expires_on, false)),
        ManagedIdentityExpiry::DotNetInvariant => Some(crate::client::expiry::format_date_time(expires_on, true)),
        ManagedIdentityExpiry::TokenExpOnly => None,
        _ => return json_response(StatusCode::OK, &body),
    };
    if let Some(map) = body.as_object_mut() {
        map.remove("expires_in");
        map.remove("expires_on");
        if let Some(stated) = stated {
            map.insert("expires_on".into(), stated.into());
        }
    }
    json_response(StatusCode::OK, &body)
}
