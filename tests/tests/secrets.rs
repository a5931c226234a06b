//! Secret sources (Key Vault against the dev tenant's emulator, environment, dotenv, mounted
//! Kubernetes secrets), the chain's retries and fallbacks, the cache, audit events, and a
//! client credential rotated in Key Vault and the app registration mid-run.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azad_core::ClientCredential;
use azad_core::ManagedIdentity;
use azad_core::secrets::{
    DirectorySource, DotenvSource, EnvSource, KeyVaultSource, RotatingCredential, SecondLevelStore, SecretCache,
    SecretChain, SecretError, SecretFuture, SecretRetryPolicy, SecretSource, SecretValue,
};
use azad_core::{BearerToken, TokenClient, TokenRequest};
use azad_tests::{CapturedLogs, DevTenant, Endpoint, Fault};

const DOWNSTREAM_SCOPE: &str = "api://azad-downstream/Data.Read";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("azad-secrets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Key Vault source reading with the API's own client secret.
fn vault(dev: &DevTenant) -> KeyVaultSource {
    let reader = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    KeyVaultSource::new(dev.vault_url(), reader).unwrap()
}

/// A Key Vault source reading with the dev tenant's system-assigned managed identity.
fn vault_with_managed_identity(dev: &DevTenant) -> KeyVaultSource {
    KeyVaultSource::with_managed_identity(dev.vault_url(), ManagedIdentity::imds(dev.imds_endpoint())).unwrap()
}

fn fast_retries() -> SecretRetryPolicy {
    SecretRetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(5))
}

/// A source that answers from a script, counting calls: each call pops the next answer, the
/// last one repeats.
#[derive(Debug)]
struct Scripted {
    name: &'static str,
    answers: Mutex<Vec<Result<(&'static str, &'static str), &'static str>>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(name: &'static str, answers: Vec<Result<(&'static str, &'static str), &'static str>>) -> Arc<Self> {
        Arc::new(Self { name, answers: Mutex::new(answers), calls: AtomicUsize::new(0) })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl SecretSource for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 { answers.remove(0) } else { answers[0] }
        };
        Box::pin(async move {
            tokio::task::yield_now().await;
            match answer {
                Ok((value, v)) => Ok(SecretValue::new(value).with_version(v)),
                Err("not_found") => Err(SecretError::not_found(name, version)),
                Err("denied") => Err(SecretError::denied(name, "HTTP 403 Forbidden")),
                Err("garbage") => Err(SecretError::invalid_response("malformed JSON")),
                Err(other) => Err(SecretError::unavailable(other)),
            }
        })
    }
}

// ---------------------------------------------------------------- Key Vault emulator

