use azad_axum::{require_role, require_scope, require_scope_or_app_permission};
use utoipa::OpenApi;

#[require_scope(all("Tasks.Read", "Tasks.Write"))]
#[utoipa::path(get, path = "/tasks", responses((status = 200)))]
async fn tasks() {}

#[require_role("Admin")]
#[utoipa::path(delete, path = "/tasks/{id}", params(("id" = u32, Path)),)]
async fn delete_task() {}

#[require_scope_or_app_permission(scopes = ["Tasks.Read"], app_permissions = ["Tasks.Read.All"])]
#[utoipa::path(get, path = "/report")]
async fn report() {}

#[derive(OpenApi)]
#[openapi(paths(tasks, delete_task, report))]
struct Doc;

fn main() {
    let doc = serde_json::to_value(Doc::openapi()).unwrap();
    assert_eq!(doc["paths"]["/tasks"]["get"]["security"], serde_json::json!([{"entra": ["Tasks.Read", "Tasks.Write"]}]));
    assert_eq!(doc["paths"]["/tasks/{id}"]["delete"]["security"], serde_json::json!([{"entra_app": ["Admin"]}]));
    assert_eq!(
        doc["paths"]["/report"]["get"]["security"],
        serde_json::json!([{"entra": ["Tasks.Read"]}, {"entra_app": ["Tasks.Read.All"]}])
    );
}
