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
    ready(&rt, cached.validate(&token)).unwrap();

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
    // The same verification with the key parsed once into aws-lc (what a key-set load can keep).
    let jwk_n = jwks.keys[0].algorithm.clone();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = jwk_n else { panic!("an RSA key") };
    let b64 = |s: &str| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).unwrap();
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        rsa_public_key_der(&b64(&rsa.n), &b64(&rsa.e)),
    )
    .unwrap();
    g.bench_function("parsed_key_rs256_verify", |b| {
        b.iter(|| {
            let sig = b64(black_box(signature));
            parsed.verify_sig(black_box(message.as_bytes()), &sig).unwrap();
        });
    });
    g.bench_function("validate_uncached", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % POOL;
            ready(&rt, uncached.validate(black_box(&tokens[i]))).unwrap()
        });
    });
    // Never-seen tokens through the validated-token cache (miss + insert) while it fills: a
    // fresh validator, warmed outside the timed section, every POOL tokens.
    // `iters` never-seen tokens, taken from the pool's start in batches of at most `batch`,
    // each batch validated by a fresh validator from `make` (made and warmed outside the timed
    // section).
    let time_never_seen = |iters: u64, batch: usize, make: &dyn Fn() -> TokenValidator| {
        let mut total = Duration::ZERO;
        let mut done = 0u64;
        while done < iters {
            let v = make();
            let n = (iters - done).min(batch as u64) as usize;
            let start = Instant::now();
            for t in &tokens[..n] {
                black_box(ready(&rt, v.validate(black_box(t))).unwrap());
            }
            total += start.elapsed();
            done += n as u64;
        }
        total
    };
    g.bench_function("validate_never_seen", |b| {
        let make = || {
            let v = TokenValidator::new(dev.config());
            rt.block_on(v.warm_up()).unwrap();
            v
        };
        b.iter_custom(|iters| time_never_seen(iters, POOL, &make));
    });
    // A validator whose cache holds `half` tokens and is full (the pool's second half
    // validated), so that each further insert evicts one entry.
    let full_validator = |half: usize| {
        let v = TokenValidator::new(dev.config_builder().validated_token_cache_capacity(half as u64).build().unwrap());
        rt.block_on(v.warm_up()).unwrap();
        for t in &tokens[half..] {
            ready(&rt, v.validate(t)).unwrap();
        }
        v
    };
    // The steady state of a server under a flood of never-seen tokens: the cache is full, so
    // each insert evicts an entry (whose memory the next one reuses). A validator holding
    // POOL / 2 tokens, filled with one half of the pool outside the timed section, then timed
    // on the other half.
    g.bench_function("validate_never_seen_cache_full", |b| {
        let half = POOL / 2;
        b.iter_custom(|iters| time_never_seen(iters, half, &|| full_validator(half)));
    });
    // Paired: each never-seen token is verified bare, then validated (a miss, every check, an
    // insert into a full cache that evicts one entry), one after the other, so that the
    // machine's drift over seconds (a shared, noisy host) hits both alike. The bench's time is
    // the validation's; the bare verification's total over the same iterations is kept to
    // print the ratio of the two sums at the end.
    let paired_bare = std::cell::Cell::new(Duration::ZERO);
    let paired_validate = std::cell::Cell::new(Duration::ZERO);
    g.bench_function("validate_never_seen_paired_with_bare", |b| {
        let half = POOL / 2;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let v = full_validator(half);
                let n = (iters - done).min(half as u64) as usize;
                for (i, t) in tokens[..n].iter().enumerate() {
                    let (m, s) = t.rsplit_once('.').unwrap();
                    let bare = || {
                        let t0 = Instant::now();
                        let ok = jsonwebtoken::crypto::verify(
                            black_box(s),
                            black_box(m.as_bytes()),
                            &key,
                            jsonwebtoken::Algorithm::RS256,
                        );
                        let elapsed = t0.elapsed();
                        assert!(ok.unwrap());
                        elapsed
                    };
                    let validate = || {
                        let t0 = Instant::now();
                        black_box(ready(&rt, v.validate(black_box(t))).unwrap());
                        t0.elapsed()
                    };
                    // In turn, which goes first (whichever runs second finds the token's
                    // bytes in the CPU cache).
                    let (b, v) = if i % 2 == 0 {
                        let b = bare();
                        (b, validate())
                    } else {
                        let v = validate();
                        (bare(), v)
                    };
                    paired_bare.set(paired_bare.get() + b);
                    paired_validate.set(paired_validate.get() + v);
                    total += v;
                }
                done += n as u64;
            }
            total
        });
    });
    // The ratio criterion cannot print: BENCHMARKS.md quotes this line.
    #[allow(clippy::print_stdout)]
    if !paired_bare.get().is_zero() {
        println!(
            "validate_never_seen_paired_with_bare: validate / bare RS256 verify of the same tokens, alternated = {:.3}",
            paired_validate.get().as_secs_f64() / paired_bare.get().as_secs_f64()
        );
    }
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token.split('.').nth(1).unwrap())
            .unwrap();
    g.bench_function("claims_parse", |b| {
        b.iter(|| azad_core::Claims::from_json(black_box(&payload)).unwrap());
    });
    g.bench_function("validate_cache_hit", |b| {
        b.iter(|| ready(&rt, cached.validate(black_box(&token))).unwrap());
    });
    // The layer's fast path: `try_cached` (claims and the token's handle).
    g.bench_function("cached_token_lookup", |b| {
        b.iter(|| cached.try_cached(black_box(&token)).unwrap());
    });
    g.finish();

    // Cache hits on one thread and on two at once: each thread looks up its own 64 tokens (two
    // sets of users), then both look up one token. Time per iteration: one lookup per thread,
    // so throughput scales by 2 × (one thread's time) / (two threads' time).
    for t in &tokens[..128] {
        ready(&rt, cached.validate(t)).unwrap();
    }
    let mut g = c.benchmark_group("cache_hit_threads");
    g.measurement_time(Duration::from_secs(5));
    for (name, threads, distinct) in [
        ("1_thread", 1, true),
        ("2_threads", 2, true),
        ("1_thread_same_token", 1, false),
        ("2_threads_same_token", 2, false),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let barrier = std::sync::Barrier::new(threads);
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let (cached, tokens, barrier) = (&cached, &tokens, &barrier);
                            s.spawn(move || {
                                let mine = if distinct { &tokens[t * 64..(t + 1) * 64] } else { &tokens[..1] };
                                barrier.wait();
                                let start = Instant::now();
                                for i in 0..iters as usize {
                                    black_box(cached.try_cached(black_box(&mine[i % mine.len()])).unwrap());
                                }
                                start.elapsed()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).max().unwrap()
                })
            });
        });
    }
    g.finish();

    // The same scaling, paired (criterion's two groups above run seconds apart, and a burst on
    // the host during either moves their ratio). Printed for BENCHMARKS.md; skipped when a
    // filter names only other benches (`cargo bench ... -- cache_hit_threads_paired` runs it).
    let wanted = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect::<Vec<_>>();
    if wanted.is_empty() || wanted.iter().any(|f| "cache_hit_threads_paired".contains(f.as_str())) {
        // The control: the same loop over nothing shared (each thread compares its own copies
        // of its 64 tokens, the hit's byte-for-byte check alone): what this machine's two
        // cores give work that cannot contend, the ceiling for the cache's figures.
        let control = |t: usize| {
            let mine: Vec<(String, String)> =
                tokens[t * 64..(t + 1) * 64].iter().map(|x| (x.clone(), x.clone())).collect();
            move |i: usize| {
                let (a, b) = &mine[i % 64];
                assert!(black_box(a.as_bytes()) == black_box(b.as_bytes()));
            }
        };
        let lookup = |distinct: bool| {
            let (cached, tokens) = (&cached, &tokens);
            move |t: usize| {
                let mine = if distinct { &tokens[t * 64..(t + 1) * 64] } else { &tokens[..1] };
                move |i: usize| {
                    black_box(cached.try_cached(black_box(&mine[i % mine.len()])).unwrap());
                }
            }
        };
        let distinct = lookup(true);
        let shared = lookup(false);
        let print = |name: &str, scaling: Scaling| {
            let (wall, w10, w90) = scaling.wall;
            let cpu = match (scaling.cpu, scaling.wall_overlapped) {
                (Some((cpu, c10, c90)), Some((w, lo, hi))) => format!(
                    "over the {} pairs whose threads overlapped: {cpu:.2}x by CPU time ({c10:.2}-{c90:.2}), {w:.2}x by wall time ({lo:.2}-{hi:.2})",
                    scaling.overlapped
                ),
                _ => "no CPU-time figure (no pair overlapped, or no /proc/thread-self/schedstat)".to_owned(),
            };
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "cache_hit_threads_paired, {name}: two threads / one thread = {wall:.2}x by wall time ({w10:.2}-{w90:.2}, {PAIRS} pairs), {cpu} (medians, 10th-90th percentiles)"
                );
            }
        };
        print("control, nothing shared", paired_scaling(&control));
        print("distinct tokens", paired_scaling(&distinct));
        print("one shared token", paired_scaling(&shared));
    }
}

