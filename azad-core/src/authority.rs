//! Clouds, tenants and authorities: every Entra ID URL and issuer is built here and nowhere else.

use std::fmt;

use url::Url;

use crate::error::ConfigError;

/// The tenant id template that multi-tenant metadata uses in place of a tenant id.
pub(crate) const TENANT_TEMPLATE: &str = "{tenantid}";

/// The tenant id of personal Microsoft accounts (the `consumers` tenant).
pub const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// A national cloud of Microsoft Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cloud {
    /// The global Azure cloud (`login.microsoftonline.com`).
    Public,
    /// Azure US Government (`login.microsoftonline.us`).
    UsGovernment,
    /// Azure operated by 21Vianet in China (`login.chinacloudapi.cn`).
    China,
}

impl Cloud {
    /// The authority host of this cloud, e.g. `https://login.microsoftonline.com/`.
    #[must_use]
    pub fn authority_host(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com/",
            Self::UsGovernment => "https://login.microsoftonline.us/",
            Self::China => "https://login.chinacloudapi.cn/",
        }
    }

    /// The host of v2.0 token issuers, as the cloud's discovery documents announce it. It is
    /// not always the authority host: China's authority `login.chinacloudapi.cn` announces
    /// `https://login.partner.microsoftonline.cn/{tenantid}/v2.0`, and the public cloud's
    /// aliases (`login.windows.net`, `login.microsoft.com`, `sts.windows.net`) all issue as
    /// `login.microsoftonline.com`.
    ///
    /// Source: MSAL's built-in endpoint metadata (`@azure/msal-common`, `rawMetdataJSON`).
    #[must_use]
    pub fn v2_issuer_host(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com/",
            Self::UsGovernment => "https://login.microsoftonline.us/",
            Self::China => "https://login.partner.microsoftonline.cn/",
        }
    }

    /// The host of v1.0 token issuers (`https://sts.windows.net/` for the global and US
    /// Government clouds, `https://sts.chinacloudapi.cn/` for China).
    ///
    /// Source: Microsoft's token issuers per national cloud (Microsoft Q&A 1190472, "What are
    /// the token issuers for the sovereign clouds", and the national clouds documentation).
    #[must_use]
    pub fn v1_issuer_host(self) -> &'static str {
        match self {
            Self::Public | Self::UsGovernment => "https://sts.windows.net/",
            Self::China => "https://sts.chinacloudapi.cn/",
        }
    }

    /// The host names that reach this cloud's authority (instance discovery aliases: a token
    /// issued through one is valid for all of them). Source: MSAL's `InstanceDiscoveryMetadata`.
    #[must_use]
    pub fn authority_aliases(self) -> &'static [&'static str] {
        match self {
            Self::Public => {
                &["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
            }
            Self::UsGovernment => &["login.microsoftonline.us", "login.usgovcloudapi.net"],
            Self::China => &["login.chinacloudapi.cn", "login.partner.microsoftonline.cn"],
        }
    }

    /// Parses a cloud name: `public`/`AzurePublicCloud`, `usgov`/`AzureUSGovernment`,
    /// `china`/`AzureChinaCloud` (case-insensitive).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "public" | "azurepubliccloud" | "azurecloud" | "global" => Some(Self::Public),
            "usgov" | "usgovernment" | "azureusgovernment" | "azureusgovernmentcloud" => Some(Self::UsGovernment),
            "china" | "azurechinacloud" => Some(Self::China),
            _ => None,
        }
    }

    /// Recognises a known authority host or alias (see
    /// [`authority_aliases`](Self::authority_aliases)), case-insensitively.
    #[must_use]
    pub fn from_host(host: &str) -> Option<Self> {
        [Self::Public, Self::UsGovernment, Self::China]
            .into_iter()
            .find(|c| c.authority_aliases().iter().any(|a| a.eq_ignore_ascii_case(host)))
    }
}

/// The host family of Microsoft Entra External ID (CIAM) authorities: `{subdomain}.ciamlogin.com`.
pub const EXTERNAL_ID_DOMAIN: &str = "ciamlogin.com";

/// How an Entra-shaped authority's issuers are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issuance {
    /// A national cloud: issuers on the cloud's fixed v2 and v1 issuer hosts.
    Cloud(Cloud),
    /// Entra External ID: `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`, whatever the
    /// authority's subdomain. No v1.0 issuer is documented.
    ExternalId,
    /// Any other host (the dev tenant): it announces its own issuers, on its own host.
    Custom,
}

/// Which tenant(s) an application accepts tokens from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tenant {
    /// One tenant, by its id (a GUID, stored lowercase).
    Id(String),
    /// One tenant, by one of its domain names (e.g. `contoso.onmicrosoft.com`). The tenant id
    /// is learned from the discovery document.
    Domain(String),
    /// Any work or school account tenant (multi-tenant, no personal accounts).
    Organizations,
    /// Any tenant, including personal Microsoft accounts (multi-tenant).
    Common,
    /// Personal Microsoft accounts only.
    Consumers,
}

