//! The code behind azad's runnable examples and scenarios, shared with the end-to-end tests.
//!
//! Each `cargo run --example <name>` is a thin `main` around one of these modules.

pub mod bao;
pub mod daemon;
pub mod grpc;
pub mod on_behalf_of;
pub mod quickstart;
pub mod redis_server;
pub mod replicas;
#[cfg(feature = "swagger-ui")]
pub mod swagger_ui;
pub mod vault_kubernetes;
pub mod web_app;
pub mod workload;

/// Installs a `tracing` subscriber reading `RUST_LOG` (default `info`), for the examples.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// The port from `PORT`, or 0 (a free one).
#[must_use]
pub fn port_from_env() -> u16 {
    std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0)
}
