//! OpenBao / HashiCorp Vault: Kubernetes auth, then KV v2 reads ([`OpenBaoSource`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::source::{SecretError, SecretFuture, SecretSource, SecretValue};
use crate::error::{HttpError, HttpErrorKind};
use crate::http::HttpOptions;
use crate::http::{HttpClient, HttpRequest, HttpResponse};

/// Where the kubelet projects a pod's service-account token.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The largest response accepted from the server (a KV v2 secret is at most ~1 MiB).
const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// How to reach OpenBao (or HashiCorp Vault) and log in with Kubernetes auth.
///
/// Built with [`new`](Self::new) and `with_*`, or from the environment with
/// [`from_env`](Self::from_env) (see [`OpenBaoSource`] for the variables).
#[derive(Clone, PartialEq, Eq)]
pub struct OpenBaoConfig {
    addr: String,
    role: String,
    path: Option<String>,
    mount: String,
    auth_mount: String,
    timeout: Duration,
    max_retries: u32,
    retry_delay: Duration,
    namespace: Option<String>,
    ca_cert: Option<PathBuf>,
    token_path: PathBuf,
}

impl fmt::Debug for OpenBaoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBaoConfig")
            .field("addr", &self.addr)
            .field("role", &self.role)
            .field("path", &self.path)
            .field("mount", &self.mount)
            .field("auth_mount", &self.auth_mount)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_delay", &self.retry_delay)
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.ca_cert)
            .field("token_path", &self.token_path)
            .finish()
    }
}

impl OpenBaoConfig {
    /// The server at `addr` (`http(s)://host:port`, no `/v1`) and the Kubernetes auth `role`,
    /// with the defaults: mount `kv`, auth mount `kubernetes`, 30 s timeout, 3 retries 5 s
    /// apart, no namespace, the platform's CA roots, the token at [`DEFAULT_TOKEN_PATH`].
    #[must_use]
    pub fn new(addr: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            addr: addr.into().trim_end_matches('/').to_owned(),
            role: role.into(),
            path: None,
            mount: "kv".to_owned(),
            auth_mount: "kubernetes".to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_delay: Duration::from_secs(5),
            namespace: None,
            ca_cert: None,
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
        }
    }

    /// From the process environment (`VAULT_ADDR`, `VAULT_ROLE`, `VAULT_PATH`,
    /// `VAULT_MOUNT_POINT`, `VAULT_K8S_AUTH_MOUNT_POINT`, `VAULT_TIMEOUT`,
    /// `VAULT_MAX_RETRIES`, `VAULT_RETRY_DELAY`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
    /// `VAULT_K8S_TOKEN_PATH`). Empty variables count as unset.
    ///
    /// # Errors
    ///
    /// [`SecretError::Misconfigured`] naming the variable when `VAULT_ADDR` or `VAULT_ROLE` is
    /// missing or a value cannot be used.
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading each variable through `lookup` (a map in
    /// tests, another configuration system).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SecretError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required =
            |name: &str| get(name).ok_or_else(|| SecretError::misconfigured(format!("`{name}` is required")));
        let mut config = Self::new(required("VAULT_ADDR")?, required("VAULT_ROLE")?);
        config.check_addr("VAULT_ADDR")?;
        config.path = get("VAULT_PATH").map(|p| p.trim_matches('/').to_owned());
        if let Some(mount) = get("VAULT_MOUNT_POINT") {
            config.mount = mount.trim_matches('/').to_owned();
        }
        if let Some(mount) = get("VAULT_K8S_AUTH_MOUNT_POINT") {
            config.auth_mount = mount.trim_matches('/').to_owned();
        }
        if let Some(t) = get("VAULT_TIMEOUT") {
            config.timeout = parse_duration("VAULT_TIMEOUT", &t)?;
        }
        if let Some(n) = get("VAULT_MAX_RETRIES") {
            config.max_retries = n.parse().map_err(|_| {
                SecretError::misconfigured(format!("`VAULT_MAX_RETRIES` is not a number of retries: {n:?}"))
            })?;
        }
        if let Some(d) = get("VAULT_RETRY_DELAY") {
            config.retry_delay = parse_duration("VAULT_RETRY_DELAY", &d)?;
        }
        config.namespace = get("VAULT_NAMESPACE").map(|n| n.trim_matches('/').to_owned());
        config.ca_cert = get("VAULT_CACERT").map(PathBuf::from);
        if let Some(p) = get("VAULT_K8S_TOKEN_PATH") {
            config.token_path = PathBuf::from(p);
        }
        Ok(config)
    }

    fn check_addr(&self, field: &str) -> Result<(), SecretError> {
        match url::Url::parse(&self.addr) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            _ => Err(SecretError::misconfigured(format!("`{field}` is not an http(s) URL: {:?}", self.addr))),
        }
    }

    /// The KV v2 path read for secret names without `#` (`VAULT_PATH`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into().trim_matches('/').to_owned());
        self
    }

    /// The KV v2 mount (`VAULT_MOUNT_POINT`, default `kv`).
    #[must_use]
    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_owned();
        self
    }

    /// The Kubernetes auth mount (`VAULT_K8S_AUTH_MOUNT_POINT`, default `kubernetes`).
    #[must_use]
    pub fn with_auth_mount(mut self, mount: impl Into<String>) -> Self {
        self.auth_mount = mount.into().trim_matches('/').to_owned();
        self
    }

    /// The timeout of one request (`VAULT_TIMEOUT`, default 30 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a transient failure is retried (`VAULT_MAX_RETRIES`, default 3).
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait between two tries (`VAULT_RETRY_DELAY`, default 5 s).
    #[must_use]
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The namespace, sent as `X-Vault-Namespace` (`VAULT_NAMESPACE`).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into().trim_matches('/').to_owned());
        self
    }

    /// A PEM file of CA certificates to trust for an `https://` address (`VAULT_CACERT`).
    #[must_use]
    pub fn with_ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// The service-account token file (`VAULT_K8S_TOKEN_PATH`, default [`DEFAULT_TOKEN_PATH`]).
    #[must_use]
    pub fn with_token_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_path = path.into();
        self
    }

    /// The server URL.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The Kubernetes auth role.
    #[must_use]
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The default KV v2 path, if any.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The KV v2 mount.
    #[must_use]
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The Kubernetes auth mount.
    #[must_use]
    pub fn auth_mount(&self) -> &str {
        &self.auth_mount
    }

    /// The timeout of one request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The number of retries of a transient failure.
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait between two tries.
    #[must_use]
    pub fn retry_delay(&self) -> Duration {
        self.retry_delay
    }

    /// The namespace, if any.
    #[must_use]
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The CA certificates file, if any.
    #[must_use]
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// The service-account token file.
    #[must_use]
    pub fn token_path(&self) -> &Path {
        &self.token_path
    }
}

