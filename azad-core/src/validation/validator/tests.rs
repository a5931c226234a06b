//! Validation tests through the dev tenant: one test per check, asserting the exact error.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::authority::CONSUMERS_TENANT_ID;
use crate::config::AzureAdConfig;
use crate::dev::{DevTenant, Endpoint, Fault};
use crate::error::TokenPart;
use crate::validation::jwks::StaticJwks;
use crate::validation::policy::TokenVersions;

const OTHER_TENANT: &str = "0b6a5a2c-1111-4222-8333-944455556666";
const THIRD_TENANT: &str = "0c7b6b3d-7777-4888-9999-a0aabbbbcccc";

async fn tenant() -> DevTenant {
    DevTenant::builder().extra_tenant(OTHER_TENANT).extra_tenant(THIRD_TENANT).start().await.unwrap()
}

fn validator(dev: &DevTenant) -> TokenValidator {
    TokenValidator::new(dev.config())
}

async fn err(v: &TokenValidator, token: &str) -> ValidationError {
    v.validate(token).await.expect_err("token must be rejected")
}

#[tokio::test]
async fn accepts_v2_delegated_tokens() {
    let dev = tenant().await;
    let v = validator(&dev);
    let claims = v.validate(&dev.token().build()).await.unwrap();
    assert_eq!(claims.issuer(), dev.issuer());
    assert_eq!(claims.audiences(), [dev.api_client_id()]);
    assert_eq!(claims.tenant_id(), Some(dev.tenant_id()));
    assert_eq!(claims.version(), Some("2.0"));
    assert_eq!(claims.azp(), Some(dev.client_app_id()));
    assert!(claims.has_scope("access_as_user"));
    assert!(!claims.is_app_only());
    assert_eq!(claims.object_id(), Some(dev.users()[0].oid.as_str()));
    assert!(claims.principal_key().is_some());
}

#[tokio::test]
async fn accepts_v1_and_app_only_tokens() {
    let dev = tenant().await;
    let v = validator(&dev);
    let v1 = v.validate(&dev.token().v1().build()).await.unwrap();
    assert_eq!(v1.issuer(), dev.issuer_v1());
    assert_eq!(v1.audiences(), [format!("api://{}", dev.api_client_id())]);
    assert_eq!(v1.appid(), Some(dev.client_app_id()));
    assert!(v1.get("upn").is_some());
    let app = v.validate(&dev.token().app_only().roles(["Tasks.Read.All"]).build()).await.unwrap();
    assert!(app.is_app_only());
    assert!(app.has_role("Tasks.Read.All"));
    assert_eq!(app.idtyp(), Some("app"));
    let app_v1 = v.validate(&dev.token().v1().app_only().roles(["R"]).build()).await.unwrap();
    assert!(app_v1.is_app_only());
    // The v1.0 discovery document was read once to learn the custom host's v1 issuer.
    assert_eq!(dev.requests(Endpoint::OpenIdConfigurationV1), 1);
    assert_eq!(dev.requests(Endpoint::OpenIdConfiguration), 1);
}

#[tokio::test]
async fn size_cap_applies_before_decoding() {
    let dev = tenant().await;
    let v = TokenValidator::new(dev.config_builder().max_token_bytes(1024).build().unwrap());
    let big = dev.token().claim("padding", "x".repeat(2000)).build();
    assert_eq!(err(&v, &big).await, ValidationError::TokenTooLarge);
    // Not even a JWT: the size cap comes first, and nothing was fetched.
    assert_eq!(err(&v, &"!".repeat(5000)).await, ValidationError::TokenTooLarge);
    assert_eq!(dev.requests(Endpoint::Jwks), 0);
    assert_eq!(v.validate_at(&big, SystemTime::now()).await.unwrap_err(), ValidationError::TokenTooLarge);
}

#[tokio::test]
async fn malformed_tokens() {
    let dev = tenant().await;
    let v = validator(&dev);
    let good = dev.token().build();
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let cases = [
        ("", ValidationError::Malformed(TokenPart::Structure)),
        ("abc", ValidationError::Malformed(TokenPart::Structure)),
        (&format!("{h}.{p}") as &str, ValidationError::Malformed(TokenPart::Structure)),
        (&format!("{good}.x"), ValidationError::Malformed(TokenPart::Structure)),
        (&format!("{h}.{p}.{s}="), ValidationError::Malformed(TokenPart::Signature)),
        (&format!("{h}..{s}"), ValidationError::Malformed(TokenPart::Structure)),
        (&format!("Bearer {good}"), ValidationError::Malformed(TokenPart::Header)),
        (&format!("{h}=.{p}.{s}"), ValidationError::Malformed(TokenPart::Header)),
        (&format!("{h}.{p}+.{s}"), ValidationError::Malformed(TokenPart::Payload)),
        (&format!("{}.{p}.{s}", b64("not json")), ValidationError::Malformed(TokenPart::Header)),
        (&format!("{}.{p}.{s}", b64("[\"alg\"]")), ValidationError::Malformed(TokenPart::Header)),
        (&format!("{h}.{}.{s}", b64("[1]")), ValidationError::Malformed(TokenPart::Payload)),
        (&format!("{h}.{}.{s}", b64("{\"a\":")), ValidationError::Malformed(TokenPart::Payload)),
        (&format!("{h}.a.{s}"), ValidationError::Malformed(TokenPart::Payload)),
    ];
    for (token, expected) in cases {
        assert_eq!(err(&v, token).await, expected, "{token:.40}");
    }
}

#[tokio::test]
async fn duplicate_members_and_wrong_claim_types() {
    let dev = tenant().await;
    let v = validator(&dev);
    let kid = dev.active_kid();
    let claims = serde_json::Value::Object(dev.token().claims()).to_string();
    let header = format!(r#"{{"alg":"RS256","kid":"{kid}","alg":"RS256"}}"#);
    assert_eq!(err(&v, &dev.sign_raw(&header, &claims)).await, ValidationError::DuplicateMember(TokenPart::Header));
    let header = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
    let dup_claims = format!(r#"{}, "aud":"api://evil"}}"#, claims.trim_end_matches('}'));
    assert_eq!(
        err(&v, &dev.sign_raw(&header, &dup_claims)).await,
        ValidationError::DuplicateMember(TokenPart::Payload)
    );
    let bad_exp = dev.token().claim("exp", "9999999999").build();
    assert_eq!(err(&v, &bad_exp).await, ValidationError::InvalidClaim("exp"));
    let bad_nbf = dev.token().claim("nbf", json!({"t": 1})).build();
    assert_eq!(err(&v, &bad_nbf).await, ValidationError::InvalidClaim("nbf"));
}

#[tokio::test]
async fn algorithms_are_an_explicit_allow_list() {
    let dev = tenant().await;
    let v = validator(&dev);
    for alg in ["none", "HS256", "HS512", "ES256", "EdDSA", "rs256", ""] {
        let token = dev.token().alg_header(alg).build();
        assert_eq!(err(&v, &token).await, ValidationError::AlgorithmNotAllowed, "{alg}");
    }
    let ps = dev.token().algorithm(SigningAlgorithm::PS256).build();
    assert_eq!(err(&v, &ps).await, ValidationError::AlgorithmNotAllowed);
    let header_without_alg = dev.sign_raw(&format!(r#"{{"kid":"{}"}}"#, dev.active_kid()), "{}");
    assert_eq!(err(&v, &header_without_alg).await, ValidationError::AlgorithmNotAllowed);
    // Allowed when configured, and verified with the right padding.
    let v_ps = TokenValidator::new(
        dev.config_builder().algorithms([SigningAlgorithm::RS256, SigningAlgorithm::PS256]).build().unwrap(),
    );
    assert!(v_ps.validate(&ps).await.is_ok());
    // An RS256 signature presented as PS256 does not verify.
    let lying = dev.token().alg_header("PS256").build();
    assert_eq!(err(&v_ps, &lying).await, ValidationError::InvalidSignature);
}

#[tokio::test]
async fn refused_header_parameters() {
    let dev = tenant().await;
    let v = validator(&dev);
    for (name, value) in [
        ("crit", json!(["exp"])),
        ("jku", json!("https://evil.example.com/keys")),
        ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("x5u", json!("https://evil.example.com/cert")),
        ("x5c", json!(["MIIB"])),
    ] {
        let token = dev.token().header(name, value).build();
        let expected = match name {
            "crit" => "crit",
            "jku" => "jku",
            "jwk" => "jwk",
            "x5u" => "x5u",
            _ => "x5c",
        };
        assert_eq!(err(&v, &token).await, ValidationError::ForbiddenHeader(expected));
    }
}

#[tokio::test]
async fn key_id_must_be_present_and_well_shaped() {
    let dev = tenant().await;
    let v = validator(&dev);
    assert_eq!(err(&v, &dev.token().kid(None).build()).await, ValidationError::InvalidKeyId);
    assert_eq!(err(&v, &dev.token().kid(Some("")).build()).await, ValidationError::InvalidKeyId);
    assert_eq!(err(&v, &dev.token().kid(Some("bad kid<script>")).build()).await, ValidationError::InvalidKeyId);
    assert_eq!(dev.requests(Endpoint::Jwks), 0, "bad kids are refused before any fetch");
}

#[tokio::test]
async fn unknown_keys_and_forged_signatures() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    assert_eq!(dev.requests(Endpoint::Jwks), 1);

    // Signed by a key the tenant never published: unknown kid, one refresh, then refused.
    let forged = dev.token().signed_with_unpublished_key().build();
    assert_eq!(err(&v, &forged).await, ValidationError::UnknownKey);
    assert_eq!(dev.requests(Endpoint::Jwks), 2);
    assert_eq!(v.diagnose(&forged, &ValidationError::UnknownKey), Some(Diagnostic::KeyNotInJwks));

    // Signed by another key under a known kid: bad signature, and no refresh.
    let lying = dev.token().signed_with_unpublished_key().kid(Some(&dev.active_kid())).build();
    assert_eq!(err(&v, &lying).await, ValidationError::InvalidSignature);
    // A tampered payload under the right key.
    let good = dev.token().build();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1]).unwrap(),
    )
    .unwrap();
    claims["scp"] = "access_as_user Admin.All".into();
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims.to_string());
    assert_eq!(err(&v, &parts.join(".")).await, ValidationError::InvalidSignature);
    // A truncated signature.
    let truncated = format!("{}.{}.AAAA", parts[0], good.split('.').nth(1).unwrap());
    assert!(matches!(
        err(&v, &truncated).await,
        ValidationError::InvalidSignature | ValidationError::Malformed(TokenPart::Signature)
    ));
    assert_eq!(dev.requests(Endpoint::Jwks), 2, "bad signatures on known keys never refresh");
}

