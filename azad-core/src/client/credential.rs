//! Client credentials: how this application proves its identity to the token endpoint.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::client::managed_identity::ManagedIdentity;
use crate::error::CredentialError;
use crate::secret::{ClientAssertion, ClientSecret};

/// The audience of federated tokens exchanged for app tokens, in the public cloud.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The `client_assertion_type` of JWT client assertions.
pub(crate) const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What a custom assertion callback is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertionRequest {
    /// The application's client id (`iss` and `sub` of a signed assertion).
    pub client_id: String,
    /// The token endpoint the assertion is for (its `aud`).
    pub token_endpoint: String,
}

type Callback = dyn Fn(AssertionRequest) -> Pin<Box<dyn Future<Output = Result<ClientAssertion, CredentialError>> + Send>>
    + Send
    + Sync;

enum Kind {
    Secret(ClientSecret),
    Certificate(CertificateCredential),
    WorkloadIdentity(PathBuf),
    ManagedIdentityFederation {
        identity: ManagedIdentity,
        audience: String,
    },
    Callback(Arc<Callback>),
    /// A proof that can change at run time (a rotating secret or certificate).
    Dynamic(Arc<dyn DynamicProof>),
    Public,
}

/// A client proof read from elsewhere at each request, refreshed once when the token endpoint
/// rejects it as invalid or expired (the `secrets` feature's rotating credential).
pub(crate) trait DynamicProof: Send + Sync + fmt::Debug + 'static {
    /// The current proof for `request`.
    fn client_auth(
        &self,
        request: AssertionRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ClientAuth, CredentialError>> + Send + '_>>;
    /// The token endpoint rejected `used` as invalid or expired: refetch the proof now. `true`
    /// when a different proof is available (the request is then retried once).
    fn rejected<'a>(&'a self, used: &'a ClientAuth) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// How this application authenticates to the token endpoint. Cheap to clone.
///
/// Client credentials: how this application proves its identity to the token endpoint.
///
/// | credential | proof sent |
/// | --- | --- |
/// | [`ClientCredential::secret`] | `client_secret` |
/// | [`ClientCredential::certificate`] | a client assertion signed with the certificate's key (PS256 by default) |
/// | [`ClientCredential::workload_identity`] | the federated token file (AKS workload identity), re-read on every request |
/// | [`ClientCredential::managed_identity_federation`] | a managed identity's token for `api://AzureADTokenExchange` (no secret anywhere) |
/// | [`ClientCredential::assertion_callback`] | whatever assertion the callback returns |
///
/// # Example
///
/// ```
/// use azad_core::ClientCredential;
///
/// let credential = ClientCredential::from_env_with(|name| match name {
///     "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/secrets/azure/tokens/azure-identity-token".into()),
///     _ => None,
/// })?;
/// assert_eq!(format!("{credential:?}"), "ClientCredential::WorkloadIdentity(\"/var/run/secrets/azure/tokens/azure-identity-token\")");
/// # Ok::<(), azad_core::CredentialError>(())
/// ```
#[derive(Clone)]
pub struct ClientCredential {
    kind: Arc<Kind>,
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::Secret(_) => f.write_str("ClientCredential::Secret([redacted])"),
            Kind::Certificate(c) => write!(f, "ClientCredential::Certificate({c:?})"),
            Kind::WorkloadIdentity(path) => {
                write!(f, "ClientCredential::WorkloadIdentity({path:?})")
            }
            Kind::ManagedIdentityFederation { identity, audience } => {
                write!(f, "ClientCredential::ManagedIdentityFederation({identity:?}, {audience:?})")
            }
            Kind::Callback(_) => f.write_str("ClientCredential::Callback"),
            Kind::Dynamic(d) => write!(f, "ClientCredential::Dynamic({d:?})"),
            Kind::Public => f.write_str("ClientCredential::Public"),
        }
    }
}

/// The proof to put in a token request.
pub(crate) enum ClientAuth {
    Secret(ClientSecret),
    Assertion(ClientAssertion),
    None,
}

impl ClientAuth {
    /// The form parameters carrying the proof.
    pub(crate) fn form_params(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::Secret(s) => vec![("client_secret", s.secret())],
            Self::Assertion(a) => {
                vec![("client_assertion_type", JWT_BEARER_ASSERTION), ("client_assertion", a.secret())]
            }
            Self::None => Vec::new(),
        }
    }
}

