//! The simulation layer end to end: the scenario examples recorded against the dev tenant
//! (with a canary secret that must never reach the cassette), the tenant stopped, the same
//! scenarios replayed from the cassette with the same user-visible results; the committed
//! cassette replayed in CI; and the safety rules (missing cassette, another client id, a
//! replayed token shown to a validator of a live authority).

use std::path::{Path, PathBuf};
use std::time::Duration;

use azad_core::ManagedIdentity;
use azad_core::SignInClient;
use azad_core::dev::{DevApp, Fault};
use azad_core::simulation::{REPLAY_CLAIM, Simulation, SimulationError, SimulationMode};
use azad_core::{CertificateCredential, ClientCredential};
use azad_core::{ConfigError, HttpErrorKind, TokenClient, TokenError, TokenValidator, ValidationError};
use azad_examples::{daemon, on_behalf_of};
use azad_tests::{DevTenant, Endpoint, http};
use base64::Engine;
use serde_json::Value;

/// The API's client secret during recording: it must appear nowhere in a cassette.
const CANARY_SECRET: &str = "CANARY-api-secret-5f1e0c7b9d2a4e68";
/// Fixed client ids, so that a committed cassette matches the applications of a later run.
const CLI_CLIENT_ID: &str = "3c1a7e52-0d4b-4c8e-9f61-2b7d5a9e0c13";
const DAEMON_CLIENT_ID: &str = "8e6f2a14-7b3c-4d95-a0e8-5c1f9b2d7a46";
const WEB_CLIENT_ID: &str = "5b9d3f70-2c6e-4a18-b7d4-9e0f1a2b3c4d";
const WORKLOAD_CLIENT_ID: &str = "6a2e8c04-9d1f-4b37-85c6-0f7e3d9a1b52";
const WEB_REDIRECT: &str = "http://localhost:5997/getAToken";
const WORKLOAD_SUBJECT: &str = "system:serviceaccount:payments:api";
/// The committed cassette, recorded from the dev tenant (never from a real tenant).
const COMMITTED: &str = "cassettes/scenarios.json";

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED)
}

fn temp_cassette(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("azad-sim-{}-{name}.json", std::process::id()))
}

/// A dev tenant with the scenario's applications, recording or replaying `cassette`.
async fn tenant(mode: SimulationMode, cassette: &Path) -> DevTenant {
    let dev = DevTenant::builder()
        .api_client_secret(CANARY_SECRET)
        .app(DevApp::new("azad command-line client").client_id(CLI_CLIENT_ID))
        .app(DevApp::new("azad nightly report daemon").client_id(DAEMON_CLIENT_ID))
        .app(DevApp::new("azad web app").client_id(WEB_CLIENT_ID).redirect_uri(WEB_REDIRECT))
        .app(DevApp::new("azad workload").client_id(WORKLOAD_CLIENT_ID))
        .grant_app_role(DAEMON_CLIENT_ID, azad_core::dev::DEFAULT_API_CLIENT_ID, "Admin")
        .simulation(mode, cassette)
        .start()
        .await
        .unwrap();
    dev.add_federated_credential(WORKLOAD_CLIENT_ID, &dev.federation_issuer(), WORKLOAD_SUBJECT);
    if mode == SimulationMode::Replay {
        dev.stop();
    }
    dev
}

/// Every secret the scenario saw: tokens, refresh tokens, the canary.
#[derive(Default)]
struct Seen(Vec<String>);

