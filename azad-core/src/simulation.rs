//! Record a tenant once, replay it offline: the simulation layer on azad's HTTP client
//! (feature `simulation`).
//!
//! Every identity call azad makes (discovery, JWKS, the token endpoint for each grant, the
//! device code endpoint, managed identity) goes through one [`HttpClient`]. A [`Simulation`]
//! wraps it in one of three modes ([`SimulationMode`], environment `AZURE_AD_SIMULATION_MODE`):
//!
//! | mode | what happens |
//! | --- | --- |
//! | `disabled` (default) | nothing: the configuration holds no simulation, requests go straight to the client |
//! | `recording` | each call is executed for real, then stored in the cassette (`AZURE_AD_SIMULATION_CASSETTE`) with every secret removed |
//! | `replay` | no network at all: each call is answered from the cassette, tokens minted fresh |
//!
//! # The cassette
//!
//! One JSON file, keys sorted, interactions in a stable order (by flow, URL, client, scopes,
//! resource, then sequence), so it diffs well. Each interaction holds:
//!
//! - the request's identifying parts: `flow` (`discovery`, `jwks`, `client_credentials`,
//!   `on_behalf_of`, `refresh_token`, `authorization_code`, `device_code`,
//!   `device_code_token`, `password`, `managed_identity`, or `http`), method, URL template
//!   (the origin as `{origin}`, a tenant id path segment as `{tenant}`, no query), grant type,
//!   client id, sorted scopes, resource. Never a secret: client secrets, client assertions,
//!   incoming assertions, codes, device codes, refresh tokens and passwords are not read;
//! - the response: status, the headers that matter (`Retry-After`, `WWW-Authenticate`,
//!   `Content-Type`), and the body with every secret removed. A JWT (access or ID token) is
//!   replaced by its *template*, `{"$azad_token": {"header": …, "claims": …,
//!   "lifetime_seconds": …, "not_before_seconds": …}}`: header and claims without signature and
//!   without the per-token values (`iat`, `nbf`, `exp`, `uti`, `jti`, `aio`, `rh`). Opaque
//!   secrets (refresh tokens, device codes, user codes) become `{"$azad_secret": "<kind>"}`.
//!   The JWKS body becomes `{"$azad_jwks": …}`: the tenant's keys are never needed again.
//!
//! Repeated identical interactions (the same request answered the same way) are stored once;
//! a sequence (a 429 then a token, `authorization_pending` then a token) keeps its order.
//!
//! # Replay
//!
//! A request is matched by flow, URL template, client id, scopes and resource; the `n`-th
//! identical request gets the `n`-th recorded answer (the last one from then on). A miss is a
//! transport error of kind [`HttpErrorKind::Simulation`]
//! whose [`source`](std::error::Error::source) is [`SimulationError::NoInteraction`], naming
//! what was asked and what the cassette holds.
//!
//! Tokens are minted from their template: `iat` and `nbf` now, `exp` after the recorded
//! lifetime, a fresh `uti`/`jti`, the claim **`xms_azad_replay: true`**, and a signature by the
//! process's *replay key* (RSA 2048, generated once per process, never written anywhere). The
//! replayed JWKS serves that key's public part, so an API validating replayed tokens runs its
//! real validation path (signature, issuer, audience, lifetime, scopes) end to end. A validator
//! that is not replaying never has the replay key and refuses them (`UnknownKey` or
//! `InvalidSignature`).
//!
//! An ID token's `nonce` is stored as `{nonce}` and replayed as the nonce the signing-in client
//! expects (the authorization code request carries it in-process, never on the wire), so
//! [`SignInClient::complete`](crate::client::signin::SignInClient::complete) runs its real checks on a
//! replayed sign-in; the browser part of that flow (the authorization endpoint) is not an
//! identity call of azad's and is not recorded.
//!
//! Recorded errors (429 with `Retry-After`, `invalid_grant`, claims challenges) replay as
//! recorded, with fresh `trace_id`, `correlation_id` and `timestamp`.
//!
//! # Safety
//!
//! Replay refuses to start (a [`ConfigError`](crate::ConfigError) at
//! [`build`](crate::config::AzureAdConfigBuilder::build)) when the cassette is missing or
//! unreadable, or was recorded for other client ids than the configuration's.
//!
//! # Example
//!
//! ```no_run
//! use azad_core::AzureAdConfig;
//! use azad_core::simulation::SimulationMode;
//!
//! let config = AzureAdConfig::builder()
//!     .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .simulation(SimulationMode::Replay, "tests/cassettes/daemon.json")
//!     .build()?;
//! assert_eq!(config.simulation_mode(), SimulationMode::Replay);
//! # Ok::<(), azad_core::ConfigError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{HttpError, HttpErrorKind};
use crate::http::{HttpClient, HttpFuture, HttpRequest, HttpResponse};
use crate::validation::jwt::SigningAlgorithm;

/// The claim every replayed token carries (`true`): the token was minted by azad's simulation
/// layer from a cassette, not by an identity provider.
pub const REPLAY_CLAIM: &str = "xms_azad_replay";

/// The cassette format version written in `azad_cassette`.
const FORMAT: u64 = 1;