#[tokio::test]
async fn required_claims() {
    let dev = tenant().await;
    let v = validator(&dev);
    assert_eq!(err(&v, &dev.token().without_claim("iss").build()).await, ValidationError::MissingClaim("iss"));
    assert_eq!(err(&v, &dev.token().without_claim("aud").build()).await, ValidationError::MissingClaim("aud"));
    assert_eq!(err(&v, &dev.token().without_claim("exp").build()).await, ValidationError::MissingClaim("exp"));
    assert_eq!(
        err(&v, &dev.token().audiences(Vec::<String>::new()).build()).await,
        ValidationError::MissingClaim("aud")
    );
}

#[tokio::test]
async fn issuer_must_match_discovery_exactly() {
    let dev = tenant().await;
    let v = validator(&dev);
    let wrong = [
        "https://login.microsoftonline.com/7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f/v2.0".to_owned(),
        format!("{}/", dev.issuer()),
        dev.issuer().to_uppercase(),
        format!("{}/{OTHER_TENANT}/v2.0", dev.base_url()),
        format!("{}/common/v2.0", dev.base_url()),
    ];
    for iss in wrong {
        assert_eq!(err(&v, &dev.token().issuer(&iss).build()).await, ValidationError::InvalidIssuer, "{iss}");
    }
    // A token of another tenant served by the same keys (like Entra) is refused by a
    // single-tenant API, and the diagnostic says so.
    let other = dev.token().tenant(OTHER_TENANT).build();
    assert_eq!(err(&v, &other).await, ValidationError::InvalidIssuer);
    assert_eq!(v.diagnose(&other, &ValidationError::InvalidIssuer), Some(Diagnostic::TokenFromAnotherTenant));
    // The issuer's tenant must be the token's own tid.
    let mismatched_tid = dev.token().claim("tid", OTHER_TENANT).build();
    assert_eq!(err(&v, &mismatched_tid).await, ValidationError::InvalidIssuer);
}

#[tokio::test]
async fn multi_tenant_issuer_template_and_allow_list() {
    let dev = tenant().await;
    let common = TokenValidator::new(dev.config_builder().tenant_id("common").build().unwrap());
    for tid in [dev.tenant_id(), OTHER_TENANT, THIRD_TENANT] {
        let c = common.validate(&dev.token().tenant(tid).build()).await.unwrap();
        assert_eq!(c.tenant_id(), Some(tid));
    }
    // The template must be filled with the token's own tid.
    let swapped = dev.token().tenant(OTHER_TENANT).claim("tid", THIRD_TENANT).build();
    assert_eq!(err(&common, &swapped).await, ValidationError::InvalidIssuer);
    let no_tid = dev.token().tenant(OTHER_TENANT).without_claim("tid").build();
    assert_eq!(err(&common, &no_tid).await, ValidationError::InvalidIssuer);
    let not_guid = dev.token().issuer(format!("{}/contoso/v2.0", dev.base_url())).claim("tid", "contoso").build();
    assert_eq!(err(&common, &not_guid).await, ValidationError::InvalidIssuer);

    let allow = TokenValidator::new(
        dev.config_builder().tenant_id("organizations").allowed_tenants([OTHER_TENANT]).build().unwrap(),
    );
    assert!(allow.validate(&dev.token().tenant(OTHER_TENANT).build()).await.is_ok());
    let refused = dev.token().tenant(THIRD_TENANT).build();
    assert_eq!(err(&allow, &refused).await, ValidationError::TenantNotAllowed);
    assert_eq!(allow.diagnose(&refused, &ValidationError::TenantNotAllowed), Some(Diagnostic::TokenFromAnotherTenant));

    // `organizations` never accepts personal accounts.
    let orgs = TokenValidator::new(dev.config_builder().tenant_id("organizations").build().unwrap());
    let msa = dev.token().tenant(CONSUMERS_TENANT_ID).build();
    assert_eq!(err(&orgs, &msa).await, ValidationError::TenantNotAllowed);
    assert!(common.validate(&msa).await.is_ok());
}

#[tokio::test]
async fn key_issuer_must_match_token_issuer() {
    let dev = tenant().await;
    let mut jwks: serde_json::Value = serde_json::from_str(&dev.jwks_json()).unwrap();
    jwks["keys"][0]["issuer"] = format!("{}/{OTHER_TENANT}/v2.0", dev.base_url()).into();
    let cfg = dev
        .config_builder()
        .static_jwks(StaticJwks::from_json(jwks.to_string(), dev.issuer()).with_issuer(dev.issuer_v1()))
        .build()
        .unwrap();
    let v = TokenValidator::new(cfg);
    assert_eq!(err(&v, &dev.token().build()).await, ValidationError::KeyIssuerMismatch);

    // A templated key issuer matches the token's tenant; v1.0 tokens match through the v2.0 issuer.
    jwks["keys"][0]["issuer"] = format!("{}/{{tenantid}}/v2.0", dev.base_url()).into();
    let cfg = dev
        .config_builder()
        .static_jwks(StaticJwks::from_json(jwks.to_string(), dev.issuer()).with_issuer(dev.issuer_v1()))
        .build()
        .unwrap();
    let v = TokenValidator::new(cfg);
    assert!(v.validate(&dev.token().build()).await.is_ok());
    assert!(v.validate(&dev.token().v1().build()).await.is_ok());
    assert_eq!(dev.total_requests(), 0, "static keys need no network");
}

#[tokio::test]
async fn audiences() {
    let dev = tenant().await;
    let v = validator(&dev);
    let graph = dev.token().audience("00000003-0000-0000-c000-000000000000").build();
    assert_eq!(err(&v, &graph).await, ValidationError::InvalidAudience);
    assert_eq!(v.diagnose(&graph, &ValidationError::InvalidAudience), Some(Diagnostic::TokenForMicrosoftGraph));
    let graph_url = dev.token().audience("https://graph.microsoft.com").build();
    assert_eq!(v.diagnose(&graph_url, &ValidationError::InvalidAudience), Some(Diagnostic::TokenForMicrosoftGraph));
    let other = dev.token().audience("api://someone-else").build();
    assert_eq!(err(&v, &other).await, ValidationError::InvalidAudience);
    assert_eq!(v.diagnose(&other, &ValidationError::InvalidAudience), Some(Diagnostic::TokenForAnotherAudience));
    // String or array; the App ID URI form is accepted by default.
    let arr = dev.token().audiences(["api://x", dev.api_client_id()]).build();
    assert!(v.validate(&arr).await.is_ok());
    let uri = dev.token().audience(format!("api://{}", dev.api_client_id())).build();
    assert!(v.validate(&uri).await.is_ok());
    // Configured audiences replace the defaults.
    let custom = TokenValidator::new(dev.config_builder().audience("api://custom").build().unwrap());
    assert_eq!(err(&custom, &dev.token().build()).await, ValidationError::InvalidAudience);
    assert!(custom.validate(&dev.token().audience("api://custom").build()).await.is_ok());
    assert_eq!(
        err(&v, &dev.token().claim("aud", json!(["api://x", 3])).build()).await,
        ValidationError::InvalidClaim("aud")
    );
}

#[tokio::test]
async fn lifetime_with_leeway() {
    let dev = tenant().await;
    let v = validator(&dev);
    assert_eq!(err(&v, &dev.token().expired().build()).await, ValidationError::Expired);
    assert_eq!(err(&v, &dev.token().not_yet_valid().build()).await, ValidationError::NotYetValid);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Two minutes late or early is within the default five-minute leeway.
    let just_expired = dev.token().issued_at(now - 3600 - 120).build();
    assert!(v.validate(&just_expired).await.is_ok());
    let early = dev.token().claim("nbf", now + 120).build();
    assert!(v.validate(&early).await.is_ok());
    let strict = TokenValidator::new(dev.config_builder().leeway(Duration::ZERO).build().unwrap());
    assert_eq!(err(&strict, &just_expired).await, ValidationError::Expired);
    assert_eq!(err(&strict, &early).await, ValidationError::NotYetValid);
}

