//! The dev tenant's Kubernetes emulation ([`DevKubernetes`]): service-account tokens and the
//! API server's TokenReview endpoint.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use super::cluster::*;
use super::http::{DevRequest, DevResponse};
use super::random::random_guid;
use super::state::Shared;

/// The dev tenant's emulated Kubernetes cluster: its service accounts, pods and
/// service-account tokens, and its API server's TokenReview endpoint. From
/// [`DevTenant::kubernetes`](super::DevTenant::kubernetes).
///
/// method logs a pod in for real, on loopback.
///
/// What it plays, and where each shape comes from:
///
/// - **Service-account tokens** as the kubelet projects them into a pod
///   (`/var/run/secrets/kubernetes.io/serviceaccount/token`): an RS256 JWT signed by the
///   cluster's own key (not the Entra keys), with `iss` (the cluster's issuer,
///   [`DEFAULT_KUBERNETES_ISSUER`]), `sub` `system:serviceaccount:{namespace}:{name}`, `aud`
///   (by default the API server's audience, the issuer), `exp`, `iat`, `nbf`, `jti`, and the
///   `kubernetes.io` claim naming the namespace, the service account and the pod (name and
///   uid). Source: Kubernetes, "Service account tokens" and "Managing service accounts"
///   (bound service account token volume).
/// - **`POST /apis/authentication.k8s.io/v1/tokenreviews`**: the caller authenticates with its
///   own bearer token (a service-account token of this cluster) and must be allowed to create
///   token reviews (the `system:auth-delegator` cluster role:
///   [`DevKubernetes::grant_token_review`]); the body is a `TokenReview` with `spec.token` and
///   optional `spec.audiences`; the answer is `201 Created` with the review echoed and
///   `status.authenticated`, `status.user` (`username`, `uid`, `groups`, `extra`),
///   `status.audiences`, or `status.error` for a token that does not authenticate. Failures of
///   the call itself are the API server's `Status` objects: `401 Unauthorized` (no or a bad
///   bearer token), `403 Forbidden` (not allowed to create token reviews), `400 BadRequest`
///   (malformed body, wrong `apiVersion`/`kind`, empty `spec.token`), `415
///   UnsupportedMediaType`. Source: Kubernetes API reference, "TokenReview v1
///   authentication.k8s.io", and "Authenticating" (webhook token authentication).
///
/// A token stops authenticating when it expires, when its service account is deleted
/// ([`DevKubernetes::delete_service_account`]) or recreated (new uid), or when the pod it is
/// bound to is deleted ([`DevKubernetes::delete_pod`]), as with bound tokens.
///
/// OpenBao's Kubernetes auth is configured with `kubernetes_host` =
/// [`DevKubernetes::api_url`], `token_reviewer_jwt` = a token of a service account granted
/// token review, and optionally `pem_keys` = [`DevKubernetes::public_key_pem`] and `issuer`
/// = [`DevKubernetes::issuer`].
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::dev::DevTenant;
///
/// let dev = DevTenant::start().await?;
/// let k8s = dev.kubernetes();
/// let reviewer = k8s.token("openbao", "openbao").build();
/// k8s.grant_token_review("openbao", "openbao");
/// let pod_token = k8s.token("payments", "api").pod("api-7d9c").build();
///
/// let review = reqwest::Client::new()
///     .post(format!("{}/apis/authentication.k8s.io/v1/tokenreviews", k8s.api_url()))
///     .bearer_auth(&reviewer)
///     .header("content-type", "application/json")
///     .body(
///         serde_json::json!({
///             "apiVersion": "authentication.k8s.io/v1",
///             "kind": "TokenReview",
///             "spec": {"token": pod_token},
///         })
///         .to_string(),
///     )
///     .send()
///     .await?;
/// assert_eq!(review.status(), 201);
/// let review: serde_json::Value = serde_json::from_slice(&review.bytes().await?)?;
/// assert_eq!(review["status"]["authenticated"], true);
/// assert_eq!(review["status"]["user"]["username"], "system:serviceaccount:payments:api");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct DevKubernetes {
    shared: Arc<Shared>,
}

