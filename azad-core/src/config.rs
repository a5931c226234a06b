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

use crate::application::Application;
use crate::authority::{Authority, Cloud, Tenant, is_guid};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::http::{HttpClient, HttpOptions};
use crate::validation::issuer::IssuerPolicy;
use crate::validation::jwks::{JwksOptions, JwksPolicy, StaticJwks};
use crate::validation::jwt::SigningAlgorithm;
use crate::validation::policy::{TokenVersions, ValidationPolicy};

/// The validated configuration of an API protected by Microsoft Entra ID.
///
/// Three ways in, all validated the same way and all failing with a [`ConfigError`] that names
/// the offending field in the vocabulary of the source:
///
/// - the builder, [`AzureAdConfig::builder`];
/// - the environment, [`AzureAdConfig::from_env`];
/// - serde, from a section shaped like Microsoft.Identity.Web's `AzureAd`.
///
/// # Audiences
///
/// By default a token's `aud` must be the API's client id (what Entra writes in v2.0 access
/// tokens) or `api://{client id}` (the default App ID URI, which v1.0 access tokens carry when
/// the client asked for it): see Microsoft identity platform, "Access tokens", claim `aud`.
/// [`AzureAdConfigBuilder::add_audience`] accepts more on top of these (for example
/// `spn:{client id}`, or a custom App ID URI); [`AzureAdConfigBuilder::audiences`] replaces
/// them.
///
/// # Tenants, issuers and keys
///
/// A configuration that names a tenant accepts only that tenant's tokens, whatever the key
/// source, and one whose parts name different tenants fails to build
/// ([`ConfigError::Conflict`]). Issuers follow each cloud's real forms (see
/// [`Cloud`]), and signing keys are trusted only on the authority's own origin
/// unless [`AzureAdConfigBuilder::trusted_jwks_origin`] names another.
///
/// # Example
///
/// ```
/// use azad_core::AzureAdConfig;
///
/// let cfg = AzureAdConfig::builder()
///     .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
///     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
///     .build()?;
/// assert_eq!(cfg.audiences(), ["6e74172b-be56-4843-9ff4-e66a39bb12e3", "api://6e74172b-be56-4843-9ff4-e66a39bb12e3"]);
///
/// let section: AzureAdConfig = serde_json::from_str(r#"{
///     "Instance": "https://login.microsoftonline.com/",
///     "TenantId": "organizations",
///     "ClientId": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
///     "Audience": "api://my-api"
/// }"#)?;
/// assert!(section.authority().is_multi_tenant());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AzureAdConfig {
    authority: Authority,
    client_id: String,
    audiences: Vec<String>,
    allowed_tenants: Option<Vec<String>>,
    /// The tenant id the configuration names (a tenant id, `consumers`, or a tenant id given
    /// with a metadata URL): every accepted token's `tid` must be it, whatever the key source.
    required_tenant: Option<String>,
    token_versions: TokenVersions,
    algorithms: Vec<SigningAlgorithm>,
    leeway: Duration,
    require_scopes_or_roles: bool,
    app_specific_signing_keys: bool,
    static_jwks: Option<StaticJwks>,
    jwks_policy: JwksPolicy,
    http_options: HttpOptions,
    max_token_bytes: usize,
    validated_token_cache_capacity: u64,
    http_client: Option<Arc<dyn HttpClient>>,
    /// Extra trusted root certificates (DER) of the default HTTP client.
    extra_root_certificates: Vec<Vec<u8>>,
    /// How this application authenticates when it acquires tokens, if configured.
    client_credential: Option<crate::client::credential::ClientCredential>,
    /// The managed identity this application uses, if configured.
    managed_identity: Option<crate::client::managed_identity::ManagedIdentity>,
    /// Whether acquired tokens are cached (default `true`).
    token_cache_enabled: bool,
    /// The open cassette when recording or replaying; `None` when the simulation is disabled.
    #[cfg(feature = "simulation")]
    simulation: Option<crate::simulation::Simulation>,
    /// The name of this authority: [`Claims::authority`](crate::Claims::authority) and the
    /// `authority` metric label.
    authority_name: Option<Arc<str>>,
    /// Azure AD B2C: the user flows (policies) whose tokens are accepted, checked against the
    /// token's `tfp` (or `acr`) claim, case-insensitively.
    b2c_user_flows: Option<Vec<String>>,
    /// The clock tokens' `exp` and `nbf` are checked against (`None`: the system clock).
    clock: Option<Arc<dyn Clock>>,
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
            .field("client_credential", &self.client_credential)
            .field("managed_identity", &self.managed_identity)
            .field("token_cache_enabled", &self.token_cache_enabled)
            .field("simulation", &self.simulation_mode())
            .field("authority_name", &self.authority_name)
            .field("b2c_user_flows", &self.b2c_user_flows)
            .field("clock", &self.clock)
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
    /// | `AZAD_SIGNING_ALGORITHMS` | allowed signature algorithms, comma- or space-separated, among `RS256` `RS384` `RS512` `PS256` `PS384` `PS512` (default `RS256`; `none` and `HS*` never) |
    /// | `AZURE_AD_CACHE_ENABLED` | `false` to ask the token endpoint on every acquisition (default `true`) |
    /// | `AZURE_AD_SIMULATION_MODE` | `disabled` (default), `recording` or `replay` (feature `simulation`; see [`crate::simulation`]) |
    /// | `AZURE_AD_SIMULATION_CASSETTE` | the cassette file, required when recording or replaying |
    ///
    /// The application's own credential, for acquiring tokens
    /// ([`client_credential`](Self::client_credential)), is the first of these that is set,
    /// in the order of [`ClientCredential::from_env`](crate::client::credential::ClientCredential::from_env)
    /// and Azure Identity's `EnvironmentCredential`:
    ///
    /// | precedence | variables | credential |
    /// | --- | --- | --- |
    /// | 1 | `AZURE_CLIENT_SECRET` | a client secret |
    /// | 2 | `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE_PASSWORD` (PKCS#12 only) | a certificate: PEM (certificate and key) or PKCS#12 (`.pfx`/`.p12`, or whenever a password is given; feature `pkcs12`) |
    /// | 3 | `AZURE_FEDERATED_TOKEN_FILE` | workload identity |
    /// | 4 | `AZURE_USE_MANAGED_IDENTITY=true`, `AZURE_MANAGED_IDENTITY_CLIENT_ID` (user-assigned; system-assigned without it) | a managed identity as federated credential; the identity is also [`managed_identity`](Self::managed_identity) |
    ///
    /// Contradictions are errors naming both variables ([`ConfigError::Conflict`]):
    /// `AZURE_USE_MANAGED_IDENTITY=true` with a secret, certificate or federated token file;
    /// `AZURE_MANAGED_IDENTITY_CLIENT_ID` with `AZURE_USE_MANAGED_IDENTITY=false`;
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD` without `AZURE_CLIENT_CERTIFICATE_PATH`. Booleans are
    /// `true`/`false`/`1`/`0` (any case).
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
        if let Some(v) = get("AZAD_SIGNING_ALGORITHMS") {
            let mut algorithms = Vec::new();
            for name in split_list(&v) {
                algorithms.push(SigningAlgorithm::from_name(&name.to_ascii_uppercase()).ok_or_else(|| {
                    ConfigError::invalid(
                        "AZAD_SIGNING_ALGORITHMS",
                        "expected RS256, RS384, RS512, PS256, PS384 or PS512",
                    )
                })?);
            }
            b = b.algorithms(algorithms);
        }
        if let Some(enabled) = env_bool(&get, "AZURE_AD_CACHE_ENABLED")? {
            b = b.token_cache(enabled);
        }
        b = env_simulation(&get, b)?;
        b = env_credential(&lookup, &get, b)?;
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

    /// The name given to this authority with
    /// [`authority_name`](AzureAdConfigBuilder::authority_name), if any.
    #[must_use]
    pub fn authority_name(&self) -> Option<&str> {
        self.authority_name.as_deref()
    }

    /// Azure AD B2C: the user flows (policies) accepted, from
    /// [`b2c`](AzureAdConfigBuilder::b2c) and [`b2c_user_flow`](AzureAdConfigBuilder::b2c_user_flow).
    #[must_use]
    pub fn b2c_user_flows(&self) -> Option<&[String]> {
        self.b2c_user_flows.as_deref()
    }

    /// A copy of this configuration under another [`authority_name`](AzureAdConfigBuilder::authority_name).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a name that is not 1 to 64 ASCII letters, digits, `-`,
    /// `_` or `.`.
    pub fn with_authority_name(mut self, name: &str) -> Result<Self, ConfigError> {
        self.authority_name = Some(check_authority_name(name)?);
        Ok(self)
    }

    /// The fixed key set given with [`static_jwks`](AzureAdConfigBuilder::static_jwks), if any.
    #[must_use]
    pub fn static_jwks(&self) -> Option<&StaticJwks> {
        self.static_jwks.as_ref()
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
    ///
    /// When recording or replaying (feature `simulation`), the client records every call, or
    /// answers it from the cassette with no network at all.
    pub fn http_client(&self) -> Option<Arc<dyn HttpClient>> {
        let client = self
            .http_client
            .clone()
            .or_else(|| crate::http::default_client(self.http_options, &self.extra_root_certificates));
        #[cfg(feature = "simulation")]
        if let Some(simulation) = &self.simulation {
            return simulation.wrap(client);
        }
        client
    }

    /// The simulation mode: [`Disabled`](crate::simulation::SimulationMode::Disabled) unless
    /// the configuration records or replays a cassette.
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    #[must_use]
    pub fn simulation_mode(&self) -> crate::simulation::SimulationMode {
        self.simulation.as_ref().map_or(crate::simulation::SimulationMode::Disabled, |s| s.mode())
    }

    #[cfg(not(feature = "simulation"))]
    fn simulation_mode(&self) -> &'static str {
        "disabled"
    }

    /// The open cassette when recording or replaying (feature `simulation`).
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    #[must_use]
    pub fn simulation(&self) -> Option<&crate::simulation::Simulation> {
        self.simulation.as_ref()
    }

    /// How this application authenticates when it acquires tokens (client secret, certificate,
    /// workload identity, or a managed identity as federated credential), when the
    /// configuration says (see [`from_env`](Self::from_env) and
    /// [`AzureAdConfigBuilder::client_credential`]).
    #[must_use]
    pub fn client_credential(&self) -> Option<crate::client::credential::ClientCredential> {
        self.client_credential.clone()
    }

    /// The managed identity this application uses (`AZURE_USE_MANAGED_IDENTITY`), recording
    /// or replaying with the configuration when it does (feature `simulation`).
    #[must_use]
    pub fn managed_identity(&self) -> Option<crate::client::managed_identity::ManagedIdentity> {
        let identity = self.managed_identity.clone()?;
        #[cfg(feature = "simulation")]
        if let Some(simulation) = &self.simulation {
            return Some(identity.with_simulation(simulation));
        }
        Some(identity)
    }

    /// Whether token clients built from this configuration cache acquired tokens
    /// (`AZURE_AD_CACHE_ENABLED`, default `true`). Without the cache every acquisition asks
    /// the token endpoint.
    #[must_use]
    pub fn token_cache_enabled(&self) -> bool {
        self.token_cache_enabled
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

    /// Returns a copy that checks `exp` and `nbf` against `clock` instead of the system clock,
    /// on every path of the validator (its validated-token cache included); see
    /// [`AzureAdConfigBuilder::clock`].
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The application identity clients act as (authority, client id, credential, HTTP
    /// client): what [`TokenClient`](crate::TokenClient) and
    /// [`SignInClient`](crate::client::signin::SignInClient) read. The API's audiences ride along,
    /// for the on-behalf-of check of incoming assertions.
    #[must_use]
    pub fn application(&self) -> Application {
        Application {
            authority: self.authority.clone(),
            client_id: self.client_id.clone(),
            api_audiences: self.audiences.clone(),
            http_client: self.http_client(),
            token_cache_enabled: self.token_cache_enabled,
            client_credential: self.client_credential(),
            managed_identity: self.managed_identity(),
        }
    }

    /// The validation policy of this API's access tokens: what
    /// [`TokenValidator`](crate::TokenValidator) checks besides the signature.
    #[must_use]
    pub fn validation_policy(&self) -> ValidationPolicy {
        ValidationPolicy {
            authority: self.authority.clone(),
            audiences: self.audiences.clone(),
            issuer: IssuerPolicy {
                authority: self.authority.clone(),
                required_tenant: self.required_tenant.clone(),
                allowed_tenants: self.allowed_tenants.clone(),
            },
            token_versions: self.token_versions,
            algorithms: self.algorithms.clone(),
            leeway: self.leeway,
            require_scopes_or_roles: self.require_scopes_or_roles,
            max_token_bytes: self.max_token_bytes,
            validated_token_cache_capacity: self.validated_token_cache_capacity,
            b2c_user_flows: self.b2c_user_flows.clone(),
            authority_name: self.authority_name.clone(),
            clock: self.clock.clone(),
            id_tokens: false,
        }
    }

    /// The options of the signing-key cache: where keys come from and how they refresh.
    #[must_use]
    pub fn jwks_options(&self) -> JwksOptions {
        JwksOptions {
            authority: self.authority.clone(),
            client_id: self.client_id.clone(),
            algorithms: self.algorithms.clone(),
            app_specific_signing_keys: self.app_specific_signing_keys,
            static_jwks: self.static_jwks.clone(),
            policy: self.jwks_policy,
            http_client: if self.static_jwks.is_some() { None } else { self.http_client() },
            authority_name: self.authority_name.clone(),
        }
    }

    /// The injected clock, if any (`None`: the system clock).
    #[must_use]
    pub fn clock(&self) -> Option<&Arc<dyn Clock>> {
        self.clock.as_ref()
    }
}

impl From<&AzureAdConfig> for Application {
    fn from(config: &AzureAdConfig) -> Self {
        config.application()
    }
}

impl From<AzureAdConfig> for Application {
    fn from(config: AzureAdConfig) -> Self {
        config.application()
    }
}

impl Application {
    /// The application identity from the process environment: the variables of
    /// [`AzureAdConfig::from_env`] that name the authority, the client id and the credential
    /// (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_AUTHORITY_HOST`, `AZURE_CLIENT_SECRET`...).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the environment variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        AzureAdConfig::from_env().map(|config| config.application())
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
            && self.token_cache_enabled == other.token_cache_enabled
            && self.authority_name == other.authority_name
            && self.b2c_user_flows == other.b2c_user_flows
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

