//! Attribute macros for azad, on axum handlers and on tonic service methods:
//! `#[require_scope]`, `#[require_role]`, `#[require_scope_or_app_permission]`,
//! `#[require_group]`, `#[require_auth_context]`, `#[require_caller_app]`, `#[require_tenant]`,
//! `#[deny_guests]`, `#[require_authenticated]` and `#[allow_anonymous]`; and `handler!`, which
//! hands an attributed axum handler with its declaration to azad-axum's deny-by-default router.
//!
//! Several attributes on one function all apply (each is one more check, in the order
//! written). The outermost one expands them all at once, so that an axum handler gets one
//! companion item describing its whole declaration (see `companion.rs`: `__azad_route_{fn}`).
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
//! **Expansion targets.** The output names one hidden `__private` module per target, and
//! nothing else of the runtime crates:
//!
//! - axum handlers: `::azad_axum::__private::{Guard, Policy, HasDeclaration, Requirement, Cow}`;
//! - tonic methods: `::azad_tower::__private::{check_grpc, check_grpc_async, reject_boxed,
//!   Requirement, Cow}` (azad-axum does not depend on tonic, so tonic methods cannot be routed
//!   through it).
//!
//! Each requirement is a constant built by a named `const fn` of `Requirement`, one per shape
//! (`__any_scope(&[..])`, `__all_roles(&[..])`, `__scope_or_app_permission(&[..], &[..])`,
//! `__any_group(&[..])`, `__no_guests()`, ...; see `requirement.rs`): the two crates agree by
//! name, so a mismatch is a compile error, never a different requirement.
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
mod companion;
mod openapi;
mod require;
mod requirement;

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
    require::expand_attr_with(attr, item, requirement::Kind::Scope)
}

/// Requires one of the app roles (`roles`): `#[require_role("Admin")]`.
///
/// Several literals mean any-of; `all("a", "b")` means all-of.
#[proc_macro_attribute]
pub fn require_role(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::Role)
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
    require::expand_attr_with(attr, item, requirement::Kind::ScopeOrAppPermission)
}

/// Requires membership in one of these groups (object ids): `#[require_group("<group id>")]`;
/// `all("a", "b")` means all-of. Matched against the `groups` claim; a token with a groups
/// overage (`_claim_names`/`_claim_sources`, or `hasgroups`) is resolved through Microsoft
/// Graph by the layer's `GroupResolver` (`AzureAdAuth::with_group_resolver`). Graph unavailable:
/// 503 with `Retry-After` (or 403 if so configured), never an allow.
#[proc_macro_attribute]
pub fn require_group(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::Group)
}

/// Requires a Conditional Access authentication context in `acrs`:
/// `#[require_auth_context("c1")]` (several literals: any-of; ids `c1` to `c99`). A token
/// without it gets 401 `WWW-Authenticate: Bearer error="insufficient_claims", claims="…"`
/// (base64 of `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`), which MSAL clients
/// satisfy by acquiring a token with those claims (step-up). gRPC: `UNAUTHENTICATED` with the
/// challenge in the `www-authenticate` metadata.
#[proc_macro_attribute]
pub fn require_auth_context(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::AuthContext)
}

/// Only these calling applications (client ids, from `azp` or `appid`):
/// `#[require_caller_app("<client id>", ...)]`. Others get 403 `insufficient_scope`.
#[proc_macro_attribute]
pub fn require_caller_app(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::CallerApp)
}

/// Only callers of these tenants (`tid`): `#[require_tenant("<tenant id>", ...)]`. Others get
/// 403 `insufficient_scope`.
#[proc_macro_attribute]
pub fn require_tenant(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::Tenant)
}

/// Refuses guest users (`acct` = 1, or `idp` naming another tenant or provider): 403
/// `insufficient_scope`. Applications pass.
#[proc_macro_attribute]
pub fn deny_guests(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::DenyGuests)
}

/// Declares that any authenticated caller may call this route (and refuses anonymous requests
/// let through by an optional layer: 401).
#[proc_macro_attribute]
pub fn require_authenticated(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::Authenticated)
}

/// Declares a public route: no requirement, on purpose. Only a declaration, for the
/// deny-by-default router and route listings; it cannot be combined with requirements.
#[proc_macro_attribute]
pub fn allow_anonymous(attr: TokenStream, item: TokenStream) -> TokenStream {
    require::expand_attr_with(attr, item, requirement::Kind::AllowAnonymous)
}

/// `handler!(path::to::handler)`: an axum handler carrying an azad attribute, with its
/// declaration, for `azad_axum::routing::{get, post, ...}` in a deny-by-default
/// `azad_axum::routing::AuthorizedRouter`. A handler with no azad attribute is a compile
/// error (no `__azad_route_…` item).
#[proc_macro]
pub fn handler(input: TokenStream) -> TokenStream {
    match companion::expand_handler(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.into_compile_error().into(),
    }
}
