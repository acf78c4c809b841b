//! TLS for `https://` OTLP endpoints (feature `tls`): rustls, trusting the
//! web PKI roots and any CA the user adds (`OTEL_EXPORTER_OTLP_CERTIFICATE`).

use std::sync::Arc;

use crate::trace::ConfigError;

/// The roots an exporter trusts, and the client configuration made of them.
#[derive(Clone)]
pub(crate) struct Tls {
    roots: rustls::RootCertStore,
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("roots", &self.roots.len())
            .finish()
    }
}

fn config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Tls {
    /// The web PKI roots (Mozilla's, bundled).
    pub(crate) fn web_pki() -> Result<Self, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Ok(Tls {
            config: config(roots.clone())?,
            roots,
        })
    }

    /// Trusts the certificates in the PEM file at `path` too.
    pub(crate) fn with_ca_file(mut self, path: &str) -> Result<Self, ConfigError> {
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError::Invalid(format!("cannot read the CA file {path}: {e}")))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert
                .map_err(|e| ConfigError::Invalid(format!("{path}: not a PEM certificate: {e}")))?;
            self.roots
                .add(cert)
                .map_err(|e| ConfigError::Invalid(format!("{path}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(ConfigError::Invalid(format!(
                "{path}: no PEM certificate in it"
            )));
        }
        self.config = config(self.roots.clone())?;
        Ok(self)
    }
}
