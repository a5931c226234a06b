//! Workload identity: a process configured like an AKS pod (`AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`) gets tokens with its projected
//! token file and reads a secret from a Key Vault–shaped endpoint.

use azad_core::ClientCredential;
use azad_core::{AzureAdConfig, TokenClient, TokenRequest};
use serde_json::Value;

/// The Key Vault scope.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// A token client built from the environment, exactly as a pod sees it.
///
/// # Errors
///
/// The configuration or credential error naming the variable at fault.
pub fn client_from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<TokenClient, Box<dyn std::error::Error>> {
    let config = AzureAdConfig::from_env_with(&lookup)?;
    let credential = ClientCredential::from_env_with(&lookup)?;
    Ok(TokenClient::new(&config, credential))
}

/// Reads a secret: `GET {vault_url}/secrets/{name}?api-version=7.4` with a vault token. A fresh
/// token each time (`fresh`), so the token file is read again.
///
/// # Errors
///
/// The token error, the transport error, or the vault's refusal, as text.
pub async fn read_secret(client: &TokenClient, vault_url: &str, name: &str, fresh: bool) -> Result<String, String> {
    let token =
        client.acquire(TokenRequest::app([VAULT_SCOPE]).with_force_refresh(fresh)).await.map_err(|e| e.to_string())?;
    let response = reqwest::Client::new()
        .get(format!("{vault_url}/secrets/{name}?api-version=7.4"))
        .bearer_auth(token.secret())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("the vault answered {status}: {body}"));
    }
    body["value"].as_str().map(str::to_owned).ok_or_else(|| "the vault answer has no value".into())
}
