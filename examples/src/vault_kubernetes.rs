//! The `vault_kubernetes` scenario: a pod's service-account token → OpenBao's Kubernetes
//! login → KV v2 → the app's configuration; then the client secret is rotated in OpenBao and in
//! the app registration mid-run, and the next on-behalf-of call succeeds with no restart.
//!
//! Everything is real and on loopback: the `bao` server (`.ci/run`'s, or one started here),
//! the dev tenant playing both the Kubernetes API server (TokenReview, over HTTPS) and Entra
//! ID (the token endpoint), the kubelet's token file, and the API's token client.

use std::time::Duration;

use azad_core::dev::DevTenant;
use azad_core::secrets::{OpenBaoConfig, OpenBaoSource, RotatingCredential, SecretCache, SecretChain};
use azad_core::{BearerToken, TokenClient, TokenRequest};
use serde_json::json;

use crate::bao::BaoServer;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The pod's namespace and service account.
pub const NAMESPACE: &str = "payments";
/// The pod's service account.
pub const SERVICE_ACCOUNT: &str = "api";
/// The OpenBao role and policy (what `.ci/run` creates too).
pub const ROLE: &str = "azad-app";
/// The app's KV v2 path (mount `kv`).
pub const KV_PATH: &str = "payments/api";
/// The downstream scope the API calls on behalf of its users.
pub const DOWNSTREAM_SCOPE: &str = "api://azad-downstream/Data.Read";

/// The app's configuration, as stored in KV v2 (the client secret is read separately by the
/// rotating credential, from the same secret).
#[derive(Debug, serde::Deserialize)]
pub struct AppSettings {
    /// The Entra tenant.
    pub tenant_id: String,
    /// The API's client id.
    pub client_id: String,
    /// The scope of the downstream API.
    pub downstream_scope: String,
}

/// What the scenario saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The KV v2 version the app started with.
    pub started_with_version: Option<String>,
    /// The version in use after the rotation.
    pub after_rotation_version: Option<String>,
    /// How many times the credential picked up a new version.
    pub rotations: u64,
    /// On-behalf-of calls that succeeded (before and after the rotation).
    pub successful_calls: u32,
    /// Kubernetes logins to OpenBao.
    pub logins: u64,
    /// TokenReviews the API server answered.
    pub token_reviews: usize,
}

/// Runs the scenario, telling what happens through `say`.
///
/// # Errors
///
/// Any step's failure (no `bao` binary: the install hint).
pub async fn run(say: impl Fn(&str)) -> Result<Outcome, Error> {
    let dev = DevTenant::builder().https().start().await?;
    let cluster = dev.kubernetes();
    let bao = BaoServer::shared_or_start().await?;
    say(&format!(
        "cluster: API server (TokenReview) at {}, OpenBao at {} ({})",
        cluster.api_url(),
        bao.addr(),
        if bao.is_own() { "started here" } else { "given" }
    ));

    // The platform team: KV v2, Kubernetes auth against the cluster, a policy and a role bound
    // to the pod's service account.
    bao.enable_kv2("kv").await?;
    bao.enable_kubernetes("kubernetes", &cluster, dev.ca_pem().unwrap_or_default()).await?;
    bao.write_policy(ROLE, "path \"kv/data/payments/*\" { capabilities = [\"read\"] }").await?;
    bao.write_role("kubernetes", ROLE, NAMESPACE, SERVICE_ACCOUNT, &[ROLE], Duration::from_secs(3600)).await?;
    let old_secret = dev.api_client_secret();
    let settings = |secret: &str| {
        json!({
            "tenant_id": dev.tenant_id(),
            "client_id": dev.api_client_id(),
            "client_secret": secret,
            "downstream_scope": DOWNSTREAM_SCOPE,
        })
    };
    let version = bao.put("kv", KV_PATH, settings(&old_secret)).await?;
    say(&format!("operator: wrote kv/{KV_PATH} version {version}"));

    // The kubelet projects the pod's service-account token.
    let dir = std::env::temp_dir().join(format!("azad-vault-kubernetes-{}", azad_core::dev::random_guid()));
    let token_file = dir.join("var/run/secrets/kubernetes.io/serviceaccount/token");
    cluster.token(NAMESPACE, SERVICE_ACCOUNT).pod("payments-api-0").write_to(&token_file)?;
    say(&format!("kubelet: projected the token of {NAMESPACE}/{SERVICE_ACCOUNT} at {}", token_file.display()));
    let outcome = pod(&dev, &bao, &token_file, &old_secret, &settings, &say).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The pod: configured by the usual variables, it logs in, loads its settings, serves calls,
/// and survives the rotation.
async fn pod(
    dev: &DevTenant,
    bao: &BaoServer,
    token_file: &std::path::Path,
    old_secret: &str,
    settings_for: &impl Fn(&str) -> serde_json::Value,
    say: &impl Fn(&str),
) -> Result<Outcome, Error> {
    let token_path = token_file.display().to_string();
    let vars = [
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_ROLE", ROLE),
        ("VAULT_PATH", KV_PATH),
        ("VAULT_K8S_TOKEN_PATH", token_path.as_str()),
    ];
    let config = OpenBaoConfig::from_lookup(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))?;
    let source = OpenBaoSource::new(config)?;
    let settings: AppSettings = source.load_config(None).await?;
    say(&format!("pod: logged in to OpenBao as role {ROLE}; settings for client {}", settings.client_id));

    let azure = dev.config_builder().tenant_id(&settings.tenant_id).client_id(&settings.client_id).build()?;
    let cache = SecretCache::new(SecretChain::new([source.clone()]), Duration::from_secs(3600));
    let credential = RotatingCredential::client_secret(cache, "client_secret");
    credential.load().await?;
    let client = TokenClient::new(&azure, credential.client_credential());
    let started_with_version = credential.current_version();
    let call = || async {
        let user = BearerToken::new(dev.token().build());
        client
            .acquire(TokenRequest::on_behalf_of(user, [settings.downstream_scope.as_str()]).with_force_refresh(true))
            .await
    };
    call().await?;
    let mut successful_calls = 1;
    say(&format!(
        "pod: on-behalf-of call to {} succeeded with the client secret of version {}",
        settings.downstream_scope,
        started_with_version.as_deref().unwrap_or("?")
    ));

    // Rotation: a new secret on the app registration and in OpenBao, the old one revoked.
    let new_secret = dev.add_client_secret(dev.api_client_id());
    let version = bao.put("kv", KV_PATH, settings_for(&new_secret)).await?;
    if !dev.remove_client_secret(dev.api_client_id(), old_secret) {
        return Err("the old client secret was not registered".into());
    }
    say(&format!("operator: rotated the client secret (kv/{KV_PATH} version {version}), revoked the old one"));

    // No restart: the token endpoint refuses the old secret, the credential reads the new
    // version from OpenBao once and the call is retried once.
    call().await?;
    successful_calls += 1;
    let after_rotation_version = credential.current_version();
    say(&format!(
        "pod: next on-behalf-of call succeeded with version {} (no restart)",
        after_rotation_version.as_deref().unwrap_or("?")
    ));
    Ok(Outcome {
        started_with_version,
        after_rotation_version,
        rotations: credential.rotations(),
        successful_calls,
        logins: source.logins(),
        token_reviews: dev.requests(azad_core::dev::Endpoint::TokenReview),
    })
}
