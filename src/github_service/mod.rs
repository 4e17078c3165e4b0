//! Client of the upstream GitHub Service: one `reqwest` client, built once and shared (its pool
//! keeps connections alive), the API-key header sent verbatim, the right method per route, and
//! lenient parsing of the upstream envelope.
//!
//! This module reports what the upstream said; deciding what it *means* is `operations`' job.

mod scrub;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method};
use reqwest::Url;
use tokio::sync::RwLock;

use crate::config::{ApiKey, Config};
use crate::domain::{Scope, SealedBlob};

pub use scrub::scrub;
pub use wire::{
    AuthTestResponse, RequestData, ResponseContext, UpstreamErrorType, UpstreamRateLimit,
};

/// How long an idle upstream connection is kept for reuse; the pool closes it then, whether or
/// not another request comes. Shorter than the 5 s keep-alive of common servers (uvicorn, Node):
/// a connection the upstream is closing at the moment a write goes out on it leaves that write's
/// fate unknown, which costs more than a new connection does.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// The longest a new connection may take to open (TCP and TLS), when half the call's own timeout
/// is longer. Shorter than the call's timeout, so that a connection that could not be opened is
/// told apart (`Unavailable`) from an upstream that did not answer (`Timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The upstream's verb for a secrets route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Get,
    Create,
    Delete,
}

impl Action {
    const ALL: [Action; 4] = [Action::List, Action::Get, Action::Create, Action::Delete];

    fn method(self) -> Method {
        match self {
            Action::List | Action::Get | Action::Create => Method::POST,
            // The upstream takes a JSON body on DELETE.
            Action::Delete => Method::DELETE,
        }
    }

    fn segment(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Get => "get",
            Action::Create => "create",
            Action::Delete => "delete",
        }
    }

    /// Whether the upstream only reads on this call: such a call may be sent again.
    fn is_read(self) -> bool {
        matches!(self, Action::List | Action::Get)
    }
}

fn scope_prefix(scope: Scope) -> &'static str {
    match scope {
        Scope::Repo => "/github-secrets-repo",
        Scope::Environment => "/github-secrets-env",
        Scope::Org => "/github-secrets-org",
    }
}

/// One upstream route: its path (for logs) and its URL, made once at start-up.
#[derive(Debug)]
struct Route {
    path: String,
    url: Url,
}

/// Every route this service calls upstream.
#[derive(Debug)]
struct Routes {
    public_key: Route,
    auth_test: Route,
    /// By scope (repo, environment, org), then action (list, get, create, delete).
    secrets: [[Route; 4]; 3],
}

impl Routes {
    /// The routes under `base` (`http://` or `https://`, optionally with a path, no credentials;
    /// the configuration checked it).
    fn new(base: &str) -> Result<Self, String> {
        let base = base.trim_end_matches('/');
        let route = |path: String| -> Result<Route, String> {
            let url = Url::parse(&format!("{base}{path}")).map_err(|e| e.to_string())?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err("it must not carry credentials".into());
            }
            Ok(Route { path, url })
        };
        let scope = |scope: Scope| -> Result<[Route; 4], String> {
            let [list, get, create, delete] = Action::ALL
                .map(|action| route(format!("{}/{}", scope_prefix(scope), action.segment())));
            Ok([list?, get?, create?, delete?])
        };
        Ok(Self {
            public_key: route("/encryption/public-key".to_owned())?,
            auth_test: route("/auth/test".to_owned())?,
            secrets: [
                scope(Scope::Repo)?,
                scope(Scope::Environment)?,
                scope(Scope::Org)?,
            ],
        })
    }

    fn secrets(&self, scope: Scope, action: Action) -> &Route {
        let s = match scope {
            Scope::Repo => 0,
            Scope::Environment => 1,
            Scope::Org => 2,
        };
        let a = match action {
            Action::List => 0,
            Action::Get => 1,
            Action::Create => 2,
            Action::Delete => 3,
        };
        &self.secrets[s][a]
    }
}

