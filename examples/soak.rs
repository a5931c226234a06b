//! Soak benchmark: the quickstart API under a bounded loopback load while the dev tenant rotates
//! its signing keys every few seconds and goes down and comes back.
//!
//! ```text
//! cargo run --release --example soak                       # 180 s, 16 connections
//! cargo run --release --example soak -- --seconds 60 --connections 8
//! ```
//!
//! Everything runs in this process on 127.0.0.1: the dev tenant, the quickstart router behind
//! `AzureAdAuth` (refreshing its keys every 2 s, as a fast-forwarded production service would),
//! and the load: `--connections` workers sending `GET /api/claims` with tokens of the current
//! key (most requests) and tokens of retired keys (one in eight). It prints requests served,
//! answers by status, resident memory at start and end, the number of key and metadata fetches,
//! and the number of retired-key tokens accepted after the API dropped that key (must be 0).
//! Exits non-zero if any retired-key token was accepted, or any answer was neither 200, 401
//! nor 503.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azad_axum::AzureAdAuth;
use azad_axum::dev::{DevTenant, Endpoint, Fault};
use azad_examples::quickstart;

/// Key rotation period.
const ROTATE_EVERY: Duration = Duration::from_secs(4);
/// One outage (discovery and keys answer 503) of this length ...
const OUTAGE_FOR: Duration = Duration::from_secs(8);
/// ... starting this long after the previous one started.
const OUTAGE_EVERY: Duration = Duration::from_secs(30);
/// Hard bound on requests, whatever the duration.
const MAX_REQUESTS: u64 = 20_000_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident set size of this process, in KiB (Linux `/proc/self/status`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A retired key's token, and the epoch from which the API no longer lists that key.
#[derive(Clone)]
struct Retired {
    token: String,
    dropped_in_epoch: u64,
}

#[derive(Default)]
struct Pools {
    current: Vec<String>,
    retired: Vec<Retired>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let seconds = arg("--seconds", 180);
    let connections = arg("--connections", 16).clamp(1, 256);

    let dev = DevTenant::start().await?;
    let config = dev
        .config_builder()
        .jwks_refresh_interval(Duration::from_secs(2))
        .jwks_min_refresh_interval(Duration::from_secs(1))
        .jwks_retry_interval(Duration::from_millis(500))
        .build()?;
    let auth = AzureAdAuth::new(config);
    let jwks = auth.validator().jwks().clone();
    auth.warm_up().await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, quickstart::router(auth)).await });

    let pools =
        Arc::new(Mutex::new(Pools { current: (0..32).map(|_| dev.token().build()).collect(), retired: vec![] }));
    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(AtomicU64::new(0));
    // (token kind, status) -> answers; kind is "current key" or "retired key".
    let statuses: Arc<Mutex<BTreeMap<(&'static str, u16), u64>>> = Arc::default();
    let http = reqwest::Client::builder().pool_max_idle_per_host(connections as usize).build()?;

    let rss_start = rss_kib();
    dev.reset_counters();
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|w| {
            let (http, base, pools, epoch, stop, sent, violations, statuses) = (
                http.clone(),
                base.clone(),
                pools.clone(),
                epoch.clone(),
                stop.clone(),
                sent.clone(),
                violations.clone(),
                statuses.clone(),
            );
            tokio::spawn(async move {
                let mut local: BTreeMap<(&'static str, u16), u64> = BTreeMap::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                    i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let began_in = epoch.load(Ordering::Acquire);
                    let pick = {
                        let p = pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let n = usize::try_from(i >> 33).unwrap_or(0);
                        if n % 8 == 0 && !p.retired.is_empty() {
                            let r = &p.retired[n % p.retired.len()];
                            (r.token.clone(), Some(r.dropped_in_epoch))
                        } else {
                            (p.current[n % p.current.len()].clone(), None)
                        }
                    };
                    let status = match http.get(format!("{base}/api/claims")).bearer_auth(&pick.0).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    let kind = if pick.1.is_some() { "retired key" } else { "current key" };
                    *local.entry((kind, status)).or_default() += 1;
                    if let Some(dropped) = pick.1
                        && status == 200
                        && began_in >= dropped
                    {
                        violations.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut all = statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (s, n) in local {
                    *all.entry(s).or_default() += n;
                }
            })
        })
        .collect();

    // The identity provider's life: rotations, retirements, outages.
    let deadline = started + Duration::from_secs(seconds);
    let (mut last_rotation, mut outage_started) = (Instant::now(), None::<Instant>);
    let mut next_outage = started + OUTAGE_EVERY;
    let (mut rotations, mut outages, mut rss_samples) = (0u64, 0u64, vec![rss_start]);
    // Keys published but no longer signing, oldest first, with one token each.
    let mut previous: Vec<(String, String)> = vec![];
    // Retired keys the API has not dropped yet.
    let mut awaiting_drop: Vec<(String, String)> = vec![];
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        if outage_started.is_none() && now >= next_outage {
            dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
            dev.inject(Endpoint::Jwks, Fault::Status(503));
            outage_started = Some(now);
            outages += 1;
        }
        if let Some(at) = outage_started
            && now.duration_since(at) >= OUTAGE_FOR
        {
            dev.clear_fault(Endpoint::OpenIdConfiguration);
            dev.clear_fault(Endpoint::Jwks);
            outage_started = None;
            next_outage = at + OUTAGE_EVERY;
        }
        if now.duration_since(last_rotation) >= ROTATE_EVERY {
            last_rotation = now;
            rotations += 1;
            previous.push((dev.active_kid(), dev.token().build()));
            dev.rotate_keys();
            let fresh: Vec<String> = (0..32).map(|_| dev.token().build()).collect();
            pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner).current = fresh;
            // Keep one previous key published (as Entra overlaps keys); retire the older ones.
            while previous.len() > 1 {
                let (kid, token) = previous.remove(0);
                dev.retire_key(&kid);
                awaiting_drop.push((kid, token));
            }
            rss_samples.push(rss_kib());
        }
        // Once the API's key set no longer lists a retired key, its tokens must be refused.
        let loaded = jwks.key_ids();
        let (dropped, waiting): (Vec<_>, Vec<_>) = awaiting_drop.drain(..).partition(|(kid, _)| !loaded.contains(kid));
        awaiting_drop = waiting;
        if !dropped.is_empty() {
            let e = epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let mut p = pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (_, token) in dropped {
                p.retired.push(Retired { token, dropped_in_epoch: e });
            }
            // A bounded pool: the oldest retired tokens leave it.
            let excess = p.retired.len().saturating_sub(64);
            p.retired.drain(..excess);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib();
    server.abort();

    let statuses = statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let total: u64 = statuses.values().sum();
    println!(
        "soak: {:.0} s, {connections} connections, keys rotated every {} s, {outages} outages of {} s",
        elapsed.as_secs_f64(),
        ROTATE_EVERY.as_secs(),
        OUTAGE_FOR.as_secs()
    );
    println!("requests served      {total} ({:.0}/s)", total as f64 / elapsed.as_secs_f64());
    for ((kind, status), n) in &statuses {
        let name = if *status == 0 { "transport error".to_owned() } else { format!("HTTP {status}") };
        println!("  {kind:<12} {name:<16} {n}");
    }
    println!("key rotations        {rotations}");
    println!("JWKS fetches         {}", dev.requests(Endpoint::Jwks));
    println!("metadata fetches     {}", dev.requests(Endpoint::OpenIdConfiguration));
    println!("RSS start / end      {rss_start} KiB / {rss_end} KiB");
    println!(
        "RSS at rotations     min {} KiB, max {} KiB",
        rss_samples.iter().min().unwrap_or(&0),
        rss_samples.iter().max().unwrap_or(&0)
    );
    // The RSS trend: each fifth of the run, the last sample in it.
    let fifths: Vec<String> =
        (1..=5).map(|i| rss_samples[(rss_samples.len() * i / 5).saturating_sub(1)].to_string()).collect();
    println!("RSS by fifths        {} KiB", fifths.join(" / "));
    let accepted_retired = violations.load(Ordering::Relaxed);
    println!("retired-key tokens accepted after the API dropped the key: {accepted_retired}");
    let unexpected: u64 = statuses.iter().filter(|((_, s), _)| !matches!(s, 200 | 401 | 503)).map(|(_, n)| n).sum();
    if accepted_retired > 0 || unexpected > 0 {
        return Err(format!(
            "soak failed: {accepted_retired} retired-key acceptances, {unexpected} unexpected answers"
        )
        .into());
    }
    println!("soak passed");
    Ok(())
}
