//! [`KeyVaultSource`]: secrets from Azure Key Vault's REST API, with an Entra access token for
//! the vault audience from a [`TokenClient`] (client secret, certificate, AKS workload identity),
//! a [`ManagedIdentity`], the [`DefaultCredential`] chain, or a callback.
//!
//! `GET {vault}/secrets/{name}?api-version=7.4` reads the latest version,
//! `GET {vault}/secrets/{name}/{version}?api-version=7.4` a given one
//! (<https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret>). The answer's
//! `id` (`{vault}/secrets/{name}/{version}`) gives the version; `contentType`, `attributes.exp`
//! and `attributes.nbf` are kept; a disabled secret is refused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::Deserialize;

use super::source::{SecretError, SecretFuture, SecretSource, SecretValue};
use crate::client::chain::DefaultCredential;
use crate::client::managed_identity::ManagedIdentity;
use crate::client::token::TokenClient;
use crate::client::token::request::TokenRequest;
use crate::http::HttpOptions;
use crate::http::{HttpClient, HttpRequest};

/// Key Vault's REST API version this source speaks.
pub const KEY_VAULT_API_VERSION: &str = "7.4";

/// The vault audience of Azure's public cloud (`https://vault.azure.net`).
pub const KEY_VAULT_AUDIENCE: &str = "https://vault.azure.net";

/// A callback returning an access token (the bearer value) for a scope.
type TokenCallback = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

#[derive(Clone)]
enum Credential {
    Client(Arc<TokenClient>),
    ManagedIdentity(Arc<ManagedIdentity>),
    Chain(Arc<DefaultCredential>),
    Callback(TokenCallback),
}

impl Credential {
    fn kind(&self) -> &'static str {
        match self {
            Self::Client(_) => "token client",
            Self::ManagedIdentity(_) => "managed identity",
            Self::Chain(_) => "default credential chain",
            Self::Callback(_) => "callback",
        }
    }

    /// A bearer token for `audience`; `fresh` bypasses the token cache (after a 401). The error
    /// says whether the failure is transient.
    async fn token(&self, audience: &str, fresh: bool) -> Result<String, (String, bool)> {
        let scope = format!("{audience}/.default");
        let from_token_error = |e: crate::error::TokenError| {
            // A transport failure on the way to Entra (connection refused or reset) is an outage
            // to retry, not a refusal: the token client does not retry it itself, the chain does.
            let transient = e.is_retryable() || matches!(e, crate::error::TokenError::Request(_));
            (e.to_string(), transient)
        };
        match self {
            Self::Client(client) => client
                .acquire(TokenRequest::app([scope]).with_force_refresh(fresh))
                .await
                .map(|t| t.secret().to_owned())
                .map_err(from_token_error),
            Self::ManagedIdentity(identity) => {
                identity.acquire_token(audience).await.map(|t| t.secret().to_owned()).map_err(from_token_error)
            }
            Self::Chain(chain) => {
                chain.acquire_token(&scope).await.map(|t| t.secret().to_owned()).map_err(|e| (e.to_string(), true))
            }
            Self::Callback(callback) => callback(scope).await.map_err(|e| (e, true)),
        }
    }
}

/// Secrets from an Azure Key Vault.
///
/// `GET {vault}/secrets/{name}?api-version=7.4` reads the latest version,
/// `GET {vault}/secrets/{name}/{version}?api-version=7.4` a given one
/// (<https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret>). The answer's
/// `id` (`{vault}/secrets/{name}/{version}`) gives the version; `contentType`, `attributes.exp`
/// and `attributes.nbf` are kept; a disabled secret is refused.
///
/// The vault audience follows the vault's host: `*.vault.azure.net` → `https://vault.azure.net`,
/// `*.vault.azure.cn` → `https://vault.azure.cn` (Azure operated by 21Vianet),
/// `*.vault.usgovcloudapi.net` → `https://vault.usgovcloudapi.net` (US Government),
/// `*.managedhsm.azure.net` → `https://managedhsm.azure.net`; any other host (a private
/// endpoint alias, the dev tenant) uses the public cloud's unless
/// [`with_audience`](Self::with_audience) says otherwise.
///
/// Failures: 404 → [`SecretError::NotFound`]; 401/403 → [`SecretError::Denied`] (after one
/// retry with a fresh token on 401); 429, 5xx, transport errors and a transient token failure
/// → [`SecretError::Unavailable`]; a token endpoint refusing the credential →
/// [`SecretError::Denied`]; anything unparseable → [`SecretError::InvalidResponse`].
///
/// # Example
///
/// ```no_run
/// use azad_core::TokenClient;
/// use azad_core::secrets::{KeyVaultSource, SecretSource};
///
/// # #[allow(dead_code)]
/// # async fn run(client: TokenClient) -> Result<(), Box<dyn std::error::Error>> {
/// // `client` from `TokenClient::from_config`: workload identity on AKS, a certificate...
/// let vault = KeyVaultSource::new("https://contoso.vault.azure.net", client)?;
/// let password = vault.get("db-password", None).await?;
/// let pinned = vault.get("db-password", password.version()).await?;
/// assert_eq!(password, pinned);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KeyVaultSource {
    vault_url: String,
    audience: String,
    credential: Credential,
    http: Option<Arc<dyn HttpClient>>,
    name: String,
}

