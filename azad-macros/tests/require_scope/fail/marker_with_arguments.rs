use azad_axum::deny_guests;

#[deny_guests("members")]
async fn handler() {}

fn main() {}
