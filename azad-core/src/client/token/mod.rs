//! The token client: client credentials (app tokens) and on-behalf-of (user tokens for
//! downstream APIs), with caches, retries and throttling.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::application::Application;
use crate::authority::{Authority, Tenant, is_guid};
use crate::client::cache::{AcquiredToken, TokenCache};
use crate::client::credential::ClientCredential;
use crate::client::wire::{JWT_BEARER_GRANT, TokenGrant, form_request, parse_token_response};
use crate::config::AzureAdConfig;
use crate::error::{OboRefusal, TokenError};
use crate::http::HttpClient;
use crate::secret::BearerToken;
use crate::validation::claims::Claims;

pub(crate) mod request;

use request::TokenRequest;

/// Retry and throttling policy of the token client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRetryPolicy {
    /// Delay before the one retry of a 5xx or a timeout (default 1 s).
    pub retry_delay: Duration,
    /// Cap on a `Retry-After` window: the local throttling window, and the `Retry-After`
    /// passed on to callers (default [`MAX_RETRY_AFTER`](crate::challenge::MAX_RETRY_AFTER),
    /// 60 s; answers never carry more than that).
    pub max_retry_after: Duration,
}

impl Default for TokenRetryPolicy {
    fn default() -> Self {
        Self { retry_delay: Duration::from_secs(1), max_retry_after: crate::challenge::MAX_RETRY_AFTER }
    }
}

struct Inner {
    authority: Authority,
    client_id: String,
    audiences: Vec<String>,
    credential: ClientCredential,
    http: Option<Arc<dyn HttpClient>>,
    token_endpoint: Option<String>,
    default_endpoint: Option<String>,
    retry: TokenRetryPolicy,
    cache_enabled: bool,
    app_cache: TokenCache<[u8; 32]>,
    obo_cache: TokenCache<[u8; 32]>,
    throttled: moka::sync::Cache<[u8; 32], Instant>,
    client_capabilities: Vec<String>,
    /// Metric handles (feature `metrics`; nothing otherwise).
    metrics: crate::metrics::TokenMetrics,
    /// The shared level of both caches ([`TokenClient::with_token_store`]).
    token_store: Option<crate::store::SharedStore>,
}

impl Inner {
    fn attach_store(&mut self, store: crate::store::SharedStore) {
        use crate::store::tokens::{SharedTokens, purpose};
        self.app_cache.shared = Some(Arc::new(SharedTokens::new(store.clone(), purpose::APP_TOKEN)));
        self.obo_cache.shared = Some(Arc::new(SharedTokens::new(store.clone(), purpose::ON_BEHALF_OF)));
        self.token_store = Some(store);
    }
}

/// A confidential client: this API (or daemon, or web app) acquiring tokens by client
/// credentials (app tokens) and on-behalf-of (user tokens for downstream APIs), with caches,
/// retries and throttling. Cheap to clone; clones share caches. The `with_*` methods
/// consume the client and return a reconfigured one with caches of its own: call them while
/// building it.
///
/// - App tokens are cached by authority, client and scopes; on-behalf-of tokens by a SHA-256 of
///   the incoming assertion and the sorted scopes (never by user alone: two tokens of one user
///   may carry different scopes or claims).
/// - Refreshed ahead of expiry; one request per key however many callers wait.
/// - A request with a claims challenge bypasses the cache.
/// - 5xx and timeouts are retried once after about a second; 429 and 503 with `Retry-After`
///   throttle identical requests locally until the window passes (capped); `invalid_grant`,
///   `invalid_client` and other 4xx are never retried.
/// - On-behalf-of is refused without a network call for an expired incoming token, an app-only
///   token, or a token not issued for this API.
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::ClientCredential;
/// use azad_core::dev::DevTenant;
/// use azad_core::TokenClient;
/// use azad_core::BearerToken;
///
/// let tenant = DevTenant::start().await?;
/// let api = TokenClient::new(&tenant.config(), ClientCredential::secret(tenant.api_client_secret()));
///
/// // As the application (client credentials).
/// let app = api.acquire_app_token(&["api://azad-downstream/.default"]).await?;
/// assert!(!app.secret().is_empty());
///
/// // As the signed-in user (on-behalf-of), from the token the API received.
/// let incoming = BearerToken::new(tenant.token().build());
/// let obo = api.acquire_on_behalf_of(&incoming, &["api://azad-downstream/Data.Read"]).await?;
/// assert_ne!(obo.secret(), incoming.secret());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("authority", &self.inner.authority.url())
            .field("client_id", &self.inner.client_id)
            .field("credential", &self.inner.credential)
            .finish_non_exhaustive()
    }
}

