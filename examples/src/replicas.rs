//! Many replicas sharing the encrypted token cache on Redis: two replicas of the protected API
//! (each with its own token client, memory and Redis connection, as two processes would have)
//! behind a round-robin balancer, and a web app whose users' tokens and sessions are kept in
//! the same Redis. One user signs in once; both replicas serve on-behalf-of calls from one
//! exchange; the web app restarts and the user is still signed in.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use azad_axum::AzureAdAuth;
use azad_core::AzureAdConfig;
use azad_core::ClientCredential;
use azad_core::SignInClient;
use azad_core::dev::{DevTenant, Endpoint};
use azad_core::store::{RedisStore, SealingKey, SharedStore};
use tokio::task::JoinHandle;

use crate::on_behalf_of::{self, dev_token_client, downstream_config, middle_router};
use crate::web_app::{self, CredentialKind, ScriptedBrowser, Settings};

/// A shared store on the Redis at `url`, sealing with `key`: what each replica builds at
/// start-up from its configuration (the same URL and key everywhere).
///
/// # Errors
///
/// When `url` is not a Redis URL.
pub fn shared_store(url: &str, key: &SealingKeyBytes) -> Result<SharedStore, String> {
    let store = RedisStore::new(url).map_err(|e| e.to_string())?;
    Ok(SharedStore::builder(store, key.key()).namespace("azad-replicas").build())
}

/// The sealing key's bytes, as each replica reads them from its secrets.
#[derive(Clone)]
pub struct SealingKeyBytes(Arc<secrecy::SecretBox<[u8; 32]>>);

impl std::fmt::Debug for SealingKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKeyBytes([redacted])")
    }
}

impl SealingKeyBytes {
    /// A fresh random key.
    ///
    /// # Panics
    ///
    /// When the system's random source fails.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
        Self(Arc::new(secrecy::SecretBox::new(Box::new(bytes))))
    }

    /// The key, for a [`SharedStore`].
    #[must_use]
    pub fn key(&self) -> SealingKey {
        SealingKey::new(&self.0)
    }
}

/// Starts an API replica: the quickstart API with on-behalf-of to `downstream`, its token
/// client sharing `store`. Returns its base URL.
///
/// # Errors
///
/// The bind error.
pub async fn start_api_replica(dev: &DevTenant, downstream: &str, store: SharedStore) -> std::io::Result<String> {
    let auth = AzureAdAuth::new(dev.config()).with_token_client(dev_token_client(dev).with_token_store(store));
    let addr = on_behalf_of::serve(middle_router(auth, downstream)).await?;
    Ok(format!("http://{addr}"))
}

#[derive(Clone)]
struct Balancer {
    backends: Arc<[String]>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// Forwards `GET`s round-robin to the replicas, with the caller's `Authorization` header.
async fn forward(State(lb): State<Balancer>, request: Request) -> Response {
    let i = lb.next.fetch_add(1, Ordering::Relaxed) % lb.backends.len();
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = lb.http.get(format!("{}{path}", lb.backends[i]));
    if let Some(auth) = request.headers().get(header::AUTHORIZATION) {
        outgoing = outgoing.header(header::AUTHORIZATION, auth);
    }
    match outgoing.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = r.headers().get(header::CONTENT_TYPE).cloned();
            let mut response = (status, Body::from(r.bytes().await.unwrap_or_default())).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response.headers_mut().insert("x-replica", i.into());
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Starts a round-robin balancer in front of `backends`; returns its base URL.
///
/// # Errors
///
/// The bind error.
pub async fn start_balancer(backends: Vec<String>) -> std::io::Result<String> {
    let lb = Balancer { backends: backends.into(), next: Arc::default(), http: reqwest::Client::new() };
    let addr = on_behalf_of::serve(Router::new().fallback(forward).with_state(lb)).await?;
    Ok(format!("http://{addr}"))
}

/// A running web app: its base URL and the task serving it (abort it to stop the "process").
#[derive(Debug)]
pub struct WebApp {
    /// `http://localhost:{port}`.
    pub base_url: String,
    registration: (AzureAdConfig, ClientCredential, String),
    task: JoinHandle<()>,
}

impl WebApp {
    /// Stops the web app (its memory goes with it); returns its registration, for a restart.
    #[must_use]
    pub fn stop(self) -> (AzureAdConfig, ClientCredential, String) {
        self.task.abort();
        self.registration
    }
}

/// Starts the web app with a fresh sign-in client and memory, its tokens and sessions in
/// `store`, calling the API at `api_url`: registered anew in `dev`, or (a restart) with the
/// `registration` of a stopped one (on a new port: the browser's open connections to the old
/// process are not reused).
///
/// # Errors
///
/// The bind error.
pub async fn start_web_app(
    dev: &DevTenant,
    api_url: &str,
    store: SharedStore,
    registration: Option<(AzureAdConfig, ClientCredential, String)>,
) -> std::io::Result<WebApp> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base_url = format!("http://localhost:{}", listener.local_addr()?.port());
    let (config, credential, redirect_uri) = registration.unwrap_or_else(|| {
        let (config, credential) = web_app::register(dev, &base_url, CredentialKind::ClientSecret);
        (config, credential, format!("{base_url}/getAToken"))
    });
    let signin = SignInClient::new(&config, credential.clone(), redirect_uri.clone()).with_token_store(store.clone());
    let settings = Settings {
        base_url: base_url.clone(),
        api_url: api_url.to_owned(),
        api_scope: format!("api://{}/access_as_user", dev.api_client_id()),
    };
    let router = web_app::router_with_store(signin, settings, Some(store));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(WebApp { base_url, registration: (config, credential, redirect_uri), task })
}

/// What the scenario observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The user signed in (once).
    pub signed_in: bool,
    /// On-behalf-of calls answered by each replica (both must be non-zero).
    pub calls_per_replica: [usize; 2],
    /// Token endpoint requests made by all the on-behalf-of calls together (1: one exchange).
    pub token_requests_for_calls: usize,
    /// After the web app restarted: still signed in, and its API call succeeded.
    pub signed_in_after_restart: bool,
    /// Token endpoint requests made after the restart (0: the user's tokens came from Redis).
    pub token_requests_after_restart: usize,
}

