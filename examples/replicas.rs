//! Running many replicas: two replicas of the protected API and a web app sharing the
//! encrypted token cache on Redis. One user signs in once; both replicas serve on-behalf-of
//! calls from one exchange; the web app restarts and the user stays signed in.
//!
//! ```text
//! cargo run --example replicas                               # starts its own redis-server
//! cargo run --example replicas -- --redis redis://127.0.0.1:6379
//! cargo run --example replicas -- --check                    # exits non-zero if a step failed
//! ```
//!
//! Without `--redis` (or `AZAD_REDIS_URL`), it starts `redis-server` from `PATH` on a free
//! loopback port (Debian/Ubuntu: `sudo apt-get install redis-server`) and stops it at the end.
#![allow(clippy::print_stdout)]

use azad_examples::{redis_server, replicas};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--redis")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("AZAD_REDIS_URL").ok().filter(|u| !u.is_empty()));
    let (url, _server) = match given {
        Some(url) => (url, None),
        None => {
            let server = redis_server::RedisServer::start().await?;
            println!("redis-server started on {}", server.url());
            (server.url(), Some(server))
        }
    };
    let report = replicas::run(&url).await?;
    println!("{report:?}");
    if args.iter().any(|a| a == "--check") && !report.ok() {
        return Err("the replicas scenario failed".into());
    }
    println!(
        "{}",
        if report.ok() { "ok: one sign-in, one exchange for both replicas, kept across a restart" } else { "FAILED" }
    );
    Ok(())
}
