//! What the service remembers of what it did (`/executions/*`): executions and their steps, as
//! names, targets, scopes, outcomes, times and counts. Never a value, a sealed blob, a PAT or an
//! API key's value: no type here has a field that could hold one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ErrorType, OperationKind, Scope, SealedPat, SecretName, Target, present};

/// The history routes, as an envelope's `operation` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum HistoryOperation {
    #[serde(rename = "executions:list")]
    List,
    #[serde(rename = "executions:get")]
    Get,
    /// What the executions left in a target: each secret, and whether it still holds what this
    /// service wrote.
    #[serde(rename = "executions:secrets")]
    Secrets,
}

impl HistoryOperation {
    pub const ALL: [HistoryOperation; 3] = [
        HistoryOperation::List,
        HistoryOperation::Get,
        HistoryOperation::Secrets,
    ];

    /// Its wire name, its route and the route's last segment.
    const fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            HistoryOperation::List => ("executions:list", "/executions/list", "list"),
            HistoryOperation::Get => ("executions:get", "/executions/get", "get"),
            HistoryOperation::Secrets => ("executions:secrets", "/executions/secrets", "secrets"),
        }
    }

    pub fn name(self) -> &'static str {
        self.names().0
    }

    pub fn path(self) -> &'static str {
        self.names().1
    }

    /// The OpenAPI operation id: `executions_list`, `executions_get`.
    pub fn verb(self) -> &'static str {
        self.names().2
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.path() == path)
    }
}

/// The most executions one page of `executions:list` holds.
pub const MAX_HISTORY_PAGE: u64 = 100;

/// `POST /executions/list`: a target's executions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryListBody {
    /// A PAT that can list the target's secrets: history is shown only to such a caller.
    pub encrypted_pat: SealedPat,
    pub target: Target,
    /// 1 to 100 executions [20].
    #[schema(minimum = 1, maximum = 100)]
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "crate::present_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub limit: Option<u64>,
    /// `next_cursor` of the page before.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor: Option<HistoryCursor>,
}

/// `POST /executions/get`: one execution and its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryGetBody {
    pub encrypted_pat: SealedPat,
    pub id: ExecutionId,
}

macro_rules! token {
    ($(#[$doc:meta])* $name:ident, $max:literal, $pattern:literal, $check:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::NameError;
            fn try_from(value: String) -> Result<Self, crate::NameError> {
                let check: fn(&str) -> bool = $check;
                if (1..=$max).contains(&value.len()) && check(&value) {
                    Ok(Self(value))
                } else {
                    Err(crate::NameError($rule))
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .description(Some($rule))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

token!(
    /// An execution's id: the request id it was recorded under.
    ExecutionId,
    128,
    "^[A-Za-z0-9._-]+$",
    |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
    "must be an execution id: 1-128 letters, digits, '-', '_' or '.'"
);
token!(
    /// Where the next page of a target's executions starts: opaque, from `next_cursor`.
    HistoryCursor,
    160,
    "^[0-9]{16}#[A-Za-z0-9._-]+$",
    |v| v.split_once('#').is_some_and(|(at, id)| {
        at.len() == 16
            && at.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }),
    "must be a next_cursor this service gave"
);

/// Where an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Still running (or cut off, and its deadline has not passed yet).
    Running,
    /// Every step did what was asked.
    Completed,
    /// Some steps failed or were skipped.
    Partial,
    /// Nothing was done (the single operation failed).
    Failed,
    /// Refused before anything was sent upstream.
    Refused,
    /// It never finished: cut off (a Lambda invocation's deadline, say) after the steps shown.
    Interrupted,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 6] = [
        ExecutionStatus::Running,
        ExecutionStatus::Completed,
        ExecutionStatus::Partial,
        ExecutionStatus::Failed,
        ExecutionStatus::Refused,
        ExecutionStatus::Interrupted,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Partial => "partial",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Refused => "refused",
            ExecutionStatus::Interrupted => "interrupted",
        }
    }
}

/// What became of a recorded step: the audit trail's outcomes, and `read` for steps that only
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Written,
    /// A write skipped: the value is the one this service wrote last (the client's fingerprint
    /// says so), and GitHub's `updated_at` has not moved since.
    Unchanged,
    /// Written back: the value is the one this service wrote last, but it was changed outside
    /// this service since (GitHub's `updated_at` moved).
    Drifted,
    Deleted,
    Absent,
    Read,
    Failed,
    Skipped,
    Refused,
}

impl StepOutcome {
    pub const ALL: [StepOutcome; 9] = [
        StepOutcome::Written,
        StepOutcome::Unchanged,
        StepOutcome::Drifted,
        StepOutcome::Deleted,
        StepOutcome::Absent,
        StepOutcome::Read,
        StepOutcome::Failed,
        StepOutcome::Skipped,
        StepOutcome::Refused,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Written => "written",
            StepOutcome::Unchanged => "unchanged",
            StepOutcome::Drifted => "drifted",
            StepOutcome::Deleted => "deleted",
            StepOutcome::Absent => "absent",
            StepOutcome::Read => "read",
            StepOutcome::Failed => "failed",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Refused => "refused",
        }
    }
}

