//! The emulated Kubernetes cluster's state (service accounts, pods, its signing key) and its
//! service-account tokens: the data under [`DevKubernetes`](super::DevKubernetes), on a floor
//! below the dev tenant's shared state.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::random::random_guid;

/// The issuer (and default audience) of the emulated cluster's service-account tokens: what a
/// cluster's API server announces with `--service-account-issuer` by default.
pub const DEFAULT_KUBERNETES_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Where the kubelet projects a pod's service-account token.
pub const SERVICE_ACCOUNT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The path of the TokenReview API.
pub const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The lifetime of a projected token when none is asked: the kubelet's default
/// `expirationSeconds` (one hour) plus the 7 seconds of jitter it adds.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(3607);

/// The emulated cluster's state, held by the dev tenant.
pub(crate) struct Cluster {
    pub(crate) issuer: String,
    pub(crate) key: OnceLock<ClusterKey>,
    pub(crate) state: Mutex<ClusterState>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self { issuer: DEFAULT_KUBERNETES_ISSUER.to_owned(), key: OnceLock::new(), state: Mutex::default() }
    }
}

#[derive(Default)]
pub(crate) struct ClusterState {
    /// (namespace, name) → uid.
    pub(crate) service_accounts: HashMap<(String, String), String>,
    /// (namespace, name) → uid.
    pub(crate) pods: HashMap<(String, String), String>,
    /// Service accounts bound to `system:auth-delegator`.
    pub(crate) reviewers: HashSet<(String, String)>,
}

/// The cluster's service-account signing key, generated on first use.
pub(crate) struct ClusterKey {
    pub(crate) pair: KeyPair,
    pub(crate) kid: String,
    pub(crate) spki_der: Vec<u8>,
}

impl ClusterKey {
    pub(crate) fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let spki_der = pair.public_key().as_der().expect("SubjectPublicKeyInfo").as_ref().to_vec();
        // Kubernetes names its keys by the base64url SHA-256 of the public key's DER.
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki_der));
        Self { pair, kid, spki_der }
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid});
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&sig::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), token.as_bytes(), &mut signature)
            .expect("RSA signing");
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }

    /// Verifies the signature and decodes the claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Map<String, Value>, &'static str> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("malformed token");
        };
        let header: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token header")?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("unexpected signing algorithm");
        }
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| "malformed signature")?;
        let public = sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, self.pair.public_key().as_ref());
        public.verify(&token.as_bytes()[..h.len() + 1 + p.len()], &signature).map_err(|_| "invalid signature")?;
        URL_SAFE_NO_PAD.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("malformed token claims")
    }
}

impl Cluster {
    pub(crate) fn key(&self) -> &ClusterKey {
        self.key.get_or_init(ClusterKey::generate)
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, ClusterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The uid of a service account, created on first use (as `kubectl create serviceaccount`).
    pub(crate) fn service_account(&self, namespace: &str, name: &str) -> String {
        self.state().service_accounts.entry((namespace.to_owned(), name.to_owned())).or_insert_with(random_guid).clone()
    }

    pub(crate) fn pod(&self, namespace: &str, name: &str) -> String {
        self.state().pods.entry((namespace.to_owned(), name.to_owned())).or_insert_with(random_guid).clone()
    }

    /// Authenticates a service-account token for `audiences` (empty: the API server's own
    /// audience). Returns the user and the audiences it is valid for.
    pub(crate) fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<(ServiceAccountUser, Vec<String>), String> {
        let invalid = |why: &str| format!("[invalid bearer token, {why}]");
        let claims = self.key().verify(token).map_err(invalid)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(invalid("token issuer is not this cluster's"));
        }
        let now = super::clock::now();
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("token has no exp"))?;
        if exp <= now {
            return Err(invalid("service account token has expired"));
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + 60) {
            return Err(invalid("service account token is not valid yet"));
        }
        let token_audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let wanted: Vec<String> = if audiences.is_empty() { vec![self.issuer.clone()] } else { audiences.to_vec() };
        let valid_for: Vec<String> = wanted.iter().filter(|a| token_audiences.contains(a)).cloned().collect();
        if valid_for.is_empty() {
            return Err(invalid(&format!(
                "token audiences {token_audiences:?} is invalid for the target audiences {wanted:?}"
            )));
        }
        let k8s = claims.get("kubernetes.io").ok_or_else(|| invalid("not a service account token"))?;
        let field = |v: &Value, path: &[&str]| {
            path.iter().try_fold(v, |v, p| v.get(p)).and_then(Value::as_str).map(str::to_owned)
        };
        let (Some(namespace), Some(name), Some(uid)) = (
            field(k8s, &["namespace"]),
            field(k8s, &["serviceaccount", "name"]),
            field(k8s, &["serviceaccount", "uid"]),
        ) else {
            return Err(invalid("not a service account token"));
        };
        let state = self.state();
        match state.service_accounts.get(&(namespace.clone(), name.clone())) {
            Some(current) if *current == uid => {}
            Some(_) => return Err(invalid(&format!("service account UID ({uid}) does not match the current one"))),
            None => return Err(invalid(&format!("service account {namespace}/{name} has been deleted"))),
        }
        let pod = match (field(k8s, &["pod", "name"]), field(k8s, &["pod", "uid"])) {
            (Some(pod), Some(pod_uid)) => {
                if state.pods.get(&(namespace.clone(), pod.clone())) != Some(&pod_uid) {
                    return Err(invalid(&format!("pod {namespace}/{pod} has been deleted")));
                }
                Some((pod, pod_uid))
            }
            _ => None,
        };
        let jti = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        Ok((ServiceAccountUser { namespace, name, uid, pod, jti }, valid_for))
    }
}

/// A service account as the API server authenticates it.
pub(crate) struct ServiceAccountUser {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) pod: Option<(String, String)>,
    pub(crate) jti: Option<String>,
}

impl ServiceAccountUser {
    pub(crate) fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// `status.user` of a TokenReview (`UserInfo`).
    pub(crate) fn user_info(&self) -> Value {
        let mut extra = Map::new();
        if let Some((pod, pod_uid)) = &self.pod {
            extra.insert("authentication.kubernetes.io/pod-name".into(), json!([pod]));
            extra.insert("authentication.kubernetes.io/pod-uid".into(), json!([pod_uid]));
        }
        if let Some(jti) = &self.jti {
            extra.insert("authentication.kubernetes.io/credential-id".into(), json!([format!("JTI={jti}")]));
        }
        json!({
            "username": self.username(),
            "uid": self.uid,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", self.namespace), "system:authenticated"],
            "extra": extra,
        })
    }
}
