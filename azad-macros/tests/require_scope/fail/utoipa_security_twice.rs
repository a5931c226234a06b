use azad_axum::require_scope;

// The attribute writes the operation's `security(...)`; a second source is refused.
#[require_scope("access_as_user")]
#[utoipa::path(get, path = "/me", security(("entra" = ["access_as_user"])))]
async fn me() {}

fn main() {}
