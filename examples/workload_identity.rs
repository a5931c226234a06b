//! Workload identity: a child process configured exactly like an AKS pod
//! (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`)
//! reads a secret from a Key Vault–shaped endpoint with its projected token, while this process
//! plays the kubelet and rotates the token file between reads.
//!
//! ```text
//! cargo run --example workload_identity
//! ```
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use azad_core::dev::{DevApp, DevTenant};
use azad_examples::workload;

const SUBJECT: &str = "system:serviceaccount:payments:api";

/// The pod: reads the secret, says so, waits for the rotation, reads it again.
async fn pod() -> Result<(), Box<dyn std::error::Error>> {
    let client = workload::client_from_env(|n| std::env::var(n).ok())?;
    let vault = std::env::var("VAULT_URL")?;
    for round in 1..=2 {
        let value = workload::read_secret(&client, &vault, "db-password", true).await?;
        println!("pod: round {round}: read secret db-password ({} characters)", value.len());
        std::io::stdout().flush()?;
        if round == 1 {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?; // the kubelet rotated the token file
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--pod") {
        return pod().await;
    }
    azad_examples::init_tracing();
    let dev = DevTenant::start().await?;
    let app = DevApp::new("payments workload");
    dev.register_app(app.clone());
    dev.add_federated_credential(&app.client_id, &dev.federation_issuer(), SUBJECT);
    dev.set_secret("db-password", "correct horse battery staple");
    let dir = std::env::temp_dir().join(format!("azad-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token_file = dir.join("azure-identity-token");
    std::fs::write(&token_file, dev.federated_token(SUBJECT))?;

    println!("kubelet: starting the pod with its projected service account token at {}", token_file.display());
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--pod")
        .env_clear()
        .env("AZURE_FEDERATED_TOKEN_FILE", &token_file)
        .env("AZURE_CLIENT_ID", &app.client_id)
        .env("AZURE_TENANT_ID", dev.tenant_id())
        .env("AZURE_AUTHORITY_HOST", dev.base_url())
        .env("VAULT_URL", dev.vault_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut reads = 0;
    while let Some(line) = lines.recv().await {
        println!("{line}");
        if line.contains("read secret") {
            reads += 1;
        }
        if line.contains("round 1") {
            // Rotate the projected token, as the kubelet does, then let the pod go on.
            std::fs::write(&token_file, dev.federated_token(SUBJECT))?;
            println!("kubelet: rotated the token file");
            writeln!(stdin)?;
        }
    }
    let status = child.wait()?;
    std::fs::remove_dir_all(&dir).ok();
    if !status.success() || reads != 2 {
        return Err(format!("the pod failed ({status}, {reads} reads)").into());
    }
    println!("the pod read the secret before and after the rotation");
    Ok(())
}
