//! The shared encrypted token cache against a real `redis-server`: replicas share one
//! exchange, entries are sealed and name nobody, tampering is refused, and Redis failing never
//! fails a request.
//!
//! The Redis comes from `AZAD_TEST_REDIS_URL` (`.ci/run` starts one); without it each test
//! starts its own `redis-server` from `PATH`, and fails with the install hint when there is
//! none. Tests that kill Redis always start their own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azad_core::ClientCredential;
use azad_core::SignInClient;
use azad_core::dev::{DevApp, DevTenant, Endpoint};
use azad_core::store::{RedisStore, SealingKey, SharedStore};
use azad_core::{BearerToken, TokenClient};
use azad_examples::redis_server::{self, RedisServer};

const DOWNSTREAM: &str = "api://azad-downstream/Data.Read";
const DOWNSTREAM_APP: &str = "api://azad-downstream/.default";

/// The test's Redis (and the server this test started, if any: kept alive by the caller).
async fn redis() -> (String, Option<RedisServer>) {
    redis_server::url_or_start().await.unwrap_or_else(|e| panic!("{e}"))
}

/// A namespace of this test's own, so tests sharing one Redis never see each other's entries.
fn namespace() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    format!("t{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn key(byte: u8) -> SealingKey {
    SealingKey::new(&secrecy::SecretBox::new(Box::new([byte; 32])))
}

/// One replica's store: its own connection, the shared URL, namespace and key.
fn store(url: &str, namespace: &str, key: SealingKey) -> SharedStore {
    SharedStore::builder(RedisStore::new(url).unwrap(), key).namespace(namespace).build()
}

/// One replica's token client (its own memory).
fn replica(dev: &DevTenant, store: SharedStore) -> TokenClient {
    TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret())).with_token_store(store)
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Every key (and its value) under `namespace`.
async fn entries(url: &str, namespace: &str) -> Vec<(String, Vec<u8>)> {
    let mut c = connection(url).await;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{namespace}:*")).query_async(&mut c).await.unwrap();
    let mut out = Vec::new();
    for k in keys {
        let v: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap();
        out.extend(v.map(|v| (k, v)));
    }
    out.sort();
    out
}

async fn set_raw(url: &str, key: &str, value: &[u8]) {
    let mut c = connection(url).await;
    let () = redis::cmd("SET").arg(key).arg(value).arg("PX").arg(600_000).query_async(&mut c).await.unwrap();
}

#[tokio::test]
async fn two_replicas_share_one_on_behalf_of_exchange() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let (a, b) = (replica(&dev, store(&url, &ns, key(1))), replica(&dev, store(&url, &ns, key(1))));
    let incoming = BearerToken::new(dev.token().build());
    dev.reset_counters();
    let from_a = a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    let from_b = b.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    assert_eq!(from_a.secret(), from_b.secret(), "replica B reused replica A's exchange");
    assert_eq!(dev.requests(Endpoint::Token), 1, "one on-behalf-of exchange for both replicas");
    // A third replica started later (a restart) finds it too.
    let c = replica(&dev, store(&url, &ns, key(1)));
    assert_eq!(c.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap().secret(), from_a.secret());
    assert_eq!(dev.requests(Endpoint::Token), 1);
    // Another user's token is another entry: no sharing across users.
    let other = BearerToken::new(dev.token().claim("oid", "another-user").build());
    let theirs = b.acquire_on_behalf_of(&other, &[DOWNSTREAM]).await.unwrap();
    assert_ne!(theirs.secret(), from_a.secret());
    assert_eq!(dev.requests(Endpoint::Token), 2);
}

#[tokio::test]
async fn two_replicas_share_one_app_token() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let (a, b) = (replica(&dev, store(&url, &ns, key(1))), replica(&dev, store(&url, &ns, key(1))));
    dev.reset_counters();
    let from_a = a.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    let from_b = b.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert_eq!(from_a.secret(), from_b.secret());
    assert_eq!(dev.requests(Endpoint::Token), 1);
    // The shared entry expires at the token's refresh time, not later.
    let mut c = connection(&url).await;
    let (k, _) = entries(&url, &ns).await.into_iter().next().unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&k).query_async(&mut c).await.unwrap();
    let lifetime = from_a.expires_at().duration_since(std::time::SystemTime::now()).unwrap();
    let ttl = Duration::from_millis(u64::try_from(ttl).unwrap());
    assert!(
        ttl + Duration::from_secs(299) < lifetime,
        "TTL {ttl:?} is not the lifetime {lifetime:?} minus the refresh margin"
    );
}

