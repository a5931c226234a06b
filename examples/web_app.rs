//! Microsoft's walkthrough "a web app signs the user in and calls a protected API, using a
//! managed identity with a federated credential instead of a client secret", on one machine.
//!
//! ```text
//! cargo run --example web_app                      # then open the printed URL in a browser
//! cargo run --example web_app -- --client-secret   # the same with a client secret
//! cargo run --example web_app -- --check           # signs in over HTTP, calls the API, exits
//! ```
//!
//! The dev tenant plays Entra ID and the managed identity endpoint; the protected API is the
//! quickstart's (and it calls a downstream API on behalf of the user for `/call-downstream`).
#![allow(clippy::print_stdout)]

use azad_core::SignInClient;
use azad_core::dev::DevTenant;
use azad_examples::on_behalf_of;
use azad_examples::web_app::{self, CredentialKind, ScriptedBrowser, Settings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let args: Vec<String> = std::env::args().collect();
    let kind = if args.iter().any(|a| a == "--client-secret") {
        CredentialKind::ClientSecret
    } else {
        CredentialKind::ManagedIdentity
    };
    let dev = DevTenant::start().await?;
    let api_url = on_behalf_of::serve_apis(&dev).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", azad_examples::port_from_env())).await?;
    let base_url = format!("http://localhost:{}", listener.local_addr()?.port());
    let (config, credential) = web_app::register(&dev, &base_url, kind);
    println!("web app credential: {credential:?}");
    let signin = SignInClient::new(&config, credential, format!("{base_url}/getAToken"));
    let settings = Settings {
        base_url: base_url.clone(),
        api_url: api_url.clone(),
        api_scope: format!("api://{}/access_as_user", dev.api_client_id()),
    };
    tokio::spawn(async move { axum::serve(listener, web_app::router(signin, settings)).await });
    println!("dev tenant     {}", dev.base_url());
    println!("protected API  {api_url}");
    println!("web app        {base_url}   <- open this in a browser and sign in");

    if args.iter().any(|a| a == "--check") {
        let mut browser = ScriptedBrowser::new();
        let (_, _, home) = browser.get(&format!("{base_url}/login")).await?;
        let (_, status, claims) = browser.get(&format!("{base_url}/call-api")).await?;
        let (_, _, hops) = browser.get(&format!("{base_url}/call-downstream")).await?;
        let (_, _, after) = browser.get(&format!("{base_url}/logout")).await?;
        let ok = home.contains("Signed in as")
            && status == 200
            && claims.contains("access_as_user")
            && hops.contains(&dev.users()[0].oid)
            && after.contains("not signed in");
        println!(
            "signed in: {}, API claims: {}, three hops: {}, signed out: {}",
            home.contains("Signed in as"),
            claims.contains("access_as_user"),
            hops.contains(&dev.users()[0].oid),
            after.contains("not signed in")
        );
        return if ok { Ok(()) } else { Err("the web app walkthrough failed".into()) };
    }
    println!("\nServing; press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
