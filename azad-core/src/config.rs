//! Configuration of a protected API: authority, client id, audiences and validation policy.
//!
//! Three ways in, all validated the same way and all failing with a [`ConfigError`] that names
//! the offending field in the vocabulary of the source:
//!
//! - the builder, [`AzureAdConfig::builder`];
//! - the environment, [`AzureAdConfig::from_env`];
//! - serde, from a section shaped like Microsoft.Identity.Web's `AzureAd`.
//!
//! # Audiences
//!
//! By default a token's `aud` must be the API's client id (what Entra writes in v2.0 access
//! tokens) or `api://{client id}` (the default App ID URI, which v1.0 access tokens carry when
//! the client asked for it): see Microsoft identity platform, "Access tokens", claim `aud`.
//! [`AzureAdConfigBuilder::add_audience`] accepts more on top of these (for example
//! `spn:{client id}`, or a custom App ID URI); [`AzureAdConfigBuilder::audiences`] replaces
//! them.
//!
//! # Tenants, issuers and keys
//!
//! A configuration that names a tenant accepts only that tenant's tokens, whatever the key
//! source, and one whose parts name different tenants fails to build
//! ([`ConfigError::Conflict`]). Issuers follow each cloud's real forms (see
//! [`Cloud`]), and signing keys are trusted only on the authority's own origin
//! unless [`AzureAdConfigBuilder::trusted_jwks_origin`] names another.
//!
//! # Example
//!
//! ```
//! use azad_core::AzureAdConfig;
//!
//! let cfg = AzureAdConfig::builder()
//!     .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .build()?;
//! assert_eq!(cfg.audiences(), ["6e74172b-be56-4843-9ff4-e66a39bb12e3", "api://6e74172b-be56-4843-9ff4-e66a39bb12e3"]);
//!
//! let section: AzureAdConfig = serde_json::from_str(r#"{
//!     "Instance": "https://login.microsoftonline.com/",
//!     "TenantId": "organizations",
//!     "ClientId": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
//!     "Audience": "api://my-api"
//! }"#)?;
//! assert!(section.authority().is_multi_tenant());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::authority::{Authority, Cloud, Tenant, is_guid};
use crate::error::ConfigError;
use crate::http::HttpClient;

/// An RSA signature algorithm a token may be signed with.
///
/// `none` and the HMAC algorithms cannot be expressed: they are always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what Entra ID uses).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
}

impl SigningAlgorithm {
    /// The JOSE name (`RS256`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }

    /// Parses a JOSE algorithm name; `None` for anything that is not an RSA algorithm.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            _ => return None,
        })
    }

    /// The aws-lc verification algorithm: the one `jsonwebtoken`'s aws-lc backend uses for
    /// this algorithm (RSA moduli of 2048 to 8192 bits).
    pub(crate) fn aws_lc_params(self) -> &'static aws_lc_rs::signature::RsaParameters {
        use aws_lc_rs::signature as sig;
        match self {
            Self::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        }
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::RS384 => jsonwebtoken::Algorithm::RS384,
            Self::RS512 => jsonwebtoken::Algorithm::RS512,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
            Self::PS384 => jsonwebtoken::Algorithm::PS384,
            Self::PS512 => jsonwebtoken::Algorithm::PS512,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which access-token versions (`ver` claim) are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenVersions {
    /// v1.0 and v2.0 tokens (the default, like Microsoft.Identity.Web).
    Both,
    /// Only v1.0 tokens.
    V1Only,
    /// Only v2.0 tokens.
    V2Only,
}

impl TokenVersions {
    pub(crate) fn accepts(self, ver: Option<&str>) -> bool {
        match self {
            Self::Both => true,
            Self::V1Only => ver == Some("1.0"),
            Self::V2Only => ver == Some("2.0"),
        }
    }
}

/// How the signing-key cache refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksPolicy {
    /// Background refresh interval (default 12 hours, like Microsoft.IdentityModel).
    pub refresh_interval: Duration,
    /// Minimum time between refreshes caused by an unknown `kid` (default 5 minutes).
    pub min_refresh_interval: Duration,
    /// Wait after a failed fetch before the next attempt (default 10 seconds, at least 10 ms),
    /// doubled on each further failure up to 5 minutes (or this interval, if longer).
    pub retry_interval: Duration,
    /// Maximum number of keys a JWKS may hold; a larger document is refused (default 100).
    pub max_keys: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(12 * 3600),
            min_refresh_interval: Duration::from_secs(300),
            retry_interval: Duration::from_secs(10),
            max_keys: 100,
        }
    }
}

/// Limits of the HTTP client used for metadata, keys and tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Timeout to establish a connection (default 5 seconds).
    pub connect_timeout: Duration,
    /// Timeout of a whole request (default 10 seconds).
    pub timeout: Duration,
    /// Largest accepted response body (default 512 KiB).
    pub max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 512 * 1024,
        }
    }
}

/// A JWKS document given up front, with the issuer(s) its tokens carry: no network at all.
///
/// For air-gapped deployments and for replaying recorded tokens. An issuer may contain
/// `{tenantid}` to accept any tenant (combine with an allow-list); with a tenant id configured,
/// only that tenant's tokens are accepted, and an issuer naming another tenant id fails the
/// build with [`ConfigError::Conflict`].
#[derive(Clone, PartialEq, Eq)]
pub struct StaticJwks {
    pub(crate) json: String,
    pub(crate) issuers: Vec<String>,
}

impl StaticJwks {
    /// A static key set from JWKS JSON text.
    #[must_use]
    pub fn from_json(json: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self { json: json.into(), issuers: vec![issuer.into()] }
    }

    /// Reads a JWKS file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] (`static_jwks`) if the file cannot be read.
    pub fn from_file(path: impl Into<PathBuf>, issuer: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.into();
        let json = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::invalid("static_jwks", format!("cannot read {}: {e}", path.display())))?;
        Ok(Self::from_json(json, issuer))
    }

    /// Accepts one more issuer (for example both the v1 and v2 issuer of a tenant).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }
}

impl fmt::Debug for StaticJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticJwks").field("bytes", &self.json.len()).field("issuers", &self.issuers).finish()
    }
}