#[tokio::test]
async fn nothing_in_redis_names_the_user_or_holds_a_token() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let a = replica(&dev, store(&url, &ns, key(1)));
    let user = &dev.users()[0];
    let incoming_text = dev.token().build();
    let incoming = BearerToken::new(incoming_text.clone());
    let obo = a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    let app = a.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    let stored = entries(&url, &ns).await;
    assert_eq!(stored.len(), 2, "one entry per token, no lock left behind");
    let needles: Vec<&str> = vec![
        obo.secret(),
        app.secret(),
        &incoming_text,
        &user.oid,
        &user.username,
        dev.tenant_id(),
        dev.api_client_id(),
        "azad-downstream",
        "eyJ",
    ];
    for (k, v) in &stored {
        for needle in &needles {
            let n = needle.as_bytes();
            assert!(!k.contains(needle), "a key names {needle}");
            assert!(!v.windows(n.len()).any(|w| w == n), "a value holds {needle}");
            // Not in another encoding either (the token's payload part, lower case).
            assert!(!k.to_lowercase().contains(&needle.to_lowercase()));
        }
        assert!(k.len() == ns.len() + 1 + 64, "keys are `namespace:hash`: {k}");
    }
}

#[tokio::test]
async fn tampered_or_swapped_entries_are_refused_and_refetched() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let incoming = BearerToken::new(dev.token().build());
    let a = replica(&dev, store(&url, &ns, key(1)));
    a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    a.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    let stored = entries(&url, &ns).await;
    let [(k1, v1), (k2, v2)] = [stored[0].clone(), stored[1].clone()];

    // 1. One byte flipped in each entry: both refused (a miss, no error), both refetched.
    for (k, v) in [(&k1, &v1), (&k2, &v2)] {
        let mut t = v.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        set_raw(&url, k, &t).await;
    }
    dev.reset_counters();
    let b = replica(&dev, store(&url, &ns, key(1)));
    b.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    b.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), 2, "tampered entries were used");
    // ...and overwritten: the next replica reads them again.
    let c = replica(&dev, store(&url, &ns, key(1)));
    c.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    c.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), 2);

    // 2. Entries swapped between keys (the app token under the on-behalf-of key): refused.
    let stored = entries(&url, &ns).await;
    set_raw(&url, &stored[0].0, &stored[1].1).await;
    set_raw(&url, &stored[1].0, &stored[0].1).await;
    let d = replica(&dev, store(&url, &ns, key(1)));
    let obo = d.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    let app = d.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert_ne!(obo.secret(), app.secret());
    assert_eq!(dev.requests(Endpoint::Token), 4, "swapped entries were used");

    // 3. Garbage: a miss too.
    set_raw(&url, &stored[0].0, b"not an entry").await;
    let e = replica(&dev, store(&url, &ns, key(1)));
    e.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    e.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), 5);
}

#[tokio::test]
async fn a_replica_with_another_sealing_key_reads_nothing_and_rotation_reads_the_old_key() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let incoming = BearerToken::new(dev.token().build());
    let a = replica(&dev, store(&url, &ns, key(1)));
    let first = a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    dev.reset_counters();
    // Rotation: sealing with key 2, still opening key 1's entries.
    let rotated =
        SharedStore::builder(RedisStore::new(&url).unwrap(), key(2)).previous_key(key(1)).namespace(&ns).build();
    let b = replica(&dev, rotated);
    assert_eq!(b.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap().secret(), first.secret());
    assert_eq!(dev.requests(Endpoint::Token), 0);
    // A key it does not know: a miss, then its own exchange.
    let c = replica(&dev, store(&url, &ns, key(3)));
    c.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), 1);
}

/// Log lines, for counting warnings.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        logs
    }

    fn count(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap()).matches(text).count()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const OUTAGE: &str = "the shared token store failed";
const RECOVERED: &str = "the shared token store is reachable again";

