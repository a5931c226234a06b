//! [`DevTenant`], a running dev tenant, and its builder. Its methods are grouped by concern in
//! separate `impl` blocks; the logic behind each lives in the module of that concern (keys,
//! registry, faults, metadata, router).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::certificate::DevCertificate;
use super::faults::{Endpoint, Fault, Faults};
use super::keys::{DevKey, KeyRing};
use super::kubernetes::DevKubernetes;
use super::random::{random_bytes, random_secret};
use super::registry::{
    DevApp, DevManagedIdentity, DevUser, GRAPH_CLIENT_ID, KEY_VAULT_CLIENT_ID, ManagedIdentityExpiry, Registry,
    TOKEN_EXCHANGE_AUDIENCE,
};
use super::state::{DevIssuers, Shared};
use super::token::TokenBuilder;
use super::{metadata, router, tls};
use crate::authority::Authority;
use crate::config::AzureAdConfig;

/// The dev tenant's default tenant id.
pub const DEFAULT_TENANT_ID: &str = "7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f";

/// The default protected API's client id.
pub const DEFAULT_API_CLIENT_ID: &str = "a1b2c3d4-0000-4000-8000-00000000a91d";

/// The default client application's id (the `azp`/`appid` of delegated tokens).
pub const DEFAULT_CLIENT_APP_ID: &str = "c0ffee00-0000-4000-8000-0000000c11e7";

/// The default downstream API's client id (Application ID URI `api://azad-downstream`).
pub const DEFAULT_DOWNSTREAM_CLIENT_ID: &str = "d0e1f2a3-0000-4000-8000-00000000d0a1";

/// The default downstream API's Application ID URI.
pub const DEFAULT_DOWNSTREAM_APP_ID_URI: &str = "api://azad-downstream";

/// Builder for a [`DevTenant`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DevTenantBuilder {
    tenant_id: String,
    domain: String,
    extra_tenants: Vec<String>,
    api_client_id: String,
    client_app_id: String,
    users: Vec<DevUser>,
    apps: Vec<DevApp>,
    role_grants: Vec<(String, String, String)>,
    scope_grants: Vec<(String, String, Vec<String>)>,
    identities: Vec<DevManagedIdentity>,
    port: u16,
    https: bool,
    issuers: DevIssuers,
    signing_algorithm: crate::validation::jwt::SigningAlgorithm,
    api_client_secret: Option<String>,
    #[cfg(feature = "simulation")]
    simulation: Option<(crate::simulation::SimulationMode, std::path::PathBuf)>,
    b2c: Option<(String, String)>,
}

impl Default for DevTenantBuilder {
    fn default() -> Self {
        Self {
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            domain: "azaddev.onmicrosoft.com".to_owned(),
            extra_tenants: Vec::new(),
            api_client_id: DEFAULT_API_CLIENT_ID.to_owned(),
            client_app_id: DEFAULT_CLIENT_APP_ID.to_owned(),
            users: Vec::new(),
            apps: Vec::new(),
            role_grants: Vec::new(),
            scope_grants: Vec::new(),
            identities: Vec::new(),
            port: 0,
            https: false,
            issuers: DevIssuers::Own,
            signing_algorithm: crate::validation::jwt::SigningAlgorithm::RS256,
            api_client_secret: None,
            #[cfg(feature = "simulation")]
            simulation: None,
            b2c: None,
        }
    }
}