/// Why an upstream answer is not a GitHub Service envelope: not JSON, no `response_context`
/// object (a framework error, whose detail is kept), or a malformed one.
fn not_an_envelope(status: u16, bytes: &[u8]) -> UpstreamError {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(_) => UpstreamError::NotJson { status },
        Ok(value) if value.get("response_context").is_some_and(|c| c.is_object()) => {
            UpstreamError::NoEnvelope {
                status,
                detail: Some("malformed response_context".into()),
            }
        }
        Ok(_) => match framework_detail(bytes) {
            Ok(detail) => UpstreamError::NoEnvelope { status, detail },
            Err(()) => UpstreamError::NotJson { status },
        },
    }
}

/// A failure to get a usable envelope from the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to the GitHub Service")]
    Unavailable,
    #[error("the GitHub Service did not answer within {0} s")]
    Timeout(u64),
    /// The request went out (at least in part) and the connection failed before the answer was
    /// whole: the upstream may have acted on it. A read has been sent once more first.
    #[error("the connection to the GitHub Service failed before its answer was complete")]
    Dropped,
    #[error(
        "the GitHub Service rejected this service's API key (HTTP {status}); check AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME and __KEY_VALUE"
    )]
    Unauthorized { status: u16 },
    #[error("the GitHub Service answered HTTP {status} with a body that is not JSON")]
    NotJson { status: u16 },
    #[error("the GitHub Service answered HTTP {status} without a result envelope{}", detail_suffix(.detail))]
    NoEnvelope { status: u16, detail: Option<String> },
    #[error("the GitHub Service failed with HTTP {status}{}", detail_suffix(.detail))]
    Failed { status: u16, detail: Option<String> },
    #[error("the GitHub Service answered with an unusable public key")]
    BadPublicKey,
    /// Never followed: the upstream API key and the sealed blobs go to the configured GitHub
    /// Service and nowhere else. The `Location` is not kept (it is the upstream's text).
    #[error("the GitHub Service answered with a redirect (HTTP {status}), which is never followed")]
    Redirect { status: u16 },
    #[error("the GitHub Service's answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// The most this service reads of one upstream answer. A public key or an envelope is a few
/// kilobytes; a list of 30 secrets' metadata a few more.
pub const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// An upstream reply with an envelope, whatever its HTTP status.
#[derive(Debug)]
pub struct Reply {
    pub http_status: u16,
    pub context: ResponseContext,
    pub data: serde_json::Value,
}

impl Reply {
    pub fn error_type(&self) -> &UpstreamErrorType {
        &self.context.error_type
    }

    /// The upstream's first error text, scrubbed of anything that looks like a credential.
    pub fn error_text(&self) -> Option<String> {
        self.context
            .errors
            .as_ref()
            .and_then(|e| e.first())
            .filter(|e| !e.trim().is_empty())
            .map(|e| scrub(e))
    }

    /// The upstream's notes, scrubbed.
    pub fn messages(&self) -> Vec<String> {
        self.context
            .messages
            .iter()
            .flatten()
            .map(|m| scrub(m))
            .collect()
    }
}

#[derive(Debug)]
struct CachedKey {
    key: String,
    fetched: Instant,
}

/// The GitHub Service client. Cheap to clone; clones share the connection pool and the key cache.
#[derive(Clone, Debug)]
pub struct GitHubService {
    http: reqwest::Client,
    routes: Arc<Routes>,
    timeout: Duration,
    key_ttl: Duration,
    key_cache: Arc<RwLock<Option<CachedKey>>>,
}

impl GitHubService {
    pub fn new(config: &Config) -> Self {
        Self::with_client(config, |builder| builder)
    }

