//! Authorisation beyond scopes, end to end through the dev tenant: groups (with the overage
//! resolved through its Microsoft Graph emulation), step-up with an authentication context,
//! caller and tenant allow-lists, guests, client capabilities, and the deny-by-default router,
//! on HTTP (axum) and gRPC (tonic).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use azad_axum::routing::{AuthorizedRouter, get as declared_get, post as declared_post};
use azad_axum::{
    AzureAdAuth, Require, allow_anonymous, deny_guests, handler, require_auth_context, require_authenticated,
    require_caller_app, require_group, require_role, require_scope, require_tenant,
};
use azad_core::ClientCredential;
use azad_core::challenge::Challenge;
use azad_core::dev::{DEFAULT_TENANT_ID, DevApp};
use azad_core::groups::{GraphAccess, GraphFailure, GroupResolver, ManualClock};
use azad_core::{BearerToken, TokenClient, TokenRequest, TokenValidator};
use azad_tests::{CapturedLogs, DevTenant, Endpoint, Fault, http, serve};
use serde_json::Value;

const ADMINS: &str = "0b5c2f1e-1111-4a2b-8c3d-4e5f6a7b8c9d";
const READERS: &str = "7e6d5c4b-2222-4a2b-8c3d-4e5f6a7b8c9d";

#[require_group("0b5c2f1e-1111-4a2b-8c3d-4e5f6a7b8c9d")]
async fn admin_area() -> &'static str {
    "admins only"
}

#[require_group(all("0b5c2f1e-1111-4a2b-8c3d-4e5f6a7b8c9d", "7e6d5c4b-2222-4a2b-8c3d-4e5f6a7b8c9d"))]
async fn both_groups() -> &'static str {
    "both"
}

#[require_scope("access_as_user")]
#[require_auth_context("c1")]
async fn transfer() -> &'static str {
    "transferred"
}

#[require_caller_app("c0ffee00-0000-4000-8000-0000000c11e7")]
async fn only_our_client() -> &'static str {
    "hello, client"
}

#[require_tenant("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f")]
async fn only_our_tenant() -> &'static str {
    "hello, colleague"
}

#[deny_guests]
async fn members_only() -> &'static str {
    "members"
}

fn resolver(dev: &DevTenant) -> GroupResolver {
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    GroupResolver::new(&dev.config(), client).with_graph_base_url(dev.graph_base_url())
}

fn app(dev: &DevTenant, resolver: GroupResolver) -> Router {
    Router::new()
        .route("/admin", get(admin_area))
        .route("/both", get(both_groups))
        .route("/transfer", get(transfer))
        .route("/client", get(only_our_client))
        .route("/tenant", get(only_our_tenant))
        .route("/members", get(members_only))
        .merge(Router::new().route("/readers", get(|| async { "readers" })).route_layer(Require::any_group([READERS])))
        .merge(
            Router::new()
                .route("/other-tenant", get(|| async { "x" }))
                .route_layer(Require::tenant(["11111111-2222-4333-8444-555555555555"])),
        )
        .layer(AzureAdAuth::new(dev.config()).with_group_resolver(resolver))
}

async fn call(addr: SocketAddr, path: &str, token: &str) -> reqwest::Response {
    http().get(format!("http://{addr}{path}")).bearer_auth(token).send().await.unwrap()
}

fn challenge(r: &reqwest::Response) -> Challenge {
    Challenge::from_response_parts(r.status(), r.headers()).expect("a Bearer challenge")
}

