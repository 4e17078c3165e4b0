//! A typed client of the Deploy Service (`api.md`): every route, its envelopes and reports.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::seal::{PublicKey, Sealed};

/// The service's own API key: sent as a header on every request.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}: <redacted>)", self.name)
    }
}

/// Where secrets live; the scope follows from the shape (api.md §2, Targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Target {
    Repo {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Org {
        org: String,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repo { owner, repo } => write!(f, "{owner}/{repo}"),
            Self::Environment {
                owner,
                repo,
                environment,
            } => write!(f, "{owner}/{repo} (environment {environment})"),
            Self::Org { org } => write!(f, "organisation {org}"),
        }
    }
}

/// Organisation-secret options of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub visibility: Option<String>,
    pub repo_ids: Option<Vec<u64>>,
    /// Write the repository secret when the environment does not exist.
    pub env_fallback: bool,
}

impl WriteOptions {
    /// Adds the options that are set to a create body or a workflow operation.
    pub fn extend(&self, body: &mut serde_json::Map<String, Value>) {
        if let Some(v) = &self.visibility {
            body.insert("visibility".into(), json!(v));
        }
        if let Some(ids) = &self.repo_ids {
            body.insert("repo_ids".into(), json!(ids));
        }
        if self.env_fallback {
            body.insert("env_fallback".into(), json!("repo"));
        }
    }
}

/// Why a call did not produce an answer from the service.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Deploy Service at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Deploy Service did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the Deploy Service refused the API key: {0}")]
    Unauthorized(String),
    #[error("the Deploy Service answered HTTP {status} with an unexpected body: {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("invalid Deploy Service URL {0:?}: it must start with http:// or https://")]
    BadUrl(String),
}

/// GitHub's rate limit as the service last saw it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct RateLimit {
    pub remaining: u64,
    pub limit: u64,
    pub used: u64,
    pub timestamp_reset: u64,
}

/// The operation envelope (api.md §1), with the HTTP status it came with.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Envelope {
    #[serde(skip)]
    pub status: u16,
    pub success: bool,
    pub operation: String,
    pub data: Value,
    pub error: String,
    pub error_type: Option<String>,
    #[serde(default)]
    pub messages: Vec<String>,
    pub duration: f64,
    pub rate_limit: Option<RateLimit>,
}

impl Envelope {
    pub fn is(&self, error_type: &str) -> bool {
        self.error_type.as_deref() == Some(error_type)
    }
}

/// One step of an `/execute` report.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StepResult {
    pub step: usize,
    pub operation: String,
    pub secret_name: Option<String>,
    pub target: String,
    pub scope: String,
    pub status: String,
    pub success: bool,
    pub duration: f64,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_type: Option<String>,
    pub data: Value,
}

/// The `/execute` report (api.md §2); `status` is 200 or 207.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Report {
    #[serde(skip)]
    pub status: u16,
    pub success: bool,
    pub total_operations: usize,
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub duration: f64,
    pub results: Vec<StepResult>,
    pub rate_limit: Option<RateLimit>,
}

/// One step of a plan.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PlanStep {
    pub step: usize,
    pub operation: String,
    pub secret_name: Option<String>,
    pub target: String,
    pub scope: String,
    pub action: String,
}

/// A workflow error, located by step and field.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PlanError {
    pub step: Option<usize>,
    pub field: String,
    pub message: String,
}

/// The `/execute/plan` body, also what `/execute` answers (422) for an invalid workflow.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Plan {
    #[serde(skip)]
    pub status: u16,
    pub valid: bool,
    pub total_operations: usize,
    pub plan: Vec<PlanStep>,
    pub warnings: Vec<String>,
    pub errors: Vec<PlanError>,
}

/// What `/execute` answered: a report, or the plan of an invalid workflow.
#[derive(Debug, Clone)]
pub enum Execution {
    Ran(Report),
    Invalid(Plan),
}

/// The client. Cheap to clone; one connection pool.
#[derive(Debug, Clone)]
pub struct DeployClient {
    http: reqwest::Client,
    base: String,
    api_key: Option<ApiKey>,
    timeout: Duration,
}