/// Claims that differ on every token: not stored, regenerated on replay.
const VOLATILE_CLAIMS: [&str; 7] = ["iat", "nbf", "exp", "uti", "jti", "aio", "rh"];

/// Error body members that differ on every answer: regenerated on replay.
const VOLATILE_ERROR_MEMBERS: [&str; 3] = ["trace_id", "correlation_id", "timestamp"];

/// The simulation mode: `disabled`, `recording` or `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SimulationMode {
    /// Requests go to the network as usual (the default).
    #[default]
    Disabled,
    /// Requests go to the network and are stored in the cassette.
    Recording,
    /// Requests are answered from the cassette, with no network.
    Replay,
}

impl SimulationMode {
    /// Parses `disabled`, `recording` or `replay` (any case; `off`, `record` and `none` are
    /// accepted too).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "disabled" | "off" | "none" => Self::Disabled,
            "recording" | "record" => Self::Recording,
            "replay" => Self::Replay,
            _ => return None,
        })
    }

    /// The name as written in `AZURE_AD_SIMULATION_MODE`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Recording => "recording",
            Self::Replay => "replay",
        }
    }
}

impl fmt::Display for SimulationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong opening, writing or replaying a cassette.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// Replay needs a cassette, and there is none at this path.
    #[error("simulation replay: no cassette at {path}; record one first (AZURE_AD_SIMULATION_MODE=recording)")]
    CassetteMissing {
        /// The cassette path.
        path: String,
    },
    /// The cassette cannot be read or parsed.
    #[error("simulation: the cassette {path} is unusable: {reason}")]
    InvalidCassette {
        /// The cassette path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The cassette was recorded for other applications than the one replaying it.
    #[error("simulation replay: the cassette {path} was recorded for client id(s) {recorded:?}, not {client_id}")]
    RecordedForAnotherClient {
        /// The cassette path.
        path: String,
        /// The configuration's client id.
        client_id: String,
        /// The client ids the cassette was recorded for.
        recorded: Vec<String>,
    },
    /// The cassette cannot be written.
    #[error("simulation recording: cannot write the cassette {path}: {reason}")]
    Write {
        /// The cassette path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No recorded interaction matches a request.
    #[error("simulation replay: nothing in {path} matches {asked}; the cassette holds: {}", recorded.join("; "))]
    NoInteraction {
        /// The cassette path.
        path: String,
        /// The request's identifying parts (flow, method, URL template, client, scopes, resource).
        asked: String,
        /// The identifying parts of every recorded request.
        recorded: Vec<String>,
    },
}

/// The identifying parts of a request: what it is matched by. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Asked {
    flow: String,
    method: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.flow, self.method, self.url)?;
        if let Some(c) = &self.client_id {
            write!(f, " client {c}")?;
        }
        if !self.scopes.is_empty() {
            write!(f, " scopes [{}]", self.scopes.join(" "))?;
        }
        if let Some(r) = &self.resource {
            write!(f, " resource {r}")?;
        }
        Ok(())
    }
}

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Recorded {
    status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    json: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Interaction {
    request: Asked,
    sequence: usize,
    response: Recorded,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CassetteFile {
    azad_cassette: u64,
    #[serde(default)]
    note: String,
    #[serde(default)]
    client_ids: BTreeSet<String>,
    #[serde(default)]
    interactions: Vec<Interaction>,
}

struct State {
    cassette: CassetteFile,
    /// Replay: how many times each request was answered.
    cursors: HashMap<Asked, usize>,
}

struct Inner {
    mode: SimulationMode,
    path: PathBuf,
    state: Mutex<State>,
}

/// An open cassette in recording or replay mode, shared by every configuration that names it
/// (one per path and mode in a process). Cheap to clone.
///
/// See the [module docs](crate::simulation).
#[derive(Clone)]
pub struct Simulation {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("mode", &self.inner.mode)
            .field("cassette", &self.inner.path)
            .field("interactions", &self.interactions())
            .finish()
    }
}

impl PartialEq for Simulation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

fn registry() -> &'static Mutex<HashMap<(PathBuf, SimulationMode), Simulation>> {
    static OPEN: OnceLock<Mutex<HashMap<(PathBuf, SimulationMode), Simulation>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Simulation {
    /// Opens `path` in `mode` (`Recording` or `Replay`), or returns the cassette already open
    /// at that path in that mode in this process. Recording starts an empty cassette (the file
    /// is written on the first interaction); replay reads the file.
    ///
    /// # Errors
    ///
    /// [`SimulationError::CassetteMissing`] or [`SimulationError::InvalidCassette`] for replay;
    /// [`SimulationError::InvalidCassette`] for `Disabled`, which opens nothing.
    pub fn open(mode: SimulationMode, path: impl AsRef<Path>) -> Result<Self, SimulationError> {
        let path = path.as_ref();
        let display = path.display().to_string();
        let key_path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut open = lock(registry());
        if let Some(sim) = open.get(&(key_path.clone(), mode)) {
            return Ok(sim.clone());
        }
        let cassette = match mode {
            SimulationMode::Disabled => {
                return Err(SimulationError::InvalidCassette {
                    path: display,
                    reason: "the simulation is disabled".into(),
                });
            }
            SimulationMode::Recording => {
                CassetteFile { azad_cassette: FORMAT, note: NOTE.into(), ..CassetteFile::default() }
            }
            SimulationMode::Replay => read_cassette(path)?,
        };
        let sim = Self {
            inner: Arc::new(Inner {
                mode,
                path: path.to_path_buf(),
                state: Mutex::new(State { cassette, cursors: HashMap::new() }),
            }),
        };
        open.insert((key_path, mode), sim.clone());
        // Once per cassette and process: replay signs tokens with its own key and answers every
        // grant from the cassette, so a deployment that turned it on by mistake must see it.
        match mode {
            SimulationMode::Replay => tracing::warn!(
                cassette = %path.display(),
                "identity simulation: REPLAYING from a cassette; no call reaches Entra ID and tokens are minted by a replay key (tests and CI only)"
            ),
            _ => tracing::warn!(
                cassette = %path.display(),
                "identity simulation: RECORDING identity calls into a cassette (secrets removed; personal claims such as names stay: review before committing)"
            ),
        }
        Ok(sim)
    }

    /// Forgets the cassettes opened in this process, so the next [`open`](Self::open) starts a
    /// new recording or reads the file again (for tests that record, then replay).
    pub fn close_all() {
        lock(registry()).clear();
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> SimulationMode {
        self.inner.mode
    }

    /// The cassette path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The number of interactions in the cassette.
    #[must_use]
    pub fn interactions(&self) -> usize {
        lock(&self.inner.state).cassette.interactions.len()
    }

    /// Declares that the application `client_id` uses this cassette: recording notes it in the
    /// file; replay refuses a client id the cassette was not recorded for.
    ///
    /// # Errors
    ///
    /// [`SimulationError::RecordedForAnotherClient`] in replay.
    pub fn register_client(&self, client_id: &str) -> Result<(), SimulationError> {
        let mut state = lock(&self.inner.state);
        match self.inner.mode {
            SimulationMode::Replay if !state.cassette.client_ids.contains(client_id) => {
                Err(SimulationError::RecordedForAnotherClient {
                    path: self.inner.path.display().to_string(),
                    client_id: client_id.to_owned(),
                    recorded: state.cassette.client_ids.iter().cloned().collect(),
                })
            }
            SimulationMode::Recording if state.cassette.client_ids.insert(client_id.to_owned()) => {
                write_cassette(&self.inner.path, &state.cassette)
            }
            _ => Ok(()),
        }
    }

    /// The client to use in place of `inner`: recording wraps it, replay replaces it (and
    /// needs none).
    #[must_use]
    pub fn wrap(&self, inner: Option<Arc<dyn HttpClient>>) -> Option<Arc<dyn HttpClient>> {
        match self.inner.mode {
            SimulationMode::Disabled => inner,
            SimulationMode::Recording => {
                inner.map(|inner| Arc::new(Recorder { inner, sim: self.clone() }) as Arc<dyn HttpClient>)
            }
            SimulationMode::Replay => Some(Arc::new(Replayer { sim: self.clone() })),
        }
    }

    fn record(&self, asked: Asked, parts: &RequestParts, response: &HttpResponse) -> Result<(), SimulationError> {
        let recorded = redact_response(&asked, parts, response);
        let mut state = lock(&self.inner.state);
        let interactions = &mut state.cassette.interactions;
        let last = interactions.iter().filter(|i| i.request == asked).max_by_key(|i| i.sequence);
        if last.is_some_and(|l| l.response == recorded) {
            return Ok(());
        }
        let sequence = last.map_or(0, |l| l.sequence + 1);
        interactions.push(Interaction { request: asked, sequence, response: recorded });
        interactions.sort_by(|a, b| (&a.request, a.sequence).cmp(&(&b.request, b.sequence)));
        write_cassette(&self.inner.path, &state.cassette)
    }

    fn replay(&self, request: &HttpRequest) -> Result<HttpResponse, SimulationError> {
        let (asked, parts) = identify(request);
        let recorded = {
            let mut state = lock(&self.inner.state);
            let candidates: Vec<&Interaction> =
                state.cassette.interactions.iter().filter(|i| i.request == asked).collect();
            if candidates.is_empty() {
                let recorded = state.cassette.interactions.iter().map(|i| i.request.to_string()).collect();
                let e = SimulationError::NoInteraction {
                    path: self.inner.path.display().to_string(),
                    asked: asked.to_string(),
                    recorded,
                };
                tracing::error!(target: "azad::simulation", error = %e, "no recorded interaction");
                return Err(e);
            }
            let n = state.cursors.get(&asked).copied().unwrap_or(0);
            let last = candidates.len() - 1;
            let pick = candidates[n.min(last)].response.clone();
            *state.cursors.entry(asked).or_default() += 1;
            pick
        };
        Ok(instantiate(&recorded, &parts, request))
    }
}

const NOTE: &str = "Recorded by azad's simulation layer (feature `simulation`). Tokens are templates (header and claims, no signature); secrets are removed. Replay with AZURE_AD_SIMULATION_MODE=replay.";

fn read_cassette(path: &Path) -> Result<CassetteFile, SimulationError> {
    let display = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SimulationError::CassetteMissing { path: display });
        }
        Err(e) => return Err(SimulationError::InvalidCassette { path: display, reason: e.kind().to_string() }),
    };
    let cassette: CassetteFile = serde_json::from_str(&text)
        .map_err(|e| SimulationError::InvalidCassette { path: display.clone(), reason: e.to_string() })?;
    if cassette.azad_cassette != FORMAT {
        return Err(SimulationError::InvalidCassette {
            path: display,
            reason: format!("format {} (this azad reads format {FORMAT})", cassette.azad_cassette),
        });
    }
    Ok(cassette)
}

