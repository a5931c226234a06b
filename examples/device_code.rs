//! The device code flow for a command-line client: it shows a code, the user signs in
//! elsewhere, and the client gets tokens to call the API.
//!
//! ```text
//! cargo run --example device_code
//! ```
//!
//! Here the dev tenant's user approves the code by itself after a moment (what a person does
//! in a browser at the printed URL).
#![allow(clippy::print_stdout)]

use azad_core::ClientCredential;
use azad_core::SignInClient;
use azad_core::dev::{DevApp, DevTenant};
use azad_examples::on_behalf_of;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let dev = std::sync::Arc::new(DevTenant::start().await?);
    let api_url = on_behalf_of::serve_apis(&dev).await?;
    let cli = DevApp::new("azad command-line client");
    dev.register_app(cli.clone());
    let config = dev.config_builder().client_id(&cli.client_id).build()?;
    let client = SignInClient::new(&config, ClientCredential::public_client(), "");
    let scope = format!("api://{}/access_as_user", dev.api_client_id());

    let code = client.start_device_code(&[&scope]).await?;
    println!("{}", code.message());
    let (d, user_code) = (dev.clone(), code.user_code().to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        // What the user does in a browser: open the page, type the code, sign in.
        let _ = reqwest::get(format!("{}/devicelogin?code={user_code}", d.base_url())).await;
    });
    let signed_in = client.complete_device_code(&code).await?;
    println!("signed in as {} ({})", signed_in.account().name(), signed_in.account().username());
    let token = client.acquire_token_silent(signed_in.account(), &[&scope]).await?;
    let response =
        reqwest::Client::new().get(format!("{api_url}/api/claims")).bearer_auth(token.secret()).send().await?;
    println!("GET /api/claims -> {}", response.status());
    println!("{}", response.text().await?);
    Ok(())
}
