//! On-behalf-of: the quickstart API calls a downstream API (also protected by azad) as the
//! signed-in user; the downstream answers with the user's identity, proving it flowed.

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use azad_axum::dev::DevTenant;
use azad_axum::{AppToken, AzureAdAuth, Claims, DownstreamError, OnBehalfOf, require_role, require_scope};
use azad_core::ClientCredential;
use azad_core::TokenClient;
use serde_json::{Value, json};

/// The delegated scope the quickstart API requests from the downstream API.
pub const DOWNSTREAM_SCOPE: &str = "api://azad-downstream/Data.Read";
/// The `.default` scope of the downstream API, for app tokens.
pub const DOWNSTREAM_DEFAULT: &str = "api://azad-downstream/.default";

/// The downstream API's base URL, as the middle API sees it.
#[derive(Debug, Clone)]
pub struct DownstreamUrl(pub Arc<str>);

/// `GET /api/data` on the downstream API: who called, as the token says.
#[require_scope("Data.Read")]
pub async fn data(claims: Claims) -> Json<Value> {
    Json(json!({
        "oid": claims.object_id(),
        "tid": claims.tenant_id(),
        "name": claims.name(),
        "scp": claims.scp(),
        "azp": claims.azp(),
        "acrs": claims.acrs(),
    }))
}

/// `GET /api/report` on the downstream API: for applications holding `Data.Read.All`.
#[require_role("Data.Read.All")]
pub async fn report(claims: Claims) -> Json<Value> {
    Json(json!({ "app": claims.azp(), "app_only": claims.is_app_only() }))
}

/// The downstream API behind `auth` (configured with the downstream API's client id).
pub fn downstream_router(auth: AzureAdAuth) -> Router {
    Router::new().route("/api/data", get(data)).route("/api/report", get(report)).route_layer(auth)
}

/// `GET /api/downstream` on the quickstart API: calls the downstream API as the user.
#[require_scope("access_as_user")]
pub async fn call_downstream(
    obo: OnBehalfOf,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<Json<Value>, DownstreamError> {
    let response = obo.call(http_client().get(format!("{base}/api/data")), &[DOWNSTREAM_SCOPE]).await?;
    let status = response.status().as_u16();
    let downstream: Value = response.json().await.unwrap_or(Value::Null);
    Ok(Json(json!({
        "caller": { "oid": obo.claims().object_id(), "name": obo.claims().name() },
        "downstream_status": status,
        "downstream": downstream,
    })))
}

/// `GET /api/downstream-report` on the quickstart API: calls the downstream API as the
/// application (client credentials).
#[require_role("Admin")]
pub async fn call_downstream_as_app(
    app: AppToken,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<Json<Value>, DownstreamError> {
    let response = app.call(http_client().get(format!("{base}/api/report")), &[DOWNSTREAM_DEFAULT]).await?;
    Ok(Json(response.json().await.unwrap_or(Value::Null)))
}

fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

/// The quickstart API plus the downstream routes, behind `auth` (which must carry a token
/// client, see [`AzureAdAuth::with_token_client`]).
pub fn middle_router(auth: AzureAdAuth, downstream: &str) -> Router {
    let api = crate::quickstart::api_routes()
        .route("/api/downstream", get(call_downstream))
        .route("/api/downstream-report", get(call_downstream_as_app))
        .route_layer(auth)
        .layer(Extension(DownstreamUrl(downstream.into())));
    Router::new().route("/health", get(crate::quickstart::health)).merge(api)
}

/// Serves a router on a free port of 127.0.0.1.
///
/// # Errors
///
/// The bind error.
pub async fn serve(router: Router) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Starts the downstream API and the quickstart API (with its token client) against `dev`;
/// returns the quickstart API's base URL.
///
/// # Errors
///
/// The bind error.
pub async fn serve_apis(dev: &DevTenant) -> std::io::Result<String> {
    let downstream = serve(downstream_router(AzureAdAuth::new(downstream_config(dev)))).await?;
    let auth = AzureAdAuth::new(dev.config()).with_token_client(dev_token_client(dev));
    let api = serve(middle_router(auth, &format!("http://{downstream}"))).await?;
    Ok(format!("http://{api}"))
}

/// The quickstart API's token client in the dev tenant (its client secret).
#[must_use]
pub fn dev_token_client(dev: &DevTenant) -> TokenClient {
    TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()))
}

/// The downstream API's configuration in the dev tenant.
///
/// # Panics
///
/// Never: the dev tenant's values are valid.
#[must_use]
pub fn downstream_config(dev: &DevTenant) -> azad_axum::AzureAdConfig {
    dev.config_builder().client_id(dev.downstream_client_id()).build().expect("valid dev configuration")
}