impl DevTenantBuilder {
    /// The directory at start: the protected API, a client web app, a downstream API,
    /// Microsoft Graph and Key Vault, their consents, and a system-assigned managed identity.
    fn default_registry(&self) -> Registry {
        let mut r = Registry::default();
        let api = DevApp::new("azad quickstart API")
            .client_id(&self.api_client_id)
            .app_id_uri(format!("api://{}", self.api_client_id))
            .scopes(["access_as_user"])
            .app_roles(["Admin", "Tasks.Read.All", "Tasks.ReadWrite.All", "Reports.Read.All"]);
        let web = DevApp::new("azad web app").client_id(&self.client_app_id);
        let downstream = DevApp::new("azad downstream API")
            .client_id(DEFAULT_DOWNSTREAM_CLIENT_ID)
            .app_id_uri(DEFAULT_DOWNSTREAM_APP_ID_URI)
            .scopes(["Data.Read", "Data.Write"])
            .app_roles(["Data.Read.All"]);
        let graph = DevApp::new("Microsoft Graph")
            .client_id(GRAPH_CLIENT_ID)
            .app_id_uri("https://graph.microsoft.com")
            .scopes(["User.Read", "Mail.Read", "GroupMember.Read.All", "offline_access", "openid", "profile", "email"])
            .app_roles(["User.Read.All", "GroupMember.Read.All"])
            .v1_tokens();
        let vault = DevApp::new("Azure Key Vault")
            .client_id(KEY_VAULT_CLIENT_ID)
            .app_id_uri("https://vault.azure.net")
            .scopes(["user_impersonation"])
            .v1_tokens();
        let (api_id, web_id) = (api.client_id.clone(), web.client_id.clone());
        r.secrets.insert(api_id.clone(), vec![self.api_client_secret.clone().unwrap_or_else(random_secret)]);
        r.secrets.insert(web_id.clone(), vec![random_secret()]);
        r.apps.extend([api, web, downstream, graph, vault]);
        r.apps.extend(self.apps.iter().cloned());
        let grant = |r: &mut Registry, c: &str, res: &str, scopes: &[&str]| {
            r.scope_grants.insert((c.to_owned(), res.to_owned()), scopes.iter().map(|s| (*s).to_owned()).collect());
        };
        grant(&mut r, &web_id, &api_id, &["access_as_user"]);
        grant(&mut r, &web_id, GRAPH_CLIENT_ID, &["User.Read", "openid", "profile", "email", "offline_access"]);
        grant(&mut r, &api_id, DEFAULT_DOWNSTREAM_CLIENT_ID, &["Data.Read", "Data.Write"]);
        // The API may resolve group overage through Graph, delegated or as itself.
        grant(&mut r, &api_id, GRAPH_CLIENT_ID, &["User.Read", "GroupMember.Read.All"]);
        r.role_grants.insert((api_id.clone(), GRAPH_CLIENT_ID.to_owned()), vec!["GroupMember.Read.All".into()]);
        r.role_grants.insert((api_id.clone(), DEFAULT_DOWNSTREAM_CLIENT_ID.to_owned()), vec!["Data.Read.All".into()]);
        r.role_grants.insert((web_id, api_id), vec!["Tasks.Read.All".into()]);
        for (client, resource, role) in &self.role_grants {
            r.role_grants.entry((client.clone(), resource.clone())).or_default().push(role.clone());
        }
        for (client, resource, scopes) in &self.scope_grants {
            r.scope_grants.entry((client.clone(), resource.clone())).or_default().extend(scopes.iter().cloned());
        }
        r.identities.push(DevManagedIdentity::system_assigned());
        r.identities.extend(self.identities.iter().cloned());
        r
    }

