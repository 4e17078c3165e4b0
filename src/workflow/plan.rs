//! `/execute/plan`: what a workflow would do, what looks wrong with it, and (with `check_state`)
//! what each write would change.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt as _;

use mgraph_deploy_api::ErrorType;
pub use mgraph_deploy_api::{Action, Estimate, ExpectedFailure, Plan, PlanStep, Unreadable};
use mgraph_deploy_api::{
    POINTS_PER_MINUTE, WRITES_PER_MINUTE, points_limit_warning, writes_limit_warning,
};

use crate::converge::{Decision, Memory};
use crate::domain::{Scope, SealedPat, SecretName, Target};
use crate::operations::{Listing, OperationKind, Operations, Request, SecretMeta};

use super::spec::{Parsed, Step};

fn static_action(kind: OperationKind) -> Action {
    match kind {
        OperationKind::Create => Action::Write,
        OperationKind::Delete => Action::Delete,
        _ => Action::Read,
    }
}

/// The plan of what parsing found, without reading any state.
pub fn plan(parsed: &Parsed) -> Plan {
    let steps = &parsed.steps;
    Plan {
        valid: parsed.errors.is_empty() && parsed.pat.is_some(),
        total_operations: parsed.total_operations,
        plan: steps
            .iter()
            .map(|s| PlanStep {
                step: s.number,
                operation: s.kind(),
                secret_name: s.secret_name().cloned(),
                target: s.target().to_string(),
                scope: s.target().scope(),
                action: static_action(s.kind()),
            })
            .collect(),
        warnings: warnings(steps),
        errors: parsed.errors.clone(),
        estimate: estimate(steps),
        state_checked: false,
        unreadable: Vec::new(),
        will_fail: Vec::new(),
        unmanaged: Vec::new(),
    }
}

fn warnings(steps: &[Step]) -> Vec<String> {
    let mut warnings = Vec::new();
    // The last write and the last delete of each secret, by step number.
    let mut written: HashMap<(&Target, &SecretName), usize> = HashMap::new();
    let mut deleted: HashMap<(&Target, &SecretName), usize> = HashMap::new();
    for step in steps {
        let Some(name) = step.secret_name() else {
            continue;
        };
        if let Some(note) = name.stored_otherwise() {
            warnings.push(format!("step {}: {note}", step.number));
        }
        let key = (step.target(), name);
        match step.kind() {
            OperationKind::Create => {
                if let Some(first) = written.get(&key) {
                    warnings.push(format!(
                        "step {} writes {name} in {} again (step {first} wrote it before); the last write wins",
                        step.number, step.target()
                    ));
                }
                if let Some(del) = deleted.get(&key) {
                    warnings.push(format!(
                        "step {} writes {name} in {} after step {del} deleted it",
                        step.number,
                        step.target()
                    ));
                }
                written.insert(key, step.number);
            }
            OperationKind::Delete => {
                deleted.insert(key, step.number);
            }
            _ => {}
        }
    }
    let estimate = estimate(steps);
    // Warn at 80 % of either of GitHub's secondary limits.
    if estimate.github_writes * 5 >= WRITES_PER_MINUTE * 4 {
        warnings.push(writes_limit_warning(estimate.github_writes));
    }
    let points = estimate.github_requests + 4 * estimate.github_writes;
    if points * 5 >= POINTS_PER_MINUTE * 4 {
        warnings.push(points_limit_warning(points));
    }
    warnings
}

fn estimate(steps: &[Step]) -> Estimate {
    let mut e = Estimate {
        github_service_calls: 0,
        github_requests: 0,
        github_writes: 0,
    };
    for step in steps {
        // The GitHub Service follows every GitHub call with one `GET /rate_limit`.
        let (calls, requests, writes) = match step.kind() {
            // public key + PUT + rate limit
            OperationKind::Create => (1, 3, 1),
            OperationKind::Delete => (1, 2, 1),
            OperationKind::Get | OperationKind::Exists | OperationKind::List => (1, 2, 0),
            OperationKind::Presence if step.target().scope() == Scope::Environment => (2, 4, 0),
            OperationKind::Presence => (1, 2, 0),
        };
        e.github_service_calls += calls;
        e.github_requests += requests;
        e.github_writes += writes;
    }
    e
}

