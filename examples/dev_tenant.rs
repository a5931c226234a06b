//! Runs the embedded dev tenant (an Entra ID emulator) on its own and prints its URLs and a
//! sample token.
//!
//! ```text
//! cargo run --example dev_tenant
//! cargo run --example dev_tenant -- --https                 # for MSAL and Azure Identity
//! cargo run --example dev_tenant -- --https --json dev.json # the same settings as JSON
//! ```
//!
//! Point any OpenID Connect client at it: `AZURE_AUTHORITY_HOST` is the printed base URL.
//!
//! `--https` serves HTTPS with a CA generated at start (Microsoft's client libraries accept only
//! `https://` authorities) and prints the CA file, the variables that make Python and Node trust
//! it, and ready-to-use client settings: the apps registered for each flow with their secrets
//! (random per run) and a certificate (PEM files). `--json FILE` writes all of it as JSON, for
//! test harnesses (see `tests/msal/`).
//!
//! `-- --tokens N --out FILE` also writes N distinct user tokens (scope `access_as_user`, one per
//! line) to FILE, for load tests (see BENCHMARKS.md).
#![allow(clippy::print_stdout)]

use azad_core::dev::{DevApp, DevTenant};
use serde_json::json;

/// The public client (desktop/CLI) registered for the authorization code and device code flows.
const PUBLIC_CLIENT_ID: &str = "b1a2c3d4-0000-4000-8000-0000000b11c0";
/// Its redirect URI (a loopback URI, as desktop apps register).
const PUBLIC_REDIRECT_URI: &str = "http://localhost:8400/";
/// The middle-tier API registered for on-behalf-of: it calls the quickstart API for its users.
const MIDDLE_TIER_CLIENT_ID: &str = "e1f2a3b4-0000-4000-8000-0000000e1d7e";
const MIDDLE_TIER_APP_ID_URI: &str = "api://azad-middle-tier";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let https = args.iter().any(|a| a == "--https");

    let mut builder = DevTenant::builder()
        .port(azad_examples::port_from_env())
        .app(DevApp::new("azad public client (MSAL)").client_id(PUBLIC_CLIENT_ID).redirect_uri(PUBLIC_REDIRECT_URI))
        .app(
            DevApp::new("azad middle tier")
                .client_id(MIDDLE_TIER_CLIENT_ID)
                .app_id_uri(MIDDLE_TIER_APP_ID_URI)
                .scopes(["access_as_user"]),
        );
    if https {
        builder = builder.https();
    }
    let dev = builder.start().await?;
    let api = dev.api_client_id().to_owned();
    // The web app (a daemon for client credentials) holds the quickstart's `Admin` role; the
    // middle tier may call the quickstart API on behalf of its users.
    dev.grant_app_role(dev.client_app_id(), &api, "Admin");
    dev.grant_scopes(MIDDLE_TIER_CLIENT_ID, &api, &["access_as_user"]);
    let middle_secret = dev.add_client_secret(MIDDLE_TIER_CLIENT_ID);

    println!("azad dev tenant (Entra ID emulator) listening on {}", dev.base_url());
    println!("  AZURE_AUTHORITY_HOST={}", dev.base_url());
    println!("  AZURE_TENANT_ID={}", dev.tenant_id());
    println!("  AZURE_CLIENT_ID={}   (the default protected API)", dev.api_client_id());
    println!("  OpenID configuration (v2.0): {}", dev.metadata_url());
    println!("  JWKS:                        {}", dev.jwks_url());
    println!("  issuer (v2.0): {}", dev.issuer());
    println!("  issuer (v1.0): {}", dev.issuer_v1());

    let mut settings = json!({
        "authority_host": dev.base_url(),
        "authority": dev.authority(),
        "tenant_id": dev.tenant_id(),
        "issuer": dev.issuer(),
        "metadata_url": dev.metadata_url(),
        "device_login_url": format!("{}/devicelogin", dev.base_url()),
        "faults_url": format!("{}/_azad/faults", dev.base_url()),
        "user": {"username": dev.users()[0].username, "oid": dev.users()[0].oid},
        "api": {
            "client_id": api,
            "client_secret": dev.api_client_secret(),
            "scope": format!("api://{api}/access_as_user"),
            "default_scope": format!("api://{api}/.default"),
        },
        "web_app": {"client_id": dev.client_app_id(), "client_secret": dev.client_app_secret()},
        "public_client": {"client_id": PUBLIC_CLIENT_ID, "redirect_uri": PUBLIC_REDIRECT_URI},
        "middle_tier": {
            "client_id": MIDDLE_TIER_CLIENT_ID,
            "client_secret": middle_secret,
            "scope": format!("{MIDDLE_TIER_APP_ID_URI}/access_as_user"),
            // A user's token for the middle tier, as its callers would send it (one hour).
            "user_token": dev.token().audience(MIDDLE_TIER_CLIENT_ID).scopes(["access_as_user"]).build(),
        },
    });

    if let Some(ca) = dev.ca_pem_path() {
        // A certificate credential of the web app, as PEM files next to the CA.
        let cert = dev.add_certificate(dev.client_app_id());
        let dir = ca.with_file_name(format!("azad-dev-tenant-{}", dev.addr().port()));
        std::fs::create_dir_all(&dir)?;
        let (cert_file, key_file) = (dir.join("web-app-cert.pem"), dir.join("web-app-key.pem"));
        std::fs::write(&cert_file, cert.cert_pem())?;
        std::fs::write(&key_file, cert.key_pem())?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
        let sha1: String = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        settings["ca_file"] = ca.display().to_string().into();
        settings["web_app"]["certificate"] = json!({
            "cert_file": cert_file.display().to_string(),
            "key_file": key_file.display().to_string(),
            "thumbprint_sha1": sha1,
            "x5t_s256": cert.thumbprint(),
        });

        let ca = ca.display();
        let web = &settings["web_app"];
        println!("\nHTTPS with a CA generated for this run: {ca}");
        println!("Trust it in your clients:");
        println!("  export REQUESTS_CA_BUNDLE={ca} SSL_CERT_FILE={ca}   # Python (requests, MSAL, azure-identity)");
        println!("  export NODE_EXTRA_CA_CERTS={ca}                     # Node (@azure/msal-node, @azure/identity)");
        println!("  export AZAD_EXTRA_CA_CERTS={ca}                     # azad (AzureAdConfig::from_env)");
        println!("\nMSAL / Azure Identity settings (secrets are random per run):");
        println!("  authority:     {}", dev.authority());
        println!("  MSAL Python:   instance_discovery=False   (no call to login.microsoftonline.com)");
        println!("  MSAL Node:     knownAuthorities: [\"127.0.0.1:{}\"]", dev.addr().port());
        println!("  API (resource) client id {api}, scope api://{api}/access_as_user, app scope api://{api}/.default");
        println!("  confidential client (web app, holds app role Admin):");
        println!(
            "    client_id={} client_secret={}",
            web["client_id"].as_str().unwrap_or_default(),
            web["client_secret"].as_str().unwrap_or_default()
        );
        println!(
            "    certificate: {} key: {} (SHA-1 thumbprint {})",
            cert_file.display(),
            key_file.display(),
            settings["web_app"]["certificate"]["thumbprint_sha1"].as_str().unwrap_or_default()
        );
        println!(
            "  public client (auth code + PKCE, device code): client_id={PUBLIC_CLIENT_ID} redirect_uri={PUBLIC_REDIRECT_URI}"
        );
        println!("  on-behalf-of middle tier: client_id={MIDDLE_TIER_CLIENT_ID} client_secret={middle_secret}");
        println!("  device code sign-in: {}/devicelogin?code=USER_CODE", dev.base_url());
    }
    if let Some(file) = arg("--json") {
        // Written whole, then renamed: a harness waiting for the file never reads half of it.
        let partial = format!("{file}.partial");
        std::fs::write(&partial, serde_json::to_string_pretty(&settings)? + "\n")?;
        std::fs::rename(&partial, &file)?;
        println!("\nwrote the settings as JSON to {file}");
    }

    println!("\nA sample user token (scope access_as_user, valid one hour):\n{}", dev.token().build());
    if let (Some(n), Some(out)) = (arg("--tokens"), arg("--out")) {
        let n: usize = n.parse()?;
        let tokens: Vec<String> =
            (0..n).map(|_| dev.token().expires_in(std::time::Duration::from_secs(4 * 3600)).build()).collect();
        // Written whole, then renamed (as the JSON above): a load harness that starts once the
        // file exists never reads a cut-off last token.
        let partial = format!("{out}.partial");
        std::fs::write(&partial, tokens.join("\n") + "\n")?;
        std::fs::rename(&partial, &out)?;
        println!("\nwrote {n} distinct user tokens to {out}");
    }
    println!("\nServing; press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
