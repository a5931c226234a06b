//! Workload identity: a process configured like an AKS pod (`AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`) gets tokens with its projected
//! token file and reads a secret through azad's Key Vault source (the dev tenant's Key
//! Vault–shaped endpoint).

use azad_core::ClientCredential;
use azad_core::secrets::{KeyVaultSource, SecretError, SecretSource};
use azad_core::{AzureAdConfig, TokenClient, TokenRequest};

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

/// The Key Vault source a pod reads through: vault tokens from `client` (its workload
/// identity). With `fresh`, every read acquires a new vault token, so the projected token file
/// is read again (what the scenario shows across a kubelet rotation); otherwise the token
/// client's cache serves the vault token until it nears expiry.
///
/// # Errors
///
/// [`SecretError::Misconfigured`] for a vault URL that is not https (or loopback http).
pub fn vault(client: &TokenClient, vault_url: &str, fresh: bool) -> Result<KeyVaultSource, SecretError> {
    if !fresh {
        return KeyVaultSource::new(vault_url, client.clone());
    }
    let client = client.clone();
    KeyVaultSource::with_token_callback(vault_url, move |scope| {
        let client = client.clone();
        async move {
            let token = client.acquire(TokenRequest::app([scope]).with_force_refresh(true)).await;
            token.map(|t| t.secret().to_owned()).map_err(|e| e.to_string())
        }
    })
}

/// Reads a secret through the [`KeyVaultSource`] (`GET {vault_url}/secrets/{name}?api-version=7.4`
/// with a vault token from `client`; a fresh token each time with `fresh`).
///
/// # Errors
///
/// The source's [`SecretError`]: not found, denied, unavailable...
pub async fn read_secret(
    client: &TokenClient,
    vault_url: &str,
    name: &str,
    fresh: bool,
) -> Result<String, SecretError> {
    let source = vault(client, vault_url, fresh)?;
    source.get(name, None).await.map(|secret| secret.expose().to_owned())
}
