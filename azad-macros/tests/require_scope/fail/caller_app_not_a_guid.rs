use azad_axum::require_caller_app;

#[require_caller_app("my-client")]
async fn handler() {}

fn main() {}
