//! Authorisation: [`Requirement`]s on validated claims (delegated scopes, app roles,
//! scope-or-app-permission, groups with overage resolved through Microsoft Graph, an
//! authentication context (step-up), allowed calling applications and tenants, no guests, or
//! any authenticated caller), and [`authorize`]/[`authorize_async`], which check one against
//! the layer's [`Authentication`]. Shared by the route-group layer ([`Require`](crate::Require)),
//! the attribute macros and the gRPC checks.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use azad_core::groups::{GraphFailure, GroupResolver};
use azad_core::{BearerToken, Claims};

use crate::extension::Authentication;
use crate::rejection::{AuthRejection, Insufficient};

type Names = Cow<'static, [Cow<'static, str>]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AnyScope,
    AllScopes,
    AnyRole,
    AllRoles,
    ScopeOrAppPermission,
    AnyGroup,
    AllGroups,
    AuthContext,
    CallerApp,
    Tenant,
    NoGuests,
    Authenticated,
}

/// What a request's claims must carry. Scope and role matching is exact and case-sensitive.
///
/// # Example
///
/// ```
/// use azad_tower::Requirement;
/// # let claims: azad_core::Claims = serde_json::from_str(r#"{"scp": "access_as_user"}"#).unwrap();
/// assert!(Requirement::any_scope(["access_as_user"]).check(&claims).is_ok());
/// assert!(Requirement::all_scopes(["access_as_user", "Files.Read"]).check(&claims).is_err());
/// assert!(Requirement::any_role(["Admin"]).check(&claims).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Requirement {
    kind: Kind,
    scopes: Names,
    roles: Names,
    values: Names,
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirement")
            .field("kind", &self.kind)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("values", &self.values)
            .finish()
    }
}

/// The outcome of [`Requirement::decide`]: met, not met, or waiting on the user's group
/// membership from Microsoft Graph (a groups overage).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The claims meet the requirement.
    Allow,
    /// They do not.
    Deny(Insufficient),
    /// A group requirement on a token with a groups overage: ask a
    /// [`GroupResolver`](azad_core::groups::GroupResolver), then [`Requirement::decide_groups`].
    ResolveGroups,
}

/// Whether a user is a guest (B2B collaboration or another identity provider) by Microsoft's
/// guidance: the optional claim `acct` is 1, or `idp` is present, differs from `iss` and is
/// not one of Entra's own issuer forms for the token's `tid` (`https://sts.windows.net/{tid}/`,
/// `https://login.microsoftonline.com/{tid}/v2.0` and their US Government and China forms).
/// So another Entra tenant, a Microsoft account (`live.com`), a SAML/WS-Fed partner (whose
/// issuer URI the partner chooses, even one containing this tenant's id) or a social provider
/// is a guest's home. On Entra External ID and B2C, customers who sign in with a social
/// provider carry such an `idp` too: refuse guests only on workforce tenants.
/// App-only tokens are never guests. Source: the
/// [access token claims reference](https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference)
/// (`idp`) and [optional claims](https://learn.microsoft.com/entra/identity-platform/optional-claims-reference) (`acct`).
#[must_use]
pub fn is_guest(claims: &Claims) -> bool {
    if claims.is_app_only() {
        return false;
    }
    let acct = claims.get("acct");
    if acct.is_some_and(|a| a.as_i64() == Some(1) || a.as_str() == Some("1")) {
        return true;
    }
    let Some(idp) = claims.get("idp").and_then(serde_json::Value::as_str) else {
        return false;
    };
    // An `idp` that names this very tenant in one of Entra's issuer forms is the tenant itself
    // (a member); any other `idp` (another Entra tenant, a SAML/WS-Fed partner whose issuer URI
    // the partner chooses, a Microsoft account, a social provider) is a guest's home.
    let Some(tid) = claims.tenant_id() else {
        return idp != claims.issuer();
    };
    idp != claims.issuer() && !is_entra_issuer_of(idp, tid)
}

/// Whether `idp` is exactly one of Entra's issuer forms for tenant `tid` (v1.0 and v2.0, in
/// the public, US Government and China clouds).
fn is_entra_issuer_of(idp: &str, tid: &str) -> bool {
    const V1_HOSTS: [&str; 2] = ["https://sts.windows.net/", "https://sts.chinacloudapi.cn/"];
    const V2_HOSTS: [&str; 3] = [
        "https://login.microsoftonline.com/",
        "https://login.microsoftonline.us/",
        "https://login.partner.microsoftonline.cn/",
    ];
    let tenant_then = |rest: &str, suffix: &str| {
        rest.strip_suffix(suffix).is_some_and(|t| azad_core::is_guid(t) && t.eq_ignore_ascii_case(tid))
    };
    V1_HOSTS.iter().any(|h| idp.strip_prefix(h).is_some_and(|rest| tenant_then(rest, "/")))
        || V2_HOSTS.iter().any(|h| idp.strip_prefix(h).is_some_and(|rest| tenant_then(rest, "/v2.0")))
}

