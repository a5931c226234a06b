use azad_axum::require_scope;

#[require_scope("access_as_user Files.Read")]
async fn handler() {}

#[require_scope("   ")]
async fn blank() {}

fn main() {}
