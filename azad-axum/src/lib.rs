#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod extract;
pub mod obo;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;
mod rejection;
#[cfg(feature = "router")]
#[cfg_attr(docsrs, doc(cfg(feature = "router")))]
pub mod routing;

pub use crate::extract::Claims;
pub use crate::obo::{AppToken, DownstreamError, OboError, OnBehalfOf, TokenClientRejection};
pub use crate::rejection::{AuthorizationRejection, ClaimsRejection, MissingAuthLayer, Unauthenticated};
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
    AuthRejection, AzureAdAuth, Declaration, DefaultOnAuthError, OnAuthError, Protocol, RequireAuthorityLayer,
    RequireLayer, Requirement, VerboseOnAuthError,
};
#[doc(no_inline)]
pub use {azad_core, azad_tower};

/// Support for the attribute macros' output. Not public API.
#[doc(hidden)]
pub mod __private {
    use std::marker::PhantomData;

    use axum_core::extract::FromRequestParts;
    use http::request::Parts;

    pub use std::borrow::Cow;

    pub use azad_tower::Requirement;

    use crate::rejection::AuthorizationRejection;

    /// A requirement known at compile time, implemented by the type the attributes generate.
    pub trait Policy {
        /// The requirement.
        const REQUIREMENT: Requirement;
    }

    /// The companion item of an attributed handler (`__azad_route_{fn}`): its declaration.
    pub trait HasDeclaration {
        /// What the handler's attributes declare.
        const DECLARATION: crate::Declaration;
    }

    /// The guard extractor the attributes add as a handler's first argument.
    #[derive(Debug, Clone, Copy)]
    pub struct Guard<P>(PhantomData<P>);

    impl<S: Send + Sync, P: Policy> FromRequestParts<S> for Guard<P> {
        type Rejection = AuthorizationRejection;

        async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
            let requirement = P::REQUIREMENT;
            // Synchronous for every requirement but a group one on a token with a groups
            // overage, which awaits Microsoft Graph.
            azad_tower::authorize_async(&parts.extensions, &requirement).await.map_err(AuthorizationRejection)?;
            Ok(Self(PhantomData))
        }
    }
}