#[tokio::test]
async fn key_vault_emulator_speaks_key_vaults_shapes() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "v1-value");
    dev.set_secret("db-password", "v2-value");
    let versions = dev.secret_versions("db-password");
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())));
    let mi = ManagedIdentity::imds(dev.imds_endpoint());
    let token = mi.acquire_token("https://vault.azure.net").await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: String, token: Option<String>| {
        let mut request = http.get(format!("{}{path}", dev.vault_url()));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (status, challenge, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let bearer = Some(token.secret().to_owned());
    // Latest.
    let (status, _, body) = get("/secrets/db-password?api-version=7.4".into(), bearer.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], "v2-value");
    assert_eq!(body["id"], format!("{}/secrets/db-password/{}", dev.vault_url(), versions[1]));
    assert_eq!(body["attributes"]["enabled"], true);
    assert!(body["attributes"]["created"].as_i64().unwrap() > 1_700_000_000);
    assert!(body["attributes"]["updated"].is_i64());
    assert_eq!(body["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    // A given version.
    let (status, _, body) = get(format!("/secrets/db-password/{}?api-version=7.4", versions[0]), bearer.clone()).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("v1-value")));
    // api-version is required.
    let (status, _, body) = get("/secrets/db-password".into(), bearer.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BadParameter")));
    // No token: 401 with the challenge naming the authority and the vault resource.
    let (status, challenge, body) = get("/secrets/db-password?api-version=7.4".into(), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("Unauthorized")));
    let challenge = challenge.unwrap();
    assert!(challenge.starts_with("Bearer authorization=\""), "{challenge}");
    assert!(challenge.contains(&format!("{}/{}", dev.base_url(), dev.tenant_id())), "{challenge}");
    assert!(challenge.contains("resource=\"https://vault.azure.net\""), "{challenge}");
    // Unknown secret and unknown version: 404 SecretNotFound.
    let (status, _, body) = get("/secrets/nope?api-version=7.4".into(), bearer.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("SecretNotFound")));
    let (status, _, body) =
        get("/secrets/db-password/00000000000000000000000000000000?api-version=7.4".into(), bearer.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("SecretNotFound")));
    // A principal without access: 403 ForbiddenByRbac.
    let oid = dev.managed_identities()[0].object_id.clone();
    dev.deny_secret_access(&oid, true);
    let (status, _, body) = get("/secrets/db-password?api-version=7.4".into(), bearer.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
    dev.deny_secret_access(&oid, false);
    // A disabled version: 403.
    assert!(dev.set_secret_version_enabled("db-password", &versions[1], false));
    let (status, _, _) = get("/secrets/db-password?api-version=7.4".into(), bearer).await;
    assert_eq!(status, 403);
}

// ---------------------------------------------------------------- Key Vault source

#[tokio::test]
async fn key_vault_source_reads_latest_and_given_versions() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "first");
    dev.set_secret("db-password", "second");
    let versions = dev.secret_versions("db-password");
    for source in [vault(&dev), vault_with_managed_identity(&dev)] {
        let latest = source.get("db-password", None).await.unwrap();
        assert_eq!(latest.expose(), "second");
        assert_eq!(latest.version(), Some(versions[1].as_str()));
        let old = source.get("db-password", Some(&versions[0])).await.unwrap();
        assert_eq!((old.expose(), old.version()), ("first", Some(versions[0].as_str())));
        let e = source.get("db-password", Some("0123456789abcdef0123456789abcdef")).await.unwrap_err();
        assert!(matches!(&e, SecretError::NotFound { version: Some(_), .. }), "{e:?}");
        assert!(source.get("missing", None).await.unwrap_err().is_not_found());
        let e = source.get("../keys", None).await.unwrap_err();
        assert!(matches!(e, SecretError::Misconfigured { .. }), "{e:?}");
    }
    assert_eq!(dev.requests(Endpoint::Secrets), 8);
}

#[tokio::test]
async fn key_vault_source_failures_are_typed() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "CANARY-kv-value");
    let source = vault(&dev);
    // Down: 503 with Retry-After, retryable.
    dev.inject_times(Endpoint::Secrets, Fault::Unavailable { retry_after: 3 }, 1);
    let e = source.get("db-password", None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    // Garbage.
    dev.inject_times(Endpoint::Secrets, Fault::Body("<html>not json</html>".into()), 1);
    let e = source.get("db-password", None).await.unwrap_err();
    assert!(matches!(e, SecretError::InvalidResponse { .. }), "{e:?}");
    // Denied: the API's principal has no access.
    dev.deny_secret_access(dev.api_client_id(), true);
    let e = source.get("db-password", None).await.unwrap_err();
    assert!(matches!(&e, SecretError::Denied { detail, .. } if detail.contains("403")), "{e:?}");
    assert!(!e.is_retryable());
    dev.deny_secret_access(dev.api_client_id(), false);
    // A credential the token endpoint refuses: denied, not retryable.
    let wrong = TokenClient::new(&dev.config(), ClientCredential::secret("wrong".to_owned()));
    let e = KeyVaultSource::new(dev.vault_url(), wrong).unwrap().get("db-password", None).await.unwrap_err();
    assert!(matches!(e, SecretError::Denied { .. }), "{e:?}");
    // A vault that does not answer: unavailable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let offline = KeyVaultSource::with_token_callback(&url, |_scope| async { Ok::<_, String>("t".into()) }).unwrap();
    assert!(offline.get("db-password", None).await.unwrap_err().is_retryable());
    // A token of another audience: 401 twice (a fresh token is tried once), then denied.
    let other = KeyVaultSource::new(
        dev.vault_url(),
        TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret())),
    )
    .unwrap()
    .with_audience("api://azad-downstream");
    let before = dev.requests(Endpoint::Secrets);
    let e = other.get("db-password", None).await.unwrap_err();
    assert!(matches!(&e, SecretError::Denied { detail, .. } if detail.contains("401")), "{e:?}");
    assert_eq!(dev.requests(Endpoint::Secrets) - before, 2);
    // Values never appear in errors.
    assert!(!format!("{e} {e:?}").contains("CANARY"));
}

