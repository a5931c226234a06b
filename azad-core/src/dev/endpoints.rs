//! The dev tenant's token endpoint (client credentials, on-behalf-of, authorization code,
//! refresh token, device code) and managed identity endpoints (IMDS and App Service shapes).
//!
//! Handlers return `Result<_, DevResponse>` so that `?` turns any check into its OAuth error
//! answer; the error is a whole HTTP response by design, hence the large `Err` variants.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::apps::{DevApp, TOKEN_EXCHANGE_AUDIENCE};
use super::server::{DevRequest, DevResponse, json_response, oauth_error};
use super::{DevUser, Shared, TokenBuilder};

pub(crate) const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn invalid_request(description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", 900_144, description)
}

fn invalid_client(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", code, description)
}

pub(crate) fn invalid_grant(code: u32, description: &str) -> DevResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
}

/// Parses an `application/x-www-form-urlencoded` body; a repeated parameter is an error.
pub(crate) fn form(body: &[u8]) -> Result<HashMap<String, String>, DevResponse> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(invalid_request("A parameter was repeated."));
        }
    }
    Ok(map)
}

/// A decoded compact JWS: header, claims, signing input and signature segment.
type Decoded<'a> = (Map<String, Value>, Map<String, Value>, &'a str, &'a str);

/// Decodes a compact JWS without verifying it.
fn decode(token: &str) -> Option<Decoded<'_>> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    Some((header, claims, &token[..h.len() + 1 + p.len()], s))
}

/// A JWT NumericDate: seconds, possibly with a fraction (RFC 7519 allows it, MSAL Python sends
/// `time.time()` floats in its client assertions, and Entra accepts them).
fn numeric_date(v: &Value) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
}

/// Verifies a token signed by one of the dev tenant's published keys; returns its claims.
pub(crate) fn verify_dev_token(shared: &Shared, token: &str) -> Result<Map<String, Value>, &'static str> {
    let (header, claims, message, signature) = decode(token).ok_or("malformed token")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("unsupported algorithm");
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or("no kid")?;
    // Every published key under this kid is a candidate (a kid may be listed twice).
    let keys: Vec<_> = {
        let ring = shared.keys.read().unwrap_or_else(|e| e.into_inner());
        ring.published.iter().filter(|k| k.kid == kid).cloned().collect()
    };
    if keys.is_empty() {
        return Err("signing key not found");
    }
    let mut verified = false;
    for key in keys {
        verified |= jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.decoding_key(),
            jsonwebtoken::Algorithm::RS256,
        )
        .map_err(|_| "malformed signature")?;
    }
    if !verified {
        return Err("signature validation failed");
    }
    if claims.get("exp").and_then(numeric_date).is_none_or(|exp| exp <= now()) {
        return Err("expired");
    }
    Ok(claims)
}

/// Checks a certificate client assertion against the app's registered certificates.
fn verify_certificate_assertion(
    shared: &Shared,
    client_id: &str,
    assertion: &str,
    token_endpoint: &str,
) -> Result<(), DevResponse> {
    let bad = |code, msg: &str| Err(invalid_client(code, msg));
    let Some((header, claims, message, signature)) = decode(assertion) else {
        return bad(700_024, "Client assertion is not a valid JWT.");
    };
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("PS256") => webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        Some("RS256") => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        _ => return bad(700_027, "Client assertion uses an unsupported algorithm."),
    };
    // The certificate is named by its SHA-256 thumbprint (`x5t#S256`) or, as older clients and
    // MSAL given a `thumbprint` still do, its SHA-1 thumbprint (`x5t`): Entra accepts both.
    let thumbprints = [
        (header.get("x5t#S256").and_then(Value::as_str), &aws_lc_rs::digest::SHA256),
        (header.get("x5t").and_then(Value::as_str), &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
    ];
    let der = {
        let registry = shared.registry();
        let certs = registry.certificates.get(client_id).cloned().unwrap_or_default();
        certs.into_iter().find(|der| {
            thumbprints.iter().any(|(given, alg)| {
                // Padded base64url (what MSAL Python sends) names the same certificate.
                given.is_some_and(|t| {
                    t.trim_end_matches('=') == URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(alg, der))
                })
            })
        })
    };
    let Some(der) = der else {
        return bad(700_027, "Client assertion contains an invalid signature. The key was not found.");
    };
    let cert_der = rustls_pki_types::CertificateDer::from(der.as_slice());
    let cert = webpki::EndEntityCert::try_from(&cert_der)
        .map_err(|_| invalid_client(700_027, "Registered certificate is unusable."))?;
    let sig = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid_client(700_027, "Malformed signature."))?;
    if cert.verify_signature(alg, message.as_bytes(), &sig).is_err() {
        return bad(700_027, "Client assertion contains an invalid signature.");
    }
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("aud") != Some(token_endpoint) {
        return bad(700_212, "The audience of the client assertion is not the token endpoint.");
    }
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return bad(700_023, "The client assertion's iss and sub must be the client id.");
    }
    let n = |k: &str| claims.get(k).and_then(numeric_date);
    let t = now();
    match (n("exp"), n("nbf")) {
        (Some(exp), nbf) if exp > t && nbf.is_none_or(|nbf| nbf <= t + 300) && exp - t <= 3600 => {}
        _ => {
            return bad(700_024, "Client assertion is not within its valid time range.");
        }
    }
    let Some(jti) = s("jti") else {
        return bad(700_025, "Client assertion has no jti.");
    };
    if !shared.registry().used_jtis.insert(jti.to_owned()) {
        return bad(700_026, "Client assertion has been replayed (jti already used).");
    }
    Ok(())
}