impl Tenant {
    /// Parses `common`, `organizations`, `consumers` (case-insensitive), a GUID or a domain name.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming `field` when the value is none of these.
    pub fn parse(value: &str, field: &'static str) -> Result<Self, ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError::Missing { field });
        }
        match value.to_ascii_lowercase().as_str() {
            "common" => return Ok(Self::Common),
            "organizations" => return Ok(Self::Organizations),
            "consumers" => return Ok(Self::Consumers),
            _ => {}
        }
        if is_guid(value) {
            return Ok(Self::Id(value.to_ascii_lowercase()));
        }
        let domain_like = value.contains('.')
            && value.split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if domain_like {
            Ok(Self::Domain(value.to_ascii_lowercase()))
        } else {
            Err(ConfigError::invalid(
                field,
                "expected a tenant id (GUID), a domain name, `common`, `organizations` or `consumers`",
            ))
        }
    }

    /// The path segment used in authority URLs.
    #[must_use]
    pub fn as_path(&self) -> &str {
        match self {
            Self::Id(s) | Self::Domain(s) => s,
            Self::Organizations => "organizations",
            Self::Common => "common",
            Self::Consumers => "consumers",
        }
    }

    /// `true` for `common` and `organizations`, whose tokens come from many tenants.
    #[must_use]
    pub fn is_multi_tenant(&self) -> bool {
        matches!(self, Self::Common | Self::Organizations)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_path())
    }
}

