//! Signing users in: the authorization code flow with PKCE (S256), `state` and `nonce` for web
//! apps; silent acquisition of access tokens from refresh tokens; and the device code flow for
//! command-line clients.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::application::Application;
use crate::client::cache::{AcquiredToken, TokenCache};
use crate::client::credential::ClientCredential;
use crate::client::token::{GrantRequest, TokenClient};
use crate::config::AzureAdConfig;
use crate::error::{TokenError, ValidationError};
use crate::secret::{BearerToken, RefreshToken};
use crate::validation::claims::Claims;
use crate::validation::validator::TokenValidator;

const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

fn random_b64(bytes: usize) -> String {
    let mut b = [0u8; 64];
    aws_lc_rs::rand::fill(&mut b[..bytes]).expect("system randomness");
    URL_SAFE_NO_PAD.encode(&b[..bytes])
}

/// A pending sign-in: the authorization URL to send the browser to, and what the callback
/// must be checked against. Keep it server-side (in the session) until the callback.
#[derive(Clone)]
pub struct AuthorizationRequest {
    url: String,
    state: String,
    nonce: String,
    code_verifier: BearerToken,
    scopes: Vec<String>,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// Where to redirect the browser.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `state` sent (checked on the callback).
    #[must_use]
    pub fn state(&self) -> &str {
        &self.state
    }
}

/// A signed-in user, as the web app remembers them (in its session).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    home_account_id: String,
    username: String,
    name: String,
    tenant_id: String,
    object_id: String,
}

impl Account {
    /// `{oid}.{tid}`: the stable key of this user.
    #[must_use]
    pub fn home_account_id(&self) -> &str {
        &self.home_account_id
    }

    /// The sign-in name (`preferred_username`).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The display name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant id.
    #[must_use]
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The object id.
    #[must_use]
    pub fn object_id(&self) -> &str {
        &self.object_id
    }
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    account: Account,
    id_token_claims: Arc<Claims>,
}

impl SignedIn {
    /// The account, to keep in the session.
    #[must_use]
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The validated claims of the ID token.
    #[must_use]
    pub fn id_token_claims(&self) -> &Claims {
        &self.id_token_claims
    }
}

/// Signing in failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The authorization server redirected back with an error (the user cancelled, consent was
    /// refused...).
    #[error("sign-in failed: {error}")]
    Authorization {
        /// The OAuth error code.
        error: String,
        /// Its description.
        description: Option<String>,
    },
    /// The callback's `state` is not the one sent: a forged or replayed callback.
    #[error("the sign-in callback does not match the pending request (state)")]
    StateMismatch,
    /// The callback carries no code.
    #[error("the sign-in callback carries no authorization code")]
    MissingCode,
    /// The token endpoint refused the code (or the device code).
    #[error("redeeming the authorization failed")]
    Token(#[source] TokenError),
    /// The ID token is missing or invalid.
    #[error("the ID token is invalid")]
    IdToken(#[source] ValidationError),
    /// The ID token's `nonce` is not the one sent.
    #[error("the ID token does not match the pending request (nonce)")]
    NonceMismatch,
    /// The device code expired before the user signed in.
    #[error("the device code expired before the user signed in")]
    DeviceCodeExpired,
    /// The user declined the device code sign-in.
    #[error("the user declined the sign-in")]
    Declined,
}

/// The device code a command-line client shows its user.
#[derive(Clone)]
pub struct DeviceCode {
    device_code: BearerToken,
    user_code: String,
    verification_uri: String,
    message: String,
    interval: Duration,
    expires_in: Duration,
    scopes: Vec<String>,
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

impl DeviceCode {
    /// The code the user types.
    #[must_use]
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user types it.
    #[must_use]
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The instructions to show.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
    expires_in: u64,
}

/// A web app (or command-line client) signing users in and acquiring tokens for them.
///
/// Signing users in: the authorization code flow with PKCE (S256), `state` and `nonce` for web
/// apps; silent acquisition of access tokens from refresh tokens; and the device code flow for
/// command-line clients.
///
/// The web app keeps the [`AuthorizationRequest`] (in its server-side session) between the
/// redirect to Entra and the callback, and the [`Account`] after sign-in; the tokens stay in the
/// [`SignInClient`]'s caches.
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::ClientCredential;
/// use azad_core::dev::{DevApp, DevTenant};
/// use azad_core::SignInClient;
///
/// let web_app = DevApp::new("web").redirect_uri("http://localhost:5000/getAToken");
/// let tenant = DevTenant::builder().app(web_app.clone()).start().await?;
/// let secret = tenant.add_client_secret(&web_app.client_id);
/// let config = tenant.config_builder().client_id(&web_app.client_id).build()?;
/// let client = SignInClient::new(&config, ClientCredential::secret(secret), "http://localhost:5000/getAToken");
///
/// // 1. Redirect the browser to `request.url()`, keeping `request` in the session.
/// let api_scope = format!("api://{}/access_as_user", tenant.api_client_id());
/// let request = client.authorization_request(&[&api_scope]);
/// # let callback = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?
/// #     .get(request.url()).send().await?.headers()["location"].to_str()?.to_owned();
/// # let query = callback.split_once('?').unwrap().1;
/// // 2. On the redirect back, complete the sign-in with the callback's query string.
/// let signed_in = client.complete(&request, query).await?;
/// assert_eq!(signed_in.account().name(), "Dev User");
///
/// // 3. Later, tokens for the signed-in user, from the cache or a refresh token.
/// let token = client.acquire_token_silent(signed_in.account(), &[&api_scope]).await?;
/// assert!(!token.secret().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SignInClient {
    tokens: TokenClient,
    application: Application,
    redirect_uri: String,
    id_tokens: TokenValidator,
    refresh_tokens: moka::sync::Cache<String, RefreshToken>,
    cache: Arc<TokenCache<[u8; 32]>>,
    /// Refresh tokens in the shared store ([`SignInClient::with_token_store`]).
    shared_refresh_tokens: Option<crate::store::tokens::SharedRefreshTokens>,
}

impl fmt::Debug for SignInClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInClient")
            .field("client", &self.tokens)
            .field("redirect_uri", &self.redirect_uri)
            .field("accounts", &self.refresh_tokens.entry_count())
            .finish()
    }
}

