//! The dev tenant's tokens: a fluent builder for tokens shaped like Entra ID's, claim for
//! claim, and the check of tokens it issued (for its own endpoints that take one).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::clock::now;
use super::random::{random_bytes, random_guid};
use super::registry::DevUser;
use super::state::Shared;
use crate::validation::jwt::SigningAlgorithm;

/// Access-token version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenVersion {
    /// v1.0: `iss` is the v1 issuer, `appid`, `upn`, `unique_name`, `aud` the App ID URI.
    V1,
    /// v2.0: `iss` ends in `/v2.0`, `azp`, `preferred_username`, `aud` the client id.
    V2,
}

/// Delegated (a user signed in) or app-only (client credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// A user's token: `scp`, user `oid`, `name`...
    Delegated,
    /// An application's token: `roles`, `idtyp=app`, `oid == sub` is the service principal.
    AppOnly,
}

/// The most group ids Entra puts in a JWT before it switches to the overage claims.
pub const MAX_GROUPS_IN_TOKEN: usize = 200;

#[derive(Debug, Clone)]
enum GroupsClaim {
    None,
    List(Vec<String>),
    Directory,
    Overage,
    HasGroups,
}

#[derive(Debug, Clone)]
enum Signer {
    Active,
    Unpublished,
    AppSpecific(String),
}

/// Builds a signed token. Created by [`DevTenant::token`](super::tenant::DevTenant::token).
///
/// Every token is genuinely signed, so it can also mint the odd tokens a test needs:
///
/// | token | builder |
/// | --- | --- |
/// | another `typ`, or `cty`, `zip`, `enc`, `crit`, `nonce`... | [`header`](Self::header), [`without_header`](Self::without_header) |
/// | header or claims that are not UTF-8 or not JSON | [`raw_header`](Self::raw_header), [`raw_payload`](Self::raw_payload) |
/// | deeply nested claims | [`claim`](Self::claim) with a nested [`Value`] |
/// | no `tid`, or an upper-case one | [`without_claim("tid")`](Self::without_claim), [`tenant`](Self::tenant) (`tid` and `iss`) or [`claim("tid", …)`](Self::claim) |
/// | a `ver` that contradicts the issuer | [`claim("ver", "1.0")`](Self::claim) on a v2.0 token, or on a [`v1`](Self::v1) token `"2.0"` |
/// | an ID token | no `azp` ([`without_claim`](Self::without_claim)), a `nonce` claim |
/// | another `alg` or `kid`, a forged signature | [`alg_header`](Self::alg_header), [`kid`](Self::kid), [`signed_with_unpublished_key`](Self::signed_with_unpublished_key) |
#[derive(Clone)]
#[must_use]
pub struct TokenBuilder {
    shared: Arc<Shared>,
    version: TokenVersion,
    kind: TokenKind,
    audience: Option<Value>,
    scopes: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    tenant: Option<String>,
    issuer: Option<String>,
    user: Option<DevUser>,
    client_app_id: Option<String>,
    issued: Option<i64>,
    lifetime: Duration,
    not_before_offset: i64,
    extra: Map<String, Value>,
    removed: Vec<String>,
    header_extra: Map<String, Value>,
    header_removed: Vec<String>,
    raw_header: Option<Vec<u8>>,
    raw_payload: Option<Vec<u8>>,
    alg: SigningAlgorithm,
    alg_header: Option<String>,
    kid: Option<Option<String>>,
    signer: Signer,
    groups: GroupsClaim,
}