impl ClientCredential {
    fn new(kind: Kind) -> Self {
        Self { kind: Arc::new(kind) }
    }

    /// No credential: a public client (a command-line tool using the device code flow, a
    /// native app). Confidential-client grants (client credentials, on-behalf-of) will be
    /// refused by the token endpoint.
    #[must_use]
    pub fn public_client() -> Self {
        Self::new(Kind::Public)
    }

    /// A client secret.
    #[must_use]
    pub fn secret(secret: impl Into<ClientSecret>) -> Self {
        Self::new(Kind::Secret(secret.into()))
    }

    /// A certificate: each request carries a freshly signed client assertion.
    #[must_use]
    pub fn certificate(certificate: CertificateCredential) -> Self {
        Self::new(Kind::Certificate(certificate))
    }

    /// Workload identity (AKS): the federated token in `token_file` is the client assertion.
    /// The file is re-read on every token request, because the kubelet rotates it.
    #[must_use]
    pub fn workload_identity(token_file: impl Into<PathBuf>) -> Self {
        Self::new(Kind::WorkloadIdentity(token_file.into()))
    }

    /// A managed identity as federated credential of the app registration: the managed
    /// identity's token for `api://AzureADTokenExchange` is the client assertion, so no secret
    /// exists anywhere. The app registration must list the managed identity as a federated
    /// identity credential.
    #[must_use]
    pub fn managed_identity_federation(identity: ManagedIdentity) -> Self {
        Self::managed_identity_federation_with_audience(identity, TOKEN_EXCHANGE_AUDIENCE)
    }

    /// Like [`managed_identity_federation`](Self::managed_identity_federation), with the
    /// exchange audience of another cloud (`api://AzureADTokenExchangeUSGov`,
    /// `api://AzureADTokenExchangeChina`).
    #[must_use]
    pub fn managed_identity_federation_with_audience(identity: ManagedIdentity, audience: impl Into<String>) -> Self {
        Self::new(Kind::ManagedIdentityFederation { identity, audience: audience.into() })
    }

