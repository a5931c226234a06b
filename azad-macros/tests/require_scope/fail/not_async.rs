use azad_axum::require_scope;

#[require_scope("access_as_user")]
fn handler() -> &'static str {
    "sync"
}

fn main() {
    let _ = handler();
}