/// `30` (seconds), `30s`, `500ms`, `2m`, `1h`.
fn parse_duration(field: &str, value: &str) -> Result<Duration, SecretError> {
    let bad =
        || SecretError::misconfigured(format!("`{field}` is not a duration (`30`, `30s`, `500ms`, `2m`): {value:?}"));
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    Ok(match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    })
}

/// Why an OpenBao call failed, precisely. Converted into a [`SecretError`] for the
/// [`SecretSource`] interface (`From`).
///
/// No variant holds a token, a JWT or a secret value; server error texts are kept only when
/// they do not look like a token, and at most 200 characters each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenBaoError {
    /// The service-account token file could not be read.
    #[error("cannot read the service-account token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The login named a role that does not exist (400 `invalid role name`).
    #[error("OpenBao has no role {role:?} at auth/{mount}")]
    InvalidRole {
        /// The role.
        role: String,
        /// The auth mount.
        mount: String,
    },
    /// The login was refused (403): the service account or namespace is not bound to the
    /// role, the cluster's TokenReview did not authenticate the token, or the auth mount does
    /// not exist.
    #[error("OpenBao refused the Kubernetes login with role {role:?}: {}", errors.join("; "))]
    LoginDenied {
        /// The role.
        role: String,
        /// The server's errors.
        errors: Vec<String>,
    },
    /// The namespace does not exist (404 `namespace not found`).
    #[error("OpenBao namespace {namespace:?} not found")]
    NamespaceNotFound {
        /// The namespace.
        namespace: String,
    },
    /// The role's policies do not allow this read (403 `permission denied`, after one fresh
    /// login).
    #[error("OpenBao denied reading {path:?}: {}", errors.join("; "))]
    PermissionDenied {
        /// The API path.
        path: String,
        /// The server's errors.
        errors: Vec<String>,
    },
    /// No secret at this path, no such version, or a key missing from the secret.
    #[error("no KV v2 secret at {path:?}{}{}", version.map(|v| format!(" version {v}")).unwrap_or_default(), key.as_ref().map(|k| format!(" with key {k:?}")).unwrap_or_default())]
    NotFound {
        /// The KV path (without the mount).
        path: String,
        /// The version asked for.
        version: Option<u64>,
        /// The key asked for, when the secret exists but lacks it.
        key: Option<String>,
    },
    /// The version exists but was deleted (soft) or destroyed.
    #[error("KV v2 secret {path:?} version {version} was {}", if *destroyed { "destroyed" } else { "deleted" })]
    Deleted {
        /// The KV path.
        path: String,
        /// The version.
        version: u64,
        /// Destroyed for good (else soft-deleted, recoverable with `undelete`).
        destroyed: bool,
    },
    /// The server could not be reached or answered with a transient failure (5xx, 429, 412,
    /// sealed), after every retry.
    #[error("OpenBao unavailable after {attempts} attempt(s): {detail}")]
    Unavailable {
        /// What failed last.
        detail: String,
        /// How many tries were made.
        attempts: u32,
        /// The transport error, if that was the failure.
        #[source]
        source: Option<HttpError>,
    },
    /// The server answered with something that is not an OpenBao/Vault response.
    #[error("invalid response from OpenBao: {detail}")]
    InvalidResponse {
        /// What was wrong (never the body).
        detail: String,
    },
    /// Another refusal (400, 405...).
    #[error("OpenBao answered HTTP {status}: {}", errors.join("; "))]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's errors.
        errors: Vec<String>,
    },
    /// The source cannot work as configured.
    #[error("OpenBao source misconfigured: {detail}")]
    Misconfigured {
        /// What is wrong.
        detail: String,
    },
}

impl From<OpenBaoError> for SecretError {
    fn from(e: OpenBaoError) -> Self {
        let detail = e.to_string();
        match e {
            OpenBaoError::TokenFile { .. }
            | OpenBaoError::InvalidRole { .. }
            | OpenBaoError::NamespaceNotFound { .. }
            | OpenBaoError::Misconfigured { .. } => Self::misconfigured(detail),
            OpenBaoError::LoginDenied { .. }
            | OpenBaoError::PermissionDenied { .. }
            | OpenBaoError::Status { status: 401 | 403, .. } => Self::Denied { name: String::new(), detail },
            OpenBaoError::NotFound { path, version, key } => Self::NotFound {
                name: key.map_or(path.clone(), |k| format!("{path}#{k}")),
                version: version.map(|v| v.to_string()),
            },
            OpenBaoError::Deleted { path, version, .. } => {
                Self::NotFound { name: path, version: Some(version.to_string()) }
            }
            OpenBaoError::Unavailable { source: Some(source), .. } => Self::unavailable_with(detail, source),
            OpenBaoError::Unavailable { source: None, .. } => Self::unavailable(detail),
            OpenBaoError::InvalidResponse { .. } | OpenBaoError::Status { .. } => Self::invalid_response(detail),
        }
    }
}

