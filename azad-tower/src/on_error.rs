//! The customisation hook for rejections: a small trait, a terse default, a verbose variant,
//! and closures.
//!
//! # Example
//!
//! ```
//! use azad_tower::{AuthRejection, OnAuthError, Protocol};
//! use http::Response;
//!
//! // A JSON body on every rejection, keeping the standard status and headers.
//! let hook = |rejection: &AuthRejection, protocol: Protocol| -> Response<String> {
//!     let mut response = rejection.to_response::<String>(protocol, false);
//!     if protocol == Protocol::Http {
//!         *response.body_mut() = format!(r#"{{"error":"{}"}}"#, rejection.message(false));
//!     }
//!     response
//! };
//! let r = hook.on_error(&AuthRejection::MissingToken, Protocol::Http);
//! assert_eq!(r.status(), 401);
//! assert_eq!(r.body(), r#"{"error":"Unauthenticated"}"#);
//! ```

use http::Response;

use crate::rejection::{AuthRejection, Protocol};

/// Shapes the response of a refused request.
///
/// Implemented by [`DefaultOnAuthError`] (terse), [`VerboseOnAuthError`] (adds
/// `error_description`) and by closures `Fn(&AuthRejection, Protocol) -> Response<B>`.
///
/// The layer's service holds its hook by value and is cloned with it, as tower-http's services
/// hold theirs (axum clones a route's service for every request): keep a hook cheap to clone,
/// with any state it shares behind an `Arc`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot shape azad rejections into `Response<{B}>`",
    note = "use `DefaultOnAuthError`, `VerboseOnAuthError`, or a closure `Fn(&AuthRejection, Protocol) -> http::Response<B>`"
)]
pub trait OnAuthError<B> {
    /// Builds the response for `rejection`.
    fn on_error(&self, rejection: &AuthRejection, protocol: Protocol) -> Response<B>;
}

impl<B, F> OnAuthError<B> for F
where
    F: Fn(&AuthRejection, Protocol) -> Response<B>,
{
    fn on_error(&self, rejection: &AuthRejection, protocol: Protocol) -> Response<B> {
        self(rejection, protocol)
    }
}

/// Terse RFC 6750 responses: status and `WWW-Authenticate` with an `error` code, no
/// description, empty body. The default.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DefaultOnAuthError;

impl<B: Default> OnAuthError<B> for DefaultOnAuthError {
    fn on_error(&self, rejection: &AuthRejection, protocol: Protocol) -> Response<B> {
        rejection.to_response(protocol, false)
    }
}

/// Like [`DefaultOnAuthError`], plus a fixed `error_description` (and a descriptive
/// `grpc-message`). Descriptions never contain token content, but they tell a caller which
/// check failed: enable for development or trusted clients.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct VerboseOnAuthError;

impl<B: Default> OnAuthError<B> for VerboseOnAuthError {
    fn on_error(&self, rejection: &AuthRejection, protocol: Protocol) -> Response<B> {
        rejection.to_response(protocol, true)
    }
}
