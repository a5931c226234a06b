//! Swagger UI for an API protected by Entra ID, its security documented from the same
//! attributes and layers that enforce it: a person signs in with PKCE against the dev tenant
//! (or a real tenant) and calls the protected routes from the page.
//!
//! - `GET /api/me` (`#[require_scope("access_as_user")]`): the signed-in user's name.
//! - `GET /api/tasks` (`#[require_scope_or_app_permission]`): a user with `access_as_user` or
//!   an application granted `Tasks.Read.All`.
//! - `GET /api/reports/daily`, behind a `Require` for the `Reports.Read.All` app role.
//! - `/swagger-ui`: Swagger UI, its OAuth2 dialog preset with the SPA's client id and PKCE.
//! - `/api-docs/openapi.json`: the OpenAPI document.

use std::net::SocketAddr;

use axum::{Json, Router};
use azad_axum::dev::{DevApp, DevTenant, DevUser};
use azad_axum::openapi::{AzureAdSecurity, RequireOpenApiExt};
use azad_axum::{AzureAdAuth, AzureAdConfig, Claims, Require, require_scope, require_scope_or_app_permission};
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{SwaggerUi, oauth};

/// Where Swagger UI is served.
pub const SWAGGER_PATH: &str = "/swagger-ui";
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";
/// The scope `/api/me` requires.
pub const SCOPE: &str = "access_as_user";

/// The signed-in user's name.
#[require_scope("access_as_user")]
#[utoipa::path(get, path = "/api/me", tag = "me",
    responses((status = 200, description = "The caller's name", body = String),
              (status = 401, description = "No valid access token"),
              (status = 403, description = "The token lacks the scope")))]
pub async fn me(claims: Claims) -> Json<Value> {
    Json(json!({ "name": claims.name(), "oid": claims.object_id() }))
}

/// The caller's tasks: users with the `access_as_user` scope, or applications granted `Tasks.Read.All`.
#[require_scope_or_app_permission(scopes = ["access_as_user"], app_permissions = ["Tasks.Read.All"])]
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", responses((status = 200, description = "The tasks")))]
pub async fn tasks() -> Json<Value> {
    Json(json!([{ "id": 1, "title": "Try azad with Swagger UI" }]))
}

/// Today's report, for applications granted the `Reports.Read.All` app role.
#[utoipa::path(get, path = "/api/reports/daily", tag = "reports", responses((status = 200, description = "The report")))]
pub async fn daily_report() -> Json<Value> {
    Json(json!({ "report": "daily" }))
}

/// The document's title and version.
#[derive(OpenApi)]
#[openapi(info(title = "azad Swagger UI example", version = "1.0.0"))]
struct ApiDoc;

/// The API routes (not yet behind `AzureAdAuth`) and their OpenAPI document, security included.
pub fn api(config: &AzureAdConfig) -> (Router, utoipa::openapi::OpenApi) {
    let reports = OpenApiRouter::new().routes(routes!(daily_report)).require(Require::any_role(["Reports.Read.All"]));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(tasks))
        .merge(reports)
        .split_for_parts();
    AzureAdSecurity::new(config).scope(SCOPE, "Call the API as the signed-in user").apply(&mut doc);
    (router, doc)
}

/// The whole app: the API behind `AzureAdAuth`, and Swagger UI (public) set up for the
/// single-page application `spa_client_id` with PKCE.
pub fn router(config: AzureAdConfig, spa_client_id: &str) -> Router {
    let security = AzureAdSecurity::new(&config);
    let (api, doc) = api(&config);
    let swagger = SwaggerUi::new(SWAGGER_PATH).url(OPENAPI_PATH, doc).oauth(
        oauth::Config::new()
            .client_id(spa_client_id)
            .app_name("azad Swagger UI example")
            .use_pkce_with_authorization_code_grant(true)
            .scopes(vec![security.full_scope(SCOPE)]),
    );
    // `route_layer`: unknown paths stay 404; Swagger UI and the document stay public.
    Router::new().merge(api.route_layer(AzureAdAuth::new(config))).merge(swagger)
}

/// A dev tenant with two test users (so its sign-in page asks which one) and the Swagger UI
/// registered as a single-page application whose redirect URI is on `addr`.
///
/// # Errors
///
/// The I/O error if the dev tenant cannot listen.
pub async fn dev_tenant(addr: SocketAddr) -> std::io::Result<(DevTenant, DevApp)> {
    let spa = DevApp::new("azad Swagger UI").spa_redirect_uri(redirect_uri(addr));
    let dev = DevTenant::builder()
        .user(
            DevUser::new("Dev User", "dev.user@azaddev.onmicrosoft.com")
                .with_oid("4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"),
        )
        .user(DevUser::new("Megan Bowen", "megan.bowen@azaddev.onmicrosoft.com"))
        .app(spa.clone())
        .start()
        .await?;
    Ok((dev, spa))
}

/// Swagger UI's redirect page on `addr`: the SPA redirect URI to register.
#[must_use]
pub fn redirect_uri(addr: SocketAddr) -> String {
    format!("http://{addr}{SWAGGER_PATH}/oauth2-redirect.html")
}
