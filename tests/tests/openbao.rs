//! The OpenBao source against the real `bao` server (`bao server -dev`), logging in with
//! Kubernetes auth through the dev tenant's TokenReview emulation: login and reads, the
//! failures (server down at start, killed mid-run, wrong role, denied policy, wrong namespace,
//! expired lease, garbage answers), token file rotation, secret rotation, seed-style start-up.
//!
//! The server is `.ci/run`'s (`AZAD_BAO_ADDR`, `AZAD_BAO_TOKEN`) or one started per test;
//! without a `bao` binary these tests fail with the install command, never skip.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azad_core::dev::DevTenant;
use azad_core::secrets::{OpenBaoConfig, OpenBaoError, OpenBaoSource, SecretError, SecretSource, read_env_blocking};
use azad_examples::bao::{BaoServer, PodSetup};
use azad_tests::serve;
use secrecy::ExposeSecret;
use serde_json::json;

const NS: &str = "payments";
const SA: &str = "api";

struct Pod {
    dev: DevTenant,
    bao: BaoServer,
    setup: PodSetup,
    token_file: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("azad-openbao-{tag}-{}", azad_core::dev::random_guid()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A dev tenant (the cluster), a bao server configured for the pod `payments/api`, and the
/// pod's projected token written to its file.
async fn pod_with(tag: &str, ttl: Duration, bao: BaoServer) -> Pod {
    // HTTPS, as an API server is: OpenBao's Kubernetes auth insists on a CA.
    let dev = DevTenant::builder().https().start().await.unwrap();
    let ca = dev.ca_pem().unwrap().to_owned();
    let setup = PodSetup::configure(&bao, &dev.kubernetes(), &ca, tag, NS, SA, ttl).await.unwrap();
    let dir = temp_dir(tag);
    let token_file = dir.0.join("serviceaccount/token");
    dev.kubernetes().token(NS, SA).pod("api-0").write_to(&token_file).unwrap();
    Pod { dev, bao, setup, token_file, _dir: dir }
}

async fn pod(tag: &str) -> Pod {
    pod_with(tag, Duration::from_secs(3600), BaoServer::shared_or_start().await.expect("OpenBao")).await
}

impl Pod {
    fn config(&self) -> OpenBaoConfig {
        OpenBaoConfig::new(self.bao.addr(), &self.setup.role)
            .with_mount(&self.setup.kv_mount)
            .with_auth_mount(&self.setup.auth_mount)
            .with_token_path(&self.token_file)
            .with_path("payments/api")
            .with_timeout(Duration::from_secs(10))
            .with_retry_delay(Duration::from_millis(20))
            .with_max_retries(1)
    }

    fn source(&self) -> OpenBaoSource {
        OpenBaoSource::new(self.config()).unwrap()
    }

    async fn put(&self, data: serde_json::Value) -> u64 {
        self.bao.put(&self.setup.kv_mount, "payments/api", data).await.unwrap()
    }

    /// Revokes every token the role's logins produced (as an operator would).
    async fn revoke_logins(&self) {
        let (status, body) = self
            .bao
            .api(reqwest::Method::PUT, &format!("sys/leases/revoke-prefix/auth/{}/login", self.setup.auth_mount), None)
            .await
            .unwrap();
        assert_eq!(status, 204, "{body}");
    }
}

#[tokio::test]
async fn logs_in_with_the_pod_token_and_reads_latest_and_older_versions() {
    let pod = pod("read").await;
    assert_eq!(pod.put(json!({"db_password": "CANARY-v1", "port": 5432})).await, 1);
    assert_eq!(pod.put(json!({"db_password": "CANARY-v2", "port": 5432})).await, 2);
    let source = pod.source();

    let latest = source.read("payments/api", None).await.unwrap();
    assert_eq!(latest.version(), 2);
    assert_eq!(latest.get("db_password").unwrap().expose(), "CANARY-v2");
    assert_eq!(latest.keys(), ["db_password", "port"]);
    let first = source.read("payments/api", Some(1)).await.unwrap();
    assert_eq!((first.version(), first.get("db_password").unwrap().expose()), (1, "CANARY-v1"));

    // Through the SecretSource interface: `key` of VAULT_PATH, `path#key`, a version.
    let value = source.get("db_password", None).await.unwrap();
    assert_eq!((value.expose(), value.version()), ("CANARY-v2", Some("2")));
    let value = source.get("payments/api#db_password", Some("1")).await.unwrap();
    assert_eq!((value.expose(), value.version()), ("CANARY-v1", Some("1")));
    assert!(matches!(source.get("nope", None).await, Err(SecretError::NotFound { .. })));
    assert!(matches!(source.get("db_password", Some("9")).await, Err(SecretError::NotFound { .. })));
    assert!(matches!(source.read("payments/other", None).await, Err(OpenBaoError::NotFound { .. })));

    // One login for all of it: the client token is kept; the API server reviewed the pod once
    // (and OpenBao's own reviewer token authenticated it).
    assert_eq!(source.logins(), 1);
    assert_eq!(pod.dev.requests(azad_core::dev::Endpoint::TokenReview), 1);
    let printed = format!("{source:?} {latest:?} {value:?}");
    assert!(!printed.contains("CANARY") && !printed.contains("eyJ"), "{printed}");
}

#[tokio::test]
async fn a_deleted_version_is_reported_as_deleted() {
    let pod = pod("deleted").await;
    pod.put(json!({"k": "v1"})).await;
    pod.put(json!({"k": "v2"})).await;
    let (status, _) = pod
        .bao
        .api(
            reqwest::Method::POST,
            &format!("{}/delete/payments/api", pod.setup.kv_mount),
            Some(json!({"versions": [1]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let e = pod.source().read("payments/api", Some(1)).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::Deleted { version: 1, destroyed: false, .. }), "{e}");
}

#[tokio::test]
async fn typed_configuration_seed_style() {
    #[derive(serde::Deserialize)]
    struct Settings {
        database_url: String,
        pool_size: u32,
        client_secret: String,
    }
    let pod = pod("typed").await;
    pod.put(json!({"database_url": "postgres://db/payments", "pool_size": 8, "client_secret": "CANARY-s"})).await;
    let settings: Settings = pod.source().load_config(None).await.unwrap();
    assert_eq!((settings.database_url.as_str(), settings.pool_size), ("postgres://db/payments", 8));
    assert_eq!(settings.client_secret, "CANARY-s");

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        pool_size: String,
    }
    let e = pod.source().load_config::<Wrong>(None).await.unwrap_err();
    assert!(matches!(e, SecretError::InvalidResponse { .. }), "{e}");
    assert!(!e.to_string().contains("CANARY"), "{e}");
}

#[test]
fn environment_seed_style_before_the_runtime() {
    // Set-up on a runtime that is gone before the read, as in a `main` that has not started one.
    let setup = tokio::runtime::Runtime::new().unwrap();
    let pod = setup.block_on(async {
        let pod = pod("env").await;
        pod.put(json!({"database-url": "postgres://db/payments", "pool.size": 8})).await;
        pod
    });
    let config = pod.config();
    let vars = std::thread::scope(|s| {
        // A thread with no runtime: read_env_blocking builds and shuts down its own.
        s.spawn(|| read_env_blocking(&config, None, "APP_")).join().unwrap()
    })
    .unwrap();
    let vars: Vec<(String, String)> = vars.into_iter().map(|(n, v)| (n, v.expose_secret().to_owned())).collect();
    assert_eq!(
        vars,
        [("APP_DATABASE_URL".into(), "postgres://db/payments".into()), ("APP_POOL_SIZE".into(), "8".into())]
    );
    // The variables can be handed to a child process without any `unsafe`.
    let out = std::process::Command::new("sh")
        .args(["-c", "printf %s \"$APP_DATABASE_URL\""])
        .envs(vars.iter().map(|(n, v)| (n, v)))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "postgres://db/payments");
    // Inside a runtime it refuses: the process is multi-threaded by then.
    let inside = setup.block_on(async { read_env_blocking(&config, None, "APP_") });
    assert!(matches!(inside, Err(SecretError::Misconfigured { .. })));
    setup.block_on(async move { drop(pod) });
}

#[tokio::test]
async fn server_down_at_start_is_unavailable_after_the_retries() {
    let dev = DevTenant::start().await.unwrap();
    let dir = temp_dir("down");
    let token_file = dir.0.join("token");
    dev.kubernetes().token(NS, SA).write_to(&token_file).unwrap();
    let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
    let source = OpenBaoSource::new(
        OpenBaoConfig::new(format!("http://127.0.0.1:{port}"), "app")
            .with_path("payments/api")
            .with_token_path(&token_file)
            .with_max_retries(2)
            .with_retry_delay(Duration::from_millis(10)),
    )
    .unwrap();
    let e = source.read("payments/api", None).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::Unavailable { attempts: 3, source: Some(_), .. }), "{e}");
    let e = source.get("db_password", None).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn killed_mid_run_is_unavailable_not_a_panic() {
    let own = BaoServer::start().await.expect("OpenBao");
    let mut pod = pod_with("killed", Duration::from_secs(3600), own).await;
    pod.put(json!({"db_password": "v1"})).await;
    let source = pod.source();
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "v1");
    pod.bao.kill();
    let e = source.get("db_password", None).await.unwrap_err();
    assert!(matches!(e, SecretError::Unavailable { .. }), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn wrong_role_is_a_typed_configuration_error() {
    let pod = pod("role").await;
    let source = OpenBaoSource::new(pod.config().with_max_retries(0)).unwrap();
    let wrong = OpenBaoSource::new(
        OpenBaoConfig::new(pod.bao.addr(), "no-such-role")
            .with_mount(&pod.setup.kv_mount)
            .with_auth_mount(&pod.setup.auth_mount)
            .with_token_path(&pod.token_file)
            .with_path("payments/api"),
    )
    .unwrap();
    let e = wrong.login().await.unwrap_err();
    assert!(matches!(&e, OpenBaoError::InvalidRole { role, .. } if role == "no-such-role"), "{e}");
    assert!(matches!(wrong.get("db_password", None).await, Err(SecretError::Misconfigured { .. })));
    source.login().await.unwrap();
}

#[tokio::test]
async fn a_service_account_the_role_does_not_bind_is_refused() {
    let pod = pod("binding").await;
    // Another namespace, then another service account: both refused by the role's bindings.
    for (ns, sa) in [("billing", SA), (NS, "batch")] {
        pod.dev.kubernetes().token(ns, sa).write_to(&pod.token_file).unwrap();
        let e = pod.source().login().await.unwrap_err();
        assert!(matches!(&e, OpenBaoError::LoginDenied { .. }), "{ns}/{sa}: {e}");
        assert!(!e.to_string().contains("eyJ"), "{e}");
    }
    // A deleted service account's token fails the cluster's TokenReview.
    pod.dev.kubernetes().token(NS, SA).write_to(&pod.token_file).unwrap();
    assert!(pod.dev.kubernetes().delete_service_account(NS, SA));
    let e = pod.source().login().await.unwrap_err();
    assert!(matches!(&e, OpenBaoError::LoginDenied { .. }), "{e}");
}

#[tokio::test]
async fn denied_policy_is_permission_denied() {
    let pod = pod("policy").await;
    pod.put(json!({"db_password": "v1"})).await;
    // Another path of the same mount, which the policy does not cover (it covers only
    // `{mount}/data/*`, so the metadata endpoint is refused).
    pod.bao
        .write_policy(
            &pod.setup.policy,
            &format!("path \"{}/data/other/*\" {{ capabilities = [\"read\"] }}", pod.setup.kv_mount),
        )
        .await
        .unwrap();
    let source = pod.source();
    let e = source.read("payments/api", None).await.unwrap_err();
    assert!(matches!(&e, OpenBaoError::PermissionDenied { .. }), "{e}");
    assert_eq!(source.logins(), 2, "one fresh login, then the refusal");
    let e = source.get("db_password", None).await.unwrap_err();
    assert!(matches!(&e, SecretError::Denied { name, .. } if name == "db_password"), "{e}");
}

#[tokio::test]
async fn wrong_namespace_is_a_typed_error() {
    let pod = pod("namespace").await;
    let source = OpenBaoSource::new(pod.config().with_namespace("no-such-team")).unwrap();
    let e = source.read("payments/api", None).await.unwrap_err();
    assert!(matches!(&e, OpenBaoError::NamespaceNotFound { namespace } if namespace == "no-such-team"), "{e}");
    assert!(matches!(source.get("db_password", None).await, Err(SecretError::Misconfigured { .. })));
}

#[tokio::test]
async fn a_namespace_holds_its_own_mounts() {
    let pod = pod("ns-ok").await;
    pod.bao.create_namespace("team-a").await.unwrap();
    // Configure inside the namespace with the root token and the namespace header.
    let http = azad_tests::http();
    let call = |path: String, body: serde_json::Value| {
        http.post(format!("{}/v1/{path}", pod.bao.addr()))
            .header("X-Vault-Token", pod.bao.root_token())
            .header("X-Vault-Namespace", "team-a")
            .json(&body)
            .send()
    };
    let k8s = pod.dev.kubernetes();
    let ok = |r: reqwest::Response| assert!(r.status().is_success(), "{}", r.status());
    ok(call("sys/mounts/kv".into(), json!({"type": "kv", "options": {"version": "2"}})).await.unwrap());
    ok(call("sys/auth/kubernetes".into(), json!({"type": "kubernetes"})).await.unwrap());
    k8s.grant_token_review("openbao", "openbao");
    let reviewer = k8s.token("openbao", "openbao").build();
    ok(call(
        "auth/kubernetes/config".into(),
        json!({"kubernetes_host": k8s.api_url(), "kubernetes_ca_cert": pod.dev.ca_pem().unwrap(), "disable_local_ca_jwt": true, "token_reviewer_jwt": reviewer, "issuer": k8s.issuer(), "disable_iss_validation": false}),
    )
    .await
    .unwrap());
    ok(call("sys/policies/acl/read".into(), json!({"policy": "path \"kv/data/*\" { capabilities = [\"read\"] }"}))
        .await
        .unwrap());
    ok(call(
        "auth/kubernetes/role/app".into(),
        json!({"bound_service_account_names": [SA], "bound_service_account_namespaces": [NS], "token_policies": ["read"]}),
    )
    .await
    .unwrap());
    ok(call("kv/data/payments/api".into(), json!({"data": {"db_password": "team-a-value"}})).await.unwrap());
    let source = OpenBaoSource::new(
        OpenBaoConfig::new(pod.bao.addr(), "app")
            .with_namespace("team-a")
            .with_token_path(&pod.token_file)
            .with_path("payments/api"),
    )
    .unwrap();
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "team-a-value");
}

#[tokio::test]
async fn a_revoked_token_is_replaced_by_one_fresh_login() {
    let pod = pod("revoked").await;
    pod.put(json!({"db_password": "v1"})).await;
    let source = pod.source();
    source.get("db_password", None).await.unwrap();
    pod.revoke_logins().await;
    // The kept token now gets 403: one fresh login, and the read succeeds.
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "v1");
    assert_eq!(source.logins(), 2);
}

