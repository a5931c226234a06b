//! The quickstart: an axum API protected by Microsoft Entra ID access tokens.
//!
//! ```text
//! cargo run --example quickstart            # serves until Ctrl-C
//! cargo run --example quickstart -- --check # checks itself over HTTP, then exits
//! cargo run --example quickstart --features metrics   # also serves GET /metrics (Prometheus)
//! ```
//!
//! With no `AZURE_*` variables it starts the embedded dev tenant and prints `curl` lines with
//! freshly minted tokens. With `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` (and
//! `AZURE_AUTHORITY_HOST` if set) it protects itself with that tenant and mints nothing.
//! `PORT` picks the port (a free one by default).
//!
//! If the identity provider is unreachable at start-up, the quickstart keeps serving:
//! `/health` answers, protected routes answer 503 with `Retry-After`, and the signing keys are
//! retried in the background, with back-off, until they load (`--check` exits at once instead).
#![allow(clippy::print_stdout)]

use azad_axum::AzureAdAuth;
use azad_examples::quickstart::{self, Setup};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let check = std::env::args().any(|a| a == "--check");
    // The recorder first: azad registers its metric handles when the layer is built.
    #[cfg(feature = "metrics")]
    let metrics = quickstart::install_metrics()?;
    let (config, setup) = quickstart::setup().await?;
    let auth = AzureAdAuth::new(config);
    #[cfg(feature = "metrics")]
    let metrics_route = quickstart::metrics_route(metrics, auth.validator().clone());
    // `--check` fails fast when the signing keys cannot be loaded. Serving, a real API keeps
    // running while the identity provider is down: public routes answer, protected routes
    // answer 503 with Retry-After, and the keys are retried in the background until they load.
    if let Err(e) = quickstart::load_keys(&auth, check).await {
        eprintln!("cannot load the signing keys of {}: {e}", auth.validator().config().authority());
        std::process::exit(1);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", azad_examples::port_from_env())).await?;
    let addr = listener.local_addr()?;
    let router = quickstart::router(auth);
    #[cfg(feature = "metrics")]
    let router = router.merge(metrics_route);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    println!("azad quickstart listening on http://{addr}");
    println!("  GET http://{addr}/health      public");
    println!("  GET http://{addr}/api/claims  scope `access_as_user`");
    println!("  GET http://{addr}/api/admin   app role `Admin`");
    #[cfg(feature = "metrics")]
    println!("  GET http://{addr}/metrics     Prometheus text (public)");
    match &setup {
        Setup::Dev(dev) => {
            println!("\nAuthority: embedded dev tenant at {} (tenant {})", dev.base_url(), dev.tenant_id());
            println!("Try it (tokens valid for one hour):\n");
            for (what, line) in quickstart::curl_lines(addr, dev) {
                println!("# {what}\n{line}\n");
            }
        }
        Setup::Environment => {
            println!("\nAuthority: from AZURE_TENANT_ID / AZURE_CLIENT_ID (no tokens minted)");
        }
    }

    if check {
        let Setup::Dev(dev) = &setup else {
            return Err("--check needs the dev tenant (unset AZURE_TENANT_ID)".into());
        };
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let user = dev.token().build();
        let app = dev.token().app_only().roles([quickstart::ADMIN_ROLE]).build();
        let checks = [
            ("/health", None, 200),
            ("/api/claims", Some(&user), 200),
            ("/api/admin", Some(&app), 200),
            ("/api/admin", Some(&user), 403),
            ("/api/claims", None, 401),
        ];
        let mut failed = false;
        for (path, token, expected) in checks {
            let mut req = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let status = req.send().await?.status().as_u16();
            let ok = status == expected;
            failed |= !ok;
            println!(
                "check {path:<12} {:<10} -> {status} {}",
                if token.is_some() { "with token" } else { "no token" },
                if ok { "ok" } else { "UNEXPECTED" }
            );
        }
        server.abort();
        if failed {
            return Err("quickstart self-check failed".into());
        }
        println!("quickstart self-check passed");
        return Ok(());
    }

    println!("Serving; press Ctrl-C to stop.");
    tokio::select! {
        r = server => { r??; }
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
