//! OpenID Connect discovery: fetching the provider metadata and checking that the issuer it
//! announces belongs to the authority it was fetched from.

use serde::Deserialize;

use crate::authority::{Authority, TENANT_TEMPLATE};
use crate::error::JwksError;
use crate::http::{HttpClient, HttpRequest};

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

/// The issuers a token of this authority may carry, as announced by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Issuers {
    /// Issuer templates or exact issuers (`{tenantid}` replaced by the token's `tid`).
    pub(crate) accepted: Vec<String>,
    /// The v2.0 issuer (template), used to check the JWKS key `issuer` of v1.0 tokens.
    pub(crate) v2: Option<String>,
    /// The tenant id of a single-tenant Entra authority (learned from discovery): a token's
    /// `tid` must equal it.
    pub(crate) tenant_id: Option<String>,
}

impl Issuers {
    /// `true` if any accepted issuer needs the token's `tid`.
    pub(crate) fn is_templated(&self) -> bool {
        self.accepted.iter().any(|i| i.contains(TENANT_TEMPLATE))
    }

    /// Matches `iss` against the accepted issuers; a templated issuer matches only with
    /// `tid` substituted.
    pub(crate) fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        self.accepted.iter().any(|candidate| template_matches(candidate, tid, iss))
    }
}

/// `true` if `template` with `{tenantid}` replaced by `tid` equals `value` (no allocation).
/// A template without the placeholder must equal `value`; with it, `tid` is required.
pub(crate) fn template_matches(template: &str, tid: Option<&str>, value: &str) -> bool {
    match template.find(TENANT_TEMPLATE) {
        None => template == value,
        Some(at) => tid.is_some_and(|tid| {
            let (pre, post) = (&template[..at], &template[at + TENANT_TEMPLATE.len()..]);
            value.len() == pre.len() + tid.len() + post.len()
                && value.starts_with(pre)
                && value.ends_with(post)
                && &value[pre.len()..pre.len() + tid.len()] == tid
        }),
    }
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
    crate::authority::parse_secure_url(&meta.jwks_uri, "jwks_uri").map_err(|e| JwksError::InvalidDocument {
        url: url.clone(),
        document: "OpenID configuration",
        reason: e.to_string(),
    })?;
    let mismatch = || JwksError::IssuerMismatch { url: url.clone(), issuer: meta.issuer.clone() };

    if let Some(expected) = authority.expected_oidc_issuer() {
        if meta.issuer.trim_end_matches('/') != expected.trim_end_matches('/') {
            return Err(mismatch());
        }
        let issuers = Issuers { accepted: vec![meta.issuer.clone()], v2: Some(meta.issuer.clone()), tenant_id: None };
        return Ok(Discovered { metadata: meta, issuers, v1_outage: None });
    }

    // Entra: the issuer must be `{host}{tenant part}/v2.0` with an acceptable tenant part.
    let host = authority.host().map(url::Url::as_str).unwrap_or_default();
    let tenant_part = meta
        .issuer
        .strip_prefix(host)
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .filter(|part| authority.accepts_tenant_part(part))
        .filter(|part| authority.expected_v2_issuer(part).as_deref() == Some(meta.issuer.as_str()))
        .ok_or_else(mismatch)?
        .to_owned();
    // Both versions' issuers are always known, so that a token of a refused version is
    // reported as such rather than as a foreign issuer.
    let mut accepted = vec![meta.issuer.clone()];
    let mut v1_outage = None;
    if let Some(v1) = authority.known_v1_issuer(&tenant_part) {
        accepted.push(v1);
    } else if let (Some(v1_url), Some(expected)) =
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
    let issuers = Issuers { accepted, v2: Some(meta.issuer.clone()), tenant_id };
    Ok(Discovered { metadata: meta, issuers, v1_outage })
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
        assert!(matches!(discover(&a, &client).await, Err(JwksError::IssuerMismatch { .. })));
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
}
