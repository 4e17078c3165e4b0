//! HTTP/1.1 to the GitHub Service: connections kept alive and reused, each request bounded in
//! time and in the size of its answer, redirects never followed, and the request the upstream
//! dropped before answering sent once more on a new connection.
//!
//! Built on hyper's own HTTP/1 client connection, with hyper-util's connector (DNS, happy
//! eyeballs, `TCP_NODELAY`) under hyper-rustls (TLS, webpki roots), and a plain stack of idle
//! connections. A general client (reqwest, or hyper-util's pooled client) costs several times
//! more CPU per call on this path: a pool shared across runtimes, a spawned task per HTTP/1
//! request to return its connection, URL re-parsing (issue 14's profile and benchmark).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower::ServiceExt;

/// How long an idle connection is kept for reuse.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle connections kept at most; more are closed when they come back.
const MAX_IDLE: usize = 256;
/// The longest a new connection may take to open (TCP and TLS), when the call's own timeout is
/// longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the GitHub Service is and what every request to it carries.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `scheme://authority`, what the connector opens.
    origin: Uri,
    /// The base URL's path, without a trailing `/`, put in front of every route.
    path_prefix: String,
    /// `host`, `user-agent` and the API key, sent with every request.
    headers: HeaderMap,
}

impl Endpoint {
    /// The endpoint of `base` (`http://` or `https://`, optionally with a path; the
    /// configuration checked it), sending `api_key` with every request.
    pub fn new(base: &str, api_key: Option<(HeaderName, HeaderValue)>) -> Result<Self, String> {
        let uri: Uri = base.parse().map_err(|e| format!("{e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err("it has no scheme or host".into());
        };
        if authority.as_str().contains('@') {
            return Err("it must not carry credentials".into());
        }
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("{e}"))?;
        let mut headers = HeaderMap::new();
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| format!("{e}"))?;
        headers.insert(header::HOST, host);
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("mgraph-deploy/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some((name, value)) = api_key {
            headers.insert(name, value);
        }
        Ok(Self {
            origin,
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
            headers,
        })
    }

    /// The request target of `path` (origin-form, as HTTP/1.1 sends it to a server).
    pub fn target(&self, path: &str) -> Uri {
        format!("{}{path}", self.path_prefix)
            .parse()
            .expect("route paths are fixed ASCII paths")
    }
}

/// Why a call got no complete answer.
#[derive(Debug)]
pub enum CallFailure {
    /// No connection could be opened (DNS, refused, TLS, or the connect timeout).
    Connect,
    /// No complete answer within the call's timeout.
    Timeout,
    /// The connection failed while the request was sent or the answer read.
    Transport,
    /// The answer is larger than the bound.
    TooLarge,
}

/// The connections to one GitHub Service. A connection is driven by a task of the runtime
/// that opened it: give each runtime its own [`Transport`] ([`Transport::fresh`]).
#[derive(Debug)]
pub struct Transport {
    endpoint: Arc<Endpoint>,
    connector: HttpsConnector<HttpConnector>,
    timeout: Duration,
    connect_timeout: Duration,
    /// Oldest first; the most recently used is taken first.
    idle: Mutex<VecDeque<Idle>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Transport {
    /// A call (connecting, sending, reading the whole answer) takes at most `timeout`. An
    /// `https` GitHub Service must show a certificate from a root of the webpki set (Mozilla's).
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        let tls = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .expect("ring supports rustls' default protocol versions");
        Self::with_tls(endpoint, timeout, tls)
    }

