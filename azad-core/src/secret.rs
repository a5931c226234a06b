//! Secret newtypes: values that never appear in `Debug` output, have no `Display`, and are read
//! only through `.secret()`.
//!
//! # Example
//!
//! ```
//! use azad_core::secret::{BearerToken, ClientSecret};
//!
//! let secret = ClientSecret::new("s3cr3t-v4lue");
//! assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
//! assert_eq!(secret.secret(), "s3cr3t-v4lue");
//!
//! let token = BearerToken::new("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln");
//! assert!(!format!("{token:?}").contains("eyJ"));
//! ```

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// Clones share one zeroized-on-drop buffer.
        #[derive(Clone)]
        pub struct $name(Arc<SecretString>);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::new(SecretString::from(value.into())))
            }

            /// The secret value.
            ///
            /// # Security Warning
            ///
            /// Leaking this value (in logs, error messages or responses) compromises what it
            /// protects. Pass it only to the party it is meant for.
            #[must_use]
            pub fn secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl PartialEq for $name {
            /// Constant-time comparison.
            fn eq(&self, other: &Self) -> bool {
                let (a, b) = (self.secret().as_bytes(), other.secret().as_bytes());
                a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
            }
        }

        impl Eq for $name {}
    };
}

/// The bearer token of an incoming request, as the client sent it. Kept (redacted) in
/// request extensions by the tower layer, for on-behalf-of exchanges.
///
/// Clones share one zeroized-on-drop buffer, and one SHA-256 digest of the token, computed the
/// first time a cache key needs it (the on-behalf-of cache keys a user's tokens by it): a token
/// served from the validated-token cache is hashed once, not on every request.
#[derive(Clone)]
pub struct BearerToken(Arc<BearerInner>);

struct BearerInner {
    value: SecretString,
    digest: std::sync::OnceLock<[u8; 32]>,
}

impl BearerToken {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(BearerInner { value: SecretString::from(value.into()), digest: std::sync::OnceLock::new() }))
    }

    /// The secret value.
    ///
    /// # Security Warning
    ///
    /// Leaking this value (in logs, error messages or responses) compromises what it
    /// protects. Pass it only to the party it is meant for.
    #[must_use]
    pub fn secret(&self) -> &str {
        self.0.value.expose_secret()
    }

    /// The SHA-256 of the token (32 bytes), computed once per token and shared by its clones.
    /// A cache key, never a credential: it cannot be turned back into the token.
    pub(crate) fn digest(&self) -> &[u8; 32] {
        self.0.digest.get_or_init(|| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.secret().as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(digest.as_ref());
            out
        })
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

impl From<String> for BearerToken {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl PartialEq for BearerToken {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.secret().as_bytes(), other.secret().as_bytes());
        a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
    }
}

impl Eq for BearerToken {}

secret_type!(
    /// An access token acquired from the token endpoint (client credentials, on-behalf-of...).
    AccessToken
);

secret_type!(
    /// A client secret of an app registration.
    ClientSecret
);

secret_type!(
    /// A signed client assertion (a JWT proving the client's identity), or a federated token.
    ClientAssertion
);

secret_type!(
    /// A refresh token.
    RefreshToken
);

secret_type!(
    /// A password protecting a private key (PKCS#12).
    KeyPassword
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let canary = "CANARY-secret-1234";
        for text in [
            format!("{:?}", BearerToken::new(canary)),
            format!("{:?}", AccessToken::new(canary)),
            format!("{:?}", ClientSecret::new(canary)),
            format!("{:?}", ClientAssertion::new(canary)),
            format!("{:?}", RefreshToken::new(canary)),
            format!("{:#?}", Some(KeyPassword::new(canary))),
        ] {
            assert!(!text.contains(canary), "{text}");
            assert!(text.contains("[redacted]"));
        }
    }

    #[test]
    fn a_bearer_token_digest_is_the_sha256_of_the_token_shared_by_clones() {
        let token = BearerToken::new("abc");
        let clone = token.clone();
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(token.digest()[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert!(std::ptr::eq(token.digest(), clone.digest()), "computed once, shared");
        assert_eq!(token, BearerToken::new("abc"));
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(ClientSecret::new("a"), ClientSecret::new("a"));
        assert_ne!(ClientSecret::new("a"), ClientSecret::new("b"));
        assert_ne!(ClientSecret::new("a"), ClientSecret::new("ab"));
    }
}
