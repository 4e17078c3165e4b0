//! `apply` and `secret set -f`: every value of a file sealed here and written through
//! `/execute`, in workflows of at most 256 operations paced to GitHub's secondary limits, with
//! the plan's warnings first and one report at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::IsTerminal as _;

use mgraph_deploy_api::{
    Action, Credentials, ErrorType, OnError, OperationKind, Plan, PlanStep, Report, SecretName,
    SecretOp, SecretState, Status, StepResult, Unmanaged, WorkflowBody, WorkflowOperation,
    WorkflowOptions,
};
use serde_json::Value;
use tokio::sync::watch;

use super::args::PatSource;
use super::output::Output;
use super::pacing::{Pacer, human};
use super::session::Session;
use super::{Exit, Failure, InputError, sealed_pat, sealed_value};
use crate::api::{Answer, ClientError, DeployClient, Execution, Target, WriteOptions};
use crate::values::{NamedValue, Values, read_values};

/// Why values after a Ctrl-C were not sent.
const INTERRUPTED: &str = "not sent: interrupted (Ctrl-C)";

/// Why a value the plan found unchanged was not sent.
const UNCHANGED: &str = "Not written: unchanged (the service wrote this value last, by its fingerprint, and GitHub's updated_at has not moved); --force writes it anyway";

/// How an apply runs, besides what it writes where.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) allow_empty: bool,
    pub(super) dry_run: bool,
    pub(super) workflow: WorkflowOptions,
    pub(super) writes_per_minute: usize,
    pub(super) writes_per_hour: usize,
    /// `--prune`, and whether `--yes` confirmed it.
    pub(super) prune: Option<bool>,
}

