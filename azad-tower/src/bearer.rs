//! Extracting the bearer token from a request (RFC 6750 §2.1): exactly one `Authorization`
//! header, the `Bearer` scheme in any case, one or more SP, a `b64token` (RFC 7235 §2.1).
//! Tokens in the query string are refused.
//!
//! The header value must be visible ASCII and SP only: a TAB, any other control character and
//! any non-ASCII byte (U+00A0 or U+3000 whitespace included) make the request malformed
//! (`400 invalid_request`), whatever the scheme. Nothing is trimmed from the value but the SP
//! that may surround it; in particular no Unicode whitespace is trimmed into a valid token,
//! and such a header is never mistaken for "no credentials".

use std::fmt;

use http::{HeaderMap, Uri, header};

/// Why no bearer token could be taken from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header, or one with another scheme (`Basic` ...): the request has no
    /// bearer credentials. Answered with 401 and a bare `WWW-Authenticate: Bearer`.
    Missing,
    /// More than one `Authorization` header.
    MultipleHeaders,
    /// `Bearer` with no token, a token with characters outside `b64token`, or a header value
    /// with a character other than visible ASCII and SP (a TAB, non-ASCII whitespace such as
    /// U+00A0 or U+3000, any non-ASCII byte). Answered with 400 `invalid_request`.
    Malformed,
    /// A token in the query string (`access_token=`), which is never accepted: URLs end up
    /// in logs.
    TokenInQuery,
}

impl BearerError {
    /// `true` when the request simply carries no bearer credentials.
    #[must_use]
    pub fn is_missing(self) -> bool {
        self == Self::Missing
    }

    /// A fixed description, safe to send to a client.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "No bearer token",
            Self::MultipleHeaders => "More than one Authorization header",
            Self::Malformed => "Malformed Authorization header",
            Self::TokenInQuery => "Access tokens are not accepted in the query string",
        }
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for BearerError {}

/// The `b64token` alphabet as a lookup table: tokens are 1–2 KB and this runs on every request.
static B64TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    t
};

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

/// Takes the bearer token from the request headers.
///
/// # Errors
///
/// A [`BearerError`] saying why there is no usable token.
pub fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<&'a str, BearerError> {
    let candidate = bearer_candidate(headers, uri)?;
    if is_b64token(candidate) { Ok(candidate) } else { Err(BearerError::Malformed) }
}

/// The token of the `Authorization` header, with every check but its alphabet: a token found
/// in the validated-token cache was a well-formed JWT, so the per-byte check can wait for a miss.
pub(crate) fn bearer_candidate<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<&'a str, BearerError> {
    let Some(value) = authorization(headers, uri)? else {
        return Err(BearerError::Missing);
    };
    // RFC 7235 §2.1: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`. Only
    // visible ASCII and SP may appear: no TAB, no other whitespace, nothing non-ASCII.
    if !visible_ascii_or_sp(value) {
        return Err(BearerError::Malformed);
    }
    let token = bearer_credentials(value).ok_or(BearerError::Missing)?;
    std::str::from_utf8(token).map_err(|_| BearerError::Malformed)
}

/// The token bytes of the `Authorization` header as [`bearer_candidate`] cuts them (the same
/// two steps), without checking their alphabet or UTF-8: for a lookup in the validated-token
/// cache only. A hit there is byte for byte a token that passed every check, so the header
/// (`Bearer`, SP and that token) passes [`bearer_candidate`]'s checks too; on a miss the
/// caller runs them.
pub(crate) fn cached_candidate<'a>(headers: &'a HeaderMap, uri: &Uri) -> Option<&'a [u8]> {
    authorization(headers, uri).ok().flatten().and_then(bearer_credentials)
}

/// The one `Authorization` header's value, if any. A second header, or a token in the query
/// string (checked with or without a header: always refused), is an error.
fn authorization<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Option<&'a [u8]>, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BearerError::MultipleHeaders);
    }
    if query_has_token(uri) {
        return Err(BearerError::TokenInQuery);
    }
    Ok(first.map(http::HeaderValue::as_bytes))
}

