//! Group membership beyond the token: detecting the groups *overage* and resolving membership
//! through Microsoft Graph.
//!
//! Entra ID puts at most 200 group object ids in a JWT's `groups` claim (fewer in implicit-flow
//! tokens). A user in more groups gets a token *without* `groups`, carrying instead
//! `"_claim_names": {"groups": "src1"}` and `"_claim_sources": {"src1": {"endpoint": "…"}}`
//! (v1.0 and v2.0 tokens), or `"hasgroups": true` (implicit flow). See Microsoft's
//! [access token claims reference](https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference#groups-overage-claim).
//!
//! [`GroupResolver`] answers "is this user in these groups?" for such tokens with Graph's
//! [`checkMemberGroups`](https://learn.microsoft.com/graph/api/directoryobject-checkmembergroups):
//!
//! - [`GraphAccess::OnBehalfOf`] (the default): `POST {graph}/v1.0/me/checkMemberGroups` with an
//!   on-behalf-of token for `{graph}/GroupMember.Read.All` (delegated permission), acquired by
//!   the [`TokenClient`] from the caller's own token;
//! - [`GraphAccess::Application`]: `POST {graph}/v1.0/users/{oid}/checkMemberGroups` with an
//!   app token for `{graph}/.default` (application permission `GroupMember.Read.All`).
//!
//! Graph's host comes from the configured cloud ([`graph_endpoint`]), or from
//! [`GroupResolver::with_graph_base_url`]; **never** from the endpoint written in the token,
//! which is attacker-influenced data as far as this API is concerned.
//!
//! Answers are cached per (tenant, object id) for a bounded time ([`GroupResolver::with_cache_ttl`],
//! 5 minutes by default) in a bounded cache (10 000 users by default). When Graph cannot answer
//! (throttled, 5xx, unreachable, the token for it refused), the resolver returns a
//! [`GroupError`], and the requirement fails: 503 with `Retry-After` by default, or 403 with
//! [`GraphFailure::Forbidden`]. It never allows. The cause is logged once per outage, and the
//! recovery once.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use azad_core::{BearerToken, TokenClient, TokenValidator, ClientCredential, dev::DevTenant};
//! use azad_core::groups::{GroupResolver, has_group_overage};
//!
//! let tenant = DevTenant::start().await?;
//! let user = tenant.users()[0].clone();
//! tenant.add_group_member("11111111-0000-4000-8000-000000000001", &user.oid);
//! let client = TokenClient::new(&tenant.config(), ClientCredential::secret(tenant.api_client_secret()));
//! let resolver = GroupResolver::new(&tenant.config(), client).with_graph_base_url(tenant.graph_base_url());
//!
//! let token = tenant.token().group_overage().build();
//! let claims = Arc::new(TokenValidator::new(tenant.config()).validate(&token).await?);
//! assert!(has_group_overage(&claims));
//! let member_of = resolver
//!     .member_groups(&claims, Some(&BearerToken::new(token)), &["11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002"])
//!     .await?;
//! assert_eq!(member_of, ["11111111-0000-4000-8000-000000000001"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{StatusCode, header};
use serde_json::Value;

use crate::authority::Cloud;
use crate::client::token::TokenClient;
use crate::client::token::request::TokenRequest;
use crate::config::AzureAdConfig;
use crate::error::{HttpError, TokenError};
use crate::http::HttpClient;
use crate::secret::BearerToken;
use crate::validation::claims::Claims;

/// Graph's `checkMemberGroups` takes at most 20 group ids per request.
const CHECK_MEMBER_GROUPS_MAX: usize = 20;

/// How long azad waits before asking Graph again when Graph gave no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Microsoft Graph's endpoint (scheme and host, no trailing slash) in each cloud:
/// `https://graph.microsoft.com` (public), `https://graph.microsoft.us` (US Government L4),
/// `https://microsoftgraph.chinacloudapi.cn` (21Vianet). Source: Microsoft Graph
/// [national cloud deployments](https://learn.microsoft.com/graph/deployments).
#[must_use]
pub fn graph_endpoint(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::UsGovernment => "https://graph.microsoft.us",
        Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        Cloud::Public => "https://graph.microsoft.com",
    }
}

