//! The connection under the requests: TCP, or TLS over TCP (rustls with ring: no OpenSSL, no
//! aws-lc), HTTP/1.1 or HTTP/2, with the time of each part measured. One `Connector` per
//! target and run, built once (roots, client certificate, ALPN); each virtual user asks it for
//! its own connection.
//!
//! Trust: the system's roots plus Mozilla's bundled web roots (`webpki-roots`), so a bare
//! container still reaches public APIs, plus `--cacert` / `tls.ca` for a private CA.
//! `--insecure` swaps the verifier for one that accepts any certificate (signatures are still
//! checked, so the handshake itself is real).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::h1::H1Conn;
use crate::config::{Target, TlsPlan};

/// Which HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2,
}

impl HttpVersion {
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
        }
    }
}

/// Whether HTTP/2 is offered: by ALPN over TLS (the default for https), or spoken from the
/// first byte on plain TCP (`h2c` with prior knowledge, only on request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum H2Mode {
    /// https: offer `h2` and `http/1.1` by ALPN, take what the server picks. http: HTTP/1.1.
    #[default]
    Negotiate,
    /// HTTP/1.1 only, whatever the server offers.
    Http1Only,
    /// HTTP/2 from the first byte over plain TCP (h2c prior knowledge), or `h2` only over TLS.
    PriorKnowledge,
}

/// What setting up one connection cost and what it negotiated.
#[derive(Clone, Copy, Debug)]
pub struct Handshake {
    pub connect: Duration,
    /// None on plain TCP.
    pub tls: Option<Duration>,
    pub version: HttpVersion,
    /// `TLSv1.3`, `TLSv1.2`; None on plain TCP.
    pub tls_version: Option<&'static str>,
}

/// Why a connection could not be set up.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP: refused, unreachable, timed out.
    Tcp(io::Error),
    /// The TLS handshake failed; the message says why in a user's words.
    Tls(String),
    /// The HTTP/2 preface or settings exchange failed.
    Http(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "{e}"),
            ConnectError::Tls(m) | ConnectError::Http(m) => f.write_str(m),
        }
    }
}

/// A bad `--cacert`, `tls.cert` or `tls.key` file: bad input, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsConfigError {
    pub path: String,
    pub message: String,
}

/// An HTTP proxy the connections of an LLM target go through (`HTTPS_PROXY` / `HTTP_PROXY`,
/// unless `NO_PROXY` names the host): a CONNECT tunnel for https, absolute-form requests for
/// plain http. Its credentials, if the URL had any, are only ever sent to it.
#[derive(Clone)]
pub struct Proxy {
    /// `host:port` of the proxy, for messages and the record (never its credentials).
    pub name: String,
    addr: SocketAddr,
    auth: Option<HeaderValue>,
}

impl Proxy {
    /// The proxy the environment sets for `target`, resolved; None when no proxy variable is
    /// set for its scheme, or `NO_PROXY` names it. An unusable proxy is an error in words.
    pub fn from_env(target: &Target) -> Result<Option<Proxy>, String> {
        let matcher = hyper_util::client::proxy::matcher::Matcher::from_env();
        let Ok(uri) = target.url().parse::<hyper::Uri>() else {
            return Ok(None);
        };
        let Some(intercept) = matcher.intercept(&uri) else {
            return Ok(None);
        };
        let var = if target.tls {
            "HTTPS_PROXY"
        } else {
            "HTTP_PROXY"
        };
        let proxy = intercept.uri();
        if proxy.scheme_str() != Some("http") {
            return Err(format!(
                "{var}: only http:// proxies are supported (a CONNECT tunnel carries the TLS), not {}://",
                proxy.scheme_str().unwrap_or("?")
            ));
        }
        let host = proxy.host().unwrap_or_default().trim_matches(['[', ']']);
        let port = proxy.port_u16().unwrap_or(80);
        let name = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        use std::net::ToSocketAddrs;
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("{var}: cannot resolve the proxy host `{host}`"))?;
        Ok(Some(Proxy {
            name,
            addr,
            auth: intercept.basic_auth().cloned(),
        }))
    }
}

#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    h2: H2Mode,
    tls_target: bool,
    proxy: Option<Proxy>,
    /// `host:port` for the CONNECT line.
    authority: String,
}

