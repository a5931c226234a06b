//! Several authorities behind one validator: a workforce tenant, an External ID or B2C tenant,
//! a second app registration... Each token is routed to one of them by its *unverified*
//! issuer (then audience, then B2C user flow) before any key or signature work; the chosen
//! authority then runs every check with its own keys, audiences and policy.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::{Inner, TokenValidator};
use crate::authority::{CONSUMERS_TENANT_ID, Tenant, is_guid};
use crate::config::AzureAdConfig;
use crate::error::{ConfigError, JwksError, TokenPart, ValidationError};
use crate::secret::BearerToken;
use crate::validation::claims::Claims;
use crate::validation::issuer::template_matches;
use crate::validation::jwt;

/// The label of rejections decided before any authority is chosen (no authority's issuer).
const UNROUTED_LABEL: &str = "unrouted";

/// One configured authority.
struct Route {
    validator: TokenValidator,
}

/// The authorities of a [`TokenValidator::authorities`] validator, in configuration order.
pub(super) struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// The claims of a token one of the authorities validated before (their caches only).
    pub(super) fn cached(&self, token: &[u8]) -> Option<(Arc<Claims>, BearerToken)> {
        self.routes.iter().find_map(|r| r.validator.try_cached_bytes(token))
    }

    /// Loads every authority's keys. The first failure is returned, after all were tried.
    pub(super) async fn warm_up(&self) -> Result<(), JwksError> {
        let mut first = None;
        for route in &self.routes {
            if let Err(e) = route.validator.warm_up().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The authority for `token`, from its unverified payload: the authorities whose issuers
    /// it names; among several, those with one of its audiences; among several still, the
    /// B2C authority of its user flow. No network call, no signature work.
    ///
    /// # Errors
    ///
    /// The structural error of an undecodable token, or [`ValidationError::InvalidIssuer`]
    /// when no configured authority issues its `iss`.
    pub(super) fn route(&self, token: &str) -> Result<&TokenValidator, ValidationError> {
        let segments = jwt::split(token)?;
        let claims = Claims::from_json_owned(jwt::decode_segment(segments.payload, TokenPart::Payload)?)?;
        let iss = claims.issuer();
        if iss.is_empty() {
            return Err(ValidationError::MissingClaim("iss"));
        }
        let mut candidates: Vec<&Route> =
            self.routes.iter().filter(|r| could_issue(&r.validator.inner.config, iss)).collect();
        if candidates.len() > 1 {
            let ours = |r: &&Route| claims.audiences().iter().any(|a| r.validator.inner.policy.audiences.contains(a));
            if candidates.iter().any(ours) {
                candidates.retain(ours);
            }
        }
        if candidates.len() > 1 {
            let flow = user_flow(&claims);
            let of_flow = |r: &&Route| {
                r.validator.inner.policy.b2c_user_flows.as_ref().is_none_or(|flows| {
                    flow.as_deref().is_some_and(|f| flows.iter().any(|x| x.eq_ignore_ascii_case(f)))
                })
            };
            if candidates.iter().any(of_flow) {
                candidates.retain(of_flow);
            }
        }
        candidates.first().map(|r| &r.validator).ok_or(ValidationError::InvalidIssuer)
    }
}

/// The B2C user flow (policy) of a token: `tfp`, or `acr` for tenants configured to write it
/// there (Azure AD B2C, "Overview of tokens": "Trust framework policy").
fn user_flow(claims: &Claims) -> Option<String> {
    ["tfp", "acr"].iter().find_map(|name| claims.get(name).and_then(serde_json::Value::as_str).map(str::to_owned))
}

/// Step 13 of validation for B2C authorities: the token's user flow is one of `flows`.
pub(super) fn user_flow_check(claims: &Claims, flows: &[String]) -> Result<(), ValidationError> {
    let flow = user_flow(claims).ok_or(ValidationError::MissingClaim("tfp"))?;
    if flows.iter().any(|f| f.eq_ignore_ascii_case(&flow)) { Ok(()) } else { Err(ValidationError::InvalidClaim("tfp")) }
}

/// `true` if `config`'s authority could have issued a token with this `iss`, from the
/// configuration alone (no discovery): the exact issuers of a tenant, the forms of a
/// multi-tenant or domain-named authority with any GUID in the tenant's place, a fixed or
/// static issuer. The validator chosen then checks the issuer against discovery.
fn could_issue(config: &AzureAdConfig, iss: &str) -> bool {
    let same = |expected: &str| expected.trim_end_matches('/') == iss.trim_end_matches('/');
    let guids = || guid_parts(iss);
    if let Some(jwks) = config.static_jwks() {
        return jwks.issuers().iter().any(|i| same(i) || guids().any(|g| template_matches(i, Some(g), iss)));
    }
    let authority = config.authority();
    if let Some(expected) = authority.expected_oidc_issuer() {
        return same(&expected);
    }
    let forms = |part: &str| {
        [authority.expected_v2_issuer(part), authority.known_v1_issuer(part), authority.expected_custom_v1_issuer(part)]
            .into_iter()
            .flatten()
            .any(|i| same(&i))
    };
    match authority.tenant() {
        Some(Tenant::Id(id)) => forms(id),
        Some(Tenant::Consumers) => forms(CONSUMERS_TENANT_ID),
        // Multi-tenant, or a tenant named by its domain: any tenant id in the issuer's forms;
        // the validator applies the tenant rules.
        Some(_) => guids().any(forms),
        None => false,
    }
}

/// The GUIDs in an issuer URL, as host labels or path segments, lower case only (Entra's form).
fn guid_parts(iss: &str) -> impl Iterator<Item = &str> {
    iss.split(['/', '.']).filter(|p| is_guid(p) && !p.bytes().any(|b| b.is_ascii_uppercase()))
}

impl TokenValidator {
    /// A validator for several authorities behind one API: a workforce tenant, an Entra
    /// External ID or Azure AD B2C tenant, a second app registration... Each is
    /// `(name, configuration)`; the name becomes the configuration's
    /// [`authority_name`](crate::config::AzureAdConfigBuilder::authority_name):
    /// [`Claims::authority`] of the tokens it accepts, and its `authority` metric label.
    ///
    /// Each token is routed by its **unverified** `iss` before any key or signature work, to
    /// the authority whose issuers it names (known from the configuration alone: no
    /// discovery, no network). Where several could have issued it (two app registrations of
    /// one tenant), its `aud` chooses; then, for B2C, its `tfp`/`acr` user flow. The chosen
    /// authority validates the token with its own keys, audiences and policy, and its own
    /// validated-token cache. A token whose issuer no authority has is refused with
    /// [`ValidationError::InvalidIssuer`] (401) with no network call.
    ///
    /// [`jwks`](Self::jwks) and [`config`](Self::config) are the first authority's;
    /// [`warm_up`](Self::warm_up) loads every authority's keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] (`authorities`) for an empty list, [`ConfigError::Invalid`]
    /// for a bad or repeated name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "dev")]
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use azad_core::{TokenValidator, ValidationError, dev::DevTenant};
    ///
    /// let workforce = DevTenant::start().await?;
    /// let partners = DevTenant::start().await?;
    /// let validator = TokenValidator::authorities([
    ///     ("workforce", workforce.config()),
    ///     ("partners", partners.config()),
    /// ])?;
    /// let claims = validator.validate(&partners.token().build()).await?;
    /// assert_eq!(claims.authority(), Some("partners"));
    ///
    /// let stranger = DevTenant::start().await?;
    /// let refused = validator.validate(&stranger.token().build()).await.unwrap_err();
    /// assert_eq!(refused, ValidationError::InvalidIssuer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn authorities<I, N>(authorities: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (N, AzureAdConfig)>,
        N: AsRef<str>,
    {
        let mut routes: Vec<Route> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (name, config) in authorities {
            let name = name.as_ref();
            if names.iter().any(|n| n == name) {
                return Err(ConfigError::invalid("authorities", format!("the name `{name}` is given twice")));
            }
            let config = config.with_authority_name(name)?;
            names.push(name.to_owned());
            routes.push(Route { validator: Self::new(config) });
        }
        let first = routes.first().ok_or(ConfigError::Missing { field: "authorities" })?;
        let config = first.validator.inner.config.clone();
        let jwks = first.validator.inner.jwks.clone();
        // The largest token any authority accepts passes the size check (each authority
        // applies its own limit again).
        let mut policy = first.validator.inner.policy.clone();
        policy.max_token_bytes = routes.iter().map(|r| r.validator.inner.policy.max_token_bytes).max().unwrap_or(0);
        Ok(Self {
            inner: Arc::new(Inner {
                jwks,
                cache: None,
                flushed_generation: AtomicU64::new(0),
                #[cfg(test)]
                after_check: std::sync::Mutex::new(None),
                metrics: crate::metrics::ValidationMetrics::new(UNROUTED_LABEL),
                router: Some(Router { routes }),
                policy,
                config,
            }),
        })
    }

    /// The validators of the authorities of [`authorities`](Self::authorities), with their
    /// names, in configuration order (empty for a validator of one authority). Each has its
    /// own [`jwks`](Self::jwks), for health checks.
    #[must_use]
    pub fn authority_validators(&self) -> Vec<(&str, &Self)> {
        self.inner.router.as_ref().map_or_else(Vec::new, |router| {
            router
                .routes
                .iter()
                .map(|r| (r.validator.inner.policy.authority_name.as_deref().unwrap_or_default(), &r.validator))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::Cloud;

    const TID: &str = "775527ff-9a37-4307-8b3d-cc311f58d925";
    const OTHER: &str = "3f2c1a7e-5b9d-4e6f-8a1b-2c3d4e5f6a7b";
    const CLIENT: &str = "90c0fe63-bcf2-44d5-8fb7-b8bbc0b29dc6";

    fn b2c() -> crate::config::AzureAdConfigBuilder {
        AzureAdConfig::builder().b2c("contoso", "B2C_1_signupsignin").tenant_id(TID).client_id(CLIENT)
    }

    #[test]
    fn the_b2c_builder_writes_the_urls_and_checks_its_inputs() {
        let config = b2c().build().unwrap();
        assert_eq!(
            config.authority().metadata_url(),
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            config.authority().expected_oidc_issuer().unwrap(),
            format!("https://contoso.b2clogin.com/{TID}/v2.0/")
        );
        // B2C tokens carry no `tid`: the tenant is bound by the issuer, not required of `tid`.
        assert_eq!(config.validation_policy().issuer.required_tenant, None);
        let missing = AzureAdConfig::builder().b2c("contoso", "B2C_1_x").client_id(CLIENT).build().unwrap_err();
        assert!(matches!(missing, ConfigError::Invalid { field: "tenant_id", .. }), "{missing:?}");
        let both = b2c().metadata_url("https://contoso.b2clogin.com/x/.well-known/openid-configuration").build();
        assert!(matches!(both, Err(ConfigError::Conflict { field: "b2c", .. })), "{both:?}");
        let bad_name = AzureAdConfig::builder().b2c("con.toso", "B2C_1_x").tenant_id(TID).client_id(CLIENT).build();
        assert!(matches!(bad_name, Err(ConfigError::Invalid { field: "b2c", .. })), "{bad_name:?}");
        let bad_flow = b2c().b2c_user_flow("B2C 1").build();
        assert!(matches!(bad_flow, Err(ConfigError::Invalid { field: "b2c_user_flow", .. })), "{bad_flow:?}");
    }

    #[test]
    fn external_id_by_subdomain() {
        let config = AzureAdConfig::builder().external_id("contoso").tenant_id(TID).client_id(CLIENT).build().unwrap();
        assert!(config.authority().is_external_id());
        assert!(could_issue(&config, &format!("https://{TID}.ciamlogin.com/{TID}/v2.0")));
        assert!(!could_issue(&config, &format!("https://{OTHER}.ciamlogin.com/{OTHER}/v2.0")));
    }

    #[test]
    fn authority_names_are_bounded_labels_and_unique() {
        for bad in ["", "has space", "ünicode", &"x".repeat(65), "a/b"] {
            let e = AzureAdConfig::builder().tenant_id(TID).client_id(CLIENT).authority_name(bad).build();
            assert!(matches!(e, Err(ConfigError::Invalid { field: "authority_name", .. })), "{bad:?}: {e:?}");
        }
        let config = AzureAdConfig::builder().tenant_id(TID).client_id(CLIENT).build().unwrap();
        let twice = TokenValidator::authorities([("a", config.clone()), ("a", config)]);
        assert!(matches!(twice, Err(ConfigError::Invalid { field: "authorities", .. })));
        let none = TokenValidator::authorities(Vec::<(&str, AzureAdConfig)>::new());
        assert!(matches!(none, Err(ConfigError::Missing { field: "authorities" })));
    }

    /// Routing from the configuration alone: each form of issuer an authority may write.
    #[test]
    fn which_authority_could_have_issued_a_token() {
        let single = AzureAdConfig::builder().tenant_id(TID).client_id(CLIENT).build().unwrap();
        assert!(could_issue(&single, &format!("https://login.microsoftonline.com/{TID}/v2.0")));
        assert!(could_issue(&single, &format!("https://sts.windows.net/{TID}/")));
        assert!(!could_issue(&single, &format!("https://login.microsoftonline.com/{OTHER}/v2.0")));
        assert!(!could_issue(&single, &format!("https://login.microsoftonline.us/{TID}/v2.0")));
        let china = AzureAdConfig::builder().cloud(Cloud::China).tenant_id(TID).client_id(CLIENT).build().unwrap();
        assert!(could_issue(&china, &format!("https://login.partner.microsoftonline.cn/{TID}/v2.0")));
        assert!(could_issue(&china, &format!("https://sts.chinacloudapi.cn/{TID}/")));
        let multi = AzureAdConfig::builder().tenant_id("organizations").client_id(CLIENT).build().unwrap();
        assert!(could_issue(&multi, &format!("https://login.microsoftonline.com/{OTHER}/v2.0")));
        assert!(!could_issue(&multi, "https://login.microsoftonline.com/not-a-guid/v2.0"));
        let b2c = b2c().build().unwrap();
        assert!(could_issue(&b2c, &format!("https://contoso.b2clogin.com/{TID}/v2.0/")));
        assert!(!could_issue(&b2c, &format!("https://fabrikam.b2clogin.com/{TID}/v2.0/")));
        assert!(!could_issue(&b2c, &format!("https://login.microsoftonline.com/{TID}/v2.0")));
    }
}