/// Whether a token's groups did not fit in it (the *groups overage*): `_claim_names` names
/// `groups` (v1.0 and v2.0 tokens), or `hasgroups` is `true` (implicit flow). The endpoint in
/// `_claim_sources` is never read.
#[must_use]
pub fn has_group_overage(claims: &Claims) -> bool {
    let named = claims.get("_claim_names").and_then(|n| n.get("groups")).is_some();
    let hasgroups = claims.get("hasgroups").is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    named || hasgroups
}

/// Which Graph call resolves membership, and with which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GraphAccess {
    /// `POST /v1.0/me/checkMemberGroups` with an on-behalf-of token for
    /// `{graph}/GroupMember.Read.All` (delegated; admin consent required). Works for users of
    /// any tenant a multi-tenant API accepts. App-only callers have no membership to resolve.
    #[default]
    OnBehalfOf,
    /// `POST /v1.0/users/{oid}/checkMemberGroups` with an app token for `{graph}/.default`
    /// (application permission `GroupMember.Read.All`); needs a tenant-specific authority.
    Application,
}

/// What a requirement answers when Graph cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GraphFailure {
    /// 503 with `Retry-After` (gRPC `UNAVAILABLE`): the client may retry (the default).
    #[default]
    Unavailable,
    /// 403 `insufficient_scope` (gRPC `PERMISSION_DENIED`): fail closed without inviting retries.
    Forbidden,
}

/// Why group membership could not be resolved. Never carries a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// No token for Graph could be acquired (see [`TokenError::challenge`]).
    #[error("no token for Microsoft Graph: {0}")]
    Token(#[source] TokenError),
    /// Graph could not be reached.
    #[error("Microsoft Graph could not be reached")]
    Request(#[source] HttpError),
    /// Graph throttled the request (429) or was unavailable (503, other 5xx).
    #[error("Microsoft Graph answered HTTP {status}; retry after {}s", retry_after.as_secs())]
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// Graph's `Retry-After` (capped), or a default of 5 seconds.
        retry_after: Duration,
    },
    /// Graph refused the call or answered something unusable (401, 403, 404, a bad body): a
    /// misconfiguration (missing permission or consent) rather than an outage.
    #[error("Microsoft Graph refused the membership check (HTTP {status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Graph's error code, or what was wrong with the answer.
        reason: String,
    },
    /// The token has no object id or tenant to look up, or is app-only under on-behalf-of.
    #[error("the token names no user whose groups could be resolved")]
    NoUser,
}

impl GroupError {
    /// When a retry could succeed: Graph's `Retry-After`, or a few seconds for other failures.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Unavailable { retry_after, .. } | Self::Token(TokenError::Throttled { retry_after }) => *retry_after,
            Self::Token(e) => e.challenge().retry_after().unwrap_or(DEFAULT_RETRY_AFTER),
            _ => DEFAULT_RETRY_AFTER,
        }
    }

    /// A claims challenge (JSON) Entra sent when the on-behalf-of token for Graph needed the
    /// user to sign in again (Conditional Access on Graph): it is passed on to the caller.
    #[must_use]
    pub fn claims_challenge(&self) -> Option<String> {
        match self {
            Self::Token(e) => e.challenge().claims().map(str::to_owned),
            _ => None,
        }
    }
}

/// A time source for the membership cache: [`SystemClock`] by default, a [`ManualClock`] in
/// tests that need a cache entry to go stale without waiting.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The monotonic system clock ([`Instant::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to ([`advance`](Self::advance)). Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self { start: Instant::now(), offset: Arc::new(Mutex::new(Duration::ZERO)) }
    }
}

