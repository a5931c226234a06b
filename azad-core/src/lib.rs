#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod application;
mod authority;
#[cfg(feature = "azure-cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-cli")))]
pub mod azure_cli;
mod cache;
pub mod chain;
pub mod challenge;
mod clock;
mod config;
pub mod credential;
#[cfg(feature = "dev")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev")))]
pub mod dev;
mod error;
mod expiry;
pub mod groups;
pub mod http;
pub mod managed_identity;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[allow(dead_code, unreachable_pub)]
mod metrics;
pub mod secret;
pub mod signin;
#[cfg(feature = "simulation")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
pub mod simulation;
pub mod token;
mod validation;

pub use crate::application::Application;
pub use crate::authority::{Authority, CONSUMERS_TENANT_ID, Cloud, EXTERNAL_ID_DOMAIN, Tenant, is_guid};
pub use crate::cache::AcquiredToken;
pub use crate::challenge::Challenge;
pub use crate::clock::{Clock, FixedClock, SystemClock};
pub use crate::config::{AzureAdConfig, AzureAdConfigBuilder};
pub use crate::error::{
    ChallengeParseError, ConfigError, CredentialError, EntraError, HttpError, HttpErrorKind, IdentityEndpoint,
    JsonTextError, JwksError, MAX_JSON_DEPTH, OboRefusal, TokenError, TokenPart, ValidationError,
};
pub use crate::http::HttpOptions;
pub use crate::secret::{AccessToken, BearerToken, ClientSecret};
pub use crate::token::{TokenClient, TokenRequest};
pub use crate::validation::claims::{Claims, PrincipalKey, is_app_only_token};
pub use crate::validation::discovery::ProviderMetadata;
pub use crate::validation::jwks::{JwksCache, JwksPolicy, StaticJwks};
pub use crate::validation::jwt::SigningAlgorithm;
pub use crate::validation::policy::{TokenVersions, ValidationPolicy};
pub use crate::validation::validator::{Diagnostic, TokenValidator};