impl std::fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let alg = shared.signing_algorithm;
        Self {
            shared,
            version: TokenVersion::V2,
            kind: TokenKind::Delegated,
            audience: None,
            scopes: None,
            roles: None,
            tenant: None,
            issuer: None,
            user: None,
            client_app_id: None,
            issued: None,
            lifetime: Duration::from_secs(3600),
            not_before_offset: 0,
            extra: Map::new(),
            removed: Vec::new(),
            header_extra: Map::new(),
            header_removed: Vec::new(),
            raw_header: None,
            raw_payload: None,
            alg,
            alg_header: None,
            kid: None,
            signer: Signer::Active,
            groups: GroupsClaim::None,
        }
    }

    /// A v1.0 token.
    pub fn v1(mut self) -> Self {
        self.version = TokenVersion::V1;
        self
    }

    /// A v2.0 token (the default).
    pub fn v2(mut self) -> Self {
        self.version = TokenVersion::V2;
        self
    }

    /// An app-only token (client credentials): `roles`, `idtyp=app`, no `scp`, no user.
    pub fn app_only(mut self) -> Self {
        self.kind = TokenKind::AppOnly;
        self
    }

    /// A delegated token (the default).
    pub fn delegated(mut self) -> Self {
        self.kind = TokenKind::Delegated;
        self
    }

    /// The audience (`aud`); by default the API's client id (v2.0) or `api://{client id}` (v1.0).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(Value::String(aud.into()));
        self
    }

    /// Several audiences, as a JSON array.
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, aud: I) -> Self {
        self.audience = Some(Value::Array(aud.into_iter().map(|a| Value::String(a.into())).collect()));
        self
    }

    /// The delegated scopes (`scp`); default `access_as_user`. An empty list omits `scp`.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// App roles (`roles`): application permissions of app-only tokens, or a user's app roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// A `groups` claim with these group object ids.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups = GroupsClaim::List(groups.into_iter().map(Into::into).collect());
        self
    }

    /// The user's groups from the dev tenant's directory
    /// ([`DevTenant::add_group_member`](super::tenant::DevTenant::add_group_member)), as Entra emits
    /// them for an app configured with `groupMembershipClaims`: a `groups` claim for up to
    /// [`MAX_GROUPS_IN_TOKEN`] groups, the overage claims of [`group_overage`](Self::group_overage)
    /// beyond. Nothing for a user in no group.
    pub fn directory_groups(mut self) -> Self {
        self.groups = GroupsClaim::Directory;
        self
    }

    /// A groups overage, in Entra's shape for v1.0 and v2.0 tokens: no `groups`, and
    /// `"_claim_names": {"groups": "src1"}`, `"_claim_sources": {"src1": {"endpoint":
    /// "https://graph.windows.net/{tid}/users/{oid}/getMemberObjects"}}`. (Override the
    /// endpoint with [`claim("_claim_sources", …)`](Self::claim) to test that it is ignored.)
    pub fn group_overage(mut self) -> Self {
        self.groups = GroupsClaim::Overage;
        self
    }

    /// The implicit flow's overage form: no `groups`, `"hasgroups": true`.
    pub fn hasgroups(mut self) -> Self {
        self.groups = GroupsClaim::HasGroups;
        self
    }

    /// The tenant (`tid`, and the tenant part of `iss`); the dev tenant's own by default.
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant = Some(tenant_id.into());
        self
    }

    /// Overrides `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The signed-in user (delegated tokens); the tenant's first user by default.
    pub fn user(mut self, user: &DevUser) -> Self {
        self.user = Some(user.clone());
        self
    }

    /// The client application (`azp`/`appid`).
    pub fn client_app(mut self, client_id: impl Into<String>) -> Self {
        self.client_app_id = Some(client_id.into());
        self
    }

    /// Sets or replaces any claim.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        self.removed.retain(|r| *r != name);
        self.extra.insert(name, value.into());
        self
    }

    /// Removes a claim the token would otherwise have (`exp`, `aud`, `iss`...).
    pub fn without_claim(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.extra.remove(&name);
        self.removed.push(name);
        self
    }

    /// Sets or replaces a header parameter, known or foreign: `typ` (`"JWT"` by default),
    /// `cty`, `zip`, `enc`, `crit`, `jku`, `nonce`... Values may be any JSON.
    ///
    /// ```
    /// # #[cfg(feature = "dev")]
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use azad_core::{TokenValidator, ValidationError, dev::DevTenant};
    ///
    /// let tenant = DevTenant::start().await?;
    /// let validator = TokenValidator::new(tenant.config());
    /// let nested = tenant.token().header("cty", "JWT").build();
    /// assert_eq!(validator.validate(&nested).await.unwrap_err(), ValidationError::UnsupportedContent("cty"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        self.header_removed.retain(|r| *r != name);
        self.header_extra.insert(name, value.into());
        self
    }

    /// Removes a header parameter the token would otherwise have (`typ`, `kid`, `x5t`, `alg`).
    pub fn without_header(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.header_extra.remove(&name);
        self.header_removed.push(name);
        self
    }

    /// Signs exactly these header bytes instead of the JSON header the builder would write
    /// (its `alg`, `kid` and header settings are then ignored). The bytes need not be UTF-8
    /// or JSON: for tests of hostile tokens.
    pub fn raw_header(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_header = Some(bytes.into());
        self
    }

    /// Signs exactly these payload bytes instead of the claims set (every claim setting is
    /// then ignored). The bytes need not be UTF-8 or JSON: for tests of hostile tokens.
    pub fn raw_payload(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_payload = Some(bytes.into());
        self
    }

    /// Signs with another RSA algorithm (the header's `alg` follows).
    pub fn algorithm(mut self, alg: SigningAlgorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Writes this `alg` in the header whatever the signature uses (`none`, `HS256`...).
    pub fn alg_header(mut self, alg: impl Into<String>) -> Self {
        self.alg_header = Some(alg.into());
        self
    }

    /// Writes this `kid` in the header (`None` omits it).
    pub fn kid(mut self, kid: Option<&str>) -> Self {
        self.kid = Some(kid.map(str::to_owned));
        self
    }

    /// Valid for this long from now (one hour by default).
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Issued at this Unix time (now by default); `nbf` and `exp` follow.
    pub fn issued_at(mut self, unix_seconds: i64) -> Self {
        self.issued = Some(unix_seconds);
        self
    }

    /// Expired an hour ago (well beyond the default 5-minute leeway).
    pub fn expired(mut self) -> Self {
        self.issued = Some(now() - 2 * 3600);
        self.lifetime = Duration::from_secs(3600);
        self
    }

    /// Not valid before an hour from now.
    pub fn not_yet_valid(mut self) -> Self {
        self.not_before_offset = 3600;
        self
    }

    /// Signed by a key the tenant does not publish (a forged token).
    pub fn signed_with_unpublished_key(mut self) -> Self {
        self.signer = Signer::Unpublished;
        self
    }

    /// Signed by the application-specific key of `client_id` (see
    /// [`DevTenant::add_app_signing_key`](super::tenant::DevTenant::add_app_signing_key)).
    pub fn signed_with_app_key(mut self, client_id: impl Into<String>) -> Self {
        self.signer = Signer::AppSpecific(client_id.into());
        self
    }

    /// The claims this builder would sign, as a JSON object.
    #[must_use]
    pub fn claims(&self) -> Map<String, Value> {
        let s = &self.shared;
        let tid = self.tenant.clone().unwrap_or_else(|| s.tenant_id.clone());
        let iat = self.issued.unwrap_or_else(now);
        let nbf = iat + self.not_before_offset;
        let exp = iat + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let client = self.client_app_id.clone().unwrap_or_else(|| s.client_app_id.clone());
        let v2 = self.version == TokenVersion::V2;
        let iss = self.issuer.clone().unwrap_or_else(|| if v2 { s.issuer_v2(&tid) } else { s.issuer_v1(&tid) });
        let aud = self.audience.clone().unwrap_or_else(|| {
            if v2 {
                Value::String(s.api_client_id.clone())
            } else {
                Value::String(format!("api://{}", s.api_client_id))
            }
        });
        let uti = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let aio = URL_SAFE_NO_PAD.encode(random_bytes::<48>());
        let rh = format!("0.A{}", URL_SAFE_NO_PAD.encode(random_bytes::<30>()));

        let mut c = Map::new();
        c.insert("aud".into(), aud.clone());
        c.insert("iss".into(), iss.into());
        c.insert("iat".into(), iat.into());
        c.insert("nbf".into(), nbf.into());
        c.insert("exp".into(), exp.into());
        match self.kind {
            TokenKind::Delegated => {
                let user = self.user.clone().unwrap_or_else(|| s.users[0].clone());
                let sub = pairwise_sub(&user.oid, aud.as_str().unwrap_or_default());
                if v2 {
                    c.insert("aio".into(), aio.into());
                    c.insert("azp".into(), client.into());
                    c.insert("azpacr".into(), "0".into());
                    c.insert("name".into(), user.name.clone().into());
                    c.insert("oid".into(), user.oid.clone().into());
                    c.insert("preferred_username".into(), user.username.clone().into());
                    c.insert("rh".into(), rh.into());
                } else {
                    c.insert("acr".into(), "1".into());
                    c.insert("aio".into(), aio.into());
                    c.insert("amr".into(), json!(["pwd"]));
                    c.insert("appid".into(), client.into());
                    c.insert("appidacr".into(), "0".into());
                    c.insert("family_name".into(), user.family_name.clone().into());
                    c.insert("given_name".into(), user.given_name.clone().into());
                    c.insert("ipaddr".into(), "127.0.0.1".into());
                    c.insert("name".into(), user.name.clone().into());
                    c.insert("oid".into(), user.oid.clone().into());
                    c.insert("rh".into(), rh.into());
                }
                let scopes = self.scopes.clone().unwrap_or_else(|| vec!["access_as_user".into()]);
                if !scopes.is_empty() {
                    c.insert("scp".into(), scopes.join(" ").into());
                }
                if let Some(roles) = &self.roles {
                    c.insert("roles".into(), json!(roles));
                }
                c.insert("sid".into(), random_guid().into());
                c.insert("sub".into(), sub.into());
                c.insert("tid".into(), tid.into());
                if !v2 {
                    c.insert("unique_name".into(), user.username.clone().into());
                    c.insert("upn".into(), user.username.into());
                }
                c.insert("uti".into(), uti.into());
                c.insert("ver".into(), if v2 { "2.0" } else { "1.0" }.into());
            }
            TokenKind::AppOnly => {
                // The client's service principal in this tenant: a stable oid per client id.
                let sp_oid = stable_guid(&format!("{client}/{tid}"));
                c.insert("aio".into(), aio.into());
                if v2 {
                    c.insert("azp".into(), client.into());
                    c.insert("azpacr".into(), "1".into());
                } else {
                    c.insert("appid".into(), client.into());
                    c.insert("appidacr".into(), "1".into());
                }
                c.insert("idtyp".into(), "app".into());
                c.insert("oid".into(), sp_oid.clone().into());
                c.insert("rh".into(), rh.into());
                let roles = self.roles.clone().unwrap_or_default();
                if !roles.is_empty() {
                    c.insert("roles".into(), json!(roles));
                }
                c.insert("sub".into(), sp_oid.into());
                c.insert("tid".into(), tid.into());
                c.insert("uti".into(), uti.into());
                c.insert("ver".into(), if v2 { "2.0" } else { "1.0" }.into());
            }
        }
        let tid = c.get("tid").and_then(Value::as_str).unwrap_or_default().to_owned();
        self.add_groups(&mut c, &tid);
        // Azure AD B2C: the user flow in `tfp`, version 1.0, no tenant id claim.
        if let Some((_, flow)) = &s.b2c {
            c.remove("tid");
            c.insert("tfp".into(), flow.clone().into());
            c.insert("ver".into(), "1.0".into());
        }
        for r in &self.removed {
            c.remove(r);
        }
        for (k, v) in &self.extra {
            c.insert(k.clone(), v.clone());
        }
        c
    }

    fn add_groups(&self, c: &mut Map<String, Value>, tid: &str) {
        let oid = c.get("oid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let overage = |c: &mut Map<String, Value>| {
            c.insert("_claim_names".into(), json!({"groups": "src1"}));
            c.insert(
                "_claim_sources".into(),
                json!({"src1": {"endpoint": format!("https://graph.windows.net/{tid}/users/{oid}/getMemberObjects")}}),
            );
        };
        match &self.groups {
            GroupsClaim::None => {}
            GroupsClaim::List(groups) => {
                c.insert("groups".into(), json!(groups));
            }
            GroupsClaim::Directory => {
                let groups = self.shared.user_groups(&oid);
                if groups.len() > MAX_GROUPS_IN_TOKEN {
                    overage(c);
                } else if !groups.is_empty() {
                    c.insert("groups".into(), json!(groups));
                }
            }
            GroupsClaim::Overage => overage(c),
            GroupsClaim::HasGroups => {
                c.insert("hasgroups".into(), true.into());
            }
        }
    }

    /// Signs the token.
    ///
    /// # Panics
    ///
    /// If [`signed_with_app_key`](Self::signed_with_app_key) names a client without an
    /// app-specific key.
    #[must_use]
    pub fn build(self) -> String {
        let payload = match &self.raw_payload {
            Some(raw) => raw.clone(),
            None => Value::Object(self.claims()).to_string().into_bytes(),
        };
        let key = {
            let ring = self.shared.keys.read().unwrap_or_else(|e| e.into_inner());
            match &self.signer {
                Signer::Active => ring.active.clone(),
                Signer::Unpublished => ring.unpublished.clone(),
                Signer::AppSpecific(client) => {
                    ring.app_keys.get(client).cloned().expect("no app-specific key for this client id")
                }
            }
        };
        let mut header = Map::new();
        header.insert("typ".into(), "JWT".into());
        header.insert("alg".into(), self.alg_header.clone().unwrap_or_else(|| self.alg.as_str().to_owned()).into());
        let kid = match &self.kid {
            Some(k) => k.clone(),
            None => Some(key.kid.clone()),
        };
        if let Some(kid) = kid {
            header.insert("x5t".into(), kid.clone().into());
            header.insert("kid".into(), kid.into());
        }
        for r in &self.header_removed {
            header.remove(r);
        }
        for (k, v) in &self.header_extra {
            header.insert(k.clone(), v.clone());
        }
        let header = match &self.raw_header {
            Some(raw) => raw.clone(),
            None => Value::Object(header).to_string().into_bytes(),
        };
        key.sign_compact(self.alg, &header, &payload)
    }
}

