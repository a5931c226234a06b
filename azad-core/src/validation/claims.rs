//! Typed claims of an Entra ID access token (v1.0 and v2.0), with access to every other claim.
//!
//! # Example
//!
//! ```
//! use azad_core::Claims;
//!
//! let claims = Claims::from_json(br#"{
//!     "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
//!     "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
//!     "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
//!     "oid": "d9f1ce9a-6e7a-4b3b-8d1d-2b4bda0b4a31",
//!     "scp": "access_as_user User.Read",
//!     "ver": "2.0",
//!     "exp": 1900000000,
//!     "xms_custom": {"a": 1}
//! }"#)?;
//! assert!(claims.has_scope("access_as_user"));
//! assert!(!claims.has_scope("Access_As_User"));
//! assert!(!claims.is_app_only());
//! assert_eq!(claims.get("xms_custom").unwrap()["a"], 1);
//! # Ok::<(), azad_core::ValidationError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{TokenPart, ValidationError};
use crate::secret::BearerToken;
use crate::validation::jwt::CowKey;

/// The claims of a validated access token.
///
/// Typed accessors cover the claims Entra ID puts in access tokens; every other claim is
/// available through [`get`](Self::get). Serialises back to a JSON object, so a handler can
/// return it as JSON.
#[derive(Clone, Default)]
pub struct Claims {
    /// The typed string claims (`iss`, `sub`, `oid`, ... see [`Text`]) one after another in
    /// one buffer: one allocation per token instead of one per claim, and a compact entry in
    /// the validated-token cache.
    text: Box<str>,
    /// Where each typed string claim lies in `text`, indexed by [`Text`]; `None` if absent.
    spans: [Option<Span>; Text::COUNT],
    aud: Vec<String>,
    aud_array: bool,
    roles: Vec<String>,
    xms_cc: Vec<String>,
    acrs: Vec<String>,
    groups: Vec<String>,
    wids: Vec<String>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    other: Others,
    /// The name of the configured authority that accepted the token (not a claim: set by the
    /// validator, never serialised).
    authority: Option<std::sync::Arc<str>>,
    /// [`is_app_only_token`] of the claims above, decided once when they are read (every
    /// scope guard asks it on every request).
    app_only: bool,
}

/// The typed string claims, as indexes into [`Claims`]'s spans.
#[derive(Clone, Copy)]
enum Text {
    Iss,
    Sub,
    Oid,
    Tid,
    Azp,
    Appid,
    Scp,
    Name,
    PreferredUsername,
    Ver,
    Idtyp,
}

impl Text {
    const COUNT: usize = 11;
    const ALL: [(Self, &'static str); Self::COUNT] = [
        (Self::Iss, "iss"),
        (Self::Sub, "sub"),
        (Self::Oid, "oid"),
        (Self::Tid, "tid"),
        (Self::Azp, "azp"),
        (Self::Appid, "appid"),
        (Self::Scp, "scp"),
        (Self::Name, "name"),
        (Self::PreferredUsername, "preferred_username"),
        (Self::Ver, "ver"),
        (Self::Idtyp, "idtyp"),
    ];
}

/// A typed string claim's bytes in [`Claims`]'s text: start and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// Collects the typed string claims into one buffer while parsing.
struct TextBuilder {
    text: String,
    spans: [Option<Span>; Text::COUNT],
}

impl TextBuilder {
    fn new() -> Self {
        // Room for the usual Entra access token's typed strings (about 350 bytes).
        Self { text: String::with_capacity(512), spans: [None; Text::COUNT] }
    }

    fn set(&mut self, field: Text, value: &str) -> Result<(), ()> {
        let start = u32::try_from(self.text.len()).map_err(|_| ())?;
        let len = u32::try_from(value.len()).map_err(|_| ())?;
        start.checked_add(len).ok_or(())?;
        self.text.push_str(value);
        self.spans[field as usize] = Some(Span { start, len });
        Ok(())
    }

