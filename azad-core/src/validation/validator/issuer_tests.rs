//! Issuers, tenants and keys, through the dev tenant: the configured tenant on every key
//! source, the issuer forms of each cloud, audiences, the unknown-kid refresh gate, several
//! keys under one kid, and hostile JWKS entries. Each test asserts the exact outcome.

use serde_json::json;

use std::time::Duration;

use super::*;
use crate::authority::Cloud;
use crate::dev::{DevTenant, Endpoint, Fault};
use crate::validation::jwks::StaticJwks;

/// The tenants of issue 8's example.
const TENANT_A: &str = "0b9d2c4e-5f1a-4e8b-9c3d-7a6e5f4d3c2b";
const TENANT_B: &str = "e4a1f7c2-3b5d-4c6e-8f9a-1b2c3d4e5f60";

async fn two_tenants() -> DevTenant {
    DevTenant::builder().tenant_id(TENANT_A).extra_tenant(TENANT_B).start().await.unwrap()
}

async fn err(v: &TokenValidator, token: &str) -> ValidationError {
    v.validate(token).await.expect_err("token must be rejected")
}

/// A configuration that names tenant A accepts tenant A's genuine tokens and refuses tenant
/// B's, as `InvalidIssuer`, whatever the key source.
#[tokio::test]
async fn configured_tenant_is_enforced_on_every_key_source() {
    let dev = two_tenants().await;
    dev.add_app_signing_key(dev.api_client_id());
    let base = dev.base_url().to_owned();
    let template = format!("{base}/{{tenantid}}/v2.0");
    let sources: Vec<(&str, AzureAdConfig, bool)> = vec![
        ("discovery", dev.config(), false),
        (
            "static JWKS, {tenantid} issuer",
            dev.config_builder().static_jwks(StaticJwks::from_json(dev.jwks_json(), &template)).build().unwrap(),
            false,
        ),
        (
            "static JWKS, exact issuers",
            dev.config_builder()
                .static_jwks(StaticJwks::from_json(dev.jwks_json(), dev.issuer()).with_issuer(dev.issuer_v1()))
                .build()
                .unwrap(),
            false,
        ),
        ("app-specific keys", dev.config_builder().app_specific_signing_keys(true).build().unwrap(), true),
        (
            "metadata URL of `organizations` with the {tenantid} issuer",
            AzureAdConfig::builder()
                .metadata_url(format!("{base}/organizations/v2.0/.well-known/openid-configuration"))
                .issuer(&template)
                .tenant_id(TENANT_A)
                .client_id(dev.api_client_id())
                .build()
                .unwrap(),
            false,
        ),
        (
            "metadata URL with an explicit issuer",
            AzureAdConfig::builder()
                .metadata_url(dev.metadata_url())
                .issuer(dev.issuer())
                .tenant_id(TENANT_A)
                .client_id(dev.api_client_id())
                .build()
                .unwrap(),
            false,
        ),
    ];
    for (source, cfg, app_key) in sources {
        let v = TokenValidator::new(cfg);
        let token = |tenant: &str| {
            let b = dev.token().tenant(tenant);
            if app_key { b.signed_with_app_key(dev.api_client_id()).build() } else { b.build() }
        };
        let claims = v.validate(&token(TENANT_A)).await.unwrap_or_else(|e| panic!("{source}: tenant A refused: {e}"));
        assert_eq!(claims.tenant_id(), Some(TENANT_A), "{source}");
        assert_eq!(err(&v, &token(TENANT_B)).await, ValidationError::InvalidIssuer, "{source}: tenant B");
        // Tenant B's token carrying tenant A's tid is refused as well.
        let lying = dev.token().tenant(TENANT_B).claim("tid", TENANT_A).build();
        assert_eq!(err(&v, &lying).await, ValidationError::InvalidIssuer, "{source}: tid of A, issuer of B");
    }
}

