use azad_axum::require_scope_or_app_permission;

#[require_scope_or_app_permission(scopes = ["Tasks.Read"])]
async fn handler() {}

fn main() {}