/// The validated configuration of an API protected by Microsoft Entra ID.
///
/// See the [module docs](crate::config) for an example.
#[derive(Clone)]
pub struct AzureAdConfig {
    pub(crate) authority: Authority,
    pub(crate) client_id: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) allowed_tenants: Option<Vec<String>>,
    /// The tenant id the configuration names (a tenant id, `consumers`, or a tenant id given
    /// with a metadata URL): every accepted token's `tid` must be it, whatever the key source.
    pub(crate) required_tenant: Option<String>,
    pub(crate) token_versions: TokenVersions,
    pub(crate) algorithms: Vec<SigningAlgorithm>,
    pub(crate) leeway: Duration,
    pub(crate) require_scopes_or_roles: bool,
    pub(crate) app_specific_signing_keys: bool,
    pub(crate) static_jwks: Option<StaticJwks>,
    pub(crate) jwks_policy: JwksPolicy,
    pub(crate) http_options: HttpOptions,
    pub(crate) max_token_bytes: usize,
    pub(crate) validated_token_cache_capacity: u64,
    pub(crate) http_client: Option<Arc<dyn HttpClient>>,
    /// Extra trusted root certificates (DER) of the default HTTP client.
    pub(crate) extra_root_certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for AzureAdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdConfig")
            .field("authority", &self.authority.url())
            .field("client_id", &self.client_id)
            .field("audiences", &self.audiences)
            .field("allowed_tenants", &self.allowed_tenants)
            .field("required_tenant", &self.required_tenant)
            .field("token_versions", &self.token_versions)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("require_scopes_or_roles", &self.require_scopes_or_roles)
            .field("app_specific_signing_keys", &self.app_specific_signing_keys)
            .field("static_jwks", &self.static_jwks)
            .field("jwks_policy", &self.jwks_policy)
            .field("http_options", &self.http_options)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("validated_token_cache_capacity", &self.validated_token_cache_capacity)
            .field("custom_http_client", &self.http_client.is_some())
            .field("extra_root_certificates", &self.extra_root_certificates.len())
            .finish()
    }
}

impl AzureAdConfig {
    /// Starts a builder.
    pub fn builder() -> AzureAdConfigBuilder {
        AzureAdConfigBuilder::default()
    }

    /// Reads the configuration from the process environment.
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `AZURE_TENANT_ID` | tenant id, domain, `organizations`, `common` or `consumers` (required unless `AZAD_METADATA_URL`; with it, a tenant id that every token's `tid` must be) |
    /// | `AZURE_CLIENT_ID` | the API's application (client) id (required) |
    /// | `AZURE_AUTHORITY_HOST` | authority host, default `https://login.microsoftonline.com/` |
    /// | `AZAD_CLOUD` | `public`, `usgov` or `china` (instead of `AZURE_AUTHORITY_HOST`) |
    /// | `AZAD_AUDIENCES` | accepted audiences, comma- or space-separated (default: client id and `api://{client id}`) |
    /// | `AZAD_EXTRA_AUDIENCES` | audiences accepted on top of those (e.g. `spn:{client id}`), comma- or space-separated |
    /// | `AZAD_TRUSTED_JWKS_ORIGINS` | origins besides the authority's own that may publish its signing keys |
    /// | `AZAD_ALLOWED_TENANTS` | for `common`/`organizations`: tenant ids allowed, comma- or space-separated |
    /// | `AZAD_METADATA_URL` | an OpenID Connect discovery URL (B2C, External ID, other providers) |
    /// | `AZAD_ISSUER` | with `AZAD_METADATA_URL`: the issuer its tokens carry, when it differs |
    /// | `AZAD_EXTRA_CA_CERTS` | a PEM file of CA certificates trusted in addition to the platform's (a local authority such as the dev tenant over HTTPS) |
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the environment variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (for tests and
    /// for configuration systems that are not the process environment).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the environment variable at fault.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut b = Self::builder();
        if let Some(v) = get("AZURE_TENANT_ID") {
            b = b.tenant_id(v);
        }
        if let Some(v) = get("AZURE_CLIENT_ID") {
            b = b.client_id(v);
        }
        if let Some(v) = get("AZURE_AUTHORITY_HOST") {
            b = b.instance(v);
        }
        if let Some(v) = get("AZAD_CLOUD") {
            match Cloud::from_name(&v) {
                Some(cloud) => b = b.cloud(cloud),
                None => {
                    return Err(ConfigError::invalid("AZAD_CLOUD", "expected `public`, `usgov` or `china`"));
                }
            }
        }
        if let Some(v) = get("AZAD_AUDIENCES") {
            b = b.audiences(split_list(&v));
        }
        if let Some(v) = get("AZAD_EXTRA_AUDIENCES") {
            b = b.extra_audiences(split_list(&v));
        }
        if let Some(v) = get("AZAD_TRUSTED_JWKS_ORIGINS") {
            for origin in split_list(&v) {
                b = b.trusted_jwks_origin(origin);
            }
        }
        if let Some(v) = get("AZAD_ALLOWED_TENANTS") {
            b = b.allowed_tenants(split_list(&v));
        }
        if let Some(v) = get("AZAD_METADATA_URL") {
            b = b.metadata_url(v);
        }
        if let Some(v) = get("AZAD_ISSUER") {
            b = b.issuer(v);
        }
        if let Some(v) = get("AZAD_EXTRA_CA_CERTS") {
            b = b.extra_root_certificates_file(v.trim());
        }
        b.build().map_err(|e| e.renamed(env_name))
    }

    /// The authority tokens come from.
    #[must_use]
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The API's application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The accepted audiences.
    #[must_use]
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The tenant allow-list for multi-tenant authorities, if any.
    #[must_use]
    pub fn allowed_tenants(&self) -> Option<&[String]> {
        self.allowed_tenants.as_deref()
    }

    /// The accepted token versions.
    #[must_use]
    pub fn token_versions(&self) -> TokenVersions {
        self.token_versions
    }

    /// The allowed signing algorithms.
    #[must_use]
    pub fn algorithms(&self) -> &[SigningAlgorithm] {
        &self.algorithms
    }

    /// The allowed clock skew for `exp` and `nbf`.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The signing-key refresh policy.
    #[must_use]
    pub fn jwks_policy(&self) -> JwksPolicy {
        self.jwks_policy
    }

    /// The HTTP client limits.
    #[must_use]
    pub fn http_options(&self) -> HttpOptions {
        self.http_options
    }

    /// The HTTP client used for metadata and keys (a shared default unless one was configured).
    #[must_use]
    pub fn http_client(&self) -> Option<Arc<dyn HttpClient>> {
        self.http_client
            .clone()
            .or_else(|| crate::http::default_client(self.http_options, &self.extra_root_certificates))
    }

    /// The CA certificates (DER) the default HTTP client trusts in addition to the platform's
    /// roots (see [`AzureAdConfigBuilder::extra_root_certificates_pem`]).
    #[must_use]
    pub fn extra_root_certificates(&self) -> &[Vec<u8>] {
        &self.extra_root_certificates
    }

    /// Returns a copy with a different HTTP client (for tests, proxies or custom TLS).
    #[must_use]
    pub fn with_http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }
}

impl PartialEq for AzureAdConfig {
    fn eq(&self, other: &Self) -> bool {
        self.authority == other.authority
            && self.client_id == other.client_id
            && self.audiences == other.audiences
            && self.allowed_tenants == other.allowed_tenants
            && self.required_tenant == other.required_tenant
            && self.token_versions == other.token_versions
            && self.algorithms == other.algorithms
            && self.leeway == other.leeway
            && self.require_scopes_or_roles == other.require_scopes_or_roles
            && self.app_specific_signing_keys == other.app_specific_signing_keys
            && self.static_jwks == other.static_jwks
            && self.jwks_policy == other.jwks_policy
            && self.http_options == other.http_options
            && self.max_token_bytes == other.max_token_bytes
            && self.validated_token_cache_capacity == other.validated_token_cache_capacity
            && self.extra_root_certificates == other.extra_root_certificates
    }
}

