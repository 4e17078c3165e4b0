//! Configuration: the only place that reads environment variables.
//!
//! Variable names shared with the Python original are kept so that this service is a drop-in
//! replacement. Every value is parsed and checked here; a bad value stops start-up with a message
//! that names the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

pub const VAR_GITHUB_SERVICE_URL: &str = "URL__TARGET_SERVER__GITHUB_SERVICE";
pub const VAR_UPSTREAM_KEY_NAME: &str = "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME";
pub const VAR_UPSTREAM_KEY_VALUE: &str = "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE";
pub const VAR_API_KEY_NAME: &str = "FAST_API__AUTH__API_KEY__NAME";
pub const VAR_API_KEY_VALUE: &str = "FAST_API__AUTH__API_KEY__VALUE";
pub const VAR_LISTEN: &str = "DEPLOY__LISTEN";
pub const VAR_UPSTREAM_TIMEOUT: &str = "DEPLOY__UPSTREAM_TIMEOUT_SECONDS";
pub const VAR_MAX_BODY_BYTES: &str = "DEPLOY__MAX_BODY_BYTES";
pub const VAR_WORKFLOW_CONCURRENCY: &str = "DEPLOY__WORKFLOW_CONCURRENCY";
pub const VAR_WORKFLOW_DEADLINE: &str = "DEPLOY__WORKFLOW_DEADLINE_SECONDS";
pub const VAR_PUBLIC_KEY_TTL: &str = "DEPLOY__PUBLIC_KEY_TTL_SECONDS";
pub const VAR_LOG_FORMAT: &str = "DEPLOY__LOG_FORMAT";
pub const VAR_LAMBDA_TIMEOUT: &str = "DEPLOY__LAMBDA_TIMEOUT_SECONDS";
pub const VAR_HEADER_READ_TIMEOUT: &str = "DEPLOY__HEADER_READ_TIMEOUT_SECONDS";
pub const VAR_MAX_CONNECTIONS: &str = "DEPLOY__MAX_CONNECTIONS";
pub const VAR_STORE: &str = "DEPLOY__STORE";
pub const VAR_HISTORY_RETENTION: &str = "DEPLOY__HISTORY_RETENTION_DAYS";
/// Where the default SQLite history goes (`$XDG_STATE_HOME/mgraph-deploy/`, else
/// `$HOME/.local/state/mgraph-deploy/`).
pub const VAR_XDG_STATE_HOME: &str = "XDG_STATE_HOME";
pub const VAR_HOME: &str = "HOME";
/// Read by earlier versions, ignored now: setting it is logged at start-up with the reason.
pub const VAR_WORKERS: &str = "DEPLOY__WORKERS";
pub const VAR_RUST_LOG: &str = "RUST_LOG";
pub const VAR_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

/// Variables this service no longer reads, and why.
const RETIRED: [(&str, &str); 1] = [(
    VAR_WORKERS,
    "local mode serves every connection on one multi-threaded runtime, a thread per core",
)];

/// What `mgraph-deploy --help` prints: the binary takes no arguments, only these variables.
pub const HELP: &str = "\
MGraph-AI Deploy Service: validates, routes and reports secret writes whose values and PAT are
sealed to the GitHub Service's key; it never reads them.

Usage: mgraph-deploy            (configured by environment variables only)
       mgraph-deploy --help | --version

