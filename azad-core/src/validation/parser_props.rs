//! Property tests of the JWS and claims parsers: they never panic on any input, and only ever
//! answer with a client error (a bounded number of cases, so CI stays fast; same in debug and
//! release builds). In a file of their own so the parsers do not import each other.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{JsonTextError, MAX_JSON_DEPTH, TokenPart, ValidationError};
use crate::validation::claims::Claims;
use crate::validation::jwt::*;

fn config() -> Config {
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

/// Any JSON value, nested up to `depth` levels of objects and arrays.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The JSON texts of the usual header and claims members, to splice into mutations.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    ":",
    ",",
    "null",
    "1e400",
    "-0",
    "\"alg\"",
    "\"RS256\"",
    "\"typ\"",
    "\"cty\"",
    "\"zip\"",
    "\"enc\"",
    "\"kid\"",
    "\"crit\"",
    "\"tid\"",
    "\"exp\"",
    "\"aud\"",
    "\u{a0}",
    "\u{feff}",
    "\0",
    "\u{10ffff}",
];

fn is_client_error(e: &ValidationError) -> bool {
    !e.is_server_error() && e.error_code() == Some("invalid_token")
}

/// A genuine-looking header or claims text, then bytes replaced, inserted or removed.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>(), 0..PIECES.len()), 0..6);
    edits.prop_map(move |edits| {
        let mut bytes = base.as_bytes().to_vec();
        for (at, kind, byte, piece) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => bytes[at] = byte,
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {
                    let p = PIECES[piece].as_bytes();
                    bytes.splice(at..at, p.iter().copied());
                }
            }
        }
        bytes
    })
}

const HEADER: &str =
    r#"{"typ":"JWT","alg":"RS256","kid":"nOo3ZDrODXEK1jKWhXslHR_KXEg","x5t":"nOo3ZDrODXEK1jKWhXslHR_KXEg"}"#;
const CLAIMS: &str = r#"{"aud":"6e74172b-be56-4843-9ff4-e66a39bb12e3","iss":"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0","iat":1,"nbf":1,"exp":2,"azp":"c","oid":"o","roles":["R"],"scp":"a b","sub":"s","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","ver":"2.0","xms":{"a":[1,{"b":null}]}}"#;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn split_never_panics_and_keeps_the_signing_input(token in any::<String>()) {
        if let Ok(s) = split(&token) {
            prop_assert_eq!(format!("{}.{}", s.signing_input, s.signature), token.clone());
            prop_assert_eq!(s.signing_input, format!("{}.{}", s.header, s.payload));
            prop_assert!(!s.header.is_empty() && !s.payload.is_empty() && is_b64url(s.signature));
        }
        // Base64url-looking tokens with dots in random places, too.
        let dotted: String = token.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '.' }).collect();
        if let Err(e) = split(&dotted) {
            prop_assert!(is_client_error(&e));
        }
    }

    #[test]
    fn segment_decoding_never_panics(segment in "[A-Za-z0-9_=+/. -]{0,1200}") {
        let mut buf = [0u8; 768];
        let mut spill = Vec::new();
        match decode_header(&segment, &mut buf, &mut spill) {
            Ok(bytes) => {
                let expected = URL_SAFE_NO_PAD.decode(&segment).unwrap();
                prop_assert_eq!(bytes, expected.as_slice());
            }
            Err(e) => prop_assert_eq!(e, ValidationError::Malformed(TokenPart::Header)),
        }
        if let Err(e) = decode_segment(&segment, TokenPart::Payload) {
            prop_assert_eq!(e, ValidationError::Malformed(TokenPart::Payload));
        }
    }

    #[test]
    fn header_parsing_of_any_bytes_is_a_client_error_or_a_header(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = JoseHeader::parse(&bytes) {
            prop_assert!(is_client_error(&e), "{:?}", e);
        }
    }

    #[test]
    fn header_mutations_never_panic(bytes in mutated(HEADER)) {
        match JoseHeader::parse(&bytes) {
            Ok(h) => {
                // Whatever parsed is JSON text of our shape.
                prop_assert!(std::str::from_utf8(&bytes).is_ok());
                let _ = typ_ok(h.typ.as_deref());
                let _ = h.kid.as_deref().map(kid_shape_ok);
            }
            Err(e) => prop_assert!(is_client_error(&e), "{:?}", e),
        }
    }

    #[test]
    fn claims_parsing_of_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Err(e) = Claims::from_json(&bytes) {
            prop_assert!(is_client_error(&e), "{:?}", e);
        }
    }

    #[test]
    fn claims_mutations_never_panic(bytes in mutated(CLAIMS)) {
        match Claims::from_json(&bytes) {
            Ok(c) => {
                prop_assert!(std::str::from_utf8(&bytes).is_ok());
                // Every accessor works on what parsed, untyped claims included.
                let _ = (c.issuer(), c.audiences(), c.is_app_only(), c.get("xms"), c.claim("exp"));
                let _ = serde_json::to_string(&c).unwrap();
            }
            Err(e) => prop_assert!(is_client_error(&e), "{:?}", e),
        }
    }

    #[test]
    fn json_text_check_accepts_every_shallow_json_value(v in json_value(8)) {
        // serde_json writes UTF-8 without unpaired surrogates; depth ≤ 1 + 8 levels.
        let text = Value::Object([("v".to_owned(), v)].into_iter().collect()).to_string();
        prop_assert_eq!(check_json_text(text.as_bytes(), TokenPart::Payload), Ok(()));
        prop_assert!(Claims::from_json(text.as_bytes()).is_ok());
    }

    #[test]
    fn json_text_check_refuses_any_unpaired_surrogate(
        prefix in "[a-z \\\\\"]{0,20}",
        hi in 0xD800u16..=0xDFFF,
        after in "[a-z0-9]{0,6}",
    ) {
        // Inside a string value whose prefix ends clean (an even run of backslashes).
        let prefix = prefix.replace(['\\', '"'], "");
        let text = format!(r#"{{"x":"{prefix}\u{hi:04x}{after}"}}"#);
        prop_assert_eq!(
            check_json_text(text.as_bytes(), TokenPart::Payload),
            Err(ValidationError::InvalidJsonText(TokenPart::Payload, JsonTextError::UnpairedSurrogate))
        );
    }

    #[test]
    fn json_text_check_bounds_nesting(levels in 1usize..40) {
        let text = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let result = check_json_text(text.as_bytes(), TokenPart::Header);
        if levels <= MAX_JSON_DEPTH {
            prop_assert_eq!(result, Ok(()));
        } else {
            prop_assert_eq!(result, Err(ValidationError::InvalidJsonText(TokenPart::Header, JsonTextError::TooDeep)));
        }
    }
}