/// The DER certificates of a PEM source: at least one `CERTIFICATE` block, each parseable.
fn parse_root_certificates(source: &RootSource) -> Result<Vec<Vec<u8>>, ConfigError> {
    let field = "extra_root_certificates";
    let (text, origin) = match source {
        RootSource::Pem(text) => (text.clone(), "the PEM text".to_owned()),
        RootSource::File(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::invalid(field, format!("cannot read {}: {e}", path.display())))?,
            path.display().to_string(),
        ),
    };
    let blocks = pem::parse_many(text.as_bytes())
        .map_err(|e| ConfigError::invalid(field, format!("{origin} is not valid PEM: {e}")))?;
    let certs: Vec<Vec<u8>> =
        blocks.into_iter().filter(|p| p.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect();
    if certs.is_empty() {
        return Err(ConfigError::invalid(field, format!("{origin} holds no CERTIFICATE")));
    }
    for der in &certs {
        let der = rustls_pki_types::CertificateDer::from(der.as_slice());
        webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| ConfigError::invalid(field, format!("{origin} holds an unusable certificate: {e}")))?;
    }
    Ok(certs)
}

fn split_list(v: &str) -> Vec<String> {
    v.split([',', ' ', ';', '\n', '\t']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn env_name(field: &'static str) -> &'static str {
    match field {
        "tenant_id" => "AZURE_TENANT_ID",
        "client_id" => "AZURE_CLIENT_ID",
        "instance" => "AZURE_AUTHORITY_HOST",
        "cloud" => "AZAD_CLOUD",
        "audiences" => "AZAD_AUDIENCES",
        "extra_audiences" => "AZAD_EXTRA_AUDIENCES",
        "trusted_jwks_origin" => "AZAD_TRUSTED_JWKS_ORIGINS",
        "allowed_tenants" => "AZAD_ALLOWED_TENANTS",
        "metadata_url" => "AZAD_METADATA_URL",
        "issuer" => "AZAD_ISSUER",
        "extra_root_certificates" => "AZAD_EXTRA_CA_CERTS",
        other => other,
    }
}

fn section_name(field: &'static str) -> &'static str {
    match field {
        "tenant_id" => "TenantId",
        "client_id" => "ClientId",
        "instance" => "Instance",
        "cloud" => "Cloud",
        "audiences" => "Audiences",
        "extra_audiences" => "ExtraAudiences",
        "trusted_jwks_origin" => "TrustedJwksOrigins",
        "allowed_tenants" => "AllowedTenants",
        "metadata_url" => "MetadataUrl",
        "authority" => "Authority",
        "issuer" => "Issuer",
        other => other,
    }
}

/// Builder for [`AzureAdConfig`]. Every setter is cheap; [`build`](Self::build) validates.
#[derive(Default)]
#[must_use]
pub struct AzureAdConfigBuilder {
    instance: Option<String>,
    cloud: Option<Cloud>,
    tenant_id: Option<String>,
    authority: Option<String>,
    metadata_url: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    audiences: Vec<String>,
    extra_audiences: Vec<String>,
    authority_origin: Option<String>,
    trusted_jwks_origins: Vec<String>,
    allowed_tenants: Option<Vec<String>>,
    token_versions: Option<TokenVersions>,
    algorithms: Option<Vec<SigningAlgorithm>>,
    leeway: Option<Duration>,
    allow_without_scopes_or_roles: bool,
    app_specific_signing_keys: bool,
    static_jwks: Option<StaticJwks>,
    jwks_policy: JwksPolicy,
    http_options: HttpOptions,
    max_token_bytes: Option<usize>,
    validated_token_cache_capacity: Option<u64>,
    http_client: Option<Arc<dyn HttpClient>>,
    extra_roots: Vec<RootSource>,
}

/// Where extra trusted root certificates come from (read and parsed by `build`).
#[derive(Debug, Clone)]
enum RootSource {
    Pem(String),
    File(PathBuf),
}

impl fmt::Debug for AzureAdConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdConfigBuilder")
            .field("instance", &self.instance)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AzureAdConfigBuilder {
    /// The authority host (`Instance`), e.g. `https://login.microsoftonline.com/` or a dev
    /// tenant's `http://127.0.0.1:port/`. Plain `http` is accepted only for loopback hosts.
    pub fn instance(mut self, host: impl Into<String>) -> Self {
        self.instance = Some(host.into());
        self
    }

    /// A Microsoft cloud by name (instead of [`instance`](Self::instance)).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// The tenant: a GUID, a domain, `organizations`, `common` or `consumers`.
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// A full authority URL such as `https://login.microsoftonline.com/common/v2.0`
    /// (instead of instance and tenant).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// Any OpenID Connect provider by its discovery URL (Azure AD B2C, Entra External ID,
    /// or a non-Microsoft provider), instead of an Entra instance and tenant.
    ///
    /// With [`tenant_id`](Self::tenant_id) (a tenant id, not a domain), every token's `tid` must
    /// be that tenant; a metadata URL or [`issuer`](Self::issuer) naming another tenant id is a
    /// [`ConfigError::Conflict`] at [`build`](Self::build).
    ///
    /// A Microsoft Entra metadata URL (`https://login.chinacloudapi.cn/{tenant}/v2.0/.well-known/openid-configuration`,
    /// any cloud host or alias, or `https://{subdomain}.ciamlogin.com/...`) without an
    /// [`issuer`](Self::issuer) is taken as that Entra authority, with its cloud's real issuers
    /// (v1.0 and v2.0; China's v2.0 issuer is on `login.partner.microsoftonline.cn`).
    pub fn metadata_url(mut self, url: impl Into<String>) -> Self {
        self.metadata_url = Some(url.into());
        self
    }

    /// With [`metadata_url`](Self::metadata_url): the issuer the provider's tokens carry, when
    /// it is not the discovery URL's base (Azure AD B2C).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The API's application (client) id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Adds an accepted audience, *replacing* the defaults (the client id and
    /// `api://{client id}`) by the audiences given this way. To keep the defaults and accept
    /// one more, use [`add_audience`](Self::add_audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the accepted audiences, *replacing* the defaults (the client id and
    /// `api://{client id}`). To keep the defaults and accept more, use
    /// [`add_audience`](Self::add_audience) or [`extra_audiences`](Self::extra_audiences).
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts one more audience *on top of* the defaults (or of [`audiences`](Self::audiences)):
    /// for example `spn:{client id}`, the form some v1.0 tokens carry, or a custom App ID URI
    /// such as `https://api.contoso.com`.
    ///
    /// By default azad accepts the two audiences Microsoft Entra ID writes for an API:
    ///
    /// | audience | when Entra writes it |
    /// | --- | --- |
    /// | `{client id}` | v2.0 access tokens (`accessTokenAcceptedVersion: 2`) |
    /// | `api://{client id}` | v1.0 access tokens, which carry the App ID URI the client asked for (the default App ID URI) |
    ///
    /// Source: Microsoft identity platform, "Access tokens" (the `aud` claim: "In v2.0 tokens,
    /// this value is always the client ID of the API. In v1.0 tokens, it can be the client ID
    /// or the resource URI used in the request").
    pub fn add_audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// Accepts several more audiences on top of the defaults; see [`add_audience`](Self::add_audience).
    pub fn extra_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Fetches the authority's discovery documents, keys and endpoints from `origin` instead of
    /// the authority's own host, while accepting exactly the issuers of the configured cloud:
    /// for the dev tenant playing China or External ID on loopback
    /// (`.cloud(Cloud::China).authority_origin(dev.base_url())`), or an egress proxy. Plain
    /// `http` is accepted only for loopback.
    pub fn authority_origin(mut self, origin: impl Into<String>) -> Self {
        self.authority_origin = Some(origin.into());
        self
    }

    /// Trusts signing keys published on `origin` (`https://keys.example.com`) although it is
    /// not the authority's own origin.
    ///
    /// By default the `jwks_uri` announced by discovery must be on the origin the discovery
    /// document came from (for a Microsoft cloud: any of its authority hosts, such as
    /// `login.microsoftonline.com` and `login.windows.net`; for External ID, also the tenant's
    /// own `{tenant id}.ciamlogin.com`). A `jwks_uri` elsewhere makes discovery fail with
    /// [`JwksError::UntrustedJwksOrigin`](crate::JwksError::UntrustedJwksOrigin): whoever can
    /// change the discovery document must not be able to point azad at keys of their choosing.
    /// Entra always publishes its keys on the authority host
    /// (`https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys`); some other OpenID
    /// Connect providers do not (Google: `www.googleapis.com`), and need this.
    pub fn trusted_jwks_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_jwks_origins.push(origin.into());
        self
    }

    /// For `common`/`organizations`: only tokens from these tenant ids are accepted.
    pub fn allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// Accepted token versions (both by default).
    pub fn token_versions(mut self, versions: TokenVersions) -> Self {
        self.token_versions = Some(versions);
        self
    }

    /// Allowed signing algorithms (`[RS256]` by default).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = SigningAlgorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Allowed clock skew for `exp` and `nbf` (5 minutes by default, at most 1 hour).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Accepts tokens that carry neither `scp` nor `roles`, leaving authorisation to the
    /// application (Microsoft.Identity.Web's `AllowWebApiToBeAuthorizedByACL`).
    ///
    /// # Security Warning
    ///
    /// Without this check, any application in the tenant that can get a token for this API
    /// (client credentials with no app role assigned) is accepted. Only enable it when the
    /// application checks the caller itself (for example against an access-control list of
    /// client ids).
    pub fn insecure_allow_tokens_without_scopes_or_roles(mut self, allow: bool) -> Self {
        self.allow_without_scopes_or_roles = allow;
        self
    }

    /// Fetches the application-specific signing keys (`jwks_uri?appid={client id}`), for apps
    /// whose tokens are signed with a custom key (claims-mapping policies).
    pub fn app_specific_signing_keys(mut self, enabled: bool) -> Self {
        self.app_specific_signing_keys = enabled;
        self
    }

    /// Uses a fixed key set and issuer instead of discovery: no network at all.
    pub fn static_jwks(mut self, jwks: StaticJwks) -> Self {
        self.static_jwks = Some(jwks);
        self
    }

    /// The signing-key refresh policy.
    pub fn jwks_policy(mut self, policy: JwksPolicy) -> Self {
        self.jwks_policy = policy;
        self
    }

    /// Minimum time between refreshes caused by an unknown `kid` (default 5 minutes).
    pub fn jwks_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_policy.min_refresh_interval = interval;
        self
    }

    /// Background key refresh interval (default 12 hours).
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_policy.refresh_interval = interval;
        self
    }

    /// Sets the first wait after a failed key or metadata fetch (default 10 seconds, at least
    /// 10 ms); each further failure doubles it, up to 5 minutes (or this interval, if longer).
    pub fn jwks_retry_interval(mut self, interval: Duration) -> Self {
        self.jwks_policy.retry_interval = interval;
        self
    }

    /// HTTP client limits (timeouts, response size cap).
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http_options = options;
        self
    }

    /// A custom HTTP client (for proxies, custom TLS, or tests).
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Trusts the CA certificates in this PEM text (one or more `CERTIFICATE` blocks) in
    /// addition to the platform's roots, for the default HTTP client: an authority served
    /// with a private CA, such as the dev tenant over HTTPS (`DevTenantBuilder::https`, `dev`
    /// feature).
    /// Certificate verification stays on; there is no way to turn it off. A custom
    /// [`http_client`](Self::http_client) brings its own trust.
    ///
    /// Environment: `AZAD_EXTRA_CA_CERTS` (a file). On Linux, the default client also
    /// honours `SSL_CERT_FILE`/`SSL_CERT_DIR`, which *replace* the system's roots.
    pub fn extra_root_certificates_pem(mut self, pem: impl Into<String>) -> Self {
        self.extra_roots.push(RootSource::Pem(pem.into()));
        self
    }

    /// Like [`extra_root_certificates_pem`](Self::extra_root_certificates_pem), reading the
    /// PEM file at `path` when the configuration is built.
    pub fn extra_root_certificates_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_roots.push(RootSource::File(path.into()));
        self
    }

    /// Largest accepted token in bytes, checked before any decoding (default 16 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = Some(max);
        self
    }

    /// Entries of the validated-token cache (default 10 000; 0 disables it).
    pub fn validated_token_cache_capacity(mut self, capacity: u64) -> Self {
        self.validated_token_cache_capacity = Some(capacity);
        self
    }

    /// Validates and builds the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the builder field at fault (`tenant_id`, `client_id`, ...).
    pub fn build(self) -> Result<AzureAdConfig, ConfigError> {
        let client_id = self
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::Missing { field: "client_id" })?
            .to_owned();
        if client_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::invalid("client_id", "must not contain whitespace"));
        }

        let authority = self.resolve_authority()?;
        // A tenant id given with a metadata URL (checked to be a GUID) is required of every
        // token, also when the metadata URL is an Entra one: another tenant the metadata URL
        // names is then a conflict (below), never silently preferred.
        let given_with_metadata =
            self.metadata_url.as_ref().and(self.tenant_id.as_deref()).map(|t| t.trim().to_ascii_lowercase());
        let required_tenant = given_with_metadata.or_else(|| match authority.tenant() {
            Some(Tenant::Id(id)) => Some(id.clone()),
            Some(Tenant::Consumers) => Some(crate::authority::CONSUMERS_TENANT_ID.to_owned()),
            _ => None,
        });
        self.check_tenant_consistency(&authority, required_tenant.as_deref())?;

        let mut audiences: Vec<String> = if self.audiences.is_empty() {
            vec![client_id.clone(), format!("api://{client_id}")]
        } else {
            let mut out = Vec::new();
            for a in &self.audiences {
                let a = a.trim();
                if a.is_empty() || a.chars().any(char::is_whitespace) {
                    return Err(ConfigError::invalid(
                        "audiences",
                        "audiences must be non-empty and contain no whitespace",
                    ));
                }
                if !out.iter().any(|o: &String| o == a) {
                    out.push(a.to_owned());
                }
            }
            out
        };
        for a in &self.extra_audiences {
            let a = a.trim();
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                return Err(ConfigError::invalid(
                    "extra_audiences",
                    "audiences must be non-empty and contain no whitespace",
                ));
            }
            if !audiences.iter().any(|o| o == a) {
                audiences.push(a.to_owned());
            }
        }

        let allowed_tenants = match self.allowed_tenants {
            None => None,
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for t in list {
                    let t = t.trim();
                    if !is_guid(t) {
                        return Err(ConfigError::invalid("allowed_tenants", "tenant ids must be GUIDs"));
                    }
                    out.push(t.to_ascii_lowercase());
                }
                if out.is_empty() {
                    return Err(ConfigError::invalid("allowed_tenants", "the allow-list is empty"));
                }
                let multi = authority.is_multi_tenant()
                    || self
                        .static_jwks
                        .as_ref()
                        .is_some_and(|s| s.issuers.iter().any(|i| i.contains(crate::authority::TENANT_TEMPLATE)));
                if !multi {
                    return Err(ConfigError::Conflict {
                        field: "allowed_tenants",
                        other: "tenant_id",
                        reason: "a tenant allow-list needs a multi-tenant authority (`common` or `organizations`)",
                    });
                }
                Some(out)
            }
        };

        let algorithms = self.algorithms.unwrap_or_else(|| vec![SigningAlgorithm::RS256]);
        if algorithms.is_empty() {
            return Err(ConfigError::invalid("algorithms", "at least one algorithm must be allowed"));
        }

        let leeway = self.leeway.unwrap_or(Duration::from_secs(300));
        if leeway > Duration::from_secs(3600) {
            return Err(ConfigError::invalid("leeway", "at most one hour"));
        }

        if let Some(jwks) = &self.static_jwks {
            if jwks.issuers.is_empty() || jwks.issuers.iter().any(|i| i.trim().is_empty()) {
                return Err(ConfigError::invalid("static_jwks", "a static JWKS needs its issuer"));
            }
            crate::jwks::KeySet::parse(jwks.json.as_bytes(), &algorithms, self.jwks_policy.max_keys, "static JWKS")
                .map_err(|e| ConfigError::invalid("static_jwks", e.to_string()))?;
        }

        let p = self.jwks_policy;
        if p.max_keys == 0 || p.refresh_interval.is_zero() {
            return Err(ConfigError::invalid("jwks_policy", "max_keys and refresh_interval must be positive"));
        }
        let h = self.http_options;
        if h.timeout.is_zero() || h.connect_timeout.is_zero() || h.max_response_bytes < 1024 {
            return Err(ConfigError::invalid(
                "http_options",
                "timeouts must be positive and the size cap at least 1 KiB",
            ));
        }
        let max_token_bytes = self.max_token_bytes.unwrap_or(16 * 1024);
        if max_token_bytes < 256 {
            return Err(ConfigError::invalid("max_token_bytes", "at least 256 bytes"));
        }
        let mut extra_root_certificates = Vec::new();
        for source in &self.extra_roots {
            for der in parse_root_certificates(source)? {
                if !extra_root_certificates.contains(&der) {
                    extra_root_certificates.push(der);
                }
            }
        }

        Ok(AzureAdConfig {
            authority,
            client_id,
            audiences,
            allowed_tenants,
            required_tenant,
            token_versions: self.token_versions.unwrap_or(TokenVersions::Both),
            algorithms,
            leeway,
            require_scopes_or_roles: !self.allow_without_scopes_or_roles,
            app_specific_signing_keys: self.app_specific_signing_keys,
            static_jwks: self.static_jwks,
            jwks_policy: p,
            http_options: h,
            max_token_bytes,
            validated_token_cache_capacity: self.validated_token_cache_capacity.unwrap_or(10_000),
            http_client: self.http_client,
            extra_root_certificates,
        })
    }

    fn resolve_authority(&self) -> Result<Authority, ConfigError> {
        let mut authority = self.resolve_authority_source()?;
        if let Some(origin) = &self.authority_origin {
            authority = authority.served_from(origin)?;
        }
        for origin in &self.trusted_jwks_origins {
            authority = authority.trust_jwks_origin(origin)?;
        }
        Ok(authority)
    }

    fn resolve_authority_source(&self) -> Result<Authority, ConfigError> {
        if let Some(url) = &self.metadata_url {
            if self.authority.is_some() || self.instance.is_some() || self.cloud.is_some() {
                return Err(ConfigError::Conflict {
                    field: "metadata_url",
                    other: "authority",
                    reason: "give either an OpenID Connect discovery URL or an Entra instance",
                });
            }
            // A tenant given with a metadata URL is a constraint on the tokens: it must be a
            // tenant id, since a token's `tid` is one.
            if let Some(t) = &self.tenant_id
                && !matches!(Tenant::parse(t, "tenant_id")?, Tenant::Id(_))
            {
                return Err(ConfigError::Conflict {
                    field: "tenant_id",
                    other: "metadata_url",
                    reason: "with a metadata URL, the tenant must be given as its tenant id (a GUID)",
                });
            }
            // A Microsoft Entra metadata URL (`https://{cloud host}/{tenant}[/v2.0]/.well-known/
            // openid-configuration`, or External ID's) is that Entra authority, with its
            // cloud's real issuer forms (China's is on another host than its authority).
            if self.issuer.is_none()
                && let Some(entra) = entra_metadata_url(url)
            {
                return Ok(entra);
            }
            return Authority::oidc(url, self.issuer.clone(), "metadata_url");
        }
        if self.issuer.is_some() {
            return Err(ConfigError::Conflict {
                field: "issuer",
                other: "metadata_url",
                reason: "a fixed issuer is only used with an OpenID Connect discovery URL",
            });
        }
        if let Some(authority) = &self.authority {
            if self.tenant_id.is_some() || self.instance.is_some() {
                return Err(ConfigError::Conflict {
                    field: "authority",
                    other: "tenant_id",
                    reason: "give either a full authority URL or an instance and tenant",
                });
            }
            return parse_authority_url(authority);
        }
        let tenant = match &self.tenant_id {
            Some(t) => Tenant::parse(t, "tenant_id")?,
            None if self.static_jwks.is_some() => Tenant::Common,
            None => return Err(ConfigError::Missing { field: "tenant_id" }),
        };
        match (&self.instance, self.cloud) {
            (Some(_), Some(_)) => Err(ConfigError::Conflict {
                field: "instance",
                other: "cloud",
                reason: "give either an authority host or a cloud name",
            }),
            (Some(host), None) => Authority::entra_at_host(host, tenant, "instance"),
            (None, cloud) => Ok(Authority::entra(cloud.unwrap_or(Cloud::Public), tenant)),
        }
    }

    /// A configuration that names a tenant must not name another one anywhere else: in the
    /// metadata URL, the fixed issuer, or a static JWKS issuer.
    fn check_tenant_consistency(&self, authority: &Authority, required: Option<&str>) -> Result<(), ConfigError> {
        let named_elsewhere = |value: &str| named_tenant_ids(value).into_iter().find(|t| Some(t.as_str()) != required);
        if required.is_some() {
            if let Some(url) = &self.metadata_url
                && named_elsewhere(url).is_some()
            {
                return Err(ConfigError::Conflict {
                    field: "metadata_url",
                    other: "tenant_id",
                    reason: "the metadata URL names another tenant than the configured tenant id",
                });
            }
            if let Some(issuer) = &self.issuer
                && named_elsewhere(issuer).is_some()
            {
                return Err(ConfigError::Conflict {
                    field: "issuer",
                    other: "tenant_id",
                    reason: "the issuer names another tenant than the configured tenant id",
                });
            }
        }
        if let Some(jwks) = &self.static_jwks {
            if required.is_some() && jwks.issuers.iter().any(|i| named_elsewhere(i).is_some()) {
                return Err(ConfigError::Conflict {
                    field: "static_jwks",
                    other: "tenant_id",
                    reason: "a static JWKS issuer names another tenant than the configured tenant id",
                });
            }
            let templated = jwks.issuers.iter().any(|i| i.contains(crate::authority::TENANT_TEMPLATE));
            if templated && matches!(authority.tenant(), Some(Tenant::Domain(_))) {
                return Err(ConfigError::Conflict {
                    field: "static_jwks",
                    other: "tenant_id",
                    reason: "a static JWKS with a {tenantid} issuer needs the tenant id (a GUID), not a domain name, to know which tenant to accept",
                });
            }
        }
        Ok(())
    }
}

