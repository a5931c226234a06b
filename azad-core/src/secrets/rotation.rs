//! [`RotatingCredential`]: a [`ClientCredential`] whose client secret or certificate is read
//! from a [`SecretCache`] (Key Vault, OpenBao/Vault KV v2, files...) and follows rotations
//! without a restart:
//!
//! - **on schedule**: at the first token request after each `refresh_interval` (default
//!   5 minutes) the secret is read again from its sources; a new version replaces the old one.
//!   A failed check keeps the current proof (an event at WARN) and is retried at the next
//!   interval.
//! - **at once on rejection**: when the token endpoint answers `invalid_client` with
//!   AADSTS7000215 (invalid secret), AADSTS7000222 (expired secret) or AADSTS700027 (key not
//!   registered), the secret is refetched once and the request retried once; if the source
//!   still has the rejected value, the error is returned (never a loop).
//!
//! Concurrent requests rejected together share one refetch: a request whose proof is already
//! outdated just retries with the current one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cache::SecretCache;
use super::chain::ResolvedSecret;
use super::source::SecretError;
use crate::client::credential::{AssertionRequest, CertificateCredential, ClientAuth, ClientCredential, DynamicProof};
use crate::error::CredentialError;
use crate::secret::ClientSecret;

/// What the secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProofKind {
    /// A client secret, as is.
    Secret,
    /// A certificate and its private key: PEM, or base64 PKCS#12 (Key Vault's
    /// `application/x-pkcs12` content type, feature `pkcs12`, empty password).
    Certificate,
}

#[derive(Clone)]
enum Proof {
    Secret(ClientSecret),
    Certificate(CertificateCredential),
}

#[derive(Clone)]
struct Current {
    proof: Proof,
    version: Option<String>,
}

struct Inner {
    cache: SecretCache,
    name: String,
    kind: ProofKind,
    refresh_interval: Duration,
    current: Mutex<Option<(Current, Instant)>>,
    refetch: tokio::sync::Mutex<()>,
    rotations: AtomicU64,
}

/// A client credential read from a secret source and kept current.
///
/// - **on schedule**: at the first token request after each `refresh_interval` (default
///   5 minutes) the secret is read again from its sources; a new version replaces the old one.
///   A failed check keeps the current proof (an event at WARN) and is retried at the next
///   interval.
/// - **at once on rejection**: when the token endpoint answers `invalid_client` with
///   AADSTS7000215 (invalid secret), AADSTS7000222 (expired secret) or AADSTS700027 (key not
///   registered), the secret is refetched once and the request retried once; if the source
///   still has the rejected value, the error is returned (never a loop).
///
/// Concurrent requests rejected together share one refetch: a request whose proof is already
/// outdated just retries with the current one.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use azad_core::{AzureAdConfig, TokenClient};
/// use azad_core::secrets::{KeyVaultSource, RotatingCredential, SecretCache, SecretChain};
///
/// # #[allow(dead_code)]
/// # async fn run(config: AzureAdConfig, vault_reader: TokenClient) -> Result<(), Box<dyn std::error::Error>> {
/// // The API's own client secret lives in Key Vault as `api-client-secret`.
/// let vault = KeyVaultSource::new("https://contoso.vault.azure.net", vault_reader)?;
/// let cache = SecretCache::new(SecretChain::new([vault]), Duration::from_secs(600));
/// let credential = RotatingCredential::client_secret(cache, "api-client-secret")
///     .with_refresh_interval(Duration::from_secs(300));
/// let client = TokenClient::new(&config, credential.client_credential());
/// // Rotated in Key Vault: picked up within 5 minutes, or at once if Entra refuses the old one.
/// let downstream = client.acquire_app_token(&["api://downstream/.default"]).await?;
/// # drop(downstream);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RotatingCredential {
    inner: Arc<Inner>,
}

impl fmt::Debug for RotatingCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.current_version();
        f.debug_struct("RotatingCredential")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.kind)
            .field("version", &version)
            .field("refresh_interval", &self.inner.refresh_interval)
            .finish_non_exhaustive()
    }
}

