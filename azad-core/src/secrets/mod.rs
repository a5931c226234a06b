//! Secrets an API needs for its own credentials and configuration, read from Azure Key Vault,
//! OpenBao/HashiCorp Vault KV v2, environment variables, a dotenv file or a directory of mounted
//! Kubernetes secrets (feature `secrets`).
//!
//! Every backend implements [`SecretSource`]: it reads one secret (latest or a version) and
//! classifies failures with [`SecretError`]. A [`SecretChain`] tries sources in order with
//! bounded retries, marks a fallback's answer degraded and never falls back silently; a
//! [`SecretCache`] keeps answers for a TTL; a [`RotatingCredential`] keeps a
//! [`ClientCredential`](crate::credential::ClientCredential) current when the secret rotates.
//! Every read emits one audit event (target `azad::secrets`) that never contains the value.

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
