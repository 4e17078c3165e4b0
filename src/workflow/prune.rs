//! `options.prune`: a workflow that writes a target names the secrets it should hold; every other
//! secret this service wrote there (its store says so) is deleted, after the workflow's own
//! steps in number. A secret the store does not know as this service's is never deleted: the plan
//! lists it as `unmanaged`.

use std::collections::HashSet;

use mgraph_deploy_api::{PlanError, Unmanaged};

use crate::converge::Memory;
use crate::domain::{SealedPat, SecretName, Target};
use crate::operations::{Failure, Listing, OperationKind, Operations, Request, SecretRequest};

use super::plan::{Action, Plan, PlanStep};
use super::spec::{Parsed, Step};

/// Refuses `options.prune` without a store: the service would not know what it wrote.
pub fn needs_store(parsed: &mut Parsed, has_store: bool) {
    if parsed.options.prune && !has_store {
        parsed.errors.push(PlanError {
            step: None,
            field: "options.prune".to_owned(),
            message: "needs the service's store (DEPLOY__STORE): without it the service does not know which secrets it wrote, and deletes nothing it did not write".to_owned(),
        });
    }
}

/// The targets the workflow writes, in the order it first writes them, and what it names in each
/// (written or deleted).
fn named(steps: &[Step]) -> (Vec<&Target>, HashSet<(&Target, &SecretName)>) {
    let mut targets: Vec<&Target> = Vec::new();
    let mut names = HashSet::new();
    for step in steps {
        let Some(name) = step.secret_name() else {
            continue;
        };
        if step.kind() == OperationKind::Create && !targets.contains(&step.target()) {
            targets.push(step.target());
        }
        if matches!(step.kind(), OperationKind::Create | OperationKind::Delete) {
            names.insert((step.target(), name));
        }
    }
    (targets, names)
}

/// The delete steps of the prune, numbered after `steps`.
pub async fn steps(memory: &Memory, steps: &[Step]) -> Result<Vec<Step>, Failure> {
    let (targets, names) = named(steps);
    let mut prunes = Vec::new();
    for target in targets {
        for written in memory.written_in(target).await? {
            if names.contains(&(target, &written.name)) {
                continue;
            }
            prunes.push(Step {
                number: steps.len() + prunes.len() + 1,
                request: Request::Delete(SecretRequest {
                    target: target.clone(),
                    secret_name: written.name,
                }),
            });
        }
    }
    Ok(prunes)
}

/// Adds the prune to `plan`: its deletes as steps (`action: prune`), and the secrets of the
/// pruned targets it leaves alone (`unmanaged`).
pub async fn plan(
    ops: &Operations,
    memory: &Memory,
    pat: &SealedPat,
    workflow: &[Step],
    plan: &mut Plan,
) {
    let prunes = match steps(memory, workflow).await {
        Ok(prunes) => prunes,
        Err(failure) => {
            plan.warnings
                .push(format!("nothing will be pruned: {}", failure.message));
            return;
        }
    };
    for prune in &prunes {
        plan.plan.push(PlanStep {
            step: prune.number,
            operation: OperationKind::Delete,
            secret_name: prune.secret_name().cloned(),
            target: prune.target().to_string(),
            scope: prune.target().scope(),
            action: Action::Prune,
        });
        plan.estimate.github_service_calls += 1;
        plan.estimate.github_requests += 2;
        plan.estimate.github_writes += 1;
    }
    plan.total_operations += prunes.len();
    let (targets, names) = named(workflow);
    for target in targets {
        let Ok(Listing::Secrets(page)) = ops.scope_secrets(pat, target).await else {
            continue;
        };
        let ours: HashSet<SecretName> = match memory.written_in(target).await {
            Ok(written) => written.into_iter().map(|w| w.name).collect(),
            Err(_) => continue,
        };
        if page.may_be_cut() {
            plan.warnings.push(format!(
                "{target} holds more secrets than GitHub's first page shows: its unmanaged secrets are listed from that page only"
            ));
        }
        plan.unmanaged.extend(
            page.secrets
                .into_iter()
                .filter(|s| !ours.contains(&s.name) && !names.contains(&(target, &s.name)))
                .map(|s| Unmanaged {
                    target: target.to_string(),
                    secret_name: s.name,
                }),
        );
    }
}
