use azad_axum::require_scope;

#[require_scope("")]
async fn handler() {}

fn main() {}
