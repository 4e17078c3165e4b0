//! Shared harness of the router tests: the service's router in memory, a `wiremock` GitHub
//! Service per test, sealed-looking blobs, and builders of the upstream's envelopes.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt as _;
use mgraph_deploy::config::Config;
use mgraph_deploy::history::History;
use mgraph_deploy::{AppState, build_router};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const API_KEY_NAME: &str = "x-deploy-key";
pub const API_KEY_VALUE: &str = "test-deploy-key-value";
pub const UPSTREAM_KEY_NAME: &str = "x-github-service-key";
pub const UPSTREAM_KEY_VALUE: &str = "upstream key, sent verbatim";

/// `len` bytes that look random, from a seed: distinct blobs never share a long substring.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect()
}

/// A well-formed sealed PAT (48 bytes of seal + a 40-character token), standard base64.
pub fn sealed_pat() -> String {
    sealed_blob(1, 88)
}

/// A well-formed sealed value.
pub fn sealed_value() -> String {
    sealed_blob(2, 48 + 20)
}

/// A distinct well-formed blob of `decoded_len` bytes.
pub fn sealed_blob(seed: u64, decoded_len: usize) -> String {
    STANDARD.encode(noise(seed, decoded_len))
}

pub fn repo_target() -> Value {
    json!({ "owner": "octo-org", "repo": "my-service" })
}

pub fn env_target() -> Value {
    json!({ "owner": "octo-org", "repo": "my-service", "environment": "prod" })
}

pub fn org_target() -> Value {
    json!({ "org": "octo-org" })
}

/// A response of the router, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn error_type(&self) -> &str {
        self.json["error_type"].as_str().unwrap_or("<none>")
    }

    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    pub fn messages(&self) -> Vec<String> {
        self.json["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The router under test and its upstream.
pub struct Harness {
    pub upstream: MockServer,
    pub router: Router,
    /// The history's SQLite file, when it keeps one (see [`Harness::with_history`]).
    pub store_path: Option<PathBuf>,
    _store_dir: Option<TempDir>,
}

/// The variables every harness sets, pointing at `upstream_url`.
pub fn test_env(upstream_url: &str) -> HashMap<String, String> {
    [
        ("URL__TARGET_SERVER__GITHUB_SERVICE", upstream_url),
        (
            "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME",
            UPSTREAM_KEY_NAME,
        ),
        (
            "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE",
            UPSTREAM_KEY_VALUE,
        ),
        ("FAST_API__AUTH__API_KEY__NAME", API_KEY_NAME),
        ("FAST_API__AUTH__API_KEY__VALUE", API_KEY_VALUE),
        ("DEPLOY__UPSTREAM_TIMEOUT_SECONDS", "1"),
        // No history unless a test asks for one (`Harness::with_history`).
        ("DEPLOY__STORE", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn config_from(vars: &HashMap<String, String>) -> Config {
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid")
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_env(|_| {}).await
    }

    /// A harness whose configuration `adjust` may change (remove the API key, add a TTL...).
    pub async fn with_env(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        Self::with_state(adjust, |_| {}).await
    }

    /// A harness whose configuration and then state may be changed (a faster retry policy...).
    pub async fn with_state(
        adjust: impl FnOnce(&mut HashMap<String, String>),
        adjust_state: impl FnOnce(&mut AppState),
    ) -> Self {
        Self::with_store(None, adjust, adjust_state).await
    }

    /// A harness of a router built elsewhere.
    pub fn serving(upstream: MockServer, router: Router) -> Self {
        Self {
            upstream,
            router,
            store_path: None,
            _store_dir: None,
        }
    }

    /// A harness whose history is a fresh SQLite file.
    pub async fn with_history() -> Self {
        Self::with_history_and(|_| {}, |_| {}).await
    }

    /// A harness with a fresh SQLite history, whose configuration and state may be changed.
    pub async fn with_history_and(
        adjust: impl FnOnce(&mut HashMap<String, String>),
        adjust_state: impl FnOnce(&mut AppState),
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self::with_store(Some(dir), adjust, adjust_state).await
    }

    async fn with_store(
        dir: Option<TempDir>,
        adjust: impl FnOnce(&mut HashMap<String, String>),
        adjust_state: impl FnOnce(&mut AppState),
    ) -> Self {
        keep_every_callsite_live();
        let upstream = MockServer::start().await;
        let mut vars = test_env(&upstream.uri());
        let store_path = dir.as_ref().map(|dir| dir.path().join("history.sqlite3"));
        if let Some(path) = &store_path {
            vars.insert("DEPLOY__STORE".into(), format!("sqlite:{}", path.display()));
        }
        adjust(&mut vars);
        let config = config_from(&vars);
        let history = History::open(&config.store, config.history_retention)
            .await
            .expect("the test history opens");
        let mut state = AppState::new(&config, history);
        adjust_state(&mut state);
        let router = build_router(state);
        Self {
            upstream,
            router,
            store_path,
            _store_dir: dir,
        }
    }

    /// Sends `request` as is.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// `GET path` with the API key.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(authorised(Method::GET, path).body(Body::empty()).unwrap())
            .await
    }

    /// `POST /operations/github/secrets/{verb}` with the API key and `body` as JSON.
    pub async fn operation(&self, verb: &str, body: &Value) -> Reply {
        self.post_raw(
            &format!("/operations/github/secrets/{verb}"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// `POST path` with the API key and these exact bytes.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        self.send(
            authorised(Method::POST, path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Every request the upstream received so far.
    pub async fn upstream_requests(&self) -> Vec<wiremock::Request> {
        self.upstream
            .received_requests()
            .await
            .expect("request recording is on")
    }

    /// `(method, path)` of every upstream request, in order.
    pub async fn upstream_calls(&self) -> Vec<(String, String)> {
        self.upstream_requests()
            .await
            .iter()
            .map(|r| (r.method.to_string(), r.url.path().to_owned()))
            .collect()
    }

    /// Answers `verb_path` (e.g. `POST /github-secrets-repo/get`) with `template`, any number of times.
    pub async fn upstream_answers(
        &self,
        http_method: &str,
        route: &str,
        template: ResponseTemplate,
    ) {
        Mock::given(method(http_method))
            .and(path(route))
            .respond_with(template)
            .mount(&self.upstream)
            .await;
    }
}

/// A request builder carrying this service's API key in its header.
pub fn authorised(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(API_KEY_NAME, API_KEY_VALUE)
}

/// The rate limit the upstream reports after a successful call.
pub fn upstream_rate_limit() -> Value {
    json!({ "limit": 5000, "remaining": 4990, "reset": 1_795_356_724u64, "used": 10 })
}

/// A successful upstream envelope with `data`.
pub fn upstream_ok(status: u16, data: Value, messages: &[&str]) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "response_context": {
            "success": true, "status_code": status, "duration": 0.0, "timestamp": 1_795_356_724_737u64,
            "messages": messages, "errors": [], "error_type": "none",
            "rate_limit": upstream_rate_limit(),
        },
        "response_data": data,
    }))
}

/// A failed upstream envelope, with `rate_limit: null` as the upstream sends on most failures.
pub fn upstream_failure(
    status: u16,
    error_type: &str,
    error: &str,
    data: Value,
) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "response_context": {
            "success": false, "status_code": status, "duration": 0.0, "timestamp": 1_795_356_724_737u64,
            "messages": [], "errors": [error], "error_type": error_type, "rate_limit": null,
        },
        "response_data": data,
    }))
}