impl RotatingCredential {
    fn new(cache: SecretCache, name: &str, kind: ProofKind) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache,
                name: name.to_owned(),
                kind,
                refresh_interval: Duration::from_secs(300),
                current: Mutex::new(None),
                refetch: tokio::sync::Mutex::new(()),
                rotations: AtomicU64::new(0),
            }),
        }
    }

    /// A client secret held in secret `name`.
    #[must_use]
    pub fn client_secret(cache: SecretCache, name: &str) -> Self {
        Self::new(cache, name, ProofKind::Secret)
    }

    /// A certificate with its private key held in secret `name`: PEM (Key Vault's
    /// `application/x-pem-file`), or base64 PKCS#12 without password (Key Vault's
    /// `application/x-pkcs12`, feature `pkcs12`).
    #[must_use]
    pub fn certificate(cache: SecretCache, name: &str) -> Self {
        Self::new(cache, name, ProofKind::Certificate)
    }

    /// How often the source is checked for a new version (default 5 minutes).
    #[must_use]
    pub fn with_refresh_interval(self, interval: Duration) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            cache: shared.cache.clone(),
            name: shared.name.clone(),
            kind: shared.kind,
            refresh_interval: shared.refresh_interval,
            current: Mutex::new(None),
            refetch: tokio::sync::Mutex::new(()),
            rotations: AtomicU64::new(0),
        });
        Self { inner: Arc::new(Inner { refresh_interval: interval, ..inner }) }
    }

    /// The [`ClientCredential`] for a [`TokenClient`](crate::TokenClient) or a sign-in client.
    #[must_use]
    pub fn client_credential(&self) -> ClientCredential {
        ClientCredential::dynamic(self.inner.clone())
    }

    /// The version in use, once loaded.
    #[must_use]
    pub fn current_version(&self) -> Option<String> {
        let current = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().and_then(|(c, _)| c.version.clone())
    }

    /// How many times a new version replaced the one in use.
    #[must_use]
    pub fn rotations(&self) -> u64 {
        self.inner.rotations.load(Ordering::Relaxed)
    }

    /// Loads the secret now (at start-up, to fail early).
    ///
    /// # Errors
    ///
    /// The source's error, or [`SecretError::InvalidResponse`] when the value is not a usable
    /// certificate.
    pub async fn load(&self) -> Result<(), SecretError> {
        self.inner.current().await.map(|_| ())
    }
}

impl Inner {
    fn decode(&self, secret: &ResolvedSecret) -> Result<Current, SecretError> {
        let proof = match self.kind {
            ProofKind::Secret => Proof::Secret(ClientSecret::new(secret.expose())),
            ProofKind::Certificate => {
                let text = secret.expose();
                let certificate =
                    if text.contains("-----BEGIN") { CertificateCredential::from_pem(text, "") } else { pkcs12(text) };
                Proof::Certificate(certificate.map_err(|e| {
                    SecretError::invalid_response(format!("secret {:?} is not a usable certificate: {e}", self.name))
                })?)
            }
        };
        Ok(Current { proof, version: secret.version().map(str::to_owned) })
    }