impl fmt::Debug for DevKubernetes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKubernetes")
            .field("api_url", &self.shared.base_url)
            .field("issuer", &self.shared.kubernetes.issuer)
            .finish_non_exhaustive()
    }
}

impl DevKubernetes {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn cluster(&self) -> &Cluster {
        &self.shared.kubernetes
    }

    /// The API server's URL (the dev tenant's base URL): OpenBao's `kubernetes_host`. The
    /// TokenReview API is at `{api_url}/apis/authentication.k8s.io/v1/tokenreviews`.
    #[must_use]
    pub fn api_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The issuer of the cluster's service-account tokens (`iss`), also the API server's
    /// default audience: [`DEFAULT_KUBERNETES_ISSUER`].
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.cluster().issuer
    }

    /// The public key that verifies the cluster's service-account tokens, as a PEM
    /// `PUBLIC KEY` (SubjectPublicKeyInfo): OpenBao's `pem_keys`.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.cluster().key().spki_der.clone()))
    }

    /// The uid of the service account `namespace`/`name`, which is created if it does not
    /// exist (tokens minted with [`token`](Self::token) create it too).
    #[must_use]
    pub fn service_account(&self, namespace: &str, name: &str) -> String {
        self.cluster().service_account(namespace, name)
    }

    /// Deletes a service account: its tokens stop authenticating. A service account of the
    /// same name created later has a new uid, and the old tokens stay invalid. Returns `false`
    /// if it did not exist.
    #[allow(clippy::must_use_candidate)]
    pub fn delete_service_account(&self, namespace: &str, name: &str) -> bool {
        let mut state = self.cluster().state();
        let key = (namespace.to_owned(), name.to_owned());
        state.reviewers.remove(&key);
        state.service_accounts.remove(&key).is_some()
    }

    /// Deletes a pod: the tokens bound to it stop authenticating. Returns `false` if it did
    /// not exist.
    #[allow(clippy::must_use_candidate)]
    pub fn delete_pod(&self, namespace: &str, pod: &str) -> bool {
        self.cluster().state().pods.remove(&(namespace.to_owned(), pod.to_owned())).is_some()
    }

    /// Binds the service account `namespace`/`name` to the `system:auth-delegator` cluster
    /// role: its tokens may call the TokenReview API (what OpenBao's `token_reviewer_jwt` needs).
    pub fn grant_token_review(&self, namespace: &str, name: &str) {
        let _ = self.cluster().service_account(namespace, name);
        self.cluster().state().reviewers.insert((namespace.to_owned(), name.to_owned()));
    }

    /// A builder for a service-account token of `namespace`/`name` (created if needed): by
    /// default for the API server's audience, valid 3607 seconds, not bound to a pod.
    pub fn token(&self, namespace: &str, name: &str) -> ServiceAccountTokenBuilder {
        ServiceAccountTokenBuilder {
            shared: self.shared.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            audiences: Vec::new(),
            lifetime: DEFAULT_LIFETIME,
            pod: None,
        }
    }
}

/// Builds a service-account token of the dev tenant's cluster, shaped like a projected token
/// (see [`DevKubernetes`]). From [`DevKubernetes::token`].
#[must_use]
pub struct ServiceAccountTokenBuilder {
    shared: Arc<Shared>,
    namespace: String,
    name: String,
    audiences: Vec<String>,
    lifetime: Duration,
    pod: Option<String>,
}

