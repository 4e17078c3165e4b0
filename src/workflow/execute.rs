//! `/execute`: runs a valid workflow with the outcome of running it one step at a time in file
//! order, while steps that touch different secrets and scopes overlap up to `concurrency`.
//!
//! All steps run in the request's own task (no spawning), so the request's upstream-call count
//! and log context cover them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::StatusCode;
use mgraph_deploy_api::Action;
pub use mgraph_deploy_api::{Report, Status, StepResult};
use serde_json::Value;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::Instrument as _;

use crate::audit;
use crate::converge::{Decision, Memory};
use crate::domain::SecretName;
use crate::operations::{
    AbsentSecret, ErrorType, MAX_RETRY_AFTER_SECONDS, Operations, Outcome, RateLimit, Request,
};

use super::schedule::dependencies;
use super::spec::{OnError, Step, Workflow};

/// How failed steps are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles each time, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: exponential with jitter (half fixed, half random),
    /// and never shorter than the upstream's `Retry-After`.
    fn delay(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jittered = exponential / 2 + exponential.mul_f64(random_fraction() / 2.0);
        let retry_after = retry_after.unwrap_or(0).min(MAX_RETRY_AFTER_SECONDS);
        jittered.max(Duration::from_secs(retry_after))
    }
}

/// A number in [0, 1) from the standard library's per-instance random hasher keys.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A step's result, with what the executor needs besides what it reports.
#[derive(Debug, Clone)]
struct StepRun {
    result: StepResult,
    rate_limit: Option<RateLimit>,
    retry_after: Option<u64>,
    retryable: bool,
    /// Calls to the GitHub Service over every attempt.
    upstream_calls: u32,
}

/// Told of each step as it finishes, whatever became of it (the history records them).
pub trait StepSink: Sync {
    fn finished(&self, step: &Step, result: &StepResult, upstream_calls: u32);
}

/// No one is told.
impl StepSink for () {
    fn finished(&self, _: &Step, _: &StepResult, _: u32) {}
}

/// A result of `step` with `status` and nothing else yet.
fn result_of(step: &Step, status: Status) -> StepResult {
    StepResult {
        step: step.number,
        operation: step.kind(),
        secret_name: step.secret_name().cloned(),
        target: step.target().to_string(),
        scope: step.target().scope(),
        status,
        success: status == Status::Completed,
        duration: 0.0,
        attempts: 0,
        error: None,
        error_type: None,
        data: Value::Object(Default::default()),
        messages: Vec::new(),
        action: None,
    }
}

/// 200 when every step completed, 207 otherwise.
pub fn report_status(report: &Report) -> StatusCode {
    if report.success {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    }
}

/// Why a step never started.
#[derive(Debug, Clone, Copy)]
enum Skip {
    Deadline,
    Stopped,
}

/// A step abandoned while it ran, because the report had to be sent.
fn interrupted(step: &Step, attempts: u32, started: Instant) -> StepResult {
    StepResult {
        error: Some(
            "interrupted: still running when the request ran out of time, so whether it took effect is unknown; check before running it again"
                .to_owned(),
        ),
        error_type: Some(ErrorType::Deadline),
        attempts,
        duration: started.elapsed().as_secs_f64(),
        ..result_of(step, Status::Failed)
    }
}

