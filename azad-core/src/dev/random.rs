//! Randomness of the dev tenant: GUIDs, client secrets and opaque codes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b
}

/// A random (v4) GUID.
#[must_use]
pub fn random_guid() -> String {
    uuid::Builder::from_random_bytes(random_bytes::<16>()).into_uuid().to_string()
}

/// A new client secret: `azad~` and 32 base64url characters (24 random bytes).
pub(crate) fn random_secret() -> String {
    format!("azad~{}", URL_SAFE_NO_PAD.encode(random_bytes::<24>()))
}

/// An opaque code (authorization code, device code, refresh token): `bytes` random bytes (at
/// most 48), base64url.
pub(crate) fn random_code(bytes: usize) -> String {
    let raw = random_bytes::<48>();
    URL_SAFE_NO_PAD.encode(&raw[..bytes.min(48)])
}
