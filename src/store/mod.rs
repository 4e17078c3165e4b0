//! What the service remembers of what it did: executions and their steps, behind one trait with
//! two backends, SQLite ([`Sqlite`], outside Lambda) and DynamoDB ([`DynamoDb`], in Lambda).
//!
//! A record holds names, targets, scopes, outcomes, error types, times and counts: no type here
//! has a field that could hold a value, a sealed blob, a PAT or an API key's value. Every record
//! carries the time it expires (`DEPLOY__HISTORY_RETENTION_DAYS`); reads leave expired ones out
//! whether or not the backend deleted them yet.

pub mod dynamodb;
mod sqlite;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use mgraph_deploy_api::{
    ErrorType, ExecutionStatus, HistoryCursor, OperationKind, Scope, SecretName, StepOutcome,
    Target, ValueFingerprint,
};

pub use dynamodb::DynamoDb;
pub use sqlite::Sqlite;

/// How long an execution may run at the most: Lambda's longest invocation, with a margin. One
/// that has not finished by then was cut off, and reads as `interrupted`.
pub const LONGEST_RUN: Duration = Duration::from_secs(16 * 60);

/// Why the store could not do what was asked. The message names the backend and the cause; it
/// never holds a record's content beyond names and ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct StoreError {
    pub backend: &'static str,
    pub message: String,
    /// An execution with this id is recorded already (a client reused its `x-request-id`).
    pub exists: bool,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The longest one call to the store may take. A store that does not answer is a store that
/// failed: the write it records has been answered by then, and says it was not recorded.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// `call`, or a failure when it has not answered within [`STORE_TIMEOUT`].
pub async fn bounded<T>(
    backend: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(STORE_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError {
                backend,
                message: no_answer(),
                exists: false,
            })
        })
}

fn no_answer() -> String {
    format!("no answer within {} s", STORE_TIMEOUT.as_secs())
}

/// What an answer says of a store's failure: the backend, and that it did not answer in time;
/// the store's own words (which may name an account, a role or a path) go to the log only.
pub fn failed_store(e: &StoreError) -> String {
    if e.message == no_answer() {
        format!("its store ({}) gave {}", e.backend, e.message)
    } else {
        format!(
            "its store ({}) failed (the service's log says why)",
            e.backend
        )
    }
}

/// A target as the store keys it: GitHub compares owners, repositories, environments and
/// organisations without regard to case, so the key is lower-case (`repo:octo/app`,
/// `env:octo/app:prod`, `org:octo`). It can be read back into a target, to ask the upstream
/// whether a PAT may see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey(String);

impl TargetKey {
    pub fn of(target: &Target) -> Self {
        let key = match target {
            Target::Repo { owner, repo } => format!("repo:{owner}/{repo}"),
            Target::Environment {
                owner,
                repo,
                environment,
            } => format!("env:{owner}/{repo}:{environment}"),
            Target::Org { org } => format!("org:{org}"),
        };
        Self(key.to_ascii_lowercase())
    }

    /// A key read from a store; `None` when it is not one this module wrote.
    pub fn parse(key: &str) -> Option<Self> {
        let key = Self(key.to_owned());
        key.target().map(|_| key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The target the key names.
    pub fn target(&self) -> Option<Target> {
        let spec = if let Some(org) = self.0.strip_prefix("org:") {
            serde_json::json!({ "org": org })
        } else if let Some(rest) = self.0.strip_prefix("env:") {
            let (repository, environment) = rest.split_once(':')?;
            let (owner, repo) = repository.split_once('/')?;
            serde_json::json!({ "owner": owner, "repo": repo, "environment": environment })
        } else {
            let (owner, repo) = self.0.strip_prefix("repo:")?.split_once('/')?;
            serde_json::json!({ "owner": owner, "repo": repo })
        };
        serde_json::from_value(spec).ok()
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A target an execution touched: its key, and its name as answers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub key: TargetKey,
    pub shown: String,
}

impl TargetRef {
    pub fn of(target: &Target) -> Self {
        Self {
            key: TargetKey::of(target),
            shown: target.to_string(),
        }
    }

    /// A target read back from a store; `None` when its key is not one this module wrote.
    pub fn read(key: &str, shown: String) -> Option<Self> {
        TargetKey::parse(key).map(|key| Self { key, shown })
    }
}

/// An execution as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExecution {
    pub id: String,
    pub started_ms: u64,
    /// The name of the API key the caller presented.
    pub caller: Option<String>,
    /// `POST /execute`, …
    pub route: String,
    pub total: u64,
    /// Every target its steps may touch (a fallback's repository included).
    pub targets: Vec<TargetRef>,
    /// When it must have ended, in milliseconds since the Unix epoch: past this, one with no
    /// recorded end was cut off (its process stopped), and reads as `interrupted`.
    pub deadline_ms: u64,
    /// Seconds since the Unix epoch after which it is gone.
    pub expires_at: u64,
}

/// One step as it finished.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step: u64,
    pub operation: OperationKind,
    pub target: Option<TargetRef>,
    pub scope: Option<Scope>,
    pub secret_name: Option<SecretName>,
    pub outcome: StepOutcome,
    pub error_type: Option<ErrorType>,
    pub duration_ms: u64,
    pub upstream_calls: u64,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    pub finished_ms: u64,
    pub status: ExecutionStatus,
    pub completed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// An execution as a store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub start: NewExecution,
    /// `None` while it runs (or after it was cut off).
    pub finish: Option<Finish>,
    /// In step order; empty in a page of a list.
    pub steps: Vec<StepRecord>,
}

impl Stored {
    /// Its status read at `now_ms`: one never finished is `running` until its deadline (at
    /// most [`LONGEST_RUN`] after it started) has passed, `interrupted` after.
    pub fn status(&self, now_ms: u64) -> ExecutionStatus {
        let start = &self.start;
        let deadline = start
            .deadline_ms
            .min(start.started_ms + LONGEST_RUN.as_millis() as u64);
        match &self.finish {
            Some(finish) => finish.status,
            None if now_ms > deadline => ExecutionStatus::Interrupted,
            None => ExecutionStatus::Running,
        }
    }
}

/// One page of a target's executions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub executions: Vec<Stored>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<HistoryCursor>,
}