    /// The tenant id (a GUID; a fixed default otherwise).
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = tenant_id.into().to_ascii_lowercase();
        self
    }

    /// The tenant's domain name (`azaddev.onmicrosoft.com` by default).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Another tenant served by the same dev tenant (same keys, like Entra): for multi-tenant tests.
    pub fn extra_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.extra_tenants.push(tenant_id.into().to_ascii_lowercase());
        self
    }

    /// The protected API's client id (`aud` of its v2.0 tokens).
    pub fn api_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.api_client_id = client_id.into();
        self
    }

    /// The client application's id (`azp`/`appid` of delegated tokens).
    pub fn client_app_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_app_id = client_id.into();
        self
    }

    /// Adds a test user; the first one is the default user of tokens.
    pub fn user(mut self, user: DevUser) -> Self {
        self.users.push(user);
        self
    }

    /// Registers an application (a client, an API, or both).
    pub fn app(mut self, app: DevApp) -> Self {
        self.apps.push(app);
        self
    }

    /// Grants `client_id` the app role `role` of the API `resource_client_id` (admin-consented
    /// application permission, for client credentials).
    pub fn grant_app_role(mut self, client_id: &str, resource_client_id: &str, role: &str) -> Self {
        self.role_grants.push((client_id.to_owned(), resource_client_id.to_owned(), role.to_owned()));
        self
    }

    /// Consents `client_id` to the delegated `scopes` of the API `resource_client_id` (for the
    /// authorization code flow and on-behalf-of).
    pub fn grant_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        client_id: &str,
        resource_client_id: &str,
        scopes: I,
    ) -> Self {
        self.scope_grants.push((
            client_id.to_owned(),
            resource_client_id.to_owned(),
            scopes.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Adds a managed identity (a system-assigned one always exists).
    pub fn managed_identity(mut self, identity: DevManagedIdentity) -> Self {
        self.identities.push(identity);
        self
    }

    /// Plays a Microsoft cloud's authority: its discovery documents (served from loopback)
    /// announce the cloud's real issuers, and its tokens carry them. China's v2.0 issuer is on
    /// `login.partner.microsoftonline.cn`, another host than the authority, and its v1.0 issuer
    /// on `sts.chinacloudapi.cn`. [`DevTenant::config_builder`] then configures the cloud with
    /// [`authority_origin`](crate::config::AzureAdConfigBuilder::authority_origin) set to the
    /// dev tenant.
    pub fn emulate_cloud(mut self, cloud: crate::authority::Cloud) -> Self {
        self.issuers = DevIssuers::Cloud(cloud);
        self
    }

    /// Plays an Entra External ID authority (`{subdomain}.ciamlogin.com`): its issuer is
    /// `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`, on a tenant-id subdomain.
    pub fn emulate_external_id(mut self) -> Self {
        self.issuers = DevIssuers::ExternalId;
        self
    }

    /// Signs every token it issues with `algorithm` (RS256 by default, like Entra), and
    /// announces it as the `alg` of its published keys when it is not RS256, as providers that
    /// sign with RS384, RS512 or RSASSA-PSS do. A configuration must allow it
    /// ([`algorithms`](crate::config::AzureAdConfigBuilder::algorithms)).
    pub fn signing_algorithm(mut self, algorithm: crate::validation::jwt::SigningAlgorithm) -> Self {
        self.signing_algorithm = algorithm;
        self
    }

    /// Every configuration from [`DevTenant::config_builder`] records into, or replays from,
    /// the cassette at `path` (feature `simulation`; see [`crate::simulation`]).
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    pub fn simulation(mut self, mode: crate::simulation::SimulationMode, path: impl Into<std::path::PathBuf>) -> Self {
        self.simulation = Some((mode, path.into()));
        self
    }

    /// The protected API's client secret ([`DevTenant::api_client_secret`]) instead of a
    /// random one: a canary value that tests look for where no secret may be (logs, recorded
    /// cassettes).
    pub fn api_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.api_client_secret = Some(secret.into());
        self
    }

    /// Plays an Azure AD B2C tenant named `tenant` (`contoso` of `contoso.b2clogin.com`) with
    /// the user flow `user_flow`: its domain becomes `{tenant}.onmicrosoft.com`, its metadata
    /// is served at `{base url}/{tenant}.onmicrosoft.com/{user flow}/v2.0/.well-known/openid-configuration`
    /// (and its keys under the same prefix), its issuer is
    /// `https://{tenant}.b2clogin.com/{tenant id}/v2.0/`, and its tokens carry `tfp` (the user
    /// flow), `ver` `1.0` and no `tid`, as B2C's do. [`DevTenant::config_builder`] then
    /// configures [`b2c`](crate::config::AzureAdConfigBuilder::b2c) with the dev tenant as
    /// [`authority_origin`](crate::config::AzureAdConfigBuilder::authority_origin).
    ///
    /// Source: Azure AD B2C, "Overview of tokens" (claims `iss`, `tfp`, `ver`).
    pub fn emulate_b2c(mut self, tenant: impl Into<String>, user_flow: impl Into<String>) -> Self {
        let tenant = tenant.into().to_ascii_lowercase();
        self.domain = format!("{tenant}.onmicrosoft.com");
        self.b2c = Some((tenant, user_flow.into()));
        self.issuers = DevIssuers::B2c;
        self
    }

    /// Listens on this port of 127.0.0.1 instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serves HTTPS instead of plain HTTP, as Microsoft's own clients (MSAL, Azure Identity)
    /// require of an authority.
    ///
    /// At start a certificate authority is generated, with a server certificate for
    /// `localhost`, `127.0.0.1` and `::1` signed by it; the CA is written to a PEM file
    /// ([`DevTenant::ca_pem_path`]) for clients to trust: `REQUESTS_CA_BUNDLE` or
    /// `SSL_CERT_FILE` for Python, `NODE_EXTRA_CA_CERTS` for Node,
    /// [`extra_root_certificates_pem`](crate::config::AzureAdConfigBuilder::extra_root_certificates_pem)
    /// or `AZAD_EXTRA_CA_CERTS` for azad. Every URL the dev tenant announces (discovery,
    /// issuers, endpoints) is then `https://127.0.0.1:{port}`, and [`DevTenant::config`]
    /// already trusts the CA. The managed identity endpoints are served over HTTPS too, and
    /// azad's `ManagedIdentity` client (built without a configuration) does not trust the CA:
    /// keep managed identity tests on a plain HTTP dev tenant.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use azad_core::{TokenValidator, dev::DevTenant};
    ///
    /// let tenant = DevTenant::builder().https().start().await?;
    /// assert!(tenant.base_url().starts_with("https://127.0.0.1:"));
    /// assert!(std::fs::read_to_string(tenant.ca_pem_path().unwrap())?.contains("BEGIN CERTIFICATE"));
    /// let validator = TokenValidator::new(tenant.config());
    /// validator.validate(&tenant.token().build()).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn https(mut self) -> Self {
        self.https = true;
        self
    }

    /// Starts the server on 127.0.0.1.
    ///
    /// # Errors
    ///
    /// The I/O error if the port cannot be bound (or, with [`https`](Self::https), if the
    /// CA file cannot be written).
    pub async fn start(self) -> std::io::Result<DevTenant> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let tls = if self.https {
            let tls = tls::DevTls::generate()?;
            let path = tls::ca_file_path(addr.port());
            tls::write_ca(&path, &tls.ca_pem)?;
            Some((tls, path))
        } else {
            None
        };
        let base_url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        let registry = self.default_registry();
        let mut users = self.users;
        if users.is_empty() {
            users.push(
                DevUser::new("Dev User", format!("dev.user@{}", self.domain))
                    .with_oid("4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"),
            );
        }
        let keys = KeyRing::generate();
        let issuer_authority = self.issuers.authority(&base_url, &self.tenant_id);
        let shared = Arc::new(Shared {
            registry: Mutex::new(registry),
            identity_header: URL_SAFE_NO_PAD.encode(random_bytes::<24>()),
            mi_expiry: Mutex::new(ManagedIdentityExpiry::default()),
            tenant_id: self.tenant_id,
            domain: self.domain,
            extra_tenants: self.extra_tenants,
            api_client_id: self.api_client_id,
            client_app_id: self.client_app_id,
            users,
            keys: RwLock::new(keys),
            faults: Faults::default(),
            base_url,
            issuers: self.issuers,
            issuer_authority,
            b2c: self.b2c,
            served: AtomicUsize::new(0),
            signing_algorithm: self.signing_algorithm,
            stopped: AtomicBool::new(false),
            groups: Mutex::new(HashMap::new()),
            kubernetes: super::cluster::Cluster::default(),
        });
        let (acceptor, ca) = match tls {
            Some((tls, path)) => (Some(tls.acceptor), Some(DevCa { pem: tls.ca_pem, path })),
            None => (None, None),
        };
        let task = tokio::spawn(router::serve(listener, shared.clone(), acceptor));
        tracing::debug!(target: "azad::dev", %addr, https = ca.is_some(), "dev tenant listening");
        Ok(DevTenant {
            shared,
            addr,
            task,
            ca,
            #[cfg(feature = "simulation")]
            simulation: Mutex::new(self.simulation),
        })
    }
}

