//! The reference scenarios over real sockets: the web app walkthrough (managed identity as
//! federated credential, and the client-secret variant), three hops, the daemon, workload
//! identity, the device code flow, and the sign-in client's checks.

use std::time::Duration;

use azad_core::ClientCredential;
use azad_core::dev::{DevApp, DevUser};
use azad_core::{SignInClient, SignInError};
use azad_core::{TokenError, TokenValidator};
use azad_examples::web_app::{CredentialKind, ScriptedBrowser};
use azad_examples::{daemon, on_behalf_of, workload};
use azad_tests::{DevTenant, Endpoint, http, web_app};

#[tokio::test]
async fn web_app_signs_in_with_a_managed_identity_and_calls_the_api() {
    let dev = DevTenant::start().await.unwrap();
    let base = web_app(&dev, CredentialKind::ManagedIdentity).await;
    let mut browser = ScriptedBrowser::new();
    let (_, _, home) = browser.get(&base).await.unwrap();
    assert!(home.contains("You are not signed in"));
    let (url, status, home) = browser.get(&format!("{base}/login")).await.unwrap();
    assert_eq!((url.as_str(), status), (format!("{base}/").as_str(), 200));
    assert!(home.contains("Signed in as <b id=\"user-name\">Dev User</b>"), "{home}");
    assert!(home.contains("id=\"id-nonce\""), "the ID token's claims are shown");
    // No client secret anywhere: the web app proved itself with the managed identity's token.
    assert!(dev.requests(Endpoint::ManagedIdentity) >= 1);

    let (_, status, claims) = browser.get(&format!("{base}/call-api")).await.unwrap();
    assert_eq!(status, 200);
    assert!(claims.contains("GET /api/claims answered 200"), "{claims}");
    assert!(claims.contains("<td id=\"claim-scp\">access_as_user</td>"), "{claims}");
    assert!(claims.contains("<td id=\"claim-name\">Dev User</td>"));
    assert!(claims.contains(&format!("<td id=\"claim-oid\">{}</td>", dev.users()[0].oid)));

    // Three hops: the API calls the downstream API on behalf of the same user.
    let (_, _, hops) = browser.get(&format!("{base}/call-downstream")).await.unwrap();
    assert!(hops.contains("GET /api/downstream answered 200"), "{hops}");
    assert!(hops.contains(&format!("<td id=\"downstream-oid\">{}</td>", dev.users()[0].oid)), "{hops}");
    assert!(hops.contains("<td id=\"downstream-scp\">Data.Read</td>"));

    let (url, _, after) = browser.get(&format!("{base}/logout")).await.unwrap();
    assert_eq!(url, format!("{base}/"), "back from the tenant's sign-out");
    assert!(after.contains("You are not signed in"));
    let (url, _, _) = browser.get(&format!("{base}/call-api")).await.unwrap();
    assert!(url.starts_with(&base), "signing in again leads back to the app");
}

#[tokio::test]
async fn the_client_secret_variant_differs_by_one_switch() {
    let dev = DevTenant::start().await.unwrap();
    let base = web_app(&dev, CredentialKind::ClientSecret).await;
    let mut browser = ScriptedBrowser::new();
    browser.get(&format!("{base}/login")).await.unwrap();
    let (_, status, claims) = browser.get(&format!("{base}/call-api")).await.unwrap();
    assert_eq!(status, 200);
    assert!(claims.contains("access_as_user"));
    assert_eq!(dev.requests(Endpoint::ManagedIdentity), 0, "no managed identity involved");
}

#[tokio::test]
async fn forged_or_replayed_callbacks_are_refused() {
    let dev = DevTenant::start().await.unwrap();
    let base = web_app(&dev, CredentialKind::ClientSecret).await;
    let mut browser = ScriptedBrowser::new();
    // A callback with no sign-in in progress.
    let (_, status, _) = browser.get(&format!("{base}/getAToken?code=abc&state=xyz")).await.unwrap();
    assert_eq!(status, 400);
    // Start a sign-in, then present a callback with another state.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let callback = http.get(authorize).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let forged = callback.replace("state=", "state=forged");
    let res = http.get(&forged).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("state"));
    // The pending request was consumed: replaying the genuine callback fails too.
    let res = http.get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

