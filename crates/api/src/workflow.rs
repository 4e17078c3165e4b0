//! The `/execute` report and the `/execute/plan` body (`api.md` §2).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{ErrorType, OperationKind, RateLimit, Scope, SecretName};

/// GitHub's secondary limits on content-creating requests: 80 a minute, and 900 points a minute
/// (a GET is one point, a PUT or DELETE five).
pub const WRITES_PER_MINUTE: usize = 80;
pub const POINTS_PER_MINUTE: usize = 900;

/// The plan's warning that `writes` writes and deletes approach GitHub's secondary limit.
pub fn writes_limit_warning(writes: usize) -> String {
    format!(
        "{writes} writes and deletes approach {SECONDARY_LIMIT} {WRITES_PER_MINUTE} content-creating requests per minute; rate-limited steps are retried, but consider splitting the workflow"
    )
}

/// The plan's warning that `points` GitHub API points approach GitHub's secondary limit.
pub fn points_limit_warning(points: usize) -> String {
    format!(
        "about {points} GitHub API points approach {SECONDARY_LIMIT} {POINTS_PER_MINUTE} points per minute; consider splitting the workflow"
    )
}

/// Whether a plan's warning is one of the two above: a client that cuts and paces its workflows
/// to the limits (the CLI's `apply`) has already done what they advise.
pub fn is_limit_warning(warning: &str) -> bool {
    warning.contains(SECONDARY_LIMIT)
}

const SECONDARY_LIMIT: &str = "GitHub's secondary limit of";

/// A step's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    Skipped,
}

/// One step's result, as the single-operation route would have answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepResult {
    /// 1-based position in the file.
    pub step: usize,
    pub operation: OperationKind,
    pub secret_name: Option<SecretName>,
    /// The target in words: `owner/repo`, `owner/repo (environment 'dev')`, `organisation o`.
    pub target: String,
    /// The scope written: the target's, or `repo` when `env_fallback` applied.
    pub scope: Scope,
    pub status: Status,
    pub success: bool,
    pub duration: f64,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_type: Option<ErrorType>,
    /// The operation's `data`, as in its envelope; `{}` when the step did not complete.
    #[schema(value_type = Object)]
    pub data: Value,
    #[serde(default)]
    pub messages: Vec<String>,
    /// A create's action, when known: `unchanged` (not written) and `drifted` (written back)
    /// from the service; the CLI's `apply` also fills in `create` and `update` from its plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// The body of `/execute` for a valid workflow: 200 when every step completed, else 207.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub success: bool,
    pub total_operations: usize,
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub duration: f64,
    pub results: Vec<StepResult>,
    pub rate_limit: Option<RateLimit>,
    /// Notes on the run as a whole (that it could not be recorded in the history, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

/// What a step does to the secret it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Write,
    Delete,
    Read,
    /// `check_state`: the write creates a secret that does not exist yet.
    Create,
    /// `check_state`: the write overwrites an existing secret.
    Update,
    /// `check_state`: the delete finds nothing to delete.
    Noop,
    /// `check_state`, or a create with a `value_fingerprint`: the value is the one this service
    /// wrote last and GitHub's `updated_at` has not moved: no write.
    Unchanged,
    /// As `unchanged`, but the secret was changed outside this service since: it is written back.
    Drifted,
    /// `options.prune`: a delete of a secret this service wrote that the workflow no longer names.
    Prune,
}

impl Action {
    /// The wire name, `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Noop => "noop",
            Action::Unchanged => "unchanged",
            Action::Drifted => "drifted",
            Action::Prune => "prune",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanStep {
    pub step: usize,
    pub operation: OperationKind,
    pub secret_name: Option<SecretName>,
    pub target: String,
    pub scope: Scope,
    pub action: Action,
}

/// One problem with a workflow file. `step` is 1-based; `None` for the workflow's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanError {
    pub step: Option<usize>,
    /// Dotted path of the field; empty for the whole body.
    pub field: String,
    pub message: String,
}

/// How much the workflow asks of the upstream, before retries and diagnoses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Estimate {
    /// Calls this service makes to the GitHub Service.
    pub github_service_calls: usize,
    /// Requests the GitHub Service makes to GitHub for them.
    pub github_requests: usize,
    /// Writes and deletes: GitHub's "content-creating" requests.
    pub github_writes: usize,
}

/// The body of `/execute/plan` (200 when valid, 422 when not), and of `/execute` (422) for an
/// invalid workflow, which runs nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub valid: bool,
    pub total_operations: usize,
    pub plan: Vec<PlanStep>,
    pub warnings: Vec<String>,
    pub errors: Vec<PlanError>,
    pub estimate: Estimate,
    pub state_checked: bool,
    /// `check_state`: the scopes whose secrets could not be read, and why (their steps keep
    /// their unrefined actions; a warning says so too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
    /// `check_state`: the steps the plan already knows will fail (a write to an environment
    /// that does not exist, without `env_fallback`), and how.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub will_fail: Vec<ExpectedFailure>,
    /// `options.prune`: the secrets of the pruned targets that this service did not write, and
    /// that the workflow does not name: never deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
}

/// A secret `options.prune` leaves alone: this service did not write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unmanaged {
    /// The target in words, as in the plan's steps.
    pub target: String,
    pub secret_name: SecretName,
}

/// A step that will fail, and its error type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpectedFailure {
    pub step: usize,
    pub error_type: ErrorType,
}

/// A scope `check_state` could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unreadable {
    /// The target in words, as in the plan's steps.
    pub target: String,
    pub error_type: ErrorType,
}
