//! OpenAPI security from the requirements that protect the routes (feature `utoipa`).
//!
//! One source of truth: the [`Requirement`] of a route (from `#[require_scope]`,
//! `#[require_role]`, `#[require_scope_or_app_permission]` or a [`Require`](crate::Require))
//! both enforces and documents. This module turns it into
//!
//! - two OAuth2 security schemes (OpenAPI 3.1 §4.8.27) for the API's Entra ID authority:
//!   [`DELEGATED_SCHEME`] (`entra`), the authorization code flow (with PKCE, which Entra requires
//!   of browser clients) whose scopes are the API's delegated permissions,
//!   `api://{client id}/{scope}`; and [`APP_SCHEME`] (`entra_app`), the client credentials flow,
//!   whose only requestable scope is `api://{client id}/.default` (an application gets the app
//!   roles an administrator granted it);
//! - each operation's `security` list (OpenAPI 3.1 §4.8.30): the alternatives the requirement
//!   accepts, one Security Requirement Object each. Any-of scopes are several objects, all-of
//!   scopes one object with several scopes; app roles are named under [`APP_SCHEME`] (an
//!   application requests `.default` and its token carries the roles).
//!
//! The attributes write an operation's `security(...)` into the `#[utoipa::path]` below them with
//! the scopes' short names; [`AzureAdSecurity::apply`] then adds the schemes and writes the
//! full scope names (`api://{client id}/access_as_user`) from the configuration, and documents
//! route groups protected by a [`Require`](crate::Require).
//!
//! # Example
//!
//! ```
//! use azad_tower::openapi::AzureAdSecurity;
//! use azad_tower::{AzureAdConfig, Require};
//! use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
//! use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
//!
//! let config = AzureAdConfig::builder()
//!     .tenant_id("7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f")
//!     .client_id("a1b2c3d4-0000-4000-8000-00000000a91d")
//!     .build()?;
//! // Routes under /reports are behind this layer; the document says so from the same value.
//! let reports = Require::any_role(["Reports.Read.All"]);
//! let mut doc = OpenApiBuilder::new()
//!     .info(InfoBuilder::new().title("Tasks").version("1").build())
//!     .paths(PathsBuilder::new().path("/reports/daily", PathItem::new(HttpMethod::Get, OperationBuilder::new().build())))
//!     .build();
//! AzureAdSecurity::new(&config).route_group("/reports", reports.requirement()).apply(&mut doc);
//!
//! let json = serde_json::to_value(&doc)?;
//! assert_eq!(json["paths"]["/reports/daily"]["get"]["security"], serde_json::json!([{"entra_app": ["Reports.Read.All"]}]));
//! let flow = &json["components"]["securitySchemes"]["entra_app"]["flows"]["clientCredentials"];
//! assert_eq!(flow["tokenUrl"], "https://login.microsoftonline.com/7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f/oauth2/v2.0/token");
//! assert!(flow["scopes"]["api://a1b2c3d4-0000-4000-8000-00000000a91d/.default"].is_string());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use azad_core::AzureAdConfig;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    AuthorizationCode, ClientCredentials, Flow, OAuth2, Scopes, SecurityRequirement, SecurityScheme,
};

use crate::authorization::Requirement;

/// The name of the delegated security scheme: OAuth2 authorization code flow (with PKCE) against
/// the API's Entra ID authority. Its scopes are the API's delegated permissions.
pub const DELEGATED_SCHEME: &str = "entra";

/// The name of the application security scheme: OAuth2 client credentials flow. Operations that
/// require app roles name them under this scheme.
pub const APP_SCHEME: &str = "entra_app";

/// The scope a client credentials request names: all the app roles granted to the application.
const DEFAULT_SCOPE: &str = ".default";

