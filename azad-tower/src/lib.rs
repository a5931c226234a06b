#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod authority;
mod authorization;
mod bearer;
mod declaration;
mod extension;
mod future;
#[cfg(feature = "tonic")]
mod grpc;
mod layer;
mod on_error;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;
#[cfg(test)]
mod props;
mod rejection;
mod require;
mod service;

pub use crate::authority::{RequireAuthority, RequireAuthorityService, require_authority};
pub use crate::authorization::{Decision, Requirement, authorize, authorize_async, is_guest};
pub use crate::bearer::{BearerError, bearer_token};
pub use crate::declaration::Declaration;
pub use crate::extension::Authentication;
pub use crate::future::ResponseFuture;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use crate::grpc::RequestExt;
pub use crate::layer::AzureAdAuth;
pub use crate::on_error::{DefaultOnAuthError, OnAuthError, VerboseOnAuthError};
pub use crate::rejection::{AuthRejection, Insufficient, Protocol};
pub use crate::require::{Require, RequireFuture, RequireService};
pub use crate::service::AzureAdAuthService;
#[doc(no_inline)]
pub use azad_core::{self, AzureAdConfig, BearerToken, Claims, TokenValidator, ValidationError};
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use azad_macros::{
    allow_anonymous, deny_guests, require_auth_context, require_authenticated, require_caller_app, require_group,
    require_role, require_scope, require_scope_or_app_permission, require_tenant,
};

/// Support for the attribute macros on tonic service methods, and for azad-axum's attribute
/// guards. Not public API: azad-axum and azad-macros are pinned to this exact release.
#[doc(hidden)]
pub mod __private {
    pub use std::borrow::Cow;

    pub use crate::authorization::{Requirement, check_async};
    #[cfg(feature = "tonic")]
    pub use crate::grpc::{check_grpc, check_grpc_async, reject_boxed};
}
