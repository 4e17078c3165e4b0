//! A faithful stand-in for the MGraph-AI GitHub Service, for tests and the offline local stack.
//!
//! It holds a real X25519 key pair and really opens the sealed boxes it receives, keeps an
//! in-memory GitHub ([`github::GitHub`]: repositories, environments, organisations, secrets with
//! timestamps, PATs with scopes and states), and answers the routes and envelope of
//! `github-service-contract.md` §3 **with the upstream's quirks** (see [`routes`]). Fault knobs
//! inject latency, 5xx answers, connection resets, rate limiting and key rotation. A test can
//! read back the plaintext of any stored secret.
//!
//! This crate is never linked into the Deploy Service binary.

pub mod github;
pub mod keys;
mod routes;
pub mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use github::{GitHub, PatKind, RateLimit, Scope, StoredSecret};
pub use keys::KeyPair;
pub use routes::STORED_VALUE;

/// The emulator's own API key (the GitHub Service's `FAST_API__AUTH__API_KEY__*`).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub value: String,
}

/// A fault injected into the next request(s), before the API-key check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a non-envelope body, as a failing proxy or Lambda would.
    Status(u16),
    /// Close the connection without a complete response.
    Reset,
}

#[derive(Debug, Default)]
struct Faults {
    latency: Duration,
    queue: VecDeque<Fault>,
}

pub(crate) struct Shared {
    github: Mutex<GitHub>,
    keys: Mutex<KeyPair>,
    faults: Mutex<Faults>,
    api_key: Option<ApiKey>,
    requests: Mutex<Vec<String>>,
}

/// What the emulator starts with.
#[derive(Debug)]
pub struct Options {
    pub listen: SocketAddr,
    /// `None` turns the API-key middleware off.
    pub api_key: Option<ApiKey>,
    pub keys: KeyPair,
    /// The GitHub to serve; [`Emulator::seed`] when `None`.
    pub github: Option<GitHub>,
}

impl Default for Options {
    /// Loopback, an ephemeral port, a random API key and key pair, the preset PATs and
    /// [`Emulator::seed`]'s repositories.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: Some(ApiKey {
                name: "x-github-service-key".to_owned(),
                value: random_token(),
            }),
            keys: KeyPair::generate(),
            github: None,
        }
    }
}

/// The owner, repository, environment and organisation every emulator starts with.
pub mod seed {
    pub const OWNER: &str = "local-owner";
    pub const REPO: &str = "local-repo";
    pub const OTHER_REPO: &str = "other-repo";
    pub const ENVIRONMENT: &str = "production";
    pub const ORG: &str = "local-org";
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    url: String,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator with [`Options::default`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> std::io::Result<Self> {
        let github = options.github.unwrap_or_else(Self::seed);
        let shared = Arc::new(Shared {
            github: Mutex::new(github),
            keys: Mutex::new(options.keys),
            faults: Mutex::new(Faults::default()),
            api_key: options.api_key,
            requests: Mutex::new(Vec::new()),
        });
        let router = router(shared.clone());
        let listener = TcpListener::bind(options.listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            url,
            shared,
            _stop: stop,
        })
    }

