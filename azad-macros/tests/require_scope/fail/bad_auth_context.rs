use azad_axum::require_auth_context;

#[require_auth_context("step-up")]
async fn handler() {}

fn main() {}