#[tokio::test]
async fn groups_claim_decides_without_graph() {
    let dev = DevTenant::start().await.unwrap();
    let addr = serve(app(&dev, resolver(&dev))).await;
    let admin = dev.token().groups([ADMINS]).build();
    assert_eq!(call(addr, "/admin", &admin).await.status(), 200);
    let r = call(addr, "/both", &admin).await;
    assert_eq!(r.status(), 403);
    assert_eq!(challenge(&r).error(), Some("insufficient_scope"));
    assert!(challenge(&r).scope().is_empty(), "no scope would help");
    let both = dev.token().groups([READERS.to_uppercase(), ADMINS.to_owned()]).build();
    assert_eq!(call(addr, "/both", &both).await.status(), 200, "object ids match case-insensitively");
    assert_eq!(call(addr, "/readers", &both).await.status(), 200, "the route-group layer");
    let nobody = dev.token().build();
    assert_eq!(call(addr, "/admin", &nobody).await.status(), 403);
    assert_eq!(call(addr, "/readers", &nobody).await.status(), 403);
    assert_eq!(dev.requests(Endpoint::Graph), 0);
}

#[tokio::test]
async fn overage_is_resolved_through_graph_on_behalf_of_the_user_and_cached() {
    let dev = DevTenant::start().await.unwrap();
    let user = dev.users()[0].clone();
    // A user in more groups than fit in a token.
    for i in 0..250 {
        dev.add_group_member(&format!("00000000-0000-4000-8000-{i:012}"), &user.oid);
    }
    dev.add_group_member(ADMINS, &user.oid);
    let addr = serve(app(&dev, resolver(&dev))).await;

    let token = dev.token().directory_groups().build();
    let claims = TokenValidator::new(dev.config()).validate(&token).await.unwrap();
    assert!(claims.groups().is_empty() && azad_core::groups::has_group_overage(&claims));
    assert_eq!(claims.get("_claim_names").unwrap()["groups"], "src1");

    assert_eq!(call(addr, "/admin", &token).await.status(), 200);
    assert_eq!(dev.requests(Endpoint::Graph), 1);
    // The answer is cached per (tenant, user): a new token of the same user asks nothing.
    let again = dev.token().group_overage().build();
    assert_eq!(call(addr, "/admin", &again).await.status(), 200);
    assert_eq!(dev.requests(Endpoint::Graph), 1);
    // Not a member: asked once, then refused.
    let r = call(addr, "/readers", &again).await;
    assert_eq!(r.status(), 403);
    assert_eq!(dev.requests(Endpoint::Graph), 2);
    // The implicit flow's form.
    let hasgroups = dev.token().hasgroups().build();
    assert_eq!(call(addr, "/admin", &hasgroups).await.status(), 200);
    // An application's token with an overage has no user to check on behalf of: 403, no retry.
    let graph_calls = dev.requests(Endpoint::Graph);
    let app = dev.token().app_only().roles(["Tasks.Read.All"]).group_overage().build();
    assert_eq!(call(addr, "/admin", &app).await.status(), 403);
    assert_eq!(dev.requests(Endpoint::Graph), graph_calls);
}

#[tokio::test]
async fn overage_with_an_app_token_and_the_token_endpoint_url_is_never_followed() {
    let dev = DevTenant::start().await.unwrap();
    let user = dev.users()[0].clone();
    dev.add_group_member(READERS, &user.oid);
    // An attacker-chosen endpoint in the token: a server that counts what it receives.
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let evil = serve(Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { axum::Json(serde_json::json!({"value": [ADMINS]})) }
    }))
    .await;
    let app_mode = resolver(&dev).with_access(GraphAccess::Application);
    let addr = serve(app(&dev, app_mode)).await;
    let token = dev
        .token()
        .group_overage()
        .claim(
            "_claim_sources",
            serde_json::json!({"src1": {"endpoint": format!("http://{evil}/v1.0/me/checkMemberGroups")}}),
        )
        .build();
    assert_eq!(call(addr, "/readers", &token).await.status(), 200);
    assert_eq!(call(addr, "/admin", &token).await.status(), 403, "the evil endpoint's answer is never used");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(dev.requests(Endpoint::Graph), 2);
}