/// A pairwise subject like Entra's: stable per user and application, 43 base64url characters.
fn pairwise_sub(oid: &str, app: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{oid}|{app}").as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// A GUID derived from a string (stable across runs).
pub(crate) fn stable_guid(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A decoded compact JWS: header, claims, signing input and signature segment.
pub(crate) type Decoded<'a> = (Map<String, Value>, Map<String, Value>, &'a str, &'a str);

/// Decodes a compact JWS without verifying it.
pub(crate) fn decode(token: &str) -> Option<Decoded<'_>> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    Some((header, claims, &token[..h.len() + 1 + p.len()], s))
}

/// A JWT NumericDate: seconds, possibly with a fraction (RFC 7519 allows it, MSAL Python sends
/// `time.time()` floats in its client assertions, and Entra accepts them).
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
}

/// Verifies a token signed by one of the dev tenant's published keys; returns its claims.
pub(crate) fn verify_dev_token(shared: &Shared, token: &str) -> Result<Map<String, Value>, &'static str> {
    let (header, claims, message, signature) = decode(token).ok_or("malformed token")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("unsupported algorithm");
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or("no kid")?;
    // Every published key under this kid is a candidate (a kid may be listed twice).
    let keys: Vec<_> = {
        let ring = shared.keys.read().unwrap_or_else(|e| e.into_inner());
        ring.published.iter().filter(|k| k.kid == kid).cloned().collect()
    };
    if keys.is_empty() {
        return Err("signing key not found");
    }
    let mut verified = false;
    for key in keys {
        verified |= jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.decoding_key(),
            jsonwebtoken::Algorithm::RS256,
        )
        .map_err(|_| "malformed signature")?;
    }
    if !verified {
        return Err("signature validation failed");
    }
    if claims.get("exp").and_then(numeric_date).is_none_or(|exp| exp <= now()) {
        return Err("expired");
    }
    Ok(claims)
}