#[tokio::test]
async fn replay_against_a_fixed_clock() {
    let dev = tenant().await;
    let v = validator(&dev);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let recorded = dev.token().issued_at(now - 30 * 24 * 3600).build();
    assert_eq!(err(&v, &recorded).await, ValidationError::Expired);
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs((now - 30 * 24 * 3600 + 60) as u64);
    assert!(v.validate_at(&recorded, then).await.is_ok());
    let before_issue = SystemTime::UNIX_EPOCH + Duration::from_secs((now - 31 * 24 * 3600) as u64);
    assert_eq!(v.validate_at(&recorded, before_issue).await.unwrap_err(), ValidationError::NotYetValid);
}

#[tokio::test]
async fn token_versions() {
    let dev = tenant().await;
    let v2_only = TokenValidator::new(dev.config_builder().token_versions(TokenVersions::V2Only).build().unwrap());
    let v1 = dev.token().v1().build();
    assert_eq!(err(&v2_only, &v1).await, ValidationError::VersionNotAllowed);
    assert_eq!(v2_only.diagnose(&v1, &ValidationError::VersionNotAllowed), Some(Diagnostic::V1TokenWhereOnlyV2Allowed));
    assert!(v2_only.validate(&dev.token().build()).await.is_ok());
    let v1_only = TokenValidator::new(dev.config_builder().token_versions(TokenVersions::V1Only).build().unwrap());
    assert_eq!(err(&v1_only, &dev.token().build()).await, ValidationError::VersionNotAllowed);
    assert!(v1_only.validate(&v1).await.is_ok());
    assert_eq!(err(&v2_only, &dev.token().without_claim("ver").build()).await, ValidationError::VersionNotAllowed);
    // The v1.0 issuer is always learned, so a refused version is reported as such.
    assert_eq!(dev.requests(Endpoint::OpenIdConfigurationV1), 2);
}

#[tokio::test]
async fn scopes_or_roles_required_by_default() {
    let dev = tenant().await;
    let v = validator(&dev);
    let bare = dev.token().scopes(Vec::<String>::new()).build();
    assert_eq!(err(&v, &bare).await, ValidationError::NoScopesOrRoles);
    let bare_app = dev.token().app_only().build();
    assert_eq!(err(&v, &bare_app).await, ValidationError::NoScopesOrRoles);
    let empty_scp = dev.token().claim("scp", "").build();
    assert_eq!(err(&v, &empty_scp).await, ValidationError::NoScopesOrRoles);
    let acl =
        TokenValidator::new(dev.config_builder().insecure_allow_tokens_without_scopes_or_roles(true).build().unwrap());
    assert!(acl.validate(&bare_app).await.is_ok());
}

#[tokio::test]
async fn validated_tokens_are_cached_until_they_expire() {
    let dev = tenant().await;
    let v = TokenValidator::new(dev.config_builder().leeway(Duration::ZERO).build().unwrap());
    let token = dev.token().expires_in(Duration::from_secs(2)).build();
    assert!(v.try_cached(&token).is_none(), "never seen");
    let first = v.validate(&token).await.unwrap();
    let second = v.validate(&token).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "a repeated token is served from the cache");
    assert!(from_cache(&v, &token, &v.try_cached(&token).unwrap().0));
    // A cache keyed by token content: a different token (same claims, new signature) misses.
    assert!(v.try_cached(&dev.token().build()).is_none());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(v.try_cached(&token).is_none(), "entries never outlive exp");
    assert_eq!(v.validate(&token).await.unwrap_err(), ValidationError::Expired);
}

/// The cache path reads the injected clock too: a cached token is served until the clock
/// passes its `exp`, and refused as expired once the clock passes `exp` plus the leeway.
#[tokio::test]
async fn a_cached_token_is_refused_once_the_injected_clock_passes_exp() {
    let dev = tenant().await;
    let clock = crate::clock::FixedClock::now();
    let leeway = Duration::from_secs(60);
    let v =
        TokenValidator::new(dev.config_builder().leeway(leeway).build().unwrap().with_clock(Arc::new(clock.clone())));
    let token = dev.token().expires_in(Duration::from_secs(600)).build();
    let first = v.validate(&token).await.unwrap();
    clock.advance(Duration::from_secs(599 - 5));
    assert!(Arc::ptr_eq(&first, &v.try_cached(&token).unwrap().0), "served from the cache before exp");
    assert!(from_cache(&v, &token, &v.validate(&token).await.unwrap()));
    // Past exp, within the leeway: the cache no longer answers, a full check still accepts.
    clock.advance(Duration::from_secs(30));
    assert!(v.try_cached(&token).is_none(), "entries never outlive exp on the injected clock");
    assert!(v.validate(&token).await.is_ok());
    // Past exp plus the leeway: refused, whatever the system clock says.
    clock.advance(leeway);
    assert!(v.try_cached(&token).is_none());
    assert_eq!(v.validate(&token).await.unwrap_err(), ValidationError::Expired);
    assert_eq!(v.validate(&token).await.unwrap_err(), ValidationError::Expired);
}

#[tokio::test]
async fn a_tampered_token_never_rides_on_a_cached_signature() {
    let dev = tenant().await;
    let v = validator(&dev);
    let token = dev.token().scopes(["access_as_user"]).build();
    assert!(v.validate(&token).await.is_ok());
    // Same signature, another payload (an elevated scope): a cache lookup by signature must
    // not serve the genuine token's claims.
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    claims["scp"] = "access_as_user Admin.All".into();
    let forged_payload = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims.to_string());
    let forged = format!("{header}.{forged_payload}.{signature}");
    assert!(v.try_cached(&forged).is_none());
    assert_eq!(err(&v, &forged).await, ValidationError::InvalidSignature);
    // The genuine entry is still there.
    assert!(v.try_cached(&token).is_some());
    let (claims, cached) = v.try_cached(&token).unwrap();
    assert_eq!(cached.secret(), token);
    assert!(!claims.has_scope("Admin.All"));
}

