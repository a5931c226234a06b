//! RSA signing keys of the dev tenant, and compact JWS signing.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::validation::jwt::SigningAlgorithm;

/// An RSA key pair of the dev tenant, with its key id.
pub struct DevKey {
    pub(crate) kid: String,
    pair: KeyPair,
    pub(crate) n: String,
    pub(crate) e: String,
}

impl fmt::Debug for DevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl DevKey {
    /// Generates a fresh 2048-bit key. The key id is the base64url SHA-256 thumbprint of the
    /// public key, shaped like Entra's.
    pub(crate) fn generate() -> Self {
        Self::generate_sized(KeySize::Rsa2048)
    }

    pub(crate) fn generate_sized(size: KeySize) -> Self {
        let pair = KeyPair::generate(size).expect("RSA key generation");
        let public = pair.public_key();
        let n_raw = public.modulus().big_endian_without_leading_zero().to_vec();
        let e_raw = public.exponent().big_endian_without_leading_zero().to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n_raw);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..20]);
        Self { kid, pair, n: URL_SAFE_NO_PAD.encode(n_raw), e: URL_SAFE_NO_PAD.encode(e_raw) }
    }

    /// The same key under another key id (to publish two keys under one `kid`).
    pub(crate) fn with_kid(mut self, kid: String) -> Self {
        self.kid = kid;
        self
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (optionally with an `issuer`, as Entra's v2.0 keys have).
    pub(crate) fn jwk(&self, issuer: Option<&str>) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "cloud_instance_name": "azad.dev",
        });
        if let Some(issuer) = issuer {
            jwk["issuer"] = issuer.into();
        }
        jwk
    }

    /// The private key as PKCS#8 DER (for building test certificates and PEM files).
    pub(crate) fn pkcs8_der(&self) -> Vec<u8> {
        self.pair.as_der().expect("PKCS#8 export").as_ref().to_vec()
    }

    /// Signs `message` with `alg`.
    pub(crate) fn sign(&self, alg: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
        let padding: &'static dyn sig::RsaEncoding = match alg {
            SigningAlgorithm::RS256 => &sig::RSA_PKCS1_SHA256,
            SigningAlgorithm::RS384 => &sig::RSA_PKCS1_SHA384,
            SigningAlgorithm::RS512 => &sig::RSA_PKCS1_SHA512,
            SigningAlgorithm::PS256 => &sig::RSA_PSS_SHA256,
            SigningAlgorithm::PS384 => &sig::RSA_PSS_SHA384,
            SigningAlgorithm::PS512 => &sig::RSA_PSS_SHA512,
        };
        let mut out = vec![0u8; self.pair.public_modulus_len()];
        self.pair.sign(padding, &aws_lc_rs::rand::SystemRandom::new(), message, &mut out).expect("RSA signing");
        out
    }

    /// Signs raw header and payload bytes (JSON texts, or anything for hostile tests) into a
    /// compact JWS with `alg` padding.
    pub(crate) fn sign_compact(&self, alg: SigningAlgorithm, header_json: &[u8], payload_json: &[u8]) -> String {
        let mut token = String::with_capacity(header_json.len() * 2 + payload_json.len() * 2 + 360);
        URL_SAFE_NO_PAD.encode_string(header_json, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);
        let signature = self.sign(alg, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }
}

impl DevKey {
    pub(crate) fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        jsonwebtoken::DecodingKey::from_rsa_components(&self.n, &self.e)
            .expect("dev key components are valid base64url")
    }
}

/// The keys of a dev tenant: the active signing key, the published ones (JWKS), one never
/// published (for forged signatures), and application-specific keys by client id.
pub(crate) struct KeyRing {
    pub(crate) active: Arc<DevKey>,
    pub(crate) published: Vec<Arc<DevKey>>,
    pub(crate) unpublished: Arc<DevKey>,
    pub(crate) app_keys: HashMap<String, Arc<DevKey>>,
}

impl KeyRing {
    /// A fresh active key, published, and a fresh unpublished one.
    pub(crate) fn generate() -> Self {
        let active = Arc::new(DevKey::generate());
        Self {
            published: vec![active.clone()],
            active,
            unpublished: Arc::new(DevKey::generate()),
            app_keys: HashMap::new(),
        }
    }
}
