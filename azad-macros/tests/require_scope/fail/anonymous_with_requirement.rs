use azad_axum::{allow_anonymous, require_scope};

#[allow_anonymous]
#[require_scope("access_as_user")]
async fn handler() {}

fn main() {}
