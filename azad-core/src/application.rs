//! The application identity clients act as: the authority, the application (client) id, how it
//! authenticates and the HTTP transport. What the token client, the sign-in client and a
//! daemon need, with nothing of an API's validation policy.

use std::fmt;
use std::sync::Arc;

use crate::authority::Authority;
use crate::client::credential::ClientCredential;
use crate::client::managed_identity::ManagedIdentity;
use crate::http::HttpClient;

/// An application registered in Microsoft Entra ID, as a client that acquires tokens
/// (MSAL's "client application"): its authority, its application (client) id, its
/// credential when configured, and the HTTP client.
///
/// Built by [`AzureAdConfig::application`](crate::AzureAdConfig::application),
/// [`AzureAdConfigBuilder::build_application`](crate::AzureAdConfigBuilder::build_application)
/// or [`Application::from_env`]; a daemon needs no audiences or validation settings.
///
/// ```
/// use azad_core::{AzureAdConfig, Application};
///
/// let app: Application = AzureAdConfig::builder()
///     .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
///     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
///     .build_application()?;
/// assert_eq!(app.client_id(), "6e74172b-be56-4843-9ff4-e66a39bb12e3");
/// assert!(app.api_audiences().is_empty());
/// # Ok::<(), azad_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Application {
    pub(crate) authority: Authority,
    pub(crate) client_id: String,
    /// The audiences of the API this application exposes (empty for a client-only
    /// application): an on-behalf-of assertion must be for one of them.
    pub(crate) api_audiences: Vec<String>,
    pub(crate) http_client: Option<Arc<dyn HttpClient>>,
    pub(crate) token_cache_enabled: bool,
    pub(crate) client_credential: Option<ClientCredential>,
    pub(crate) managed_identity: Option<ManagedIdentity>,
}

impl Application {
    /// The authority tokens are acquired from.
    #[must_use]
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The audiences of the API this application exposes, which an on-behalf-of assertion
    /// must carry (empty for a client-only application such as a daemon).
    #[must_use]
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The HTTP client (`None` without a transport: feature `reqwest` off and none given).
    #[must_use]
    pub fn http_client(&self) -> Option<Arc<dyn HttpClient>> {
        self.http_client.clone()
    }

    /// Whether acquired tokens are cached (`AZURE_AD_CACHE_ENABLED`, default `true`).
    #[must_use]
    pub fn token_cache_enabled(&self) -> bool {
        self.token_cache_enabled
    }

    /// The application's credential, when configured.
    #[must_use]
    pub fn client_credential(&self) -> Option<ClientCredential> {
        self.client_credential.clone()
    }

    /// The managed identity the application uses, when configured.
    #[must_use]
    pub fn managed_identity(&self) -> Option<ManagedIdentity> {
        self.managed_identity.clone()
    }

    /// Returns a copy with another HTTP client.
    #[must_use]
    pub fn with_http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("authority", &self.authority.url())
            .field("client_id", &self.client_id)
            .field("api_audiences", &self.api_audiences)
            .field("token_cache_enabled", &self.token_cache_enabled)
            .field("client_credential", &self.client_credential)
            .field("managed_identity", &self.managed_identity)
            .finish_non_exhaustive()
    }
}
