//! On-behalf-of end to end: a user token for the quickstart API, which calls a downstream API
//! (also protected by azad) as that user; the downstream answers with the user's `oid`.
//!
//! ```text
//! cargo run --example on_behalf_of             # runs the flow, then serves until Ctrl-C
//! cargo run --example on_behalf_of -- --check  # runs the flow and exits
//! ```
#![allow(clippy::print_stdout)]

use azad_axum::AzureAdAuth;
use azad_axum::dev::DevTenant;
use azad_examples::on_behalf_of;

async fn serve(router: axum::Router) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let dev = DevTenant::start().await?;
    let downstream =
        serve(on_behalf_of::downstream_router(AzureAdAuth::new(on_behalf_of::downstream_config(&dev)))).await?;
    let auth = AzureAdAuth::new(dev.config()).with_token_client(on_behalf_of::dev_token_client(&dev));
    let api = serve(on_behalf_of::middle_router(auth, &format!("http://{downstream}"))).await?;
    println!("dev tenant      {}", dev.base_url());
    println!("downstream API  http://{downstream}   (GET /api/data needs Data.Read)");
    println!("quickstart API  http://{api}   (GET /api/downstream calls the downstream API on behalf of the user)");

    let user = dev.token().build();
    let response = reqwest::Client::new().get(format!("http://{api}/api/downstream")).bearer_auth(&user).send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    println!("\nGET /api/downstream as {} -> {status}\n{}", dev.users()[0].name, serde_json::to_string_pretty(&body)?);
    let flowed =
        body["caller"]["oid"] == body["downstream"]["oid"] && body["downstream"]["oid"] == dev.users()[0].oid.as_str();
    println!("\nidentity preserved across the hop: {flowed}");
    if !flowed {
        return Err("the downstream API did not see the user".into());
    }
    if std::env::args().any(|a| a == "--check") {
        return Ok(());
    }
    println!(
        "\nTry it:\ncurl -s -H 'Authorization: Bearer {user}' http://{api}/api/downstream\n\nServing; press Ctrl-C to stop."
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