impl fmt::Debug for KeyVaultSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSource")
            .field("vault_url", &self.vault_url)
            .field("audience", &self.audience)
            .field("credential", &self.credential.kind())
            .finish_non_exhaustive()
    }
}

/// The vault audience for a vault URL's host (see [`KeyVaultSource`]).
fn audience_for(host: &str) -> &'static str {
    let host = host.to_ascii_lowercase();
    if host.ends_with(".vault.azure.cn") {
        "https://vault.azure.cn"
    } else if host.ends_with(".vault.usgovcloudapi.net") {
        "https://vault.usgovcloudapi.net"
    } else if host.ends_with(".managedhsm.azure.net") {
        "https://managedhsm.azure.net"
    } else if host.ends_with(".managedhsm.azure.cn") {
        "https://managedhsm.azure.cn"
    } else if host.ends_with(".managedhsm.usgovcloudapi.net") {
        "https://managedhsm.usgovcloudapi.net"
    } else {
        KEY_VAULT_AUDIENCE
    }
}

impl KeyVaultSource {
    fn build(vault_url: &str, credential: Credential) -> Result<Self, SecretError> {
        let url = url::Url::parse(vault_url)
            .map_err(|e| SecretError::misconfigured(format!("the vault URL {vault_url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(SecretError::misconfigured(format!("the vault URL {vault_url:?} is not an http(s) URL")));
        }
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(SecretError::misconfigured(format!(
                "the vault URL {vault_url:?} must use https (plain http only on loopback)"
            )));
        }
        let audience = audience_for(url.host_str().unwrap_or_default()).to_owned();
        Ok(Self {
            vault_url: vault_url.trim_end_matches('/').to_owned(),
            audience,
            credential,
            http: None,
            name: "key-vault".to_owned(),
        })
    }

    /// A vault read with tokens from `client` (its app-only tokens for `{audience}/.default`).
    ///
    /// # Errors
    ///
    /// [`SecretError::Misconfigured`] if `vault_url` is not an https URL (http only on
    /// loopback).
    pub fn new(vault_url: &str, client: TokenClient) -> Result<Self, SecretError> {
        Self::build(vault_url, Credential::Client(Arc::new(client)))
    }

    /// A vault read with tokens from a managed identity (IMDS or App Service).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_managed_identity(vault_url: &str, identity: ManagedIdentity) -> Result<Self, SecretError> {
        Self::build(vault_url, Credential::ManagedIdentity(Arc::new(identity)))
    }

