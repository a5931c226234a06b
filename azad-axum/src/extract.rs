//! The [`Claims`] extractor: the claims the `AzureAdAuth` layer validated.

use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use azad_tower::Authentication;
use http::request::Parts;
use serde::Serialize;

use crate::rejection::Rejection;

/// The validated claims of the request's access token.
///
/// Reads what [`AzureAdAuth`](crate::AzureAdAuth) stored (its [`Authentication`]); it never
/// validates anything itself. Without the layer it fails closed (500, logged with the fix).
/// For an anonymous request let through by an [optional](crate::AzureAdAuth::optional) layer
/// it answers 401 `WWW-Authenticate: Bearer`, like an attribute guard; `Option<Claims>` is
/// `None` instead. Dereferences to [`azad_core::Claims`] and serialises as the claims object.
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use azad_axum::{AzureAdAuth, Claims, dev::DevTenant};
///
/// async fn me(claims: Claims) -> String {
///     format!("{} ({})", claims.name().unwrap_or_default(), claims.tenant_id().unwrap_or_default())
/// }
///
/// async fn raw(claims: Claims) -> Json<Claims> {
///     Json(claims)
/// }
///
/// # async fn app(tenant: DevTenant) -> Router {
/// Router::new()
///     .route("/me", get(me))
///     .route("/claims", get(raw))
///     .layer(AzureAdAuth::new(tenant.config()))
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(pub Arc<azad_core::Claims>);

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(serializer)
    }
}

impl Deref for Claims {
    type Target = azad_core::Claims;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Claims> for Arc<azad_core::Claims> {
    fn from(c: Claims) -> Self {
        c.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Authentication::of(&parts.extensions)
            .and_then(|authentication| authentication.require().cloned())
            .map(Self)
            .map_err(|rejection| Rejection::of(&parts.extensions, rejection))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Authentication::of(&parts.extensions)
            .map(|authentication| authentication.claims().cloned().map(Self))
            .map_err(|rejection| Rejection::of(&parts.extensions, rejection))
    }
}