Environment (a bad value stops start-up with exit code 2, naming the variable):
  URL__TARGET_SERVER__GITHUB_SERVICE        GitHub Service base URL [https://github.dev.mgraph.ai]
  AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME
  AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE
                                            API-key header sent to the GitHub Service
  FAST_API__AUTH__API_KEY__NAME
  FAST_API__AUTH__API_KEY__VALUE            this service's API key (header or cookie)
  DEPLOY__LISTEN                            local bind address [127.0.0.1:8080]
  DEPLOY__UPSTREAM_TIMEOUT_SECONDS          per upstream call [10] (1-300)
  DEPLOY__MAX_BODY_BYTES                    request body limit [6291456]
  DEPLOY__HEADER_READ_TIMEOUT_SECONDS       local: headers and keep-alive idle time [10]
  DEPLOY__MAX_CONNECTIONS                   local: open connections at most [512]
  DEPLOY__LAMBDA_TIMEOUT_SECONDS            Lambda: budget when the deadline is unbelievable [29]
  DEPLOY__WORKFLOW_CONCURRENCY              default /execute parallelism [4] (1-16)
  DEPLOY__WORKFLOW_DEADLINE_SECONDS         default /execute budget [25] (1-840)
  DEPLOY__PUBLIC_KEY_TTL_SECONDS            public key cache [60]; 0 disables
  DEPLOY__STORE                             history: sqlite:PATH | dynamodb:TABLE | none
                                            [local: sqlite:$XDG_STATE_HOME/mgraph-deploy/history.sqlite3;
                                             Lambda: none]
  DEPLOY__HISTORY_RETENTION_DAYS            how long executions are kept [90] (1-3650)
  DEPLOY__LOG_FORMAT                        json | pretty [json in Lambda, else pretty]
  RUST_LOG                                  log filter [info], e.g. info,mgraph_deploy=debug
  AWS_LAMBDA_RUNTIME_API                    set by Lambda: serve Lambda events

The full contract is served at /openapi.json and /docs.";

/// The API-key header name the OpenAPI document shows when no key is configured.
pub const DEFAULT_API_KEY_NAME: &str = "x-api-key";

pub const DEFAULT_GITHUB_SERVICE_URL: &str = "https://github.dev.mgraph.ai";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A start-up configuration error; its message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn error(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Where the process runs; decided by the presence of `AWS_LAMBDA_RUNTIME_API`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeMode {
    Local,
    Lambda,
}

impl RuntimeMode {
    /// The name reported by `/info/status`.
    pub fn environment_name(self) -> &'static str {
        match self {
            RuntimeMode::Local => "local",
            RuntimeMode::Lambda => "aws-lambda",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A header name plus a secret value. `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiKey {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ApiKey {{ name: {:?}, value: <redacted> }}",
            self.name.as_str()
        )
    }
}

/// How this service authenticates its own callers.
#[derive(Debug, Clone)]
pub enum AuthPolicy {
    /// Callers must present this key (header, or cookie of the same name).
    Required(ApiKey),
    /// Local run on a loopback address without a key: open, with a warning at start-up.
    Open,
    /// Lambda without a key: fail closed, every non-exempt route answers 401.
    Locked,
}

/// Where the history of executions is kept (`DEPLOY__STORE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    Sqlite(std::path::PathBuf),
    DynamoDb(String),
    /// No history: `none`, or no default where the service runs (its reason, logged once).
    None(Option<&'static str>),
}

/// Limits of the local listener (the Lambda runtime serves one request at a time, unaffected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeMode,
    /// GitHub Service base URL, without a trailing `/`.
    pub github_service_url: String,
    /// Header sent verbatim to the GitHub Service on every call, when configured.
    pub upstream_api_key: Option<ApiKey>,
    pub auth: AuthPolicy,
    pub listen: SocketAddr,
    /// Local mode: how long a client has to send a request's headers (and a kept-alive
    /// connection may idle), and how many connections may be open at once.
    pub listener: ListenerLimits,
    /// Variables that are set but no longer read, each with the reason (logged at start-up).
    pub retired: Vec<(&'static str, &'static str)>,
    pub upstream_timeout: Duration,
    pub max_body_bytes: usize,
    pub workflow_concurrency: usize,
    pub workflow_deadline: Duration,
    pub public_key_ttl: Duration,
    /// Lambda mode: the function's timeout, taken as an invocation's budget when its deadline
    /// cannot be believed (already past, or further than Lambda's 15-minute maximum).
    pub lambda_timeout: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub store: StoreSetting,
    pub history_retention: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Builds the configuration from any source of variables (the environment, or a test map).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let runtime = if get(VAR_LAMBDA_RUNTIME_API).is_some() {
            RuntimeMode::Lambda
        } else {
            RuntimeMode::Local
        };

        let github_service_url = parse_base_url(
            get(VAR_GITHUB_SERVICE_URL)
                .as_deref()
                .unwrap_or(DEFAULT_GITHUB_SERVICE_URL),
        )?;

        let upstream_api_key = key_pair(
            get(VAR_UPSTREAM_KEY_NAME),
            get(VAR_UPSTREAM_KEY_VALUE),
            VAR_UPSTREAM_KEY_NAME,
            VAR_UPSTREAM_KEY_VALUE,
        )?;
        let own_key = key_pair(
            get(VAR_API_KEY_NAME),
            get(VAR_API_KEY_VALUE),
            VAR_API_KEY_NAME,
            VAR_API_KEY_VALUE,
        )?;

        let listen: SocketAddr = match get(VAR_LISTEN) {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address parses"),
            Some(v) => v.trim().parse().map_err(|_| {
                error(
                    VAR_LISTEN,
                    "must be an IP address and port, for example 127.0.0.1:8080",
                )
            })?,
        };

        let auth = match (own_key, runtime) {
            (Some(key), _) => AuthPolicy::Required(key),
            (None, RuntimeMode::Lambda) => AuthPolicy::Locked,
            (None, RuntimeMode::Local) if listen.ip().is_loopback() => AuthPolicy::Open,
            (None, RuntimeMode::Local) => {
                return Err(error(
                    VAR_API_KEY_NAME,
                    format!(
                        "is required when {VAR_LISTEN} is not a loopback address; set it and {VAR_API_KEY_VALUE}, or listen on 127.0.0.1"
                    ),
                ));
            }
        };

        let upstream_timeout = Duration::from_secs(int(&get, VAR_UPSTREAM_TIMEOUT, 10, 1, 300)?);
        let max_body_bytes =
            int(&get, VAR_MAX_BODY_BYTES, 6_291_456, 1_024, 64 * 1024 * 1024)? as usize;
        let workflow_concurrency = int(&get, VAR_WORKFLOW_CONCURRENCY, 4, 1, 16)? as usize;
        let workflow_deadline = Duration::from_secs(int(&get, VAR_WORKFLOW_DEADLINE, 25, 1, 840)?);
        let public_key_ttl = Duration::from_secs(int(&get, VAR_PUBLIC_KEY_TTL, 60, 0, 86_400)?);
        let lambda_timeout = Duration::from_secs(int(&get, VAR_LAMBDA_TIMEOUT, 29, 1, 900)?);
        let listener = ListenerLimits {
            header_read_timeout: Duration::from_secs(int(
                &get,
                VAR_HEADER_READ_TIMEOUT,
                10,
                1,
                300,
            )?),
            max_connections: int(&get, VAR_MAX_CONNECTIONS, 512, 1, 65_536)? as usize,
        };
        let retired = RETIRED
            .into_iter()
            .filter(|(var, _)| get(var).is_some())
            .collect();

        let log_format = match get(VAR_LOG_FORMAT).map(|v| v.trim().to_ascii_lowercase()) {
            None if runtime == RuntimeMode::Lambda => LogFormat::Json,
            None => LogFormat::Pretty,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(_) => return Err(error(VAR_LOG_FORMAT, "must be `json` or `pretty`")),
        };
        let store = store_setting(get(VAR_STORE), runtime, &get)?;
        let history_retention =
            Duration::from_secs(int(&get, VAR_HISTORY_RETENTION, 90, 1, 3650)? * 86_400);
        let log_filter = get(VAR_RUST_LOG).unwrap_or_else(|| "info".to_owned());
        check_log_filter(&log_filter)
            .map_err(|e| error(VAR_RUST_LOG, format!("is not a log filter: {e}")))?;

        Ok(Config {
            runtime,
            github_service_url,
            upstream_api_key,
            auth,
            listen,
            listener,
            retired,
            upstream_timeout,
            max_body_bytes,
            workflow_concurrency,
            workflow_deadline,
            public_key_ttl,
            lambda_timeout,
            log_format,
            log_filter,
            store,
            history_retention,
        })
    }
}

/// `DEPLOY__STORE`, or the default where the service runs: a SQLite file under the user's state
/// folder locally, none in Lambda (its disk does not outlive the instance).
fn store_setting(
    raw: Option<String>,
    runtime: RuntimeMode,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<StoreSetting, ConfigError> {
    let Some(raw) = raw else {
        if runtime == RuntimeMode::Lambda {
            return Ok(StoreSetting::None(Some(
                "DEPLOY__STORE is unset in AWS Lambda, whose disk does not outlive the instance: no history is kept (set dynamodb:TABLE)",
            )));
        }
        let state = get(VAR_XDG_STATE_HOME)
            .map(std::path::PathBuf::from)
            .or_else(|| get(VAR_HOME).map(|home| std::path::Path::new(&home).join(".local/state")));
        return Ok(match state {
            Some(state) => StoreSetting::Sqlite(state.join("mgraph-deploy/history.sqlite3")),
            None => StoreSetting::None(Some(
                "neither XDG_STATE_HOME nor HOME is set, so there is no default place for the history: none is kept (set DEPLOY__STORE=sqlite:PATH)",
            )),
        });
    };
    let raw = raw.trim();
    let usage = "must be sqlite:PATH, dynamodb:TABLE or none";
    match raw.split_once(':') {
        None if raw == "none" => Ok(StoreSetting::None(None)),
        Some(("sqlite", path)) if !path.trim().is_empty() => {
            Ok(StoreSetting::Sqlite(std::path::PathBuf::from(path)))
        }
        Some(("dynamodb", table)) => {
            // DynamoDB's rule for table names: 3-255 of letters, digits, '_', '-' and '.'.
            let valid = (3..=255).contains(&table.len())
                && table
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if valid {
                Ok(StoreSetting::DynamoDb(table.to_owned()))
            } else {
                Err(error(
                    VAR_STORE,
                    "dynamodb:TABLE needs a DynamoDB table name: 3-255 letters, digits, '_', '-' and '.'",
                ))
            }
        }
        _ => Err(error(VAR_STORE, usage)),
    }
}

/// Whether `filter` is a log filter in `RUST_LOG`'s syntax, or why not.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn parse_base_url(raw: &str) -> Result<String, ConfigError> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            error(
                VAR_GITHUB_SERVICE_URL,
                "must start with http:// or https://",
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(error(
            VAR_GITHUB_SERVICE_URL,
            "must be a base URL such as https://github.dev.mgraph.ai (no query or fragment)",
        ));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| error(VAR_GITHUB_SERVICE_URL, format!("is not a valid URL: {e}")))?;
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority.contains('@') {
        return Err(error(
            VAR_GITHUB_SERVICE_URL,
            format!(
                "must not carry credentials (user@host): the GitHub Service's API key is {VAR_UPSTREAM_KEY_NAME} and __KEY_VALUE"
            ),
        ));
    }
    // A port is what follows the last `:` outside an IPv6 literal's brackets.
    let port_given = authority
        .rsplit_once(':')
        .is_some_and(|(_, after)| !after.contains(']'));
    if port_given && uri.port_u16().is_none_or(|port| port == 0) {
        return Err(error(VAR_GITHUB_SERVICE_URL, "has an invalid port"));
    }
    Ok(url.to_owned())
}

fn key_pair(
    name: Option<String>,
    value: Option<String>,
    name_var: &'static str,
    value_var: &'static str,
) -> Result<Option<ApiKey>, ConfigError> {
    match (name, value) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(error(
            value_var,
            format!("is required when {name_var} is set"),
        )),
        (None, Some(_)) => Err(error(
            name_var,
            format!("is required when {value_var} is set"),
        )),
        (Some(name), Some(value)) => {
            let name = HeaderName::try_from(name.trim()).map_err(|_| {
                error(
                    name_var,
                    "must be a valid HTTP header name, such as x-api-key",
                )
            })?;
            let mut value = HeaderValue::try_from(value).map_err(|_| {
                error(
                    value_var,
                    "must be a valid HTTP header value (visible ASCII)",
                )
            })?;
            value.set_sensitive(true);
            Ok(Some(ApiKey { name, value }))
        }
    }
}

