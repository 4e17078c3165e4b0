//! A typed client of the Deploy Service (`api.md`): every route, its envelopes and reports.

use std::fmt;
use std::time::Duration;

use mgraph_deploy_api::{
    CreateData, DeleteData, Envelope, ExistsData, GetData, Health, ListData, Plan, PresenceData,
    PublicKeyInfo, Report, ServiceStatus, Version,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// An answer and the HTTP status it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub status: u16,
    pub body: T,
}

impl<T> std::ops::Deref for Answer<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

/// What `/execute` answered: a report, or the plan of an invalid workflow.
#[derive(Debug, Clone)]
pub enum Execution {
    Ran(Answer<Report>),
    Invalid(Answer<Plan>),
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
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get_json("/info/health").await
    }

    /// `GET /info/version`.
    pub async fn version(&self) -> Result<Version, ClientError> {
        self.get_json("/info/version").await
    }

    /// `GET /info/status`.
    pub async fn status(&self) -> Result<ServiceStatus, ClientError> {
        self.get_json("/info/status").await
    }

    /// `GET /public-keys/github`, parsed.
    pub async fn public_key(&self) -> Result<PublicKey, ClientError> {
        let body: PublicKeyInfo = self.get_json("/public-keys/github").await?;
        PublicKey::from_hex(&body.public_key).map_err(|e| ClientError::Unexpected {
            status: 200,
            detail: format!("/public-keys/github: {e}"),
        })
    }

    pub async fn list(
        &self,
        pat: &Sealed,
        target: &Target,
    ) -> Result<Answer<Envelope<ListData>>, ClientError> {
        self.operation("list", json!({ "encrypted_pat": pat, "target": target }))
            .await
    }

    pub async fn get(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<GetData>>, ClientError> {
        self.named("get", pat, target, name).await
    }

    pub async fn exists(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<ExistsData>>, ClientError> {
        self.named("exists", pat, target, name).await
    }

    pub async fn create(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
        value: &Sealed,
        options: &WriteOptions,
    ) -> Result<Answer<Envelope<CreateData>>, ClientError> {
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
    ) -> Result<Answer<Envelope<DeleteData>>, ClientError> {
        self.named("delete", pat, target, name).await
    }

    pub async fn presence(
        &self,
        pat: &Sealed,
        target: &Target,
        required: &[String],
    ) -> Result<Answer<Envelope<PresenceData>>, ClientError> {
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
            return Ok(Execution::Invalid(parse(status, body)?));
        }
        Ok(Execution::Ran(parse(status, body)?))
    }

    /// `POST /execute/plan`.
    pub async fn plan(&self, workflow: &Value) -> Result<Answer<Plan>, ClientError> {
        let (status, body) = self.post("/execute/plan", workflow).await?;
        parse(status, body)
    }

    /// The operations whose body is a target and a secret name.
    async fn named<D: DeserializeOwned>(
        &self,
        op: &str,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<D>>, ClientError> {
        self.operation(
            op,
            json!({ "encrypted_pat": pat, "target": target, "secret_name": name }),
        )
        .await
    }

    async fn operation<D: DeserializeOwned>(
        &self,
        name: &str,
        body: Value,
    ) -> Result<Answer<Envelope<D>>, ClientError> {
        let (status, body) = self
            .post(&format!("/operations/github/secrets/{name}"), &body)
            .await?;
        parse(status, body)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self.http.get(format!("{}{path}", self.base));
        let (status, body) = self.send(request).await?;
        if (200..300).contains(&status) {
            Ok(parse(status, body)?.body)
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

/// The body read as `T`; a body of another shape is described by its `error`, never echoed.
fn parse<T: DeserializeOwned>(status: u16, body: Value) -> Result<Answer<T>, ClientError> {
    match T::deserialize(&body) {
        Ok(body) => Ok(Answer { status, body }),
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