#[tokio::test]
async fn graph_down_or_throttled_never_allows() {
    let dev = DevTenant::start().await.unwrap();
    let user = dev.users()[0].clone();
    dev.add_group_member(ADMINS, &user.oid);
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let addr = serve(app(&dev, resolver(&dev))).await;
    let token = dev.token().group_overage().build();

    // Throttled, through the control route another process would use.
    let form = [("endpoint", "graph"), ("fault", "too_many_requests"), ("retry_after", "7"), ("times", "1")];
    let injected = http().post(format!("{}/_azad/faults", dev.base_url())).form(&form).send().await.unwrap();
    assert_eq!(injected.status(), 200);
    let r = call(addr, "/admin", &token).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    // A 5xx.
    dev.inject_times(Endpoint::Graph, Fault::Status(500), 1);
    let r = call(addr, "/admin", &token).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    // The cause is logged once per outage.
    let text = logs.text();
    assert_eq!(text.matches("group membership could not be checked").count(), 1, "{text}");
    assert!(text.contains("HTTP 429"), "{text}");
    // Graph answers again: allowed, and the recovery is logged.
    assert_eq!(call(addr, "/admin", &token).await.status(), 200);
    assert!(logs.text().contains("Microsoft Graph answers membership checks again"));

    // Fail closed with 403 when so configured.
    let closed = serve(app(&dev, resolver(&dev).on_failure(GraphFailure::Forbidden))).await;
    dev.inject_times(Endpoint::Graph, Fault::Unavailable { retry_after: 3 }, 1);
    let r = call(closed, "/admin", &token).await;
    assert_eq!(r.status(), 403);
    assert_eq!(challenge(&r).error(), Some("insufficient_scope"));
}

#[tokio::test]
async fn a_stale_group_cache_expires() {
    let dev = DevTenant::start().await.unwrap();
    let user = dev.users()[0].clone();
    dev.add_group_member(ADMINS, &user.oid);
    let clock = ManualClock::new();
    let resolver = resolver(&dev).with_cache_ttl(Duration::from_secs(300)).with_clock(Arc::new(clock.clone()));
    let addr = serve(app(&dev, resolver)).await;
    let token = dev.token().group_overage().build();

    assert_eq!(call(addr, "/admin", &token).await.status(), 200);
    assert!(dev.remove_group_member(ADMINS, &user.oid));
    // Within the TTL the cached answer stands.
    clock.advance(Duration::from_secs(299));
    assert_eq!(call(addr, "/admin", &token).await.status(), 200);
    assert_eq!(dev.requests(Endpoint::Graph), 1);
    // Past it, Graph is asked again and the removal is seen.
    clock.advance(Duration::from_secs(2));
    assert_eq!(call(addr, "/admin", &token).await.status(), 403);
    assert_eq!(dev.requests(Endpoint::Graph), 2);
    // Stale again and Graph down: refused, never served from the stale entry.
    dev.add_group_member(ADMINS, &user.oid);
    clock.advance(Duration::from_secs(301));
    dev.inject_times(Endpoint::Graph, Fault::Status(503), 1);
    assert_eq!(call(addr, "/admin", &token).await.status(), 503);
}

#[tokio::test]
async fn an_overage_without_a_resolver_fails_closed() {
    let dev = DevTenant::start().await.unwrap();
    let addr = serve(Router::new().route("/admin", get(admin_area)).layer(AzureAdAuth::new(dev.config()))).await;
    let r = call(addr, "/admin", &dev.token().group_overage().build()).await;
    assert_eq!(r.status(), 500);
}

