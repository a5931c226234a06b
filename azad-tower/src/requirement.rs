//! Authorisation requirements on validated claims: delegated scopes, app roles, or
//! scope-or-app-permission. Shared by the tower layers and the attribute macros.

use std::borrow::Cow;
use std::fmt;

use azad_core::Claims;

type Names = Cow<'static, [Cow<'static, str>]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AnyScope,
    AllScopes,
    AnyRole,
    AllRoles,
    ScopeOrAppPermission,
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
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirement")
            .field("kind", &self.kind)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .finish()
    }
}

/// Why claims did not meet a [`Requirement`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Insufficient {
    /// The scopes that would satisfy the requirement (for the `scope` auth-param); empty when
    /// the requirement is about app roles.
    pub required_scopes: Vec<String>,
    /// A fixed description, safe for clients.
    pub description: &'static str,
}

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
        Self { kind: Kind::AnyScope, scopes: owned(scopes), roles: Cow::Borrowed(&[]) }
    }

    /// All of these delegated scopes.
    pub fn all_scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self { kind: Kind::AllScopes, scopes: owned(scopes), roles: Cow::Borrowed(&[]) }
    }

    /// Any one of these app roles (`roles`), whether the caller is a user or an application.
    pub fn any_role<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self { kind: Kind::AnyRole, scopes: Cow::Borrowed(&[]), roles: owned(roles) }
    }

    /// All of these app roles.
    pub fn all_roles<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self { kind: Kind::AllRoles, scopes: Cow::Borrowed(&[]), roles: owned(roles) }
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
        Self { kind: Kind::ScopeOrAppPermission, scopes: owned(scopes), roles: owned(app_permissions) }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __from_static(
        kind: u8,
        scopes: &'static [Cow<'static, str>],
        roles: &'static [Cow<'static, str>],
    ) -> Self {
        let kind = match kind {
            0 => Kind::AnyScope,
            1 => Kind::AllScopes,
            2 => Kind::AnyRole,
            3 => Kind::AllRoles,
            _ => Kind::ScopeOrAppPermission,
        };
        Self { kind, scopes: Cow::Borrowed(scopes), roles: Cow::Borrowed(roles) }
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
        }
    }

    /// Checks validated claims.
    ///
    /// # Errors
    ///
    /// [`Insufficient`], naming the scopes to request where scopes would help.
    pub fn check(&self, claims: &Claims) -> Result<(), Insufficient> {
        let scopes_hint = || self.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = match self.kind {
            Kind::AnyScope => !claims.is_app_only() && self.scopes.iter().any(|s| claims.has_scope(s)),
            Kind::AllScopes => !claims.is_app_only() && self.scopes.iter().all(|s| claims.has_scope(s)),
            Kind::AnyRole => self.roles.iter().any(|r| claims.has_role(r)),
            Kind::AllRoles => self.roles.iter().all(|r| claims.has_role(r)),
            Kind::ScopeOrAppPermission => {
                if claims.is_app_only() {
                    self.roles.iter().any(|r| claims.has_role(r))
                } else {
                    self.scopes.iter().any(|s| claims.has_scope(s))
                }
            }
        };
        if ok {
            return Ok(());
        }
        Err(match self.kind {
            Kind::AnyRole | Kind::AllRoles => Insufficient {
                required_scopes: Vec::new(),
                description: "The access token does not carry the required app role",
            },
            Kind::ScopeOrAppPermission if claims.is_app_only() => Insufficient {
                required_scopes: Vec::new(),
                description: "The application does not have the required app permission",
            },
            Kind::AnyScope | Kind::AllScopes | Kind::ScopeOrAppPermission => Insufficient {
                required_scopes: scopes_hint(),
                description: "The access token does not carry the required scope",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        serde_json::from_str(json).unwrap()
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
    fn static_requirements() {
        const REQ: Requirement = Requirement::__from_static(0, &[Cow::Borrowed("a")], &[]);
        assert!(REQ.check(&claims(r#"{"scp":"a"}"#)).is_ok());
        assert_eq!(REQ, Requirement::any_scope(["a"]));
    }
}