/// What follows the `Bearer` scheme (any case) and its SP in a header value, without the SP
/// around the value; `None` for another scheme.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    // The form nearly every request has, `Bearer <token>`: the same cut in one compare.
    if let Some((scheme, rest)) = value.split_at_checked(7)
        && scheme.eq_ignore_ascii_case(b"bearer ")
        && rest.first().is_some_and(|b| *b != b' ')
    {
        let end = rest.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
        return Some(&rest[..end]);
    }
    general_credentials(value)
}

/// [`bearer_credentials`] for any form: spaces around the value and after the scheme.
fn general_credentials(value: &[u8]) -> Option<&[u8]> {
    let value = trim_sp(value);
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(space) => (&value[..space], &value[space..]),
        None => (value, &value[value.len()..]),
    };
    scheme.eq_ignore_ascii_case(b"bearer").then(|| trim_sp(rest))
}

/// `bytes` without the SP at either end.
fn trim_sp(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| *b != b' ').map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Every byte is SP or visible ASCII (0x20 to 0x7E). Without an early exit, so that the
/// compiler vectorises it: it runs over the 1–2 KB header of every request (a byte-at-a-time
/// `all` showed in the cache-hit profile).
fn visible_ascii_or_sp(bytes: &[u8]) -> bool {
    let mut outside = 0u8;
    for &b in bytes {
        outside |= u8::from(b.wrapping_sub(0x20) > 0x7e - 0x20);
    }
    outside == 0
}

