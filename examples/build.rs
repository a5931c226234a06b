//! Generates the demo gRPC service from a Rust description (no protoc, no .proto file).

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::grpc::{input}"))
            .output_type(format!("crate::grpc::{output}"))
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let tasks = tonic_build::manual::Service::builder()
        .name("Tasks")
        .package("azad.demo")
        .method(method("list_tasks", "ListTasks", "ListTasksRequest", "ListTasksReply"))
        .method(method("delete_task", "DeleteTask", "DeleteTaskRequest", "DeleteTaskReply"))
        .method(method("whoami", "WhoAmI", "WhoAmIRequest", "WhoAmIReply"))
        .method(method("read_audit_log", "ReadAuditLog", "ListTasksRequest", "ListTasksReply"))
        .method(method("approve_task", "ApproveTask", "DeleteTaskRequest", "DeleteTaskReply"))
        .build();
    tonic_build::manual::Builder::new().compile(&[tasks]);
    println!("cargo:rerun-if-changed=build.rs");
}
