//! The on-behalf-of path: a cache hit, and a cold exchange against the dev tenant over
//! loopback, measured in one run.
//!
//! Run with `cargo bench -p azad-core --features dev --bench obo`; BENCHMARKS.md records the
//! medians.

use std::hint::black_box;
use std::time::Duration;

use azad_core::ClientCredential;
use azad_core::dev::DevTenant;
use azad_core::{BearerToken, TokenClient, TokenRequest, TokenValidator};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::ready;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dev = rt.block_on(DevTenant::start()).unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let raw = dev.token().build();
    let claims = rt.block_on(TokenValidator::new(dev.config()).validate(&raw)).unwrap();
    let assertion = BearerToken::new(raw);
    let scopes = ["api://azad-downstream/Data.Read"];
    let request = || TokenRequest::on_behalf_of(assertion.clone(), scopes).with_validated_claims(claims.clone());
    rt.block_on(client.acquire(request())).unwrap();

    let mut g = c.benchmark_group("on_behalf_of");
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("cache_hit", |b| {
        b.iter(|| ready(&rt, client.acquire(black_box(request()))).unwrap());
    });
    g.bench_function("cold_exchange_dev_tenant", |b| {
        b.iter(|| rt.block_on(client.acquire(request().with_force_refresh(true))).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