/// The Entra authority of a metadata URL on a Microsoft cloud host or an External ID host,
/// shaped `https://{host}/{tenant}[/v2.0]/.well-known/openid-configuration`; `None` otherwise
/// (the URL is then any OpenID Connect provider's).
fn entra_metadata_url(value: &str) -> Option<Authority> {
    let url = url::Url::parse(value.trim()).ok()?;
    let host = url.host_str()?;
    let microsoft = Cloud::from_host(host).is_some()
        || host.to_ascii_lowercase().ends_with(&format!(".{}", crate::authority::EXTERNAL_ID_DOMAIN));
    if url.scheme() != "https" || url.port().is_some() || url.query().is_some() || !microsoft {
        return None;
    }
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let tenant = match segments.as_slice() {
        [tenant, ".well-known", "openid-configuration"] | [tenant, "v2.0", ".well-known", "openid-configuration"] => {
            Tenant::parse(tenant, "metadata_url").ok()?
        }
        _ => return None,
    };
    Authority::entra_at_host(&format!("https://{host}/"), tenant, "metadata_url").ok()
}

/// The tenant ids (GUIDs, lower-cased) a URL names: as a path segment or as the first label
/// of its host (External ID issuers are `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`).
fn named_tenant_ids(value: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(value.trim()) else {
        return Vec::new();
    };
    let host_label = url.host_str().and_then(|h| h.split('.').next());
    url.path().split('/').chain(host_label).filter(|s| is_guid(s)).map(str::to_ascii_lowercase).collect()
}

