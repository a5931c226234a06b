use azad_axum::require_role;

#[require_role]
async fn handler() {}

fn main() {}
