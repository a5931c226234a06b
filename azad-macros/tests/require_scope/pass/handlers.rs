use axum::Router;
use axum::routing::{get, post};
use azad_axum::{Claims, require_role, require_scope, require_scope_or_app_permission};

#[require_scope("access_as_user")]
async fn one(claims: Claims) -> String {
    claims.issuer().to_owned()
}

#[require_scope("Tasks.Read", "Tasks.ReadWrite")]
async fn any_of() -> &'static str {
    "any"
}

#[require_scope(all("Files.Read", "Files.Write"))]
async fn all_of(body: String) -> String {
    body
}

#[require_role("Admin")]
async fn role() {}

#[require_scope_or_app_permission(app_permissions = ["Tasks.Read.All"], scopes = ["Tasks.Read"])]
pub async fn either() -> &'static str {
    "either"
}

fn main() {
    let _app: Router = Router::new()
        .route("/one", get(one))
        .route("/any", get(any_of))
        .route("/all", post(all_of))
        .route("/role", get(role))
        .route("/either", get(either));
}
