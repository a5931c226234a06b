//! The axum side over real sockets: extractors, optional mode, missing layers, route groups,
//! guards that run before the body is read, and what reaches the logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::routing::{get, post};
use azad_axum::{
    Authentication, AzureAdAuth, Claims, Require, require_authenticated, require_role, require_scope,
    require_scope_or_app_permission,
};
use azad_tests::{CapturedLogs, DevTenant, http, serve};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn whoami(claims: Option<Claims>) -> String {
    match claims {
        Some(c) => c.name().unwrap_or_default().to_owned(),
        None => "anonymous".to_owned(),
    }
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let dev = DevTenant::start().await.unwrap();
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/strict", get(|c: Claims| async move { c.name().unwrap_or_default().to_owned() }))
        .layer(AzureAdAuth::new(dev.config()).optional(true));
    let base = format!("http://{}", serve(app).await);
    let res = http().get(format!("{base}/whoami")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "anonymous");
    let res = http().get(format!("{base}/whoami")).bearer_auth(dev.token().build()).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "Dev User");
    let res = http().get(format!("{base}/whoami")).bearer_auth(dev.token().expired().build()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a bad token is still refused");
    let res = http().get(format!("{base}/whoami")).header("authorization", "Bearer a b").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A handler that needs claims answers 401 to an anonymous request.
    let res = http().get(format!("{base}/strict")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
}

static GUARDED_BODY_RAN: AtomicBool = AtomicBool::new(false);

#[require_scope("access_as_user")]
async fn guarded_without_layer() -> &'static str {
    GUARDED_BODY_RAN.store(true, Ordering::SeqCst);
    "should never run"
}

#[tokio::test]
async fn without_the_layer_everything_fails_closed() {
    let app = Router::new()
        .route("/claims", get(|c: Claims| async move { c.issuer().to_owned() }))
        .route("/maybe", get(whoami))
        .route("/guarded", get(guarded_without_layer));
    let base = format!("http://{}", serve(app).await);
    for path in ["/claims", "/maybe", "/guarded"] {
        let res = http()
            .get(format!("{base}{path}"))
            .header("authorization", "Bearer forged.token.here")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("AzureAdAuth"), "{path}: the message names the layer: {body}");
    }
    assert!(!GUARDED_BODY_RAN.load(Ordering::SeqCst));
}

/// A body extractor that records whether it was ever asked for the body.
struct RecordingBody;

#[derive(Clone, Default)]
struct BodyRead(Arc<AtomicBool>);

impl FromRequest<BodyRead> for RecordingBody {
    type Rejection = StatusCode;

    async fn from_request(req: Request, state: &BodyRead) -> Result<Self, Self::Rejection> {
        state.0.store(true, Ordering::SeqCst);
        let _ = axum::body::to_bytes(req.into_body(), 1 << 20).await;
        Ok(Self)
    }
}

#[require_scope("Files.Write")]
async fn upload(State(_): State<BodyRead>, _body: RecordingBody) -> &'static str {
    "stored"
}

#[tokio::test]
async fn a_forbidden_request_never_reads_its_body() {
    let dev = DevTenant::start().await.unwrap();
    let read = BodyRead::default();
    let app =
        Router::new().route("/upload", post(upload)).with_state(read.clone()).layer(AzureAdAuth::new(dev.config()));
    let addr = serve(app).await;
    let token = dev.token().scopes(["access_as_user"]).build();
    // Announce a large body and send none of it: a server that tried to read it would hang.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains(r#"insufficient_scope", scope="Files.Write""#), "{response}");
    assert!(!read.0.load(Ordering::SeqCst), "the body extractor never ran");

    // With the scope, the body is read.
    let token = dev.token().scopes(["Files.Write"]).build();
    let res = http().post(format!("http://{addr}/upload")).bearer_auth(token).body("data").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(read.0.load(Ordering::SeqCst));
}

#[require_scope(all("Tasks.Read", "Tasks.Write"))]
async fn both() -> &'static str {
    "both"
}

#[require_role("Admin", "Owner")]
async fn any_role() -> &'static str {
    "role"
}

#[require_scope_or_app_permission(scopes = ["Tasks.Read"], app_permissions = ["Tasks.Read.All"])]
async fn tasks(claims: Claims) -> String {
    if claims.is_app_only() { "app".into() } else { "user".into() }
}