/// Signs the user in with the authorization code flow, asking for `claims` (what MSAL does with
/// a claims challenge), and returns the access token for the API.
async fn sign_in(dev: &DevTenant, claims: Option<&str>) -> String {
    let client_id = "5e7f0a1b-4444-4c2d-9e8f-0a1b2c3d4e5f";
    let redirect = "http://localhost:5555/callback";
    dev.register_app(DevApp::new("step-up client").client_id(client_id).redirect_uri(redirect));
    let secret = dev.add_client_secret(client_id);
    let scope = format!("openid api://{}/access_as_user", dev.api_client_id());
    let mut query = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("state", "s"),
    ];
    if let Some(c) = claims {
        query.push(("claims", c));
    }
    let authorize = format!("{}/{}/oauth2/v2.0/authorize", dev.base_url(), dev.tenant_id());
    let r = http().get(reqwest::Url::parse_with_params(&authorize, &query).unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let location = reqwest::Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("client_secret", secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
    ];
    let r = http().post(dev.token_endpoint()).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn step_up_round_trip_challenge_then_token_with_acrs() {
    let dev = DevTenant::start().await.unwrap();
    let addr = serve(app(&dev, resolver(&dev))).await;

    let first = sign_in(&dev, None).await;
    let r = call(addr, "/transfer", &first).await;
    assert_eq!(r.status(), 401);
    let c = challenge(&r);
    assert_eq!(c.error(), Some("insufficient_claims"));
    // Microsoft's documented shape, base64 in the header.
    let header_value = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        header_value
            .contains("claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\"")
    );
    let claims = c.claims().unwrap();
    assert_eq!(claims, r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);

    // The client satisfies it with a new sign-in carrying the claims request.
    let stepped_up = sign_in(&dev, Some(claims)).await;
    let validated = TokenValidator::new(dev.config()).validate(&stepped_up).await.unwrap();
    assert_eq!(validated.acrs(), ["c1"]);
    assert_eq!(call(addr, "/transfer", &stepped_up).await.status(), 200);

    // An app cannot step up: 403, no claims challenge.
    let app = dev.token().app_only().roles(["Tasks.Read.All"]).build();
    let r = call(addr, "/transfer", &app).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn caller_tenant_and_guest_allow_lists() {
    let dev = DevTenant::start().await.unwrap();
    let addr = serve(app(&dev, resolver(&dev))).await;
    let ours = dev.token().build();
    assert_eq!(call(addr, "/client", &ours).await.status(), 200);
    assert_eq!(call(addr, "/client", &dev.token().v1().build()).await.status(), 200, "v1.0 tokens: appid");
    let r = call(addr, "/client", &dev.token().client_app("aaaaaaaa-0000-4000-8000-000000000001").build()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(challenge(&r).error(), Some("insufficient_scope"));

    assert_eq!(call(addr, "/tenant", &ours).await.status(), 200);
    assert_eq!(call(addr, "/other-tenant", &ours).await.status(), 403);

    assert_eq!(call(addr, "/members", &ours).await.status(), 200);
    let own_idp = dev.token().claim("idp", format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")).build();
    assert_eq!(call(addr, "/members", &own_idp).await.status(), 200);
    for guest in [
        dev.token().claim("acct", 1).build(),
        dev.token().claim("idp", "https://sts.windows.net/0e1f2a3b-5555-4c2d-9e8f-0a1b2c3d4e5f/").build(),
        dev.token().claim("idp", "live.com").build(),
    ] {
        let r = call(addr, "/members", &guest).await;
        assert_eq!(r.status(), 403);
        assert_eq!(challenge(&r).error(), Some("insufficient_scope"));
    }
    assert_eq!(
        call(addr, "/members", &dev.token().app_only().roles(["Tasks.Read.All"]).build()).await.status(),
        200,
        "apps are no guests"
    );
}

#[tokio::test]
async fn client_capabilities_are_sent_and_merged_with_claims_challenges() {
    let dev = DevTenant::start().await.unwrap();
    let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()))
        .with_client_capabilities(["cp1"]);
    let decode = |t: &str| -> Value {
        use base64::Engine;
        let payload = t.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let incoming = BearerToken::new(dev.token().build());
    let obo = client.acquire_on_behalf_of(&incoming, &["api://azad-downstream/Data.Read"]).await.unwrap();
    assert_eq!(decode(obo.secret())["xms_cc"], serde_json::json!(["cp1"]));
    let app = client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
    assert_eq!(decode(app.secret())["xms_cc"], serde_json::json!(["cp1"]));
    // A downstream claims challenge: merged with the capabilities.
    let request = TokenRequest::on_behalf_of(incoming, ["api://azad-downstream/Data.Read"])
        .with_claims(r#"{"access_token":{"acrs":{"essential":true,"value":"c2"}}}"#);
    let stepped = client.acquire(request).await.unwrap();
    let c = decode(stepped.secret());
    assert_eq!(c["xms_cc"], serde_json::json!(["cp1"]));
    assert_eq!(c["acrs"], serde_json::json!(["c2"]));
    // Without capabilities, none.
    let plain = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
    let app = plain.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
    assert!(decode(app.secret()).get("xms_cc").is_none());
}

// Deny by default.

#[require_scope("Items.Read")]
async fn list_items() -> &'static str {
    "[]"
}

#[require_role("Items.Write.All")]
#[require_scope("access_as_user")]
async fn create_item() -> StatusCode {
    StatusCode::CREATED
}

#[require_authenticated]
async fn profile() -> &'static str {
    "me"
}

#[allow_anonymous]
async fn health() -> &'static str {
    "ok"
}