/// Splits `https://host/{tenant}[/v2.0]` into an Entra authority; anything else is taken as an
/// OpenID Connect provider.
fn parse_authority_url(value: &str) -> Result<Authority, ConfigError> {
    let url = crate::authority::parse_secure_url(value, "authority")?;
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let tenant_segment = match segments.as_slice() {
        [tenant] | [tenant, "v2.0"] => Some(*tenant),
        _ => None,
    };
    if let Some(tenant) = tenant_segment.and_then(|t| Tenant::parse(t, "authority").ok()) {
        let host = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default());
        let host = match url.port() {
            Some(port) => format!("{}://{}:{port}/", url.scheme(), url.host_str().unwrap_or_default()),
            None => host,
        };
        return Authority::entra_at_host(&host, tenant, "authority");
    }
    Authority::oidc(value, None, "authority")
}

/// The shape of Microsoft.Identity.Web's `AzureAd` configuration section.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AzureAdSection {
    #[serde(alias = "instance")]
    instance: Option<String>,
    #[serde(alias = "tenantId")]
    tenant_id: Option<String>,
    #[serde(alias = "clientId")]
    client_id: Option<String>,
    #[serde(alias = "authority")]
    authority: Option<String>,
    #[serde(alias = "audience")]
    audience: Option<String>,
    #[serde(alias = "audiences")]
    audiences: Option<Vec<String>>,
    #[serde(alias = "extraAudiences")]
    extra_audiences: Option<Vec<String>>,
    #[serde(alias = "trustedJwksOrigins")]
    trusted_jwks_origins: Option<Vec<String>>,
    #[serde(alias = "cloud")]
    cloud: Option<String>,
    #[serde(alias = "allowedTenants")]
    allowed_tenants: Option<Vec<String>>,
    #[serde(alias = "metadataUrl")]
    metadata_url: Option<String>,
    #[serde(rename = "AllowWebApiToBeAuthorizedByACL", alias = "allowWebApiToBeAuthorizedByACL", default)]
    allow_acl: bool,
}