    /// The preset PATs plus `local-owner/local-repo` (with environment `production`),
    /// `local-owner/other-repo` and the organisation `local-org`.
    pub fn seed() -> GitHub {
        let mut github = GitHub::with_preset_pats();
        github.add_environment(seed::OWNER, seed::REPO, seed::ENVIRONMENT);
        github.add_repo(seed::OWNER, seed::OTHER_REPO);
        github.add_org(seed::ORG);
        github
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn api_key(&self) -> Option<&ApiKey> {
        self.shared.api_key.as_ref()
    }

    /// The current public key, 64 lowercase hex characters.
    pub fn public_key_hex(&self) -> String {
        self.shared.keys.lock().expect("keys lock").public_hex()
    }

    /// Seals `plaintext` to the current key, as a client would.
    pub fn seal(&self, plaintext: &str) -> String {
        self.shared
            .keys
            .lock()
            .expect("keys lock")
            .seal(plaintext.as_bytes())
    }

    /// Opens a blob sealed to the current key, as the GitHub Service would.
    pub fn open(&self, blob: &str) -> Result<String, keys::BlobError> {
        self.shared.keys.lock().expect("keys lock").open(blob)
    }

    /// Replaces the key pair, as every redeploy of the real service does. Blobs sealed to the
    /// old key then fail with `decryption_failed`.
    pub fn rotate_key(&self) {
        *self.shared.keys.lock().expect("keys lock") = KeyPair::generate();
    }

    /// Reads or changes the in-memory GitHub.
    pub fn github<T>(&self, f: impl FnOnce(&mut GitHub) -> T) -> T {
        f(&mut self.shared.github.lock().expect("github lock"))
    }

    /// The stored secret, with the plaintext the emulator decrypted.
    pub fn secret(&self, scope: &Scope, name: &str) -> Option<StoredSecret> {
        self.github(|gh| gh.secret(scope, name))
    }

    /// The names stored in `scope`, all of them, in GitHub's order.
    pub fn secret_names(&self, scope: &Scope) -> Vec<String> {
        self.github(|gh| gh.names(scope))
    }

    /// Delays every following request by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.lock().expect("faults lock").latency = latency;
    }

    /// Injects `fault` into each of the next `times` requests.
    pub fn fail_next(&self, fault: Fault, times: usize) {
        let mut faults = self.shared.faults.lock().expect("faults lock");
        faults.queue.extend(std::iter::repeat_n(fault, times));
    }

    /// `METHOD /path` of every request received so far, faulted ones included.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("requests lock").clone()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    routes::routes()
        .fallback(|| async { wire::json_response(404, &json!({ "detail": "Not Found" })) })
        .method_not_allowed_fallback(|| async {
            wire::json_response(405, &json!({ "detail": "Method Not Allowed" }))
        })
        .layer(middleware::from_fn_with_state(shared.clone(), api_key))
        .layer(middleware::from_fn_with_state(shared.clone(), faults))
        .with_state(shared)
}

/// Records the request, waits the configured latency, then applies a queued fault.
async fn faults(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.requests.lock().expect("requests lock").push(format!(
        "{} {}",
        request.method(),
        request.uri().path()
    ));
    let (latency, fault) = {
        let mut faults = shared.faults.lock().expect("faults lock");
        (faults.latency, faults.queue.pop_front())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None => next.run(request).await,
        Some(Fault::Status(status)) => {
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            (status, "<html><body>injected fault</body></html>").into_response()
        }
        Some(Fault::Reset) => {
            // Headers go out, then the body fails: hyper closes the connection mid-response.
            let broken = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("injected connection reset"))
            });
            Response::new(Body::from_stream(broken))
        }
    }
}

/// The framework's API-key check (contract §1.1): header first, the cookie only when the header
/// is absent or empty; exact comparison.
async fn api_key(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    const EXEMPT: [&str; 5] = [
        "/docs",
        "/openapi.json",
        "/auth/set-cookie-form",
        "/auth/set-auth-cookie",
        "/config/status",
    ];
    let Some(key) = &shared.api_key else {
        return next.run(request).await;
    };
    if EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match presented_key(request.headers(), &key.name) {
        None => wire::unauthorized(
            "Client API key is missing, you need to set it on a header or cookie",
        ),
        Some(value) if value == key.value => next.run(request).await,
        Some(_) => wire::unauthorized("Invalid API key value"),
    }
}

fn presented_key(headers: &HeaderMap, name: &str) -> Option<String> {
    let header = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    if let Some(value) = header {
        return Some(value.to_owned());
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

pub(crate) fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// 32 random hex characters from the OS generator.
pub fn random_token() -> String {
    use crypto_box::aead::rand_core::RngCore;
    let mut bytes = [0u8; 16];
    crypto_box::aead::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
