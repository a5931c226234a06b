//! [`AzureAdAuth`]: the layer that validates bearer tokens in front of any tower service.

use std::fmt;
use std::sync::Arc;

use azad_core::{AzureAdConfig, TokenValidator};
use tower_layer::Layer;

use crate::on_error::{DefaultOnAuthError, VerboseOnAuthError};
use crate::service::AzureAdAuthService;

pub(crate) type Inserter = Arc<dyn Fn(&mut http::Extensions) + Send + Sync>;

/// A layer that requires a valid Entra ID access token on every request.
///
/// - No credentials: 401 `WWW-Authenticate: Bearer`.
/// - Malformed `Authorization` (two headers, bad syntax, token in the query): 400 `invalid_request`.
/// - Refused token: 401 `invalid_token` (with `error_description` only in verbose mode).
/// - No signing keys could be loaded: 503 with `Retry-After`.
/// - gRPC requests get `grpc-status` 16 (or 14) instead, `WWW-Authenticate` kept.
///
/// On success the claims (`Arc<azad_core::Claims>`) and the raw token
/// ([`BearerToken`](azad_core::BearerToken), redacted) are inserted into the request extensions.
///
/// See the [crate docs](crate) for an example.
#[must_use]
pub struct AzureAdAuth<E = DefaultOnAuthError> {
    pub(crate) validator: TokenValidator,
    pub(crate) on_error: E,
    pub(crate) optional: bool,
    pub(crate) extensions: Vec<Inserter>,
}

impl<E: Clone> Clone for AzureAdAuth<E> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
            on_error: self.on_error.clone(),
            optional: self.optional,
            extensions: self.extensions.clone(),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for AzureAdAuth<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdAuth")
            .field("validator", &self.validator)
            .field("on_error", &self.on_error)
            .field("optional", &self.optional)
            .field("extensions", &self.extensions.len())
            .finish()
    }
}

impl AzureAdAuth {
    /// A layer validating tokens for `config`. Synchronous: signing keys are fetched on the
    /// first request (call [`warm_up`](Self::warm_up) to fail fast at start-up instead).
    pub fn new(config: AzureAdConfig) -> Self {
        Self::from_validator(TokenValidator::new(config))
    }

    /// A layer accepting tokens of several authorities: a workforce tenant, an Entra External
    /// ID or Azure AD B2C tenant, a second app registration... Each is `(name, configuration)`.
    /// Tokens are routed by their unverified issuer before any signature work; the name of the
    /// authority that accepted a token is [`Claims::authority`](azad_core::Claims::authority),
    /// and [`RequireAuthorityLayer`](crate::RequireAuthorityLayer) restricts routes to some of
    /// them. A token of no configured authority is 401 `invalid_token`, with no network call.
    /// See [`TokenValidator::authorities`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`](azad_core::ConfigError) for an empty list or a bad or repeated name.
    pub fn authorities<I, N>(authorities: I) -> Result<Self, azad_core::ConfigError>
    where
        I: IntoIterator<Item = (N, AzureAdConfig)>,
        N: AsRef<str>,
    {
        TokenValidator::authorities(authorities).map(Self::from_validator)
    }

    /// A layer sharing an existing validator (and its key and token caches).
    pub fn from_validator(validator: TokenValidator) -> Self {
        Self { validator, on_error: DefaultOnAuthError, optional: false, extensions: Vec::new() }
    }
}

impl<E> AzureAdAuth<E> {
    /// Shapes rejections with a custom hook (see [`OnAuthError`](crate::OnAuthError)).
    pub fn on_error<E2>(self, on_error: E2) -> AzureAdAuth<E2> {
        AzureAdAuth { validator: self.validator, on_error, optional: self.optional, extensions: self.extensions }
    }

    /// Adds `error_description` to rejections ([`VerboseOnAuthError`]).
    pub fn verbose(self) -> AzureAdAuth<VerboseOnAuthError> {
        self.on_error(VerboseOnAuthError)
    }

    /// Optional authentication: requests without any token pass through as anonymous (no
    /// claims in the extensions); requests with a token that fails validation are still refused.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Inserts a clone of `value` into the extensions of every authenticated request (for
    /// example the on-behalf-of client used by the `OnBehalfOf` extractor).
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.push(Arc::new(move |ext: &mut http::Extensions| {
            ext.insert(value.clone());
        }));
        self
    }

    /// Makes `client` available to the request handlers (the `OnBehalfOf` and `AppToken`
    /// extractors of azad-axum): this API's token client for downstream calls.
    pub fn with_token_client(self, client: azad_core::TokenClient) -> Self {
        self.with_extension(client)
    }

    /// Makes `resolver` available to group requirements (attributes, [`RequireLayer`](crate::RequireLayer)
    /// and the gRPC checks): it resolves the membership of tokens with a groups overage
    /// through Microsoft Graph. Without it such tokens are refused (500, logged once).
    pub fn with_group_resolver(self, resolver: azad_core::groups::GroupResolver) -> Self {
        self.with_extension(resolver)
    }

    /// The validator.
    pub fn validator(&self) -> &TokenValidator {
        &self.validator
    }

    /// Loads signing keys now, so a server can fail fast at start-up.
    ///
    /// # Errors
    ///
    /// The [`JwksError`](azad_core::JwksError) that prevented loading.
    pub async fn warm_up(&self) -> Result<(), azad_core::JwksError> {
        self.validator.warm_up().await
    }
}

impl<S, E: Clone> Layer<S> for AzureAdAuth<E> {
    type Service = AzureAdAuthService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        AzureAdAuthService::new(inner, self.clone())
    }
}