#[tokio::test]
async fn a_short_lease_is_renewed_or_replaced_before_it_ends() {
    // Tokens of 3 s, renewable up to 30 s.
    let pod = pod_with("lease", Duration::from_secs(3), BaoServer::shared_or_start().await.expect("OpenBao")).await;
    pod.put(json!({"db_password": "v1"})).await;
    let source = pod.source();
    source.get("db_password", None).await.unwrap();
    assert_eq!((source.logins(), source.renewals()), (1, 0));
    // Past two thirds of the lease: the next read renews (or, on a slow machine where the
    // lease is nearly over, logs in again); either way the read succeeds.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "v1");
    assert!(source.logins() + source.renewals() >= 2, "refreshed: {} {}", source.logins(), source.renewals());
    // Long past the lease: the token has expired on the server; the read still succeeds.
    let before = source.logins() + source.renewals();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "v1");
    assert!(source.logins() + source.renewals() > before);
}

#[tokio::test]
async fn the_token_file_is_read_again_at_each_login() {
    let pod = pod("rotated-file").await;
    pod.put(json!({"db_password": "v1"})).await;
    let source = pod.source();
    source.get("db_password", None).await.unwrap();
    // The kubelet rotates the projected token (a new pod incarnation), and the old pod goes.
    pod.dev.kubernetes().token(NS, SA).pod("api-1").write_to(&pod.token_file).unwrap();
    assert!(pod.dev.kubernetes().delete_pod(NS, "api-0"));
    pod.revoke_logins().await;
    // Only the new file's token still passes the TokenReview.
    assert_eq!(source.get("db_password", None).await.unwrap().expose(), "v1");
    assert_eq!(source.logins(), 2);
    // A missing file is a typed error naming the file, not a panic.
    std::fs::remove_file(&pod.token_file).unwrap();
    pod.revoke_logins().await;
    let e = source.read("payments/api", None).await.unwrap_err();
    assert!(matches!(&e, OpenBaoError::TokenFile { path, .. } if *path == pod.token_file), "{e}");
}