/// Reads `file`, checks every value and name, then plans or writes them all.
pub(super) async fn apply(
    client: &DeployClient,
    out: Output,
    pat: &PatSource,
    file: &Path,
    (target, options): (Target, WriteOptions),
    settings: Settings,
) -> Result<Exit, Failure> {
    let Values {
        entries: values,
        names,
    } = read_values(file, settings.allow_empty).map_err(|e| InputError(e.to_string()))?;
    for stored_otherwise in names.iter().filter_map(SecretName::stored_otherwise) {
        out.note(&stored_otherwise);
    }
    let pacer = Pacer::new(settings.writes_per_minute, settings.writes_per_hour);
    let batches = pacer.batches(values.len());
    let mut session = Session::open(client, pat, Some(&out)).await?;
    out.progress(format_args!(
        "sealing {} value(s) and the PAT to key {}; {} {} via {}",
        values.len(),
        session.key.fingerprint(),
        if settings.dry_run {
            "planning for"
        } else {
            "writing to"
        },
        target,
        client.base_url()
    ));
    // A real apply plans with the current state, so that what is unchanged is known (and not
    // sent) and the counts can be said first; --force writes everything.
    let mut workflow = settings.workflow.clone();
    let classify = !settings.dry_run && workflow.force != Some(true);
    if classify {
        workflow.check_state = Some(true);
    }
    let job = Job {
        values: &values,
        names: &names,
        target: &target,
        options: &options,
        workflow: &workflow,
    };
    // Every workflow is planned first: its warnings are shown, and an invalid one stops
    // everything before anything is written.
    let mut plans = Vec::with_capacity(batches.len());
    let mut first = 0;
    for &size in &batches {
        let indexes: Vec<usize> = (first..first + size).collect();
        let plan = session
            .resealing(async |c, s| c.plan(&job.body(s, &indexes)?).await)
            .await?;
        plans.push((first, plan));
        first += size;
    }
    let mut plan = merge_plans(&plans);
    // Paced to GitHub's secondary limits, the workflows are cut as the plan's advice to split
    // them says; paced faster (--writes-per-minute), the advice stands.
    if settings.writes_per_minute <= super::pacing::WRITES_PER_MINUTE {
        plan.body
            .warnings
            .retain(|w| !mgraph_deploy_api::is_limit_warning(w));
    }
    // --prune: what the service wrote here that the file no longer names, as its store says.
    let prunes: Vec<SecretName> = match settings.prune {
        None => Vec::new(),
        Some(_) => {
            let state = session
                .resealing(async |c, s| c.secrets_state(&s.pat, &target).await)
                .await?;
            let Some(data) = state.body.data.as_ref() else {
                return Ok(out.envelope(&state, |_| Exit::Success, |_| {}));
            };
            let named: HashSet<&SecretName> = names.iter().collect();
            let (ours, theirs): (Vec<_>, Vec<_>) = data
                .secrets
                .iter()
                .filter(|s| !named.contains(&s.name))
                .partition(|s| s.state != SecretState::Unmanaged);
            // Only what the service wrote and nobody changed since (or that is gone already).
            for left in ours
                .iter()
                .filter(|s| !matches!(s.state, SecretState::InSync | SecretState::Missing))
            {
                out.note(&format!(
                    "not pruned: {} is {} (it may not hold what the service wrote)",
                    left.name,
                    left.state.as_str()
                ));
            }
            let ours: Vec<_> = ours
                .into_iter()
                .filter(|s| matches!(s.state, SecretState::InSync | SecretState::Missing))
                .collect();
            plan.body
                .unmanaged
                .extend(theirs.into_iter().map(|s| Unmanaged {
                    target: target.to_string(),
                    secret_name: s.name.clone(),
                }));
            ours.into_iter().map(|s| s.name.clone()).collect()
        }
    };
    for (k, name) in prunes.iter().enumerate() {
        plan.body.plan.push(PlanStep {
            step: values.len() + k + 1,
            operation: OperationKind::Delete,
            secret_name: Some(name.clone()),
            target: target.to_string(),
            scope: target.scope(),
            action: Action::Prune,
        });
    }
    plan.body.total_operations += prunes.len();
    let planned = |i: usize| plan.plan.get(i).map(|s| s.action);
    let (mut todo, mut unchanged): (Vec<usize>, Vec<usize>) =
        (0..values.len()).partition(|&i| planned(i) != Some(Action::Unchanged));
    // Nothing to send when everything is unchanged.
    let mut batches: Vec<usize> = pacer
        .batches(todo.len())
        .into_iter()
        .filter(|&size| size > 0)
        .collect();
    // The plan's word holds for what is sent at once; workflows paced over minutes or hours
    // carry every value, and the service decides each when it runs.
    if batches.len() > 1 && !unchanged.is_empty() {
        todo = (0..values.len()).collect();
        unchanged.clear();
        batches = pacer.batches(todo.len());
    }
    if batches.len() > 1 {
        out.progress(format_args!(
            "{}{} writes in {} workflows of at most {}, paced to {} writes a minute and {} an hour (GitHub's secondary limits): about {}",
            if settings.dry_run { "to write: " } else { "" },
            todo.len(),
            batches.len(),
            pacer.batch_size(),
            settings.writes_per_minute,
            settings.writes_per_hour,
            human(pacer.estimate(todo.len()))
        ));
    }
    if settings.dry_run || !plan.valid {
        return Ok(out.plan(&plan));
    }
    out.warnings(&plan.warnings);
    if classify && plan.state_checked {
        out.progress(format_args!("{}", counts(&plan.plan)));
    }
    if !prunes.is_empty() {
        confirm_prune(out, &target, file, &prunes, settings.prune == Some(true))?;
    }

    let mut interrupted = interrupt_flag(out);
    let progress = Progress::new(out, todo.len());
    let mut pacer = pacer;
    let mut report = Report {
        success: true,
        total_operations: values.len() + prunes.len(),
        completed: 0,
        failed: 0,
        skipped: 0,
        duration: 0.0,
        results: Vec::with_capacity(values.len()),
        rate_limit: None,
        messages: Vec::new(),
    };
    let started = Instant::now();
    let mut first = 0;
    let mut stop: Option<&str> = None;
    // The workflow whose answer never came, and why.
    let mut cut: Option<(usize, String)> = None;
    for (number, &size) in batches.iter().enumerate() {
        let chunk = &todo[first..first + size];
        first += size;
        if let Some(reason) = stop {
            report.results.extend(job.not_sent(chunk, reason));
            continue;
        }
        let wait = pacer.wait(Instant::now(), size);
        if !wait.is_zero() {
            progress.say(format!(
                "waiting {} for GitHub's write limits before workflow {} of {}",
                human(wait),
                number + 1,
                batches.len()
            ));
            if !progress.sleep(wait, &mut interrupted).await {
                stop = Some(INTERRUPTED);
                report.results.extend(job.not_sent(chunk, INTERRUPTED));
                continue;
            }
        }
        progress.running(number + 1, batches.len(), size);
        let execution = match session
            .resealing(async |c, s| c.execute(&job.body(s, chunk)?).await)
            .await
        {
            Ok(execution) => execution,
            // Nothing was confirmed yet: the error says it all.
            Err(failure) if report.results.is_empty() => return Err(failure.into()),
            // What earlier workflows wrote is confirmed and reported; this one's fate is not
            // known, and no later one is sent.
            Err(failure) => {
                let why = failure.to_string();
                report.results.extend(job.unknown(chunk, &why));
                cut = Some((number + 1, why));
                stop = Some("not sent: the workflow before it got no answer");
                continue;
            }
        };
        pacer.record(Instant::now(), size);
        let batch = match execution {
            Execution::Ran(batch) => batch,
            Execution::Invalid(plan) => {
                progress.finish();
                out.note(&format!(
                    "workflow {} of {} was refused; {} value(s) were written before it",
                    number + 1,
                    batches.len(),
                    report.completed
                ));
                return Ok(out.execution(&Execution::Invalid(plan)));
            }
        };
        report.rate_limit = batch.body.rate_limit.or(report.rate_limit);
        report.messages.extend(batch.body.messages);
        report
            .results
            .extend(batch.body.results.into_iter().map(|mut r| {
                // Step k of this workflow is the value at chunk[k - 1].
                if let Some(&i) = r.step.checked_sub(1).and_then(|k| chunk.get(k)) {
                    r.step = i + 1;
                    r.action = r.action.or(planned(i).filter(|a| *a != Action::Write));
                }
                r
            }));
        progress.advance(size);
        if batch.body.failed > 0 && settings.workflow.on_error == Some(OnError::Stop) {
            stop = Some("not sent: an earlier workflow failed and --on-error is stop");
        }
        if *interrupted.borrow() && stop.is_none() {
            stop = Some(INTERRUPTED);
        }
    }
    progress.finish();
    if !prunes.is_empty() {
        match stop {
            Some(reason) => report
                .results
                .extend(job.prunes(&prunes, Status::Skipped, reason)),
            None => {
                let wait = pacer.wait(Instant::now(), prunes.len());
                tokio::time::sleep(wait).await;
                let body = |s: &Session| job.prune_body(s, &prunes);
                match session
                    .resealing(async |c, s| c.execute(&body(s)?).await)
                    .await
                {
                    Ok(Execution::Ran(batch)) => {
                        report.messages.extend(batch.body.messages);
                        report
                            .results
                            .extend(batch.body.results.into_iter().map(|mut r| {
                                r.step += values.len();
                                r.action = Some(Action::Prune);
                                r
                            }));
                    }
                    Ok(Execution::Invalid(_)) => report.results.extend(job.prunes(
                        &prunes,
                        Status::Failed,
                        "the prune's workflow was refused",
                    )),
                    Err(failure) => {
                        let why = format!(
                            "unknown: the prune was sent and got no answer ({failure}); it may or may not have deleted"
                        );
                        report
                            .results
                            .extend(job.prunes(&prunes, Status::Failed, &why));
                    }
                }
            }
        }
    }
    report.results.extend(job.unchanged(&unchanged));
    report.results.sort_by_key(|r| r.step);
    report.duration = started.elapsed().as_secs_f64();
    for r in &report.results {
        match r.status {
            Status::Completed => report.completed += 1,
            Status::Failed => report.failed += 1,
            Status::Skipped => report.skipped += 1,
        }
    }
    report.success = report.completed == report.total_operations;
    let status = if report.success { 200 } else { 207 };
    let not_found = report
        .results
        .iter()
        .find_map(|r| r.error_type.filter(|e| *e == ErrorType::NotFound));
    let exit = out.execution(&Execution::Ran(Answer {
        status,
        body: report,
    }));
    super::suggest_env_fallback(out, &target, not_found);
    if let Some((number, why)) = cut {
        out.note(&format!(
            "workflow {number} of {} got no answer ({why}): its values may or may not have been written; `apply -f FILE --dry-run --check-state` shows what is there now",
            batches.len()
        ));
        return Ok(Exit::Unreachable);
    }
    Ok(exit)
}

