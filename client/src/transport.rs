//! How the apps reach a server: one TLS configuration and one proxy choice, shared by REST
//! (reqwest) and the stream (tungstenite), and errors that explain themselves.
//!
//! - Trust: the operating system's certificate store (Windows, macOS, Linux; `SSL_CERT_FILE`
//!   and `SSL_CERT_DIR` where set), plus an optional CA file in PEM for machines where IT has not
//!   installed the company CA. A refused certificate is explained in one line: who issued it,
//!   which name it carries, when it expired.
//! - Proxies: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), the system
//!   settings on Windows and macOS, or one proxy named explicitly. REST goes through it as usual;
//!   the stream opens an HTTP `CONNECT` tunnel. Only `http://` proxies with no or Basic
//!   authentication are supported; a proxy that asks for anything else says so in the error.
//!
//! Not here: what is sent over the connection ([`crate::connection`], [`crate::auth`]).

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use hyper_util::client::proxy::matcher::Matcher;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;

/// How to reach servers, as the person or the settings say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportOptions {
    /// An extra CA certificate file (PEM, one or more certificates) trusted beside the operating
    /// system's store.
    pub ca_file: Option<PathBuf>,
    /// A proxy for every connection, `http://[user:password@]host:port`; `None` takes the
    /// environment's and the system's proxy settings.
    pub proxy: Option<String>,
}

/// Why a transport cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The CA file cannot be used.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The proxy setting cannot be used.
    #[error("proxy {proxy:?}: {reason}")]
    Proxy {
        /// The proxy as given.
        proxy: String,
        /// Why not.
        reason: String,
    },
    /// TLS or HTTP could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// One TLS configuration and one proxy choice, for REST and the stream alike. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
    http: reqwest::Client,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// Sets up TLS (the system's store plus `options.ca_file`) and the proxy choice.
    pub fn new(options: &TransportOptions) -> Result<Transport, TransportError> {
        let tls = Arc::new(tls_config(options.ca_file.as_deref())?);
        let (proxies, reqwest_proxy) = match options.proxy.as_deref().map(str::trim) {
            None | Some("") => (Matcher::from_system(), None),
            Some(proxy) => {
                let bad = |reason: String| TransportError::Proxy {
                    proxy: redact_proxy(proxy),
                    reason,
                };
                let uri: Uri = proxy
                    .parse()
                    .map_err(|err| bad(format!("not a URL ({err})")))?;
                if uri.scheme_str() != Some("http") {
                    return Err(bad("only http:// proxies are supported".into()));
                }
                let no_proxy = std::env::var("NO_PROXY")
                    .or_else(|_| std::env::var("no_proxy"))
                    .unwrap_or_default();
                let matcher = Matcher::builder()
                    .all(proxy.to_owned())
                    .no(no_proxy)
                    .build();
                let reqwest_proxy = reqwest::Proxy::all(proxy)
                    .map_err(|err| bad(explain(&err)))?
                    .no_proxy(reqwest::NoProxy::from_env());
                (matcher, Some(reqwest_proxy))
            }
        };
        let mut http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15));
        if let Some(proxy) = reqwest_proxy {
            http = http.proxy(proxy);
        }
        let http = http
            .build()
            .map_err(|err| TransportError::Setup(explain(&err)))?;
        Ok(Transport {
            tls,
            proxies: Arc::new(proxies),
            http,
        })
    }

    /// The transport with no extra CA and the system's proxy settings, set up once per process.
    pub fn system() -> Result<Transport, TransportError> {
        static SYSTEM: OnceLock<Result<Transport, String>> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Transport::new(&TransportOptions::default()).map_err(|e| e.to_string()))
            .clone()
            .map_err(TransportError::Setup)
    }

    /// The HTTP client for REST calls (15 s per request).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A failed REST request in words: its cause chain, or, when it went through a proxy that
    /// refused it, what the proxy said (asked again with a tunnel of MONTI's own, since the
    /// HTTP client only reports "unsuccessful" or a bare status).
    pub async fn describe(&self, err: &reqwest::Error) -> String {
        let text = explain(err);
        let proxy_status = matches!(err.status().map(|s| s.as_u16()), Some(401 | 407));
        let Some(url) = err.url() else {
            return text;
        };
        if !(err.is_connect() || proxy_status) {
            return text;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return text;
        };
        if self.proxy_for(url.scheme(), host, port).is_none() {
            return text;
        }
        match self.tcp(url.scheme(), host, port).await {
            Err(proxy_said) => proxy_said,
            Ok(_) => text,
        }
    }

    /// The TLS configuration the stream uses.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// The proxy the settings choose for a URL of `scheme` to `host:port`, if any.
    fn proxy_for(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        let http_scheme = if matches!(scheme, "wss" | "https") {
            "https"
        } else {
            "http"
        };
        let host_in_uri = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let target: Uri = format!("{http_scheme}://{host_in_uri}:{port}/")
            .parse()
            .ok()?;
        self.proxies.intercept(&target)
    }

    /// A TCP connection towards `host:port` for a URL of `scheme` (`ws`/`http` or
    /// `wss`/`https`): straight there, or through the proxy the settings choose for it.
    pub async fn tcp(&self, scheme: &str, host: &str, port: u16) -> Result<TcpStream, String> {
        match self.proxy_for(scheme, host, port) {
            None => connect_tcp(host, port)
                .await
                .map_err(|err| format!("cannot reach {host}:{port}: {}", explain(&err))),
            Some(intercept) => {
                tunnel(
                    intercept.uri(),
                    intercept.basic_auth().and_then(|v| v.to_str().ok()),
                    host,
                    port,
                )
                .await
            }
        }
    }
}

