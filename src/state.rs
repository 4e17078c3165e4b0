//! The one `Clone` state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuthPolicy, Config, RuntimeMode};
use crate::github_service::GitHubService;
use crate::history::History;
use crate::operations::Operations;
use crate::workflow::{Defaults, RetryPolicy, WorkflowSettings};

#[derive(Clone, Debug)]
pub struct AppState {
    /// Shared, not copied: axum clones the state for every request.
    pub operations: Arc<Operations>,
    pub runtime: RuntimeMode,
    pub auth: Arc<AuthPolicy>,
    pub max_body_bytes: usize,
    /// The longest a client may pause while sending a request body.
    pub body_timeout: Duration,
    pub workflow: WorkflowSettings,
    /// What the service records of what it did; `None` when it keeps no history
    /// (`DEPLOY__STORE=none`).
    pub history: Option<History>,
}

impl AppState {
    pub fn new(config: &Config, history: Option<History>) -> Self {
        Self {
            operations: Arc::new(Operations::new(GitHubService::new(config))),
            runtime: config.runtime,
            auth: Arc::new(config.auth.clone()),
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.listener.header_read_timeout,
            workflow: WorkflowSettings {
                defaults: Defaults {
                    concurrency: config.workflow_concurrency,
                    deadline: config.workflow_deadline,
                },
                retry: RetryPolicy::default(),
            },
            history,
        }
    }
}
