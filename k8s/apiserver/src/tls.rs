//! TLS for the API server: the serving certificate, and client certificates
//! verified against the cluster CA when a client offers one (kubectl with the
//! admin kubeconfig does; health checks and `/version` need none).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: no PEM certificate found")]
    NoCertificate { what: &'static str },
    #[error("{what}: bad PEM")]
    Pem { what: &'static str, source: rustls::pki_types::pem::Error },
    #[error("client CA")]
    Roots(#[source] rustls::Error),
    #[error("client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
}

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, ALPN h2
/// and http/1.1) presenting `certificate`, which can be replaced (renewed)
/// while the server runs.
pub fn server_config(
    certificate: &lichen_client::LiveCertificate,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(client_ca_pem, "client CA")? {
        roots.add(ca).map_err(TlsError::Roots)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(TlsError::Verifier)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate.server_resolver());
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