/// A boolean variable: `true`/`false`/`1`/`0`, any case.
fn env_bool(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v == "true" || v == "1" => Ok(Some(true)),
        Some(v) if v == "false" || v == "0" => Ok(Some(false)),
        Some(_) => Err(ConfigError::invalid(name, "expected `true` or `false`")),
    }
}

/// `AZURE_AD_SIMULATION_MODE` and `AZURE_AD_SIMULATION_CASSETTE`.
fn env_simulation(
    get: &impl Fn(&str) -> Option<String>,
    b: AzureAdConfigBuilder,
) -> Result<AzureAdConfigBuilder, ConfigError> {
    let Some(mode) = get("AZURE_AD_SIMULATION_MODE") else {
        return Ok(b);
    };
    #[cfg(feature = "simulation")]
    {
        use crate::simulation::SimulationMode;
        let mode = SimulationMode::from_name(&mode).ok_or_else(|| {
            ConfigError::invalid("AZURE_AD_SIMULATION_MODE", "expected `disabled`, `recording` or `replay`")
        })?;
        if mode == SimulationMode::Disabled {
            return Ok(b);
        }
        let cassette = get("AZURE_AD_SIMULATION_CASSETTE")
            .ok_or(ConfigError::Missing { field: "AZURE_AD_SIMULATION_CASSETTE" })?;
        Ok(b.simulation(mode, cassette.trim()))
    }
    #[cfg(not(feature = "simulation"))]
    match mode.trim().to_ascii_lowercase().as_str() {
        "disabled" | "off" | "none" => Ok(b),
        _ => Err(ConfigError::invalid(
            "AZURE_AD_SIMULATION_MODE",
            "recording and replay need the `simulation` feature of azad-core",
        )),
    }
}

