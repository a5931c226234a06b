//! Runs the embedded dev tenant (an Entra ID emulator) on its own and prints its URLs and a
//! sample token.
//!
//! ```text
//! cargo run --example dev_tenant
//! ```
//!
//! Point any OpenID Connect client at it: `AZURE_AUTHORITY_HOST` is the printed base URL.
//!
//! `-- --tokens N --out FILE` also writes N distinct user tokens (scope `access_as_user`, one per
//! line) to FILE, for load tests (see BENCHMARKS.md).
#![allow(clippy::print_stdout)]

use azad_core::dev::DevTenant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let dev = DevTenant::builder().port(azad_examples::port_from_env()).start().await?;
    println!("azad dev tenant (Entra ID emulator) listening on {}", dev.base_url());
    println!("  AZURE_AUTHORITY_HOST={}", dev.base_url());
    println!("  AZURE_TENANT_ID={}", dev.tenant_id());
    println!("  AZURE_CLIENT_ID={}   (the default protected API)", dev.api_client_id());
    println!("  OpenID configuration (v2.0): {}", dev.metadata_url());
    println!("  JWKS:                        {}", dev.jwks_url());
    println!("  issuer (v2.0): {}", dev.issuer());
    println!("  issuer (v1.0): {}", dev.issuer_v1());
    println!("\nA sample user token (scope access_as_user, valid one hour):\n{}", dev.token().build());
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let (Some(n), Some(out)) = (arg("--tokens"), arg("--out")) {
        let n: usize = n.parse()?;
        let tokens: Vec<String> =
            (0..n).map(|_| dev.token().expires_in(std::time::Duration::from_secs(4 * 3600)).build()).collect();
        std::fs::write(&out, tokens.join("\n") + "\n")?;
        println!("\nwrote {n} distinct user tokens to {out}");
    }
    println!("\nServing; press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