/// A KV v2 secret: its key/value data (never printed) and its metadata.
#[derive(Clone)]
pub struct KvSecret {
    path: String,
    /// The `data` object, as JSON text.
    data: Arc<SecretString>,
    version: u64,
    created_time: String,
    custom_metadata: BTreeMap<String, String>,
}

impl fmt::Debug for KvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvSecret")
            .field("path", &self.path)
            .field("keys", &self.keys())
            .field("data", &"[redacted]")
            .field("version", &self.version)
            .field("created_time", &self.created_time)
            .field("custom_metadata", &self.custom_metadata)
            .finish()
    }
}

impl KvSecret {
    fn object(&self) -> Map<String, Value> {
        serde_json::from_str(self.data.expose_secret()).unwrap_or_default()
    }

    /// The KV path (without the mount).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The version number (`metadata.version`, from 1).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When this version was written (`metadata.created_time`, RFC 3339).
    #[must_use]
    pub fn created_time(&self) -> &str {
        &self.created_time
    }

    /// The secret's custom metadata (`metadata.custom_metadata`).
    #[must_use]
    pub fn custom_metadata(&self) -> &BTreeMap<String, String> {
        &self.custom_metadata
    }

    /// The keys of the data, sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.object().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    }

    /// The value of `key`, with this version: a string as is, any other JSON value as its
    /// JSON text.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<SecretValue> {
        let value = self.object().remove(key)?;
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Some(SecretValue::new(text).with_version(self.version.to_string()))
    }

    /// The data deserialized into `T` (the application's typed configuration).
    ///
    /// # Errors
    ///
    /// [`SecretError::InvalidResponse`] when the data does not fit `T` (the message names the
    /// serde error's position and kind, never a value).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, SecretError> {
        serde_json::from_str(self.data.expose_secret()).map_err(|e| {
            SecretError::invalid_response(format!(
                "KV v2 secret {:?} version {} does not fit the configuration type ({:?} error at column {})",
                self.path,
                self.version,
                e.classify(),
                e.column()
            ))
        })
    }

    /// The data as environment variables: each key upper-cased with `-`, `.` and `/` turned
    /// into `_`, after `prefix`; strings as is, other values as JSON text. Sorted by name.
    #[must_use]
    pub fn env_pairs(&self, prefix: &str) -> Vec<(String, SecretString)> {
        let mut pairs: Vec<(String, SecretString)> = self
            .object()
            .into_iter()
            .map(|(k, v)| {
                let name: String = k
                    .chars()
                    .map(|c| if matches!(c, '-' | '.' | '/' | ' ') { '_' } else { c.to_ascii_uppercase() })
                    .collect();
                let value = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (format!("{prefix}{name}"), SecretString::from(value))
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs
    }
}

/// The client token and its lease.
struct Session {
    token: SecretString,
    obtained: Instant,
    /// Zero: no expiry (a root or periodic token without TTL).
    lease: Duration,
    renewable: bool,
}

impl Session {
    fn expires_at(&self) -> Option<Instant> {
        (!self.lease.is_zero()).then(|| self.obtained + self.lease)
    }

    /// Renew once two thirds of the lease have passed (what Vault Agent does).
    fn renew_at(&self) -> Option<Instant> {
        (!self.lease.is_zero()).then(|| self.obtained + self.lease * 2 / 3)
    }
}

/// OpenBao / HashiCorp Vault with Kubernetes auth and KV v2: a [`SecretSource`], and a small
/// KV v2 client ([`read`](Self::read), [`load_config`](Self::load_config)). Clones share the
/// session (one client token).
///
/// [`OpenBaoSource`] logs in the way a pod does: it reads the pod's service-account token
/// from its file (again at every login: the kubelet rotates projected tokens), sends it with a
/// role to `POST /v1/auth/{auth mount}/login` (OpenBao asks the cluster's TokenReview API
/// whether the token is genuine and checks the role's bound service account names and
/// namespaces), and keeps the client token it gets back (in a [`SecretString`], never
/// printed). Before the token's lease ends it renews it (`POST /v1/auth/token/renew-self`,
/// once two thirds of the lease have passed) or logs in again; a read refused with 403 is
/// retried once after a fresh login (a token revoked or expired on the server's side). It
/// reads `GET /v1/{kv mount}/data/{path}` (the latest version) or `…?version=N`.
///
/// Configured by the variables teams already use ([`OpenBaoConfig::from_env`]):
///
/// | variable | meaning | default |
/// | --- | --- | --- |
/// | `VAULT_ADDR` | server URL, e.g. `https://openbao.vault.svc:8200` | required |
/// | `VAULT_ROLE` | Kubernetes auth role | required |
/// | `VAULT_PATH` | KV v2 path read for names without `#` | none |
/// | `VAULT_MOUNT_POINT` | KV v2 mount | `kv` |
/// | `VAULT_K8S_AUTH_MOUNT_POINT` | Kubernetes auth mount | `kubernetes` |
/// | `VAULT_TIMEOUT` | timeout of one request (`30`, `30s`, `500ms`, `1m`) | 30 s |
/// | `VAULT_MAX_RETRIES` | retries of a transient failure (connection, 5xx, 429, 412) | 3 |
/// | `VAULT_RETRY_DELAY` | wait between two tries | 5 s |
/// | `VAULT_NAMESPACE` | namespace (`X-Vault-Namespace`) | none |
/// | `VAULT_CACERT` | PEM file of CA certificates to trust for `https://` | platform roots |
/// | `VAULT_K8S_TOKEN_PATH` | the service-account token file | [`DEFAULT_TOKEN_PATH`] |
///
/// As a [`SecretSource`] (name `"openbao"`), a secret name is either `key` (a key of the
/// secret at `VAULT_PATH`) or `path#key`; the version is the KV v2 version number. For a whole
/// path, [`OpenBaoSource::read`] returns a [`KvSecret`], and
/// [`OpenBaoSource::load_config`] deserializes it into the application's typed configuration;
/// [`read_env_blocking`] reads it as environment variables before the async runtime starts.
///
/// Sources: OpenBao API docs, "Kubernetes auth method (API)" (`/auth/kubernetes/login`), "KV
/// secrets engine - version 2 (API)" (`/:secret-mount-path/data/:path`), "Token auth method
/// (API)" (`/auth/token/renew-self`), "Namespaces" (`X-Vault-Namespace`), and Vault's
/// environment variables (`VAULT_ADDR`, `VAULT_NAMESPACE`, `VAULT_CACERT`).
///
/// # Example
///
/// ```no_run
/// # #[allow(dead_code)]
/// # async fn run() -> Result<(), azad_core::secrets::SecretError> {
/// use azad_core::secrets::{OpenBaoConfig, OpenBaoSource, SecretSource};
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     database_url: String,
///     client_secret: String,
/// }
///
/// // VAULT_ADDR, VAULT_ROLE, VAULT_PATH=payments/api, ...
/// let bao = OpenBaoSource::new(OpenBaoConfig::from_env()?)?;
/// let settings: Settings = bao.load_config(None).await?;
/// let secret = bao.get("client_secret", None).await?; // the latest version
/// let older = bao.get("payments/api#client_secret", Some("1")).await?;
/// # let _ = (settings.database_url, settings.client_secret, secret, older);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenBaoSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: OpenBaoConfig,
    http: Arc<dyn HttpClient>,
    session: tokio::sync::Mutex<Option<Session>>,
    logins: AtomicU64,
    renewals: AtomicU64,
}