    /// A custom source of client assertions (a signing service, an HSM, another federation).
    pub fn assertion_callback<F, Fut>(callback: F) -> Self
    where
        F: Fn(AssertionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ClientAssertion, CredentialError>> + Send + 'static,
    {
        Self::new(Kind::Callback(Arc::new(move |req| Box::pin(callback(req)))))
    }

    /// A credential whose proof is produced (and refreshed) at run time.
    #[cfg_attr(not(feature = "secrets"), allow(dead_code))]
    pub(crate) fn dynamic(proof: Arc<dyn DynamicProof>) -> Self {
        Self::new(Kind::Dynamic(proof))
    }

    /// After the token endpoint rejected the proof as invalid or expired: `true` when a
    /// refreshed proof is available and the request should be retried once.
    /// Boxed: it sits on the token request's path, whose future stays small.
    pub(crate) fn refresh_after_rejection<'a>(
        &'a self,
        used: &'a ClientAuth,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        match &*self.kind {
            Kind::Dynamic(d) => d.rejected(used),
            _ => Box::pin(std::future::ready(false)),
        }
    }

    /// Picks a credential from the environment, in this order:
    ///
    /// 1. `AZURE_CLIENT_SECRET`: a client secret;
    /// 2. `AZURE_CLIENT_CERTIFICATE_PATH`: a certificate, PEM (certificate and key in one file)
    ///    or PKCS#12 (`.pfx`/`.p12`, password in `AZURE_CLIENT_CERTIFICATE_PASSWORD`);
    ///    `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true` adds `x5c` (subject name/issuer auth);
    /// 3. `AZURE_FEDERATED_TOKEN_FILE`: workload identity;
    /// 4. `AZURE_USE_MANAGED_IDENTITY=true` (with `AZURE_MANAGED_IDENTITY_CLIENT_ID` for a
    ///    user-assigned identity), or `AZAD_MANAGED_IDENTITY_FIC` (`system` or a user-assigned
    ///    identity's client id): a managed identity as federated credential
    ///    (`AZAD_FIC_AUDIENCE` for other clouds).
    ///
    /// [`AzureAdConfig::from_env`](crate::AzureAdConfig::from_env) reads the same variables in
    /// the same order, and refuses contradictory ones.
    ///
    /// # Errors
    ///
    /// [`CredentialError::NotConfigured`] when none is set, or the certificate's error.
    pub fn from_env() -> Result<Self, CredentialError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    ///
    /// # Errors
    ///
    /// [`CredentialError::NotConfigured`] when none is set, or the certificate's error.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(secret) = get("AZURE_CLIENT_SECRET") {
            return Ok(Self::secret(ClientSecret::new(secret)));
        }
        if let Some(path) = get("AZURE_CLIENT_CERTIFICATE_PATH") {
            let password = get("AZURE_CLIENT_CERTIFICATE_PASSWORD");
            let mut cert = CertificateCredential::from_file(&path, password.as_deref())?;
            if get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
                cert = cert.with_x5c(true);
            }
            return Ok(Self::certificate(cert));
        }
        if let Some(file) = get("AZURE_FEDERATED_TOKEN_FILE") {
            return Ok(Self::workload_identity(file));
        }
        let use_mi =
            get("AZURE_USE_MANAGED_IDENTITY").is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"));
        let fic = get("AZAD_MANAGED_IDENTITY_FIC").or_else(|| {
            (use_mi || get("AZURE_MANAGED_IDENTITY_CLIENT_ID").is_some())
                .then(|| get("AZURE_MANAGED_IDENTITY_CLIENT_ID").unwrap_or_else(|| "system".to_owned()))
        });
        if let Some(id) = fic {
            let identity = ManagedIdentity::from_env_with(&lookup);
            let identity = if id.eq_ignore_ascii_case("system") {
                identity
            } else {
                identity.with_id(crate::client::managed_identity::ManagedIdentityId::ClientId(id))
            };
            let audience = get("AZAD_FIC_AUDIENCE").unwrap_or_else(|| TOKEN_EXCHANGE_AUDIENCE.to_owned());
            return Ok(Self::managed_identity_federation_with_audience(identity, audience));
        }
        Err(CredentialError::NotConfigured(
            "AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, AZURE_USE_MANAGED_IDENTITY or AZAD_MANAGED_IDENTITY_FIC",
        ))
    }

    /// Produces the proof for one token request.
    pub(crate) async fn client_auth(
        &self,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<ClientAuth, CredentialError> {
        match &*self.kind {
            Kind::Secret(s) => Ok(ClientAuth::Secret(s.clone())),
            Kind::Certificate(c) => Ok(ClientAuth::Assertion(c.assertion(client_id, token_endpoint)?)),
            Kind::WorkloadIdentity(path) => read_token_file(path).await.map(ClientAuth::Assertion),
            Kind::ManagedIdentityFederation { identity, audience } => {
                let token = identity
                    .acquire_token(audience)
                    .await
                    .map_err(|e| CredentialError::ManagedIdentity(Box::new(e)))?;
                Ok(ClientAuth::Assertion(ClientAssertion::new(token.secret())))
            }
            Kind::Public => Ok(ClientAuth::None),
            Kind::Callback(cb) => {
                let req =
                    AssertionRequest { client_id: client_id.to_owned(), token_endpoint: token_endpoint.to_owned() };
                cb(req).await.map(ClientAuth::Assertion)
            }
            Kind::Dynamic(d) => {
                let req =
                    AssertionRequest { client_id: client_id.to_owned(), token_endpoint: token_endpoint.to_owned() };
                d.client_auth(req).await
            }
        }
    }
}

