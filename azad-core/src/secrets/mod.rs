//! Secrets an API needs for its own credentials and configuration, read from Azure Key Vault,
//! OpenBao/HashiCorp Vault KV v2, environment variables, a dotenv file or a directory of mounted
//! Kubernetes secrets (feature `secrets`).
//!
//! Every backend implements [`SecretSource`]: it reads one secret (latest or a version) and
//! classifies failures with [`SecretError`]. A [`SecretChain`] tries sources in order with
//! bounded retries, marks a fallback's answer degraded and never falls back silently; a
//! [`SecretCache`] keeps answers for a TTL; a [`RotatingCredential`] keeps a
//! [`ClientCredential`](crate::client::credential::ClientCredential) current when the secret rotates.
//! Every read emits one audit event (target `azad::secrets`) that never contains the value.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use azad_core::secrets::{DirectorySource, EnvSource, KeyVaultSource, RotatingCredential, SecretCache, SecretChain};
//! use azad_core::{AzureAdConfig, TokenClient};
//!
//! async fn start(config: AzureAdConfig, vault_reader: TokenClient) -> Result<TokenClient, Box<dyn std::error::Error>> {
//!     // Key Vault first (a token for https://vault.azure.net from workload identity, managed
//!     // identity or any credential), then the mounted secret, then the environment.
//!     let vault = KeyVaultSource::new("https://contoso.vault.azure.net", vault_reader)?;
//!     let mounted = DirectorySource::new("/var/run/secrets/myapp");
//!     let chain = SecretChain::new([vault]).with_source(mounted.clone()).with_source(EnvSource::new().with_prefix("MYAPP_"));
//!     let secrets = SecretCache::new(chain, Duration::from_secs(300));
//!     secrets.invalidate_on(mounted.watch(Duration::from_secs(2))); // the kubelet's `..data` swap
//!
//!     let db = secrets.get("db-password", None).await?; // `db.degraded()` if a fallback served
//!     println!("database password version {:?} from {}", db.version(), db.source());
//!     // The API's client secret, rotated in Key Vault: picked up on schedule, and at once when
//!     // Entra answers AADSTS7000215/7000222 (refetch once, retry once).
//!     let credential = RotatingCredential::client_secret(secrets.clone(), "api-client-secret");
//!     Ok(TokenClient::new(&config, credential.client_credential()))
//! }
//! # let _ = start;
//! ```

mod audit;
mod cache;
mod chain;
mod directory;
mod env;
mod key_vault;
mod openbao;
mod rotation;
mod source;

pub use self::audit::AUDIT_TARGET;
pub use self::cache::{SecondLevelStore, SecretCache};
pub use self::chain::{ResolvedSecret, SecretChain, SecretRetryPolicy};
pub use self::directory::DirectorySource;
pub use self::env::{DotenvSource, EnvSource, env_var_name};
pub use self::key_vault::{KEY_VAULT_API_VERSION, KEY_VAULT_AUDIENCE, KeyVaultSource};
pub use self::openbao::{DEFAULT_TOKEN_PATH, KvSecret, OpenBaoConfig, OpenBaoError, OpenBaoSource, read_env_blocking};
pub use self::rotation::RotatingCredential;
pub use self::source::{BoxError, SecretError, SecretFuture, SecretSource, SecretValue, SourceFailure};
