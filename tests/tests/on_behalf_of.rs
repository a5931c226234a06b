//! On-behalf-of through the axum extractors, end to end over real sockets: identity flows,
//! caches, every error answer, continuous access evaluation, app tokens, and logs.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use azad_axum::{AppToken, AzureAdAuth, Claims, DownstreamError, OnBehalfOf, require_role, require_scope};
use azad_core::ClientCredential;
use azad_core::TokenClient;
use azad_examples::on_behalf_of::{self, DownstreamUrl};
use azad_tests::{CapturedLogs, DevTenant, Endpoint, Fault, http, serve};
use base64::Engine;

const ACRS_CHALLENGE: &str = r#"{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}"#;

/// A downstream route that requires authentication context `c1` and answers a CAE-style claims
/// challenge otherwise.
async fn sensitive(claims: Claims) -> axum::response::Response {
    if claims.acrs().iter().any(|a| a == "c1") {
        return format!("sensitive data for {}", claims.object_id().unwrap_or_default()).into_response();
    }
    let claims = base64::engine::general_purpose::STANDARD.encode(ACRS_CHALLENGE);
    let challenge = format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{claims}""#
    );
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).unwrap());
    r
}

/// A claims challenge built to break out of a quoted-string: quotes, commas, a forged `error`.
const HOSTILE_CHALLENGE: &str = r#"{"access_token":{"acrs":{"essential":true,"values":["x\", error=\"invalid_request\", scope=\"admin"]}},"x":"\", realm=\"evil\" ,error=x"}"#;

/// A downstream route that always answers a claims challenge, a hostile one.
async fn hostile() -> axum::response::Response {
    let claims = base64::engine::general_purpose::STANDARD.encode(HOSTILE_CHALLENGE);
    let challenge = format!(r#"Bearer error="insufficient_claims", claims="{claims}""#);
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).unwrap());
    r
}

/// A downstream report for applications that wants authentication context `c1` in the token
/// and answers a claims challenge for it otherwise: the dev tenant puts `c1` in `acrs` only
/// when the token request carries the challenge, so a retry that merely refreshed the token
/// would be refused again.
async fn challenging_report(claims: Claims) -> axum::response::Response {
    if claims.acrs().iter().any(|a| a == "c1") {
        return axum::Json(serde_json::json!({ "app": claims.azp(), "app_only": claims.is_app_only() }))
            .into_response();
    }
    let claims = base64::engine::general_purpose::STANDARD.encode(ACRS_CHALLENGE);
    let challenge = format!(r#"Bearer error="insufficient_claims", claims="{claims}""#);
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).unwrap());
    r
}

/// Calls a downstream path as the application; answers the downstream's body, or the error.
async fn call_as_app(app: &AppToken, url: String) -> Result<axum::response::Response, DownstreamError> {
    let r = app.call(reqwest::Client::new().get(url), &[on_behalf_of::DOWNSTREAM_DEFAULT]).await?;
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    Ok((status, r.bytes().await.unwrap_or_default()).into_response())
}