// ---------------------------------------------------------------- chain

#[tokio::test]
async fn chain_retries_transient_failures_with_back_off() {
    let flaky = Scripted::new("flaky", vec![Err("HTTP 503"), Err("HTTP 503"), Ok(("value", "3"))]);
    let chain = SecretChain::new([flaky.clone()]).with_retry_policy(fast_retries());
    let secret = chain.get("s", None).await.unwrap();
    assert_eq!((secret.expose(), secret.source(), secret.degraded()), ("value", "flaky", false));
    assert_eq!(flaky.calls(), 3);
    // Bounded: never more than max_attempts per source.
    let down = Scripted::new("down", vec![Err("HTTP 503")]);
    let e = SecretChain::new([down.clone()]).with_retry_policy(fast_retries()).get("s", None).await.unwrap_err();
    assert_eq!(down.calls(), 3);
    assert!(matches!(e, SecretError::AllSourcesFailed { .. }));
    // Not retried: denied, garbage, not found.
    for kind in ["denied", "garbage", "not_found"] {
        let s = Scripted::new("s", vec![Err(kind)]);
        let _ = SecretChain::new([s.clone()]).with_retry_policy(fast_retries()).get("s", None).await;
        assert_eq!(s.calls(), 1, "{kind}");
    }
}

#[tokio::test]
async fn chain_falls_back_loudly_and_fails_with_every_cause() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // The primary is down: the fallback serves, degraded, with a WARN event.
    let primary = Scripted::new("key-vault", vec![Err("HTTP 503")]);
    let fallback = Scripted::new("env", vec![Ok(("fallback-value", "1"))]);
    let chain = SecretChain::new([primary.clone(), fallback.clone()]).with_retry_policy(fast_retries());
    let secret = chain.get("db-password", None).await.unwrap();
    assert_eq!((secret.expose(), secret.source(), secret.degraded()), ("fallback-value", "env", true));
    let text = logs.text();
    assert!(text.contains("WARN") && text.contains("secret served by a fallback source"), "{text}");
    assert!(text.contains("degraded=true"), "{text}");
    // Denied in the primary: also a degraded fallback.
    let denied = Scripted::new("key-vault", vec![Err("denied")]);
    let secret = SecretChain::new([denied, fallback.clone()]).get("db-password", None).await.unwrap();
    assert!(secret.degraded());
    // Every source fails: one typed error naming each source, an ERROR event.
    let a = Scripted::new("key-vault", vec![Err("HTTP 503")]);
    let b = Scripted::new("openbao", vec![Err("denied")]);
    let c = Scripted::new("env", vec![Err("not_found")]);
    let e = SecretChain::new([a, b, c]).with_retry_policy(fast_retries()).get("db-password", None).await.unwrap_err();
    let SecretError::AllSourcesFailed { name, failures } = &e else { panic!("{e:?}") };
    assert_eq!(name, "db-password");
    let names: Vec<_> = failures.iter().map(|f| (f.source_name.as_str(), f.error.kind())).collect();
    assert_eq!(names, [("key-vault", "unavailable"), ("openbao", "denied"), ("env", "not_found")]);
    assert!(!e.is_not_found(), "some sources failed for another reason");
    let text = logs.text();
    assert!(text.contains("ERROR") && text.contains("no secret source could serve the secret"), "{text}");
    assert!(text.contains("key-vault: secret source unavailable"), "{text}");
}