/// The alternatives that satisfy `requirement`, as OpenAPI Security Requirement Objects, with the
/// scopes' short names (`access_as_user`): one object per alternative, delegated scopes under
/// [`DELEGATED_SCHEME`], app roles under [`APP_SCHEME`].
///
/// [`AzureAdSecurity::apply`] turns short scope names into full ones
/// (`api://{client id}/access_as_user`).
///
/// ```
/// use azad_tower::Requirement;
/// use azad_tower::openapi::security_requirements;
///
/// let any = serde_json::to_value(security_requirements(&Requirement::any_scope(["Tasks.Read", "Tasks.Write"])))?;
/// assert_eq!(any, serde_json::json!([{"entra": ["Tasks.Read"]}, {"entra": ["Tasks.Write"]}]));
/// let all = serde_json::to_value(security_requirements(&Requirement::all_scopes(["Tasks.Read", "Tasks.Write"])))?;
/// assert_eq!(all, serde_json::json!([{"entra": ["Tasks.Read", "Tasks.Write"]}]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn security_requirements(requirement: &Requirement) -> Vec<SecurityRequirement> {
    let mut out = Vec::new();
    for (scopes, roles) in requirement.alternatives() {
        if scopes.is_empty() && roles.is_empty() {
            // A requirement no OAuth scope expresses (groups, authentication contexts, callers,
            // tenants, guests, "authenticated"): any valid token of either flow.
            out.push(from_map(RequirementMap::from([(DELEGATED_SCHEME.to_owned(), Vec::new())])));
            out.push(from_map(RequirementMap::from([(APP_SCHEME.to_owned(), Vec::new())])));
            continue;
        }
        let mut map = RequirementMap::new();
        if !scopes.is_empty() {
            map.insert(DELEGATED_SCHEME.to_owned(), scopes.into_iter().map(str::to_owned).collect());
        }
        if !roles.is_empty() {
            map.insert(APP_SCHEME.to_owned(), roles.into_iter().map(str::to_owned).collect());
        }
        out.push(from_map(map));
    }
    out
}

/// Whether a security list only asks for a token (every object names its scheme with no scope).
fn authentication_only(list: &[RequirementMap]) -> bool {
    !list.is_empty() && list.iter().all(|m| m.values().all(Vec::is_empty))
}

/// A Security Requirement Object as a map: scheme name → scopes (or roles), all required.
type RequirementMap = BTreeMap<String, Vec<String>>;

fn to_map(requirement: &SecurityRequirement) -> RequirementMap {
    // utoipa keeps the map private; its serialised form is the map itself.
    serde_json::to_value(requirement).ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
}

fn from_map(map: RequirementMap) -> SecurityRequirement {
    map.into_iter().fold(SecurityRequirement::default(), |r, (name, scopes)| r.add(name, scopes))
}

