//! A tonic gRPC service behind the same `AzureAdAuth` layer, with scope attributes on its
//! methods, called by a tonic client with and without a token.
//!
//! ```text
//! cargo run --example grpc
//! ```
#![allow(clippy::print_stdout)]

use azad_core::dev::DevTenant;
use azad_examples::grpc::{self, ListTasksRequest, TasksClient, WhoAmIRequest};
use azad_tower::AzureAdAuth;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    azad_examples::init_tracing();
    let dev = DevTenant::start().await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", azad_examples::port_from_env())).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(grpc::serve(listener, AzureAdAuth::new(dev.config())));
    println!("gRPC service azad.demo.Tasks on http://{addr} (dev tenant {})", dev.base_url());

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let mut client = TasksClient::new(channel);

    let reader = dev.token().scopes(["access_as_user", "Tasks.Read"]).build();
    let reply = client.list_tasks(with_token(&reader, ListTasksRequest {})).await?;
    println!("ListTasks with Tasks.Read       -> OK {:?}", reply.get_ref().tasks);
    let me = client.whoami(with_token(&reader, WhoAmIRequest {})).await?;
    println!("WhoAmI                          -> OK {} ({})", me.get_ref().name, me.get_ref().oid);

    let status = client.list_tasks(ListTasksRequest {}).await.unwrap_err();
    println!("ListTasks without a token       -> {:?} ({})", status.code(), status.code() as i32);
    let other = dev.token().scopes(["Files.Read"]).build();
    let status = client.list_tasks(with_token(&other, ListTasksRequest {})).await.unwrap_err();
    println!("ListTasks without Tasks.Read    -> {:?} ({})", status.code(), status.code() as i32);
    Ok(())
}

/// A request carrying `token` in its `authorization` metadata.
fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("tokens are ASCII"));
    request
}
