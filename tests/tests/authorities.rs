//! Several authorities behind one `AzureAdAuth` layer, over real sockets: a workforce tenant, an
//! Azure AD B2C tenant (the dev tenant playing B2C) and a second app registration; routing by
//! issuer before any network call; per-route authority and audience selection, for HTTP and gRPC.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use azad_axum::{AzureAdAuth, Claims, RequireAuthority};
use azad_core::AzureAdConfig;
use azad_examples::grpc::{self, ListTasksRequest, TasksClient};
use azad_tests::{DevTenant, Endpoint, http, serve};
use reqwest::StatusCode;
use tonic::Code;

/// The client id of a second app registration in the workforce tenant.
const REPORTS_API: &str = "6f1c9a52-7d3e-4b8a-9c21-0e5d4f3a2b17";
const USER_FLOW: &str = "B2C_1_signupsignin";

struct Tenants {
    workforce: DevTenant,
    b2c: DevTenant,
}

impl Tenants {
    async fn start() -> Self {
        let workforce = DevTenant::start().await.unwrap();
        let b2c = DevTenant::builder().emulate_b2c("contosob2c", USER_FLOW).start().await.unwrap();
        Self { workforce, b2c }
    }

    fn reports_config(&self) -> AzureAdConfig {
        self.workforce.config_builder().client_id(REPORTS_API).build().unwrap()
    }

    fn auth(&self) -> AzureAdAuth {
        AzureAdAuth::authorities([
            ("workforce", self.workforce.config()),
            ("customers", self.b2c.config()),
            ("reports", self.reports_config()),
        ])
        .unwrap()
    }

    fn requests(&self) -> usize {
        [&self.workforce, &self.b2c]
            .iter()
            .map(|t| t.requests(Endpoint::OpenIdConfiguration) + t.requests(Endpoint::Jwks))
            .sum()
    }
}

async fn whoami(claims: Claims) -> String {
    claims.authority().unwrap_or("none").to_owned()
}

async fn api(auth: AzureAdAuth) -> String {
    let customers =
        Router::new().route("/api/orders", get(whoami)).route_layer(RequireAuthority::authorities(["customers"]));
    let staff = Router::new()
        .route("/api/staff", get(whoami))
        .route_layer(RequireAuthority::authorities(["workforce", "reports"]));
    let reports =
        Router::new().route("/api/reports", get(whoami)).route_layer(RequireAuthority::audiences([REPORTS_API]));
    let router =
        Router::new().route("/api/whoami", get(whoami)).merge(customers).merge(staff).merge(reports).route_layer(auth);
    format!("http://{}", serve(router).await)
}

async fn call(url: &str, token: &str) -> (StatusCode, String, String) {
    let response = http().get(url).bearer_auth(token).send().await.unwrap();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status(), challenge, response.text().await.unwrap())
}

/// Each token is accepted by its own authority, and the claims say which.
#[tokio::test]
async fn tokens_are_routed_to_their_authority_and_the_claims_name_it() {
    let t = Tenants::start().await;
    let base = api(t.auth()).await;
    let url = format!("{base}/api/whoami");

    let staff = t.workforce.token().build();
    assert_eq!(call(&url, &staff).await, (StatusCode::OK, String::new(), "workforce".into()));
    let customer = t.b2c.token().build();
    assert_eq!(call(&url, &customer).await, (StatusCode::OK, String::new(), "customers".into()));
    // Same issuer as the workforce tenant, another audience: the second app registration.
    let reports = t.workforce.token().audience(REPORTS_API).build();
    assert_eq!(call(&url, &reports).await, (StatusCode::OK, String::new(), "reports".into()));
    // Cached: the same answers again.
    assert_eq!(call(&url, &customer).await.2, "customers");
    assert_eq!(call(&url, &staff).await.2, "workforce");
    // The B2C authority's documents came from its B2C-shaped paths.
    assert!(t.b2c.requests(Endpoint::OpenIdConfiguration) >= 1 && t.b2c.requests(Endpoint::Jwks) >= 1);
}

