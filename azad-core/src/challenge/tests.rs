use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use proptest::prelude::*;

use super::*;

fn parse(value: &str) -> Vec<AuthChallenge> {
    parse_www_authenticate(value).unwrap()
}

#[test]
fn formats_rfc6750_challenges() {
    assert_eq!(Challenge::new(StatusCode::UNAUTHORIZED).header_value(), "Bearer");
    let c = Challenge::new(StatusCode::FORBIDDEN)
        .with_error("insufficient_scope")
        .with_error_description("The access token does not carry the required scope")
        .with_scope(["Files.Read", "Files.Write"]);
    assert_eq!(
        c.header_value(),
        r#"Bearer error="insufficient_scope", error_description="The access token does not carry the required scope", scope="Files.Read Files.Write""#
    );
    let c = Challenge::new(StatusCode::UNAUTHORIZED).with_realm("api \"x\"").with_error("invalid_token");
    assert_eq!(c.header_value(), r#"Bearer realm="api \"x\"", error="invalid_token""#);
}

#[test]
fn error_description_keeps_only_rfc6750_characters() {
    let c = Challenge::new(StatusCode::UNAUTHORIZED).with_error_description("a \"q\" \\ b\r\n\tcafé ok!");
    assert_eq!(c.error_description(), Some("a q  bcaf ok!"));
    let c = Challenge::new(StatusCode::UNAUTHORIZED).with_scope(["a\"b c", "", "  d\u{e9}  "]);
    assert_eq!(c.scope(), ["a\"b", "c", "d"]);
    assert_eq!(c.header_value(), r#"Bearer scope="a\"b c d""#);
}

#[test]
fn which_statuses_carry_the_headers() {
    let retry = Challenge::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(Duration::from_millis(10));
    let r: http::Response<()> = retry.to_response();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(r.headers()[header::RETRY_AFTER], "1", "at least one second");
    let r: http::Response<()> = Challenge::new(StatusCode::BAD_GATEWAY).to_response();
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    let r: http::Response<()> = Challenge::new(StatusCode::INTERNAL_SERVER_ERROR).to_response();
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    let r: http::Response<()> = Challenge::new(StatusCode::BAD_REQUEST).with_error("invalid_request").to_response();
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], r#"Bearer error="invalid_request""#);
}

#[test]
fn retry_after_is_capped_and_parsed_without_overflow() {
    let c = Challenge::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(Duration::from_secs(u64::MAX));
    assert_eq!(c.retry_after(), Some(MAX_RETRY_AFTER));
    assert_eq!(c.retry_after_value().unwrap(), "60");
    // Rounded up: told "1" for 1.9 s, a client would come back before the next attempt.
    let c = Challenge::new(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(Duration::from_millis(1900));
    assert_eq!(c.retry_after_value().unwrap(), "2");
    let headers = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    };
    assert_eq!(parse_retry_after(&headers("18446744073709551615")), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(parse_retry_after(&headers("99999999999999999999999999")), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(parse_retry_after(&headers(" 12 ")), Some(Duration::from_secs(12)));
    assert_eq!(parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let secs = parse_retry_after(&headers(&later)).unwrap().as_secs();
    assert!((118..=120).contains(&secs), "{secs}");
    assert_eq!(parse_retry_after(&headers("-1")), None);
    assert_eq!(parse_retry_after(&headers("soon")), None);
    assert_eq!(parse_retry_after(&HeaderMap::new()), None);
}

#[test]
fn parses_rfc7235_challenges() {
    let p = parse(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].scheme(), "Newauth");
    assert_eq!(p[0].params().len(), 3);
    assert_eq!(p[0].param("type"), Some("1"));
    assert_eq!(p[0].param("TITLE"), Some(r#"Login to "apps""#));
    assert_eq!(p[1].scheme(), "Basic");
    assert_eq!(p[1].param("realm"), Some("simple"));

    let p = parse("Negotiate abc+/==, bearer , Bearer   error = invalid_token ,, scope=\"a b\"");
    assert_eq!(p[0].token68(), Some("abc+/=="));
    assert_eq!(p[1].scheme(), "bearer");
    assert!(p[1].params().is_empty());
    assert_eq!(p[2].param("error"), Some("invalid_token"));
    assert_eq!(p[2].param("scope"), Some("a b"));

    // The azad-axum auth-param cases it replaces.
    let p =
        parse(r#"Bearer realm="", authorization_uri="https://login/x", error="insufficient_claims", claims="eyJ=""#);
    assert_eq!(p[0].params()[0], ("realm".into(), String::new()));
    assert_eq!(p[0].params()[2], ("error".into(), "insufficient_claims".into()));
    assert_eq!(p[0].params()[3], ("claims".into(), "eyJ=".into()));
    let p = parse(r#"Bearer error=invalid_token, error_description="a \"q\", b""#);
    assert_eq!(p[0].params()[1], ("error_description".into(), "a \"q\", b".into()));
}

#[test]
fn refuses_malformed_values() {
    for bad in [
        "",
        " , ",
        "Bearer error=\"unterminated",
        "Bearer a=b, error=",
        "Bearer =x",
        "Bearer error=\"a\" junk",
        "Bearer\"x\"",
        "Bearer error=\"a\u{1}\"",
    ] {
        assert!(parse_www_authenticate(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        Challenge::parse(StatusCode::UNAUTHORIZED, r#"Bearer error="a", ERROR="b""#),
        Err(ChallengeParseError::DuplicateParam { name: "error".into() })
    );
    assert_eq!(
        Challenge::parse(StatusCode::UNAUTHORIZED, r#"Bearer claims="not base64!""#),
        Err(ChallengeParseError::Claims)
    );
    assert_eq!(Challenge::parse(StatusCode::UNAUTHORIZED, r#"Basic realm="x""#), Ok(None));
}

#[test]
fn reads_a_bearer_challenge_among_others() {
    let claims = r#"{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(claims);
    let mut headers = HeaderMap::new();
    headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"x\""));
    headers.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!(
            r#"PoP nonce="n", Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{b64}""#
        ))
        .unwrap(),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("18446744073709551615"));
    let c = Challenge::from_response_parts(StatusCode::UNAUTHORIZED, &headers).unwrap();
    assert_eq!(c.error(), Some("insufficient_claims"));
    assert_eq!(c.claims(), Some(claims));
    assert_eq!(c.realm(), Some(""));
    assert_eq!(c.retry_after(), Some(MAX_RETRY_AFTER), "a downstream's Retry-After is capped");
}

/// A hostile claims challenge (quotes, commas, a forged `error`) cannot add parameters to a
/// challenge we format: it travels base64-encoded.
#[test]
fn a_hostile_claims_challenge_cannot_inject_parameters() {
    let hostile = r#"x", error="invalid_request", scope="admin", claims="e30="#;
    let c = Challenge::new(StatusCode::UNAUTHORIZED).with_error("insufficient_claims").with_claims(hostile);
    let header = c.header_value();
    let parsed = parse(header.to_str().unwrap());
    assert_eq!(parsed.len(), 1);
    let names: Vec<_> = parsed[0].params().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["error", "claims"]);
    assert_eq!(parsed[0].param("error"), Some("insufficient_claims"));
    assert_eq!(Challenge::parse(StatusCode::UNAUTHORIZED, header.to_str().unwrap()).unwrap().unwrap(), c);
}

fn any_text() -> impl Strategy<Value = String> {
    // Any Unicode, with the troublesome ASCII (quotes, backslashes, commas, '=') well represented.
    prop_oneof![any::<String>(), "[ -~]{0,40}", r#"[\\",= a-z]{0,20}"#]
}

proptest! {
    /// Whatever the inputs, the formatted header parses back to the same values (after the
    /// documented sanitising, which the setters apply).
    #[test]
    fn round_trip(
        realm in proptest::option::of(any_text()),
        error in proptest::option::of(any_text()),
        description in proptest::option::of(any_text()),
        scope in proptest::collection::vec(any_text(), 0..4),
        claims in proptest::option::of(any_text()),
        retry in proptest::option::of(any::<u64>()),
        status in prop_oneof![Just(StatusCode::UNAUTHORIZED), Just(StatusCode::FORBIDDEN), Just(StatusCode::SERVICE_UNAVAILABLE)],
    ) {
        let mut c = Challenge::new(status);
        if let Some(v) = &realm { c = c.with_realm(v); }
        if let Some(v) = &error { c = c.with_error(v); }
        if let Some(v) = &description { c = c.with_error_description(v); }
        if !scope.is_empty() { c = c.with_scope(&scope); }
        if let Some(v) = &claims { c = c.with_claims(v.clone()); }
        if let Some(secs) = retry { c = c.with_retry_after(Duration::from_secs(secs)); }

        let mut headers = HeaderMap::new();
        c.apply_to(&mut headers);
        let back = Challenge::from_response_parts(status, &headers).expect("our header parses");
        prop_assert_eq!(&back, &c);
        // The values, as documented: claims exactly; error_description with only RFC 6750 §3's
        // characters; Retry-After capped.
        prop_assert_eq!(back.claims(), claims.as_deref());
        let rfc6750 = |s: &String| s.chars().filter(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~')).collect::<String>();
        prop_assert_eq!(back.error_description().map(str::to_owned), description.as_ref().map(rfc6750));
        prop_assert_eq!(back.retry_after(), retry.map(|s| Duration::from_secs(s).clamp(Duration::from_secs(1), MAX_RETRY_AFTER)));
        // Exactly one challenge, with no parameter twice.
        let parsed = parse_www_authenticate(headers[header::WWW_AUTHENTICATE].to_str().unwrap()).unwrap();
        prop_assert_eq!(parsed.len(), 1);
    }

    /// The parser never panics, whatever it is given.
    #[test]
    fn parser_is_total(value in "[ -~]{0,80}") {
        let _ = parse_www_authenticate(&value);
        let _ = Challenge::parse(StatusCode::UNAUTHORIZED, &value);
    }
}

/// The one HTTP-to-gRPC mapping of azad's answers.
#[test]
fn grpc_codes_follow_the_http_status() {
    for (status, code) in
        [(400, 16), (401, 16), (403, 7), (404, 12), (429, 14), (500, 13), (502, 14), (503, 14), (504, 14), (418, 2)]
    {
        let challenge = Challenge::new(StatusCode::from_u16(status).unwrap());
        assert_eq!(challenge.grpc_code(), code, "{status}");
    }
}
