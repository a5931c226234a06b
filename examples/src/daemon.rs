//! A daemon: a background job with its own app registration, authenticating with a
//! certificate, calling an API route that requires an app role.

use std::time::Duration;

use azad_core::TokenClient;
use azad_core::dev::{DevApp, DevTenant};
use azad_core::{CertificateCredential, ClientCredential};
use serde_json::Value;

/// Registers the daemon in the dev tenant with a fresh certificate and the API's `Admin` app
/// role, and returns its token client.
///
/// # Panics
///
/// Never: the dev tenant's certificate and configuration are valid.
#[must_use]
pub fn register(dev: &DevTenant) -> TokenClient {
    let app = DevApp::new("azad nightly report daemon");
    dev.register_app(app.clone());
    dev.grant_app_role(&app.client_id, dev.api_client_id(), "Admin");
    let cert = dev.add_certificate(&app.client_id);
    let credential =
        CertificateCredential::from_pem(cert.cert_pem(), &cert.key_pem()).expect("the dev certificate loads");
    // A client only: its application identity, no API validation settings.
    let application =
        dev.config_builder().client_id(&app.client_id).build_application().expect("valid dev configuration");
    TokenClient::for_application(&application, ClientCredential::certificate(credential))
}

/// One run of the job: an app token for the API (`api://{api}/.default`), then
/// `GET {api_url}/api/admin`. Returns the status and the body.
///
/// # Errors
///
/// The token or transport error, as text.
pub async fn run_once(client: &TokenClient, api_client_id: &str, api_url: &str) -> Result<(u16, Value), String> {
    let scope = format!("api://{api_client_id}/.default");
    let token = client.acquire_app_token(&[&scope]).await.map_err(|e| e.to_string())?;
    let response = reqwest::Client::new()
        .get(format!("{api_url}/api/admin"))
        .bearer_auth(token.secret())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Runs the job `runs` times, `every` apart (the app token comes from the cache after the
/// first run).
///
/// # Errors
///
/// The first failure.
pub async fn run(
    client: &TokenClient,
    api_client_id: &str,
    api_url: &str,
    runs: usize,
    every: Duration,
) -> Result<Vec<(u16, Value)>, String> {
    let mut results = Vec::with_capacity(runs);
    for i in 0..runs {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        results.push(run_once(client, api_client_id, api_url).await?);
    }
    Ok(results)
}
