//! A gRPC service behind the same [`AzureAdAuth`] layer, with requirement attributes on its
//! methods: scopes, a group (resolved through Microsoft Graph on a groups overage), no guests,
//! and an authentication context (step-up).
//!
//! The service is described in Rust (`build.rs`, `tonic_build::manual`): no protoc needed.

use azad_tower::{
    AzureAdAuth, RequestExt, deny_guests, require_auth_context, require_group, require_scope,
    require_scope_or_app_permission,
};

/// The group whose members may read the audit log (`ReadAuditLog`).
pub const AUDITORS_GROUP: &str = "5b0f3c2e-7a1d-4e8b-9c6f-2d4a8e1b3c70";
use tonic::{Request, Response, Status};

/// `ListTasks` request.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListTasksRequest {}

/// `ListTasks` reply.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListTasksReply {
    /// Task titles.
    #[prost(string, repeated, tag = "1")]
    pub tasks: Vec<String>,
}

/// `DeleteTask` request.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DeleteTaskRequest {
    /// The task id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `DeleteTask` reply.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DeleteTaskReply {
    /// Whether a task was deleted.
    #[prost(bool, tag = "1")]
    pub deleted: bool,
}

/// `WhoAmI` request.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WhoAmIRequest {}

/// `WhoAmI` reply: who the token says the caller is.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WhoAmIReply {
    /// Display name (users).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Object id.
    #[prost(string, tag = "2")]
    pub oid: String,
    /// Tenant id.
    #[prost(string, tag = "3")]
    pub tid: String,
    /// Delegated scopes.
    #[prost(string, tag = "4")]
    pub scopes: String,
}

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, unused_qualifications, rust_2018_idioms)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/azad.demo.Tasks.rs"));
}

pub use generated::tasks_client::TasksClient;
pub use generated::tasks_server::{Tasks, TasksServer};

/// The demo implementation.
#[derive(Debug, Default, Clone)]
pub struct TaskService;

#[tonic::async_trait]
impl Tasks for TaskService {
    #[require_scope("Tasks.Read", "Tasks.ReadWrite")]
    async fn list_tasks(&self, request: Request<ListTasksRequest>) -> Result<Response<ListTasksReply>, Status> {
        let _ = request;
        Ok(Response::new(ListTasksReply { tasks: vec!["write the docs".into(), "ship it".into()] }))
    }

    #[require_scope_or_app_permission(scopes = ["Tasks.ReadWrite"], app_permissions = ["Tasks.ReadWrite.All"])]
    async fn delete_task(&self, request: Request<DeleteTaskRequest>) -> Result<Response<DeleteTaskReply>, Status> {
        Ok(Response::new(DeleteTaskReply { deleted: !request.get_ref().id.is_empty() }))
    }

    #[require_scope("access_as_user")]
    #[require_group("5b0f3c2e-7a1d-4e8b-9c6f-2d4a8e1b3c70")]
    #[deny_guests]
    async fn read_audit_log(&self, request: Request<ListTasksRequest>) -> Result<Response<ListTasksReply>, Status> {
        let _ = request;
        Ok(Response::new(ListTasksReply { tasks: vec!["audit: task 1 deleted".into()] }))
    }

    #[require_scope("Tasks.ReadWrite")]
    #[require_auth_context("c1")]
    async fn approve_task(&self, request: Request<DeleteTaskRequest>) -> Result<Response<DeleteTaskReply>, Status> {
        Ok(Response::new(DeleteTaskReply { deleted: !request.get_ref().id.is_empty() }))
    }

    #[require_scope("access_as_user")]
    async fn whoami(&self, request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIReply>, Status> {
        let claims = request.claims()?;
        Ok(Response::new(WhoAmIReply {
            name: claims.name().unwrap_or_default().to_owned(),
            oid: claims.object_id().unwrap_or_default().to_owned(),
            tid: claims.tenant_id().unwrap_or_default().to_owned(),
            scopes: claims.scp().unwrap_or_default().to_owned(),
        }))
    }
}

/// Serves the demo service on `listener` behind `auth` (terse, verbose or any
/// [`OnAuthError`](azad_tower::OnAuthError) hook).
///
/// # Errors
///
/// The transport error if serving fails.
pub async fn serve<E>(listener: tokio::net::TcpListener, auth: AzureAdAuth<E>) -> Result<(), tonic::transport::Error>
where
    E: azad_tower::OnAuthError<tonic::body::Body> + Clone + Send + Sync + 'static,
{
    tonic::transport::Server::builder()
        .layer(auth)
        .add_service(TasksServer::new(TaskService))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await
}
