//! The [`Claims`] extractor: the claims the `AzureAdAuth` layer validated.

use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use azad_tower::Anonymous;
use http::request::Parts;
use serde::Serialize;

use crate::rejection::{ClaimsRejection, MissingAuthLayer, Unauthenticated};

/// The validated claims of the request's access token.
///
/// Reads what [`AzureAdAuth`](crate::AzureAdAuth) stored; it never validates anything itself.
/// Without the layer it fails closed (500 naming the layer). `Option<Claims>` is `None` for
/// anonymous requests let through by an [optional](crate::AzureAdAuth::optional) layer.
/// Dereferences to [`azad_core::Claims`] and serialises as the claims object.
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
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Arc<azad_core::Claims>>() {
            Some(claims) => Ok(Self(claims.clone())),
            None if parts.extensions.get::<Anonymous>().is_some() => Err(Unauthenticated.into()),
            None => Err(MissingAuthLayer.into()),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = MissingAuthLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Arc<azad_core::Claims>>() {
            Some(claims) => Ok(Some(Self(claims.clone()))),
            None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
            None => Err(MissingAuthLayer),
        }
    }
}
