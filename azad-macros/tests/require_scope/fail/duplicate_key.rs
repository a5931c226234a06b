use azad_axum::require_scope_or_app_permission;

#[require_scope_or_app_permission(scopes = ["a"], scopes = ["b"], app_permissions = ["c"])]
async fn handler() {}

fn main() {}
