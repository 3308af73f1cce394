//! TLS on both edges (rustls with the ring provider): the server's certificate chain and key
//! from `tls_cert`/`tls_key`, and with `tls_client_ca` mutual TLS, where every client must
//! present a certificate that CA signed. gRPC uses tonic's rustls transport; the HTTP edge
//! accepts TLS connections itself (`conn`).

use crate::serve::config::ServerConfig;
use anyhow::{Context, Result};
use std::sync::Arc;

/// PEM files of the server's TLS setup, read once at start.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// Reads the configured PEM files; `None` when TLS is off.
pub fn load(config: &ServerConfig) -> Result<Option<TlsFiles>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else { return Ok(None) };
    let read = |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    Ok(Some(TlsFiles { cert: read(cert)?, key: read(key)?, client_ca: config.tls_client_ca.as_deref().map(read).transpose()? }))
}

/// tonic's server TLS configuration.
pub fn grpc_config(t: &TlsFiles) -> tonic::transport::ServerTlsConfig {
    let mut c = tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(&t.cert, &t.key));
    if let Some(ca) = &t.client_ca {
        c = c.client_ca_root(tonic::transport::Certificate::from_pem(ca));
    }
    c
}

/// A TLS acceptor for the HTTP edge.
pub fn acceptor(t: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&t.cert).collect::<std::result::Result<_, _>>().context("tls_cert: no PEM certificates")?;
    let key = PrivateKeyDer::from_pem_slice(&t.key).context("tls_key: no PEM private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                roots.add(c.context("tls_client_ca: bad PEM")?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).context("tls_cert and tls_key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
