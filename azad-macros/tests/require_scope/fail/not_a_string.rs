use azad_axum::require_scope;

#[require_scope(access_as_user)]
async fn handler() {}

fn main() {}
