//! Deny by default: a router that knows every route's authorisation declaration, refuses to
//! start with a route that declares none, and lists them all.
//!
//! axum's `Router` does not expose its routes, so [`AuthorizedRouter`] registers them itself:
//! handlers carrying an azad attribute are passed as [`handler!(name)`](crate::handler), which
//! reads the declaration the attribute emitted next to the handler; a group of routes is
//! declared by [`AuthorizedRouter::require`] (a [`Require`] applied as a route layer) or
//! [`AuthorizedRouter::allow_anonymous`]. [`AuthorizedRouter::into_router`] refuses a route
//! that has none of these, naming its method and path, and logs the table of every route with
//! its requirements ([`AuthorizedRouter::routes`] returns it).
//!
//! Public routes (`#[allow_anonymous]`) only work behind an [optional](crate::AzureAdAuth::optional)
//! `AzureAdAuth` layer; every other route then refuses anonymous requests itself (its
//! attribute's guard or its `Require`), so nothing is left open by accident.
//!
//! # Example
//!
//! ```
//! use azad_axum::routing::{AuthorizedRouter, get};
//! use azad_axum::{AzureAdAuth, Require, allow_anonymous, handler, require_scope};
//!
//! #[require_scope("Items.Read")]
//! async fn list_items() -> &'static str { "[]" }
//!
//! #[allow_anonymous]
//! async fn health() -> &'static str { "ok" }
//!
//! async fn undeclared() -> &'static str { "oops" }
//!
//! # async fn app(tenant: azad_axum::dev::DevTenant) {
//! let routes = AuthorizedRouter::new()
//!     .route("/items", get(handler!(list_items)))
//!     .route("/health", get(handler!(health)));
//! println!("{}", routes.routes()); // GET /items  scope(any: Items.Read) ...
//! let app: axum::Router = routes.into_router().expect("every route declares its authorisation")
//!     .layer(AzureAdAuth::new(tenant.config()).optional(true));
//!
//! let error = AuthorizedRouter::<()>::new().route("/legacy", get(undeclared)).into_router().unwrap_err();
//! assert_eq!(error.routes(), [("GET".to_owned(), "/legacy".to_owned())]);
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use azad_tower::{Declaration, OnAuthError, Require, Requirement};

/// A handler with the declaration its azad attributes emitted; made by
/// [`handler!(name)`](crate::handler).
#[derive(Debug, Clone)]
pub struct DeclaredHandler<H> {
    handler: H,
    declaration: Declaration,
}

impl<H> DeclaredHandler<H> {
    /// Pairs a handler with its declaration (what `handler!` expands to).
    pub fn new(handler: H, declaration: Declaration) -> Self {
        Self { handler, declaration }
    }

    /// The declaration.
    pub fn declaration(&self) -> Declaration {
        self.declaration
    }
}

/// Marks a plain axum handler for [`RouteHandler`] (no declaration of its own).
#[derive(Debug)]
#[non_exhaustive]
pub enum Plain {}

/// Marks a [`DeclaredHandler`] for [`RouteHandler`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Declared {}

/// A handler for the method functions ([`get`], [`post`]...): any axum handler (declared by a
/// route-group requirement, or refused at start-up), or a [`DeclaredHandler`].
pub trait RouteHandler<M, S>: Sized {
    /// The handler's extractor arguments.
    type Args: 'static;
    /// The axum handler.
    type Handler: Handler<Self::Args, S>;
    /// The handler and its declaration, if it carries one.
    fn split(self) -> (Self::Handler, Option<Declaration>);
}

impl<H, T, S> RouteHandler<(Plain, T), S> for H
where
    H: Handler<T, S>,
    T: 'static,
{
    type Args = T;
    type Handler = H;

    fn split(self) -> (H, Option<Declaration>) {
        (self, None)
    }
}

impl<H, T, S> RouteHandler<(Declared, T), S> for DeclaredHandler<H>
where
    H: Handler<T, S>,
    T: 'static,
{
    type Args = T;
    type Handler = H;

    fn split(self) -> (H, Option<Declaration>) {
        (self.handler, Some(self.declaration))
    }
}