#[tokio::test]
async fn not_found_falls_through_undegraded_unless_the_primary_is_authoritative() {
    let primary = Scripted::new("key-vault", vec![Err("not_found")]);
    let fallback = Scripted::new("env", vec![Ok(("layered", "1"))]);
    let chain = SecretChain::new([primary.clone(), fallback.clone()]);
    let secret = chain.get("api-key", None).await.unwrap();
    assert_eq!((secret.source(), secret.degraded()), ("env", false));
    let strict = chain.clone().with_not_found_falls_through(false);
    let e = strict.get("api-key", None).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(fallback.calls(), 1, "the authoritative primary's not-found ends the read");
    assert!(SecretChain::new(Vec::<EnvSource>::new()).get("x", None).await.is_err());
}

#[tokio::test]
async fn key_vault_down_falls_back_to_the_environment() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "from-vault");
    let chain = SecretChain::new([vault(&dev)])
        .with_source(EnvSource::from_pairs([("DB_PASSWORD", "from-env")]))
        .with_retry_policy(fast_retries());
    let secret = chain.get("db-password", None).await.unwrap();
    assert_eq!((secret.expose(), secret.degraded()), ("from-vault", false));
    dev.inject_times(Endpoint::Secrets, Fault::Status(500), 3);
    let before = dev.requests(Endpoint::Secrets);
    let secret = chain.get("db-password", None).await.unwrap();
    assert_eq!((secret.expose(), secret.source(), secret.degraded()), ("from-env", "env", true));
    assert_eq!(dev.requests(Endpoint::Secrets) - before, 3, "three attempts at the vault");
}

// ---------------------------------------------------------------- cache

#[tokio::test]
async fn cache_serves_from_memory_and_picks_up_new_versions() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "one");
    let cache = SecretCache::new(SecretChain::new([vault(&dev)]), Duration::from_secs(3600));
    let first = cache.get("db-password", None).await.unwrap();
    for _ in 0..5 {
        assert_eq!(cache.get("db-password", None).await.unwrap(), first);
    }
    assert_eq!(dev.requests(Endpoint::Secrets), 1);
    // Rotated in the vault: the cache serves the old value until refreshed...
    dev.set_secret("db-password", "two");
    assert_eq!(cache.get("db-password", None).await.unwrap().expose(), "one");
    // ...and the refresh replaces it at once.
    let fresh = cache.refresh("db-password").await.unwrap();
    assert_eq!(fresh.expose(), "two");
    assert_ne!(fresh.version(), first.version());
    assert_eq!(cache.get("db-password", None).await.unwrap().expose(), "two");
    // The old version stays readable by version.
    assert_eq!(cache.get("db-password", first.version()).await.unwrap().expose(), "one");
    assert_eq!(dev.requests(Endpoint::Secrets), 3);
    cache.invalidate("db-password");
    cache.get("db-password", None).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Secrets), 4);
}

