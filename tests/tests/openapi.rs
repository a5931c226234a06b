//! The attribute (at compile time) and the runtime `Requirement` (for `Require`) write the
//! same OpenAPI security for the same requirement, for every kind of requirement.

use azad_axum::openapi::{AzureAdSecurity, RequireOpenApiExt, security_requirements};
use azad_axum::{Require, Requirement, require_role, require_scope, require_scope_or_app_permission};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[require_scope("a", "b")]
#[utoipa::path(get, path = "/any-scope")]
async fn any_scope() {}

#[require_scope(all("a", "b"))]
#[utoipa::path(get, path = "/all-scopes")]
async fn all_scopes() {}

#[require_role("R", "S")]
#[utoipa::path(get, path = "/any-role")]
async fn any_role() {}

#[require_role(all("R", "S"))]
#[utoipa::path(get, path = "/all-roles")]
async fn all_roles() {}

#[require_scope_or_app_permission(scopes = ["a", "b"], app_permissions = ["R"])]
#[utoipa::path(get, path = "/either")]
async fn either() {}

#[utoipa::path(get, path = "/layered")]
async fn layered() {}

/// The handlers' own documents, through utoipa-axum (which also routes them).
fn by_attributes() -> utoipa::openapi::OpenApi {
    let router: OpenApiRouter = OpenApiRouter::new()
        .routes(routes!(any_scope))
        .routes(routes!(all_scopes))
        .routes(routes!(any_role))
        .routes(routes!(all_roles))
        .routes(routes!(either));
    router.into_openapi()
}

fn cases() -> [(&'static str, Requirement); 5] {
    [
        ("/any-scope", Requirement::any_scope(["a", "b"])),
        ("/all-scopes", Requirement::all_scopes(["a", "b"])),
        ("/any-role", Requirement::any_role(["R", "S"])),
        ("/all-roles", Requirement::all_roles(["R", "S"])),
        ("/either", Requirement::scope_or_app_permission(["a", "b"], ["R"])),
    ]
}

#[test]
fn attributes_and_layers_document_a_requirement_identically() {
    let by_attributes = serde_json::to_value(by_attributes()).unwrap();
    for (path, requirement) in cases() {
        let expected = serde_json::to_value(security_requirements(&requirement)).unwrap();
        assert_eq!(by_attributes["paths"][path]["get"]["security"], expected, "{path}");
        let layered: OpenApiRouter =
            OpenApiRouter::new().routes(routes!(layered)).require(Require::new(requirement.clone()));
        let doc = serde_json::to_value(layered.into_openapi()).unwrap();
        assert_eq!(doc["paths"]["/layered"]["get"]["security"], expected, "{path} by layer");
    }
}

#[test]
fn a_layer_over_attributed_routes_requires_both() {
    let router: OpenApiRouter =
        OpenApiRouter::new().routes(routes!(either)).require(Require::any_role(["Admin"])).routes(routes!(layered)); // added after `require`: not behind the layer, not documented so
    let config = azad_axum::AzureAdConfig::builder()
        .tenant_id("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f")
        .client_id("c1")
        .build()
        .unwrap();
    let mut doc = router.into_openapi();
    AzureAdSecurity::new(&config).apply(&mut doc);
    let doc = serde_json::to_value(doc).unwrap();
    assert_eq!(
        doc["paths"]["/either"]["get"]["security"],
        json!([
            {"entra": ["api://c1/a"], "entra_app": ["Admin"]},
            {"entra": ["api://c1/b"], "entra_app": ["Admin"]},
            {"entra_app": ["R", "Admin"]},
        ])
    );
    assert_eq!(doc["paths"]["/layered"]["get"].get("security"), None::<&Value>);
}
