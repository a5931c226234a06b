//! The guard the attribute macros add to an axum handler: a [`Policy`] known at compile time,
//! checked by the [`Guard`] extractor before every other extractor.

use std::marker::PhantomData;

use axum_core::extract::FromRequestParts;
use azad_tower::__private::check_async;
use azad_tower::Requirement;
use http::request::Parts;

use crate::rejection::Rejection;

/// A requirement known at compile time, implemented by the type the attributes generate.
pub trait Policy {
    /// The requirement: a reference to a constant, so that a request checks it in place
    /// (no copy of it in every handler future, no drop after).
    const REQUIREMENT: &'static Requirement;
}

/// The companion item of an attributed handler (`__azad_route_{fn}`): its declaration.
pub trait HasDeclaration {
    /// What the handler's attributes declare.
    const DECLARATION: azad_tower::Declaration;
}

/// The guard extractor the attributes add as a handler's first argument. Its rejection is the
/// same [`Rejection`] as the [`Claims`](crate::Claims) extractor's.
#[derive(Debug, Clone, Copy)]
pub struct Guard<P>(PhantomData<P>);

impl<S: Send + Sync, P: Policy> FromRequestParts<S> for Guard<P> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Synchronous for every requirement but a group one on a token with a groups
        // overage, which awaits Microsoft Graph.
        check_async(&parts.extensions, P::REQUIREMENT)
            .await
            .map_err(|rejection| Rejection::of(&parts.extensions, rejection))?;
        Ok(Self(PhantomData))
    }
}
