//! `options.prune`: a workflow that writes a target names the secrets it should hold; every other
//! secret this service wrote there, and that nobody changed since (`in_sync`, or `missing`: its
//! record is cleaned up), is deleted after the workflow's own steps in number. The targets are
//! read with the workflow's PAT first ([`Memory::state`]), so a PAT that cannot read a target
//! prunes nothing there and learns nothing of it. A secret this service did not write is never
//! deleted (the plan lists it as `unmanaged`); one changed outside it (`drifted`) or whose last
//! write was never confirmed (`unconfirmed`) is left alone, and said so.

use std::collections::HashSet;

use mgraph_deploy_api::{PlanError, SecretState, Unmanaged};

use crate::converge::Memory;
use crate::domain::{SealedPat, SecretName, Target};
use crate::operations::{ErrorType, Failure, OperationKind, Operations, Request, SecretRequest};
use crate::store::TargetKey;

use super::plan::{Action, Plan, PlanStep};
use super::spec::{MAX_OPERATIONS, Parsed, Step};

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

/// What a prune does.
#[derive(Debug, Default)]
pub struct Pruning {
    /// The deletes, numbered after the workflow's steps.
    pub steps: Vec<Step>,
    /// The secrets of the pruned targets this service did not write.
    pub unmanaged: Vec<Unmanaged>,
    /// What it leaves alone, and why.
    pub notes: Vec<String>,
}

/// The targets the workflow writes (GitHub compares them without regard to case: the first
/// spelling is kept), and what it names in each (written, deleted, or written by an
/// `env_fallback` to the repository).
fn named(steps: &[Step]) -> (Vec<&Target>, HashSet<(TargetKey, SecretName)>) {
    let mut targets: Vec<&Target> = Vec::new();
    let mut keys = HashSet::new();
    let mut names = HashSet::new();
    for step in steps {
        let Some(name) = step.secret_name() else {
            continue;
        };
        if !matches!(step.kind(), OperationKind::Create | OperationKind::Delete) {
            continue;
        }
        let key = TargetKey::of(step.target());
        if step.kind() == OperationKind::Create && keys.insert(key.clone()) {
            targets.push(step.target());
        }
        names.insert((key, name.clone()));
        if let (true, Some(repository)) = (step.request.env_fallback(), step.target().repository())
        {
            names.insert((TargetKey::of(&repository), name.clone()));
        }
    }
    (targets, names)
}

/// The prune of `steps`' targets.
pub async fn prune(
    ops: &Operations,
    memory: &Memory,
    pat: &SealedPat,
    steps: &[Step],
) -> Result<Pruning, Failure> {
    let (targets, names) = named(steps);
    let mut pruning = Pruning::default();
    for target in targets {
        let key = TargetKey::of(target);
        let state = memory.state(ops, pat, target).await?;
        for secret in state.secrets {
            if names.contains(&(key.clone(), secret.name.clone())) {
                continue;
            }
            match secret.state {
                SecretState::InSync | SecretState::Missing => pruning.steps.push(Step {
                    number: steps.len() + pruning.steps.len() + 1,
                    request: Request::Delete(SecretRequest {
                        target: target.clone(),
                        secret_name: secret.name,
                    }),
                }),
                SecretState::Unmanaged => pruning.unmanaged.push(Unmanaged {
                    target: target.to_string(),
                    secret_name: secret.name,
                }),
                left => pruning.notes.push(format!(
                    "not pruned: {} in {target} is {} (it may not hold what this service wrote)",
                    secret.name,
                    left.as_str()
                )),
            }
        }
        if state.may_be_incomplete {
            pruning.notes.push(format!(
                "{target} holds more secrets than GitHub's first page shows: its unmanaged secrets are listed from that page only"
            ));
        }
    }
    if steps.len() + pruning.steps.len() > MAX_OPERATIONS {
        return Err(Failure::new(
            ErrorType::InvalidInput,
            format!(
                "the prune would delete {} secrets, more than the {MAX_OPERATIONS} operations a workflow holds with its own {}: prune in a workflow of its own",
                pruning.steps.len(),
                steps.len()
            ),
        ));
    }
    Ok(pruning)
}

/// Adds the prune to `plan`: its deletes as steps (`action: prune`), the secrets it leaves alone
/// (`unmanaged`), and why others are not pruned.
pub async fn plan(
    ops: &Operations,
    memory: &Memory,
    pat: &SealedPat,
    workflow: &[Step],
    plan: &mut Plan,
) {
    let pruning = match prune(ops, memory, pat, workflow).await {
        Ok(pruning) => pruning,
        Err(failure) => {
            plan.warnings
                .push(format!("nothing will be pruned: {}", failure.message));
            return;
        }
    };
    for prune in &pruning.steps {
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
    plan.total_operations += pruning.steps.len();
    plan.unmanaged.extend(pruning.unmanaged);
    plan.warnings.extend(pruning.notes);
}