fn write_cassette(path: &Path, cassette: &CassetteFile) -> Result<(), SimulationError> {
    let err = |e: std::io::Error| SimulationError::Write { path: path.display().to_string(), reason: e.to_string() };
    let value = sorted(
        serde_json::to_value(cassette)
            .map_err(|e| SimulationError::Write { path: path.display().to_string(), reason: e.to_string() })?,
    );
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The same JSON with every object's members in sorted order, whatever `serde_json`'s map is.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let entries: BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The parts of a request a replayed answer is instantiated with.
struct RequestParts {
    origin: String,
    tenant: Option<String>,
}

/// The identifying parts of a request (never its secrets), and its origin and tenant.
fn identify(request: &HttpRequest) -> (Asked, RequestParts) {
    let uri = request.uri();
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => format!("{s}://{a}"),
        _ => String::new(),
    };
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let tenant = segments.first().filter(|s| crate::authority::is_guid(s)).map(|s| s.to_ascii_lowercase());
    let mut path = String::new();
    for (i, s) in segments.iter().enumerate() {
        path.push('/');
        path.push_str(if i == 0 && tenant.is_some() { "{tenant}" } else { s });
    }
    let url = format!("{{origin}}{path}");
    let method = request.method().as_str().to_owned();
    let query: HashMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let form: HashMap<String, String> = if request.method() == http::Method::POST {
        url::form_urlencoded::parse(request.body()).into_owned().collect()
    } else {
        HashMap::new()
    };
    let scopes = |v: Option<&String>| {
        let mut s: Vec<String> = v.map(|v| v.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        s.sort_unstable();
        s.dedup();
        s
    };
    let headers = request.headers();
    let managed_identity = headers.contains_key("metadata") || headers.contains_key("x-identity-header");
    let mut asked = Asked {
        flow: "http".into(),
        method,
        url,
        grant_type: None,
        client_id: None,
        scopes: Vec::new(),
        resource: None,
    };
    if let Some(grant) = form.get("grant_type") {
        asked.flow = match grant.as_str() {
            "client_credentials" => "client_credentials",
            crate::client::wire::JWT_BEARER_GRANT => "on_behalf_of",
            "refresh_token" => "refresh_token",
            "authorization_code" => "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => "device_code_token",
            "password" => "password",
            _ => "token",
        }
        .into();
        asked.grant_type = Some(grant.clone());
        asked.client_id = form.get("client_id").cloned();
        asked.scopes = scopes(form.get("scope"));
        asked.resource = form.get("resource").cloned();
    } else if request.method() == http::Method::POST && path.ends_with("/devicecode") {
        asked.flow = "device_code".into();
        asked.client_id = form.get("client_id").cloned();
        asked.scopes = scopes(form.get("scope"));
    } else if managed_identity {
        asked.flow = "managed_identity".into();
        asked.resource = query.get("resource").cloned();
        asked.client_id = ["client_id", "object_id", "principal_id", "msi_res_id", "mi_res_id"]
            .iter()
            .find_map(|k| query.get(*k).map(|v| if *k == "client_id" { v.clone() } else { format!("{k}={v}") }));
    } else if path.ends_with("/.well-known/openid-configuration") {
        asked.flow = "discovery".into();
    } else if path.ends_with("/keys") {
        asked.flow = "jwks".into();
        asked.client_id = query.get("appid").cloned();
    }
    (asked, RequestParts { origin, tenant })
}

/// What recording replaces by placeholders in every stored string.
struct Redactor<'a> {
    parts: &'a RequestParts,
    /// Values of the body's own volatile members, and the user code: `(value, placeholder)`.
    volatile: Vec<(String, &'static str)>,
}

impl Redactor<'_> {
    fn template(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (value, placeholder) in &self.volatile {
            if !value.is_empty() {
                out = out.replace(value.as_str(), placeholder);
            }
        }
        if !self.parts.origin.is_empty() {
            out = out.replace(&self.parts.origin, "{origin}");
        }
        if let Some(t) = &self.parts.tenant {
            out = out.replace(t.as_str(), "{tenant}");
        }
        out
    }

    fn value(&self, member: Option<&str>, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                if let Some(kind @ ("refresh_token" | "device_code")) = member {
                    return json!({ "$azad_secret": kind });
                }
                if let Some(template) = self.token_template(s) {
                    return template;
                }
                match member {
                    Some("access_token" | "id_token") => {
                        json!({ "$azad_secret": member.unwrap_or_default() })
                    }
                    Some("user_code") => Value::String("{user_code}".into()),
                    Some("expires_on" | "not_before") => {
                        epoch_template(s.parse::<i64>().ok(), true).unwrap_or_else(|| Value::String(self.template(s)))
                    }
                    _ => Value::String(self.template(s)),
                }
            }
            Value::Number(n) if matches!(member, Some("expires_on" | "not_before")) => {
                epoch_template(n.as_i64(), false).unwrap_or_else(|| v.clone())
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(None, i)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.value(Some(k.as_str()), v))).collect())
            }
            other => other.clone(),
        }
    }

    /// A JWT's template: its header and claims (templated, without the per-token values), its
    /// lifetime; never its signature.
    fn token_template(&self, s: &str) -> Option<Value> {
        let mut it = s.split('.');
        let (h, p, sig) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || sig.is_empty() {
            return None;
        }
        let decode = |seg: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(seg.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(m) => Some(m),
                _ => None,
            }
        };
        let mut header = decode(h)?;
        header.get("alg")?;
        let claims = decode(p)?;
        for member in ["kid", "x5t"] {
            if header.contains_key(member) {
                header.insert(member.into(), Value::String("{replay_kid}".into()));
            }
        }
        header.remove("x5c");
        let int = |name: &str| claims.get(name).and_then(Value::as_i64);
        let iat = int("iat").or(int("nbf"));
        let lifetime = match (iat, int("exp")) {
            (Some(i), Some(e)) => e - i,
            _ => 3600,
        };
        let not_before = match (iat, int("nbf")) {
            (Some(i), Some(n)) => n - i,
            _ => 0,
        };
        let mut regenerate: Vec<&str> = VOLATILE_CLAIMS.iter().copied().filter(|c| claims.contains_key(*c)).collect();
        regenerate.sort_unstable();
        // An ID token's `nonce` is the sign-in's own: replay writes the one the client expects.
        let kept: Map<String, Value> = claims
            .iter()
            .filter(|(k, _)| !VOLATILE_CLAIMS.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = if k == "nonce" { Value::String("{nonce}".into()) } else { self.value(None, v) };
                (k.clone(), v)
            })
            .collect();
        Some(json!({ "$azad_token": {
            "header": Value::Object(header.iter().map(|(k, v)| (k.clone(), self.value(None, v))).collect()),
            "claims": Value::Object(kept),
            "lifetime_seconds": lifetime,
            "not_before_seconds": not_before,
            "regenerated_claims": regenerate,
        }}))
    }
}