impl fmt::Debug for ServiceAccountTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountTokenBuilder")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("audiences", &self.audiences)
            .field("lifetime", &self.lifetime)
            .field("pod", &self.pod)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountTokenBuilder {
    /// Adds an audience (`aud`); without any, the token's audience is the API server's (the
    /// cluster's issuer), as for the default projected token.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// How long the token is valid (`exp` − `iat`); [`Duration::ZERO`] mints an expired token.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Binds the token to the pod `pod` of the same namespace (created if needed): the
    /// `kubernetes.io.pod` claim, and the token stops authenticating when the pod is deleted.
    pub fn pod(mut self, pod: impl Into<String>) -> Self {
        self.pod = Some(pod.into());
        self
    }

    /// The signed token (compact JWS, RS256, the cluster's key).
    #[must_use]
    pub fn build(self) -> String {
        let cluster = &self.shared.kubernetes;
        let sa_uid = cluster.service_account(&self.namespace, &self.name);
        let now = super::clock::now();
        let exp = now.saturating_add(i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX));
        let audiences = if self.audiences.is_empty() { vec![cluster.issuer.clone()] } else { self.audiences };
        let mut k8s = json!({
            "namespace": self.namespace,
            "serviceaccount": {"name": self.name, "uid": sa_uid},
        });
        if let Some(pod) = &self.pod {
            k8s["pod"] = json!({"name": pod, "uid": cluster.pod(&self.namespace, pod)});
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now.min(exp),
            "nbf": now.min(exp),
            "iss": cluster.issuer,
            "jti": random_guid(),
            "kubernetes.io": k8s,
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.name),
        });
        cluster.key().sign(&claims)
    }

    /// Builds the token and writes it to `path` as the kubelet does (replacing the file at
    /// once: written beside it, then renamed), creating the parent directories. Returns the
    /// token.
    ///
    /// # Errors
    ///
    /// The I/O error if the file cannot be written.
    pub fn write_to(self, path: impl AsRef<Path>) -> std::io::Result<String> {
        let path = path.as_ref();
        let token = self.build();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, &token)?;
        std::fs::rename(&tmp, path)?;
        Ok(token)
    }
}

/// An API server `Status` object (`metav1.Status`) with its HTTP status.
fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> DevResponse {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    json(code, &body)
}

fn json(code: StatusCode, body: &Value) -> DevResponse {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts")
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
pub(crate) fn token_review(shared: &Shared, request: &DevRequest) -> DevResponse {
    let cluster = &shared.kubernetes;
    // Authentication of the caller: its own bearer token, for the API server's audience.
    let bearer = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let caller = match bearer.map(|t| cluster.authenticate(t, &[])) {
        Some(Ok((user, _))) => user,
        Some(Err(why)) => {
            tracing::debug!(target: "azad::dev", %why, "TokenReview caller not authenticated");
            return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", None);
        }
        None => return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", None),
    };
    // Authorization: `create` on `tokenreviews` (the `system:auth-delegator` cluster role).
    if !cluster.state().reviewers.contains(&(caller.namespace.clone(), caller.name.clone())) {
        let message = format!(
            "tokenreviews.authentication.k8s.io is forbidden: User \"{}\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope",
            caller.username()
        );
        let details = json!({"group": "authentication.k8s.io", "kind": "tokenreviews"});
        return status(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details));
    }
    if let Some(ct) = request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !ct.trim_start().to_ascii_lowercase().starts_with("application/json")
    {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"
        );
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", &message, None);
    }
    let bad = |message: &str| status(StatusCode::BAD_REQUEST, "BadRequest", message, None);
    let Ok(Value::Object(mut review)) = serde_json::from_slice::<Value>(&request.body) else {
        return bad("the body of the request could not be decoded as a TokenReview object");
    };
    match (review.get("apiVersion"), review.get("kind")) {
        (None | Some(Value::String(_)), None | Some(Value::String(_))) => {}
        _ => return bad("apiVersion and kind must be strings"),
    }
    if review
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty() && v != "authentication.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str).is_some_and(|k| !k.is_empty() && k != "TokenReview")
    {
        return bad(
            "the API version in the data does not match the expected API version authentication.k8s.io/v1, kind TokenReview",
        );
    }
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let token = spec.get("token").and_then(Value::as_str).unwrap_or_default();
    if token.is_empty() {
        return bad("token is required for TokenReview in authentication");
    }
    let audiences: Vec<String> = match spec.get("audiences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(_) => return bad("spec.audiences must be a list of strings"),
    };
    let result = match cluster.authenticate(token, &audiences) {
        Ok((user, valid_for)) => json!({"authenticated": true, "user": user.user_info(), "audiences": valid_for}),
        Err(error) => json!({"user": {}, "error": error}),
    };
    review.insert("apiVersion".into(), "authentication.k8s.io/v1".into());
    review.insert("kind".into(), "TokenReview".into());
    review.insert("metadata".into(), json!({"creationTimestamp": null}));
    review.insert("status".into(), result);
    json(StatusCode::CREATED, &Value::Object(review))
}