fn skipped(step: &Step, why: Skip) -> StepResult {
    let (error_type, error) = match why {
        Skip::Deadline => (
            ErrorType::Deadline,
            "not started: the workflow's deadline passed first".to_owned(),
        ),
        Skip::Stopped => (
            ErrorType::Stopped,
            "not started: an earlier step failed and on_error is `stop`".to_owned(),
        ),
    };
    StepResult {
        error: Some(error),
        error_type: Some(error_type),
        ..result_of(step, Status::Skipped)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Finished,
}

/// Runs `workflow`. Never fails as a whole: every step gets a result.
///
/// No step or retry starts after the workflow's deadline. `cutoff`, when given, is the moment the
/// report must be ready (in Lambda: shortly before the invocation's own deadline): it also caps
/// the deadline, and steps still running at it are abandoned and reported as failed with
/// `error_type: "deadline"`, since whether they took effect upstream is unknown.
pub async fn execute(
    ops: &Operations,
    memory: Option<&Memory>,
    workflow: &Workflow,
    policy: RetryPolicy,
    cutoff: Option<Instant>,
    sink: &dyn StepSink,
) -> Report {
    let started = Instant::now();
    let deadline = cutoff.map_or(started + workflow.options.deadline, |cutoff| {
        cutoff.min(started + workflow.options.deadline)
    });
    let steps = &workflow.steps;
    let depends_on = dependencies(steps);
    let mut state = vec![State::Pending; steps.len()];
    let mut results: Vec<Option<StepResult>> = vec![None; steps.len()];
    let attempts: Vec<AtomicU32> = steps.iter().map(|_| AtomicU32::new(0)).collect();
    let mut started_at = vec![started; steps.len()];
    let mut running = FuturesUnordered::new();
    let mut stopping = false;
    let mut deadline_passed = false;
    let mut last_rate_limit = None;

    loop {
        if stopping || deadline_passed {
            let why = if stopping {
                Skip::Stopped
            } else {
                Skip::Deadline
            };
            for (i, s) in state.iter_mut().enumerate() {
                if *s == State::Pending {
                    *s = State::Finished;
                    results[i] = Some(log_step(&steps[i], skipped(&steps[i], why), 0, sink));
                }
            }
        }
        for i in 0..steps.len() {
            if running.len() >= workflow.options.concurrency {
                break;
            }
            let ready = state[i] == State::Pending
                && depends_on[i].iter().all(|&d| state[d] == State::Finished);
            if ready {
                state[i] = State::Running;
                started_at[i] = Instant::now();
                let (step, attempts) = (&steps[i], &attempts[i]);
                // Every line a step logs (its upstream calls, its retries) carries its number.
                let span = tracing::info_span!(
                    "step",
                    step = step.number,
                    operation = step.kind().name(),
                    secret_name = step.secret_name().map(SecretName::as_str),
                );
                running.push(
                    async move {
                        let result =
                            run_step(ops, memory, step, workflow, policy, deadline, attempts).await;
                        (i, result)
                    }
                    .instrument(span),
                );
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, run)) = running.next() => {
                state[i] = State::Finished;
                if run.rate_limit.is_some() {
                    last_rate_limit = run.rate_limit;
                }
                if run.result.status == Status::Failed && workflow.options.on_error == OnError::Stop {
                    stopping = true;
                }
                results[i] = Some(log_step(&steps[i], run.result, run.upstream_calls, sink));
            }
            () = sleep_until(deadline), if !deadline_passed => deadline_passed = true,
            () = sleep_until(cutoff.unwrap_or(deadline)), if cutoff.is_some() => {
                running.clear();
                deadline_passed = true;
                for (i, s) in state.iter_mut().enumerate() {
                    if *s == State::Running {
                        *s = State::Finished;
                        let attempts = attempts[i].load(Ordering::Relaxed);
                        results[i] = Some(log_step(&steps[i], interrupted(&steps[i], attempts, started_at[i]), 0, sink));
                    }
                }
            }
        }
    }

    let results: Vec<StepResult> = results
        .into_iter()
        .map(|r| r.expect("every step finished"))
        .collect();
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let (completed, failed, skipped) = (
        count(Status::Completed),
        count(Status::Failed),
        count(Status::Skipped),
    );
    let duration = started.elapsed().as_secs_f64();
    tracing::info!(
        total = results.len(),
        completed,
        failed,
        skipped,
        duration_ms = duration * 1000.0,
        "workflow finished"
    );
    Report {
        success: completed == results.len(),
        total_operations: results.len(),
        completed,
        failed,
        skipped,
        duration,
        results,
        rate_limit: last_rate_limit,
        messages: Vec::new(),
    }
}