const NONE: Names = Cow::Borrowed(&[]);

const NOT_A_MEMBER: &str = "The caller is not a member of the required group";

fn owned<I, S>(names: I) -> Names
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Cow::Owned(names.into_iter().map(|s| Cow::Owned(s.into())).collect())
}

impl Requirement {
    /// Any one of these delegated scopes (`scp`).
    pub fn any_scope<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self { kind: Kind::AnyScope, scopes: owned(scopes), roles: NONE, values: NONE }
    }

    /// All of these delegated scopes.
    /// An empty list is met by no caller (never read as "nothing to require").
    pub fn all_scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self { kind: Kind::AllScopes, scopes: owned(scopes), roles: NONE, values: NONE }
    }

    /// Any one of these app roles (`roles`), whether the caller is a user or an application.
    pub fn any_role<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self { kind: Kind::AnyRole, scopes: NONE, roles: owned(roles), values: NONE }
    }

    /// All of these app roles.
    /// An empty list is met by no caller (never read as "nothing to require").
    pub fn all_roles<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self { kind: Kind::AllRoles, scopes: NONE, roles: owned(roles), values: NONE }
    }

    /// A delegated token needs one of `scopes`; an app-only token needs one of
    /// `app_permissions` (app roles). Never interchangeable: a user's app role does not stand
    /// in for a scope, and an application cannot present a scope.
    pub fn scope_or_app_permission<I, S, J, T>(scopes: I, app_permissions: J) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
        J: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self { kind: Kind::ScopeOrAppPermission, scopes: owned(scopes), roles: owned(app_permissions), values: NONE }
    }

    fn with_values<I: IntoIterator<Item = S>, S: Into<String>>(kind: Kind, values: I) -> Self {
        Self { kind, scopes: NONE, roles: NONE, values: owned(values) }
    }

    /// Membership in any one of these groups (object ids, matched case-insensitively against
    /// the `groups` claim). For a token with a groups overage the membership is resolved
    /// through Microsoft Graph by the [`GroupResolver`](azad_core::groups::GroupResolver)
    /// given to the `AzureAdAuth` layer ([`AzureAdAuth::with_group_resolver`](crate::AzureAdAuth::with_group_resolver)).
    pub fn any_group<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        Self::with_values(Kind::AnyGroup, groups)
    }

    /// Membership in all of these groups.
    /// An empty list is met by no caller (never read as "nothing to require").
    pub fn all_groups<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        Self::with_values(Kind::AllGroups, groups)
    }

    /// A Conditional Access authentication context (`c1` to `c99`): the token's `acrs` must
    /// hold one of `contexts`. Otherwise the answer is 401 `insufficient_claims` with a claims
    /// challenge in Microsoft's shape, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
    /// (`"values":[…]` for several), which MSAL clients satisfy by acquiring a new token with
    /// it. App-only tokens cannot step up: 403. Source: [Developer guide to Conditional Access
    /// authentication context](https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context).
    pub fn auth_context<I: IntoIterator<Item = S>, S: Into<String>>(contexts: I) -> Self {
        Self::with_values(Kind::AuthContext, contexts)
    }

    /// Only these calling applications (client ids, read from `azp` in v2.0 tokens and
    /// `appid` in v1.0 tokens). 403 for any other.
    pub fn caller_app<I: IntoIterator<Item = S>, S: Into<String>>(client_ids: I) -> Self {
        Self::with_values(Kind::CallerApp, client_ids)
    }

    /// Only callers of these tenants (`tid`, compared case-insensitively). 403 for any other.
    pub fn tenant<I: IntoIterator<Item = S>, S: Into<String>>(tenant_ids: I) -> Self {
        Self::with_values(Kind::Tenant, tenant_ids)
    }

    /// No guest users (see [`is_guest`]). 403 for a guest; applications pass.
    #[must_use]
    pub fn no_guests() -> Self {
        Self { kind: Kind::NoGuests, scopes: NONE, roles: NONE, values: NONE }
    }

    /// Any authenticated caller: an explicit declaration that a route needs a valid token and
    /// nothing more (401 for an anonymous request behind an optional layer).
    #[must_use]
    pub fn authenticated() -> Self {
        Self { kind: Kind::Authenticated, scopes: NONE, roles: NONE, values: NONE }
    }

    // The constructors the attribute macros expand to, in constants: one named constructor
    // per shape, so that azad-macros and azad-tower agree by name, never by a number.
    #[doc(hidden)]
    #[must_use]
    pub const fn __any_scope(names: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AnyScope, scopes: Cow::Borrowed(names), roles: NONE, values: NONE }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __all_scopes(names: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AllScopes, scopes: Cow::Borrowed(names), roles: NONE, values: NONE }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __any_role(names: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AnyRole, roles: Cow::Borrowed(names), scopes: NONE, values: NONE }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __all_roles(names: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AllRoles, roles: Cow::Borrowed(names), scopes: NONE, values: NONE }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __scope_or_app_permission(
        scopes: &'static [Cow<'static, str>],
        app_permissions: &'static [Cow<'static, str>],
    ) -> Self {
        Self {
            kind: Kind::ScopeOrAppPermission,
            scopes: Cow::Borrowed(scopes),
            roles: Cow::Borrowed(app_permissions),
            values: NONE,
        }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __any_group(values: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AnyGroup, scopes: NONE, roles: NONE, values: Cow::Borrowed(values) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __all_groups(values: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AllGroups, scopes: NONE, roles: NONE, values: Cow::Borrowed(values) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __auth_context(values: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::AuthContext, scopes: NONE, roles: NONE, values: Cow::Borrowed(values) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __caller_app(values: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::CallerApp, scopes: NONE, roles: NONE, values: Cow::Borrowed(values) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __tenant(values: &'static [Cow<'static, str>]) -> Self {
        Self { kind: Kind::Tenant, scopes: NONE, roles: NONE, values: Cow::Borrowed(values) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __no_guests() -> Self {
        Self { kind: Kind::NoGuests, scopes: NONE, roles: NONE, values: NONE }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __authenticated() -> Self {
        Self { kind: Kind::Authenticated, scopes: NONE, roles: NONE, values: NONE }
    }

    /// The group ids, authentication contexts, client ids or tenant ids named by this
    /// requirement (empty for the others).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(AsRef::as_ref)
    }

    /// What this requirement is, in a short form for route listings and logs:
    /// `scope(any: a, b)`, `role(all: Admin)`, `group(any: …)`, `auth_context(c1)`,
    /// `caller_app(…)`, `tenant(…)`, `no_guests`, `authenticated`...
    #[must_use]
    pub fn summary(&self) -> String {
        let list = |n: &Names| n.iter().map(AsRef::as_ref).collect::<Vec<&str>>().join(", ");
        match self.kind {
            Kind::AnyScope => format!("scope(any: {})", list(&self.scopes)),
            Kind::AllScopes => format!("scope(all: {})", list(&self.scopes)),
            Kind::AnyRole => format!("role(any: {})", list(&self.roles)),
            Kind::AllRoles => format!("role(all: {})", list(&self.roles)),
            Kind::ScopeOrAppPermission => {
                format!("scope({}) or app_permission({})", list(&self.scopes), list(&self.roles))
            }
            Kind::AnyGroup => format!("group(any: {})", list(&self.values)),
            Kind::AllGroups => format!("group(all: {})", list(&self.values)),
            Kind::AuthContext => format!("auth_context({})", list(&self.values)),
            Kind::CallerApp => format!("caller_app({})", list(&self.values)),
            Kind::Tenant => format!("tenant({})", list(&self.values)),
            Kind::NoGuests => "no_guests".to_owned(),
            Kind::Authenticated => "authenticated".to_owned(),
        }
    }

    /// Whether this is a group requirement (the only kind that may need Microsoft Graph).
    #[must_use]
    pub fn is_group(&self) -> bool {
        matches!(self.kind, Kind::AnyGroup | Kind::AllGroups)
    }

    /// Decides on validated claims without any I/O. Only a group requirement on a token with a
    /// groups overage answers [`Decision::ResolveGroups`].
    #[must_use]
    pub fn decide(&self, claims: &Claims) -> Decision {
        if self.is_group() && azad_core::groups::has_group_overage(claims) {
            return Decision::ResolveGroups;
        }
        match self.check(claims) {
            Ok(()) => Decision::Allow,
            Err(i) => Decision::Deny(i),
        }
    }

    /// Decides a group requirement from the groups the user is a member of (as a
    /// [`GroupResolver`](azad_core::groups::GroupResolver) found them).
    ///
    /// # Errors
    ///
    /// [`Insufficient`] when the membership falls short (or this is not a group requirement).
    pub fn decide_groups<S: AsRef<str>>(&self, member_of: &[S]) -> Result<(), Insufficient> {
        let member = |g: &Cow<'static, str>| member_of.iter().any(|m| m.as_ref().eq_ignore_ascii_case(g));
        let ok = match self.kind {
            Kind::AnyGroup => self.values.iter().any(member),
            Kind::AllGroups => !self.values.is_empty() && self.values.iter().all(member),
            _ => false,
        };
        if ok { Ok(()) } else { Err(Insufficient::new(NOT_A_MEMBER)) }
    }

    /// The claims challenge JSON of an authentication-context requirement.
    fn auth_context_challenge(&self) -> String {
        let acrs = match self.values.as_ref() {
            [one] => serde_json::json!({"essential": true, "value": one.as_ref()}),
            many => {
                serde_json::json!({"essential": true, "values": many.iter().map(AsRef::as_ref).collect::<Vec<_>>()})
            }
        };
        serde_json::json!({"access_token": {"acrs": acrs}}).to_string()
    }

    /// The scopes named by this requirement.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(AsRef::as_ref)
    }

    /// The app roles (app permissions) named by this requirement.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(AsRef::as_ref)
    }

    /// The ways to satisfy this requirement, each a set of delegated scopes and app roles that
    /// must all be present (any-of becomes several alternatives, all-of one): the shape of an
    /// OpenAPI `security` list, built by [`crate::openapi`].
    #[cfg(feature = "utoipa")]
    pub(crate) fn alternatives(&self) -> Vec<(Vec<&str>, Vec<&str>)> {
        fn one(names: &Names) -> Vec<&str> {
            names.iter().map(AsRef::as_ref).collect()
        }
        fn each(names: &Names) -> Vec<Vec<&str>> {
            names.iter().map(|n| vec![n.as_ref()]).collect()
        }
        match self.kind {
            Kind::AnyScope => each(&self.scopes).into_iter().map(|s| (s, Vec::new())).collect(),
            Kind::AllScopes => vec![(one(&self.scopes), Vec::new())],
            Kind::AnyRole => each(&self.roles).into_iter().map(|r| (Vec::new(), r)).collect(),
            Kind::AllRoles => vec![(Vec::new(), one(&self.roles))],
            Kind::ScopeOrAppPermission => {
                let scopes = each(&self.scopes).into_iter().map(|s| (s, Vec::new()));
                scopes.chain(each(&self.roles).into_iter().map(|r| (Vec::new(), r))).collect()
            }
            // No OAuth scope expresses these: a valid token is all the document can say.
            Kind::AnyGroup
            | Kind::AllGroups
            | Kind::AuthContext
            | Kind::CallerApp
            | Kind::Tenant
            | Kind::NoGuests
            | Kind::Authenticated => vec![(Vec::new(), Vec::new())],
        }
    }

    /// Checks validated claims, synchronously. A group requirement on a token with a groups
    /// overage fails here (fail closed); [`decide`](Self::decide) tells that case apart.
    ///
    /// # Errors
    ///
    /// [`Insufficient`], naming the scopes to request where scopes would help, or carrying a
    /// claims challenge for an authentication context.
    pub fn check(&self, claims: &Claims) -> Result<(), Insufficient> {
        let scopes_hint = || self.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = match self.kind {
            Kind::AnyScope => !claims.is_app_only() && self.scopes.iter().any(|s| claims.has_scope(s)),
            // "All of nothing" is refused: an empty list is a configuration mistake, never a
            // way to let every caller in.
            Kind::AllScopes => {
                !claims.is_app_only() && !self.scopes.is_empty() && self.scopes.iter().all(|s| claims.has_scope(s))
            }
            Kind::AnyRole => self.roles.iter().any(|r| claims.has_role(r)),
            Kind::AllRoles => !self.roles.is_empty() && self.roles.iter().all(|r| claims.has_role(r)),
            Kind::ScopeOrAppPermission => {
                if claims.is_app_only() {
                    self.roles.iter().any(|r| claims.has_role(r))
                } else {
                    self.scopes.iter().any(|s| claims.has_scope(s))
                }
            }
            _ => return self.check_other(claims),
        };
        if ok {
            return Ok(());
        }
        Err(match self.kind {
            Kind::ScopeOrAppPermission if claims.is_app_only() => {
                Insufficient::new("The application does not have the required app permission")
            }
            Kind::AnyScope | Kind::AllScopes | Kind::ScopeOrAppPermission => Insufficient {
                required_scopes: scopes_hint(),
                description: "The access token does not carry the required scope",
                claims: None,
            },
            _ => Insufficient::new("The access token does not carry the required app role"),
        })
    }

    /// The kinds beyond scopes and roles.
    fn check_other(&self, claims: &Claims) -> Result<(), Insufficient> {
        let listed = |v: Option<&str>| v.is_some_and(|v| self.values.iter().any(|x| x.eq_ignore_ascii_case(v)));
        let (ok, description) = match self.kind {
            Kind::AnyGroup | Kind::AllGroups => {
                if azad_core::groups::has_group_overage(claims) {
                    (false, "Group membership must be resolved through Microsoft Graph")
                } else {
                    return self.decide_groups(claims.groups());
                }
            }
            Kind::AuthContext => {
                if claims.is_app_only() {
                    (false, "An application token cannot satisfy an authentication context")
                } else if self.values.iter().any(|c| claims.acrs().iter().any(|a| a.eq_ignore_ascii_case(c))) {
                    (true, "")
                } else {
                    return Err(Insufficient {
                        required_scopes: Vec::new(),
                        description: "The access token does not satisfy the required authentication context",
                        claims: Some(self.auth_context_challenge()),
                    });
                }
            }
            Kind::CallerApp => {
                (listed(claims.client_app_id()), "The calling application is not allowed to call this API")
            }
            Kind::Tenant => (listed(claims.tenant_id()), "Callers of this tenant are not allowed"),
            Kind::NoGuests => (!is_guest(claims), "Guest users are not allowed"),
            _ => (true, ""),
        };
        if ok { Ok(()) } else { Err(Insufficient::new(description)) }
    }
}

/// A pending group resolution: what it needs, owned, so that its future is `'static`.
pub(crate) struct Resolution {
    claims: Arc<Claims>,
    token: Option<BearerToken>,
    resolver: Option<GroupResolver>,
}

/// The synchronous start of an authorisation: decided, or a group resolution to await.
pub(crate) enum Start {
    /// Decided (met: nothing to hand back, so a check that only needs the decision takes no
    /// reference to the claims).
    Done(Result<(), AuthRejection>),
    Resolve(Resolution),
}

const NOT_RESOLVABLE: &str = "Group membership cannot be resolved for this token";

fn rejection_of(insufficient: Insufficient) -> AuthRejection {
    if insufficient.claims.is_some() {
        AuthRejection::InsufficientClaims(insufficient)
    } else {
        AuthRejection::Forbidden(insufficient)
    }
}

/// Starts checking `requirement` against the layer's result: decided at once, or a group
/// resolution to await.
pub(crate) fn start(authentication: &Authentication, requirement: &Requirement) -> Start {
    let claims = match authentication.require() {
        Ok(claims) => claims,
        Err(rejection) => return Start::Done(Err(rejection)),
    };
    match requirement.decide(claims) {
        Decision::Allow => Start::Done(Ok(())),
        Decision::ResolveGroups => Start::Resolve(Resolution {
            claims: claims.clone(),
            token: authentication.token().cloned(),
            resolver: authentication.group_resolver().cloned(),
        }),
        Decision::Deny(i) => Start::Done(Err(rejection_of(i))),
    }
}

impl Resolution {
    pub(crate) async fn run(self, requirement: &Requirement) -> Result<Arc<Claims>, AuthRejection> {
        static NO_RESOLVER_LOGGED: AtomicBool = AtomicBool::new(false);
        let Some(resolver) = self.resolver else {
            if !NO_RESOLVER_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    target: "azad::auth",
                    "a token with a groups overage reached a group requirement, but no GroupResolver is configured: add `AzureAdAuth::with_group_resolver(GroupResolver::new(&config, token_client))`; such requests are refused with 500"
                );
            }
            return Err(AuthRejection::MissingLayer);
        };
        let groups: Vec<&str> = requirement.values().collect();
        match resolver.member_groups(&self.claims, self.token.as_ref(), &groups).await {
            Ok(member_of) => requirement.decide_groups(&member_of).map(|()| self.claims).map_err(rejection_of),
            // No user to look up (an application's token under on-behalf-of): not a member,
            // and nothing to retry.
            Err(azad_core::groups::GroupError::NoUser) => Err(AuthRejection::Forbidden(Insufficient {
                required_scopes: Vec::new(),
                description: NOT_RESOLVABLE,
                claims: None,
            })),
            Err(e) => {
                if let Some(claims) = e.claims_challenge() {
                    return Err(AuthRejection::InsufficientClaims(Insufficient {
                        required_scopes: Vec::new(),
                        description: "Microsoft Graph requires the user to sign in again",
                        claims: Some(claims),
                    }));
                }
                Err(match resolver.failure() {
                    GraphFailure::Forbidden => AuthRejection::Forbidden(Insufficient {
                        required_scopes: Vec::new(),
                        description: "Group membership could not be checked",
                        claims: None,
                    }),
                    _ => AuthRejection::GroupsUnavailable { retry_after: e.retry_after() },
                })
            }
        }
    }
}

/// Like [`authorize`], resolving a groups overage through the
/// [`GroupResolver`] of the layer (inserted by
/// [`AzureAdAuth::with_group_resolver`](crate::AzureAdAuth::with_group_resolver)). Returns at
/// once, without awaiting anything, for every other requirement.
///
/// # Errors
///
/// As [`authorize`]; in addition [`AuthRejection::GroupsUnavailable`] (or `Forbidden`, as the
/// resolver is configured) when Microsoft Graph cannot answer, and
/// [`AuthRejection::MissingLayer`] when a groups overage meets no resolver.
pub async fn authorize_async(
    extensions: &http::Extensions,
    requirement: &Requirement,
) -> Result<Arc<Claims>, AuthRejection> {
    let authentication = Authentication::of(extensions)?;
    match start(authentication, requirement) {
        Start::Done(result) => result.and_then(|()| authentication.require().cloned()),
        // Boxed: the resolution (a Microsoft Graph call) is a future of several kilobytes;
        // held inline, it would make every caller's future that large (the axum guard's
        // handler future is allocated and moved on every request) for a path few requests take.
        Start::Resolve(resolution) => Box::pin(resolution.run(requirement)).await,
    }
}

/// [`authorize_async`] for a check that only needs the decision (the axum attribute guards):
/// the same answers, without a reference to the claims taken and dropped on every request.
///
/// # Errors
///
/// As [`authorize_async`].
#[doc(hidden)]
pub async fn check_async(extensions: &http::Extensions, requirement: &Requirement) -> Result<(), AuthRejection> {
    match start(Authentication::of(extensions)?, requirement) {
        Start::Done(result) => result,
        Start::Resolve(resolution) => Box::pin(resolution.run(requirement)).await.map(drop),
    }
}

/// Checks the claims the [`AzureAdAuth`](crate::AzureAdAuth) layer stored in `extensions`
/// against `requirement`.
///
/// Synchronous: a group requirement on a token with a groups overage is refused here (use
/// [`authorize_async`] to resolve it).
///
/// # Errors
///
/// [`AuthRejection::Forbidden`] when the claims fall short, [`AuthRejection::InsufficientClaims`]
/// for a missing authentication context, [`AuthRejection::MissingToken`] for an anonymous
/// request (optional layer), and [`AuthRejection::MissingLayer`] when no `AzureAdAuth` layer
/// ran: the check fails closed.
pub fn authorize(extensions: &http::Extensions, requirement: &Requirement) -> Result<Arc<Claims>, AuthRejection> {
    let claims = Authentication::of(extensions)?.require()?;
    requirement.check(claims).map(|()| claims.clone()).map_err(rejection_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        serde_json::from_str(json).unwrap()
    }

    /// The futures every guarded request allocates and moves (`check_async` in the axum
    /// guards, `authorize_async` in handlers) stay small: the rare group resolution (a Graph
    /// call, kilobytes of state) is boxed only when it runs. It was about 10 KB inline, copied
    /// on every request.
    #[test]
    fn the_authorization_future_stays_small() {
        let extensions = http::Extensions::new();
        let requirement = Requirement::any_scope(["access_as_user"]);
        let future = authorize_async(&extensions, &requirement);
        assert!(size_of_val(&future) <= 256, "{} bytes", size_of_val(&future));
        let future = check_async(&extensions, &requirement);
        assert!(size_of_val(&future) <= 256, "{} bytes", size_of_val(&future));
    }

    /// `check_async` decides as `authorize_async` does, failing closed the same way, and
    /// `authorize_async` hands back the layer's own claims (the same `Arc`, not a copy).
    #[tokio::test]
    async fn both_async_checks_decide_alike_and_fail_closed() {
        let requirement = Requirement::any_scope(["access_as_user"]);
        let missing = http::Extensions::new();
        assert!(matches!(authorize_async(&missing, &requirement).await, Err(AuthRejection::MissingLayer)));
        assert!(matches!(check_async(&missing, &requirement).await, Err(AuthRejection::MissingLayer)));
        let mut anonymous = http::Extensions::new();
        anonymous.insert(Authentication::anonymous());
        assert!(matches!(authorize_async(&anonymous, &requirement).await, Err(AuthRejection::MissingToken)));
        assert!(matches!(check_async(&anonymous, &requirement).await, Err(AuthRejection::MissingToken)));
        for (scp, allowed) in [("access_as_user", true), ("Files.Read", false)] {
            let json = format!(r#"{{"scp":"{scp}","oid":"o","sub":"s"}}"#);
            let claims = Arc::new(claims(&json));
            let mut extensions = http::Extensions::new();
            extensions.insert(Authentication::authenticated(claims.clone(), BearerToken::new("t")));
            let authorized = authorize_async(&extensions, &requirement).await;
            assert_eq!(authorized.is_ok(), allowed, "{scp}");
            assert_eq!(check_async(&extensions, &requirement).await.is_ok(), allowed, "{scp}");
            if let Ok(handed) = authorized {
                assert!(Arc::ptr_eq(&handed, &claims));
            } else {
                assert!(matches!(check_async(&extensions, &requirement).await, Err(AuthRejection::Forbidden(_))));
            }
        }
    }

    #[test]
    fn scopes_are_exact_and_case_sensitive() {
        let c = claims(r#"{"scp":"access_as_user Files.Read"}"#);
        assert!(Requirement::any_scope(["access_as_user"]).check(&c).is_ok());
        assert!(Requirement::any_scope(["Access_As_User"]).check(&c).is_err());
        assert!(Requirement::any_scope(["access"]).check(&c).is_err());
        assert!(Requirement::any_scope(["access_as_user Files.Read"]).check(&c).is_err());
        assert!(Requirement::any_scope(["x", "Files.Read"]).check(&c).is_ok());
        assert!(Requirement::all_scopes(["Files.Read", "access_as_user"]).check(&c).is_ok());
        let e = Requirement::all_scopes(["Files.Read", "Files.Write"]).check(&c).unwrap_err();
        assert_eq!(e.required_scopes, ["Files.Read", "Files.Write"]);
    }

    #[test]
    fn roles() {
        let c = claims(r#"{"roles":["Admin","Reader"],"idtyp":"app"}"#);
        assert!(Requirement::any_role(["Admin"]).check(&c).is_ok());
        assert!(Requirement::all_roles(["Admin", "Reader"]).check(&c).is_ok());
        assert!(Requirement::all_roles(["Admin", "Writer"]).check(&c).is_err());
        let e = Requirement::any_role(["admin"]).check(&c).unwrap_err();
        assert!(e.required_scopes.is_empty());
    }

    #[test]
    fn scope_or_app_permission_never_interchangeable() {
        let req = Requirement::scope_or_app_permission(["Tasks.Read"], ["Tasks.Read.All"]);
        let user = claims(r#"{"scp":"Tasks.Read"}"#);
        let user_with_role = claims(r#"{"scp":"Other","roles":["Tasks.Read.All"]}"#);
        let app = claims(r#"{"idtyp":"app","roles":["Tasks.Read.All"]}"#);
        let app_claiming_scope = claims(r#"{"idtyp":"app","scp":"Tasks.Read","roles":["Other"]}"#);
        assert!(req.check(&user).is_ok());
        assert!(req.check(&user_with_role).is_err(), "a user's app role is not a scope");
        assert!(req.check(&app).is_ok());
        assert!(req.check(&app_claiming_scope).is_err(), "an app cannot present a scope");
        // A user (no `idtyp`, pairwise `sub`) holding the app role and no `scp` is delegated:
        // the role is no application permission.
        let user_role_no_scp = claims(r#"{"roles":["Tasks.Read.All"],"oid":"o","sub":"pairwise"}"#);
        let e = req.check(&user_role_no_scp).unwrap_err();
        assert_eq!(e.required_scopes, ["Tasks.Read"]);
        // Without `idtyp`, an application is known by `oid == sub`.
        let app_v1 = claims(r#"{"roles":["Tasks.Read.All"],"oid":"sp","sub":"sp"}"#);
        assert!(req.check(&app_v1).is_ok());
        // A plain scope requirement refuses app-only tokens even if they carry `scp`.
        assert!(Requirement::any_scope(["Tasks.Read"]).check(&app_claiming_scope).is_err());
    }

    #[test]
    fn groups_from_the_claim_or_resolved() {
        let c = claims(r#"{"groups":["A1B2","c3d4"]}"#);
        assert!(Requirement::any_group(["a1b2"]).check(&c).is_ok());
        assert!(Requirement::all_groups(["a1b2", "C3D4"]).check(&c).is_ok());
        assert!(Requirement::all_groups(["a1b2", "e5"]).check(&c).is_err());
        assert_eq!(Requirement::any_group(["e5"]).decide(&c), Decision::Deny(Insufficient::new(NOT_A_MEMBER)));
        let overage = claims(r#"{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"x"}}}"#);
        let req = Requirement::all_groups(["g1", "g2"]);
        assert_eq!(req.decide(&overage), Decision::ResolveGroups);
        assert!(req.check(&overage).is_err(), "the synchronous check fails closed");
        assert!(req.decide_groups(&["G1", "g2"]).is_ok());
        assert!(req.decide_groups(&["g1"]).is_err());
        // Only group requirements wait for Graph.
        assert_eq!(Requirement::authenticated().decide(&overage), Decision::Allow);
    }

    #[test]
    fn auth_context_challenges_in_microsofts_shape() {
        let req = Requirement::auth_context(["c1"]);
        assert!(req.check(&claims(r#"{"acrs":["c2","c1"]}"#)).is_ok());
        let e = req.check(&claims(r#"{"acrs":["c2"]}"#)).unwrap_err();
        assert_eq!(e.claims.as_deref(), Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#));
        let e = Requirement::auth_context(["c1", "c2"]).check(&claims("{}")).unwrap_err();
        assert_eq!(e.claims.as_deref(), Some(r#"{"access_token":{"acrs":{"essential":true,"values":["c1","c2"]}}}"#));
        let app = claims(r#"{"idtyp":"app","roles":["x"]}"#);
        assert_eq!(req.check(&app).unwrap_err().claims, None, "an app cannot step up");
    }

    #[test]
    fn callers_tenants_and_guests() {
        let v2 = claims(r#"{"azp":"C0FFEE","tid":"T1","iss":"https://login.microsoftonline.com/t1/v2.0"}"#);
        let v1 = claims(r#"{"appid":"c0ffee","tid":"t1"}"#);
        let caller = Requirement::caller_app(["c0ffee"]);
        assert!(caller.check(&v2).is_ok() && caller.check(&v1).is_ok());
        assert!(Requirement::caller_app(["other"]).check(&v2).is_err());
        assert!(Requirement::tenant(["t1"]).check(&v2).is_ok());
        assert!(Requirement::tenant(["t2"]).check(&v1).is_err());
        assert!(Requirement::caller_app(["c0ffee"]).check(&claims("{}")).is_err(), "no azp/appid: refused");

        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let member = |extra: &str| {
            claims(&format!(r#"{{"tid":"{tid}","iss":"https://sts.windows.net/{tid}/","oid":"o","sub":"s"{extra}}}"#))
        };
        assert!(!is_guest(&member("")));
        assert!(!is_guest(&member(&format!(r#","idp":"https://sts.windows.net/{}/""#, tid.to_uppercase()))));
        assert!(is_guest(&member(r#","idp":"https://sts.windows.net/0e1f2a3b-5555-4c2d-9e8f-0a1b2c3d4e5f/""#)));
        assert!(is_guest(&member(r#","idp":"live.com""#)));
        assert!(is_guest(&member(r#","acct":1"#)));
        assert!(!is_guest(&member(r#","acct":0"#)));
        assert!(!is_guest(&claims(r#"{"idtyp":"app","acct":1}"#)));
        assert!(Requirement::no_guests().check(&member(r#","acct":"1""#)).is_err());
        // A federation partner's issuer URI is the partner's choice: one that contains this
        // tenant's id is still not Entra's issuer for it.
        assert!(is_guest(&member(&format!(r#","idp":"https://idp.partner.example/{tid}/""#))));
        assert!(is_guest(&member(&format!(r#","idp":"https://sts.windows.net/{tid}/x/""#))));
        assert!(!is_guest(&member(&format!(r#","idp":"https://login.microsoftonline.com/{tid}/v2.0""#))));
    }

    #[test]
    fn all_of_an_empty_list_refuses() {
        let c = claims(r#"{"scp":"a","roles":["R"],"groups":["g"]}"#);
        let none: [&str; 0] = [];
        assert!(Requirement::all_scopes(none).check(&c).is_err());
        assert!(Requirement::all_roles(none).check(&c).is_err());
        assert!(Requirement::all_groups(none).check(&c).is_err());
        assert!(Requirement::all_groups(none).decide_groups(&["g"]).is_err());
        assert!(Requirement::any_scope(none).check(&c).is_err());
    }

    #[test]
    fn summaries_for_route_listings() {
        assert_eq!(Requirement::any_scope(["a", "b"]).summary(), "scope(any: a, b)");
        assert_eq!(Requirement::all_groups(["g"]).summary(), "group(all: g)");
        assert_eq!(Requirement::auth_context(["c1"]).summary(), "auth_context(c1)");
        assert_eq!(Requirement::no_guests().summary(), "no_guests");
        const R: Requirement = Requirement::__caller_app(&[Cow::Borrowed("x")]);
        assert_eq!(R, Requirement::caller_app(["x"]));
        assert_eq!(Requirement::__authenticated(), Requirement::authenticated());
    }

    #[test]
    fn static_requirements() {
        const REQ: Requirement = Requirement::__any_scope(&[Cow::Borrowed("a")]);
        assert!(REQ.check(&claims(r#"{"scp":"a"}"#)).is_ok());
        assert_eq!(REQ, Requirement::any_scope(["a"]));
    }
}
