//! Issuers, tenants and keys over real sockets: the statuses an API behind `AzureAdAuth`
//! answers for each cloud's real issuer forms and for a misconfigured authority.

use azad_axum::AzureAdAuth;
use azad_core::{AzureAdConfig, Cloud};
use azad_examples::quickstart;
use azad_tests::{CapturedLogs, DevTenant, Endpoint, http, serve};
use reqwest::StatusCode;

const TENANT_B: &str = "e4a1f7c2-3b5d-4c6e-8f9a-1b2c3d4e5f60";

async fn api(config: AzureAdConfig) -> String {
    let addr = serve(quickstart::router(AzureAdAuth::new(config))).await;
    format!("http://{addr}/api/claims")
}

async fn status(url: &str, token: &str) -> StatusCode {
    http().get(url).bearer_auth(token).send().await.unwrap().status()
}

/// China: v2.0 tokens issued by `login.partner.microsoftonline.cn` and v1.0 tokens by
/// `sts.chinacloudapi.cn` are served (200), a token of another tenant is 401.
#[tokio::test]
async fn china_tokens_of_both_versions_are_served() {
    let dev = DevTenant::builder().emulate_cloud(Cloud::China).extra_tenant(TENANT_B).start().await.unwrap();
    let url = api(dev.config()).await;
    assert_eq!(status(&url, &dev.token().build()).await, StatusCode::OK);
    assert_eq!(status(&url, &dev.token().v1().build()).await, StatusCode::OK);
    assert_eq!(status(&url, &dev.token().tenant(TENANT_B).build()).await, StatusCode::UNAUTHORIZED);
}

/// External ID: the tenant-id subdomain issuer is served.
#[tokio::test]
async fn external_id_tokens_are_served() {
    let dev = DevTenant::builder().emulate_external_id().start().await.unwrap();
    let url = api(dev.config()).await;
    assert_eq!(status(&url, &dev.token().build()).await, StatusCode::OK);
    assert_eq!(status(&url, &dev.token().v1().build()).await, StatusCode::UNAUTHORIZED);
}

/// An authority whose discovery names another cloud's issuer: 503 for every request, never a
/// token accepted or blamed, the JWKS never fetched, and one ERROR line naming both hosts.
#[tokio::test]
async fn issuer_of_another_cloud_is_503_and_one_clear_log_line() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let public = DevTenant::builder().emulate_cloud(Cloud::Public).start().await.unwrap();
    let config = AzureAdConfig::builder()
        .cloud(Cloud::China)
        .authority_origin(public.base_url())
        .tenant_id(public.tenant_id())
        .client_id(public.api_client_id())
        .build()
        .unwrap();
    let validator = azad_core::TokenValidator::new(config);
    for _ in 0..3 {
        assert_eq!(
            validator.validate(&public.token().build()).await.unwrap_err(),
            azad_core::ValidationError::KeysUnavailable
        );
    }
    let mismatch_lines = |text: &str| text.lines().filter(|l| l.contains("contradicts the configuration")).count();
    assert_eq!(mismatch_lines(&logs.text()), 1, "logged once, not per request:\n{}", logs.text());
    let text = logs.text();
    let error = text.lines().find(|l| l.contains("contradicts the configuration")).unwrap();
    assert!(error.contains("ERROR"), "{error}");
    assert!(
        error.contains("https://login.partner.microsoftonline.cn")
            && error.contains("https://login.microsoftonline.com"),
        "both hosts are named: {error}"
    );

    // Through the layer (its own validator): 503, and the keys are never fetched.
    let url = api(validator.config().clone()).await;
    assert_eq!(status(&url, &public.token().build()).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status(&url, &public.token().build()).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(public.requests(Endpoint::Jwks), 0);
    assert_eq!(mismatch_lines(&logs.text()), 2, "once for each validator:\n{}", logs.text());
}
