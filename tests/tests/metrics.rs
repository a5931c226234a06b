//! The quickstart's `/metrics` (feature `metrics`): scraped over HTTP after a known set of
//! requests, every counter moved by exactly the expected amount.
//!
//! nextest runs each test in its own process, so the global recorder installed here sees only
//! this test's work.

use std::collections::BTreeMap;

use azad_axum::AzureAdAuth;
use azad_core::ClientCredential;
use azad_core::TokenClient;
use azad_examples::quickstart;
use azad_tests::{DevTenant, http, serve};
use reqwest::StatusCode;

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.push(Sample { name, labels, value: value.parse().expect("a number") });
    }
    out
}

/// The value of the one series of `name` whose labels are exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let found: Vec<_> = samples.iter().filter(|s| s.name == name && s.labels == want).collect();
    assert!(found.len() <= 1, "{name} {labels:?} appears {} times", found.len());
    found.first().map(|s| s.value)
}

#[tokio::test]
async fn the_quickstart_serves_metrics_that_moved_by_exactly_the_requests_made() {
    let handle = quickstart::install_metrics().expect("the only recorder of this process");
    let dev = DevTenant::start().await.unwrap();
    let auth = AzureAdAuth::new(dev.config());
    let router = quickstart::router(auth.clone()).merge(quickstart::metrics_route(handle, auth.validator().clone()));
    let base = format!("http://{}", serve(router).await);
    let client = http();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // 3 requests with one user token: 1 full validation (a cache miss), then 2 cache hits.
    let user = dev.token().build();
    for _ in 0..3 {
        assert_eq!(get("/api/claims", Some(&user)).await.unwrap().status(), StatusCode::OK);
    }
    // 2 expired tokens (each a miss, then rejected), 1 for Microsoft Graph, 1 without a token
    // (no validation at all).
    for _ in 0..2 {
        let expired = dev.token().expired().build();
        assert_eq!(get("/api/claims", Some(&expired)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let graph = dev.token().audience("00000003-0000-0000-c000-000000000000").build();
    assert_eq!(get("/api/claims", Some(&graph)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get("/api/claims", None).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The token client: 2 app tokens for one scope (1 request, then the cache), and one
    // request the token endpoint refuses (an unknown resource).
    let tokens = TokenClient::new(
        &dev.config_builder().client_id(dev.client_app_id()).build().unwrap(),
        ClientCredential::secret(dev.client_app_secret()),
    );
    let scope = format!("api://{}/.default", dev.api_client_id());
    for _ in 0..2 {
        tokens.acquire_app_token(&[scope.as_str()]).await.unwrap();
    }
    tokens.acquire_app_token(&["api://no-such-resource/.default"]).await.unwrap_err();

    let response = get("/metrics", None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    let a = ("authority", "default");

    assert_eq!(v("azad_validations_total", &[a, ("outcome", "accepted")]), Some(3.0), "{text}");
    let rejected = |reason, diagnostic| {
        v("azad_validations_total", &[a, ("outcome", "rejected"), ("reason", reason), ("diagnostic", diagnostic)])
    };
    assert_eq!(rejected("expired", "none"), Some(2.0), "{text}");
    assert_eq!(rejected("invalid_audience", "token_for_microsoft_graph"), Some(1.0), "{text}");
    assert_eq!(v("azad_validated_token_cache_requests_total", &[a, ("result", "hit")]), Some(2.0), "{text}");
    assert_eq!(v("azad_validated_token_cache_requests_total", &[a, ("result", "miss")]), Some(4.0), "{text}");
    assert_eq!(v("azad_validated_token_cache_entries", &[a]), Some(1.0), "{text}");
    assert_eq!(
        v("azad_key_refreshes_total", &[a, ("trigger", "startup"), ("outcome", "success")]),
        Some(1.0),
        "{text}"
    );
    let age = v("azad_key_set_age_seconds", &[a]).expect("key-set age");
    assert!((0.0..600.0).contains(&age), "{age}");
    assert!(v("azad_key_set_last_load_timestamp_seconds", &[a]).expect("last load") > 1.7e9);

    let cc = ("grant", "client_credentials");
    assert_eq!(v("azad_token_requests_total", &[cc, ("outcome", "success")]), Some(1.0), "{text}");
    assert_eq!(v("azad_token_requests_total", &[cc, ("outcome", "error_response")]), Some(1.0), "{text}");
    assert_eq!(
        v("azad_token_request_duration_seconds_count", &[cc, ("outcome", "success")]),
        Some(1.0),
        "a histogram with buckets: {text}"
    );
    assert!(
        v("azad_token_request_duration_seconds_bucket", &[cc, ("outcome", "success"), ("le", "+Inf")]) == Some(1.0)
    );
    assert_eq!(v("azad_acquired_token_cache_requests_total", &[("cache", "app"), ("result", "hit")]), Some(1.0));
    assert_eq!(v("azad_acquired_token_cache_requests_total", &[("cache", "app"), ("result", "miss")]), Some(2.0));

    // No label carries a token, a user or a tenant id.
    for sample in &samples {
        for value in sample.labels.values() {
            assert!(!value.contains(dev.tenant_id()) && !value.contains(&dev.users()[0].oid), "{sample:?}");
            assert!(value.len() < 64 && !value.contains('.') || value.parse::<f64>().is_ok(), "{sample:?}");
        }
    }

    // A second scrape after 2 more hits: exactly +2.
    for _ in 0..2 {
        assert_eq!(get("/api/claims", Some(&user)).await.unwrap().status(), StatusCode::OK);
    }
    let samples = parse(&get("/metrics", None).await.unwrap().text().await.unwrap());
    assert_eq!(value(&samples, "azad_validations_total", &[a, ("outcome", "accepted")]), Some(5.0));
    assert_eq!(value(&samples, "azad_validated_token_cache_requests_total", &[a, ("result", "hit")]), Some(4.0));
}

/// Throttling: a 429 with `Retry-After` is counted once as a server answer, the identical
/// request inside the window once as a local refusal (nothing sent).
#[tokio::test]
async fn throttled_token_requests_are_counted_by_source() {
    let handle = quickstart::install_metrics().expect("the only recorder of this process");
    let dev = DevTenant::start().await.unwrap();
    dev.inject(azad_tests::Endpoint::Token, azad_tests::Fault::TooManyRequests { retry_after: 30 });
    let tokens = TokenClient::new(
        &dev.config_builder().client_id(dev.client_app_id()).build().unwrap(),
        ClientCredential::secret(dev.client_app_secret()),
    );
    let scope = format!("api://{}/.default", dev.api_client_id());
    for _ in 0..2 {
        tokens.acquire_app_token(&[scope.as_str()]).await.unwrap_err();
    }
    let samples = parse(&handle.render());
    let cc = ("grant", "client_credentials");
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(v("azad_token_requests_throttled_total", &[cc, ("source", "server")]), Some(1.0));
    assert_eq!(v("azad_token_requests_throttled_total", &[cc, ("source", "local")]), Some(1.0));
    assert_eq!(v("azad_token_requests_total", &[cc, ("outcome", "throttled")]), Some(2.0));
}

/// Key refreshes by trigger: the first load (`startup`), a token naming a new key
/// (`unknown_kid`), `JwksCache::refresh` (`explicit`) and the background timer (`interval`).
#[tokio::test]
async fn key_refreshes_are_counted_by_trigger() {
    let handle = quickstart::install_metrics().expect("the only recorder of this process");
    let dev = DevTenant::start().await.unwrap();
    let config = dev
        .config_builder()
        .authority_name("workforce")
        .jwks_refresh_interval(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let validator = azad_core::TokenValidator::new(config);
    validator.validate(&dev.token().build()).await.unwrap();
    dev.rotate_keys();
    let claims = validator.validate(&dev.token().build()).await.unwrap();
    assert_eq!(claims.authority(), Some("workforce"));
    validator.jwks().refresh().await.unwrap();

    let count = |trigger: &str| {
        let samples = parse(&handle.render());
        value(
            &samples,
            "azad_key_refreshes_total",
            &[("authority", "workforce"), ("trigger", trigger), ("outcome", "success")],
        )
    };
    assert_eq!(count("startup"), Some(1.0));
    assert_eq!(count("unknown_kid"), Some(1.0));
    assert_eq!(count("explicit"), Some(1.0));
    // The background refresh runs every 300 ms: wait (up to 30 s) until it has run once.
    let mut waited = 0;
    while count("interval").is_none() && waited < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(count("interval").is_some_and(|n| n >= 1.0), "{}", handle.render());
}
