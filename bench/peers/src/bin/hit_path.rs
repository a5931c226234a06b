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
//! then the three routes timed in paired rounds (requests built in the loop around one shared
//! header), with the median and spread of the per-round differences; then allocations per
//! never-seen token. `HIT_PATH_ONLY=/api/me HIT_PATH_N=20000` runs one route's loop alone, for
//! perf or callgrind (BENCHMARKS.md has the commands). BENCHMARKS.md records the runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use azad_axum::dev::DevTenant;
use azad_axum::{AzureAdAuth, Claims, require_scope};
use http::{Request, StatusCode, header};
use tower::ServiceExt;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Counting is on only where allocations are counted: two shared atomic adds per allocation
/// would otherwise make every allocation of the timed loops (and of callgrind's counts) dearer
/// than in a server.
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
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

/// `n` requests to `path`, each built by `one`: the loop a profiler looks at, polled through a
/// box (so that it is not inlined into its caller) so that callgrind can count it alone
/// (`--toggle-collect='hit_path::drive*'`): the dev tenant's RSA key generation before it varies from
/// run to run.
fn drive<'a>(
    app: &'a Router,
    one: &'a impl Fn(&'static str) -> Request<Body>,
    path: &'static str,
    n: usize,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>> {
    Box::pin(async move {
        for _ in 0..n {
            black_box(app.clone().oneshot(one(path)).await.unwrap());
        }
    })
}

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
            .merge(Router::new().route("/api/me", get(me)).route_layer(auth.clone()))
            // `/api/me_handler`: the same handler with the layer applied by `Handler::layer`
            // instead of `route_layer` (no boxed route of its own; for HIT_PATH_ONLY).
            .route("/api/me_handler", get(axum::handler::Handler::layer(me, auth)))
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
        // One shared header value (what hyper hands a service: the bytes it just read).
        let header_value: &'static str = Box::leak(format!("Bearer {token}").into_boxed_str());
        let header_value = header::HeaderValue::from_static(header_value);
        let one = |path: &'static str| {
            Request::builder()
                .uri(http::Uri::from_static(path))
                .header(header::AUTHORIZATION, header_value.clone())
                .body(Body::empty())
                .unwrap()
        };
        // Warm-up: the token validated once (the miss), every path exercised.
        for path in ["/api/me", "/health", "/noop", "/layer_only", "/api/me_handler"] {
            for r in requests(path).into_iter().take(1000) {
                assert_eq!(app.clone().oneshot(r).await.unwrap().status(), StatusCode::OK);
            }
        }
        // `HIT_PATH_ONLY=/api/me`: only that path, `HIT_PATH_N` (3 000 000) requests built in the
        // loop, for a profiler to look at (perf; or callgrind, whose instruction counts of two
        // values of `HIT_PATH_N` give the instructions per request, whatever the host is doing).
        if let Ok(path) = std::env::var("HIT_PATH_ONLY") {
            let path: &'static str = Box::leak(path.into_boxed_str());
            let n: usize = std::env::var("HIT_PATH_N").ok().and_then(|n| n.parse().ok()).unwrap_or(3_000_000);
            drive(&app, &one, path, n).await;
            return;
        }
        let mut results = Vec::new();
        COUNTING.store(true, Ordering::Relaxed);
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
        COUNTING.store(false, Ordering::Relaxed);
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
        println!("route                         allocations/request  bytes/request  ns/request (median of 3, allocations counted)");
        println!("/health with the header       {ha:>19.2}  {hb:>13.0}  {hn:>10.0}");
        println!("/noop (a do-nothing route_layer) {na:>17.2}  {nb:>13.0}  {nn:>10.0}");
        println!("/layer_only (the layer alone)  {la:>19.2}  {lb:>13.0}  {ln:>10.0}");
        println!("/api/me (layer, guard, Claims) {ma:>18.2}  {mb:>13.0}  {mn:>10.0}");
        println!("azad's share over /health     {:>19.2}  {:>13.0}  {:>10.0}", ma - ha, mb - hb, mn - hn);
        println!("azad's share over /noop       {:>19.2}  {:>13.0}  {:>10.0}", ma - na, mb - nb, mn - nn);

        // Paired time: the rounds above read 20 000 prebuilt 1.3 KB headers, each one a CPU
        // cache miss (a server reads a header the kernel just wrote), so their nanoseconds swing
        // by more than azad's share. Here each request is built in the timed loop around one
        // shared header value (what hyper hands a service: the bytes just read), the same for
        // both routes, and the two routes alternate in short batches; the difference of each
        // pair of batches is azad's added time per request, reported as the median and range.
        const BATCH: usize = 2_000;
        const PAIRS: usize = 150;
        let batch = async |path: &'static str| {
            let start = Instant::now();
            for _ in 0..BATCH {
                let response = app.clone().oneshot(one(path)).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                black_box(response);
            }
            start.elapsed().as_nanos() as f64 / BATCH as f64
        };
        for _ in 0..20 {
            for path in ["/health", "/noop", "/api/me"] {
                batch(path).await;
            }
        }
        // Three routes per round, in a rotating order: `/health`, `/noop` (the public handler
        // behind a do-nothing `route_layer`: what axum's layering itself costs) and `/api/me`.
        let routes = ["/health", "/noop", "/api/me"];
        let mut ns: [Vec<f64>; 3] = Default::default();
        let (mut over_health, mut over_noop) = (Vec::new(), Vec::new());
        for pair in 0..PAIRS {
            let mut round = [0.0; 3];
            for k in 0..3 {
                let i = (pair + k) % 3;
                round[i] = batch(routes[i]).await;
            }
            for i in 0..3 {
                ns[i].push(round[i]);
            }
            over_health.push(round[2] - round[0]);
            over_noop.push(round[2] - round[1]);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[v.len() / 10], v[v.len() * 9 / 10])
        };
        let [h, n, m] = ns.map(|mut v| median(&mut v).0);
        let (a, a10, a90) = median(&mut over_health);
        let (b, b10, b90) = median(&mut over_noop);
        println!();
        println!("paired, {PAIRS} rounds of {BATCH}-request batches, requests built in the loop:");
        println!("/health with the header  {h:>7.0} ns/request (median)");
        println!("/noop                    {n:>7.0} ns/request (median)");
        println!("/api/me                  {m:>7.0} ns/request (median)");
        println!("/api/me - /health        {a:>7.0} ns/request (median of the rounds; 10th-90th percentile {a10:.0} to {a90:.0})");
        println!("/api/me - /noop          {b:>7.0} ns/request (median of the rounds; 10th-90th percentile {b10:.0} to {b90:.0})");
        println!("ratio /health ÷ /api/me  {:>7.3} (medians)", h / m);

        // Never-seen tokens: `validate` of distinct tokens, with the validated-token cache off
        // and on (a miss and an insert each; a cache of half as many entries, full, so every
        // insert also evicts one).
        const DISTINCT: usize = 1_000;
        COUNTING.store(true, Ordering::Relaxed);
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