impl ManualClock {
    /// A clock stopped at the current instant.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What Graph said about one user: group id → member or not, as of `fetched`.
#[derive(Debug)]
struct Entry {
    fetched: Instant,
    known: Mutex<HashMap<String, bool>>,
}

struct Inner {
    client: TokenClient,
    http: Option<Arc<dyn HttpClient>>,
    graph_resource: String,
    graph_base_url: String,
    access: GraphAccess,
    failure: GraphFailure,
    ttl: Duration,
    cache: moka::sync::Cache<(String, String), Arc<Entry>>,
    clock: Arc<dyn Clock>,
    outage: AtomicBool,
}

/// Resolves group membership through Microsoft Graph for tokens with a groups overage. Cheap
/// to clone; clones share the cache. See the [module docs](crate::groups).
#[derive(Clone)]
pub struct GroupResolver {
    inner: Arc<Inner>,
}

impl fmt::Debug for GroupResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("GroupResolver")
            .field("graph_base_url", &i.graph_base_url)
            .field("access", &i.access)
            .field("failure", &i.failure)
            .field("ttl", &i.ttl)
            .field("cached_users", &i.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl GroupResolver {
    /// A resolver for the API of `config` (its cloud names Graph's host and resource; its HTTP
    /// client sends the requests), acquiring Graph tokens with `client`.
    #[must_use]
    pub fn new(config: &AzureAdConfig, client: TokenClient) -> Self {
        let graph = graph_endpoint(config.authority().cloud().unwrap_or(Cloud::Public));
        Self {
            inner: Arc::new(Inner {
                client,
                http: config.http_client(),
                graph_resource: graph.to_owned(),
                graph_base_url: graph.to_owned(),
                access: GraphAccess::default(),
                failure: GraphFailure::default(),
                ttl: Duration::from_secs(300),
                cache: Self::cache(10_000, Duration::from_secs(300)),
                clock: Arc::new(SystemClock),
                outage: AtomicBool::new(false),
            }),
        }
    }

    fn cache(capacity: u64, ttl: Duration) -> moka::sync::Cache<(String, String), Arc<Entry>> {
        // moka's own expiry (on its own clock) only bounds memory; freshness is decided with
        // `Clock`, so that tests can move time.
        moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build()
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            client: i.client.clone(),
            http: i.http.clone(),
            graph_resource: i.graph_resource.clone(),
            graph_base_url: i.graph_base_url.clone(),
            access: i.access,
            failure: i.failure,
            ttl: i.ttl,
            cache: Self::cache(i.cache.policy().max_capacity().unwrap_or(10_000), i.ttl),
            clock: i.clock.clone(),
            outage: AtomicBool::new(false),
        };
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// Sends Graph requests to this base URL (scheme, host, optional port) instead of the
    /// cloud's: an egress proxy, or the dev tenant ([`DevTenant::graph_base_url`](crate::dev::DevTenant::graph_base_url)).
    /// The token's own `_claim_sources` endpoint is never used.
    #[must_use]
    pub fn with_graph_base_url(self, base_url: impl Into<String>) -> Self {
        let base = base_url.into().trim_end_matches('/').to_owned();
        self.rebuild(|i| i.graph_base_url = base)
    }

    /// Which Graph call and token ([`GraphAccess::OnBehalfOf`] by default).
    #[must_use]
    pub fn with_access(self, access: GraphAccess) -> Self {
        self.rebuild(|i| i.access = access)
    }

    /// What a requirement answers when Graph cannot be asked ([`GraphFailure::Unavailable`]
    /// by default).
    #[must_use]
    pub fn on_failure(self, failure: GraphFailure) -> Self {
        self.rebuild(|i| i.failure = failure)
    }

    /// How long an answer is trusted (5 minutes by default; at most one hour). A membership
    /// removed in the directory is seen at most this late.
    #[must_use]
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        let ttl = ttl.min(Duration::from_secs(3600));
        self.rebuild(|i| {
            i.ttl = ttl;
            i.cache = Self::cache(i.cache.policy().max_capacity().unwrap_or(10_000), ttl);
        })
    }

    /// How many users' answers are kept (10 000 by default); the least used go first.
    #[must_use]
    pub fn with_cache_capacity(self, users: u64) -> Self {
        self.rebuild(|i| i.cache = Self::cache(users, i.ttl))
    }

    /// Uses another HTTP client for Graph.
    #[must_use]
    pub fn with_http_client(self, http: Arc<dyn HttpClient>) -> Self {
        self.rebuild(|i| i.http = Some(http))
    }

    /// Uses another time source for cache freshness (a [`ManualClock`] in tests).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.rebuild(|i| i.clock = clock)
    }

