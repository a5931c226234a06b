//! Shared argument parsing: scope and role names, lists, keyed arguments.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Token, bracketed, parenthesized};

pub(crate) mod kw {
    syn::custom_keyword!(all);
    syn::custom_keyword!(any);
    syn::custom_keyword!(scopes);
    syn::custom_keyword!(app_permissions);
}

/// A scope or role name: a non-empty string literal without whitespace, quotes or backslashes.
pub(crate) fn checked_name(lit: &LitStr, what: &str) -> syn::Result<String> {
    let value = lit.value();
    if value.trim().is_empty() {
        return Err(syn::Error::new_spanned(lit, format!("{what} names must not be empty")));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(syn::Error::new_spanned(
            lit,
            format!("{what} names must not contain whitespace; give several names as separate literals"),
        ));
    }
    if value.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(syn::Error::new_spanned(
            lit,
            format!("{what} names must not contain quotes, backslashes or control characters"),
        ));
    }
    Ok(value)
}

/// `"a", "b"` (any-of) or `all("a", "b")` / `any("a", "b")`.
pub(crate) struct NameList {
    pub(crate) all: bool,
    pub(crate) names: Vec<LitStr>,
}

fn literals(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(input)?;
    Ok(list.into_iter().collect())
}

impl Parse for NameList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error("expected at least one name, e.g. `\"access_as_user\"`"));
        }
        let lookahead = input.lookahead1();
        let (all, names) = if lookahead.peek(kw::all) || lookahead.peek(kw::any) {
            let all = input.peek(kw::all);
            if all {
                input.parse::<kw::all>()?;
            } else {
                input.parse::<kw::any>()?;
            }
            let content;
            let paren = parenthesized!(content in input);
            let names = literals(&content)?;
            if names.is_empty() {
                return Err(syn::Error::new(paren.span.join(), "expected at least one name"));
            }
            if !input.is_empty() {
                return Err(input.error("unexpected tokens after the list"));
            }
            (all, names)
        } else if lookahead.peek(LitStr) {
            (false, literals(input)?)
        } else {
            return Err(lookahead.error());
        };
        Ok(Self { all, names })
    }
}

/// `scopes = ["a"], app_permissions = ["b"]`, in any order, each exactly once.
pub(crate) struct KeyedLists {
    pub(crate) scopes: Vec<LitStr>,
    pub(crate) app_permissions: Vec<LitStr>,
}

fn bracketed_literals(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    let bracket = bracketed!(content in input);
    let names = literals(&content)?;
    if names.is_empty() {
        return Err(syn::Error::new(bracket.span.join(), "expected at least one name"));
    }
    Ok(names)
}

impl Parse for KeyedLists {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut scopes: Option<Vec<LitStr>> = None;
        let mut app_permissions: Option<Vec<LitStr>> = None;
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::scopes) {
                let key = input.parse::<kw::scopes>()?;
                if scopes.is_some() {
                    return Err(syn::Error::new_spanned(key, "`scopes` specified more than once"));
                }
                input.parse::<Token![=]>()?;
                scopes = Some(bracketed_literals(input)?);
            } else if lookahead.peek(kw::app_permissions) {
                let key = input.parse::<kw::app_permissions>()?;
                if app_permissions.is_some() {
                    return Err(syn::Error::new_spanned(key, "`app_permissions` specified more than once"));
                }
                input.parse::<Token![=]>()?;
                app_permissions = Some(bracketed_literals(input)?);
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match (scopes, app_permissions) {
            (Some(scopes), Some(app_permissions)) => Ok(Self { scopes, app_permissions }),
            (None, _) => Err(input.error("missing `scopes = [..]`")),
            (_, None) => Err(input.error("missing `app_permissions = [..]`")),
        }
    }
}