impl SignInClient {
    /// A client for the application of `config` (its authority and client id), authenticating
    /// with `credential` ([`ClientCredential::public_client`] for public clients), redirecting
    /// back to `redirect_uri`.
    ///
    /// # Panics
    ///
    /// Never: the ID-token validator is derived from a configuration already validated.
    #[must_use]
    pub fn new(config: &AzureAdConfig, credential: ClientCredential, redirect_uri: impl Into<String>) -> Self {
        Self {
            tokens: TokenClient::new(config, credential),
            application: config.application(),
            redirect_uri: redirect_uri.into(),
            // ID tokens are for this app (aud = client id) and carry no scopes.
            id_tokens: TokenValidator::for_id_tokens(config.clone()),
            refresh_tokens: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(90 * 24 * 3600))
                .build(),
            cache: Arc::new(TokenCache::new(100_000)),
            shared_refresh_tokens: None,
        }
    }

    /// Puts a shared level behind this client's in-memory caches of signed-in users' refresh
    /// tokens and access tokens: a web app restarted (or another replica) with the same
    /// [`SharedStore`] backend, namespace and sealing key finds the user's tokens again, so the
    /// user stays signed in as long as the web app still knows the [`Account`] (in its session
    /// store). The store failing or slow never fails a call (memory only). See
    /// [`store`](crate::store).
    ///
    /// [`SharedStore`]: crate::store::SharedStore
    #[must_use]
    pub fn with_token_store(mut self, store: crate::store::SharedStore) -> Self {
        use crate::store::tokens::{SharedRefreshTokens, SharedTokens, purpose};
        let mut cache = TokenCache::new(100_000);
        cache.shared = Some(Arc::new(SharedTokens::new(store.clone(), purpose::USER_TOKEN)));
        self.cache = Arc::new(cache);
        self.shared_refresh_tokens = Some(SharedRefreshTokens::new(store));
        self
    }

    /// The account's refresh token: from memory, else from the shared store.
    async fn refresh_token(&self, account: &Account) -> Option<RefreshToken> {
        if let Some(rt) = self.refresh_tokens.get(&account.home_account_id) {
            return Some(rt);
        }
        let rt = Box::pin(self.shared_refresh_tokens.as_ref()?.load(&self.account_key(account, &[]))).await?;
        self.refresh_tokens.insert(account.home_account_id.clone(), rt.clone());
        Some(rt)
    }

    /// Keeps the account's refresh token in memory and in the shared store.
    async fn keep_refresh_token(&self, account: &Account, rt: RefreshToken) {
        if let Some(shared) = &self.shared_refresh_tokens {
            Box::pin(shared.save(&self.account_key(account, &[]), &rt)).await;
        }
        self.refresh_tokens.insert(account.home_account_id.clone(), rt);
    }

    /// Uses another HTTP client for the token endpoint.
    #[must_use]
    pub fn with_http_client(mut self, http: Arc<dyn crate::http::HttpClient>) -> Self {
        self.tokens = self.tokens.with_http_client(http);
        self
    }

    fn with_oidc_scopes(scopes: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for s in scopes {
            if !all.iter().any(|a| a == s) {
                all.push((*s).to_owned());
            }
        }
        all
    }

    /// Starts a sign-in: a fresh `state`, `nonce` and PKCE verifier, and the authorization URL
    /// for `scopes` (plus `openid profile offline_access`).
    ///
    /// # Panics
    ///
    /// Never for Entra authorities; non-Entra authorities have no authorization URL here.
    #[must_use]
    pub fn authorization_request(&self, scopes: &[&str]) -> AuthorizationRequest {
        let state = random_b64(24);
        let nonce = random_b64(24);
        let verifier = random_b64(48);
        let challenge =
            URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
        let scopes = Self::with_oidc_scopes(scopes);
        let endpoint = self.application.authority().authorize_endpoint().unwrap_or_default();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", self.application.client_id())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        AuthorizationRequest {
            url: format!("{endpoint}?{}", query.finish()),
            state,
            nonce,
            code_verifier: BearerToken::new(verifier),
            scopes,
        }
    }

    /// Completes a sign-in from the callback's query string: checks `state`, redeems the code
    /// with the PKCE verifier, validates the ID token (signature, issuer, audience, expiry,
    /// `nonce`) and keeps the tokens for [`acquire_token_silent`](Self::acquire_token_silent).
    ///
    /// # Errors
    ///
    /// A [`SignInError`].
    pub async fn complete(
        &self,
        request: &AuthorizationRequest,
        callback_query: &str,
    ) -> Result<SignedIn, SignInError> {
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(callback_query.trim_start_matches('?').as_bytes()).into_owned().collect();
        // The state is checked first, so a forged callback never reaches the token endpoint.
        let state_ok = params.get("state").is_some_and(|s| {
            s.len() == request.state.len()
                && aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), request.state.as_bytes()).is_ok()
        });
        if !state_ok {
            return Err(SignInError::StateMismatch);
        }
        if let Some(error) = params.get("error") {
            return Err(SignInError::Authorization {
                error: error.clone(),
                description: params.get("error_description").cloned(),
            });
        }
        let code = params.get("code").ok_or(SignInError::MissingCode)?;
        let endpoint = self
            .application
            .authority()
            .token_endpoint()
            .ok_or(SignInError::Token(TokenError::Configuration("no token endpoint")))?;
        let scope = request.scopes.join(" ");
        let grant = self
            .tokens
            .post_grant(&GrantRequest {
                endpoint: &endpoint,
                throttle_key: random_key(),
                grant: "authorization_code",
                params: &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &self.redirect_uri),
                    ("code_verifier", request.code_verifier.secret()),
                    ("scope", &scope),
                ],
                nonce: Some(&request.nonce),
            })
            .await
            .map_err(SignInError::Token)?;
        self.signed_in(grant, Some(&request.nonce), &request.scopes).await
    }

    async fn signed_in(
        &self,
        grant: crate::client::wire::TokenGrant,
        nonce: Option<&str>,
        scopes: &[String],
    ) -> Result<SignedIn, SignInError> {
        let id_token = grant.id_token.ok_or(SignInError::IdToken(ValidationError::MissingClaim("id_token")))?;
        let claims = self.id_tokens.validate(id_token.secret()).await.map_err(SignInError::IdToken)?;
        if let Some(nonce) = nonce
            && claims.get("nonce").and_then(serde_json::Value::as_str) != Some(nonce)
        {
            return Err(SignInError::NonceMismatch);
        }
        let (Some(oid), Some(tid)) = (claims.object_id(), claims.tenant_id()) else {
            return Err(SignInError::IdToken(ValidationError::MissingClaim("oid")));
        };
        let account = Account {
            home_account_id: format!("{oid}.{tid}"),
            username: claims.preferred_username().unwrap_or_default().to_owned(),
            name: claims.name().unwrap_or_default().to_owned(),
            tenant_id: tid.to_owned(),
            object_id: oid.to_owned(),
        };
        if let Some(rt) = grant.refresh_token {
            self.keep_refresh_token(&account, rt).await;
        }
        let api_scopes: Vec<&str> = scopes.iter().map(String::as_str).filter(|s| !OIDC_SCOPES.contains(s)).collect();
        if !api_scopes.is_empty() {
            let key = self.account_key(&account, &api_scopes);
            let token = grant.token;
            let _ = self.cache.get_or_fetch(key, true, || async move { Ok(token) }).await;
        }
        Ok(SignedIn { account, id_token_claims: claims })
    }

    fn account_key(&self, account: &Account, scopes: &[&str]) -> [u8; 32] {
        let authority = self.application.authority().url();
        crate::client::token::cache_key(
            &authority,
            self.application.client_id(),
            Some(account.home_account_id.as_bytes()),
            scopes,
        )
    }

    /// An access token for the signed-in `account`: from the cache when fresh, else from its
    /// refresh token (refreshed ahead of expiry, one request per user and scopes).
    ///
    /// # Errors
    ///
    /// [`TokenError::SignInRequired`] when no refresh token is held for the account (sign the
    /// user in again), or the token endpoint's error (`invalid_grant`: sign in again).
    pub async fn acquire_token_silent(&self, account: &Account, scopes: &[&str]) -> Result<AcquiredToken, TokenError> {
        if scopes.is_empty() {
            return Err(TokenError::Configuration("no scopes requested"));
        }
        let key = self.account_key(account, scopes);
        let fetched = std::sync::atomic::AtomicBool::new(false);
        let fetch = || {
            fetched.store(true, std::sync::atomic::Ordering::Relaxed);
            self.redeem_refresh_token(account, scopes)
        };
        let token = self.cache.get_or_fetch(key, false, fetch).await;
        let hit = !fetched.load(std::sync::atomic::Ordering::Relaxed);
        self.tokens.metrics().cache(crate::metrics::AcquiredCache::SignedInUser, hit);
        Ok((*token?).clone())
    }

    async fn redeem_refresh_token(&self, account: &Account, scopes: &[&str]) -> Result<AcquiredToken, TokenError> {
        let rt =
            self.refresh_token(account).await.ok_or(TokenError::SignInRequired("no refresh token for this account"))?;
        let endpoint =
            self.application.authority().token_endpoint().ok_or(TokenError::Configuration("no token endpoint"))?;
        let scope = Self::with_oidc_scopes(scopes).join(" ");
        let grant = self
            .tokens
            .post_grant(&GrantRequest {
                endpoint: &endpoint,
                throttle_key: random_key(),
                grant: "refresh_token",
                params: &[("grant_type", "refresh_token"), ("refresh_token", rt.secret()), ("scope", &scope)],
                nonce: None,
            })
            .await;
        match grant {
            Ok(grant) => {
                if let Some(new) = grant.refresh_token {
                    self.keep_refresh_token(account, new).await;
                }
                Ok(grant.token)
            }
            Err(e) => {
                if e.entra().is_some_and(crate::EntraError::is_invalid_grant) {
                    // A revoked or expired refresh token: the user must sign in again.
                    self.refresh_tokens.invalidate(&account.home_account_id);
                    if let Some(shared) = &self.shared_refresh_tokens {
                        Box::pin(shared.delete(&self.account_key(account, &[]))).await;
                    }
                }
                Err(e)
            }
        }
    }

    /// Forgets the account's tokens and returns the authority's sign-out URL, which sends the
    /// browser back to `post_logout_redirect_uri`.
    #[must_use]
    pub fn sign_out(&self, account: &Account, post_logout_redirect_uri: &str) -> String {
        self.refresh_tokens.invalidate(&account.home_account_id);
        // The shared copy too (in the background: this method is synchronous).
        if let (Some(shared), Ok(runtime)) = (&self.shared_refresh_tokens, tokio::runtime::Handle::try_current()) {
            let (shared, key) = (shared.clone(), self.account_key(account, &[]));
            runtime.spawn(async move { shared.delete(&key).await });
        }
        let endpoint = self.application.authority().logout_endpoint().unwrap_or_default();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        query.append_pair("logout_hint", &account.username);
        format!("{endpoint}?{}", query.finish())
    }

    /// Starts the device code flow (command-line clients): show the user
    /// [`DeviceCode::message`], then call [`complete_device_code`](Self::complete_device_code).
    ///
    /// # Errors
    ///
    /// The token endpoint's error.
    pub async fn start_device_code(&self, scopes: &[&str]) -> Result<DeviceCode, TokenError> {
        let endpoint = self
            .application
            .authority()
            .device_code_endpoint()
            .ok_or(TokenError::Configuration("no device code endpoint"))?;
        let scopes = Self::with_oidc_scopes(scopes);
        let scope = scopes.join(" ");
        let request = crate::client::wire::form_request(
            &endpoint,
            &[("client_id", self.application.client_id()), ("scope", scope.as_str())],
        )?;
        let http = self.application.http_client().ok_or(TokenError::Configuration("no HTTP transport"))?;
        let response = http.send(request).await.map_err(TokenError::Request)?;
        if response.status() != http::StatusCode::OK {
            return Err(crate::client::wire::parse_token_response(&response)
                .err()
                .unwrap_or(TokenError::Configuration("unexpected answer")));
        }
        let r: DeviceCodeResponse = serde_json::from_slice(response.body()).map_err(|e| TokenError::Parse {
            endpoint: crate::error::IdentityEndpoint::TokenEndpoint,
            status: 200,
            reason: e.to_string(),
            body: crate::client::wire::redact_body(response.body()),
        })?;
        Ok(DeviceCode {
            device_code: BearerToken::new(r.device_code),
            message: r
                .message
                .unwrap_or_else(|| format!("Open {} and enter the code {}", r.verification_uri, r.user_code)),
            user_code: r.user_code,
            verification_uri: r.verification_uri,
            interval: Duration::from_secs(r.interval.unwrap_or(5).max(1)),
            expires_in: Duration::from_secs(r.expires_in),
            scopes,
        })
    }

    /// Polls until the user completes (or declines) the device code sign-in, at the interval
    /// the server asks (slowing down when told to).
    ///
    /// # Errors
    ///
    /// [`SignInError::DeviceCodeExpired`], [`SignInError::Declined`], or the token endpoint's
    /// error.
    pub async fn complete_device_code(&self, device: &DeviceCode) -> Result<SignedIn, SignInError> {
        let endpoint = self
            .application
            .authority()
            .token_endpoint()
            .ok_or(SignInError::Token(TokenError::Configuration("no token endpoint")))?;
        let deadline = tokio::time::Instant::now() + device.expires_in;
        let mut interval = device.interval;
        loop {
            tokio::time::sleep(interval).await;
            if tokio::time::Instant::now() > deadline {
                return Err(SignInError::DeviceCodeExpired);
            }
            let grant = self
                .tokens
                .post_grant(&GrantRequest {
                    endpoint: &endpoint,
                    throttle_key: random_key(),
                    grant: "device_code",
                    params: &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", device.device_code.secret()),
                    ],
                    nonce: None,
                })
                .await;
            match grant {
                Ok(grant) => return self.signed_in(grant, None, &device.scopes).await,
                Err(TokenError::ServerResponse(e)) => match e.error.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => interval += Duration::from_secs(5),
                    "expired_token" => return Err(SignInError::DeviceCodeExpired),
                    "authorization_declined" | "access_denied" => return Err(SignInError::Declined),
                    _ => return Err(SignInError::Token(TokenError::ServerResponse(e))),
                },
                Err(e) => return Err(SignInError::Token(e)),
            }
        }
    }
}

/// Sign-in grants are never throttled as a group: each request gets its own key.
fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    aws_lc_rs::rand::fill(&mut k).expect("system randomness");
    k
}