/// What the service last wrote to one secret (a target and a name): never the value, but the
/// client's keyed fingerprint of it, and GitHub's `updated_at` for the secret as read back right
/// after the write. A record means "this service wrote it"; it is removed when the service
/// deletes the secret. It does not expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub target: TargetRef,
    pub name: SecretName,
    /// The execution that wrote it.
    pub execution: String,
    /// A token naming this one write. A write puts its record (its claim) before it writes, and
    /// confirms it after only if the token is still there: a write that finds it replaced knows
    /// another ran alongside it, and cannot tell whose value GitHub kept.
    pub claim: String,
    pub written_ms: u64,
    /// `None` when the value came without one, or when what GitHub holds is not known.
    pub fingerprint: Option<ValueFingerprint>,
    /// An organisation secret's visibility as written (`all`, `private`, `selected:1,5`).
    pub settings: Option<String>,
    /// GitHub's `updated_at` read back after the write; `None` until it is confirmed, and for
    /// good when it could not be read.
    pub updated_at: Option<String>,
}

/// The sort key of an execution in a target's list: newest last in byte order, so a list reads
/// it backwards; also the cursor of the page that follows it.
fn sort_key(started_ms: u64, id: &str) -> String {
    format!("{started_ms:016}#{id}")
}

/// A store of executions. Each method takes what it needs by value, so that a backend may move
/// it to another thread (SQLite) or into a request (DynamoDB).
pub trait Store: Send + Sync + fmt::Debug {
    /// `sqlite` or `dynamodb`.
    fn backend(&self) -> &'static str;

    /// Records an execution's start, and the targets it may touch. An id recorded before is
    /// refused (`exists`), never merged.
    fn begin(&self, execution: NewExecution) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records a finished step of a running execution (`expires_at` as its execution's).
    fn step(
        &self,
        id: String,
        step: StepRecord,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records how an execution ended.
    fn finish(&self, id: String, finish: Finish) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records a whole execution at once: its start, its steps and its end. An id recorded
    /// before is refused (`exists`), never merged.
    fn record(&self, execution: Stored) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The executions that touched `target`, newest first, at most `limit`, from `cursor` on,
    /// leaving out those expired at `now_ms`. Their steps are not read.
    fn list(
        &self,
        target: TargetKey,
        limit: usize,
        cursor: Option<HistoryCursor>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Page, StoreError>>;

    /// One execution with its steps; `None` when there is none, or it expired at `now_ms`.
    fn get(&self, id: String, now_ms: u64) -> BoxFuture<'_, Result<Option<Stored>, StoreError>>;

    /// Puts what a write is about to do, replacing any record of the secret (its `updated_at`
    /// is `None`: until confirmed, nothing is known of what GitHub holds).
    fn claim(&self, written: Written) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Sets the `updated_at` of the secret's record when its claim is still `claim`; `false`
    /// (nothing changed) when another write replaced it, or the secret's record was removed.
    fn confirm(
        &self,
        target: TargetKey,
        name: SecretName,
        claim: String,
        updated_at: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// What the service last wrote to one secret.
    fn written(
        &self,
        target: TargetKey,
        name: SecretName,
    ) -> BoxFuture<'_, Result<Option<Written>, StoreError>>;

    /// Every secret of one target the service wrote and has not deleted since, by name.
    fn written_in(&self, target: TargetKey) -> BoxFuture<'_, Result<Vec<Written>, StoreError>>;

    /// Removes the record of one secret (the service deleted it).
    fn forget(&self, target: TargetKey, name: SecretName) -> BoxFuture<'_, Result<(), StoreError>>;
}
