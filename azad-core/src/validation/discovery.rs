//! OpenID Connect discovery: fetching the provider metadata and checking that the issuer it
//! announces belongs to the authority it was fetched from.

use serde::Deserialize;

use crate::authority::{Authority, TENANT_TEMPLATE};
use crate::error::JwksError;
use crate::http::{HttpClient, HttpRequest};
use crate::validation::issuer::Issuers;

/// The parts of an OpenID configuration document that azad uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer announced by the provider (may contain `{tenantid}` for multi-tenant metadata).
    pub issuer: String,
    /// Where the signing keys are published.
    pub jwks_uri: String,
    /// The token endpoint.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The authorisation endpoint.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// The device authorisation endpoint.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// The sign-out endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// Fetches a JSON document with the shared client, refusing non-200 answers and non-JSON bodies.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &dyn HttpClient,
    url: &str,
    document: &'static str,
) -> Result<T, JwksError> {
    let request = HttpRequest::new(Vec::new());
    let (mut parts, body) = request.into_parts();
    parts.uri = url.parse().map_err(|_| JwksError::InvalidDocument {
        url: url.to_owned(),
        document,
        reason: "not a valid URI".into(),
    })?;
    parts.headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
    let response = http
        .send(HttpRequest::from_parts(parts, body))
        .await
        .map_err(|source| JwksError::Http { url: url.to_owned(), source })?;
    if response.status() != http::StatusCode::OK {
        return Err(JwksError::Status { url: url.to_owned(), status: response.status().as_u16() });
    }
    serde_json::from_slice(response.body()).map_err(|e| JwksError::InvalidDocument {
        url: url.to_owned(),
        document,
        reason: e.to_string(),
    })
}

/// What discovery found: the v2.0 metadata, the issuers its tokens may carry, and the v1.0
/// family's outage when its own document (custom Entra hosts only) could not be loaded.
#[derive(Debug)]
pub(crate) struct Discovered {
    pub(crate) metadata: ProviderMetadata,
    pub(crate) issuers: Issuers,
    /// The v1.0 issuer that could not be confirmed, and why: its tokens wait (503) while the
    /// v2.0 family validates.
    pub(crate) v1_outage: Option<(String, JwksError)>,
}

/// Fetches the authority's metadata and the issuers its tokens may carry.
///
/// The v2.0 document is required. The v1.0 document (fetched only for custom Entra hosts
/// whose v1.0 issuer has no known form) fails on its own: see [`Discovered::v1_outage`].
pub(crate) async fn discover(authority: &Authority, http: &dyn HttpClient) -> Result<Discovered, JwksError> {
    let url = authority.metadata_url();
    let meta: ProviderMetadata = get_json(http, &url, "OpenID configuration").await?;
    if let Some(issuers) = check_metadata(authority, &url, &meta)? {
        return Ok(Discovered { metadata: meta, issuers, v1_outage: None });
    }
    // Entra, custom host: the v1 issuer comes from the v1 document, which fails on its own.
    let tenant_part = entra_tenant_part(authority, &url, &meta.issuer)?;
    let mut accepted = vec![meta.issuer.clone()];
    let mut v1_outage = None;
    if let (Some(v1_url), Some(expected)) =
        (authority.v1_metadata_url(), authority.expected_custom_v1_issuer(&tenant_part))
    {
        match get_json::<ProviderMetadata>(http, &v1_url, "OpenID configuration").await {
            Ok(v1_meta) if v1_meta.issuer == expected => accepted.push(v1_meta.issuer),
            Ok(v1_meta) => {
                v1_outage = Some((expected, JwksError::IssuerMismatch { url: v1_url, issuer: v1_meta.issuer }));
            }
            Err(e) => v1_outage = Some((expected, e)),
        }
    }
    let tenant_id = (tenant_part != TENANT_TEMPLATE).then(|| tenant_part.to_ascii_lowercase());
    let v2 = Some(meta.issuer.clone());
    Ok(Discovered { metadata: meta, issuers: Issuers { accepted, v2, tenant_id }, v1_outage })
}