/// Session fixation: the session id a browser had before signing in (one an attacker could
/// have planted) is not the signed-in one; the web app issues a new id with the sign-in.
#[tokio::test]
async fn signing_in_issues_a_new_session_id() {
    let dev = DevTenant::start().await.unwrap();
    let base = web_app(&dev, CredentialKind::ClientSecret).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let planted = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let callback = http.get(authorize).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let done = http.get(&callback).header("cookie", &planted).send().await.unwrap();
    assert_eq!(done.status(), 303, "{:?}", done.headers());
    let renewed = done.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_ne!(renewed, planted, "a new session id with the sign-in");
    let home = |cookie: String| {
        let http = http.clone();
        let url = format!("{base}/");
        async move { http.get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
    };
    assert!(home(renewed).await.contains("id=\"welcome\""), "the new id is signed in");
    assert!(home(planted).await.contains("id=\"anonymous\""), "the planted id is not");
}

#[tokio::test]
async fn sign_in_client_checks_and_silent_tokens() {
    let web = DevApp::new("web").redirect_uri("http://localhost:5999/getAToken");
    let dev = DevTenant::builder().app(web.clone()).start().await.unwrap();
    let config = dev.config_builder().client_id(&web.client_id).build().unwrap();
    let client = SignInClient::new(
        &config,
        ClientCredential::secret(dev.add_client_secret(&web.client_id)),
        "http://localhost:5999/getAToken",
    );
    let scope = format!("api://{}/access_as_user", dev.api_client_id());
    let request = client.authorization_request(&[&scope]);
    assert!(request.url().contains("code_challenge_method=S256"));
    assert!(request.url().contains("nonce="));
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let location =
        no_redirects.get(request.url()).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1.to_owned();

    assert_eq!(client.complete(&request, "code=x&state=nope").await.unwrap_err(), SignInError::StateMismatch);
    let denied = format!("error=access_denied&error_description=cancelled&state={}", request.state());
    assert!(matches!(client.complete(&request, &denied).await.unwrap_err(), SignInError::Authorization { .. }));
    // Another sign-in's code (PKCE verifier and nonce of another request) is refused.
    let other = client.authorization_request(&[&scope]);
    let forged = query.replace(request.state(), other.state());
    assert!(matches!(client.complete(&other, &forged).await.unwrap_err(), SignInError::Token(_)));

    let request = client.authorization_request(&[&scope]);
    let location =
        no_redirects.get(request.url()).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let signed_in = client.complete(&request, location.split_once('?').unwrap().1).await.unwrap();
    assert_eq!(signed_in.account().object_id(), dev.users()[0].oid);
    assert_eq!(signed_in.id_token_claims().audiences(), std::slice::from_ref(&web.client_id));
    // The code is single-use.
    assert!(client.complete(&request, location.split_once('?').unwrap().1).await.is_err());

    // Silent: the API token from the sign-in is cached; Graph comes from the refresh token.
    let before = dev.requests(Endpoint::Token);
    let api = client.acquire_token_silent(signed_in.account(), &[&scope]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), before);
    let validator = TokenValidator::new(dev.config());
    assert_eq!(validator.validate(api.secret()).await.unwrap().object_id(), Some(dev.users()[0].oid.as_str()));
    client.acquire_token_silent(signed_in.account(), &["https://graph.microsoft.com/User.Read"]).await.unwrap();
    client.acquire_token_silent(signed_in.account(), &["https://graph.microsoft.com/User.Read"]).await.unwrap();
    assert_eq!(dev.requests(Endpoint::Token), before + 1);

    // After sign-out there is no refresh token: the user must sign in again.
    let logout = client.sign_out(signed_in.account(), "http://localhost:5999/");
    assert!(logout.contains("/oauth2/v2.0/logout?post_logout_redirect_uri="));
    let e =
        client.acquire_token_silent(signed_in.account(), &["https://graph.microsoft.com/Mail.Read"]).await.unwrap_err();
    assert_eq!(e, TokenError::SignInRequired("no refresh token for this account"));
}

