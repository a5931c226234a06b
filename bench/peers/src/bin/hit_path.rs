//! Heap allocations and in-process time per request on the cache-hit path: the `AzureAdAuth`
//! layer, the `#[require_scope]` guard and the `Claims` extractor, driven with tower's
//! `oneshot` on an axum `Router` (no sockets), against the same router's public route with the
//! same `Authorization` header.
//!
//! ```sh
//! cargo run --release --manifest-path bench/peers/Cargo.toml --bin hit_path
//! ```
//!
//! Prints, for each route, allocations per request (a counting global allocator, counted only
//! around the `oneshot` calls: the requests are built beforehand) and nanoseconds per request;
//! then azad's share (the protected route minus the public one). BENCHMARKS.md records a run.



use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use azad_axum::{AzureAdAuth, Claims, require_scope};
use azad_axum::dev::DevTenant;
use http::{Request, StatusCode, header};
use tower::ServiceExt;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn health() -> &'static str {
    "ok"
}

/// The protected twin of `health`: same answer, behind the guard and the extractor.
#[require_scope("access_as_user")]
async fn me(claims: Claims) -> &'static str {
    black_box(&claims);
    "ok"
}

const REQUESTS: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dev = DevTenant::start().await.unwrap();
        let auth = AzureAdAuth::new(dev.config());
        auth.warm_up().await.unwrap();
        // `/noop`: the public handler behind a layer that does nothing, so that what axum's
        // `route_layer` itself costs (boxing the layered route) is told apart from azad's work.
        let app: Router = Router::new()
            .route("/health", get(health))
            .merge(Router::new().route("/noop", get(health)).route_layer(tower::layer::layer_fn(|s| s)))
            .merge(Router::new().route("/layer_only", get(health)).route_layer(auth.clone()))
            .merge(Router::new().route("/api/me", get(me)).route_layer(auth))
            // What `axum::serve` does first: handlers become routes (and layers are applied)
            // once, not on every call of a router used as a service directly.
            .with_state(());
        let token = dev.token().scopes(["access_as_user"]).build();
        let requests = |path: &str| -> Vec<Request<Body>> {
            (0..REQUESTS)
                .map(|_| {
                    Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap()
                })
                .collect()
        };
        // Warm-up: the token validated once (the miss), every path exercised.
        for path in ["/api/me", "/health", "/noop", "/layer_only"] {
            for r in requests(path).into_iter().take(1000) {
                assert_eq!(app.clone().oneshot(r).await.unwrap().status(), StatusCode::OK);
            }
        }
        // `HIT_PATH_ONLY=/api/me`: only that path, for a profiler (perf) to look at.
        if let Ok(path) = std::env::var("HIT_PATH_ONLY") {
            for r in requests(&path).into_iter().take(500) {
                black_box(app.clone().oneshot(r).await.unwrap());
            }
            return;
        }
        let mut results = Vec::new();
        for _round in 0..3 {
            for path in ["/health", "/noop", "/layer_only", "/api/me"] {
                let batch = requests(path);
                let mut responses = Vec::with_capacity(REQUESTS);
                let (a0, b0) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
                let start = Instant::now();
                for r in batch {
                    responses.push(app.clone().oneshot(r).await.unwrap());
                }
                let elapsed = start.elapsed();
                let (a1, b1) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
                assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
                drop(responses);
                results.push((
                    path,
                    (a1 - a0) as f64 / REQUESTS as f64,
                    (b1 - b0) as f64 / REQUESTS as f64,
                    elapsed.as_nanos() as f64 / REQUESTS as f64,
                ));
            }
        }
        let best = |path: &str| {
            let rows: Vec<_> = results.iter().filter(|r| r.0 == path).collect();
            let allocs = rows[0].1;
            let bytes = rows[0].2;
            let mut ns: Vec<f64> = rows.iter().map(|r| r.3).collect();
            ns.sort_by(f64::total_cmp);
            (allocs, bytes, ns[ns.len() / 2])
        };
        let (ha, hb, hn) = best("/health");
        let (na, nb, nn) = best("/noop");
        let (la, lb, ln) = best("/layer_only");
        let (ma, mb, mn) = best("/api/me");
        println!("route                         allocations/request  bytes/request  ns/request (median of 3)");
        println!("/health with the header       {ha:>19.2}  {hb:>13.0}  {hn:>10.0}");
        println!("/noop (a do-nothing route_layer) {na:>17.2}  {nb:>13.0}  {nn:>10.0}");
        println!("/layer_only (the layer alone)  {la:>19.2}  {lb:>13.0}  {ln:>10.0}");
        println!("/api/me (layer, guard, Claims) {ma:>18.2}  {mb:>13.0}  {mn:>10.0}");
        println!("azad's share over /health     {:>19.2}  {:>13.0}  {:>10.0}", ma - ha, mb - hb, mn - hn);
        println!("azad's share over /noop       {:>19.2}  {:>13.0}  {:>10.0}", ma - na, mb - nb, mn - nn);

        // Never-seen tokens: `validate` of distinct tokens, with the validated-token cache off
        // and on (a miss and an insert each; a cache of half as many entries, full, so every
        // insert also evicts one).
        const DISTINCT: usize = 1_000;
        let tokens: Vec<String> = (0..2 * DISTINCT).map(|_| dev.token().scopes(["access_as_user"]).build()).collect();
        let uncached = azad_axum::TokenValidator::new(dev.config_builder().validated_token_cache_capacity(0).build().unwrap());
        let cached = azad_axum::TokenValidator::new(
            dev.config_builder().validated_token_cache_capacity(DISTINCT as u64).build().unwrap(),
        );
        uncached.warm_up().await.unwrap();
        cached.warm_up().await.unwrap();
        for t in &tokens[DISTINCT..] {
            cached.validate(t).await.unwrap();
        }
        for (name, validator) in [("never-seen, cache off", &uncached), ("never-seen, full cache (insert, evict)", &cached)] {
            let (a0, b0) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
            for t in &tokens[..DISTINCT] {
                black_box(validator.validate(t).await.unwrap());
            }
            let (a1, b1) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
            println!(
                "{name:<40} {:>8.2} allocations/token {:>8.0} bytes/token",
                (a1 - a0) as f64 / DISTINCT as f64,
                (b1 - b0) as f64 / DISTINCT as f64
            );
        }
    });
}