    fn finish(self, claims: &mut Claims) {
        claims.text = self.text.into_boxed_str();
        claims.spans = self.spans;
        claims.app_only = is_app_only_token(
            claims.text(Text::Idtyp),
            claims.text(Text::Scp),
            claims.text(Text::Oid),
            claims.text(Text::Sub),
        );
    }
}

impl PartialEq for Claims {
    /// Claim by claim (two claims sets parsed from differently ordered JSON are equal).
    fn eq(&self, other: &Self) -> bool {
        Text::ALL.iter().all(|(t, _)| self.text(*t) == other.text(*t))
            && self.aud == other.aud
            && self.aud_array == other.aud_array
            && self.roles == other.roles
            && self.xms_cc == other.xms_cc
            && self.acrs == other.acrs
            && self.groups == other.groups
            && self.wids == other.wids
            && self.iat == other.iat
            && self.nbf == other.nbf
            && self.exp == other.exp
            && self.other == other.other
            && self.authority == other.authority
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Claims");
        for (t, name) in Text::ALL {
            if let Some(v) = self.text(t) {
                d.field(name, &v);
            }
        }
        d.field("aud", &self.aud)
            .field("roles", &self.roles)
            .field("xms_cc", &self.xms_cc)
            .field("acrs", &self.acrs)
            .field("groups", &self.groups)
            .field("wids", &self.wids)
            .field("iat", &self.iat)
            .field("nbf", &self.nbf)
            .field("exp", &self.exp)
            .field("other", &self.other)
            .field("authority", &self.authority)
            .finish()
    }
}

/// The claims without a typed accessor: read from the received claims set when first asked
/// for (validation never needs them, so a request never pays for parsing them).
#[derive(Clone, Default)]
struct Others {
    raw: Option<Raw>,
    map: OnceLock<Map<String, Value>>,
}

/// Where the untyped claims are read from when first asked for.
#[derive(Clone)]
enum Raw {
    /// The claims set's JSON text.
    Json(Vec<u8>),
    /// The validated token whose payload is the claims set: a validated-token cache entry
    /// holds the token anyway, so its claims keep no second copy of the payload (decoded
    /// again, once, if an untyped claim is asked for).
    Token(BearerToken),
}

impl Others {
    fn eager(map: Map<String, Value>) -> Self {
        Self { raw: None, map: OnceLock::from(map) }
    }

    fn get(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            let decoded;
            let json: &[u8] = match &self.raw {
                None => return Map::new(),
                Some(Raw::Json(json)) => json,
                Some(Raw::Token(token)) => {
                    // The token was validated: its structure and payload were decoded before.
                    let Ok(segments) = crate::validation::jwt::split(token.secret()) else { return Map::new() };
                    let Ok(payload) = crate::validation::jwt::decode_segment(segments.payload, TokenPart::Payload)
                    else {
                        return Map::new();
                    };
                    decoded = payload;
                    &decoded
                }
            };
            let mut map: Map<String, Value> = serde_json::from_slice(json).unwrap_or_default();
            map.retain(|k, _| !KNOWN.contains(&k.as_str()));
            map
        })
    }
}

impl PartialEq for Others {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for Others {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The claims with typed accessors, in the order of their bits in the parser.
const KNOWN: [&str; 20] = [
    "iss",
    "aud",
    "sub",
    "oid",
    "tid",
    "azp",
    "appid",
    "scp",
    "roles",
    "name",
    "preferred_username",
    "ver",
    "idtyp",
    "xms_cc",
    "acrs",
    "groups",
    "wids",
    "iat",
    "nbf",
    "exp",
];

/// The position of `name` in [`KNOWN`]: one `match` on the name (the compiler dispatches on
/// its length and bytes) instead of comparing it with every known name in turn.
fn known_index(name: &str) -> Option<usize> {
    let i = match name {
        "iss" => 0,
        "aud" => 1,
        "sub" => 2,
        "oid" => 3,
        "tid" => 4,
        "azp" => 5,
        "appid" => 6,
        "scp" => 7,
        "roles" => 8,
        "name" => 9,
        "preferred_username" => 10,
        "ver" => 11,
        "idtyp" => 12,
        "xms_cc" => 13,
        "acrs" => 14,
        "groups" => 15,
        "wids" => 16,
        "iat" => 17,
        "nbf" => 18,
        "exp" => 19,
        _ => return None,
    };
    debug_assert_eq!(KNOWN[i], name);
    Some(i)
}

/// Whether a token is app-only (client credentials) or delegated, from its claims, following
/// Microsoft's guidance ("Verify that a token is app-only or delegated", access tokens
/// documentation):
///
/// - with the `idtyp` optional claim: app-only exactly when it is `app`;
/// - without it: app-only only when the token carries no scope (`scp` absent or empty) **and**
///   its `oid` equals its `sub` (the service principal is its own subject; a user's `sub` is
///   pairwise and never equals the `oid`).
///
/// `roles` play no part: users carry app roles too.
///
/// ```
/// use azad_core::is_app_only_token;
///
/// assert!(is_app_only_token(Some("app"), None, None, None));
/// assert!(is_app_only_token(None, None, Some("o"), Some("o")));
/// assert!(!is_app_only_token(None, None, Some("o"), Some("pairwise-sub")));
/// assert!(!is_app_only_token(None, Some("access_as_user"), Some("o"), Some("o")));
/// assert!(!is_app_only_token(Some("user"), None, Some("o"), Some("o")));
/// ```
#[must_use]
pub fn is_app_only_token(idtyp: Option<&str>, scp: Option<&str>, oid: Option<&str>, sub: Option<&str>) -> bool {
    match idtyp {
        Some(t) => t == "app",
        None => {
            let no_scope = scp.is_none_or(|s| s.bytes().all(|b| b == b' '));
            no_scope && oid.is_some() && oid == sub
        }
    }
}

/// The stable identity of a principal across applications: tenant id and object id.
///
/// Unlike `sub` (pairwise per application), `(tid, oid)` identifies the same user or service
/// principal for every application in the tenant. Displayed as `{oid}.{tid}`, the MSAL
/// home-account-id format.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrincipalKey {
    /// The tenant id (`tid`).
    pub tenant_id: String,
    /// The object id (`oid`).
    pub object_id: String,
}

impl fmt::Display for PrincipalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.object_id, self.tenant_id)
    }
}

