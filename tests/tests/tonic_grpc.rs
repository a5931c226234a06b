//! gRPC behind the same layer, through a real tonic client: statuses 16 and 7, and the
//! attributes on tonic methods.

use std::net::SocketAddr;

use azad_examples::grpc::{self, DeleteTaskRequest, ListTasksRequest, TasksClient, WhoAmIRequest};
use azad_tests::{DevTenant, Endpoint, Fault};
use azad_tower::AzureAdAuth;
use tonic::Code;
use tonic::transport::Channel;

async fn server<E>(auth: AzureAdAuth<E>) -> SocketAddr
where
    E: azad_tower::OnAuthError<tonic::body::Body> + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grpc::serve(listener, auth));
    addr
}

async fn client(addr: SocketAddr) -> TasksClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    TasksClient::new(channel)
}

fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn statuses_through_a_real_client() {
    let dev = DevTenant::start().await.unwrap();
    let mut c = client(server(AzureAdAuth::new(dev.config())).await).await;

    let reader = dev.token().scopes(["access_as_user", "Tasks.Read"]).build();
    let tasks = c.list_tasks(with_token(&reader, ListTasksRequest {})).await.unwrap();
    assert_eq!(tasks.get_ref().tasks.len(), 2);
    let me = c.whoami(with_token(&reader, WhoAmIRequest {})).await.unwrap();
    assert_eq!(me.get_ref().oid, dev.users()[0].oid);
    assert_eq!(me.get_ref().tid, dev.tenant_id());

    // 16 UNAUTHENTICATED: no token, a refused token; the challenge travels in the metadata.
    let status = c.list_tasks(ListTasksRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
    let expired = dev.token().expired().build();
    let status = c.list_tasks(with_token(&expired, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), r#"Bearer error="invalid_token""#);

    // 7 PERMISSION_DENIED from the method attributes.
    let other = dev.token().scopes(["Files.Read"]).build();
    let status = c.list_tasks(with_token(&other, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = c.delete_task(with_token(&reader, DeleteTaskRequest { id: "1".into() })).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Scope or app permission, never interchangeable.
    let writer = dev.token().scopes(["Tasks.ReadWrite"]).build();
    assert!(c.delete_task(with_token(&writer, DeleteTaskRequest { id: "1".into() })).await.unwrap().get_ref().deleted);
    let daemon = dev.token().app_only().roles(["Tasks.ReadWrite.All"]).build();
    assert!(c.delete_task(with_token(&daemon, DeleteTaskRequest { id: "1".into() })).await.is_ok());
    let status = c.list_tasks(with_token(&daemon, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "an app-only token has no scopes");
}

#[tokio::test]
async fn optional_layer_reaches_methods_anonymous_and_they_refuse() {
    let dev = DevTenant::start().await.unwrap();
    let mut c = client(server(AzureAdAuth::new(dev.config()).optional(true)).await).await;
    let status = c.list_tasks(ListTasksRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "the method attribute refuses anonymous callers");
}

#[tokio::test]
async fn methods_without_the_layer_never_run() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(grpc::TasksServer::new(grpc::TaskService))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut c = client(addr).await;
    let status = c.delete_task(with_token("forged", DeleteTaskRequest { id: "1".into() })).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "fails closed");
}

#[tokio::test]
async fn no_signing_keys_is_unavailable() {
    let dev = DevTenant::start().await.unwrap();
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(500));
    let mut c = client(server(AzureAdAuth::new(dev.config())).await).await;
    let status = c.list_tasks(with_token(&dev.token().build(), ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

/// The method attributes answer like the layer: terse, with the RFC 6750 challenge (written by
/// the one `Challenge` type) in the metadata.
#[tokio::test]
async fn method_attributes_send_the_challenge_in_the_metadata() {
    let dev = DevTenant::start().await.unwrap();
    let mut c = client(server(AzureAdAuth::new(dev.config())).await).await;
    let other = dev.token().scopes(["Files.Read"]).build();
    let status = c.list_tasks(with_token(&other, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "Permission denied");
    let challenge = status.metadata().get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned();
    let parsed = azad_core::Challenge::parse(axum::http::StatusCode::FORBIDDEN, &challenge).unwrap().unwrap();
    assert_eq!(parsed.error(), Some("insufficient_scope"), "{challenge}");
    assert!(!parsed.scope().is_empty(), "{challenge}");
}

/// The layer decides terse or verbose once, and the method attributes follow it: a verbose
/// layer's refusal carries the description in `grpc-message` and in the challenge.
#[tokio::test]
async fn method_attributes_answer_as_verbosely_as_the_layer() {
    let dev = DevTenant::start().await.unwrap();
    let other = dev.token().scopes(["Files.Read"]).build();
    let mut terse = client(server(AzureAdAuth::new(dev.config())).await).await;
    let status = terse.list_tasks(with_token(&other, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "Permission denied");

    let mut verbose = client(server(AzureAdAuth::new(dev.config()).verbose()).await).await;
    let status = verbose.list_tasks(with_token(&other, ListTasksRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_ne!(status.message(), "Permission denied");
    let header = status.metadata().get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned();
    let parsed = azad_core::Challenge::parse(axum::http::StatusCode::FORBIDDEN, &header).unwrap().unwrap();
    assert_eq!(parsed.error_description(), Some(status.message()), "{header}");
}

/// A tonic method gets its caller's claims and an on-behalf-of token from its
/// `tonic::Request` (`RequestExt`), from the one `Authentication` the layer stored; an
/// anonymous caller and a missing layer are refused with the layer's statuses.
#[tokio::test]
async fn a_tonic_request_gives_the_claims_and_on_behalf_of_tokens() {
    use azad_core::ClientCredential;
    use azad_tower::{Authentication, RequestExt};

    let dev = DevTenant::start().await.unwrap();
    let config = dev.config();
    let token_client = azad_core::TokenClient::new(&config, ClientCredential::secret(dev.api_client_secret()));
    // The layer in front of a handler that reads a tonic::Request carrying the request's extensions.
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|req: axum::extract::Request| async move {
                let request =
                    tonic::Request::from_parts(tonic::metadata::MetadataMap::new(), req.extensions().clone(), ());
                let oid = request.claims().map(|c| c.object_id().unwrap_or_default().to_owned()).unwrap_or_default();
                let token = match request.on_behalf_of(&["api://azad-downstream/Data.Read"]).await {
                    Ok(token) => token.secret().to_owned(),
                    Err(status) => format!("{:?}", status.code()),
                };
                format!("{oid}|{token}")
            }),
        )
        .layer(AzureAdAuth::new(config).with_token_client(token_client));
    let base = format!("http://{}", azad_tests::serve(app).await);
    let user = dev.token().build();
    let body = azad_tests::http().get(&base).bearer_auth(&user).send().await.unwrap().text().await.unwrap();
    let (oid, token) = body.split_once('|').unwrap();
    assert_eq!(oid, dev.users()[0].oid);
    // The downstream token (issued by the dev tenant's token endpoint): the same user, the
    // downstream API's scope.
    let payload = token.split('.').nth(1).expect("a JWT, not an error code");
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["oid"], oid);
    assert_eq!(claims["scp"], "Data.Read");

    // Anonymous (an optional layer): UNAUTHENTICATED with the bare challenge.
    let mut anonymous = tonic::Request::new(());
    anonymous.extensions_mut().insert(Authentication::anonymous());
    let status = anonymous.claims().unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
    let status = anonymous.on_behalf_of(&["api://azad-downstream/Data.Read"]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // No layer at all: fails closed.
    assert_eq!(tonic::Request::new(()).claims().unwrap_err().code(), Code::Internal);
}
