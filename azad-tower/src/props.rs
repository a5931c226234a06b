//! Property tests of the Authorization header through the layer: random and mutated header
//! values never panic, are never answered with a server error, and never pass unless they are
//! exactly `Bearer`, SP, a genuine token. Bounded (256 cases each) so CI stays fast.

use std::convert::Infallible;

use azad_core::dev::DevTenant;
use http::{HeaderValue, Request, Response, StatusCode, header};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::{Layer, Service, ServiceExt};

use crate::bearer::bearer_token;
use crate::{AuthRejection, AzureAdAuth, BearerError};

fn config() -> Config {
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

/// Characters that are whitespace somewhere (Unicode `White_Space`, BOM, controls) or near it.
const SPACES: &[char] = &[
    '\t', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2003}', '\u{200b}', '\u{2028}', '\u{2029}',
    '\u{202f}', '\u{205f}', '\u{3000}', '\u{feff}', ' ',
];

/// `value` with characters from [`SPACES`] inserted at random places.
fn with_spaces(value: String) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), 0..SPACES.len()), 0..4).prop_map(move |edits| {
        let mut chars: Vec<char> = value.chars().collect();
        for (at, c) in edits {
            let i = at.index(chars.len() + 1);
            chars.insert(i, SPACES[c]);
        }
        chars.into_iter().collect()
    })
}

fn status_of(error: BearerError) -> StatusCode {
    AuthRejection::from_bearer(error).status()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_header_bytes_are_a_token_or_a_client_error(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        match bearer_token(&headers, &"/".parse().unwrap()) {
            Ok(token) => {
                prop_assert!(bytes.iter().all(|&b| b == b' ' || b.is_ascii_graphic()));
                prop_assert!(!token.is_empty() && !token.contains(' '));
            }
            Err(e) => prop_assert!(status_of(e).is_client_error()),
        }
    }

    #[test]
    fn whitespace_other_than_sp_is_never_trimmed_into_a_token(value in with_spaces("Bearer abc.def.ghi".to_owned())) {
        // Control characters other than TAB cannot even be in a header value.
        let Ok(header_value) = HeaderValue::from_bytes(value.as_bytes()) else { return Ok(()) };
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, header_value);
        let result = bearer_token(&headers, &"/".parse().unwrap());
        if value.chars().any(|c| c != ' ' && (c.is_whitespace() || !c.is_ascii_graphic())) {
            prop_assert_eq!(result, Err(BearerError::Malformed), "{:?}", value);
        } else if let Ok(token) = result {
            // Only SP was added: around the value, or after the scheme.
            prop_assert_eq!(token, "abc.def.ghi");
        }
    }
}

/// Through the layer (strict and optional): random header values and genuine tokens with
/// whitespace slipped in are 400 or 401, never 5xx, and never reach the handler unless the
/// value is exactly the genuine token after `Bearer` and SP.
#[test]
fn the_layer_answers_every_header_with_a_client_error_or_the_handler() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dev = rt.block_on(DevTenant::start()).unwrap();
    let token = dev.token().build();
    let handler =
        tower::service_fn(|_req: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let strict = AzureAdAuth::new(dev.config()).layer(handler);
    let optional = AzureAdAuth::new(dev.config()).optional(true).layer(handler);
    let call = |svc: &_, value: &HeaderValue| {
        let mut svc: crate::AzureAdAuthService<_, _> = Clone::clone(svc);
        let request = Request::get("/").header(header::AUTHORIZATION, value.clone()).body(String::new()).unwrap();
        rt.block_on(async move { svc.ready().await.unwrap().call(request).await.unwrap() }).status()
    };
    let strategy = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        with_spaces(format!("Bearer {token}")).prop_map(String::into_bytes),
    ];
    let mut runner = TestRunner::new(config());
    runner
        .run(&strategy, |bytes| {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            for (name, svc) in [("strict", &strict), ("optional", &optional)] {
                let status = call(svc, &value);
                prop_assert!(!status.is_server_error(), "{}: {}", name, status);
                if status.is_success() {
                    let text = std::str::from_utf8(&bytes).unwrap().trim_matches(' ');
                    let genuine = text.split_once(' ').is_some_and(|(scheme, rest)| {
                        scheme.eq_ignore_ascii_case("bearer") && rest.trim_start_matches(' ') == token
                    });
                    // Optional mode lets requests without bearer credentials through.
                    let other_scheme = name == "optional"
                        && !text.split(' ').next().unwrap_or_default().eq_ignore_ascii_case("bearer")
                        && bytes.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
                    prop_assert!(genuine || other_scheme, "{}: {:?}", name, text);
                }
            }
            Ok(())
        })
        .unwrap();
}