#[tokio::test]
async fn cache_is_flushed_when_keys_change_and_never_holds_failures() {
    let dev = tenant().await;
    let v = validator(&dev);
    let token = dev.token().build();
    let first = v.validate(&token).await.unwrap();
    // Retire the key that signed it: after a refresh the token is no longer valid.
    let old = dev.active_kid();
    dev.rotate_keys();
    assert!(dev.retire_key(&old));
    v.jwks().refresh().await.unwrap();
    assert_eq!(v.validate(&token).await.unwrap_err(), ValidationError::UnknownKey);
    drop(first);
    // A failure is not cached: once the key is back (rotation never removes it here), the
    // same bad token still fails, and a good token is fine.
    let expired = dev.token().expired().build();
    assert_eq!(err(&v, &expired).await, ValidationError::Expired);
    assert_eq!(err(&v, &expired).await, ValidationError::Expired);
    assert!(v.validate(&dev.token().build()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_validations_with_a_new_kid_make_one_fetch() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    dev.rotate_keys();
    dev.reset_counters();
    let token = dev.token().build();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (v, t) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&t).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(dev.requests(Endpoint::Jwks), 1);
    assert_eq!(dev.requests(Endpoint::OpenIdConfiguration), 0, "an unknown kid re-reads keys only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_flood_stays_within_the_refresh_bound() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    dev.reset_counters();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let v = v.clone();
            let token = dev.token().kid(Some(&format!("attacker-kid-{i}"))).build();
            tokio::spawn(async move { v.validate(&token).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err(), ValidationError::UnknownKey);
    }
    assert_eq!(dev.requests(Endpoint::Jwks), 1, "one refresh per minimum interval");
    // Tokens that do not look right (wrong audience) never trigger a refresh at all.
    let fresh = validator(&dev);
    fresh.warm_up().await.unwrap();
    dev.reset_counters();
    let wrong_aud = dev.token().kid(Some("another-kid")).audience("api://other").build();
    assert_eq!(err(&fresh, &wrong_aud).await, ValidationError::UnknownKey);
    let wrong_iss = dev.token().kid(Some("another-kid")).issuer("https://evil.example.com/").build();
    assert_eq!(err(&fresh, &wrong_iss).await, ValidationError::UnknownKey);
    assert_eq!(dev.requests(Endpoint::Jwks), 0);
}

#[tokio::test]
async fn endpoint_down_keeps_last_known_good_keys() {
    let dev = tenant().await;
    let v = validator(&dev);
    let token = dev.token().build();
    assert!(v.validate(&token).await.is_ok());
    dev.inject(Endpoint::Jwks, Fault::Status(500));
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
    assert!(v.jwks().refresh().await.is_err());
    let fresh_token = dev.token().build();
    assert!(v.validate(&fresh_token).await.is_ok(), "old keys still validate");
    assert_eq!(v.jwks().key_count(), 1);
}

#[tokio::test]
async fn garbage_or_oversized_jwks_never_replaces_keys() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    let generation = v.jwks().generation();
    for fault in [
        Fault::Body("<html>oops</html>".into()),
        Fault::Body(r#"{"keys":[]}"#.into()),
        Fault::Body(r#"{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}"#.into()),
        Fault::Oversized(600 * 1024),
        Fault::Status(307),
    ] {
        dev.inject(Endpoint::Jwks, fault.clone());
        let e = v.jwks().refresh().await.unwrap_err();
        match fault {
            Fault::Oversized(_) => {
                assert!(
                    matches!(&e, JwksError::Http { source, .. } if source.kind() == crate::HttpErrorKind::TooLarge),
                    "{e:?}"
                );
            }
            Fault::Status(_) => {
                assert!(matches!(e, JwksError::Status { status: 307, .. } | JwksError::Http { .. }), "{e:?}");
            }
            _ => assert!(matches!(e, JwksError::InvalidDocument { .. } | JwksError::NoUsableKeys { .. }), "{e:?}"),
        }
        assert_eq!(v.jwks().generation(), generation);
        assert!(v.validate(&dev.token().build()).await.is_ok());
    }
    dev.clear_fault(Endpoint::Jwks);
    let many: Vec<_> = (0..150).map(|i| json!({"kty":"RSA","kid":format!("k{i}"),"n":"AQAB","e":"AQAB"})).collect();
    dev.inject(Endpoint::Jwks, Fault::Body(json!({ "keys": many }).to_string()));
    assert!(matches!(v.jwks().refresh().await, Err(JwksError::TooManyKeys { count: 150, max: 100, .. })));
    assert!(v.validate(&dev.token().build()).await.is_ok());
}

#[tokio::test]
async fn cold_start_without_keys_fails_closed_and_backs_off() {
    let dev = tenant().await;
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(500));
    let v = validator(&dev);
    let token = dev.token().build();
    assert_eq!(err(&v, &token).await, ValidationError::KeysUnavailable);
    assert!(ValidationError::KeysUnavailable.is_server_error());
    assert_eq!(err(&v, &token).await, ValidationError::KeysUnavailable);
    assert_eq!(dev.requests(Endpoint::OpenIdConfiguration), 1, "retries wait for the retry interval");
    assert!(matches!(v.warm_up().await, Err(JwksError::Status { status: 500, .. })));
    // Garbage metadata is also a failure, and the error names the document.
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Body("nope".into()));
    let v2 = validator(&dev);
    assert!(matches!(v2.warm_up().await, Err(JwksError::InvalidDocument { document: "OpenID configuration", .. })));
    dev.clear_fault(Endpoint::OpenIdConfiguration);
    let v3 = validator(&dev);
    v3.warm_up().await.unwrap();
    assert!(v3.validate(&token).await.is_ok());
}

#[tokio::test]
async fn discovery_issuer_must_belong_to_the_authority() {
    let dev = tenant().await;
    let doc = json!({
        "issuer": format!("{}/{OTHER_TENANT}/v2.0", dev.base_url()),
        "jwks_uri": dev.jwks_url(),
    });
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Body(doc.to_string()));
    let v = validator(&dev);
    assert!(matches!(v.warm_up().await, Err(JwksError::IssuerMismatch { .. })));
}

#[tokio::test]
async fn key_rotation_is_followed() {
    let dev = tenant().await;
    let v = validator(&dev);
    let before = dev.token().build();
    assert!(v.validate(&before).await.is_ok());
    let old = dev.active_kid();
    let new = dev.rotate_keys();
    assert_ne!(old, new);
    let after = dev.token().build();
    assert!(v.validate(&after).await.is_ok(), "unknown kid triggers a refresh");
    assert!(v.validate(&before).await.is_ok(), "old key still published");
    assert_eq!(v.jwks().key_count(), 2);
}

#[tokio::test]
async fn app_specific_signing_keys() {
    let dev = tenant().await;
    dev.add_app_signing_key(dev.api_client_id());
    let token = dev.token().signed_with_app_key(dev.api_client_id()).build();
    let plain = validator(&dev);
    assert_eq!(err(&plain, &token).await, ValidationError::UnknownKey);
    let app = TokenValidator::new(dev.config_builder().app_specific_signing_keys(true).build().unwrap());
    assert!(app.validate(&token).await.is_ok());
    assert!(app.validate(&dev.token().build()).await.is_ok(), "tenant keys are published too");
}

#[tokio::test]
async fn conditional_get_reuses_keys() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    let generation = v.jwks().generation();
    v.jwks().refresh().await.unwrap();
    assert_eq!(v.jwks().generation(), generation, "a 304 keeps the key set");
    assert_eq!(dev.requests(Endpoint::Jwks), 2);
}

#[tokio::test]
async fn graph_tokens_with_a_nonce_are_diagnosed() {
    let dev = tenant().await;
    let v = validator(&dev);
    let graph = dev.token().audience("https://graph.microsoft.com").header("nonce", "abc").build();
    let e = err(&v, &graph).await;
    assert_eq!(v.diagnose(&graph, &e), Some(Diagnostic::TokenForMicrosoftGraph));
}

#[tokio::test]
async fn errors_never_echo_token_content() {
    let dev = tenant().await;
    let v = validator(&dev);
    let canary = "CANARY-7f3a";
    let tokens = [
        dev.token().audience(canary).build(),
        dev.token().issuer(canary).build(),
        dev.token().kid(Some(canary)).build(),
        dev.token().claim("exp", canary).build(),
        format!("{canary}.{canary}.{canary}"),
    ];
    for t in tokens {
        let e = err(&v, &t).await;
        for text in [e.to_string(), format!("{e:?}"), e.description().to_owned()] {
            assert!(!text.contains(canary), "{text}");
        }
    }
}

#[tokio::test]
async fn garbage_never_panics_and_is_always_a_client_error() {
    use base64::Engine;
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let good = dev.token().build();
    let pieces: Vec<String> = good.split('.').map(str::to_owned).collect();
    let jsons = [
        "{}",
        "[]",
        "null",
        "1",
        "\"s\"",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"RS256\",\"kid\":{}}",
        "{\"exp\":1e400}",
        "{\"aud\":[[]]}",
        "{\"a\":\"\\ud800\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"crit\":[]}",
        "{\"exp\":-1,\"nbf\":1e20}",
    ];
    for i in 0..3000 {
        let token = match i % 5 {
            0 => (0..(next() % 300)).map(|_| char::from(32 + (next() % 95) as u8)).collect::<String>(),
            1 => format!(
                "{}.{}.{}",
                b64(jsons[(next() % 12) as usize].as_bytes()),
                b64(jsons[(next() % 12) as usize].as_bytes()),
                pieces[2]
            ),
            2 => {
                let mut bytes = good.clone().into_bytes();
                let at = (next() as usize) % bytes.len();
                bytes[at] = b"AZaz09-_.=+/ \x00"[(next() % 14) as usize];
                String::from_utf8_lossy(&bytes).into_owned()
            }
            3 => format!(
                "{}.{}.{}",
                pieces[0],
                b64(&(0..(next() % 64)).map(|_| next() as u8).collect::<Vec<_>>()),
                pieces[2]
            ),
            _ => ".".repeat((next() % 5) as usize),
        };
        if token == good {
            continue;
        }
        match v.validate(&token).await {
            Ok(_) => panic!("accepted a mutated token: {token:.60}"),
            Err(e) => assert!(!e.is_server_error(), "{e:?}"),
        }
    }
}