#[tokio::test]
async fn attribute_variants() {
    let dev = DevTenant::start().await.unwrap();
    let app = Router::new()
        .route("/both", get(both))
        .route("/role", get(any_role))
        .route("/tasks", get(tasks))
        .layer(AzureAdAuth::new(dev.config()));
    let base = format!("http://{}", serve(app).await);
    let get = |path: &'static str, token: String| {
        let url = format!("{base}{path}");
        async move { http().get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(get("/both", dev.token().scopes(["Tasks.Read", "Tasks.Write"]).build()).await.status(), 200);
    let res = get("/both", dev.token().scopes(["Tasks.Read"]).build()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="Tasks.Read Tasks.Write""#
    );
    assert_eq!(get("/role", dev.token().app_only().roles(["Owner"]).build()).await.status(), 200);
    assert_eq!(get("/role", dev.token().app_only().roles(["Reader"]).build()).await.status(), 403);
    let res = get("/tasks", dev.token().scopes(["Tasks.Read"]).build()).await;
    assert_eq!(res.text().await.unwrap(), "user");
    let res = get("/tasks", dev.token().app_only().roles(["Tasks.Read.All"]).build()).await;
    assert_eq!(res.text().await.unwrap(), "app");
    // Never interchangeable: a user's app role is no scope, an app's scope is no permission.
    assert_eq!(get("/tasks", dev.token().scopes(["User.Read"]).roles(["Tasks.Read.All"]).build()).await.status(), 403);
    assert_eq!(
        get("/tasks", dev.token().app_only().roles(["Other"]).claim("scp", "Tasks.Read").build()).await.status(),
        403
    );
}

#[tokio::test]
async fn route_group_layers() {
    let dev = DevTenant::start().await.unwrap();
    let reports = Router::new()
        .route("/reports", get(|| async { "reports" }))
        .route_layer(Require::scope_or_app_permission(["Reports.Read"], ["Reports.Read.All"]));
    let admin = Router::new().route("/admin", get(|| async { "admin" })).route_layer(Require::any_role(["Admin"]));
    let write = Router::new()
        .route("/write", get(|| async { "write" }))
        .route_layer(Require::all_scopes(["Files.Read", "Files.Write"]).verbose());
    let app = Router::new().merge(reports).merge(admin).merge(write).layer(AzureAdAuth::new(dev.config()));
    let base = format!("http://{}", serve(app).await);
    let status = |path: &'static str, token: String| {
        let url = format!("{base}{path}");
        async move { http().get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(status("/reports", dev.token().scopes(["Reports.Read"]).build()).await.status(), 200);
    assert_eq!(status("/reports", dev.token().app_only().roles(["Reports.Read.All"]).build()).await.status(), 200);
    assert_eq!(status("/reports", dev.token().app_only().roles(["Reports.Read"]).build()).await.status(), 403);
    assert_eq!(status("/admin", dev.token().roles(["Admin"]).build()).await.status(), 200);
    assert_eq!(status("/admin", dev.token().build()).await.status(), 403);
    let res = status("/write", dev.token().scopes(["Files.Read"]).build()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", error_description="The access token does not carry the required scope", scope="Files.Read Files.Write""#
    );
    // Without any token the AzureAdAuth layer answers first.
    assert_eq!(http().get(format!("{base}/admin")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_raw_token_is_kept_redacted_for_on_behalf_of() {
    let dev = DevTenant::start().await.unwrap();
    let app = Router::new()
        .route(
            "/token",
            get(|req: Request| async move {
                let token = Authentication::of(req.extensions()).unwrap().token().expect("the layer stores the token");
                format!("{}|{token:?}", token.secret().len())
            }),
        )
        .layer(AzureAdAuth::new(dev.config()));
    let base = format!("http://{}", serve(app).await);
    let token = dev.token().build();
    let body = http().get(format!("{base}/token")).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, format!("{}|BearerToken([redacted])", token.len()));
}

/// Serves `/me` behind the layer and calls it twice with one token (a validation, then a hit
/// from the cache); returns the base URL and the token.
async fn me_twice(dev: &DevTenant) -> (String, String) {
    let app = Router::new().route("/me", get(whoami)).layer(AzureAdAuth::new(dev.config()));
    let base = format!("http://{}", serve(app).await);
    let token = dev.token().build();
    for _ in 0..2 {
        assert_eq!(http().get(format!("{base}/me")).bearer_auth(&token).send().await.unwrap().status(), 200);
    }
    (base, token)
}

#[test]
fn logs_name_the_principal_and_never_the_token() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (token, rejected, dev_tid, oid) = rt.block_on(async {
        let dev = DevTenant::start().await.unwrap();
        let (base, token) = me_twice(&dev).await;
        let rejected = dev.token().audience("https://graph.microsoft.com").build();
        assert_eq!(http().get(format!("{base}/me")).bearer_auth(&rejected).send().await.unwrap().status(), 401);
        (token, rejected, dev.tenant_id().to_owned(), dev.users()[0].oid.clone())
    });
    let text = logs.text();
    assert!(text.contains(&format!("tid=\"{dev_tid}\"")), "the span records tid:\n{text}");
    assert!(text.contains(&format!("oid=\"{oid}\"")), "the span records oid");
    assert!(text.contains("azp="), "the span records azp");
    assert!(text.contains("Microsoft Graph"), "the rejection is diagnosed");
    for secret in [&token, &rejected] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token reached the logs");
        let payload = secret.split('.').nth(1).unwrap();
        assert!(!text.contains(payload), "a token reached the logs");
    }
}

/// The layer's `azad_auth` span reaches a subscriber that keeps it by name (the layer skips
/// building it only when the global level keeps nothing at DEBUG), and only such a one.
#[test]
fn a_filter_by_span_name_keeps_the_layers_span() {
    for (filter, kept) in [("info,[azad_auth]=debug", true), ("info", false)] {
        let logs = CapturedLogs::default();
        let _guard = tracing::subscriber::set_default(logs.filtered_subscriber(filter));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let oid = rt.block_on(async {
            let dev = DevTenant::start().await.unwrap();
            me_twice(&dev).await;
            dev.users()[0].oid.clone()
        });
        let text = logs.text();
        let span = text.lines().any(|l| l.contains("azad_auth") && l.contains(&format!("oid=\"{oid}\"")));
        assert_eq!(span, kept, "{filter}: {text}");
    }
}

#[require_authenticated]
async fn authenticated_only() -> &'static str {
    "ok"
}

/// One answer for one situation: an anonymous request behind an optional layer gets the same
/// status, challenge and body from the `Claims` extractor and from an attribute guard, terse or
/// verbose alike.
#[tokio::test]
async fn the_extractor_and_a_guard_answer_an_anonymous_request_alike() {
    let dev = DevTenant::start().await.unwrap();
    for verbose in [false, true] {
        let auth = AzureAdAuth::new(dev.config()).optional(true);
        let router = Router::new()
            .route("/claims", get(|c: Claims| async move { c.issuer().to_owned() }))
            .route("/guarded", get(authenticated_only));
        let app = if verbose { router.layer(auth.verbose()) } else { router.layer(auth) };
        let base = format!("http://{}", serve(app).await);
        let mut answers = Vec::new();
        for path in ["/claims", "/guarded"] {
            let res = http().get(format!("{base}{path}")).send().await.unwrap();
            let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
            answers.push((res.status(), challenge, res.text().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "verbose: {verbose}");
        assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
        assert_eq!(answers[0].1, "Bearer");
    }
}

/// Terse or verbose is decided once, on the layer, and an attribute guard follows it: the
/// terse layer's guard sends no `error_description` and the terse body, the verbose layer's
/// guard sends both the description and the same text as its body.
#[tokio::test]
async fn attribute_guards_answer_as_verbosely_as_the_layer() {
    let dev = DevTenant::start().await.unwrap();
    let token = dev.token().scopes(["Tasks.Read"]).build();
    let terse = Router::new().route("/both", get(both)).layer(AzureAdAuth::new(dev.config()));
    let verbose = Router::new().route("/both", get(both)).layer(AzureAdAuth::new(dev.config()).verbose());
    let terse = format!("http://{}", serve(terse).await);
    let verbose = format!("http://{}", serve(verbose).await);

    let res = http().get(format!("{terse}/both")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="Tasks.Read Tasks.Write""#
    );
    assert_eq!(res.text().await.unwrap(), "Permission denied");

    let res = http().get(format!("{verbose}/both")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let header = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let challenge = azad_core::Challenge::parse(StatusCode::FORBIDDEN, &header).unwrap().unwrap();
    let description = challenge.error_description().expect("a verbose layer's guard describes the failure").to_owned();
    assert_eq!(res.text().await.unwrap(), description);
}