/// Authenticates the client of a token request; returns its client id.
pub(crate) fn authenticate(
    shared: &Shared,
    f: &HashMap<String, String>,
    token_endpoint: &str,
    public_allowed: bool,
) -> Result<String, DevResponse> {
    let Some(client_id) = f.get("client_id").cloned() else {
        return Err(invalid_request(
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        ));
    };
    if shared.registry().app(&client_id).is_none() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    }
    if let Some(secret) = f.get("client_secret") {
        let ok = shared.registry().secrets.get(&client_id).is_some_and(|list| list.iter().any(|s| s == secret));
        return if ok { Ok(client_id) } else { Err(invalid_client(7_000_215, "Invalid client secret provided.")) };
    }
    match (f.get("client_assertion_type").map(String::as_str), f.get("client_assertion")) {
        (Some(JWT_BEARER_ASSERTION), Some(assertion)) => {
            let (_, claims, _, _) =
                decode(assertion).ok_or_else(|| invalid_client(700_024, "Client assertion is not a valid JWT."))?;
            // An assertion the app signed itself (iss = client id) is a certificate
            // credential; anything else must be a federated token.
            if claims.get("iss").and_then(Value::as_str) == Some(client_id.as_str()) {
                verify_certificate_assertion(shared, &client_id, assertion, token_endpoint)?;
                return Ok(client_id);
            }
            // A federated token: signed by a key the dev tenant publishes, for the token
            // exchange audience, from a registered (issuer, subject).
            let claims = verify_dev_token(shared, assertion)
                .map_err(|why| invalid_client(700_213, &format!("The federated assertion is invalid: {why}.")))?;
            let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            if s("aud") != TOKEN_EXCHANGE_AUDIENCE {
                return Err(invalid_client(
                    700_212,
                    "The federated assertion's audience must be api://AzureADTokenExchange.",
                ));
            }
            let (iss, sub) = (s("iss"), s("sub"));
            let trusted = shared
                .registry()
                .federated
                .get(&client_id)
                .is_some_and(|list| list.iter().any(|(i, s)| *i == iss && *s == sub));
            if trusted {
                Ok(client_id)
            } else {
                Err(invalid_client(
                    700_213,
                    &format!("No matching federated identity record found for presented assertion subject '{sub}'."),
                ))
            }
        }
        (Some(_), _) => Err(invalid_request("Unsupported client_assertion_type.")),
        _ if public_allowed => Ok(client_id),
        _ => Err(invalid_client(
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    }
}

/// Splits `api://x/Scope` into the API and the scope names; all scopes must name one API.
pub(crate) fn parse_scopes(
    registry: &super::apps::Registry,
    scope: &str,
) -> Result<(DevApp, Vec<String>), DevResponse> {
    let mut resource: Option<DevApp> = None;
    let mut names = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if OIDC_SCOPES.contains(&s) {
            continue;
        }
        let (res, name) = s.rsplit_once('/').ok_or_else(|| invalid_request(&format!("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {s} is not valid.")))?;
        let app = registry.resource(res).ok_or_else(|| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                500_011,
                &format!("The resource principal named {res} was not found in the tenant."),
            )
        })?;
        if resource.as_ref().is_some_and(|r| r.client_id != app.client_id) {
            return Err(invalid_request(
                "AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource.",
            ));
        }
        resource = Some(app.clone());
        names.push(name.to_owned());
    }
    let resource = resource.ok_or_else(|| {
        invalid_request("AADSTS70011: The provided value for the input parameter 'scope' is not valid.")
    })?;
    Ok((resource, names))
}