/// What the workflows are built from.
struct Job<'a> {
    values: &'a [NamedValue],
    names: &'a [SecretName],
    target: &'a Target,
    options: &'a WriteOptions,
    workflow: &'a WorkflowOptions,
}

impl Job<'_> {
    /// The workflow writing the values at `indexes`, sealed to the session's key, each with its
    /// fingerprint.
    fn body(&self, s: &Session, indexes: &[usize]) -> Result<Value, ClientError> {
        let mut operations = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let value = &self.values[i].value;
            let sealed = sealed_value(&value.seal_to(&s.key))?;
            let mut create = self
                .options
                .create(self.target, self.names[i].clone(), sealed);
            create.value_fingerprint = Some(s.fingerprints.of(&self.names[i], value));
            operations.push(WorkflowOperation::Create(create));
        }
        let workflow = WorkflowBody {
            credentials: Credentials {
                github_pat: sealed_pat(&s.pat)?,
            },
            target: Some(self.target.clone()),
            options: Some(self.workflow.clone()),
            operations,
        };
        Ok(serde_json::to_value(workflow).expect("a workflow is plain JSON"))
    }

    /// The workflow deleting `prunes`.
    fn prune_body(&self, s: &Session, prunes: &[SecretName]) -> Result<Value, ClientError> {
        let operations = prunes
            .iter()
            .map(|name| {
                WorkflowOperation::Delete(SecretOp {
                    target: self.target.clone(),
                    secret_name: name.clone(),
                })
            })
            .collect();
        let workflow = WorkflowBody {
            credentials: Credentials {
                github_pat: sealed_pat(&s.pat)?,
            },
            target: Some(self.target.clone()),
            options: None,
            operations,
        };
        Ok(serde_json::to_value(workflow).expect("a workflow is plain JSON"))
    }

    /// Results for prunes that did not run (`status`), and why.
    fn prunes(
        &self,
        prunes: &[SecretName],
        status: Status,
        error: &str,
    ) -> impl Iterator<Item = StepResult> {
        let error_type = (status == Status::Skipped).then_some(ErrorType::Stopped);
        let offset = self.values.len();
        let steps: Vec<(usize, SecretName)> = prunes
            .iter()
            .enumerate()
            .map(|(k, name)| (offset + k + 1, name.clone()))
            .collect();
        not_run(
            self.target,
            OperationKind::Delete,
            steps,
            status,
            error,
            error_type,
        )
        .map(|mut r| {
            r.action = Some(Action::Prune);
            r
        })
    }

    /// Results for values never sent.
    fn not_sent(&self, indexes: &[usize], reason: &str) -> impl Iterator<Item = StepResult> {
        self.results(
            indexes,
            Status::Skipped,
            reason.to_owned(),
            Some(ErrorType::Stopped),
        )
    }

    /// The steps of a workflow that was sent and never answered: failed, their fate unknown.
    fn unknown(&self, indexes: &[usize], why: &str) -> impl Iterator<Item = StepResult> {
        let error = format!(
            "unknown: the workflow was sent and got no answer ({why}); it may or may not have been written"
        );
        self.results(indexes, Status::Failed, error, None)
    }

    /// The values at `indexes` that the plan found unchanged: done, not sent.
    fn unchanged(&self, indexes: &[usize]) -> impl Iterator<Item = StepResult> {
        let target = self.target.scope();
        self.results(indexes, Status::Completed, String::new(), None)
            .map(move |mut r| {
                r.success = true;
                r.error = None;
                r.data = serde_json::json!({
                    "created": false, "secret_name": r.secret_name, "scope": target, "unchanged": true,
                });
                r.messages = vec![UNCHANGED.to_owned()];
                r.action = Some(Action::Unchanged);
                r
            })
    }

    fn results(
        &self,
        indexes: &[usize],
        status: Status,
        error: String,
        error_type: Option<ErrorType>,
    ) -> impl Iterator<Item = StepResult> {
        let steps: Vec<(usize, SecretName)> = indexes
            .iter()
            .map(|&i| (i + 1, self.names[i].clone()))
            .collect();
        not_run(
            self.target,
            OperationKind::Create,
            steps,
            status,
            &error,
            error_type,
        )
    }
}

