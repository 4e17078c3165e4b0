//! The offline local stack: the Deploy Service and the GitHub Service emulator, both on loopback
//! in one process, wired together with fresh random API keys. Used by `mgraph-deploy-local` (the
//! README's run command) and by the end-to-end tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use mgraph_deploy::config::{StoreSetting, VAR_STORE};
use mgraph_deploy::history::History;
use mgraph_deploy::{AppState, Config, build_router};
use mgraph_deploy_emulator::{ApiKey, Emulator, Options, random_token};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the two servers listen, and extra service configuration (architecture §4 variables).
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub service_listen: SocketAddr,
    pub emulator_listen: SocketAddr,
    /// Extra variables for the service, e.g. `DEPLOY__PUBLIC_KEY_TTL_SECONDS`.
    pub service_env: Vec<(String, String)>,
    /// The service's API key; a fresh random one when `None`.
    pub api_key: Option<ApiKey>,
    /// Where the service keeps its history (`DEPLOY__STORE` in `service_env` wins).
    pub store: StackStore,
}

/// Where the local stack's service keeps its history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StackStore {
    /// A SQLite database in a temporary directory, removed when the stack is dropped.
    #[default]
    Temporary,
    /// A SQLite database at this path, kept.
    At(PathBuf),
}

impl Default for StackOptions {
    /// Both on ephemeral loopback ports.
    fn default() -> Self {
        Self {
            service_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            emulator_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            service_env: Vec::new(),
            api_key: None,
            store: StackStore::Temporary,
        }
    }
}

/// A running stack. [`LocalStack::stop`] stops it gracefully; dropping it stops accepting
/// connections at once.
#[derive(Debug)]
pub struct LocalStack {
    pub service_url: String,
    /// The service's own API key (`FAST_API__AUTH__API_KEY__NAME` / `__VALUE`).
    pub api_key: ApiKey,
    pub emulator: Emulator,
    /// Where the history is kept, in words.
    pub store: String,
    /// The temporary directory of a [`StackStore::Temporary`] history.
    _temporary: Option<TempDir>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// Why the stack could not start.
#[derive(Debug)]
pub enum StackError {
    Bind(SocketAddr, std::io::Error),
    Config(String),
}

impl std::fmt::Display for StackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Self::Config(e) => write!(f, "invalid service configuration: {e}"),
        }
    }
}

impl std::error::Error for StackError {}

impl LocalStack {
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        let emulator = Emulator::start_with(Options {
            listen: options.emulator_listen,
            ..Options::default()
        })
        .await
        .map_err(|e| StackError::Bind(options.emulator_listen, e))?;
        let upstream_key = emulator
            .api_key()
            .expect("the emulator has an API key")
            .clone();
        let api_key = options.api_key.unwrap_or_else(|| ApiKey {
            name: "x-api-key".to_owned(),
            value: random_token(),
        });

        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "URL__TARGET_SERVER__GITHUB_SERVICE".into(),
                emulator.url().to_owned(),
            ),
            (
                "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME".into(),
                upstream_key.name,
            ),
            (
                "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE".into(),
                upstream_key.value,
            ),
            ("FAST_API__AUTH__API_KEY__NAME".into(), api_key.name.clone()),
            (
                "FAST_API__AUTH__API_KEY__VALUE".into(),
                api_key.value.clone(),
            ),
            ("DEPLOY__LISTEN".into(), options.service_listen.to_string()),
        ]);
        let (path, temporary) = match options.store {
            StackStore::At(path) => (path, None),
            StackStore::Temporary => {
                let dir = tempfile::Builder::new()
                    .prefix("mgraph-deploy-local-")
                    .tempdir()
                    .map_err(|e| StackError::Config(format!("a temporary directory: {e}")))?;
                (dir.path().join("history.sqlite3"), Some(dir))
            }
        };
        vars.insert(VAR_STORE.into(), format!("sqlite:{}", path.display()));
        vars.extend(options.service_env);
        let config = Config::from_lookup(|name| vars.get(name).cloned())
            .map_err(|e| StackError::Config(e.to_string()))?;

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StackError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StackError::Bind(config.listen, e))?;
        let history = History::open(&config.store, config.history_retention)
            .await
            .map_err(|e| StackError::Config(e.to_string()))?;
        let store = match (&config.store, &temporary) {
            (StoreSetting::Sqlite(path), Some(_)) => format!(
                "SQLite, temporary (removed when the stack stops; --store PATH keeps it): {}",
                path.display()
            ),
            (StoreSetting::Sqlite(path), None) => format!("SQLite: {}", path.display()),
            (StoreSetting::DynamoDb(table), _) => format!("DynamoDB table {table}"),
            (StoreSetting::None(_), _) => "none (DEPLOY__STORE=none)".to_owned(),
        };
        let router = build_router(AppState::new(&config, history));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let _ =
                mgraph_deploy::runtime::serve_until(listener, router, shutdown, config.listener)
                    .await;
        });
        Ok(Self {
            service_url: format!("http://{addr}"),
            api_key,
            emulator,
            store,
            _temporary: temporary,
            stop,
            server,
        })
    }

    /// Stops accepting connections, lets the requests in flight (a running `/execute` included)
    /// finish against the emulator, then stops both.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}
