//! Workflows: many operations from one JSON file (`api.md` §2, `/execute` and `/execute/plan`).
//!
//! [`spec`] parses and validates a file as a whole; [`plan`] says what it would do (and, reading
//! the current state, what it would change); [`schedule`] orders its steps; [`execute`] runs it
//! on top of
//! [`crate::operations::Operations`], so each step produces exactly what the single-operation
//! route would. Knows nothing of HTTP servers.

pub mod execute;
pub mod plan;
pub mod prune;
pub mod schedule;
pub mod spec;

pub use execute::{Report, RetryPolicy, Status, StepResult, StepSink, execute, report_status};
pub use plan::{Action, Plan, check_state, plan};
pub use spec::{Defaults, OnError, Options, Parsed, PlanError, Step, Workflow, parse};

/// The service's workflow settings: defaults for options a file leaves out, and the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowSettings {
    pub defaults: Defaults,
    pub retry: RetryPolicy,
}