/// The application's credential from the environment, in the documented precedence, refusing
/// contradictions.
fn env_credential(
    lookup: &impl Fn(&str) -> Option<String>,
    get: &impl Fn(&str) -> Option<String>,
    mut b: AzureAdConfigBuilder,
) -> Result<AzureAdConfigBuilder, ConfigError> {
    use crate::client::credential::{CertificateCredential, ClientCredential};
    use crate::client::managed_identity::{ManagedIdentity, ManagedIdentityId};
    let use_mi = env_bool(get, "AZURE_USE_MANAGED_IDENTITY")?;
    let mi_client_id = get("AZURE_MANAGED_IDENTITY_CLIENT_ID");
    let secret = get("AZURE_CLIENT_SECRET");
    let cert_path = get("AZURE_CLIENT_CERTIFICATE_PATH");
    let cert_password = get("AZURE_CLIENT_CERTIFICATE_PASSWORD");
    let token_file = get("AZURE_FEDERATED_TOKEN_FILE");
    let conflict = |field, other, reason| Err(ConfigError::Conflict { field, other, reason });
    if use_mi == Some(false) && mi_client_id.is_some() {
        return conflict(
            "AZURE_MANAGED_IDENTITY_CLIENT_ID",
            "AZURE_USE_MANAGED_IDENTITY",
            "a managed identity client id is given while managed identity is turned off",
        );
    }
    if cert_password.is_some() && cert_path.is_none() {
        return conflict(
            "AZURE_CLIENT_CERTIFICATE_PASSWORD",
            "AZURE_CLIENT_CERTIFICATE_PATH",
            "a certificate password without a certificate",
        );
    }
    let use_mi = use_mi.unwrap_or(false) || mi_client_id.is_some();
    if use_mi {
        let reason = "a managed identity is itself the credential: give one or the other";
        let mi_var = if mi_client_id.is_some() && get("AZURE_USE_MANAGED_IDENTITY").is_none() {
            "AZURE_MANAGED_IDENTITY_CLIENT_ID"
        } else {
            "AZURE_USE_MANAGED_IDENTITY"
        };
        if secret.is_some() {
            return conflict(mi_var, "AZURE_CLIENT_SECRET", reason);
        }
        if cert_path.is_some() {
            return conflict(mi_var, "AZURE_CLIENT_CERTIFICATE_PATH", reason);
        }
        if token_file.is_some() {
            return conflict(mi_var, "AZURE_FEDERATED_TOKEN_FILE", reason);
        }
    }
    if let Some(secret) = secret {
        b = b.client_credential(ClientCredential::secret(crate::secret::ClientSecret::new(secret)));
    } else if let Some(path) = cert_path {
        let cert = CertificateCredential::from_file(path.trim(), cert_password.as_deref())
            .map_err(|e| ConfigError::invalid("AZURE_CLIENT_CERTIFICATE_PATH", e.to_string()))?;
        b = b.client_credential(ClientCredential::certificate(cert));
    } else if let Some(file) = token_file {
        b = b.client_credential(ClientCredential::workload_identity(file.trim()));
    } else if use_mi {
        let identity = ManagedIdentity::from_env_with(lookup);
        let identity = match mi_client_id {
            Some(id) => identity.with_id(ManagedIdentityId::ClientId(id.trim().to_owned())),
            None => identity,
        };
        b = b.managed_identity(identity);
    }
    Ok(b)
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
        "simulation_cassette" => "AZURE_AD_SIMULATION_CASSETTE",
        "simulation_mode" => "AZURE_AD_SIMULATION_MODE",
        "client_certificate" => "AZURE_CLIENT_CERTIFICATE_PATH",
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
    client_credential: Option<crate::client::credential::ClientCredential>,
    managed_identity: Option<crate::client::managed_identity::ManagedIdentity>,
    token_cache_disabled: bool,
    #[cfg(feature = "simulation")]
    simulation: Option<(crate::simulation::SimulationMode, Option<PathBuf>)>,
    authority_name: Option<String>,
    /// Azure AD B2C: tenant name and user flows.
    b2c: Option<(String, Vec<String>)>,
    clock: Option<Arc<dyn Clock>>,
}

