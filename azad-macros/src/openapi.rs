//! The OpenAPI side of the attributes: the `security(...)` of a `#[utoipa::path(...)]` written
//! below an azad attribute, from the same requirement.
//!
//! Attribute macros expand outermost first, so an azad attribute written *above*
//! `#[utoipa::path]` still sees it and appends `security(...)` to its arguments. Written below,
//! it runs after utoipa has generated the path and cannot change it (nor see that it ran).
//!
//! The shape matches `azad_tower::openapi::security_requirements`: one requirement object per
//! alternative, delegated scopes under `entra`, app roles under `entra_app`, short scope names
//! (`AzureAdSecurity::apply` writes the full `api://{client id}/{scope}` from the configuration).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, ItemFn, Meta};

use crate::requirement::{Kind, Parsed, Shape};

/// `azad_tower::openapi::DELEGATED_SCHEME`.
const DELEGATED_SCHEME: &str = "entra";
/// `azad_tower::openapi::APP_SCHEME`.
const APP_SCHEME: &str = "entra_app";

fn is_utoipa_path(attr: &Attribute) -> bool {
    let segments: Vec<String> = attr.path().segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [a, b] => a == "utoipa" && b == "path",
        // `use utoipa::path;` then `#[path(...)]` (the built-in `#[path = "…"]` is for modules
        // and never has a list).
        [a] => a == "path" && matches!(attr.meta, Meta::List(_)),
        _ => false,
    }
}

/// An alternative: the delegated scopes and the app roles that must all be present.
type Alternative = (Vec<String>, Vec<String>);

/// The alternatives of a scope or role requirement: each a set of scopes and roles that must
/// all be present.
fn alternatives(shape: Shape, scopes: &[String], roles: &[String]) -> Vec<Alternative> {
    let each = |names: &[String]| names.iter().map(|n| vec![n.clone()]).collect::<Vec<_>>();
    match shape {
        Shape::AnyScope => each(scopes).into_iter().map(|s| (s, Vec::new())).collect(),
        Shape::AllScopes => vec![(scopes.to_vec(), Vec::new())],
        Shape::AnyRole => each(roles).into_iter().map(|r| (Vec::new(), r)).collect(),
        Shape::AllRoles => vec![(Vec::new(), roles.to_vec())],
        Shape::ScopeOrAppPermission => {
            let s = each(scopes).into_iter().map(|s| (s, Vec::new()));
            s.chain(each(roles).into_iter().map(|r| (Vec::new(), r))).collect()
        }
        // Groups, authentication contexts, callers, tenants, guests, "authenticated": no
        // OAuth scope expresses them; they require a token, nothing more in the document.
        _ => vec![(Vec::new(), Vec::new())],
    }
}

/// Every declaration on one handler holds (stacked attributes are all checked): every
/// combination of their alternatives, merged (`(a1 or a2) and (b1 or b2)`).
fn and(existing: &[Alternative], added: &[Alternative]) -> Vec<Alternative> {
    let mut out: Vec<Alternative> = Vec::new();
    for (s1, r1) in existing {
        for (s2, r2) in added {
            let mut s = s1.clone();
            s.extend(s2.iter().filter(|n| !s1.contains(n)).cloned());
            let mut r = r1.clone();
            r.extend(r2.iter().filter(|n| !r1.contains(n)).cloned());
            if !out.contains(&(s.clone(), r.clone())) {
                out.push((s, r));
            }
        }
    }
    out
}

