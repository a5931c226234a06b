//! Microsoft Graph's membership functions, for the dev tenant's users: `checkMemberGroups` and
//! `getMemberObjects`, on `/v1.0/me/…` (delegated) and `/v1.0/users/{id}/…` (app or delegated).
//!
//! Bearer tokens are validated like Graph does: signed by the dev tenant, unexpired, for
//! Graph's audience, and carrying a permission that allows reading memberships. Errors use
//! Graph's shape: `{"error": {"code": "…", "message": "…"}}`.

use http::StatusCode;
use serde_json::{Value, json};

use super::http::{DevRequest, DevResponse, json_response};
use super::random::random_guid;
use super::registry::GRAPH_CLIENT_ID;
use super::state::Shared;
use super::token::verify_dev_token;

/// Permissions that allow reading group memberships (delegated scopes or app roles).
const MEMBERSHIP_PERMISSIONS: [&str; 4] =
    ["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "GroupMember.ReadWrite.All"];

/// Which function was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    CheckMemberGroups,
    GetMemberObjects,
}

impl Function {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "checkMemberGroups" => Some(Self::CheckMemberGroups),
            "getMemberObjects" | "getMemberGroups" => Some(Self::GetMemberObjects),
            _ => None,
        }
    }
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> DevResponse {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "innerError": {"request-id": random_guid()}}}),
    )
}

/// `POST /v1.0/me/{function}` (`user` = `None`) or `POST /v1.0/users/{id}/{function}`.
pub(crate) fn membership(shared: &Shared, user: Option<&str>, function: Function, request: &DevRequest) -> DevResponse {
    let token = request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty.");
    };
    let claims = match verify_dev_token(shared, token) {
        Ok(c) => c,
        Err(why) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                &format!("Access token validation failure: {why}."),
            );
        }
    };
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let for_graph = matches!(s("aud"), Some("https://graph.microsoft.com" | "https://graph.microsoft.com/"))
        || s("aud") == Some(GRAPH_CLIENT_ID);
    if !for_graph {
        return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Invalid audience.");
    }
    let app_only = crate::validation::claims::is_app_only_token(s("idtyp"), s("scp"), s("oid"), s("sub"));
    let allowed = if app_only {
        claims
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().filter_map(Value::as_str).any(|r| MEMBERSHIP_PERMISSIONS.contains(&r)))
    } else {
        s("scp").is_some_and(|scp| scp.split(' ').any(|p| MEMBERSHIP_PERMISSIONS.contains(&p)))
    };
    if !allowed {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let oid = match user {
        None if app_only => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            );
        }
        None => s("oid").unwrap_or_default().to_owned(),
        Some(id) => {
            let known =
                shared.users.iter().any(|u| u.oid.eq_ignore_ascii_case(id) || u.username.eq_ignore_ascii_case(id))
                    || shared.groups.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&id.to_ascii_lowercase());
            if !known {
                return graph_error(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            }
            shared
                .users
                .iter()
                .find(|u| u.username.eq_ignore_ascii_case(id))
                .map_or_else(|| id.to_owned(), |u| u.oid.clone())
        }
    };
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(_) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unable to read JSON request payload."),
    };
    let memberships = shared.user_groups(&oid);
    let value: Vec<String> = match function {
        Function::CheckMemberGroups => {
            let Some(ids) = body.get("groupIds").and_then(Value::as_array) else {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "groupIds is required.");
            };
            if ids.len() > 20 {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The number of groupIds exceeds the maximum of 20.",
                );
            }
            ids.iter()
                .filter_map(Value::as_str)
                .filter(|id| memberships.iter().any(|g| g.eq_ignore_ascii_case(id)))
                .map(str::to_owned)
                .collect()
        }
        Function::GetMemberObjects => {
            if body.get("securityEnabledOnly").and_then(Value::as_bool).is_none() {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "securityEnabledOnly is required.");
            }
            memberships
        }
    };
    json_response(
        StatusCode::OK,
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": value}),
    )
}
