//! The AzureAdAuth layer over real sockets: every response of the quickstart API.

use std::time::Duration;

use azad_axum::AzureAdAuth;
use azad_examples::quickstart;
use azad_tests::{DevTenant, Endpoint, Fault, http, serve};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};

async fn quickstart(dev: &DevTenant) -> String {
    let addr = serve(quickstart::router(AzureAdAuth::new(dev.config()))).await;
    format!("http://{addr}")
}

fn www(res: &reqwest::Response) -> String {
    res.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn valid_token_gets_the_claims() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let token = dev.token().build();
    let res = http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let claims: serde_json::Value = res.json().await.unwrap();
    assert_eq!(claims["oid"], dev.users()[0].oid.as_str());
    assert_eq!(claims["tid"], dev.tenant_id());
    assert_eq!(claims["scp"], "access_as_user");
    assert_eq!(claims["aud"], dev.api_client_id());
    assert_eq!(claims["ver"], "2.0");
    // v1.0 tokens too, and the app role route for an application.
    let v1 = dev.token().v1().build();
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&v1).send().await.unwrap().status(), 200);
    let app = dev.token().app_only().roles(["Admin"]).build();
    let res = http().get(format!("{base}/api/admin")).bearer_auth(&app).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["app_only"], true);
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let res = http().get(format!("{base}/api/claims")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www(&res), "Bearer");
    // Another scheme is no bearer credentials either.
    let res = http().get(format!("{base}/api/claims")).basic_auth("u", Some("p")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www(&res), "Bearer");
    // Public and unknown routes are untouched by the route layer.
    assert_eq!(http().get(format!("{base}/health")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(http().get(format!("{base}/nope")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(dev.requests(Endpoint::Jwks), 0, "no token, no key fetch");
}

#[tokio::test]
async fn refused_tokens_are_401_invalid_token() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let cases = [
        ("expired", dev.token().expired().build()),
        ("wrong audience", dev.token().audience("https://graph.microsoft.com").build()),
        (
            "wrong issuer",
            dev.token().issuer("https://login.microsoftonline.com/7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f/v2.0").build(),
        ),
        ("bad signature", dev.token().signed_with_unpublished_key().kid(Some(&dev.active_kid())).build()),
        ("unknown key", dev.token().signed_with_unpublished_key().build()),
        ("not a JWT", "abc.def.ghi".to_owned()),
        ("alg none", dev.token().alg_header("none").build()),
    ];
    for (what, token) in cases {
        let res = http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(www(&res), r#"Bearer error="invalid_token""#, "{what}");
        assert!(res.text().await.unwrap().is_empty(), "{what}: terse by default");
    }
}

#[tokio::test]
async fn verbose_mode_describes_without_echoing_the_token() {
    let dev = DevTenant::start().await.unwrap();
    let addr = serve(quickstart::router(AzureAdAuth::new(dev.config()).verbose())).await;
    let token = dev.token().expired().claim("name", "CANARY-NAME").build();
    let res = http().get(format!("http://{addr}/api/claims")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let header = www(&res);
    assert_eq!(header, r#"Bearer error="invalid_token", error_description="The access token expired""#);
    assert!(!header.contains("CANARY"));
}

#[tokio::test]
async fn malformed_requests_are_400_invalid_request() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let token = dev.token().build();
    let mut two = HeaderMap::new();
    two.append(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    two.append(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    let res = http().get(format!("{base}/api/claims")).headers(two).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(www(&res), r#"Bearer error="invalid_request""#);

    for header in ["Bearer", "Bearer a b", "Bearer \"quoted\"", "Bearer tok=en"] {
        let res = http().get(format!("{base}/api/claims")).header(AUTHORIZATION, header).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{header}");
        assert_eq!(www(&res), r#"Bearer error="invalid_request""#, "{header}");
    }
    let res = http().get(format!("{base}/api/claims?access_token={token}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "never a token in the query string");
    // The scheme is case-insensitive.
    let res =
        http().get(format!("{base}/api/claims")).header(AUTHORIZATION, format!("bEaReR {token}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_scope_or_role_is_403_with_the_scope_hint() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let no_scope = dev.token().scopes(["User.Read"]).build();
    let res = http().get(format!("{base}/api/claims")).bearer_auth(&no_scope).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(www(&res), r#"Bearer error="insufficient_scope", scope="access_as_user""#);
    // Scopes are case-sensitive.
    let wrong_case = dev.token().scopes(["Access_As_User"]).build();
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&wrong_case).send().await.unwrap().status(), 403);
    // An application never has scopes.
    let app = dev.token().app_only().roles(["Admin"]).build();
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&app).send().await.unwrap().status(), 403);
    // A role requirement: no scope hint.
    let user = dev.token().build();
    let res = http().get(format!("{base}/api/admin")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(www(&res), r#"Bearer error="insufficient_scope""#);
    // A user holding the app role is admitted.
    let admin_user = dev.token().roles(["Admin"]).build();
    assert_eq!(http().get(format!("{base}/api/admin")).bearer_auth(&admin_user).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn no_signing_keys_is_503_with_retry_after() {
    let dev = DevTenant::start().await.unwrap();
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Status(500));
    let base = quickstart(&dev).await;
    let token = dev.token().build();
    let res = http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[RETRY_AFTER], "10");
    assert_eq!(www(&res), "Bearer");
    assert!(res.text().await.unwrap().is_empty(), "no details sent");
}

#[tokio::test]
async fn identity_endpoint_down_after_start_keeps_serving() {
    let dev = DevTenant::start().await.unwrap();
    let base = quickstart(&dev).await;
    let token = dev.token().build();
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap().status(), 200);
    dev.inject(Endpoint::Jwks, Fault::Status(500));
    dev.inject(Endpoint::OpenIdConfiguration, Fault::Delay(Duration::from_secs(30)));
    // A fresh token signed by the known key still validates on the last-known-good keys.
    let fresh = dev.token().build();
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&fresh).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn repeated_tokens_come_from_the_cache() {
    let dev = DevTenant::start().await.unwrap();
    let auth = AzureAdAuth::new(dev.config());
    let validator = auth.validator().clone();
    let base = format!("http://{}", serve(quickstart::router(auth)).await);
    let token = dev.token().build();
    assert!(validator.try_cached(&token).is_none());
    for _ in 0..3 {
        assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap().status(), 200);
    }
    assert!(validator.try_cached(&token).is_some(), "validated once, then cached");
    // Rotating and retiring the signing key flushes the cache.
    let old = dev.active_kid();
    let _ = dev.rotate_keys();
    assert!(dev.retire_key(&old));
    validator.jwks().refresh().await.unwrap();
    assert!(validator.try_cached(&token).is_none());
    assert_eq!(http().get(format!("{base}/api/claims")).bearer_auth(&token).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn authorization_whitespace_other_than_sp_is_400_never_anonymous() {
    use axum::routing::get;
    let dev = DevTenant::start().await.unwrap();
    let token = dev.token().build();
    let strict = quickstart(&dev).await;
    let optional = {
        let app =
            axum::Router::new()
                .route(
                    "/whoami",
                    get(|c: Option<azad_axum::Claims>| async move {
                        c.map_or("anonymous".to_owned(), |_| "user".to_owned())
                    }),
                )
                .layer(AzureAdAuth::new(dev.config()).optional(true));
        format!("http://{}/whoami", serve(app).await)
    };
    // A TAB between scheme and token, and non-ASCII whitespace anywhere: never trimmed into
    // the valid token, never taken for "no credentials", in optional mode too.
    let values: Vec<Vec<u8>> = vec![
        format!("Bearer\t{token}").into_bytes(),
        format!("Bearer \t{token}").into_bytes(),
        format!("Bearer\u{a0}{token}").into_bytes(),
        format!("Bearer {token}\u{a0}").into_bytes(),
        format!("Bearer\u{3000}{token}").into_bytes(),
        format!("Bearer {token}\u{3000}").into_bytes(),
        format!("\u{3000}Bearer {token}").into_bytes(),
        format!("Bearer \u{2028}{token}").into_bytes(),
        "Basic\u{a0}dXNlcjpwYXNz".to_owned().into_bytes(),
    ];
    for value in values {
        let header = HeaderValue::from_bytes(&value).unwrap();
        for url in [format!("{strict}/api/claims"), optional.clone()] {
            let res = http().get(&url).header(AUTHORIZATION, header.clone()).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{url} {:?}", String::from_utf8_lossy(&value));
            assert_eq!(www(&res), r#"Bearer error="invalid_request""#);
        }
    }
    // One or more SP is right, and no header at all is anonymous in optional mode.
    let res = http().get(&optional).header(AUTHORIZATION, format!("Bearer   {token}")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "user");
    assert_eq!(http().get(&optional).send().await.unwrap().text().await.unwrap(), "anonymous");
}

#[tokio::test]
async fn a_users_app_role_is_no_application_permission() {
    use axum::routing::get;
    let dev = DevTenant::start().await.unwrap();
    let app = axum::Router::new()
        .route("/reports", get(|| async { "reports" }))
        .route_layer(azad_axum::Require::scope_or_app_permission(["Reports.Read"], ["Reports.Read.All"]))
        .layer(AzureAdAuth::new(dev.config()));
    let base = format!("http://{}", serve(app).await);
    // A user token holding the app role and no `scp` (no `idtyp`, pairwise `sub`): delegated,
    // so it needs the scope.
    let user = dev.token().scopes(Vec::<String>::new()).roles(["Reports.Read.All"]).build();
    let res = http().get(format!("{base}/reports")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(www(&res), r#"Bearer error="insufficient_scope", scope="Reports.Read""#);
    // Applications, with or without `idtyp`, hold it as a permission.
    for app in [
        dev.token().app_only().roles(["Reports.Read.All"]).build(),
        dev.token().app_only().roles(["Reports.Read.All"]).without_claim("idtyp").build(),
    ] {
        assert_eq!(http().get(format!("{base}/reports")).bearer_auth(&app).send().await.unwrap().status(), 200);
    }
}