impl fmt::Debug for OpenBaoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBaoSource").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// The server's `{"errors": [...]}`, cleaned: nothing that looks like a token, 200 characters
/// at most each.
fn server_errors(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !looks_like_a_token(e))
        .map(|e| e.chars().take(200).collect())
        .collect()
}

/// A JWT, or a client token (`hvs.…`, `hvb.…`, `s.…` of older servers).
fn looks_like_a_token(text: &str) -> bool {
    text.contains("eyJ")
        || text
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .any(|word| ["hvs.", "hvb.", "hvr.", "s.", "b."].iter().any(|p| word.starts_with(p) && word.len() >= 20))
}

fn is_transient(status: StatusCode) -> bool {
    // 412: a KV v2 read on a performance standby that has not caught up yet; 429: rate limit
    // or a standby; 5xx: sealed, no leader, overloaded.
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::PRECONDITION_FAILED
}

impl OpenBaoSource {
    /// A source for `config`, with its own HTTPS client (the request timeout, the CA file,
    /// no redirects). Nothing is sent until the first read.
    ///
    /// # Errors
    ///
    /// [`SecretError::Misconfigured`] when the address is not an http(s) URL or the CA file
    /// cannot be read or holds no certificate.
    pub fn new(config: OpenBaoConfig) -> Result<Self, SecretError> {
        config.check_addr("addr")?;
        let mut roots = Vec::new();
        if let Some(path) = &config.ca_cert {
            let text = std::fs::read(path)
                .map_err(|e| SecretError::misconfigured(format!("cannot read the CA file {} ({e})", path.display())))?;
            roots = pem::parse_many(&text)
                .map_err(|e| SecretError::misconfigured(format!("the CA file {} is not PEM ({e})", path.display())))?
                .into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(|p| p.contents().to_vec())
                .collect();
            if roots.is_empty() {
                return Err(SecretError::misconfigured(format!("the CA file {} holds no certificate", path.display())));
            }
        }
        let options = HttpOptions {
            connect_timeout: config.timeout.min(Duration::from_secs(5)),
            timeout: config.timeout,
            max_response_bytes: MAX_RESPONSE_BYTES,
        };
        let http = crate::http::ReqwestClient::with_extra_roots(options, &roots)
            .map_err(|e| SecretError::misconfigured(format!("cannot build the HTTP client ({e})")))?;
        Ok(Self::with_http_client(config, Arc::new(http)))
    }