/// `true` if `s` is a GUID in the 8-4-4-4-12 hexadecimal form.
#[must_use]
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parses a URL and refuses plain `http` except for loopback hosts.
pub(crate) fn parse_secure_url(value: &str, field: &'static str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError::invalid(field, format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureUrl { field }),
        other => {
            return Err(ConfigError::invalid(field, format!("unsupported scheme `{other}`")));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(field, "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(field, "the URL must not carry credentials"));
    }
    Ok(url)
}

/// `true` for `localhost`, 127.0.0.0/8 and `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Joins `host` (a base URL) and a relative path, keeping any path prefix of the host.
fn join(host: &Url, path: &str) -> String {
    let base = host.as_str().trim_end_matches('/');
    format!("{base}/{path}")
}

/// Parses an authority host or origin: a secure URL without query or fragment, with a path
/// ending in `/`.
fn parse_host_url(host: &str, field: &'static str) -> Result<Url, ConfigError> {
    let mut url = parse_secure_url(host, field)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(field, "the authority host must not have a query"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `true` for `{label}.ciamlogin.com` (one label under the External ID domain).
fn is_external_id_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.strip_suffix(EXTERNAL_ID_DOMAIN)
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

/// Where tokens come from: an Entra ID instance and tenant, or any OpenID Connect provider.
///
/// All metadata, key, token, authorisation and device-code URLs, and the issuers a token may
/// carry, are derived here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    kind: AuthorityKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthorityKind {
    Entra {
        /// Where documents are fetched and endpoints live, e.g. `https://login.microsoftonline.com/`
        /// or the dev tenant's `http://127.0.0.1:port/` (see [`Authority::served_from`]).
        host: Url,
        /// How the issuers are formed.
        issuance: Issuance,
        tenant: Tenant,
        /// Origins besides the authority's own that may publish its signing keys.
        trusted_jwks_origins: Vec<String>,
    },
    Oidc {
        discovery_url: Url,
        issuer: Option<String>,
        trusted_jwks_origins: Vec<String>,
    },
}

/// `scheme://host[:port]` of a URL (its origin, RFC 6454), lower-case.
pub(crate) fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Authority {
    /// An Entra ID authority in one of Microsoft's clouds.
    #[must_use]
    pub fn entra(cloud: Cloud, tenant: Tenant) -> Self {
        let host = Url::parse(cloud.authority_host()).expect("cloud hosts are valid URLs");
        Self {
            kind: AuthorityKind::Entra {
                host,
                issuance: Issuance::Cloud(cloud),
                tenant,
                trusted_jwks_origins: Vec::new(),
            },
        }
    }

    /// A Microsoft Entra External ID (CIAM) authority, `https://{subdomain}.ciamlogin.com/{tenant}/v2.0`.
    /// Its tokens' issuer is `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0` (a tenant-id
    /// subdomain, whatever `subdomain` is), and only v2.0 tokens are accepted.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `subdomain` is not one DNS label, or the tenant is
    /// multi-tenant (External ID tenants are single tenants).
    pub fn external_id(subdomain: &str, tenant: Tenant) -> Result<Self, ConfigError> {
        let label_ok = !subdomain.is_empty()
            && subdomain.len() <= 63
            && subdomain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !label_ok {
            return Err(ConfigError::invalid("authority", "an External ID subdomain is one DNS label"));
        }
        Self::entra_at_host(&format!("https://{subdomain}.{EXTERNAL_ID_DOMAIN}/"), tenant, "authority")
    }

    /// An Entra-shaped authority at `host` (for example `AZURE_AUTHORITY_HOST`). Known Microsoft
    /// hosts and their aliases map to their cloud, `*.ciamlogin.com` to Entra External ID; any
    /// other host (such as the dev tenant) announces its own issuers, on its own host, in its
    /// discovery documents.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming `field` if the host is not a URL, or is plain `http` off loopback,
    /// or if an External ID host is given a multi-tenant tenant.
    pub fn entra_at_host(host: &str, tenant: Tenant, field: &'static str) -> Result<Self, ConfigError> {
        let url = parse_host_url(host, field)?;
        let issuance = match url.host_str() {
            Some(h) if url.path() == "/" => match Cloud::from_host(h) {
                Some(cloud) => Issuance::Cloud(cloud),
                None if is_external_id_host(h) && url.scheme() == "https" => Issuance::ExternalId,
                None => Issuance::Custom,
            },
            _ => Issuance::Custom,
        };
        if issuance == Issuance::ExternalId && tenant.is_multi_tenant() {
            return Err(ConfigError::invalid(
                field,
                "Entra External ID tenants are single tenants: give the tenant id or domain",
            ));
        }
        Ok(Self { kind: AuthorityKind::Entra { host: url, issuance, tenant, trusted_jwks_origins: Vec::new() } })
    }

    /// The same authority, with its documents fetched from `origin` instead of its own host:
    /// for the dev tenant playing a cloud (China, External ID...) on loopback, or an egress
    /// proxy. The issuers accepted stay those of the cloud; only where the discovery
    /// documents, keys and endpoints are fetched changes. Signing keys must then be published
    /// on `origin` too.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] (`authority_origin`) if `origin` is not an https URL (or http on
    /// loopback) without a path, or the authority is not Entra-shaped.
    pub fn served_from(mut self, origin: &str) -> Result<Self, ConfigError> {
        let field = "authority_origin";
        let url = parse_host_url(origin, field)?;
        if url.path() != "/" {
            return Err(ConfigError::invalid(field, "an origin has no path"));
        }
        match &mut self.kind {
            AuthorityKind::Entra { host, .. } => *host = url,
            AuthorityKind::Oidc { .. } => {
                return Err(ConfigError::Conflict {
                    field,
                    other: "metadata_url",
                    reason: "an OpenID Connect discovery URL already says where documents are fetched",
                });
            }
        }
        Ok(self)
    }

    /// Also trusts signing keys published on `origin` (`https://host[:port]`). By default,
    /// the `jwks_uri` of the discovery document must be on the origin the document was
    /// fetched from (for Microsoft clouds, any of the cloud's authority aliases; for External
    /// ID, also the tenant's own `{tenant id}.ciamlogin.com`).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] (`trusted_jwks_origin`) if `origin` is not an https URL (or http on
    /// loopback).
    pub fn trust_jwks_origin(mut self, origin: &str) -> Result<Self, ConfigError> {
        let url = parse_secure_url(origin, "trusted_jwks_origin")?;
        let origin = origin_of(&url);
        match &mut self.kind {
            AuthorityKind::Entra { trusted_jwks_origins, .. } | AuthorityKind::Oidc { trusted_jwks_origins, .. } => {
                if !trusted_jwks_origins.contains(&origin) {
                    trusted_jwks_origins.push(origin);
                }
            }
        }
        Ok(self)
    }

    /// Any OpenID Connect provider (Azure AD B2C, Entra External ID, or a non-Microsoft
    /// provider), by the URL of its discovery document. Its `issuer` must equal `issuer` when
    /// given, else the discovery URL without `/.well-known/openid-configuration`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming `field` if the URL is not acceptable.
    pub fn oidc(discovery_url: &str, issuer: Option<String>, field: &'static str) -> Result<Self, ConfigError> {
        let mut url = parse_secure_url(discovery_url, field)?;
        if !url.path().contains("/.well-known/") {
            let path = format!("{}/.well-known/openid-configuration", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        Ok(Self { kind: AuthorityKind::Oidc { discovery_url: url, issuer, trusted_jwks_origins: Vec::new() } })
    }

    /// The tenant, for Entra authorities.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        match &self.kind {
            AuthorityKind::Entra { tenant, .. } => Some(tenant),
            AuthorityKind::Oidc { .. } => None,
        }
    }

    /// The Microsoft cloud, when the authority host is a known one (`None` for External ID,
    /// custom hosts and OpenID Connect providers).
    #[must_use]
    pub fn cloud(&self) -> Option<Cloud> {
        match &self.kind {
            AuthorityKind::Entra { issuance: Issuance::Cloud(cloud), .. } => Some(*cloud),
            _ => None,
        }
    }

    /// `true` for a Microsoft Entra External ID (CIAM, `*.ciamlogin.com`) authority.
    #[must_use]
    pub fn is_external_id(&self) -> bool {
        matches!(self.kind, AuthorityKind::Entra { issuance: Issuance::ExternalId, .. })
    }

    /// `true` for Entra-shaped authorities (Microsoft clouds and custom hosts such as the dev tenant).
    #[must_use]
    pub fn is_entra(&self) -> bool {
        matches!(self.kind, AuthorityKind::Entra { .. })
    }

    /// `true` if tokens may come from several tenants (`common`, `organizations`).
    #[must_use]
    pub fn is_multi_tenant(&self) -> bool {
        self.tenant().is_some_and(Tenant::is_multi_tenant)
    }

    /// The authority host (`https://login.microsoftonline.com/`), for Entra authorities: where
    /// its documents and endpoints are (the [`served_from`](Self::served_from) origin, if set).
    #[must_use]
    pub fn host(&self) -> Option<&Url> {
        match &self.kind {
            AuthorityKind::Entra { host, .. } => Some(host),
            AuthorityKind::Oidc { .. } => None,
        }
    }

    /// The authority URL that clients use, e.g. `https://login.microsoftonline.com/{tenant}/v2.0`.
    #[must_use]
    pub fn url(&self) -> String {
        match &self.kind {
            AuthorityKind::Entra { host, tenant, .. } => join(host, &format!("{}/v2.0", tenant.as_path())),
            AuthorityKind::Oidc { discovery_url, .. } => {
                let s = discovery_url.as_str();
                s.split("/.well-known/").next().unwrap_or(s).to_owned()
            }
        }
    }

    /// The v2.0 OpenID configuration URL (or the configured discovery URL).
    #[must_use]
    pub fn metadata_url(&self) -> String {
        match &self.kind {
            AuthorityKind::Entra { host, tenant, .. } => {
                join(host, &format!("{}/v2.0/.well-known/openid-configuration", tenant.as_path()))
            }
            AuthorityKind::Oidc { discovery_url, .. } => discovery_url.to_string(),
        }
    }

    /// The v1.0 OpenID configuration URL, fetched only for custom Entra hosts whose v1 issuer
    /// has no known form.
    #[must_use]
    pub fn v1_metadata_url(&self) -> Option<String> {
        match &self.kind {
            AuthorityKind::Entra { host, tenant, issuance: Issuance::Custom, .. } => {
                Some(join(host, &format!("{}/.well-known/openid-configuration", tenant.as_path())))
            }
            _ => None,
        }
    }

    /// The v2.0 token endpoint, e.g. `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    ///
    /// For non-Entra authorities the token endpoint comes from discovery; `None` here.
    #[must_use]
    pub fn token_endpoint(&self) -> Option<String> {
        self.entra_endpoint("oauth2/v2.0/token")
    }

    /// The v2.0 authorisation endpoint.
    #[must_use]
    pub fn authorize_endpoint(&self) -> Option<String> {
        self.entra_endpoint("oauth2/v2.0/authorize")
    }

    /// The v2.0 device authorisation endpoint.
    #[must_use]
    pub fn device_code_endpoint(&self) -> Option<String> {
        self.entra_endpoint("oauth2/v2.0/devicecode")
    }

    /// The v2.0 sign-out endpoint.
    #[must_use]
    pub fn logout_endpoint(&self) -> Option<String> {
        self.entra_endpoint("oauth2/v2.0/logout")
    }

    fn entra_endpoint(&self, path: &str) -> Option<String> {
        match &self.kind {
            AuthorityKind::Entra { host, tenant, .. } => Some(join(host, &format!("{}/{path}", tenant.as_path()))),
            AuthorityKind::Oidc { .. } => None,
        }
    }

    /// The issuer a v2.0 discovery document must announce, given the tenant id part it used
    /// (a GUID, or `{tenantid}` for multi-tenant metadata). `None` for non-Entra authorities.
    pub(crate) fn expected_v2_issuer(&self, tenant_part: &str) -> Option<String> {
        match &self.kind {
            AuthorityKind::Entra { issuance: Issuance::Cloud(cloud), .. } => {
                Some(format!("{}{tenant_part}/v2.0", cloud.v2_issuer_host()))
            }
            AuthorityKind::Entra { issuance: Issuance::ExternalId, .. } => {
                Some(format!("https://{tenant_part}.{EXTERNAL_ID_DOMAIN}/{tenant_part}/v2.0"))
            }
            AuthorityKind::Entra { host, issuance: Issuance::Custom, .. } => {
                Some(join(host, &format!("{tenant_part}/v2.0")))
            }
            AuthorityKind::Oidc { .. } => None,
        }
    }

    /// The v1.0 issuer for a tenant id part, when the cloud gives it a known form.
    pub(crate) fn known_v1_issuer(&self, tenant_part: &str) -> Option<String> {
        self.cloud().map(|c| format!("{}{tenant_part}/", c.v1_issuer_host()))
    }

    /// The v1.0 issuer a custom host's v1 discovery document must announce.
    pub(crate) fn expected_custom_v1_issuer(&self, tenant_part: &str) -> Option<String> {
        match &self.kind {
            AuthorityKind::Entra { host, issuance: Issuance::Custom, .. } => {
                Some(join(host, &format!("{tenant_part}/")))
            }
            _ => None,
        }
    }

    /// May signing keys published at `jwks_uri` be trusted, for metadata fetched from
    /// `metadata_url` that announced `issuer`? Same origin as the metadata, a configured
    /// trusted origin, one of a Microsoft cloud's authority aliases (https), or, for
    /// External ID, the issuer's own `{tenant id}.ciamlogin.com` origin.
    pub(crate) fn trusts_jwks_uri(&self, metadata_url: &Url, jwks_uri: &Url, issuer: &str) -> bool {
        let origin = origin_of(jwks_uri);
        if origin == origin_of(metadata_url) {
            return true;
        }
        let (AuthorityKind::Entra { trusted_jwks_origins: trusted, .. }
        | AuthorityKind::Oidc { trusted_jwks_origins: trusted, .. }) = &self.kind;
        if trusted.contains(&origin) {
            return true;
        }
        let https = jwks_uri.scheme() == "https" && jwks_uri.port().is_none();
        let host = jwks_uri.host_str().unwrap_or_default();
        match &self.kind {
            AuthorityKind::Entra { issuance: Issuance::Cloud(cloud), .. } => {
                https && cloud.authority_aliases().iter().any(|a| a.eq_ignore_ascii_case(host))
            }
            AuthorityKind::Entra { issuance: Issuance::ExternalId, .. } => {
                https
                    && Url::parse(issuer).is_ok_and(|i| i.scheme() == "https" && i.host_str() == Some(host))
                    && is_external_id_host(host)
            }
            _ => false,
        }
    }

    /// The issuer an OIDC provider's discovery document must announce.
    pub(crate) fn expected_oidc_issuer(&self) -> Option<String> {
        match &self.kind {
            AuthorityKind::Oidc { issuer: Some(issuer), .. } => Some(issuer.clone()),
            AuthorityKind::Oidc { issuer: None, .. } => Some(self.url()),
            AuthorityKind::Entra { .. } => None,
        }
    }

    /// Parses an authority URL (Microsoft.Identity.Web's `Authority`): `https://{host}/{tenant}`
    /// or `https://{host}/{tenant}/v2.0` is that Entra authority (its host's cloud, or a custom
    /// host); any other URL is taken as an OpenID Connect provider's issuer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InsecureUrl`] or [`ConfigError::Invalid`] naming `field`.
    pub fn parse_url(value: &str, field: &'static str) -> Result<Self, ConfigError> {
        let url = parse_secure_url(value, field)?;
        let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        let tenant_segment = match segments.as_slice() {
            [tenant] | [tenant, "v2.0"] => Some(*tenant),
            _ => None,
        };
        if let Some(tenant) = tenant_segment.and_then(|t| Tenant::parse(t, field).ok()) {
            let host = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default());
            let host = match url.port() {
                Some(port) => format!("{}://{}:{port}/", url.scheme(), url.host_str().unwrap_or_default()),
                None => host,
            };
            return Self::entra_at_host(&host, tenant, field);
        }
        Self::oidc(value, None, field)
    }

    /// The Entra authority of a metadata URL on a Microsoft cloud host or an External ID host,
    /// shaped `https://{host}/{tenant}[/v2.0]/.well-known/openid-configuration`; `None`
    /// otherwise (the URL is then any OpenID Connect provider's).
    pub(crate) fn from_entra_metadata_url(value: &str) -> Option<Self> {
        let url = Url::parse(value.trim()).ok()?;
        let host = url.host_str()?;
        let microsoft =
            Cloud::from_host(host).is_some() || host.to_ascii_lowercase().ends_with(&format!(".{EXTERNAL_ID_DOMAIN}"));
        if url.scheme() != "https" || url.port().is_some() || url.query().is_some() || !microsoft {
            return None;
        }
        let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        let tenant = match segments.as_slice() {
            [tenant, ".well-known", "openid-configuration"]
            | [tenant, "v2.0", ".well-known", "openid-configuration"] => Tenant::parse(tenant, "metadata_url").ok()?,
            _ => return None,
        };
        Self::entra_at_host(&format!("https://{host}/"), tenant, "metadata_url").ok()
    }

    /// The v2.0 token endpoint of the tenant `tid` on this authority's host
    /// (`https://login.microsoftonline.com/{tid}/oauth2/v2.0/token`): where an on-behalf-of
    /// request of a multi-tenant API goes, in the user's tenant. `None` for non-Entra
    /// authorities.
    #[must_use]
    pub fn token_endpoint_for_tenant(&self, tid: &str) -> Option<String> {
        match &self.kind {
            AuthorityKind::Entra { host, .. } => Some(join(host, &format!("{tid}/oauth2/v2.0/token"))),
            AuthorityKind::Oidc { .. } => None,
        }
    }

    /// Checks the tenant part of an Entra issuer announced by discovery and returns it.
    ///
    /// The tenant part must be the configured GUID, any GUID for a domain-named tenant,
    /// the consumers GUID for `consumers`, and `{tenantid}` for multi-tenant authorities.
    pub(crate) fn accepts_tenant_part(&self, part: &str) -> bool {
        if self.is_external_id() && !is_guid(part) {
            return false;
        }
        match self.tenant() {
            Some(Tenant::Id(id)) => part.eq_ignore_ascii_case(id),
            Some(Tenant::Domain(_)) => is_guid(part),
            Some(Tenant::Consumers) => part.eq_ignore_ascii_case(CONSUMERS_TENANT_ID),
            Some(Tenant::Common | Tenant::Organizations) => part == TENANT_TEMPLATE,
            None => false,
        }
    }
}

/// The tenant ids (GUIDs, lower-cased) a URL names: as a path segment or as the first label
/// of its host (External ID issuers are `https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`).
pub(crate) fn named_tenant_ids(value: &str) -> Vec<String> {
    let Ok(url) = Url::parse(value.trim()) else {
        return Vec::new();
    };
    let host_label = url.host_str().and_then(|h| h.split('.').next());
    url.path().split('/').chain(host_label).filter(|s| is_guid(s)).map(str::to_ascii_lowercase).collect()
}

/// An Azure AD B2C policy's discovery URL:
/// `{origin}/{tenant}.onmicrosoft.com/{user flow}/v2.0/.well-known/openid-configuration`, with
/// `origin` defaulting to `https://{tenant}.b2clogin.com` (Azure AD B2C, "OpenID Connect
/// metadata").
pub(crate) fn b2c_metadata_url(origin: Option<&str>, tenant_name: &str, user_flow: &str) -> String {
    let origin = match origin {
        Some(o) => o.trim_end_matches('/').to_owned(),
        None => format!("https://{tenant_name}.b2clogin.com"),
    };
    format!("{origin}/{tenant_name}.onmicrosoft.com/{user_flow}/v2.0/.well-known/openid-configuration")
}

/// An Azure AD B2C tenant's default issuer: `https://{tenant}.b2clogin.com/{tenant id}/v2.0/`
/// (Azure AD B2C, "Overview of tokens", `iss`).
pub(crate) fn b2c_issuer(tenant_name: &str, tenant_id: &str) -> String {
    format!("https://{tenant_name}.b2clogin.com/{tenant_id}/v2.0/")
}

/// The instance (authority host) of an Entra External ID tenant by its subdomain:
/// `https://{subdomain}.ciamlogin.com/`.
pub(crate) fn external_id_instance(subdomain: &str) -> String {
    format!("https://{subdomain}.{EXTERNAL_ID_DOMAIN}/")
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// Entra URL shapes for a tenant path segment as given (a tenant id or domain, `common`,
/// `organizations`, `consumers`), not only a parsed [`Tenant`]: the dev tenant announces and
/// serves them for whatever segment it is asked for, and formats them here so that every Entra
/// URL and issuer is formatted in this module. Source: Microsoft identity platform, "OpenID
/// Connect on the Microsoft identity platform" (metadata document, `jwks_uri`, endpoints).
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
impl Authority {
    /// The v2.0 OpenID configuration, under `{host}/{tenant}/`.
    pub(crate) const V2_METADATA_PATH: &'static str = "v2.0/.well-known/openid-configuration";
    /// The v2.0 key set (`jwks_uri`), under `{host}/{tenant}/`.
    pub(crate) const V2_JWKS_PATH: &'static str = "discovery/v2.0/keys";
    /// The v1.0 key set, under `{host}/{tenant}/`.
    pub(crate) const V1_JWKS_PATH: &'static str = "discovery/keys";
    /// The v2.0 token endpoint, under `{host}/{tenant}/`.
    pub(crate) const V2_TOKEN_PATH: &'static str = "oauth2/v2.0/token";
    /// The v1.0 token endpoint, under `{host}/{tenant}/`.
    pub(crate) const V1_TOKEN_PATH: &'static str = "oauth2/token";
    /// The v2.0 authorization endpoint, under `{host}/{tenant}/`.
    pub(crate) const V2_AUTHORIZE_PATH: &'static str = "oauth2/v2.0/authorize";
    /// The v1.0 authorization endpoint, under `{host}/{tenant}/`.
    pub(crate) const V1_AUTHORIZE_PATH: &'static str = "oauth2/authorize";
    /// The v2.0 device authorization endpoint (RFC 8628), under `{host}/{tenant}/`.
    pub(crate) const V2_DEVICE_CODE_PATH: &'static str = "oauth2/v2.0/devicecode";
    /// The v2.0 sign-out endpoint, under `{host}/{tenant}/`.
    pub(crate) const V2_LOGOUT_PATH: &'static str = "oauth2/v2.0/logout";
    /// The v1.0 sign-out endpoint, under `{host}/{tenant}/`.
    pub(crate) const V1_LOGOUT_PATH: &'static str = "oauth2/logout";

    /// `{host}/{tenant}`: the authority URL without a version, as MSAL's `authority` and Azure
    /// Identity's `authority_host` + `tenant_id` name it (`https://login.microsoftonline.com/contoso.onmicrosoft.com`).
    /// A trailing `/` of `host` is ignored.
    pub(crate) fn tenant_url(host: &str, tenant: &str) -> String {
        format!("{}/{tenant}", host.trim_end_matches('/'))
    }

    /// `{host}/{tenant}/{path}`, `path` being one of the `*_PATH` constants of this block, e.g.
    /// `http://127.0.0.1:54321/common/oauth2/v2.0/token`. A trailing `/` of `host` is ignored.
    pub(crate) fn tenant_endpoint(host: &str, tenant: &str, path: &str) -> String {
        format!("{}/{tenant}/{path}", host.trim_end_matches('/'))
    }

    /// Azure AD B2C's issuer, `https://{tenant name}.b2clogin.com/{tenant id}/v2.0/` (with the
    /// trailing `/`), for the tenant named `contoso` of `contoso.b2clogin.com`.
    ///
    /// Source: Azure AD B2C, "Overview of tokens" (claim `iss`).
    pub(crate) fn b2c_issuer(tenant_name: &str, tenant_part: &str) -> String {
        format!("https://{tenant_name}.b2clogin.com/{tenant_part}/v2.0/")
    }

    /// The `error_uri` of Entra's OAuth error bodies: its error lookup page for an `AADSTS`
    /// code, `https://login.microsoftonline.com/error?code={code}`.
    pub(crate) fn error_uri(code: u32) -> String {
        format!("{}error?code={code}", Cloud::Public.authority_host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn tenant_parsing() {
        assert_eq!(Tenant::parse("Common", "t").unwrap(), Tenant::Common);
        assert_eq!(Tenant::parse("organizations", "t").unwrap(), Tenant::Organizations);
        assert_eq!(Tenant::parse("consumers", "t").unwrap(), Tenant::Consumers);
        assert_eq!(Tenant::parse(&TID.to_uppercase(), "t").unwrap(), Tenant::Id(TID.to_owned()));
        assert_eq!(
            Tenant::parse("Contoso.onmicrosoft.com", "t").unwrap(),
            Tenant::Domain("contoso.onmicrosoft.com".into())
        );
        assert!(Tenant::parse("", "t").unwrap_err().is_missing());
        let err = Tenant::parse("not a tenant", "TenantId").unwrap_err();
        assert_eq!(err.field(), "TenantId");
        assert!(Tenant::parse("a..b", "t").is_err());
    }

    #[test]
    fn guid_shape() {
        assert!(is_guid(TID));
        assert!(!is_guid("72f988bf86f141af91ab2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4g"));
    }

    #[test]
    fn public_cloud_urls_and_issuers() {
        let a = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        assert_eq!(
            a.metadata_url(),
            format!("https://login.microsoftonline.com/{TID}/v2.0/.well-known/openid-configuration")
        );
        assert_eq!(a.token_endpoint().unwrap(), format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/token"));
        assert_eq!(a.expected_v2_issuer(TID).unwrap(), format!("https://login.microsoftonline.com/{TID}/v2.0"));
        assert_eq!(a.known_v1_issuer(TID).unwrap(), format!("https://sts.windows.net/{TID}/"));
        assert!(a.v1_metadata_url().is_none());
    }

    #[test]
    fn sovereign_clouds() {
        let gov = Authority::entra(Cloud::UsGovernment, Tenant::Id(TID.into()));
        assert_eq!(gov.expected_v2_issuer(TID).unwrap(), format!("https://login.microsoftonline.us/{TID}/v2.0"));
        assert_eq!(gov.known_v1_issuer(TID).unwrap(), format!("https://sts.windows.net/{TID}/"));
        let cn = Authority::entra(Cloud::China, Tenant::Id(TID.into()));
        assert_eq!(cn.known_v1_issuer(TID).unwrap(), format!("https://sts.chinacloudapi.cn/{TID}/"));
        assert_eq!(Cloud::from_name("AzureChinaCloud"), Some(Cloud::China));
        assert_eq!(Cloud::from_name("usgov"), Some(Cloud::UsGovernment));
    }

    #[test]
    fn custom_host_is_entra_shaped_and_announces_its_own_issuers() {
        let a = Authority::entra_at_host("http://127.0.0.1:8080", Tenant::Id(TID.into()), "h").unwrap();
        assert_eq!(a.cloud(), None);
        assert_eq!(
            a.v1_metadata_url().unwrap(),
            format!("http://127.0.0.1:8080/{TID}/.well-known/openid-configuration")
        );
        assert_eq!(a.expected_custom_v1_issuer(TID).unwrap(), format!("http://127.0.0.1:8080/{TID}/"));
        let known = Authority::entra_at_host("https://login.microsoftonline.us", Tenant::Common, "h").unwrap();
        assert_eq!(known.cloud(), Some(Cloud::UsGovernment));
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let err =
            Authority::entra_at_host("http://login.example.com", Tenant::Common, "AZURE_AUTHORITY_HOST").unwrap_err();
        assert_eq!(err, ConfigError::InsecureUrl { field: "AZURE_AUTHORITY_HOST" });
        assert!(Authority::entra_at_host("http://localhost:1234", Tenant::Common, "h").is_ok());
        assert!(Authority::entra_at_host("http://[::1]:1234", Tenant::Common, "h").is_ok());
        assert!(Authority::oidc("http://idp.example.com/.well-known/openid-configuration", None, "m").is_err());
        assert!(Authority::entra_at_host("ftp://x", Tenant::Common, "h").is_err());
    }

    #[test]
    fn oidc_issuer_defaults_to_the_discovery_base() {
        let a =
            Authority::oidc("https://idp.example.com/realms/x/.well-known/openid-configuration", None, "m").unwrap();
        assert_eq!(a.expected_oidc_issuer().unwrap(), "https://idp.example.com/realms/x");
        let b = Authority::oidc("https://idp.example.com/realms/x", None, "m").unwrap();
        assert_eq!(b.metadata_url(), "https://idp.example.com/realms/x/.well-known/openid-configuration");
    }

    #[test]
    fn discovery_tenant_parts() {
        let single = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        assert!(single.accepts_tenant_part(TID));
        assert!(!single.accepts_tenant_part(CONSUMERS_TENANT_ID));
        assert!(!single.accepts_tenant_part(TENANT_TEMPLATE));
        let multi = Authority::entra(Cloud::Public, Tenant::Common);
        assert!(multi.accepts_tenant_part(TENANT_TEMPLATE));
        assert!(!multi.accepts_tenant_part(TID));
        let domain = Authority::entra(Cloud::Public, Tenant::Domain("contoso.com".into()));
        assert!(domain.accepts_tenant_part(TID));
        assert!(!domain.accepts_tenant_part("contoso.com"));
    }

    #[test]
    fn clouds_aliases_and_issuer_hosts() {
        for host in ["login.microsoftonline.com", "login.windows.net", "LOGIN.microsoft.com", "sts.windows.net"] {
            assert_eq!(Cloud::from_host(host), Some(Cloud::Public), "{host}");
        }
        assert_eq!(Cloud::from_host("login.usgovcloudapi.net"), Some(Cloud::UsGovernment));
        assert_eq!(Cloud::from_host("login.partner.microsoftonline.cn"), Some(Cloud::China));
        assert_eq!(Cloud::from_host("login.microsoftonline.de"), None);
        let cn = Authority::entra(Cloud::China, Tenant::Id(TID.into()));
        assert_eq!(cn.expected_v2_issuer(TID).unwrap(), format!("https://login.partner.microsoftonline.cn/{TID}/v2.0"));
        assert_eq!(
            cn.metadata_url(),
            format!("https://login.chinacloudapi.cn/{TID}/v2.0/.well-known/openid-configuration")
        );
        let alias = Authority::entra_at_host("https://login.windows.net", Tenant::Id(TID.into()), "h").unwrap();
        assert_eq!(alias.cloud(), Some(Cloud::Public));
        assert_eq!(alias.expected_v2_issuer(TID).unwrap(), format!("https://login.microsoftonline.com/{TID}/v2.0"));
    }

    #[test]
    fn external_id_issuers_use_a_tenant_id_subdomain() {
        let a = Authority::entra_at_host("https://contoso.ciamlogin.com/", Tenant::Id(TID.into()), "h").unwrap();
        assert!(a.is_external_id());
        assert_eq!(a.cloud(), None);
        assert_eq!(a.expected_v2_issuer(TID).unwrap(), format!("https://{TID}.ciamlogin.com/{TID}/v2.0"));
        assert_eq!(a.known_v1_issuer(TID), None);
        assert!(a.v1_metadata_url().is_none());
        assert!(!a.accepts_tenant_part(TENANT_TEMPLATE));
        assert!(Authority::external_id("a.b", Tenant::Id(TID.into())).is_err());
        assert!(
            !Authority::entra_at_host("https://x.y.ciamlogin.com/", Tenant::Id(TID.into()), "h")
                .unwrap()
                .is_external_id()
        );
    }

    #[test]
    fn served_from_changes_where_documents_are_fetched_not_the_issuers() {
        let cn = Authority::entra(Cloud::China, Tenant::Id(TID.into())).served_from("http://127.0.0.1:8080").unwrap();
        assert_eq!(cn.cloud(), Some(Cloud::China));
        assert_eq!(cn.metadata_url(), format!("http://127.0.0.1:8080/{TID}/v2.0/.well-known/openid-configuration"));
        assert_eq!(cn.expected_v2_issuer(TID).unwrap(), format!("https://login.partner.microsoftonline.cn/{TID}/v2.0"));
        assert_eq!(cn.known_v1_issuer(TID).unwrap(), format!("https://sts.chinacloudapi.cn/{TID}/"));
        assert!(Authority::entra(Cloud::China, Tenant::Common).served_from("http://example.com").is_err());
        assert!(Authority::entra(Cloud::China, Tenant::Common).served_from("https://proxy.example.com/x").is_err());
        let oidc = Authority::oidc("https://idp.example.com", None, "m").unwrap();
        assert!(matches!(oidc.served_from("https://x.example.com"), Err(ConfigError::Conflict { .. })));
    }
}
