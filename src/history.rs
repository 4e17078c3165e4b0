//! The history: every `/execute` and every single create, delete and refusal, recorded in the
//! [`store`](crate::store) as an execution with its steps; and what a caller may read of it.
//!
//! A write is never refused or lost because the store is down: recording happens after the
//! work, a failure to record is said in the answer (and logged; the audit line is written
//! regardless, and stays the source of truth), and `/info/status` reports the store degraded
//! until a later record succeeds. A 401 is not recorded (it stays in the audit log): recording it
//! would let anyone without a key fill the store.
//!
//! Who may read: a target's history is metadata GitHub shows only to whoever can read the
//! target's secrets, so it is shown only when the caller's sealed PAT lists them (the check of
//! `list`, one upstream call per target).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt as _;
use mgraph_deploy_api::{
    Execution, ExecutionId, ExecutionStatus, ExecutionStep, ExecutionSummary, HistoryCursor,
    HistoryGetData, HistoryListData, MAX_HISTORY_PAGE, StepOutcome,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{ConfigError, StoreSetting, VAR_STORE};
use crate::domain::{Scope, SealedPat, SecretName, Target};
use crate::operations::{ErrorType, Failure, OperationKind, Operations, Outcome, Request};
use crate::store::{
    DynamoDb, Finish, NewExecution, STORE_TIMEOUT, Sqlite, StepRecord, Store, StoreError, Stored,
    TargetKey, TargetRef, bounded, failed_store, now_ms,
};
use crate::workflow::{Report, Status, Step, StepResult, StepSink};

/// The history of one running service: its store, how long records are kept, and whether the
/// store failed last time.
#[derive(Debug, Clone)]
pub struct History {
    store: Arc<dyn Store>,
    retention: Duration,
    degraded: Arc<AtomicBool>,
}

/// The route of a workflow.
const EXECUTE: &str = "POST /execute";

/// How many targets `get` checks the caller's PAT on at once.
const TARGET_CHECKS_AT_ONCE: usize = 8;

/// A page of a target's history, at most this long unless asked otherwise.
const DEFAULT_PAGE: u64 = 20;

impl History {
    pub fn new(store: Arc<dyn Store>, retention: Duration) -> Self {
        Self {
            store,
            retention,
            degraded: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The history `setting` names, opened (a SQLite file created and migrated, a DynamoDB table
    /// found); `None` for no history. A store that cannot be used is a configuration error.
    pub async fn open(
        setting: &StoreSetting,
        retention: Duration,
    ) -> Result<Option<Self>, ConfigError> {
        let store: Arc<dyn Store> = match setting {
            StoreSetting::None(_) => return Ok(None),
            StoreSetting::Sqlite(path) => Arc::new(Sqlite::open(path, now_ms()).map_err(unusable)?),
            StoreSetting::DynamoDb(table) => {
                Arc::new(DynamoDb::open(table).await.map_err(unusable)?)
            }
        };
        Ok(Some(Self::new(store, retention)))
    }

    /// What the service remembers of what it wrote, in the same store.
    pub fn memory(&self) -> crate::converge::Memory {
        crate::converge::Memory::new(self.store.clone())
    }

    /// `sqlite` or `dynamodb`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the last attempt to record failed.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// An execution of the request being served (its id, its caller's key name).
    fn new_execution(
        &self,
        started_ms: u64,
        route: String,
        total: u64,
        targets: Vec<TargetRef>,
        deadline_ms: u64,
    ) -> NewExecution {
        NewExecution {
            id: crate::request_context::request_id(),
            started_ms,
            caller: crate::request_context::caller().map(|c| c.as_str().to_owned()),
            route,
            total,
            targets,
            deadline_ms,
            expires_at: started_ms / 1000 + self.retention.as_secs(),
        }
    }

    /// Notes the result of a recording: a message for the answer when it failed.
    fn outcome(&self, id: &str, recorded: Result<(), StoreError>) -> Option<String> {
        match recorded {
            Ok(()) => {
                self.degraded.store(false, Ordering::Relaxed);
                None
            }
            Err(e) => {
                self.degraded.store(true, Ordering::Relaxed);
                tracing::error!(execution = id, error = %e, "the history could not record an execution");
                Some(format!(
                    "Not recorded in the history: {}; the audit log has it",
                    failed_store(&e)
                ))
            }
        }
    }

    /// Records `execution` whole; an id recorded before (a client's reused `x-request-id`)
    /// gets a suffix, and a note says so. Returns the notes for the answer.
    async fn record_whole(&self, mut execution: Stored) -> Vec<String> {
        let id = execution.start.id.clone();
        let mut notes = Vec::new();
        let backend = self.backend();
        let mut recorded = bounded(backend, self.store.record(execution.clone())).await;
        if recorded.as_ref().is_err_and(|e| e.exists) {
            execution.start.id = fresh_id(&id);
            notes.push(format!(
                "Recorded in the history as execution {}: request id {id} was recorded before",
                execution.start.id
            ));
            recorded = bounded(backend, self.store.record(execution)).await;
        }
        notes.extend(self.outcome(&id, recorded));
        notes
    }

    /// Records `execution` whole, giving up at `by` (when the answer is due: the runtime's
    /// deadline would otherwise turn an answered write into a 504).
    async fn record_whole_by(&self, execution: Stored, by: Option<Instant>) -> Vec<String> {
        let Some(by) = by else {
            return self.record_whole(execution).await;
        };
        match tokio::time::timeout_at(by, self.record_whole(execution)).await {
            Ok(notes) => notes,
            Err(_) => {
                self.degraded.store(true, Ordering::Relaxed);
                tracing::error!("the history was still recording when the answer was due");
                vec![format!(
                    "Not recorded in the history: its store ({}) was still writing when this answer was due; the audit log has it",
                    self.backend()
                )]
            }
        }
    }

    /// Records a single operation route's run (or refusal) as an execution of one step, by
    /// `by` at the latest.
    pub async fn record_operation(
        &self,
        run: OperationRun<'_>,
        by: Option<Instant>,
    ) -> Vec<String> {
        let started_ms = now_ms().saturating_sub(run.duration.as_millis() as u64);
        let target = run.target.map(TargetRef::of);
        let mut targets: Vec<TargetRef> = target.iter().cloned().collect();
        // A write that fell back to the repository is in the repository's history too.
        if let (Some(target), Some(scope)) = (run.target, run.scope) {
            if scope != target.scope() {
                targets.extend(target.repository().as_ref().map(TargetRef::of));
            }
        }
        let (status, completed, failed) = match run.outcome {
            StepOutcome::Refused => (ExecutionStatus::Refused, 0, 1),
            StepOutcome::Failed => (ExecutionStatus::Failed, 0, 1),
            _ => (ExecutionStatus::Completed, 1, 0),
        };
        let finished_ms = now_ms();
        let route = format!("POST {}", run.kind.path());
        let execution = Stored {
            start: self.new_execution(started_ms, route, 1, targets, finished_ms),
            finish: Some(Finish {
                finished_ms,
                status,
                completed,
                failed,
                skipped: 0,
            }),
            steps: vec![StepRecord {
                step: 1,
                operation: run.kind,
                target,
                scope: run.scope,
                secret_name: run.secret_name.cloned(),
                outcome: run.outcome,
                error_type: run.error_type,
                duration_ms: run.duration.as_millis() as u64,
                upstream_calls: u64::from(run.upstream_calls),
            }],
        };
        self.record_whole_by(execution, by).await
    }

    /// Records a workflow refused before it ran (`/execute` answered 422), under the targets of
    /// the `steps` that could be read.
    pub async fn record_refused_workflow(
        &self,
        steps: &[Step],
        total: u64,
        by: Option<Instant>,
    ) -> Vec<String> {
        let started_ms = now_ms();
        let targets = workflow_targets(steps);
        let execution = Stored {
            start: self.new_execution(started_ms, EXECUTE.to_owned(), total, targets, started_ms),
            finish: Some(Finish {
                finished_ms: started_ms,
                status: ExecutionStatus::Refused,
                completed: 0,
                failed: 0,
                skipped: 0,
            }),
            steps: Vec::new(),
        };
        self.record_whole_by(execution, by).await
    }

    /// Starts recording a workflow about to run `steps`: its start now, each step as it finishes
    /// (in the background, so a run cut off by its deadline leaves what finished), its end with
    /// [`WorkflowRecording::finish`].
    pub fn start_workflow(&self, steps: &[Step], runs_for: Duration) -> WorkflowRecording {
        let started_ms = now_ms();
        // Its report is due within `runs_for`; its record is complete soon after.
        let deadline_ms = started_ms + (runs_for + 2 * STORE_TIMEOUT).as_millis() as u64;
        let total = steps.len() as u64;
        let targets = workflow_targets(steps);
        let start = self.new_execution(started_ms, EXECUTE.to_owned(), total, targets, deadline_ms);
        let (notes, mut told) = mpsc::unbounded_channel::<Note>();
        let history = self.clone();
        let writer = tokio::spawn(async move {
            let requested = start.id.clone();
            let expires_at = start.expires_at;
            let backend = history.backend();
            let mut messages = Vec::new();
            let mut begun = bounded(backend, history.store.begin(start.clone())).await;
            let mut id = requested.clone();
            if begun.as_ref().is_err_and(|e| e.exists) {
                id = fresh_id(&requested);
                messages.push(format!(
                    "Recorded in the history as execution {id}: request id {requested} was recorded before"
                ));
                let start = NewExecution {
                    id: id.clone(),
                    ..start
                };
                begun = bounded(backend, history.store.begin(start)).await;
            }
            let mut first_error = begun.err();
            while let Some(note) = told.recv().await {
                if first_error.is_some() {
                    continue;
                }
                let written = match note {
                    Note::Step(step) => {
                        bounded(backend, history.store.step(id.clone(), step, expires_at)).await
                    }
                    Note::Finish(finish) => {
                        bounded(backend, history.store.finish(id.clone(), finish)).await
                    }
                };
                first_error = written.err();
            }
            messages.extend(history.outcome(&requested, first_error.map_or(Ok(()), Err)));
            messages
        });
        WorkflowRecording {
            notes,
            writer,
            backend: self.backend(),
        }
    }

    /// A page of `target`'s history, for a caller whose sealed `pat` can list its secrets.
    pub async fn list(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        target: &Target,
        limit: Option<u64>,
        cursor: Option<HistoryCursor>,
    ) -> Result<HistoryListData, Failure> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(Failure::new(
                ErrorType::InvalidInput,
                format!("`limit` must be from 1 to {MAX_HISTORY_PAGE}"),
            ));
        }
        // The PAT must list the target's secrets: the same check, and the same failures, as
        // `list`.
        ops.scope_secrets(pat, target).await?;
        let now = now_ms();
        let key = TargetKey::of(target);
        let page = bounded(
            self.backend(),
            self.store.list(key.clone(), limit as usize, cursor, now),
        )
        .await
        .map_err(|e| self.unreadable(e))?;
        // Only this target is named: the others an execution touched may be ones this PAT
        // cannot read.
        let executions = page
            .executions
            .iter()
            .map(|e| {
                let mut summary = summary(e, now, None);
                summary.targets = e
                    .start
                    .targets
                    .iter()
                    .filter(|t| t.key == key)
                    .map(|t| t.shown.clone())
                    .collect();
                summary
            })
            .collect();
        Ok(HistoryListData {
            executions,
            next_cursor: page.next,
        })
    }

    /// One execution, with the steps on targets the caller's sealed `pat` can list; `not_found`
    /// when it can see none of them (never `forbidden`: whether an id exists is not told).
    pub async fn get(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        id: &ExecutionId,
    ) -> Result<HistoryGetData, Failure> {
        let now = now_ms();
        let not_found = || {
            Failure::new(
                ErrorType::NotFound,
                format!(
                    "No execution {id} in the history that this PAT may see (it can see an execution's steps on targets whose secrets it can list)"
                ),
            )
        };
        let Some(stored) = bounded(self.backend(), self.store.get(id.as_str().to_owned(), now))
            .await
            .map_err(|e| self.unreadable(e))?
        else {
            return Err(not_found());
        };
        let keys: BTreeSet<TargetKey> = stored
            .start
            .targets
            .iter()
            .map(|t| t.key.clone())
            .chain(
                stored
                    .steps
                    .iter()
                    .filter_map(|s| s.target.as_ref().map(|t| t.key.clone())),
            )
            .collect();
        // Each target checked as `list` checks it, a few at once. A PAT that may not read a
        // target does not see its steps; a failure that is not about the target (the PAT is
        // invalid or sealed to another key, GitHub limits it, the upstream fails) is the
        // answer, as `list` gives it.
        let checks = futures_util::stream::iter(keys.iter().cloned())
            .map(|key| async move {
                let target = key.target()?;
                let check = ops.scope_secrets(pat, &target).await;
                Some((key, check))
            })
            .buffer_unordered(TARGET_CHECKS_AT_ONCE)
            .filter_map(std::future::ready)
            .collect::<Vec<_>>()
            .await;
        let mut visible = BTreeSet::new();
        for (key, check) in checks {
            match check {
                Ok(_) => {
                    visible.insert(key);
                }
                Err(f) if matches!(f.error_type, ErrorType::Forbidden | ErrorType::NotFound) => {}
                Err(failure) => return Err(failure),
            }
        }
        if visible.is_empty() {
            return Err(not_found());
        }
        let hidden = keys.len() > visible.len();
        let steps: Vec<&StepRecord> = stored
            .steps
            .iter()
            .filter(|s| s.target.as_ref().is_some_and(|t| visible.contains(&t.key)))
            .collect();
        // Counted over the steps shown, when some are not.
        let mut summary = summary(&stored, now, hidden.then_some(&steps[..]));
        summary.targets = stored
            .start
            .targets
            .iter()
            .filter(|t| visible.contains(&t.key))
            .map(|t| t.shown.clone())
            .collect();
        Ok(HistoryGetData {
            execution: Execution {
                summary,
                steps: steps.into_iter().map(step_of).collect(),
            },
        })
    }

    fn unreadable(&self, e: StoreError) -> Failure {
        self.degraded.store(true, Ordering::Relaxed);
        tracing::error!(error = %e, "the history could not be read");
        Failure::new(
            ErrorType::HistoryUnavailable,
            // The cause stays in the log: a store's error may name an account, a role or a path.
            format!("The history cannot be read now: {}", failed_store(&e)),
        )
    }
}

/// A single operation route's run (or refusal), as the history records it.
#[derive(Debug)]
pub struct OperationRun<'a> {
    pub kind: OperationKind,
    /// `None` when the request was refused before its target was read.
    pub target: Option<&'a Target>,
    /// The scope written: the repository's when `env_fallback` applied.
    pub scope: Option<Scope>,
    pub secret_name: Option<&'a SecretName>,
    pub outcome: StepOutcome,
    pub error_type: Option<ErrorType>,
    pub duration: Duration,
    pub upstream_calls: u32,
}

impl<'a> OperationRun<'a> {
    /// What `outcome` did for `request`.
    pub fn ran(outcome: &Outcome, request: &'a Request, duration: Duration) -> Self {
        let target = request.target();
        let (step_outcome, scope) = match &outcome.result {
            Ok(data) => (
                completed_outcome(outcome.kind, data),
                Outcome::scope_written(data, target),
            ),
            Err(_) => (StepOutcome::Failed, target.scope()),
        };
        Self {
            kind: outcome.kind,
            target: Some(target),
            scope: Some(scope),
            secret_name: request.secret_name(),
            outcome: step_outcome,
            error_type: outcome.failure().map(|f| f.error_type),
            duration,
            upstream_calls: outcome.upstream_calls,
        }
    }

    /// A refusal: `outcome` is its failure; `target` the one its body named validly, if any.
    pub fn refused(outcome: &Outcome, target: Option<&'a Target>, duration: Duration) -> Self {
        Self {
            kind: outcome.kind,
            target,
            scope: None,
            secret_name: None,
            outcome: StepOutcome::Refused,
            error_type: outcome.failure().map(|f| f.error_type),
            duration,
            upstream_calls: 0,
        }
    }
}

/// What a workflow's recording is told.
enum Note {
    Step(StepRecord),
    Finish(Finish),
}

/// A workflow being recorded: tell it each step ([`StepSink`]), then [`finish`](Self::finish).
pub struct WorkflowRecording {
    notes: mpsc::UnboundedSender<Note>,
    writer: tokio::task::JoinHandle<Vec<String>>,
    backend: &'static str,
}

impl StepSink for WorkflowRecording {
    fn finished(&self, step: &Step, result: &StepResult, upstream_calls: u32) {
        let outcome = match result.status {
            Status::Completed => completed_outcome(step.kind(), &result.data),
            Status::Failed => StepOutcome::Failed,
            Status::Skipped => StepOutcome::Skipped,
        };
        // The writer stops only after `finish`: a send cannot fail before.
        let _ = self.notes.send(Note::Step(StepRecord {
            step: result.step as u64,
            operation: result.operation,
            target: Some(TargetRef::of(step.target())),
            scope: Some(result.scope),
            secret_name: result.secret_name.clone(),
            outcome,
            error_type: result.error_type,
            duration_ms: (result.duration * 1000.0) as u64,
            upstream_calls: u64::from(upstream_calls),
        }));
    }
}

impl WorkflowRecording {
    /// Records the end `report` tells, and waits for every record to be written, until `by` at
    /// the latest (a report must not miss its deadline for the history). Returns the notes for
    /// the report (that it was not recorded, say).
    pub async fn finish(self, report: &Report, by: Option<Instant>) -> Vec<String> {
        let status = if report.success {
            ExecutionStatus::Completed
        } else {
            ExecutionStatus::Partial
        };
        let _ = self.notes.send(Note::Finish(Finish {
            finished_ms: now_ms(),
            status,
            completed: report.completed as u64,
            failed: report.failed as u64,
            skipped: report.skipped as u64,
        }));
        drop(self.notes);
        let by = by.unwrap_or_else(|| Instant::now() + 2 * STORE_TIMEOUT);
        match tokio::time::timeout_at(by, self.writer).await {
            Ok(Ok(notes)) => notes,
            Ok(Err(_)) => vec![format!(
                "Not recorded in full in the history: its writer stopped ({})",
                self.backend
            )],
            Err(_) => vec![format!(
                "Not recorded in full in the history: its store ({}) was still writing when this report was due",
                self.backend
            )],
        }
    }
}

/// The targets `steps` may touch: each step's, and the repository of a create that may fall
/// back to it.
fn workflow_targets(steps: &[Step]) -> Vec<TargetRef> {
    let mut targets: BTreeMap<TargetKey, TargetRef> = BTreeMap::new();
    for step in steps {
        let mut add = |target: &Target| {
            let target = TargetRef::of(target);
            targets.entry(target.key.clone()).or_insert(target);
        };
        add(step.target());
        if step.request.env_fallback() {
            if let Some(repository) = step.target().repository() {
                add(&repository);
            }
        }
    }
    targets.into_values().collect()
}

/// What a completed step did: a write, a delete (or nothing to delete), or a read.
pub fn completed_outcome(kind: OperationKind, data: &Value) -> StepOutcome {
    match kind {
        OperationKind::Create if data["unchanged"] == true => StepOutcome::Unchanged,
        OperationKind::Create if data["drifted"] == true => StepOutcome::Drifted,
        OperationKind::Create => StepOutcome::Written,
        OperationKind::Delete if data["deleted"] == false => StepOutcome::Absent,
        OperationKind::Delete => StepOutcome::Deleted,
        _ => StepOutcome::Read,
    }
}

/// A request id that was recorded before, made unique: a random suffix, the id shortened to
/// keep it within an id's 128 characters.
fn fresh_id(id: &str) -> String {
    let random = std::collections::hash_map::RandomState::new().hash_one(now_ms());
    let kept = id.get(..id.len().min(128 - 17)).unwrap_or("request");
    format!("{kept}.{random:016x}")
}

fn unusable(e: StoreError) -> ConfigError {
    ConfigError {
        var: VAR_STORE,
        message: format!("the history store cannot be used: {e}"),
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An execution as a list shows it; with `steps`, counted over those only.
fn summary(stored: &Stored, now: u64, steps: Option<&[&StepRecord]>) -> ExecutionSummary {
    let start = &stored.start;
    let (total, completed, failed, skipped) = match steps {
        None => {
            let finish = stored.finish.as_ref();
            (
                start.total,
                finish.map_or(0, |f| f.completed),
                finish.map_or(0, |f| f.failed),
                finish.map_or(0, |f| f.skipped),
            )
        }
        Some(steps) => {
            let count = |wanted: &[StepOutcome]| {
                steps.iter().filter(|s| wanted.contains(&s.outcome)).count() as u64
            };
            (
                steps.len() as u64,
                count(&[
                    StepOutcome::Written,
                    StepOutcome::Deleted,
                    StepOutcome::Absent,
                    StepOutcome::Read,
                ]),
                count(&[StepOutcome::Failed, StepOutcome::Refused]),
                count(&[StepOutcome::Skipped]),
            )
        }
    };
    ExecutionSummary {
        id: ExecutionId::try_from(start.id.clone())
            .unwrap_or_else(|_| ExecutionId::try_from("unreadable-id".to_owned()).expect("plain")),
        started_at: rfc3339(start.started_ms),
        finished_at: stored.finish.as_ref().map(|f| rfc3339(f.finished_ms)),
        caller: start.caller.clone(),
        route: start.route.clone(),
        status: stored.status(now),
        total,
        completed,
        failed,
        skipped,
        targets: start.targets.iter().map(|t| t.shown.clone()).collect(),
    }
}

fn step_of(step: &StepRecord) -> ExecutionStep {
    ExecutionStep {
        step: step.step,
        operation: step.operation,
        target: step.target.as_ref().map(|t| t.shown.clone()),
        scope: step.scope,
        secret_name: step.secret_name.clone(),
        outcome: step.outcome,
        error_type: step.error_type,
        duration: step.duration_ms as f64 / 1000.0,
        upstream_calls: step.upstream_calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_id_differs_from_the_reused_one_and_is_an_execution_id_even_for_the_longest() {
        for id in ["same-id".to_owned(), "x".repeat(128)] {
            let fresh = fresh_id(&id);
            assert_ne!(fresh, id);
            assert!(ExecutionId::try_from(fresh.clone()).is_ok(), "{fresh}");
        }
    }
}
