//! The one `Clone` state every handler shares.

use std::sync::Arc;

use crate::config::{AuthPolicy, Config, RuntimeMode};
use crate::github_service::GitHubService;
use crate::operations::Operations;
use crate::workflow::{Defaults, RetryPolicy, WorkflowSettings};

#[derive(Clone, Debug)]
pub struct AppState {
    /// Shared, not copied: axum clones the state for every request.
    pub operations: Arc<Operations>,
    pub runtime: RuntimeMode,
    pub auth: Arc<AuthPolicy>,
    pub max_body_bytes: usize,
    pub workflow: WorkflowSettings,
}

impl AppState {
    /// The state for one more worker thread of the local server: its own upstream connection
    /// pool (a connection belongs to the runtime that opened it), everything else shared.
    pub fn for_worker(&self) -> Self {
        Self {
            operations: Arc::new(Operations::new(
                self.operations.upstream().with_own_connections(),
            )),
            ..self.clone()
        }
    }

    pub fn new(config: &Config) -> Self {
        Self {
            operations: Arc::new(Operations::new(GitHubService::new(config))),
            runtime: config.runtime,
            auth: Arc::new(config.auth.clone()),
            max_body_bytes: config.max_body_bytes,
            workflow: WorkflowSettings {
                defaults: Defaults {
                    concurrency: config.workflow_concurrency,
                    deadline: config.workflow_deadline,
                },
                retry: RetryPolicy::default(),
            },
        }
    }
}
