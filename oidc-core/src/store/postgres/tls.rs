//! TLS for PostgreSQL connections: rustls (the aws-lc-rs provider the crate already uses)
//! with the webpki roots and, optionally, a private CA.
//!
//! `tokio-postgres-rustls` rather than a hand-written `MakeTlsConnect`: it also implements
//! SCRAM channel binding (`tls-server-end-point`), for a handful of small `RustCrypto`
//! crates (x509-cert, der, spki) on top of what tokio-postgres already brings.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::invalid;
use crate::store::{StoreError, StoreErrorKind};

/// The connector for every connection. tokio-postgres only uses it when the URL's
/// `sslmode` is `prefer` or `require`; with `disable` connections are plain TCP.
pub(super) fn connector(extra_roots: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_roots {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|error| StoreError::with_source(StoreErrorKind::InvalidConfig, error))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::with_source(StoreErrorKind::InvalidConfig, error))?;
        if certificates.is_empty() {
            return Err(invalid("the root certificate file holds no certificate"));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| StoreError::with_source(StoreErrorKind::InvalidConfig, error))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| StoreError::with_source(StoreErrorKind::InvalidConfig, error))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
