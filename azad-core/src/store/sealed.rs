//! Sealing entries: AES-256-GCM (aws-lc-rs) with a fresh random nonce per entry and the
//! entry's key, purpose and format version bound as associated data.
//!
//! A sealed entry is `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The associated data is `"azad-store" 0x00 version purpose 0x00 storage-key`, so an entry
//! copied under another key, or read for another purpose, fails authentication.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox};

/// The format version of sealed entries (the first byte, also bound as associated data).
pub(crate) const FORMAT_VERSION: u8 = 2;
/// AES-GCM's tag length.
const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: version, nonce and tag.
pub(crate) const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 256-bit key sealing the shared store's entries (AES-256-GCM), provided by the
/// application: the same key on every replica. Its bytes never appear in `Debug`.
///
/// Generate one with `openssl rand -base64 32` and keep it with the application's other
/// secrets (Key Vault, a Kubernetes secret...). To rotate, seal with the new key and keep the
/// old one readable: [`SharedStoreBuilder::previous_key`](super::SharedStoreBuilder::previous_key).
pub struct SealingKey {
    key: LessSafeKey,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

/// A sealing key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealingKeyError {
    /// Not standard base64 (RFC 4648 §4, with padding).
    #[error("the sealing key is not base64")]
    NotBase64,
    /// Not 32 bytes once decoded.
    #[error("the sealing key must be 32 bytes (256 bits), got {0}")]
    WrongLength(usize),
}

impl SealingKey {
    /// A key from its 32 bytes.
    ///
    /// # Panics
    ///
    /// Never: AES-256 accepts every 32-byte key.
    #[must_use]
    pub fn new(bytes: &SecretBox<[u8; 32]>) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.expose_secret()).expect("a 32-byte AES-256 key");
        Self { key: LessSafeKey::new(unbound) }
    }

    /// A key from its standard base64 text (what `openssl rand -base64 32` prints); the
    /// decoded bytes are wiped after use.
    ///
    /// # Errors
    ///
    /// [`SealingKeyError`] when the text is not base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SealingKeyError> {
        let decoded = SecretBox::new(Box::new(
            base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| SealingKeyError::NotBase64)?,
        ));
        let bytes: &Vec<u8> = decoded.expose_secret();
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SealingKeyError::WrongLength(bytes.len()))?;
        Ok(Self::new(&SecretBox::new(Box::new(array))))
    }

    /// A fresh random key (tests, or a single-process store).
    ///
    /// # Panics
    ///
    /// When the system's random source fails.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = SecretBox::new(Box::new([0u8; 32]));
        aws_lc_rs::rand::fill(secrecy::ExposeSecretMut::expose_secret_mut(&mut bytes)).expect("system randomness");
        Self::new(&bytes)
    }
}

fn aad(purpose: &str, storage_key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + purpose.len() + storage_key.len());
    aad.extend_from_slice(b"azad-store\0");
    aad.push(FORMAT_VERSION);
    aad.extend_from_slice(purpose.as_bytes());
    aad.push(0);
    aad.extend_from_slice(storage_key.as_bytes());
    aad
}

/// Seals `plaintext` with `key` for `purpose` under `storage_key`.
pub(crate) fn seal(key: &SealingKey, purpose: &str, storage_key: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let aad = aad(purpose, storage_key);
    let tag = key
        .key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut out[1 + NONCE_LEN..])
        .expect("AES-GCM seals any length below 64 GiB");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens a sealed entry with the first of `keys` that authenticates it; `None` for anything
/// else (another format version, too short, tampered, another key, purpose or storage key).
pub(crate) fn open(keys: &[SealingKey], purpose: &str, storage_key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < OVERHEAD || sealed[0] != FORMAT_VERSION {
        return None;
    }
    let nonce: [u8; NONCE_LEN] = sealed[1..=NONCE_LEN].try_into().ok()?;
    let aad = aad(purpose, storage_key);
    for key in keys {
        let mut buffer = sealed[1 + NONCE_LEN..].to_vec();
        if let Ok(plain) =
            key.key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut buffer).map(|p| p.len())
        {
            buffer.truncate(plain);
            return Some(buffer);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_entries_open_only_with_their_key_purpose_and_storage_key() {
        let key = SealingKey::generate();
        let sealed = seal(&key, "obo", "ns:k1", b"the token");
        assert!(!sealed.windows(9).any(|w| w == b"the token"), "plaintext visible");
        assert_eq!(open(std::slice::from_ref(&key), "obo", "ns:k1", &sealed).as_deref(), Some(&b"the token"[..]));
        assert_eq!(open(std::slice::from_ref(&key), "obo", "ns:k2", &sealed), None, "moved to another key");
        assert_eq!(open(std::slice::from_ref(&key), "app", "ns:k1", &sealed), None, "read for another purpose");
        assert_eq!(open(&[SealingKey::generate()], "obo", "ns:k1", &sealed), None, "another sealing key");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(open(std::slice::from_ref(&key), "obo", "ns:k1", &tampered), None, "byte {i} flipped");
        }
        assert_eq!(open(std::slice::from_ref(&key), "obo", "ns:k1", &sealed[..OVERHEAD - 1]), None);
        assert_eq!(open(std::slice::from_ref(&key), "obo", "ns:k1", b""), None);
    }

    #[test]
    fn a_fresh_nonce_per_entry() {
        let key = SealingKey::generate();
        assert_ne!(seal(&key, "p", "k", b"same"), seal(&key, "p", "k", b"same"));
    }

    #[test]
    fn rotation_opens_with_any_listed_key() {
        let (old, new) = (SealingKey::generate(), SealingKey::generate());
        let sealed_old = seal(&old, "p", "k", b"v");
        assert_eq!(open(&[new, old], "p", "k", &sealed_old).as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn keys_from_base64() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let key = SealingKey::from_base64(&text).unwrap();
        assert_eq!(format!("{key:?}"), "SealingKey([redacted])");
        assert_eq!(SealingKey::from_base64("not base64!").unwrap_err(), SealingKeyError::NotBase64);
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert_eq!(SealingKey::from_base64(&short).unwrap_err(), SealingKeyError::WrongLength(16));
    }
}
