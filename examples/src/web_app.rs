//! A web app that signs the user in and calls the protected API, as in Microsoft's walkthrough
//! "a web app signs the user in and calls a protected API, using a managed identity with a
//! federated credential instead of a client secret".
//!
//! Routes: `/` (home), `/login`, `/getAToken` (the redirect target), `/call-api` (the API's
//! claims for the signed-in user), `/call-downstream` (three hops: the API calls a downstream
//! API on behalf of the user), `/logout`. Sessions are server-side; the browser holds only a
//! random session id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` on https and localhost).
//! With a shared store ([`router_with_store`]), a signed-in session is also kept there, sealed
//! under a hash of its id, next to the user's tokens: a restarted web app (or another replica)
//! recognises the cookie and keeps the user signed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use azad_core::ClientCredential;
use azad_core::ManagedIdentity;
use azad_core::dev::{DevApp, DevTenant};
use azad_core::store::SharedStore;
use azad_core::{Account, AuthorizationRequest, SignInClient};
use azad_core::{AzureAdConfig, TokenError};
use secrecy::ExposeSecret;
use serde_json::Value;

const COOKIE: &str = "azad_session";
/// The purpose of signed-in sessions in the shared store.
const SESSION_PURPOSE: &str = "web_session";
/// A session lives as long as its cookie.
const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// What the shared store keeps of a signed-in session (never a token: those are the sign-in
/// client's entries).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSession {
    account: Account,
    id_token_claims: Value,
}

/// What the web app needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The web app's own base URL (`http://localhost:5000`).
    pub base_url: String,
    /// The protected API's base URL.
    pub api_url: String,
    /// The scope the web app requests for the API (`api://{api client id}/access_as_user`).
    pub api_scope: String,
}

#[derive(Debug, Default)]
struct Session {
    pending: Option<AuthorizationRequest>,
    account: Option<Account>,
    id_token_claims: Option<Value>,
}

#[derive(Clone)]
struct AppState {
    signin: SignInClient,
    settings: Arc<Settings>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    store: Option<SharedStore>,
    http: reqwest::Client,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1 id=\"title\">{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_owned())
    })
}

fn random_id() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl AppState {
    fn secure_cookies(&self) -> bool {
        let b = &self.settings.base_url;
        b.starts_with("https://") || b.starts_with("http://localhost")
    }

    fn cookie(&self, id: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure_cookies() { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"))
            .expect("ASCII cookie")
    }

    async fn account(&self, headers: &HeaderMap) -> Option<Account> {
        self.signed_in(headers).await.map(|(a, _)| a)
    }

    async fn signed_in(&self, headers: &HeaderMap) -> Option<(Account, Value)> {
        let id = session_id(headers)?;
        let known = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .and_then(|s| Some((s.account.clone()?, s.id_token_claims.clone().unwrap_or(Value::Null))));
        if known.is_some() {
            return known;
        }
        // Not in this process's memory: a session from before a restart, or another replica's.
        let plain = self.store.as_ref()?.get(SESSION_PURPOSE, id.as_bytes()).await?;
        let saved: SavedSession = serde_json::from_slice(plain.expose_secret()).ok()?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.entry(id).or_default();
        session.account = Some(saved.account.clone());
        session.id_token_claims = Some(saved.id_token_claims.clone());
        Some((saved.account, saved.id_token_claims))
    }
}

async fn home(State(app): State<AppState>, headers: HeaderMap) -> Html<String> {
    match app.signed_in(&headers).await {
        Some((a, claims)) => page(
            "azad web app",
            &format!(
                "<p id=\"welcome\">Signed in as <b id=\"user-name\">{}</b> ({})</p><ul><li><a id=\"call-api\" href=\"/call-api\">Call the API</a></li><li><a id=\"call-downstream\" href=\"/call-downstream\">Call the API, which calls a downstream API on your behalf</a></li><li><a id=\"sign-out\" href=\"/logout\">Sign out</a></li></ul><h2>Your ID token</h2><table id=\"id-token\">{}</table>",
                escape(a.name()),
                escape(a.username()),
                rows(&claims, "id-")
            ),
        ),
        None => page(
            "azad web app",
            "<p id=\"anonymous\">You are not signed in.</p><p><a id=\"sign-in\" href=\"/login\">Sign in</a></p>",
        ),
    }
}

async fn login(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let request = app.signin.authorization_request(&[&app.settings.api_scope]);
    let id = session_id(&headers)
        .filter(|id| app.sessions.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id))
        .unwrap_or_else(random_id);
    let url = request.url().to_owned();
    app.sessions.lock().unwrap_or_else(|e| e.into_inner()).entry(id.clone()).or_default().pending = Some(request);
    let mut r = Redirect::to(&url).into_response();
    r.headers_mut().insert(header::SET_COOKIE, app.cookie(&id, 8 * 3600));
    r
}