    /// The client of `new`, with `adjust` applied to its builder last (tests add a root
    /// certificate of their own).
    fn with_client(
        config: &Config,
        adjust: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Self {
        let routes = Arc::new(
            Routes::new(&config.github_service_url)
                .expect("the configuration checked the GitHub Service URL"),
        );
        let builder = client_builder(config.upstream_timeout, config.upstream_api_key.as_ref());
        Self {
            http: adjust(builder)
                .build()
                .expect("the HTTP client configuration is valid"),
            routes,
            timeout: config.upstream_timeout,
            key_ttl: config.public_key_ttl,
            key_cache: Arc::new(RwLock::new(None)),
        }
    }

    /// The GitHub Service's public key (64 hex characters), from the cache while it is fresh.
    pub async fn public_key(&self) -> Result<String, UpstreamError> {
        if !self.key_ttl.is_zero() {
            if let Some(cached) = self.key_cache.read().await.as_ref() {
                if cached.fetched.elapsed() < self.key_ttl {
                    return Ok(cached.key.clone());
                }
            }
        }
        let (status, body) = self
            .send_get(&self.routes.public_key, Payload::None)
            .await?;
        let parsed: wire::PublicKeyResponse =
            serde_json::from_slice(&body).map_err(|_| UpstreamError::NotJson { status })?;
        let key = parsed.public_key;
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UpstreamError::BadPublicKey);
        }
        if !self.key_ttl.is_zero() {
            *self.key_cache.write().await = Some(CachedKey {
                key: key.clone(),
                fetched: Instant::now(),
            });
        }
        Ok(key)
    }

    /// Calls one `/github-secrets-{scope}/{action}` route.
    pub async fn secrets(
        &self,
        scope: Scope,
        action: Action,
        encrypted_pat: &SealedBlob,
        request_data: RequestData<'_>,
    ) -> Result<Reply, UpstreamError> {
        let route = self.routes.secrets(scope, action);
        let body = serde_json::to_vec(&wire::SecretsRequest {
            encrypted_pat: encrypted_pat.expose(),
            request_data,
        })
        .expect("request bodies serialise");
        let resend = if action.is_read() {
            Resend::IfDropped
        } else {
            Resend::Never
        };
        let (status, bytes) = self
            .send(action.method(), route, Payload::Json(body), resend)
            .await?;
        let parsed: wire::SecretsResponse =
            serde_json::from_slice(&bytes).map_err(|_| not_an_envelope(status, &bytes))?;
        let reply = Reply {
            http_status: status,
            context: parsed.response_context,
            data: parsed.response_data,
        };
        if *reply.error_type() == UpstreamErrorType::DecryptionFailed {
            // The key may have been rotated by a redeploy of the GitHub Service.
            self.forget_public_key().await;
        }
        Ok(reply)
    }

    /// `GET /auth/test` with the sealed PAT in `X-OSBot-GitHub-PAT` (contract §3.3): whose PAT it
    /// is and its rate limit. The upstream answers 200 whatever happened; another status is a
    /// failure of the upstream itself.
    pub async fn auth_test(
        &self,
        encrypted_pat: &SealedBlob,
    ) -> Result<AuthTestResponse, UpstreamError> {
        let mut header = http::HeaderValue::from_str(encrypted_pat.expose())
            .expect("a sealed blob is base64: a valid header value");
        header.set_sensitive(true);
        let (status, body) = self
            .send_get(&self.routes.auth_test, Payload::PatHeader(header))
            .await?;
        let parsed: AuthTestResponse =
            serde_json::from_slice(&body).map_err(|_| UpstreamError::NotJson { status })?;
        if parsed
            .error_type
            .as_ref()
            .and_then(serde_json::Value::as_str)
            == Some("DECRYPTION_FAILED")
        {
            // The key may have been rotated by a redeploy of the GitHub Service.
            self.forget_public_key().await;
        }
        Ok(parsed)
    }

    /// A GET of a route outside the secrets envelope (the public key, the token check): sent
    /// once more when its connection drops; any status but 200 is the upstream's failure.
    async fn send_get(
        &self,
        route: &Route,
        payload: Payload,
    ) -> Result<(u16, bytes::Bytes), UpstreamError> {
        let (status, body) = self
            .send(Method::GET, route, payload, Resend::IfDropped)
            .await?;
        if status != 200 {
            return Err(match framework_detail(&body) {
                Ok(detail) => UpstreamError::Failed { status, detail },
                Err(()) => UpstreamError::NotJson { status },
            });
        }
        Ok((status, body))
    }

    /// Drops the cached public key, so the next request fetches it again.
    pub async fn forget_public_key(&self) {
        *self.key_cache.write().await = None;
    }

    /// One upstream call; the answer read up to [`MAX_ANSWER_BYTES`]. A read whose connection
    /// failed after it went out is sent once more (`resend`).
    ///
    /// That resend is ours, not reqwest's retry policy: the rule is that a request is sent again
    /// only when it is certain the upstream did not act on it, which for a read is always; and
    /// reqwest's policy sees only failures before an answer's head, while a connection can also
    /// fail in the middle of the body. A request that never went out is resent by hyper-util's
    /// pool itself, whatever it is.
    async fn send(
        &self,
        method: Method,
        route: &Route,
        payload: Payload,
        resend: Resend,
    ) -> Result<(u16, bytes::Bytes), UpstreamError> {
        crate::request_context::record_upstream_call();
        let started = Instant::now();
        let path = route.path.as_str();
        let mut result = self.exchange(&method, route, &payload).await;
        if resend == Resend::IfDropped && matches!(result, Err(UpstreamError::Dropped)) {
            tracing::debug!(%method, path, "the connection failed before the answer was whole; sending this read once more");
            result = self.exchange(&method, route, &payload).await;
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((status, bytes)) => {
                tracing::debug!(%method, path, status, elapsed_ms, "upstream call");
                if (300..400).contains(&status) {
                    return Err(UpstreamError::Redirect { status });
                }
                if status == 401 && is_middleware_rejection(&bytes) {
                    return Err(UpstreamError::Unauthorized { status });
                }
                Ok((status, bytes))
            }
            Err(error) => {
                tracing::warn!(%method, path, elapsed_ms, error = %error, "upstream call failed");
                Err(error)
            }
        }
    }

    /// Sends the request once and reads the answer.
    async fn exchange(
        &self,
        method: &Method,
        route: &Route,
        payload: &Payload,
    ) -> Result<(u16, bytes::Bytes), UpstreamError> {
        let mut request = self.http.request(method.clone(), route.url.clone());
        match payload {
            Payload::None => {}
            Payload::Json(body) => {
                request = request
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            Payload::PatHeader(pat) => request = request.header(PAT_HEADER, pat.clone()),
        }
        let response = request.send().await.map_err(|e| self.failure(&e))?;
        read_bounded(response).await.map_err(|failed| match failed {
            Failed::TooLarge => UpstreamError::TooLarge {
                limit: MAX_ANSWER_BYTES,
            },
            Failed::Http(e) => self.failure(&e),
        })
    }

    /// What a failed exchange means for the caller. A connection that could not be opened in
    /// time is `Unavailable`, not a `Timeout` (reqwest says both).
    fn failure(&self, err: &reqwest::Error) -> UpstreamError {
        if never_sent(err) {
            UpstreamError::Unavailable
        } else if err.is_timeout() {
            UpstreamError::Timeout(self.timeout.as_secs())
        } else {
            UpstreamError::Dropped
        }
    }
}

