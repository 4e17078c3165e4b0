//! Client of the upstream GitHub Service: one pooled `reqwest` client, the API-key header sent
//! verbatim, the right method per route, and lenient parsing of the upstream envelope.
//!
//! This module reports what the upstream said; deciding what it *means* is `operations`' job.

mod calls;
mod scrub;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::sync::RwLock;

use crate::config::{ApiKey, Config};
use crate::domain::{Scope, SealedBlob};

pub use calls::{count_calls, upstream_calls};
pub use scrub::scrub;
pub use wire::{RequestData, ResponseContext, UpstreamRateLimit};

/// The upstream's verb for a secrets route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Get,
    Create,
    Delete,
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
}

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
    pub fn error_type(&self) -> &str {
        self.context.error_type.as_deref().unwrap_or("none")
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
    base_url: Arc<str>,
    api_key: Option<ApiKey>,
    timeout: Duration,
    key_ttl: Duration,
    key_cache: Arc<RwLock<Option<CachedKey>>>,
}

impl GitHubService {
    pub fn new(config: &Config) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(config.upstream_timeout.min(Duration::from_secs(3)))
            .timeout(config.upstream_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("mgraph-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Self {
            http,
            base_url: Arc::from(config.github_service_url.as_str()),
            api_key: config.upstream_api_key.clone(),
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
            .send(Method::GET, "/encryption/public-key", None)
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
        let path = format!("{}/{}", scope_prefix(scope), action.segment());
        let body = serde_json::to_vec(&wire::SecretsRequest {
            encrypted_pat: encrypted_pat.expose(),
            request_data,
        })
        .expect("request bodies serialise");
        let (status, bytes) = self.send(action.method(), &path, Some(body)).await?;
        let envelope = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Err(_) => return Err(UpstreamError::NotJson { status }),
            Ok(value) if value.get("response_context").is_some_and(|c| c.is_object()) => value,
            Ok(_) => {
                return Err(match framework_detail(&bytes) {
                    Ok(detail) => UpstreamError::NoEnvelope { status, detail },
                    Err(()) => UpstreamError::NotJson { status },
                });
            }
        };
        let parsed: wire::SecretsResponse =
            serde_json::from_value(envelope).map_err(|_| UpstreamError::NoEnvelope {
                status,
                detail: Some("malformed response_context".into()),
            })?;
        let reply = Reply {
            http_status: status,
            context: parsed.response_context,
            data: parsed.response_data,
        };
        if reply.error_type() == "decryption_failed" {
            // The key may have been rotated by a redeploy of the GitHub Service.
            self.forget_public_key().await;
        }
        Ok(reply)
    }

    /// Drops the cached public key, so the next request fetches it again.
    pub async fn forget_public_key(&self) {
        *self.key_cache.write().await = None;
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, bytes::Bytes), UpstreamError> {
        calls::record_call();
        let started = Instant::now();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.base_url, path));
        if let Some(key) = &self.api_key {
            request = request.header(key.name.clone(), key.value.clone());
        }
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((status, bytes)) => {
                tracing::debug!(%method, path, status, elapsed_ms, "upstream call");
                if status == 401 && is_middleware_rejection(&bytes) {
                    return Err(UpstreamError::Unauthorized { status });
                }
                Ok((status, bytes))
            }
            Err(err) => {
                let error = if err.is_connect() {
                    UpstreamError::Unavailable
                } else if err.is_timeout() {
                    UpstreamError::Timeout(self.timeout.as_secs())
                } else {
                    UpstreamError::Transport
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
