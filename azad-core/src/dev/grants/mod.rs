//! The token endpoint's grants (`POST /{tenant}/oauth2/v2.0/token`, dispatched by
//! `grant_type` in [`router`](super::router)) and the endpoints that start them:
//!
//! | file | grant and endpoints |
//! | --- | --- |
//! | `client_credentials.rs` | `client_credentials` |
//! | `on_behalf_of.rs` | `urn:ietf:params:oauth:grant-type:jwt-bearer` (`requested_token_use=on_behalf_of`) |
//! | `authorization_code.rs` | `authorization_code`; `GET /{tenant}/oauth2/v2.0/authorize`, `GET /{tenant}/oauth2/v2.0/logout` |
//! | `refresh_token.rs` | `refresh_token` |
//! | `device_code.rs` | `urn:ietf:params:oauth:grant-type:device_code`; `POST /{tenant}/oauth2/v2.0/devicecode`, `GET /devicelogin` |
//! | `sign_in.rs` | a user's tokens (access, ID, refresh, `client_info`) and the single-page application rules |
//! | `common.rs` | client authentication, scopes, the token response, the `claims` parameter |

pub(crate) mod authorization_code;
pub(crate) mod client_credentials;
pub(crate) mod common;
pub(crate) mod device_code;
pub(crate) mod on_behalf_of;
pub(crate) mod refresh_token;
pub(crate) mod sign_in;