/// A running dev tenant. Stops listening when dropped.
///
/// See the [module docs](crate::dev) for an example.
pub struct DevTenant {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    ca: Option<DevCa>,
    #[cfg(feature = "simulation")]
    simulation: Mutex<Option<(crate::simulation::SimulationMode, std::path::PathBuf)>>,
}

/// The CA of an HTTPS dev tenant: its PEM text and the file it was written to.
struct DevCa {
    pem: String,
    path: std::path::PathBuf,
}

impl fmt::Debug for DevTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevTenant")
            .field("base_url", &self.shared.base_url)
            .field("tenant_id", &self.shared.tenant_id)
            .field("api_client_id", &self.shared.api_client_id)
            .finish_non_exhaustive()
    }
}

impl Drop for DevTenant {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(ca) = &self.ca {
            let _ = std::fs::remove_file(&ca.path);
        }
    }
}

/// Lifecycle, identity, URLs and configuration.
impl DevTenant {
    /// Starts a dev tenant with the defaults on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// The I/O error if no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// A builder to choose the tenant id, apps and users.
    pub fn builder() -> DevTenantBuilder {
        DevTenantBuilder::default()
    }

    /// The authority host, e.g. `http://127.0.0.1:54321` (`AZURE_AUTHORITY_HOST`), or
    /// `https://127.0.0.1:54321` with [`https`](DevTenantBuilder::https).
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The authority URL of this tenant, `{base_url}/{tenant id}`: what MSAL's `authority`
    /// and Azure Identity's `authority_host` + `tenant_id` name.
    #[must_use]
    pub fn authority(&self) -> String {
        Authority::tenant_url(&self.shared.base_url, &self.shared.tenant_id)
    }

    /// With [`https`](DevTenantBuilder::https): the file holding the CA certificate (PEM)
    /// that signed the server certificate, for clients to trust. Removed when the dev tenant
    /// is dropped.
    #[must_use]
    pub fn ca_pem_path(&self) -> Option<&std::path::Path> {
        self.ca.as_ref().map(|ca| ca.path.as_path())
    }

