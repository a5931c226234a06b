//! The dev tenant: an Entra ID emulator on loopback, and a builder for tokens shaped like Entra's.
//!
//! It serves what an API and its clients touch: v1.0 and v2.0 OpenID configurations and JWKS
//! (with key rotation and retirement), for its own tenant and for `common`, `organizations` and
//! `consumers`. Tokens are real RS256 JWTs, claim for claim like Entra's, so the whole
//! validation path runs in tests with no Azure account and no network beyond 127.0.0.1.
//!
//! Issuers are the dev tenant's own (`http://127.0.0.1:{port}/{tenant id}/v2.0` for v2.0
//! tokens and `http://127.0.0.1:{port}/{tenant id}/` for v1.0), announced by its discovery
//! documents the way Entra announces `login.microsoftonline.com` and `sts.windows.net`.
//!
//! With [`DevTenantBuilder::https`] it serves HTTPS with a CA generated at start, so that
//! Microsoft's own clients (MSAL, Azure Identity), which accept only `https://` authorities,
//! can use it; `tests/msal/` drives it with MSAL for Python. A harness in another process can
//! inject faults through the loopback control route `POST /_azad/faults` (a form with
//! `endpoint`, `fault` and `times`, the counterpart of [`DevTenant::inject_times`]).
//!
//! # Where each part lives
//!
//! | file | owns |
//! | --- | --- |
//! | `tenant.rs` | [`DevTenant`] and [`DevTenantBuilder`] (their methods grouped by concern) |
//! | `state.rs` | the state the handle shares with the server; [`DevIssuers`] |
//! | `registry.rs` | users, app registrations, credentials, grants, managed identities ([`DevApp`], [`DevUser`]…) |
//! | `keys.rs`, `certificate.rs` | signing keys ([`DevKey`]) and test certificates ([`DevCertificate`]) |
//! | `token.rs` | [`TokenBuilder`], and the check of tokens the dev tenant issued |
//! | `faults.rs` | [`Endpoint`], [`Fault`], request counters and faulty answers |
//! | `router.rs` | the server: routing, counters and faults, `client-request-id`, the token endpoint's `grant_type` dispatch, `POST /_azad/faults` |
//! | `metadata.rs` | `/{tenant}/v2.0/.well-known/openid-configuration`, `/{tenant}/.well-known/openid-configuration`, `/{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys` |
//! | `grants/` | `/{tenant}/oauth2/v2.0/token` by grant (client credentials, on-behalf-of, authorization code, refresh token, device code), `/authorize`, `/logout`, `/devicecode`, `/devicelogin` |
//! | `managed_identity.rs` | `/metadata/identity/oauth2/token` (IMDS) and `/msi/token` (App Service) |
//! | `vault.rs` | `/secrets/{name}` (Key Vault–shaped) |
//! | `graph.rs` | Microsoft Graph's `/v1.0/me/…` and `/v1.0/users/{id}/…` membership functions |
//! | `tls.rs` | HTTPS: the CA and server certificate generated at start |
//! | `http.rs`, `random.rs`, `clock.rs` | the ground floor: request/response and OAuth error helpers, randomness, the clock |
//!
//! Every Entra URL and issuer it announces is formatted by [`Authority`](crate::Authority).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use azad_core::{TokenValidator, dev::{DevTenant, Endpoint}};
//!
//! let tenant = DevTenant::start().await?;
//! let validator = TokenValidator::new(tenant.config());
//!
//! let user = tenant.token().scopes(["access_as_user"]).build();
//! let app = tenant.token().app_only().roles(["Reports.Read.All"]).build();
//! assert_eq!(validator.validate(&user).await?.name(), Some("Dev User"));
//! assert!(validator.validate(&app).await?.is_app_only());
//! assert_eq!(tenant.requests(Endpoint::Jwks), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod certificate;
mod clock;
mod cluster;
mod faults;
mod grants;
mod graph;
mod http;
mod key_vault;
mod keys;
mod kubernetes;
mod managed_identity;
mod metadata;
mod random;
mod registry;
mod router;
mod state;
mod tenant;
mod tls;
mod token;

pub use self::certificate::DevCertificate;
pub use self::cluster::{DEFAULT_KUBERNETES_ISSUER, SERVICE_ACCOUNT_TOKEN_PATH, TOKEN_REVIEW_PATH};
pub use self::faults::{Endpoint, Fault};
pub use self::keys::DevKey;
pub use self::kubernetes::{DevKubernetes, ServiceAccountTokenBuilder};
pub use self::random::random_guid;
pub use self::registry::{
    DevApp, DevManagedIdentity, DevUser, GRAPH_CLIENT_ID, KEY_VAULT_CLIENT_ID, ManagedIdentityExpiry,
    TOKEN_EXCHANGE_AUDIENCE,
};
pub use self::state::DevIssuers;
pub use self::tenant::{
    DEFAULT_API_CLIENT_ID, DEFAULT_CLIENT_APP_ID, DEFAULT_DOWNSTREAM_APP_ID_URI, DEFAULT_DOWNSTREAM_CLIENT_ID,
    DEFAULT_TENANT_ID, DevTenant, DevTenantBuilder,
};
pub use self::token::{MAX_GROUPS_IN_TOKEN, TokenBuilder, TokenKind, TokenVersion};