async fn connect_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
    // Deltas are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens an HTTP `CONNECT` tunnel to `host:port` through `proxy`.
async fn tunnel(
    proxy: &Uri,
    basic_auth: Option<&str>,
    host: &str,
    port: u16,
) -> Result<TcpStream, String> {
    let shown = redact_proxy(&proxy.to_string());
    if proxy.scheme_str() != Some("http") {
        return Err(format!(
            "proxy {shown}: only http:// proxies are supported (not {})",
            proxy.scheme_str().unwrap_or("a bare address")
        ));
    }
    let proxy_host = proxy.host().unwrap_or_default();
    let proxy_port = proxy.port_u16().unwrap_or(80);
    let mut stream = connect_tcp(proxy_host, proxy_port)
        .await
        .map_err(|err| format!("cannot reach the proxy {shown}: {}", explain(&err)))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request =
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: monti\r\n");
    // Credentials in the proxy URL, or in the matcher's already encoded header value.
    let credentials = proxy_credentials(proxy).or_else(|| basic_auth.map(str::to_owned));
    if let Some(value) = &credentials {
        request.push_str(&format!("Proxy-Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        read_head(&mut stream).await
    };
    let head = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("the proxy {shown} did not answer within 10 s"))?
        .map_err(|err| format!("the proxy {shown} broke the connection: {}", explain(&err)))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(stream),
        // 407 is the standard answer; some proxies (tinyproxy) answer a CONNECT with 401.
        Some(code @ (401 | 407)) => {
            let offered: Vec<&str> = head
                .lines()
                .filter_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    (name.eq_ignore_ascii_case("proxy-authenticate")
                        || name.eq_ignore_ascii_case("www-authenticate"))
                    .then(|| value.split_whitespace().next().unwrap_or_default())
                })
                .collect();
            let basic = offered.iter().any(|s| s.eq_ignore_ascii_case("basic"));
            Err(if credentials.is_some() && (basic || offered.is_empty()) {
                format!("the proxy {shown} refused the user name and password ({code})")
            } else if basic || offered.is_empty() {
                format!(
                    "the proxy {shown} wants a user name and password ({code}); give them in the \
                     proxy URL: http://user:password@host:port"
                )
            } else {
                format!(
                    "the proxy {shown} wants {} authentication ({code}), which MONTI does not \
                     support (only Basic); ask IT for a proxy with Basic authentication or none",
                    offered.join(" or ")
                )
            })
        }
        _ => Err(format!(
            "the proxy {shown} refused the tunnel to {authority}: {}{}",
            status_line.trim(),
            if port == 443 {
                ""
            } else {
                " (many proxies allow tunnels only to port 443: use the server's https address, \
                 or exempt it with NO_PROXY)"
            }
        )),
    }
}

/// `Basic ...` for credentials written into the proxy URL.
fn proxy_credentials(proxy: &Uri) -> Option<String> {
    let authority = proxy.authority()?.as_str();
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |text: &str| percent_decode(text);
    let pair = format!("{}:{}", decode(user), decode(password));
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an HTTP response head (up to the blank line), at most 16 KiB. Nothing follows it: after
/// `CONNECT` the proxy waits for the client to speak first (TLS and WebSocket both do).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 16 * 1024 {
            return Err(std::io::Error::other("the answer's head is over 16 KiB"));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The proxy's address without its password, for messages.
pub fn redact_proxy(proxy: &str) -> String {
    match proxy.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => proxy.trim_end_matches('/').to_owned(),
        },
        None => proxy.to_owned(),
    }
}