#[tokio::test]
async fn redis_killed_mid_run_keeps_requests_succeeding_then_reconnects() {
    let logs = Logs::install();
    let mut server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let url = server.url();
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let shared = store(&url, &ns, key(1));
    let users: Vec<BearerToken> =
        (0..6).map(|i| BearerToken::new(dev.token().claim("oid", format!("user-{i}")).build())).collect();
    let a = replica(&dev, shared.clone());
    a.acquire_on_behalf_of(&users[0], &[DOWNSTREAM]).await.unwrap();
    assert_eq!(shared.failures(), 0);

    server.kill();
    // Every request still succeeds (memory and the token endpoint), new users included.
    for user in &users {
        let t = a.acquire_on_behalf_of(user, &[DOWNSTREAM]).await.expect("Redis down must not fail a request");
        assert!(!t.secret().is_empty());
    }
    a.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
    assert!(shared.failures() >= 1, "the failure counter did not move");
    assert!(!shared.is_available());
    assert_eq!(logs.count(OUTAGE), 1, "one warning per outage:\n{}", logs.text());
    assert!(!logs.text().contains(users[1].secret()), "a token in the logs");

    // Redis is back (empty): the store reconnects by itself and is written again.
    server.restart().await.unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let fresh = replica(&dev, shared.clone());
        fresh.acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
        if shared.is_available() && !entries(&url, &ns).await.is_empty() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the store did not reconnect:\n{}", logs.text());
    assert_eq!(logs.count(RECOVERED), 1, "{}", logs.text());
    assert_eq!(logs.count(OUTAGE), 1, "still one warning for the one outage");
}

#[tokio::test]
async fn redis_down_at_start_is_memory_only_until_it_comes_up() {
    let mut server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let url = server.url();
    server.kill();
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    let shared = store(&url, &ns, key(1));
    let a = replica(&dev, shared.clone());
    let incoming = BearerToken::new(dev.token().build());
    dev.reset_counters();
    let first = a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap();
    // The memory level works as before.
    assert_eq!(a.acquire_on_behalf_of(&incoming, &[DOWNSTREAM]).await.unwrap().secret(), first.secret());
    assert_eq!(dev.requests(Endpoint::Token), 1);
    assert!(shared.failures() >= 1 && !shared.is_available());
    server.restart().await.unwrap();
    let mut up = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        replica(&dev, shared.clone()).acquire_app_token(&[DOWNSTREAM_APP]).await.unwrap();
        if shared.is_available() && !entries(&url, &ns).await.is_empty() {
            up = true;
            break;
        }
    }
    assert!(up, "the store never connected");
}

/// Signs `account` in through the dev tenant's authorize endpoint (no browser needed).
async fn sign_in(client: &SignInClient, scope: &str) -> azad_core::Account {
    let request = client.authorization_request(&[scope]);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let location = http.get(request.url()).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1.to_owned();
    client.complete(&request, &query).await.unwrap().account().clone()
}