/// `security(("entra" = ["a"]), ("entra_app" = ["R"]))`. An alternative that names no scope
/// or role (only a valid token is required) is any token: `("entra" = []), ("entra_app" = [])`.
fn security_tokens(alternatives: Vec<Alternative>) -> TokenStream {
    let mut objects = Vec::new();
    for (s, r) in alternatives {
        if s.is_empty() && r.is_empty() {
            objects.push(quote!((#DELEGATED_SCHEME = [])));
            objects.push(quote!((#APP_SCHEME = [])));
            continue;
        }
        let mut pairs = Vec::new();
        if !s.is_empty() {
            pairs.push(quote!(#DELEGATED_SCHEME = [#(#s),*]));
        }
        if !r.is_empty() {
            pairs.push(quote!(#APP_SCHEME = [#(#r),*]));
        }
        objects.push(quote!((#(#pairs),*)));
    }
    quote!(security(#(#objects),*))
}

/// Appends the handler's `security(...)`, from every azad attribute on it, to a
/// `#[utoipa::path(...)]` of the handler, if it has one. `#[allow_anonymous]` adds none.
///
/// # Errors
///
/// When that attribute already has `security(...)`: the azad attributes are its one source.
pub(crate) fn add_security(item_fn: &mut ItemFn, attr_name: &str, all: &[(Kind, Parsed)]) -> syn::Result<()> {
    let Some(attr) = item_fn.attrs.iter_mut().find(|a| is_utoipa_path(a)) else {
        return Ok(());
    };
    let Meta::List(list) = &mut attr.meta else {
        return Ok(());
    };
    let mut previous_was_security = None;
    for tt in list.tokens.clone() {
        match (&tt, previous_was_security.take()) {
            (proc_macro2::TokenTree::Group(_), Some(ident)) => {
                return Err(syn::Error::new_spanned(
                    ident,
                    format!(
                        "`#[{attr_name}]` writes this operation's `security(...)` from the handler's azad attributes: remove it from `#[utoipa::path]`"
                    ),
                ));
            }
            (proc_macro2::TokenTree::Ident(i), _) if i == "security" => previous_was_security = Some(i.clone()),
            _ => {}
        }
    }
    let mut combined = vec![(Vec::new(), Vec::new())];
    for (_, parsed) in all {
        combined = match parsed {
            Parsed::Anonymous => return Ok(()),
            Parsed::Static { shape, scopes, roles, .. } => and(&combined, &alternatives(*shape, scopes, roles)),
            Parsed::Values { shape, .. } => and(&combined, &alternatives(*shape, &[], &[])),
        };
    }
    let security = security_tokens(combined);
    let tokens = &list.tokens;
    let trailing_comma =
        matches!(tokens.clone().into_iter().last(), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ',');
    list.tokens =
        if tokens.is_empty() || trailing_comma { quote!(#tokens #security) } else { quote!(#tokens, #security) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn stat(shape: Shape, scopes: &[&str], roles: &[&str]) -> (Kind, Parsed) {
        let parsed = Parsed::Static { shape, scopes: s(scopes), roles: s(roles), span: proc_macro2::Span::call_site() };
        (Kind::Scope, parsed)
    }

    fn group() -> (Kind, Parsed) {
        let values = s(&["0b0c0d0e-0000-4000-8000-000000000001"]);
        (Kind::Group, Parsed::Values { shape: Shape::AnyGroup, values, span: proc_macro2::Span::call_site() })
    }

    #[test]
    fn security_lists_each_alternative() {
        let t = |k, sc: &[&str], r: &[&str]| security_tokens(alternatives(k, &s(sc), &s(r))).to_string();
        assert_eq!(t(Shape::AnyScope, &["a", "b"], &[]), r#"security (("entra" = ["a"]) , ("entra" = ["b"]))"#);
        assert_eq!(t(Shape::AllScopes, &["a", "b"], &[]), r#"security (("entra" = ["a" , "b"]))"#);
        assert_eq!(t(Shape::AnyRole, &[], &["R"]), r#"security (("entra_app" = ["R"]))"#);
        assert_eq!(t(Shape::AllRoles, &[], &["R", "S"]), r#"security (("entra_app" = ["R" , "S"]))"#);
        assert_eq!(
            t(Shape::ScopeOrAppPermission, &["a"], &["R"]),
            r#"security (("entra" = ["a"]) , ("entra_app" = ["R"]))"#
        );
        // A group (or any requirement no scope expresses): any valid token.
        assert_eq!(t(Shape::AnyGroup, &[], &[]), r#"security (("entra" = []) , ("entra_app" = []))"#);
    }

    #[test]
    fn stacked_attributes_require_all_of_them() {
        let doc = |all: &[(Kind, Parsed)]| {
            let mut f: ItemFn = syn::parse_quote! {
                #[utoipa::path(get, path = "/me")]
                async fn me() {}
            };
            add_security(&mut f, "require_scope", all).unwrap();
            let attr = &f.attrs[0];
            quote!(#attr).to_string()
        };
        // A scope and a group: the scope (the group adds no OAuth scope).
        assert!(doc(&[stat(Shape::AnyScope, &["a"], &[]), group()]).ends_with(r#"security (("entra" = ["a"])))]"#));
        // Any of two scopes and a role: each pair.
        assert!(doc(&[stat(Shape::AnyScope, &["a", "b"], &[]), stat(Shape::AnyRole, &[], &["R"])]).ends_with(
            r#"security (("entra" = ["a"] , "entra_app" = ["R"]) , ("entra" = ["b"] , "entra_app" = ["R"])))]"#
        ));
        // A public route is documented without security.
        let mut f: ItemFn = syn::parse_quote! {
            #[utoipa::path(get, path = "/health")]
            async fn health() {}
        };
        add_security(&mut f, "allow_anonymous", &[(Kind::AllowAnonymous, Parsed::Anonymous)]).unwrap();
        let attr = &f.attrs[0];
        assert!(!quote!(#attr).to_string().contains("security"));
    }

    #[test]
    fn appends_to_the_utoipa_path_below_and_refuses_a_second_source() {
        let mut f: ItemFn = syn::parse_quote! {
            #[utoipa::path(get, path = "/me",)]
            async fn me() {}
        };
        add_security(&mut f, "require_scope", &[stat(Shape::AnyScope, &["x"], &[])]).unwrap();
        let attr = &f.attrs[0];
        assert_eq!(
            quote!(#attr).to_string(),
            r#"# [utoipa :: path (get , path = "/me" , security (("entra" = ["x"])))]"#
        );

        let mut f: ItemFn = syn::parse_quote! {
            #[utoipa::path(get, path = "/me", security(("other" = [])))]
            async fn me() {}
        };
        let e = add_security(&mut f, "require_scope", &[stat(Shape::AnyScope, &["x"], &[])]).unwrap_err();
        assert!(e.to_string().contains("remove it from `#[utoipa::path]`"), "{e}");

        let mut plain: ItemFn = syn::parse_quote! { #[doc = "x"] async fn me() {} };
        add_security(&mut plain, "require_scope", &[stat(Shape::AnyScope, &["x"], &[])]).unwrap();
        assert_eq!(plain.attrs.len(), 1);
    }
}