fn int(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(error(
            var,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_give_an_open_local_service_on_loopback() {
        let c = config(&[]).unwrap();
        assert_eq!(c.runtime, RuntimeMode::Local);
        assert_eq!(c.github_service_url, "https://github.dev.mgraph.ai");
        assert!(matches!(c.auth, AuthPolicy::Open));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.upstream_timeout, Duration::from_secs(10));
        assert_eq!(c.max_body_bytes, 6_291_456);
        assert_eq!(c.workflow_concurrency, 4);
        assert_eq!(c.workflow_deadline, Duration::from_secs(25));
        assert_eq!(c.public_key_ttl, Duration::from_secs(60));
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.log_filter, "info");
        assert!(c.upstream_api_key.is_none());
        assert!(c.retired.is_empty());
        // No HOME here: no default place for the history.
        assert!(
            matches!(c.store, StoreSetting::None(Some(_))),
            "{:?}",
            c.store
        );
        assert_eq!(c.history_retention, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn the_store_is_sqlite_under_the_state_folder_locally_and_none_in_lambda_unless_set() {
        let local = config(&[(VAR_HOME, "/home/u")]).unwrap();
        assert_eq!(
            local.store,
            StoreSetting::Sqlite("/home/u/.local/state/mgraph-deploy/history.sqlite3".into())
        );
        let xdg = config(&[(VAR_HOME, "/home/u"), (VAR_XDG_STATE_HOME, "/var/state")]).unwrap();
        assert_eq!(
            xdg.store,
            StoreSetting::Sqlite("/var/state/mgraph-deploy/history.sqlite3".into())
        );
        let lambda = config(&[(VAR_LAMBDA_RUNTIME_API, "127.0.0.1:9001")]).unwrap();
        assert!(
            matches!(lambda.store, StoreSetting::None(Some(why)) if why.contains("DEPLOY__STORE is unset in AWS Lambda"))
        );
        for (value, expected) in [
            ("none", StoreSetting::None(None)),
            ("sqlite:/tmp/h.db", StoreSetting::Sqlite("/tmp/h.db".into())),
            (
                "dynamodb:mgraph-deploy-dev",
                StoreSetting::DynamoDb("mgraph-deploy-dev".into()),
            ),
        ] {
            assert_eq!(
                config(&[(VAR_STORE, value)]).unwrap().store,
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn a_retired_variable_is_not_read_but_named_with_its_reason() {
        for value in ["3", "0", "two"] {
            let c = config(&[(VAR_WORKERS, value)]).unwrap();
            assert_eq!(c.retired.len(), 1, "{value}");
            assert_eq!(c.retired[0].0, VAR_WORKERS);
            assert!(c.retired[0].1.contains("one multi-threaded runtime"));
        }
    }

    #[test]
    fn lambda_without_an_api_key_fails_closed_and_logs_json() {
        let c = config(&[(VAR_LAMBDA_RUNTIME_API, "127.0.0.1:9001")]).unwrap();
        assert_eq!(c.runtime, RuntimeMode::Lambda);
        assert!(matches!(c.auth, AuthPolicy::Locked));
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn a_public_bind_without_an_api_key_is_refused() {
        let err = config(&[(VAR_LISTEN, "0.0.0.0:8080")]).unwrap_err();
        assert_eq!(err.var, VAR_API_KEY_NAME);
    }

    #[test]
    fn a_trailing_slash_on_the_upstream_url_is_tolerated() {
        let c = config(&[(VAR_GITHUB_SERVICE_URL, "http://127.0.0.1:9000/")]).unwrap();
        assert_eq!(c.github_service_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn the_upstream_key_value_is_kept_verbatim() {
        let c = config(&[
            (VAR_UPSTREAM_KEY_NAME, "X-Api-Key"),
            (VAR_UPSTREAM_KEY_VALUE, "Secret.KEY+123"),
        ])
        .unwrap();
        let key = c.upstream_api_key.unwrap();
        assert_eq!(key.name.as_str(), "x-api-key");
        assert_eq!(key.value.to_str().unwrap(), "Secret.KEY+123");
        assert!(!format!("{key:?}").contains("Secret.KEY"));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            (VAR_GITHUB_SERVICE_URL, "ftp://x"),
            (
                VAR_GITHUB_SERVICE_URL,
                "https://user:pass@github.dev.mgraph.ai",
            ),
            (VAR_GITHUB_SERVICE_URL, "http://127.0.0.1:99999"),
            (VAR_GITHUB_SERVICE_URL, "http://127.0.0.1:0"),
            (VAR_GITHUB_SERVICE_URL, "https://gïthub.example"),
            (VAR_LISTEN, "localhost"),
            (VAR_UPSTREAM_TIMEOUT, "0"),
            (VAR_MAX_BODY_BYTES, "lots"),
            (VAR_WORKFLOW_CONCURRENCY, "17"),
            (VAR_WORKFLOW_DEADLINE, "841"),
            (VAR_PUBLIC_KEY_TTL, "-1"),
            (VAR_LAMBDA_TIMEOUT, "901"),
            (VAR_HEADER_READ_TIMEOUT, "0"),
            (VAR_MAX_CONNECTIONS, "0"),
            (VAR_LOG_FORMAT, "xml"),
            (VAR_STORE, "postgres:x"),
            (VAR_STORE, "sqlite:"),
            (VAR_STORE, "dynamodb:a b"),
            (VAR_STORE, "dynamodb:ab"),
            (VAR_HISTORY_RETENTION, "0"),
            (VAR_UPSTREAM_KEY_NAME, "x-api-key"),
            (VAR_API_KEY_VALUE, "v"),
        ];
        for (var, value) in cases {
            let err = config(&[(var, value)]).unwrap_err();
            assert!(
                err.to_string().contains(match *var {
                    VAR_UPSTREAM_KEY_NAME => VAR_UPSTREAM_KEY_VALUE,
                    VAR_API_KEY_VALUE => VAR_API_KEY_NAME,
                    other => other,
                }),
                "{var}: {err}"
            );
        }
        let err = config(&[(VAR_API_KEY_NAME, "bad name"), (VAR_API_KEY_VALUE, "v")]).unwrap_err();
        assert_eq!(err.var, VAR_API_KEY_NAME);
    }
}