async fn legacy() -> &'static str {
    "legacy"
}

async fn admin_plain() -> &'static str {
    "admin"
}

fn declared_routes() -> AuthorizedRouter {
    AuthorizedRouter::new()
        .route("/items", declared_get(handler!(list_items)).post(handler!(create_item)))
        .route("/me", declared_get(handler!(profile)))
        .route("/health", declared_get(handler!(health)))
        .nest(
            "/admin",
            AuthorizedRouter::new().route("/stats", declared_get(admin_plain)).require(Require::any_role(["Admin"])),
        )
}

#[tokio::test]
async fn a_route_without_a_requirement_fails_start_up() {
    let error = declared_routes()
        .route("/legacy", declared_get(legacy))
        .route("/upload", declared_post(legacy))
        .into_router()
        .unwrap_err();
    assert_eq!(error.routes(), [("GET".to_owned(), "/legacy".to_owned()), ("POST".to_owned(), "/upload".to_owned())]);
    let text = error.to_string();
    assert!(text.contains("GET /legacy, POST /upload"), "{text}");
    // Listing-only mode lets it start, and lists it as undeclared.
    let routes = declared_routes().route("/legacy", declared_get(legacy)).deny_by_default(false);
    assert!(routes.routes().to_string().contains("UNDECLARED"));
    assert!(routes.into_router().is_ok());
}

#[tokio::test]
async fn a_declared_router_lists_and_enforces_every_route() {
    let dev = DevTenant::start().await.unwrap();
    let routes = declared_routes();
    let table = routes.routes();
    let lines: Vec<(String, String, String)> =
        table.0.iter().map(|r| (r.method.clone(), r.path.clone(), r.describe())).collect();
    assert_eq!(
        lines,
        [
            ("GET".to_owned(), "/items".to_owned(), "scope(any: Items.Read)".to_owned()),
            (
                "POST".to_owned(),
                "/items".to_owned(),
                "role(any: Items.Write.All) + scope(any: access_as_user)".to_owned()
            ),
            ("GET".to_owned(), "/me".to_owned(), "authenticated".to_owned()),
            ("GET".to_owned(), "/health".to_owned(), "public".to_owned()),
            ("GET".to_owned(), "/admin/stats".to_owned(), "role(any: Admin)".to_owned()),
        ]
    );
    assert!(table.to_string().contains("/admin/stats"));
    let logs = CapturedLogs::default();
    let router = {
        let _guard = tracing::subscriber::set_default(logs.subscriber());
        routes.into_router().unwrap()
    };
    assert!(logs.text().contains("GET     /items"), "{}", logs.text());
    let addr = serve(router.layer(AzureAdAuth::new(dev.config()).optional(true))).await;
    let anonymous = |path: &str| http().get(format!("http://{addr}{path}")).send();
    assert_eq!(anonymous("/health").await.unwrap().status(), 200);
    for path in ["/me", "/items", "/admin/stats"] {
        assert_eq!(anonymous(path).await.unwrap().status(), 401, "{path}");
    }
    let user = dev.token().scopes(["access_as_user"]).build();
    assert_eq!(call(addr, "/me", &user).await.status(), 200);
    assert_eq!(call(addr, "/items", &user).await.status(), 403);
    let reader = dev.token().scopes(["Items.Read"]).build();
    assert_eq!(call(addr, "/items", &reader).await.status(), 200);
    let admin = dev.token().roles(["Admin"]).build();
    assert_eq!(call(addr, "/admin/stats", &admin).await.status(), 200);
    // Both attributes on one handler apply.
    let writer = |roles: &[&str]| dev.token().scopes(["access_as_user"]).roles(roles.to_vec()).build();
    let post = |t: String| http().post(format!("http://{addr}/items")).bearer_auth(t).send();
    assert_eq!(post(writer(&["Items.Write.All"])).await.unwrap().status(), 201);
    assert_eq!(post(writer(&[])).await.unwrap().status(), 403);
}

