//! [`Rejection`]: the one rejection of the azad extractors and attribute guards, and the one
//! writer of azad-axum's answers ([`respond`]).

use axum_core::response::{IntoResponse, Response};
use azad_core::Challenge;
use azad_tower::{AuthRejection, Authentication};
use http::StatusCode;

/// Writes an answer: the [`Challenge`]'s status, `WWW-Authenticate` and `Retry-After`, and
/// `message` as a plain-text body. Every azad-axum answer goes through here.
pub(crate) fn respond(challenge: &Challenge, message: &'static str) -> Response {
    let mut response: Response = challenge.to_response();
    *response.body_mut() = axum_core::body::Body::from(message);
    response
}

/// Why an azad extractor ([`Claims`](crate::Claims), [`OnBehalfOf`](crate::OnBehalfOf),
/// [`AppToken`](crate::AppToken)) or an attribute guard refused a request: an
/// [`AuthRejection`], answered exactly as the [`AzureAdAuth`](crate::AzureAdAuth) layer would
/// answer it, terse or verbose as the layer decided
/// ([`AzureAdAuth::verbose`](crate::AzureAdAuth::verbose)):
///
/// - an anonymous request (optional layer): 401 `WWW-Authenticate: Bearer`;
/// - claims short of a requirement: 403 `insufficient_scope` with `scope`, or 401
///   `insufficient_claims` with a claims challenge for an authentication context;
/// - a groups overage Microsoft Graph cannot resolve: 503 with `Retry-After`;
/// - no `AzureAdAuth` layer in front of the route, or no token client for `OnBehalfOf` and
///   `AppToken`: 500, logged at ERROR with the fix (the route fails closed).
///
/// The body is [`AuthRejection::message`]: `Unauthenticated`, `Permission denied`... (the fixed
/// description when verbose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    rejection: AuthRejection,
    verbose: bool,
}

impl Rejection {
    /// A rejection answered terse or verbose.
    #[must_use]
    pub fn new(rejection: AuthRejection, verbose: bool) -> Self {
        Self { rejection, verbose }
    }

    /// A rejection of a request with these `extensions`, answered as the layer decided (terse
    /// without a layer).
    pub(crate) fn of(extensions: &http::Extensions, rejection: AuthRejection) -> Self {
        Self::new(rejection, Authentication::verbose_in(extensions))
    }

    /// Why the request was refused.
    #[must_use]
    pub fn rejection(&self) -> &AuthRejection {
        &self.rejection
    }

    /// Whether the answer carries `error_description` and the descriptive body.
    #[must_use]
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.rejection.status()
    }

    /// The response body.
    #[must_use]
    pub fn body_text(&self) -> &'static str {
        self.rejection.message(self.verbose)
    }

    /// The [`AuthRejection`].
    #[must_use]
    pub fn into_inner(self) -> AuthRejection {
        self.rejection
    }
}

impl From<AuthRejection> for Rejection {
    /// A terse rejection.
    fn from(rejection: AuthRejection) -> Self {
        Self::new(rejection, false)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.rejection.description())
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "azad::rejection",
            tracing::Level::TRACE,
            status = self.status().as_u16(),
            body = self.body_text(),
            "rejecting request",
        );
        respond(&self.rejection.challenge(self.verbose), self.body_text())
    }
}
