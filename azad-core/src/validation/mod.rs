//! Tokens in: what a resource server does with a bearer token it receives.
//!
//! | file | decides |
//! | --- | --- |
//! | `jwt.rs` | the JWS compact serialisation and JOSE header (RFC 7515, RFC 8725), [`SigningAlgorithm`](crate::SigningAlgorithm) |
//! | `jwks.rs` | the signing-key cache ([`JwksCache`](crate::JwksCache), [`JwksPolicy`](crate::JwksPolicy), [`StaticJwks`](crate::StaticJwks)) |
//! | `discovery.rs` | OpenID Connect discovery ([`ProviderMetadata`](crate::ProviderMetadata)) |
//! | `issuer.rs` | the issuer and tenant decision and its diagnosis |
//! | `claims.rs` | the claims set ([`Claims`](crate::Claims)) |
//! | `policy.rs` | what is checked besides the signature ([`ValidationPolicy`](crate::ValidationPolicy)) |
//! | `validator.rs` | the pipeline and the validated-token cache ([`TokenValidator`](crate::TokenValidator)) |

pub(crate) mod claims;
pub(crate) mod discovery;
pub(crate) mod issuer;
pub(crate) mod jwks;
pub(crate) mod jwt;
#[cfg(test)]
mod parser_props;
pub(crate) mod policy;
pub(crate) mod validator;