fn query_has_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some("access_token")))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn extract(values: &[&str], uri: &str) -> Result<String, BearerError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        bearer_token(&headers, &uri.parse().unwrap()).map(str::to_owned)
    }

    proptest::proptest! {
        /// The one-compare cut of `Bearer <token>` answers as the general cut for every value.
        #[test]
        fn the_common_form_is_cut_as_any_form_is(value in "[ ]{0,2}([Bb][Ee][Aa][Rr][Ee][Rr]|Basic|Bearerx)?[ ]{0,3}[a. ]{0,6}") {
            proptest::prop_assert_eq!(bearer_credentials(value.as_bytes()), general_credentials(value.as_bytes()));
        }
    }

    /// Wherever the full extraction yields a token, the cache lookup's cut yields the same
    /// bytes; where the lookup's cut differs or is absent, nothing is served from the cache
    /// without the full checks (the layer runs them on a miss).
    #[test]
    fn the_cache_lookup_cuts_the_token_as_the_full_extraction_does() {
        let cases = [
            "Bearer abc.def.ghi",
            "bearer   abc.def.ghi  ",
            "  BEARER abc.def.ghi",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer abc def",
            "Bearer\tabc.def.ghi",
            "Bearer abc.def.ghi\t",
        ];
        for v in cases {
            let mut headers = HeaderMap::new();
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            let uri: Uri = "/api".parse().unwrap();
            let full = bearer_candidate(&headers, &uri).ok().filter(|t| !t.is_empty());
            let cut = cached_candidate(&headers, &uri);
            if let Some(full) = full {
                assert_eq!(cut, Some(full.as_bytes()), "{v:?}");
            }
        }
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
        assert_eq!(cached_candidate(&headers, &"/api?access_token=x".parse().unwrap()), None);
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
        assert_eq!(cached_candidate(&headers, &"/api".parse().unwrap()), None);
        // Bytes that are not visible ASCII are cut as they are (and can match no cached token).
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, HeaderValue::from_bytes(b"Bearer abc\xa0").unwrap());
        assert_eq!(cached_candidate(&headers, &"/api".parse().unwrap()), Some(&b"abc\xa0"[..]));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for v in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER abc.def.ghi",
            "Bearer   abc.def.ghi",
            " Bearer abc.def.ghi ",
        ] {
            assert_eq!(extract(&[v], "/").unwrap(), "abc.def.ghi", "{v}");
        }
        assert_eq!(extract(&["Bearer a-b_c~d+e/f=="], "/").unwrap(), "a-b_c~d+e/f==");
    }

    #[test]
    fn missing_or_other_scheme() {
        assert_eq!(extract(&[], "/"), Err(BearerError::Missing));
        assert_eq!(extract(&["Basic dXNlcjpwYXNz"], "/"), Err(BearerError::Missing));
        assert_eq!(extract(&["Bearerabc"], "/"), Err(BearerError::Missing));
    }

    #[test]
    fn malformed() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer \"abc\"",
            "Bearer =",
            "Bearer abc=def",
            "Bearer é",
        ] {
            let Ok(value) = HeaderValue::from_bytes(v.as_bytes()) else {
                continue;
            };
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value);
            assert_eq!(bearer_token(&headers, &"/".parse().unwrap()), Err(BearerError::Malformed), "{v}");
        }
    }

    /// The vectorised byte check against the definition, for every byte value at every
    /// position of a short and a header-sized value.
    #[test]
    fn visible_ascii_or_sp_matches_its_definition() {
        for len in [1usize, 7, 64, 1300] {
            for b in 0..=255u8 {
                for at in [0, len / 2, len - 1] {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    let expected = b == b' ' || b.is_ascii_graphic();
                    assert_eq!(visible_ascii_or_sp(&v), expected, "byte {b:#04x} at {at} of {len}");
                }
            }
        }
        assert!(visible_ascii_or_sp(b""));
    }

    fn extract_bytes(value: &[u8]) -> Result<String, BearerError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        bearer_token(&headers, &"/".parse().unwrap()).map(str::to_owned)
    }

    #[test]
    fn only_sp_separates_and_no_other_whitespace_anywhere() {
        // RFC 7235 §2.1: one or more SP after the scheme; nothing else is whitespace here.
        for v in [
            "Bearer\tabc.def.ghi",
            "Bearer \tabc.def.ghi",
            "Bearer\t abc.def.ghi",
            "\tBearer abc.def.ghi",
            "Bearer abc.def.ghi\t",
            "Bearer\u{a0}abc.def.ghi",
            "Bearer \u{a0}abc.def.ghi",
            "Bearer abc.def.ghi\u{a0}",
            "\u{a0}Bearer abc.def.ghi",
            "Bearer\u{3000}abc.def.ghi",
            "Bearer abc.def.ghi\u{3000}",
            "Bearer\u{2003}abc.def.ghi",
            "Bearer\u{85}abc.def.ghi",
            "Bearer abc.def.ghi\u{feff}",
            "Bearer\u{1680}abc.def.ghi",
            // Another scheme with such characters is no less malformed: not "no credentials".
            "Basic\u{a0}dXNlcjpwYXNz",
            "Basic\tdXNlcjpwYXNz",
        ] {
            assert_eq!(extract_bytes(v.as_bytes()), Err(BearerError::Malformed), "{v:?}");
        }
        // Bytes that are not UTF-8 at all (obs-text).
        assert_eq!(extract_bytes(b"Bearer \xa0abc.def.ghi"), Err(BearerError::Malformed));
        assert_eq!(extract_bytes(b"Bearer abc.def.ghi\xff"), Err(BearerError::Malformed));
        // SP around the value and between scheme and token is fine.
        assert_eq!(extract_bytes(b"  Bearer    abc.def.ghi  ").unwrap(), "abc.def.ghi");
    }

    #[test]
    fn exactly_one_header() {
        assert_eq!(extract(&["Bearer a", "Bearer b"], "/"), Err(BearerError::MultipleHeaders));
        assert_eq!(extract(&["Bearer a", "Basic b"], "/"), Err(BearerError::MultipleHeaders));
    }

    #[test]
    fn never_from_the_query_string() {
        assert_eq!(extract(&[], "/x?access_token=abc"), Err(BearerError::TokenInQuery));
        assert_eq!(extract(&["Bearer abc"], "/x?a=1&access_token=abc"), Err(BearerError::TokenInQuery));
        assert_eq!(extract(&["Bearer abc"], "/x?my_access_token=1").unwrap(), "abc");
    }
}
