//! Swagger UI with Entra ID sign-in (authorization code + PKCE), against the embedded dev tenant.
//!
//! ```text
//! cargo run -p azad-examples --example swagger_ui --features swagger-ui
//! ```
//!
//! Open the printed `/swagger-ui` address: "Try it out" on `GET /api/me` answers 401; click
//! **Authorize**, tick the `access_as_user` scope, sign in as a test user on the dev tenant's
//! page, and the same call answers 200 with your name. The OpenAPI document's security
//! (`/api-docs/openapi.json`) comes from the same attributes and layers that enforce it.
//! `PORT` picks the port (a free one by default).
#![allow(clippy::print_stdout)]

use azad_examples::swagger_ui;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", azad_examples::port_from_env())).await?;
    let addr = listener.local_addr()?;
    let (dev, spa) = swagger_ui::dev_tenant(addr).await?;
    let app = swagger_ui::router(dev.config(), &spa.client_id);
    println!("azad Swagger UI example on http://{addr}{}", swagger_ui::SWAGGER_PATH);
    println!("  dev tenant {}   SPA client id {}", dev.authority(), spa.client_id);
    println!("  OpenAPI document http://{addr}{}", swagger_ui::OPENAPI_PATH);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