/// The step's log line, its audit event when it writes or deletes, and `sink` told.
fn log_step(
    step: &Step,
    result: StepResult,
    upstream_calls: u32,
    sink: &dyn StepSink,
) -> StepResult {
    sink.finished(step, &result, upstream_calls);
    if audit::is_audited(step.kind()) {
        let outcome = match result.status {
            Status::Completed => audit::outcome_of(step.kind(), Ok(&result.data)).0,
            Status::Failed => audit::Outcome::Failed,
            Status::Skipped => audit::Outcome::Skipped,
        };
        let error_type = result.error_type.map(ErrorType::as_str);
        audit::Event {
            operation: result.operation.name(),
            step: Some(result.step),
            target: Some(step.target()),
            secret_name: step.secret_name(),
            outcome,
            error_type,
        }
        .record();
    }
    tracing::info!(
        step = result.step,
        operation = result.operation.name(),
        scope = result.scope.as_str(),
        secret_name = result.secret_name.as_ref().map(SecretName::as_str),
        status = ?result.status,
        attempts = result.attempts,
        duration_ms = result.duration * 1000.0,
        error_type = result.error_type.map(ErrorType::as_str),
        "workflow step"
    );
    result
}

/// Runs one step, retrying what may succeed on another attempt while the deadline allows. With a
/// memory, a create whose value is unchanged is not written ([`crate::converge`]), a write is
/// remembered, and a delete forgotten.
async fn run_step(
    ops: &Operations,
    memory: Option<&Memory>,
    step: &Step,
    workflow: &Workflow,
    policy: RetryPolicy,
    deadline: Instant,
    attempt_count: &AtomicU32,
) -> StepRun {
    let started = Instant::now();
    let mut attempts = 0;
    let mut upstream_calls = 0;
    let pat = &workflow.pat;
    let mut decision = Decision::Write;
    if let (Some(memory), Request::Create(req), false) =
        (memory, &step.request, workflow.options.force)
    {
        let (decided, calls) = memory.decide(ops, pat, req).await;
        upstream_calls += calls;
        if let Decision::Unchanged { written_ms } = decided {
            attempt_count.store(1, Ordering::Relaxed);
            return step_run(step, Memory::unchanged(req, written_ms, calls), 1, started);
        }
        decision = decided;
    }
    loop {
        attempts += 1;
        attempt_count.store(attempts, Ordering::Relaxed);
        let outcome = match memory {
            Some(memory) => {
                let request = &step.request;
                memory
                    .run(ops, pat, request, AbsentSecret::IsDone, Some(&decision))
                    .await
            }
            None => ops.run(pat, &step.request, AbsentSecret::IsDone).await,
        };
        upstream_calls += outcome.upstream_calls;
        let mut run = step_run(step, outcome, attempts, started);
        run.upstream_calls = upstream_calls;
        if !run.retryable || attempts >= policy.max_attempts {
            return run;
        }
        let wait = policy.delay(attempts, run.retry_after);
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|next| next >= deadline)
        {
            run.result.messages.push(format!(
                "not retried: the next attempt would start after the workflow's deadline (wait {:.1} s)",
                wait.as_secs_f64()
            ));
            return run;
        }
        sleep(wait).await;
    }
}

fn step_run(step: &Step, outcome: Outcome, attempts: u32, started: Instant) -> StepRun {
    let (status, data, error, error_type, retryable, retry_after) = match outcome.result {
        Ok(data) => (Status::Completed, data, None, None, false, None),
        Err(failure) => (
            Status::Failed,
            Value::Object(Default::default()),
            Some(failure.message.clone()),
            Some(failure.error_type),
            failure.is_retryable(),
            failure.retry_after,
        ),
    };
    let scope = Outcome::scope_written(&data, step.target());
    let action = if data["unchanged"] == true {
        Some(Action::Unchanged)
    } else if data["drifted"] == true {
        Some(Action::Drifted)
    } else {
        None
    };
    StepRun {
        result: StepResult {
            duration: started.elapsed().as_secs_f64(),
            attempts,
            error,
            error_type,
            data,
            messages: outcome.messages,
            scope,
            action,
            ..result_of(step, status)
        },
        rate_limit: outcome.rate_limit,
        retry_after,
        retryable,
        upstream_calls: outcome.upstream_calls,
    }
}