    /// With [`https`](DevTenantBuilder::https): the CA certificate (PEM).
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.pem.as_str())
    }

    /// The socket address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The tenant id.
    #[must_use]
    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    /// The protected API's client id.
    #[must_use]
    pub fn api_client_id(&self) -> &str {
        &self.shared.api_client_id
    }

    /// The default client application's id.
    #[must_use]
    pub fn client_app_id(&self) -> &str {
        &self.shared.client_app_id
    }

    /// The test users (the first is the default).
    #[must_use]
    pub fn users(&self) -> &[DevUser] {
        &self.shared.users
    }

    /// The v2.0 issuer of this tenant's tokens.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.shared.issuer_v2(&self.shared.tenant_id)
    }

    /// The v1.0 issuer of this tenant's tokens.
    #[must_use]
    pub fn issuer_v1(&self) -> String {
        self.shared.issuer_v1(&self.shared.tenant_id)
    }

    /// The v2.0 OpenID configuration URL.
    #[must_use]
    pub fn metadata_url(&self) -> String {
        self.endpoint(Authority::V2_METADATA_PATH)
    }

    /// The v2.0 JWKS URL.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        self.endpoint(Authority::V2_JWKS_PATH)
    }

    /// The v2.0 token endpoint.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        self.endpoint(Authority::V2_TOKEN_PATH)
    }

    /// The authorization endpoint (v2.0).
    #[must_use]
    pub fn authorize_endpoint(&self) -> String {
        self.endpoint(Authority::V2_AUTHORIZE_PATH)
    }

    /// A configuration for the default API, pointed at this tenant.
    ///
    /// # Panics
    ///
    /// Never in practice: the values are generated by the dev tenant itself.
    #[must_use]
    pub fn config(&self) -> AzureAdConfig {
        self.config_builder().build().expect("dev tenant configuration is valid")
    }

    /// A configuration builder for the default API, pointed at this tenant, to adjust. Over
    /// [HTTPS](DevTenantBuilder::https) it trusts the dev tenant's CA.
    ///
    /// For a dev tenant that [emulates a cloud](DevTenantBuilder::emulate_cloud) or
    /// [External ID](DevTenantBuilder::emulate_external_id), the builder names that cloud (or
    /// `https://azaddev.ciamlogin.com/`) and fetches from the dev tenant with
    /// [`authority_origin`](crate::config::AzureAdConfigBuilder::authority_origin): the
    /// validator expects exactly the real issuers.
    pub fn config_builder(&self) -> crate::config::AzureAdConfigBuilder {
        let b = AzureAdConfig::builder().tenant_id(self.tenant_id()).client_id(self.api_client_id());
        let b = match self.shared.issuers {
            DevIssuers::Own => b.instance(self.base_url()),
            DevIssuers::Cloud(cloud) => b.cloud(cloud).authority_origin(self.base_url()),
            DevIssuers::ExternalId => b.external_id("azaddev").authority_origin(self.base_url()),
            DevIssuers::B2c => {
                let (name, flow) = self.shared.b2c.clone().unwrap_or_default();
                b.b2c(name, flow).authority_origin(self.base_url())
            }
        };
        let b = match &self.ca {
            Some(ca) => b.extra_root_certificates_pem(ca.pem.clone()),
            None => b,
        };
        #[cfg(feature = "simulation")]
        if let Some((mode, path)) = self.simulation.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return b.simulation(mode, path);
        }
        b
    }

    /// From now on, every configuration from [`config_builder`](Self::config_builder) records
    /// into, or replays from, the cassette at `path` (`None`: no simulation). For a test that
    /// records, [stops](Self::stop) the tenant, then replays the same scenario.
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    pub fn set_simulation(&self, simulation: Option<(crate::simulation::SimulationMode, std::path::PathBuf)>) {
        *self.simulation.lock().unwrap_or_else(|e| e.into_inner()) = simulation;
    }

    /// Stops serving: the listener closes, and connections already open are refused an
    /// answer (every request then counts nothing). The directory (apps, users, keys) stays, so
    /// configurations and tokens can still be built: replaying a recorded scenario needs no
    /// running tenant.
    pub fn stop(&self) {
        self.task.abort();
        self.shared.stopped.store(true, Ordering::SeqCst);
    }

    /// Which issuers this dev tenant announces.
    #[must_use]
    pub fn issuer_forms(&self) -> DevIssuers {
        self.shared.issuers
    }

    /// `{base url}/{tenant id}/{path}`, formatted by [`Authority`].
    fn endpoint(&self, path: &str) -> String {
        Authority::tenant_endpoint(&self.shared.base_url, &self.shared.tenant_id, path)
    }
}