    fn with_tls(
        endpoint: Endpoint,
        timeout: Duration,
        tls: HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        Self {
            endpoint: Arc::new(endpoint),
            connector,
            timeout,
            connect_timeout: timeout.min(CONNECT_TIMEOUT),
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// The same endpoint and settings, with no connection of its own yet.
    pub fn fresh(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            connector: self.connector.clone(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `method target` with `body` (JSON) and reads the answer, at most `limit` bytes of
    /// it. A request the upstream dropped before any answer came back (a kept-alive connection
    /// it had closed) is sent once more on a new connection; `on_retry` is told.
    pub async fn call(
        &self,
        method: &Method,
        target: &Uri,
        body: Option<Bytes>,
        limit: usize,
        on_retry: impl FnOnce(),
    ) -> Result<(u16, Bytes), CallFailure> {
        let request = || {
            let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = target.clone();
            let headers = request.headers_mut();
            headers.clone_from(&self.endpoint.headers);
            if body.is_some() {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            request
        };
        let exchange = async {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            let response = match sender.send_request(request()).await {
                Err(e) if reused && closed_before_answer(&e) => {
                    on_retry();
                    sender = self.connect().await?;
                    sender.send_request(request()).await
                }
                other => other,
            }
            .map_err(|_| CallFailure::Transport)?;
            let status = response.status().as_u16();
            let body = read_bounded(response.into_body(), limit).await?;
            self.checkin(sender);
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(CallFailure::Timeout))
    }

    /// The most recently used idle connection that is still open and ready.
    fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(Idle { sender, since }) = idle.pop_back() {
            if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps a connection whose answer was read whole for the next request, and closes the
    /// oldest ones that idled too long or that the upstream closed (dropping a sender closes
    /// its connection).
    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while idle.front().is_some_and(|oldest| {
            oldest.since.elapsed() >= IDLE_TIMEOUT || oldest.sender.is_closed()
        }) {
            idle.pop_front();
        }
        if sender.is_ready() && idle.len() < MAX_IDLE {
            idle.push_back(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// A new connection, driven by a task of the current runtime until it closes.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, CallFailure> {
        let open = async {
            let io = self
                .connector
                .clone()
                .oneshot(self.endpoint.origin.clone())
                .await
                .map_err(|_| CallFailure::Connect)?;
            let (sender, connection) = http1::handshake(io)
                .await
                .map_err(|_| CallFailure::Connect)?;
            Ok::<_, CallFailure>((sender, connection))
        };
        let (sender, connection) = tokio::time::timeout(self.connect_timeout, open)
            .await
            .unwrap_or(Err(CallFailure::Connect))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "an upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// The body, refusing to hold more than `limit` bytes. An answer in one chunk is kept as it came.
async fn read_bounded(mut body: hyper::body::Incoming, limit: usize) -> Result<Bytes, CallFailure> {
    let declared = hyper::body::Body::size_hint(&body).exact().unwrap_or(0);
    if declared > limit as u64 {
        return Err(CallFailure::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut held = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| CallFailure::Transport)?.into_data() else {
            continue;
        };
        held += data.len();
        if held > limit {
            return Err(CallFailure::TooLarge);
        }
        if first.is_none() && joined.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(kept) = first.take() {
            joined.reserve((declared as usize).max(held));
            joined.extend_from_slice(&kept);
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// The connection closed before any part of an answer arrived: what a kept-alive connection
/// that the upstream had already closed looks like. (Errors after the answer's head began are
/// not these, and are never sent again.)
fn closed_before_answer(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A certificate authority of the test's own, and a certificate it signed for `localhost`.
    struct Pki {
        root: rustls::pki_types::CertificateDer<'static>,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    }

    fn pki() -> Pki {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        Pki {
            root: ca.der().clone(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// An HTTPS server on loopback answering every request `200 ok`; its port.
    async fn https_server(pki: &Pki) -> u16 {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    let _ = tls.write_all(answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn tls_endpoint(port: u16) -> Endpoint {
        Endpoint::new(&format!("https://localhost:{port}"), None).unwrap()
    }

    async fn get(transport: &Transport) -> Result<(u16, Bytes), CallFailure> {
        let target = transport.endpoint.target("/encryption/public-key");
        transport
            .call(&Method::GET, &target, None, 1024, || {})
            .await
    }

    /// A plain HTTP upstream answering every request `200 ok`, counting the connections it
    /// accepted; its port and the count.
    async fn counting_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let mut request = Vec::new();
                    loop {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            request.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    #[test]
    fn the_upstream_api_key_never_shows_in_a_debug_print() {
        let mut value = HeaderValue::from_static("upstream-key-SECRET-42");
        value.set_sensitive(true);
        let name = HeaderName::from_static("x-api-key");
        let endpoint = Endpoint::new("https://github.dev.mgraph.ai", Some((name, value))).unwrap();
        let transport = Transport::new(endpoint, Duration::from_secs(1));
        let printed = format!("{transport:?}");
        assert!(printed.contains("x-api-key"), "{printed}");
        assert!(!printed.contains("SECRET"), "{printed}");
    }

    #[tokio::test]
    async fn calls_one_after_another_reuse_one_connection_until_it_idled_too_long() {
        let (port, accepted) = counting_server().await;
        let endpoint = Endpoint::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let transport = Transport::new(endpoint, Duration::from_secs(5));
        for _ in 0..5 {
            assert_eq!(get(&transport).await.unwrap().0, 200);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);

        tokio::time::pause();
        tokio::time::advance(IDLE_TIMEOUT).await;
        tokio::time::resume();
        assert_eq!(get(&transport).await.unwrap().0, 200);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_https_upstream_is_called_over_tls_and_its_certificate_is_verified() {
        let pki = pki();
        let port = https_server(&pki).await;
        let timeout = Duration::from_secs(5);

        // Trusting the test's root, the call goes through.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.root.clone()).unwrap();
        let tls = HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        let trusting = Transport::with_tls(tls_endpoint(port), timeout, tls);
        let (status, body) = get(&trusting).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));

        // With the service's own roots, a certificate from elsewhere is refused: no connection.
        let service = Transport::new(tls_endpoint(port), timeout);
        assert!(matches!(get(&service).await, Err(CallFailure::Connect)));
    }
}
