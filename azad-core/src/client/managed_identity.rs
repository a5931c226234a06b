//! Managed identity: tokens from the Azure Instance Metadata Service (VMs, AKS nodes) or the
//! App Service / Container Apps / Functions identity endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::client::cache::{AcquiredToken, TokenCache};
use crate::client::wire::{acquired, retry_after, unusable};
use crate::error::{EntraError, TokenError};
use crate::http::HttpOptions;
use crate::http::{HttpClient, HttpRequest};

/// The IMDS token endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Which managed identity to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The resource's system-assigned identity.
    SystemAssigned,
    /// A user-assigned identity by client id.
    ClientId(String),
    /// A user-assigned identity by object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by Azure resource id.
    ResourceId(String),
}

#[derive(Clone)]
enum Source {
    Imds(String),
    AppService { endpoint: String, header: SecretString },
}

/// Retries of the managed identity endpoint (IMDS or App Service), as Microsoft documents
/// them for IMDS: 404, 408, 410, 429, every 5xx and timeouts are retried with exponential
/// back-off; other answers are final. Source: [IMDS retry
/// guidance](https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#retry-guidance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedIdentityRetryPolicy {
    /// Retries after the first attempt (default 5).
    pub max_retries: u32,
    /// First back-off, doubled each retry (default 800 ms).
    pub initial_delay: Duration,
    /// Cap on a server's `Retry-After`, for the wait between attempts and in the error
    /// (default [`MAX_RETRY_AFTER`](crate::challenge::MAX_RETRY_AFTER), 60 s).
    pub max_retry_after: Duration,
}

impl Default for ManagedIdentityRetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_millis(800),
            max_retry_after: crate::challenge::MAX_RETRY_AFTER,
        }
    }
}

struct Inner {
    id: ManagedIdentityId,
    source: Source,
    http: Option<Arc<dyn HttpClient>>,
    retry: ManagedIdentityRetryPolicy,
    cache: TokenCache<String>,
    /// Metric handles (feature `metrics`; nothing otherwise).
    metrics: crate::metrics::TokenMetrics,
}

/// A managed identity. Cheap to clone; clones share the token cache. The `with_*` methods
/// consume the identity and return a reconfigured one with a cache of its own: call them while
/// building it.
///
/// Managed identity: tokens from the Azure Instance Metadata Service (VMs, AKS nodes) or the
/// App Service / Container Apps / Functions identity endpoint.
///
/// - IMDS: `GET http://169.254.169.254/metadata/identity/oauth2/token` with `Metadata: true`,
///   never through a proxy; retried as Microsoft documents (404, 408, 410, 429, 5xx and
///   timeouts, with exponential back-off; other 4xx are final).
/// - App Service: `GET $IDENTITY_ENDPOINT` with `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
/// - System-assigned, or user-assigned by client id, object id or resource id.
/// - Tokens are cached per resource and refreshed ahead of expiry.
///
/// Every endpoint can be pointed elsewhere (the dev tenant serves both shapes).
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::dev::DevTenant;
/// use azad_core::ManagedIdentity;
///
/// let tenant = DevTenant::start().await?;
/// let identity = ManagedIdentity::imds(tenant.imds_endpoint());
/// let token = identity.acquire_token("https://vault.azure.net/.default").await?;
/// assert!(!token.secret().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct ManagedIdentity {
    inner: Arc<Inner>,
}

impl fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            Source::Imds(e) => format!("IMDS {e}"),
            Source::AppService { endpoint, .. } => format!("App Service {endpoint}"),
        };
        f.debug_struct("ManagedIdentity").field("id", &self.inner.id).field("source", &source).finish()
    }
}

fn no_proxy_client() -> Option<Arc<dyn HttpClient>> {
    #[cfg(feature = "reqwest")]
    {
        use std::sync::OnceLock;
        static CLIENT: OnceLock<Option<Arc<dyn HttpClient>>> = OnceLock::new();
        CLIENT
            .get_or_init(|| {
                let options = HttpOptions { timeout: Duration::from_secs(30), ..HttpOptions::default() };
                crate::http::ReqwestClient::without_proxy(options).ok().map(|c| Arc::new(c) as Arc<dyn HttpClient>)
            })
            .clone()
    }
    #[cfg(not(feature = "reqwest"))]
    {
        let _ = HttpOptions::default();
        None
    }
}