impl Claims {
    /// Parses a JSON claims set (no validation). Text that is not UTF-8, has an unpaired
    /// surrogate escape or nests deeper than [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH), duplicate
    /// member names and well-known claims of the wrong type are refused.
    ///
    /// # Errors
    ///
    /// [`ValidationError::InvalidJsonText`], [`ValidationError::Malformed`],
    /// [`ValidationError::DuplicateMember`] or [`ValidationError::InvalidClaim`].
    pub fn from_json(json: &[u8]) -> Result<Self, ValidationError> {
        Self::from_json_owned(json.to_vec())
    }

    /// Like [`from_json`](Self::from_json), keeping the buffer for the untyped claims.
    pub(crate) fn from_json_owned(json: Vec<u8>) -> Result<Self, ValidationError> {
        crate::validation::jwt::check_json_text(&json, TokenPart::Payload)?;
        let mut de = serde_json::Deserializer::from_slice(&json);
        let parsed = Deserializer::deserialize_map(&mut de, ClaimsVisitor { keep_others: false })
            .and_then(|p| de.end().map(|()| p))
            .map_err(|_| ValidationError::Malformed(TokenPart::Payload))?;
        if parsed.duplicate {
            return Err(ValidationError::DuplicateMember(TokenPart::Payload));
        }
        if let Some(claim) = parsed.invalid {
            return Err(ValidationError::InvalidClaim(claim));
        }
        let mut claims = parsed.claims;
        claims.other.raw = Some(Raw::Json(json));
        Ok(claims)
    }

    /// The name of the configured authority that accepted this token: the
    /// [`authority_name`](crate::config::AzureAdConfigBuilder::authority_name) of its
    /// configuration, or its name in [`TokenValidator::authorities`](crate::TokenValidator::authorities).
    /// `None` when the configuration names none, and for claims not produced by a validator.
    /// Not a claim of the token: it is never serialised.
    #[must_use]
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    pub(crate) fn set_authority(&mut self, name: Option<std::sync::Arc<str>>) {
        self.authority = name;
    }

    /// Reads the untyped claims from `token` (the validated token these claims were parsed
    /// from) instead of the JSON text kept so far, which is freed: a cached entry then holds
    /// one copy of the payload, the token's. Nothing changes for claims already read.
    pub(crate) fn read_others_from(&mut self, token: BearerToken) {
        if matches!(self.other.raw, Some(Raw::Json(_))) && self.other.map.get().is_none() {
            self.other.raw = Some(Raw::Token(token));
        }
    }