/// A configuration whose parts name different tenants fails at build().
#[tokio::test]
async fn contradicting_tenant_configurations_fail_at_build() {
    let dev = two_tenants().await;
    let base = dev.base_url().to_owned();
    let conflict = |r: Result<AzureAdConfig, crate::error::ConfigError>| match r {
        Err(crate::error::ConfigError::Conflict { field, other, .. }) => (field, other),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        conflict(
            dev.config_builder()
                .static_jwks(StaticJwks::from_json(dev.jwks_json(), format!("{base}/{TENANT_B}/v2.0")))
                .build()
        ),
        ("static_jwks", "tenant_id")
    );
    assert_eq!(
        conflict(
            AzureAdConfig::builder()
                .metadata_url(format!("{base}/{TENANT_B}/v2.0/.well-known/openid-configuration"))
                .tenant_id(TENANT_A)
                .client_id(dev.api_client_id())
                .build()
        ),
        ("metadata_url", "tenant_id")
    );
    assert_eq!(
        conflict(
            AzureAdConfig::builder()
                .metadata_url(format!("{base}/organizations/v2.0/.well-known/openid-configuration"))
                .issuer(format!("{base}/{TENANT_B}/v2.0"))
                .tenant_id(TENANT_A)
                .client_id(dev.api_client_id())
                .build()
        ),
        ("issuer", "tenant_id")
    );
    assert_eq!(
        conflict(dev.config_builder().authority(format!("{base}/{TENANT_B}/v2.0")).build()),
        ("authority", "tenant_id")
    );
}

/// China: the authority `login.chinacloudapi.cn` announces the issuer
/// `https://login.partner.microsoftonline.cn/{tid}/v2.0` and v1.0 tokens carry
/// `https://sts.chinacloudapi.cn/{tid}/`: both validate.
#[tokio::test]
async fn china_issuers_validate_in_both_versions() {
    let dev = DevTenant::builder().emulate_cloud(Cloud::China).start().await.unwrap();
    let v = TokenValidator::new(dev.config());
    assert_eq!(v.config().authority().cloud(), Some(Cloud::China));
    let v2 = v.validate(&dev.token().build()).await.unwrap();
    assert_eq!(v2.issuer(), format!("https://login.partner.microsoftonline.cn/{}/v2.0", dev.tenant_id()));
    let v1 = v.validate(&dev.token().v1().build()).await.unwrap();
    assert_eq!(v1.issuer(), format!("https://sts.chinacloudapi.cn/{}/", dev.tenant_id()));
    assert_eq!(dev.requests(Endpoint::OpenIdConfigurationV1), 0, "China's v1 issuer form is known");
    // The forms of other clouds, or the authority host itself, are refused.
    for iss in [
        format!("https://login.chinacloudapi.cn/{}/v2.0", dev.tenant_id()),
        format!("https://login.microsoftonline.com/{}/v2.0", dev.tenant_id()),
        format!("https://sts.windows.net/{}/", dev.tenant_id()),
        format!("{}/{}/v2.0", dev.base_url(), dev.tenant_id()),
    ] {
        assert_eq!(err(&v, &dev.token().issuer(&iss).build()).await, ValidationError::InvalidIssuer, "{iss}");
    }
}

/// US Government and the public cloud's aliases: the v2.0 issuer is the cloud's, v1.0 is
/// `sts.windows.net`.
#[tokio::test]
async fn us_government_and_public_aliases() {
    let gov = DevTenant::builder().emulate_cloud(Cloud::UsGovernment).start().await.unwrap();
    let v = TokenValidator::new(gov.config());
    assert!(v.validate(&gov.token().build()).await.unwrap().issuer().starts_with("https://login.microsoftonline.us/"));
    assert!(v.validate(&gov.token().v1().build()).await.unwrap().issuer().starts_with("https://sts.windows.net/"));

    let public = DevTenant::builder().emulate_cloud(Cloud::Public).start().await.unwrap();
    for alias in ["https://login.windows.net/", "https://login.microsoft.com/", "https://sts.windows.net/"] {
        let cfg = AzureAdConfig::builder()
            .instance(alias)
            .authority_origin(public.base_url())
            .tenant_id(public.tenant_id())
            .client_id(public.api_client_id())
            .build()
            .unwrap();
        let v = TokenValidator::new(cfg);
        let claims = v.validate(&public.token().build()).await.unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert!(claims.issuer().starts_with("https://login.microsoftonline.com/"), "{alias}");
    }
}

/// External ID: the authority is `{subdomain}.ciamlogin.com`, the issuer
/// `https://{tid}.ciamlogin.com/{tid}/v2.0`. No v1.0 issuer is documented: v1.0 tokens are refused.
#[tokio::test]
async fn external_id_issuer_is_on_a_tenant_id_subdomain() {
    let dev = DevTenant::builder().emulate_external_id().start().await.unwrap();
    let v = TokenValidator::new(dev.config());
    assert!(v.config().authority().is_external_id());
    let claims = v.validate(&dev.token().build()).await.unwrap();
    assert_eq!(claims.issuer(), format!("https://{0}.ciamlogin.com/{0}/v2.0", dev.tenant_id()));
    assert_eq!(err(&v, &dev.token().v1().build()).await, ValidationError::InvalidIssuer);
    let wrong_subdomain = dev.token().issuer(format!("https://azaddev.ciamlogin.com/{}/v2.0", dev.tenant_id())).build();
    assert_eq!(err(&v, &wrong_subdomain).await, ValidationError::InvalidIssuer);
}

