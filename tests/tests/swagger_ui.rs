//! The Swagger UI example: its OpenAPI security, generated from the attributes and layers, says
//! exactly what the routes enforce; and in headless Chromium a person calls a protected route
//! from Swagger UI (401), signs in on the dev tenant's page with PKCE, and calls it again (200).

use azad_examples::swagger_ui;
use azad_tests::webdriver::Browser;
use azad_tests::{Endpoint, http};
use serde_json::{Value, json};

async fn start() -> (String, azad_core::dev::DevTenant, azad_core::dev::DevApp) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (dev, spa) = swagger_ui::dev_tenant(addr).await.unwrap();
    let app = swagger_ui::router(dev.config(), &spa.client_id);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), dev, spa)
}

#[tokio::test]
async fn the_document_states_what_the_routes_enforce() {
    let (base, dev, _) = start().await;
    let doc: Value =
        http().get(format!("{base}{}", swagger_ui::OPENAPI_PATH)).send().await.unwrap().json().await.unwrap();
    let api = dev.api_client_id();
    let scope = format!("api://{api}/access_as_user");
    let authority = dev.authority();
    assert_eq!(doc["paths"]["/api/me"]["get"]["security"], json!([{"entra": [scope]}]));
    assert_eq!(
        doc["paths"]["/api/tasks"]["get"]["security"],
        json!([{"entra": [scope]}, {"entra_app": ["Tasks.Read.All"]}])
    );
    assert_eq!(doc["paths"]["/api/reports/daily"]["get"]["security"], json!([{"entra_app": ["Reports.Read.All"]}]));
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({
            "entra": {
                "type": "oauth2",
                "description": "Microsoft Entra ID, signed-in user: authorization code flow with PKCE (RFC 7636). Requests delegated permissions (scopes) of the API; the access token carries them in `scp`.",
                "flows": {"authorizationCode": {
                    "authorizationUrl": format!("{authority}/oauth2/v2.0/authorize"),
                    "tokenUrl": format!("{authority}/oauth2/v2.0/token"),
                    "scopes": {scope.clone(): "Call the API as the signed-in user"},
                }},
            },
            "entra_app": {
                "type": "oauth2",
                "description": "Microsoft Entra ID, application: client credentials flow. An operation's requirement names the app roles it accepts; the access token carries them in `roles`.",
                "flows": {"clientCredentials": {
                    "tokenUrl": format!("{authority}/oauth2/v2.0/token"),
                    "scopes": {format!("api://{api}/.default"): "The app roles (application permissions) an administrator granted the calling application"},
                }},
            },
        })
    );

    // Each alternative the document lists is accepted, and what it leaves out is refused.
    let call = |path: &'static str, token: Option<String>| {
        let mut r = http().get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let user = dev.token().scopes(["access_as_user"]).build();
    let app = |role: &str| dev.token().app_only().roles([role]).build();
    assert_eq!(call("/api/me", None).await, 401);
    assert_eq!(call("/api/me", Some(user.clone())).await, 200);
    assert_eq!(call("/api/me", Some(app("Tasks.Read.All"))).await, 403);
    assert_eq!(call("/api/tasks", Some(user.clone())).await, 200);
    assert_eq!(call("/api/tasks", Some(app("Tasks.Read.All"))).await, 200);
    assert_eq!(call("/api/tasks", Some(app("Admin"))).await, 403);
    assert_eq!(call("/api/reports/daily", Some(app("Reports.Read.All"))).await, 200);
    assert_eq!(call("/api/reports/daily", Some(user)).await, 403);
    // Swagger UI and the document are public.
    assert_eq!(call("/swagger-ui/", None).await, 200);
}

/// Clicks the first element matching `css` inside Swagger UI's operation block `op`.
async fn click_in(browser: &Browser, op: &str, css: &str) {
    browser.click_on(&format!("#{op} {css}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_pkce_in_swagger_ui_and_call_the_api_in_chromium() {
    let (base, dev, spa) = start().await;
    let browser = Browser::start().await.expect("Chromium and chromedriver (installed by .ci/run)");
    browser.goto(&format!("{base}/swagger-ui/")).await.unwrap();

    // Not signed in: the protected route answers 401.
    let op = "operations-me-me";
    click_in(&browser, op, ".opblock-summary-control").await;
    click_in(&browser, op, ".try-out__btn").await;
    click_in(&browser, op, "button.execute").await;
    let status = format!("#{op} .live-responses-table .response .response-col_status");
    assert_eq!(browser.wait_for_text(&status, |t| !t.is_empty()).await.unwrap(), "401");

    // Authorize: the `entra` scheme (authorization code + PKCE), client id preset, scope ticked.
    browser.click_on(".auth-wrapper .authorize").await.unwrap();
    let client_id = browser
        .execute("return document.querySelector('.auth-container input[data-name=clientId]').value")
        .await
        .unwrap();
    assert_eq!(client_id, spa.client_id.as_str());
    let main = browser.window().await.unwrap();
    let known = browser.windows().await.unwrap();
    browser
        .execute("document.querySelectorAll('.auth-container')[0].querySelector('.auth-btn-wrapper button.authorize').click()")
        .await
        .unwrap();

    // The dev tenant's sign-in page opens in a pop-up: pick the first test user.
    browser.switch_to_new_window(&known).await.unwrap();
    assert!(browser.url().await.unwrap().starts_with(dev.base_url()));
    let user = browser.find("#user-0").await.unwrap();
    assert_eq!(browser.text(&user).await.unwrap(), "Dev User");
    browser.click(&user).await.unwrap();

    // The pop-up hands the code to Swagger UI and closes; Swagger UI redeems it cross-origin.
    browser.switch_to_window(&main).await.unwrap();
    let authorized = browser
        .wait_for_text(".auth-container", |t| t.contains("Logout"))
        .await
        .unwrap_or_else(|e| panic!("not authorized: {e}"));
    assert!(authorized.contains("Authorized"), "{authorized}");
    assert_eq!(dev.requests(Endpoint::Token), 1, "one redemption, with PKCE");
    browser.execute("document.querySelector('.modal-ux .close-modal').click()").await.unwrap();

    // Signed in: the same call answers 200 with the user's name.
    click_in(&browser, op, "button.execute").await;
    assert_eq!(browser.wait_for_text(&status, |t| t != "401" && !t.is_empty()).await.unwrap(), "200");
    let body =
        browser.text_of(&format!("#{op} .live-responses-table .response .response-col_description")).await.unwrap();
    assert!(body.contains("Dev User"), "{body}");
}