    /// The issuer (`iss`); empty if absent (validated tokens always have one).
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.text(Text::Iss).unwrap_or_default()
    }

    /// The audiences (`aud`, a string or an array of strings).
    #[must_use]
    pub fn audiences(&self) -> &[String] {
        &self.aud
    }

    /// The subject (`sub`): pairwise, stable for this user and this application only.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.text(Text::Sub)
    }

    /// The object id (`oid`) of the user or service principal.
    #[must_use]
    pub fn object_id(&self) -> Option<&str> {
        self.text(Text::Oid)
    }

    /// The tenant id (`tid`).
    #[must_use]
    pub fn tenant_id(&self) -> Option<&str> {
        self.text(Text::Tid)
    }

    /// The client application's id: `azp` (v2.0 tokens).
    #[must_use]
    pub fn azp(&self) -> Option<&str> {
        self.text(Text::Azp)
    }

    /// The client application's id: `appid` (v1.0 tokens).
    #[must_use]
    pub fn appid(&self) -> Option<&str> {
        self.text(Text::Appid)
    }

    /// The client application's id, whichever token version: `azp`, else `appid`.
    #[must_use]
    pub fn client_app_id(&self) -> Option<&str> {
        self.azp().or_else(|| self.appid())
    }

    /// The raw `scp` claim (space-separated delegated scopes).
    #[must_use]
    pub fn scp(&self) -> Option<&str> {
        self.text(Text::Scp)
    }

    /// The delegated scopes: `scp` split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        self.text(Text::Scp).unwrap_or_default().split(' ').filter(|s| !s.is_empty())
    }

    /// `true` if `scp` contains `scope` (exact, case-sensitive).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        // Bytes split on the space byte: the same scopes as `scopes()`, in a plain loop (this
        // runs on every request a scope guards).
        let scope = scope.as_bytes();
        !scope.is_empty() && self.text_bytes(Text::Scp).is_some_and(|scp| scp.split(|b| *b == b' ').any(|s| s == scope))
    }

    /// `true` if `scp` contains any of `scopes`.
    #[must_use]
    pub fn has_any_scope<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        scopes.iter().any(|s| self.has_scope(s.as_ref()))
    }

    /// `true` if `scp` contains all of `scopes`.
    #[must_use]
    pub fn has_all_scopes<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        scopes.iter().all(|s| self.has_scope(s.as_ref()))
    }

    /// The app roles (`roles`): application permissions for app-only tokens, assigned app roles
    /// for users.
    #[must_use]
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// `true` if `roles` contains `role` (exact, case-sensitive).
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `true` if `roles` contains any of `roles`.
    #[must_use]
    pub fn has_any_role<S: AsRef<str>>(&self, roles: &[S]) -> bool {
        roles.iter().any(|r| self.has_role(r.as_ref()))
    }

    /// The display name (`name`).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.text(Text::Name)
    }

    /// The sign-in name (`preferred_username`, v2.0 tokens).
    #[must_use]
    pub fn preferred_username(&self) -> Option<&str> {
        self.text(Text::PreferredUsername)
    }

    /// The token version (`ver`): `"1.0"` or `"2.0"`.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.text(Text::Ver)
    }

    /// The token type (`idtyp`, optional claim): `"app"` or `"user"`.
    #[must_use]
    pub fn idtyp(&self) -> Option<&str> {
        self.text(Text::Idtyp)
    }

    /// Client capabilities (`xms_cc`), e.g. `cp1` for continuous access evaluation.
    #[must_use]
    pub fn client_capabilities(&self) -> &[String] {
        &self.xms_cc
    }

    /// Authentication context class references satisfied (`acrs`).
    #[must_use]
    pub fn acrs(&self) -> &[String] {
        &self.acrs
    }

    /// Group object ids (`groups`), when the app is configured to emit them.
    #[must_use]
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Directory role template ids (`wids`).
    #[must_use]
    pub fn wids(&self) -> &[String] {
        &self.wids
    }

    /// Issued at (`iat`), seconds since the Unix epoch.
    #[must_use]
    pub fn issued_at(&self) -> Option<i64> {
        self.iat
    }

    /// Not before (`nbf`), seconds since the Unix epoch.
    #[must_use]
    pub fn not_before(&self) -> Option<i64> {
        self.nbf
    }

    /// Expiry (`exp`), seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at(&self) -> Option<i64> {
        self.exp
    }

    /// Any claim that has no typed accessor (`upn`, `amr`, `sid`, custom claims, ...).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.other.get().get(name)
    }

    /// Any claim, typed or not, as an owned JSON value.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<Value> {
        let s = |t: Text| self.text(t).map(|v| Value::String(v.to_owned()));
        let a = |v: &Vec<String>| (!v.is_empty()).then(|| Value::from(v.clone()));
        let n = |v: Option<i64>| v.map(Value::from);
        match name {
            "iss" => s(Text::Iss),
            "aud" => self.aud_value(),
            "sub" => s(Text::Sub),
            "oid" => s(Text::Oid),
            "tid" => s(Text::Tid),
            "azp" => s(Text::Azp),
            "appid" => s(Text::Appid),
            "scp" => s(Text::Scp),
            "roles" => a(&self.roles),
            "name" => s(Text::Name),
            "preferred_username" => s(Text::PreferredUsername),
            "ver" => s(Text::Ver),
            "idtyp" => s(Text::Idtyp),
            "xms_cc" => a(&self.xms_cc),
            "acrs" => a(&self.acrs),
            "groups" => a(&self.groups),
            "wids" => a(&self.wids),
            "iat" => n(self.iat),
            "nbf" => n(self.nbf),
            "exp" => n(self.exp),
            other => self.other.get().get(other).cloned(),
        }
    }

    /// `true` for app-only tokens (client credentials), `false` for delegated tokens (a user
    /// signed in): see [`is_app_only_token`], the one definition azad uses everywhere.
    ///
    /// A user's token that carries app roles and no `scp` is delegated: its roles are the
    /// user's, never application permissions.
    #[must_use]
    pub fn is_app_only(&self) -> bool {
        self.app_only
    }

    /// The stable principal key `(tid, oid)`, when both claims are present.
    #[must_use]
    pub fn principal_key(&self) -> Option<PrincipalKey> {
        Some(PrincipalKey { tenant_id: self.tenant_id()?.to_owned(), object_id: self.object_id()?.to_owned() })
    }

    /// A typed string claim's bytes (no character-boundary checks: for byte comparisons).
    fn text_bytes(&self, field: Text) -> Option<&[u8]> {
        let span = self.spans[field as usize]?;
        self.text.as_bytes().get(span.start as usize..(span.start + span.len) as usize)
    }

    /// A typed string claim.
    fn text(&self, field: Text) -> Option<&str> {
        let span = self.spans[field as usize]?;
        self.text.get(span.start as usize..(span.start + span.len) as usize)
    }

    fn aud_value(&self) -> Option<Value> {
        match (self.aud.as_slice(), self.aud_array) {
            ([], false) => None,
            ([one], false) => Some(Value::String(one.clone())),
            (many, _) => Some(Value::from(many.to_vec())),
        }
    }
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        macro_rules! opt {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f { map.serialize_entry(stringify!($f), v)?; }
            )*};
        }
        macro_rules! list {
            ($($f:ident),*) => {$(
                if !self.$f.is_empty() { map.serialize_entry(stringify!($f), &self.$f)?; }
            )*};
        }
        macro_rules! text {
            ($($t:ident => $name:literal),*) => {$(
                if let Some(v) = self.text(Text::$t) { map.serialize_entry($name, v)?; }
            )*};
        }
        text!(Iss => "iss");
        if let Some(aud) = self.aud_value() {
            map.serialize_entry("aud", &aud)?;
        }
        opt!(iat, nbf, exp);
        text!(Sub => "sub", Oid => "oid", Tid => "tid", Azp => "azp", Appid => "appid", Scp => "scp");
        list!(roles);
        text!(Name => "name", PreferredUsername => "preferred_username", Ver => "ver", Idtyp => "idtyp");
        list!(xms_cc, acrs, groups, wids);
        for (k, v) in self.other.get() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = ParsedClaims::deserialize(deserializer)?;
        if parsed.duplicate {
            return Err(de::Error::custom("duplicate claim"));
        }
        if let Some(claim) = parsed.invalid {
            return Err(de::Error::custom(format_args!("invalid `{claim}` claim")));
        }
        Ok(parsed.claims)
    }
}