impl Connector {
    /// `addr` is where TCP goes (resolved, or pinned by `--resolve`); the host name of
    /// `target` is what SNI and certificate verification use.
    pub fn new(
        target: &Target,
        addr: SocketAddr,
        tls: &TlsPlan,
        h2: H2Mode,
    ) -> Result<Connector, TlsConfigError> {
        let tls_part = if target.tls {
            let config = client_config(tls, h2)?;
            let name = ServerName::try_from(target.host.clone()).map_err(|_| TlsConfigError {
                path: target.url(),
                message: format!("`{}` is not a valid TLS server name", target.host),
            })?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        Ok(Connector {
            addr,
            tls: tls_part,
            h2,
            tls_target: target.tls,
            proxy: None,
            authority: format!("{host}:{}", target.port),
        })
    }

    /// Connections go through `proxy` (TCP to it, then a tunnel or absolute-form requests).
    pub fn through(mut self, proxy: Option<Proxy>) -> Connector {
        if let Some(p) = &proxy {
            self.addr = p.addr;
        }
        self.proxy = proxy;
        self
    }

    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connect, TLS handshake where the target is https, then the HTTP handshake.
    /// The connection's driver is spawned on the current `LocalSet`. `direct`: the caller
    /// sends whole requests and wants no more than status, Server-Timing and byte counts, so
    /// an HTTP/1.1 connection (straight to the target) is driven by [`H1Conn`] in its task.
    pub async fn connect(&self, direct: bool) -> Result<(Sender, Handshake), ConnectError> {
        let (stream, mut hs) = self.open().await?;
        let sender = match hs.version {
            HttpVersion::Http1 if direct && (self.proxy.is_none() || self.tls_target) => {
                Sender::Direct(Box::new(H1Conn::new(stream)))
            }
            HttpVersion::Http2 => {
                let (sender, conn) = hyper::client::conn::http2::Builder::new(LocalExec)
                    .handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| ConnectError::Http(format!("HTTP/2 handshake failed: {e}")))?;
                let ended = Rc::new(Cell::new(None));
                let ended_by = ended.clone();
                tokio::task::spawn_local(async move {
                    // Stream errors surface on the request side; a GOAWAY with an error code
                    // ends the connection here, and its in-flight requests see only a broken
                    // pipe: `Sender::refine` names them by what ended their connection.
                    if let Err(e) = conn.await {
                        ended_by.set(std::error::Error::source(&e).and_then(h2_failure));
                    }
                });
                Sender::H2 {
                    sender,
                    scheme: if self.tls_target { "https" } else { "http" },
                    ended,
                }
            }
            HttpVersion::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| ConnectError::Http(format!("HTTP/1.1 handshake failed: {e}")))?;
                tokio::task::spawn_local(async move {
                    let _ = conn.await;
                });
                match &self.proxy {
                    // Plain http through a proxy: absolute-form requests to it.
                    Some(p) if !self.tls_target => Sender::H1Proxied {
                        sender,
                        auth: p.auth.clone(),
                    },
                    _ => Sender::H1(sender),
                }
            }
        };
        hs.version = match sender {
            Sender::H1(_) | Sender::H1Proxied { .. } | Sender::Direct(_) => HttpVersion::Http1,
            Sender::H2 { .. } => HttpVersion::Http2,
        };
        Ok((sender, hs))
    }

    /// The transport alone: TCP, then TLS. Also used by the reachability check.
    pub async fn open(&self) -> Result<(Stream, Handshake), ConnectError> {
        let t0 = Instant::now();
        let mut tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| match &self.proxy {
                Some(p) => ConnectError::Tcp(io::Error::new(
                    e.kind(),
                    format!("the proxy {} is not reachable: {e}", p.name),
                )),
                None => ConnectError::Tcp(e),
            })?;
        let _ = tcp.set_nodelay(true);
        if let Some(p) = self.proxy.as_ref().filter(|_| self.tls_target) {
            tunnel(&mut tcp, &self.authority, p).await?;
        }
        // Through a proxy this includes the CONNECT exchange.
        let connect = t0.elapsed();
        let Some((connector, name)) = &self.tls else {
            let version = match self.h2 {
                // h2c goes straight to the target, never through a proxy.
                H2Mode::PriorKnowledge if self.proxy.is_none() => HttpVersion::Http2,
                _ => HttpVersion::Http1,
            };
            let hs = Handshake {
                connect,
                tls: None,
                version,
                tls_version: None,
            };
            return Ok((Stream::Plain(tcp), hs));
        };
        let t1 = Instant::now();
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| ConnectError::Tls(describe_tls_error(&e, name)))?;
        let handshake = t1.elapsed();
        let (_, session) = tls.get_ref();
        let version = match session.alpn_protocol() {
            Some(b"h2") => HttpVersion::Http2,
            _ => HttpVersion::Http1,
        };
        let tls_version = session.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS (other)",
        });
        let hs = Handshake {
            connect,
            tls: Some(handshake),
            version,
            tls_version,
        };
        Ok((Stream::Tls(Box::new(tls)), hs))
    }
}

