//! [`AzureAdAuth`]: the layer that validates bearer tokens in front of any tower service.

use std::fmt;
use std::sync::Arc;

use azad_core::{AzureAdConfig, TokenValidator};
use tower_layer::Layer;

use crate::extension::LayerContext;
use crate::on_error::{DefaultOnAuthError, VerboseOnAuthError};
use crate::service::{AzureAdAuthService, Shared};

/// A layer that requires a valid Entra ID access token on every request.
///
/// - No credentials: 401 `WWW-Authenticate: Bearer`.
/// - Malformed `Authorization` (two headers, bad syntax, token in the query): 400 `invalid_request`.
/// - Refused token: 401 `invalid_token` (with `error_description` only in verbose mode).
/// - No signing keys could be loaded: 503 with `Retry-After`.
/// - gRPC requests get `grpc-status` 16 (or 14) instead, `WWW-Authenticate` kept.
///
/// On success one [`Authentication`](crate::Authentication) (the claims and the raw token,
/// redacted) is inserted into the request extensions; an [optional](Self::optional) layer
/// inserts an anonymous one for a request without a token. Read it with
/// [`Authentication::of`](crate::Authentication::of).
///
/// See the [crate docs](crate) for an example.
#[must_use]
pub struct AzureAdAuth<E = DefaultOnAuthError> {
    // Behind an `Arc`: `layer` (which `Handler::layer` calls for every request) hands the
    // service a reference count.
    shared: Arc<Shared>,
    on_error: E,
}

impl<E: Clone> Clone for AzureAdAuth<E> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), on_error: self.on_error.clone() }
    }
}

impl<E: fmt::Debug> fmt::Debug for AzureAdAuth<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdAuth")
            .field("validator", &self.shared.validator)
            .field("on_error", &self.on_error)
            .field("optional", &self.shared.optional)
            .field("context", &self.shared.context)
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
    /// and [`RequireAuthority`](crate::RequireAuthority) restricts routes to some of
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
        Self {
            shared: Arc::new(Shared { validator, optional: false, context: Arc::new(LayerContext::default()) }),
            on_error: DefaultOnAuthError,
        }
    }
}

impl<E> AzureAdAuth<E> {
    /// Shapes the layer's own rejections with a custom hook (see
    /// [`OnAuthError`](crate::OnAuthError)). Keeps the terse or verbose choice of
    /// [`verbose`](Self::verbose) for the answers given after the layer.
    pub fn on_error<E2>(self, on_error: E2) -> AzureAdAuth<E2> {
        AzureAdAuth { shared: self.shared, on_error }
    }

    /// Verbose answers, decided once for every answer about this layer's requests: the layer's
    /// own rejections ([`VerboseOnAuthError`]: `error_description` and a descriptive
    /// `grpc-message`), and those given after it by the azad-axum extractors and attribute
    /// guards, the gRPC method checks and the tonic helpers (read from
    /// [`Authentication::is_verbose`](crate::Authentication::is_verbose)). Descriptions never
    /// contain token content, but they tell a caller which check failed: enable for
    /// development or trusted clients.
    pub fn verbose(mut self) -> AzureAdAuth<VerboseOnAuthError> {
        self.context_mut().verbose = true;
        self.on_error(VerboseOnAuthError)
    }

    fn context_mut(&mut self) -> &mut LayerContext {
        Arc::make_mut(&mut Arc::make_mut(&mut self.shared).context)
    }

    /// Optional authentication: requests without any token pass through as anonymous (no
    /// claims in the extensions); requests with a token that fails validation are still refused.
    pub fn optional(mut self, optional: bool) -> Self {
        Arc::make_mut(&mut self.shared).optional = optional;
        self
    }

    /// Inserts a clone of `value` into the extensions of every authenticated request, for the
    /// application's own values. (The token client and the group resolver have their own
    /// setters and travel in the [`Authentication`](crate::Authentication).)
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.context_mut().inserters.push(Arc::new(move |ext: &mut http::Extensions| {
            ext.insert(value.clone());
        }));
        self
    }

    /// Makes `client` available to the request handlers (the `OnBehalfOf` and `AppToken`
    /// extractors of azad-axum, [`RequestExt`](crate::RequestExt) on tonic requests): this
    /// API's token client for downstream calls, read with
    /// [`Authentication::token_client`](crate::Authentication::token_client).
    pub fn with_token_client(mut self, client: azad_core::TokenClient) -> Self {
        self.context_mut().token_client = Some(client);
        self
    }

    /// Makes `resolver` available to group requirements (attributes, [`Require`](crate::Require)
    /// and the gRPC checks): it resolves the membership of tokens with a groups overage
    /// through Microsoft Graph. Without it such tokens are refused (500, logged once).
    pub fn with_group_resolver(mut self, resolver: azad_core::groups::GroupResolver) -> Self {
        self.context_mut().group_resolver = Some(resolver);
        self
    }

    /// The validator.
    pub fn validator(&self) -> &TokenValidator {
        &self.shared.validator
    }

    /// Loads signing keys now, so a server can fail fast at start-up.
    ///
    /// # Errors
    ///
    /// The [`JwksError`](azad_core::JwksError) that prevented loading.
    pub async fn warm_up(&self) -> Result<(), azad_core::JwksError> {
        self.shared.validator.warm_up().await
    }
}

impl<S, E: Clone> Layer<S> for AzureAdAuth<E> {
    type Service = AzureAdAuthService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        AzureAdAuthService::new(inner, self.shared.clone(), self.on_error.clone())
    }
}