#[tokio::test]
async fn a_restarted_sign_in_client_keeps_the_users_tokens() {
    let (url, _server) = redis().await;
    let ns = namespace();
    let web = DevApp::new("web").redirect_uri("http://localhost:5000/getAToken");
    let dev = DevTenant::builder().app(web.clone()).start().await.unwrap();
    let secret = dev.add_client_secret(&web.client_id);
    let config = dev.config_builder().client_id(&web.client_id).build().unwrap();
    let new_client = || {
        SignInClient::new(&config, ClientCredential::secret(secret.clone()), "http://localhost:5000/getAToken")
            .with_token_store(store(&url, &ns, key(1)))
    };
    let api_scope = format!("api://{}/access_as_user", dev.api_client_id());
    let before = new_client();
    let account = sign_in(&before, &api_scope).await;
    let token = before.acquire_token_silent(&account, &[&api_scope]).await.unwrap();
    drop(before);

    // "Restarted": a new client, empty memory. The access token comes from Redis...
    dev.reset_counters();
    let after = new_client();
    assert_eq!(after.acquire_token_silent(&account, &[&api_scope]).await.unwrap().secret(), token.secret());
    assert_eq!(dev.requests(Endpoint::Token), 0);
    // ...and a token for another scope from the refresh token kept in Redis.
    let other = after.acquire_token_silent(&account, &[DOWNSTREAM]).await.expect("the refresh token survived");
    assert!(!other.secret().is_empty());
    assert_eq!(dev.requests(Endpoint::Token), 1);
    // Without the store the user would have had to sign in again.
    let memory_only =
        SignInClient::new(&config, ClientCredential::secret(secret.clone()), "http://localhost:5000/getAToken");
    assert!(matches!(
        memory_only.acquire_token_silent(&account, &[&api_scope]).await,
        Err(azad_core::TokenError::SignInRequired(_))
    ));
    // Signing out removes the shared refresh token.
    let stored = entries(&url, &ns).await.len();
    let _ = after.sign_out(&account, "http://localhost:5000/");
    // The delete runs in the background: wait for the entry to go, then check that it was the
    // refresh token.
    let mut signed_out = false;
    for _ in 0..100 {
        if entries(&url, &ns).await.len() < stored {
            let third = new_client();
            signed_out = matches!(
                third.acquire_token_silent(&account, &["api://azad-downstream/Other"]).await,
                Err(azad_core::TokenError::SignInRequired(_))
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(signed_out, "the shared refresh token outlived the sign-out");
    // Nothing names the user.
    for (k, v) in entries(&url, &ns).await {
        for needle in [account.username(), account.object_id(), account.home_account_id(), token.secret()] {
            assert!(!k.contains(needle) && !v.windows(needle.len()).any(|w| w == needle.as_bytes()));
        }
    }
}

/// The `replicas` scenario (`cargo run --example replicas -- --check`): a web app and two API
/// replicas; one sign-in, one on-behalf-of exchange for both replicas, and the user still
/// signed in after the web app restarts.
#[tokio::test]
async fn replicas_scenario() {
    let (url, _server) = redis().await;
    let report = azad_examples::replicas::run(&url).await.unwrap();
    assert!(report.signed_in, "{report:?}");
    assert_eq!(report.calls_per_replica, [2, 2], "{report:?}");
    assert_eq!(report.token_requests_for_calls, 1, "{report:?}");
    assert!(report.signed_in_after_restart, "{report:?}");
    assert_eq!(report.token_requests_after_restart, 0, "{report:?}");
    assert!(report.ok());
}

/// Issue 11: the secrets cache's optional second level is the same sealed Redis store; another
/// replica reads the secret from Redis (the vault sees one read), and Redis holds neither the
/// secret's name nor its value.
#[tokio::test]
async fn the_secrets_cache_shares_sealed_entries_through_redis() {
    use azad_core::secrets::{KeyVaultSource, SecretCache, SecretChain};

    let (url, _server) = redis().await;
    let ns = namespace();
    let dev = DevTenant::start().await.unwrap();
    dev.set_secret("db-password", "canary-secret-value-4711");
    let reader = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let replica = || {
        let vault = KeyVaultSource::new(dev.vault_url(), reader.clone()).unwrap();
        SecretCache::new(SecretChain::new([vault]), Duration::from_secs(60)).with_second_level(Arc::new(store(
            &url,
            &ns,
            key(7),
        )))
    };
    let (a, b) = (replica(), replica());
    assert_eq!(a.get("db-password", None).await.unwrap().expose(), "canary-secret-value-4711");
    assert_eq!(b.get("db-password", None).await.unwrap().expose(), "canary-secret-value-4711");
    assert_eq!(dev.requests(Endpoint::Secrets), 1, "replica b read the sealed entry from Redis");

    let stored = entries(&url, &ns).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    for (k, v) in &stored {
        let text = String::from_utf8_lossy(v);
        assert!(!k.contains("db-password") && !text.contains("db-password") && !text.contains("canary-secret"));
    }
    // A replica with another sealing key cannot open the entry: a miss, so it reads the vault.
    let vault = KeyVaultSource::new(dev.vault_url(), reader.clone()).unwrap();
    let other = SecretCache::new(SecretChain::new([vault]), Duration::from_secs(60))
        .with_second_level(Arc::new(store(&url, &ns, key(8))));
    assert_eq!(other.get("db-password", None).await.unwrap().expose(), "canary-secret-value-4711");
    assert_eq!(dev.requests(Endpoint::Secrets), 2);

    // Rotated at the source and invalidated on replica a (say, a mounted secret changed): a's
    // next read goes to the vault, not to the stale shared entry, and overwrites that entry,
    // so a replica starting afterwards reads the new value from Redis.
    dev.set_secret("db-password", "rotated-value-0815");
    a.invalidate("db-password");
    assert_eq!(a.get("db-password", None).await.unwrap().expose(), "rotated-value-0815");
    assert_eq!(dev.requests(Endpoint::Secrets), 3);
    let c = replica();
    assert_eq!(c.get("db-password", None).await.unwrap().expose(), "rotated-value-0815");
    assert_eq!(dev.requests(Endpoint::Secrets), 3, "replica c read the overwritten shared entry");
    // invalidate_all does the same for every name.
    dev.set_secret("db-password", "rotated-again-2024");
    b.invalidate_all();
    assert_eq!(b.get("db-password", None).await.unwrap().expose(), "rotated-again-2024");
    assert_eq!(dev.requests(Endpoint::Secrets), 4);
}
