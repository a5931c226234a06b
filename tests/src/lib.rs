//! Shared helpers for azad's end-to-end tests: servers on 127.0.0.1 port 0, an HTTP client,
//! and log capture.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use azad_core::dev::{DevTenant, Endpoint, Fault};

/// Serves an axum router on a free port of 127.0.0.1 and returns its address.
///
/// # Panics
///
/// If no port can be bound.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// An HTTP client for tests (no proxy, no redirects).
///
/// # Panics
///
/// If the TLS backend cannot be initialised.
#[must_use]
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("reqwest client")
}

/// A `tracing` writer capturing everything logged, to assert what logs contain.
#[derive(Clone, Default, Debug)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything captured so far.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// A subscriber writing every event and span (TRACE and up) here.
    #[must_use]
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

impl CapturedLogs {
    /// A subscriber writing here what `filter` (`EnvFilter` directives, as in `RUST_LOG`)
    /// keeps, spans included (a line when each closes).
    ///
    /// # Panics
    ///
    /// If `filter` does not parse.
    #[must_use]
    pub fn filtered_subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter).expect("a filter"))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub mod webdriver;

/// The walkthrough on one machine: the protected API (with its downstream API) and the web app,
/// signed in against `dev`. Returns the web app's base URL (`http://localhost:{port}`).
///
/// # Panics
///
/// If a port cannot be bound.
pub async fn web_app(dev: &DevTenant, kind: azad_examples::web_app::CredentialKind) -> String {
    let api_url = azad_examples::on_behalf_of::serve_apis(dev).await.expect("APIs start");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind 127.0.0.1:0");
    let base_url = format!("http://localhost:{}", listener.local_addr().expect("address").port());
    let (config, credential) = azad_examples::web_app::register(dev, &base_url, kind);
    let signin = azad_core::SignInClient::new(&config, credential, format!("{base_url}/getAToken"));
    let settings = azad_examples::web_app::Settings {
        base_url: base_url.clone(),
        api_url,
        api_scope: format!("api://{}/access_as_user", dev.api_client_id()),
    };
    tokio::spawn(async move { axum::serve(listener, azad_examples::web_app::router(signin, settings)).await });
    base_url
}