/// What one scope holds, as far as the plan knows.
struct ScopeState {
    present: HashSet<SecretName>,
    /// What the listing said of each secret it showed, until a step of the plan writes it.
    listed: HashMap<SecretName, SecretMeta>,
    /// Confirmed absent (looked up, or deleted by an earlier step).
    absent: HashSet<SecretName>,
    /// The listing was a full page: a name missing from it must be looked up.
    partial: bool,
}

enum Known {
    State(ScopeState),
    EnvironmentMissing,
    Unreadable,
}

/// Reads the current secrets of every scope the plan writes (each once) and refines `write` into
/// `create`/`update` and `delete` into `delete`/`noop`, following the steps in order. With a
/// `memory` (and without `force`), an update whose value's fingerprint says it is the one this
/// service wrote last is `unchanged` or `drifted`, as `/execute` would find it.
pub async fn check_state(
    ops: &Operations,
    memory: Option<&Memory>,
    force: bool,
    pat: &SealedPat,
    steps: &[Step],
    plan: &mut Plan,
) {
    let mut known: HashMap<Target, Known> = HashMap::new();
    look_up_beyond_the_page(ops, pat, steps, &mut known, plan).await;
    let mut updates = Vec::new();
    for (step, planned) in steps.iter().zip(plan.plan.iter_mut()) {
        let (Some(name), true) = (
            step.secret_name(),
            matches!(step.kind(), OperationKind::Create | OperationKind::Delete),
        ) else {
            continue;
        };
        let mut target = step.target().clone();
        if let Known::EnvironmentMissing = read(
            ops,
            pat,
            &target,
            &mut known,
            (&mut plan.warnings, &mut plan.unreadable),
        )
        .await
        {
            match (step.kind(), step.target().repository()) {
                (OperationKind::Create, Some(repository)) if step.request.env_fallback() => {
                    plan.warnings.push(format!(
                        "step {}: environment of {} does not exist; env_fallback writes the repository secret",
                        step.number, step.target()
                    ));
                    target = repository;
                    read(
                        ops,
                        pat,
                        &target,
                        &mut known,
                        (&mut plan.warnings, &mut plan.unreadable),
                    )
                    .await;
                }
                _ => {
                    plan.warnings.push(format!(
                        "step {}: environment of {} does not exist, so this step will fail with not_found",
                        step.number, step.target()
                    ));
                    plan.will_fail.push(ExpectedFailure {
                        step: step.number,
                        error_type: ErrorType::NotFound,
                    });
                    continue;
                }
            }
        }
        let Some(Known::State(state)) = known.get_mut(&target) else {
            continue;
        };
        let exists = if state.present.contains(name) {
            true
        } else if state.absent.contains(name) || !state.partial {
            false
        } else {
            match ops.secret_exists(pat, &target, name).await {
                Ok(true) => {
                    state.present.insert(name.clone());
                    true
                }
                Ok(false) => {
                    state.absent.insert(name.clone());
                    false
                }
                Err(_) => continue,
            }
        };
        planned.action = match (step.kind(), exists) {
            (OperationKind::Create, true) => Action::Update,
            (OperationKind::Create, false) => Action::Create,
            (_, true) => Action::Delete,
            (_, false) => Action::Noop,
        };
        if let (Action::Update, Request::Create(_), true) =
            (planned.action, &step.request, target == *step.target())
        {
            updates.push((step.number, state.listed.get(name).cloned()));
        }
        if step.kind() == OperationKind::Create {
            state.listed.remove(name);
            state.absent.remove(name);
            state.present.insert(name.clone());
        } else {
            state.present.remove(name);
            state.absent.insert(name.clone());
        }
    }
    if let (Some(memory), false) = (memory, force) {
        converge(ops, memory, pat, steps, updates, plan).await;
    }
    plan.state_checked = true;
}

