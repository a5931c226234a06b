//! Fault injection and request counters: which [`Endpoint`] is asked, which [`Fault`] it
//! answers with, and the faulty answers themselves. The control route that sets faults from
//! another process is in [`router`](super::router).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

use super::http::{DevResponse, json_response, oauth_error, oauth_error_body};

/// An endpoint of the dev tenant, for request counters and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/{tenant}/v2.0/.well-known/openid-configuration`.
    OpenIdConfiguration,
    /// `/{tenant}/.well-known/openid-configuration` (v1.0).
    OpenIdConfigurationV1,
    /// `/{tenant}/discovery/v2.0/keys` and `/{tenant}/discovery/keys`.
    Jwks,
    /// The same key documents asked for with `?appid={client id}`: the tenant's keys plus the
    /// application's own signing keys.
    AppSpecificJwks,
    /// `/{tenant}/oauth2/v2.0/token`.
    Token,
    /// `/{tenant}/oauth2/v2.0/authorize`.
    Authorize,
    /// `/{tenant}/oauth2/v2.0/devicecode`.
    DeviceCode,
    /// The managed identity endpoint: IMDS shape (`/metadata/identity/oauth2/token`).
    ManagedIdentity,
    /// The managed identity endpoint: App Service shape (`/msi/token`).
    AppServiceIdentity,
    /// The Key Vault–shaped secrets endpoint (`/secrets/{name}`).
    Secrets,
    /// Microsoft Graph's membership functions: `POST /v1.0/me/checkMemberGroups`,
    /// `/v1.0/me/getMemberObjects` and their `/v1.0/users/{id}/…` forms.
    Graph,
    /// The emulated Kubernetes API server's `POST /apis/authentication.k8s.io/v1/tokenreviews`
    /// (see [`DevKubernetes`](super::DevKubernetes)).
    TokenReview,
}

/// A fault to inject on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status and an empty JSON object.
    Status(u16),
    /// Answer 200 with this body (garbage, a wrong document...).
    Body(String),
    /// Answer 200 with a body of this many bytes.
    Oversized(usize),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Answer 429 with `Retry-After: {retry_after}`.
    TooManyRequests {
        /// Seconds, sent as `Retry-After`.
        retry_after: u64,
    },
    /// Answer 503 with `Retry-After: {retry_after}`.
    Unavailable {
        /// Seconds, sent as `Retry-After`.
        retry_after: u64,
    },
    /// Token endpoint: answer 400 `invalid_grant`.
    InvalidGrant,
    /// Token endpoint: answer 400 `interaction_required` with this claims challenge (JSON).
    InteractionRequired {
        /// The claims challenge (JSON text).
        claims: String,
    },
}

#[derive(Debug)]
struct FaultSlot {
    fault: Fault,
    remaining: Option<usize>,
}

/// Request counters and injected faults, per endpoint.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    counters: Mutex<HashMap<Endpoint, usize>>,
    slots: Mutex<HashMap<Endpoint, FaultSlot>>,
}

impl Faults {
    /// Counts one request to `endpoint`.
    pub(crate) fn count(&self, endpoint: Endpoint) {
        *self.counters.lock().unwrap_or_else(|e| e.into_inner()).entry(endpoint).or_default() += 1;
    }

    /// How many requests `endpoint` has served.
    pub(crate) fn requests(&self, endpoint: Endpoint) -> usize {
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).get(&endpoint).copied().unwrap_or(0)
    }

    /// Resets every counter.
    pub(crate) fn reset_counters(&self) {
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The fault the next request to `endpoint` gets, if any (a limited one counts down).
    pub(crate) fn take(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = faults.get_mut(&endpoint)?;
        let fault = slot.fault.clone();
        if let Some(n) = slot.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                faults.remove(&endpoint);
            }
        }
        Some(fault)
    }

    /// Injects `fault` on `endpoint` for the next `times` requests, or until cleared (`None`).
    pub(crate) fn set(&self, endpoint: Endpoint, fault: Fault, times: Option<usize>) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).insert(endpoint, FaultSlot { fault, remaining: times });
    }

    /// Removes the fault of `endpoint`.
    pub(crate) fn clear(&self, endpoint: Endpoint) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(&endpoint);
    }
}

/// Returns the faulty response, or `None` to continue normally (after a delay).
pub(crate) async fn apply_fault(fault: Fault) -> Option<DevResponse> {
    let with_retry_after = |status: StatusCode, secs: u64| {
        let mut r = json_response(status, &json!({"error": "temporarily_unavailable"}));
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        r
    };
    Some(match fault {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::Status(code) => {
            json_response(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &json!({}))
        }
        Fault::Body(body) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts"),
        Fault::Oversized(n) => {
            let mut body = String::with_capacity(n + 16);
            body.push_str("{\"keys\":[],\"pad\":\"");
            body.extend(std::iter::repeat_n('x', n));
            body.push_str("\"}");
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("static response parts")
        }
        Fault::TooManyRequests { retry_after } => with_retry_after(StatusCode::TOO_MANY_REQUESTS, retry_after),
        Fault::Unavailable { retry_after } => with_retry_after(StatusCode::SERVICE_UNAVAILABLE, retry_after),
        Fault::InvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked.",
        ),
        Fault::InteractionRequired { claims } => {
            let mut body = oauth_error_body(
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
            );
            body["claims"] = claims.into();
            json_response(StatusCode::BAD_REQUEST, &body)
        }
    })
}
