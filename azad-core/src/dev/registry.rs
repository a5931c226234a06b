//! The dev tenant's directory: users, app registrations, their credentials and permissions,
//! managed identities, and the grants waiting to be redeemed (codes, refresh tokens, device
//! codes).

use std::collections::{HashMap, HashSet};

use super::random::random_guid;

/// The application id of Microsoft Graph.
pub const GRAPH_CLIENT_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The application id of Azure Key Vault.
pub const KEY_VAULT_CLIENT_ID: &str = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";
/// The audience of federated tokens exchanged for app tokens (defined with the client's
/// credentials; re-exported here for the dev tenant's users).
pub use crate::client::credential::TOKEN_EXCHANGE_AUDIENCE;

/// An application registered in the dev tenant: a client, an API, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevApp {
    /// Application (client) id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Application ID URI (`api://…`), if it exposes an API.
    pub app_id_uri: Option<String>,
    /// Delegated permissions (scopes) it exposes.
    pub scopes: Vec<String>,
    /// App roles it defines.
    pub app_roles: Vec<String>,
    /// Redirect URIs (web platform), matched exactly.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs of the single-page application platform (Entra's `spa` platform), matched
    /// exactly: codes issued for them are redeemed only by cross-origin (CORS) requests from a
    /// browser, with PKCE.
    pub spa_redirect_uris: Vec<String>,
    /// `true` if its access tokens are v1.0 (`accessTokenAcceptedVersion` null or 1).
    pub v1_tokens: bool,
}

impl DevApp {
    /// A new application with a random client id.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            client_id: random_guid(),
            name: name.into(),
            app_id_uri: None,
            scopes: Vec::new(),
            app_roles: Vec::new(),
            redirect_uris: Vec::new(),
            spa_redirect_uris: Vec::new(),
            v1_tokens: false,
        }
    }

    /// Sets the client id.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Exposes an API under this Application ID URI.
    #[must_use]
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uri = Some(uri.into());
        self
    }

    /// Delegated permissions it exposes.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// App roles it defines.
    #[must_use]
    pub fn app_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.app_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a redirect URI.
    #[must_use]
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Adds a redirect URI of the single-page application platform (`spa`): a browser app that
    /// redeems its authorization code itself, cross-origin, with PKCE (Microsoft identity
    /// platform, "Single-page application: App registration"). The token endpoint answers such
    /// redemptions with CORS headers; it refuses them from a server (no `Origin`,
    /// `AADSTS9002327`) and refuses cross-origin redemption of codes for web redirect URIs
    /// (`AADSTS9002326`).
    #[must_use]
    pub fn spa_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.spa_redirect_uris.push(uri.into());
        self
    }

    /// Its access tokens are v1.0 (like Microsoft Graph's and Key Vault's).
    #[must_use]
    pub fn v1_tokens(mut self) -> Self {
        self.v1_tokens = true;
        self
    }

    /// The `aud` of access tokens for this API: the client id for v2.0 tokens, the Application
    /// ID URI for v1.0 tokens.
    #[must_use]
    pub fn audience(&self) -> String {
        match (&self.app_id_uri, self.v1_tokens) {
            (Some(uri), true) => uri.clone(),
            _ => self.client_id.clone(),
        }
    }
}

/// A managed identity of the dev tenant (system- or user-assigned).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevManagedIdentity {
    /// Client id.
    pub client_id: String,
    /// Object (principal) id: the `oid`/`sub` of its tokens.
    pub object_id: String,
    /// Azure resource id.
    pub resource_id: String,
    /// `true` for the system-assigned identity (used when a request names no identity).
    pub system_assigned: bool,
}

impl DevManagedIdentity {
    /// A user-assigned identity with random ids.
    #[must_use]
    pub fn user_assigned(name: &str) -> Self {
        Self {
            client_id: random_guid(),
            object_id: random_guid(),
            resource_id: format!(
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azad-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            ),
            system_assigned: false,
        }
    }

    /// The system-assigned identity with random ids.
    #[must_use]
    pub fn system_assigned() -> Self {
        Self {
            system_assigned: true,
            resource_id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azad-dev/providers/Microsoft.Web/sites/azad-dev".into(),
            ..Self::user_assigned("system")
        }
    }
}

/// A user's consent waiting for its code (authorization code flow).
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) user: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    /// The authorization request's `claims` parameter (a claims challenge being satisfied).
    pub(crate) claims: Option<String>,
    pub(crate) expires: std::time::Instant,
    /// Issued for a redirect URI of the `spa` platform.
    pub(crate) spa: bool,
}

/// What a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) user: usize,
    pub(crate) scopes: Vec<String>,
    /// Issued to a single-page application: redeemable only cross-origin.
    pub(crate) spa: bool,
}

