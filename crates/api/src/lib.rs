//! The Deploy Service's HTTP contract (`api.md`), written once and shared by the service, its
//! client (`mgraph-deploy-cli`) and the tests; the service's OpenAPI document is generated from
//! these types and its route table.
//!
//! - [`names`], [`sealed`], [`target`]: validated vocabulary. A value of one of these types is
//!   acceptable to GitHub and to the GitHub Service as is; deserializing one is its validation,
//!   and errors name the rule, never the rejected value (it may be a misplaced credential).
//! - [`requests`]: the body of every operation route and of a workflow file.
//! - [`envelope`]: the answer of every operation route and each operation's `data`.
//! - [`workflow`]: the `/execute` report and the `/execute/plan` body.
//! - [`errors`]: the `error_type` vocabulary with each type's HTTP status, and the operations.
//! - [`info`]: the bodies of `/info/*`, `/public-keys/github` and the plain failure body.
//! - [`history`]: what the service remembers of what it did (`/executions/*`).
//! - [`token`]: the token check (`/operations/github/token/check`).

pub mod envelope;
pub mod errors;
pub mod history;
pub mod info;
pub mod names;
pub mod requests;
pub mod rules;
pub mod sealed;
pub mod target;
pub mod token;
pub mod workflow;

pub use envelope::{
    CreateData, DeleteData, Envelope, ExistsData, GetData, ListData, PresenceData, PresenceEntry,
    PresenceScope, RateLimit, SecretMeta,
};
pub use errors::{ErrorType, OperationKind};
pub use history::{
    Execution, ExecutionId, ExecutionStatus, ExecutionStep, ExecutionSummary, HistoryCursor,
    HistoryGetBody, HistoryGetData, HistoryListBody, HistoryListData, HistoryOperation,
    MAX_HISTORY_PAGE, SecretState, SecretStateEntry, SecretsStateBody, SecretsStateData,
    StepOutcome,
};
pub use info::{ErrorBody, Health, HistoryStatus, PublicKeyInfo, ServiceStatus, Version};
pub use names::{
    EnvironmentName, NameError, OrgName, OwnerName, PresenceName, RepoName, SecretName,
    ValueFingerprint,
};
pub use requests::{
    CreateBody, CreateOp, Credentials, ListBody, ListOp, OnError, OperationBody, PresenceBody,
    PresenceOp, SecretBody, SecretOp, WorkflowBody, WorkflowOperation, WorkflowOptions,
};
pub use sealed::{MAX_ENCODED_CHARS, SEAL_OVERHEAD, SealedBlob, SealedPat, SealedValue};
pub use target::{
    EnvFallback, OptionMisfit, OrgAccess, Scope, Target, TargetSpec, Visibility, write_options,
};
pub use token::{TargetAccess, TokenCheckBody, TokenCheckData, TokenOperation};
pub use workflow::{
    Action, Estimate, ExpectedFailure, POINTS_PER_MINUTE, Plan, PlanError, PlanStep, Report,
    Status, StepResult, Unmanaged, Unreadable, WRITES_PER_MINUTE, is_limit_warning,
    points_limit_warning, writes_limit_warning,
};

use serde::Deserialize as _;

/// For an optional member: absent is `None`, `null` is refused (a `null` is never read as
/// "absent": `"environment": null` must not turn an environment write into a repository write).
/// Use with `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(NULL_MEMBER)),
    }
}

/// For an optional whole number, with [`present`]'s refusal of `null`. JSON has one number type, so
/// `3.0` is the whole number 3 (as JSON Schema's `integer` says). Refused: `3.5`, negative
/// numbers, numbers past GitHub's 64-bit signed ids ([`MAX_WHOLE_NUMBER`]), and numbers written
/// with a fraction past 2^53, where the parsed value may no longer be the one written.
pub fn present_whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let number: Option<serde_json::Number> = present(deserializer)?;
    number.map(|n| whole(n, WHOLE_NUMBER)).transpose()
}

/// [`present_whole_number`] for `options.concurrency`, whose refusal states its range (1-16;
/// the range itself is checked with the other options).
pub fn present_concurrency<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let number: Option<serde_json::Number> = present(deserializer)?;
    number.map(|n| whole(n, rules::CONCURRENCY)).transpose()
}

/// [`present_whole_number`] for `options.deadline_seconds` (1-840).
pub fn present_deadline_seconds<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let number: Option<serde_json::Number> = present(deserializer)?;
    number
        .map(|n| whole(n, rules::DEADLINE_SECONDS))
        .transpose()
}

/// [`present_whole_number`] for a list.
pub fn present_whole_numbers<'de, D>(deserializer: D) -> Result<Option<Vec<u64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let numbers: Option<Vec<WholeNumber>> = present(deserializer)?;
    Ok(numbers.map(|numbers| numbers.into_iter().map(|n| n.0).collect()))
}

/// One element of [`present_whole_numbers`], so an error names its index.
struct WholeNumber(u64);

impl<'de> serde::Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        whole(serde_json::Number::deserialize(deserializer)?, WHOLE_NUMBER).map(WholeNumber)
    }
}

/// The largest whole number a request takes: GitHub's ids are 64-bit signed integers.
pub const MAX_WHOLE_NUMBER: u64 = i64::MAX as u64;

/// `number` as a whole number, or `rule` (a message of [`rules`]).
fn whole<E: serde::de::Error>(number: serde_json::Number, rule: &'static str) -> Result<u64, E> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Some(n) = number.as_u64() {
        return if n <= MAX_WHOLE_NUMBER {
            Ok(n)
        } else {
            Err(E::custom(rule))
        };
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=EXACT).contains(&f) => Ok(f as u64),
        _ => Err(E::custom(rule)),
    }
}

pub use rules::{NULL_MEMBER, WHOLE_NUMBER};
