#![deny(warnings, missing_docs, unreachable_pub, non_camel_case_types, unused_qualifications)]
//! The attributes beyond scopes, stacked on one handler (each import counts as used), and the
//! deny-by-default router reading their companion items through `handler!`.

use azad_axum::routing::{AuthorizedRouter, get, post};
use azad_axum::{
    allow_anonymous, deny_guests, handler, require_auth_context, require_authenticated, require_caller_app,
    require_group, require_role, require_scope, require_tenant,
};

/// Several requirements, all checked.
#[require_scope("access_as_user")]
#[require_group("0b5c2f1e-1111-4a2b-8c3d-4e5f6a7b8c9d", "admins-on-prem")]
#[require_auth_context("c1", "c25")]
#[deny_guests]
pub async fn stacked() -> &'static str {
    "ok"
}

#[require_group(all("g1", "g2"))]
#[require_caller_app("c0ffee00-0000-4000-8000-0000000c11e7")]
#[require_tenant("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f")]
async fn allow_listed(body: String) -> String {
    body
}

#[require_authenticated]
async fn me() {}

#[allow_anonymous]
async fn health() -> &'static str {
    "ok"
}

#[azad_axum::require_role("Admin")]
#[require_role("Auditor")]
async fn qualified_path() {}

mod nested {
    use azad_axum::require_scope;

    #[require_scope("Items.Read")]
    pub(crate) async fn items() -> &'static str {
        "[]"
    }
}

fn main() {
    let routes = AuthorizedRouter::<()>::new()
        .route("/stacked", get(handler!(stacked)))
        .route("/allow-listed", post(handler!(allow_listed)))
        .route("/me", get(handler!(me)))
        .route("/health", get(handler!(health)))
        .route("/admin", get(handler!(qualified_path)))
        .route("/items", get(handler!(nested::items)));
    assert!(routes.check().is_ok());
    let _: axum::Router = routes.into_router().unwrap();
}