impl ManagedIdentity {
    fn with_source(source: Source) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: ManagedIdentityId::SystemAssigned,
                source,
                http: no_proxy_client(),
                retry: ManagedIdentityRetryPolicy::default(),
                cache: TokenCache::new(1_000),
                metrics: crate::metrics::TokenMetrics::new(),
            }),
        }
    }

    fn rebuild(
        self,
        f: impl FnOnce(&mut ManagedIdentityId, &mut Option<Arc<dyn HttpClient>>, &mut ManagedIdentityRetryPolicy),
    ) -> Self {
        let (mut id, mut http, mut retry) = (self.inner.id.clone(), self.inner.http.clone(), self.inner.retry);
        f(&mut id, &mut http, &mut retry);
        Self {
            inner: Arc::new(Inner {
                id,
                source: self.inner.source.clone(),
                http,
                retry,
                cache: TokenCache::new(1_000),
                metrics: crate::metrics::TokenMetrics::new(),
            }),
        }
    }

    /// The system-assigned identity, from the endpoint the environment describes: App Service
    /// when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, else IMDS (at
    /// `AZAD_IMDS_ENDPOINT` if set).
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    #[must_use]
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => Self::app_service(endpoint, header),
            _ => Self::imds(get("AZAD_IMDS_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.to_owned())),
        }
    }

    /// IMDS at `endpoint` (the full token URL, e.g. [`IMDS_ENDPOINT`]).
    #[must_use]
    pub fn imds(endpoint: impl Into<String>) -> Self {
        Self::with_source(Source::Imds(endpoint.into()))
    }

    /// The App Service identity endpoint and its secret header value.
    #[must_use]
    pub fn app_service(endpoint: impl Into<String>, header: impl Into<String>) -> Self {
        Self::with_source(Source::AppService { endpoint: endpoint.into(), header: SecretString::from(header.into()) })
    }

    /// Selects a user-assigned identity (system-assigned by default).
    #[must_use]
    pub fn with_id(self, id: ManagedIdentityId) -> Self {
        self.rebuild(|i, _, _| *i = id)
    }

    /// Uses another HTTP client (it must not use a proxy for IMDS).
    #[must_use]
    pub fn with_http_client(self, client: Arc<dyn HttpClient>) -> Self {
        self.rebuild(|_, h, _| *h = Some(client))
    }

    /// Changes the retry policy.
    #[must_use]
    pub fn with_retry_policy(self, policy: ManagedIdentityRetryPolicy) -> Self {
        self.rebuild(|_, _, r| *r = policy)
    }

    /// Records this identity's calls into `simulation`'s cassette, or answers them from it
    /// with no network (feature `simulation`; see [`crate::simulation`]).
    #[cfg(feature = "simulation")]
    #[cfg_attr(docsrs, doc(cfg(feature = "simulation")))]
    #[must_use]
    pub fn with_simulation(self, simulation: &crate::simulation::Simulation) -> Self {
        let http = simulation.wrap(self.inner.http.clone());
        self.rebuild(|_, h, _| *h = http)
    }

    /// Gets a token for a resource (`https://vault.azure.net`) or a `.default` scope,
    /// from the cache when it is fresh.
    ///
    /// # Errors
    ///
    /// A [`TokenError`]: the endpoint's error answer, a transport error, or an unusable answer.
    pub async fn acquire_token(&self, resource: &str) -> Result<AcquiredToken, TokenError> {
        let resource = resource.strip_suffix("/.default").unwrap_or(resource).to_owned();
        let fetched = std::sync::atomic::AtomicBool::new(false);
        let fetch = || {
            fetched.store(true, std::sync::atomic::Ordering::Relaxed);
            async {
                let started = std::time::Instant::now();
                let result = self.fetch(resource.clone()).await;
                self.inner.metrics.request(crate::metrics::Grant::ManagedIdentity, started, &result);
                result
            }
        };
        let token = self.inner.cache.get_or_fetch(resource.clone(), false, fetch).await;
        let hit = !fetched.load(std::sync::atomic::Ordering::Relaxed);
        self.inner.metrics.cache(crate::metrics::AcquiredCache::ManagedIdentity, hit);
        Ok((*token?).clone())
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let (endpoint, api_version, names) = match &self.inner.source {
            Source::Imds(endpoint) => (endpoint, "2018-02-01", ["client_id", "object_id", "msi_res_id"]),
            Source::AppService { endpoint, .. } => (endpoint, "2019-08-01", ["client_id", "principal_id", "mi_res_id"]),
        };
        query.append_pair("api-version", api_version).append_pair("resource", resource);
        match &self.inner.id {
            ManagedIdentityId::SystemAssigned => {}
            ManagedIdentityId::ClientId(v) => {
                query.append_pair(names[0], v);
            }
            ManagedIdentityId::ObjectId(v) => {
                query.append_pair(names[1], v);
            }
            ManagedIdentityId::ResourceId(v) => {
                query.append_pair(names[2], v);
            }
        }
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        let mut builder = http::Request::get(format!("{endpoint}{sep}{}", query.finish()));
        builder = match &self.inner.source {
            Source::Imds(_) => builder.header("Metadata", "true"),
            Source::AppService { header, .. } => builder.header("X-IDENTITY-HEADER", header.expose_secret()),
        };
        builder.body(Vec::new()).unwrap_or_else(|_| HttpRequest::new(Vec::new()))
    }

    async fn fetch(&self, resource: String) -> Result<AcquiredToken, TokenError> {
        let http = self
            .inner
            .http
            .clone()
            .ok_or(TokenError::Configuration("no HTTP transport (enable the `reqwest` feature)"))?;
        let policy = self.inner.retry;
        let mut attempt = 0u32;
        loop {
            let error = match http.send(self.request(&resource)).await {
                Ok(response) if response.status() == StatusCode::OK => return parse_token(&response),
                Ok(response) => error_from(&response, policy.max_retry_after),
                Err(e) => TokenError::Request(e),
            };
            // What is retryable anywhere, and the statuses IMDS documents besides (404 and 410
            // while an identity is being assigned, 408).
            let retryable = error.is_retryable() || error.entra().is_some_and(|e| matches!(e.status, 404 | 408 | 410));
            let wait = error.entra().and_then(|e| e.retry_after);
            if !retryable || attempt >= policy.max_retries {
                tracing::warn!(target: "azad::managed_identity", error = %error, attempts = attempt + 1, "managed identity token request failed");
                return Err(error);
            }
            let backoff = policy.initial_delay * 2u32.saturating_pow(attempt);
            let delay = wait.map_or(backoff, |w| w.max(backoff));
            tracing::debug!(target: "azad::managed_identity", attempt, ?delay, "retrying the managed identity endpoint");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn error_from(response: &crate::http::HttpResponse, max_retry_after: Duration) -> TokenError {
    let status = response.status().as_u16();
    let mut e: EntraError = serde_json::from_slice(response.body()).unwrap_or_default();
    if e.error.is_empty() {
        e.error = format!("http_{status}");
    }
    e.status = status;
    e.endpoint = crate::error::IdentityEndpoint::ManagedIdentity;
    e.retry_after = retry_after(response).map(|w| w.min(max_retry_after));
    TokenError::ServerResponse(Box::new(e))
}

/// A managed identity answer. Hosts differ: IMDS sends numbers as strings, App Service sends
/// `expires_on` as a number or as a date-time string; the [expiry normaliser](crate::client::expiry)
/// reads them all.
#[derive(Deserialize)]
struct MiTokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    token_type: Option<String>,
}

pub(crate) fn parse_token(response: &crate::http::HttpResponse) -> Result<AcquiredToken, TokenError> {
    use crate::error::IdentityEndpoint::ManagedIdentity;
    let r: MiTokenResponse = serde_json::from_slice(response.body())
        .map_err(|_| unusable(ManagedIdentity, response, "not a token response"))?;
    if r.access_token.is_empty() {
        return Err(unusable(ManagedIdentity, response, "empty access_token"));
    }
    let expires_in = crate::client::expiry::lifetime(
        r.expires_in.as_ref(),
        r.expires_on.as_ref(),
        &r.access_token,
        SystemTime::now(),
    );
    acquired(ManagedIdentity, response, r.access_token, expires_in, None, r.token_type)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::error::HttpError;
    use crate::http::HttpResponse;

    fn respond(status: u16, body: &str) -> HttpResponse {
        http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
    }

    /// A scripted endpoint: answers in order, records requests.
    type Scripted = (Arc<dyn HttpClient>, Arc<Mutex<Vec<HttpRequest>>>, Arc<AtomicUsize>);

    fn scripted(answers: Vec<Result<HttpResponse, HttpError>>) -> Scripted {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let (s, c) = (seen.clone(), count.clone());
        let client = move |req: HttpRequest| {
            s.lock().unwrap().push(req);
            c.fetch_add(1, Ordering::SeqCst);
            let next = answers.lock().unwrap().next().unwrap_or_else(|| Ok(respond(500, "{}")));
            async move { next }
        };
        (Arc::new(client), seen, count)
    }

    const OK_STRINGS: &str = r#"{"access_token":"tok","refresh_token":"","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://vault.azure.net","token_type":"Bearer"}"#;

    #[tokio::test]
    async fn imds_request_shape() {
        let (client, seen, _) = scripted(vec![Ok(respond(200, OK_STRINGS))]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT)
            .with_id(ManagedIdentityId::ClientId("cid".into()))
            .with_http_client(client);
        let t = mi.acquire_token("https://vault.azure.net/.default").await.unwrap();
        assert_eq!(t.secret(), "tok");
        let req = &seen.lock().unwrap()[0];
        assert_eq!(
            req.uri().to_string(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=cid"
        );
        assert_eq!(req.headers()["Metadata"], "true");
    }

    #[tokio::test]
    async fn app_service_request_shape_and_numeric_expiry() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let body = format!(
            r#"{{"access_token":"tok","expires_on":{},"resource":"r","token_type":"Bearer","client_id":"c"}}"#,
            now + 3600
        );
        let (client, seen, _) = scripted(vec![Ok(respond(200, &body))]);
        let mi = ManagedIdentity::app_service("http://127.0.0.1:1/msi/token", "hdr-secret")
            .with_id(ManagedIdentityId::ResourceId("/subscriptions/x/id".into()))
            .with_http_client(client);
        let t = mi.acquire_token("api://AzureADTokenExchange").await.unwrap();
        let left = t.expires_at().duration_since(SystemTime::now()).unwrap().as_secs();
        assert!((3500..=3600).contains(&left), "{left}");
        let req = &seen.lock().unwrap()[0];
        assert!(req.uri().to_string().contains("api-version=2019-08-01"));
        assert!(req.uri().to_string().contains("mi_res_id=%2Fsubscriptions%2Fx%2Fid"));
        assert_eq!(req.headers()["X-IDENTITY-HEADER"], "hdr-secret");
        assert!(!format!("{mi:?}").contains("hdr-secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_documented_statuses_with_exponential_backoff() {
        let (client, _, count) = scripted(vec![
            Ok(respond(404, "{}")),
            Ok(respond(410, "{}")),
            Ok(respond(429, "{}")),
            Ok(respond(503, "{}")),
            Err(HttpError::new(crate::HttpErrorKind::Timeout, None)),
            Ok(respond(200, OK_STRINGS)),
        ]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
        let start = tokio::time::Instant::now();
        let t = mi.acquire_token("r").await.unwrap();
        assert_eq!(t.secret(), "tok");
        assert_eq!(count.load(Ordering::SeqCst), 6);
        // 0.8 + 1.6 + 3.2 + 6.4 + 12.8 seconds of (paused, virtual) back-off.
        assert_eq!(start.elapsed(), Duration::from_millis(24_800));
    }

    #[tokio::test(start_paused = true)]
    async fn other_client_errors_are_final_and_retries_are_bounded() {
        let (client, _, count) =
            scripted(vec![Ok(respond(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#))]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
        let e = mi.acquire_token("r").await.unwrap_err();
        assert_eq!(e.entra().unwrap().error, "invalid_request");
        assert!(e.to_string().starts_with("the managed identity endpoint answered `invalid_request`"), "{e}");
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let (client, _, count) = scripted(vec![]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
        assert_eq!(mi.acquire_token("r").await.unwrap_err().entra().unwrap().status, 500);
        assert_eq!(count.load(Ordering::SeqCst), 6, "first attempt and five retries");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_with_a_cap() {
        let throttled = http::Response::builder().status(429).header("Retry-After", "7").body(b"{}".to_vec()).unwrap();
        let (client, _, _) = scripted(vec![Ok(throttled), Ok(respond(200, OK_STRINGS))]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
        let start = tokio::time::Instant::now();
        mi.acquire_token("r").await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }

    /// A refresh-ahead whose attempts (each timing out after 30 s, with back-off between them)
    /// outlive the cached token: an error, never the expired token.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_outliving_the_cached_token_is_an_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let client = move |_req: HttpRequest| {
            let first = c.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    return Ok(respond(200, r#"{"access_token":"tok","expires_in":3600,"token_type":"Bearer"}"#));
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(HttpError::new(crate::HttpErrorKind::Timeout, None))
            }
        };
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(Arc::new(client));
        assert_eq!(mi.acquire_token("r").await.unwrap().secret(), "tok");
        tokio::time::advance(Duration::from_secs(3500)).await; // due for refresh, 100 s left
        let e = mi.acquire_token("r").await.expect_err("the token expired during the refresh");
        assert!(e.is_retryable(), "{e:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 7, "the first fetch, then an attempt and five retries");
    }

    /// App Service and other hosts send `expires_on` as a date-time string.
    #[tokio::test]
    async fn date_time_expiry_shapes() {
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let secs = in_an_hour.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let epoch = i64::try_from(secs).unwrap();
        let rfc3339 = crate::client::expiry::format_date_time(epoch, false);
        let dotnet = crate::client::expiry::format_date_time(epoch, true);
        for expires_on in [rfc3339, dotnet, secs.to_string()] {
            let body = serde_json::json!({"access_token": "tok", "expires_on": expires_on, "token_type": "Bearer"});
            let (client, _, _) = scripted(vec![Ok(respond(200, &body.to_string()))]);
            let mi = ManagedIdentity::app_service("http://127.0.0.1:1/msi/token", "h").with_http_client(client);
            let t = mi.acquire_token("r").await.unwrap_or_else(|e| panic!("{expires_on}: {e}"));
            let left = t.expires_at().duration_since(SystemTime::now()).unwrap().as_secs();
            assert!((3590..=3600).contains(&left), "{expires_on}: {left}");
        }
    }

    #[tokio::test]
    async fn unreadable_or_past_expiry_names_the_managed_identity_endpoint() {
        for body in [
            r#"{"access_token":"secret-value","expires_on":"whenever"}"#,
            r#"{"access_token":"secret-value","expires_on":"1/1/2001 1:00:00 AM +00:00"}"#,
        ] {
            let (client, _, _) = scripted(vec![Ok(respond(200, body))]);
            let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
            let e = mi.acquire_token("r").await.unwrap_err();
            assert!(matches!(e, TokenError::Parse { endpoint: crate::IdentityEndpoint::ManagedIdentity, .. }), "{e:?}");
            assert!(e.to_string().starts_with("the managed identity endpoint answered HTTP 200"), "{e}");
            assert!(!format!("{e:?} {e}").contains("secret-value"));
        }
    }

    #[tokio::test]
    async fn unusable_answers() {
        let (client, _, _) = scripted(vec![Ok(respond(200, r#"{"access_token":"secret-value"}"#))]);
        let mi = ManagedIdentity::imds(IMDS_ENDPOINT).with_http_client(client);
        let e = mi.acquire_token("r").await.unwrap_err();
        let TokenError::Parse { body, .. } = &e else { panic!("{e:?}") };
        assert!(!body.contains("secret-value"), "{body}");
        assert!(!format!("{e:?} {e}").contains("secret-value"));
    }

    #[test]
    fn environment() {
        let mi = ManagedIdentity::from_env_with(|n| match n {
            "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:41000/msi/token".into()),
            "IDENTITY_HEADER" => Some("h".into()),
            _ => None,
        });
        assert!(format!("{mi:?}").contains("App Service http://127.0.0.1:41000/msi/token"));
        let mi = ManagedIdentity::from_env_with(|_| None);
        assert!(format!("{mi:?}").contains(IMDS_ENDPOINT));
    }
}