/// Any JSON value, read in full and dropped: unlike `IgnoredAny`, numbers are parsed (one that
/// no `f64` holds, such as `1e400`, is an error), so a claims set validation accepted is one
/// that [`Claims::get`] can read later. No allocation (strings are borrowed or go through the
/// parser's scratch buffer).
struct JsonAny;

impl<'de> Deserialize<'de> for JsonAny {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonAnyVisitor)
    }
}

struct JsonAnyVisitor;

impl<'de> Visitor<'de> for JsonAnyVisitor {
    type Value = JsonAny;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_unit<E: de::Error>(self) -> Result<JsonAny, E> {
        Ok(JsonAny)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsonAny, A::Error> {
        while seq.next_element::<JsonAny>()?.is_some() {}
        Ok(JsonAny)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonAny, A::Error> {
        while map.next_entry::<JsonAny, JsonAny>()?.is_some() {}
        Ok(JsonAny)
    }
}

/// Claims plus what the single parsing pass noticed: a duplicate member, or a well-known
/// claim of the wrong type (reported as a validation error, not a parse error).
struct ParsedClaims {
    claims: Claims,
    duplicate: bool,
    invalid: Option<&'static str>,
}

impl<'de> Deserialize<'de> for ParsedClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor { keep_others: true })
    }
}

/// Parses claims in one pass. Untyped claims are kept as values (`keep_others`), or skipped
/// (their names still checked for duplicates) when the raw claims set is kept instead.
struct ClaimsVisitor {
    keep_others: bool,
}

/// The typed string claim at `bit` of [`KNOWN`], if it is one.
fn text_field(bit: usize) -> Option<Text> {
    Some(match bit {
        0 => Text::Iss,
        2 => Text::Sub,
        3 => Text::Oid,
        4 => Text::Tid,
        5 => Text::Azp,
        6 => Text::Appid,
        7 => Text::Scp,
        9 => Text::Name,
        10 => Text::PreferredUsername,
        11 => Text::Ver,
        12 => Text::Idtyp,
        _ => return None,
    })
}

/// A member's value where a string is expected: the string (borrowed from the JSON text
/// unless it has escapes), or any other JSON value, read in full (as [`JsonAny`]) and dropped.
enum MaybeStr<'de> {
    Str(Cow<'de, str>),
    Other,
}

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeStrVisitor)
    }
}

struct MaybeStrVisitor;