    /// A source sending its requests through `http` (a recording, a test double, a client
    /// with a proxy). `VAULT_TIMEOUT` and `VAULT_CACERT` are then that client's business.
    #[must_use]
    pub fn with_http_client(config: OpenBaoConfig, http: Arc<dyn HttpClient>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                session: tokio::sync::Mutex::new(None),
                logins: AtomicU64::new(0),
                renewals: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &OpenBaoConfig {
        &self.inner.config
    }

    /// How many Kubernetes logins succeeded so far (diagnostics; tests of renewal).
    #[must_use]
    pub fn logins(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// How many token renewals (`renew-self`) succeeded so far.
    #[must_use]
    pub fn renewals(&self) -> u64 {
        self.inner.renewals.load(Ordering::Relaxed)
    }

    /// Logs in now (reading the token file again), replacing the current client token.
    ///
    /// # Errors
    ///
    /// [`OpenBaoError::TokenFile`], [`OpenBaoError::InvalidRole`],
    /// [`OpenBaoError::LoginDenied`], [`OpenBaoError::NamespaceNotFound`],
    /// [`OpenBaoError::Unavailable`], [`OpenBaoError::InvalidResponse`].
    pub async fn login(&self) -> Result<(), OpenBaoError> {
        let mut session = self.inner.session.lock().await;
        *session = Some(self.fresh_login().await?);
        Ok(())
    }

    /// Reads the KV v2 secret at `path` (without the mount): the latest version, or `version`.
    ///
    /// # Errors
    ///
    /// [`OpenBaoError::NotFound`], [`OpenBaoError::Deleted`],
    /// [`OpenBaoError::PermissionDenied`] (after one fresh login), the login's errors,
    /// [`OpenBaoError::Unavailable`], [`OpenBaoError::InvalidResponse`].
    pub async fn read(&self, path: &str, version: Option<u64>) -> Result<KvSecret, OpenBaoError> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Err(OpenBaoError::Misconfigured { detail: "an empty KV v2 path".into() });
        }
        let api_path = match version {
            Some(v) => format!("{}/data/{path}?version={v}", self.inner.config.mount),
            None => format!("{}/data/{path}", self.inner.config.mount),
        };
        let response = self.authenticated(Method::GET, &api_path).await?;
        parse_kv(path, version, response.status(), response.body())
    }

    /// Reads the KV v2 secret at `path` (`None`: the configured `VAULT_PATH`), latest
    /// version, into the application's typed configuration: seed-style start-up.
    ///
    /// # Errors
    ///
    /// [`SecretError::Misconfigured`] without a path, the read's errors (converted), and
    /// [`SecretError::InvalidResponse`] when the data does not fit `T`.
    pub async fn load_config<T: DeserializeOwned>(&self, path: Option<&str>) -> Result<T, SecretError> {
        let path = self.path_or_default(path)?;
        self.read(&path, None).await?.deserialize()
    }

    fn path_or_default(&self, path: Option<&str>) -> Result<String, SecretError> {
        path.map(str::to_owned)
            .or_else(|| self.inner.config.path.clone())
            .ok_or_else(|| SecretError::misconfigured("no KV v2 path given and `VAULT_PATH` is not set"))
    }

    /// A valid client token: the current one, renewed or replaced when due.
    async fn token(&self) -> Result<SecretString, OpenBaoError> {
        let mut guard = self.inner.session.lock().await;
        let now = Instant::now();
        if let Some(session) = guard.as_ref() {
            let fresh = session.renew_at().is_none_or(|at| now < at);
            if fresh {
                return Ok(session.token.clone());
            }
            let alive = session.expires_at().is_some_and(|at| now + Duration::from_secs(1) < at);
            if session.renewable && alive {
                match self.renew(&session.token).await {
                    Ok(renewed) => {
                        let token = renewed.token.clone();
                        *guard = Some(renewed);
                        return Ok(token);
                    }
                    Err(e) => {
                        tracing::info!(target: "azad::secrets", source = "openbao", error = %e, "token renewal failed; logging in again");
                    }
                }
            }
        }
        let session = self.fresh_login().await?;
        let token = session.token.clone();
        *guard = Some(session);
        Ok(token)
    }

