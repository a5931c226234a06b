#![deny(warnings, missing_docs, unreachable_pub, non_camel_case_types, unused_qualifications)]
//! The generated code is lint-clean, even on a public handler in a crate that denies warnings.

use axum::Json;
use azad_axum::{Claims, require_scope};

/// A documented public handler.
#[require_scope("access_as_user")]
pub async fn handler(claims: Claims) -> Json<Claims> {
    Json(claims)
}

fn main() {
    let _: axum::routing::MethodRouter = axum::routing::get(handler);
}