/// An absolute time (Unix seconds) as an offset from now.
fn epoch_template(value: Option<i64>, as_string: bool) -> Option<Value> {
    let v = value.filter(|v| *v > 1_000_000_000)?;
    Some(json!({ "$azad_epoch": { "offset_seconds": v - now(), "string": as_string } }))
}

/// Recording: the response with every secret removed, tokens as templates, the origin and
/// tenant as placeholders.
fn redact_response(asked: &Asked, parts: &RequestParts, response: &HttpResponse) -> Recorded {
    let mut redactor = Redactor { parts, volatile: Vec::new() };
    let parsed: Option<Value> = serde_json::from_slice(response.body()).ok();
    if let Some(Value::Object(map)) = &parsed {
        for (member, placeholder) in [
            ("user_code", "{user_code}"),
            ("trace_id", "{trace_id}"),
            ("correlation_id", "{correlation_id}"),
            ("timestamp", "{timestamp}"),
        ] {
            if let Some(Value::String(v)) = map.get(member) {
                redactor.volatile.push((v.clone(), placeholder));
            }
        }
    }
    let headers = kept_headers(response.headers()).into_iter().map(|(k, v)| (k, redactor.template(&v))).collect();
    let (json, text) = match parsed {
        Some(Value::Object(map)) if asked.flow == "jwks" && response.status().is_success() => {
            let issuer = map
                .get("keys")
                .and_then(Value::as_array)
                .and_then(|keys| keys.iter().find_map(|k| k.get("issuer").and_then(Value::as_str)))
                .map(|i| Value::String(redactor.template(i)));
            (Some(json!({ "$azad_jwks": { "issuer": issuer } })), None)
        }
        Some(Value::Object(mut map)) => {
            for member in VOLATILE_ERROR_MEMBERS {
                if map.contains_key(member) {
                    map.insert(member.into(), Value::String(format!("{{{member}}}")));
                }
            }
            (Some(redactor.value(None, &Value::Object(map))), None)
        }
        Some(other) => (Some(redactor.value(None, &other)), None),
        None if response.body().is_empty() => (None, None),
        None => (None, Some(redactor.template(&String::from_utf8_lossy(response.body())))),
    };
    Recorded { status: response.status().as_u16(), headers, json, text }
}