/// Tokens and signing keys.
impl DevTenant {
    /// A token builder: by default a v2.0 delegated token of the default user for the default
    /// API, with `scp` `access_as_user`, valid for one hour.
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(self.shared.clone())
    }

    /// The JWKS document currently published (JSON text), e.g. to build a static key set.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        metadata::jwks_document(&self.shared, None, None).to_string()
    }

    /// Signs arbitrary header and payload JSON texts with the active key (RS256), for tests
    /// of malformed or hostile tokens.
    #[must_use]
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> String {
        self.sign_raw_bytes(header_json.as_bytes(), payload_json.as_bytes())
    }

    /// Like [`sign_raw`](Self::sign_raw), for any bytes: header and payload need not be UTF-8
    /// or JSON (tests of invalid text: `b"{\"alg\":\"RS256\",\"x\":\"\xff\"}"`).
    #[must_use]
    pub fn sign_raw_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        let key = self.shared.keys.read().unwrap_or_else(|e| e.into_inner()).active.clone();
        key.sign_compact(crate::validation::jwt::SigningAlgorithm::RS256, header, payload)
    }

    /// The key id tokens are signed with now.
    #[must_use]
    pub fn active_kid(&self) -> String {
        self.shared.keys.read().unwrap_or_else(|e| e.into_inner()).active.kid.clone()
    }

    /// Starts signing with a new key. The previous key stays published until
    /// [`retire_key`](Self::retire_key). Returns the new key id.
    #[allow(clippy::must_use_candidate)]
    pub fn rotate_keys(&self) -> String {
        let new = Arc::new(DevKey::generate());
        let mut ring = self.shared.keys.write().unwrap_or_else(|e| e.into_inner());
        ring.published.push(new.clone());
        ring.active = new;
        ring.active.kid.clone()
    }

    /// Publishes a second, different key under the active key's `kid` and signs with it from
    /// now on (RFC 7517 only says a `kid` *should* be unique). With `first`, the new key is
    /// listed before the old one in the JWKS, else after it. Tokens signed before stay
    /// verifiable with the old key. Returns the shared `kid`.
    #[allow(clippy::must_use_candidate)]
    pub fn publish_second_key_under_active_kid(&self, first: bool) -> String {
        let mut ring = self.shared.keys.write().unwrap_or_else(|e| e.into_inner());
        let twin = Arc::new(DevKey::generate().with_kid(ring.active.kid.clone()));
        if first {
            ring.published.insert(0, twin.clone());
        } else {
            ring.published.push(twin.clone());
        }
        ring.active = twin;
        ring.active.kid.clone()
    }

    /// Stops publishing a key. Returns `false` if it was not published.
    #[allow(clippy::must_use_candidate)]
    pub fn retire_key(&self, kid: &str) -> bool {
        let mut ring = self.shared.keys.write().unwrap_or_else(|e| e.into_inner());
        let before = ring.published.len();
        ring.published.retain(|k| k.kid != kid);
        before != ring.published.len()
    }

    /// Creates an application-specific signing key for `client_id`, published only at
    /// `jwks_uri?appid={client_id}`. Returns its key id.
    #[allow(clippy::must_use_candidate)]
    pub fn add_app_signing_key(&self, client_id: &str) -> String {
        let key = Arc::new(DevKey::generate());
        let kid = key.kid.clone();
        self.shared.keys.write().unwrap_or_else(|e| e.into_inner()).app_keys.insert(client_id.to_owned(), key);
        kid
    }
}

/// The directory: groups, app registrations, credentials and federation.
impl DevTenant {
    /// Adds the user `user_oid` to the group `group_id` (object ids). The dev tenant's Graph
    /// endpoints ([`graph_base_url`](Self::graph_base_url)) answer from these memberships, and
    /// [`TokenBuilder::directory_groups`] puts them in tokens.
    pub fn add_group_member(&self, group_id: &str, user_oid: &str) {
        let mut groups = self.shared.groups.lock().unwrap_or_else(|e| e.into_inner());
        let list = groups.entry(user_oid.to_ascii_lowercase()).or_default();
        if !list.iter().any(|g| g.eq_ignore_ascii_case(group_id)) {
            list.push(group_id.to_owned());
        }
    }

    /// Removes the user `user_oid` from the group `group_id`; `true` if it was a member.
    #[allow(clippy::must_use_candidate)] // a change to the directory; the answer is a bonus
    pub fn remove_group_member(&self, group_id: &str, user_oid: &str) -> bool {
        let mut groups = self.shared.groups.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = groups.get_mut(&user_oid.to_ascii_lowercase()) else {
            return false;
        };
        let before = list.len();
        list.retain(|g| !g.eq_ignore_ascii_case(group_id));
        before != list.len()
    }

    /// The groups of the user `user_oid`, in the order they were added.
    #[must_use]
    pub fn user_groups(&self, user_oid: &str) -> Vec<String> {
        self.shared.user_groups(user_oid)
    }

