//! The integration-module settings read by `AzureAdConfig::from_env`, end to end against the
//! dev tenant: certificates (PEM and PKCS#12), managed identity, the token cache switch.

use azad_core::{AzureAdConfig, TokenClient};
use azad_tests::{DevTenant, Endpoint};

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
}

fn base(dev: &DevTenant, client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
        ("AZURE_CLIENT_ID", client_id.to_owned()),
        ("AZURE_AUTHORITY_HOST", dev.base_url().to_owned()),
    ]
}

#[tokio::test]
async fn a_certificate_from_pem_or_pkcs12_authenticates_the_app() {
    let dev = DevTenant::start().await.unwrap();
    let cert = dev.add_certificate(dev.api_client_id());
    let dir = std::env::temp_dir().join(format!("azad-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("app.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let pfx = dir.join("app.pfx");
    std::fs::write(&pfx, cert.pkcs12("pfx-password")).unwrap();

    for extra in [
        vec![("AZURE_CLIENT_CERTIFICATE_PATH", pem.display().to_string())],
        vec![
            ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.display().to_string()),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-password".to_owned()),
        ],
    ] {
        let mut vars = base(&dev, dev.api_client_id());
        vars.extend(extra);
        let config = AzureAdConfig::from_env_with(env(vars)).unwrap();
        assert!(format!("{:?}", config.client_credential().unwrap()).starts_with("ClientCredential::Certificate("));
        let client = TokenClient::from_config(&config).unwrap();
        client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
    }
    // A wrong password is a configuration error naming the variable, never showing the password.
    let mut vars = base(&dev, dev.api_client_id());
    vars.extend([
        ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.display().to_string()),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "wrong-password".to_owned()),
    ]);
    let e = AzureAdConfig::from_env_with(env(vars)).unwrap_err();
    assert_eq!(e.field(), "AZURE_CLIENT_CERTIFICATE_PATH");
    assert!(!e.to_string().contains("wrong-password"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_managed_identity_from_the_environment_is_the_apps_federated_credential() {
    let dev = DevTenant::start().await.unwrap();
    let identity = dev.managed_identities()[0].clone();
    dev.add_federated_credential(dev.api_client_id(), &dev.issuer(), &identity.object_id);
    let mut vars = base(&dev, dev.api_client_id());
    vars.extend([("AZURE_USE_MANAGED_IDENTITY", "true".to_owned()), ("AZAD_IMDS_ENDPOINT", dev.imds_endpoint())]);
    let config = AzureAdConfig::from_env_with(env(vars)).unwrap();
    let vault = config.managed_identity().unwrap().acquire_token("https://vault.azure.net/.default").await.unwrap();
    assert!(!vault.secret().is_empty());
    let client = TokenClient::from_config(&config).unwrap();
    client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
    assert!(dev.requests(Endpoint::ManagedIdentity) >= 2, "the app proved itself with the identity's token");
}

#[tokio::test]
async fn the_token_cache_can_be_turned_off() {
    let dev = DevTenant::start().await.unwrap();
    for (enabled, expected) in [("true", 1), ("false", 2)] {
        dev.reset_counters();
        let mut vars = base(&dev, dev.api_client_id());
        vars.extend([("AZURE_CLIENT_SECRET", dev.api_client_secret()), ("AZURE_AD_CACHE_ENABLED", enabled.to_owned())]);
        let client = TokenClient::from_config(&AzureAdConfig::from_env_with(env(vars)).unwrap()).unwrap();
        for _ in 0..2 {
            client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
        }
        assert_eq!(dev.requests(Endpoint::Token), expected, "AZURE_AD_CACHE_ENABLED={enabled}");
    }
    let vars = base(&dev, dev.api_client_id());
    let e = TokenClient::from_config(&AzureAdConfig::from_env_with(env(vars)).unwrap()).unwrap_err();
    assert!(e.to_string().contains("no application credential"), "{e}");
}