use crate::clock::now_secs;

/// The cache (and throttling) key: a SHA-256 of the token endpoint, the client, the subject
/// (the SHA-256 of the incoming assertion for on-behalf-of, see [`BearerToken`]'s digest; the
/// account for silent sign-in tokens) and the sorted, deduplicated scopes. On-behalf-of tokens
/// are never keyed by the user alone: two incoming tokens of one user may carry different
/// scopes or claims. Every part is length-prefixed, so no two different requests share a key
/// (whatever bytes a scope holds).
///
/// No allocation for up to 8 scopes: a cache hit of the on-behalf-of path runs this on every
/// call.
pub(crate) fn cache_key<S: AsRef<str>>(
    endpoint: &str,
    client_id: &str,
    subject: Option<&[u8]>,
    scopes: &[S],
) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    part(endpoint.as_bytes());
    part(client_id.as_bytes());
    part(subject.unwrap_or_default());
    let mut on_stack = [""; 8];
    let mut on_heap = Vec::new();
    let sorted: &mut [&str] = if scopes.len() <= on_stack.len() {
        for (slot, scope) in on_stack.iter_mut().zip(scopes) {
            *slot = scope.as_ref();
        }
        &mut on_stack[..scopes.len()]
    } else {
        on_heap.extend(scopes.iter().map(AsRef::as_ref));
        &mut on_heap
    };
    sorted.sort_unstable();
    let mut previous = None;
    for scope in sorted.iter() {
        if previous != Some(*scope) {
            part(scope.as_bytes());
            previous = Some(*scope);
        }
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// The `claims` parameter of a token request: the client capabilities
/// (`{"access_token":{"xms_cc":{"values":[...]}}}`) merged into the claims challenge, as MSAL
/// merges them. A challenge that is not a JSON object is sent as it is.
pub(crate) fn merge_claims(capabilities: &[String], challenge: Option<&str>) -> Option<String> {
    if capabilities.is_empty() {
        return challenge.map(str::to_owned);
    }
    let mut request = match challenge.map(serde_json::from_str::<serde_json::Value>) {
        None => serde_json::json!({}),
        Some(Ok(v @ serde_json::Value::Object(_))) => v,
        Some(_) => return challenge.map(str::to_owned),
    };
    let access_token = request
        .as_object_mut()
        .map(|o| o.entry("access_token").or_insert_with(|| serde_json::json!({})))
        .filter(|a| a.is_object());
    if let Some(serde_json::Value::Object(at)) = access_token {
        at.insert("xms_cc".into(), serde_json::json!({ "values": capabilities }));
    }
    Some(request.to_string())
}

#[cfg(test)]
mod merge_claims_tests {
    use super::merge_claims;

    #[test]
    fn capabilities_merge_into_a_claims_challenge() {
        let cp1 = ["cp1".to_owned()];
        assert_eq!(merge_claims(&[], None), None);
        assert_eq!(merge_claims(&[], Some("{}")).as_deref(), Some("{}"));
        assert_eq!(merge_claims(&cp1, None).as_deref(), Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#));
        let merged = merge_claims(&cp1, Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["access_token"]["acrs"]["value"], "c1");
        assert_eq!(v["access_token"]["xms_cc"]["values"][0], "cp1");
        let id_token_only = merge_claims(&cp1, Some(r#"{"id_token":{"auth_time":{"essential":true}}}"#)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&id_token_only).unwrap();
        assert!(v["id_token"]["auth_time"]["essential"].as_bool().unwrap());
        assert_eq!(v["access_token"]["xms_cc"]["values"][0], "cp1");
        assert_eq!(merge_claims(&cp1, Some("not json")).as_deref(), Some("not json"));
    }
}

/// One grant posted to the token endpoint by [`TokenClient::post_grant`]: the grant's own
/// form parameters (the client's id and proof are added per attempt).
#[derive(Clone, Copy)]
pub(crate) struct GrantRequest<'a> {
    /// The token endpoint.
    pub(crate) endpoint: &'a str,
    /// Identical requests share a throttling window under this key (see [`cache_key`]).
    pub(crate) throttle_key: [u8; 32],
    /// The grant's name, for logs and metrics (`client_credentials`, `on_behalf_of`…).
    pub(crate) grant: &'static str,
    /// The grant's form parameters.
    pub(crate) params: &'a [(&'a str, &'a str)],
    /// For a sign-in whose ID token must carry this `nonce`: it travels with the request as an
    /// in-process [`ExpectedNonce`](crate::http::ExpectedNonce) extension (never sent), for the
    /// simulation layer's replay.
    pub(crate) nonce: Option<&'a str>,
}

impl TokenClient {
    /// A client for the application of `config` (its authority and client id; its audiences
    /// identify incoming tokens for on-behalf-of), authenticating with `credential`.
    #[must_use]
    pub fn new(config: &AzureAdConfig, credential: ClientCredential) -> Self {
        Self::for_application(&config.application(), credential)
    }

    /// A client for `application` (its authority and client id; its API's audiences, if any,
    /// identify incoming tokens for on-behalf-of), authenticating with `credential`: for a
    /// client-only application such as a daemon (see [`Application::from_env`]).
    #[must_use]
    pub fn for_application(app: &Application, credential: ClientCredential) -> Self {
        let mut client = Self::with_parts(
            app.authority().clone(),
            app.client_id().to_owned(),
            app.api_audiences().to_vec(),
            credential,
            app.http_client(),
        );
        if !app.token_cache_enabled() {
            Arc::get_mut(&mut client.inner).expect("fresh client").cache_enabled = false;
        }
        client
    }

    /// A client for the application of `config`, authenticating with the credential the
    /// configuration names ([`AzureAdConfig::client_credential`]: `AZURE_CLIENT_SECRET`,
    /// `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE` or
    /// `AZURE_USE_MANAGED_IDENTITY`, see [`AzureAdConfig::from_env`]).
    ///
    /// # Errors
    ///
    /// [`TokenError::Configuration`] when the configuration names no credential.
    pub fn from_config(config: &AzureAdConfig) -> Result<Self, TokenError> {
        let credential = config.client_credential().ok_or(TokenError::Configuration(
            "no application credential configured (AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE or AZURE_USE_MANAGED_IDENTITY)",
        ))?;
        let credential = match config.managed_identity() {
            Some(identity) => ClientCredential::managed_identity_federation(identity),
            None => credential,
        };
        Ok(Self::new(config, credential))
    }

    fn with_parts(
        authority: Authority,
        client_id: String,
        audiences: Vec<String>,
        credential: ClientCredential,
        http: Option<Arc<dyn HttpClient>>,
    ) -> Self {
        let default_endpoint = authority.token_endpoint();
        Self {
            inner: Arc::new(Inner {
                authority,
                client_id,
                audiences,
                credential,
                http,
                token_endpoint: None,
                default_endpoint,
                retry: TokenRetryPolicy::default(),
                cache_enabled: true,
                app_cache: TokenCache::new(10_000),
                obo_cache: TokenCache::new(100_000),
                throttled: moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(Duration::from_secs(600))
                    .build(),
                client_capabilities: Vec::new(),
                metrics: crate::metrics::TokenMetrics::new(),
                token_store: None,
            }),
        }
    }

    fn rebuild(
        self,
        f: impl FnOnce(&mut Option<Arc<dyn HttpClient>>, &mut Option<String>, &mut TokenRetryPolicy),
    ) -> Self {
        let i = &self.inner;
        let (mut http, mut endpoint, mut retry) = (i.http.clone(), i.token_endpoint.clone(), i.retry);
        f(&mut http, &mut endpoint, &mut retry);
        let mut c =
            Self::with_parts(i.authority.clone(), i.client_id.clone(), i.audiences.clone(), i.credential.clone(), http);
        let cache_enabled = i.cache_enabled;
        let inner = Arc::get_mut(&mut c.inner).expect("fresh client");
        inner.token_endpoint = endpoint;
        inner.retry = retry;
        inner.cache_enabled = cache_enabled;
        inner.client_capabilities.clone_from(&i.client_capabilities);
        if let Some(store) = &i.token_store {
            inner.attach_store(store.clone());
        }
        c
    }

    /// Puts a shared level behind this client's in-memory caches of app tokens and
    /// on-behalf-of tokens: every replica configured with the same [`SharedStore`] backend,
    /// namespace and sealing key reuses the tokens another fetched (one request across
    /// replicas), and a restarted process finds them again. A hit in memory never touches the
    /// store; a store that fails or is slow is skipped (memory only; the request succeeds).
    /// See [`store`](crate::store) for the design. Ignored when the configuration disables
    /// the token cache.
    ///
    /// [`SharedStore`]: crate::store::SharedStore
    #[must_use]
    pub fn with_token_store(self, store: crate::store::SharedStore) -> Self {
        let mut c = self.rebuild(|_, _, _| {});
        let inner = Arc::get_mut(&mut c.inner).expect("fresh client");
        if inner.cache_enabled {
            inner.attach_store(store);
        }
        c
    }

    /// Uses another HTTP client.
    #[must_use]
    pub fn with_http_client(self, http: Arc<dyn HttpClient>) -> Self {
        self.rebuild(|h, _, _| *h = Some(http))
    }

    /// Uses this token endpoint (for non-Entra authorities, or to pin one).
    #[must_use]
    pub fn with_token_endpoint(self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        self.rebuild(|_, e, _| *e = Some(endpoint))
    }

    /// Changes the retry policy.
    #[must_use]
    pub fn with_retry_policy(self, policy: TokenRetryPolicy) -> Self {
        self.rebuild(|_, _, r| *r = policy)
    }

    /// Declares client capabilities, as MSAL's `WithClientCapabilities` does: every
    /// on-behalf-of and client-credentials request then sends
    /// `claims={"access_token":{"xms_cc":{"values":["cp1"]}}}` (merged with any claims
    /// challenge), and Entra issues tokens that carry `xms_cc`, so that resources supporting
    /// continuous access evaluation (Microsoft Graph...) may answer a revoked session with a
    /// claims challenge instead of a plain 401. `cp1` is the only capability Entra defines.
    ///
    /// A claims challenge from a downstream API is handled as before: the
    /// [`TokenRequest::with_claims`] request retries with it (merged with the capabilities); if
    /// Entra needs the user, the challenge is answered to this API's caller (see azad-axum's
    /// `OnBehalfOf::call`). Source: [Claims challenges, claims requests and client
    /// capabilities](https://learn.microsoft.com/entra/identity-platform/claims-challenge).
    #[must_use]
    pub fn with_client_capabilities<I: IntoIterator<Item = S>, S: Into<String>>(self, capabilities: I) -> Self {
        let capabilities: Vec<String> = capabilities.into_iter().map(Into::into).collect();
        let mut c = self.rebuild(|_, _, _| {});
        Arc::get_mut(&mut c.inner).expect("fresh client").client_capabilities = capabilities;
        c
    }

    /// The declared client capabilities (see [`with_client_capabilities`](Self::with_client_capabilities)).
    #[must_use]
    pub fn client_capabilities(&self) -> &[String] {
        &self.inner.client_capabilities
    }

    /// The application's client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Acquires the token `request` describes: from the cache when it holds a fresh one (a
    /// claims challenge or a forced refresh skips it), else from the token endpoint. The one
    /// door of the token client; [`acquire_app_token`](Self::acquire_app_token) and
    /// [`acquire_on_behalf_of`](Self::acquire_on_behalf_of) are shorthands for it.
    ///
    /// # Errors
    ///
    /// A [`TokenError`]: for on-behalf-of, [`TokenError::OnBehalfOf`] without any network call
    /// when the incoming token is expired, app-only or not for this API; otherwise the token
    /// endpoint's error. See [`TokenError::challenge`] for how an API should answer.
    pub async fn acquire(&self, request: TokenRequest) -> Result<AcquiredToken, TokenError> {
        let scopes = &request.scopes;
        if scopes.is_empty() {
            return Err(TokenError::Configuration("no scopes requested"));
        }
        let inner = &self.inner;
        let bypass = request.claims.is_some() || request.force_refresh || !inner.cache_enabled;
        let claims = request.claims.as_deref();
        // Whether the cache had to fetch: a miss (or a refresh ahead of expiry).
        let fetched = std::sync::atomic::AtomicBool::new(false);
        let fetching = || fetched.store(true, std::sync::atomic::Ordering::Relaxed);
        let (token, cache) = match &request.assertion {
            None => {
                let endpoint = self.endpoint(None)?;
                let key = cache_key(&endpoint, &inner.client_id, None, scopes);
                let fetch = || {
                    fetching();
                    self.fetch(&endpoint, key, scopes, None, claims)
                };
                (inner.app_cache.serve(key, claims, bypass, fetch).await, crate::metrics::AcquiredCache::App)
            }
            Some(assertion) => {
                let tid = self.check_obo(assertion, request.validated_claims.as_deref())?;
                let endpoint = self.endpoint(tid.as_deref())?;
                let key = cache_key(&endpoint, &inner.client_id, Some(assertion.digest()), scopes);
                let fetch = || {
                    fetching();
                    self.fetch(&endpoint, key, scopes, Some(assertion), claims)
                };
                (inner.obo_cache.serve(key, claims, bypass, fetch).await, crate::metrics::AcquiredCache::OnBehalfOf)
            }
        };
        if !bypass {
            inner.metrics.cache(cache, !fetched.load(std::sync::atomic::Ordering::Relaxed));
        }
        Ok((*token?).clone())
    }

    /// An app token (client credentials) for `scopes`, usually one `{resource}/.default`:
    /// [`acquire`](Self::acquire) of [`TokenRequest::app`].
    ///
    /// # Errors
    ///
    /// A [`TokenError`]; see [`TokenError::challenge`] for how an API should answer.
    pub async fn acquire_app_token(&self, scopes: &[&str]) -> Result<AcquiredToken, TokenError> {
        self.acquire(TokenRequest::app(scopes.iter().copied())).await
    }

    /// A token for `scopes` on behalf of the user whose token this API received:
    /// [`acquire`](Self::acquire) of [`TokenRequest::on_behalf_of`]. With the incoming
    /// token's validated claims at hand (what the `AzureAdAuth` layer stored), use
    /// [`TokenRequest::with_validated_claims`] to save a decode per call.
    ///
    /// # Errors
    ///
    /// [`TokenError::OnBehalfOf`] without any network call when the incoming token is expired,
    /// app-only or not for this API; otherwise the token endpoint's error.
    pub async fn acquire_on_behalf_of(
        &self,
        assertion: &BearerToken,
        scopes: &[&str],
    ) -> Result<AcquiredToken, TokenError> {
        self.acquire(TokenRequest::on_behalf_of(assertion.clone(), scopes.iter().copied())).await
    }

    /// The token endpoint; for on-behalf-of with a multi-tenant authority, the user's tenant.
    fn endpoint(&self, user_tenant: Option<&str>) -> Result<std::borrow::Cow<'_, str>, TokenError> {
        let inner = &self.inner;
        if let Some(e) = &inner.token_endpoint {
            return Ok(e.as_str().into());
        }
        let authority = &inner.authority;
        match (authority.tenant(), user_tenant) {
            (Some(t), Some(tid)) if t.is_multi_tenant() && is_guid(tid) => authority
                .token_endpoint_for_tenant(tid)
                .map(Into::into)
                .ok_or(TokenError::Configuration("no token endpoint for this authority")),
            (Some(Tenant::Common | Tenant::Organizations), None) => Err(TokenError::Configuration(
                "client credentials need a tenant-specific authority, not `common` or `organizations`",
            )),
            _ => inner
                .default_endpoint
                .as_deref()
                .map(Into::into)
                .ok_or(TokenError::Configuration("no token endpoint for this authority")),
        }
    }

    /// On-behalf-of pre-checks, with no network call. Returns the user's tenant id (borrowed
    /// from the validated claims when given: no allocation on a cache hit).
    fn check_obo<'a>(
        &self,
        assertion: &BearerToken,
        validated: Option<&'a Claims>,
    ) -> Result<Option<std::borrow::Cow<'a, str>>, TokenError> {
        let refuse = |r| Err(TokenError::OnBehalfOf(r));
        let decoded;
        let claims = match validated {
            Some(c) => c,
            None => {
                let payload = assertion.secret().split('.').nth(1);
                decoded = payload
                    .and_then(|p| crate::validation::jwt::decode_segment(p, crate::error::TokenPart::Payload).ok())
                    .and_then(|p| Claims::from_json(&p).ok());
                let Some(c) = decoded.as_ref() else {
                    return refuse(OboRefusal::Malformed);
                };
                c
            }
        };
        if claims.expires_at().is_none_or(|exp| exp <= now_secs()) {
            return refuse(OboRefusal::Expired);
        }
        if claims.is_app_only() {
            return refuse(OboRefusal::AppOnly);
        }
        if !claims.audiences().iter().any(|a| self.inner.audiences.contains(a)) {
            return refuse(OboRefusal::WrongAudience);
        }
        Ok(match validated {
            Some(c) => c.tenant_id().map(std::borrow::Cow::Borrowed),
            None => claims.tenant_id().map(|t| std::borrow::Cow::Owned(t.to_owned())),
        })
    }

    async fn fetch<S: AsRef<str>>(
        &self,
        endpoint: &str,
        throttle_key: [u8; 32],
        scopes: &[S],
        assertion: Option<&BearerToken>,
        claims: Option<&str>,
    ) -> Result<AcquiredToken, TokenError> {
        let scope = scopes.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
        let mut params: Vec<(&str, &str)> = vec![("scope", scope.as_str())];
        let grant = match assertion {
            Some(assertion) => {
                params.push(("grant_type", JWT_BEARER_GRANT));
                params.push(("requested_token_use", "on_behalf_of"));
                params.push(("assertion", assertion.secret()));
                "on_behalf_of"
            }
            None => {
                params.push(("grant_type", "client_credentials"));
                "client_credentials"
            }
        };
        let merged = merge_claims(&self.inner.client_capabilities, claims);
        if let Some(claims) = merged.as_deref() {
            params.push(("claims", claims));
        }
        self.post_grant(&GrantRequest { endpoint, throttle_key, grant, params: &params, nonce: None })
            .await
            .map(|g| g.token)
    }

    /// The metric handles of this client's requests and caches.
    pub(crate) fn metrics(&self) -> &crate::metrics::TokenMetrics {
        &self.inner.metrics
    }

    /// Posts a grant to the token endpoint with this client's proof of identity: throttling
    /// windows, one retry of a [retryable](TokenError::is_retryable) failure, logging without
    /// secrets; its outcome and latency are recorded (feature `metrics`).
    pub(crate) async fn post_grant(&self, request: &GrantRequest<'_>) -> Result<TokenGrant, TokenError> {
        let started = std::time::Instant::now();
        let result = self.post_grant_once(request).await;
        self.inner.metrics.request(crate::metrics::Grant::from_name(request.grant), started, &result);
        result
    }

    async fn post_grant_once(&self, request: &GrantRequest<'_>) -> Result<TokenGrant, TokenError> {
        let GrantRequest { endpoint, throttle_key, grant, params: grant_params, nonce } = *request;
        let inner = &self.inner;
        if let Some(until) = inner.throttled.get(&throttle_key) {
            let now = Instant::now();
            if now < until {
                return Err(TokenError::Throttled { retry_after: until - now });
            }
            inner.throttled.invalidate(&throttle_key);
        }
        let http =
            inner.http.clone().ok_or(TokenError::Configuration("no HTTP transport (enable the `reqwest` feature)"))?;
        let mut retried = false;
        let mut proof_refreshed = false;
        loop {
            // A new proof per attempt: assertions carry a unique jti and a short lifetime.
            let auth =
                inner.credential.client_auth(&inner.client_id, endpoint).await.map_err(TokenError::Credential)?;
            let mut params: Vec<(&str, &str)> = vec![("client_id", inner.client_id.as_str())];
            params.extend_from_slice(grant_params);
            params.extend(auth.form_params());
            let mut request = form_request(endpoint, &params)?;
            if let Some(nonce) = nonce {
                request.extensions_mut().insert(crate::http::ExpectedNonce(nonce.to_owned()));
            }
            let outcome = match http.send(request).await {
                Ok(response) => parse_token_response(&response),
                Err(e) => Err(TokenError::Request(e)),
            };
            let mut error = match outcome {
                Ok(granted) => return Ok(granted),
                Err(e) => e,
            };
            // A server's Retry-After is capped before anyone sees it: the local window and the
            // answer passed on to callers use the same bounded value.
            if let TokenError::ServerResponse(e) = &mut error {
                e.retry_after = e.retry_after.map(|w| w.min(inner.retry.max_retry_after));
            }
            // Throttling: remember the window and fail identical requests locally.
            if let TokenError::ServerResponse(e) = &error
                && let (429 | 503, Some(wait)) = (e.status, e.retry_after)
            {
                inner.throttled.insert(throttle_key, Instant::now() + wait);
                tracing::warn!(target: "azad::token", grant, error = %e, retry_after_secs = wait.as_secs(), "token endpoint throttled the request");
                return Err(error);
            }
            // A 429 without `Retry-After` is retryable later, but never at once: the server
            // asked this client to slow down (MSAL retries 5xx only).
            let too_many = error.entra().is_some_and(|e| e.status == 429);
            if error.is_retryable() && !too_many && !retried {
                retried = true;
                tracing::debug!(target: "azad::token", grant, error = %error, "transient token endpoint failure; retrying once");
                tokio::time::sleep(inner.retry.retry_delay).await;
                continue;
            }
            // A rotating credential's secret or certificate was refused as invalid or expired:
            // refetch it once, retry once, never loop.
            if let TokenError::ServerResponse(e) = &error
                && !proof_refreshed
                && e.is_stale_client_proof()
                && inner.credential.refresh_after_rejection(&auth).await
            {
                proof_refreshed = true;
                tracing::warn!(target: "azad::token", grant, error = %e, "the client credential was rejected; retrying once with the refetched one");
                continue;
            }
            match &error {
                TokenError::ServerResponse(e) if e.is_client_rejected() => {
                    tracing::error!(target: "azad::token", grant, error = %e, "the token endpoint rejected this application's credential");
                }
                // Polling states of the device code flow are not failures.
                TokenError::ServerResponse(e) if matches!(e.error.as_str(), "authorization_pending" | "slow_down") => {
                    tracing::debug!(target: "azad::token", grant, error = %e, "waiting for the user");
                }
                _ => tracing::warn!(target: "azad::token", grant, error = %error, "token request failed"),
            }
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests;