#[tokio::test]
async fn the_sign_in_page_lists_several_test_users() {
    let bob = DevUser::new("Bob Builder", "bob@azaddev.onmicrosoft.com");
    let web = DevApp::new("web").redirect_uri("http://localhost:5998/getAToken");
    let dev = DevTenant::builder()
        .user(DevUser::new("Alice Admin", "alice@azaddev.onmicrosoft.com"))
        .user(bob.clone())
        .app(web.clone())
        .start()
        .await
        .unwrap();
    let config = dev.config_builder().client_id(&web.client_id).build().unwrap();
    let client = SignInClient::new(
        &config,
        ClientCredential::secret(dev.add_client_secret(&web.client_id)),
        "http://localhost:5998/getAToken",
    );
    let request = client.authorization_request(&["openid"]);
    let page = http().get(request.url()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Alice Admin") && page.contains("Bob Builder"), "{page}");
    let href = page.split("id=\"user-1\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let location = no_redirects.get(href).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let signed_in = client.complete(&request, location.split_once('?').unwrap().1).await.unwrap();
    assert_eq!(signed_in.account().name(), "Bob Builder");
    assert_eq!(signed_in.account().object_id(), bob.oid);
    // An unregistered redirect URI never gets a code: an error page instead of a redirect.
    let bad = request.url().replace("5998", "6666");
    let res = no_redirects.get(bad).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS50011"));
}

#[tokio::test]
async fn device_code_flow_for_command_line_clients() {
    let dev = DevTenant::start().await.unwrap();
    let cli = DevApp::new("cli");
    dev.register_app(cli.clone());
    let config = dev.config_builder().client_id(&cli.client_id).build().unwrap();
    let client = SignInClient::new(&config, ClientCredential::public_client(), "");
    let scope = format!("api://{}/access_as_user", dev.api_client_id());
    let code = client.start_device_code(&[&scope]).await.unwrap();
    assert!(code.message().contains(code.user_code()));
    assert!(code.verification_uri().ends_with("/devicelogin"));
    let user_code = code.user_code().to_owned();
    let approve = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(dev.approve_device_code(&user_code, 0));
    };
    let (signed_in, ()) = tokio::join!(client.complete_device_code(&code), approve);
    let signed_in = signed_in.unwrap();
    assert_eq!(signed_in.account().name(), "Dev User");
    let token = client.acquire_token_silent(signed_in.account(), &[&scope]).await.unwrap();
    let claims = TokenValidator::new(dev.config()).validate(token.secret()).await.unwrap();
    assert_eq!(claims.azp(), Some(cli.client_id.as_str()));
    assert!(claims.has_scope("access_as_user"));
    assert!(dev.requests(Endpoint::Token) >= 2, "polled while pending");
}

#[tokio::test]
async fn daemon_with_a_certificate_and_an_app_role() {
    let dev = DevTenant::start().await.unwrap();
    let api = on_behalf_of::serve_apis(&dev).await.unwrap();
    let client = daemon::register(&dev);
    let results = daemon::run(&client, dev.api_client_id(), &api, 2, Duration::from_millis(10)).await.unwrap();
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert_eq!(body["app_only"], true);
        assert_eq!(body["caller"], client.client_id());
    }
    assert_eq!(dev.requests(Endpoint::Token), 1, "the second run used the cached app token");
    // The same route refuses a delegated token without the role, and an app without it.
    let user = http().get(format!("{api}/api/admin")).bearer_auth(dev.token().build()).send().await.unwrap();
    assert_eq!(user.status(), 403);
    let other = http()
        .get(format!("{api}/api/admin"))
        .bearer_auth(dev.token().app_only().roles(["Reports.Read.All"]).build())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn workload_identity_reads_a_vault_secret_across_token_rotation() {
    let dev = DevTenant::start().await.unwrap();
    let app = DevApp::new("workload");
    dev.register_app(app.clone());
    let subject = "system:serviceaccount:payments:api";
    dev.add_federated_credential(&app.client_id, &dev.federation_issuer(), subject);
    dev.set_secret("db-password", "s3cret-value");
    let dir = std::env::temp_dir().join(format!("azad-scenario-wi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, dev.federated_token(subject)).unwrap();
    // Exactly the variables an AKS pod gets.
    let env = [
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_CLIENT_ID", app.client_id.clone()),
        ("AZURE_TENANT_ID", dev.tenant_id().to_owned()),
        ("AZURE_AUTHORITY_HOST", dev.base_url().to_owned()),
    ];
    let client = workload::client_from_env(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())).unwrap();
    assert_eq!(workload::read_secret(&client, dev.vault_url(), "db-password", true).await.unwrap(), "s3cret-value");
    std::fs::write(&file, dev.federated_token(subject)).unwrap();
    assert_eq!(workload::read_secret(&client, dev.vault_url(), "db-password", true).await.unwrap(), "s3cret-value");
    assert_eq!(dev.requests(Endpoint::Token), 2);
    assert!(workload::read_secret(&client, dev.vault_url(), "missing", false).await.unwrap_err().is_not_found());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The main job survives the identity provider being down: started while discovery answers
/// 503, the quickstart serves `/health`, answers protected routes 503 with `Retry-After`,
/// retries in the background with no traffic, and recovers by itself once the provider is
/// back, without a restart. `--check` (fail fast) still fails at once.
#[tokio::test]
async fn the_quickstart_survives_the_identity_provider_being_down() {
    use azad_axum::AzureAdAuth;
    use azad_examples::quickstart;
    use azad_tests::{Fault, serve};

    let dev = DevTenant::start().await.unwrap();
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(503));
    let mut policy = azad_core::JwksPolicy::default();
    policy.retry_interval = Duration::from_secs(1);
    let config = dev.config_builder().jwks_policy(policy).build().unwrap();

    let fail_fast = AzureAdAuth::new(config.clone());
    assert!(quickstart::load_keys(&fail_fast, true).await.is_err(), "--check fails fast");

    let auth = AzureAdAuth::new(config);
    quickstart::load_keys(&auth, false).await.expect("serving does not give up");
    let validator = auth.validator().clone();
    let addr = serve(quickstart::router(auth)).await;
    let base = format!("http://{addr}");
    let user = dev.token().build();

    let health = http().get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let down = http().get(format!("{base}/api/claims")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["retry-after"], "1");
    assert_eq!(down.headers()["www-authenticate"], "Bearer");

    // The provider comes back; with no request at all, the keys load in the background.
    dev.clear_fault(Endpoint::OpenIdConfiguration);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while validator.jwks().key_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the keys never loaded in the background");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up = http().get(format!("{base}/api/claims")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(http().get(format!("{base}/health")).send().await.unwrap().status(), 200);
}