/// Both requirements: every pair of alternatives, merged (`(a1 or a2) and (b1 or b2)` is
/// `a1b1 or a1b2 or a2b1 or a2b2`). An empty list (no security) requires nothing.
fn and(existing: &[SecurityRequirement], added: &[SecurityRequirement]) -> Vec<SecurityRequirement> {
    let existing: Vec<RequirementMap> = existing.iter().map(to_map).filter(|m| !m.is_empty()).collect();
    if existing.is_empty() {
        return added.to_vec();
    }
    let added_maps: Vec<RequirementMap> = added.iter().map(to_map).collect();
    if authentication_only(&added_maps) {
        // "and a valid token" adds nothing to alternatives that already require one.
        return existing.into_iter().map(from_map).collect();
    }
    if authentication_only(&existing) {
        return added.to_vec();
    }
    let mut out = Vec::new();
    for a in &existing {
        for b in added.iter().map(to_map) {
            let mut merged = a.clone();
            for (scheme, names) in b {
                let entry = merged.entry(scheme).or_default();
                for n in names {
                    if !entry.contains(&n) {
                        entry.push(n);
                    }
                }
            }
            let merged = from_map(merged);
            if !out.contains(&merged) {
                out.push(merged);
            }
        }
    }
    out
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// `true` if `path` is `prefix` or below it (`/admin` covers `/admin` and `/admin/users/{id}`,
/// not `/administrators`).
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Adds `requirement` to every operation of `openapi` (all of them: for a router whose routes
/// are all behind a [`Require`](crate::Require)). An operation that already has a
/// requirement (its attribute) gets both: every pair of alternatives, merged.
pub fn require_all(openapi: &mut OpenApi, requirement: &Requirement) {
    require_under(openapi, "", requirement);
}

fn require_under(openapi: &mut OpenApi, prefix: &str, requirement: &Requirement) {
    let added = security_requirements(requirement);
    for (path, item) in &mut openapi.paths.paths {
        if !under(path, prefix) {
            continue;
        }
        for op in operations_mut(item) {
            op.security = Some(and(op.security.as_deref().unwrap_or_default(), &added));
        }
    }
}

/// The Entra ID security of an API's OpenAPI document, from its [`AzureAdConfig`]: the
/// [`DELEGATED_SCHEME`] and [`APP_SCHEME`] OAuth2 schemes, full scope names, and the
/// requirements of route groups protected by a [`Require`](crate::Require).
///
/// The authorization and token URLs are the configured authority's v2.0 endpoints, e.g.
/// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize` and `…/token` (Microsoft
/// identity platform, "OAuth 2.0 authorization code flow"); scopes are
/// `{Application ID URI}/{scope}` with the Application ID URI `api://{client id}` unless set
/// with [`app_id_uri`](Self::app_id_uri).
///
/// Use it as a [`utoipa::Modify`] or call [`apply`](Self::apply) on the document. See the
/// [module docs](self) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct AzureAdSecurity {
    app_id_uri: String,
    authorization_url: String,
    token_url: String,
    descriptions: BTreeMap<String, String>,
    groups: Vec<(String, Requirement)>,
}

impl AzureAdSecurity {
    /// The security of the API `config` protects. For an OpenID Connect authority that is not
    /// Entra-shaped (its endpoints come from discovery), set them with
    /// [`endpoints`](Self::endpoints).
    pub fn new(config: &AzureAdConfig) -> Self {
        let authority = config.authority();
        let base = authority.url();
        let base = base.trim_end_matches("/v2.0");
        Self {
            app_id_uri: format!("api://{}", config.client_id()),
            authorization_url: authority
                .authorize_endpoint()
                .unwrap_or_else(|| format!("{base}/oauth2/v2.0/authorize")),
            token_url: authority.token_endpoint().unwrap_or_else(|| format!("{base}/oauth2/v2.0/token")),
            descriptions: BTreeMap::new(),
            groups: Vec::new(),
        }
    }

    /// The API's Application ID URI (`identifierUris` of its app registration), when it is not
    /// `api://{client id}`: scopes become `{uri}/{scope}`.
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uri = uri.into().trim_end_matches('/').to_owned();
        self
    }

    /// The authorization and token endpoints, instead of the configured authority's v2.0 ones.
    pub fn endpoints(mut self, authorization_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        self.authorization_url = authorization_url.into();
        self.token_url = token_url.into();
        self
    }

    /// Describes a delegated scope (by its short name, e.g. `access_as_user`), as its app
    /// registration's consent text does; the scheme lists it even if no operation requires it.
    pub fn scope(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.descriptions.insert(name.into(), description.into());
        self
    }

    /// Documents the routes under `prefix` (a path of the document, e.g. `/admin`, which covers
    /// `/admin/users/{id}`) as requiring `requirement`: pass the
    /// [`Require::requirement`](crate::Require::requirement) of the layer that
    /// protects them. Operations that have their own requirement get both.
    pub fn route_group(mut self, prefix: impl Into<String>, requirement: &Requirement) -> Self {
        self.groups.push((prefix.into(), requirement.clone()));
        self
    }

    /// The full name of a delegated scope: `{Application ID URI}/{name}`. Names that already
    /// carry a URI (`api://…/x`, `https://…/x`) are kept.
    #[must_use]
    pub fn full_scope(&self, name: &str) -> String {
        if name.contains("://") { name.to_owned() } else { format!("{}/{name}", self.app_id_uri) }
    }

    /// The delegated scheme ([`DELEGATED_SCHEME`]) declaring these scopes (short or full names).
    #[must_use]
    pub fn delegated_scheme<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> SecurityScheme {
        let scopes: Scopes = scopes
            .into_iter()
            .map(|name| {
                let short = name.rsplit('/').next().unwrap_or(name);
                let description = self
                    .descriptions
                    .get(short)
                    .cloned()
                    .unwrap_or_else(|| format!("Delegated permission {short}: call the API as the signed-in user"));
                (self.full_scope(name), description)
            })
            .collect();
        SecurityScheme::OAuth2(OAuth2::with_description(
            [Flow::AuthorizationCode(AuthorizationCode::new(&self.authorization_url, &self.token_url, scopes))],
            "Microsoft Entra ID, signed-in user: authorization code flow with PKCE (RFC 7636). Requests \
             delegated permissions (scopes) of the API; the access token carries them in `scp`.",
        ))
    }

    /// The application scheme ([`APP_SCHEME`]): client credentials, scope
    /// `{Application ID URI}/.default`.
    #[must_use]
    pub fn app_scheme(&self) -> SecurityScheme {
        SecurityScheme::OAuth2(OAuth2::with_description(
            [Flow::ClientCredentials(ClientCredentials::new(
                self.token_url.clone(),
                Scopes::one(
                    self.full_scope(DEFAULT_SCOPE),
                    "The app roles (application permissions) an administrator granted the calling application"
                        .to_owned(),
                ),
            ))],
            "Microsoft Entra ID, application: client credentials flow. An operation's requirement names \
             the app roles it accepts; the access token carries them in `roles`.",
        ))
    }

    /// Adds the schemes the document's operations use, full scope names in every requirement
    /// under [`DELEGATED_SCHEME`] (operations and the document's own `security`), and the route
    /// groups' requirements.
    pub fn apply(&self, openapi: &mut OpenApi) {
        for (prefix, requirement) in &self.groups {
            require_under(openapi, prefix, requirement);
        }
        let mut delegated: Vec<String> = self.descriptions.keys().map(|s| self.full_scope(s)).collect();
        let mut uses_delegated = !delegated.is_empty();
        let mut uses_app = false;
        let mut qualify = |list: &mut Vec<SecurityRequirement>| {
            for requirement in list.iter_mut() {
                let mut map = to_map(requirement);
                if let Some(scopes) = map.get_mut(DELEGATED_SCHEME) {
                    uses_delegated = true;
                    for s in scopes.iter_mut() {
                        *s = self.full_scope(s);
                        if !delegated.contains(s) {
                            delegated.push(s.clone());
                        }
                    }
                }
                uses_app |= map.contains_key(APP_SCHEME);
                *requirement = from_map(map);
            }
        };
        if let Some(list) = openapi.security.as_mut() {
            qualify(list);
        }
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                if let Some(list) = op.security.as_mut() {
                    qualify(list);
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        if uses_delegated {
            components
                .add_security_scheme(DELEGATED_SCHEME, self.delegated_scheme(delegated.iter().map(String::as_str)));
        }
        if uses_app {
            components.add_security_scheme(APP_SCHEME, self.app_scheme());
        }
    }
}

impl utoipa::Modify for AzureAdSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        self.apply(openapi);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

    use super::*;

    const CLIENT: &str = "a1b2c3d4-0000-4000-8000-00000000a91d";
    const TENANT: &str = "7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f";

    fn config() -> AzureAdConfig {
        AzureAdConfig::builder().tenant_id(TENANT).client_id(CLIENT).build().unwrap()
    }

    fn doc(paths: &[(&str, Option<Vec<SecurityRequirement>>)]) -> OpenApi {
        let mut b = PathsBuilder::new();
        for (path, security) in paths {
            let mut op = OperationBuilder::new();
            if let Some(s) = security {
                op = op.securities(Some(s.clone()));
            }
            b = b.path(*path, PathItem::new(HttpMethod::Get, op.build()));
        }
        OpenApiBuilder::new().info(InfoBuilder::new().title("t").version("1").build()).paths(b.build()).build()
    }

    fn json(doc: &OpenApi) -> Value {
        serde_json::to_value(doc).unwrap()
    }

    fn full(s: &str) -> String {
        format!("api://{CLIENT}/{s}")
    }

    #[test]
    fn each_requirement_kind_lists_exactly_what_it_accepts() {
        let as_json = |r: Requirement| serde_json::to_value(security_requirements(&r)).unwrap();
        assert_eq!(as_json(Requirement::any_scope(["a", "b"])), json!([{"entra": ["a"]}, {"entra": ["b"]}]));
        assert_eq!(as_json(Requirement::all_scopes(["a", "b"])), json!([{"entra": ["a", "b"]}]));
        assert_eq!(as_json(Requirement::any_role(["R1", "R2"])), json!([{"entra_app": ["R1"]}, {"entra_app": ["R2"]}]));
        assert_eq!(as_json(Requirement::all_roles(["R1", "R2"])), json!([{"entra_app": ["R1", "R2"]}]));
        assert_eq!(
            as_json(Requirement::scope_or_app_permission(["Tasks.Read", "Tasks.Write"], ["Tasks.Read.All"])),
            json!([{"entra": ["Tasks.Read"]}, {"entra": ["Tasks.Write"]}, {"entra_app": ["Tasks.Read.All"]}])
        );
    }

    #[test]
    fn schemes_point_at_the_configured_authority_with_full_scope_names() {
        let mut d = doc(&[
            ("/me", Some(security_requirements(&Requirement::any_scope(["access_as_user"])))),
            (
                "/tasks",
                Some(security_requirements(&Requirement::scope_or_app_permission(["Tasks.Read"], ["Tasks.Read.All"]))),
            ),
            ("/health", None),
        ]);
        AzureAdSecurity::new(&config()).scope("access_as_user", "Access the API as you").apply(&mut d);
        let j = json(&d);
        assert_eq!(j["paths"]["/me"]["get"]["security"], json!([{"entra": [full("access_as_user")]}]));
        assert_eq!(
            j["paths"]["/tasks"]["get"]["security"],
            json!([{"entra": [full("Tasks.Read")]}, {"entra_app": ["Tasks.Read.All"]}])
        );
        assert!(j["paths"]["/health"]["get"].get("security").is_none());
        let schemes = &j["components"]["securitySchemes"];
        assert_eq!(
            schemes["entra"]["flows"],
            json!({"authorizationCode": {
                "authorizationUrl": format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"),
                "tokenUrl": format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
                "scopes": {
                    full("Tasks.Read"): "Delegated permission Tasks.Read: call the API as the signed-in user",
                    full("access_as_user"): "Access the API as you",
                },
            }})
        );
        assert_eq!(schemes["entra"]["type"], "oauth2");
        assert_eq!(
            schemes["entra_app"]["flows"],
            json!({"clientCredentials": {
                "tokenUrl": format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
                "scopes": {full(".default"): "The app roles (application permissions) an administrator granted the calling application"},
            }})
        );
        // Applying twice changes nothing (names already full are kept).
        let before = json(&d);
        AzureAdSecurity::new(&config()).scope("access_as_user", "Access the API as you").apply(&mut d);
        assert_eq!(json(&d), before);
    }

    #[test]
    fn only_the_schemes_in_use_are_declared_and_the_app_id_uri_can_be_set() {
        let mut d = doc(&[("/me", Some(security_requirements(&Requirement::all_scopes(["A", "B"]))))]);
        AzureAdSecurity::new(&config()).app_id_uri("api://contoso.com/tasks/").apply(&mut d);
        let j = json(&d);
        assert_eq!(
            j["paths"]["/me"]["get"]["security"],
            json!([{"entra": ["api://contoso.com/tasks/A", "api://contoso.com/tasks/B"]}])
        );
        assert!(j["components"]["securitySchemes"].get("entra_app").is_none());
        let mut empty = doc(&[("/health", None)]);
        AzureAdSecurity::new(&config()).apply(&mut empty);
        assert!(json(&empty)["components"].get("securitySchemes").is_none());
    }

    #[test]
    fn route_groups_cover_their_prefix_and_combine_with_an_operations_own_requirement() {
        let mut d = doc(&[
            ("/admin", None),
            ("/admin/users/{id}", Some(security_requirements(&Requirement::any_scope(["a", "b"])))),
            ("/administrators", None),
            ("/public", Some(vec![SecurityRequirement::default()])),
        ]);
        let admin = crate::Require::any_role(["Admin", "Owner"]);
        AzureAdSecurity::new(&config()).route_group("/admin/", admin.requirement()).apply(&mut d);
        let j = json(&d);
        assert_eq!(
            j["paths"]["/admin"]["get"]["security"],
            json!([{"entra_app": ["Admin"]}, {"entra_app": ["Owner"]}])
        );
        assert_eq!(
            j["paths"]["/admin/users/{id}"]["get"]["security"],
            json!([
                {"entra": [full("a")], "entra_app": ["Admin"]},
                {"entra": [full("a")], "entra_app": ["Owner"]},
                {"entra": [full("b")], "entra_app": ["Admin"]},
                {"entra": [full("b")], "entra_app": ["Owner"]},
            ])
        );
        assert!(j["paths"]["/administrators"]["get"].get("security").is_none());
        assert_eq!(j["paths"]["/public"]["get"]["security"], json!([{}]));
        let mut all = doc(&[("/x", Some(vec![SecurityRequirement::default()]))]);
        require_all(&mut all, &Requirement::all_scopes(["s"]));
        assert_eq!(json(&all)["paths"]["/x"]["get"]["security"], json!([{"entra": ["s"]}]));
    }
}