    /// The base URL of the dev tenant's Microsoft Graph emulation (its own base URL): point
    /// [`GroupResolver::with_graph_base_url`](crate::groups::GroupResolver::with_graph_base_url)
    /// at it. It serves `POST /v1.0/me/checkMemberGroups` and `/v1.0/me/getMemberObjects`
    /// (delegated tokens for Graph with `GroupMember.Read.All`, `Group.Read.All` or
    /// `Directory.Read.All`) and their `/v1.0/users/{id}/…` forms (app tokens with one of those
    /// app roles), validating the Graph-audience token it issued, with faults on
    /// [`Endpoint::Graph`].
    #[must_use]
    pub fn graph_base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The downstream API registered by default (`api://azad-downstream`), consented for the
    /// protected API's on-behalf-of calls (`Data.Read`, `Data.Write`) and app role `Data.Read.All`.
    #[must_use]
    pub fn downstream_client_id(&self) -> &'static str {
        DEFAULT_DOWNSTREAM_CLIENT_ID
    }

    /// A client secret of the protected API's app registration.
    ///
    /// # Panics
    ///
    /// Never: the API always has a secret.
    #[must_use]
    pub fn api_client_secret(&self) -> String {
        self.shared.registry().secrets[&self.shared.api_client_id][0].clone()
    }

    /// A client secret of the default client (web) app.
    ///
    /// # Panics
    ///
    /// Never: the client app always has a secret.
    #[must_use]
    pub fn client_app_secret(&self) -> String {
        self.shared.registry().secrets[&self.shared.client_app_id][0].clone()
    }

    /// Registers an application at run time.
    pub fn register_app(&self, app: DevApp) {
        self.shared.registry().apps.push(app);
    }

    /// Grants `client_id` an app role of `resource_client_id` at run time.
    pub fn grant_app_role(&self, client_id: &str, resource_client_id: &str, role: &str) {
        self.shared
            .registry()
            .role_grants
            .entry((client_id.to_owned(), resource_client_id.to_owned()))
            .or_default()
            .push(role.to_owned());
    }

    /// Consents `client_id` to delegated scopes of `resource_client_id` at run time.
    pub fn grant_scopes(&self, client_id: &str, resource_client_id: &str, scopes: &[&str]) {
        self.shared
            .registry()
            .scope_grants
            .entry((client_id.to_owned(), resource_client_id.to_owned()))
            .or_default()
            .extend(scopes.iter().map(|s| (*s).to_owned()));
    }

    /// Adds a client secret to an app registration and returns it.
    #[must_use]
    pub fn add_client_secret(&self, client_id: &str) -> String {
        let secret = random_secret();
        self.shared.registry().secrets.entry(client_id.to_owned()).or_default().push(secret.clone());
        secret
    }

    /// Creates a self-signed certificate, registers it on an app registration, and returns
    /// it with its private key (PEM, and PKCS#12 with the `pkcs12` feature).
    ///
    /// # Panics
    ///
    /// If certificate generation fails (it does not with the bundled crypto).
    #[must_use]
    pub fn add_certificate(&self, client_id: &str) -> DevCertificate {
        let cert = DevCertificate::generate(&format!("CN=azad-dev-{client_id}"));
        self.register_certificate(client_id, cert.der());
        cert
    }

    /// Registers an existing certificate (DER) on an app registration.
    pub fn register_certificate(&self, client_id: &str, der: &[u8]) {
        self.shared.registry().certificates.entry(client_id.to_owned()).or_default().push(der.to_vec());
    }

    /// Adds a federated identity credential to an app registration: tokens from `issuer`
    /// with subject `subject` and audience `api://AzureADTokenExchange` become client assertions.
    pub fn add_federated_credential(&self, client_id: &str, issuer: &str, subject: &str) {
        self.shared
            .registry()
            .federated
            .entry(client_id.to_owned())
            .or_default()
            .push((issuer.to_owned(), subject.to_owned()));
    }

    /// The issuer of the federated tokens the dev tenant mints for workload identity (it plays
    /// a Kubernetes cluster's OIDC issuer).
    #[must_use]
    pub fn federation_issuer(&self) -> String {
        format!("{}/federation", self.shared.base_url)
    }

    /// A federated token (a Kubernetes service account token, as projected into a pod) for
    /// `subject`, e.g. `system:serviceaccount:default:workload`, valid one hour.
    #[must_use]
    pub fn federated_token(&self, subject: &str) -> String {
        self.token()
            .app_only()
            .v2()
            .issuer(self.federation_issuer())
            .audience(TOKEN_EXCHANGE_AUDIENCE)
            .claim("sub", subject)
            .without_claim("tid")
            .without_claim("ver")
            .without_claim("azp")
            .without_claim("azpacr")
            .without_claim("idtyp")
            .without_claim("oid")
            .without_claim("rh")
            .without_claim("aio")
            .without_claim("uti")
            .build()
    }
}

/// Managed identity.
impl DevTenant {
    /// The managed identities (the first is system-assigned).
    #[must_use]
    pub fn managed_identities(&self) -> Vec<DevManagedIdentity> {
        self.shared.registry().identities.clone()
    }

    /// The IMDS-shaped managed identity endpoint (full token URL).
    #[must_use]
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.shared.base_url)
    }

    /// The App Service–shaped managed identity endpoint (`IDENTITY_ENDPOINT`).
    #[must_use]
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.shared.base_url)
    }

    /// Changes how both managed identity endpoints state expiry from now on (by default, as
    /// IMDS and App Service do).
    pub fn set_managed_identity_expiry(&self, shape: ManagedIdentityExpiry) {
        *self.shared.mi_expiry.lock().unwrap_or_else(|e| e.into_inner()) = shape;
    }

    /// The secret header value of the App Service endpoint (`IDENTITY_HEADER`).
    #[must_use]
    pub fn identity_header(&self) -> &str {
        &self.shared.identity_header
    }
}

/// The Key Vault–shaped secrets endpoint (served by `key_vault.rs`).
impl DevTenant {
    /// Stores a new version of secret `name` in the Key Vault–shaped secrets endpoint
    /// (`GET {vault_url}/secrets/{name}` then answers with it; older versions stay readable at
    /// `GET {vault_url}/secrets/{name}/{version}`). This is how a test rotates a secret.
    pub fn set_secret(&self, name: &str, value: &str) {
        let _ = self.add_secret_version(name, value, None);
    }

