use azad_axum::handler;
use azad_axum::routing::{AuthorizedRouter, get};

async fn plain() {}

fn main() {
    let _ = AuthorizedRouter::<()>::new().route("/plain", get(handler!(plain)));
}