/// One execution as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionSummary {
    pub id: ExecutionId,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The name of the API key the caller presented (never its value); `null` without one.
    pub caller: Option<String>,
    /// `POST /execute`, `POST /operations/github/secrets/create`, …
    pub route: String,
    pub status: ExecutionStatus,
    /// Steps in all, and how each ended (of the steps the caller may see).
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// The targets its steps touched (of those the caller may see): `owner/repo`,
    /// `owner/repo (environment 'dev')`, `organisation o`.
    pub targets: Vec<String>,
}

/// One step of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionStep {
    /// 1-based position in the workflow; 1 for a single operation.
    pub step: u64,
    pub operation: OperationKind,
    pub target: Option<String>,
    /// The scope written: `repo` when an environment write fell back to the repository.
    pub scope: Option<Scope>,
    pub secret_name: Option<SecretName>,
    pub outcome: StepOutcome,
    pub error_type: Option<ErrorType>,
    /// Seconds.
    pub duration: f64,
    /// Calls made to the GitHub Service for it, retries included.
    pub upstream_calls: u64,
}

/// `executions:list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryListData {
    pub executions: Vec<ExecutionSummary>,
    /// Pass it as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<HistoryCursor>,
}

/// One execution with its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Execution {
    #[serde(flatten)]
    pub summary: ExecutionSummary,
    pub steps: Vec<ExecutionStep>,
}

/// `executions:get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryGetData {
    pub execution: Execution,
}

/// `POST /executions/secrets`: each secret of a target, and whether it still holds what this
/// service wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsStateBody {
    /// A PAT that can list the target's secrets.
    pub encrypted_pat: SealedPat,
    pub target: Target,
}

/// Where a secret stands against what this service wrote to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// This service wrote it last, and nobody changed it since (GitHub's `updated_at` is the one
    /// read back after that write).
    InSync,
    /// This service wrote it, and it was changed outside this service since.
    Drifted,
    /// This service wrote it, and it was deleted outside this service since.
    Missing,
    /// This service wrote it, or tried to, but what GitHub holds is not known: the value came
    /// without a fingerprint, or the write's end was never confirmed (it failed, its connection
    /// dropped, another write ran alongside, or it fell back to the repository).
    Unconfirmed,
    /// This service did not write it (or not since it deleted it): never pruned.
    Unmanaged,
}

impl SecretState {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretState::InSync => "in_sync",
            SecretState::Drifted => "drifted",
            SecretState::Missing => "missing",
            SecretState::Unconfirmed => "unconfirmed",
            SecretState::Unmanaged => "unmanaged",
        }
    }
}

/// One secret of `executions:secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretStateEntry {
    pub name: SecretName,
    pub state: SecretState,
    /// GitHub's `updated_at` now; `null` when it is missing.
    pub updated_at: Option<String>,
    /// When this service last wrote it (RFC 3339); `null` when it did not.
    pub written_at: Option<String>,
    /// Environment targets: whether this secret holds the same value as the repository secret of
    /// the same name, which it shadows; known only when this service wrote both, under one
    /// fingerprint key, and both are in sync. Left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as_repository: Option<bool>,
}

/// `executions:secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretsStateData {
    /// By name.
    pub secrets: Vec<SecretStateEntry>,
    pub scope: Scope,
    /// GitHub's list was a full first page: `unmanaged` secrets beyond it are not shown (this
    /// service's own are, looked up by name).
    pub may_be_incomplete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_of_statuses_and_outcomes_are_their_wire_names() {
        for status in ExecutionStatus::ALL {
            assert_eq!(serde_json::json!(status), status.as_str());
        }
        for outcome in StepOutcome::ALL {
            assert_eq!(serde_json::json!(outcome), outcome.as_str());
        }
    }
}
