#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod application;
mod authority;
pub mod challenge;
mod client;
mod clock;
mod config;
#[cfg(feature = "dev")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev")))]
pub mod dev;
mod error;
pub mod groups;
pub mod http;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[allow(dead_code, unreachable_pub)]
mod metrics;
pub mod secret;
#[cfg(feature = "secrets")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrets")))]
pub mod secrets;
#[cfg(feature = "simulation")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
pub mod simulation;
pub mod store;
mod validation;

pub use crate::application::Application;
pub use crate::authority::{Authority, CONSUMERS_TENANT_ID, Cloud, EXTERNAL_ID_DOMAIN, Tenant, is_guid};
pub use crate::challenge::Challenge;
#[cfg(feature = "azure-cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-cli")))]
pub use crate::client::azure_cli::{AzureCliCredential, AzureCliError};
pub use crate::client::cache::AcquiredToken;
pub use crate::client::chain::{ChainError, DefaultCredential};
pub use crate::client::credential::{
    AssertionAlgorithm, AssertionRequest, CertificateCredential, ClientCredential, TOKEN_EXCHANGE_AUDIENCE,
};
pub use crate::client::managed_identity::{
    IMDS_ENDPOINT, ManagedIdentity, ManagedIdentityId, ManagedIdentityRetryPolicy,
};
pub use crate::client::signin::{Account, AuthorizationRequest, DeviceCode, SignInClient, SignInError, SignedIn};
pub use crate::client::token::request::TokenRequest;
pub use crate::client::token::{TokenClient, TokenRetryPolicy};
pub use crate::client::wire::JWT_BEARER_GRANT;
pub use crate::clock::{Clock, FixedClock, SystemClock};
pub use crate::config::{AzureAdConfig, AzureAdConfigBuilder};
pub use crate::error::{
    ChallengeParseError, ConfigError, CredentialError, EntraError, HttpError, HttpErrorKind, IdentityEndpoint,
    JsonTextError, JwksError, MAX_JSON_DEPTH, OboRefusal, TokenError, TokenPart, ValidationError,
};
pub use crate::http::HttpOptions;
pub use crate::secret::{AccessToken, BearerToken, ClientSecret};
pub use crate::validation::claims::{Claims, PrincipalKey, is_app_only_token};
pub use crate::validation::discovery::ProviderMetadata;
pub use crate::validation::jwks::{JwksCache, JwksPolicy, StaticJwks};
pub use crate::validation::jwt::SigningAlgorithm;
pub use crate::validation::policy::{TokenVersions, ValidationPolicy};
pub use crate::validation::validator::{Diagnostic, TokenValidator};
