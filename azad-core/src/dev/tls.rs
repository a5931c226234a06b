//! HTTPS for the dev tenant: a certificate authority generated at start, a server certificate
//! for `localhost` and `127.0.0.1` signed by it, and the rustls configuration serving it.
//!
//! Clients trust the CA (written to a PEM file) the way they trust any private CA:
//! `REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE` for Python, `NODE_EXTRA_CA_CERTS` for Node, and
//! [`extra_root_certificates_pem`](crate::config::AzureAdConfigBuilder::extra_root_certificates_pem)
//! for azad. Nothing ever turns certificate verification off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The dev tenant's certificate authority and the acceptor serving its server certificate.
pub(crate) struct DevTls {
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

impl DevTls {
    /// A fresh CA (ECDSA P-256, valid from last year to next year) and a server
    /// certificate for `localhost`, `127.0.0.1` and `::1`.
    pub(crate) fn generate() -> std::io::Result<Self> {
        let err = |e: rcgen::Error| std::io::Error::other(format!("dev tenant TLS: {e}"));
        // From the start of last year to the end of next year: valid for any run of a dev
        // tenant, and not "forever" like a certificate nobody meant to keep.
        let year = i32::try_from(1970 + super::clock::now() / 31_556_952).unwrap_or(2026);
        let (now, until) = (rcgen::date_time_ymd(year - 1, 1, 1), rcgen::date_time_ymd(year + 2, 1, 1));

        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("azad dev tenant CA {}", &super::random::random_guid()[..8]));
        ca.distinguished_name.push(rcgen::DnType::OrganizationName, "azad dev tenant");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        ca.not_before = now;
        ca.not_after = until;
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(err)?;

        let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])
                .map_err(err)?;
        leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        leaf.is_ca = rcgen::IsCa::ExplicitNoCa;
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = now;
        leaf.not_after = until;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(err)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = vec![leaf_cert.der().clone(), ca.der().clone()];
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(std::io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { ca_pem: ca.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

/// Where the CA of the dev tenant listening on `port` is written.
pub(crate) fn ca_file_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("azad-dev-tenant-{port}-ca.pem"))
}

/// Writes the CA PEM (replacing any file left by an earlier dev tenant on the same port).
pub(crate) fn write_ca(path: &Path, pem: &str) -> std::io::Result<()> {
    std::fs::write(path, pem)
}