/// An authority whose discovery announces another cloud's issuer fails with a clear
/// `IssuerHostMismatch` naming both hosts, and requests get `KeysUnavailable` (503), not a
/// guess.
#[tokio::test]
async fn issuer_of_another_cloud_at_discovery_is_a_clear_error() {
    let public = DevTenant::builder().emulate_cloud(Cloud::Public).start().await.unwrap();
    let cfg = AzureAdConfig::builder()
        .cloud(Cloud::China)
        .authority_origin(public.base_url())
        .tenant_id(public.tenant_id())
        .client_id(public.api_client_id())
        .build()
        .unwrap();
    let v = TokenValidator::new(cfg);
    let e = v.warm_up().await.unwrap_err();
    assert_eq!(
        e,
        JwksError::IssuerHostMismatch {
            url: v.config().authority().metadata_url(),
            expected: "https://login.partner.microsoftonline.cn".into(),
            announced: "https://login.microsoftonline.com".into(),
        }
    );
    assert!(e.is_configuration_error());
    assert_eq!(err(&v, &public.token().build()).await, ValidationError::KeysUnavailable);
    assert_eq!(public.requests(Endpoint::Jwks), 0, "keys of a refused authority are never fetched");
}

/// Keys on another origin than the authority's are not trusted unless configured.
#[tokio::test]
async fn jwks_on_another_origin_must_be_trusted_explicitly() {
    let dev = DevTenant::start().await.unwrap();
    // A second server publishing the same tenant's keys (another origin: another port).
    let keys = DevTenant::builder().tenant_id(dev.tenant_id()).start().await.unwrap();
    // Its v1.0 key set: keys without an `issuer` of their own (the other server's).
    let keys_url = format!("{}/{}/discovery/keys", keys.base_url(), keys.tenant_id());
    let doc = json!({"issuer": dev.issuer(), "jwks_uri": keys_url}).to_string();
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Body(doc));
    let v = TokenValidator::new(dev.config());
    assert_eq!(
        v.warm_up().await.unwrap_err(),
        JwksError::UntrustedJwksOrigin {
            url: dev.metadata_url(),
            jwks_uri: keys_url.clone(),
            expected: dev.base_url().to_owned(),
        }
    );
    assert_eq!(keys.requests(Endpoint::Jwks), 0);
    let trusting = TokenValidator::new(dev.config_builder().trusted_jwks_origin(keys.base_url()).build().unwrap());
    let token = keys.token().issuer(dev.issuer()).build();
    trusting.validate(&token).await.unwrap();
    assert_eq!(keys.requests(Endpoint::Jwks), 1);
}

/// An audience can be added without restating the defaults: `spn:{client id}` (old v1.0
/// tokens) next to the client id and `api://{client id}`.
#[tokio::test]
async fn audiences_can_be_added_to_the_defaults() {
    let dev = DevTenant::start().await.unwrap();
    let spn = format!("spn:{}", dev.api_client_id());
    let v1_spn = dev.token().v1().audience(&spn).build();
    assert_eq!(err(&TokenValidator::new(dev.config()), &v1_spn).await, ValidationError::InvalidAudience);
    let v = TokenValidator::new(dev.config_builder().add_audience(&spn).build().unwrap());
    assert!(v.validate(&v1_spn).await.is_ok());
    assert!(v.validate(&dev.token().build()).await.is_ok(), "client id still accepted");
    assert!(v.validate(&dev.token().v1().build()).await.is_ok(), "api://{{client id}} still accepted");
}