#[tokio::test]
async fn a_secret_rotated_in_openbao_is_read_without_restart() {
    let pod = pod("rotation").await;
    pod.put(json!({"db_password": "before"})).await;
    let source: Arc<dyn SecretSource> = Arc::new(pod.source());
    let first = source.get("db_password", None).await.unwrap();
    assert_eq!((first.expose(), first.version()), ("before", Some("1")));
    pod.put(json!({"db_password": "after"})).await;
    let second = source.get("db_password", None).await.unwrap();
    assert_eq!((second.expose(), second.version()), ("after", Some("2")));
}

#[tokio::test]
async fn garbage_answers_are_typed_errors() {
    use axum::routing::{get, post};
    let dir = temp_dir("garbage");
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    let config = |addr: std::net::SocketAddr| {
        OpenBaoConfig::new(format!("http://{addr}"), "app")
            .with_token_path(&token_file)
            .with_path("payments/api")
            .with_max_retries(1)
            .with_retry_delay(Duration::from_millis(5))
    };
    let good_login = || async {
        axum::Json(
            json!({"auth": {"client_token": "hvs.CANARYTOKENxxxxxxxxxxxx", "lease_duration": 3600, "renewable": true}}),
        )
    };

    // HTML where a login answer should be.
    let addr = serve(
        axum::Router::new().route("/v1/auth/kubernetes/login", post(|| async { "<html>proxy login page</html>" })),
    )
    .await;
    let e = OpenBaoSource::new(config(addr)).unwrap().login().await.unwrap_err();
    assert!(matches!(e, OpenBaoError::InvalidResponse { .. }), "{e}");
    // A login answer without a token.
    let addr = serve(
        axum::Router::new().route("/v1/auth/kubernetes/login", post(|| async { axum::Json(json!({"auth": null})) })),
    )
    .await;
    let e = OpenBaoSource::new(config(addr)).unwrap().login().await.unwrap_err();
    assert!(matches!(e, OpenBaoError::InvalidResponse { .. }), "{e}");
    // A KV v1 answer (no metadata), then JSON of the wrong shape, then a 502 from a proxy.
    let addr = serve(
        axum::Router::new()
            .route("/v1/auth/kubernetes/login", post(good_login))
            .route("/v1/kv/data/payments/api", get(|| async { axum::Json(json!({"data": {"db_password": "x"}})) }))
            .route("/v1/kv/data/payments/list", get(|| async { axum::Json(json!([1, 2, 3])) }))
            .route(
                "/v1/kv/data/payments/proxy",
                get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
            ),
    )
    .await;
    let source = OpenBaoSource::new(config(addr)).unwrap();
    for path in ["payments/api", "payments/list"] {
        let e = source.read(path, None).await.unwrap_err();
        assert!(matches!(e, OpenBaoError::InvalidResponse { .. }), "{path}: {e}");
    }
    let e = source.read("payments/proxy", None).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::Unavailable { attempts: 2, .. }), "{e}");
    let e = source.get("db_password", None).await.unwrap_err();
    assert!(matches!(e, SecretError::InvalidResponse { .. }), "{e}");
    assert!(!format!("{e} {e:?} {source:?}").contains("CANARY"));
    // An answer far larger than any secret.
    let addr = serve(
        axum::Router::new()
            .route("/v1/auth/kubernetes/login", post(good_login))
            .route("/v1/kv/data/payments/api", get(|| async { "x".repeat(3 * 1024 * 1024) })),
    )
    .await;
    let e = OpenBaoSource::new(config(addr)).unwrap().read("payments/api", None).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::InvalidResponse { .. }), "{e}");
}