#[tokio::test]
async fn cache_fetches_once_for_concurrent_misses_and_keeps_degraded_answers_briefly() {
    let slow = Scripted::new("slow", vec![Ok(("v", "1"))]);
    let cache = SecretCache::new(SecretChain::new([slow.clone()]), Duration::from_secs(3600));
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let cache = cache.clone();
        reads.spawn(async move { cache.get("s", None).await.map(|s| s.expose().to_owned()) });
    }
    while let Some(read) = reads.join_next().await {
        assert_eq!(read.unwrap().unwrap(), "v");
    }
    assert_eq!(slow.calls(), 1);
    // A degraded answer is not kept for the full TTL (here: not at all).
    let primary = Scripted::new("primary", vec![Err("denied")]);
    let fallback = Scripted::new("fallback", vec![Ok(("f", "1"))]);
    let cache = SecretCache::new(SecretChain::new([primary.clone(), fallback]), Duration::from_secs(3600))
        .with_degraded_ttl(Duration::ZERO);
    assert!(cache.get("s", None).await.unwrap().degraded());
    assert!(cache.get("s", None).await.unwrap().degraded());
    assert_eq!(primary.calls(), 2, "the primary is asked again");
    // Errors are not cached.
    let down = Scripted::new("down", vec![Err("HTTP 503"), Ok(("back", "2"))]);
    let cache = SecretCache::new(
        SecretChain::new([down]).with_retry_policy(SecretRetryPolicy::none()),
        Duration::from_secs(60),
    );
    assert!(cache.get("s", None).await.is_err());
    assert_eq!(cache.get("s", None).await.unwrap().expose(), "back");
}

/// A second level shared by two "replicas" (what the Redis store plays in production).
#[derive(Debug, Default)]
struct SharedLevel {
    blobs: Mutex<HashMap<[u8; 32], Vec<u8>>>,
}

impl SecondLevelStore for SharedLevel {
    fn load<'a>(&'a self, key: &'a [u8; 32]) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(async move { self.blobs.lock().unwrap().get(key).cloned() })
    }

    fn save<'a>(
        &'a self,
        key: &'a [u8; 32],
        blob: Vec<u8>,
        _ttl: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.blobs.lock().unwrap().insert(*key, blob);
        })
    }
}

#[tokio::test]
async fn second_level_serves_another_replica() {
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "shared");
    let level = Arc::new(SharedLevel::default());
    let replica = |level: Arc<SharedLevel>| {
        SecretCache::new(SecretChain::new([vault(&dev)]), Duration::from_secs(60)).with_second_level(level)
    };
    let a = replica(level.clone());
    let b = replica(level.clone());
    assert_eq!(a.get("db-password", None).await.unwrap().expose(), "shared");
    assert_eq!(b.get("db-password", None).await.unwrap().expose(), "shared");
    assert_eq!(dev.requests(Endpoint::Secrets), 1, "replica b read the second level");
    // Keys name no secret.
    let blobs = level.blobs.lock().unwrap();
    assert_eq!(blobs.len(), 1);
    assert!(blobs.keys().all(|k| !String::from_utf8_lossy(k).contains("db-password")));
}

// ---------------------------------------------------------------- environment and files