    /// What requirements answer when Graph cannot be asked.
    #[must_use]
    pub fn failure(&self) -> GraphFailure {
        self.inner.failure
    }

    /// The Graph base URL requests go to.
    #[must_use]
    pub fn graph_base_url(&self) -> &str {
        &self.inner.graph_base_url
    }

    /// Which of `group_ids` the user of `claims` is a member of (transitively, as Graph
    /// counts it), in the order given. Answered from the cache when every id is known and
    /// fresh; otherwise Graph is asked about the unknown ids only (20 per request).
    ///
    /// `token` is the caller's access token, needed for [`GraphAccess::OnBehalfOf`].
    ///
    /// # Errors
    ///
    /// A [`GroupError`]; nothing is cached then.
    pub async fn member_groups(
        &self,
        claims: &Arc<Claims>,
        token: Option<&BearerToken>,
        group_ids: &[&str],
    ) -> Result<Vec<String>, GroupError> {
        let inner = &self.inner;
        let (Some(tid), Some(oid)) = (claims.tenant_id(), claims.object_id()) else {
            return Err(GroupError::NoUser);
        };
        let key = (tid.to_ascii_lowercase(), oid.to_ascii_lowercase());
        let now = inner.clock.now();
        let entry = match inner.cache.get(&key) {
            Some(e) if now.saturating_duration_since(e.fetched) < inner.ttl => e,
            _ => {
                let e = Arc::new(Entry { fetched: now, known: Mutex::new(HashMap::new()) });
                inner.cache.insert(key.clone(), e.clone());
                e
            }
        };
        let unknown: Vec<&str> = {
            let known = entry.known.lock().unwrap_or_else(|e| e.into_inner());
            group_ids.iter().copied().filter(|g| !known.contains_key(&g.to_ascii_lowercase())).collect()
        };
        if !unknown.is_empty() {
            let result = self.ask_graph(claims, token, &unknown).await;
            let found = match result {
                Ok(found) => {
                    if inner.outage.swap(false, Ordering::Relaxed) {
                        tracing::info!(target: "azad::groups", "Microsoft Graph answers membership checks again");
                    }
                    found
                }
                Err(GroupError::NoUser) => {
                    // A property of this token (app-only under on-behalf-of, no `oid`), not
                    // an outage.
                    tracing::debug!(target: "azad::groups", "the token names no user whose groups Graph could check");
                    return Err(GroupError::NoUser);
                }
                Err(e) => {
                    // Log the cause once per outage; misconfigurations are errors.
                    if !inner.outage.swap(true, Ordering::Relaxed) {
                        match &e {
                            GroupError::Refused { .. } => {
                                tracing::error!(target: "azad::groups", error = %e, "group membership could not be checked");
                            }
                            _ => {
                                tracing::warn!(target: "azad::groups", error = %e, "group membership could not be checked; requests that need it are refused until Graph answers");
                            }
                        }
                    }
                    return Err(e);
                }
            };
            let mut known = entry.known.lock().unwrap_or_else(|e| e.into_inner());
            for g in &unknown {
                let member = found.iter().any(|f| f.eq_ignore_ascii_case(g));
                known.insert(g.to_ascii_lowercase(), member);
            }
        }
        let known = entry.known.lock().unwrap_or_else(|e| e.into_inner());
        Ok(group_ids
            .iter()
            .filter(|g| known.get(&g.to_ascii_lowercase()).copied().unwrap_or(false))
            .map(|g| (*g).to_owned())
            .collect())
    }

