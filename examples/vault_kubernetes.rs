//! OpenBao with Kubernetes auth: a pod's service-account token → OpenBao's Kubernetes login
//! (checked with the dev tenant's TokenReview API) → KV v2 → the app's configuration; then the
//! client secret is rotated in OpenBao and in the app registration, and the next on-behalf-of
//! call succeeds without a restart.
//!
//! ```text
//! cargo run --example vault_kubernetes             # tells the story
//! cargo run --example vault_kubernetes -- --check  # and exits non-zero if any step fails
//! ```
//!
//! It uses the OpenBao server given by `AZAD_BAO_ADDR` and `AZAD_BAO_TOKEN` (a dev server's
//! root token), else starts `bao server -dev` itself (`AZAD_BAO_BIN`,
//! `target/openbao-venv/bin/bao` or `bao` on `PATH`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use azad_examples::vault_kubernetes;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    azad_examples::init_tracing();
    let check = std::env::args().any(|a| a == "--check");
    match vault_kubernetes::run(|line| println!("{line}")).await {
        Ok(outcome) => {
            let ok = outcome.successful_calls == 2
                && outcome.rotations == 1
                && outcome.started_with_version.is_some()
                && outcome.after_rotation_version != outcome.started_with_version;
            println!(
                "done: {} calls, {} rotation(s), {} OpenBao login(s), {} TokenReview(s)",
                outcome.successful_calls, outcome.rotations, outcome.logins, outcome.token_reviews
            );
            if check && !ok {
                eprintln!("check failed: {outcome:?}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vault_kubernetes failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
