//! Token client tests with closure mocks: exact requests, retries and throttling on paused
//! time, caches, pre-checks, error mapping, and secrets kept out of every output.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header;
use serde_json::json;

use super::*;
use crate::error::{CredentialError, EntraError, HttpError, HttpErrorKind, IdentityEndpoint};
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::secret::{AccessToken, ClientAssertion};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const SECRET: &str = "CANARY-client-secret-9f2b";

fn config() -> AzureAdConfig {
    AzureAdConfig::builder().tenant_id(TID).client_id(API).build().unwrap()
}

/// An unsigned JWT with these claims (the token client never verifies incoming tokens; the
/// layer did).
#[allow(clippy::needless_pass_by_value)] // called with json! literals
fn jwt(claims: serde_json::Value) -> BearerToken {
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    BearerToken::new(format!("{h}.{p}.c2lnbmF0dXJl"))
}

fn user_token(oid: &str) -> BearerToken {
    jwt(json!({"aud": API, "tid": TID, "oid": oid, "scp": "access_as_user", "exp": now_secs() + 3600, "sub": "s"}))
}

fn ok_token(value: &str, expires_in: u64) -> HttpResponse {
    http::Response::new(
        json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": value}).to_string().into_bytes(),
    )
}

#[allow(clippy::needless_pass_by_value)] // called with json! literals
fn error(status: u16, body: serde_json::Value, retry_after: Option<&str>) -> HttpResponse {
    let mut b = http::Response::builder().status(status);
    if let Some(r) = retry_after {
        b = b.header("Retry-After", r);
    }
    b.body(body.to_string().into_bytes()).unwrap()
}

type Answer = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + Send + Sync>;

/// A scripted token endpoint: answers from a queue (then the fallback), records requests.
#[derive(Clone)]
struct Mock {
    queue: Arc<Mutex<Vec<Result<HttpResponse, HttpError>>>>,
    fallback: Arc<Answer>,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    delay: Duration,
}

impl Mock {
    fn new(fallback: impl Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + Send + Sync + 'static) -> Self {
        Self {
            queue: Arc::default(),
            fallback: Arc::new(Box::new(fallback)),
            requests: Arc::default(),
            delay: Duration::ZERO,
        }
    }