/// The header of `/auth/test` that carries the sealed PAT.
const PAT_HEADER: &str = "x-osbot-github-pat";

/// What a call carries besides its route. No `Debug`: it holds sealed blobs.
enum Payload {
    None,
    /// A JSON body (the secrets routes).
    Json(Vec<u8>),
    /// The sealed PAT in [`PAT_HEADER`], marked sensitive (`/auth/test`).
    PatHeader(http::HeaderValue),
}

/// Whether a call may be sent once more when its connection failed after it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// A read: the upstream acts on it by reading only.
    IfDropped,
    /// A create or delete: `operations` finds out what became of it instead.
    Never,
}

/// The one client every call goes through: HTTP/1.1, rustls with the webpki (Mozilla) roots,
/// `TCP_NODELAY`, redirects never followed (the API key and the sealed blobs go to the
/// configured GitHub Service and nowhere else), `HTTP(S)_PROXY` ignored, the API key sent with
/// every request and marked sensitive.
fn client_builder(timeout: Duration, api_key: Option<&ApiKey>) -> reqwest::ClientBuilder {
    let mut headers = HeaderMap::new();
    if let Some(key) = api_key {
        let mut value = key.value.clone();
        value.set_sensitive(true);
        headers.insert(key.name.clone(), value);
    }
    reqwest::Client::builder()
        .user_agent(concat!("mgraph-deploy/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .http1_only()
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout((timeout / 2).min(CONNECT_TIMEOUT))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

enum Failed {
    Http(reqwest::Error),
    TooLarge,
}

/// The status and body of `response`, refusing to hold more than [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<(u16, bytes::Bytes), Failed> {
    let status = response.status().as_u16();
    let declared = response.content_length().unwrap_or(0);
    if declared > MAX_ANSWER_BYTES as u64 {
        return Err(Failed::TooLarge);
    }
    let mut body = bytes::BytesMut::with_capacity(declared as usize);
    while let Some(chunk) = response.chunk().await.map_err(Failed::Http)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failed::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body.freeze()))
}

