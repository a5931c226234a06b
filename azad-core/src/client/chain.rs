//! The default credential chain: one token source that works in production and on a
//! developer's machine, in the order of Azure Identity's `DefaultAzureCredential`.

use std::fmt;

use crate::client::cache::AcquiredToken;
use crate::client::credential::{CertificateCredential, ClientCredential};
use crate::client::managed_identity::{ManagedIdentity, ManagedIdentityId, ManagedIdentityRetryPolicy};
use crate::client::token::TokenClient;
use crate::config::AzureAdConfig;
use crate::error::TokenError;
use crate::secret::ClientSecret;

enum Source {
    Environment(TokenClient),
    WorkloadIdentity(TokenClient),
    ManagedIdentity(ManagedIdentity),
    #[cfg(feature = "azure-cli")]
    AzureCli(crate::client::azure_cli::AzureCliCredential),
    /// A source whose variables are set but unusable (an unreadable certificate, no client or
    /// tenant id, an invalid authority host): it ends the chain when reached, so a broken
    /// configuration never falls back to another identity.
    Misconfigured(&'static str, String),
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Self::Environment(_) => "environment",
            Self::WorkloadIdentity(_) => "workload identity",
            Self::ManagedIdentity(_) => "managed identity",
            #[cfg(feature = "azure-cli")]
            Self::AzureCli(_) => "Azure CLI",
            Self::Misconfigured(name, _) => name,
        }
    }
}