/// Checks an authority name: 1 to 64 ASCII letters, digits, `-`, `_` or `.` (a bounded metric
/// label, safe in logs).
fn check_authority_name(name: &str) -> Result<Arc<str>, ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(Arc::from(name))
    } else {
        Err(ConfigError::invalid("authority_name", "1 to 64 ASCII letters, digits, `-`, `_` or `.`"))
    }
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

    /// The clock tokens' `exp` and `nbf` (RFC 7519 §4.1.4, §4.1.5) are checked against, on
    /// every path of the validator, its validated-token cache included (default: the system
    /// clock). For tests and replays: a [`FixedClock`](crate::FixedClock) lets a test move
    /// past a cached token's expiry.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
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

    /// How this application authenticates when it acquires tokens (for
    /// [`TokenClient::from_config`](crate::TokenClient::from_config)).
    ///
    /// # Errors
    ///
    /// With [`managed_identity`](Self::managed_identity) too, [`build`](Self::build) fails with
    /// [`ConfigError::Conflict`]: a managed identity is itself the credential.
    pub fn client_credential(mut self, credential: crate::client::credential::ClientCredential) -> Self {
        self.client_credential = Some(credential);
        self
    }

    /// Uses this managed identity: as the application's credential (federated, see
    /// [`ClientCredential::managed_identity_federation`](crate::client::credential::ClientCredential::managed_identity_federation))
    /// and through [`AzureAdConfig::managed_identity`].
    ///
    /// Environment: `AZURE_USE_MANAGED_IDENTITY`, `AZURE_MANAGED_IDENTITY_CLIENT_ID`.
    pub fn managed_identity(mut self, identity: crate::client::managed_identity::ManagedIdentity) -> Self {
        self.managed_identity = Some(identity);
        self
    }

    /// Caches acquired tokens (`true`, the default) or asks the token endpoint every time.
    ///
    /// Environment: `AZURE_AD_CACHE_ENABLED`.
    pub fn token_cache(mut self, enabled: bool) -> Self {
        self.token_cache_disabled = !enabled;
        self
    }

    /// Records every identity call into the cassette at `path`, or replays them from it with
    /// no network (feature `simulation`; see [`crate::simulation`]).
    /// [`Disabled`](crate::simulation::SimulationMode::Disabled) (the default) costs nothing.
    ///
    /// [`build`](Self::build) fails when replaying a missing cassette, or one recorded for
    /// another client id.
    ///
    /// Environment: `AZURE_AD_SIMULATION_MODE`, `AZURE_AD_SIMULATION_CASSETTE`.
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    pub fn simulation(mut self, mode: crate::simulation::SimulationMode, cassette: impl Into<PathBuf>) -> Self {
        self.simulation = Some((mode, Some(cassette.into())));
        self
    }

    /// Names this authority: [`Claims::authority`](crate::Claims::authority) of every token it
    /// accepts, the `authority` label of its metrics (feature `metrics`), and its name in logs.
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.` (checked by [`build`](Self::build)).
    pub fn authority_name(mut self, name: impl Into<String>) -> Self {
        self.authority_name = Some(name.into());
        self
    }

    /// An Azure AD B2C tenant and one of its user flows (policies), instead of a metadata URL
    /// and issuer written by hand. With the B2C directory's tenant id (a GUID, given with
    /// [`tenant_id`](Self::tenant_id)) this builds:
    ///
    /// | part | value |
    /// | --- | --- |
    /// | metadata URL | `https://{tenant}.b2clogin.com/{tenant}.onmicrosoft.com/{user flow}/v2.0/.well-known/openid-configuration` |
    /// | issuer | `https://{tenant}.b2clogin.com/{tenant id}/v2.0/` (B2C's default issuer form) |
    /// | `tfp` (or `acr`) | one of the configured user flows, compared case-insensitively |
    ///
    /// `tenant` is the tenant's name (`contoso` of `contoso.onmicrosoft.com`), `user_flow` a
    /// user flow or custom policy id (`B2C_1_signupsignin`, `B2C_1A_signup_signin`). A token of
    /// another user flow is refused with [`InvalidClaim("tfp")`](crate::ValidationError::InvalidClaim),
    /// one naming none with [`MissingClaim("tfp")`](crate::ValidationError::MissingClaim).
    /// [`authority_origin`](Self::authority_origin) fetches the documents from another origin
    /// (a B2C custom domain, or the dev tenant playing B2C) while expecting the same issuer.
    ///
    /// Source: Azure AD B2C, "Overview of tokens" (`iss`, `tfp`, `acr`) and "OpenID Connect
    /// metadata" (the policy's discovery document).
    ///
    /// ```
    /// use azad_core::AzureAdConfig;
    ///
    /// let config = AzureAdConfig::builder()
    ///     .b2c("contoso", "B2C_1_signupsignin")
    ///     .b2c_user_flow("B2C_1_profile_edit")
    ///     .tenant_id("775527ff-9a37-4307-8b3d-cc311f58d925")
    ///     .client_id("90c0fe63-bcf2-44d5-8fb7-b8bbc0b29dc6")
    ///     .authority_name("customers")
    ///     .build()?;
    /// assert_eq!(
    ///     config.authority().url(),
    ///     "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0"
    /// );
    /// assert_eq!(config.b2c_user_flows().unwrap(), ["B2C_1_signupsignin", "B2C_1_profile_edit"]);
    /// # Ok::<(), azad_core::ConfigError>(())
    /// ```
    pub fn b2c(mut self, tenant: impl Into<String>, user_flow: impl Into<String>) -> Self {
        let flows = self.b2c.take().map(|(_, f)| f).unwrap_or_default();
        let mut flows_with_first = vec![user_flow.into()];
        flows_with_first.extend(flows);
        self.b2c = Some((tenant.into(), flows_with_first));
        self
    }

    /// With [`b2c`](Self::b2c): accepts the tokens of one more user flow (password reset,
    /// profile editing...). Its keys and issuer are the tenant's, as for the first.
    pub fn b2c_user_flow(mut self, user_flow: impl Into<String>) -> Self {
        match &mut self.b2c {
            Some((_, flows)) => flows.push(user_flow.into()),
            None => self.b2c = Some((String::new(), vec![user_flow.into()])),
        }
        self
    }

    /// An Entra External ID (CIAM) tenant by its subdomain (`contoso` of
    /// `contoso.ciamlogin.com`), instead of [`instance`](Self::instance): the authority
    /// `https://{subdomain}.ciamlogin.com/{tenant}`, whose tokens' issuer is
    /// `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`. Give the tenant with
    /// [`tenant_id`](Self::tenant_id) (External ID tenants are single tenants).
    ///
    /// Source: Microsoft Entra External ID, "OpenID Connect configuration of external tenants".
    pub fn external_id(self, subdomain: &str) -> Self {
        self.instance(crate::authority::external_id_instance(subdomain))
    }

    /// Turns a B2C tenant and user flows into the metadata URL and issuer they stand for.
    fn resolve_b2c(&mut self) -> Result<Option<Vec<String>>, ConfigError> {
        let Some((name, flows)) = self.b2c.take() else {
            return Ok(None);
        };
        let label_ok = |s: &str, extra: &[u8]| {
            !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        if !label_ok(&name, b"-") || name.len() > 63 {
            return Err(ConfigError::invalid("b2c", "the B2C tenant name is one DNS label, such as `contoso`"));
        }
        if let Some(bad) = flows.iter().find(|f| !label_ok(f, b"_-")) {
            let _ = bad;
            return Err(ConfigError::invalid("b2c_user_flow", "a user flow id is letters, digits, `_` and `-`"));
        }
        if self.metadata_url.is_some()
            || self.issuer.is_some()
            || self.authority.is_some()
            || self.instance.is_some()
            || self.cloud.is_some()
        {
            return Err(ConfigError::Conflict {
                field: "b2c",
                other: "metadata_url",
                reason: "a B2C tenant and user flow stand for the metadata URL and issuer: give one or the other",
            });
        }
        let tid = self.tenant_id.take().map(|t| t.trim().to_ascii_lowercase()).filter(|t| is_guid(t)).ok_or(
            ConfigError::invalid(
                "tenant_id",
                "a B2C configuration needs the B2C directory's tenant id (a GUID) for its issuer",
            ),
        )?;
        let name = name.to_ascii_lowercase();
        let origin = self.authority_origin.take();
        self.metadata_url = Some(crate::authority::b2c_metadata_url(origin.as_deref(), &name, &flows[0]));
        self.issuer = Some(crate::authority::b2c_issuer(&name, &tid));
        Ok(Some(flows))
    }

    /// Validates the configuration and returns only its application identity: for a client
    /// (a daemon, a command-line tool) that acquires tokens and validates none. Audiences and
    /// validation settings may be left out.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    ///
    /// Without audiences given ([`audiences`](Self::audiences),
    /// [`extra_audiences`](Self::extra_audiences)), the application exposes no API: its
    /// [`Application::api_audiences`] is empty (not [`build`](Self::build)'s defaults), so a
    /// token client made from it refuses every on-behalf-of assertion.
    pub fn build_application(self) -> Result<Application, ConfigError> {
        let exposes_an_api = !self.audiences.is_empty() || !self.extra_audiences.is_empty();
        self.build().map(|config| {
            let mut application = config.application();
            if !exposes_an_api {
                application.api_audiences.clear();
            }
            application
        })
    }

    /// Validates and builds the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the builder field at fault (`tenant_id`, `client_id`, ...).
    pub fn build(mut self) -> Result<AzureAdConfig, ConfigError> {
        let b2c_user_flows = self.resolve_b2c()?;
        let authority_name = self.authority_name.as_deref().map(check_authority_name).transpose()?;
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
            crate::validation::jwks::KeySet::parse(
                jwks.json.as_bytes(),
                &algorithms,
                self.jwks_policy.max_keys,
                "static JWKS",
            )
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

        if self.client_credential.is_some() && self.managed_identity.is_some() {
            return Err(ConfigError::Conflict {
                field: "managed_identity",
                other: "client_credential",
                reason: "a managed identity is itself the application's credential",
            });
        }
        let client_credential = self.client_credential.or_else(|| {
            self.managed_identity
                .as_ref()
                .map(|mi| crate::client::credential::ClientCredential::managed_identity_federation(mi.clone()))
        });
        #[cfg(feature = "simulation")]
        let simulation = match self.simulation {
            None | Some((crate::simulation::SimulationMode::Disabled, _)) => None,
            Some((_, None)) => return Err(ConfigError::Missing { field: "simulation_cassette" }),
            Some((mode, Some(path))) => {
                let sim = crate::simulation::Simulation::open(mode, &path)
                    .map_err(|e| ConfigError::invalid("simulation_cassette", e.to_string()))?;
                sim.register_client(&client_id)
                    .map_err(|e| ConfigError::invalid("simulation_cassette", e.to_string()))?;
                Some(sim)
            }
        };

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
            client_credential,
            managed_identity: self.managed_identity,
            token_cache_enabled: !self.token_cache_disabled,
            #[cfg(feature = "simulation")]
            simulation,
            authority_name,
            b2c_user_flows,
            clock: self.clock,
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
                && let Some(entra) = Authority::from_entra_metadata_url(url)
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
            return Authority::parse_url(authority, "authority");
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
        let named_elsewhere =
            |value: &str| crate::authority::named_tenant_ids(value).into_iter().find(|t| Some(t.as_str()) != required);
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
    fn from_env_credential_settings_follow_the_documented_precedence() {
        let base = [("AZURE_TENANT_ID", TID), ("AZURE_CLIENT_ID", CID)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            AzureAdConfig::from_env_with(env(&pairs))
        };
        let debug = |c: &AzureAdConfig| format!("{:?}", c.client_credential());
        assert_eq!(debug(&with(&[]).unwrap()), "None");
        // A secret before a certificate before workload identity, as ClientCredential::from_env.
        let c =
            with(&[("AZURE_CLIENT_SECRET", "s3cr3t"), ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pem")]).unwrap();
        assert_eq!(debug(&c), "Some(ClientCredential::Secret([redacted]))");
        let c = with(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")]).unwrap();
        assert_eq!(debug(&c), "Some(ClientCredential::WorkloadIdentity(\"/t\"))");
        let e = with(&[("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pem")]).unwrap_err();
        assert_eq!(e.field(), "AZURE_CLIENT_CERTIFICATE_PATH");
        // Managed identity: system-assigned, or user-assigned by client id.
        let c = with(&[("AZURE_USE_MANAGED_IDENTITY", "true")]).unwrap();
        assert!(debug(&c).contains("ManagedIdentityFederation"), "{}", debug(&c));
        assert!(format!("{:?}", c.managed_identity().unwrap()).contains("SystemAssigned"));
        let c =
            with(&[("AZURE_USE_MANAGED_IDENTITY", "1"), ("AZURE_MANAGED_IDENTITY_CLIENT_ID", "mi-client")]).unwrap();
        assert!(format!("{:?}", c.managed_identity().unwrap()).contains("ClientId(\"mi-client\")"));
        let c = with(&[("AZURE_MANAGED_IDENTITY_CLIENT_ID", "mi-client")]).unwrap();
        assert!(c.managed_identity().is_some(), "a managed identity client id means a managed identity");
        assert!(with(&[("AZURE_USE_MANAGED_IDENTITY", "false")]).unwrap().managed_identity().is_none());
    }

    #[test]
    fn from_env_refuses_contradictions_naming_both_variables() {
        let base = [("AZURE_TENANT_ID", TID), ("AZURE_CLIENT_ID", CID)];
        let conflict = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            match AzureAdConfig::from_env_with(env(&pairs)).unwrap_err() {
                ConfigError::Conflict { field, other, .. } => (field, other),
                e => panic!("{e:?}"),
            }
        };
        assert_eq!(
            conflict(&[("AZURE_USE_MANAGED_IDENTITY", "true"), ("AZURE_CLIENT_SECRET", "s")]),
            ("AZURE_USE_MANAGED_IDENTITY", "AZURE_CLIENT_SECRET")
        );
        assert_eq!(
            conflict(&[("AZURE_USE_MANAGED_IDENTITY", "true"), ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem")]),
            ("AZURE_USE_MANAGED_IDENTITY", "AZURE_CLIENT_CERTIFICATE_PATH")
        );
        assert_eq!(
            conflict(&[("AZURE_MANAGED_IDENTITY_CLIENT_ID", "mi"), ("AZURE_FEDERATED_TOKEN_FILE", "/t")]),
            ("AZURE_MANAGED_IDENTITY_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")
        );
        assert_eq!(
            conflict(&[("AZURE_USE_MANAGED_IDENTITY", "false"), ("AZURE_MANAGED_IDENTITY_CLIENT_ID", "mi")]),
            ("AZURE_MANAGED_IDENTITY_CLIENT_ID", "AZURE_USE_MANAGED_IDENTITY")
        );
        assert_eq!(
            conflict(&[("AZURE_CLIENT_CERTIFICATE_PASSWORD", "p")]),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PATH")
        );
        let text = AzureAdConfig::from_env_with(env(&[
            ("AZURE_TENANT_ID", TID),
            ("AZURE_CLIENT_ID", CID),
            ("AZURE_USE_MANAGED_IDENTITY", "true"),
            ("AZURE_CLIENT_SECRET", "do-not-print-me"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(text.contains("AZURE_USE_MANAGED_IDENTITY") && text.contains("AZURE_CLIENT_SECRET"), "{text}");
        assert!(!text.contains("do-not-print-me"));
    }

    #[test]
    fn from_env_reads_cache_algorithms_and_simulation_settings() {
        let base = [("AZURE_TENANT_ID", TID), ("AZURE_CLIENT_ID", CID)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            AzureAdConfig::from_env_with(env(&pairs))
        };
        assert!(with(&[]).unwrap().token_cache_enabled());
        assert!(!with(&[("AZURE_AD_CACHE_ENABLED", "FALSE")]).unwrap().token_cache_enabled());
        assert_eq!(with(&[("AZURE_AD_CACHE_ENABLED", "maybe")]).unwrap_err().field(), "AZURE_AD_CACHE_ENABLED");
        assert_eq!(
            with(&[("AZAD_SIGNING_ALGORITHMS", "PS256, rs384")]).unwrap().algorithms(),
            [SigningAlgorithm::PS256, SigningAlgorithm::RS384]
        );
        for refused in ["HS256", "none", "ES256"] {
            assert_eq!(with(&[("AZAD_SIGNING_ALGORITHMS", refused)]).unwrap_err().field(), "AZAD_SIGNING_ALGORITHMS");
        }
        assert_eq!(with(&[("AZURE_AD_SIMULATION_MODE", "sometimes")]).unwrap_err().field(), "AZURE_AD_SIMULATION_MODE");
        let disabled = with(&[("AZURE_AD_SIMULATION_MODE", "disabled")]).unwrap();
        assert!(
            format!("{disabled:?}").contains("simulation: Disabled")
                || format!("{disabled:?}").contains("simulation: \"disabled\"")
        );
        #[cfg(not(feature = "simulation"))]
        assert_eq!(with(&[("AZURE_AD_SIMULATION_MODE", "replay")]).unwrap_err().field(), "AZURE_AD_SIMULATION_MODE");
        #[cfg(feature = "simulation")]
        assert_eq!(
            with(&[("AZURE_AD_SIMULATION_MODE", "replay"), ("AZURE_AD_SIMULATION_CASSETTE", "/nonexistent/azad.json")])
                .unwrap_err()
                .field(),
            "AZURE_AD_SIMULATION_CASSETTE"
        );
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
