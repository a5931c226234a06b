//! Expansion of the three attributes, for axum handlers and tonic methods.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Pat, parse_quote};

use crate::attr_parsing::{KeyedLists, NameList, checked_name};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Scope,
    Role,
    ScopeOrAppPermission,
}

impl Kind {
    fn attr_name(self) -> &'static str {
        match self {
            Self::Scope => "require_scope",
            Self::Role => "require_role",
            Self::ScopeOrAppPermission => "require_scope_or_app_permission",
        }
    }
}

/// The requirement as the runtime crates build it: a kind code and two name lists.
struct Parsed {
    kind_code: u8,
    scopes: Vec<String>,
    roles: Vec<String>,
    span: Span,
}

fn parse_args(attr: TokenStream, kind: Kind) -> syn::Result<Parsed> {
    let span = attr.span();
    match kind {
        Kind::Scope | Kind::Role => {
            let list: NameList = syn::parse2(attr)?;
            let what = if kind == Kind::Scope { "scope" } else { "role" };
            let names = list.names.iter().map(|l| checked_name(l, what)).collect::<syn::Result<Vec<_>>>()?;
            check_duplicates(&list.names)?;
            let (kind_code, scopes, roles) = match (kind, list.all) {
                (Kind::Scope, false) => (0, names, Vec::new()),
                (Kind::Scope, true) => (1, names, Vec::new()),
                (_, false) => (2, Vec::new(), names),
                (_, true) => (3, Vec::new(), names),
            };
            Ok(Parsed { kind_code, scopes, roles, span })
        }
        Kind::ScopeOrAppPermission => {
            let lists: KeyedLists = syn::parse2(attr)?;
            let scopes = lists.scopes.iter().map(|l| checked_name(l, "scope")).collect::<syn::Result<Vec<_>>>()?;
            let roles = lists
                .app_permissions
                .iter()
                .map(|l| checked_name(l, "app permission"))
                .collect::<syn::Result<Vec<_>>>()?;
            check_duplicates(&lists.scopes)?;
            check_duplicates(&lists.app_permissions)?;
            Ok(Parsed { kind_code: 4, scopes, roles, span })
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

fn requirement_expr(krate: &TokenStream, parsed: &Parsed) -> TokenStream {
    let Parsed { kind_code, scopes, roles, span } = parsed;
    quote_spanned! {*span=>
        #krate::__private::Requirement::__from_static(
            #kind_code,
            &[#(#krate::__private::Cow::Borrowed(#scopes)),*],
            &[#(#krate::__private::Cow::Borrowed(#roles)),*],
        )
    }
}

pub(crate) fn expand_attr_with(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
    kind: Kind,
) -> proc_macro::TokenStream {
    let item_tokens = TokenStream::from(item);
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
    let expanded = match expand(TokenStream::from(attr), &item_fn, kind) {
        Ok(tokens) => tokens,
        // Re-emit the function untouched next to the error, so one mistake does not cascade
        // into "cannot find function" errors elsewhere.
        Err(e) => {
            let compile_error = e.into_compile_error();
            quote!(#compile_error #item_fn)
        }
    };
    if std::env::var_os("AZAD_MACROS_DEBUG").is_some() {
        eprintln!("#[{}] on `{}` expands to:\n{expanded}\n", kind.attr_name(), item_fn.sig.ident);
    }
    expanded.into()
}

fn expand(attr: TokenStream, item_fn: &ItemFn, kind: Kind) -> syn::Result<TokenStream> {
    let parsed = parse_args(attr, kind)?;
    let receiver = item_fn.sig.inputs.iter().any(|a| matches!(a, FnArg::Receiver(_)));
    if receiver { expand_tonic(item_fn, &parsed, kind) } else { expand_axum(item_fn, &parsed, kind) }
}

/// An axum handler: a hidden guard extractor becomes the first argument.
fn expand_axum(item_fn: &ItemFn, parsed: &Parsed, kind: Kind) -> syn::Result<TokenStream> {
    let sig = &item_fn.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            format!("`#[{}]` requires an `async fn` (an axum handler) or a tonic service method", kind.attr_name()),
        ));
    }
    let krate = quote!(::azad_axum);
    let requirement = requirement_expr(&krate, parsed);
    let policy = format_ident!(
        "__azad_{}_{}",
        match kind {
            Kind::Scope => "scope",
            Kind::Role => "role",
            Kind::ScopeOrAppPermission => "scope_or_app_permission",
        },
        sig.ident
    );
    let vis = &item_fn.vis;
    let span = parsed.span;
    let doc = format!("The `#[{}]` policy of `{}` (generated).", kind.attr_name(), sig.ident);

    let mut item_fn = item_fn.clone();
    crate::openapi::add_security(&mut item_fn, kind.attr_name(), parsed.kind_code, &parsed.scopes, &parsed.roles)?;
    let guard: FnArg = parse_quote! {
        _: #krate::__private::Guard<#policy>
    };
    item_fn.sig.inputs.insert(0, guard);

    Ok(quote_spanned! {span=>
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_docs, unreachable_pub)]
        #[derive(Debug, Clone, Copy)]
        #vis struct #policy;

        #[allow(non_camel_case_types)]
        impl #krate::__private::Policy for #policy {
            const REQUIREMENT: #krate::__private::Requirement = #requirement;
        }

        #item_fn
    })
}

/// A tonic service method: the check runs first in the body, on the request argument.
fn expand_tonic(item_fn: &ItemFn, parsed: &Parsed, kind: Kind) -> syn::Result<TokenStream> {
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
    let requirement = requirement_expr(&krate, parsed);
    let span = parsed.span;
    // A native `async fn` returns the status; a method already desugared by
    // `#[tonic::async_trait]` returns a boxed future.
    let reject = if sig.asyncness.is_some() {
        quote_spanned! {span=> return ::core::result::Result::Err(status); }
    } else {
        quote_spanned! {span=> return #krate::__private::reject_boxed(status); }
    };
    let mut item_fn = item_fn.clone();
    let body = item_fn.block.clone();
    let new_body: syn::Block = parse_quote! {{
        #[allow(clippy::declare_interior_mutable_const)]
        const __AZAD_REQUIREMENT: #krate::__private::Requirement = #requirement;
        if let ::core::result::Result::Err(status) = #krate::__private::check_grpc(&#request, &__AZAD_REQUIREMENT) {
            #reject
        }
        #body
    }};
    *item_fn.block = new_body;
    Ok(quote!(#item_fn))
}
