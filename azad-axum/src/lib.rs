#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod downstream;
mod extract;
mod guard;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;
mod rejection;
#[cfg(feature = "router")]
#[cfg_attr(docsrs, doc(cfg(feature = "router")))]
pub mod routing;

pub use crate::downstream::{AcquireTokenError, AppToken, DownstreamError, OnBehalfOf};
pub use crate::extract::Claims;
pub use crate::rejection::Rejection;
#[cfg(feature = "dev")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev")))]
#[doc(no_inline)]
pub use azad_core::dev;
#[doc(no_inline)]
pub use azad_core::{AzureAdConfig, BearerToken, TokenClient, TokenValidator, ValidationError};
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use azad_macros::{
    allow_anonymous, deny_guests, handler, require_auth_context, require_authenticated, require_caller_app,
    require_group, require_role, require_scope, require_scope_or_app_permission, require_tenant,
};
#[doc(no_inline)]
pub use azad_tower::{
    AuthRejection, Authentication, AzureAdAuth, Declaration, DefaultOnAuthError, OnAuthError, Protocol, Require,
    RequireAuthority, Requirement, VerboseOnAuthError,
};

/// Support for the attribute macros' output. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use std::borrow::Cow;

    pub use azad_tower::Requirement;

    pub use crate::guard::{Guard, HasDeclaration, Policy};
}