impl Report {
    /// Whether the scenario showed what it should.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.signed_in
            && self.calls_per_replica.iter().all(|&n| n > 0)
            && self.token_requests_for_calls == 1
            && self.signed_in_after_restart
            && self.token_requests_after_restart == 0
    }
}

/// Runs the scenario against the Redis at `redis_url`.
///
/// # Errors
///
/// A step that could not run (bind, transport).
pub async fn run(redis_url: &str) -> Result<Report, Box<dyn std::error::Error>> {
    let key = SealingKeyBytes::generate();
    let dev = DevTenant::start().await?;
    let downstream =
        on_behalf_of::serve(on_behalf_of::downstream_router(AzureAdAuth::new(downstream_config(&dev)))).await?;
    let downstream = format!("http://{downstream}");
    // Two replicas: separate token clients, memories and Redis connections.
    let a = start_api_replica(&dev, &downstream, shared_store(redis_url, &key)?).await?;
    let b = start_api_replica(&dev, &downstream, shared_store(redis_url, &key)?).await?;
    let api = start_balancer(vec![a, b]).await?;
    tracing::info!("dev tenant   {}", dev.base_url());
    tracing::info!("API replicas behind {api}");

    let web = start_web_app(&dev, &api, shared_store(redis_url, &key)?, None).await?;
    tracing::info!("web app      {}", web.base_url);
    let mut browser = ScriptedBrowser::new();
    let (_, _, home) = browser.get(&format!("{}/login", web.base_url)).await?;
    let signed_in = home.contains("Signed in as");

    dev.reset_counters();
    let mut calls_per_replica = [0; 2];
    for i in 0..4 {
        let (_, status, body) = browser.get(&format!("{}/call-downstream", web.base_url)).await?;
        if status == 200 && body.contains(&dev.users()[0].oid) {
            calls_per_replica[i % 2] += 1;
        }
    }
    let token_requests_for_calls = dev.requests(Endpoint::Token);
    tracing::info!(
        "on-behalf-of calls: replica A {}, replica B {}; token endpoint requests: {token_requests_for_calls}",
        calls_per_replica[0],
        calls_per_replica[1]
    );

    // The web app restarts: a new process's memory, the same Redis.
    let registration = web.stop();
    let web = start_web_app(&dev, &api, shared_store(redis_url, &key)?, Some(registration)).await?;
    dev.reset_counters();
    let (_, _, home) = browser.get(&format!("{}/", web.base_url)).await?;
    let (_, status, claims) = browser.get(&format!("{}/call-api", web.base_url)).await?;
    let signed_in_after_restart = home.contains("Signed in as") && status == 200 && claims.contains("access_as_user");
    let token_requests_after_restart = dev.requests(Endpoint::Token);
    tracing::info!(
        "after a restart of the web app: signed in {signed_in_after_restart}, token endpoint requests {token_requests_after_restart}"
    );
    let _ = web.stop();
    Ok(Report {
        signed_in,
        calls_per_replica,
        token_requests_for_calls,
        signed_in_after_restart,
        token_requests_after_restart,
    })
}