#[require_role("Admin")]
async fn call_challenging_report_as_app(
    app: AppToken,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<axum::response::Response, DownstreamError> {
    call_as_app(&app, format!("{base}/api/challenging-report")).await
}

#[require_role("Admin")]
async fn call_hostile_as_app(
    app: AppToken,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<axum::response::Response, DownstreamError> {
    call_as_app(&app, format!("{base}/api/hostile")).await
}

#[require_scope("access_as_user")]
async fn call_hostile(
    obo: OnBehalfOf,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<String, DownstreamError> {
    let r =
        obo.call(reqwest::Client::new().get(format!("{base}/api/hostile")), &[on_behalf_of::DOWNSTREAM_SCOPE]).await?;
    Ok(r.text().await.unwrap_or_default())
}

#[require_scope("access_as_user")]
async fn call_sensitive(
    obo: OnBehalfOf,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<String, DownstreamError> {
    let r = obo
        .call(reqwest::Client::new().get(format!("{base}/api/sensitive")), &[on_behalf_of::DOWNSTREAM_SCOPE])
        .await?;
    Ok(r.text().await.unwrap_or_default())
}

/// Calls the downstream API for a user holding the app role `Admin` (no scope required).
#[require_role("Admin")]
async fn call_as_role_holder(
    obo: OnBehalfOf,
    Extension(DownstreamUrl(base)): Extension<DownstreamUrl>,
) -> Result<axum::Json<serde_json::Value>, DownstreamError> {
    let r = obo.call(reqwest::Client::new().get(format!("{base}/api/data")), &[on_behalf_of::DOWNSTREAM_SCOPE]).await?;
    Ok(axum::Json(r.json().await.unwrap_or_default()))
}

struct Stack {
    dev: DevTenant,
    api: SocketAddr,
}

async fn stack_with(dev: DevTenant, client: TokenClient) -> Stack {
    let downstream_auth = AzureAdAuth::new(on_behalf_of::downstream_config(&dev));
    let downstream = Router::new()
        .route("/api/sensitive", get(sensitive))
        .route("/api/hostile", get(hostile))
        .route("/api/challenging-report", get(challenging_report))
        .route_layer(downstream_auth.clone())
        .merge(on_behalf_of::downstream_router(downstream_auth));
    let downstream = serve(downstream).await;
    let base = format!("http://{downstream}");
    let auth = AzureAdAuth::new(dev.config()).with_token_client(client);
    let extra = Router::new()
        .route("/api/sensitive", get(call_sensitive))
        .route("/api/as-role-holder", get(call_as_role_holder))
        .route("/api/hostile", get(call_hostile))
        .route("/api/challenging-report-as-app", get(call_challenging_report_as_app))
        .route("/api/hostile-as-app", get(call_hostile_as_app))
        .route_layer(auth.clone())
        .layer(Extension(DownstreamUrl(base.as_str().into())));
    let api = serve(on_behalf_of::middle_router(auth, &base).merge(extra)).await;
    Stack { dev, api }
}

async fn stack() -> Stack {
    let dev = DevTenant::start().await.unwrap();
    let client = on_behalf_of::dev_token_client(&dev);
    stack_with(dev, client).await
}

async fn get_as(s: &Stack, path: &str, token: &str) -> reqwest::Response {
    http().get(format!("http://{}{path}", s.api)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn the_users_identity_flows_downstream_and_is_cached() {
    let s = stack().await;
    let user = s.dev.token().build();
    let res = get_as(&s, "/api/downstream", &user).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["downstream_status"], 200);
    assert_eq!(body["downstream"]["oid"], s.dev.users()[0].oid.as_str());
    assert_eq!(body["downstream"]["oid"], body["caller"]["oid"]);
    assert_eq!(body["downstream"]["scp"], "Data.Read");
    assert_eq!(body["downstream"]["azp"], s.dev.api_client_id(), "the API is the client downstream");
    assert_eq!(s.dev.requests(Endpoint::Token), 1);
    // The same user token again: the cached on-behalf-of token, no new exchange.
    assert_eq!(get_as(&s, "/api/downstream", &user).await.status(), 200);
    assert_eq!(s.dev.requests(Endpoint::Token), 1);
    // Another user: another exchange, and the downstream sees that user.
    let bob = azad_core::dev::DevUser::new("Bob Builder", "bob@azaddev.onmicrosoft.com");
    let res = get_as(&s, "/api/downstream", &s.dev.token().user(&bob).build()).await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["downstream"]["oid"], bob.oid.as_str());
    assert_eq!(s.dev.requests(Endpoint::Token), 2);
}

#[tokio::test]
async fn a_user_with_app_roles_and_no_scp_is_not_refused_as_app_only() {
    // Delegated: no `idtyp`, a pairwise `sub`. Its roles are the user's; on-behalf-of acts for
    // the user (the API's client and the dev token endpoint alike).
    let s = stack().await;
    let user = s.dev.token().scopes(Vec::<String>::new()).roles(["Admin"]).build();
    let res = get_as(&s, "/api/as-role-holder", &user).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["oid"], s.dev.users()[0].oid.as_str());
    assert_eq!(s.dev.requests(Endpoint::Token), 1);
}

#[tokio::test]
async fn app_tokens_for_handlers_calling_as_the_application() {
    let s = stack().await;
    let app = s.dev.token().app_only().roles(["Admin"]).build();
    let res = get_as(&s, "/api/downstream-report", &app).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["app_only"], true);
    assert_eq!(body["app"], s.dev.api_client_id());
}

/// A claims challenge on an app token: `AppToken::call` asks for a new token carrying the
/// challenge (past the cache) and retries once; the new token then serves later calls. The old
/// `AppToken::call` handed the 401 back as the downstream's answer.
#[tokio::test]
async fn an_app_tokens_claims_challenge_is_answered_with_a_new_token() {
    let s = stack().await;
    let app = s.dev.token().app_only().roles(["Admin"]).build();
    let res = get_as(&s, "/api/challenging-report-as-app", &app).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["app_only"], true);
    assert_eq!(body["app"], s.dev.api_client_id());
    assert_eq!(s.dev.requests(Endpoint::Token), 2, "a second client-credentials request, with the claims");
    // The new token (with `c1`) is the cached one from now on: no third request.
    assert_eq!(get_as(&s, "/api/challenging-report-as-app", &app).await.status(), 200);
    assert_eq!(s.dev.requests(Endpoint::Token), 2);
}

/// A challenge a new app token does not end is this application's problem, not the caller's:
/// 502, and none of the downstream's claims reach the caller (who cannot satisfy them).
#[tokio::test]
async fn a_repeated_claims_challenge_on_an_app_token_is_a_bad_gateway() {
    let s = stack().await;
    let app = s.dev.token().app_only().roles(["Admin"]).build();
    let res = get_as(&s, "/api/hostile-as-app", &app).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none_or(|h| !h.to_str().unwrap().contains("claims")));
    assert_eq!(s.dev.requests(Endpoint::Token), 2, "one retry, then no more");
}

