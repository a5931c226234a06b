//! The dev tenant over HTTPS: azad's validator and token client work against it unchanged,
//! trusting its CA through the configuration (never by turning verification off).

use azad_core::ClientCredential;
use azad_core::{AzureAdConfig, TokenClient, TokenValidator};
use azad_tests::DevTenant;

#[tokio::test]
async fn validator_and_token_client_over_https() {
    let dev = DevTenant::builder().https().start().await.unwrap();
    let base = dev.base_url().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    assert!(dev.issuer().starts_with("https://"));
    assert!(dev.token_endpoint().starts_with("https://"));
    let ca_path = dev.ca_pem_path().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(&ca_path).unwrap(), dev.ca_pem().unwrap());

    // The discovery document announces only https:// URLs.
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(dev.ca_pem().unwrap().as_bytes()).unwrap())
        .build()
        .unwrap();
    let doc: serde_json::Value = http.get(dev.metadata_url()).send().await.unwrap().json().await.unwrap();
    for key in ["issuer", "jwks_uri", "token_endpoint", "authorization_endpoint", "device_authorization_endpoint"] {
        assert!(doc[key].as_str().unwrap().starts_with(&format!("{base}/")), "{key}: {}", doc[key]);
    }
    // `localhost` is in the server certificate too.
    let localhost = dev.metadata_url().replace("127.0.0.1", "localhost");
    assert_eq!(http.get(localhost).send().await.unwrap().status(), 200);

    // The validator, with the dev tenant's own configuration (which trusts its CA).
    let validator = TokenValidator::new(dev.config());
    let claims = validator.validate(&dev.token().build()).await.unwrap();
    assert_eq!(claims.issuer(), dev.issuer());

    // The token client: client credentials, then the token validated by the downstream API.
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let token = client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
    let downstream = TokenValidator::new(dev.config_builder().client_id(dev.downstream_client_id()).build().unwrap());
    assert!(downstream.validate(token.secret()).await.unwrap().has_role("Data.Read.All"));

    // The same trust from a file, as `AZAD_EXTRA_CA_CERTS` gives it.
    let from_env = AzureAdConfig::from_env_with(|name| match name {
        "AZURE_TENANT_ID" => Some(dev.tenant_id().to_owned()),
        "AZURE_CLIENT_ID" => Some(dev.api_client_id().to_owned()),
        "AZURE_AUTHORITY_HOST" => Some(base.clone()),
        "AZAD_EXTRA_CA_CERTS" => Some(ca_path.display().to_string()),
        _ => None,
    })
    .unwrap();
    assert_eq!(from_env.extra_root_certificates().len(), 1);
    TokenValidator::new(from_env).validate(&dev.token().build()).await.unwrap();

    // Without the CA, the certificate is refused: nothing turns verification off.
    let untrusted = AzureAdConfig::builder()
        .instance(base.as_str())
        .tenant_id(dev.tenant_id())
        .client_id(dev.api_client_id())
        .build()
        .unwrap();
    let err = TokenValidator::new(untrusted).validate(&dev.token().build()).await.unwrap_err();
    assert_eq!(format!("{err:?}"), "KeysUnavailable");
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = plain.get(dev.metadata_url()).send().await.unwrap_err();
    let mut chain = format!("{err}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

#[test]
fn extra_root_certificates_are_checked_when_the_configuration_is_built() {
    let base = AzureAdConfig::builder().tenant_id("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f").client_id("api");
    let err = base.extra_root_certificates_pem("not a certificate").build().unwrap_err();
    assert!(err.to_string().contains("extra_root_certificates"), "{err}");
    let err = AzureAdConfig::from_env_with(|name| match name {
        "AZURE_TENANT_ID" => Some("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f".to_owned()),
        "AZURE_CLIENT_ID" => Some("api".to_owned()),
        "AZAD_EXTRA_CA_CERTS" => Some("/nonexistent/ca.pem".to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("AZAD_EXTRA_CA_CERTS"), "{err}");
}

#[tokio::test]
async fn plain_http_stays_the_default() {
    let dev = DevTenant::start().await.unwrap();
    assert!(dev.base_url().starts_with("http://"));
    assert!(dev.ca_pem_path().is_none());
    TokenValidator::new(dev.config()).validate(&dev.token().build()).await.unwrap();
}

#[tokio::test]
async fn the_ca_file_goes_away_with_the_dev_tenant() {
    let dev = DevTenant::builder().https().start().await.unwrap();
    let path = dev.ca_pem_path().unwrap().to_owned();
    assert!(path.exists());
    drop(dev);
    assert!(!path.exists());
}
