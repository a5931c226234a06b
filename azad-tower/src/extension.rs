//! The one contract between the [`AzureAdAuth`](crate::AzureAdAuth) layer and everything that
//! reads its result: [`Authentication`], one value in the request extensions.
//!
//! The layer inserts exactly one `Authentication` into every request it lets through: the
//! validated claims and the raw token, or "anonymous" (an [optional](crate::AzureAdAuth::optional)
//! layer and no token), together with what the layer was configured with (the token client for
//! downstream calls, the group resolver, whether answers are verbose). Every consumer reads it
//! through [`Authentication::of`]: the azad-axum extractors and attribute guards, the
//! route-group layers, [`authorize`](crate::authorize), the gRPC method checks and the tonic
//! helpers ([`RequestExt`](crate::RequestExt)). A request without it did not pass the layer, and
//! every consumer fails closed with [`AuthRejection::MissingLayer`].

use std::fmt;
use std::sync::Arc;

use azad_core::groups::GroupResolver;
use azad_core::{BearerToken, Claims, TokenClient};

use crate::rejection::AuthRejection;

/// Inserts one configured value (see [`AzureAdAuth::with_extension`](crate::AzureAdAuth::with_extension)).
pub(crate) type Inserter = Arc<dyn Fn(&mut http::Extensions) + Send + Sync>;

/// What a layer shares with every request it passes, set when the layer is built.
#[derive(Clone, Default)]
pub(crate) struct LayerContext {
    pub(crate) token_client: Option<TokenClient>,
    pub(crate) group_resolver: Option<GroupResolver>,
    pub(crate) verbose: bool,
    pub(crate) inserters: Vec<Inserter>,
}

impl fmt::Debug for LayerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerContext")
            .field("token_client", &self.token_client)
            .field("group_resolver", &self.group_resolver.is_some())
            .field("verbose", &self.verbose)
            .field("extensions", &self.inserters.len())
            .finish()
    }
}

#[derive(Clone)]
enum Caller {
    Authenticated { claims: Arc<Claims>, token: BearerToken },
    Anonymous,
}

/// What the [`AzureAdAuth`](crate::AzureAdAuth) layer decided for a request: an authenticated
/// caller (validated claims and the raw token, redacted in `Debug`) or an anonymous one (an
/// [optional](crate::AzureAdAuth::optional) layer and no token at all), with the layer's
/// configuration (token client, group resolver, verbose answers).
///
/// The layer inserts one `Authentication` into the extensions of every request it passes;
/// read it with [`Authentication::of`]. Cheap to clone (reference counts).
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use azad_core::dev::DevTenant;
/// use azad_tower::{Authentication, AzureAdAuth};
/// use http::{Request, Response, header};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let tenant = DevTenant::start().await?;
/// let service = ServiceBuilder::new().layer(AzureAdAuth::new(tenant.config())).service_fn(|req: Request<String>| async move {
///     let claims = Authentication::of(req.extensions())?.require()?;
///     Ok::<_, azad_tower::AuthRejection>(Response::new(claims.name().unwrap_or_default().to_owned()))
/// });
/// let token = tenant.token().build();
/// let request = Request::get("/").header(header::AUTHORIZATION, format!("Bearer {token}")).body(String::new())?;
/// assert_eq!(service.oneshot(request).await?.body(), &tenant.users()[0].name);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Authentication {
    caller: Caller,
    context: Arc<LayerContext>,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Authentication");
        match &self.caller {
            Caller::Authenticated { claims, token } => d.field("claims", claims).field("token", token),
            Caller::Anonymous => d.field("anonymous", &true),
        };
        d.field("verbose", &self.context.verbose).finish_non_exhaustive()
    }
}

impl Authentication {
    /// An authenticated caller, as the layer inserts it (for tests of handlers and for
    /// middleware that authenticates by other means). No token client, no group resolver,
    /// terse answers.
    #[must_use]
    pub fn authenticated(claims: Arc<Claims>, token: BearerToken) -> Self {
        Self { caller: Caller::Authenticated { claims, token }, context: Arc::default() }
    }

