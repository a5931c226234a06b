//! Every credential against the dev tenant over real sockets, and the token client's answers to
//! the dev tenant's faults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azad_core::dev::{DEFAULT_DOWNSTREAM_APP_ID_URI, DevManagedIdentity};
use azad_core::secret::KeyPassword;
use azad_core::{AssertionAlgorithm, CertificateCredential, ClientCredential};
use azad_core::{AzureAdConfig, BearerToken, CredentialError, TokenClient, TokenError, TokenRequest, TokenValidator};
use azad_core::{ManagedIdentity, ManagedIdentityId};
use azad_tests::{DevTenant, Endpoint, Fault};

const DOWNSTREAM: &str = "api://azad-downstream/.default";

/// A validator for the dev tenant's downstream API: the tokens we acquire must pass it.
fn downstream_validator(dev: &DevTenant) -> TokenValidator {
    TokenValidator::new(dev.config_builder().client_id(dev.downstream_client_id()).build().unwrap())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("azad-tests-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn client_secret() {
    let dev = DevTenant::start().await.unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let token = client.acquire_app_token(&[DOWNSTREAM]).await.unwrap();
    let claims = downstream_validator(&dev).validate(token.secret()).await.unwrap();
    assert!(claims.is_app_only());
    assert!(claims.has_role("Data.Read.All"));
    assert_eq!(claims.azp(), Some(dev.api_client_id()));

    let wrong = TokenClient::new(&dev.config(), ClientCredential::secret("not-the-secret".to_owned()));
    let e = wrong.acquire_app_token(&[DOWNSTREAM]).await.unwrap_err();
    assert_eq!(e.entra().unwrap().error, "invalid_client");
    assert_eq!(e.entra().unwrap().error_codes, [7_000_215]);
    assert_eq!(e.challenge().status(), 500, "our own credential refused");
}

#[tokio::test]
async fn certificate_pem_and_file() {
    let dev = DevTenant::start().await.unwrap();
    let cert = dev.add_certificate(dev.api_client_id());
    let credential = CertificateCredential::from_pem(cert.cert_pem(), &cert.key_pem()).unwrap();
    assert_eq!(credential.thumbprint(), cert.thumbprint());
    for c in [credential.clone(), credential.clone().with_algorithm(AssertionAlgorithm::RS256).with_x5c(true)] {
        let client = TokenClient::new(&dev.config(), ClientCredential::certificate(c));
        let token = client.acquire(TokenRequest::app([DOWNSTREAM]).with_force_refresh(true)).await.unwrap();
        assert!(downstream_validator(&dev).validate(token.secret()).await.is_ok());
    }
    // One file, as AZURE_CLIENT_CERTIFICATE_PATH points to.
    let dir = temp_dir("pem");
    let path = dir.join("api.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    let from_env =
        ClientCredential::from_env_with(|n| (n == "AZURE_CLIENT_CERTIFICATE_PATH").then(|| path.display().to_string()))
            .unwrap();
    assert!(TokenClient::new(&dev.config(), from_env).acquire_app_token(&[DOWNSTREAM]).await.is_ok());
    std::fs::remove_dir_all(dir).unwrap();

    // A certificate the app registration does not know.
    let stranger = azad_core::dev::DevCertificate::generate("CN=stranger");
    let c = CertificateCredential::from_pem(stranger.cert_pem(), &stranger.key_pem()).unwrap();
    let e = TokenClient::new(&dev.config(), ClientCredential::certificate(c))
        .acquire_app_token(&[DOWNSTREAM])
        .await
        .unwrap_err();
    assert_eq!(e.entra().unwrap().error, "invalid_client");
    // A key that does not belong to the certificate is refused when loading.
    let e = CertificateCredential::from_pem(cert.cert_pem(), &stranger.key_pem()).unwrap_err();
    assert_eq!(e, CredentialError::Certificate("the private key does not belong to the certificate".into()));
}

#[tokio::test]
async fn certificate_pkcs12() {
    let dev = DevTenant::start().await.unwrap();
    let cert = dev.add_certificate(dev.api_client_id());
    let pfx = cert.pkcs12("correct horse");
    let c = CertificateCredential::from_pkcs12(&pfx, &KeyPassword::new("correct horse")).unwrap();
    assert_eq!(c.thumbprint(), cert.thumbprint());
    let token = TokenClient::new(&dev.config(), ClientCredential::certificate(c))
        .acquire_app_token(&[DOWNSTREAM])
        .await
        .unwrap();
    assert!(downstream_validator(&dev).validate(token.secret()).await.is_ok());
    let e = CertificateCredential::from_pkcs12(&pfx, &KeyPassword::new("wrong")).unwrap_err();
    assert!(matches!(e, CredentialError::Certificate(_)));
    assert!(!format!("{e} {e:?}").contains("correct horse"));
    // From a file with a password, as the environment describes it.
    let dir = temp_dir("pfx");
    let path = dir.join("api.pfx");
    std::fs::write(&path, &pfx).unwrap();
    let c = ClientCredential::from_env_with(|n| match n {
        "AZURE_CLIENT_CERTIFICATE_PATH" => Some(path.display().to_string()),
        "AZURE_CLIENT_CERTIFICATE_PASSWORD" => Some("correct horse".into()),
        _ => None,
    })
    .unwrap();
    assert!(TokenClient::new(&dev.config(), c).acquire_app_token(&[DOWNSTREAM]).await.is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn workload_identity_rereads_the_rotated_token_file() {
    let dev = DevTenant::start().await.unwrap();
    let subject = "system:serviceaccount:default:workload";
    dev.add_federated_credential(dev.api_client_id(), &dev.federation_issuer(), subject);
    let dir = temp_dir("wi");
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, dev.federated_token(subject)).unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::workload_identity(&file));
    assert!(client.acquire_app_token(&[DOWNSTREAM]).await.is_ok());
    // The kubelet rotates the file: the next request reads the new token.
    std::fs::write(&file, dev.federated_token(subject)).unwrap();
    assert!(client.acquire(TokenRequest::app([DOWNSTREAM]).with_force_refresh(true)).await.is_ok());
    // A token for another subject is refused by the token endpoint.
    std::fs::write(&file, dev.federated_token("system:serviceaccount:default:intruder")).unwrap();
    let e = client.acquire(TokenRequest::app([DOWNSTREAM]).with_force_refresh(true)).await.unwrap_err();
    assert_eq!(e.entra().unwrap().error, "invalid_client");
    // Missing or empty files are typed errors, raised before any request.
    let before = dev.requests(Endpoint::Token);
    std::fs::write(&file, "").unwrap();
    let e = client.acquire(TokenRequest::app([DOWNSTREAM]).with_force_refresh(true)).await.unwrap_err();
    assert!(matches!(e, TokenError::Credential(CredentialError::TokenFile { .. })), "{e:?}");
    std::fs::remove_file(&file).unwrap();
    let e = client.acquire(TokenRequest::app([DOWNSTREAM]).with_force_refresh(true)).await.unwrap_err();
    assert!(matches!(e, TokenError::Credential(CredentialError::TokenFile { .. })), "{e:?}");
    assert_eq!(dev.requests(Endpoint::Token), before);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn managed_identity_as_federated_credential_imds_and_app_service() {
    let user_assigned = DevManagedIdentity::user_assigned("web-app-identity");
    let dev = DevTenant::builder().managed_identity(user_assigned.clone()).start().await.unwrap();
    let system = dev.managed_identities()[0].clone();
    dev.add_federated_credential(dev.api_client_id(), &dev.issuer(), &system.object_id);
    dev.add_federated_credential(dev.api_client_id(), &dev.issuer(), &user_assigned.object_id);

    let imds = ManagedIdentity::imds(dev.imds_endpoint());
    let client = TokenClient::new(&dev.config(), ClientCredential::managed_identity_federation(imds.clone()));
    let token = client.acquire_app_token(&[DOWNSTREAM]).await.unwrap();
    assert!(downstream_validator(&dev).validate(token.secret()).await.is_ok());
    assert_eq!(dev.requests(Endpoint::ManagedIdentity), 1);

    let app_service = ManagedIdentity::app_service(dev.identity_endpoint(), dev.identity_header())
        .with_id(ManagedIdentityId::ClientId(user_assigned.client_id.clone()));
    let client = TokenClient::new(&dev.config(), ClientCredential::managed_identity_federation(app_service));
    assert!(client.acquire_app_token(&[DOWNSTREAM]).await.is_ok());
    assert_eq!(dev.requests(Endpoint::AppServiceIdentity), 1);

    // The App Service endpoint refuses a wrong header; IMDS refuses a missing Metadata header.
    let wrong = ManagedIdentity::app_service(dev.identity_endpoint(), "guess");
    let e = wrong.acquire_token("api://AzureADTokenExchange").await.unwrap_err();
    assert_eq!(e.entra().unwrap().status, 401);
    let raw = reqwest::Client::new()
        .get(format!("{}?api-version=2018-02-01&resource=x", dev.imds_endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // A managed identity without a federated credential on the app is refused.
    let stranger = DevManagedIdentity::user_assigned("stranger");
    let dev2 = DevTenant::builder().managed_identity(stranger.clone()).start().await.unwrap();
    let mi = ManagedIdentity::imds(dev2.imds_endpoint()).with_id(ManagedIdentityId::ObjectId(stranger.object_id));
    let e = TokenClient::new(&dev2.config(), ClientCredential::managed_identity_federation(mi))
        .acquire_app_token(&[DOWNSTREAM])
        .await
        .unwrap_err();
    assert_eq!(e.entra().unwrap().error, "invalid_client");
}

/// Every expiry shape real hosts send, through both managed identity endpoints, end to end:
/// the token is acquired and expires when the answer (or, failing that, the token) says.
#[tokio::test]
async fn managed_identity_expiry_shapes_of_real_hosts() {
    use azad_core::dev::ManagedIdentityExpiry as Shape;
    let dev = DevTenant::start().await.unwrap();
    for shape in [Shape::HostDefault, Shape::EpochString, Shape::Rfc3339, Shape::DotNetInvariant, Shape::TokenExpOnly] {
        dev.set_managed_identity_expiry(shape);
        for mi in [
            ManagedIdentity::imds(dev.imds_endpoint()),
            ManagedIdentity::app_service(dev.identity_endpoint(), dev.identity_header()),
        ] {
            let token =
                mi.acquire_token(DEFAULT_DOWNSTREAM_APP_ID_URI).await.unwrap_or_else(|e| panic!("{shape:?}: {e}"));
            let left = token.expires_at().duration_since(std::time::SystemTime::now()).unwrap().as_secs();
            assert!((3000..=3600).contains(&left), "{shape:?}: {left}");
        }
    }
}

#[tokio::test]
async fn managed_identity_reads_a_key_vault_secret() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "hunter2");
    let mi = ManagedIdentity::from_env_with(|n| (n == "AZAD_IMDS_ENDPOINT").then(|| dev.imds_endpoint()));
    let token = mi.acquire_token("https://vault.azure.net/.default").await.unwrap();
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/secrets/db-password?api-version=7.4", dev.vault_url()))
        .bearer_auth(token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["value"], "hunter2");
    // Cached: a second call does not reach the endpoint.
    mi.acquire_token("https://vault.azure.net").await.unwrap();
    assert_eq!(dev.requests(Endpoint::ManagedIdentity), 1);
    // A token for another audience is refused by the vault.
    let other = mi.acquire_token(DEFAULT_DOWNSTREAM_APP_ID_URI).await.unwrap();
    let res = http
        .get(format!("{}/secrets/db-password?api-version=7.4", dev.vault_url()))
        .bearer_auth(other.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("resource=\"https://vault.azure.net\""));
}

#[tokio::test]
async fn custom_assertion_callback() {
    let dev = Arc::new(DevTenant::start().await.unwrap());
    let subject = "custom:signer";
    dev.add_federated_credential(dev.api_client_id(), &dev.federation_issuer(), subject);
    let d = dev.clone();
    let credential = ClientCredential::assertion_callback(move |req| {
        let token = d.federated_token(subject);
        async move {
            assert!(req.token_endpoint.ends_with("/oauth2/v2.0/token"));
            Ok(azad_core::secret::ClientAssertion::new(token))
        }
    });
    assert!(TokenClient::new(&dev.config(), credential).acquire_app_token(&[DOWNSTREAM]).await.is_ok());
}

#[tokio::test]
async fn on_behalf_of_preserves_the_user() {
    let dev = DevTenant::start().await.unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let incoming = BearerToken::new(dev.token().build());
    let token = client.acquire_on_behalf_of(&incoming, &["api://azad-downstream/Data.Read"]).await.unwrap();
    let claims = downstream_validator(&dev).validate(token.secret()).await.unwrap();
    assert_eq!(claims.object_id(), Some(dev.users()[0].oid.as_str()));
    assert_eq!(claims.tenant_id(), Some(dev.tenant_id()));
    assert_eq!(claims.name(), Some("Dev User"));
    assert_eq!(claims.scp(), Some("Data.Read"));
    assert_eq!(claims.azp(), Some(dev.api_client_id()));
    assert_eq!(claims.audiences(), [dev.downstream_client_id()]);
    // Scopes not consented for the API: 403 for the caller.
    let e = client.acquire_on_behalf_of(&incoming, &["api://azad-downstream/Data.Admin"]).await.unwrap_err();
    assert_eq!(e.entra().unwrap().suberror.as_deref(), Some("consent_required"));
    assert_eq!(e.challenge().status(), 403);
    // Graph, as the user.
    let graph = client.acquire_on_behalf_of(&incoming, &["https://graph.microsoft.com/User.Read"]).await.unwrap();
    assert!(!graph.secret().is_empty());
}

#[tokio::test]
async fn token_endpoint_faults_map_to_answers() {
    let dev = DevTenant::start().await.unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let scope = ["api://azad-downstream/Data.Read"];
    let user = || BearerToken::new(dev.token().build());

    dev.inject_times(Endpoint::Token, Fault::InvalidGrant, 1);
    let e = client.acquire_on_behalf_of(&user(), &scope).await.unwrap_err();
    assert!(e.entra().unwrap().is_invalid_grant());
    assert_eq!(dev.requests(Endpoint::Token), 1, "invalid_grant is never retried");

    let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
    dev.inject_times(Endpoint::Token, Fault::InteractionRequired { claims: claims.into() }, 1);
    let e = client.acquire_on_behalf_of(&user(), &scope).await.unwrap_err();
    let r = e.challenge();
    assert_eq!(r.status(), 401);
    assert!(
        r.www_authenticate().unwrap().to_str().unwrap().starts_with(r#"Bearer error="insufficient_claims", claims=""#)
    );

    dev.reset_counters();
    dev.inject_times(Endpoint::Token, Fault::TooManyRequests { retry_after: 30 }, 1);
    let same = user();
    let e = client.acquire_on_behalf_of(&same, &scope).await.unwrap_err();
    assert_eq!(e.challenge().retry_after(), Some(Duration::from_secs(30)));
    let e = client.acquire_on_behalf_of(&same, &scope).await.unwrap_err();
    assert!(matches!(e, TokenError::Throttled { .. }));
    assert_eq!(dev.requests(Endpoint::Token), 1, "throttled locally");

    // A 500 is retried once (after about a second).
    dev.reset_counters();
    dev.inject_times(Endpoint::Token, Fault::Status(500), 1);
    assert!(client.acquire_on_behalf_of(&user(), &scope).await.is_ok());
    assert_eq!(dev.requests(Endpoint::Token), 2);

    // An expired incoming token is refused without a request.
    dev.reset_counters();
    let expired = BearerToken::new(dev.token().expired().build());
    assert_eq!(client.acquire_on_behalf_of(&expired, &scope).await.unwrap_err().challenge().status(), 401);
    assert_eq!(dev.requests(Endpoint::Token), 0);
}

#[test]
fn credentials_from_the_environment() {
    let c = ClientCredential::from_env_with(|n| (n == "AZURE_CLIENT_SECRET").then(|| "CANARY-env-secret".to_owned()))
        .unwrap();
    assert!(!format!("{c:?}").contains("CANARY"));
    let cfg = AzureAdConfig::from_env_with(|n| match n {
        "AZURE_TENANT_ID" => Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        "AZURE_CLIENT_ID" => Some("6e74172b-be56-4843-9ff4-e66a39bb12e3".into()),
        _ => None,
    })
    .unwrap();
    let client = TokenClient::new(&cfg, c);
    assert!(!format!("{client:?}").contains("CANARY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_on_behalf_of_requests_make_one_token_request() {
    let dev = DevTenant::start().await.unwrap();
    // A slow token endpoint, so that all hundred callers are waiting at once.
    dev.inject_times(Endpoint::Token, Fault::Delay(Duration::from_millis(300)), 1);
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let incoming = BearerToken::new(dev.token().build());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (client, incoming) = (client.clone(), incoming.clone());
            tokio::spawn(
                async move { client.acquire_on_behalf_of(&incoming, &["api://azad-downstream/Data.Read"]).await },
            )
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "everyone got the same token");
    assert_eq!(dev.requests(Endpoint::Token), 1);
}
