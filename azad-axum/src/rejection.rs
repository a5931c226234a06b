//! Rejections of the azad extractors: types with a fixed status and body, like axum's.

use axum_core::response::{IntoResponse, Response};
use azad_tower::{AuthRejection, Protocol};
use http::StatusCode;

macro_rules! log_rejection {
    ($rejection:expr) => {
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "azad::rejection",
            tracing::Level::TRACE,
            status = $rejection.status().as_u16(),
            body = $rejection.body_text(),
            rejection_type = std::any::type_name::<Self>(),
            "rejecting request",
        );
    };
}

macro_rules! define_rejection {
    (
        #[status = $status:ident]
        #[body = $body:expr]
        $(#[$m:meta])*
        pub struct $name:ident;
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name;

        impl $name {
            /// The response status.
            #[must_use]
            pub fn status(&self) -> StatusCode {
                StatusCode::$status
            }

            /// The response body.
            #[must_use]
            pub fn body_text(&self) -> String {
                $body.into()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($body)
            }
        }

        impl std::error::Error for $name {}
    };
}

define_rejection! {
    #[status = INTERNAL_SERVER_ERROR]
    #[body = "Claims not found in the request extensions: add the `azad_axum::AzureAdAuth` layer (`.layer(AzureAdAuth::new(config))`) in front of this route"]
    /// The `AzureAdAuth` layer did not run for this request: the route is misconfigured, and
    /// the extractor fails closed with a 500 that names the layer to add.
    pub struct MissingAuthLayer;
}

impl IntoResponse for MissingAuthLayer {
    fn into_response(self) -> Response {
        log_rejection!(self);
        tracing::error!(target: "azad::rejection", "{}", self.body_text());
        (self.status(), self.body_text()).into_response()
    }
}

define_rejection! {
    #[status = UNAUTHORIZED]
    #[body = "Authentication required"]
    /// The request passed an optional `AzureAdAuth` layer without a token, but the handler
    /// requires claims: 401 with `WWW-Authenticate: Bearer`.
    pub struct Unauthenticated;
}

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        log_rejection!(self);
        let mut response = (self.status(), self.body_text()).into_response();
        azad_core::Challenge::new(self.status()).apply_to(response.headers_mut());
        response
    }
}

/// Rejection of the [`Claims`](crate::Claims) extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsRejection {
    /// No `AzureAdAuth` layer ran (500).
    MissingAuthLayer(MissingAuthLayer),
    /// An optional layer let an anonymous request through (401).
    Unauthenticated(Unauthenticated),
}

impl ClaimsRejection {
    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingAuthLayer(r) => r.status(),
            Self::Unauthenticated(r) => r.status(),
        }
    }

    /// The response body.
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::MissingAuthLayer(r) => r.body_text(),
            Self::Unauthenticated(r) => r.body_text(),
        }
    }
}

impl From<MissingAuthLayer> for ClaimsRejection {
    fn from(r: MissingAuthLayer) -> Self {
        Self::MissingAuthLayer(r)
    }
}

impl From<Unauthenticated> for ClaimsRejection {
    fn from(r: Unauthenticated) -> Self {
        Self::Unauthenticated(r)
    }
}

impl std::fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingAuthLayer(r) => r.fmt(f),
            Self::Unauthenticated(r) => r.fmt(f),
        }
    }
}

impl std::error::Error for ClaimsRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The leaves carry no source of their own: forward theirs (none) rather than the leaf,
        // so a printed chain never repeats the same text.
        None
    }
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingAuthLayer(r) => r.into_response(),
            Self::Unauthenticated(r) => r.into_response(),
        }
    }
}

/// Rejection of the guard that `#[require_scope]`, `#[require_role]` and
/// `#[require_scope_or_app_permission]` add: 403 `insufficient_scope` with the required scopes,
/// 401 for an anonymous request, 500 when the `AzureAdAuth` layer is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRejection(pub AuthRejection);

impl AuthorizationRejection {
    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    /// The response body.
    #[must_use]
    pub fn body_text(&self) -> String {
        match &self.0 {
            AuthRejection::MissingLayer => MissingAuthLayer.body_text(),
            other => other.description().to_owned(),
        }
    }
}

impl std::fmt::Display for AuthorizationRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body_text())
    }
}

impl std::error::Error for AuthorizationRejection {}

impl IntoResponse for AuthorizationRejection {
    fn into_response(self) -> Response {
        log_rejection!(self);
        let mut response: Response = self.0.to_response(Protocol::Http, false);
        *response.body_mut() = axum_core::body::Body::from(self.body_text());
        response
    }
}
