//! Expansion of the requirement attributes, for axum handlers and tonic methods.
//!
//! The first azad attribute to expand on a function (the outermost) also takes every other
//! azad attribute on it (recognised by name: `require_scope`, `require_group`, ...), so that one
//! expansion sees the function's whole declaration: it adds one guard per requirement and, for
//! an axum handler, one companion item describing them all ([`crate::companion`]).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Attribute, FnArg, ItemFn, Meta, Pat, parse_quote};

use crate::requirement::{Kind, Parsed, Shape, parse_args};

/// The `Requirement` expression of one parsed requirement (`None` for `#[allow_anonymous]`).
pub(crate) fn requirement_expr(krate: &TokenStream, parsed: &Parsed) -> Option<TokenStream> {
    match parsed {
        Parsed::Static { shape: shape @ Shape::ScopeOrAppPermission, scopes, roles, span } => {
            let constructor = format_ident!("{}", shape.constructor(), span = *span);
            Some(quote_spanned! {*span=>
                #krate::__private::Requirement::#constructor(
                    &[#(#krate::__private::Cow::Borrowed(#scopes)),*],
                    &[#(#krate::__private::Cow::Borrowed(#roles)),*],
                )
            })
        }
        Parsed::Static { shape, scopes, roles, span } => {
            let constructor = format_ident!("{}", shape.constructor(), span = *span);
            let names = if scopes.is_empty() { roles } else { scopes };
            Some(quote_spanned! {*span=>
                #krate::__private::Requirement::#constructor(&[#(#krate::__private::Cow::Borrowed(#names)),*])
            })
        }
        Parsed::Values { shape: shape @ (Shape::NoGuests | Shape::Authenticated), span, .. } => {
            let constructor = format_ident!("{}", shape.constructor(), span = *span);
            Some(quote_spanned! {*span=> #krate::__private::Requirement::#constructor() })
        }
        Parsed::Values { shape, values, span } => {
            let constructor = format_ident!("{}", shape.constructor(), span = *span);
            Some(quote_spanned! {*span=>
                #krate::__private::Requirement::#constructor(&[#(#krate::__private::Cow::Borrowed(#values)),*])
            })
        }
        Parsed::Anonymous => None,
    }
}

pub(crate) fn expand_attr_with(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
    kind: Kind,
) -> proc_macro::TokenStream {
    let item_tokens = TokenStream::from(item);
    let attr = TokenStream::from(attr);
    if is_expanded_marker(&attr) {
        // The outermost azad attribute already expanded this one.
        return item_tokens.into();
    }
    let item_fn: ItemFn = match syn::parse2(item_tokens.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                format!(
                    "`#[{}]` can only be used on functions (axum handlers or tonic service methods)",
                    kind.attr_name()
                ),
            );
            let compile_error = err.into_compile_error();
            return quote!(#compile_error #item_tokens).into();
        }
    };
    let expanded = match expand(attr, item_fn.clone(), kind) {
        Ok(tokens) => tokens,
        // Re-emit the function untouched (without the other azad attributes, which would
        // report again) next to the error, so one mistake does not cascade into "cannot find
        // function" errors elsewhere.
        Err(e) => {
            let compile_error = e.into_compile_error();
            let mut plain = item_fn.clone();
            plain.attrs.retain(|a| Kind::of(a).is_none());
            quote!(#compile_error #plain)
        }
    };
    if std::env::var_os("AZAD_MACROS_DEBUG").is_some() {
        eprintln!("#[{}] on `{}` expands to:\n{expanded}\n", kind.attr_name(), item_fn.sig.ident);
    }
    expanded.into()
}

/// The argument the outermost attribute leaves on the sibling attributes it expanded: they stay
/// in place (so that their imports count as used) and expand to the function unchanged.
const EXPANDED_MARKER: &str = "__azad_expanded";

fn is_expanded_marker(attr: &TokenStream) -> bool {
    let mut tokens = attr.clone().into_iter();
    matches!((tokens.next(), tokens.next()), (Some(proc_macro2::TokenTree::Ident(i)), None) if i == EXPANDED_MARKER)
}

/// The arguments of a sibling attribute (`#[require_group("g")]` → `"g"`; `#[deny_guests]` → nothing).
fn sibling_args(attr: &Attribute) -> syn::Result<TokenStream> {
    match &attr.meta {
        Meta::Path(_) => Ok(TokenStream::new()),
        Meta::List(list) => Ok(list.tokens.clone()),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(nv, "expected `#[attribute(..)]`")),
    }
}

fn expand(attr: TokenStream, mut item_fn: ItemFn, kind: Kind) -> syn::Result<TokenStream> {
    let mut all = vec![(kind, parse_args(attr, kind)?)];
    for a in &mut item_fn.attrs {
        if let Some(k) = Kind::of(a) {
            let args = sibling_args(a)?;
            if is_expanded_marker(&args) {
                continue;
            }
            all.push((k, parse_args(args, k)?));
            let path = a.path().clone();
            let marker = format_ident!("{}", EXPANDED_MARKER);
            a.meta = parse_quote!(#path(#marker));
        }
    }
    let anonymous = all.iter().any(|(_, p)| matches!(p, Parsed::Anonymous));
    if anonymous && all.len() > 1 {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[allow_anonymous]` declares a public route and cannot be combined with requirements",
        ));
    }
    let receiver = item_fn.sig.inputs.iter().any(|a| matches!(a, FnArg::Receiver(_)));
    if receiver { expand_tonic(item_fn, &all) } else { expand_axum(item_fn, &all) }
}

/// An axum handler: one hidden guard extractor per requirement becomes a first argument, and
/// a companion item declares them all.
fn expand_axum(mut item_fn: ItemFn, all: &[(Kind, Parsed)]) -> syn::Result<TokenStream> {
    let (kind, _) = all[0];
    if item_fn.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            item_fn.sig.fn_token,
            format!("`#[{}]` requires an `async fn` (an axum handler) or a tonic service method", kind.attr_name()),
        ));
    }
    let krate = quote!(::azad_axum);
    let vis = item_fn.vis.clone();
    let ident = item_fn.sig.ident.clone();
    let mut policies = TokenStream::new();
    let mut requirements = Vec::new();
    for (i, (kind, parsed)) in all.iter().enumerate() {
        let Some(requirement) = requirement_expr(&krate, parsed) else {
            continue;
        };
        requirements.push(requirement.clone());
        let policy = format_ident!("__azad_policy_{}_{}", ident, i);
        let doc = format!("The `#[{}]` policy of `{}` (generated).", kind.attr_name(), ident);
        policies.extend(quote! {
            #[doc = #doc]
            #[doc(hidden)]
            #[allow(non_camel_case_types, missing_docs, unreachable_pub)]
            #[derive(Debug, Clone, Copy)]
            #vis struct #policy;

            #[allow(non_camel_case_types)]
            impl #krate::__private::Policy for #policy {
                const REQUIREMENT: &'static #krate::__private::Requirement = &#requirement;
            }
        });
        let guard: FnArg = parse_quote! {
            _: #krate::__private::Guard<#policy>
        };
        // In declaration order: the first requirement is checked first.
        item_fn.sig.inputs.insert(requirements.len() - 1, guard);
    }
    crate::openapi::add_security(&mut item_fn, kind.attr_name(), all)?;
    let public = requirements.is_empty();
    let companion = crate::companion::emit(&krate, &vis, &ident, public, &requirements);
    Ok(quote! {
        #policies
        #companion
        #item_fn
    })
}