/// The handlers of one path, by method, with their declarations: axum's `MethodRouter`
/// recorded for [`AuthorizedRouter::route`].
#[must_use]
pub struct MethodRoutes<S = ()> {
    inner: MethodRouter<S, Infallible>,
    methods: Vec<(&'static str, Option<Declaration>)>,
}

impl<S> fmt::Debug for MethodRoutes<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRoutes").field("methods", &self.methods).finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for MethodRoutes<S> {
    fn default() -> Self {
        Self { inner: MethodRouter::new(), methods: Vec::new() }
    }
}

macro_rules! methods {
    ($($name:ident $method:literal),* $(,)?) => {
        impl<S: Clone + Send + Sync + 'static> MethodRoutes<S> {
            $(
                #[doc = concat!("Routes `", $method, "` requests to `handler`.")]
                pub fn $name<X, M>(mut self, handler: X) -> Self
                where
                    X: RouteHandler<M, S>,
                {
                    let (handler, declaration) = handler.split();
                    self.inner = self.inner.$name(handler);
                    self.methods.push(($method, declaration));
                    self
                }
            )*
        }

        $(
            #[doc = concat!("Routes `", $method, "` requests to `handler` (see [`MethodRoutes`]).")]
            pub fn $name<X, M, S>(handler: X) -> MethodRoutes<S>
            where
                X: RouteHandler<M, S>,
                S: Clone + Send + Sync + 'static,
            {
                MethodRoutes::default().$name(handler)
            }
        )*
    };
}

methods!(get "GET", post "POST", put "PUT", patch "PATCH", delete "DELETE", head "HEAD", options "OPTIONS");

#[derive(Debug, Clone)]
struct Entry {
    method: &'static str,
    path: String,
    handler: Option<Declaration>,
    group: Vec<Requirement>,
    group_public: bool,
}

/// One route of an [`AuthorizedRouter`] and what it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteInfo {
    /// The method (`GET`, `POST`...).
    pub method: String,
    /// The path, nesting prefixes included.
    pub path: String,
    /// The requirements, route-group ones (outermost first) then the handler's.
    pub requirements: Vec<Requirement>,
    /// Declared public (`#[allow_anonymous]` or [`AuthorizedRouter::allow_anonymous`]).
    pub public: bool,
    /// The handler's name, when its attributes declared it.
    pub handler: Option<&'static str>,
}

impl RouteInfo {
    /// Whether the route declares a requirement or that it is public.
    #[must_use]
    pub fn is_declared(&self) -> bool {
        self.public || !self.requirements.is_empty()
    }

    /// `public`, `UNDECLARED`, or the requirements' summaries joined by ` + `.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.public && self.requirements.is_empty() {
            return "public".to_owned();
        }
        if self.requirements.is_empty() {
            return "UNDECLARED".to_owned();
        }
        self.requirements.iter().map(Requirement::summary).collect::<Vec<_>>().join(" + ")
    }
}

/// Every route with its requirements: what [`AuthorizedRouter::routes`] returns. `Display`
/// prints one aligned line per route: method, path, requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable(pub Vec<RouteInfo>);

impl fmt::Display for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.0.iter().map(|r| r.path.len()).max().unwrap_or(0);
        for r in &self.0 {
            writeln!(f, "{:<7} {:<width$}  {}", r.method, r.path, r.describe())?;
        }
        Ok(())
    }
}

/// Routes that declare no authorisation, refused by a deny-by-default [`AuthorizedRouter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeclaredRoutes {
    routes: Vec<(String, String)>,
}

impl UndeclaredRoutes {
    /// The (method, path) of each undeclared route.
    #[must_use]
    pub fn routes(&self) -> &[(String, String)] {
        &self.routes
    }
}

impl fmt::Display for UndeclaredRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("routes without an authorization requirement (deny by default): ")?;
        for (i, (method, path)) in self.routes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{method} {path}")?;
        }
        f.write_str(
            ". Give each handler an attribute (#[require_scope(..)], #[require_authenticated], #[allow_anonymous], ...) and register it as `handler!(name)`, or cover the routes with `.require(Require::..)` or `.allow_anonymous()`",
        )
    }
}

impl std::error::Error for UndeclaredRoutes {}

/// A router in deny-by-default mode: see the [module docs](self).
#[must_use]
pub struct AuthorizedRouter<S = ()> {
    router: Router<S>,
    entries: Vec<Entry>,
    deny_by_default: bool,
}

