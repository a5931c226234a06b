//! The Azure CLI credential and the default credential chain, with a stand-in `az` on `PATH`
//! printing the real CLI's output shapes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use azad_core::DefaultCredential;
use azad_core::{AzureCliCredential, AzureCliError};
use azad_tests::DevTenant;

/// A directory holding an executable `az` with this shell body; its arguments are written to
/// `args` next to it.
fn stand_in(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("azad-az-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"{}/args\"\n{body}\n", dir.display());
    let az = dir.join("az");
    std::fs::write(&az, script).unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

/// What `az account get-access-token --output json` prints (Azure CLI 2.54 and later).
fn cli_output(token: &str, expires_on: u64) -> String {
    format!(
        r#"{{
  "accessToken": "{token}",
  "expiresOn": "2026-11-29 19:04:05.000000",
  "expires_on": {expires_on},
  "subscription": "1a2b3c4d-0000-4000-8000-000000000001",
  "tenant": "7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f",
  "tokenType": "Bearer"
}}"#
    )
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn the_cli_token_is_read_with_its_expiry_and_the_right_arguments() {
    let dir = stand_in("ok", &format!("cat <<'JSON'\n{}\nJSON", cli_output("cli-access-token", now() + 3000)));
    let cli =
        AzureCliCredential::new().with_search_path(path_with(&dir)).with_tenant("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f");
    let token = cli.acquire_token("https://graph.microsoft.com/.default").await.unwrap();
    assert_eq!(token.secret(), "cli-access-token");
    assert_eq!(token.token_type(), "Bearer");
    let left = token.expires_at().duration_since(std::time::SystemTime::now()).unwrap().as_secs();
    assert!((2900..=3000).contains(&left), "expires_on read: {left}");
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--scope",
            "https://graph.microsoft.com/.default",
            "--tenant",
            "7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f"
        ]
    );
    // Without `expires_on` (older CLIs), the token's own `exp` is used.
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(r#"{{"exp":{}}}"#, now() + 1200),
    );
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
    let old = stand_in(
        "old",
        &format!(
            "cat <<'JSON'\n{{\"accessToken\": \"{jwt}\", \"expiresOn\": \"2000-01-01 00:00:00.000000\", \"tokenType\": \"Bearer\"}}\nJSON"
        ),
    );
    let token =
        AzureCliCredential::new().with_search_path(path_with(&old)).acquire_token("api://x/.default").await.unwrap();
    let left = token.expires_at().duration_since(std::time::SystemTime::now()).unwrap().as_secs();
    assert!((1100..=1200).contains(&left), "{left}");
    assert!(!std::fs::read_to_string(old.join("args")).unwrap().contains("--tenant"));
}

#[tokio::test]
async fn not_logged_in_timeouts_and_garbage_are_typed_errors_without_the_token() {
    let not_logged_in = stand_in("login", "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1");
    let e = AzureCliCredential::new()
        .with_search_path(path_with(&not_logged_in))
        .acquire_token("https://graph.microsoft.com/.default")
        .await
        .unwrap_err();
    assert!(matches!(&e, AzureCliError::NotLoggedIn { message } if message.contains("Please run 'az login'")), "{e:?}");
    assert!(e.is_unavailable());

    let failed = stand_in(
        "failed",
        "echo 'ERROR: AADSTS500011: The resource principal was not found. token eyJa.eyJb.c2ln' >&2\nexit 2",
    );
    let e = AzureCliCredential::new()
        .with_search_path(path_with(&failed))
        .acquire_token("api://x/.default")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AzureCliError::Failed { status: Some(2), message } if message.contains("AADSTS500011")),
        "{e:?}"
    );
    assert!(!e.to_string().contains("eyJa"), "{e}");
    assert!(!e.is_unavailable());

    let slow = stand_in("slow", "sleep 30");
    let e = AzureCliCredential::new()
        .with_search_path(path_with(&slow))
        .with_timeout(Duration::from_millis(300))
        .acquire_token("api://x/.default")
        .await
        .unwrap_err();
    assert_eq!(e, AzureCliError::Timeout { after: Duration::from_millis(300) });

    for (name, body) in [
        ("garbage", "echo '<html>Service unavailable</html>'"),
        ("leaky", "echo '{\"accessToken\": \"SECRET-CLI-TOKEN\", \"expiresOn\": \"soon\"}'"),
        ("empty", "true"),
    ] {
        let dir = stand_in(name, body);
        let e = AzureCliCredential::new()
            .with_search_path(path_with(&dir))
            .acquire_token("api://x/.default")
            .await
            .unwrap_err();
        assert!(matches!(e, AzureCliError::UnusableOutput { .. }), "{name}: {e:?}");
        assert!(!e.to_string().contains("SECRET") && !format!("{e:?}").contains("SECRET"), "{e}");
    }

    let e = AzureCliCredential::new().acquire_token("api://x/.default; rm -rf /").await.unwrap_err();
    assert_eq!(e, AzureCliError::InvalidArgument { what: "scope" });
    let none = std::env::temp_dir().join(format!("azad-az-{}-none", std::process::id()));
    std::fs::create_dir_all(&none).unwrap();
    let e =
        AzureCliCredential::new().with_search_path(none.display().to_string()).acquire_token("api://x/.default").await;
    assert_eq!(e.unwrap_err(), AzureCliError::NotInstalled);
}

