//! Client of the upstream GitHub Service: kept-alive connections ([`transport`]), the API-key
//! header sent verbatim, the right method per route, and lenient parsing of the upstream envelope.
//!
//! This module reports what the upstream said; deciding what it *means* is `operations`' job.

mod scrub;
mod transport;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Uri};
use tokio::sync::RwLock;

use crate::config::Config;
use crate::domain::{Scope, SealedBlob};

pub use scrub::scrub;
use transport::{CallFailure, Endpoint, Transport};
pub use wire::{RequestData, ResponseContext, UpstreamErrorType, UpstreamRateLimit};

/// The upstream's verb for a secrets route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Get,
    Create,
    Delete,
}

/// One upstream route: its path (for logs) and its request target, made once at start-up.
#[derive(Debug)]
struct Route {
    path: String,
    target: Uri,
}

impl Route {
    fn new(endpoint: &Endpoint, path: String) -> Self {
        let target = endpoint.target(&path);
        Self { path, target }
    }
}

/// Every route this service calls upstream.
#[derive(Debug)]
struct Routes {
    public_key: Route,
    /// By scope (repo, environment, org), then action (list, get, create, delete).
    secrets: [[Route; 4]; 3],
}

impl Routes {
    fn new(endpoint: &Endpoint) -> Self {
        let actions = [Action::List, Action::Get, Action::Create, Action::Delete];
        let scope = |scope: Scope| {
            actions.map(|action| {
                Route::new(
                    endpoint,
                    format!("{}/{}", scope_prefix(scope), action.segment()),
                )
            })
        };
        Self {
            public_key: Route::new(endpoint, "/encryption/public-key".to_owned()),
            secrets: [
                scope(Scope::Repo),
                scope(Scope::Environment),
                scope(Scope::Org),
            ],
        }
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

impl Action {
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
}

fn scope_prefix(scope: Scope) -> &'static str {
    match scope {
        Scope::Repo => "/github-secrets-repo",
        Scope::Environment => "/github-secrets-env",
        Scope::Org => "/github-secrets-org",
    }
}

/// A failure to get a usable envelope from the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to the GitHub Service")]
    Unavailable,
    #[error("the GitHub Service did not answer within {0} s")]
    Timeout(u64),
    #[error("the connection to the GitHub Service failed mid-request")]
    Transport,
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

/// The GitHub Service client. Cheap to clone; clones share the connections and the key cache.
#[derive(Clone, Debug)]
pub struct GitHubService {
    transport: Arc<Transport>,
    routes: Arc<Routes>,
    key_ttl: Duration,
    key_cache: Arc<RwLock<Option<CachedKey>>>,
}

impl GitHubService {
    pub fn new(config: &Config) -> Self {
        let api_key = config
            .upstream_api_key
            .as_ref()
            .map(|key| (key.name.clone(), key.value.clone()));
        let endpoint = Endpoint::new(&config.github_service_url, api_key)
            .expect("the configuration checked the GitHub Service URL");
        Self {
            routes: Arc::new(Routes::new(&endpoint)),
            transport: Arc::new(Transport::new(endpoint, config.upstream_timeout)),
            key_ttl: config.public_key_ttl,
            key_cache: Arc::new(RwLock::new(None)),
        }
    }

    /// The same client with connections of its own; the key cache stays shared. For a runtime
    /// of its own: a connection is driven by a task of the runtime that opened it.
    pub fn with_own_connections(&self) -> Self {
        Self {
            transport: Arc::new(self.transport.fresh()),
            ..self.clone()
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
            .send(Method::GET, &self.routes.public_key, None)
            .await?;
        if status != 200 {
            return Err(match framework_detail(&body) {
                Ok(detail) => UpstreamError::Failed { status, detail },
                Err(()) => UpstreamError::NotJson { status },
            });
        }
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
        .expect("request bodies serialise")
        .into();
        let (status, bytes) = self.send(action.method(), route, Some(body)).await?;
        // One pass for the envelope the upstream normally sends; only an answer that is not one
        // is read again, to say what it is.
        // A write's or a delete's `response_data` is never read: it is skipped, not built.
        let parsed = match action {
            Action::List | Action::Get => serde_json::from_slice(&bytes),
            Action::Create | Action::Delete => serde_json::from_slice::<
                wire::SecretsResponse<serde::de::IgnoredAny>,
            >(&bytes)
            .map(|parsed| wire::SecretsResponse {
                response_context: parsed.response_context,
                response_data: serde_json::Value::Null,
            }),
        };
        let parsed: wire::SecretsResponse = match parsed {
            Ok(parsed) => parsed,
            Err(_) => return Err(not_an_envelope(status, &bytes)),
        };
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

    /// Drops the cached public key, so the next request fetches it again.
    pub async fn forget_public_key(&self) {
        *self.key_cache.write().await = None;
    }

    /// One upstream call; the answer read up to [`MAX_ANSWER_BYTES`]. A request the upstream
    /// dropped before any answer came back (a kept-alive connection it had closed after an error
    /// of its own) is sent once more on a new connection.
    async fn send(
        &self,
        method: Method,
        route: &Route,
        body: Option<bytes::Bytes>,
    ) -> Result<(u16, bytes::Bytes), UpstreamError> {
        crate::request_context::record_upstream_call();
        let started = Instant::now();
        let path = route.path.as_str();
        let result = self
            .transport
            .call(&method, &route.target, body, MAX_ANSWER_BYTES, || {
                tracing::debug!(%method, path, "the upstream dropped the request before answering; sending it once more on a new connection");
            })
            .await;
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
            Err(failure) => {
                let error = match failure {
                    CallFailure::TooLarge => UpstreamError::TooLarge {
                        limit: MAX_ANSWER_BYTES,
                    },
                    CallFailure::Connect => UpstreamError::Unavailable,
                    CallFailure::Timeout => {
                        UpstreamError::Timeout(self.transport.timeout().as_secs())
                    }
                    CallFailure::Transport => UpstreamError::Transport,
                };
                tracing::warn!(%method, path, elapsed_ms, error = %error, "upstream call failed");
                Err(error)
            }
        }
    }
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
