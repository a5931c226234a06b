//! The quickstart API: `/health` public, `/api/claims` for users with the `access_as_user`
//! scope, `/api/admin` for callers with the `Admin` app role.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use azad_axum::dev::DevTenant;
use azad_axum::{AzureAdAuth, AzureAdConfig, Claims, OnAuthError, require_role, require_scope};
use azad_core::JwksError;
use serde_json::{Value, json};

/// The scope `/api/claims` requires.
pub const SCOPE: &str = "access_as_user";
/// The app role `/api/admin` requires.
pub const ADMIN_ROLE: &str = "Admin";

/// `GET /health`: public.
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /api/claims`: the validated claims, as the protected API of Microsoft's
/// "web app calls web API" scenario returns them.
#[require_scope("access_as_user")]
pub async fn claims(claims: Claims) -> Json<Claims> {
    Json(claims)
}

/// `GET /api/me`: the caller's name (a small protected answer).
#[require_scope("access_as_user")]
pub async fn me(claims: Claims) -> String {
    claims.name().unwrap_or_default().to_owned()
}

/// `GET /api/admin`: callers holding the `Admin` app role (users or applications).
#[require_role("Admin")]
pub async fn admin(claims: Claims) -> Json<Value> {
    Json(json!({
        "message": "welcome, admin",
        "caller": claims.client_app_id(),
        "app_only": claims.is_app_only(),
    }))
}

/// The protected routes, without the layer (other examples add routes before layering).
pub fn api_routes() -> Router {
    Router::new().route("/api/claims", get(claims)).route("/api/me", get(me)).route("/api/admin", get(admin))
}

/// The API routes behind `auth`, with `/health` left public. `route_layer` keeps unknown
/// paths 404 rather than 401.
pub fn router<E>(auth: AzureAdAuth<E>) -> Router
where
    E: OnAuthError<axum::body::Body> + Clone + Send + Sync + 'static,
{
    Router::new().route("/health", get(health)).merge(api_routes().route_layer(auth))
}

/// Installs a Prometheus recorder as the process's global `metrics` recorder (feature
/// `metrics`), with histogram buckets for the token-request latencies. Call it before building
/// the layer: azad registers its metric handles when the validator is built.
///
/// # Errors
///
/// The exporter's error if a recorder is already installed.
#[cfg(feature = "metrics")]
pub fn install_metrics()
-> Result<metrics_exporter_prometheus::PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(azad_core::metrics::TOKEN_REQUEST_DURATION_SECONDS.to_owned()),
            &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )?
        .install_recorder()?;
    azad_core::metrics::describe();
    Ok(handle)
}

/// `GET /metrics` (feature `metrics`): azad's metrics (and anything else recorded) in the
/// Prometheus text format, on the API's own listener (the exporter runs no server of its
/// own). Public like `/health`: put it behind the network's own controls, or on a separate
/// listener, in production.
#[cfg(feature = "metrics")]
pub fn metrics_route(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    validator: azad_core::TokenValidator,
) -> Router {
    let render = move || {
        let (handle, validator) = (handle.clone(), validator.clone());
        async move {
            // Gauges that change with time (key-set age, cache size), then histogram upkeep.
            validator.update_metrics();
            handle.run_upkeep();
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
        }
    };
    Router::new().route("/metrics", get(render))
}

/// Loads the signing keys at start-up.
///
/// - `fail_fast` (`--check`): one attempt; its error is returned, so the caller can exit.
/// - Otherwise a real API keeps running while the identity provider is unreachable or
///   answers 5xx: one attempt now and, on failure, a warning and `Ok`. The key cache retries
///   by itself in the background with exponential back-off (from its retry interval, doubling,
///   at most 5 minutes); meanwhile public routes answer and protected routes answer 503 with
///   `Retry-After`; once the keys load they answer normally, with no restart.
///
/// # Errors
///
/// Only with `fail_fast`: the [`JwksError`] that prevented loading.
pub async fn load_keys<E>(auth: &AzureAdAuth<E>, fail_fast: bool) -> Result<(), JwksError> {
    match auth.warm_up().await {
        Ok(()) => Ok(()),
        Err(e) if fail_fast => Err(e),
        Err(e) => {
            tracing::warn!(
                target: "azad::quickstart",
                authority = %auth.validator().config().authority(),
                error = %e,
                "cannot load the signing keys yet; serving anyway (protected routes answer 503) while the key cache retries in the background"
            );
            Ok(())
        }
    }
}

/// Where the quickstart's configuration came from.
#[derive(Debug)]
pub enum Setup {
    /// No `AZURE_*` variables: an embedded dev tenant, which mints tokens.
    Dev(DevTenant),
    /// `AZURE_TENANT_ID`/`AZURE_CLIENT_ID` (and `AZURE_AUTHORITY_HOST`): a real tenant.
    Environment,
}

/// Chooses the configuration: the environment when `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`
/// are set, else a fresh dev tenant.
///
/// # Errors
///
/// A configuration error naming the variable at fault, or the dev tenant's bind error.
pub async fn setup() -> Result<(AzureAdConfig, Setup), Box<dyn std::error::Error>> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if set("AZURE_TENANT_ID") && set("AZURE_CLIENT_ID") {
        Ok((AzureAdConfig::from_env()?, Setup::Environment))
    } else {
        let dev = DevTenant::start().await?;
        Ok((dev.config(), Setup::Dev(dev)))
    }
}

/// Ready-to-paste `curl` lines for a running quickstart on `addr`, with tokens from `dev`.
#[must_use]
pub fn curl_lines(addr: SocketAddr, dev: &DevTenant) -> Vec<(String, String)> {
    let base = format!("http://{addr}");
    let user = dev.token().scopes([SCOPE]).build();
    let app = dev.token().app_only().roles([ADMIN_ROLE]).build();
    vec![
        ("public, no token".into(), format!("curl -s {base}/health")),
        (
            "a user token with the access_as_user scope: 200 and the claims".into(),
            format!("curl -s -H 'Authorization: Bearer {user}' {base}/api/claims"),
        ),
        (
            "an app token with the Admin role: 200".into(),
            format!("curl -s -H 'Authorization: Bearer {app}' {base}/api/admin"),
        ),
        ("no token: 401 with WWW-Authenticate: Bearer".into(), format!("curl -si {base}/api/claims")),
    ]
}