/// A token of authority A on a route restricted to authority B: 401 invalid_token.
#[tokio::test]
async fn a_token_of_another_authority_is_401_on_a_restricted_route() {
    let t = Tenants::start().await;
    let base = api(t.auth()).await;
    let staff = t.workforce.token().build();
    let customer = t.b2c.token().build();

    assert_eq!(call(&format!("{base}/api/orders"), &customer).await.0, StatusCode::OK);
    let (status, challenge, _) = call(&format!("{base}/api/orders"), &staff).await;
    assert_eq!((status, challenge.as_str()), (StatusCode::UNAUTHORIZED, r#"Bearer error="invalid_token""#));
    let (status, challenge, _) = call(&format!("{base}/api/staff"), &customer).await;
    assert_eq!((status, challenge.as_str()), (StatusCode::UNAUTHORIZED, r#"Bearer error="invalid_token""#));
    assert_eq!(call(&format!("{base}/api/staff"), &staff).await.0, StatusCode::OK);

    // Per-route audience: only the second app registration's tokens.
    let reports = t.workforce.token().audience(REPORTS_API).build();
    assert_eq!(call(&format!("{base}/api/reports"), &reports).await.0, StatusCode::OK);
    assert_eq!(call(&format!("{base}/api/reports"), &staff).await.0, StatusCode::UNAUTHORIZED);
}

/// A token whose issuer no authority has is refused before any network call: not one
/// discovery or key request reached any configured tenant.
#[tokio::test]
async fn an_unknown_issuer_is_401_with_no_network_call() {
    let t = Tenants::start().await;
    let stranger = DevTenant::start().await.unwrap();
    let base = api(t.auth()).await;
    let url = format!("{base}/api/whoami");

    let (status, challenge, _) = call(&url, &stranger.token().build()).await;
    assert_eq!((status, challenge.as_str()), (StatusCode::UNAUTHORIZED, r#"Bearer error="invalid_token""#));
    // A B2C-looking issuer of another B2C tenant, and a workforce-looking one of another tenant.
    let other_b2c =
        t.b2c.token().issuer("https://fabrikamb2c.b2clogin.com/3f2c1a7e-5b9d-4e6f-8a1b-2c3d4e5f6a7b/v2.0/").build();
    assert_eq!(call(&url, &other_b2c).await.0, StatusCode::UNAUTHORIZED);
    let other_tenant = t.workforce.token().tenant("3f2c1a7e-5b9d-4e6f-8a1b-2c3d4e5f6a7b").build();
    assert_eq!(call(&url, &other_tenant).await.0, StatusCode::UNAUTHORIZED);
    let no_iss = t.workforce.token().without_claim("iss").build();
    assert_eq!(call(&url, &no_iss).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.requests(), 0, "no discovery or key request for a token no authority issues");
    assert_eq!(stranger.requests(Endpoint::OpenIdConfiguration) + stranger.requests(Endpoint::Jwks), 0);

    // A real token of a configured authority does reach its tenant.
    assert_eq!(call(&url, &t.b2c.token().build()).await.0, StatusCode::OK);
    assert!(t.b2c.requests(Endpoint::Jwks) >= 1);
    assert_eq!(t.workforce.requests(Endpoint::Jwks), 0, "each authority has its own keys");
}

/// B2C: the user flow of the token (`tfp`, or `acr`) must be a configured one.
#[tokio::test]
async fn b2c_tokens_of_another_user_flow_are_refused() {
    let t = Tenants::start().await;
    let base = api(t.auth()).await;
    let url = format!("{base}/api/whoami");
    let other_flow = t.b2c.token().claim("tfp", "B2C_1_passwordreset").build();
    assert_eq!(call(&url, &other_flow).await.0, StatusCode::UNAUTHORIZED);
    let no_flow = t.b2c.token().without_claim("tfp").build();
    assert_eq!(call(&url, &no_flow).await.0, StatusCode::UNAUTHORIZED);
    // The `acr` form, and user flow names compared case-insensitively.
    let acr = t.b2c.token().without_claim("tfp").claim("acr", "b2c_1_SignUpSignIn").build();
    assert_eq!(call(&url, &acr).await, (StatusCode::OK, String::new(), "customers".into()));

    // A second user flow, once configured, is accepted.
    let both = AzureAdAuth::authorities([(
        "customers",
        t.b2c.config_builder().b2c_user_flow("B2C_1_passwordreset").build().unwrap(),
    )])
    .unwrap();
    let base = api(both).await;
    assert_eq!(call(&format!("{base}/api/whoami"), &other_flow).await.2, "customers");
}

/// gRPC: the same layers in front of a tonic service; another authority's token is
/// `UNAUTHENTICATED` with the invalid_token challenge.
#[tokio::test]
async fn grpc_routes_restricted_to_one_authority() {
    let t = Tenants::start().await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let auth = t.auth();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(auth)
            .layer(RequireAuthority::authorities(["customers"]))
            .add_service(grpc::TasksServer::new(grpc::TaskService))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = TasksClient::new(channel);
    let request = |token: &str| {
        let mut r = tonic::Request::new(ListTasksRequest {});
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    let customer = t.b2c.token().scopes(["Tasks.Read"]).build();
    assert_eq!(client.list_tasks(request(&customer)).await.unwrap().get_ref().tasks.len(), 2);
    let staff = t.workforce.token().scopes(["Tasks.Read"]).build();
    let status = client.list_tasks(request(&staff)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), r#"Bearer error="invalid_token""#);
    let stranger = DevTenant::start().await.unwrap();
    let status = client.list_tasks(request(&stranger.token().scopes(["Tasks.Read"]).build())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