/// Reads a federated token file; missing, unreadable or empty is a typed error.
pub(crate) async fn read_token_file(path: &Path) -> Result<ClientAssertion, CredentialError> {
    let err = |reason: String| CredentialError::TokenFile { path: path.display().to_string(), reason };
    let text = tokio::fs::read_to_string(path).await.map_err(|e| err(e.kind().to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(ClientAssertion::new(token))
}

/// The signature algorithm of certificate client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256 (the default; what Entra recommends).
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

/// A certificate and its RSA private key, signing client assertions.
///
/// Loaded from PEM (certificate and private key, PKCS#8 or PKCS#1) or PKCS#12 (feature
/// `pkcs12`). The key must belong to the certificate: this is checked when loading.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaKeyPair>,
    chain: Vec<Vec<u8>>,
    thumbprint_s256: String,
    algorithm: AssertionAlgorithm,
    send_chain: bool,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256)
            .field("algorithm", &self.algorithm)
            .field("send_chain", &self.send_chain)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn cert_error(msg: impl Into<String>) -> CredentialError {
    CredentialError::Certificate(msg.into())
}

impl CertificateCredential {
    /// From PEM text holding the certificate (and any chain) and an unencrypted RSA private
    /// key. The two may be in one text or two.
    ///
    /// # Errors
    ///
    /// [`CredentialError::Certificate`] when a part is missing, encrypted, not RSA, or when the
    /// key does not belong to the certificate.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, CredentialError> {
        let mut certs = Vec::new();
        let mut key = None;
        for text in [certificate_pem, key_pem] {
            for block in pem::parse_many(text).map_err(|e| cert_error(format!("invalid PEM: {e}")))? {
                match block.tag() {
                    "CERTIFICATE" => certs.push(block.into_contents()),
                    "PRIVATE KEY" => {
                        key = Some(
                            RsaKeyPair::from_pkcs8(block.contents())
                                .map_err(|_| cert_error("the private key is not an RSA PKCS#8 key"))?,
                        );
                    }
                    "RSA PRIVATE KEY" => {
                        key = Some(
                            RsaKeyPair::from_der(block.contents())
                                .map_err(|_| cert_error("the private key is not a valid PKCS#1 RSA key"))?,
                        );
                    }
                    "ENCRYPTED PRIVATE KEY" => {
                        return Err(cert_error("encrypted PEM private keys are not supported; use PKCS#12"));
                    }
                    _ => {}
                }
            }
        }
        let key = key.ok_or_else(|| cert_error("no private key in the PEM text"))?;
        Self::from_parts(key, certs)
    }

    /// From a PEM file (certificate and key) or a PKCS#12 file (`.pfx`, `.p12`, or whenever a
    /// password is given).
    ///
    /// # Errors
    ///
    /// [`CredentialError::Certificate`] if the file cannot be read or used.
    pub fn from_file(path: impl AsRef<Path>, password: Option<&str>) -> Result<Self, CredentialError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| cert_error(format!("cannot read {}: {}", path.display(), e.kind())))?;
        let pkcs12 = password.is_some()
            || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
        if pkcs12 {
            #[cfg(feature = "pkcs12")]
            return Self::from_pkcs12(&bytes, &crate::secret::KeyPassword::new(password.unwrap_or_default()));
            #[cfg(not(feature = "pkcs12"))]
            return Err(cert_error("PKCS#12 needs the `pkcs12` feature of azad-core"));
        }
        let text = String::from_utf8(bytes).map_err(|_| cert_error("the PEM file is not text"))?;
        Self::from_pem(&text, "")
    }

    /// From PKCS#12 (`.pfx`) bytes and their password.
    ///
    /// # Errors
    ///
    /// [`CredentialError::Certificate`] for a wrong password, no key, or a key that is not RSA.
    #[cfg(feature = "pkcs12")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pkcs12")))]
    pub fn from_pkcs12(der: &[u8], password: &crate::secret::KeyPassword) -> Result<Self, CredentialError> {
        let store =
            p12_keystore::KeyStore::from_pkcs12(der, password.secret(), p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .map_err(|_| cert_error("cannot open the PKCS#12 file (wrong password or damaged file)"))?;
        let (_, chain) =
            store.private_key_chain().ok_or_else(|| cert_error("the PKCS#12 file holds no private key"))?;
        let key = RsaKeyPair::from_pkcs8(chain.key().as_der())
            .map_err(|_| cert_error("the PKCS#12 private key is not RSA"))?;
        let certs = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        Self::from_parts(key, certs)
    }

    fn from_parts(key: RsaKeyPair, chain: Vec<Vec<u8>>) -> Result<Self, CredentialError> {
        let leaf = chain.first().ok_or_else(|| cert_error("no certificate"))?;
        // The key must belong to the leaf certificate: sign a probe and verify it with the
        // certificate's public key.
        let probe = b"azad certificate/key pairing probe";
        let mut signature = vec![0u8; key.public_modulus_len()];
        key.sign(&sig::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), probe, &mut signature)
            .map_err(|_| cert_error("the private key cannot sign"))?;
        let der = rustls_pki_types::CertificateDer::from(leaf.as_slice());
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| cert_error("the certificate cannot be parsed"))?;
        cert.verify_signature(webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256, probe, &signature)
            .map_err(|_| cert_error("the private key does not belong to the certificate"))?;
        let thumbprint_s256 = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf));
        Ok(Self { key: Arc::new(key), chain, thumbprint_s256, algorithm: AssertionAlgorithm::PS256, send_chain: false })
    }

    /// Signs assertions with `algorithm` (PS256 by default).
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sends the certificate chain as the `x5c` header (RFC 7515 §4.1.6) of assertions, for
    /// subject name/issuer authentication (MSAL's `sendX5C`).
    #[must_use]
    pub fn with_x5c(mut self, send: bool) -> Self {
        self.send_chain = send;
        self
    }

    /// The base64url SHA-256 thumbprint of the certificate (`x5t#S256`).
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint_s256
    }

    /// A signed client assertion for `token_endpoint`: `iss` = `sub` = the client id, a unique
    /// `jti`, valid from now for 10 minutes.
    ///
    /// # Errors
    ///
    /// [`CredentialError::Certificate`] if signing fails.
    pub fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<ClientAssertion, CredentialError> {
        let now = crate::clock::now_secs();
        let mut header = json!({
            "alg": match self.algorithm { AssertionAlgorithm::PS256 => "PS256", AssertionAlgorithm::RS256 => "RS256" },
            "typ": "JWT",
            "x5t#S256": self.thumbprint_s256,
        });
        if self.send_chain {
            header["x5c"] = self.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>().into();
        }
        let jti = uuid::Builder::from_random_bytes(random16()).into_uuid().to_string();
        let claims = json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let mut jwt = String::new();
        URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
        let padding: &'static dyn sig::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::PS256 => &sig::RSA_PSS_SHA256,
            AssertionAlgorithm::RS256 => &sig::RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(padding, &aws_lc_rs::rand::SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| cert_error("signing the assertion failed"))?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(ClientAssertion::new(jwt))
    }
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let c = ClientCredential::from_env_with(env(&[
            ("AZURE_CLIENT_SECRET", "s3cr3t"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
        ]))
        .unwrap();
        assert_eq!(format!("{c:?}"), "ClientCredential::Secret([redacted])");
        let c = ClientCredential::from_env_with(env(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
            ("AZAD_MANAGED_IDENTITY_FIC", "system"),
        ]))
        .unwrap();
        assert_eq!(format!("{c:?}"), "ClientCredential::WorkloadIdentity(\"/t\")");
        let c = ClientCredential::from_env_with(env(&[("AZAD_MANAGED_IDENTITY_FIC", "system")])).unwrap();
        assert!(format!("{c:?}").starts_with("ClientCredential::ManagedIdentityFederation("));
        let e = ClientCredential::from_env_with(env(&[])).unwrap_err();
        assert!(matches!(e, CredentialError::NotConfigured(_)));
        let e =
            ClientCredential::from_env_with(env(&[("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pem")])).unwrap_err();
        assert!(matches!(e, CredentialError::Certificate(_)), "{e:?}");
    }

    #[tokio::test]
    async fn token_file_errors_are_typed() {
        let missing = read_token_file(Path::new("/nonexistent/azad/token")).await.unwrap_err();
        assert!(matches!(missing, CredentialError::TokenFile { .. }));
        let dir = std::env::temp_dir().join(format!("azad-tokenfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty");
        std::fs::write(&file, " \n").unwrap();
        let empty = read_token_file(&file).await.unwrap_err();
        assert_eq!(
            empty,
            CredentialError::TokenFile { path: file.display().to_string(), reason: "the file is empty".into() }
        );
        std::fs::write(&file, "header.payload.sig\n").unwrap();
        assert_eq!(read_token_file(&file).await.unwrap().secret(), "header.payload.sig");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(CertificateCredential::from_pem("", ""), Err(CredentialError::Certificate(_))));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = CertificateCredential::from_pem("", encrypted).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
    }
}