#[tokio::test]
async fn the_chain_goes_environment_workload_identity_managed_identity_then_azure_cli() {
    let dev = DevTenant::start().await.unwrap();
    let cli_dir = stand_in("chain", &format!("cat <<'JSON'\n{}\nJSON", cli_output("developer-token", now() + 3000)));
    let path = path_with(&cli_dir);
    // Variables given by a step come first, so they win over these defaults.
    let base = |mut vars: Vec<(&'static str, String)>| {
        vars.extend([
            ("PATH", path.clone()),
            ("AZURE_AUTHORITY_HOST", dev.base_url().to_owned()),
            // No managed identity here: nothing listens on port 9 of loopback.
            ("AZAD_IMDS_ENDPOINT", "http://127.0.0.1:9/metadata/identity/oauth2/token".to_owned()),
        ]);
        move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    };
    let scope = format!("api://{}/.default", dev.api_client_id());

    // Nothing configured, no managed identity: the developer's CLI sign-in.
    let chain = DefaultCredential::from_env_with(base(vec![]));
    assert_eq!(chain.sources(), ["managed identity", "Azure CLI"]);
    assert_eq!(chain.acquire_token(&scope).await.unwrap().secret(), "developer-token");

    // The environment comes first: the app's own token, and the CLI is never run.
    std::fs::remove_file(cli_dir.join("args")).unwrap();
    let chain = DefaultCredential::from_env_with(base(vec![
        ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
        ("AZURE_CLIENT_ID", dev.api_client_id().to_owned()),
        ("AZURE_CLIENT_SECRET", dev.api_client_secret()),
    ]));
    assert_eq!(chain.sources(), ["environment", "managed identity", "Azure CLI"]);
    let token = chain.acquire_token(&scope).await.unwrap();
    assert_ne!(token.secret(), "developer-token");
    assert!(!cli_dir.join("args").exists(), "the CLI was not run");

    // A configured credential that fails ends the chain: no silent fallback to the developer.
    let chain = DefaultCredential::from_env_with(base(vec![
        ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
        ("AZURE_CLIENT_ID", dev.api_client_id().to_owned()),
        ("AZURE_CLIENT_SECRET", "wrong-secret".to_owned()),
    ]));
    let e = chain.acquire_token(&scope).await.unwrap_err();
    assert!(e.failed && e.attempts.last().unwrap().0 == "environment", "{e}");
    assert!(!e.to_string().contains("wrong-secret"));
    assert!(!cli_dir.join("args").exists(), "the CLI was not run");

    // Variables set but unusable (a certificate file that is not there, a workload identity
    // without a client id) end the chain too: never the developer's identity instead.
    for vars in [
        vec![
            ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
            ("AZURE_CLIENT_ID", dev.api_client_id().to_owned()),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/azad-test.pem".to_owned()),
        ],
        vec![("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/azad-token".to_owned())],
    ] {
        let chain = DefaultCredential::from_env_with(base(vars));
        let e = chain.acquire_token(&scope).await.unwrap_err();
        assert!(e.failed, "{e}");
        assert!(["environment", "workload identity"].contains(&e.attempts.last().unwrap().0), "{e}");
        assert!(!cli_dir.join("args").exists(), "the CLI was not run");
    }

    // A managed identity, when there is one, comes before the CLI.
    let chain = DefaultCredential::from_env_with(base(vec![("AZAD_IMDS_ENDPOINT", dev.imds_endpoint())]));
    let chain_with_imds = chain.acquire_token("https://vault.azure.net/.default").await.unwrap();
    assert_ne!(chain_with_imds.secret(), "developer-token");

    // Nothing available at all: each source says why.
    let login = stand_in("chain-login", "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1");
    let vars = [
        ("PATH", path_with(&login)),
        ("AZAD_IMDS_ENDPOINT", "http://127.0.0.1:9/metadata/identity/oauth2/token".to_owned()),
    ];
    let chain = DefaultCredential::from_env_with(move |n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()));
    let e = chain.acquire_token(&scope).await.unwrap_err();
    assert!(!e.failed);
    let sources: Vec<&str> = e.attempts.iter().map(|(s, _)| *s).collect();
    assert_eq!(sources, ["environment", "workload identity", "managed identity", "Azure CLI"]);
    assert!(e.to_string().contains("az login"), "{e}");
}