    async fn fresh_login(&self) -> Result<Session, OpenBaoError> {
        let config = &self.inner.config;
        // Read again at every login: the kubelet rotates projected tokens.
        let jwt = tokio::fs::read_to_string(&config.token_path)
            .await
            .map_err(|source| OpenBaoError::TokenFile { path: config.token_path.clone(), source })?;
        let jwt = SecretString::from(jwt.trim().to_owned());
        let body = serde_json::json!({"role": config.role, "jwt": jwt.expose_secret()}).to_string();
        let path = format!("auth/{}/login", config.auth_mount);
        let response = self.send(Method::POST, &path, Some(body), None).await?;
        let status = response.status();
        match status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST => {
                let errors = server_errors(response.body());
                if errors.iter().any(|e| e.contains("invalid role name")) {
                    return Err(OpenBaoError::InvalidRole {
                        role: config.role.clone(),
                        mount: config.auth_mount.clone(),
                    });
                }
                return Err(OpenBaoError::Status { status: 400, errors });
            }
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                return Err(OpenBaoError::LoginDenied {
                    role: config.role.clone(),
                    errors: server_errors(response.body()),
                });
            }
            _ => return Err(self.unexpected(status, response.body())),
        }
        let session = parse_auth(response.body())?;
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "azad::secrets", source = "openbao", role = %config.role, lease_secs = session.lease.as_secs(), renewable = session.renewable, "logged in with Kubernetes auth");
        Ok(session)
    }

    async fn renew(&self, token: &SecretString) -> Result<Session, OpenBaoError> {
        let response = self.send(Method::POST, "auth/token/renew-self", Some("{}".into()), Some(token)).await?;
        if response.status() != StatusCode::OK {
            return Err(self.unexpected(response.status(), response.body()));
        }
        let session = parse_auth(response.body())?;
        // At the role's maximum TTL the server renews for what is left, possibly nothing:
        // then only a fresh login helps.
        if session.lease < Duration::from_secs(2) {
            return Err(OpenBaoError::InvalidResponse {
                detail: "renewal granted no more time (maximum TTL reached)".into(),
            });
        }
        self.inner.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "azad::secrets", source = "openbao", lease_secs = session.lease.as_secs(), "client token renewed");
        Ok(session)
    }

    /// A request with the client token; on 403, one fresh login and one more try.
    async fn authenticated(&self, method: Method, path: &str) -> Result<HttpResponse, OpenBaoError> {
        let token = self.token().await?;
        let response = self.send(method.clone(), path, None, Some(&token)).await?;
        if response.status() != StatusCode::FORBIDDEN {
            return Ok(response);
        }
        // The token may have expired or been revoked on the server's side: log in once more.
        tracing::debug!(target: "azad::secrets", source = "openbao", path, "403: logging in again once");
        let token = {
            let mut guard = self.inner.session.lock().await;
            let session = self.fresh_login().await?;
            let token = session.token.clone();
            *guard = Some(session);
            token
        };
        let response = self.send(method, path, None, Some(&token)).await?;
        if response.status() == StatusCode::FORBIDDEN {
            return Err(OpenBaoError::PermissionDenied {
                path: path.to_owned(),
                errors: server_errors(response.body()),
            });
        }
        Ok(response)
    }

    fn unexpected(&self, status: StatusCode, body: &[u8]) -> OpenBaoError {
        let errors = server_errors(body);
        if status == StatusCode::NOT_FOUND && errors.iter().any(|e| e.contains("namespace not found")) {
            return OpenBaoError::NamespaceNotFound {
                namespace: self.inner.config.namespace.clone().unwrap_or_default(),
            };
        }
        if serde_json::from_slice::<Value>(body).is_err() {
            return OpenBaoError::InvalidResponse {
                detail: format!("HTTP {} with a body that is not JSON", status.as_u16()),
            };
        }
        OpenBaoError::Status { status: status.as_u16(), errors }
    }

    /// One API call with retries of transient failures.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&SecretString>,
    ) -> Result<HttpResponse, OpenBaoError> {
        let config = &self.inner.config;
        let url = format!("{}/v1/{path}", config.addr);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut builder =
                http::Request::builder().method(method.clone()).uri(&url).header("X-Vault-Request", "true");
            if let Some(token) = token {
                let mut value = http::HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    OpenBaoError::InvalidResponse { detail: "a client token that is not a header value".into() }
                })?;
                value.set_sensitive(true);
                builder = builder.header("X-Vault-Token", value);
            }
            if let Some(ns) = &config.namespace {
                builder = builder.header("X-Vault-Namespace", ns.as_str());
            }
            if body.is_some() {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            }
            let request: HttpRequest = builder.body(body.clone().unwrap_or_default().into_bytes()).map_err(|e| {
                OpenBaoError::Misconfigured { detail: format!("cannot build a request to {path} ({e})") }
            })?;
            let (detail, source) = match self.inner.http.send(request).await {
                Ok(response) if is_transient(response.status()) => {
                    let errors = server_errors(response.body());
                    let sealed = errors.iter().any(|e| e.contains("sealed"));
                    (format!("HTTP {}{}", response.status().as_u16(), if sealed { " (sealed)" } else { "" }), None)
                }
                Ok(response) => return Ok(response),
                Err(e) if e.kind() == HttpErrorKind::TooLarge => {
                    return Err(OpenBaoError::InvalidResponse { detail: "response larger than 2 MiB".into() });
                }
                Err(e) if e.kind() == HttpErrorKind::Redirect => {
                    return Err(OpenBaoError::InvalidResponse { detail: "a redirect (never followed)".into() });
                }
                Err(e) => (format!("{path}: {e}"), Some(e)),
            };
            if attempts > config.max_retries {
                tracing::warn!(target: "azad::secrets", source = "openbao", path, attempts, %detail, "OpenBao unavailable");
                return Err(OpenBaoError::Unavailable { detail, attempts, source });
            }
            tracing::debug!(target: "azad::secrets", source = "openbao", path, attempts, %detail, "transient failure; retrying");
            tokio::time::sleep(config.retry_delay).await;
        }
    }
}

/// The longest client-token lease taken from a server's answer: 32 days (OpenBao's default
/// `max_lease_ttl`); a longer one is treated as this long, so it is renewed in time anyway.
const MAX_LEASE_SECS: u64 = 32 * 24 * 3600;

/// The `auth` block of a login or renewal.
fn parse_auth(body: &[u8]) -> Result<Session, OpenBaoError> {
    #[derive(Deserialize)]
    struct Response {
        auth: Option<Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        client_token: String,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
    }
    let parsed: Response = serde_json::from_slice(body).map_err(|e| OpenBaoError::InvalidResponse {
        detail: format!("login answer is not an auth response ({:?})", e.classify()),
    })?;
    let auth =
        parsed.auth.ok_or_else(|| OpenBaoError::InvalidResponse { detail: "login answer has no `auth`".into() })?;
    if auth.client_token.is_empty() {
        return Err(OpenBaoError::InvalidResponse { detail: "login answer has an empty client token".into() });
    }
    Ok(Session {
        token: SecretString::from(auth.client_token),
        obtained: Instant::now(),
        // A server's lease is bounded before any arithmetic on it (a hostile or broken answer
        // of u64::MAX seconds would overflow `Instant` and `Duration` math later).
        lease: Duration::from_secs(auth.lease_duration.min(MAX_LEASE_SECS)),
        renewable: auth.renewable,
    })
}