/// No byte of the request reached the upstream: the connection could not be opened, or closed
/// before the request was written to it (hyper's "canceled").
fn never_sent(err: &reqwest::Error) -> bool {
    if err.is_connect() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The upstream's API-key middleware answers 401 with `{"status": "error", "message": ...}` and no envelope.
fn is_middleware_rejection(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v.get("response_context").is_none() && v.get("message").is_some())
}

/// Describes a body without an envelope: the framework's `detail` (string or validation list),
/// `error`, or `message`, scrubbed. Stack traces and pydantic `input` echoes are never kept.
/// `Err` when the body is not JSON.
fn framework_detail(body: &[u8]) -> Result<Option<String>, ()> {
    let value = serde_json::from_slice::<serde_json::Value>(body).map_err(|_| ())?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let detail = match value.get("detail") {
        Some(serde_json::Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|item| {
                    let msg = item.get("msg").and_then(|m| m.as_str())?;
                    let loc = item
                        .get("loc")
                        .and_then(|l| l.as_array())
                        .map(|l| {
                            l.iter()
                                .map(|p| {
                                    p.as_str()
                                        .map(str::to_owned)
                                        .unwrap_or_else(|| p.to_string())
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    Some(format!("{loc}: {msg}"))
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
    .or_else(|| value.get("error").and_then(text))
    .or_else(|| value.get("detail").and_then(text))
    .or_else(|| value.get("message").and_then(text))
    .filter(|d| !d.trim().is_empty())
    .map(|d| scrub(&d));
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::watch;

    use super::*;

    /// What the upstream answers to every request below.
    fn public_key_answer() -> Vec<u8> {
        let body = format!(r#"{{"public_key":"{}"}}"#, "ab".repeat(32));
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn config(url: &str, extra: &[(&str, &str)]) -> Config {
        let mut vars: std::collections::HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert(crate::config::VAR_GITHUB_SERVICE_URL.into(), url.to_owned());
        // Every call goes upstream: no cached key.
        vars.insert(crate::config::VAR_PUBLIC_KEY_TTL.into(), "0".into());
        Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    /// A plain HTTP upstream answering every request with a public key, and the number of
    /// connections open to it, kept up to date.
    async fn counting_upstream() -> (String, watch::Receiver<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (open, watched) = watch::channel(0usize);
        let open = Arc::new(open);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                open.send_modify(|n| *n += 1);
                let open = open.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let mut request = Vec::new();
                    loop {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            request.drain(..end + 4);
                            if stream.write_all(&public_key_answer()).await.is_err() {
                                break;
                            }
                        }
                    }
                    open.send_modify(|n| *n -= 1);
                });
            }
        });
        (url, watched)
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout_without_another_request() {
        let (url, mut open) = counting_upstream().await;
        // The service's client with a shorter idle timeout than POOL_IDLE_TIMEOUT, not to wait
        // for that one.
        let idle = Duration::from_millis(200);
        let upstream =
            GitHubService::with_client(&config(&url, &[]), |b| b.pool_idle_timeout(idle));

        // A burst: many calls at once, each on a connection of its own.
        let calls: Vec<_> = (0..16).map(|_| upstream.public_key()).collect();
        for key in futures_util::future::join_all(calls).await {
            assert_eq!(key.unwrap().len(), 64);
        }
        assert!(
            *open.borrow() > 1,
            "the burst opened {} connections",
            *open.borrow()
        );

        // Nothing more is asked of the client: within two idle timeouts (the pool checks once
        // per timeout), every connection is closed.
        tokio::time::timeout(Duration::from_secs(10), open.wait_for(|n| *n == 0))
            .await
            .expect("every idle connection is closed")
            .unwrap();
    }

    #[tokio::test]
    async fn calls_one_after_another_reuse_one_connection() {
        let (url, open) = counting_upstream().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let upstream = GitHubService::new(&config(&url, &[]));
        for _ in 0..5 {
            upstream.public_key().await.unwrap();
            accepted.fetch_max(*open.borrow(), Ordering::SeqCst);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_that_cannot_be_opened_in_time_is_unavailable_not_a_timeout() {
        // Accepts TCP and never answers the TLS handshake.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let config = config(
            &format!("https://127.0.0.1:{port}"),
            &[(crate::config::VAR_UPSTREAM_TIMEOUT, "1")],
        );

        let answer = GitHubService::new(&config).public_key().await;

        assert_eq!(answer, Err(UpstreamError::Unavailable));
    }

    #[test]
    fn the_upstream_api_key_never_shows_in_a_debug_print() {
        let upstream = GitHubService::new(&config(
            "https://github.dev.mgraph.ai",
            &[
                (crate::config::VAR_UPSTREAM_KEY_NAME, "x-api-key"),
                (
                    crate::config::VAR_UPSTREAM_KEY_VALUE,
                    "upstream-key-SECRET-42",
                ),
            ],
        ));
        let printed = format!("{upstream:?}");
        assert!(printed.contains("GitHubService"), "{printed}");
        assert!(!printed.contains("SECRET"), "{printed}");
    }

    /// A certificate authority of the test's own, and a certificate it signed for `localhost`.
    struct Pki {
        root_pem: String,
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
            root_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// An HTTPS server on loopback answering every request with a public key; its port.
    async fn https_upstream(pki: &Pki) -> u16 {
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
                    let _ = tls.write_all(&public_key_answer()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn an_https_upstream_is_called_over_tls_and_its_certificate_is_verified() {
        let pki = pki();
        let port = https_upstream(&pki).await;
        let config = config(&format!("https://localhost:{port}"), &[]);

        // Trusting the test's root, the call goes through.
        let root = reqwest::Certificate::from_pem(pki.root_pem.as_bytes()).unwrap();
        let trusting = GitHubService::with_client(&config, |b| b.add_root_certificate(root));
        assert_eq!(trusting.public_key().await.unwrap(), "ab".repeat(32));

        // With the service's own roots, a certificate from elsewhere is refused: no connection.
        let service = GitHubService::new(&config);
        assert_eq!(service.public_key().await, Err(UpstreamError::Unavailable));
    }
}