/// Checks a discovery document against the authority it was fetched from (pure: no I/O).
///
/// Returns the issuers when they are complete, or `None` when a custom Entra host's v1.0
/// document must still be read. Errors: [`JwksError::IssuerMismatch`] (another tenant or
/// shape), [`JwksError::IssuerHostMismatch`] (another host, naming both),
/// [`JwksError::UntrustedJwksOrigin`], [`JwksError::InvalidDocument`].
pub(crate) fn check_metadata(
    authority: &Authority,
    url: &str,
    meta: &ProviderMetadata,
) -> Result<Option<Issuers>, JwksError> {
    let jwks_uri = crate::authority::parse_secure_url(&meta.jwks_uri, "jwks_uri").map_err(|e| {
        JwksError::InvalidDocument { url: url.to_owned(), document: "OpenID configuration", reason: e.to_string() }
    })?;
    let metadata_url = url::Url::parse(url).map_err(|e| JwksError::InvalidDocument {
        url: url.to_owned(),
        document: "OpenID configuration",
        reason: e.to_string(),
    })?;

    if let Some(expected) = authority.expected_oidc_issuer() {
        if meta.issuer.trim_end_matches('/') != expected.trim_end_matches('/') {
            return Err(JwksError::IssuerMismatch { url: url.to_owned(), issuer: meta.issuer.clone() });
        }
        check_jwks_origin(authority, &metadata_url, &jwks_uri, &meta.issuer)?;
        let issuers = Issuers { accepted: vec![meta.issuer.clone()], v2: Some(meta.issuer.clone()), tenant_id: None };
        return Ok(Some(issuers));
    }

    let tenant_part = entra_tenant_part(authority, url, &meta.issuer)?;
    check_jwks_origin(authority, &metadata_url, &jwks_uri, &meta.issuer)?;
    if authority.v1_metadata_url().is_some() {
        return Ok(None);
    }
    // Both versions' issuers are known, so that a token of a refused version is reported as
    // such rather than as a foreign issuer. External ID documents no v1.0 issuer.
    let mut accepted = vec![meta.issuer.clone()];
    if let Some(v1) = authority.known_v1_issuer(&tenant_part) {
        accepted.push(v1);
    }
    let tenant_id = (tenant_part != TENANT_TEMPLATE).then(|| tenant_part.to_ascii_lowercase());
    Ok(Some(Issuers { accepted, v2: Some(meta.issuer.clone()), tenant_id }))
}

fn check_jwks_origin(
    authority: &Authority,
    metadata_url: &url::Url,
    jwks_uri: &url::Url,
    issuer: &str,
) -> Result<(), JwksError> {
    if authority.trusts_jwks_uri(metadata_url, jwks_uri, issuer) {
        return Ok(());
    }
    Err(JwksError::UntrustedJwksOrigin {
        url: metadata_url.to_string(),
        jwks_uri: jwks_uri.to_string(),
        expected: crate::authority::origin_of(metadata_url),
    })
}