/// A KV v2 read's answer.
fn parse_kv(path: &str, version: Option<u64>, status: StatusCode, body: &[u8]) -> Result<KvSecret, OpenBaoError> {
    #[derive(Deserialize)]
    struct Response {
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        data: Option<Map<String, Value>>,
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        version: u64,
        #[serde(default)]
        created_time: String,
        #[serde(default)]
        deletion_time: String,
        #[serde(default)]
        destroyed: bool,
        #[serde(default)]
        custom_metadata: Option<BTreeMap<String, String>>,
    }
    let invalid = |detail: String| OpenBaoError::InvalidResponse { detail };
    let parsed: Result<Response, _> = serde_json::from_slice(body);
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => {
            // A deleted or destroyed version answers 404 with its metadata.
            if let Ok(Response { data: Some(Data { data: None, metadata: Some(m) }) }) = parsed
                && (m.destroyed || !m.deletion_time.is_empty())
            {
                return Err(OpenBaoError::Deleted {
                    path: path.to_owned(),
                    version: m.version,
                    destroyed: m.destroyed,
                });
            }
            let errors = server_errors(body);
            if errors.iter().any(|e| e.contains("namespace not found")) {
                return Err(OpenBaoError::NamespaceNotFound { namespace: String::new() });
            }
            if serde_json::from_slice::<Value>(body).is_err() {
                return Err(invalid("HTTP 404 with a body that is not JSON".into()));
            }
            return Err(OpenBaoError::NotFound { path: path.to_owned(), version, key: None });
        }
        other => {
            return Err(if serde_json::from_slice::<Value>(body).is_err() {
                invalid(format!("HTTP {} with a body that is not JSON", other.as_u16()))
            } else {
                OpenBaoError::Status { status: other.as_u16(), errors: server_errors(body) }
            });
        }
    }
    let parsed = parsed.map_err(|e| invalid(format!("not a KV v2 answer ({:?} error)", e.classify())))?;
    let data = parsed.data.ok_or_else(|| invalid("a KV v2 answer without `data` (a KV v1 mount?)".into()))?;
    let metadata =
        data.metadata.ok_or_else(|| invalid("a KV v2 answer without `data.metadata` (a KV v1 mount?)".into()))?;
    let Some(object) = data.data else {
        return Err(OpenBaoError::Deleted {
            path: path.to_owned(),
            version: metadata.version,
            destroyed: metadata.destroyed,
        });
    };
    Ok(KvSecret {
        path: path.to_owned(),
        data: Arc::new(SecretString::from(Value::Object(object).to_string())),
        version: metadata.version,
        created_time: metadata.created_time,
        custom_metadata: metadata.custom_metadata.unwrap_or_default(),
    })
}

impl SecretSource for OpenBaoSource {
    fn name(&self) -> &str {
        "openbao"
    }

    /// `name` is `key` (a key of the secret at `VAULT_PATH`) or `path#key`; `version` the KV
    /// v2 version number.
    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        Box::pin(async move {
            let (path, key) = match name.rsplit_once('#') {
                Some((path, key)) => (path.to_owned(), key),
                None => (self.path_or_default(None)?, name),
            };
            let number = match version {
                None => None,
                Some(v) => Some(v.parse::<u64>().map_err(|_| SecretError::not_found(name, version))?),
            };
            let secret = self.read(&path, number).await.map_err(|e| match SecretError::from(e) {
                SecretError::Denied { detail, .. } => SecretError::denied(name, detail),
                SecretError::NotFound { .. } => SecretError::not_found(name, version),
                other => other,
            })?;
            secret.get(key).ok_or_else(|| SecretError::not_found(name, version))
        })
    }
}