    /// A vault read with tokens from the default credential chain (environment, workload
    /// identity, managed identity, Azure CLI).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_default_credential(vault_url: &str, chain: DefaultCredential) -> Result<Self, SecretError> {
        Self::build(vault_url, Credential::Chain(Arc::new(chain)))
    }

    /// A vault read with tokens from `callback(scope)`, which returns the bearer value or a
    /// reason (never containing a secret) it could not.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_token_callback<F, Fut>(vault_url: &str, callback: F) -> Result<Self, SecretError>
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        let callback: TokenCallback = Arc::new(move |scope| Box::pin(callback(scope)));
        Self::build(vault_url, Credential::Callback(callback))
    }

    /// Overrides the vault audience (the token's `aud`; the scope is `{audience}/.default`).
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sends requests with this HTTP client (default: the crate's reqwest client with default
    /// [`HttpOptions`]).
    #[must_use]
    pub fn with_http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Names this source in audit events and errors (default `key-vault`; useful with two
    /// vaults in one chain).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The vault URL, without a trailing `/`.
    #[must_use]
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The vault audience tokens are requested for.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    async fn read(&self, name: &str, version: Option<&str>) -> Result<SecretValue, SecretError> {
        if !is_valid_name(name) {
            return Err(SecretError::misconfigured(format!(
                "{name:?} is not a Key Vault secret name (1-127 letters, digits and '-')"
            )));
        }
        if let Some(v) = version
            && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(SecretError::misconfigured(format!("{v:?} is not a Key Vault secret version")));
        }
        let http = match &self.http {
            Some(h) => h.clone(),
            None => crate::http::default_client(HttpOptions::default(), &[])
                .ok_or_else(|| SecretError::misconfigured("no HTTP client (enable the `reqwest` feature)"))?,
        };
        let uri = match version {
            Some(v) => format!("{}/secrets/{name}/{v}?api-version={KEY_VAULT_API_VERSION}", self.vault_url),
            None => format!("{}/secrets/{name}?api-version={KEY_VAULT_API_VERSION}", self.vault_url),
        };
        let mut fresh = false;
        loop {
            let token = self.credential.token(&self.audience, fresh).await.map_err(|(why, transient)| {
                let detail = format!("no token for {} from the {}: {why}", self.audience, self.credential.kind());
                if transient { SecretError::unavailable(detail) } else { SecretError::denied(name, detail) }
            })?;
            let request: HttpRequest = http::Request::get(&uri)
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
                .map_err(|e| SecretError::misconfigured(format!("cannot build the request: {e}")))?;
            let response = http
                .send(request)
                .await
                .map_err(|e| SecretError::unavailable_with(format!("GET {name} from {}", self.vault_url), e))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !fresh {
                // A revoked or stale cached token: once more with a fresh one.
                fresh = true;
                continue;
            }
            return parse(name, version, status, response.headers(), response.body());
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Key Vault object names: 1-127 characters of `0-9a-zA-Z-`.
fn is_valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[derive(Deserialize)]
struct SecretBundle {
    value: Option<String>,
    id: Option<String>,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Attributes {
    enabled: Option<bool>,
    exp: Option<u64>,
    nbf: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    innererror: Option<Box<Self>>,
}

/// The error code (and inner code) of a Key Vault error body, never its message (which may
/// echo the request).
fn error_code(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let code = error.code.unwrap_or_else(|| "no code".into());
            match error.innererror.and_then(|i| i.code) {
                Some(inner) => format!("{code}/{inner}"),
                None => code,
            }
        }
        Err(_) => "no Key Vault error body".into(),
    }
}

fn parse(
    name: &str,
    version: Option<&str>,
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<SecretValue, SecretError> {
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Err(SecretError::not_found(name, version)),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(SecretError::denied(name, format!("HTTP {} {}", status.as_u16(), error_code(body))));
        }
        s if s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => {
            let retry_after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(SecretError::Unavailable {
                detail: format!("the vault answered HTTP {} ({})", s.as_u16(), error_code(body)),
                retry_after,
                cause: None,
            });
        }
        s => {
            return Err(SecretError::invalid_response(format!(
                "the vault answered HTTP {} ({})",
                s.as_u16(),
                error_code(body)
            )));
        }
    }
    let bundle: SecretBundle = serde_json::from_slice(body)
        .map_err(|e| SecretError::invalid_response(format!("not a Key Vault secret bundle: {}", e.classify_name())))?;
    let value = bundle.value.ok_or_else(|| SecretError::invalid_response("the secret bundle has no value"))?;
    let attributes = bundle.attributes.unwrap_or(Attributes { enabled: None, exp: None, nbf: None });
    if attributes.enabled == Some(false) {
        return Err(SecretError::denied(name, "the secret is disabled"));
    }
    // `id` is `{vault}/secrets/{name}/{version}`.
    let id_version = bundle.id.as_deref().and_then(|id| {
        let mut parts = id.rsplitn(3, '/');
        let v = parts.next()?;
        let n = parts.next()?;
        n.eq_ignore_ascii_case(name).then(|| v.to_owned())
    });
    let Some(found_version) = id_version else {
        return Err(SecretError::invalid_response("the secret bundle's id does not name this secret and a version"));
    };
    if let Some(asked) = version
        && !asked.eq_ignore_ascii_case(&found_version)
    {
        return Err(SecretError::invalid_response("the vault answered with another version than asked"));
    }
    let mut secret = SecretValue::new(value).with_version(found_version);
    if let Some(content_type) = bundle.content_type {
        secret = secret.with_content_type(content_type);
    }
    // Out-of-range instants from the vault are ignored rather than overflowing `SystemTime`.
    if let Some(exp) = attributes.exp.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))) {
        if exp <= SystemTime::now() {
            // Key Vault still serves an expired secret's value; the attribute is the owner's
            // statement that it should no longer be used, so say so (never the value).
            tracing::warn!(target: "azad::secrets", version = %secret.version().unwrap_or_default(), "the vault's secret is past its `exp` attribute");
        }
        secret = secret.with_expires_at(exp);
    }
    if let Some(nbf) = attributes.nbf.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))) {
        secret = secret.with_not_before(nbf);
    }
    Ok(secret)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