    async fn ask_graph(
        &self,
        claims: &Arc<Claims>,
        token: Option<&BearerToken>,
        group_ids: &[&str],
    ) -> Result<Vec<String>, GroupError> {
        let inner = &self.inner;
        let (access_token, path) = match inner.access {
            GraphAccess::OnBehalfOf => {
                if claims.is_app_only() {
                    return Err(GroupError::NoUser);
                }
                let token = token.ok_or(GroupError::NoUser)?;
                let scope = format!("{}/GroupMember.Read.All", inner.graph_resource);
                let request = TokenRequest::on_behalf_of(token.clone(), [scope]).with_validated_claims(claims.clone());
                let t = inner.client.acquire(request).await.map_err(GroupError::Token)?;
                (t, "/v1.0/me/checkMemberGroups".to_owned())
            }
            GraphAccess::Application => {
                let oid = claims.object_id().ok_or(GroupError::NoUser)?;
                if !crate::authority::is_guid(oid) {
                    return Err(GroupError::NoUser);
                }
                let scope = format!("{}/.default", inner.graph_resource);
                let t = inner.client.acquire_app_token(&[scope.as_str()]).await.map_err(GroupError::Token)?;
                (t, format!("/v1.0/users/{oid}/checkMemberGroups"))
            }
        };
        let http = inner.http.clone().ok_or(GroupError::Refused {
            status: 0,
            reason: "no HTTP transport (enable the `reqwest` feature)".into(),
        })?;
        let url = format!("{}{path}", inner.graph_base_url);
        let mut found = Vec::new();
        for chunk in group_ids.chunks(CHECK_MEMBER_GROUPS_MAX) {
            let body = serde_json::json!({ "groupIds": chunk }).to_string().into_bytes();
            let request = http::Request::post(&url)
                .header(header::AUTHORIZATION, format!("Bearer {}", access_token.secret()))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json")
                .body(body)
                .map_err(|_| GroupError::Refused { status: 0, reason: "invalid Graph base URL".into() })?;
            let response = http.send(request).await.map_err(GroupError::Request)?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let retry_after = crate::challenge::parse_retry_after(response.headers())
                    .map_or(DEFAULT_RETRY_AFTER, crate::challenge::cap_retry_after);
                return Err(GroupError::Unavailable { status: status.as_u16(), retry_after });
            }
            let json: Option<Value> = serde_json::from_slice(response.body()).ok();
            if status != StatusCode::OK {
                let code = json
                    .as_ref()
                    .and_then(|j| j.pointer("/error/code"))
                    .and_then(Value::as_str)
                    .unwrap_or("no error code")
                    .chars()
                    .take(100)
                    .collect();
                return Err(GroupError::Refused { status: status.as_u16(), reason: code });
            }
            let values =
                json.as_ref().and_then(|j| j.get("value")).and_then(Value::as_array).ok_or_else(|| {
                    GroupError::Refused { status: 200, reason: "the answer has no `value` array".into() }
                })?;
            found.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overage_forms() {
        let c = |j: &str| Claims::from_json(j.as_bytes()).unwrap();
        assert!(has_group_overage(&c(
            r#"{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://graph.windows.net/t/users/o/getMemberObjects"}}}"#
        )));
        assert!(has_group_overage(&c(r#"{"hasgroups":true}"#)));
        assert!(!has_group_overage(&c(r#"{"hasgroups":false}"#)));
        assert!(!has_group_overage(&c(r#"{"groups":["a"]}"#)));
        assert!(!has_group_overage(&c(r#"{"_claim_names":{"other":"src1"}}"#)));
    }

    #[test]
    fn graph_hosts_per_cloud() {
        assert_eq!(graph_endpoint(Cloud::Public), "https://graph.microsoft.com");
        assert_eq!(graph_endpoint(Cloud::UsGovernment), "https://graph.microsoft.us");
        assert_eq!(graph_endpoint(Cloud::China), "https://microsoftgraph.chinacloudapi.cn");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(301));
        assert_eq!(clock.now() - t0, Duration::from_secs(301));
    }
}