impl TryFrom<AzureAdSection> for AzureAdConfig {
    type Error = ConfigError;

    fn try_from(s: AzureAdSection) -> Result<Self, ConfigError> {
        let mut b = Self::builder();
        if let Some(v) = s.instance.filter(|v| !v.is_empty()) {
            b = b.instance(v);
        }
        if let Some(v) = s.tenant_id.filter(|v| !v.is_empty()) {
            b = b.tenant_id(v);
        }
        if let Some(v) = s.client_id {
            b = b.client_id(v);
        }
        if let Some(v) = s.authority.filter(|v| !v.is_empty()) {
            b = b.authority(v);
        }
        if let Some(v) = s.metadata_url.filter(|v| !v.is_empty()) {
            b = b.metadata_url(v);
        }
        if let Some(v) = s.cloud.filter(|v| !v.is_empty()) {
            b = b.cloud(
                Cloud::from_name(&v)
                    .ok_or_else(|| ConfigError::invalid("Cloud", "expected `public`, `usgov` or `china`"))?,
            );
        }
        let mut audiences = s.audiences.unwrap_or_default();
        if let Some(a) = s.audience.filter(|v| !v.is_empty()) {
            audiences.insert(0, a);
        }
        if !audiences.is_empty() {
            b = b.audiences(audiences);
        }
        if let Some(extra) = s.extra_audiences {
            b = b.extra_audiences(extra);
        }
        for origin in s.trusted_jwks_origins.unwrap_or_default() {
            b = b.trusted_jwks_origin(origin);
        }
        if let Some(t) = s.allowed_tenants {
            b = b.allowed_tenants(t);
        }
        b = b.insecure_allow_tokens_without_scopes_or_roles(s.allow_acl);
        b.build().map_err(|e| e.renamed(section_name))
    }
}