fn kept_headers(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    ["retry-after", "www-authenticate", "content-type"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| ((*h).to_owned(), v.to_owned())))
        .collect()
}

/// What a replayed answer is instantiated with.
struct Minter<'a> {
    parts: &'a RequestParts,
    /// The sign-in's `nonce`, for ID tokens (empty when the request expects none).
    nonce: String,
    key: &'static ReplayKey,
    now: i64,
    user_code: String,
    trace_id: String,
    correlation_id: String,
    timestamp: String,
}

impl Minter<'_> {
    fn string(&self, s: &str) -> String {
        if !s.contains('{') {
            return s.to_owned();
        }
        let mut out = s.replace("{origin}", &self.parts.origin).replace("{replay_kid}", &self.key.kid);
        if let Some(t) = &self.parts.tenant {
            out = out.replace("{tenant}", t);
        }
        out.replace("{nonce}", &self.nonce)
            .replace("{user_code}", &self.user_code)
            .replace("{trace_id}", &self.trace_id)
            .replace("{correlation_id}", &self.correlation_id)
            .replace("{timestamp}", &self.timestamp)
    }

    fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.string(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) if map.len() == 1 => {
                if let Some(t) = map.get("$azad_token") {
                    return Value::String(self.mint(t));
                }
                if let Some(kind) = map.get("$azad_secret") {
                    let kind = kind.as_str().unwrap_or("secret");
                    return Value::String(format!("azad-replay-{kind}.{}", URL_SAFE_NO_PAD.encode(random::<32>())));
                }
                if let Some(e) = map.get("$azad_epoch") {
                    let at = self.now + e["offset_seconds"].as_i64().unwrap_or(0);
                    return if e["string"].as_bool().unwrap_or(false) {
                        Value::String(at.to_string())
                    } else {
                        at.into()
                    };
                }
                if let Some(j) = map.get("$azad_jwks") {
                    let mut key = self.key.jwk.clone();
                    if let Some(issuer) = j.get("issuer").and_then(Value::as_str) {
                        key["issuer"] = Value::String(self.string(issuer));
                    }
                    return json!({ "keys": [key] });
                }
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.value(v))).collect())
            }
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.value(v))).collect()),
            other => other.clone(),
        }
    }

    /// A fresh token from a template, signed by the replay key.
    fn mint(&self, template: &Value) -> String {
        let mut header = match self.value(&template["header"]) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(SigningAlgorithm::from_name)
            .unwrap_or(SigningAlgorithm::RS256);
        header.insert("alg".into(), alg.as_str().into());
        header.insert("kid".into(), self.key.kid.clone().into());
        let mut claims = match self.value(&template["claims"]) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let lifetime = template["lifetime_seconds"].as_i64().unwrap_or(3600);
        let not_before = template["not_before_seconds"].as_i64().unwrap_or(0);
        let regenerate: Vec<&str> = template["regenerated_claims"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        claims.insert("iat".into(), self.now.into());
        claims.insert("nbf".into(), (self.now + not_before).into());
        claims.insert("exp".into(), (self.now + lifetime).into());
        for id in ["uti", "jti", "aio", "rh"] {
            if regenerate.contains(&id) {
                claims.insert(id.into(), URL_SAFE_NO_PAD.encode(random::<16>()).into());
            }
        }
        if !regenerate.contains(&"uti") && !regenerate.contains(&"jti") {
            claims.insert("jti".into(), URL_SAFE_NO_PAD.encode(random::<16>()).into());
        }
        claims.insert(REPLAY_CLAIM.into(), true.into());
        let mut token = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(Value::Object(claims).to_string(), &mut token);
        let signature = self.key.sign(alg, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }
}

/// Replay: the recorded answer with fresh tokens, secrets, ids and times.
fn instantiate(recorded: &Recorded, parts: &RequestParts, request: &HttpRequest) -> HttpResponse {
    let now = now();
    let nonce = request.extensions().get::<crate::http::ExpectedNonce>().map(|n| n.0.clone()).unwrap_or_default();
    let correlation_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::authority::is_guid(v))
        .map_or_else(guid, str::to_owned);
    let minter = Minter {
        parts,
        nonce,
        key: replay_key(),
        now,
        user_code: random::<8>().iter().map(|b| char::from(b'A' + b % 26)).collect(),
        trace_id: guid(),
        correlation_id,
        timestamp: {
            // Entra's shape: `2026-11-29 18:04:05Z`.
            let t = crate::client::expiry::format_date_time(now, false);
            format!("{} {}Z", t.get(..10).unwrap_or_default(), t.get(11..19).unwrap_or_default())
        },
    };
    let mut builder = http::Response::builder().status(recorded.status);
    for (k, v) in &recorded.headers {
        builder = builder.header(k.as_str(), minter.string(v));
    }
    let body = match (&recorded.json, &recorded.text) {
        (Some(json), _) => minter.value(json).to_string().into_bytes(),
        (None, Some(text)) => minter.string(text).into_bytes(),
        (None, None) => Vec::new(),
    };
    builder.body(body).unwrap_or_else(|_| http::Response::new(Vec::new()))
}