/// The secret metadata GitHub returns.
pub fn meta(name: &str) -> Value {
    json!({ "name": name, "created_at": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z" })
}

/// An upstream list answer holding these names.
pub fn listing(names: &[&str]) -> ResponseTemplate {
    upstream_ok(
        200,
        json!({ "secrets": names.iter().map(|n| meta(n)).collect::<Vec<_>>() }),
        &[],
    )
}

/// `(owner/repo)` body of a single-secret operation.
pub fn secret_body(target: Value, name: &str) -> Value {
    json!({ "encrypted_pat": sealed_pat(), "target": target, "secret_name": name })
}

pub fn create_body(target: Value, name: &str) -> Value {
    json!({ "encrypted_pat": sealed_pat(), "target": target, "secret_name": name,
            "encrypted_value": sealed_value() })
}

/// The upstream's answers to get/delete when GitHub refused (it reports them all as 404).
pub fn swallowed_404(name: &str) -> ResponseTemplate {
    upstream_failure(
        404,
        "not_found",
        &format!("Secret '{name}' not found"),
        json!({ "secret": null }),
    )
}

/// The upstream's answer to create when GitHub refused for any reason.
pub fn swallowed_500() -> ResponseTemplate {
    upstream_failure(
        500,
        "github_api_error",
        "Failed to create secret",
        json!({ "created": false }),
    )
}

/// The list answers of a PAT GitHub rejects, lacks scope, or is rate limited.
pub fn list_invalid_pat() -> ResponseTemplate {
    upstream_failure(
        401,
        "invalid_pat",
        "GitHub API error: 401 Client Error: Unauthorized for url: https://api.github.com/repos/o/r/actions/secrets",
        json!({ "secrets": [] }),
    )
}

pub fn list_forbidden() -> ResponseTemplate {
    upstream_failure(
        403,
        "forbidden",
        "GitHub API error: 403 Error",
        json!({ "secrets": [] }),
    )
}

pub fn list_not_found() -> ResponseTemplate {
    upstream_failure(
        404,
        "not_found",
        "GitHub API error: 404 Error",
        json!({ "secrets": [] }),
    )
}

/// The body of a `list` in `target`.
pub fn list_body(target: Value) -> Value {
    json!({ "encrypted_pat": sealed_pat(), "target": target })
}

/// Tracing caches, per process, whether a log statement can be enabled at all; a statement first
/// reached by a test that captures nothing could be cached as "never" just as another test
/// installs its capture (`tests/api/logs.rs`). A global subscriber that keeps every statement
/// "sometimes" (and records nothing) makes each thread's own subscriber decide, every time.
pub fn keep_every_callsite_live() {
    struct Undecided;
    impl tracing::Subscriber for Undecided {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::TRACE)
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Undecided);
        // What reqwest logs through the `log` crate reaches the test's subscriber too.
        let _ = tracing_log::LogTracer::init();
    });
}