/// A tonic service method: the checks run first in the body, on the request argument.
fn expand_tonic(mut item_fn: ItemFn, all: &[(Kind, Parsed)]) -> syn::Result<TokenStream> {
    let (kind, _) = all[0];
    let sig = &item_fn.sig;
    let request = sig
        .inputs
        .iter()
        .find_map(|a| match a {
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) => Some(p.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .ok_or_else(|| {
            syn::Error::new_spanned(
                &sig.inputs,
                format!(
                    "`#[{}]` on a tonic method needs the request argument bound to a name, e.g. `request: Request<T>`",
                    kind.attr_name()
                ),
            )
        })?;
    let krate = quote!(::azad_tower);
    let native_async = sig.asyncness.is_some();
    let mut sync_checks = TokenStream::new();
    let mut async_checks = Vec::new();
    for (i, (kind, parsed)) in all.iter().enumerate() {
        let Some(requirement) = requirement_expr(&krate, parsed) else {
            continue;
        };
        let name = format_ident!("__AZAD_REQUIREMENT_{}", i);
        if *kind == Kind::Group {
            // May await Microsoft Graph (a groups overage).
            let check = format_ident!("__azad_check_{}", i);
            sync_checks.extend(quote! {
                // A static: checked by reference, never copied or dropped per call.
                static #name: #krate::__private::Requirement = #requirement;
                let #check = #krate::__private::check_grpc_async(&#request, &#name);
            });
            async_checks.push(check);
        } else {
            let reject = if native_async {
                quote! { return ::core::result::Result::Err(status); }
            } else {
                quote! { return #krate::__private::reject_boxed(status); }
            };
            sync_checks.extend(quote! {
                static #name: #krate::__private::Requirement = #requirement;
                if let ::core::result::Result::Err(status) = #krate::__private::check_grpc(&#request, &#name) {
                    #reject
                }
            });
        }
    }
    let body = item_fn.block.clone();
    let new_body: syn::Block = if async_checks.is_empty() {
        parse_quote! {{ #sync_checks #body }}
    } else if native_async {
        parse_quote! {{
            #sync_checks
            #( #async_checks.await?; )*
            #body
        }}
    } else {
        // A method desugared by `#[tonic::async_trait]` returns a boxed future: await the
        // checks in front of it.
        parse_quote! {{
            #sync_checks
            let __azad_body = #body;
            ::std::boxed::Box::pin(async move {
                #( #async_checks.await?; )*
                __azad_body.await
            })
        }}
    };
    *item_fn.block = new_body;
    Ok(quote!(#item_fn))
}