/// The process's replay key: RSA 2048, generated on first use, never written anywhere.
struct ReplayKey {
    kid: String,
    pair: aws_lc_rs::rsa::KeyPair,
    jwk: Value,
}

fn replay_key() -> &'static ReplayKey {
    static KEY: OnceLock<ReplayKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key generation");
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..20]);
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(&n),
            "e": URL_SAFE_NO_PAD.encode(&e),
        });
        ReplayKey { kid, pair, jwk }
    })
}

impl ReplayKey {
    fn sign(&self, alg: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
        use aws_lc_rs::signature as sig;
        let padding: &'static dyn sig::RsaEncoding = match alg {
            SigningAlgorithm::RS256 => &sig::RSA_PKCS1_SHA256,
            SigningAlgorithm::RS384 => &sig::RSA_PKCS1_SHA384,
            SigningAlgorithm::RS512 => &sig::RSA_PKCS1_SHA512,
            SigningAlgorithm::PS256 => &sig::RSA_PSS_SHA256,
            SigningAlgorithm::PS384 => &sig::RSA_PSS_SHA384,
            SigningAlgorithm::PS512 => &sig::RSA_PSS_SHA512,
        };
        let mut out = vec![0u8; self.pair.public_modulus_len()];
        self.pair.sign(padding, &aws_lc_rs::rand::SystemRandom::new(), message, &mut out).expect("RSA signing");
        out
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b
}

