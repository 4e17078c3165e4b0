//! The audit trail: one event, with the tracing target `audit`, for every write, every delete and
//! every refusal, on single routes and workflow steps alike. It answers "who wrote or deleted
//! which secret where, and when, and what was refused", never with a value or a blob: every
//! field is a validated name, a fixed word or a number.
//!
//! Fields: `request_id`, `caller` (the name of the API key presented, never its value; absent
//! when the service runs without a key), `operation`, `step` (workflows), `scope`, `resource`
//! (the repository, environment or organisation), `secret_name`, `outcome`, `error_type`,
//! `upstream_calls`. The log line's own timestamp is the time.

use crate::domain::{SecretName, Target};
use crate::operations::{ErrorType, OperationKind};
use crate::request_context;

/// What became of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A create that wrote the secret.
    Written,
    /// A workflow create not written: its value is the one this service wrote last, unchanged.
    Unchanged,
    /// A create that wrote back a secret changed outside this service.
    Drifted,
    /// A delete that removed the secret.
    Deleted,
    /// A workflow delete that found nothing to delete.
    Absent,
    /// Tried, and failed (`error_type` says how).
    Failed,
    /// A workflow step never started (`error_type` says why).
    Skipped,
    /// Rejected by this service before any upstream call: bad input, no or a wrong API key.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Unchanged => "unchanged",
            Outcome::Drifted => "drifted",
            Outcome::Deleted => "deleted",
            Outcome::Absent => "absent",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
        }
    }
}

/// One audited action.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `github:secrets:<verb>`, `workflow` for a refused `/execute`, or the path of another route.
    pub operation: &'a str,
    pub step: Option<usize>,
    pub target: Option<&'a Target>,
    pub secret_name: Option<&'a SecretName>,
    pub outcome: Outcome,
    pub error_type: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A refusal of `operation` before anything was read of its target.
    pub fn refused(operation: &'a str, error_type: ErrorType) -> Self {
        let error_type = Some(error_type.as_str());
        Self {
            operation,
            step: None,
            target: None,
            secret_name: None,
            outcome: Outcome::Refused,
            error_type,
        }
    }

    /// Writes the event.
    pub fn record(&self) {
        tracing::info!(
            target: "audit",
            request_id = request_context::request_id(),
            caller = request_context::caller().as_ref().map(http::HeaderName::as_str),
            operation = self.operation,
            step = self.step,
            scope = self.target.map(|t| t.scope().as_str()),
            resource = self.target.map(tracing::field::display),
            secret_name = self.secret_name.map(SecretName::as_str),
            outcome = self.outcome.as_str(),
            error_type = self.error_type,
            upstream_calls = request_context::upstream_calls().unwrap_or(0),
            "audit"
        );
    }
}

/// Whether an operation changes secrets (and so is audited whatever its outcome).
pub fn is_audited(kind: OperationKind) -> bool {
    matches!(kind, OperationKind::Create | OperationKind::Delete)
}

/// The outcome of a create or delete that ran: `data` is its result on success.
pub fn outcome_of(
    kind: OperationKind,
    result: Result<&serde_json::Value, ErrorType>,
) -> (Outcome, Option<&'static str>) {
    match result {
        Err(error_type) => (Outcome::Failed, Some(error_type.as_str())),
        Ok(data) if kind == OperationKind::Create && data["unchanged"] == true => {
            (Outcome::Unchanged, None)
        }
        Ok(data) if kind == OperationKind::Create && data["drifted"] == true => {
            (Outcome::Drifted, None)
        }
        Ok(_) if kind == OperationKind::Create => (Outcome::Written, None),
        Ok(data) if data["deleted"] == false => (Outcome::Absent, None),
        Ok(_) => (Outcome::Deleted, None),
    }
}