impl SecretSource for KeyVaultSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        Box::pin(self.read(name, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_follows_the_cloud() {
        assert_eq!(audience_for("contoso.vault.azure.net"), "https://vault.azure.net");
        assert_eq!(audience_for("contoso.vault.azure.cn"), "https://vault.azure.cn");
        assert_eq!(audience_for("Contoso.Vault.UsGovCloudApi.Net"), "https://vault.usgovcloudapi.net");
        assert_eq!(audience_for("hsm.managedhsm.azure.net"), "https://managedhsm.azure.net");
        assert_eq!(audience_for("127.0.0.1"), KEY_VAULT_AUDIENCE);
    }

    #[test]
    fn parses_a_secret_bundle_and_its_version() {
        let body = br#"{"value":"v4lue","id":"https://x.vault.azure.net/secrets/db/4387e9f3d6e14c459867679a90fd0f79","contentType":"text/plain","attributes":{"enabled":true,"created":1493938410,"updated":1493938410,"exp":1893456000,"recoveryLevel":"Recoverable+Purgeable"}}"#;
        let s = parse("db", None, StatusCode::OK, &http::HeaderMap::new(), body).unwrap();
        assert_eq!(s.expose(), "v4lue");
        assert_eq!(s.version(), Some("4387e9f3d6e14c459867679a90fd0f79"));
        assert_eq!(s.content_type(), Some("text/plain"));
        assert_eq!(s.expires_at(), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000)));
    }

    #[test]
    fn classifies_failures_without_echoing_bodies() {
        let h = http::HeaderMap::new();
        let garbage = parse("db", None, StatusCode::OK, &h, b"<html>CANARY</html>").unwrap_err();
        assert!(matches!(garbage, SecretError::InvalidResponse { .. }));
        assert!(!garbage.to_string().contains("CANARY"));
        let no_value = parse("db", None, StatusCode::OK, &h, br#"{"id":"https://x/secrets/db/1"}"#).unwrap_err();
        assert!(matches!(no_value, SecretError::InvalidResponse { .. }));
        let other = parse("db", None, StatusCode::OK, &h, br#"{"value":"x","id":"https://x/secrets/other/1"}"#);
        assert!(matches!(other, Err(SecretError::InvalidResponse { .. })));
        let forbidden = br#"{"error":{"code":"Forbidden","message":"CANARY","innererror":{"code":"ForbiddenByRbac"}}}"#;
        let denied = parse("db", None, StatusCode::FORBIDDEN, &h, forbidden).unwrap_err();
        assert!(denied.to_string().contains("Forbidden/ForbiddenByRbac"), "{denied}");
        assert!(!denied.to_string().contains("CANARY"));
        let mut h503 = http::HeaderMap::new();
        h503.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("7"));
        let down = parse("db", None, StatusCode::SERVICE_UNAVAILABLE, &h503, b"{}").unwrap_err();
        assert!(down.is_retryable());
        assert_eq!(down.retry_after(), Some(Duration::from_secs(7)));
        assert!(parse("db", Some("1"), StatusCode::NOT_FOUND, &h, b"{}").unwrap_err().is_not_found());
    }

    #[test]
    fn refuses_plain_http_off_loopback_and_bad_names() {
        let cb = |_s: String| async { Ok::<_, String>("t".to_owned()) };
        assert!(KeyVaultSource::with_token_callback("http://contoso.vault.azure.net", cb).is_err());
        assert!(KeyVaultSource::with_token_callback("http://127.0.0.1:8080", cb).is_ok());
        assert!(KeyVaultSource::with_token_callback("not a url", cb).is_err());
        assert!(is_valid_name("db-password-2"));
        assert!(!is_valid_name("../keys"));
        assert!(!is_valid_name(""));
    }
}
