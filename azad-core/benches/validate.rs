//! `validate()` against the bare RS256 verification of the same token, measured in one run.
//!
//! Run with `cargo bench -p azad-core --features dev --bench validate`; BENCHMARKS.md records
//! the medians and their ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use azad_core::TokenValidator;
use azad_core::dev::DevTenant;
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::ready;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dev = rt.block_on(DevTenant::start()).unwrap();
    const POOL: usize = 2_000;
    let tokens: Vec<String> = (0..POOL).map(|_| dev.token().build()).collect();
    let token = tokens[0].clone();

    // The bare verification: jsonwebtoken's aws-lc RS256 with the JWKS key parsed once.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&dev.jwks_json()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let (message, signature) = token.rsplit_once('.').unwrap();

    let uncached = TokenValidator::new(dev.config_builder().validated_token_cache_capacity(0).build().unwrap());
    rt.block_on(uncached.warm_up()).unwrap();
    let cached = TokenValidator::new(dev.config());
    rt.block_on(cached.warm_up()).unwrap();
    ready(&rt, cached.validate_shared(&token)).unwrap();

    let mut g = c.benchmark_group("validate");
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("bare_rs256_verify", |b| {
        b.iter(|| {
            let ok = jsonwebtoken::crypto::verify(
                black_box(signature),
                black_box(message.as_bytes()),
                &key,
                jsonwebtoken::Algorithm::RS256,
            );
            assert!(ok.unwrap());
        });
    });
    g.bench_function("validate_uncached", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % POOL;
            ready(&rt, uncached.validate_shared(black_box(&tokens[i]))).unwrap()
        });
    });
    // Never-seen tokens through the validated-token cache (miss + insert): a fresh validator,
    // warmed outside the timed section, every POOL tokens.
    g.bench_function("validate_never_seen", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let v = TokenValidator::new(dev.config());
                rt.block_on(v.warm_up()).unwrap();
                let n = (iters - done).min(POOL as u64) as usize;
                let start = Instant::now();
                for t in &tokens[..n] {
                    black_box(ready(&rt, v.validate_shared(black_box(t))).unwrap());
                }
                total += start.elapsed();
                done += n as u64;
            }
            total
        });
    });
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token.split('.').nth(1).unwrap())
            .unwrap();
    g.bench_function("claims_parse", |b| {
        b.iter(|| azad_core::Claims::from_json(black_box(&payload)).unwrap());
    });
    g.bench_function("validate_cache_hit", |b| {
        b.iter(|| ready(&rt, cached.validate_shared(black_box(&token))).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
