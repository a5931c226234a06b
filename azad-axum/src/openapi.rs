//! OpenAPI security from the same declarations that protect the routes (feature `utoipa`).
//!
//! - On a handler, write the azad attribute **above** `#[utoipa::path(...)]`: it checks the
//!   token and writes the operation's `security(...)` from the same requirement. Attributes
//!   expand outermost first; written below, it would run after utoipa generated the operation
//!   and could not document it (nothing can detect that order, so keep to this one). A
//!   `security(...)` written by hand in that `#[utoipa::path]` is a compile error: the
//!   attribute is its one source.
//! - For a group of routes behind a [`Require`], either
//!   [`RequireOpenApiExt::require`] on a `utoipa_axum::router::OpenApiRouter` (it applies the
//!   layer and documents every operation of that router), or
//!   [`AzureAdSecurity::route_group`] with the layer's
//!   [`requirement`](Require::requirement) and the group's path prefix.
//! - Then [`AzureAdSecurity::apply`] adds the OAuth2 schemes of the configured authority
//!   (authorization code with PKCE; client credentials for app roles) and the full scope names
//!   (`api://{client id}/{scope}`).
//!
//! See [`azad_tower::openapi`] for the shape of the document.
//!
//! # Example
//!
//! ```
//! use axum::Json;
//! use azad_axum::openapi::{AzureAdSecurity, RequireOpenApiExt};
//! use azad_axum::{AzureAdConfig, Require, require_scope};
//! use utoipa::OpenApi;
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! /// The signed-in user's name.
//! #[require_scope("access_as_user")]
//! #[utoipa::path(get, path = "/me", responses((status = 200, description = "the user's name")))]
//! async fn me() -> Json<&'static str> {
//!     Json("Dev User")
//! }
//!
//! /// Today's report, for applications granted `Reports.Read.All`.
//! #[utoipa::path(get, path = "/reports/today", responses((status = 200, description = "the report")))]
//! async fn report() -> &'static str {
//!     "report"
//! }
//!
//! #[derive(OpenApi)]
//! struct ApiDoc;
//!
//! let config = AzureAdConfig::builder()
//!     .tenant_id("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f")
//!     .client_id("a1b2c3d4-0000-4000-8000-00000000a91d")
//!     .build()?;
//! let reports = OpenApiRouter::new().routes(routes!(report)).require(Require::any_role(["Reports.Read.All"]));
//! let (router, mut doc) =
//!     OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(me)).merge(reports).split_for_parts();
//! AzureAdSecurity::new(&config).apply(&mut doc);
//! let router = router.layer(azad_axum::AzureAdAuth::new(config)); // enforcement, as always
//! # let _: axum::Router = router;
//!
//! let json = serde_json::to_value(&doc)?;
//! assert_eq!(json["paths"]["/me"]["get"]["security"], serde_json::json!([{"entra": ["api://a1b2c3d4-0000-4000-8000-00000000a91d/access_as_user"]}]));
//! assert_eq!(json["paths"]["/reports/today"]["get"]["security"], serde_json::json!([{"entra_app": ["Reports.Read.All"]}]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use axum_core::body::Body;
use utoipa_axum::router::OpenApiRouter;

pub use azad_tower::openapi::{APP_SCHEME, AzureAdSecurity, DELEGATED_SCHEME, require_all, security_requirements};

use crate::{OnAuthError, Require};

/// [`Require`] on a `utoipa_axum` [`OpenApiRouter`]: enforced and documented at once.
pub trait RequireOpenApiExt: Sized {
    /// Applies `layer` to the routes of this router (as `route_layer`: a request that matches
    /// no route is still 404, not 403) and adds its requirement to every operation of this
    /// router's document ([`require_all`]). Call it after adding the routes it protects, before
    /// nesting or merging the router into another.
    #[must_use]
    fn require<E>(self, layer: Require<E>) -> Self
    where
        E: OnAuthError<Body> + Clone + Send + Sync + 'static;
}

impl<S> RequireOpenApiExt for OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn require<E>(self, layer: Require<E>) -> Self
    where
        E: OnAuthError<Body> + Clone + Send + Sync + 'static,
    {
        let requirement = layer.requirement().clone();
        let mut router = self.route_layer(layer);
        require_all(router.get_openapi_mut(), &requirement);
        router
    }
}