#[tokio::test]
async fn environment_variables_with_prefix_and_mapping() {
    // Cargo sets CARGO_PKG_NAME for the test process (set_var is unsafe in threaded tests).
    let source = EnvSource::new().with_prefix("CARGO_PKG_");
    assert_eq!(source.variable_name("name"), "CARGO_PKG_NAME");
    assert_eq!(source.get("name", None).await.unwrap().expose(), "azad-tests");
    assert!(source.get("no-such-variable-here", None).await.unwrap_err().is_not_found());
    let mapped = EnvSource::from_pairs([("APP__DB__PASSWORD", "p")])
        .with_prefix("APP__")
        .with_mapping(|n| n.replace(':', "__").to_uppercase());
    let secret = mapped.get("db:password", None).await.unwrap();
    assert_eq!(secret.expose(), "p");
    // The version is a digest of the value: pinning works, another version is not found.
    assert!(mapped.get("db:password", secret.version()).await.is_ok());
    assert!(mapped.get("db:password", Some("0000000000000000")).await.unwrap_err().is_not_found());
    assert!(EnvSource::from_pairs([("EMPTY", "")]).get("EMPTY", None).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn dotenv_file_is_read_again_when_it_changes() {
    let dir = temp_dir("dotenv");
    let path = dir.join(".env");
    std::fs::write(&path, "# secrets\nexport DB_PASSWORD=\"first\\nline\"\nAPI_KEY='k'\n").unwrap();
    let source = DotenvSource::new(&path);
    let first = source.get("db-password", None).await.unwrap();
    assert_eq!(first.expose(), "first\nline");
    std::fs::write(&path, "DB_PASSWORD=second\n").unwrap();
    let second = source.get("DB_PASSWORD", None).await.unwrap();
    assert_eq!(second.expose(), "second");
    assert_ne!(first.version(), second.version());
    assert!(source.get("API_KEY", None).await.unwrap_err().is_not_found());
    // Garbage: the line is named, its content never.
    std::fs::write(&path, "OK=1\nCANARY-garbage-without-equals\n").unwrap();
    let e = source.get("OK", None).await.unwrap_err();
    assert!(matches!(e, SecretError::InvalidResponse { .. }), "{e:?}");
    assert!(e.to_string().contains("line 2") && !e.to_string().contains("CANARY"), "{e}");
    // Missing file.
    let e = DotenvSource::new(dir.join("missing.env")).get("OK", None).await.unwrap_err();
    assert!(matches!(e, SecretError::Misconfigured { .. }), "{e:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a Kubernetes-style secret volume generation: `..{generation}/` with the files, and
/// `..data` swapped to it atomically (a new symlink renamed over the old one), keys linked
/// through `..data`.
fn kubelet_write(dir: &Path, generation: &str, files: &[(&str, &str)]) {
    let data_dir = dir.join(format!("..{generation}"));
    std::fs::create_dir_all(&data_dir).unwrap();
    for (key, value) in files {
        std::fs::write(data_dir.join(key), value).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (key, _) in files {
        let link = dir.join(key);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{key}"), &link).unwrap();
        }
    }
}

#[tokio::test]
async fn mounted_kubernetes_secrets_follow_the_data_symlink_swap() {
    let dir = temp_dir("k8s");
    kubelet_write(&dir, "2026_11_30_00_00_00.1", &[("db-password", "one\n"), ("api-key", "k")]);
    let source = DirectorySource::new(&dir);
    let changes = source.watch(Duration::from_millis(20));
    let cache = SecretCache::new(SecretChain::new([source.clone()]), Duration::from_secs(3600));
    cache.invalidate_on(changes.clone());
    let one = cache.get("db-password", None).await.unwrap();
    assert_eq!(one.expose(), "one");
    // The kubelet swaps in a new generation.
    kubelet_write(&dir, "2026_11_30_01_00_00.2", &[("db-password", "two\n"), ("api-key", "k")]);
    // The source itself always reads the current file...
    let two = source.get("db-password", None).await.unwrap();
    assert_eq!(two.expose(), "two");
    assert_ne!(one.version(), two.version());
    // ...and the watch reports the swap, which empties the cache.
    let mut watcher = changes.clone();
    tokio::time::timeout(Duration::from_secs(30), watcher.wait_for(|g| *g >= 1)).await.unwrap().unwrap();
    let mut served = cache.get("db-password", None).await.unwrap();
    for _ in 0..100 {
        if served.expose() == "two" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        served = cache.get("db-password", None).await.unwrap();
    }
    assert_eq!(served.expose(), "two");
    // Bad names and missing keys.
    for bad in ["..data", "../etc/passwd", ".hidden", ""] {
        assert!(matches!(source.get(bad, None).await, Err(SecretError::Misconfigured { .. })), "{bad}");
    }
    assert!(source.get("missing", None).await.unwrap_err().is_not_found());
    let gone = DirectorySource::new(dir.join("not-mounted"));
    assert!(matches!(gone.get("x", None).await, Err(SecretError::Misconfigured { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- audit events

#[tokio::test]
async fn every_read_is_audited_without_its_value() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dev = DevTenant::start().await.unwrap();
    let canary = "CANARY-8c1f-secret-value";
    dev.set_secret("db-password", canary);
    let version = dev.secret_versions("db-password").pop().unwrap();
    let cache = SecretCache::new(
        SecretChain::new([vault(&dev)])
            .with_source(EnvSource::from_pairs([("DB_PASSWORD", canary)]))
            .with_retry_policy(SecretRetryPolicy::none()),
        Duration::from_secs(60),
    )
    .with_degraded_ttl(Duration::ZERO);
    // A miss, a hit, a degraded read, a failure.
    assert_eq!(cache.get("db-password", None).await.unwrap().expose(), canary);
    assert_eq!(cache.get("db-password", None).await.unwrap().expose(), canary);
    dev.inject_times(Endpoint::Secrets, Fault::Status(503), 1);
    cache.invalidate_all();
    assert!(cache.get("db-password", None).await.unwrap().degraded());
    assert!(cache.get("absent", None).await.is_err());
    let text = logs.text();
    assert!(!text.contains(canary), "a secret value was logged:\n{text}");
    let read = text.lines().find(|l| l.contains("secret read") && l.contains("cache=\"miss\"")).expect(&text);
    for field in ["source=\"key-vault\"", "name=\"db-password\"", "outcome=\"ok\"", "degraded=false", "latency_us="] {
        assert!(read.contains(field), "{field} missing in {read}");
    }
    assert!(read.contains(&format!("version=\"{version}\"")), "{read}");
    assert!(text.lines().any(|l| l.contains("secret read") && l.contains("cache=\"hit\"")), "{text}");
    let degraded = text.lines().find(|l| l.contains("fallback source")).expect(&text);
    assert!(degraded.contains("WARN") && degraded.contains("source=\"env\"") && degraded.contains("degraded=true"));
    let failed = text.lines().find(|l| l.contains("no secret source could serve")).expect(&text);
    assert!(
        failed.contains("ERROR")
            && failed.contains("name=\"absent\"")
            && failed.contains("outcome=\"all_sources_failed\"")
    );
}

// ---------------------------------------------------------------- rotation

/// The API's client secret lives in Key Vault (`api-client-secret`), read with the managed
/// identity; the API makes on-behalf-of calls with it.
fn rotating_client(dev: &DevTenant, interval: Duration) -> (RotatingCredential, TokenClient) {
    let cache = SecretCache::new(SecretChain::new([vault_with_managed_identity(dev)]), Duration::from_secs(3600));
    let credential = RotatingCredential::client_secret(cache, "api-client-secret").with_refresh_interval(interval);
    let client = TokenClient::new(&dev.config(), credential.client_credential());
    (credential, client)
}

async fn obo(dev: &DevTenant, client: &TokenClient) -> Result<(), azad_core::TokenError> {
    let incoming = BearerToken::new(dev.token().build());
    client.acquire(TokenRequest::on_behalf_of(incoming, [DOWNSTREAM_SCOPE]).with_force_refresh(true)).await.map(|_| ())
}

#[tokio::test]
async fn rotated_client_secret_is_picked_up_at_once_when_rejected() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dev = DevTenant::start().await.unwrap();
    let old = dev.api_client_secret();
    dev.set_secret("api-client-secret", &old);
    let (credential, client) = rotating_client(&dev, Duration::from_secs(3600));
    obo(&dev, &client).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Secrets), 1);
    // Rotation: a new secret on the app registration and in Key Vault, the old one removed.
    let new = dev.add_client_secret(dev.api_client_id());
    dev.set_secret("api-client-secret", &new);
    assert!(dev.remove_client_secret(dev.api_client_id(), &old));
    let (tokens, secrets) = (dev.requests(Endpoint::Token), dev.requests(Endpoint::Secrets));
    // No restart: the next call is rejected (AADSTS7000215), refetches once, retries once.
    obo(&dev, &client).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token) - tokens, 2);
    assert_eq!(dev.requests(Endpoint::Secrets) - secrets, 1, "one refetch");
    assert_eq!(credential.rotations(), 1);
    assert_eq!(credential.current_version(), dev.secret_versions("api-client-secret").pop());
    // Then it just works.
    obo(&dev, &client).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token) - tokens, 3);
    let text = logs.text();
    assert!(!text.contains(&old) && !text.contains(&new), "a client secret was logged");
}

#[tokio::test]
async fn a_rejected_secret_without_a_newer_version_fails_without_looping() {
    let dev = DevTenant::start().await.unwrap();
    let old = dev.api_client_secret();
    dev.set_secret("api-client-secret", &old);
    let (credential, client) = rotating_client(&dev, Duration::from_secs(3600));
    obo(&dev, &client).await.unwrap();
    // Removed from the registration, but nobody updated Key Vault.
    let _new = dev.add_client_secret(dev.api_client_id());
    assert!(dev.remove_client_secret(dev.api_client_id(), &old));
    let (tokens, secrets) = (dev.requests(Endpoint::Token), dev.requests(Endpoint::Secrets));
    let e = obo(&dev, &client).await.unwrap_err();
    let entra = e.entra().expect("the token endpoint's answer");
    assert_eq!(entra.error, "invalid_client");
    assert!(entra.error_codes.contains(&7_000_215));
    assert_eq!(dev.requests(Endpoint::Token) - tokens, 1, "no retry without a new secret");
    assert_eq!(dev.requests(Endpoint::Secrets) - secrets, 1, "one refetch");
    assert_eq!(credential.rotations(), 0);
}

#[tokio::test]
async fn rotated_client_secret_is_picked_up_on_schedule() {
    let dev = DevTenant::start().await.unwrap();
    let old = dev.api_client_secret();
    dev.set_secret("api-client-secret", &old);
    // Checked at every request (interval zero), so the new version is used before any rejection.
    let (credential, client) = rotating_client(&dev, Duration::ZERO);
    obo(&dev, &client).await.unwrap();
    let new = dev.add_client_secret(dev.api_client_id());
    dev.set_secret("api-client-secret", &new);
    let tokens = dev.requests(Endpoint::Token);
    obo(&dev, &client).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token) - tokens, 1, "no rejection: the new secret was already in use");
    assert_eq!(credential.rotations(), 1);
    // The old secret can now go.
    assert!(dev.remove_client_secret(dev.api_client_id(), &old));
    obo(&dev, &client).await.unwrap();
    // A source down at the scheduled check keeps the current secret.
    dev.inject_times(Endpoint::Secrets, Fault::Status(503), 3);
    obo(&dev, &client).await.unwrap();
}

