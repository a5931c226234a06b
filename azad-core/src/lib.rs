#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod authority;
#[cfg(feature = "azure-cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-cli")))]
pub mod azure_cli;
mod cache;
pub mod chain;
pub mod challenge;
mod claims;
pub mod config;
pub mod credential;
#[cfg(feature = "dev")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev")))]
pub mod dev;
mod discovery;
mod error;
mod expiry;
pub mod groups;
pub mod http;
mod jwks;
mod jwt;
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
pub mod store;
pub mod token;
pub mod validator;

pub use crate::authority::{Authority, Cloud, Tenant};
pub use crate::cache::AcquiredToken;
pub use crate::challenge::Challenge;
pub use crate::claims::{Claims, PrincipalKey, is_app_only_token};
pub use crate::config::{AzureAdConfig, AzureAdConfigBuilder, SigningAlgorithm, StaticJwks, TokenVersions};
pub use crate::discovery::ProviderMetadata;
pub use crate::error::{
    ChallengeParseError, ConfigError, CredentialError, EntraError, HttpError, HttpErrorKind, IdentityEndpoint,
    JsonTextError, JwksError, MAX_JSON_DEPTH, OboRefusal, TokenError, TokenPart, ValidationError,
};
pub use crate::jwks::JwksCache;
pub use crate::secret::{AccessToken, BearerToken, ClientSecret};
pub use crate::token::{TokenClient, TokenRequest};
pub use crate::validator::{Diagnostic, TokenValidator};
