//! What the grants share: client authentication (client secret, certificate assertion,
//! federated assertion), scope parsing, the token response, the tenant of a token request,
//! the `claims` request parameter, and the client check of a redeemed grant.
//!
//! Handlers return `Result<_, DevResponse>` so that `?` turns any check into its OAuth error
//! answer; the error is a whole HTTP response by design, hence the large `Err` variants.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::dev::clock::now;
use crate::dev::http::{DevResponse, invalid_client, invalid_grant, invalid_request, json_response, oauth_error};
use crate::dev::registry::{DevApp, DevUser, Registry, TOKEN_EXCHANGE_AUDIENCE};
use crate::dev::state::Shared;
use crate::dev::token::{TokenBuilder, decode, numeric_date, verify_dev_token};

pub(crate) const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

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
pub(crate) fn parse_scopes(registry: &Registry, scope: &str) -> Result<(DevApp, Vec<String>), DevResponse> {
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

/// A redeemed grant (`what`: an authorization code, a refresh token, a device code) must come
/// from the client it was issued to: `invalid_grant` (AADSTS70000) otherwise.
pub(crate) fn check_issued_to(issued_to: &str, client_id: &str, what: &str) -> Result<(), DevResponse> {
    if issued_to == client_id {
        Ok(())
    } else {
        Err(invalid_grant(70_000, &format!("The {what} was issued to another client.")))
    }
}
