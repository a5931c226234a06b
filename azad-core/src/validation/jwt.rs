//! Parsing of the JWS compact serialisation: segments, base64url, and the JOSE header.
//!
//! Everything here runs before the signature is checked, on attacker-controlled input, so it
//! is strict (canonical base64url, JSON objects, no duplicate members) and allocation-light.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::{JsonTextError, MAX_JSON_DEPTH, TokenPart, ValidationError};

/// A map key that borrows from the input when it has no escapes.
pub(crate) struct CowKey<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The three segments of a compact JWS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the signing input.
    pub(crate) signing_input: &'a str,
}

/// The base64url alphabet, as a lookup table (a per-byte range test is measurably slower on
/// 1–2 KB tokens).
static B64URL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        i += 1;
    }
    t
};

pub(crate) fn is_b64url(s: &str) -> bool {
    s.bytes().all(|b| B64URL[usize::from(b)])
}

/// Splits a token into exactly three non-empty segments. The signature segment is checked
/// against the base64url alphabet here; the header and payload are checked by their decoder.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, ValidationError> {
    let malformed = ValidationError::Malformed(TokenPart::Structure);
    let mut it = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(malformed);
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(malformed);
    }
    if !is_b64url(signature) {
        return Err(ValidationError::Malformed(TokenPart::Signature));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Segments { header, payload, signature, signing_input })
}

/// Decodes one base64url segment (no padding, canonical).
pub(crate) fn decode_segment(segment: &str, part: TokenPart) -> Result<Vec<u8>, ValidationError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| ValidationError::Malformed(part))
}

/// The parts of the JOSE header that validation uses, borrowing from the decoded header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct JoseHeader<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    /// The first refused parameter present (`crit`, `jku`, `jwk`, `x5u`, `x5c`).
    pub(crate) forbidden: Option<&'static str>,
    /// The first member that declares other content than a JWT claims set (`cty`, `zip`,
    /// `enc`).
    pub(crate) content: Option<&'static str>,
    /// A `nonce` header: Microsoft Graph access tokens carry one.
    pub(crate) nonce: bool,
    duplicate: bool,
}

/// Most members a header may have (real ones have at most six).
const MAX_HEADER_MEMBERS: usize = 24;

impl<'a> JoseHeader<'a> {
    /// Parses a decoded header: a JSON object without duplicate members whose `alg`, `kid`
    /// and `typ` are strings.
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, ValidationError> {
        check_json_text(json, TokenPart::Header)?;
        let mut de = serde_json::Deserializer::from_slice(json);
        let h = Self::deserialize(&mut de)
            .and_then(|h| de.end().map(|()| h))
            .map_err(|_| ValidationError::Malformed(TokenPart::Header))?;
        if h.duplicate {
            return Err(ValidationError::DuplicateMember(TokenPart::Header));
        }
        Ok(h)
    }
}

/// Decodes the header segment into `buf` when it fits (no allocation on the hot path), else
/// into `spill`.
pub(crate) fn decode_header<'b>(
    segment: &str,
    buf: &'b mut [u8; 768],
    spill: &'b mut Vec<u8>,
) -> Result<&'b [u8], ValidationError> {
    match URL_SAFE_NO_PAD.decode_slice(segment, buf) {
        Ok(n) => Ok(&buf[..n]),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            *spill = decode_segment(segment, TokenPart::Header)?;
            Ok(spill)
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => Err(ValidationError::Malformed(TokenPart::Header)),
    }
}

