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

/// The alternatives of a requirement (kind codes as in `Requirement::__from_static`): each a
/// set of scopes and roles that must all be present.
fn alternatives(kind_code: u8, scopes: &[String], roles: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
    let each = |names: &[String]| names.iter().map(|n| vec![n.clone()]).collect::<Vec<_>>();
    match kind_code {
        0 => each(scopes).into_iter().map(|s| (s, Vec::new())).collect(),
        1 => vec![(scopes.to_vec(), Vec::new())],
        2 => each(roles).into_iter().map(|r| (Vec::new(), r)).collect(),
        3 => vec![(Vec::new(), roles.to_vec())],
        _ => {
            let s = each(scopes).into_iter().map(|s| (s, Vec::new()));
            s.chain(each(roles).into_iter().map(|r| (Vec::new(), r))).collect()
        }
    }
}

/// `security(("entra" = ["a"]), ("entra_app" = ["R"]))`.
fn security_tokens(kind_code: u8, scopes: &[String], roles: &[String]) -> TokenStream {
    let objects = alternatives(kind_code, scopes, roles).into_iter().map(|(s, r)| {
        let mut pairs = Vec::new();
        if !s.is_empty() {
            pairs.push(quote!(#DELEGATED_SCHEME = [#(#s),*]));
        }
        if !r.is_empty() {
            pairs.push(quote!(#APP_SCHEME = [#(#r),*]));
        }
        quote!((#(#pairs),*))
    });
    quote!(security(#(#objects),*))
}

/// Appends the requirement's `security(...)` to a `#[utoipa::path(...)]` of the handler, if it
/// has one.
///
/// # Errors
///
/// When that attribute already has `security(...)`: the azad attribute is its one source.
pub(crate) fn add_security(
    item_fn: &mut ItemFn,
    attr_name: &str,
    kind_code: u8,
    scopes: &[String],
    roles: &[String],
) -> syn::Result<()> {
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
                        "`#[{attr_name}]` writes this operation's `security(...)` from its own requirement: remove it from `#[utoipa::path]` (one azad attribute per documented handler)"
                    ),
                ));
            }
            (proc_macro2::TokenTree::Ident(i), _) if i == "security" => previous_was_security = Some(i.clone()),
            _ => {}
        }
    }
    let security = security_tokens(kind_code, scopes, roles);
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

    #[test]
    fn security_lists_each_alternative() {
        let t = |k, sc: &[&str], r: &[&str]| security_tokens(k, &s(sc), &s(r)).to_string();
        assert_eq!(t(0, &["a", "b"], &[]), r#"security (("entra" = ["a"]) , ("entra" = ["b"]))"#);
        assert_eq!(t(1, &["a", "b"], &[]), r#"security (("entra" = ["a" , "b"]))"#);
        assert_eq!(t(2, &[], &["R"]), r#"security (("entra_app" = ["R"]))"#);
        assert_eq!(t(3, &[], &["R", "S"]), r#"security (("entra_app" = ["R" , "S"]))"#);
        assert_eq!(t(4, &["a"], &["R"]), r#"security (("entra" = ["a"]) , ("entra_app" = ["R"]))"#);
    }

    #[test]
    fn appends_to_the_utoipa_path_below_and_refuses_a_second_source() {
        let mut f: ItemFn = syn::parse_quote! {
            #[utoipa::path(get, path = "/me",)]
            async fn me() {}
        };
        add_security(&mut f, "require_scope", 0, &s(&["x"]), &[]).unwrap();
        let attr = &f.attrs[0];
        assert_eq!(
            quote!(#attr).to_string(),
            r#"# [utoipa :: path (get , path = "/me" , security (("entra" = ["x"])))]"#
        );

        let mut f: ItemFn = syn::parse_quote! {
            #[utoipa::path(get, path = "/me", security(("other" = [])))]
            async fn me() {}
        };
        let e = add_security(&mut f, "require_scope", 0, &s(&["x"]), &[]).unwrap_err();
        assert!(
            e.to_string().contains("remove it from `#[utoipa::path]` (one azad attribute per documented handler)"),
            "{e}"
        );

        let mut plain: ItemFn = syn::parse_quote! { #[doc = "x"] async fn me() {} };
        add_security(&mut plain, "require_scope", 0, &s(&["x"]), &[]).unwrap();
        assert_eq!(plain.attrs.len(), 1);
    }
}