    /// An anonymous caller, as an optional layer inserts it for a request without a token.
    #[must_use]
    pub fn anonymous() -> Self {
        Self { caller: Caller::Anonymous, context: Arc::default() }
    }

    pub(crate) fn with_context(claims: Arc<Claims>, token: BearerToken, context: Arc<LayerContext>) -> Self {
        Self { caller: Caller::Authenticated { claims, token }, context }
    }

    pub(crate) fn anonymous_with(context: Arc<LayerContext>) -> Self {
        Self { caller: Caller::Anonymous, context }
    }

    /// The layer's result in `extensions`: the one place that decides "did the layer run?".
    ///
    /// # Errors
    ///
    /// [`AuthRejection::MissingLayer`] (500; logged at ERROR with the fix) when no
    /// `AzureAdAuth` layer ran for this request: every consumer fails closed.
    pub fn of(extensions: &http::Extensions) -> Result<&Self, AuthRejection> {
        extensions.get::<Self>().ok_or_else(|| {
            tracing::error!(
                target: "azad::auth",
                "a route reads the caller's claims but no AzureAdAuth layer validated the request: add `.layer(AzureAdAuth::new(config))` in front of it"
            );
            AuthRejection::MissingLayer
        })
    }

    /// The validated claims of an authenticated caller.
    ///
    /// # Errors
    ///
    /// [`AuthRejection::MissingToken`] (401, `WWW-Authenticate: Bearer`) for an anonymous caller.
    pub fn require(&self) -> Result<&Arc<Claims>, AuthRejection> {
        self.claims().ok_or(AuthRejection::MissingToken)
    }

    /// The validated claims, or `None` for an anonymous caller.
    #[must_use]
    pub fn claims(&self) -> Option<&Arc<Claims>> {
        match &self.caller {
            Caller::Authenticated { claims, .. } => Some(claims),
            Caller::Anonymous => None,
        }
    }

    /// The raw access token (for on-behalf-of), or `None` for an anonymous caller.
    #[must_use]
    pub fn token(&self) -> Option<&BearerToken> {
        match &self.caller {
            Caller::Authenticated { token, .. } => Some(token),
            Caller::Anonymous => None,
        }
    }

    /// Whether an optional layer let this request through without a token.
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        matches!(self.caller, Caller::Anonymous)
    }

    /// The layer's token client for downstream calls
    /// ([`AzureAdAuth::with_token_client`](crate::AzureAdAuth::with_token_client)).
    #[must_use]
    pub fn token_client(&self) -> Option<&TokenClient> {
        self.context.token_client.as_ref()
    }

    /// The layer's group resolver
    /// ([`AzureAdAuth::with_group_resolver`](crate::AzureAdAuth::with_group_resolver)).
    #[must_use]
    pub fn group_resolver(&self) -> Option<&GroupResolver> {
        self.context.group_resolver.as_ref()
    }

    /// Whether answers carry `error_description` and descriptive messages: decided once, on the
    /// layer ([`AzureAdAuth::verbose`](crate::AzureAdAuth::verbose)), and followed by the
    /// extractors, the attribute guards, the gRPC checks and the downstream-call errors.
    #[must_use]
    pub fn is_verbose(&self) -> bool {
        self.context.verbose
    }

    /// Whether the answers for a request with these `extensions` are verbose: the layer's
    /// choice, terse without a layer.
    #[must_use]
    pub fn verbose_in(extensions: &http::Extensions) -> bool {
        extensions.get::<Self>().is_some_and(Self::is_verbose)
    }
}

/// Records the principal on the span and stores the one [`Authentication`] and the configured
/// extensions: the layer's only writes into a request.
pub(crate) fn insert_authenticated(
    extensions: &mut http::Extensions,
    claims: Arc<Claims>,
    token: BearerToken,
    context: &Arc<LayerContext>,
    span: &tracing::Span,
) {
    if !span.is_disabled() {
        span.record("tid", claims.tenant_id());
        span.record("oid", claims.object_id());
        span.record("azp", claims.client_app_id());
    }
    for insert in &context.inserters {
        insert(extensions);
    }
    extensions.insert(Authentication::with_context(claims, token, context.clone()));
}