fn guid() -> String {
    uuid::Builder::from_random_bytes(random::<16>()).into_uuid().to_string()
}

fn now() -> i64 {
    crate::clock::now_secs()
}

/// Recording: executes for real, then stores the interaction.
struct Recorder {
    inner: Arc<dyn HttpClient>,
    sim: Simulation,
}

impl HttpClient for Recorder {
    fn send(&self, request: HttpRequest) -> HttpFuture<'_> {
        Box::pin(async move {
            let (asked, parts) = identify(&request);
            let response = self.inner.send(request).await?;
            if let Err(e) = self.sim.record(asked, &parts, &response) {
                tracing::error!(target: "azad::simulation", error = %e, "interaction not recorded");
            }
            Ok(response)
        })
    }
}

/// Replay: answers from the cassette, never the network.
struct Replayer {
    sim: Simulation,
}

impl HttpClient for Replayer {
    fn send(&self, request: HttpRequest) -> HttpFuture<'_> {
        let result =
            self.sim.replay(&request).map_err(|e| HttpError::new(HttpErrorKind::Simulation, Some(Box::new(e))));
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1zdG9yZWQ",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    const TENANT: &str = "7d0b4b8f-3a42-4c7e-9a8b-5f6a2c1d0e9f";

    fn token_request(scope: &str) -> HttpRequest {
        let body = format!(
            "grant_type=client_credentials&client_id=app&client_secret=SECRET-VALUE&scope={}",
            url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
        );
        http::Request::post(format!("http://127.0.0.1:4444/{TENANT}/oauth2/v2.0/token"))
            .body(body.into_bytes())
            .unwrap()
    }

    fn token_response(now: i64) -> HttpResponse {
        let access = jwt(
            &json!({"typ": "JWT", "alg": "RS256", "kid": "real-kid", "x5t": "real-kid"}),
            &json!({
                "aud": "api://x", "iss": format!("http://127.0.0.1:4444/{TENANT}/v2.0"), "tid": TENANT,
                "iat": now, "nbf": now, "exp": now + 3599, "uti": "abc", "aio": "opaque", "roles": ["R"],
            }),
        );
        let body =
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": access, "refresh_token": "RT-SECRET"});
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("date", "Sun, 29 Nov 2026 21:00:00 GMT")
            .body(body.to_string().into_bytes())
            .unwrap()
    }

    #[test]
    fn requests_are_identified_without_their_secrets() {
        let (asked, parts) = identify(&token_request("b a a"));
        assert_eq!(asked.flow, "client_credentials");
        assert_eq!(asked.url, "{origin}/{tenant}/oauth2/v2.0/token");
        assert_eq!(asked.client_id.as_deref(), Some("app"));
        assert_eq!(asked.scopes, ["a", "b"]);
        assert_eq!(parts.origin, "http://127.0.0.1:4444");
        assert_eq!(parts.tenant.as_deref(), Some(TENANT));
        assert!(!serde_json::to_string(&asked).unwrap().contains("SECRET"));
        let imds = http::Request::get("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=mi")
            .header("Metadata", "true")
            .body(Vec::new())
            .unwrap();
        let (asked, _) = identify(&imds);
        assert_eq!(
            (asked.flow.as_str(), asked.resource.as_deref(), asked.client_id.as_deref()),
            ("managed_identity", Some("https://vault.azure.net"), Some("mi"))
        );
        assert_eq!(asked.url, "{origin}/metadata/identity/oauth2/token");
        // App Service: its secret header is never part of the identity of the request.
        let app_service = http::Request::get("http://127.0.0.1:4444/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net&principal_id=p1")
            .header("X-IDENTITY-HEADER", "HEADER-SECRET")
            .body(Vec::new())
            .unwrap();
        let (asked, _) = identify(&app_service);
        assert_eq!(
            (asked.flow.as_str(), asked.client_id.as_deref(), asked.url.as_str()),
            ("managed_identity", Some("principal_id=p1"), "{origin}/msi/token")
        );
        assert!(!serde_json::to_string(&asked).unwrap().contains("HEADER-SECRET"));
        let expiry = http::Response::builder()
            .status(200)
            .body(
                json!({"access_token": "opaque-mi-token", "expires_on": (now() + 3600).to_string(), "resource": "https://vault.azure.net"})
                    .to_string()
                    .into_bytes(),
            )
            .unwrap();
        let recorded = redact_response(&asked, &RequestParts { origin: String::new(), tenant: None }, &expiry);
        let text = serde_json::to_string(&recorded).unwrap();
        assert!(!text.contains("opaque-mi-token") && text.contains("$azad_epoch"), "{text}");
    }