#[tokio::test]
async fn background_refresh_follows_rotation_without_any_request() {
    let dev = tenant().await;
    let v =
        TokenValidator::new(dev.config_builder().jwks_refresh_interval(Duration::from_millis(200)).build().unwrap());
    v.warm_up().await.unwrap();
    let old = dev.active_kid();
    let new = dev.rotate_keys();
    assert!(dev.retire_key(&old));
    // No token is validated meanwhile: only the background task can notice the new key set.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while v.jwks().key_ids() != [new.clone()] {
        assert!(std::time::Instant::now() < deadline, "the background refresh never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dev.requests(Endpoint::Jwks) >= 2);
    assert!(dev.requests(Endpoint::OpenIdConfiguration) >= 2, "the interval also re-reads discovery");
}

#[tokio::test]
async fn static_jwks_from_a_file_needs_no_network() {
    let dev = tenant().await;
    let dir = std::env::temp_dir().join(format!("azad-static-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, dev.jwks_json()).unwrap();
    let jwks = StaticJwks::from_file(&path, dev.issuer()).unwrap();
    let v = TokenValidator::new(dev.config_builder().static_jwks(jwks).build().unwrap());
    assert!(v.validate(&dev.token().build()).await.is_ok());
    assert_eq!(err(&v, &dev.token().v1().build()).await, ValidationError::InvalidIssuer, "only the fixed issuer");
    assert_eq!(dev.total_requests(), 0);
    assert!(StaticJwks::from_file(dir.join("missing.json"), "x").unwrap_err().to_string().contains("static_jwks"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A rendezvous inside [`TokenValidator::validate_inner`]: the validation signals `reached`
/// after its checks passed, then waits for `release` before it inserts into the cache.
#[derive(Default)]
pub(super) struct Pause {
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Pause {
    pub(super) async fn hold(&self) {
        self.reached.notify_one();
        self.release.notified().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_retired_during_a_validation_never_serves_from_the_cache() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    let retired = dev.active_kid();
    let forged_before_revocation = dev.token().build();
    let pause = Arc::new(Pause::default());
    *v.inner.after_check.lock().unwrap() = Some(pause.clone());

    // The validation verifies the token with the old key set, then stalls before caching it.
    let in_flight = tokio::spawn({
        let (v, t) = (v.clone(), forged_before_revocation.clone());
        async move { v.validate(&t).await }
    });
    pause.reached.notified().await;
    *v.inner.after_check.lock().unwrap() = None;

    // Emergency revocation: the key is removed and the key set refreshed while it is stalled.
    let before = v.jwks().generation();
    dev.rotate_keys();
    assert!(dev.retire_key(&retired));
    v.jwks().refresh().await.unwrap();
    assert!(v.jwks().generation() > before, "removing a key withdraws trust");

    pause.release.notify_one();
    assert!(in_flight.await.unwrap().is_ok(), "it began before the revocation");
    // From now on the retired key's token is refused: the entry written by the stalled
    // validation carries the old generation and is never served.
    assert!(v.try_cached(&forged_before_revocation).is_none());
    assert_eq!(err(&v, &forged_before_revocation).await, ValidationError::UnknownKey);
    let fresh = dev.token().build();
    assert!(v.validate(&fresh).await.is_ok());
}

#[tokio::test]
async fn adding_a_key_keeps_the_generation_and_the_cache() {
    let dev = tenant().await;
    let v = validator(&dev);
    let token = dev.token().build();
    v.validate(&token).await.unwrap();
    let generation = v.jwks().generation();
    dev.rotate_keys();
    v.jwks().refresh().await.unwrap();
    assert_eq!(v.jwks().key_count(), 2);
    assert_eq!(v.jwks().generation(), generation, "a new key withdraws no trust");
    assert!(v.try_cached(&token).is_some(), "tokens of the kept key stay cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retired_key_is_accepted_under_concurrent_rotation() {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    // Epoch counter: bumped after each swap that retires a key has been published.
    let epoch = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // (token, epoch after which its key is retired)
    let retired: Arc<std::sync::Mutex<Vec<(String, usize)>>> = Arc::default();
    let live: Arc<std::sync::Mutex<Vec<String>>> = Arc::new(std::sync::Mutex::new(vec![dev.token().build()]));
    let violations = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (v, epoch, stop, retired, live, violations) =
                (v.clone(), epoch.clone(), stop.clone(), retired.clone(), live.clone(), violations.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Acquire) {
                    i += 1;
                    let started_in = epoch.load(Ordering::Acquire);
                    let old = retired.lock().unwrap().get(i % 7).cloned();
                    if let Some((token, retired_at)) = old {
                        let ok = v.validate(&token).await.is_ok();
                        // Accepted by a validation that began after the retirement was published.
                        if ok && started_in >= retired_at {
                            violations.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let current = live.lock().unwrap().last().cloned();
                    if let Some(token) = current {
                        let _ = v.validate(&token).await;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    for _ in 0..12 {
        let old_kid = dev.active_kid();
        dev.rotate_keys();
        v.jwks().refresh().await.unwrap();
        // Tokens of the new key, validated (and cached) while the old one is still published.
        live.lock().unwrap().push(dev.token().build());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let old_token = live.lock().unwrap().iter().rev().nth(1).cloned().unwrap();
        assert!(dev.retire_key(&old_kid));
        v.jwks().refresh().await.unwrap();
        let now = epoch.fetch_add(1, Ordering::AcqRel) + 1;
        retired.lock().unwrap().push((old_token, now));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Release);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(violations.load(Ordering::Relaxed), 0, "a retired key's token was accepted after its removal");
    assert!(!retired.lock().unwrap().is_empty());
}

/// A validator whose failed fetches are retried after 50 ms (doubling).
fn quick_retry(dev: &DevTenant) -> TokenValidator {
    TokenValidator::new(dev.config_builder().jwks_retry_interval(Duration::from_millis(50)).build().unwrap())
}

/// Waits (bounded) until `f` is true.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_missing_v1_document_fails_only_v1_tokens_until_it_returns() {
    for fault in [Fault::Status(404), Fault::Status(503), Fault::Body("garbage".into())] {
        let dev = tenant().await;
        dev.inject(Endpoint::OpenIdConfigurationV1, fault.clone());
        let v = quick_retry(&dev);
        // The v2.0 family loaded: its tokens validate.
        assert!(v.validate(&dev.token().build()).await.is_ok(), "{fault:?}");
        assert!(!v.jwks().is_healthy());
        // v1.0 tokens wait for their own document: an outage (503), not a bad token.
        let v1 = dev.token().v1().build();
        assert_eq!(err(&v, &v1).await, ValidationError::KeysUnavailable, "{fault:?}");
        // The document comes back: the background retry picks it up with no request and no restart.
        dev.clear_fault(Endpoint::OpenIdConfigurationV1);
        eventually("the v1.0 family loads", async || v.jwks().is_healthy()).await;
        assert!(v.validate(&v1).await.is_ok(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_v1_document_lost_after_loading_keeps_its_last_known_good_issuer() {
    let dev = tenant().await;
    let v = validator(&dev);
    let v1 = dev.token().v1().build();
    assert!(v.validate(&v1).await.is_ok());
    dev.inject(Endpoint::OpenIdConfigurationV1, Fault::Status(500));
    v.jwks().refresh().await.unwrap();
    assert!(v.validate(&dev.token().v1().build()).await.is_ok());
}

#[tokio::test]
async fn app_specific_keys_down_fail_only_the_tokens_that_need_them() {
    let dev = tenant().await;
    dev.add_app_signing_key(dev.api_client_id());
    dev.inject(Endpoint::AppSpecificJwks, Fault::Status(500));
    let v = TokenValidator::new(
        dev.config_builder()
            .app_specific_signing_keys(true)
            .jwks_retry_interval(Duration::from_millis(50))
            .build()
            .unwrap(),
    );
    assert!(v.validate(&dev.token().build()).await.is_ok(), "tenant keys loaded");
    let app_signed = dev.token().signed_with_app_key(dev.api_client_id()).build();
    assert_eq!(err(&v, &app_signed).await, ValidationError::KeysUnavailable);
    dev.clear_fault(Endpoint::AppSpecificJwks);
    eventually("app-specific keys load", async || v.jwks().is_healthy()).await;
    assert!(v.validate(&app_signed).await.is_ok());
}

#[tokio::test]
async fn a_failed_cold_start_recovers_in_the_background_with_back_off() {
    let dev = tenant().await;
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
    let v = quick_retry(&dev);
    let token = dev.token().build();
    assert_eq!(err(&v, &token).await, ValidationError::KeysUnavailable);
    assert!(v.jwks().retry_after() >= Duration::from_secs(1));
    // Attempts are spaced by a doubling back-off: 50, 100, 200, 400 ms ... not one per request.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let attempts = dev.requests(Endpoint::OpenIdConfiguration);
    assert!((2..=6).contains(&attempts), "{attempts} attempts in 800 ms");
    for _ in 0..20 {
        assert_eq!(err(&v, &token).await, ValidationError::KeysUnavailable);
    }
    assert!(dev.requests(Endpoint::OpenIdConfiguration) <= attempts + 1, "requests do not add attempts");
    dev.clear_fault(Endpoint::OpenIdConfiguration);
    eventually("keys load with no request", async || v.jwks().key_count() > 0).await;
    assert!(v.validate(&token).await.is_ok());
}

#[tokio::test]
async fn an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dev = tenant().await;
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
    let v = quick_retry(&dev);
    let token = dev.token().build();
    for _ in 0..50 {
        assert_eq!(err(&v, &token).await, ValidationError::KeysUnavailable);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(dev.requests(Endpoint::OpenIdConfiguration) >= 2);
    dev.clear_fault(Endpoint::OpenIdConfiguration);
    eventually("keys load", async || v.jwks().key_count() > 0).await;
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("identity provider outage: retrying").count(), 1, "{log}");
    assert_eq!(log.matches("identity provider outage over").count(), 1, "{log}");
    assert!(!log.contains(&token), "never the token");
    assert!(!log.contains(" ERROR "), "a request during an outage is not an error line each: {log}");
}

#[tokio::test]
async fn a_key_published_during_an_outage_is_a_503_not_a_bad_token() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    dev.inject(Endpoint::Jwks, Fault::Status(503));
    dev.rotate_keys();
    let new_key = dev.token().build();
    assert_eq!(err(&v, &new_key).await, ValidationError::KeysUnavailable);
    // A wrong audience never triggers a refresh, outage or not: still a bad token.
    let wrong = dev.token().kid(Some("another-kid")).audience("api://other").build();
    assert_eq!(err(&v, &wrong).await, ValidationError::UnknownKey);
    dev.clear_fault(Endpoint::Jwks);
    v.jwks().refresh().await.unwrap();
    assert!(v.validate(&new_key).await.is_ok());
}

// Only plain signed JWT access tokens pass (issue 8). Every token below is genuinely signed by
// the tenant's published key: only its shape is wrong.

#[tokio::test]
async fn typ_must_name_a_jwt_access_token() {
    let dev = tenant().await;
    let v = validator(&dev);
    // No `typ`, `JWT` in any case, the media-type form, and RFC 9068's `at+jwt` pass.
    assert!(v.validate(&dev.token().without_header("typ").build()).await.is_ok());
    for typ in ["JWT", "jwt", "application/jwt", "Application/JWT", "at+jwt", "AT+JWT", "application/at+jwt"] {
        assert!(v.validate(&dev.token().header("typ", typ).build()).await.is_ok(), "{typ}");
    }
    for typ in [
        "",
        "JOSE",
        "JOSE+JSON",
        "JWS",
        "JWE",
        "id_token+jwt",
        "dpop+jwt",
        "logout+jwt",
        "secevent+jwt",
        "application/",
        "application/jose",
        "JWT ",
        " JWT",
        "JWT\u{0}",
        "jwt+at",
    ] {
        let token = dev.token().header("typ", typ).build();
        assert_eq!(err(&v, &token).await, ValidationError::InvalidTokenType, "{typ:?}");
    }
    // A `typ` that is not a string is a malformed header.
    let token = dev.token().header("typ", json!(["JWT"])).build();
    assert_eq!(err(&v, &token).await, ValidationError::Malformed(TokenPart::Header));
}

#[tokio::test]
async fn nested_compressed_or_encrypted_content_is_refused() {
    let dev = tenant().await;
    let v = validator(&dev);
    for (name, value, expected) in [
        ("cty", json!("JWT"), "cty"),
        ("cty", json!("application/json"), "cty"),
        ("cty", json!(null), "cty"),
        ("zip", json!("DEF"), "zip"),
        ("enc", json!("A256GCM"), "enc"),
    ] {
        let token = dev.token().header(name, value).build();
        assert_eq!(err(&v, &token).await, ValidationError::UnsupportedContent(expected), "{name}");
    }
    assert_eq!(dev.requests(Endpoint::Jwks), 0, "refused before any key is fetched");
}

#[tokio::test]
async fn header_and_claims_must_be_unicode_json_text() {
    use crate::error::JsonTextError::{NotUtf8, TooDeep, UnpairedSurrogate};
    let dev = tenant().await;
    let v = validator(&dev);
    let kid = dev.active_kid();
    let claims = serde_json::Value::Object(dev.token().claims()).to_string();
    // A valid claims set with one extra member whose value is `raw` (bytes, not text).
    let with_member = |raw: &[u8]| {
        let mut p = claims.trim_end_matches('}').as_bytes().to_vec();
        p.extend_from_slice(b",\"xms_extra\":");
        p.extend_from_slice(raw);
        p.push(b'}');
        p
    };
    let payload = |raw: &[u8]| dev.token().raw_payload(with_member(raw)).build();
    assert!(v.validate(&payload(b"\"fine\"")).await.is_ok());
    for (raw, expected) in [
        (&b"\"\xff\""[..], NotUtf8),
        (b"\"\xc3\x28\"", NotUtf8),
        (b"\"\xed\xa0\x80\"", NotUtf8),
        (b"\"\xf4\x90\x80\x80\"", NotUtf8),
        (br#""\ud800""#, UnpairedSurrogate),
        (br#""\udfff""#, UnpairedSurrogate),
        (br#"["\ud83d", "\ude00"]"#, UnpairedSurrogate),
        (br#"{"\udbff":1}"#, UnpairedSurrogate),
    ] {
        let token = payload(raw);
        assert_eq!(err(&v, &token).await, ValidationError::InvalidJsonText(TokenPart::Payload, expected), "{raw:?}");
    }
    // A surrogate pair is Unicode text.
    let pair = payload(br#""\ud83d\ude00""#);
    assert_eq!(v.validate(&pair).await.unwrap().get("xms_extra").unwrap(), "\u{1f600}");
    // The claims set nests at most 16 levels (the outer object is level 1).
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels - 1), "]".repeat(levels - 1));
    assert!(v.validate(&payload(nested(16).as_bytes())).await.is_ok());
    let deep = payload(nested(17).as_bytes());
    assert_eq!(err(&v, &deep).await, ValidationError::InvalidJsonText(TokenPart::Payload, TooDeep));
    let deep_claim = dev.token().claim("xms_deep", (0..20).fold(json!(1), |v, _| json!({ "a": v }))).build();
    assert_eq!(err(&v, &deep_claim).await, ValidationError::InvalidJsonText(TokenPart::Payload, TooDeep));
    // The header, likewise.
    let header = |raw: &[u8]| {
        let mut h = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{kid}","x":"#).into_bytes();
        h.extend_from_slice(raw);
        h.push(b'}');
        dev.token().raw_header(h).build()
    };
    assert!(v.validate(&header(b"\"fine\"")).await.is_ok());
    for (raw, expected) in [
        (&b"\"\xff\""[..], NotUtf8),
        (br#""\ud800""#, UnpairedSurrogate),
        (b"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", TooDeep),
    ] {
        assert_eq!(
            err(&v, &header(raw)).await,
            ValidationError::InvalidJsonText(TokenPart::Header, expected),
            "{raw:?}"
        );
    }
    // A byte-order mark is not JSON text either.
    let bom = dev.token().raw_payload([b"\xef\xbb\xbf".as_slice(), claims.as_bytes()].concat()).build();
    assert_eq!(err(&v, &bom).await, ValidationError::Malformed(TokenPart::Payload));
}

#[tokio::test]
async fn entra_tokens_carry_a_canonical_tenant_id() {
    let dev = tenant().await;
    let v = validator(&dev);
    let no_tid = dev.token().without_claim("tid").build();
    assert_eq!(err(&v, &no_tid).await, ValidationError::MissingClaim("tid"));
    let upper = dev.token().claim("tid", dev.tenant_id().to_uppercase()).build();
    assert_eq!(err(&v, &upper).await, ValidationError::InvalidTenantId);
    // Multi-tenant: an upper-case tid whose issuer names it the same way.
    let common = TokenValidator::new(dev.config_builder().tenant_id("common").build().unwrap());
    let upper_other = dev.token().tenant(OTHER_TENANT.to_uppercase()).build();
    assert_eq!(err(&common, &upper_other).await, ValidationError::InvalidTenantId);
    let mixed = dev.token().tenant(OTHER_TENANT.replacen('a', "A", 1)).build();
    assert_eq!(err(&common, &mixed).await, ValidationError::InvalidTenantId);
    assert!(common.validate(&dev.token().tenant(OTHER_TENANT).build()).await.is_ok());
}

#[tokio::test]
async fn entra_token_version_must_match_its_issuer() {
    let dev = tenant().await;
    let v = validator(&dev);
    // A v2.0 issuer with `ver` 1.0, a v1.0 issuer with `ver` 2.0, and other values.
    assert_eq!(err(&v, &dev.token().claim("ver", "1.0").build()).await, ValidationError::VersionMismatch);
    assert_eq!(err(&v, &dev.token().v1().claim("ver", "2.0").build()).await, ValidationError::VersionMismatch);
    for ver in ["2", "2.00", "3.0", ""] {
        assert_eq!(err(&v, &dev.token().claim("ver", ver).build()).await, ValidationError::VersionMismatch, "{ver}");
    }
    assert_eq!(err(&v, &dev.token().without_claim("ver").build()).await, ValidationError::MissingClaim("ver"));
    assert_eq!(err(&v, &dev.token().v1().without_claim("ver").build()).await, ValidationError::MissingClaim("ver"));
    // Configured versions are still checked first.
    let v2_only = TokenValidator::new(dev.config_builder().token_versions(TokenVersions::V2Only).build().unwrap());
    assert_eq!(err(&v2_only, &dev.token().v1().claim("ver", "2.0").build()).await, ValidationError::VersionMismatch);
}

#[tokio::test]
async fn other_oidc_authorities_keep_their_own_tid_and_ver() {
    let dev = tenant().await;
    // The same keys and issuer, reached as a plain OpenID Connect provider (as for Azure AD B2C).
    let cfg = AzureAdConfig::builder().metadata_url(dev.metadata_url()).client_id(dev.api_client_id()).build().unwrap();
    assert!(!cfg.authority().is_entra());
    let v = TokenValidator::new(cfg);
    assert!(v.validate(&dev.token().build()).await.is_ok());
    assert!(
        v.validate(&dev.token().without_claim("tid").claim("ver", "1.0").without_claim("azp").build()).await.is_ok()
    );
    // The rest still holds.
    assert_eq!(err(&v, &dev.token().header("cty", "JWT").build()).await, ValidationError::UnsupportedContent("cty"));
}

#[tokio::test]
async fn id_tokens_are_not_access_tokens() {
    let dev = tenant().await;
    let v = validator(&dev);
    // An ID token for this API's own registration (a web app and API in one), shaped like the
    // dev tenant's and Entra's: aud = client id, no `azp`, a `nonce`. With the user's app roles
    // it carries `roles`: the scopes-or-roles rule alone would let it through.
    let id_token = |b: crate::dev::TokenBuilder| {
        b.audience(dev.api_client_id())
            .scopes(Vec::<String>::new())
            .without_claim("azp")
            .without_claim("azpacr")
            .claim("nonce", "n-0S6_WzA2Mj")
    };
    let with_roles = id_token(dev.token()).roles(["Admin"]).build();
    assert_eq!(err(&v, &with_roles).await, ValidationError::NotAnAccessToken);
    assert_eq!(
        v.diagnose(&with_roles, &ValidationError::NotAnAccessToken),
        Some(Diagnostic::IdTokenInsteadOfAccessToken)
    );
    let plain = id_token(dev.token()).build();
    assert_eq!(err(&v, &plain).await, ValidationError::NotAnAccessToken);
    // v1.0: no `appid`.
    let v1 = dev.token().v1().roles(["Admin"]).scopes(Vec::<String>::new()).without_claim("appid").build();
    assert_eq!(err(&v, &v1).await, ValidationError::NotAnAccessToken);
    // Tokens with neither scopes nor roles are still refused as such.
    let bare = dev.token().scopes(Vec::<String>::new()).build();
    assert_eq!(err(&v, &bare).await, ValidationError::NoScopesOrRoles);
    // The sign-in client's validator takes ID tokens.
    let ids = TokenValidator::for_id_tokens(
        dev.config_builder().insecure_allow_tokens_without_scopes_or_roles(true).build().unwrap(),
    );
    assert!(ids.validate(&plain).await.is_ok());
}

#[tokio::test]
async fn a_user_with_app_roles_and_no_scp_is_delegated() {
    let dev = tenant().await;
    let v = validator(&dev);
    let user = dev.token().scopes(Vec::<String>::new()).roles(["Tasks.Read.All"]).build();
    let claims = v.validate(&user).await.unwrap();
    assert!(!claims.is_app_only(), "a user's app roles do not make the token app-only");
    let app = dev.token().app_only().roles(["Tasks.Read.All"]).without_claim("idtyp").build();
    assert!(v.validate(&app).await.unwrap().is_app_only(), "oid == sub and no scp");
}

#[tokio::test]
async fn new_rejections_are_client_errors_with_fixed_descriptions() {
    use crate::error::JsonTextError;
    for e in [
        ValidationError::InvalidJsonText(TokenPart::Payload, JsonTextError::NotUtf8),
        ValidationError::InvalidTokenType,
        ValidationError::UnsupportedContent("cty"),
        ValidationError::InvalidTenantId,
        ValidationError::VersionMismatch,
        ValidationError::NotAnAccessToken,
    ] {
        assert_eq!(e.error_code(), Some("invalid_token"));
        assert!(!e.is_server_error());
        assert!(!e.description().is_empty());
    }
}

/// Property test over the whole pipeline: genuine tokens with random edits (bytes of any
/// segment, header or claims members spliced in and then genuinely re-signed) are never
/// accepted unless untouched, never panic, and are never a server-side error. Bounded (256
/// cases) so CI stays fast.
#[test]
fn mutated_and_resigned_tokens_are_client_errors() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dev = rt.block_on(tenant());
    let v = validator(&dev);
    rt.block_on(v.warm_up()).unwrap();
    let good = dev.token().build();
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(good.split('.').next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::Value::Object(dev.token().claims()).to_string();
    const SPLICES: &[&str] = &[
        r#","cty":"JWT""#,
        r#","typ":"JOSE""#,
        r#","zip":"DEF""#,
        r#","tid":"ABC""#,
        r#","ver":"1.0""#,
        r#","x":"\ud800""#,
        r#","x":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]"#,
        ",\"x\":\"\u{a0}\"",
        "\\",
        "\"",
        "}",
        "{",
        ",",
    ];
    let strategy = (0u8..3, any::<prop::sample::Index>(), any::<u8>(), 0..SPLICES.len(), any::<prop::sample::Index>());
    let mut runner = TestRunner::new(Config { cases: 256, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |(kind, at, byte, splice, splice_at)| {
            let token = match kind {
                // A byte of the compact token changed (the signature no longer matches).
                0 => {
                    let mut bytes = good.clone().into_bytes();
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                // A member spliced into the header, and the result genuinely signed.
                1 => {
                    let mut h = header.clone();
                    let i = splice_at.index(h.len());
                    if h.is_char_boundary(i) {
                        h.insert_str(i, SPLICES[splice]);
                    }
                    dev.sign_raw(&h, &claims)
                }
                // Likewise in the claims set.
                _ => {
                    let mut c = claims.clone().into_bytes();
                    let i = splice_at.index(c.len());
                    c.splice(i..i, SPLICES[splice].bytes());
                    c.insert(at.index(c.len() + 1), byte);
                    dev.sign_raw_bytes(header.as_bytes(), &c)
                }
            };
            match rt.block_on(v.validate(&token)) {
                // Edited without a new signature: only the genuine token passes.
                Ok(_) if kind == 0 => prop_assert_eq!(&token, &good, "a tampered token was accepted"),
                // Edited and re-signed: harmless edits pass, but never one of the refused shapes.
                Ok(c) => {
                    let mut parts = token.split('.');
                    let h = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
                    let h: serde_json::Value = serde_json::from_slice(&h).unwrap();
                    for member in ["cty", "zip", "enc"] {
                        prop_assert!(h.get(member).is_none(), "{}", member);
                    }
                    prop_assert!(h.get("typ").is_none_or(|t| t == "JWT"));
                    prop_assert_eq!(c.tenant_id(), Some(dev.tenant_id()));
                    prop_assert_eq!(c.version(), Some("2.0"));
                    // The claims set was UTF-8 JSON text.
                    let p = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
                    prop_assert!(serde_json::from_slice::<serde_json::Value>(&p).is_ok());
                }
                Err(e) => {
                    prop_assert!(!e.is_server_error(), "{:?}", e);
                    prop_assert_eq!(e.error_code(), Some("invalid_token"));
                }
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn without_keys_a_token_that_can_never_be_valid_is_still_a_401() {
    let dev = tenant().await;
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
    let v = validator(&dev);
    assert_eq!(err(&v, &dev.token().expired().build()).await, ValidationError::Expired);
    let graph = dev.token().audience("00000003-0000-0000-c000-000000000000").build();
    assert_eq!(err(&v, &graph).await, ValidationError::InvalidAudience);
    assert_eq!(err(&v, &dev.token().tenant(OTHER_TENANT).build()).await, ValidationError::InvalidIssuer);
    // A token that may well be valid waits for the keys.
    assert_eq!(err(&v, &dev.token().build()).await, ValidationError::KeysUnavailable);
}

#[tokio::test]
async fn a_client_and_a_role_must_be_named_not_just_present() {
    let dev = tenant().await;
    let v = validator(&dev);
    let empty_role = dev.token().scopes(Vec::<String>::new()).claim("roles", json!([""])).build();
    assert_eq!(err(&v, &empty_role).await, ValidationError::NoScopesOrRoles);
    assert_eq!(err(&v, &dev.token().claim("azp", "").build()).await, ValidationError::NotAnAccessToken);
    assert_eq!(err(&v, &dev.token().v1().claim("appid", "").build()).await, ValidationError::NotAnAccessToken);
    // A v2.0 token names its client with azp; appid alone is the v1.0 form.
    let v2_with_appid = dev.token().without_claim("azp").claim("appid", dev.client_app_id()).build();
    assert_eq!(err(&v, &v2_with_appid).await, ValidationError::NotAnAccessToken);
}

/// The validated-token cache holds at most its capacity, however many distinct valid tokens
/// arrive (a flood keeps the memory flat), and every token it still holds is served.
#[tokio::test]
async fn the_validated_token_cache_is_bounded_by_its_capacity() {
    let dev = tenant().await;
    let v = TokenValidator::new(dev.config_builder().validated_token_cache_capacity(64).build().unwrap());
    let tokens: Vec<String> = (0..300).map(|_| dev.token().build()).collect();
    for t in &tokens {
        v.validate(t).await.unwrap();
    }
    let cached = v.inner.cache.as_ref().unwrap().entry_count();
    assert!(cached <= 64, "{cached} entries for a capacity of 64");
    assert!(cached > 0);
    let served = tokens.iter().filter(|t| v.try_cached(t).is_some()).count();
    assert_eq!(u64::try_from(served).unwrap(), cached, "every entry still held serves its token");
    // Evicted tokens are validated again, in full.
    for t in &tokens {
        assert!(v.validate(t).await.is_ok());
    }
}

/// A cached entry keeps one copy of the payload (the token's): the claims without a typed
/// accessor are read from the token and are the ones an uncached validation reads.
#[tokio::test]
async fn cached_claims_read_untyped_members_from_the_token() {
    let dev = tenant().await;
    let v = validator(&dev);
    let token = dev.token().claim("ctry", "NZ").claim("xms_tdbr", json!({"region": "EU", "n": [1, 2]})).build();
    let cached = v.validate(&token).await.unwrap();
    let uncached = v.validate_at(&token, SystemTime::now()).await.unwrap();
    assert_eq!(cached.get("ctry"), Some(&json!("NZ")));
    assert_eq!(cached.get("xms_tdbr"), uncached.get("xms_tdbr"));
    assert_eq!(*cached, uncached);
    assert_eq!(serde_json::to_value(&*cached).unwrap(), serde_json::to_value(&uncached).unwrap());
    // The same entry on a hit.
    assert!(Arc::ptr_eq(&cached, &v.try_cached(&token).unwrap().0));
    let hot = v.try_cached(&token).unwrap().0;
    assert!(from_cache(&v, &token, &hot));
    assert_eq!(hot.get("xms_tdbr"), uncached.get("xms_tdbr"), "a thread's copy reads them too");
    assert!(!format!("{cached:?}").contains(token.as_str()), "Debug never shows the token");
}

/// The cache key only picks a slot: an entry whose slot another token maps to (forced here by
/// storing it under that token's key) never serves the other token, and dropping the other
/// token's stale entry leaves it in place.
#[tokio::test]
async fn a_slot_serves_only_the_token_it_holds() {
    let dev = tenant().await;
    let v = validator(&dev);
    let (a, b) = (dev.token().build(), dev.token().build());
    let claims_a = v.validate(&a).await.unwrap();
    let cache = v.inner.cache.as_ref().unwrap();
    let generation = v.jwks().generation();
    let entry_a = cache.get(cache.key(a.as_bytes())).unwrap();
    cache.insert(cache.key(b.as_bytes()), entry_a);
    let in_b_slot = cache.get(cache.key(b.as_bytes())).unwrap();
    assert!(!in_b_slot.serves(b.as_bytes(), generation, 0), "another token's entry never serves");
    assert!(v.try_cached(&b).is_none());
    cache.invalidate(cache.key(b.as_bytes()), &b);
    assert!(cache.get(cache.key(b.as_bytes())).is_some(), "b's invalidation leaves a's entry");
    let claims_b = v.validate(&b).await.unwrap();
    assert!(!Arc::ptr_eq(&claims_a, &claims_b));
    assert!(from_cache(&v, &b, &v.try_cached(&b).unwrap().0));
}

/// The key parsed once into aws-lc (the validator's path) and `jsonwebtoken::crypto::verify`
/// (the key built per call) give the same answer for a genuine signature, a changed bit, a
/// truncated signature, a signature over another message and text that is not base64url.
#[tokio::test]
async fn the_parsed_key_verifies_exactly_as_jsonwebtoken_does() {
    let dev = tenant().await;
    let v = validator(&dev);
    v.warm_up().await.unwrap();
    let snapshot = v.jwks().snapshot().await.unwrap();
    let token = dev.token().build();
    let other = dev.token().build();
    let segments = jwt::split(&token).unwrap();
    let header_json = jwt::decode_segment(segments.header, TokenPart::Header).unwrap();
    let kid = JoseHeader::parse(&header_json).unwrap().kid.unwrap().into_owned();
    let candidates = snapshot.keys.get(&kid).unwrap();
    assert!(candidates.iter().all(|k| !k.parsed.is_empty()), "every key parsed for RS256");
    let other_signature = other.rsplit_once('.').unwrap().1.to_owned();
    let mut flipped = segments.signature.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases = [
        segments.signature.to_owned(),
        flipped,
        segments.signature[..segments.signature.len() - 4].to_owned(),
        other_signature,
        "not*base64".to_owned(),
        String::new(),
    ];
    for signature in &cases {
        let mut s = segments;
        s.signature = signature;
        let ours = verify_with_candidates(candidates, SigningAlgorithm::RS256, &s).map(|_| ());
        let theirs = match jsonwebtoken::crypto::verify(
            signature,
            s.signing_input.as_bytes(),
            &candidates[0].key,
            jsonwebtoken::Algorithm::RS256,
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ValidationError::InvalidSignature),
            Err(_) => Err(ValidationError::Malformed(TokenPart::Signature)),
        };
        assert_eq!(ours, theirs, "signature {signature:?}");
    }
    assert!(verify_with_candidates(candidates, SigningAlgorithm::RS256, &segments).is_ok());
}

/// Whether `claims` came from `v`'s validated-token cache for `token` (the shared entry or this
/// thread's copy of it), not from a new validation.
fn from_cache(v: &TokenValidator, token: &str, claims: &Arc<Claims>) -> bool {
    let cache = v.inner.cache.as_ref().unwrap();
    cache.holds(cache.key(token.as_bytes()), claims)
}

/// A token served twice on one thread gets that thread's own copy (so cores do not share its
/// reference counts), and the copy keeps every check of the shared entry: another validator
/// never sees it, and it stops serving at `exp` and when the key set withdraws trust.
#[tokio::test]
async fn a_thread_copy_of_a_hot_token_keeps_every_check() {
    let dev = tenant().await;
    // The token first, then the clock: with no leeway, a clock read before minting could fall
    // in the second before the token's `nbf` (it did, once, in CI).
    let token = dev.token().expires_in(Duration::from_secs(600)).build();
    let clock = crate::clock::FixedClock::now();
    let v = TokenValidator::new(
        dev.config_builder().leeway(Duration::ZERO).build().unwrap().with_clock(Arc::new(clock.clone())),
    );
    let shared = v.validate(&token).await.unwrap();
    let key = v.inner.cache.as_ref().unwrap().key(token.as_bytes());
    assert!(Arc::ptr_eq(&shared, &v.try_cached(&token).unwrap().0), "first hit: the shared entry");
    let copy = v.try_cached(&token).unwrap().0;
    assert!(!Arc::ptr_eq(&shared, &copy), "second hit: this thread's copy");
    assert_eq!(*shared, *copy);
    assert!(v.inner.cache.as_ref().unwrap().is_hot_here(key));
    assert!(Arc::ptr_eq(&copy, &v.try_cached(&token).unwrap().0), "then the copy, every time");
    assert!(Arc::ptr_eq(&copy, &v.validate(&token).await.unwrap()));

    // Another validator (another audience) never sees this thread's copy.
    let other = TokenValidator::new(dev.config_builder().audience("api://someone-else").build().unwrap());
    assert!(other.try_cached(&token).is_none());
    assert_eq!(other.validate(&token).await.unwrap_err(), ValidationError::InvalidAudience);

    // Another thread starts from the shared entry.
    let (v2, t2) = (v.clone(), token.clone());
    let elsewhere = std::thread::spawn(move || v2.try_cached(&t2).unwrap().0).join().unwrap();
    assert!(Arc::ptr_eq(&shared, &elsewhere));

    // Expiry: the copy refuses once the clock passes exp.
    clock.advance(Duration::from_secs(601));
    assert!(v.try_cached(&token).is_none());
    assert_eq!(v.validate(&token).await.unwrap_err(), ValidationError::Expired);

    // Key set withdrawn: a hot copy of a token verified by the retired key stops serving.
    let fresh = dev.token().expires_in(Duration::from_secs(3600)).build();
    for _ in 0..3 {
        v.validate(&fresh).await.unwrap();
    }
    let fresh_key = v.inner.cache.as_ref().unwrap().key(fresh.as_bytes());
    assert!(v.inner.cache.as_ref().unwrap().is_hot_here(fresh_key));
    let retired = dev.active_kid();
    dev.rotate_keys();
    assert!(dev.retire_key(&retired));
    v.jwks().refresh().await.unwrap();
    assert!(v.try_cached(&fresh).is_none(), "the retired key's token is no longer served");
    assert_eq!(v.validate(&fresh).await.unwrap_err(), ValidationError::UnknownKey);
}

/// A thread that serves more users than it has places for copies keeps the copies it has: a
/// copy allocates (the claims and the token), and the old rule ("second hit among the last
/// few") copied on about a quarter of the hits of 9 to 32 users in random turn. Every hit is
/// still the cache's own entry or this thread's copy of it.
#[tokio::test]
async fn a_thread_serving_more_users_than_its_places_keeps_its_copies() {
    use super::token_cache::{COPIES, HOT_ENTRIES};
    let dev = tenant().await;
    let v = validator(&dev);
    for users in [HOT_ENTRIES + 1, 2 * HOT_ENTRIES, 4 * HOT_ENTRIES] {
        let tokens: Vec<String> = (0..users).map(|_| dev.token().build()).collect();
        for t in &tokens {
            v.validate(t).await.unwrap();
        }
        let cache = v.inner.cache.as_ref().unwrap();
        let before = COPIES.with(std::cell::Cell::get);
        // A fixed pseudo-random order (xorshift), the same on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let hits = 4_000;
        for _ in 0..hits {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let token = &tokens[(state % users as u64) as usize];
            let (claims, _) = v.try_cached(token).expect("a cached token");
            assert!(cache.holds(cache.key(token.as_bytes()), &claims), "served from the cache");
        }
        let copies = COPIES.with(std::cell::Cell::get) - before;
        assert!(copies * 50 <= hits, "{users} users: {copies} copies in {hits} hits (at most 2 %)");
        // And the places are used: a policy that never copied would pass the line above.
        let hot = tokens.iter().filter(|t| cache.is_hot_here(cache.key(t.as_bytes()))).count();
        assert!(hot >= HOT_ENTRIES / 2, "{users} users: {hot} hot copies on this thread");
    }
}