async fn get_a_token(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let Some(id) = session_id(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            page("Sign-in failed", "<p>No session: start again from <a href=\"/login\">sign in</a>.</p>"),
        )
            .into_response();
    };
    let pending = app.sessions.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id).and_then(|s| s.pending.take());
    let Some(pending) = pending else {
        return (StatusCode::BAD_REQUEST, page("Sign-in failed", "<p>No sign-in in progress.</p>")).into_response();
    };
    match app.signin.complete(&pending, query.as_deref().unwrap_or_default()).await {
        Ok(signed_in) => {
            tracing::info!(user = signed_in.account().home_account_id(), "user signed in");
            let claims = serde_json::to_value(signed_in.id_token_claims()).unwrap_or(Value::Null);
            // A new session id once signed in (OWASP: renew the session id after any privilege
            // change): an id planted in the browser before sign-in never becomes signed in.
            let signed_in_id = random_id();
            {
                let mut sessions = app.sessions.lock().unwrap_or_else(|e| e.into_inner());
                let mut session = sessions.remove(&id).unwrap_or_default();
                session.account = Some(signed_in.account().clone());
                session.id_token_claims = Some(claims.clone());
                sessions.insert(signed_in_id.clone(), session);
            }
            if let Some(store) = &app.store {
                let saved = SavedSession { account: signed_in.account().clone(), id_token_claims: claims };
                if let Ok(json) = serde_json::to_vec(&saved) {
                    store.put(SESSION_PURPOSE, signed_in_id.as_bytes(), &json, SESSION_LIFETIME).await;
                }
            }
            let mut r = Redirect::to("/").into_response();
            r.headers_mut().insert(header::SET_COOKIE, app.cookie(&signed_in_id, 8 * 3600));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            (
                StatusCode::BAD_REQUEST,
                page("Sign-in failed", &format!("<p id=\"error\">{}</p>", escape(&e.to_string()))),
            )
                .into_response()
        }
    }
}

/// Calls the API with a token acquired silently for the signed-in user.
async fn call(app: &AppState, headers: &HeaderMap, path: &str) -> Result<(u16, Value), Response> {
    let Some(account) = app.account(headers).await else {
        return Err(Redirect::to("/login").into_response());
    };
    let token = match app.signin.acquire_token_silent(&account, &[&app.settings.api_scope]).await {
        Ok(t) => t,
        Err(TokenError::SignInRequired(_)) => return Err(Redirect::to("/login").into_response()),
        Err(e) => {
            tracing::warn!(error = %e, "no token for the API");
            return Err((StatusCode::BAD_GATEWAY, page("No token", "<p>Could not get a token for the API.</p>"))
                .into_response());
        }
    };
    let response =
        app.http.get(format!("{}{path}", app.settings.api_url)).bearer_auth(token.secret()).send().await.map_err(
            |_| (StatusCode::BAD_GATEWAY, page("API unreachable", "<p>The API did not answer.</p>")).into_response(),
        )?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

fn rows(value: &Value, prefix: &str) -> String {
    let Value::Object(map) = value else { return String::new() };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("<tr><th>{}</th><td id=\"{prefix}{}\">{}</td></tr>", escape(k), escape(k), escape(&text))
        })
        .collect()
}

async fn call_api(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match call(&app, &headers, "/api/claims").await {
        Ok((status, claims)) => page(
            "Claims from the API",
            &format!(
                "<p id=\"api-status\">GET /api/claims answered {status}</p><table id=\"claims\">{}</table><p><a href=\"/\">Home</a></p>",
                rows(&claims, "claim-")
            ),
        )
        .into_response(),
        Err(r) => r,
    }
}

async fn call_downstream(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match call(&app, &headers, "/api/downstream").await {
        Ok((status, body)) => page(
            "Three hops",
            &format!(
                "<p id=\"api-status\">GET /api/downstream answered {status}</p><h2>The API saw</h2><table>{}</table><h2>The downstream API saw</h2><table>{}</table><p><a href=\"/\">Home</a></p>",
                rows(&body["caller"], "caller-"),
                rows(&body["downstream"], "downstream-")
            ),
        )
        .into_response(),
        Err(r) => r,
    }
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let account = app.account(&headers).await;
    if let Some(id) = session_id(&headers) {
        app.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        if let Some(store) = &app.store {
            store.delete(SESSION_PURPOSE, id.as_bytes()).await;
        }
    }
    let target = match account {
        Some(account) => app.signin.sign_out(&account, &format!("{}/", app.settings.base_url)),
        None => "/".to_owned(),
    };
    let mut r = Redirect::to(&target).into_response();
    r.headers_mut().insert(header::SET_COOKIE, app.cookie("", 0));
    r
}