    /// Stores a new version of secret `name` with an optional `contentType` (e.g.
    /// `application/x-pem-file`) and returns its version id (32 hex digits, as Key Vault's).
    #[must_use]
    pub fn add_secret_version(&self, name: &str, value: &str, content_type: Option<&str>) -> String {
        self.shared.registry().vault.set(name, value, content_type)
    }

    /// The version ids of secret `name`, oldest first (empty when there is no such secret).
    #[must_use]
    pub fn secret_versions(&self, name: &str) -> Vec<String> {
        let registry = self.shared.registry();
        registry
            .vault
            .secrets
            .get(&name.to_ascii_lowercase())
            .map_or_else(Vec::new, |v| v.iter().map(|s| s.version.clone()).collect())
    }

    /// Enables or disables one version of a secret (a disabled version answers 403
    /// `Forbidden`, as Key Vault's). Returns `false` if there is no such version.
    #[must_use]
    pub fn set_secret_version_enabled(&self, name: &str, version: &str, enabled: bool) -> bool {
        let mut registry = self.shared.registry();
        let Some(found) = registry
            .vault
            .secrets
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|v| v.iter_mut().find(|s| s.version == version))
        else {
            return false;
        };
        found.enabled = enabled;
        found.updated = super::clock::now();
        true
    }

    /// Refuses (or allows again) secret reads to a principal: a token whose `oid`, `appid` or
    /// `azp` is `principal_id` gets 403 `Forbidden` (`ForbiddenByRbac`), as a caller without a
    /// role assignment on a real vault does.
    pub fn deny_secret_access(&self, principal_id: &str, denied: bool) {
        let mut registry = self.shared.registry();
        if denied {
            registry.vault.denied.insert(principal_id.to_owned());
        } else {
            registry.vault.denied.remove(principal_id);
        }
    }

    /// The base URL of the Key Vault–shaped secrets endpoint (the vault URL).
    #[must_use]
    pub fn vault_url(&self) -> &str {
        &self.shared.base_url
    }
}

/// The device code flow.
impl DevTenant {
    /// Approves a pending device code as the user at `user_index` (what the user does in a
    /// browser at `/devicelogin`). Returns `false` if no such code is pending.
    #[must_use]
    pub fn approve_device_code(&self, user_code: &str, user_index: usize) -> bool {
        let mut registry = self.shared.registry();
        match registry.device_codes.values_mut().find(|g| g.user_code.eq_ignore_ascii_case(user_code)) {
            Some(grant) if user_index < self.shared.users.len() => {
                grant.approved_by = Some(user_index);
                true
            }
            _ => false,
        }
    }
}

/// Request counters and fault injection.
impl DevTenant {
    /// How many requests an endpoint has served (including faulted ones).
    #[must_use]
    pub fn requests(&self, endpoint: Endpoint) -> usize {
        self.shared.faults.requests(endpoint)
    }

    /// Resets every request counter.
    pub fn reset_counters(&self) {
        self.shared.faults.reset_counters();
    }

    /// Injects a fault on an endpoint until [`clear_fault`](Self::clear_fault).
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.shared.faults.set(endpoint, fault, None);
    }

    /// Injects a fault for the next `times` requests to an endpoint.
    pub fn inject_times(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.shared.faults.set(endpoint, fault, Some(times));
    }

    /// Removes the fault of an endpoint.
    pub fn clear_fault(&self, endpoint: Endpoint) {
        self.shared.faults.clear(endpoint);
    }

    /// Total requests served, all endpoints.
    #[must_use]
    pub fn total_requests(&self) -> usize {
        self.shared.served.load(Ordering::Relaxed)
    }
}

/// The emulated Kubernetes cluster (served by `kubernetes.rs`).
impl DevTenant {
    /// The emulated Kubernetes cluster: service-account tokens as projected into a pod, and the
    /// API server's TokenReview endpoint on this dev tenant's base URL (for OpenBao's or Vault's
    /// Kubernetes auth).
    #[must_use]
    pub fn kubernetes(&self) -> DevKubernetes {
        DevKubernetes::new(self.shared.clone())
    }
}

/// The end of a credential rotation: removing a secret or certificate from a registration.
impl DevTenant {
    /// Removes client secret `secret` from app registration `client_id` (the end of a
    /// rotation: the token endpoint then refuses it with `invalid_client`, AADSTS7000215).
    /// Returns `false` if the app had no such secret.
    #[must_use]
    pub fn remove_client_secret(&self, client_id: &str, secret: &str) -> bool {
        let mut registry = self.shared.registry();
        let Some(list) = registry.secrets.get_mut(client_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s != secret);
        list.len() != before
    }

    /// Removes a certificate (DER) from app registration `client_id`: assertions signed with
    /// its key are then refused (`invalid_client`, AADSTS700027). Returns `false` if the app
    /// had no such certificate.
    #[must_use]
    pub fn remove_certificate(&self, client_id: &str, der: &[u8]) -> bool {
        let mut registry = self.shared.registry();
        let Some(list) = registry.certificates.get_mut(client_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|c| c != der);
        list.len() != before
    }
}