/// Seed-style start-up, for the process environment: reads the KV v2 secret at `path`
/// (`None`: `VAULT_PATH`) with `config` on a private single-threaded runtime, shuts that
/// runtime down (joining its blocking threads), and returns the variables to set: each key
/// named as [`KvSecret::env_pairs`] does after `prefix`, with its value.
///
/// Call it in `main` **before** the async runtime or any other thread starts, then set the
/// variables there and only there. `std::env::set_var` is `unsafe` since Rust 2024: writing the
/// environment while another thread reads it (libc's `getenv`, used by DNS resolution, time
/// zones, `std::env::var`) is undefined behaviour on most platforms, and once a Tokio runtime
/// runs, its worker and blocking threads may read it at any time. azad itself contains no
/// `unsafe` code (`forbid(unsafe_code)`), so the one `set_var` is the application's, in its
/// single-threaded `main`; or it passes the variables to a child process
/// (`std::process::Command::envs`), which needs no `unsafe`. Once a runtime runs, read a typed
/// configuration with [`OpenBaoSource::load_config`] instead.
///
/// # Errors
///
/// The read's errors (converted), and [`SecretError::Misconfigured`] when the private runtime
/// cannot be built or when it is called from inside a Tokio runtime (it would block that
/// runtime, and the process is multi-threaded by then).
///
/// # Example
///
/// ```no_run
/// use azad_core::secrets::{OpenBaoConfig, read_env_blocking};
/// use secrecy::ExposeSecret;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Before any thread: VAULT_ADDR, VAULT_ROLE, VAULT_PATH come from the pod's manifest.
///     let vars = read_env_blocking(&OpenBaoConfig::from_env()?, None, "APP_")?;
///     let mut server = std::process::Command::new("/app/server");
///     server.envs(vars.iter().map(|(name, value)| (name, value.expose_secret())));
///     let status = server.status()?;
///     std::process::exit(status.code().unwrap_or(1));
/// }
/// ```
pub fn read_env_blocking(
    config: &OpenBaoConfig,
    path: Option<&str>,
    prefix: &str,
) -> Result<Vec<(String, SecretString)>, SecretError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SecretError::misconfigured(
            "read_env_blocking runs before the async runtime starts; inside it, use OpenBaoSource::load_config",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SecretError::misconfigured(format!("cannot start a runtime to read OpenBao ({e})")))?;
    let pairs = runtime.block_on(async {
        let source = OpenBaoSource::new(config.clone())?;
        let path = source.path_or_default(path)?;
        Ok::<_, SecretError>(source.read(&path, None).await?.env_pairs(prefix))
    });
    // Joins the runtime's blocking threads (DNS lookups) before the caller writes the environment.
    drop(runtime);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_lease_from_the_server_is_bounded_and_never_overflows() {
        let body = br#"{"auth":{"client_token":"s.abc","lease_duration":18446744073709551615,"renewable":true}}"#;
        let session = parse_auth(body).unwrap();
        assert_eq!(session.lease, Duration::from_secs(MAX_LEASE_SECS));
        assert!(session.renew_at().unwrap() < session.expires_at().unwrap());
    }

    #[test]
    fn configuration_from_the_usual_variables() {
        let vars: std::collections::HashMap<&str, &str> = [
            ("VAULT_ADDR", "https://openbao.vault.svc:8200/"),
            ("VAULT_ROLE", "payments-api"),
            ("VAULT_PATH", "/payments/api/"),
            ("VAULT_TIMEOUT", "1500ms"),
            ("VAULT_MAX_RETRIES", "5"),
            ("VAULT_RETRY_DELAY", "2"),
            ("VAULT_NAMESPACE", "team-a/"),
            ("VAULT_K8S_AUTH_MOUNT_POINT", "k8s-prod"),
            ("VAULT_MOUNT_POINT", ""),
        ]
        .into_iter()
        .collect();
        let config = OpenBaoConfig::from_lookup(|n| vars.get(n).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(config.addr(), "https://openbao.vault.svc:8200");
        assert_eq!(config.role(), "payments-api");
        assert_eq!(config.path(), Some("payments/api"));
        assert_eq!(config.mount(), "kv", "an empty variable is unset");
        assert_eq!(config.auth_mount(), "k8s-prod");
        assert_eq!(config.timeout(), Duration::from_millis(1500));
        assert_eq!(config.max_retries(), 5);
        assert_eq!(config.retry_delay(), Duration::from_secs(2));
        assert_eq!(config.namespace(), Some("team-a"));
        assert_eq!(config.token_path(), Path::new(DEFAULT_TOKEN_PATH));
    }

    #[test]
    fn defaults_and_refusals() {
        let only = |pairs: &'static [(&'static str, &'static str)]| {
            OpenBaoConfig::from_lookup(move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
        };
        let c = only(&[("VAULT_ADDR", "http://127.0.0.1:8200"), ("VAULT_ROLE", "r")]).unwrap();
        assert_eq!(
            (c.timeout(), c.max_retries(), c.retry_delay()),
            (Duration::from_secs(30), 3, Duration::from_secs(5))
        );
        assert_eq!((c.mount(), c.auth_mount()), ("kv", "kubernetes"));
        let e = only(&[("VAULT_ROLE", "r")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
        let e = only(&[("VAULT_ADDR", "http://x"), ("VAULT_ROLE", "r"), ("VAULT_TIMEOUT", "soon")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_TIMEOUT"), "{e}");
        let e = only(&[("VAULT_ADDR", "http://x"), ("VAULT_ROLE", "r"), ("VAULT_MAX_RETRIES", "-1")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_MAX_RETRIES"), "{e}");
        let e = only(&[("VAULT_ADDR", "openbao:8200"), ("VAULT_ROLE", "r")]).unwrap_err();
        assert!(matches!(e, SecretError::Misconfigured { .. }), "{e}");
    }

    #[test]
    fn kv_answers_are_parsed_strictly() {
        let ok = br#"{"data":{"data":{"password":"CANARY-1","port":5432},"metadata":{"created_time":"2026-11-30T00:36:20Z","custom_metadata":{"owner":"payments"},"deletion_time":"","destroyed":false,"version":3}}}"#;
        let secret = parse_kv("app", None, StatusCode::OK, ok).unwrap();
        assert_eq!(secret.version(), 3);
        assert_eq!(secret.keys(), ["password", "port"]);
        assert_eq!(secret.get("password").unwrap().expose(), "CANARY-1");
        assert_eq!(secret.get("port").unwrap().expose(), "5432");
        assert_eq!(secret.custom_metadata()["owner"], "payments");
        assert!(!format!("{secret:?}").contains("CANARY"), "Debug never shows values");
        let deleted = br#"{"data":{"data":null,"metadata":{"created_time":"","deletion_time":"2026-11-30T00:36:21Z","destroyed":false,"version":2}}}"#;
        assert!(matches!(
            parse_kv("app", None, StatusCode::NOT_FOUND, deleted),
            Err(OpenBaoError::Deleted { version: 2, destroyed: false, .. })
        ));
        assert!(matches!(
            parse_kv("app", Some(9), StatusCode::NOT_FOUND, br#"{"errors":[]}"#),
            Err(OpenBaoError::NotFound { version: Some(9), .. })
        ));
        for garbage in [&b"<html>oops</html>"[..], b"{\"data\":{\"password\":\"x\"}}", b"{}", b"[1,2]"] {
            assert!(
                matches!(parse_kv("app", None, StatusCode::OK, garbage), Err(OpenBaoError::InvalidResponse { .. })),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn env_names_and_server_errors() {
        let secret = parse_kv(
            "app",
            None,
            StatusCode::OK,
            br#"{"data":{"data":{"database-url":"postgres://x","feature.flags":{"a":true}},"metadata":{"version":1}}}"#,
        )
        .unwrap();
        let names: Vec<String> = secret.env_pairs("APP_").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["APP_DATABASE_URL", "APP_FEATURE_FLAGS"]);
        let errors = server_errors(br#"{"errors":["permission denied","bad jwt eyJhbGciOi.x.y"]}"#);
        assert_eq!(errors, ["permission denied"], "anything that looks like a token is dropped");
    }
}
