//! A flood of distinct valid tokens through azad's layer: every token is new, so every request
//! is a full validation (one RS256 verification) plus a validated-token cache insert, with the
//! cache full and evicting. Reports the layer's time per token (against a bare
//! `jsonwebtoken::crypto::verify` of the same tokens), the live heap and resident memory as the
//! cache fills and then stays full, and the bytes each cached entry costs.
//!
//! ```sh
//! cargo run --release --manifest-path bench/peers/Cargo.toml --bin flood -- [TOKENS] [CAPACITY]
//! ```
//!
//! Defaults: 1 000 000 tokens, a cache of 10 000 (azad's default). The dev tenant mints the
//! tokens in-process on background threads (an RSA signature each: minting is the slow part
//! of this run); the layer is driven on the main thread with tower's `oneshot`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use azad_axum::dev::DevTenant;
use azad_axum::{AzureAdAuth, Claims};
use http::{Request, StatusCode, header};
use tower::ServiceExt;

struct Counting;

/// Bytes currently allocated.
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time of the calling thread, from clock_gettime(CLOCK_THREAD_CPUTIME_ID) (the
/// scheduler's own nanosecond account): the main thread's work, whatever the minting threads
/// and the neighbours do to the wall clock.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec into the one we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn me(claims: Claims) -> &'static str {
    std::hint::black_box(&claims);
    "ok"
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(1_000_000, |a| a.parse().expect("TOKENS"));
    let capacity: u64 = args.next().map_or(10_000, |a| a.parse().expect("CAPACITY"));
    let minters = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dev = std::sync::Arc::new(rt.block_on(DevTenant::start()).unwrap());
    let config = dev.config_builder().validated_token_cache_capacity(capacity).build().unwrap();
    let auth = AzureAdAuth::new(config);
    rt.block_on(auth.warm_up()).unwrap();
    let app: Router = Router::new().route("/api/me", get(me)).route_layer(auth);

    // The bare verification, for the same kind of token.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&dev.jwks_json()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();

    // Minting on background threads, in batches.
    let (tx, rx) = mpsc::sync_channel::<Vec<String>>(64);
    let per = total.div_ceil(minters);
    let mut handles = Vec::new();
    for m in 0..minters {
        let (tx, dev) = (tx.clone(), dev.clone());
        let n = per.min(total.saturating_sub(m * per));
        handles.push(std::thread::spawn(move || {
            let mut left = n;
            while left > 0 {
                let batch = left.min(256);
                let tokens: Vec<String> = (0..batch).map(|_| dev.token().scopes(["access_as_user"]).build()).collect();
                left -= batch;
                if tx.send(tokens).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);

    let (live0, rss0) = (LIVE.load(Ordering::Relaxed), rss_kib());
    println!("flood: {total} distinct tokens, validated-token cache capacity {capacity}, {minters} minting threads");
    println!("start: live heap {} KiB, RSS {rss0} KiB", live0 / 1024);
    println!("CPU times are the main thread's own (CLOCK_THREAD_CPUTIME_ID), per token, over the interval");
    println!(
        "{:>10} {:>14} {:>12} {:>16} {:>18}",
        "tokens", "layer µs/token", "RSS KiB", "live heap KiB", "bare verify µs"
    );
    let (mut done, mut in_layer, mut in_bare) = (0usize, Duration::ZERO, Duration::ZERO);
    let mut next_report = capacity as usize;
    let (mut layer_at, mut bare_at, mut done_at) = (Duration::ZERO, Duration::ZERO, 0usize);
    let mut full: Option<(i64, u64)> = None;
    let mut max_rss = 0;
    let wall = Instant::now();
    rt.block_on(async {
        while let Ok(batch) = rx.recv() {
            for token in batch {
                let request = Request::get("/api/me")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                let start = thread_cpu();
                let response = app.clone().oneshot(request).await.unwrap();
                in_layer += thread_cpu() - start;
                assert_eq!(response.status(), StatusCode::OK);
                // One bare verification in 16, to compare against on the same machine at the same time.
                if done % 16 == 0 {
                    let (message, signature) = token.rsplit_once('.').unwrap();
                    let start = thread_cpu();
                    let ok = jsonwebtoken::crypto::verify(
                        signature,
                        message.as_bytes(),
                        &key,
                        jsonwebtoken::Algorithm::RS256,
                    );
                    in_bare += (thread_cpu() - start) * 16;
                    assert!(ok.unwrap());
                }
                done += 1;
                if done == capacity as usize {
                    full = Some((LIVE.load(Ordering::Relaxed), rss_kib()));
                }
                if done == next_report || done == total {
                    let rss = rss_kib();
                    max_rss = max_rss.max(rss);
                    let n = (done - done_at) as f64;
                    println!(
                        "{done:>10} {:>14.1} {rss:>12} {:>16} {:>18.1}",
                        (in_layer - layer_at).as_secs_f64() * 1e6 / n,
                        LIVE.load(Ordering::Relaxed) / 1024,
                        (in_bare - bare_at).as_secs_f64() * 1e6 / n,
                    );
                    (layer_at, bare_at, done_at) = (in_layer, in_bare, done);
                    next_report = (next_report * 2).min(total).max(done + 1);
                }
            }
        }
    });
    for h in handles {
        h.join().unwrap();
    }
    let wall = wall.elapsed();
    let (live_end, rss_end) = (LIVE.load(Ordering::Relaxed), rss_kib());
    let (live_full, rss_full) = full.unwrap_or((live_end, rss_end));
    println!();
    println!(
        "layer: {:.1} µs per token over the run; bare RS256 verification: {:.1} µs (ratio {:.2})",
        in_layer.as_secs_f64() * 1e6 / done as f64,
        in_bare.as_secs_f64() * 1e6 / done as f64,
        in_layer.as_secs_f64() / in_bare.as_secs_f64()
    );
    println!(
        "wall: {:.0} s for {done} tokens ({:.0}/s, bound by minting: an RSA signature per token); the layer alone: {:.0} tokens/s of one core",
        wall.as_secs_f64(),
        done as f64 / wall.as_secs_f64(),
        done as f64 / in_layer.as_secs_f64()
    );
    println!(
        "live heap: start {} KiB, cache full ({capacity} tokens) {} KiB, end {} KiB",
        live0 / 1024,
        live_full / 1024,
        live_end / 1024
    );
    println!("RSS: start {rss0} KiB, cache full {rss_full} KiB, end {rss_end} KiB, highest reported {max_rss} KiB");
    println!(
        "bytes per cached entry (live heap growth while the cache filled / capacity): {:.0}",
        (live_full - live0) as f64 / capacity as f64
    );
}