    fn then(self, answer: Result<HttpResponse, HttpError>) -> Self {
        self.queue.lock().unwrap().push(answer);
        self
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn form(&self, i: usize) -> HashMap<String, String> {
        let body = self.requests.lock().unwrap()[i].body().clone();
        url::form_urlencoded::parse(&body).into_owned().collect()
    }

    fn client(&self) -> Arc<dyn HttpClient> {
        let m = self.clone();
        Arc::new(move |req: HttpRequest| {
            let m = m.clone();
            async move {
                if !m.delay.is_zero() {
                    tokio::time::sleep(m.delay).await;
                }
                let answer = {
                    let mut q = m.queue.lock().unwrap();
                    if q.is_empty() { (m.fallback)(&req) } else { q.remove(0) }
                };
                m.requests.lock().unwrap().push(req);
                answer
            }
        })
    }
}

fn client(mock: &Mock) -> TokenClient {
    TokenClient::new(&config(), ClientCredential::secret(crate::ClientSecret::new(SECRET)))
        .with_http_client(mock.client())
}

#[tokio::test]
async fn client_credentials_request_is_exact() {
    let mock = Mock::new(|_| Ok(ok_token("app-token", 3599)));
    let c = client(&mock);
    let t = c.acquire_app_token(&["api://downstream/.default"]).await.unwrap();
    assert_eq!(t.secret(), "app-token");
    let req = &mock.requests.lock().unwrap()[0];
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri(), &format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/token")[..]);
    assert_eq!(req.headers()[header::CONTENT_TYPE], "application/x-www-form-urlencoded");
    let body = String::from_utf8(req.body().clone()).unwrap();
    assert_eq!(
        body,
        format!(
            "client_id={API}&scope=api%3A%2F%2Fdownstream%2F.default&grant_type=client_credentials&client_secret={SECRET}"
        )
    );
}

#[tokio::test]
async fn on_behalf_of_request_is_exact() {
    let mock = Mock::new(|_| Ok(ok_token("obo-token", 3599)));
    let c = client(&mock);
    let incoming = user_token("u1");
    c.acquire_on_behalf_of(&incoming, &["api://downstream/Data.Read", "api://downstream/Data.Write"]).await.unwrap();
    let f = mock.form(0);
    assert_eq!(f["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    assert_eq!(f["requested_token_use"], "on_behalf_of");
    assert_eq!(f["assertion"], incoming.secret());
    assert_eq!(f["scope"], "api://downstream/Data.Read api://downstream/Data.Write");
    assert_eq!(f["client_id"], API);
    assert_eq!(f["client_secret"], SECRET);
    assert!(!f.contains_key("claims"));
}

#[tokio::test]
async fn certificate_and_callback_credentials_send_assertions() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    let c = TokenClient::new(
        &config(),
        ClientCredential::assertion_callback(|req: crate::client::credential::AssertionRequest| async move {
            assert_eq!(req.client_id, API);
            Ok(ClientAssertion::new(format!("signed-for:{}", req.token_endpoint)))
        }),
    )
    .with_http_client(mock.client());
    c.acquire_app_token(&["api://x/.default"]).await.unwrap();
    let f = mock.form(0);
    assert_eq!(f["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    assert_eq!(f["client_assertion"], format!("signed-for:https://login.microsoftonline.com/{TID}/oauth2/v2.0/token"));
    assert!(!f.contains_key("client_secret"));

    let failing = TokenClient::new(
        &config(),
        ClientCredential::assertion_callback(|_| async { Err(CredentialError::Callback("HSM offline".into())) }),
    )
    .with_http_client(mock.client());
    let e = failing.acquire_app_token(&["api://y/.default"]).await.unwrap_err();
    assert_eq!(e, TokenError::Credential(CredentialError::Callback("HSM offline".into())));
    assert_eq!(e.challenge().status(), 500);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_once_after_a_second() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(error(500, json!({"error": "server_error"}), None)));
    let c = client(&mock);
    let start = Instant::now();
    assert_eq!(c.acquire_app_token(&["api://a/.default"]).await.unwrap().secret(), "t");
    assert_eq!(mock.count(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(1));

    let timeout = Mock::new(|_| Ok(ok_token("t", 3599))).then(Err(HttpError::new(HttpErrorKind::Timeout, None)));
    assert!(client(&timeout).acquire_app_token(&["api://a/.default"]).await.is_ok());
    assert_eq!(timeout.count(), 2);

    let down = Mock::new(|_| Ok(error(502, json!({"error": "bad_gateway"}), None)));
    let e = client(&down).acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    assert_eq!(down.count(), 2, "once, not more");
    assert!(e.is_retryable());
    assert_eq!(e.challenge().status(), 502);
}

/// A 429 is retryable (later), but never retried at once: with `Retry-After` it opens a local
/// window (below); without, it is answered as it is, and the next request goes to the network.
#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_is_retryable_but_not_retried_at_once() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(error(429, json!({"error": "too_many_requests"}), None)));
    let c = client(&mock);
    let e = c.acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    assert_eq!(mock.count(), 1, "not retried at once");
    assert!(e.is_retryable());
    assert_eq!(e.entra().unwrap().retry_after, None);
    assert!(c.acquire_app_token(&["api://a/.default"]).await.is_ok(), "no local window without Retry-After");
    assert_eq!(mock.count(), 2);
}

/// An unparsable 5xx answer (a gateway's HTML page) is retried once, as a 5xx OAuth error is.
#[tokio::test(start_paused = true)]
async fn an_unparsable_5xx_answer_is_retried_once() {
    let html = || http::Response::builder().status(502).body(b"<html>Bad Gateway</html>".to_vec()).unwrap();
    let mock = Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(html()));
    assert!(client(&mock).acquire_app_token(&["api://a/.default"]).await.is_ok());
    assert_eq!(mock.count(), 2);
}

#[test]
fn retryable_is_defined_once() {
    let entra = |status: u16, error: &str| {
        TokenError::ServerResponse(Box::new(EntraError { status, error: error.into(), ..EntraError::default() }))
    };
    let parse = |status| TokenError::Parse {
        endpoint: IdentityEndpoint::TokenEndpoint,
        status,
        reason: String::new(),
        body: String::new(),
    };
    let retryable = [
        TokenError::Request(HttpError::new(HttpErrorKind::Timeout, None)),
        entra(500, "server_error"),
        entra(503, "temporarily_unavailable"),
        entra(429, "too_many_requests"),
        parse(502),
        TokenError::Throttled { retry_after: Duration::from_secs(1) },
    ];
    for e in &retryable {
        assert!(e.is_retryable(), "{e:?}");
    }
    let final_ = [
        TokenError::Request(HttpError::new(HttpErrorKind::Connect, None)),
        TokenError::Request(HttpError::new(HttpErrorKind::Redirect, None)),
        TokenError::Request(HttpError::new(HttpErrorKind::TooLarge, None)),
        entra(400, "invalid_grant"),
        entra(401, "invalid_client"),
        entra(404, "not_found"),
        parse(200),
        TokenError::Credential(CredentialError::Callback("x".into())),
        TokenError::OnBehalfOf(OboRefusal::Expired),
        TokenError::Configuration("x"),
        TokenError::SignInRequired("x"),
    ];
    for e in &final_ {
        assert!(!e.is_retryable(), "{e:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn grant_and_client_errors_are_never_retried() {
    for (status, body) in [
        (400, json!({"error": "invalid_grant", "error_codes": [50173]})),
        (401, json!({"error": "invalid_client", "error_codes": [7000215]})),
        (400, json!({"error": "invalid_scope"})),
        (403, json!({"error": "unauthorized_client"})),
    ] {
        let mock = Mock::new(move |_| Ok(error(status, body.clone(), None)));
        let e = client(&mock).acquire_app_token(&["api://a/.default"]).await.unwrap_err();
        assert_eq!(mock.count(), 1, "{e}");
        assert_eq!(e.entra().unwrap().status, status);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_throttles_identical_requests_locally() {
    let mock =
        Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(error(429, json!({"error": "too_many_requests"}), Some("30"))));
    let c = client(&mock);
    let first = c.acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    assert_eq!(first.entra().unwrap().retry_after, Some(Duration::from_secs(30)));
    let r = first.challenge();
    assert_eq!((r.status().as_u16(), r.retry_after()), (503, Some(Duration::from_secs(30))));
    // Inside the window: refused locally, no request.
    tokio::time::advance(Duration::from_secs(10)).await;
    let again = c.acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    assert_eq!(again, TokenError::Throttled { retry_after: Duration::from_secs(20) });
    assert_eq!(again.challenge().retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(mock.count(), 1);
    // Another request (other scopes) is not throttled.
    assert!(c.acquire_app_token(&["api://b/.default"]).await.is_ok());
    // After the window: back to the network.
    tokio::time::advance(Duration::from_secs(21)).await;
    assert!(c.acquire_app_token(&["api://a/.default"]).await.is_ok());
    assert_eq!(mock.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_and_503_without_it_is_retried() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(error(
        503,
        json!({"error": "temporarily_unavailable"}),
        Some("86400"),
    )));
    let c = client(&mock);
    c.acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    let TokenError::Throttled { retry_after } = c.acquire_app_token(&["api://a/.default"]).await.unwrap_err() else {
        panic!("throttled locally")
    };
    assert!(retry_after <= Duration::from_secs(60));

    let plain =
        Mock::new(|_| Ok(ok_token("t", 3599))).then(Ok(error(503, json!({"error": "temporarily_unavailable"}), None)));
    assert!(client(&plain).acquire_app_token(&["api://a/.default"]).await.is_ok());
    assert_eq!(plain.count(), 2);
}

#[tokio::test]
async fn on_behalf_of_pre_checks_make_no_network_call() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    let c = client(&mock);
    let scope = ["api://downstream/Data.Read"];
    let cases = [
        (jwt(json!({"aud": API, "tid": TID, "scp": "x", "exp": now_secs() - 10})), OboRefusal::Expired),
        (jwt(json!({"aud": API, "tid": TID, "scp": "x"})), OboRefusal::Expired),
        (
            jwt(json!({"aud": API, "tid": TID, "idtyp": "app", "roles": ["R"], "exp": now_secs() + 600})),
            OboRefusal::AppOnly,
        ),
        (
            jwt(json!({"aud": "api://other", "tid": TID, "scp": "x", "exp": now_secs() + 600})),
            OboRefusal::WrongAudience,
        ),
        (BearerToken::new("not-a-jwt"), OboRefusal::Malformed),
    ];
    for (token, refusal) in cases {
        assert_eq!(c.acquire_on_behalf_of(&token, &scope).await.unwrap_err(), TokenError::OnBehalfOf(refusal));
    }
    assert_eq!(mock.count(), 0);
    let expired = TokenError::OnBehalfOf(OboRefusal::Expired).challenge();
    assert_eq!(
        (expired.status().as_u16(), expired.www_authenticate().as_ref().and_then(|v| v.to_str().ok())),
        (401, Some(r#"Bearer error="invalid_token""#))
    );
    assert_eq!(TokenError::OnBehalfOf(OboRefusal::AppOnly).challenge().status(), 403);
}

#[tokio::test]
async fn on_behalf_of_takes_a_user_with_app_roles_and_no_scp() {
    // A user's token (pairwise `sub`, no `idtyp`) carrying app roles and no `scp` is delegated:
    // on-behalf-of must not refuse it as app-only. The same shape with `oid == sub` is app-only.
    let mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    let c = client(&mock);
    let scope = ["api://downstream/Data.Read"];
    let user =
        jwt(json!({"aud": API, "tid": TID, "oid": "o", "sub": "pairwise", "roles": ["R"], "exp": now_secs() + 600}));
    assert!(c.acquire_on_behalf_of(&user, &scope).await.is_ok());
    assert_eq!(mock.count(), 1);
    let app = jwt(json!({"aud": API, "tid": TID, "oid": "o", "sub": "o", "roles": ["R"], "exp": now_secs() + 600}));
    assert_eq!(c.acquire_on_behalf_of(&app, &scope).await.unwrap_err(), TokenError::OnBehalfOf(OboRefusal::AppOnly));
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn two_users_never_share_a_cached_token() {
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    let mock = Mock::new(move |req| {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        let form: HashMap<String, String> = url::form_urlencoded::parse(req.body()).into_owned().collect();
        let who = form.get("assertion").map_or(0, String::len);
        Ok(ok_token(&format!("token-{i}-{who}"), 3599))
    });
    let c = client(&mock);
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let scopes = ["api://d/Data.Read", "api://d/Data.Write"];
    let a1 = c.acquire_on_behalf_of(&alice, &scopes).await.unwrap();
    let b1 = c.acquire_on_behalf_of(&bob, &scopes).await.unwrap();
    assert_ne!(a1.secret(), b1.secret());
    // Same user, same scopes in another order: the cache.
    let a2 = c.acquire_on_behalf_of(&alice, &["api://d/Data.Write", "api://d/Data.Read"]).await.unwrap();
    assert_eq!(a1.secret(), a2.secret());
    // Same user, other scopes: a new exchange.
    let a3 = c.acquire_on_behalf_of(&alice, &["api://d/Data.Read"]).await.unwrap();
    assert_ne!(a1.secret(), a3.secret());
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn a_claims_challenge_bypasses_the_cache() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    let c = client(&mock);
    let alice = user_token("alice");
    c.acquire_on_behalf_of(&alice, &["api://d/Data.Read"]).await.unwrap();
    let challenge = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
    c.acquire(TokenRequest::on_behalf_of(alice.clone(), ["api://d/Data.Read"]).with_claims(challenge)).await.unwrap();
    assert_eq!(mock.count(), 2);
    assert_eq!(mock.form(1)["claims"], challenge);
    c.acquire(TokenRequest::app(["api://d/.default"]).with_force_refresh(true)).await.unwrap();
    c.acquire(TokenRequest::app(["api://d/.default"]).with_force_refresh(true)).await.unwrap();
    assert_eq!(mock.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_requests_make_one_token_request() {
    let mut mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    mock.delay = Duration::from_millis(100);
    let c = client(&mock);
    let alice = user_token("alice");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (c, alice) = (c.clone(), alice.clone());
            tokio::spawn(async move { c.acquire_on_behalf_of(&alice, &["api://d/Data.Read"]).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret(), "t");
    }
    assert_eq!(mock.count(), 1);
}

/// A downstream revoking the token that many calls in flight carry challenges them all at
/// once: they share one new token per challenge (it made one token request each), for app
/// tokens and on-behalf-of alike; the new token then serves the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_challenged_at_once_share_one_token_request() {
    let mut mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    mock.delay = Duration::from_millis(100);
    let c = client(&mock);
    let alice = user_token("alice");
    let challenge = r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}"#;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (c, alice) = (c.clone(), alice.clone());
            tokio::spawn(async move {
                let request = if i % 2 == 0 {
                    TokenRequest::app(["api://d/.default"])
                } else {
                    TokenRequest::on_behalf_of(alice, ["api://d/Data.Read"])
                };
                c.acquire(request.with_claims(challenge)).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret(), "t");
    }
    assert_eq!(mock.count(), 2, "one request for the app token, one for alice's");
    assert_eq!(mock.form(0)["claims"], challenge);
    c.acquire_app_token(&["api://d/.default"]).await.unwrap();
    c.acquire_on_behalf_of(&alice, &["api://d/Data.Read"]).await.unwrap();
    assert_eq!(mock.count(), 2, "the new tokens serve their keys");
}

#[tokio::test(start_paused = true)]
async fn refreshed_ahead_and_a_failed_refresh_keeps_serving() {
    let mock = Mock::new(|_| Ok(ok_token("second", 3599)));
    let mock = mock.then(Ok(ok_token("first", 3600)));
    let c = client(&mock);
    assert_eq!(c.acquire_app_token(&["api://a/.default"]).await.unwrap().secret(), "first");
    tokio::time::advance(Duration::from_secs(3000)).await;
    assert_eq!(c.acquire_app_token(&["api://a/.default"]).await.unwrap().secret(), "first", "fresh");
    assert_eq!(mock.count(), 1);
    tokio::time::advance(Duration::from_secs(400)).await; // inside the last five minutes
    assert_eq!(c.acquire_app_token(&["api://a/.default"]).await.unwrap().secret(), "second");
    assert_eq!(mock.count(), 2);

    let failing =
        Mock::new(|_| Ok(error(400, json!({"error": "invalid_grant"}), None))).then(Ok(ok_token("only", 3600)));
    let c = client(&failing);
    c.acquire_app_token(&["api://a/.default"]).await.unwrap();
    tokio::time::advance(Duration::from_secs(3400)).await;
    assert_eq!(c.acquire_app_token(&["api://a/.default"]).await.unwrap().secret(), "only", "still valid");
}

#[tokio::test]
async fn errors_keep_entra_details() {
    let body = json!({
        "error": "interaction_required",
        "error_description": "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.",
        "error_codes": [50076],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "trace-1",
        "correlation_id": "corr-1",
        "claims": r#"{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}"#,
        "suberror": "basic_action"
    });
    let mock = Mock::new(move |_| Ok(error(400, body.clone(), None)));
    let e = client(&mock).acquire_on_behalf_of(&user_token("u"), &["api://d/Data.Read"]).await.unwrap_err();
    let entra = e.entra().unwrap();
    assert_eq!(entra.error_codes, [50076]);
    assert_eq!(entra.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(entra.trace_id.as_deref(), Some("trace-1"));
    assert_eq!(entra.suberror.as_deref(), Some("basic_action"));
    assert!(entra.is_interaction_required());
    let r = e.challenge();
    assert_eq!(r.status(), 401);
    let expected_claims = STANDARD.encode(entra.claims.as_deref().unwrap());
    assert_eq!(
        r.www_authenticate().unwrap(),
        format!(r#"Bearer error="insufficient_claims", claims="{expected_claims}""#)
    );
    assert!(e.to_string().contains("AADSTS50076") && e.to_string().contains("corr-1"), "{e}");
}

#[test]
fn caller_responses() {
    let entra = |error: &str, codes: Vec<u32>| {
        TokenError::ServerResponse(Box::new(EntraError {
            status: 400,
            error: error.into(),
            error_codes: codes,
            ..EntraError::default()
        }))
    };
    assert_eq!(
        entra("invalid_grant", vec![500_133]).challenge().www_authenticate().unwrap(),
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(entra("invalid_client", vec![7_000_215]).challenge().status(), 500);
    assert_eq!(entra("unauthorized_client", vec![700_016]).challenge().status(), 500);
    assert_eq!(entra("invalid_grant", vec![65_001]).challenge().status(), 403);
    assert_eq!(entra("invalid_grant", vec![50_173]).challenge().status(), 502);
    assert_eq!(TokenError::Configuration("x").challenge().status(), 500);
    assert_eq!(TokenError::Request(HttpError::new(HttpErrorKind::Connect, None)).challenge().status(), 502);
}

#[tokio::test]
async fn unparsable_answers_keep_a_redacted_body() {
    let mock = Mock::new(|_| {
        Ok(http::Response::new(br#"{"access_token":"CANARY-leaked-token","expires_in":"soon"}"#.to_vec()))
    });
    let e = client(&mock).acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    let TokenError::Parse { status: 200, body, .. } = &e else { panic!("{e:?}") };
    assert!(body.contains("[redacted]"));
    for text in [format!("{e}"), format!("{e:?}")] {
        assert!(!text.contains("CANARY"), "{text}");
    }
    let html = Mock::new(|_| Ok(error(502, json!("<html>gateway</html>"), None)));
    assert!(matches!(
        client(&html).acquire_app_token(&["api://a/.default"]).await.unwrap_err(),
        TokenError::Parse { status: 502, .. }
    ));
}

#[tokio::test]
async fn multi_tenant_apis_exchange_in_the_users_tenant() {
    let mock = Mock::new(|_| Ok(ok_token("t", 3599)));
    let cfg = AzureAdConfig::builder().tenant_id("organizations").client_id(API).build().unwrap();
    let c = TokenClient::new(&cfg, ClientCredential::secret(crate::ClientSecret::new(SECRET)))
        .with_http_client(mock.client());
    c.acquire_on_behalf_of(&user_token("u"), &["api://d/Data.Read"]).await.unwrap();
    assert_eq!(
        mock.requests.lock().unwrap()[0].uri(),
        &format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/token")[..]
    );
    assert_eq!(
        c.acquire_app_token(&["api://d/.default"]).await.unwrap_err(),
        TokenError::Configuration(
            "client credentials need a tenant-specific authority, not `common` or `organizations`"
        )
    );
    assert_eq!(c.acquire_app_token(&[]).await.unwrap_err(), TokenError::Configuration("no scopes requested"));
}

#[test]
fn secrets_never_print() {
    let c = TokenClient::new(&config(), ClientCredential::secret(crate::ClientSecret::new(SECRET)));
    assert!(!format!("{c:?}").contains("CANARY"));
    let t = AcquiredToken::new(AccessToken::new("CANARY-access-token"), Duration::from_secs(60), None, "Bearer".into());
    assert!(!format!("{t:?}").contains("CANARY"));
    let r = TokenRequest::on_behalf_of(BearerToken::new("CANARY-incoming"), ["s"]).with_claims("{}");
    assert!(!format!("{r:?}").contains("CANARY"));
}

#[tokio::test]
async fn logs_never_carry_secrets_or_tokens() {
    use tracing_subscriber::fmt::MakeWriter;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(buf.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mock = Mock::new(|_| Ok(error(401, json!({"error": "invalid_client", "error_codes": [7000215]}), None)))
        .then(Ok(error(500, json!({"error": "server_error"}), None)));
    let incoming = user_token("CANARY-user");
    let e = client(&mock).acquire_on_behalf_of(&incoming, &["api://d/Data.Read"]).await.unwrap_err();
    assert!(e.entra().unwrap().is_client_rejected());
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("rejected this application's credential"), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(!logs.contains(incoming.secret().split('.').nth(1).unwrap()), "{logs}");
}

/// The token endpoint's answer goes through the same expiry normaliser as managed identity:
/// `expires_on` date-times and, failing all else, the token's own `exp`; errors name the
/// token endpoint.
#[tokio::test]
async fn token_endpoint_expiry_shapes() {
    let in_an_hour = now_secs() + 3600;
    let exp_only = jwt(json!({"exp": in_an_hour})).secret().to_owned();
    for body in [
        json!({"token_type": "Bearer", "access_token": "t", "expires_on": crate::client::expiry::format_date_time(in_an_hour, false)}),
        json!({"token_type": "Bearer", "access_token": "t", "expires_on": crate::client::expiry::format_date_time(in_an_hour, true)}),
        json!({"token_type": "Bearer", "access_token": "t", "expires_on": in_an_hour.to_string()}),
        json!({"token_type": "Bearer", "access_token": exp_only}),
    ] {
        let answer = body.to_string().into_bytes();
        let mock = Mock::new(move |_| Ok(http::Response::new(answer.clone())));
        let t = client(&mock).acquire_app_token(&["api://a/.default"]).await.unwrap_or_else(|e| panic!("{body}: {e}"));
        let left = t.expires_at().duration_since(std::time::SystemTime::now()).unwrap().as_secs();
        assert!((3590..=3600).contains(&left), "{body}: {left}");
    }
    let mock = Mock::new(|_| Ok(http::Response::new(br#"{"access_token":"opaque","expires_on":"later"}"#.to_vec())));
    let e = client(&mock).acquire_app_token(&["api://a/.default"]).await.unwrap_err();
    assert!(matches!(e, TokenError::Parse { endpoint: IdentityEndpoint::TokenEndpoint, .. }), "{e:?}");
    assert!(e.to_string().starts_with("the token endpoint answered HTTP 200"), "{e}");
}

/// The cache key is unambiguous: no two different requests share one, whatever bytes their
/// parts hold (a scope with a 0 byte shared the key of two scopes when parts ended with 0).
#[test]
fn cache_keys_of_different_requests_differ() {
    let key = |endpoint: &str, client: &str, subject: Option<&[u8]>, scopes: &[&str]| {
        cache_key(endpoint, client, subject, scopes)
    };
    let base = key("https://e/token", "c", Some(b"s"), &["a", "b"]);
    assert_eq!(base, key("https://e/token", "c", Some(b"s"), &["b", "a", "a"]), "order and repeats do not matter");
    for other in [
        key("https://e/token", "c", Some(b"s"), &["a\0b"]),
        key("https://e/token", "c", Some(b"s"), &["ab"]),
        key("https://e/token", "c", Some(b"s"), &["a"]),
        key("https://e/token", "c", Some(b"sa"), &["b"]),
        key("https://e/token", "cs", None, &["a", "b"]),
        key("https://e/token\0c", "", Some(b"s"), &["a", "b"]),
        key("https://e/token", "c", None, &["a", "b"]),
    ] {
        assert_ne!(base, other);
    }
    assert_ne!(key("e", "c", None, &["a\0b"]), key("e", "c", None, &["a", "b"]));
}
