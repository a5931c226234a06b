//! The shared token cache: an on-behalf-of hit through the in-memory level (with a Redis store
//! configured, and without any store, for comparison), and a hit through Redis on loopback (a
//! replica with an empty memory: one `GET` round trip and one AES-256-GCM open), in one run.
//!
//! Run with `cargo bench -p azad-core --features dev,redis --bench shared_cache`; it starts
//! `redis-server` from `PATH` on a free loopback port (or uses `AZAD_TEST_REDIS_URL`).
//! BENCHMARKS.md records the medians.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use azad_core::ClientCredential;
use azad_core::dev::DevTenant;
use azad_core::store::{RedisStore, SealingKey, SharedStore};
use azad_core::{BearerToken, TokenClient, TokenRequest, TokenValidator};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

mod common;
use common::ready;

struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis() -> (String, Server) {
    if let Ok(url) = std::env::var("AZAD_TEST_REDIS_URL") {
        return (url, Server(None));
    }
    let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (Debian: apt-get install redis-server)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    (format!("redis://127.0.0.1:{port}"), Server(Some(child)))
}

fn bench(c: &mut Criterion) {
    let (url, _server) = redis();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = rt.enter();
    let dev = rt.block_on(DevTenant::start()).unwrap();
    let key = secrecy::SecretBox::new(Box::new([7u8; 32]));
    let shared = SharedStore::builder(RedisStore::new(&url).unwrap(), SealingKey::new(&key)).build();
    let new_client = || TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let with_store = new_client().with_token_store(shared.clone());
    let without_store = new_client();
    let raw = dev.token().build();
    let claims = rt.block_on(TokenValidator::new(dev.config()).validate(&raw)).unwrap();
    let assertion = BearerToken::new(raw);
    let scopes = ["api://azad-downstream/Data.Read"];
    let first = rt
        .block_on(
            with_store
                .acquire(TokenRequest::on_behalf_of(assertion.clone(), scopes).with_validated_claims(claims.clone())),
        )
        .unwrap();
    rt.block_on(
        without_store
            .acquire(TokenRequest::on_behalf_of(assertion.clone(), scopes).with_validated_claims(claims.clone())),
    )
    .unwrap();

    let mut g = c.benchmark_group("shared_cache");
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("memory_hit_no_store", |b| {
        b.iter(|| {
            ready(
                &rt,
                without_store.acquire(
                    TokenRequest::on_behalf_of(black_box(&assertion).clone(), scopes)
                        .with_validated_claims(claims.clone()),
                ),
            )
            .unwrap()
        });
    });
    g.bench_function("memory_hit_with_redis_store", |b| {
        b.iter(|| {
            ready(
                &rt,
                with_store.acquire(
                    TokenRequest::on_behalf_of(black_box(&assertion).clone(), scopes)
                        .with_validated_claims(claims.clone()),
                ),
            )
            .unwrap()
        });
    });
    // Another replica with an empty memory (built outside the measurement): one Redis GET.
    g.bench_function("redis_hit_loopback", |b| {
        b.iter_batched(
            || new_client().with_token_store(shared.clone()),
            |replica| {
                let t = rt
                    .block_on(replica.acquire(
                        TokenRequest::on_behalf_of(assertion.clone(), scopes).with_validated_claims(claims.clone()),
                    ))
                    .unwrap();
                assert_eq!(t.secret(), first.secret());
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
    assert_eq!(shared.failures(), 0, "Redis failed during the run");
}

criterion_group!(benches, bench);
criterion_main!(benches);