/// `CONNECT host:port` on a fresh connection to the proxy; the tunnel is open once it answers
/// 2xx. Nothing is read past the end of its answer (the client speaks first in TLS).
async fn tunnel(tcp: &mut TcpStream, authority: &str, proxy: &Proxy) -> Result<(), ConnectError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.auth.as_ref().and_then(|a| a.to_str().ok()) {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    let failed = |what: String| ConnectError::Http(format!("proxy {}: {what}", proxy.name));
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| failed(format!("sending CONNECT failed: {e}")))?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(failed("its answer to CONNECT is not HTTP".into()));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => {
                return Err(failed(
                    "closed the connection instead of answering CONNECT".into(),
                ));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(failed(format!("reading its answer to CONNECT failed: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    match status.as_bytes().first() {
        Some(b'2') if status_line.starts_with("HTTP/1.") => Ok(()),
        _ if status == "407" => Err(failed(
            "asks for credentials (407): put them in the proxy URL, http://USER:PASSWORD@HOST:PORT"
                .into(),
        )),
        _ => Err(failed(format!(
            "refused the tunnel to {authority}: {}",
            status_line.trim()
        ))),
    }
}

/// The system's roots, read once per process (reading the store costs milliseconds).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(tls: &TlsPlan, h2: H2Mode) -> Result<rustls::ClientConfig, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Some system certificates may not parse (odd extensions); the others still count.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca) = &tls.ca {
        let path = ca.display().to_string();
        let certs = read_certs(ca)?;
        for c in certs {
            roots.add(c).map_err(|e| TlsConfigError {
                path: path.clone(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError {
            path: "TLS".into(),
            message: e.to_string(),
        })?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(roots)
    };
    let mut config = match &tls.client_cert {
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsConfigError {
                path: key.display().to_string(),
                message: format!("no private key in it (PEM, PKCS#8, PKCS#1 or SEC1): {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsConfigError {
                    path: cert.display().to_string(),
                    message: format!("the client certificate and key do not go together: {e}"),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match h2 {
        H2Mode::Negotiate => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        H2Mode::Http1Only => vec![b"http/1.1".to_vec()],
        H2Mode::PriorKnowledge => vec![b"h2".to_vec()],
    };
    Ok(config)
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bad = |message: String| TlsConfigError {
        path: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// One line a user can act on, from what rustls said.
fn describe_tls_error(e: &io::Error, name: &ServerName<'_>) -> String {
    use rustls::{AlertDescription, CertificateError, Error};
    let host = name.to_str();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<Error>());
    match inner {
        Some(Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                format!("certificate for {host} is not trusted: pass --cacert FILE, or --insecure")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("certificate for {host} has expired: renew it, or pass --insecure")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("certificate for {host} is not valid yet (check the clocks)")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "certificate is not valid for the host name {host}: check the URL (or --resolve), or pass --insecure"
                )
            }
            CertificateError::Revoked => format!("certificate for {host} is revoked"),
            other => format!("certificate for {host} was refused: {other:?}"),
        },
        Some(Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::BadCertificate,
        )) => format!(
            "{host} asks for a client certificate: set `tls: {{ cert: FILE, key: FILE }}` in suite.yml"
        ),
        Some(Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => {
            format!("{host} speaks none of the offered protocols (ALPN)")
        }
        Some(Error::AlertReceived(a)) => {
            format!("TLS handshake with {host} failed: the server sent alert {a:?}")
        }
        Some(other) => format!("TLS handshake with {host} failed: {other}"),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
                "TLS handshake with {host} failed: the server closed the connection (is it plain http?)"
            ),
            _ => format!("TLS handshake with {host} failed: {e}"),
        },
    }
}

/// `--insecure`: any certificate chain and name; handshake signatures are still verified.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Runs HTTP/2 connection tasks on the load thread's `LocalSet` (no `Send` needed).
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// A TCP or TLS stream, one type for hyper.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// HTTP/2 connections shared by the users of one load thread (`load.connections`): user `k`
/// of the thread sends its requests as streams over slot `k % slots`. The first user to need a
/// slot opens its connection (the others wait for it); a closed one is replaced the same way.
/// Where the server picks HTTP/1.1 there is nothing to share: each user keeps its own.
pub struct Pool {
    slots: Vec<tokio::sync::Mutex<Option<Sender>>>,
}

impl Pool {
    pub fn new(slots: usize) -> Pool {
        Pool {
            slots: (0..slots.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
        }
    }

    /// A sender on the slot of user `user`, and the handshake when a connection was opened
    /// for it.
    pub async fn get(
        &self,
        user: usize,
        connector: &Connector,
        direct: bool,
    ) -> Result<(Sender, Option<Handshake>), ConnectError> {
        let mut slot = self.slots[user % self.slots.len()].lock().await;
        if let Some(shared) = slot.as_ref().and_then(Sender::share) {
            return Ok((shared, None));
        }
        *slot = None;
        let (sender, hs) = connector.connect(direct).await?;
        *slot = sender.share();
        Ok((sender, Some(hs)))
    }
}

/// The request side of one connection, HTTP/1.1 or HTTP/2, with the methods the worker uses.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    /// HTTP/1.1 to a proxy for a plain-http target: absolute-form request targets.
    H1Proxied {
        sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        auth: Option<HeaderValue>,
    },
    H2 {
        sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        scheme: &'static str,
        /// Set by the connection's driver when a GOAWAY (or another HTTP/2 error) ended it.
        ended: Rc<Cell<Option<H2Failure>>>,
    },
    /// HTTP/1.1 driven in the caller's task: whole requests in, status and counts out
    /// (`Connector::connect(direct)`); it has no `send_request`.
    Direct(Box<H1Conn<Stream>>),
}

impl Sender {
    /// Ready for the next request (HTTP/1.1: the previous one finished; HTTP/2: the
    /// connection is still open, streams are multiplexed).
    pub async fn ready(&mut self) -> bool {
        match self {
            Sender::H1(s) | Sender::H1Proxied { sender: s, .. } => s.ready().await.is_ok(),
            Sender::H2 { sender, .. } => sender.ready().await.is_ok(),
            Sender::Direct(c) => c.reusable(),
        }
    }

    /// Another handle on an open HTTP/2 connection; None on HTTP/1.1 (one request at a time)
    /// or once the connection has closed.
    fn share(&self) -> Option<Sender> {
        match self {
            Sender::H2 {
                sender,
                scheme,
                ended,
            } if !sender.is_closed() => Some(Sender::H2 {
                sender: sender.clone(),
                scheme,
                ended: ended.clone(),
            }),
            _ => None,
        }
    }

    /// A request that failed with a broken connection on HTTP/2: `goaway` when the server
    /// ended the connection with GOAWAY. The driver may learn it a moment after the request
    /// does, so this lets the other tasks run first.
    pub async fn refine<C: From<H2Failure>>(&self, class: C, broken: bool) -> C {
        let Sender::H2 { ended, .. } = self else {
            return class;
        };
        if !broken {
            return class;
        }
        for _ in 0..4 {
            if let Some(f) = ended.get() {
                return f.into();
            }
            tokio::task::yield_now().await;
        }
        class
    }

    /// A request through hyper; None on a [`Sender::Direct`] connection, which takes whole
    /// serialized requests instead (only asked for by callers that use it that way).
    pub fn send_request(
        &mut self,
        mut req: hyper::Request<Full<Bytes>>,
    ) -> Option<impl std::future::Future<Output = hyper::Result<hyper::Response<Incoming>>> + use<>>
    {
        let fut: Pin<Box<dyn std::future::Future<Output = _>>> = match self {
            Sender::Direct(_) => return None,
            Sender::H1(s) => Box::pin(s.send_request(req)),
            Sender::H1Proxied { sender, auth } => {
                if let Some(host) = req.headers().get(HOST).cloned() {
                    set_absolute(&mut req, "http", &host);
                }
                if let Some(a) = auth {
                    req.headers_mut()
                        .insert(hyper::header::PROXY_AUTHORIZATION, a.clone());
                }
                Box::pin(sender.send_request(req))
            }
            Sender::H2 { sender, scheme, .. } => {
                // HTTP/2 carries the origin in :scheme and :authority, not in a Host header.
                if let Some(host) = req.headers_mut().remove(HOST) {
                    set_absolute(&mut req, scheme, &host);
                }
                Box::pin(sender.send_request(req))
            }
        };
        Some(fut)
    }
}

fn set_absolute(req: &mut hyper::Request<Full<Bytes>>, scheme: &str, host: &HeaderValue) {
    let Ok(host) = host.to_str() else { return };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if let Ok(uri) = format!("{scheme}://{host}{path}").parse() {
        *req.uri_mut() = uri;
    }
}

/// What the server did to an HTTP/2 request: a GOAWAY that left its stream unprocessed (or
/// ended the connection with an error code), a RST_STREAM, or a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H2Failure {
    GoAway,
    ResetStream,
    Protocol,
}

/// The HTTP/2 failure in `e`; None when `e` is not an HTTP/2 error, or one of I/O (the caller
/// classifies the I/O error as for HTTP/1.1).
pub fn h2_failure(e: &(dyn std::error::Error + 'static)) -> Option<H2Failure> {
    let h2 = e.downcast_ref::<h2::Error>()?;
    if h2.is_io() {
        return None;
    }
    Some(if h2.is_go_away() && h2.is_remote() {
        H2Failure::GoAway
    } else if h2.is_reset() && h2.is_remote() {
        H2Failure::ResetStream
    } else {
        // gate itself ended the stream or connection: the server broke the protocol.
        H2Failure::Protocol
    })
}
