//! A typed client of the Deploy Service (`api.md`): every route, its envelopes and reports.

use std::fmt;
use std::time::Duration;

pub use mgraph_deploy_api::Target;
use mgraph_deploy_api::{
    CreateData, CreateOp, DeleteData, EnvFallback, Envelope, ExecutionId, ExistsData, GetData,
    Health, HistoryCursor, HistoryGetBody, HistoryGetData, HistoryListBody, HistoryListData,
    HistoryOperation, ListData, ListOp, NameError, OperationBody, OperationKind, Plan,
    PresenceData, PresenceOp, PublicKeyInfo, Report, SealedPat, SealedValue, SecretName, SecretOp,
    SecretsStateBody, SecretsStateData, ServiceStatus, TokenCheckBody, TokenCheckData,
    TokenOperation, ValueFingerprint, Version, Visibility,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

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

/// Options of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Organisation targets only.
    pub visibility: Option<Visibility>,
    /// Organisation targets with visibility `selected` (or none) only.
    pub repo_ids: Option<Vec<u64>>,
    /// Write the repository secret when the environment does not exist.
    pub env_fallback: bool,
    /// The value's fingerprint ([`crate::fingerprint`]): lets the service skip a value it wrote
    /// last, in a workflow.
    pub fingerprint: Option<ValueFingerprint>,
}

impl WriteOptions {
    /// A create of `name` in `target` with these options.
    pub fn create(&self, target: &Target, name: SecretName, value: SealedValue) -> CreateOp {
        CreateOp {
            target: target.clone(),
            secret_name: name,
            encrypted_value: value,
            visibility: self.visibility,
            repo_ids: self.repo_ids.clone(),
            env_fallback: self.env_fallback.then_some(EnvFallback::Repo),
            value_fingerprint: self.fingerprint.clone(),
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
    /// The request went out and the connection failed before the answer: the service may have
    /// done what it asked, or part of it.
    #[error(
        "the connection to the Deploy Service at {url} failed after the request was sent: {reason}"
    )]
    Interrupted { url: String, reason: String },
    #[error("the Deploy Service refused the API key: {0}")]
    Unauthorized(String),
    #[error("the Deploy Service answered HTTP {status} with an unexpected body: {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("invalid Deploy Service URL {0:?}: it must start with http:// or https://")]
    BadUrl(String),
    /// Refused before sending: the service would refuse it for the same rule.
    #[error("{what} {rule} (invalid_input, refused before sending)")]
    Invalid { what: &'static str, rule: String },
}

/// `value` as `T`, or the rule it breaks.
pub(crate) fn valid<T: TryFrom<String, Error = NameError>>(
    what: &'static str,
    value: &str,
) -> Result<T, ClientError> {
    T::try_from(value.to_owned()).map_err(|e| ClientError::Invalid {
        what,
        rule: e.to_string(),
    })
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
        let op = ListOp {
            target: target.clone(),
        };
        self.operation(OperationKind::List, pat, op).await
    }

