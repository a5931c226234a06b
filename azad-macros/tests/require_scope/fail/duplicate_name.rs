use azad_axum::require_role;

#[require_role("Admin", "Admin")]
async fn handler() {}

fn main() {}