/// The tenant part of an Entra v2.0 issuer, which must be exactly
/// `expected_v2_issuer(part)` with an acceptable tenant part: `{host}/{tenant}/v2.0`, no
/// trailing slash, no query. An issuer on another origin than expected is an
/// [`JwksError::IssuerHostMismatch`] naming both.
fn entra_tenant_part(authority: &Authority, url: &str, issuer: &str) -> Result<String, JwksError> {
    let mismatch = || JwksError::IssuerMismatch { url: url.to_owned(), issuer: issuer.to_owned() };
    let parsed = url::Url::parse(issuer).map_err(|_| mismatch())?;
    // `{host}{part}/v2.0`: the part is the last path segment before `/v2.0` (a custom host may
    // have a path prefix); the exact comparison below checks everything else.
    let part = parsed
        .path()
        .strip_suffix("/v2.0")
        .and_then(|p| p.rsplit_once('/'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
        .map(|p| if p == "%7Btenantid%7D" { TENANT_TEMPLATE } else { p })
        .ok_or_else(mismatch)?;
    let Some(expected) = authority.expected_v2_issuer(part) else {
        return Err(mismatch());
    };
    if expected == issuer && authority.accepts_tenant_part(part) {
        return Ok(part.to_owned());
    }
    let expected_origin = url::Url::parse(&expected).map(|u| crate::authority::origin_of(&u)).unwrap_or(expected);
    let announced_origin = crate::authority::origin_of(&parsed);
    if expected_origin != announced_origin {
        return Err(JwksError::IssuerHostMismatch {
            url: url.to_owned(),
            expected: expected_origin,
            announced: announced_origin,
        });
    }
    Err(mismatch())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::authority::{Cloud, Tenant};
    use crate::error::HttpError;
    use crate::http::HttpResponse;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn serve(docs: Vec<(String, serde_json::Value)>) -> (impl HttpClient, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let client = move |req: HttpRequest| {
            c.fetch_add(1, Ordering::SeqCst);
            let uri = req.uri().to_string();
            let found = docs.iter().find(|(u, _)| *u == uri).map(|(_, d)| d.to_string());
            async move {
                Ok::<HttpResponse, HttpError>(match found {
                    Some(body) => http::Response::new(body.into_bytes()),
                    None => http::Response::builder().status(404).body(Vec::new()).unwrap(),
                })
            }
        };
        (client, count)
    }

    #[tokio::test]
    async fn public_cloud_issuers_use_known_forms() {
        let a = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        let (client, count) = serve(vec![(
            a.metadata_url(),
            serde_json::json!({
                "issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
                "jwks_uri": format!("https://login.microsoftonline.com/{TID}/discovery/v2.0/keys"),
            }),
        )]);
        let Discovered { metadata: meta, issuers, .. } = discover(&a, &client).await.unwrap();
        assert!(meta.jwks_uri.ends_with("/discovery/v2.0/keys"));
        assert_eq!(
            issuers.accepted,
            [format!("https://login.microsoftonline.com/{TID}/v2.0"), format!("https://sts.windows.net/{TID}/")]
        );
        assert_eq!(count.load(Ordering::SeqCst), 1, "known clouds need no v1 document");
    }

    #[tokio::test]
    async fn issuer_of_another_tenant_is_refused() {
        let a = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        let (client, _) = serve(vec![(
            a.metadata_url(),
            serde_json::json!({
                "issuer": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
                "jwks_uri": "https://login.microsoftonline.com/x/discovery/v2.0/keys",
            }),
        )]);
        let err = discover(&a, &client).await.unwrap_err();
        assert!(matches!(err, JwksError::IssuerMismatch { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn issuer_on_another_host_is_refused() {
        let a = Authority::entra(Cloud::Public, Tenant::Common);
        let (client, _) = serve(vec![(
            a.metadata_url(),
            serde_json::json!({
                "issuer": "https://evil.example.com/{tenantid}/v2.0",
                "jwks_uri": "https://evil.example.com/keys",
            }),
        )]);
        // An issuer on another host: refused, naming both hosts.
        let err = discover(&a, &client).await.unwrap_err();
        assert_eq!(
            err,
            JwksError::IssuerHostMismatch {
                url: a.metadata_url(),
                expected: "https://login.microsoftonline.com".into(),
                announced: "https://evil.example.com".into(),
            }
        );
        assert!(err.is_configuration_error());
    }

    #[tokio::test]
    async fn insecure_jwks_uri_is_refused() {
        let a = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        let (client, _) = serve(vec![(
            a.metadata_url(),
            serde_json::json!({
                "issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
                "jwks_uri": "http://keys.example.com/keys",
            }),
        )]);
        assert!(matches!(discover(&a, &client).await, Err(JwksError::InvalidDocument { .. })));
    }

    #[test]
    fn templated_issuers_need_the_tid() {
        let i = Issuers { accepted: vec!["https://h/{tenantid}/v2.0".into()], v2: None, tenant_id: None };
        assert!(i.matches("https://h/abc/v2.0", Some("abc")));
        assert!(!i.matches("https://h/abc/v2.0", Some("abd")));
        assert!(!i.matches("https://h/abc/v2.0", None));
        assert!(!i.matches("https://h/abc/v2.0x", Some("abc")));
        let exact = Issuers { accepted: vec!["https://h/t/v2.0".into()], v2: None, tenant_id: None };
        assert!(exact.matches("https://h/t/v2.0", None));
        assert!(!exact.matches("https://h/t/v2.0/", None));
    }

    fn meta(issuer: &str, jwks_uri: &str) -> ProviderMetadata {
        serde_json::from_value(serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri})).unwrap()
    }

    /// Each cloud's real discovery shape (authority host, announced issuer, jwks_uri) is
    /// accepted, with the v1.0 issuer of that cloud.
    #[test]
    fn every_cloud_announces_its_real_issuers() {
        let cases = [
            (
                Authority::entra(Cloud::Public, Tenant::Id(TID.into())),
                format!("https://login.microsoftonline.com/{TID}/v2.0"),
                format!("https://login.microsoftonline.com/{TID}/discovery/v2.0/keys"),
                Some(format!("https://sts.windows.net/{TID}/")),
            ),
            (
                // An alias of the public cloud: issues as login.microsoftonline.com.
                Authority::entra_at_host("https://login.windows.net/", Tenant::Id(TID.into()), "h").unwrap(),
                format!("https://login.microsoftonline.com/{TID}/v2.0"),
                format!("https://login.windows.net/{TID}/discovery/v2.0/keys"),
                Some(format!("https://sts.windows.net/{TID}/")),
            ),
            (
                Authority::entra_at_host("https://login.microsoft.com/", Tenant::Id(TID.into()), "h").unwrap(),
                format!("https://login.microsoftonline.com/{TID}/v2.0"),
                format!("https://login.microsoftonline.com/{TID}/discovery/v2.0/keys"),
                Some(format!("https://sts.windows.net/{TID}/")),
            ),
            (
                Authority::entra(Cloud::UsGovernment, Tenant::Id(TID.into())),
                format!("https://login.microsoftonline.us/{TID}/v2.0"),
                format!("https://login.microsoftonline.us/{TID}/discovery/v2.0/keys"),
                Some(format!("https://sts.windows.net/{TID}/")),
            ),
            (
                Authority::entra(Cloud::China, Tenant::Id(TID.into())),
                format!("https://login.partner.microsoftonline.cn/{TID}/v2.0"),
                format!("https://login.chinacloudapi.cn/{TID}/discovery/v2.0/keys"),
                Some(format!("https://sts.chinacloudapi.cn/{TID}/")),
            ),
            (
                Authority::entra(Cloud::China, Tenant::Common),
                "https://login.partner.microsoftonline.cn/{tenantid}/v2.0".to_owned(),
                "https://login.chinacloudapi.cn/common/discovery/v2.0/keys".to_owned(),
                Some("https://sts.chinacloudapi.cn/{tenantid}/".to_owned()),
            ),
            (
                Authority::external_id("contoso", Tenant::Domain("contoso.onmicrosoft.com".into())).unwrap(),
                format!("https://{TID}.ciamlogin.com/{TID}/v2.0"),
                format!("https://contoso.ciamlogin.com/{TID}/discovery/v2.0/keys"),
                None,
            ),
            (
                Authority::external_id("contoso", Tenant::Id(TID.into())).unwrap(),
                format!("https://{TID}.ciamlogin.com/{TID}/v2.0"),
                format!("https://{TID}.ciamlogin.com/{TID}/discovery/v2.0/keys"),
                None,
            ),
        ];
        for (authority, issuer, jwks_uri, v1) in cases {
            let issuers = check_metadata(&authority, &authority.metadata_url(), &meta(&issuer, &jwks_uri))
                .unwrap_or_else(|e| panic!("{authority}: {e}"))
                .expect("known clouds need no v1 document");
            let mut expected = vec![issuer.clone()];
            expected.extend(v1);
            assert_eq!(issuers.accepted, expected, "{authority}");
            assert_eq!(issuers.v2.as_deref(), Some(issuer.as_str()));
        }
    }

    /// An issuer on the host of another cloud (or another External ID tenant) is refused,
    /// naming both hosts; the exact `{tid}/v2.0` shape is required.
    #[test]
    fn issuers_of_another_cloud_or_shape_are_refused() {
        let china = Authority::entra(Cloud::China, Tenant::Id(TID.into()));
        let url = china.metadata_url();
        let keys = format!("https://login.chinacloudapi.cn/{TID}/discovery/v2.0/keys");
        for (issuer, announced) in [
            (format!("https://login.microsoftonline.com/{TID}/v2.0"), "https://login.microsoftonline.com"),
            (format!("https://login.chinacloudapi.cn/{TID}/v2.0"), "https://login.chinacloudapi.cn"),
            (format!("https://login.microsoftonline.us/{TID}/v2.0"), "https://login.microsoftonline.us"),
            (format!("http://login.partner.microsoftonline.cn/{TID}/v2.0"), "http://login.partner.microsoftonline.cn"),
        ] {
            assert_eq!(
                check_metadata(&china, &url, &meta(&issuer, &keys)).unwrap_err(),
                JwksError::IssuerHostMismatch {
                    url: url.clone(),
                    expected: "https://login.partner.microsoftonline.cn".into(),
                    announced: announced.into(),
                },
                "{issuer}"
            );
        }
        for issuer in [
            format!("https://login.partner.microsoftonline.cn/{TID}/v2.0/"),
            format!("https://login.partner.microsoftonline.cn/{TID}"),
            format!("https://login.partner.microsoftonline.cn/x/{TID}/v2.0"),
            format!("https://login.partner.microsoftonline.cn/{TID}/v2.0?x=1"),
            "https://login.partner.microsoftonline.cn/00000000-0000-0000-0000-000000000001/v2.0".to_owned(),
            "https://login.partner.microsoftonline.cn/{tenantid}/v2.0".to_owned(),
            "not a url".to_owned(),
        ] {
            assert!(
                matches!(check_metadata(&china, &url, &meta(&issuer, &keys)), Err(JwksError::IssuerMismatch { .. })),
                "{issuer}"
            );
        }
        // External ID: the issuer's subdomain is its own tenant id, and only that.
        let ciam = Authority::external_id("contoso", Tenant::Id(TID.into())).unwrap();
        let url = ciam.metadata_url();
        let keys = format!("https://contoso.ciamlogin.com/{TID}/discovery/v2.0/keys");
        assert_eq!(
            check_metadata(&ciam, &url, &meta(&format!("https://contoso.ciamlogin.com/{TID}/v2.0"), &keys))
                .unwrap_err(),
            JwksError::IssuerHostMismatch {
                url: url.clone(),
                expected: format!("https://{TID}.ciamlogin.com"),
                announced: "https://contoso.ciamlogin.com".into(),
            }
        );
        let other = "00000000-0000-0000-0000-000000000001";
        assert!(
            check_metadata(&ciam, &url, &meta(&format!("https://{other}.ciamlogin.com/{other}/v2.0"), &keys)).is_err()
        );
        assert!(Authority::external_id("contoso", Tenant::Common).is_err(), "External ID tenants are single tenants");
    }

    /// Keys on another origin than the authority's are refused unless the configuration
    /// names that origin.
    #[test]
    fn jwks_on_another_origin_needs_to_be_trusted() {
        let a = Authority::entra(Cloud::Public, Tenant::Id(TID.into()));
        let url = a.metadata_url();
        let issuer = format!("https://login.microsoftonline.com/{TID}/v2.0");
        let foreign = "https://keys.example.com/keys";
        assert_eq!(
            check_metadata(&a, &url, &meta(&issuer, foreign)).unwrap_err(),
            JwksError::UntrustedJwksOrigin {
                url: url.clone(),
                jwks_uri: foreign.into(),
                expected: "https://login.microsoftonline.com".into(),
            }
        );
        // Another cloud's host is not an alias of this one.
        assert!(matches!(
            check_metadata(
                &a,
                &url,
                &meta(&issuer, &format!("https://login.chinacloudapi.cn/{TID}/discovery/v2.0/keys"))
            ),
            Err(JwksError::UntrustedJwksOrigin { .. })
        ));
        let trusting = a.trust_jwks_origin("https://keys.example.com").unwrap();
        assert!(check_metadata(&trusting, &url, &meta(&issuer, foreign)).is_ok());
        // OpenID Connect providers: same origin as the discovery document, or trusted.
        let oidc = Authority::oidc("https://idp.example.com/.well-known/openid-configuration", None, "m").unwrap();
        let url = oidc.metadata_url();
        assert!(check_metadata(&oidc, &url, &meta("https://idp.example.com", "https://idp.example.com/jwks")).is_ok());
        assert!(matches!(
            check_metadata(&oidc, &url, &meta("https://idp.example.com", "https://www.googleapis.com/oauth2/v3/certs")),
            Err(JwksError::UntrustedJwksOrigin { .. })
        ));
        let oidc = oidc.trust_jwks_origin("https://www.googleapis.com").unwrap();
        assert!(
            check_metadata(&oidc, &url, &meta("https://idp.example.com", "https://www.googleapis.com/oauth2/v3/certs"))
                .is_ok()
        );
    }

    #[test]
    fn custom_hosts_keep_their_path_prefix() {
        let a = Authority::entra_at_host("http://127.0.0.1:9/prefix/", Tenant::Id(TID.into()), "h").unwrap();
        let url = a.metadata_url();
        let issuer = format!("http://127.0.0.1:9/prefix/{TID}/v2.0");
        assert!(check_metadata(&a, &url, &meta(&issuer, "http://127.0.0.1:9/prefix/keys")).unwrap().is_none());
        assert!(matches!(
            check_metadata(&a, &url, &meta(&format!("http://127.0.0.1:9/other/{TID}/v2.0"), "http://127.0.0.1:9/k")),
            Err(JwksError::IssuerMismatch { .. })
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn url_like() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(format!("https://login.partner.microsoftonline.cn/{TID}/v2.0")),
                Just(format!("https://login.chinacloudapi.cn/{TID}/discovery/v2.0/keys")),
                Just(format!("https://{TID}.ciamlogin.com/{TID}/v2.0")),
                "https?://[a-z.{}%-]{0,24}(:[0-9]{1,6})?/[A-Za-z0-9{}./%?#-]{0,40}",
                ".{0,40}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any body: a ProviderMetadata or an error, never a panic.
            #[test]
            fn metadata_parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
                let _ = serde_json::from_slice::<ProviderMetadata>(&body);
            }

            /// Any announced issuer and jwks_uri, for every kind of authority: never a panic,
            /// and what is accepted is exactly the authority's expected issuer.
            #[test]
            fn metadata_check_never_panics(issuer in url_like(), jwks_uri in url_like(), which in 0usize..5) {
                let authority = match which {
                    0 => Authority::entra(Cloud::China, Tenant::Id(TID.into())),
                    1 => Authority::entra(Cloud::Public, Tenant::Common),
                    2 => Authority::external_id("contoso", Tenant::Id(TID.into())).unwrap(),
                    3 => Authority::entra_at_host("http://127.0.0.1:9", Tenant::Id(TID.into()), "h").unwrap(),
                    _ => Authority::oidc("https://idp.example.com", None, "m").unwrap(),
                };
                let url = authority.metadata_url();
                if let Ok(Some(issuers)) = check_metadata(&authority, &url, &meta(&issuer, &jwks_uri)) {
                    prop_assert_eq!(issuers.accepted.first(), Some(&issuer));
                }
            }
        }
    }
}