impl<S> fmt::Debug for AuthorizedRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedRouter")
            .field("routes", &self.entries.len())
            .field("deny_by_default", &self.deny_by_default)
            .finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for AuthorizedRouter<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> AuthorizedRouter<S> {
    /// An empty router that refuses undeclared routes at [`into_router`](Self::into_router).
    pub fn new() -> Self {
        Self { router: Router::new(), entries: Vec::new(), deny_by_default: true }
    }

    /// `false`: list and log undeclared routes (as `UNDECLARED`) without refusing them, while
    /// migrating an API to deny by default.
    pub fn deny_by_default(mut self, deny: bool) -> Self {
        self.deny_by_default = deny;
        self
    }

    /// Adds the handlers of `path`.
    ///
    /// # Panics
    ///
    /// As axum's `Router::route` (an invalid or overlapping path).
    pub fn route(mut self, path: &str, routes: MethodRoutes<S>) -> Self {
        self.router = self.router.route(path, routes.inner);
        for (method, handler) in routes.methods {
            self.entries.push(Entry { method, path: path.to_owned(), handler, group: Vec::new(), group_public: false });
        }
        self
    }

    /// Requires `layer`'s requirement on every route added so far (axum's `route_layer`):
    /// declares them all.
    pub fn require<E>(mut self, layer: Require<E>) -> Self
    where
        E: OnAuthError<Body> + Clone + Send + Sync + 'static,
    {
        if self.entries.is_empty() {
            return self;
        }
        let requirement = layer.requirement().clone();
        self.router = self.router.route_layer(layer);
        for e in &mut self.entries {
            e.group.insert(0, requirement.clone());
        }
        self
    }

    /// Declares every route added so far public (no requirement, on purpose).
    pub fn allow_anonymous(mut self) -> Self {
        for e in &mut self.entries {
            e.group_public = true;
        }
        self
    }

    /// Merges the routes of `other` (axum's `Router::merge`).
    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    /// Nests `other` under `prefix` (axum's `Router::nest`).
    pub fn nest(mut self, prefix: &str, other: Self) -> Self {
        self.router = self.router.nest(prefix, other.router);
        let prefix = prefix.trim_end_matches('/');
        self.entries.extend(other.entries.into_iter().map(|mut e| {
            e.path = if e.path == "/" { prefix.to_owned() } else { format!("{prefix}{}", e.path) };
            e
        }));
        self
    }

    /// Every route with its requirements, in the order added.
    #[must_use]
    pub fn routes(&self) -> RouteTable {
        RouteTable(
            self.entries
                .iter()
                .map(|e| {
                    let mut requirements = e.group.clone();
                    if let Some(d) = &e.handler {
                        requirements.extend(d.requirements().iter().cloned());
                    }
                    RouteInfo {
                        method: e.method.to_owned(),
                        path: e.path.clone(),
                        requirements,
                        public: e.group_public || e.handler.is_some_and(|d| d.is_public()),
                        handler: e.handler.map(|d| d.handler()),
                    }
                })
                .collect(),
        )
    }

    /// The start-up check: every route declares a requirement or that it is public.
    ///
    /// # Errors
    ///
    /// [`UndeclaredRoutes`] naming each route that does not (whatever the mode).
    pub fn check(&self) -> Result<(), UndeclaredRoutes> {
        let routes: Vec<(String, String)> =
            self.routes().0.into_iter().filter(|r| !r.is_declared()).map(|r| (r.method, r.path)).collect();
        if routes.is_empty() { Ok(()) } else { Err(UndeclaredRoutes { routes }) }
    }

    /// The axum router, after the start-up check; logs the route table (target
    /// `azad::routes`, INFO).
    ///
    /// # Errors
    ///
    /// [`UndeclaredRoutes`] in deny-by-default mode (the default) when a route declares
    /// nothing; also logged as an error.
    pub fn into_router(self) -> Result<Router<S>, UndeclaredRoutes> {
        let table = self.routes();
        tracing::info!(target: "azad::routes", "authorization of every route:\n{table}");
        match self.check() {
            Err(e) if self.deny_by_default => {
                tracing::error!(target: "azad::routes", "{e}");
                Err(e)
            }
            Err(e) => {
                tracing::warn!(target: "azad::routes", "{e}");
                Ok(self.router)
            }
            Ok(()) => Ok(self.router),
        }
    }
}