/// Results of `operation` on `target` for steps that did not run as sent: each `(step, name)`,
/// with `status` and `error`.
fn not_run(
    target: &Target,
    operation: OperationKind,
    steps: Vec<(usize, SecretName)>,
    status: Status,
    error: &str,
    error_type: Option<ErrorType>,
) -> impl Iterator<Item = StepResult> + use<> {
    let (target, error) = (target.clone(), error.to_owned());
    steps.into_iter().map(move |(step, name)| StepResult {
        step,
        operation,
        secret_name: Some(name),
        target: target.to_string(),
        scope: target.scope(),
        status,
        success: false,
        duration: 0.0,
        attempts: 0,
        error: Some(error.clone()),
        error_type,
        data: Value::Object(Default::default()),
        messages: Vec::new(),
        action: None,
    })
}

/// Lists what `--prune` deletes, and asks at a terminal unless `--yes`; elsewhere `--yes` is
/// required. Refused: nothing was sent.
fn confirm_prune(
    out: Output,
    target: &Target,
    file: &Path,
    prunes: &[SecretName],
    yes: bool,
) -> Result<(), InputError> {
    let listed: Vec<&str> = prunes.iter().map(SecretName::as_str).collect();
    out.progress(format_args!(
        "to prune from {target} (written by the service, not in {}): {}",
        file.display(),
        listed.join(", ")
    ));
    if yes {
        return Ok(());
    }
    let at_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !at_terminal {
        return Err(InputError(format!(
            "--prune would delete {} secret(s) from {target} ({}); pass --yes to confirm (there is no terminal to ask at). Nothing was sent",
            prunes.len(),
            listed.join(", ")
        )));
    }
    eprint!(
        "Delete these {} secret(s) from {target}? [y/N] ",
        prunes.len()
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| InputError(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(InputError(
            "not confirmed: nothing was written or deleted".to_owned(),
        ))
    }
}

/// What a checked plan will do, in counts: `3 new, 1 changed, 96 unchanged (skipped), 1 drifted`.
fn counts(plan: &[mgraph_deploy_api::PlanStep]) -> String {
    let count = |action| plan.iter().filter(|s| s.action == action).count();
    let mut parts = vec![
        format!("{} new", count(Action::Create)),
        format!("{} changed", count(Action::Update)),
        format!("{} unchanged (skipped)", count(Action::Unchanged)),
        format!("{} drifted", count(Action::Drifted)),
    ];
    let pruned = count(Action::Prune);
    if pruned > 0 {
        parts.push(format!("{pruned} to prune"));
    }
    let unknown = count(Action::Write);
    if unknown > 0 {
        parts.push(format!("{unknown} not checked (written)"));
    }
    parts.join(", ")
}

/// One plan of several: steps and errors numbered through, warnings prefixed by their workflow.
fn merge_plans(plans: &[(usize, Answer<Plan>)]) -> Answer<Plan> {
    if let [(_, only)] = plans {
        return only.clone();
    }
    let count = plans.len();
    let mut merged = Plan {
        valid: true,
        total_operations: 0,
        plan: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        estimate: Default::default(),
        state_checked: true,
        unreadable: Vec::new(),
        will_fail: Vec::new(),
        unmanaged: Vec::new(),
    };
    let mut status = 200;
    for (number, (offset, plan)) in plans.iter().enumerate() {
        status = status.max(plan.status);
        merged.valid &= plan.valid;
        merged.total_operations += plan.total_operations;
        merged.state_checked &= plan.state_checked;
        merged.plan.extend(plan.plan.iter().cloned().map(|mut s| {
            s.step += offset;
            s
        }));
        merged
            .errors
            .extend(plan.errors.iter().cloned().map(|mut e| {
                e.step = e.step.map(|s| s + offset);
                e
            }));
        merged
            .will_fail
            .extend(plan.will_fail.iter().cloned().map(|mut f| {
                f.step += offset;
                f
            }));
        merged.warnings.extend(plan.warnings.iter().map(|w| {
            format!(
                "workflow {} of {count} (steps from {}): {w}",
                number + 1,
                offset + 1
            )
        }));
        merged.unreadable.extend(plan.unreadable.iter().cloned());
        merged.unmanaged.extend(plan.unmanaged.iter().cloned());
        merged.estimate.github_service_calls += plan.estimate.github_service_calls;
        merged.estimate.github_requests += plan.estimate.github_requests;
        merged.estimate.github_writes += plan.estimate.github_writes;
    }
    Answer {
        status,
        body: merged,
    }
}

/// Set by the first Ctrl-C: no further workflow is sent, the running one finishes and is
/// reported. A second Ctrl-C ends the process at once (exit 130).
fn interrupt_flag(out: Output) -> watch::Receiver<bool> {
    let (set, flag) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = set.send(true);
        out.note("interrupted: no further workflow will be sent; the running one finishes and is reported (Ctrl-C again to quit now, without its report)");
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    flag
}

/// A progress bar with counts at a terminal; plain lines on stderr otherwise; nothing with
/// `--json`.
struct Progress {
    bar: Option<ProgressBar>,
    out: Output,
}

impl Progress {
    fn new(out: Output, total: usize) -> Self {
        let bar = (!out.json && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} sent {msg} ({elapsed})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar, out }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => self.out.progress(format_args!("{line}")),
        }
    }

    fn running(&self, number: usize, count: usize, operations: usize) {
        self.say(if count == 1 {
            format!("running {operations} operation(s)…")
        } else {
            format!("running workflow {number} of {count} ({operations} operations)…")
        });
    }

    fn advance(&self, writes: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(writes as u64);
        }
    }

    /// Sleeps `wait`, or less when interrupted; whether it slept it all.
    async fn sleep(&self, wait: Duration, interrupted: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = interrupted.wait_for(|set| *set) => return false,
        }
        !*interrupted.borrow()
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