    fn install(&self, current: Current) {
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((old, _)) = slot.as_ref()
            && old.version != current.version
        {
            self.rotations.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                target: super::audit::AUDIT_TARGET, name = self.name.as_str(),
                old_version = old.version.as_deref().unwrap_or(""), version = current.version.as_deref().unwrap_or(""),
                "client credential rotated"
            );
        }
        *slot = Some((current, Instant::now()));
    }

    /// The proof to use: loaded on first use, checked again after the refresh interval.
    async fn current(&self) -> Result<Current, SecretError> {
        let snapshot = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match snapshot {
            Some((current, checked)) if checked.elapsed() < self.refresh_interval => Ok(current),
            Some((current, _)) => {
                // A scheduled check must never hold token requests up: while one request checks
                // (the source may be slow or retrying), the others keep the current proof.
                let Ok(_guard) = self.refetch.try_lock() else {
                    return Ok(current);
                };
                // Another request may have checked meanwhile.
                if let Some((c, checked)) = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
                    && checked.elapsed() < self.refresh_interval
                {
                    return Ok(c);
                }
                match self.cache.refresh(&self.name).await.and_then(|s| self.decode(&s)) {
                    Ok(fresh) => {
                        self.install(fresh.clone());
                        Ok(fresh)
                    }
                    Err(e) => {
                        tracing::warn!(
                            target: super::audit::AUDIT_TARGET, name = self.name.as_str(), error = %e,
                            "scheduled credential rotation check failed; keeping the current credential"
                        );
                        // Check again at the next interval, not at every request.
                        self.install(current.clone());
                        Ok(current)
                    }
                }
            }
            None => {
                let _guard = self.refetch.lock().await;
                if let Some((c, _)) = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return Ok(c);
                }
                let secret = self.cache.get(&self.name, None).await?;
                let current = self.decode(&secret)?;
                self.install(current.clone());
                Ok(current)
            }
        }
    }

    fn is_current(&self, used: &ClientAuth) -> bool {
        let slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some((current, _)) = slot.as_ref() else { return false };
        match (&current.proof, used) {
            (Proof::Secret(s), ClientAuth::Secret(u)) => s == u,
            (Proof::Certificate(c), ClientAuth::Assertion(a)) => {
                assertion_thumbprint(a.secret()).as_deref() == Some(c.thumbprint())
            }
            _ => false,
        }
    }
}

/// The `x5t#S256` of a client assertion's header.
fn assertion_thumbprint(jwt: &str) -> Option<String> {
    let header = jwt.split('.').next()?;
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    json.get("x5t#S256")?.as_str().map(str::to_owned)
}

#[cfg(feature = "pkcs12")]
fn pkcs12(text: &str) -> Result<CertificateCredential, CredentialError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| CredentialError::Certificate("neither PEM nor base64 PKCS#12".into()))?;
    CertificateCredential::from_pkcs12(&der, &crate::secret::KeyPassword::new(""))
}

#[cfg(not(feature = "pkcs12"))]
fn pkcs12(_text: &str) -> Result<CertificateCredential, CredentialError> {
    Err(CredentialError::Certificate("not PEM (PKCS#12 needs the `pkcs12` feature)".into()))
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingCredential").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl DynamicProof for Inner {
    fn client_auth(
        &self,
        request: AssertionRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ClientAuth, CredentialError>> + Send + '_>> {
        Box::pin(async move {
            let current = self.current().await.map_err(|e| CredentialError::SecretSource(e.to_string()))?;
            match current.proof {
                Proof::Secret(s) => Ok(ClientAuth::Secret(s)),
                Proof::Certificate(c) => {
                    c.assertion(&request.client_id, &request.token_endpoint).map(ClientAuth::Assertion)
                }
            }
        })
    }

    fn rejected<'a>(&'a self, used: &'a ClientAuth) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let _guard = self.refetch.lock().await;
            if !self.is_current(used) {
                // Already rotated by a concurrent request: retry with the current proof.
                return true;
            }
            match self.cache.refresh(&self.name).await.and_then(|s| self.decode(&s)) {
                Ok(fresh) => {
                    let changed = {
                        let slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
                        slot.as_ref().is_none_or(|(c, _)| c.version != fresh.version)
                    };
                    if changed {
                        self.install(fresh);
                    } else {
                        tracing::error!(
                            target: super::audit::AUDIT_TARGET, name = self.name.as_str(),
                            "the token endpoint rejected the client credential and its source has no newer version"
                        );
                    }
                    changed
                }
                Err(e) => {
                    tracing::error!(
                        target: super::audit::AUDIT_TARGET, name = self.name.as_str(), error = %e,
                        "the token endpoint rejected the client credential and refetching it failed"
                    );
                    false
                }
            }
        })
    }
}
