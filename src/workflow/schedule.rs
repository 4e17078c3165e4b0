//! The executor's ordering rules: what each step touches, and which earlier steps it must wait
//! for. Steps whose footprints conflict never overlap and run in file order; all others may.

use crate::domain::{SecretName, Target};
use crate::operations::OperationKind;

use super::spec::Step;

/// The secrets and scopes a step touches. Two steps whose footprints conflict never overlap, and
/// run in file order.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    secrets: Vec<(Target, SecretName)>,
    scopes_read: Vec<Target>,
    scopes_written: Vec<Target>,
}

impl Footprint {
    pub fn of(step: &Step) -> Self {
        let mut f = Footprint::default();
        let name = step.secret_name().cloned();
        match step.kind() {
            OperationKind::List => f.scopes_read.push(step.target().clone()),
            OperationKind::Presence => {
                f.scopes_read.push(step.target().clone());
                f.scopes_read.extend(step.target().repository());
            }
            OperationKind::Get | OperationKind::Exists => {
                f.secrets.extend(name.map(|n| (step.target().clone(), n)));
            }
            OperationKind::Delete | OperationKind::Create => {
                let mut targets = vec![step.target().clone()];
                if step.request.env_fallback() {
                    targets.extend(step.target().repository());
                }
                for target in targets {
                    f.secrets.extend(name.clone().map(|n| (target.clone(), n)));
                    f.scopes_written.push(target);
                }
            }
        }
        f
    }

    pub fn conflicts_with(&self, other: &Footprint) -> bool {
        let shares = |a: &[Target], b: &[Target]| a.iter().any(|t| b.contains(t));
        self.secrets.iter().any(|s| other.secrets.contains(s))
            || shares(&self.scopes_read, &other.scopes_written)
            || shares(&self.scopes_written, &other.scopes_read)
    }
}

/// For each step, the earlier steps it must wait for.
pub fn dependencies(steps: &[Step]) -> Vec<Vec<usize>> {
    let footprints: Vec<Footprint> = steps.iter().map(Footprint::of).collect();
    (0..steps.len())
        .map(|j| {
            (0..j)
                .filter(|&i| footprints[i].conflicts_with(&footprints[j]))
                .collect()
        })
        .collect()
}
