//! Self-signed certificates with their private keys, for certificate credentials in tests.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::keys::DevKey;
#[cfg(feature = "pkcs12")]
use super::random::random_bytes;

/// A self-signed certificate and its RSA private key, for certificate credentials in tests.
#[derive(Clone)]
pub struct DevCertificate {
    cert_der: Vec<u8>,
    cert_pem: String,
    key_pkcs8: Vec<u8>,
}

impl fmt::Debug for DevCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCertificate").field("thumbprint", &self.thumbprint()).finish_non_exhaustive()
    }
}

impl DevCertificate {
    /// Generates a 2048-bit RSA key and a self-signed certificate for `subject`.
    ///
    /// # Panics
    ///
    /// If generation fails (it does not with the bundled crypto).
    #[must_use]
    pub fn generate(subject: &str) -> Self {
        let key = DevKey::generate();
        let pkcs8 = key.pkcs8_der();
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice());
        let pair =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).expect("RSA key for rcgen");
        let mut params = rcgen::CertificateParams::new(vec!["azad-dev.local".to_owned()]).expect("certificate params");
        params.distinguished_name.push(rcgen::DnType::CommonName, subject.trim_start_matches("CN="));
        let cert = params.self_signed(&pair).expect("self-signed certificate");
        Self { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), key_pkcs8: pkcs8 }
    }

    /// The certificate, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    #[must_use]
    pub fn key_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.key_pkcs8.clone()))
    }

    /// Certificate and private key in one PEM text (what `AZURE_CLIENT_CERTIFICATE_PATH` points to).
    #[must_use]
    pub fn pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem())
    }

    /// The base64url SHA-256 thumbprint (`x5t#S256`).
    #[must_use]
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.cert_der))
    }

    /// The certificate and key as PKCS#12 (`.pfx`) protected by `password`.
    ///
    /// # Panics
    ///
    /// If encoding fails (it does not for a generated certificate).
    #[cfg(feature = "pkcs12")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pkcs12")))]
    #[must_use]
    pub fn pkcs12(&self, password: &str) -> Vec<u8> {
        let key = p12_keystore::PrivateKey::from_der(&self.key_pkcs8).expect("PKCS#8 key");
        let cert = p12_keystore::Certificate::from_der(&self.cert_der).expect("DER certificate");
        let chain = p12_keystore::PrivateKeyChain::new(random_bytes::<20>().to_vec(), key, [cert]);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("azad-dev", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().expect("PKCS#12 encoding")
    }
}