/// The client TLS configuration: ring, the system's roots plus `ca_file`, and a verifier whose
/// refusals explain themselves.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TransportError> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for err in &system.errors {
        tracing::debug!(%err, "a certificate in the system's store cannot be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(system.certs);
    tracing::debug!(added, ignored, "system trust store");
    if let Some(path) = ca_file {
        let bad = |reason: String| TransportError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|err| bad(pem_error(err)))?
            .collect::<Result<_, _>>()
            .map_err(|err| bad(pem_error(err)))?;
        if certs.is_empty() {
            return Err(bad(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| bad(format!("not a usable CA certificate: {err}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if roots.is_empty() {
        tracing::warn!("no trusted certificate authorities: https servers will be refused");
    }
    let verifier: Arc<dyn ServerCertVerifier> = if roots.is_empty() {
        Arc::new(NoRoots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|err| TransportError::Setup(format!("TLS: {err}")))?;
        Arc::new(Explaining { inner })
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TransportError::Setup(format!("TLS: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

fn pem_error(err: rustls::pki_types::pem::Error) -> String {
    match err {
        rustls::pki_types::pem::Error::Io(err) => err.to_string(),
        other => format!("not PEM: {other:?}"),
    }
}

/// A certificate refusal in words, carried through rustls and the IO layers to [`explain`].
#[derive(Debug)]
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refusal {}

/// WebPKI verification whose errors say who issued the certificate, for which name, until when.
#[derive(Debug)]
struct Explaining {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| match err {
                rustls::Error::InvalidCertificate(cert) => {
                    let words = describe_refusal(&cert, end_entity, server_name);
                    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                        Arc::new(Refusal(words)),
                    )))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Refuses every certificate, saying why: the machine trusts no authority at all.
#[derive(Debug)]
struct NoRoots;

impl ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(Refusal(
                "this computer trusts no certificate authority (the system's store is empty); \
                 install the ca-certificates package or pass the company CA with --ca-file"
                    .into(),
            ))),
        )))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no trusted roots".into()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no trusted roots".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One line on why `cert` (presented for `server_name`) was refused.
fn describe_refusal(
    error: &CertificateError,
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> String {
    let parsed = x509_parser::parse_x509_certificate(cert.as_ref()).ok();
    let issuer = parsed
        .as_ref()
        .map(|(_, cert)| cert.issuer().to_string())
        .unwrap_or_else(|| "an unreadable issuer".into());
    let subject = parsed.as_ref().map(|(_, cert)| cert.subject().to_string());
    let names = parsed
        .as_ref()
        .map(|(_, cert)| certificate_names(cert))
        .unwrap_or_default();
    let wanted = server_name.to_str();
    match error {
        CertificateError::UnknownIssuer => {
            if subject.as_deref() == Some(issuer.as_str()) {
                format!(
                    "the server's certificate is self-signed ({issuer}) and not trusted by this \
                     computer; install it in the system's store or give it as the company CA \
                     file (--ca-file, or the app's Settings)"
                )
            } else {
                format!(
                    "the server's certificate was issued by \"{issuer}\", which this computer does \
                     not trust; install that CA in the system's store or give it as the company CA \
                     file (--ca-file, or the app's Settings)"
                )
            }
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate is for {}, not for {wanted}",
                if names.is_empty() {
                    "no host name".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let until = parsed
                .as_ref()
                .map(|(_, cert)| date(cert.validity().not_after.timestamp()))
                .unwrap_or_else(|| "an unknown date".into());
            format!("the server's certificate for {wanted} expired on {until}")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let from = parsed
                .as_ref()
                .map(|(_, cert)| date(cert.validity().not_before.timestamp()))
                .unwrap_or_else(|| "an unknown date".into());
            format!(
                "the server's certificate for {wanted} is only valid from {from} (is this \
                 computer's clock right?)"
            )
        }
        CertificateError::Revoked => {
            format!("the server's certificate for {wanted} has been revoked by {issuer}")
        }
        other => format!("the server's certificate for {wanted} is not acceptable: {other}"),
    }
}

/// The DNS names and addresses a certificate is for.
fn certificate_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(alt)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    alt.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).ok()?).to_string()),
                16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn date(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0).map_or_else(
        || unix_seconds.to_string(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// An error and its causes in one line, without repeats; a certificate refusal stands alone.
///
/// reqwest's own message ("error sending request for url (...)") says nothing of the cause,
/// which is several `source()` links down (a refused certificate, a refused connection, a DNS
/// failure).
pub fn explain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(refusal) = find_refusal(err) {
            return refusal;
        }
        let text = err.to_string();
        // reqwest repeats the URL, and IO errors repeat their inner error's text.
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.retain(|part| !text.contains(part.as_str()));
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The certificate refusal carried somewhere in `err`, if any. An IO error's `source()` skips
/// the error it wraps, so wrapped errors are looked into here.
fn find_refusal(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(refusal) = err.downcast_ref::<Refusal>() {
        return Some(refusal.0.clone());
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        return find_refusal(io.get_ref()?);
    }
    match err.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Refusal>().map(|r| r.0.clone())
        }
        rustls::Error::InvalidCertificate(other) => Some(format!(
            "the server's certificate is not acceptable: {other}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_passwords_are_never_shown() {
        assert_eq!(
            redact_proxy("http://alice:s3cret@proxy:3128"),
            "http://alice:***@proxy:3128"
        );
        assert_eq!(redact_proxy("http://proxy:3128/"), "http://proxy:3128");
    }

    #[test]
    fn credentials_in_the_proxy_url_become_basic_auth() {
        let uri: Uri = "http://al%40ice:p%3Ass@proxy:3128".parse().expect("uri");
        let header = proxy_credentials(&uri).expect("credentials");
        let encoded = header.strip_prefix("Basic ").expect("basic");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(decoded, b"al@ice:p:ss");
        let plain: Uri = "http://proxy:3128".parse().expect("uri");
        assert_eq!(proxy_credentials(&plain), None);
    }

    #[test]
    fn only_http_proxies_are_accepted() {
        let err = Transport::new(&TransportOptions {
            ca_file: None,
            proxy: Some("socks5://proxy:1080".into()),
        })
        .expect_err("socks is refused");
        assert!(err.to_string().contains("only http:// proxies"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("monti-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").expect("write");
        let err = Transport::new(&TransportOptions {
            ca_file: Some(file.clone()),
            proxy: None,
        })
        .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("empty.pem") && text.contains("no PEM certificate"),
            "{text}"
        );
        let missing = Transport::new(&TransportOptions {
            ca_file: Some(dir.join("missing.pem")),
            proxy: None,
        })
        .expect_err("refused");
        assert!(missing.to_string().contains("missing.pem"), "{missing}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A proxy that answers every CONNECT with `answer`, once.
    async fn proxy_answering(answer: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let _ = read_head(&mut stream).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn proxy_authentication_other_than_basic_is_named_as_unsupported() {
        let port = proxy_answering(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n\
             Proxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let proxy: Uri = format!("http://desk:secret@127.0.0.1:{port}")
            .parse()
            .expect("uri");
        let err = tunnel(&proxy, None, "floor.example.com", 443)
            .await
            .expect_err("refused");
        assert!(
            err.contains("wants NTLM or Negotiate authentication (407)")
                && err.contains("only Basic"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[tokio::test]
    async fn a_proxy_refusing_the_destination_says_so() {
        let port = proxy_answering("HTTP/1.1 403 Filtered\r\nContent-Length: 0\r\n\r\n").await;
        let proxy: Uri = format!("http://127.0.0.1:{port}").parse().expect("uri");
        let err = tunnel(&proxy, None, "floor.example.com", 443)
            .await
            .expect_err("refused");
        assert!(
            err.contains("refused the tunnel to floor.example.com:443: HTTP/1.1 403 Filtered"),
            "{err}"
        );
        assert!(!err.contains("only to port 443"), "{err}");
        // To another port, the likely reason is named.
        let port = proxy_answering("HTTP/1.1 403 Filtered\r\nContent-Length: 0\r\n\r\n").await;
        let proxy: Uri = format!("http://127.0.0.1:{port}").parse().expect("uri");
        let err = tunnel(&proxy, None, "floor.example.com", 8080)
            .await
            .expect_err("refused");
        assert!(err.contains("only to port 443"), "{err}");
    }

    #[test]
    fn explain_follows_the_cause_chain_without_repeats() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("error sending request for url (https://floor/)")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            explain(&err),
            "error sending request for url (https://floor/): Connection refused (os error 111)"
        );
    }
}
