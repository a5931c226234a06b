#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// `get_ref`, `get_mut` and `into_inner` for a service wrapping `inner`.
macro_rules! define_inner_service_accessors {
    () => {
        /// A reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// A mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub mod authority;
mod bearer;
mod declaration;
mod future;
mod layer;
mod on_error;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;
#[cfg(test)]
mod props;
mod rejection;
pub mod require;
mod requirement;
mod service;

pub use crate::authority::{RequireAuthority, RequireAuthorityLayer, require_authority};
pub use crate::bearer::{BearerError, bearer_token};
pub use crate::declaration::Declaration;
pub use crate::future::ResponseFuture;
pub use crate::layer::AzureAdAuth;
pub use crate::on_error::{DefaultOnAuthError, OnAuthError, VerboseOnAuthError};
pub use crate::rejection::{AuthRejection, Protocol};
pub use crate::require::{Require, RequireFuture, RequireLayer, authorize, authorize_async};
pub use crate::requirement::{Decision, Insufficient, Requirement, is_guest};
pub use crate::service::{Anonymous, AzureAdAuthService};
#[doc(no_inline)]
pub use azad_core::{self, AzureAdConfig, BearerToken, Claims, TokenValidator, ValidationError};
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use azad_macros::{
    allow_anonymous, deny_guests, require_auth_context, require_authenticated, require_caller_app, require_group,
    require_role, require_scope, require_scope_or_app_permission, require_tenant,
};

/// Support for the attribute macros on tonic service methods. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use std::borrow::Cow;

    pub use crate::requirement::Requirement;

    /// The boxed rejection of a method desugared by `#[tonic::async_trait]`.
    #[cfg(feature = "tonic")]
    #[must_use]
    pub fn reject_boxed<'a, T: Send + 'a>(
        status: tonic::Status,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send + 'a>> {
        Box::pin(async move { Err(status) })
    }

    /// Checks a tonic request's claims (stored by the layer) against a requirement.
    #[cfg(feature = "tonic")]
    pub fn check_grpc<T>(request: &tonic::Request<T>, requirement: &Requirement) -> Result<(), tonic::Status> {
        use crate::AuthRejection;
        let ext = request.extensions();
        let mut http_ext = http::Extensions::new();
        if let Some(claims) = ext.get::<std::sync::Arc<azad_core::Claims>>() {
            http_ext.insert(claims.clone());
        }
        if ext.get::<crate::Anonymous>().is_some() {
            http_ext.insert(crate::Anonymous);
        }
        // Terse like the layer's default answer; the challenge travels in the metadata.
        crate::authorize(&http_ext, requirement).map(|_| ()).map_err(|r: AuthRejection| r.to_status(false))
    }

    /// Like [`check_grpc`], resolving a groups overage through the layer's `GroupResolver`.
    /// The returned future owns what it needs (it borrows neither the request nor the
    /// requirement), so a method can check before moving its request.
    #[cfg(feature = "tonic")]
    pub fn check_grpc_async<T>(
        request: &tonic::Request<T>,
        requirement: &Requirement,
    ) -> impl Future<Output = Result<(), tonic::Status>> + Send + 'static {
        let ext = request.extensions();
        let mut http_ext = http::Extensions::new();
        if let Some(claims) = ext.get::<std::sync::Arc<azad_core::Claims>>() {
            http_ext.insert(claims.clone());
        }
        if ext.get::<crate::Anonymous>().is_some() {
            http_ext.insert(crate::Anonymous);
        }
        if let Some(token) = ext.get::<azad_core::BearerToken>() {
            http_ext.insert(token.clone());
        }
        if let Some(resolver) = ext.get::<azad_core::groups::GroupResolver>() {
            http_ext.insert(resolver.clone());
        }
        let started = crate::require::start(&http_ext, requirement);
        let requirement = requirement.clone();
        async move {
            let result = match started {
                crate::require::Start::Done(result) => result,
                crate::require::Start::Resolve(resolution) => resolution.run(&requirement).await,
            };
            result.map(|_| ()).map_err(|r: crate::AuthRejection| r.to_status(false))
        }
    }
}
