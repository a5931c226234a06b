//! `grant_type=refresh_token` (RFC 6749 §6): a token for the requested scopes (any consented
//! API) and a new refresh token.

use std::collections::HashMap;
use std::sync::Arc;

use super::common::{authenticate, check_issued_to};
use super::sign_in::{Spa, answer_for_origin, check_spa, issue_tokens, wants_client_info};
use crate::dev::http::{DevResponse, invalid_grant, invalid_request};
use crate::dev::state::Shared;

/// `grant_type=refresh_token`: a token for the requested scopes (any consented API), and a new
/// refresh token.
pub(crate) fn refresh_token(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
) -> DevResponse {
    answer_for_origin(origin, |spa| redeem_refresh_token(shared, tid, endpoint, f, origin, spa))
}

fn redeem_refresh_token(
    shared: &Arc<Shared>,
    tid: Option<&str>,
    endpoint: &str,
    f: &HashMap<String, String>,
    origin: Option<&str>,
    spa: &mut bool,
) -> DevResponse {
    let client_id = match authenticate(shared, f, endpoint, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(rt) = f.get("refresh_token") else {
        return invalid_request(
            "AADSTS900144: The request body must contain the following parameter: 'refresh_token'.",
        );
    };
    let Some(grant) = shared.registry().refresh_tokens.get(rt).cloned() else {
        return invalid_grant(9_002_313, "Invalid request. The refresh token is malformed or not valid.");
    };
    *spa = grant.spa;
    if let Err(refused) = check_issued_to(&grant.client_id, &client_id, "refresh token") {
        return refused;
    }
    if let Err(refused) = check_spa(grant.spa, origin) {
        return refused;
    }
    let mut scopes: Vec<String> = f
        .get("scope")
        .map_or_else(|| grant.scopes.clone(), |s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect());
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    let tid = tid.map_or_else(|| shared.tenant_id.clone(), str::to_owned);
    let claims = f.get("claims").map(String::as_str);
    issue_tokens(shared, &client_id, grant.user, &tid, &scopes, None, wants_client_info(f), Spa(grant.spa), claims)
}