impl<'de> Deserialize<'de> for JoseHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = JoseHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JoseHeader<'de>, A::Error> {
        let mut h = JoseHeader::default();
        // Headers are small: a linear scan of a fixed array finds duplicates without hashing
        // or allocating.
        let mut seen: [Option<Cow<'de, str>>; MAX_HEADER_MEMBERS] = Default::default();
        let mut count = 0;
        while let Some(CowKey(key)) = map.next_key::<CowKey<'de>>()? {
            if seen[..count].iter().flatten().any(|k| *k == key) {
                h.duplicate = true;
            }
            match key.as_ref() {
                // Non-string values fail the string deserializer: a malformed header.
                "alg" => h.alg = Some(map.next_value::<CowKey<'de>>()?.0),
                "kid" => h.kid = Some(map.next_value::<CowKey<'de>>()?.0),
                "typ" => h.typ = Some(map.next_value::<CowKey<'de>>()?.0),
                other => {
                    map.next_value::<IgnoredAny>()?;
                    match other {
                        "crit" => h.forbidden = h.forbidden.or(Some("crit")),
                        "jku" => h.forbidden = h.forbidden.or(Some("jku")),
                        "jwk" => h.forbidden = h.forbidden.or(Some("jwk")),
                        "x5u" => h.forbidden = h.forbidden.or(Some("x5u")),
                        "x5c" => h.forbidden = h.forbidden.or(Some("x5c")),
                        "cty" => h.content = h.content.or(Some("cty")),
                        "zip" => h.content = h.content.or(Some("zip")),
                        "enc" => h.content = h.content.or(Some("enc")),
                        "nonce" => h.nonce = true,
                        _ => {}
                    }
                }
            }
            if count == MAX_HEADER_MEMBERS {
                return Err(de::Error::custom("too many header members"));
            }
            seen[count] = Some(key);
            count += 1;
        }
        Ok(h)
    }
}

/// `true` if the header's `typ` declares a JWT access token: absent, `JWT` or `application/jwt`
/// (RFC 7519 §5.1), `at+jwt` or `application/at+jwt` (RFC 9068 §2.1), in any case (RFC 7515
/// §4.1.9: the `application/` prefix may be left out; media types are case-insensitive).
pub(crate) fn typ_ok(typ: Option<&str>) -> bool {
    let Some(typ) = typ else { return true };
    let media = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    media.eq_ignore_ascii_case("jwt") || media.eq_ignore_ascii_case("at+jwt")
}

/// Checks that a decoded header or claims set is acceptable JSON text before it is parsed:
/// UTF-8 (RFC 8259 §8.1), no `\u` escape of an unpaired UTF-16 surrogate (RFC 8259 §8.2,
/// which serde_json lets through in values it skips), and objects and arrays nested at most
/// [`MAX_JSON_DEPTH`] deep. One pass, no allocation. Anything else that is not JSON is left
/// to the parser (a [`ValidationError::Malformed`]).
pub(crate) fn check_json_text(json: &[u8], part: TokenPart) -> Result<(), ValidationError> {
    let fail = |e| Err(ValidationError::InvalidJsonText(part, e));
    if std::str::from_utf8(json).is_err() {
        return fail(JsonTextError::NotUtf8);
    }
    let hex4 = |at: usize| -> Option<u16> {
        let digits = json.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(text, 16).ok()
    };
    let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
    while i < json.len() {
        if in_string {
            // Most of a claims set is string contents: jump to the next quote or backslash.
            match memchr::memchr2(b'"', b'\\', &json[i..]) {
                Some(skip) => i += skip,
                None => break,
            }
        }
        let b = json[i];
        if in_string {
            match b {
                b'"' => in_string = false,
                b'\\' => {
                    if json.get(i + 1) == Some(&b'u') {
                        match hex4(i + 2) {
                            Some(0xD800..=0xDBFF) => {
                                // A high surrogate must be followed at once by a low one.
                                let low = (json.get(i + 6..i + 8) == Some(b"\\u")).then(|| hex4(i + 8)).flatten();
                                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                                    return fail(JsonTextError::UnpairedSurrogate);
                                }
                                i += 12;
                                continue;
                            }
                            Some(0xDC00..=0xDFFF) => return fail(JsonTextError::UnpairedSurrogate),
                            Some(_) => {
                                i += 6;
                                continue;
                            }
                            // Not four hex digits: the parser refuses it.
                            None => {}
                        }
                    }
                    // Skip the escaped character (`\"` does not end the string).
                    i += 2;
                    continue;
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return fail(JsonTextError::TooDeep);
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    Ok(())
}

/// `true` if `kid` looks like a key id: 1 to 128 printable characters from the base64,
/// base64url and hex alphabets plus `-`, `_`, `.`, `:`, `=`.
pub(crate) fn kid_shape_ok(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b'+' | b'/'))
}

/// An RSA signature algorithm a token may be signed with.
///
/// `none` and the HMAC algorithms cannot be expressed: they are always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what Entra ID uses).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
}

impl SigningAlgorithm {
    /// The JOSE name (`RS256`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }

    /// Parses a JOSE algorithm name; `None` for anything that is not an RSA algorithm.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            _ => return None,
        })
    }

    /// The aws-lc verification algorithm: the one `jsonwebtoken`'s aws-lc backend uses for
    /// this algorithm (RSA moduli of 2048 to 8192 bits).
    pub(crate) fn aws_lc_params(self) -> &'static aws_lc_rs::signature::RsaParameters {
        use aws_lc_rs::signature as sig;
        match self {
            Self::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        }
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::RS384 => jsonwebtoken::Algorithm::RS384,
            Self::RS512 => jsonwebtoken::Algorithm::RS512,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
            Self::PS384 => jsonwebtoken::Algorithm::PS384,
            Self::PS512 => jsonwebtoken::Algorithm::PS512,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        let s = split("aGk.eyJ9.c2ln").unwrap();
        assert_eq!((s.header, s.payload, s.signature, s.signing_input), ("aGk", "eyJ9", "c2ln", "aGk.eyJ9"));
        for bad in ["", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b."] {
            assert_eq!(split(bad).unwrap_err(), ValidationError::Malformed(TokenPart::Structure), "{bad:?}");
        }
        for bad in ["a.b.c d", "a.b.c=", "a.b.c+/"] {
            assert_eq!(split(bad).unwrap_err(), ValidationError::Malformed(TokenPart::Signature), "{bad:?}");
        }
        // Header and payload characters are left to the base64url decoder.
        assert!(split("a b.c=.d").is_ok());
        assert!(decode_segment("a b", TokenPart::Header).is_err());
        assert!(decode_segment("eyJ9=", TokenPart::Payload).is_err());
    }

    #[test]
    fn base64_must_be_canonical() {
        assert_eq!(decode_segment("aGk", TokenPart::Header).unwrap(), b"hi");
        // "aGl" has non-zero trailing bits: not canonical.
        assert!(decode_segment("aGl", TokenPart::Header).is_err());
        assert!(decode_segment("a", TokenPart::Header).is_err());
    }

    #[test]
    fn header_parsing() {
        let h = JoseHeader::parse(br#"{"typ":"JWT","alg":"RS256","kid":"abc","x5t":"abc"}"#).unwrap();
        assert_eq!(h.alg.as_deref(), Some("RS256"));
        assert_eq!(h.kid.as_deref(), Some("abc"));
        assert_eq!(h.forbidden, None);
        assert_eq!(
            JoseHeader::parse(br#"{"alg":"RS256","alg":"none"}"#),
            Err(ValidationError::DuplicateMember(TokenPart::Header))
        );
        assert_eq!(JoseHeader::parse(br#"{"alg":5}"#), Err(ValidationError::Malformed(TokenPart::Header)));
        assert_eq!(JoseHeader::parse(b"[]"), Err(ValidationError::Malformed(TokenPart::Header)));
        assert_eq!(JoseHeader::parse(b"{"), Err(ValidationError::Malformed(TokenPart::Header)));
        for p in ["crit", "jku", "jwk", "x5u", "x5c"] {
            let json = format!(r#"{{"alg":"RS256","{p}":["x"]}}"#);
            assert_eq!(JoseHeader::parse(json.as_bytes()).unwrap().forbidden, Some(p));
        }
        assert!(JoseHeader::parse(br#"{"alg":"RS256","nonce":"n"}"#).unwrap().nonce);
    }

    #[test]
    fn kid_shapes() {
        assert!(kid_shape_ok("nOo3ZDrODXEK1jKWhXslHR_KXEg"));
        assert!(kid_shape_ok("1LTMzakihiRla_8z2BEJVXeWMqo"));
        assert!(!kid_shape_ok(""));
        assert!(!kid_shape_ok("../../etc/passwd\0"));
        assert!(!kid_shape_ok(&"a".repeat(129)));
        assert!(!kid_shape_ok("a b"));
    }
}
