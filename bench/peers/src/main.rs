//! The load benchmark's server for every middleware: `GET /health` (public) and `GET /api/me`
//! (a bearer token with scope `access_as_user`, answering the `name` claim), protected by
//! azad, jwt-authorizer or aliri.
//!
//! ```text
//! peer-server azad|jwt-authorizer|aliri
//! ```
//!
//! Settings from the environment (bench/load.sh sets them from the dev tenant's output):
//! `PORT`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_AUTHORITY_HOST`, `JWKS_URL`, `ISSUER`,
//! and for azad `CACHE_CAPACITY` (validated-token cache entries; default 10 000).
//! A multi-threaded tokio runtime, as `#[tokio::main]` builds it; the harness pins the process
//! to one core.

use std::env;

fn var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

const SCOPE: &str = "access_as_user";

#[tokio::main]
async fn main() {
    let which = env::args().nth(1).expect("usage: peer-server azad|jwt-authorizer|aliri");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], var("PORT").parse::<u16>().expect("PORT")));
    match which.as_str() {
        "azad" => azad::serve(addr).await,
        "jwt-authorizer" => jwt_authorizer_server::serve(addr).await,
        "aliri" => aliri_server::serve(addr).await,
        other => panic!("unknown middleware {other}"),
    }
}

mod azad {
    use axum::Router;
    use axum::routing::get;
    use azad_axum::{AzureAdAuth, AzureAdConfig, Claims, require_scope};

    async fn health() -> &'static str {
        "ok"
    }

    #[require_scope("access_as_user")]
    async fn me(claims: Claims) -> String {
        claims.name().unwrap_or_default().to_owned()
    }

    pub(crate) async fn serve(addr: std::net::SocketAddr) {
        let capacity = std::env::var("CACHE_CAPACITY").ok().map_or(10_000, |c| c.parse().expect("CACHE_CAPACITY"));
        let config = AzureAdConfig::builder()
            .tenant_id(super::var("AZURE_TENANT_ID"))
            .client_id(super::var("AZURE_CLIENT_ID"))
            .instance(super::var("AZURE_AUTHORITY_HOST"))
            .validated_token_cache_capacity(capacity)
            .build()
            .expect("configuration");
        let auth = AzureAdAuth::new(config);
        auth.warm_up().await.expect("signing keys");
        let _ = super::SCOPE;
        let app = Router::new()
            .route("/health", get(health))
            .merge(Router::new().route("/api/me", get(me)).route_layer(auth));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    }
}

mod jwt_authorizer_server {
    use axum07::Router;
    use axum07::routing::get;
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, JwtClaims, Validation};
    use serde::Deserialize;

    #[derive(Clone, Deserialize)]
    struct EntraClaims {
        #[serde(default)]
        scp: String,
        #[serde(default)]
        name: String,
    }

    async fn health() -> &'static str {
        "ok"
    }

    async fn me(JwtClaims(claims): JwtClaims<EntraClaims>) -> String {
        claims.name
    }

    pub(crate) async fn serve(addr: std::net::SocketAddr) {
        let authorizer = JwtAuthorizer::<EntraClaims>::from_jwks_url(&super::var("JWKS_URL"))
            .validation(Validation::new().iss(&[super::var("ISSUER")]).aud(&[super::var("AZURE_CLIENT_ID")]))
            // The scope, as its README checks claims (403 otherwise).
            .check(|c: &EntraClaims| c.scp.split(' ').any(|s| s == super::SCOPE))
            .build()
            .await
            .expect("jwt-authorizer");
        let app = Router::new()
            .route("/health", get(health))
            .merge(Router::new().route("/api/me", get(me)).layer([authorizer].into_layer()));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum07::serve(listener, app).await.unwrap();
    }
}

mod aliri_server {
    use aliri::jwt::{self, Audience, Audiences, CoreClaims, Issuer, IssuerRef, SubjectRef};
    use aliri::{Jwks, jwa};
    use aliri_clock::UnixTime;
    use aliri_oauth2::{Authority, HasScope, ScopePolicy, scope::Scope};
    use aliri_tower::Oauth2Authorizer;
    use axum07::Router;
    use axum07::extract::Extension;
    use axum07::handler::Handler;
    use axum07::routing::get;
    use serde::Deserialize;

    #[derive(Clone, Debug, Deserialize)]
    struct EntraClaims {
        iss: Issuer,
        aud: Audiences,
        exp: UnixTime,
        nbf: Option<UnixTime>,
        #[serde(rename = "scp", default)]
        scope: Scope,
        #[serde(default)]
        name: String,
    }

    impl CoreClaims for EntraClaims {
        fn nbf(&self) -> Option<UnixTime> {
            self.nbf
        }
        fn exp(&self) -> Option<UnixTime> {
            Some(self.exp)
        }
        fn aud(&self) -> &Audiences {
            &self.aud
        }
        fn iss(&self) -> Option<&IssuerRef> {
            Some(&self.iss)
        }
        fn sub(&self) -> Option<&SubjectRef> {
            None
        }
    }

    impl HasScope for EntraClaims {
        fn scope(&self) -> &Scope {
            &self.scope
        }
    }

    async fn health() -> &'static str {
        "ok"
    }

    async fn me(Extension(claims): Extension<EntraClaims>) -> String {
        claims.name
    }

    pub(crate) async fn serve(addr: std::net::SocketAddr) {
        let jwks: Jwks = reqwest::get(super::var("JWKS_URL")).await.unwrap().json().await.expect("JWKS");
        let validator = jwt::CoreValidator::default()
            .add_approved_algorithm(jwa::Algorithm::RS256)
            .add_allowed_audience(Audience::from(super::var("AZURE_CLIENT_ID")))
            .require_issuer(Issuer::from(super::var("ISSUER")));
        let authority = Authority::new(jwks, validator);
        let authorizer = Oauth2Authorizer::new().with_claims::<EntraClaims>().with_terse_error_handler();
        let me = me.layer(authorizer.scope_layer(ScopePolicy::allow_one_from_static(super::SCOPE)));
        let app = Router::new()
            .route("/health", get(health))
            .merge(Router::new().route("/api/me", get(me)).layer(authorizer.jwt_layer(authority)));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum07::serve(listener, app).await.unwrap();
    }
}