#[tokio::test]
async fn interaction_required_is_surfaced_as_a_claims_challenge() {
    let s = stack().await;
    let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}"#;
    s.dev.inject_times(Endpoint::Token, Fault::InteractionRequired { claims: claims.into() }, 1);
    let res = get_as(&s, "/api/downstream", &s.dev.token().build()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let expected = base64::engine::general_purpose::STANDARD.encode(claims);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(r#"Bearer error="insufficient_claims", claims="{expected}""#).as_str()
    );
}

#[tokio::test]
async fn throttling_invalid_grant_and_our_own_credential() {
    let s = stack().await;
    s.dev.inject_times(Endpoint::Token, Fault::TooManyRequests { retry_after: 12 }, 1);
    let user = s.dev.token().build();
    let res = get_as(&s, "/api/downstream", &user).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "12");
    let res = get_as(&s, "/api/downstream", &user).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "throttled locally");
    assert_eq!(s.dev.requests(Endpoint::Token), 1);

    s.dev.inject_times(Endpoint::Token, Fault::InvalidGrant, 1);
    assert_eq!(get_as(&s, "/api/downstream", &s.dev.token().build()).await.status(), StatusCode::BAD_GATEWAY);

    let dev = DevTenant::start().await.unwrap();
    let wrong = TokenClient::new(&dev.config(), ClientCredential::secret("wrong-secret".to_owned()));
    let s = stack_with(dev, wrong).await;
    let res = get_as(&s, "/api/downstream", &s.dev.token().build()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn continuous_access_evaluation_retries_with_the_claims_challenge() {
    let s = stack().await;
    let user = s.dev.token().build();
    let res = get_as(&s, "/api/sensitive", &user).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), format!("sensitive data for {}", s.dev.users()[0].oid));
    assert_eq!(s.dev.requests(Endpoint::Token), 2, "a second exchange, with the claims challenge");

    // When Entra cannot satisfy the challenge without the user, the caller gets it: the first
    // token comes from the cache, the exchange with the claims answers interaction_required.
    let s = stack().await;
    let user = s.dev.token().build();
    assert_eq!(get_as(&s, "/api/downstream", &user).await.status(), 200);
    s.dev.inject_times(Endpoint::Token, Fault::InteractionRequired { claims: ACRS_CHALLENGE.into() }, 1);
    let res = get_as(&s, "/api/sensitive", &user).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_claims", claims=""#));
}

/// A downstream that answers a claims challenge twice: the caller gets it as a well-formed
/// RFC 6750 challenge with the claims base64-encoded, and nothing the downstream put in the
/// claims can add parameters to this API's challenge.
#[tokio::test]
async fn a_repeated_downstream_claims_challenge_is_passed_on_encoded_and_cannot_inject() {
    let s = stack().await;
    let res = get_as(&s, "/api/hostile", &s.dev.token().build()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let header = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let expected = base64::engine::general_purpose::STANDARD.encode(HOSTILE_CHALLENGE);
    assert_eq!(header, format!(r#"Bearer error="insufficient_claims", claims="{expected}""#));
    let challenges = azad_core::challenge::parse_www_authenticate(&header).unwrap();
    assert_eq!(challenges.len(), 1);
    let names: Vec<_> = challenges[0].params().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["error", "claims"], "{header}");
    let parsed = azad_core::Challenge::parse(StatusCode::UNAUTHORIZED, &header).unwrap().unwrap();
    assert_eq!(parsed.claims(), Some(HOSTILE_CHALLENGE));
    assert_eq!(parsed.error(), Some("insufficient_claims"));
}

/// A downstream's absurd `Retry-After` reaches the caller capped, like the local throttle.
#[tokio::test]
async fn a_token_endpoints_absurd_retry_after_is_capped() {
    let s = stack().await;
    s.dev.inject_times(Endpoint::Token, Fault::TooManyRequests { retry_after: u64::MAX }, 1);
    let res = get_as(&s, "/api/downstream", &s.dev.token().build()).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "60");
}

#[tokio::test]
async fn without_a_token_client_the_extractor_names_the_fix() {
    let dev = DevTenant::start().await.unwrap();
    let app = on_behalf_of::middle_router(AzureAdAuth::new(dev.config()), "http://127.0.0.1:9");
    let addr = serve(app).await;
    let res =
        http().get(format!("http://{addr}/api/downstream")).bearer_auth(dev.token().build()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.text().await.unwrap().contains("with_token_client"));
}

#[test]
fn logs_never_carry_tokens_or_secrets() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (user, secret) = rt.block_on(async {
        let s = stack().await;
        let user = s.dev.token().build();
        assert_eq!(get_as(&s, "/api/downstream", &user).await.status(), 200);
        assert_eq!(get_as(&s, "/api/sensitive", &user).await.status(), 200);
        s.dev.inject_times(Endpoint::Token, Fault::InvalidGrant, 1);
        let other = s.dev.token().build();
        assert_eq!(get_as(&s, "/api/downstream", &other).await.status(), 502);
        (user, s.dev.api_client_secret())
    });
    let text = logs.text();
    assert!(text.contains("token request failed"), "failures are logged:\n{text}");
    assert!(!text.contains(&secret));
    assert!(!text.contains(user.split('.').nth(2).unwrap()));
    assert!(!text.contains(user.split('.').nth(1).unwrap()));
}
