//! HTTPS on the public port. The master cannot read an encrypted request,
//! so it does not try: a TLS connection is handed, unread, to the worker a
//! stable hash of the client's address picks, and that worker terminates
//! TLS (handshakes scale with the workers, and no byte goes through the
//! master). A client's requests come from one address, so its polling
//! session's requests land on the worker that holds it; the rare one that
//! does not (a client changing address, a restarted worker's slot) is
//! forwarded by the worker like any request for another worker's session.
//!
//! rustls (ring), TLS 1.2 and 1.3, ALPN `http/1.1`; the certificate chain
//! and key are PEM files, read again on SIGHUP: new handshakes get the new
//! certificate, connections already up keep theirs.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// The first byte of a TLS record carrying a handshake (a ClientHello):
/// what tells a TLS client from a plain-HTTP one on the TLS port.
pub(crate) const HANDSHAKE_RECORD: u8 = 0x16;

/// Where the certificate chain and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM (the server's first, then the
    /// intermediates).
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// A server configuration from the files: TLS 1.2 and 1.3, ALPN
    /// `http/1.1`; an error says which file is wrong and why.
    pub(crate) fn load(&self) -> Result<Arc<ServerConfig>, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| format!("cannot read {}: {e}", self.cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "{} is not a PEM certificate chain: {e}",
                    self.cert.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!("{} holds no certificate", self.cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("{} is not a PEM private key: {e}", self.key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A worker's TLS acceptor, whose certificate can be replaced while it
/// serves.
pub(crate) struct Acceptor {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl Acceptor {
    /// Loads the files.
    pub(crate) fn new(files: TlsFiles) -> Result<Acceptor, String> {
        let config = files.load()?;
        Ok(Acceptor {
            files,
            config: RwLock::new(config),
        })
    }

    /// The acceptor for the next handshake.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        TlsAcceptor::from(Arc::clone(&config))
    }

    /// Reads the files again; on an error the old certificate stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let config = self.files.load()?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }
}
