//! The dev tenant's single-page application platform, as Entra's: codes for `spa` redirect URIs
//! are redeemed cross-origin from the browser with PKCE, and only those answers carry CORS
//! headers; the refusals carry Entra's error codes.

use azad_core::TokenValidator;
use azad_core::dev::DevApp;
use azad_tests::DevTenant;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

const SPA_REDIRECT: &str = "http://127.0.0.1:5998/swagger-ui/oauth2-redirect.html";
const WEB_REDIRECT: &str = "http://127.0.0.1:5998/signin-oidc";
const ORIGIN: &str = "http://127.0.0.1:5998";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9yT0lAqQtbhoRsM1m9j0cZ-sz9b6QG";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()))
}

struct Setup {
    dev: DevTenant,
    app: DevApp,
    scope: String,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let app = DevApp::new("swagger").spa_redirect_uri(SPA_REDIRECT).redirect_uri(WEB_REDIRECT);
    let dev = DevTenant::builder().app(app.clone()).start().await.unwrap();
    let scope = format!("api://{}/access_as_user", dev.api_client_id());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    Setup { dev, app, scope, http }
}

impl Setup {
    /// A code from `/authorize` (one test user: signed in at once), with or without PKCE.
    async fn code(&self, redirect_uri: &str, pkce: bool) -> String {
        let mut params = vec![
            ("client_id", self.app.client_id.clone()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            // No `openid`: Swagger UI asks for the API's scopes only, and Entra accepts that.
            ("scope", self.scope.clone()),
            ("state", "s1".to_owned()),
        ];
        if pkce {
            params.push(("code_challenge", challenge(VERIFIER)));
            params.push(("code_challenge_method", "S256".to_owned()));
        }
        let response = self.http.get(with_query(&self.dev.authorize_endpoint(), &params)).send().await.unwrap();
        assert_eq!(response.status(), 302);
        let location = url_of(response.headers()["location"].to_str().unwrap());
        assert!(location.as_str().starts_with(redirect_uri), "{location}");
        let q = |k: &str| location.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        assert_eq!(q("state").as_deref(), Some("s1"));
        q("code").unwrap_or_else(|| panic!("no code in {location}"))
    }

    async fn redeem(&self, form: &[(&str, &str)], origin: Option<&str>) -> (u16, Option<String>, Value) {
        let mut request = self.http.post(self.dev.token_endpoint()).form(form);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let allow = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
        (status, allow, response.json().await.unwrap())
    }

    fn code_form<'a>(&'a self, code: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("client_id", self.app.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
            ("scope", self.scope.as_str()),
        ]
    }
}

fn with_query<K: AsRef<str>, V: AsRef<str>>(url: &str, params: &[(K, V)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(url, params.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))).unwrap()
}

fn url_of(s: &str) -> reqwest::Url {
    reqwest::Url::parse(s).unwrap()
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test]
async fn a_spa_redeems_its_code_cross_origin_with_pkce_and_reads_the_answer() {
    let s = setup().await;
    let code = s.code(SPA_REDIRECT, true).await;
    let (status, allow, body) = s.redeem(&s.code_form(&code, SPA_REDIRECT), Some(ORIGIN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(allow.as_deref(), Some(ORIGIN), "the page may read the tokens");
    let token = body["access_token"].as_str().unwrap();
    let claims = TokenValidator::new(s.dev.config()).validate(token).await.unwrap();
    assert!(claims.has_scope("access_as_user"));
    assert_eq!(claims.azp(), Some(s.app.client_id.as_str()));
    assert_eq!(body["scope"], s.scope.as_str());
    assert!(body.get("id_token").is_none(), "no openid, no ID token");
}

#[tokio::test]
async fn a_spa_refresh_token_is_redeemed_cross_origin_only() {
    let s = setup().await;
    let app = &s.app.client_id;
    let http = &s.http;
    let params = [
        ("client_id", app.as_str()),
        ("response_type", "code"),
        ("redirect_uri", SPA_REDIRECT),
        ("scope", &format!("{} offline_access", s.scope)),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ];
    let response = http.get(with_query(&s.dev.authorize_endpoint(), &params)).send().await.unwrap();
    let location = url_of(response.headers()["location"].to_str().unwrap());
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (status, _, body) = s.redeem(&s.code_form(&code, SPA_REDIRECT), Some(ORIGIN)).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let form = [("client_id", app.as_str()), ("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let (status, allow, body) = s.redeem(&form, None).await;
    assert_eq!((status, aadsts(&body)), (400, 9_002_327), "{body}");
    assert_eq!(allow, None);
    let (status, allow, body) = s.redeem(&form, Some(ORIGIN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(allow.as_deref(), Some(ORIGIN));
}

#[tokio::test]
async fn a_spa_code_is_refused_from_a_server_and_without_pkce() {
    let s = setup().await;
    // From a server (no Origin): AADSTS9002327, and the code is spent.
    let code = s.code(SPA_REDIRECT, true).await;
    let (status, allow, body) = s.redeem(&s.code_form(&code, SPA_REDIRECT), None).await;
    assert_eq!((status, aadsts(&body)), (400, 9_002_327), "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(allow, None);
    // Without PKCE: AADSTS9002325, readable by the page (it is the SPA's own redemption).
    let code = s.code(SPA_REDIRECT, false).await;
    let form: Vec<_> = s.code_form(&code, SPA_REDIRECT).into_iter().filter(|(k, _)| *k != "code_verifier").collect();
    let (status, allow, body) = s.redeem(&form, Some(ORIGIN)).await;
    assert_eq!((status, aadsts(&body)), (400, 9_002_325), "{body}");
    assert_eq!(allow.as_deref(), Some(ORIGIN));
}

#[tokio::test]
async fn a_web_redirect_uri_code_is_not_redeemable_cross_origin() {
    let s = setup().await;
    let code = s.code(WEB_REDIRECT, true).await;
    let (status, allow, body) = s.redeem(&s.code_form(&code, WEB_REDIRECT), Some(ORIGIN)).await;
    assert_eq!((status, aadsts(&body)), (400, 9_002_326), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("Request origin: 'http://127.0.0.1:5998'"));
    assert_eq!(allow, None, "no CORS headers: the browser withholds the answer");
    // The same kind of code, redeemed by a server, works (public client with PKCE).
    let code = s.code(WEB_REDIRECT, true).await;
    let (status, _, body) = s.redeem(&s.code_form(&code, WEB_REDIRECT), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_token_endpoint_answers_the_cors_preflight_and_documents_are_public() {
    let s = setup().await;
    let response = s
        .http
        .request(reqwest::Method::OPTIONS, s.dev.token_endpoint())
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-requested-with")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let h = |k: &str| response.headers().get(k).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("access-control-allow-origin").as_deref(), Some(ORIGIN));
    assert_eq!(h("access-control-allow-headers").as_deref(), Some("x-requested-with"));
    assert!(h("access-control-allow-methods").unwrap().contains("POST"));
    // A preflight is no token request.
    assert_eq!(s.dev.requests(azad_tests::Endpoint::Token), 0);
    let discovery = s.http.get(s.dev.metadata_url()).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(discovery.headers()["access-control-allow-origin"], "*");
    // An authorization request without any scope is refused back to the redirect URI.
    let response = s
        .http
        .get(with_query(
            &s.dev.authorize_endpoint(),
            &[("client_id", s.app.client_id.as_str()), ("response_type", "code"), ("redirect_uri", SPA_REDIRECT)],
        ))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(SPA_REDIRECT) && location.contains("error=invalid_request"), "{location}");
}