impl DeployClient {
    /// `base_url` like `https://deploy.dev.mgraph.ai`; `timeout` bounds each whole request
    /// (a workflow can take up to its deadline, so give it room).
    pub fn new(
        base_url: &str,
        api_key: Option<ApiKey>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .user_agent(concat!("mgraph-deploy-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            api_key,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /info/health` (no API key needed).
    pub async fn health(&self) -> Result<Value, ClientError> {
        self.get_json("/info/health").await
    }

    /// `GET /info/{version,status}`.
    pub async fn info(&self, which: &str) -> Result<Value, ClientError> {
        self.get_json(&format!("/info/{which}")).await
    }

    /// `GET /public-keys/github`, parsed.
    pub async fn public_key(&self) -> Result<PublicKey, ClientError> {
        let body = self.get_json("/public-keys/github").await?;
        let hex_key = body["public_key"].as_str().unwrap_or_default();
        PublicKey::from_hex(hex_key).map_err(|e| ClientError::Unexpected {
            status: 200,
            detail: format!("/public-keys/github: {e}"),
        })
    }

    pub async fn list(&self, pat: &Sealed, target: &Target) -> Result<Envelope, ClientError> {
        self.operation("list", json!({ "encrypted_pat": pat, "target": target }))
            .await
    }

    pub async fn get(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Envelope, ClientError> {
        self.named("get", pat, target, name).await
    }

    pub async fn exists(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Envelope, ClientError> {
        self.named("exists", pat, target, name).await
    }

    pub async fn create(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
        value: &Sealed,
        options: &WriteOptions,
    ) -> Result<Envelope, ClientError> {
        let mut body = serde_json::Map::new();
        body.insert("encrypted_pat".into(), json!(pat));
        body.insert("target".into(), json!(target));
        body.insert("secret_name".into(), json!(name));
        body.insert("encrypted_value".into(), json!(value));
        options.extend(&mut body);
        self.operation("create", Value::Object(body)).await
    }

    pub async fn delete(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Envelope, ClientError> {
        self.named("delete", pat, target, name).await
    }

    pub async fn presence(
        &self,
        pat: &Sealed,
        target: &Target,
        required: &[String],
    ) -> Result<Envelope, ClientError> {
        self.operation(
            "presence",
            json!({ "encrypted_pat": pat, "target": target, "required": required }),
        )
        .await
    }

    /// `POST /execute` with a workflow document (its blobs already sealed).
    pub async fn execute(&self, workflow: &Value) -> Result<Execution, ClientError> {
        let (status, body) = self.post("/execute", workflow).await?;
        if status == 422 {
            return Ok(Execution::Invalid(parse(status, body, |p: &mut Plan| {
                p.status = status
            })?));
        }
        Ok(Execution::Ran(parse(status, body, |r: &mut Report| {
            r.status = status
        })?))
    }

    /// `POST /execute/plan`.
    pub async fn plan(&self, workflow: &Value) -> Result<Plan, ClientError> {
        let (status, body) = self.post("/execute/plan", workflow).await?;
        parse(status, body, |p: &mut Plan| p.status = status)
    }

    /// The operations whose body is a target and a secret name.
    async fn named(
        &self,
        op: &str,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Envelope, ClientError> {
        self.operation(
            op,
            json!({ "encrypted_pat": pat, "target": target, "secret_name": name }),
        )
        .await
    }

    async fn operation(&self, name: &str, body: Value) -> Result<Envelope, ClientError> {
        let (status, body) = self
            .post(&format!("/operations/github/secrets/{name}"), &body)
            .await?;
        parse(status, body, |e: &mut Envelope| e.status = status)
    }

    async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let request = self.http.get(format!("{}{path}", self.base));
        let (status, body) = self.send(request).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(unexpected(status, &body))
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ClientError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<(u16, Value), ClientError> {
        if let Some(key) = &self.api_key {
            request = request.header(&key.name, &key.value);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| ClientError::Unexpected {
            status,
            detail: format!("not JSON ({} bytes)", bytes.len()),
        })?;
        if status == 401 && body["error_type"] == "unauthorized" {
            return Err(ClientError::Unauthorized(
                body["error"].as_str().unwrap_or("unauthorized").to_owned(),
            ));
        }
        Ok((status, body))
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_timeout() {
            ClientError::Timeout(self.timeout)
        } else {
            // The error chain names the cause (connection refused, DNS, TLS) but never a body.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            ClientError::Unreachable {
                url: self.base.clone(),
                reason,
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    status: u16,
    body: Value,
    set_status: impl FnOnce(&mut T),
) -> Result<T, ClientError> {
    match serde_json::from_value::<T>(body.clone()) {
        Ok(mut parsed) => {
            set_status(&mut parsed);
            Ok(parsed)
        }
        Err(_) => Err(unexpected(status, &body)),
    }
}

/// A short description of an unexpected body: the service's own `error`, never the whole body.
fn unexpected(status: u16, body: &Value) -> ClientError {
    let detail = body["error"]
        .as_str()
        .map(|e| {
            format!(
                "{e} ({})",
                body["error_type"].as_str().unwrap_or("no error_type")
            )
        })
        .unwrap_or_else(|| "no error message".to_owned());
    ClientError::Unexpected { status, detail }
}