/// This thread's CPU time so far, from Linux's `/proc/thread-self/schedstat` (its first field:
/// nanoseconds on a CPU). The kernel leaves out time the hypervisor stole from the virtual CPU
/// and time the thread waited preempted, and keeps stalls (a cache line bounced between cores
/// stalls the core, and counts). For the running thread the figure is as of its last
/// scheduler tick (a few milliseconds old), so runs are made long enough (150 ms and more)
/// that this is within a few percent. `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// The figures of one two-thread scaling measurement (see [`paired_scaling`]).
struct Scaling {
    /// By wall time: median, 10th and 90th percentile of the pairs.
    wall: (f64, f64, f64),
    /// By CPU time, over the pairs whose two threads ran at the same time for at least 90 % of
    /// the two-thread run: median, 10th and 90th percentile; `None` without such pairs or
    /// without CPU times.
    cpu: Option<(f64, f64, f64)>,
    /// By wall time over the same overlapping pairs.
    wall_overlapped: Option<(f64, f64, f64)>,
    /// How many pairs' threads overlapped that much, of [`PAIRS`].
    overlapped: usize,
}

/// Pairs per scaling measurement.
const PAIRS: usize = 41;

/// Two-thread scaling, paired: one thread's run of `n` calls of its `work`, then two threads'
/// runs of as many each at once (or the other way round, in turn), [`PAIRS`] times; the lone
/// thread takes each thread's working set in turn. `n` is set so that the lone run takes about
/// 150 ms. Each pair gives
/// - by wall time: 2 × (the lone run's time) / (the two-thread run's time, from the first
///   thread's start to the last one's end);
/// - by CPU time: 2 × (the lone thread's CPU time) / (the mean of the two threads' CPU times):
///   the scaling when each thread has a core to itself, with the host's interruptions left out
///   and contention left in. Counted only when the two threads overlapped for at least 90 %
///   of the two-thread run: threads the host ran one after the other share no cache line at
///   the same time, and would look contention-free whatever the code.
///
/// `work(t)` makes thread `t`'s loop body (called with the iteration number).
fn paired_scaling<W: FnMut(usize)>(work: &(dyn Fn(usize) -> W + Sync)) -> Scaling {
    // (start, end, CPU time) of each thread of a run of `threads` threads, `n` calls each.
    let run = |threads: usize, first: usize, n: usize| {
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let mut body = work((t + first) % 2);
                        barrier.wait();
                        let (start, cpu) = (Instant::now(), thread_cpu_time());
                        for i in 0..n {
                            body(i);
                        }
                        let cpu = thread_cpu_time().zip(cpu).map(|(end, start)| end - start);
                        (start, Instant::now(), cpu)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        })
    };
    // Calibrate, and warm the per-thread copies and the CPU caches.
    let probe = 100_000;
    let once = run(1, 0, probe);
    let per_call = (once[0].1 - once[0].0).as_secs_f64() / probe as f64;
    let n = ((0.15 / per_call) as usize).max(probe);
    run(1, 1, n);
    run(2, 0, n);
    let mut by_wall = Vec::new();
    let mut by_cpu = Vec::new();
    let mut by_wall_overlapped = Vec::new();
    for pair in 0..PAIRS {
        let alone = (pair / 2) % 2;
        let (one, two) = if pair % 2 == 0 {
            let one = run(1, alone, n);
            (one, run(2, 0, n))
        } else {
            let two = run(2, 0, n);
            (run(1, alone, n), two)
        };
        let one_wall = (one[0].1 - one[0].0).as_secs_f64();
        let first_start = two[0].0.min(two[1].0);
        let last_end = two[0].1.max(two[1].1);
        let both = (two[0].1.min(two[1].1)).saturating_duration_since(two[0].0.max(two[1].0));
        let two_wall = (last_end - first_start).as_secs_f64();
        by_wall.push(2.0 * one_wall / two_wall);
        if let (Some(c1), Some(a), Some(b)) = (one[0].2, two[0].2, two[1].2)
            && both.as_secs_f64() >= 0.9 * two_wall
        {
            by_cpu.push(2.0 * c1.as_secs_f64() / ((a + b).as_secs_f64() / 2.0));
            by_wall_overlapped.push(2.0 * one_wall / two_wall);
        }
    }
    let spread = |ratios: &mut Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        let at = |q: usize| ratios[(ratios.len() * q / 10).min(ratios.len() - 1)];
        (at(5), at(1), at(9))
    };
    let overlapped = by_cpu.len();
    Scaling {
        wall: spread(&mut by_wall),
        cpu: (!by_cpu.is_empty()).then(|| spread(&mut by_cpu)),
        wall_overlapped: (!by_wall_overlapped.is_empty()).then(|| spread(&mut by_wall_overlapped)),
        overlapped,
    }
}

/// An RSAPublicKey (RFC 8017 §A.1.1) in DER, from the modulus and exponent octets.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 128 {
            out.push(n as u8);
        } else {
            let bytes = (n as u32).to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (4 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        out.push(0x02);
        let pad = v[0] & 0x80 != 0;
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::new();
    int(&mut body, n);
    int(&mut body, e);
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend(body);
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
