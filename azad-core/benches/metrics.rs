//! The validated-token cache hit with metrics recorded (a Prometheus recorder installed) and
//! without (no recorder: no-op handles), in one run; and the hit through a validator of two
//! authorities.
//!
//! Run with `cargo bench -p azad-core --features dev,metrics --bench metrics`; BENCHMARKS.md
//! records the medians and their ratios.

use std::hint::black_box;
use std::time::Duration;

use azad_core::TokenValidator;
use azad_core::dev::DevTenant;
use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;

mod common;
use common::ready;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dev = rt.block_on(DevTenant::start()).unwrap();
    let other = rt.block_on(DevTenant::start()).unwrap();
    let token = dev.token().build();

    // No recorder: the handles registered at construction are no-ops.
    let plain = TokenValidator::new(dev.config());
    // The same validator built while a Prometheus recorder is the current one: its handles are
    // that recorder's atomic counters.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let recorded = metrics::with_local_recorder(&recorder, || TokenValidator::new(dev.config()));
    let two = TokenValidator::authorities([("other", other.config()), ("dev", dev.config())]).unwrap();
    for v in [&plain, &recorded, &two] {
        rt.block_on(v.warm_up()).unwrap();
        ready(&rt, v.validate(&token)).unwrap();
    }

    let mut g = c.benchmark_group("metrics");
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("cache_hit_no_recorder", |b| {
        b.iter(|| ready(&rt, plain.validate(black_box(&token))).unwrap());
    });
    g.bench_function("cache_hit_prometheus_recorder", |b| {
        b.iter(|| ready(&rt, recorded.validate(black_box(&token))).unwrap());
    });
    g.bench_function("layer_fast_path_no_recorder", |b| {
        b.iter(|| plain.try_cached(black_box(&token)).unwrap());
    });
    g.bench_function("layer_fast_path_prometheus_recorder", |b| {
        b.iter(|| recorded.try_cached(black_box(&token)).unwrap());
    });
    g.bench_function("cache_hit_second_of_two_authorities", |b| {
        b.iter(|| ready(&rt, two.validate(black_box(&token))).unwrap());
    });
    g.finish();

    // The recorded validator really recorded: its counters moved.
    let text = handle.render();
    assert!(text.contains("azad_validated_token_cache_requests_total{authority=\"default\",result=\"hit\"}"), "{text}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