    pub async fn get(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<GetData>>, ClientError> {
        self.named(OperationKind::Get, pat, target, name).await
    }

    pub async fn exists(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<ExistsData>>, ClientError> {
        self.named(OperationKind::Exists, pat, target, name).await
    }

    pub async fn create(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
        value: &Sealed,
        options: &WriteOptions,
    ) -> Result<Answer<Envelope<CreateData>>, ClientError> {
        let name = valid("secret name", name)?;
        let value = valid("sealed value", value.expose())?;
        let op = options.create(target, name, value);
        self.operation(OperationKind::Create, pat, op).await
    }

    pub async fn delete(
        &self,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<DeleteData>>, ClientError> {
        self.named(OperationKind::Delete, pat, target, name).await
    }

    pub async fn presence(
        &self,
        pat: &Sealed,
        target: &Target,
        required: &[String],
    ) -> Result<Answer<Envelope<PresenceData>>, ClientError> {
        let required = required
            .iter()
            .map(|name| valid("required name", name))
            .collect::<Result<_, _>>()?;
        let op = PresenceOp {
            target: target.clone(),
            required,
        };
        self.operation(OperationKind::Presence, pat, op).await
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

    /// `POST /executions/list`: a page of `target`'s history, newest first.
    pub async fn history(
        &self,
        pat: &Sealed,
        target: &Target,
        limit: Option<u64>,
        cursor: Option<HistoryCursor>,
    ) -> Result<Answer<Envelope<HistoryListData, HistoryOperation>>, ClientError> {
        let body = HistoryListBody {
            encrypted_pat: valid("sealed PAT", pat.expose())?,
            target: target.clone(),
            limit,
            cursor,
        };
        self.post_typed(HistoryOperation::List.path(), &body).await
    }

    /// `POST /executions/get`: one execution and the steps this PAT may see.
    pub async fn execution(
        &self,
        pat: &Sealed,
        id: &str,
    ) -> Result<Answer<Envelope<HistoryGetData, HistoryOperation>>, ClientError> {
        let body = HistoryGetBody {
            encrypted_pat: valid("sealed PAT", pat.expose())?,
            id: valid::<ExecutionId>("execution id", id)?,
        };
        self.post_typed(HistoryOperation::Get.path(), &body).await
    }

    /// `POST /executions/secrets`: each secret of `target` against what the service wrote there.
    pub async fn secrets_state(
        &self,
        pat: &Sealed,
        target: &Target,
    ) -> Result<Answer<Envelope<SecretsStateData, HistoryOperation>>, ClientError> {
        let body = SecretsStateBody {
            encrypted_pat: valid("sealed PAT", pat.expose())?,
            target: target.clone(),
        };
        self.post_typed(HistoryOperation::Secrets.path(), &body)
            .await
    }

    /// `POST /operations/github/token/check`: whose PAT this is, and (with a target) whether it
    /// can read that target's secrets.
    pub async fn check_token(
        &self,
        pat: &Sealed,
        target: Option<&Target>,
    ) -> Result<Answer<Envelope<TokenCheckData, TokenOperation>>, ClientError> {
        let body = TokenCheckBody {
            encrypted_pat: valid("sealed PAT", pat.expose())?,
            target: target.cloned(),
        };
        self.post_typed(TokenOperation::Check.path(), &body).await
    }

    /// Posts `body` to `path`, and reads the answer as `T`.
    async fn post_typed<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer<T>, ClientError> {
        let body = serde_json::to_value(body).expect("a request body is plain JSON");
        let (status, body) = self.post(path, &body).await?;
        parse(status, body)
    }

    /// The operations whose body is a target and a secret name.
    async fn named<D: DeserializeOwned>(
        &self,
        kind: OperationKind,
        pat: &Sealed,
        target: &Target,
        name: &str,
    ) -> Result<Answer<Envelope<D>>, ClientError> {
        let op = SecretOp {
            target: target.clone(),
            secret_name: valid("secret name", name)?,
        };
        self.operation(kind, pat, op).await
    }

    /// Posts `op` with the PAT to its route.
    async fn operation<Op: Serialize, D: DeserializeOwned>(
        &self,
        kind: OperationKind,
        pat: &Sealed,
        op: Op,
    ) -> Result<Answer<Envelope<D>>, ClientError> {
        let body = OperationBody {
            encrypted_pat: valid::<SealedPat>("sealed PAT", pat.expose())?,
            op,
        };
        self.post_typed(kind.path(), &body).await
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
            return ClientError::Timeout(self.timeout);
        }
        // The error chain names the cause (connection refused, DNS, TLS) but never a body.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        let url = self.base.clone();
        if e.is_connect() {
            ClientError::Unreachable { url, reason }
        } else {
            ClientError::Interrupted { url, reason }
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