/// Why the chain gave no token: each source tried or skipped, in order, with its reason.
/// Never contains a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    /// `(source, reason)` for each source, in chain order.
    pub attempts: Vec<(&'static str, String)>,
    /// `true` when a source tried and failed (the last attempt); `false` when every source
    /// was unavailable.
    pub failed: bool,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failed {
            f.write_str("a credential failed: ")?;
        } else {
            f.write_str("no credential in the chain is available: ")?;
        }
        for (i, (source, reason)) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{source}: {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ChainError {}

/// The default credential chain: one token source that works in production and on a
/// developer's machine, in the order of Azure Identity's `DefaultAzureCredential`.
///
/// | order | source | used when |
/// | --- | --- | --- |
/// | 1 | environment | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH` (client credentials) |
/// | 2 | workload identity | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE` (AKS) |
/// | 3 | managed identity | always tried: App Service (`IDENTITY_ENDPOINT`) or IMDS, user-assigned with `AZURE_MANAGED_IDENTITY_CLIENT_ID`; no retries, so an absent IMDS fails fast |
/// | 4 | Azure CLI | feature `azure-cli`: the developer signed in with `az login` ([`AzureCliCredential`](crate::AzureCliCredential)), `az` looked up on `PATH`; `AZURE_TENANT_ID` is passed as `--tenant` |
///
/// A source that cannot be used here (not configured, no managed identity endpoint, `az` not
/// installed or not signed in) is skipped; the first source that *tries* and fails ends the
/// chain with its error, as Azure Identity's does (a wrong secret must not silently fall back
/// to a developer's own identity). When every source is skipped, the error lists why each was.
///
/// # Example
///
/// ```
/// use azad_core::DefaultCredential;
///
/// let chain = DefaultCredential::from_env_with(|name| match name {
///     "AZURE_TENANT_ID" => Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
///     "AZURE_CLIENT_ID" => Some("6e74172b-be56-4843-9ff4-e66a39bb12e3".into()),
///     "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/secrets/azure/tokens/azure-identity-token".into()),
///     _ => None,
/// });
/// assert_eq!(chain.sources()[..2], ["workload identity", "managed identity"]);
/// ```
pub struct DefaultCredential {
    sources: Vec<Source>,
    skipped: Vec<(&'static str, String)>,
}

impl fmt::Debug for DefaultCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultCredential").field("sources", &self.sources()).finish()
    }
}

impl DefaultCredential {
    /// The chain for the process environment.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// The chain for variables read through `lookup`.
    #[must_use]
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut sources = Vec::new();
        let mut skipped = Vec::new();
        let app = || -> Result<AzureAdConfig, String> {
            let (Some(tenant), Some(client)) = (get("AZURE_TENANT_ID"), get("AZURE_CLIENT_ID")) else {
                return Err("AZURE_TENANT_ID and AZURE_CLIENT_ID are not both set".into());
            };
            let mut b = AzureAdConfig::builder().tenant_id(tenant).client_id(client);
            if let Some(host) = get("AZURE_AUTHORITY_HOST") {
                b = b.instance(host);
            }
            b.build().map_err(|e| e.to_string())
        };
        // 1. Environment: a secret or a certificate.
        let secret = get("AZURE_CLIENT_SECRET").map(|s| Ok(ClientCredential::secret(ClientSecret::new(s))));
        let certificate = || {
            get("AZURE_CLIENT_CERTIFICATE_PATH").map(|p| {
                CertificateCredential::from_file(p.trim(), get("AZURE_CLIENT_CERTIFICATE_PASSWORD").as_deref())
                    .map(ClientCredential::certificate)
                    .map_err(|e| e.to_string())
            })
        };
        match secret.or_else(certificate) {
            None => {
                skipped.push(("environment", "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH not set".into()));
            }
            Some(credential) => match (app(), credential) {
                (Ok(config), Ok(credential)) => {
                    sources.push(Source::Environment(TokenClient::new(&config, credential)));
                }
                (Err(reason), _) | (_, Err(reason)) => sources.push(Source::Misconfigured("environment", reason)),
            },
        }
        // 2. Workload identity.
        match get("AZURE_FEDERATED_TOKEN_FILE") {
            None => skipped.push(("workload identity", "AZURE_FEDERATED_TOKEN_FILE not set".into())),
            Some(file) => match app() {
                Ok(config) => sources.push(Source::WorkloadIdentity(TokenClient::new(
                    &config,
                    ClientCredential::workload_identity(file.trim()),
                ))),
                Err(reason) => sources.push(Source::Misconfigured("workload identity", reason)),
            },
        }
        // 3. Managed identity, without retries: an absent endpoint must fail fast.
        let identity = ManagedIdentity::from_env_with(&lookup);
        let identity = match get("AZURE_MANAGED_IDENTITY_CLIENT_ID") {
            Some(id) => identity.with_id(ManagedIdentityId::ClientId(id.trim().to_owned())),
            None => identity,
        };
        let no_retries = ManagedIdentityRetryPolicy { max_retries: 0, ..ManagedIdentityRetryPolicy::default() };
        sources.push(Source::ManagedIdentity(identity.with_retry_policy(no_retries)));
        // 4. The Azure CLI.
        #[cfg(feature = "azure-cli")]
        {
            let mut cli = crate::client::azure_cli::AzureCliCredential::new();
            if let Some(tenant) = get("AZURE_TENANT_ID") {
                cli = cli.with_tenant(tenant.trim());
            }
            // Read through `lookup` too, so that a caller's environment is the CLI's.
            if let Some(path) = get("PATH") {
                cli = cli.with_search_path(path);
            }
            sources.push(Source::AzureCli(cli));
        }
        Self { sources, skipped }
    }

    /// The sources that will be tried, in order.
    #[must_use]
    pub fn sources(&self) -> Vec<&'static str> {
        self.sources.iter().map(Source::name).collect()
    }

    /// A token for `scope` (usually `{resource}/.default`) from the first source that can
    /// give one.
    ///
    /// # Errors
    ///
    /// A [`ChainError`] listing each source and why it gave no token.
    pub async fn acquire_token(&self, scope: &str) -> Result<AcquiredToken, ChainError> {
        let mut attempts = self.skipped.clone();
        for source in &self.sources {
            let outcome = match source {
                Source::Environment(client) | Source::WorkloadIdentity(client) => {
                    client.acquire_app_token(&[scope]).await.map_err(|e| (false, e.to_string()))
                }
                Source::ManagedIdentity(identity) => {
                    identity.acquire_token(scope).await.map_err(|e| (managed_identity_unavailable(&e), e.to_string()))
                }
                #[cfg(feature = "azure-cli")]
                Source::AzureCli(cli) => {
                    cli.acquire_token(scope).await.map_err(|e| (e.is_unavailable(), e.to_string()))
                }
                Source::Misconfigured(_, reason) => Err((false, reason.clone())),
            };
            match outcome {
                Ok(token) => return Ok(token),
                Err((true, reason)) => attempts.push((source.name(), reason)),
                Err((false, reason)) => {
                    attempts.push((source.name(), reason));
                    return Err(ChainError { attempts, failed: true });
                }
            }
        }
        Err(ChainError { attempts, failed: false })
    }
}

/// A managed identity endpoint that is not there (no connection, a timeout) or has no
/// identity (IMDS answers 400 "Identity not found"), as Azure Identity reads it.
fn managed_identity_unavailable(e: &TokenError) -> bool {
    match e {
        TokenError::Request(_) => true,
        TokenError::ServerResponse(entra) => entra.status == 400,
        _ => false,
    }
}
