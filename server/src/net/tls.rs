//! Serving https and wss directly, for installations without a TLS-terminating load balancer.
//!
//! [`acceptor`] is the TLS side; [`crate::net::listen`] runs each handshake in the connection's own
//! task with a deadline, so one slow or hostile client never holds up the next accept.
//!
//! The certificate and key are read from PEM files and read again every few seconds: when
//! either changed and the pair is valid, new handshakes use it (open connections keep theirs);
//! a broken pair is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the certificate files are read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The TLS side of serving https with the certificate in `cert` and the key in `key`, watching
/// both files until `stop`. Fails at once when the pair cannot be used.
pub fn acceptor(
    cert: &Path,
    key: &Path,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = Files {
        cert: cert.to_owned(),
        key: key.to_owned(),
    };
    let (bytes, certified) = files.load(&provider)?;
    announce(&certified, &metrics, "TLS certificate loaded");
    let resolver = Arc::new(Reloading {
        current: RwLock::new(Arc::new(certified)),
    });
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    tokio::spawn(watch(files, bytes, resolver, provider, metrics, stop));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate and key files.
struct Files {
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    /// Both files' bytes (to notice changes) and the pair, checked to belong together.
    fn load(&self, provider: &CryptoProvider) -> anyhow::Result<(Vec<u8>, CertifiedKey)> {
        let cert_bytes = std::fs::read(&self.cert)
            .with_context(|| format!("cannot read server.tls_cert {}", self.cert.display()))?;
        let key_bytes = std::fs::read(&self.key)
            .with_context(|| format!("cannot read server.tls_key {}", self.key.display()))?;
        let certs = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("{err:?}"))
            .with_context(|| format!("server.tls_cert {} is not PEM", self.cert.display()))?;
        if certs.is_empty() {
            bail!(
                "server.tls_cert {} holds no certificate (-----BEGIN CERTIFICATE-----)",
                self.cert.display()
            );
        }
        let key = PrivateKeyDer::from_pem_slice(&key_bytes)
            .map_err(|err| anyhow::anyhow!("{err:?}"))
            .with_context(|| {
                format!(
                    "server.tls_key {} holds no private key in PEM",
                    self.key.display()
                )
            })?;
        let certified = CertifiedKey::from_der(certs, key, provider).with_context(|| {
            format!(
                "server.tls_key {} does not fit the certificate in {}",
                self.key.display(),
                self.cert.display()
            )
        })?;
        let mut bytes = cert_bytes;
        bytes.extend_from_slice(&key_bytes);
        Ok((bytes, certified))
    }
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reads the files every [`RELOAD_EVERY`]; a changed, valid pair replaces the current one.
async fn watch(
    files: Files,
    mut current: Vec<u8>,
    resolver: Arc<Reloading>,
    provider: Arc<CryptoProvider>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(RELOAD_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut complained: Option<String> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        let cert = tokio::fs::read(&files.cert).await.unwrap_or_default();
        let key = tokio::fs::read(&files.key).await.unwrap_or_default();
        if cert.len() + key.len() == current.len()
            && current.starts_with(&cert)
            && current.ends_with(&key)
        {
            continue;
        }
        match files.load(&provider) {
            Ok((bytes, certified)) => {
                announce(&certified, &metrics, "TLS certificate reloaded");
                metrics.tls_reload("loaded");
                *resolver
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(certified);
                current = bytes;
                complained = None;
            }
            Err(err) => {
                // Files are often replaced one at a time: say so once, keep the old pair.
                let text = format!("{err:#}");
                if complained.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "TLS certificate not reloaded; keeping the old one");
                    metrics.tls_reload("failed");
                    complained = Some(text);
                }
            }
        }
    }
}

/// Logs the certificate now served and exports its expiry.
fn announce(certified: &CertifiedKey, metrics: &Metrics, what: &str) {
    // The names and dates rustls itself does not expose.
    let parsed = certified
        .end_entity_cert()
        .ok()
        .and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok());
    let Some((_, cert)) = parsed else {
        tracing::info!("{what}");
        return;
    };
    let not_after = cert.validity().not_after;
    metrics.tls_cert_expiry.set(not_after.timestamp());
    tracing::info!(subject = %cert.subject(), %not_after, "{what}");
}

/// A client configuration for the container health check on a TLS port: it accepts exactly the
/// certificate in `cert` (the one this server serves), whatever name it carries, since the
/// check connects to a loopback address.
pub fn health_check_client(cert: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let pinned = CertificateDer::pem_file_iter(cert)
        .map_err(|err| anyhow::anyhow!("{err:?}"))
        .and_then(|mut certs| {
            certs
                .next()
                .ok_or_else(|| anyhow::anyhow!("no certificate"))?
                .map_err(|err| anyhow::anyhow!("{err:?}"))
        })
        .with_context(|| format!("cannot read server.tls_cert {}", cert.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { pinned, provider }))
            .with_no_client_auth(),
    )
}

/// Accepts one certificate, byte for byte, with valid handshake signatures.
#[derive(Debug)]
struct Pinned {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server on this port does not serve server.tls_cert".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