impl<'de> Visitor<'de> for MaybeStrVisitor {
    type Value = MaybeStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(MaybeStr::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(MaybeStr::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(MaybeStr::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MaybeStr::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MaybeStr::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MaybeStr::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MaybeStr::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(MaybeStr::Other)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        JsonAnyVisitor.visit_seq(seq).map(|_| MaybeStr::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        JsonAnyVisitor.visit_map(map).map(|_| MaybeStr::Other)
    }
}

fn take_string(v: Value) -> Result<String, ()> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(()),
    }
}

fn take_strings(v: Value) -> Result<Vec<String>, ()> {
    match v {
        Value::Array(items) => items.into_iter().map(take_string).collect(),
        _ => Err(()),
    }
}

/// A NumericDate: a JSON number (fractions are truncated). Strings are refused.
fn take_date(v: &Value) -> Result<i64, ()> {
    match v {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f as i64)).ok_or(())
        }
        _ => Err(()),
    }
}

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ParsedClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedClaims, A::Error> {
        let mut c = Claims::default();
        let mut text = TextBuilder::new();
        let mut others = Map::new();
        // One allocation for the usual count (Entra access tokens carry about ten untyped claims).
        let mut other_names: Vec<Cow<'de, str>> = Vec::with_capacity(16);
        let mut seen: u32 = 0;
        let mut duplicate = false;
        let mut invalid: Option<&'static str> = None;
        let mut tid_like = 0u8;

        while let Some(CowKey(key)) = map.next_key::<CowKey<'de>>()? {
            if key.eq_ignore_ascii_case("tid") {
                tid_like += 1;
            }
            let Some(bit) = known_index(&key) else {
                if self.keep_others {
                    if others.insert(key.into_owned(), map.next_value()?).is_some() {
                        duplicate = true;
                    }
                } else {
                    map.next_value::<JsonAny>()?;
                    other_names.push(key);
                }
                continue;
            };
            let name = KNOWN[bit];
            // String claims are read borrowed from the JSON text (copied once, into the
            // claims' one buffer); the others as values.
            if let Some(field) = text_field(bit) {
                let value: MaybeStr<'de> = map.next_value()?;
                if seen & (1 << bit) != 0 {
                    duplicate = true;
                    continue;
                }
                seen |= 1 << bit;
                let ok = match value {
                    MaybeStr::Str(v) => text.set(field, &v),
                    MaybeStr::Other => Err(()),
                };
                if ok.is_err() && invalid.is_none() {
                    invalid = Some(name);
                }
                continue;
            }
            let value: Value = map.next_value()?;
            if seen & (1 << bit) != 0 {
                duplicate = true;
                continue;
            }
            seen |= 1 << bit;
            let ok = match bit {
                1 => match value {
                    Value::String(s) => {
                        c.aud = vec![s];
                        Ok(())
                    }
                    v @ Value::Array(_) => take_strings(v).map(|a| {
                        c.aud = a;
                        c.aud_array = true;
                    }),
                    _ => Err(()),
                },
                8 => take_strings(value).map(|a| c.roles = a),
                13 => take_strings(value).map(|a| c.xms_cc = a),
                14 => take_strings(value).map(|a| c.acrs = a),
                15 => take_strings(value).map(|a| c.groups = a),
                16 => take_strings(value).map(|a| c.wids = a),
                17 => take_date(&value).map(|d| c.iat = Some(d)),
                18 => take_date(&value).map(|d| c.nbf = Some(d)),
                _ => take_date(&value).map(|d| c.exp = Some(d)),
            };
            if ok.is_err() && invalid.is_none() {
                invalid = Some(name);
            }
        }
        if tid_like > 1 {
            duplicate = true;
        }
        other_names.sort_unstable();
        if other_names.windows(2).any(|w| w[0] == w[1]) {
            duplicate = true;
        }
        if self.keep_others {
            c.other = Others::eager(others);
        }
        text.finish(&mut c);
        Ok(ParsedClaims { claims: c, duplicate, invalid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed strings live in one buffer: every accessor reads its own claim, escapes
    /// included, and claims sets compare by value whatever their members' order.
    #[test]
    fn typed_strings_in_one_buffer_read_and_compare_by_value() {
        let a = Claims::from_json(
            br#"{"iss":"i","sub":"s","oid":"o","tid":"t","azp":"z","appid":"a","scp":"x y","name":"caf\u00e9 \"q\"","preferred_username":"p","ver":"2.0","idtyp":"user"}"#,
        )
        .unwrap();
        assert_eq!(
            [a.issuer(), a.subject().unwrap(), a.object_id().unwrap(), a.tenant_id().unwrap(), a.azp().unwrap()],
            ["i", "s", "o", "t", "z"]
        );
        assert_eq!(
            [a.appid(), a.scp(), a.preferred_username(), a.version(), a.idtyp()].map(Option::unwrap),
            ["a", "x y", "p", "2.0", "user"]
        );
        assert_eq!(a.name(), Some("café \"q\""));
        let reordered = Claims::from_json(
            br#"{"idtyp":"user","ver":"2.0","preferred_username":"p","name":"caf\u00e9 \"q\"","scp":"x y","appid":"a","azp":"z","tid":"t","oid":"o","sub":"s","iss":"i"}"#,
        )
        .unwrap();
        assert_eq!(a, reordered);
        let fewer = Claims::from_json(br#"{"iss":"i","sub":"s"}"#).unwrap();
        assert_ne!(a, fewer);
        assert_eq!(fewer.object_id(), None);
        assert_eq!(Claims::from_json(br#"{"sub":7}"#), Err(ValidationError::InvalidClaim("sub")));
        assert_eq!(Claims::from_json(br#"{"name":{"a":[1]}}"#), Err(ValidationError::InvalidClaim("name")));
    }

    #[test]
    fn known_index_agrees_with_the_list_of_typed_claims() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(known_index(name), Some(i), "{name}");
        }
        for other in ["", "Iss", "aio", "exp ", "roles2", "uti"] {
            assert_eq!(known_index(other), None, "{other}");
        }
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert_eq!(
            Claims::from_json(br#"{"aud":"a","aud":"b"}"#),
            Err(ValidationError::DuplicateMember(TokenPart::Payload))
        );
        assert_eq!(Claims::from_json(br#"{"x":1,"x":2}"#), Err(ValidationError::DuplicateMember(TokenPart::Payload)));
        assert_eq!(
            Claims::from_json(br#"{"tid":"a","TID":"b"}"#),
            Err(ValidationError::DuplicateMember(TokenPart::Payload))
        );
        // An escaped key is the same member name, typed claim or not.
        assert_eq!(
            Claims::from_json(br#"{"exp":1,"\u0065xp":2}"#),
            Err(ValidationError::DuplicateMember(TokenPart::Payload))
        );
        assert_eq!(
            Claims::from_json(br#"{"aio":1,"\u0061io":2}"#),
            Err(ValidationError::DuplicateMember(TokenPart::Payload))
        );
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(Claims::from_json(br#"{"exp":"1900000000"}"#), Err(ValidationError::InvalidClaim("exp")));
        assert_eq!(Claims::from_json(br#"{"aud":5}"#), Err(ValidationError::InvalidClaim("aud")));
        assert_eq!(Claims::from_json(br#"{"aud":["a",1]}"#), Err(ValidationError::InvalidClaim("aud")));
        assert_eq!(Claims::from_json(br#"{"roles":"Admin"}"#), Err(ValidationError::InvalidClaim("roles")));
        assert_eq!(Claims::from_json(br#"{"nbf":true}"#), Err(ValidationError::InvalidClaim("nbf")));
    }

    #[test]
    fn not_an_object() {
        assert_eq!(Claims::from_json(b"[1,2]"), Err(ValidationError::Malformed(TokenPart::Payload)));
        assert_eq!(Claims::from_json(b"{\"a\":1} x"), Err(ValidationError::Malformed(TokenPart::Payload)));
        assert_eq!(Claims::from_json(b"\"s\""), Err(ValidationError::Malformed(TokenPart::Payload)));
    }

    proptest::proptest! {
        /// `has_scope` and the app-only test answer as splitting `scp` into `scopes()` does, for
        /// any `scp` and `scope` over a small alphabet (near misses, repeats, empty scopes,
        /// spaces inside `scope`).
        #[test]
        fn scope_checks_answer_as_the_scopes_do(scp in "[ab. ]{0,12}", scope in "[ab. ]{0,4}") {
            let c = Claims::from_json(serde_json::json!({ "scp": scp }).to_string().as_bytes()).unwrap();
            proptest::prop_assert_eq!(c.has_scope(&scope), c.scopes().any(|s| s == scope));
            let no_scope = c.scopes().next().is_none();
            proptest::prop_assert_eq!(is_app_only_token(None, Some(&scp), Some("o"), Some("o")), no_scope);
        }

        /// `is_app_only`, decided once when the claims are read, answers as the definition
        /// does over the four claims it reads, present or absent.
        #[test]
        fn app_only_is_decided_as_the_definition_says(
            idtyp in proptest::option::of("app|user|App|"),
            scp in proptest::option::of("[a ]{0,3}"),
            oid in proptest::option::of("[ab]"),
            sub in proptest::option::of("[ab]"),
        ) {
            let mut json = Map::new();
            for (name, value) in [("idtyp", &idtyp), ("scp", &scp), ("oid", &oid), ("sub", &sub)] {
                if let Some(v) = value {
                    json.insert(name.to_owned(), Value::from(v.as_str()));
                }
            }
            let c = Claims::from_json(Value::Object(json).to_string().as_bytes()).unwrap();
            let expected = is_app_only_token(idtyp.as_deref(), scp.as_deref(), oid.as_deref(), sub.as_deref());
            proptest::prop_assert_eq!(c.is_app_only(), expected);
            let back: Claims = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
            proptest::prop_assert_eq!(back.is_app_only(), expected);
        }
    }

    #[test]
    fn accessors_and_round_trip() {
        let json = serde_json::json!({
            "aud": ["api://a", "b"], "iss": "i", "iat": 1, "nbf": 2, "exp": 3.9,
            "sub": "s", "oid": "o", "tid": "t", "azp": "c", "scp": "a  b", "roles": ["R"],
            "name": "N", "preferred_username": "p", "ver": "2.0", "xms_cc": ["cp1"],
            "acrs": ["c1"], "groups": ["g"], "wids": ["w"], "upn": "u@x"
        });
        let c = Claims::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(c.audiences(), ["api://a", "b"]);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert!(c.has_all_scopes(&["a", "b"]) && c.has_any_scope(&["z", "b"]) && !c.has_scope(""));
        assert!(c.has_role("R") && !c.has_role("r"));
        assert_eq!(c.expires_at(), Some(3));
        assert_eq!(c.client_app_id(), Some("c"));
        assert_eq!(c.get("upn").unwrap(), "u@x");
        assert_eq!(c.claim("aud").unwrap(), serde_json::json!(["api://a", "b"]));
        assert_eq!(c.principal_key().unwrap().to_string(), "o.t");
        assert_eq!(c.client_capabilities(), ["cp1"]);
        let back: Claims = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, Claims { exp: Some(3), ..c });
        let single = Claims::from_json(br#"{"aud":"x"}"#).unwrap();
        assert_eq!(serde_json::to_value(&single).unwrap(), serde_json::json!({"aud": "x"}));
    }

    #[test]
    fn app_only_detection() {
        let app = Claims::from_json(br#"{"idtyp":"app","roles":["R"],"oid":"o","sub":"o"}"#).unwrap();
        assert!(app.is_app_only());
        let app_v1 = Claims::from_json(br#"{"roles":["R"],"oid":"o","sub":"o"}"#).unwrap();
        assert!(app_v1.is_app_only());
        let app_without_roles = Claims::from_json(br#"{"oid":"o","sub":"o"}"#).unwrap();
        assert!(app_without_roles.is_app_only());
        let user = Claims::from_json(br#"{"scp":"x","roles":["R"],"oid":"o","sub":"s"}"#).unwrap();
        assert!(!user.is_app_only());
        let user_typed = Claims::from_json(br#"{"idtyp":"user","roles":["R"]}"#).unwrap();
        assert!(!user_typed.is_app_only());
    }

    #[test]
    fn a_user_with_app_roles_and_no_scp_is_not_app_only() {
        // Microsoft's rule: without `idtyp`, app-only needs no `scp` and `oid == sub`. A user's
        // `sub` is pairwise, so a user token with roles and no `scp` is delegated.
        let user = Claims::from_json(br#"{"roles":["Tasks.Read.All"],"oid":"o","sub":"pairwise"}"#).unwrap();
        assert!(!user.is_app_only());
        let user_without_oid = Claims::from_json(br#"{"roles":["R"],"sub":"s"}"#).unwrap();
        assert!(!user_without_oid.is_app_only());
        let empty_scp = Claims::from_json(br#"{"scp":" ","oid":"o","sub":"o"}"#).unwrap();
        assert!(empty_scp.is_app_only());
    }

    #[test]
    fn every_member_is_read_as_json_even_when_skipped() {
        // A number no IEEE double holds (RFC 7493 §2.2) in a claim validation never reads:
        // refused, rather than leaving every untyped claim silently unreadable later.
        assert_eq!(Claims::from_json(br#"{"x":1e400,"upn":"u"}"#), Err(ValidationError::Malformed(TokenPart::Payload)));
        assert_eq!(Claims::from_json(br#"{"x":[-1e999]}"#), Err(ValidationError::Malformed(TokenPart::Payload)));
        let c = Claims::from_json(br#"{"x":{"y":[1.5e300,-0,"\u00e9",null,true]},"upn":"u"}"#).unwrap();
        assert_eq!(c.get("upn").unwrap(), "u");
    }

    #[test]
    fn json_text_must_be_unicode_and_shallow() {
        use crate::error::JsonTextError;
        let text = |e| Err(ValidationError::InvalidJsonText(TokenPart::Payload, e));
        // Invalid UTF-8, in a typed claim and in one serde would skip.
        assert_eq!(Claims::from_json(b"{\"iss\":\"\xff\"}"), text(JsonTextError::NotUtf8));
        assert_eq!(Claims::from_json(b"{\"x\":\"\xc3\x28\"}"), text(JsonTextError::NotUtf8));
        // UTF-8-encoded surrogates are not UTF-8 either.
        assert_eq!(Claims::from_json(b"{\"x\":\"\xed\xa0\x80\"}"), text(JsonTextError::NotUtf8));
        // Unpaired surrogate escapes, high or low, in values and keys.
        for json in [
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\uDBFFa"}"#,
            r#"{"x":"\udc00"}"#,
            r#"{"x":"\ud800\u0041"}"#,
            r#"{"\ud800":1}"#,
            r#"{"x":["\\", "\ud800"]}"#,
        ] {
            assert_eq!(Claims::from_json(json.as_bytes()), text(JsonTextError::UnpairedSurrogate), "{json}");
        }
        // A pair is fine, and so is an escaped backslash before `ud800`.
        assert!(Claims::from_json(r#"{"x":"\ud83d\ude00","y":"\\ud800"}"#.as_bytes()).is_ok());
        // Nesting: 16 levels pass, 17 do not; brackets inside strings do not count.
        let nest = |n: usize| format!("{}{}", "{\"a\":".repeat(n - 1) + "{", "}".repeat(n));
        assert!(Claims::from_json(nest(16).as_bytes()).is_ok());
        assert_eq!(Claims::from_json(nest(17).as_bytes()), text(JsonTextError::TooDeep));
        let arrays = format!("{{\"x\":{}{}}}", "[".repeat(16), "]".repeat(16));
        assert_eq!(Claims::from_json(arrays.as_bytes()), text(JsonTextError::TooDeep));
        assert!(Claims::from_json(format!("{{\"x\":\"{}\"}}", "[{".repeat(100)).as_bytes()).is_ok());
    }
}