impl<'de> Deserialize<'de> for AzureAdConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let section = AzureAdSection::deserialize(deserializer)?;
        Self::try_from(section).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults() {
        let cfg = AzureAdConfig::builder().tenant_id(TID).client_id(CID).build().unwrap();
        assert_eq!(cfg.audiences(), [CID.to_owned(), format!("api://{CID}")]);
        assert_eq!(cfg.algorithms(), [SigningAlgorithm::RS256]);
        assert_eq!(cfg.leeway(), Duration::from_secs(300));
        assert_eq!(cfg.token_versions(), TokenVersions::Both);
        assert!(cfg.require_scopes_or_roles);
        assert_eq!(cfg.authority().cloud(), Some(Cloud::Public));
        assert_eq!(cfg.jwks_policy().min_refresh_interval, Duration::from_secs(300));
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            AzureAdConfig::builder().tenant_id(TID).build().unwrap_err(),
            ConfigError::Missing { field: "client_id" }
        );
        assert_eq!(
            AzureAdConfig::builder().client_id(CID).build().unwrap_err(),
            ConfigError::Missing { field: "tenant_id" }
        );
        assert_eq!(
            AzureAdConfig::from_env_with(env(&[("AZURE_CLIENT_ID", CID)])).unwrap_err(),
            ConfigError::Missing { field: "AZURE_TENANT_ID" }
        );
        assert_eq!(
            AzureAdConfig::from_env_with(env(&[("AZURE_TENANT_ID", TID)])).unwrap_err(),
            ConfigError::Missing { field: "AZURE_CLIENT_ID" }
        );
        let err = serde_json::from_str::<AzureAdConfig>(r#"{"TenantId":"common"}"#).unwrap_err();
        assert!(err.to_string().contains("`ClientId` is required"), "{err}");
    }

    #[test]
    fn from_env_reads_every_documented_variable() {
        let cfg = AzureAdConfig::from_env_with(env(&[
            ("AZURE_TENANT_ID", "organizations"),
            ("AZURE_CLIENT_ID", CID),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
            ("AZAD_AUDIENCES", "api://a, api://b"),
            ("AZAD_ALLOWED_TENANTS", TID),
        ]))
        .unwrap();
        assert_eq!(cfg.authority().cloud(), Some(Cloud::UsGovernment));
        assert_eq!(cfg.audiences(), ["api://a", "api://b"]);
        assert_eq!(cfg.allowed_tenants().unwrap(), [TID]);
        assert!(cfg.authority().is_multi_tenant());

        let err = AzureAdConfig::from_env_with(env(&[
            ("AZURE_TENANT_ID", TID),
            ("AZURE_CLIENT_ID", CID),
            ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
        ]))
        .unwrap_err();
        assert_eq!(err, ConfigError::InsecureUrl { field: "AZURE_AUTHORITY_HOST" });

        let err = AzureAdConfig::from_env_with(env(&[
            ("AZURE_TENANT_ID", TID),
            ("AZURE_CLIENT_ID", CID),
            ("AZAD_ALLOWED_TENANTS", "not-a-guid"),
        ]))
        .unwrap_err();
        assert_eq!(err.field(), "AZAD_ALLOWED_TENANTS");

        let cfg = AzureAdConfig::from_env_with(env(&[
            ("AZURE_CLIENT_ID", CID),
            ("AZAD_METADATA_URL", "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/v2.0/.well-known/openid-configuration"),
            ("AZAD_ISSUER", "https://contoso.b2clogin.com/775527ff-9a37-4307-8b3d-cc311f58d925/v2.0/"),
        ]))
        .unwrap();
        assert!(!cfg.authority().is_entra());
        assert_eq!(
            cfg.authority().expected_oidc_issuer().unwrap(),
            "https://contoso.b2clogin.com/775527ff-9a37-4307-8b3d-cc311f58d925/v2.0/"
        );
        assert_eq!(
            AzureAdConfig::from_env_with(env(&[
                ("AZURE_TENANT_ID", TID),
                ("AZURE_CLIENT_ID", CID),
                ("AZAD_CLOUD", "mars")
            ]))
            .unwrap_err()
            .field(),
            "AZAD_CLOUD"
        );
    }

    #[test]
    fn section_like_microsoft_identity_web() {
        let cfg: AzureAdConfig = serde_json::from_value(serde_json::json!({
            "Instance": "https://login.microsoftonline.com/",
            "Domain": "contoso.onmicrosoft.com",
            "TenantId": TID,
            "ClientId": CID,
            "Audiences": ["api://x", "api://y"],
            "Scopes": "access_as_user",
            "CallbackPath": "/signin-oidc"
        }))
        .unwrap();
        assert_eq!(cfg.authority().tenant(), Some(&Tenant::Id(TID.into())));
        assert_eq!(cfg.audiences(), ["api://x", "api://y"]);

        let cfg: AzureAdConfig = serde_json::from_value(serde_json::json!({
            "Authority": "https://login.microsoftonline.com/common/v2.0",
            "ClientId": CID,
            "Audience": "api://z",
            "AllowWebApiToBeAuthorizedByACL": true
        }))
        .unwrap();
        assert_eq!(cfg.authority().tenant(), Some(&Tenant::Common));
        assert_eq!(cfg.audiences(), ["api://z"]);
        assert!(!cfg.require_scopes_or_roles);

        let err = serde_json::from_value::<AzureAdConfig>(serde_json::json!({
            "Instance": "http://evil.example.com/", "TenantId": TID, "ClientId": CID
        }))
        .unwrap_err();
        assert!(err.to_string().contains("`Instance` must use https"), "{err}");
    }

    #[test]
    fn tenants_and_clouds() {
        for (t, multi) in
            [("common", true), ("organizations", true), ("consumers", false), (TID, false), ("contoso.com", false)]
        {
            let cfg = AzureAdConfig::builder().tenant_id(t).client_id(CID).build().unwrap();
            assert_eq!(cfg.authority().is_multi_tenant(), multi, "{t}");
        }
        let cfg = AzureAdConfig::builder().cloud(Cloud::China).tenant_id(TID).client_id(CID).build().unwrap();
        assert_eq!(cfg.authority().host().unwrap().as_str(), "https://login.chinacloudapi.cn/");
        let err = AzureAdConfig::builder().tenant_id("no good").client_id(CID).build().unwrap_err();
        assert_eq!(err.field(), "tenant_id");
    }

    #[test]
    fn invalid_combinations() {
        let err = AzureAdConfig::builder().tenant_id(TID).client_id(CID).allowed_tenants([TID]).build().unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { field: "allowed_tenants", .. }));
        let err = AzureAdConfig::builder().tenant_id(TID).client_id(CID).algorithms([]).build().unwrap_err();
        assert_eq!(err.field(), "algorithms");
        let err = AzureAdConfig::builder()
            .tenant_id(TID)
            .client_id(CID)
            .leeway(Duration::from_secs(7200))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "leeway");
        let err = AzureAdConfig::builder()
            .tenant_id(TID)
            .client_id(CID)
            .static_jwks(StaticJwks::from_json("{not json", "https://issuer"))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "static_jwks");
        let err = AzureAdConfig::builder().client_id("a b").tenant_id(TID).build().unwrap_err();
        assert_eq!(err.field(), "client_id");
    }

    #[test]
    fn debug_is_readable() {
        let cfg = AzureAdConfig::builder().tenant_id(TID).client_id(CID).build().unwrap();
        let s = format!("{cfg:?}");
        assert!(s.contains(CID));
    }

    #[test]
    fn audiences_can_be_added_to_the_defaults() {
        let cfg =
            AzureAdConfig::builder().tenant_id(TID).client_id(CID).add_audience(format!("spn:{CID}")).build().unwrap();
        assert_eq!(cfg.audiences(), [CID.to_owned(), format!("api://{CID}"), format!("spn:{CID}")]);
        let cfg = AzureAdConfig::builder()
            .tenant_id(TID)
            .client_id(CID)
            .audiences(["api://x"])
            .extra_audiences(["https://api.contoso.com", "api://x"])
            .build()
            .unwrap();
        assert_eq!(cfg.audiences(), ["api://x", "https://api.contoso.com"]);
        let err = AzureAdConfig::builder().tenant_id(TID).client_id(CID).add_audience("a b").build().unwrap_err();
        assert_eq!(err.field(), "extra_audiences");
        let cfg = AzureAdConfig::from_env_with(env(&[
            ("AZURE_TENANT_ID", TID),
            ("AZURE_CLIENT_ID", CID),
            ("AZAD_EXTRA_AUDIENCES", &format!("spn:{CID}")),
        ]))
        .unwrap();
        assert_eq!(cfg.audiences(), [CID.to_owned(), format!("api://{CID}"), format!("spn:{CID}")]);
        let cfg: AzureAdConfig = serde_json::from_value(serde_json::json!({
            "TenantId": TID, "ClientId": CID, "ExtraAudiences": [format!("spn:{CID}")]
        }))
        .unwrap();
        assert_eq!(cfg.audiences().len(), 3);
    }

    const OTHER: &str = "e4a1f7c2-3b5d-4c6e-8f9a-1b2c3d4e5f60";

    /// A configuration whose parts name different tenants fails at build(), naming both fields.
    #[test]
    fn contradicting_tenants_fail_at_build() {
        let conflict = |r: Result<AzureAdConfig, ConfigError>| match r.unwrap_err() {
            ConfigError::Conflict { field, other, .. } => (field, other),
            e => panic!("{e:?}"),
        };
        let b = || AzureAdConfig::builder().tenant_id(TID).client_id(CID);
        assert_eq!(
            conflict(
                b().static_jwks(StaticJwks::from_json("{}", format!("https://login.microsoftonline.com/{OTHER}/v2.0")))
                    .build()
            ),
            ("static_jwks", "tenant_id")
        );
        assert_eq!(
            conflict(
                b().metadata_url(format!(
                    "https://login.microsoftonline.com/{OTHER}/v2.0/.well-known/openid-configuration"
                ))
                .build()
            ),
            ("metadata_url", "tenant_id")
        );
        assert_eq!(
            conflict(
                b().metadata_url("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")
                    .issuer(format!("https://{OTHER}.ciamlogin.com/{OTHER}/v2.0"))
                    .build()
            ),
            ("issuer", "tenant_id")
        );
        assert_eq!(
            conflict(
                AzureAdConfig::builder()
                    .client_id(CID)
                    .tenant_id("contoso.onmicrosoft.com")
                    .static_jwks(StaticJwks::from_json("{}", "https://login.microsoftonline.com/{tenantid}/v2.0"))
                    .build()
            ),
            ("static_jwks", "tenant_id")
        );
        assert_eq!(
            conflict(
                AzureAdConfig::builder()
                    .client_id(CID)
                    .tenant_id("common")
                    .metadata_url("https://idp.example.com/.well-known/openid-configuration")
                    .build()
            ),
            ("tenant_id", "metadata_url")
        );
        // Consistent parts build, and the tenant is then required of every token.
        let cfg = b()
            .metadata_url("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")
            .issuer("https://login.microsoftonline.com/{tenantid}/v2.0")
            .build()
            .unwrap();
        assert_eq!(cfg.required_tenant.as_deref(), Some(TID));
        let cfg = AzureAdConfig::builder().tenant_id("consumers").client_id(CID).build().unwrap();
        assert_eq!(cfg.required_tenant.as_deref(), Some(crate::authority::CONSUMERS_TENANT_ID));
        let cfg = AzureAdConfig::builder().tenant_id("organizations").client_id(CID).build().unwrap();
        assert_eq!(cfg.required_tenant, None);
    }

    #[test]
    fn authority_origin_and_trusted_jwks_origins() {
        let cfg = AzureAdConfig::builder()
            .cloud(Cloud::China)
            .authority_origin("http://127.0.0.1:4000")
            .trusted_jwks_origin("https://keys.example.com/ignored/path")
            .tenant_id(TID)
            .client_id(CID)
            .build()
            .unwrap();
        assert_eq!(cfg.authority().cloud(), Some(Cloud::China));
        assert!(cfg.authority().metadata_url().starts_with("http://127.0.0.1:4000/"));
        let err = AzureAdConfig::builder()
            .authority_origin("http://proxy.example.com")
            .tenant_id(TID)
            .client_id(CID)
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InsecureUrl { field: "authority_origin" });
        let err = AzureAdConfig::builder()
            .trusted_jwks_origin("not a url")
            .tenant_id(TID)
            .client_id(CID)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "trusted_jwks_origin");
    }

    #[test]
    fn entra_metadata_urls_are_entra_authorities() {
        let cfg = AzureAdConfig::builder()
            .metadata_url(format!("https://login.chinacloudapi.cn/{TID}/v2.0/.well-known/openid-configuration"))
            .client_id(CID)
            .build()
            .unwrap();
        assert_eq!(cfg.authority().cloud(), Some(Cloud::China));
        assert_eq!(cfg.required_tenant.as_deref(), Some(TID));
        assert_eq!(
            cfg.authority().expected_v2_issuer(TID).unwrap(),
            format!("https://login.partner.microsoftonline.cn/{TID}/v2.0")
        );
        let cfg = AzureAdConfig::builder()
            .metadata_url("https://contoso.ciamlogin.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
            .client_id(CID)
            .build()
            .unwrap();
        assert!(cfg.authority().is_external_id());
        // A multi-tenant Entra metadata URL with a tenant id: that tenant is required.
        let cfg = AzureAdConfig::builder()
            .metadata_url("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")
            .tenant_id(TID)
            .client_id(CID)
            .build()
            .unwrap();
        assert!(cfg.authority().is_multi_tenant());
        assert_eq!(cfg.required_tenant.as_deref(), Some(TID));
        // B2C and other providers stay OpenID Connect providers.
        let b2c = AzureAdConfig::builder()
            .metadata_url("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/v2.0/.well-known/openid-configuration")
            .client_id(CID)
            .build()
            .unwrap();
        assert!(!b2c.authority().is_entra());
    }
}