    #[test]
    fn tokens_become_templates_and_replay_as_fresh_signed_tokens() {
        let recorded_at = now() - 86_400;
        let (asked, parts) = identify(&token_request("api://x/.default"));
        let recorded = redact_response(&asked, &parts, &token_response(recorded_at));
        let text = serde_json::to_string(&recorded).unwrap();
        for secret in
            ["RT-SECRET", "c2lnbmF0dXJl", "real-kid", "eyJ", "127.0.0.1:4444", TENANT, "\"abc\"", "opaque", "date"]
        {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(recorded.headers.len(), 1, "only the headers that matter");

        let (_, parts) = identify(
            &http::Request::post(format!("http://127.0.0.1:5555/{TENANT}/oauth2/v2.0/token")).body(Vec::new()).unwrap(),
        );
        let target =
            http::Request::post(format!("http://127.0.0.1:5555/{TENANT}/oauth2/v2.0/token")).body(Vec::new()).unwrap();
        let replayed = instantiate(&recorded, &parts, &target);
        let body: Value = serde_json::from_slice(replayed.body()).unwrap();
        assert!(body["refresh_token"].as_str().unwrap().starts_with("azad-replay-refresh_token."));
        let token = body["access_token"].as_str().unwrap();
        let key = replay_key();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["api://x"]);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
            key.jwk["n"].as_str().unwrap(),
            key.jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation).unwrap();
        let claims = data.claims;
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(claims[REPLAY_CLAIM], true);
        assert_eq!(claims["iss"], format!("http://127.0.0.1:5555/{TENANT}/v2.0"));
        assert_eq!(claims["roles"], json!(["R"]));
        let iat = claims["iat"].as_i64().unwrap();
        assert!(iat >= recorded_at + 86_000, "iat is now, not when recorded");
        assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3599, "the recorded lifetime");
        assert_ne!(claims["uti"], "abc");
        assert_ne!(claims["aio"], "opaque");
        let second = instantiate(&recorded, &parts, &target);
        let second: Value = serde_json::from_slice(second.body()).unwrap();
        assert_ne!(second["access_token"], body["access_token"], "each replay mints a new token");
    }

    #[test]
    fn disabled_adds_nothing_to_the_client() {
        let custom: Arc<dyn HttpClient> = Arc::new(|_req: HttpRequest| async move { Ok(token_response(now())) });
        let config = crate::AzureAdConfig::builder()
            .tenant_id(TENANT)
            .client_id("app")
            .http_client(custom.clone())
            .simulation(SimulationMode::Disabled, "/nonexistent/never-opened.json")
            .build()
            .unwrap();
        assert!(config.simulation().is_none());
        assert_eq!(config.simulation_mode(), SimulationMode::Disabled);
        assert!(Arc::ptr_eq(&config.http_client().unwrap(), &custom), "the very same client, unwrapped");
    }

    #[tokio::test]
    async fn cassettes_are_stable_sorted_and_deduplicated() {
        let dir = std::env::temp_dir().join(format!("azad-sim-unit-{}", std::process::id()));
        let inner: Arc<dyn HttpClient> = Arc::new(|_req: HttpRequest| async move { Ok(token_response(now())) });
        let mut texts = Vec::new();
        for (i, order) in [["b/.default", "a/.default"], ["a/.default", "b/.default"]].iter().enumerate() {
            let path = dir.join(format!("c{i}.json"));
            let sim = Simulation::open(SimulationMode::Recording, &path).unwrap();
            sim.register_client("app").unwrap();
            let client = sim.wrap(Some(inner.clone())).unwrap();
            for scope in order.iter().chain(order.iter()) {
                client.send(token_request(scope)).await.unwrap();
            }
            assert_eq!(sim.interactions(), 2, "identical answers are stored once");
            texts.push(std::fs::read_to_string(&path).unwrap());
        }
        assert_eq!(texts[0], texts[1], "the file does not depend on the order of the calls");
        let a = texts[0].find("a/.default").unwrap();
        assert!(a < texts[0].find("b/.default").unwrap());

        // Replay: the recorded client id only; a miss names both sides.
        let replay = Simulation::open(SimulationMode::Replay, dir.join("c0.json")).unwrap();
        assert!(matches!(replay.register_client("other"), Err(SimulationError::RecordedForAnotherClient { .. })));
        replay.register_client("app").unwrap();
        let client = replay.wrap(None).unwrap();
        let ok = client.send(token_request("a/.default")).await.unwrap();
        assert_eq!(ok.status(), 200);
        let miss = client.send(token_request("c/.default")).await.unwrap_err();
        assert_eq!(miss.kind(), HttpErrorKind::Simulation);
        let e = std::error::Error::source(&miss).unwrap().to_string();
        assert!(e.contains("scopes [c/.default]") && e.contains("scopes [a/.default]"), "{e}");
        assert!(matches!(
            Simulation::open(SimulationMode::Replay, dir.join("none.json")),
            Err(SimulationError::CassetteMissing { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
