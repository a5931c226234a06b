//! The web app walkthrough in a real headless browser (Debian's Chromium through chromedriver):
//! click sign-in, pick the test user, land on the claims page, call the API and see the user's
//! name and scopes, call the downstream API through the API, sign out.

use azad_core::dev::DevUser;
use azad_examples::web_app::CredentialKind;
use azad_tests::webdriver::Browser;
use azad_tests::{DevTenant, Endpoint, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_call_the_api_and_sign_out_in_chromium() {
    // Two test users, so the dev tenant shows its sign-in page and the browser picks one.
    let dev = DevTenant::builder()
        .user(DevUser::new("Dev User", "dev.user@azaddev.onmicrosoft.com"))
        .user(DevUser::new("Grace Hopper", "grace@azaddev.onmicrosoft.com"))
        .start()
        .await
        .unwrap();
    let base = web_app(&dev, CredentialKind::ManagedIdentity).await;
    let browser = Browser::start().await.expect("Chromium and chromedriver (installed by .ci/run)");

    browser.goto(&base).await.unwrap();
    assert!(browser.text_of("#anonymous").await.unwrap().contains("not signed in"));
    browser.click_on("#sign-in").await.unwrap();

    // The dev tenant's sign-in page: pick Grace.
    let grace = browser.find("#user-1").await.unwrap();
    assert_eq!(browser.text(&grace).await.unwrap(), "Grace Hopper");
    browser.click(&grace).await.unwrap();

    // Back in the web app, signed in: the claims page of the ID token.
    assert_eq!(browser.text_of("#user-name").await.unwrap(), "Grace Hopper");
    assert!(browser.url().await.unwrap().starts_with(&base));
    assert_eq!(browser.text_of("#id-preferred_username").await.unwrap(), "grace@azaddev.onmicrosoft.com");
    assert!(dev.requests(Endpoint::ManagedIdentity) >= 1, "the managed identity stood in for a secret");

    // Call the API: its view of the token, with the user's name and scopes.
    browser.click_on("#call-api").await.unwrap();
    assert_eq!(browser.text_of("#api-status").await.unwrap(), "GET /api/claims answered 200");
    assert_eq!(browser.text_of("#claim-name").await.unwrap(), "Grace Hopper");
    assert_eq!(browser.text_of("#claim-scp").await.unwrap(), "access_as_user");

    // Three hops: the API calls the downstream API on behalf of Grace.
    browser.goto(&format!("{base}/")).await.unwrap();
    browser.click_on("#call-downstream").await.unwrap();
    assert_eq!(browser.text_of("#downstream-name").await.unwrap(), "Grace Hopper");
    assert_eq!(browser.text_of("#downstream-scp").await.unwrap(), "Data.Read");

    // Sign out: through the tenant's sign-out and back, anonymous again.
    browser.goto(&format!("{base}/")).await.unwrap();
    browser.click_on("#sign-out").await.unwrap();
    assert!(browser.text_of("#anonymous").await.unwrap().contains("not signed in"));
    browser.goto(&format!("{base}/call-api")).await.unwrap();
    // Signed out, calling the API starts a new sign-in (the tenant's page).
    browser.find("#user-0").await.unwrap();
}