#[tokio::test]
async fn rotated_certificate_in_key_vault() {
    let dev = DevTenant::start().await.unwrap();
    let first = dev.add_certificate(dev.api_client_id());
    let v1 = dev.add_secret_version("api-certificate", &first.pem(), Some("application/x-pem-file"));
    let cache = SecretCache::new(SecretChain::new([vault_with_managed_identity(&dev)]), Duration::from_secs(3600));
    let credential = RotatingCredential::certificate(cache, "api-certificate");
    credential.load().await.unwrap();
    let client = TokenClient::new(&dev.config(), credential.client_credential());
    obo(&dev, &client).await.unwrap();
    let second = dev.add_certificate(dev.api_client_id());
    let v2 = dev.add_secret_version("api-certificate", &second.pem(), Some("application/x-pem-file"));
    assert_eq!(dev.secret_versions("api-certificate"), [v1, v2.clone()]);
    assert!(dev.remove_certificate(dev.api_client_id(), first.der()));
    let tokens = dev.requests(Endpoint::Token);
    obo(&dev, &client).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token) - tokens, 2, "rejected (AADSTS700027), refetched, retried");
    assert_eq!(credential.rotations(), 1);
    assert_eq!(credential.current_version(), Some(v2));
    // Not a certificate: a typed error at load.
    dev.set_secret("not-a-cert", "plain text");
    let cache = SecretCache::new(SecretChain::new([vault_with_managed_identity(&dev)]), Duration::from_secs(60));
    let e = RotatingCredential::certificate(cache, "not-a-cert").load().await.unwrap_err();
    assert!(matches!(e, SecretError::InvalidResponse { .. }), "{e:?}");
}
