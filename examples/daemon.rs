//! A daemon: a background job gets an app token with a certificate and calls an API route
//! that requires an app role; the same route refuses a delegated token without the role.
//!
//! ```text
//! cargo run --example daemon
//! ```
#![allow(clippy::print_stdout)]

use std::time::Duration;

use azad_core::dev::DevTenant;
use azad_examples::{daemon, on_behalf_of};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let dev = DevTenant::start().await?;
    let api_url = on_behalf_of::serve_apis(&dev).await?;
    let client = daemon::register(&dev);
    println!("daemon {} (certificate credential) calling {api_url}/api/admin, role Admin", client.client_id());
    for (i, (status, body)) in
        daemon::run(&client, dev.api_client_id(), &api_url, 3, Duration::from_secs(1)).await?.into_iter().enumerate()
    {
        println!("run {}: {status} {body}", i + 1);
    }
    let user = dev.token().build();
    let status = reqwest::Client::new().get(format!("{api_url}/api/admin")).bearer_auth(user).send().await?.status();
    println!("a user's token without the role: {status}");
    if status != reqwest::StatusCode::FORBIDDEN {
        return Err("the route should refuse a delegated token without the role".into());
    }
    Ok(())
}
