//! Attribute macros for azad: `#[require_scope]`, `#[require_role]` and
//! `#[require_scope_or_app_permission]`, on axum handlers and on tonic service methods.
//!
//! Use them through `azad-axum` (axum handlers) or `azad-tower` with its `macros` and `tonic`
//! features (tonic methods); the generated code refers to those crates.
//!
//! - On an axum handler (a free `async fn`), the attribute adds a hidden first argument: a guard
//!   extractor that runs before every other extractor, so a forbidden request never reads its
//!   body. A failure is 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`.
//! - On a tonic method (it has `self`), the check runs first in the body, on the claims the
//!   `AzureAdAuth` layer stored in the request's extensions, and returns
//!   `Status::permission_denied` or `Status::unauthenticated`.
//!
//! Without the `AzureAdAuth` layer the guarded code never runs (500, or `Status::internal`).
//!
//! **OpenAPI.** Written above a `#[utoipa::path(...)]` on an axum handler, an attribute appends
//! the operation's `security(...)` from the same requirement: one requirement object per
//! alternative (any-of: one per name; all-of: one with all of them), delegated scopes under the
//! `entra` scheme by their short names, app roles under `entra_app`. `azad_axum::openapi::AzureAdSecurity`
//! adds the schemes and the full scope names (`api://{client id}/{scope}`). Order matters:
//! attributes expand outermost first, so an azad attribute written *below* `#[utoipa::path]`
//! runs after utoipa has generated the operation and cannot document it (nor detect it). A
//! `security(...)` written by hand in that `#[utoipa::path]` is a compile error, and so is a
//! second azad attribute above the same `#[utoipa::path]` (one attribute per documented handler).
//!
//! Set `AZAD_MACROS_DEBUG=1` at build time to print every expansion.
//!
//! ## Feature flags
//!
//! None: the macros are always the same. Whether they target axum or tonic is chosen by the
//! crate that re-exports them (`azad-axum`'s `macros` feature, `azad-tower`'s `macros` and
//! `tonic` features).

#![cfg_attr(docsrs, feature(doc_cfg))]

use proc_macro::TokenStream;

mod attr_parsing;
mod openapi;
mod require;

/// Requires one of the delegated scopes (`scp`): `#[require_scope("access_as_user")]`.
///
/// Several literals mean any-of; `all("a", "b")` means all-of. Matching is exact and
/// case-sensitive. App-only tokens never pass (they carry no scopes).
///
/// ```text
/// #[require_scope("access_as_user")]
/// async fn claims(claims: Claims) -> Json<Claims> { Json(claims) }
///
/// #[require_scope(all("Files.Read", "Files.Write"))]
/// async fn upload(body: Bytes) -> StatusCode { StatusCode::CREATED }
/// ```
#[proc_macro_attribute]
pub fn require_scope(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, require::Kind::Scope)
}

/// Requires one of the app roles (`roles`): `#[require_role("Admin")]`.
///
/// Several literals mean any-of; `all("a", "b")` means all-of.
#[proc_macro_attribute]
pub fn require_role(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, require::Kind::Role)
}

/// A delegated token needs one of `scopes`; an app-only token needs one of `app_permissions`
/// (app roles). Never interchangeable.
///
/// ```text
/// #[require_scope_or_app_permission(scopes = ["Tasks.Read"], app_permissions = ["Tasks.Read.All"])]
/// async fn tasks() -> Json<Vec<Task>> { … }
/// ```
#[proc_macro_attribute]
pub fn require_scope_or_app_permission(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, require::Kind::ScopeOrAppPermission)
}