/// An unknown kid refreshes the keys only for a token that could be ours: Entra-shaped kid,
/// no `nonce`, our issuer, our tenant, our audience. Otherwise `UnknownKey` with no request.
#[tokio::test]
async fn unknown_kid_refreshes_only_for_tokens_that_could_be_ours() {
    let dev = two_tenants().await;
    let v = TokenValidator::new(dev.config_builder().jwks_min_refresh_interval(Duration::ZERO).build().unwrap());
    v.warm_up().await.unwrap();
    let fetches = || dev.requests(Endpoint::Jwks);
    assert_eq!(fetches(), 1);
    let forged = || dev.token().signed_with_unpublished_key();
    let not_ours = [
        ("kid with characters Entra does not use", forged().kid(Some("a.b:c=d+e/f")).build()),
        ("kid longer than Entra's", forged().kid(Some(&"k".repeat(65))).build()),
        ("nonce header (Microsoft Graph)", forged().header("nonce", "x").build()),
        ("foreign issuer", forged().issuer("https://login.microsoftonline.com/x/v2.0").build()),
        ("another tenant", forged().tenant(TENANT_B).build()),
        ("another audience", forged().audience("api://someone-else").build()),
        ("Microsoft Graph", forged().audience("00000003-0000-0000-c000-000000000000").build()),
    ];
    for (what, token) in not_ours {
        assert_eq!(err(&v, &token).await, ValidationError::UnknownKey, "{what}");
        assert_eq!(fetches(), 1, "{what}: no network call");
    }
    // A token that could be ours may refresh (and is then refused: the key is not published).
    assert_eq!(err(&v, &forged().build()).await, ValidationError::UnknownKey);
    assert_eq!(fetches(), 2);
}

/// Two different keys under one kid: tokens signed by either validate, whichever order the
/// JWKS lists them in, through discovery and through a static JWKS.
#[tokio::test]
async fn two_keys_under_one_kid_give_the_same_answer_in_any_order() {
    for first in [true, false] {
        let dev = DevTenant::start().await.unwrap();
        let v = TokenValidator::new(dev.config());
        let old = dev.token().build();
        assert!(v.validate(&old).await.is_ok());
        let kid = dev.active_kid();
        assert_eq!(dev.publish_second_key_under_active_kid(first), kid);
        let new = dev.token().build();
        let forged = dev.token().signed_with_unpublished_key().kid(Some(&kid)).build();

        let mut jwks: serde_json::Value = serde_json::from_str(&dev.jwks_json()).unwrap();
        let fresh = TokenValidator::new(dev.config());
        let forward = TokenValidator::new(
            dev.config_builder().static_jwks(StaticJwks::from_json(jwks.to_string(), dev.issuer())).build().unwrap(),
        );
        jwks["keys"].as_array_mut().unwrap().reverse();
        let backward = TokenValidator::new(
            dev.config_builder().static_jwks(StaticJwks::from_json(jwks.to_string(), dev.issuer())).build().unwrap(),
        );
        for (name, v) in [("discovery", &fresh), ("static", &forward), ("static, reversed", &backward)] {
            assert!(v.validate(&old).await.is_ok(), "{name}, first={first}: old key");
            assert!(v.validate(&new).await.is_ok(), "{name}, first={first}: second key");
            assert_eq!(err(v, &forged).await, ValidationError::InvalidSignature, "{name}, first={first}");
        }
    }
}

/// A JWKS entry with an empty or all-zero modulus, or other hostile numbers, is skipped; the
/// other keys still work, and nothing panics.
#[tokio::test]
async fn hostile_jwks_entries_are_skipped() {
    let dev = DevTenant::start().await.unwrap();
    let mut jwks: serde_json::Value = serde_json::from_str(&dev.jwks_json()).unwrap();
    let good = jwks["keys"][0].clone();
    let hostile = |n: &str, e: &str| {
        let mut k = good.clone();
        k["kid"] = "hostile".into();
        k["n"] = n.into();
        k["e"] = e.into();
        k
    };
    let entries = [hostile("", "AQAB"), hostile("AAAA", "AQAB"), hostile(good["n"].as_str().unwrap(), "AA")];
    jwks["keys"].as_array_mut().unwrap().splice(0..0, entries.clone());
    dev.inject(Endpoint::Jwks, Fault::Body(jwks.to_string()));
    let v = TokenValidator::new(dev.config());
    assert!(v.validate(&dev.token().build()).await.is_ok());
    assert_eq!(v.jwks().key_count(), 1);
    assert_eq!(
        err(&v, &dev.token().signed_with_unpublished_key().kid(Some("hostile")).build()).await,
        ValidationError::UnknownKey
    );
    // Only hostile entries: no usable key, a clean error.
    dev.inject(Endpoint::Jwks, Fault::Body(json!({ "keys": entries }).to_string()));
    let cold = TokenValidator::new(dev.config());
    assert!(matches!(cold.warm_up().await, Err(JwksError::NoUsableKeys { .. })));
}