pub(crate) fn token_response(access_token: &str, extra: &[(&str, Value)]) -> DevResponse {
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access_token,
    });
    for (k, v) in extra {
        body[*k] = v.clone();
    }
    json_response(StatusCode::OK, &body)
}

/// The tenant a token request is for (the tenant part of the path, resolved).
pub(crate) fn request_tenant(shared: &Shared, tenant: &str) -> Option<String> {
    match tenant {
        "common" | "organizations" | "consumers" => None,
        t if t == shared.domain || t == shared.tenant_id => Some(shared.tenant_id.clone()),
        t if shared.is_known_tenant(t) => Some(t.to_owned()),
        _ => None,
    }
}

/// The `Origin` of a browser's cross-origin request (Fetch standard), if any.
pub(crate) fn origin(request: &DevRequest) -> Option<&str> {
    request.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|o| !o.is_empty())
}

pub(crate) fn token(shared: &Arc<Shared>, tenant: &str, request: &DevRequest) -> DevResponse {
    let f = match form(&request.body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tid = request_tenant(shared, tenant);
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url);
    let grant = f.get("grant_type").map(String::as_str).unwrap_or_default();
    match grant {
        "client_credentials" => {
            let Some(tid) = tid else {
                return invalid_request(
                    "AADSTS900023: Specified tenant identifier is neither a valid DNS name, nor a valid external domain.",
                );
            };
            client_credentials(shared, &tid, &endpoint, &f)
        }
        JWT_BEARER_GRANT if f.get("requested_token_use").map(String::as_str) == Some("on_behalf_of") => {
            on_behalf_of(shared, tid.as_deref(), &endpoint, &f)
        }
        "authorization_code" => {
            super::interactive::authorization_code(shared, tid.as_deref(), &endpoint, &f, origin(request))
        }
        "refresh_token" => super::interactive::refresh_token(shared, tid.as_deref(), &endpoint, &f, origin(request)),
        "urn:ietf:params:oauth:grant-type:device_code" => {
            super::interactive::device_code_grant(shared, tid.as_deref(), &f)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
        ),
    }
}

fn client_credentials(shared: &Arc<Shared>, tid: &str, endpoint: &str, f: &HashMap<String, String>) -> DevResponse {
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

/// Applies a token request's `claims` parameter (OpenID Connect Core §5.5, as Entra reads it
/// for access tokens) the way Entra answers once the user satisfied it: an authentication
/// context asked for (`"acrs": {"essential": true, "value": "c1"}` or `"values": [...]`)
/// appears in `acrs`, and client capabilities (`"xms_cc": {"values": ["cp1"]}`) in `xms_cc`.
pub(crate) fn apply_claims_request(mut builder: TokenBuilder, claims: Option<&str>) -> TokenBuilder {
    let Some(request) = claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return builder;
    };
    let acrs = match request.pointer("/access_token/acrs") {
        Some(a) => match (a.get("value"), a.get("values")) {
            (Some(Value::String(v)), _) => Some(json!([v])),
            (_, Some(Value::Array(vs))) => Some(Value::Array(vs.clone())),
            _ => None,
        },
        None => None,
    };
    if let Some(acrs) = acrs {
        builder = builder.claim("acrs", acrs);
    }
    if let Some(cc) = request.pointer("/access_token/xms_cc/values").filter(|v| v.is_array()) {
        builder = builder.claim("xms_cc", cc.clone());
    }
    builder
}

/// A dev user from a token's claims (the user the token was issued to).
pub(crate) fn user_from(claims: &Map<String, Value>) -> DevUser {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let username =
        [s("preferred_username"), s("upn"), s("unique_name")].into_iter().find(|u| !u.is_empty()).unwrap_or_default();
    DevUser::new(s("name"), username).with_oid(s("oid"))
}

fn on_behalf_of(shared: &Arc<Shared>, tid: Option<&str>, endpoint: &str, f: &HashMap<String, String>) -> DevResponse {
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
            let mut body = super::server::oauth_error_body(
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
        let pick = |f: &dyn Fn(&super::DevManagedIdentity) -> &str, v: &str| {
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
        super::ManagedIdentityExpiry::EpochString => Some(expires_on.to_string()),
        super::ManagedIdentityExpiry::Rfc3339 => Some(crate::expiry::format_date_time(expires_on, false)),
        super::ManagedIdentityExpiry::DotNetInvariant => Some(crate::expiry::format_date_time(expires_on, true)),
        super::ManagedIdentityExpiry::TokenExpOnly => None,
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

impl super::keys::DevKey {
    pub(crate) fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        jsonwebtoken::DecodingKey::from_rsa_components(&self.n, &self.e)
            .expect("dev key components are valid base64url")
    }
}
