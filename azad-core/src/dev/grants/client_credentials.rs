//! `grant_type=client_credentials` (RFC 6749 §4.4): an app-only token for `{resource}/.default`
//! with the app roles granted to the client (Microsoft identity platform, "OAuth 2.0 client
//! credentials flow").

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;

use super::common::{apply_claims_request, authenticate, token_response};
use crate::dev::http::{DevResponse, invalid_request, oauth_error};
use crate::dev::state::Shared;
use crate::dev::token::TokenBuilder;

pub(crate) fn client_credentials(
    shared: &Arc<Shared>,
    tid: &str,
    endpoint: &str,
    f: &HashMap<String, String>,
) -> DevResponse {
    let client_id = match authenticate(shared, f, endpoint, false) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let scope = f.get("scope").cloned().unwrap_or_default();
    let Some(resource) = scope.strip_suffix("/.default").filter(|r| !r.contains(' ')) else {
        return invalid_request(
            "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    };
    let registry = shared.registry();
    let Some(api) = registry.resource(resource).cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            &format!("The resource principal named {resource} was not found in the tenant."),
        );
    };
    let roles = registry.granted_roles(&client_id, &api.client_id);
    drop(registry);
    let mut builder = TokenBuilder::new(shared.clone())
        .app_only()
        .client_app(&client_id)
        .tenant(tid)
        .audience(api.audience())
        .roles(roles);
    builder = apply_claims_request(builder, f.get("claims").map(String::as_str));
    if api.v1_tokens {
        builder = builder.v1();
    }
    token_response(&builder.build(), &[])
}