/// Reads the listing of every scope the steps write, and looks up, a few at once, each name
/// a full (so possibly cut) page did not show: the steps then need no read of their own.
async fn look_up_beyond_the_page(
    ops: &Operations,
    pat: &SealedPat,
    steps: &[Step],
    known: &mut HashMap<Target, Known>,
    plan: &mut Plan,
) {
    let mut wanted: Vec<(Target, SecretName)> = Vec::new();
    for step in steps {
        let (Some(name), true) = (
            step.secret_name(),
            matches!(step.kind(), OperationKind::Create | OperationKind::Delete),
        ) else {
            continue;
        };
        let target = step.target();
        let listed = read(
            ops,
            pat,
            target,
            known,
            (&mut plan.warnings, &mut plan.unreadable),
        )
        .await;
        if let Known::State(state) = listed {
            let pair = (target.clone(), name.clone());
            if state.partial && !state.present.contains(name) && !wanted.contains(&pair) {
                wanted.push(pair);
            }
        }
    }
    let found: Vec<(Target, SecretName, Option<SecretMeta>)> = futures_util::stream::iter(wanted)
        .map(|(target, name)| async move {
            match ops.secret_meta(pat, &target, &name).await.0 {
                Ok(meta) => Some((target, name, meta)),
                Err(_) => None,
            }
        })
        .buffer_unordered(DECISIONS_AT_ONCE)
        .filter_map(std::future::ready)
        .collect()
        .await;
    for (target, name, meta) in found {
        let Some(Known::State(state)) = known.get_mut(&target) else {
            continue;
        };
        match meta {
            Some(meta) => {
                state.present.insert(name.clone());
                state.listed.insert(name, meta);
            }
            None => {
                state.absent.insert(name);
            }
        }
    }
}

/// How many updates the plan checks against what the service wrote at once.
const DECISIONS_AT_ONCE: usize = 8;

/// Refines `update`s into `unchanged` and `drifted`, as `/execute` would find them: the
/// listing's metadata where it showed the secret, one read where it did not.
async fn converge(
    ops: &Operations,
    memory: &Memory,
    pat: &SealedPat,
    steps: &[Step],
    updates: Vec<(usize, Option<SecretMeta>)>,
    plan: &mut Plan,
) {
    let create = |number: usize| match &steps[number - 1].request {
        Request::Create(req) => Some(req),
        _ => None,
    };
    let mut decided: Vec<(usize, Decision)> = futures_util::stream::iter(updates)
        .map(|(number, known)| async move {
            let decision = match create(number) {
                Some(req) => memory.decide_knowing(ops, pat, req, known).await.0,
                None => Decision::Write,
            };
            (number, decision)
        })
        .buffer_unordered(DECISIONS_AT_ONCE)
        .collect()
        .await;
    decided.sort_by_key(|(number, _)| *number);
    for (number, decision) in decided {
        let Some(req) = create(number) else { continue };
        let planned = &mut plan.plan[number - 1];
        match decision {
            Decision::Unchanged { .. } => {
                planned.action = Action::Unchanged;
                // Not written: one read instead of a key fetch and a write.
                plan.estimate.github_writes -= 1;
                plan.estimate.github_requests -= 1;
            }
            Decision::Drifted { updated_at, .. } => {
                planned.action = Action::Drifted;
                plan.warnings.push(format!(
                    "step {number}: {} in {} was changed outside this service at {updated_at}; it will be written back",
                    req.secret_name, req.target
                ));
            }
            Decision::Write => {}
        }
    }
}

/// The state of `target`, read once.
async fn read<'k>(
    ops: &Operations,
    pat: &SealedPat,
    target: &Target,
    known: &'k mut HashMap<Target, Known>,
    (warnings, unreadable): (&mut Vec<String>, &mut Vec<Unreadable>),
) -> &'k Known {
    if !known.contains_key(target) {
        let state = match ops.scope_secrets(pat, target).await {
            Ok(Listing::Secrets(page)) => Known::State(ScopeState {
                partial: page.may_be_cut(),
                present: page.secrets.iter().map(|s| s.name.clone()).collect(),
                listed: page
                    .secrets
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect(),
                absent: HashSet::new(),
            }),
            Ok(Listing::EnvironmentMissing) => Known::EnvironmentMissing,
            Err(failure) => {
                warnings.push(format!(
                    "could not read the secrets of {target} ({}): {}; its steps keep their unrefined actions",
                    failure.error_type.as_str(),
                    failure.message
                ));
                unreadable.push(Unreadable {
                    target: target.to_string(),
                    error_type: failure.error_type,
                });
                Known::Unreadable
            }
        };
        known.insert(target.clone(), state);
    }
    &known[target]
}