#[tokio::test]
async fn the_vault_kubernetes_scenario_rotates_without_restart() {
    let outcome = azad_examples::vault_kubernetes::run(|line| tracing::info!("{line}")).await.expect("scenario");
    assert_eq!(outcome.started_with_version.as_deref(), Some("1"));
    // The next on-behalf-of call after the rotation succeeded with version 2, read once.
    assert_eq!(outcome.after_rotation_version.as_deref(), Some("2"));
    assert_eq!((outcome.successful_calls, outcome.rotations), (2, 1));
    // One Kubernetes login served both reads; the API server reviewed the pod's token once.
    assert_eq!((outcome.logins, outcome.token_reviews), (1, 1));
}

/// The TokenReview API's shapes, as the Kubernetes API server answers (no OpenBao involved).
#[tokio::test]
async fn token_review_answers_like_the_api_server() {
    let dev = DevTenant::start().await.unwrap();
    let k8s = dev.kubernetes();
    let url = format!("{}{}", k8s.api_url(), azad_core::dev::TOKEN_REVIEW_PATH);
    let http = azad_tests::http();
    let reviewer = k8s.token("openbao", "openbao").build();
    k8s.grant_token_review("openbao", "openbao");
    let outsider = k8s.token("payments", "batch").build();
    let pod_token = k8s.token(NS, SA).pod("api-0").audience("openbao").build();
    let review = |token: &str, audiences: serde_json::Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": audiences}});
    let send = |bearer: Option<String>, body: serde_json::Value| {
        let mut request = http.post(&url).json(&body);
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };

    // The caller authenticates, and must be allowed to create token reviews.
    let (status, body) = send(None, review(&pod_token, json!(["openbao"]))).await;
    assert_eq!((status, body["kind"].as_str(), body["reason"].as_str()), (401, Some("Status"), Some("Unauthorized")));
    let (status, _) = send(Some("not-a-token".into()), review(&pod_token, json!(["openbao"]))).await;
    assert_eq!(status, 401);
    let (status, body) = send(Some(outsider), review(&pod_token, json!(["openbao"]))).await;
    assert_eq!((status, body["reason"].as_str(), body["code"].as_u64()), (403, Some("Forbidden"), Some(403)));
    assert!(body["message"].as_str().unwrap().contains("system:serviceaccount:payments:batch"), "{body}");

    // Authenticated: 201 with the user, its groups and the audiences it is valid for.
    let (status, body) = send(Some(reviewer.clone()), review(&pod_token, json!(["openbao", "other"]))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "TokenReview");
    let result = &body["status"];
    assert_eq!(result["authenticated"], true);
    assert_eq!(result["user"]["username"], "system:serviceaccount:payments:api");
    assert_eq!(result["user"]["uid"].as_str(), Some(k8s.service_account(NS, SA).as_str()));
    assert_eq!(
        result["user"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:payments", "system:authenticated"])
    );
    assert_eq!(result["user"]["extra"]["authentication.kubernetes.io/pod-name"], json!(["api-0"]));
    assert_eq!(result["audiences"], json!(["openbao"]));

    // Not authenticated: 201 with `status.error`.
    let (status, body) = send(Some(reviewer.clone()), review(&pod_token, json!(["vault"]))).await;
    assert_eq!((status, body["status"]["authenticated"].as_bool()), (201, None));
    assert!(body["status"]["error"].as_str().unwrap().contains("audiences"), "{body}");
    let expired = k8s.token(NS, SA).audience("openbao").lifetime(Duration::ZERO).build();
    let (_, body) = send(Some(reviewer.clone()), review(&expired, json!(["openbao"]))).await;
    assert!(body["status"]["error"].as_str().unwrap().contains("expired"), "{body}");
    let forged = format!("{}x", &pod_token[..pod_token.len() - 1]);
    let (_, body) = send(Some(reviewer.clone()), review(&forged, json!(["openbao"]))).await;
    assert!(body["status"]["error"].as_str().is_some(), "{body}");
    let entra = dev.token().build();
    let (_, body) = send(Some(reviewer.clone()), review(&entra, json!([]))).await;
    assert!(body["status"]["error"].as_str().is_some(), "an Entra token is no service-account token: {body}");
    assert!(k8s.delete_pod(NS, "api-0"));
    let (_, body) = send(Some(reviewer.clone()), review(&pod_token, json!(["openbao"]))).await;
    assert!(body["status"]["error"].as_str().unwrap().contains("pod payments/api-0"), "{body}");

    // Malformed requests: 400 and 415 Status objects.
    for bad in [json!({"kind": "TokenReview", "spec": {}}), json!({"kind": "Pod", "spec": {"token": "x"}}), json!([1])]
    {
        let (status, body) = send(Some(reviewer.clone()), bad.clone()).await;
        assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")), "{bad}");
    }
    let r =
        http.post(&url).bearer_auth(&reviewer).header("content-type", "text/plain").body("token").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(dev.requests(azad_core::dev::Endpoint::TokenReview), 13);
}