/// The scenario examples, with every result a user sees. `live`: the tenant is running (the
/// device code is approved, faults are injected); otherwise everything comes from a cassette.
async fn scenario(dev: &DevTenant, live: bool, seen: &mut Seen, cassette: (SimulationMode, &Path)) -> Vec<String> {
    let mut out = Vec::new();
    let api_url = on_behalf_of::serve_apis(dev).await.unwrap();
    let api_scope = format!("api://{}/access_as_user", dev.api_client_id());

    // Device code sign-in of a command-line client, then a silent token (refresh token grant).
    let config = dev.config_builder().client_id(CLI_CLIENT_ID).build().unwrap();
    let cli = SignInClient::new(&config, ClientCredential::public_client(), "");
    let code = cli.start_device_code(&[&api_scope]).await.unwrap();
    out.push(format!("device code message shows the code: {}", code.message().contains(code.user_code())));
    out.push(format!("verification uri ends with /devicelogin: {}", code.verification_uri().ends_with("/devicelogin")));
    if live {
        let user_code = code.user_code().to_owned();
        let approve = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(dev.approve_device_code(&user_code, 0));
        };
        let (signed_in, ()) = tokio::join!(cli.complete_device_code(&code), approve);
        out.push(format!("signed in as {}", signed_in.unwrap().account().name()));
    } else {
        out.push(format!("signed in as {}", cli.complete_device_code(&code).await.unwrap().account().name()));
    }
    let signed_in = cli.complete_device_code(&code).await;
    out.push(format!("a device code is single-use: {}", signed_in.is_err()));
    let code = cli.start_device_code(&[&api_scope]).await.unwrap();
    let account = match live {
        true => {
            let user_code = code.user_code().to_owned();
            let approve = async {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                assert!(dev.approve_device_code(&user_code, 0));
            };
            tokio::join!(cli.complete_device_code(&code), approve).0.unwrap()
        }
        false => cli.complete_device_code(&code).await.unwrap(),
    };
    let user_token = cli.acquire_token_silent(account.account(), &[&api_scope]).await.unwrap();
    seen.0.push(user_token.secret().to_owned());
    // Another resource: redeems the refresh token.
    let graph = cli.acquire_token_silent(account.account(), &["https://graph.microsoft.com/User.Read"]).await.unwrap();
    seen.0.push(graph.secret().to_owned());
    out.push(format!("graph token scp={}", unverified_claims(graph.secret())["scp"]));

    // The API validates it (discovery and keys), and calls its downstream API on behalf of the
    // user (on-behalf-of), and as itself (client credentials with the canary secret).
    for route in ["/api/claims", "/api/downstream"] {
        let res = http().get(format!("{api_url}{route}")).bearer_auth(user_token.secret()).send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        let body = match route {
            "/api/claims" => format!("name={} scp={} azp={}", body["name"], body["scp"], body["azp"]),
            _ => format!(
                "downstream_status={} oid={} scp={}",
                body["downstream_status"], body["downstream"]["oid"], body["downstream"]["scp"]
            ),
        };
        out.push(format!("GET {route} -> {status} {body}"));
    }
    let unauthenticated = http().get(format!("{api_url}/api/claims")).send().await.unwrap();
    out.push(format!("GET /api/claims without a token -> {}", unauthenticated.status()));

    // The daemon: client credentials with a certificate, calling a route that needs an app role.
    let cert = dev.add_certificate(DAEMON_CLIENT_ID);
    let credential = CertificateCredential::from_pem(cert.cert_pem(), &cert.key_pem()).unwrap();
    let daemon_config = dev.config_builder().client_id(DAEMON_CLIENT_ID).build().unwrap();
    let client = TokenClient::new(&daemon_config, ClientCredential::certificate(credential));
    for (status, body) in
        daemon::run(&client, dev.api_client_id(), &api_url, 2, Duration::from_millis(10)).await.unwrap()
    {
        out.push(format!("daemon GET /api/admin -> {status} app_only={} caller={}", body["app_only"], body["caller"]));
    }

    // Managed identity (IMDS), through the configuration.
    let mi_config = dev.config_builder().managed_identity(ManagedIdentity::imds(dev.imds_endpoint())).build().unwrap();
    let vault = mi_config.managed_identity().unwrap().acquire_token("https://vault.azure.net").await.unwrap();
    seen.0.push(vault.secret().to_owned());
    out.push(format!("managed identity token for aud={}", unverified_claims(vault.secret())["aud"]));

    // The web app's sign-in: authorization code with PKCE, the ID token checked (nonce).
    let web_config = dev.config_builder().client_id(WEB_CLIENT_ID).build().unwrap();
    let web_secret = dev.add_client_secret(WEB_CLIENT_ID);
    seen.0.push(web_secret.clone());
    let web = SignInClient::new(&web_config, ClientCredential::secret(web_secret), WEB_REDIRECT);
    let request = web.authorization_request(&[&api_scope]);
    let callback = if live {
        // What the browser does: the tenant signs the user in and redirects with a code.
        let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let location = no_redirects.get(request.url()).send().await.unwrap().headers()["location"].clone();
        location.to_str().unwrap().split_once('?').unwrap().1.to_owned()
    } else {
        // Offline there is no browser sign-in: any code is answered from the cassette.
        format!("code=offline&state={}", request.state())
    };
    let signed_in = web.complete(&request, &callback).await.unwrap();
    out.push(format!("web sign-in: {} aud={:?}", signed_in.account().name(), signed_in.id_token_claims().audiences()));

    // Workload identity, configured from the environment exactly like an AKS pod (and the
    // simulation from the same environment).
    let dir = std::env::temp_dir().join(format!("azad-sim-wi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, dev.federated_token(WORKLOAD_SUBJECT)).unwrap();
    let env = [
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_CLIENT_ID", WORKLOAD_CLIENT_ID.to_owned()),
        ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
        ("AZURE_AUTHORITY_HOST", dev.base_url().to_owned()),
        ("AZURE_AD_SIMULATION_MODE", cassette.0.as_str().to_owned()),
        ("AZURE_AD_SIMULATION_CASSETTE", cassette.1.display().to_string()),
    ];
    let pod = azad_examples::workload::client_from_env(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
        .unwrap();
    let vault = pod.acquire(azad_core::TokenRequest::app([azad_examples::workload::VAULT_SCOPE])).await.unwrap();
    seen.0.push(vault.secret().to_owned());
    out.push(format!("workload identity token for aud={}", unverified_claims(vault.secret())["aud"]));

    // Recorded errors: throttling, invalid_grant, a claims challenge.
    let api_client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let faults = [
        ("https://graph.microsoft.com/.default", Fault::TooManyRequests { retry_after: 7 }),
        ("api://azad-downstream/.default", Fault::InvalidGrant),
        (
            "https://vault.azure.net/.default",
            Fault::InteractionRequired {
                claims: r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#.into(),
            },
        ),
    ];
    for (scope, fault) in faults {
        if live {
            dev.inject_times(Endpoint::Token, fault, 1);
        }
        let e = api_client.acquire_app_token(&[scope]).await.unwrap_err();
        let entra = e.entra().unwrap();
        out.push(format!(
            "{scope}: {} {} retry_after={:?} claims={:?}",
            entra.status, entra.error, entra.retry_after, entra.claims
        ));
    }
    out
}

fn unverified_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// No secret in the file: not the canary, not a token seen, no JWT at all (every token is a
/// template), no client assertion, no device code.
fn assert_no_secret(cassette: &Path, seen: &Seen) {
    let text = std::fs::read_to_string(cassette).unwrap();
    assert!(!text.contains(CANARY_SECRET), "the canary secret was recorded");
    assert!(!text.contains("CANARY"), "the canary secret was recorded");
    for secret in &seen.0 {
        assert!(!text.contains(secret.as_str()), "a token was recorded");
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token signature was recorded");
    }
    assert!(!text.contains("eyJ"), "something shaped like a JWT was recorded");
    // As JSON members: the words themselves are in discovery documents (`client_secret_post`).
    for member in ["client_secret", "client_assertion", "assertion", "code", "password"] {
        assert!(!text.contains(&format!("\"{member}\":")), "{member} was recorded");
    }
    assert!(!text.contains("-----BEGIN"), "a key was recorded");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let flows: Vec<&str> =
        doc["interactions"].as_array().unwrap().iter().map(|i| i["request"]["flow"].as_str().unwrap()).collect();
    for flow in [
        "discovery",
        "jwks",
        "device_code",
        "device_code_token",
        "refresh_token",
        "on_behalf_of",
        "client_credentials",
        "managed_identity",
        "authorization_code",
    ] {
        assert!(flows.contains(&flow), "{flow} not recorded: {flows:?}");
    }
    assert!(text.contains(r#""$azad_secret": "device_code""#), "the device code is a placeholder");
    assert!(text.contains(r#""$azad_secret": "refresh_token""#), "refresh tokens are placeholders");
}

#[tokio::test]
async fn record_the_scenarios_stop_the_tenant_and_replay_them_with_the_same_results() {
    let cassette = temp_cassette("scenarios");
    let _ = std::fs::remove_file(&cassette);
    let dev = tenant(SimulationMode::Recording, &cassette).await;
    let mut seen = Seen::default();
    let recorded = Box::pin(scenario(&dev, true, &mut seen, (SimulationMode::Recording, &cassette))).await;
    assert_no_secret(&cassette, &seen);
    // The recording itself saw the live tenant's answers.
    assert!(
        recorded.iter().any(|l| l.starts_with("GET /api/downstream -> 200 OK downstream_status=200")),
        "{recorded:#?}"
    );

    // Stop the tenant; from now on every identity call is answered from the cassette.
    dev.stop();
    let token_requests = dev.requests(Endpoint::Token);
    Simulation::close_all();
    dev.set_simulation(Some((SimulationMode::Replay, cassette.clone())));
    let replayed = Box::pin(scenario(&dev, false, &mut Seen::default(), (SimulationMode::Replay, &cassette))).await;
    assert_eq!(replayed, recorded);
    assert_eq!(dev.requests(Endpoint::Token), token_requests, "no request reached the tenant");
    std::fs::remove_file(cassette).unwrap();
}

/// CI: the committed cassette (recorded from the dev tenant) replays the scenarios offline.
/// Re-record it with `AZAD_RECORD_CASSETTE=1 cargo nextest run -p azad-tests --test simulation`.
#[tokio::test]
async fn the_committed_cassette_replays_the_scenarios_offline() {
    let path = committed_path();
    if std::env::var("AZAD_RECORD_CASSETTE").is_ok_and(|v| v == "1") {
        let _ = std::fs::remove_file(&path);
        let dev = tenant(SimulationMode::Recording, &path).await;
        let mut seen = Seen::default();
        Box::pin(scenario(&dev, true, &mut seen, (SimulationMode::Recording, &path))).await;
        assert_no_secret(&path, &seen);
        Simulation::close_all();
    }
    assert_no_secret(&path, &Seen::default());
    let dev = tenant(SimulationMode::Replay, &path).await;
    let results = Box::pin(scenario(&dev, false, &mut Seen::default(), (SimulationMode::Replay, &path))).await;
    let expected = [
        "device code message shows the code: true",
        "verification uri ends with /devicelogin: true",
        "signed in as Dev User",
        "a device code is single-use: true",
        "graph token scp=\"User.Read\"",
        "GET /api/claims -> 200 OK name=\"Dev User\" scp=\"access_as_user\" azp=\"3c1a7e52-0d4b-4c8e-9f61-2b7d5a9e0c13\"",
        "GET /api/downstream -> 200 OK downstream_status=200 oid=\"4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f\" scp=\"Data.Read\"",
        "GET /api/claims without a token -> 401 Unauthorized",
        "daemon GET /api/admin -> 200 app_only=true caller=\"8e6f2a14-7b3c-4d95-a0e8-5c1f9b2d7a46\"",
        "daemon GET /api/admin -> 200 app_only=true caller=\"8e6f2a14-7b3c-4d95-a0e8-5c1f9b2d7a46\"",
        "managed identity token for aud=\"https://vault.azure.net\"",
        "web sign-in: Dev User aud=[\"5b9d3f70-2c6e-4a18-b7d4-9e0f1a2b3c4d\"]",
        "workload identity token for aud=\"https://vault.azure.net\"",
        "https://graph.microsoft.com/.default: 429 temporarily_unavailable retry_after=Some(7s) claims=None",
        "api://azad-downstream/.default: 400 invalid_grant retry_after=None claims=None",
        "https://vault.azure.net/.default: 400 interaction_required retry_after=None claims=Some(\"{\\\"access_token\\\":{\\\"acrs\\\":{\\\"essential\\\":true,\\\"value\\\":\\\"c1\\\"}}}\")",
    ];
    assert_eq!(results, expected);
    assert_eq!(dev.requests(Endpoint::Token), 0, "the tenant was never asked");
}

#[tokio::test]
async fn replayed_tokens_are_fresh_marked_and_refused_by_a_live_authority() {
    // A running tenant plays the real authority; the replaying application is configured for
    // the very same authority (origin, tenant), so its replayed tokens carry its issuer.
    let live = DevTenant::start().await.unwrap();
    let replaying = |client_id: &str| {
        live.config_builder().client_id(client_id).simulation(SimulationMode::Replay, committed_path()).build().unwrap()
    };
    let client =
        TokenClient::new(&replaying(DAEMON_CLIENT_ID), ClientCredential::secret("unused in replay".to_owned()));
    let scope = format!("api://{}/.default", live.api_client_id());
    let token = client.acquire_app_token(&[&scope]).await.unwrap();
    let claims = unverified_claims(token.secret());
    assert_eq!(claims[REPLAY_CLAIM], true);
    assert_eq!(claims["iss"], live.issuer());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat + 60 >= now && iat <= now + 1, "iat is now");
    assert!(claims["exp"].as_u64().unwrap() > now + 600, "exp after the recorded lifetime");
    let again = client.acquire(azad_core::TokenRequest::app([scope.as_str()]).with_force_refresh(true)).await.unwrap();
    assert_ne!(unverified_claims(again.secret())["uti"], claims["uti"], "a unique uti per token");
    assert_eq!(live.requests(Endpoint::Token), 0);

    // The replaying API accepts it on its real validation path (discovery, keys, issuer,
    // audience, lifetime, roles)...
    let validated = TokenValidator::new(replaying(live.api_client_id())).validate(token.secret()).await.unwrap();
    assert!(validated.is_app_only());
    // ...a validator of the live authority never does: the replay key is not the tenant's.
    let config = live.config_builder().jwks_min_refresh_interval(Duration::from_millis(1)).build().unwrap();
    let e = TokenValidator::new(config).validate(token.secret()).await.unwrap_err();
    assert!(matches!(e, ValidationError::UnknownKey | ValidationError::InvalidSignature), "{e:?}");
}

#[tokio::test]
async fn a_replay_miss_names_what_was_asked_and_what_the_cassette_holds() {
    let dev = tenant(SimulationMode::Replay, &committed_path()).await;
    let config = dev.config_builder().client_id(DAEMON_CLIENT_ID).build().unwrap();
    let client = TokenClient::new(&config, ClientCredential::secret("unused in replay".to_owned()));
    let e = client.acquire_app_token(&["https://storage.azure.com/.default"]).await.unwrap_err();
    let TokenError::Request(http) = &e else { panic!("{e:?}") };
    assert_eq!(http.kind(), HttpErrorKind::Simulation);
    let source = std::error::Error::source(http).unwrap().downcast_ref::<SimulationError>().unwrap();
    let SimulationError::NoInteraction { asked, recorded, .. } = source else { panic!("{source:?}") };
    assert!(asked.contains("client_credentials") && asked.contains("https://storage.azure.com/.default"), "{asked}");
    assert!(asked.contains(DAEMON_CLIENT_ID), "{asked}");
    assert!(recorded.iter().any(|r| r.contains("client_credentials") && r.contains(DAEMON_CLIENT_ID)), "{recorded:?}");
    assert!(source.to_string().contains("the cassette holds"));
}

#[tokio::test]
async fn replay_refuses_to_start_without_its_cassette_or_for_another_client() {
    let dev = DevTenant::start().await.unwrap();
    let missing = temp_cassette("missing");
    let e = dev.config_builder().simulation(SimulationMode::Replay, &missing).build().unwrap_err();
    let ConfigError::Invalid { field, reason } = &e else { panic!("{e:?}") };
    assert_eq!(*field, "simulation_cassette");
    assert!(reason.contains("no cassette") && reason.contains(&missing.display().to_string()), "{reason}");

    let other = "0b0e5c3a-1111-4222-8333-944455556666";
    let e =
        dev.config_builder().client_id(other).simulation(SimulationMode::Replay, committed_path()).build().unwrap_err();
    let text = e.to_string();
    assert!(text.contains(other) && text.contains(DAEMON_CLIENT_ID), "{text}");

    // From the environment: replay needs its cassette variable.
    let env = |name: &str| match name {
        "AZURE_TENANT_ID" => Some(dev.tenant_id().to_owned()),
        "AZURE_CLIENT_ID" => Some(dev.api_client_id().to_owned()),
        "AZURE_AD_SIMULATION_MODE" => Some("replay".to_owned()),
        _ => None,
    };
    assert_eq!(
        azad_core::AzureAdConfig::from_env_with(env).unwrap_err(),
        ConfigError::Missing { field: "AZURE_AD_SIMULATION_CASSETTE" }
    );
}