/// A device code waiting for the user.
#[derive(Debug, Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) user_code: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) approved_by: Option<usize>,
    pub(crate) expires: std::time::Instant,
    pub(crate) last_poll: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) apps: Vec<DevApp>,
    pub(crate) secrets: HashMap<String, Vec<String>>,
    pub(crate) certificates: HashMap<String, Vec<Vec<u8>>>,
    pub(crate) federated: HashMap<String, Vec<(String, String)>>,
    pub(crate) role_grants: HashMap<(String, String), Vec<String>>,
    pub(crate) scope_grants: HashMap<(String, String), Vec<String>>,
    pub(crate) identities: Vec<DevManagedIdentity>,
    pub(crate) used_jtis: HashSet<String>,
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) device_codes: HashMap<String, DeviceGrant>,
    pub(crate) vault: Vault,
}

impl Registry {
    pub(crate) fn app(&self, client_id: &str) -> Option<&DevApp> {
        self.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The API a scope or resource string names: by Application ID URI or client id.
    pub(crate) fn resource(&self, resource: &str) -> Option<&DevApp> {
        let r = resource.trim_end_matches('/');
        self.apps.iter().find(|a| {
            a.client_id.eq_ignore_ascii_case(r) || a.app_id_uri.as_deref().is_some_and(|u| u.trim_end_matches('/') == r)
        })
    }

    pub(crate) fn granted_roles(&self, client: &str, resource: &str) -> Vec<String> {
        self.role_grants.get(&(client.to_owned(), resource.to_owned())).cloned().unwrap_or_default()
    }

    pub(crate) fn granted_scopes(&self, client: &str, resource: &str) -> Vec<String> {
        self.scope_grants.get(&(client.to_owned(), resource.to_owned())).cloned().unwrap_or_default()
    }
}

/// A test user of the dev tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevUser {
    /// Object id.
    pub oid: String,
    /// Display name.
    pub name: String,
    /// Sign-in name (UPN).
    pub username: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
}

impl DevUser {
    /// A user with a random object id.
    #[must_use]
    pub fn new(name: impl Into<String>, username: impl Into<String>) -> Self {
        let name = name.into();
        let mut parts = name.splitn(2, ' ');
        let given_name = parts.next().unwrap_or_default().to_owned();
        let family_name = parts.next().unwrap_or_default().to_owned();
        Self { oid: random_guid(), name, username: username.into(), given_name, family_name }
    }

    /// The same user with a fixed object id.
    #[must_use]
    pub fn with_oid(mut self, oid: impl Into<String>) -> Self {
        self.oid = oid.into();
        self
    }
}

/// How the dev tenant's managed identity endpoints state a token's expiry, to test clients
/// against the shapes real hosts send (see [`DevTenant::set_managed_identity_expiry`](crate::dev::DevTenant::set_managed_identity_expiry)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ManagedIdentityExpiry {
    /// As each host does: IMDS sends `expires_in` and `expires_on` as numeric strings, App
    /// Service (2019-08-01) `expires_on` as a JSON number.
    #[default]
    HostDefault,
    /// Only `expires_on`, epoch seconds as a numeric string.
    EpochString,
    /// Only `expires_on`, as RFC 3339 with 7 fractional digits:
    /// `2026-11-29T18:04:05.0000000+00:00`.
    Rfc3339,
    /// Only `expires_on`, in .NET's invariant format: `11/29/2026 6:04:05 PM +00:00`.
    DotNetInvariant,
    /// No expiry member at all: only the token's own `exp` says.
    TokenExpOnly,
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub(crate) struct SecretVersion {
    pub(crate) version: String,
    pub(crate) value: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) enabled: bool,
    pub(crate) content_type: Option<String>,
}

/// The vault's contents: each secret's versions, oldest first, and the principals (`oid`,
/// `appid` or `azp`) refused access.
#[derive(Debug, Default)]
pub(crate) struct Vault {
    pub(crate) secrets: HashMap<String, Vec<SecretVersion>>,
    pub(crate) denied: HashSet<String>,
}

impl Vault {
    pub(crate) fn set(&mut self, name: &str, value: &str, content_type: Option<&str>) -> String {
        let version: String = super::random::random_bytes::<16>().iter().map(|b| format!("{b:02x}")).collect();
        let at = super::clock::now();
        // Key Vault secret names are case-insensitive.
        self.secrets.entry(name.to_ascii_lowercase()).or_default().push(SecretVersion {
            version: version.clone(),
            value: value.to_owned(),
            created: at,
            updated: at,
            enabled: true,
            content_type: content_type.map(str::to_owned),
        });
        version
    }
}