// gRPC: the same requirements on tonic methods.

mod grpc {
    use azad_examples::grpc::{self, AUDITORS_GROUP, DeleteTaskRequest, ListTasksRequest, TasksClient};
    use tonic::Code;
    use tonic::transport::Channel;

    use super::*;

    async fn client(dev: &DevTenant, resolver: GroupResolver) -> TasksClient<Channel> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(grpc::serve(listener, AzureAdAuth::new(dev.config()).with_group_resolver(resolver)));
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        TasksClient::new(channel)
    }

    fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    }

    #[tokio::test]
    async fn groups_with_overage_and_guests_on_grpc() {
        let dev = DevTenant::start().await.unwrap();
        let user = dev.users()[0].clone();
        let mut c = client(&dev, resolver(&dev)).await;
        let outsider = dev.token().group_overage().build();
        let status = c.read_audit_log(with_token(&outsider, ListTasksRequest {})).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(dev.requests(Endpoint::Graph), 1);

        dev.add_group_member(AUDITORS_GROUP, &user.oid);
        let in_claim = dev.token().groups([AUDITORS_GROUP]).build();
        assert_eq!(
            c.read_audit_log(with_token(&in_claim, ListTasksRequest {})).await.unwrap().get_ref().tasks.len(),
            1
        );
        let guest = dev.token().groups([AUDITORS_GROUP]).claim("acct", 1).build();
        let status = c.read_audit_log(with_token(&guest, ListTasksRequest {})).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);

        // Overage resolved through Graph (a fresh server: an empty cache).
        let mut fresh = client(&dev, resolver(&dev)).await;
        let overage = dev.token().group_overage().build();
        assert!(fresh.read_audit_log(with_token(&overage, ListTasksRequest {})).await.is_ok());
        // Graph down: UNAVAILABLE with Retry-After in the metadata, never OK.
        let mut down = client(&dev, resolver(&dev)).await;
        dev.inject_times(Endpoint::Graph, Fault::TooManyRequests { retry_after: 4 }, 1);
        let status = down.read_audit_log(with_token(&overage, ListTasksRequest {})).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "4");
    }

    #[tokio::test]
    async fn step_up_on_grpc() {
        let dev = DevTenant::start().await.unwrap();
        let mut c = client(&dev, resolver(&dev)).await;
        let writer = dev.token().scopes(["Tasks.ReadWrite"]).build();
        let status = c.approve_task(with_token(&writer, DeleteTaskRequest { id: "1".into() })).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        let header = status.metadata().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
        let parsed = Challenge::parse(StatusCode::UNAUTHORIZED, &header).unwrap().unwrap();
        assert_eq!(parsed.error(), Some("insufficient_claims"));
        assert_eq!(parsed.claims(), Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#));
        let stepped = dev.token().scopes(["Tasks.ReadWrite"]).claim("acrs", serde_json::json!(["c1"])).build();
        assert!(
            c.approve_task(with_token(&stepped, DeleteTaskRequest { id: "1".into() })).await.unwrap().get_ref().deleted
        );
    }
}
