//! What the requirement attributes declare: the attribute kinds, their parsed arguments, and
//! the shape of the `Requirement` each builds. The ground floor of the crate: the expansion
//! (`require.rs`) and the OpenAPI documentation (`openapi.rs`) both read it.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, LitStr};

use crate::attr_parsing::{KeyedLists, NameList, checked_name};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Scope,
    Role,
    ScopeOrAppPermission,
    Group,
    AuthContext,
    CallerApp,
    Tenant,
    DenyGuests,
    Authenticated,
    AllowAnonymous,
}

impl Kind {
    const ALL: [Self; 10] = [
        Self::Scope,
        Self::Role,
        Self::ScopeOrAppPermission,
        Self::Group,
        Self::AuthContext,
        Self::CallerApp,
        Self::Tenant,
        Self::DenyGuests,
        Self::Authenticated,
        Self::AllowAnonymous,
    ];

    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Self::Scope => "require_scope",
            Self::Role => "require_role",
            Self::ScopeOrAppPermission => "require_scope_or_app_permission",
            Self::Group => "require_group",
            Self::AuthContext => "require_auth_context",
            Self::CallerApp => "require_caller_app",
            Self::Tenant => "require_tenant",
            Self::DenyGuests => "deny_guests",
            Self::Authenticated => "require_authenticated",
            Self::AllowAnonymous => "allow_anonymous",
        }
    }

    /// The azad attribute an attribute path names, by its last segment.
    pub(crate) fn of(attr: &Attribute) -> Option<Self> {
        let last = attr.path().segments.last()?.ident.to_string();
        Self::ALL.into_iter().find(|k| k.attr_name() == last)
    }
}

/// The shape of one requirement: which of azad-tower's hidden `const fn` constructors builds
/// it (`Requirement::__any_scope(&[..])`...). Named on both sides of the crate boundary, so
/// that reordering one enum cannot silently change what the other builds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
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

impl Shape {
    /// The name of the `Requirement` constructor in `__private`.
    pub(crate) fn constructor(self) -> &'static str {
        match self {
            Self::AnyScope => "__any_scope",
            Self::AllScopes => "__all_scopes",
            Self::AnyRole => "__any_role",
            Self::AllRoles => "__all_roles",
            Self::ScopeOrAppPermission => "__scope_or_app_permission",
            Self::AnyGroup => "__any_group",
            Self::AllGroups => "__all_groups",
            Self::AuthContext => "__auth_context",
            Self::CallerApp => "__caller_app",
            Self::Tenant => "__tenant",
            Self::NoGuests => "__no_guests",
            Self::Authenticated => "__authenticated",
        }
    }
}

/// One requirement as the runtime crates build it.
#[derive(Clone)]
pub(crate) enum Parsed {
    /// Scopes and/or roles: `Requirement::__any_scope(&[..])`, `__scope_or_app_permission(&[..], &[..])`...
    Static { shape: Shape, scopes: Vec<String>, roles: Vec<String>, span: Span },
    /// Values (group ids, contexts, client or tenant ids; none for the last two):
    /// `Requirement::__any_group(&[..])`, `__no_guests()`...
    Values { shape: Shape, values: Vec<String>, span: Span },
    /// `#[allow_anonymous]`: no requirement, a declaration that the route is public.
    Anonymous,
}

fn names(list: &[LitStr], what: &str) -> syn::Result<Vec<String>> {
    let names = list.iter().map(|l| checked_name(l, what)).collect::<syn::Result<Vec<_>>>()?;
    check_duplicates(list)?;
    Ok(names)
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn any_of_only(list: &NameList, kind: Kind) -> syn::Result<()> {
    if list.all {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("`#[{}]` takes a list of alternatives (any-of); `all(..)` does not apply", kind.attr_name()),
        ));
    }
    Ok(())
}

fn no_arguments(attr: &TokenStream, kind: Kind) -> syn::Result<()> {
    if attr.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(attr, format!("`#[{}]` takes no arguments", kind.attr_name())))
    }
}

pub(crate) fn parse_args(attr: TokenStream, kind: Kind) -> syn::Result<Parsed> {
    let span = attr.span();
    match kind {
        Kind::Scope | Kind::Role => {
            let list: NameList = syn::parse2(attr)?;
            let what = if kind == Kind::Scope { "scope" } else { "role" };
            let names = names(&list.names, what)?;
            let (shape, scopes, roles) = match (kind, list.all) {
                (Kind::Scope, false) => (Shape::AnyScope, names, Vec::new()),
                (Kind::Scope, true) => (Shape::AllScopes, names, Vec::new()),
                (_, false) => (Shape::AnyRole, Vec::new(), names),
                (_, true) => (Shape::AllRoles, Vec::new(), names),
            };
            Ok(Parsed::Static { shape, scopes, roles, span })
        }
        Kind::ScopeOrAppPermission => {
            let lists: KeyedLists = syn::parse2(attr)?;
            let scopes = names(&lists.scopes, "scope")?;
            let roles = names(&lists.app_permissions, "app permission")?;
            Ok(Parsed::Static { shape: Shape::ScopeOrAppPermission, scopes, roles, span })
        }
        Kind::Group => {
            let list: NameList = syn::parse2(attr)?;
            let values = names(&list.names, "group id")?;
            Ok(Parsed::Values { shape: if list.all { Shape::AllGroups } else { Shape::AnyGroup }, values, span })
        }
        Kind::AuthContext => {
            let list: NameList = syn::parse2(attr)?;
            any_of_only(&list, kind)?;
            let values = names(&list.names, "authentication context")?;
            for (lit, v) in list.names.iter().zip(&values) {
                let n = v.strip_prefix('c').and_then(|d| d.parse::<u8>().ok().filter(|_| !d.starts_with('0')));
                if !n.is_some_and(|n| (1..=99).contains(&n)) {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "authentication context ids are `c1` to `c99` (Entra's Conditional Access authentication contexts)",
                    ));
                }
            }
            Ok(Parsed::Values { shape: Shape::AuthContext, values, span })
        }
        Kind::CallerApp | Kind::Tenant => {
            let list: NameList = syn::parse2(attr)?;
            any_of_only(&list, kind)?;
            let what = if kind == Kind::CallerApp { "client id" } else { "tenant id" };
            let values = names(&list.names, what)?;
            for (lit, v) in list.names.iter().zip(&values) {
                if !is_guid(v) {
                    return Err(syn::Error::new_spanned(
                        lit,
                        format!("{what}s are GUIDs, e.g. \"6e74172b-be56-4843-9ff4-e66a39bb12e3\""),
                    ));
                }
            }
            Ok(Parsed::Values {
                shape: if kind == Kind::CallerApp { Shape::CallerApp } else { Shape::Tenant },
                values,
                span,
            })
        }
        Kind::DenyGuests => {
            no_arguments(&attr, kind)?;
            Ok(Parsed::Values { shape: Shape::NoGuests, values: Vec::new(), span })
        }
        Kind::Authenticated => {
            no_arguments(&attr, kind)?;
            Ok(Parsed::Values { shape: Shape::Authenticated, values: Vec::new(), span })
        }
        Kind::AllowAnonymous => {
            no_arguments(&attr, kind)?;
            Ok(Parsed::Anonymous)
        }
    }
}

fn check_duplicates(names: &[LitStr]) -> syn::Result<()> {
    for (i, lit) in names.iter().enumerate() {
        if names[..i].iter().any(|earlier| earlier.value() == lit.value()) {
            return Err(syn::Error::new_spanned(lit, "this name is listed twice"));
        }
    }
    Ok(())
}
