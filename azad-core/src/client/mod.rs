//! Tokens out: this application acquiring tokens, as a confidential client (client
//! credentials, on-behalf-of), through a managed identity, for a signed-in user, or from a
//! developer's machine.
//!
//! | file | owns |
//! | --- | --- |
//! | `credential.rs` | [`ClientCredential`](crate::ClientCredential): how the application proves its identity (secret, certificate, workload identity, managed identity federation, callback) |
//! | `managed_identity.rs` | [`ManagedIdentity`](crate::ManagedIdentity): IMDS and App Service tokens, their retry policy |
//! | `token/` | [`TokenClient`](crate::TokenClient) (`mod.rs`) and [`TokenRequest`](crate::TokenRequest) (`request.rs`): the one door to the token endpoint |
//! | `wire.rs` | the token-endpoint wire format they share: form requests, token answers, `Retry-After`, redaction; it imports none of them |
//! | `signin.rs` | [`SignInClient`](crate::SignInClient): authorization code + PKCE, silent refresh, device code |
//! | `cache.rs` | the acquired-token cache (refresh ahead, single flight) |
//! | `expiry.rs` | the one expiry normaliser (`expires_in`/`expires_on`, numbers or strings, the token's `exp`) |
//! | `chain.rs` | [`DefaultCredential`](crate::DefaultCredential), Azure Identity's order |
//! | `azure_cli.rs` | `AzureCliCredential` (feature `azure-cli`) |

#[cfg(feature = "azure-cli")]
pub(crate) mod azure_cli;
pub(crate) mod cache;
pub(crate) mod chain;
pub(crate) mod credential;
pub(crate) mod expiry;
pub(crate) mod managed_identity;
pub(crate) mod signin;
pub(crate) mod token;
pub(crate) mod wire;