/// The web app's routes.
pub fn router(signin: SignInClient, settings: Settings) -> Router {
    router_with_store(signin, settings, None)
}

/// The web app's routes, keeping signed-in sessions in `store` too (give the sign-in client
/// the same store: [`SignInClient::with_token_store`]), so that they survive a restart.
pub fn router_with_store(signin: SignInClient, settings: Settings, store: Option<SharedStore>) -> Router {
    let state = AppState {
        signin,
        settings: Arc::new(settings),
        sessions: Arc::default(),
        store,
        http: reqwest::Client::new(),
    };
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/getAToken", get(get_a_token))
        .route("/call-api", get(call_api))
        .route("/call-downstream", get(call_downstream))
        .route("/logout", get(logout))
        .with_state(state)
}

/// How the web app proves its identity to Entra: the point of the walkthrough is that it
/// needs no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A managed identity's token as federated credential (no secret anywhere).
    ManagedIdentity,
    /// A client secret (the classic setup), to show the difference.
    ClientSecret,
}

/// Registers the web app in the dev tenant (redirect URI `{base_url}/getAToken`) with the chosen
/// credential, and returns its configuration and credential.
///
/// # Panics
///
/// Never: the dev tenant's values are valid.
#[must_use]
pub fn register(dev: &DevTenant, base_url: &str, kind: CredentialKind) -> (AzureAdConfig, ClientCredential) {
    let app = DevApp::new("azad web app (walkthrough)").redirect_uri(format!("{base_url}/getAToken"));
    dev.register_app(app.clone());
    let config = dev.config_builder().client_id(&app.client_id).build().expect("valid dev configuration");
    let credential = match kind {
        CredentialKind::ManagedIdentity => {
            // The app registration trusts the managed identity: issuer and subject (its object id).
            let identity = &dev.managed_identities()[0];
            dev.add_federated_credential(&app.client_id, &dev.issuer(), &identity.object_id);
            ClientCredential::managed_identity_federation(ManagedIdentity::imds(dev.imds_endpoint()))
        }
        CredentialKind::ClientSecret => ClientCredential::secret(dev.add_client_secret(&app.client_id)),
    };
    (config, credential)
}

/// A minimal scripted browser over HTTP: follows redirects across the web app and the dev
/// tenant, keeping cookies per host. For `--check` and the end-to-end tests (the real-browser
/// test uses Chromium).
#[derive(Debug, Default)]
pub struct ScriptedBrowser {
    cookies: HashMap<String, HashMap<String, String>>,
    http: Option<reqwest::Client>,
}

impl ScriptedBrowser {
    /// A browser with an empty cookie jar.
    #[must_use]
    pub fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().ok();
        Self { cookies: HashMap::new(), http }
    }

    /// `GET url`, following redirects; returns the final URL, status and body.
    ///
    /// # Errors
    ///
    /// A transport error, as text.
    pub async fn get(&mut self, url: &str) -> Result<(String, u16, String), String> {
        let http = self.http.clone().ok_or("no HTTP client")?;
        let mut url = url.to_owned();
        for _ in 0..10 {
            let parsed = reqwest::Url::parse(&url).map_err(|e| e.to_string())?;
            let host = parsed.host_str().unwrap_or_default().to_owned();
            let mut request = http.get(parsed.clone());
            if let Some(jar) = self.cookies.get(&host).filter(|j| !j.is_empty()) {
                let cookie = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
                request = request.header(header::COOKIE, cookie);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            for set in response.headers().get_all(header::SET_COOKIE) {
                let Some((pair, attrs)) = set.to_str().ok().map(|s| s.split_once(';').unwrap_or((s, ""))) else {
                    continue;
                };
                let Some((k, v)) = pair.split_once('=') else { continue };
                let jar = self.cookies.entry(host.clone()).or_default();
                if v.is_empty() || attrs.contains("Max-Age=0") {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or("redirect without Location")?;
                url = parsed.join(location).map_err(|e| e.to_string())?.to_string();
                continue;
            }
            return Ok((url, status, response.text().await.map_err(|e| e.to_string())?));
        }
        Err("too many redirects".into())
    }
}
