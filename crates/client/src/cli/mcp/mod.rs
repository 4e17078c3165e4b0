//! `mcp`: a Model Context Protocol server over stdio (rmcp), for AI agents. The agent names what
//! to write and where; this process reads each value locally (an environment variable, a file,
//! or generated here), seals it, and answers with names, scopes and outcomes only. No tool ever
//! returns a value, a sealed blob, the PAT or the API key.

mod tools;

use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerInfo};
use rmcp::{ServerHandler, ServiceExt as _, tool, tool_handler, tool_router};

use super::args::{Connection, PatSource};
use super::{Exit, Failure, InputError};
use tools::{Answer, Runner};

/// What the server tells the model about itself.
const INSTRUCTIONS: &str = "Writes GitHub Actions secrets (repository, environment, organisation) without any value passing through this conversation: you name what to write and where, and this server reads each value on the user's machine (an environment variable, a file, or a value it generates), seals it to the GitHub Service's key and writes it. Results hold names, scopes, actions and outcomes, never a value. Start with `preflight` (what a repository's workflows need) or `check_presence`; when a value must come from the human, ask them to run `mgraph-deploy-cli ui`.";

/// Serves MCP on stdin/stdout until the client closes it.
pub(super) async fn serve(connection: &Connection, pat: &PatSource) -> Result<Exit, Failure> {
    if pat.pat_stdin {
        return Err(InputError(
            "mcp speaks the protocol on stdin, so the PAT cannot come from it: use --pat-env NAME or GIT_HUB__ACCESS_TOKEN".into(),
        )
        .into());
    }
    let binary = std::env::current_exe()
        .map_err(|e| InputError(format!("cannot find this program's own path: {e}")))?;
    let server = Server::new(runner(binary, connection, pat));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| InputError(format!("the MCP session did not start: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| InputError(format!("the MCP server failed: {e}")))?;
    Ok(Exit::Success)
}

/// The CLI as each tool runs it: this binary, with this server's connection settings; the API
/// key's value in the child's environment, never on its command line.
fn runner(binary: PathBuf, connection: &Connection, pat: &PatSource) -> Runner {
    let mut flags = vec![
        format!("--url={}", connection.url),
        format!("--timeout={}", connection.timeout),
    ];
    if let Some(name) = &connection.api_key_name {
        flags.push(format!("--api-key-name={name}"));
    }
    if let Some(name) = &pat.pat_env {
        flags.push(format!("--pat-env={name}"));
    }
    let env = connection
        .api_key_value
        .iter()
        .map(|value| ("DEPLOY_SERVICE__API_KEY__VALUE".to_owned(), value.clone()))
        .collect();
    let mut credentials: Vec<String> = [
        "GIT_HUB__ACCESS_TOKEN",
        "GH_TOKEN",
        "DEPLOY_SERVICE__API_KEY__VALUE",
        "DEPLOY_FINGERPRINT_KEY",
    ]
    .map(str::to_owned)
    .to_vec();
    credentials.extend(pat.pat_env.clone());
    Runner {
        binary,
        flags,
        env,
        credentials,
    }
}

#[derive(Debug, Clone)]
struct Server {
    runner: Runner,
    tool_router: ToolRouter<Self>,
}

fn result(answer: Answer) -> CallToolResult {
    if answer.error {
        CallToolResult::structured_error(answer.content)
    } else {
        CallToolResult::structured(answer.content)
    }
}

#[tool_router]
impl Server {
    fn new(runner: Runner) -> Self {
        Self {
            runner,
            tool_router: Self::tool_router(),
        }
    }

    /// List the secrets of a repository, one of its environments, or an organisation: each
    /// name, when it was created and updated, and (organisation) its visibility. Never returns
    /// a value: GitHub never gives one back.
    #[tool]
    async fn list_secrets(
        &self,
        Parameters(args): Parameters<tools::ListSecrets>,
    ) -> CallToolResult {
        result(self.runner.list_secrets(args).await)
    }

    /// Check which of `names` a workflow run in the repository (and environment) would see,
    /// and where each is found: `environment` (it shadows the repository's), `repo`, or
    /// `builtin` (`GITHUB_TOKEN`); `all_present` says whether none is missing. Never returns a
    /// value.
    #[tool]
    async fn check_presence(
        &self,
        Parameters(args): Parameters<tools::CheckPresence>,
    ) -> CallToolResult {
        result(self.runner.check_presence(args).await)
    }

    /// Read the repository's workflows (`dir`/.github/workflows on this machine) and check every
    /// secret they reference where their jobs run: what is missing, shadowed by an environment,
    /// not passed to a called workflow, or defined and unused; `ok` says whether anything
    /// required is missing. Never returns a value.
    #[tool]
    async fn preflight(&self, Parameters(args): Parameters<tools::Preflight>) -> CallToolResult {
        result(self.runner.preflight(args).await)
    }

    /// Plan writing every value of a local .env or JSON file to a target, changing nothing:
    /// each name's action (create, update, unchanged, drifted; prune with `prune`), warnings,
    /// and errors. The values are read and sealed here and never returned.
    #[tool]
    async fn plan_apply(&self, Parameters(args): Parameters<tools::Apply>) -> CallToolResult {
        result(self.runner.apply(args, true).await)
    }

    /// Write every value of a local .env or JSON file to a target (unchanged values are
    /// skipped unless `force`), and report each name's outcome. With `prune`, the secrets this
    /// service wrote that the file no longer names are deleted only with `confirm: true`;
    /// without it the answer is the plan and the names it would delete. The values are read
    /// and sealed here and never returned.
    #[tool]
    async fn apply(&self, Parameters(args): Parameters<tools::Apply>) -> CallToolResult {
        result(self.runner.apply(args, false).await)
    }

    /// Write one secret whose value never passes through this conversation: `from_env` (an
    /// environment variable of this server's process), `from_file` (a file on this machine) or
    /// `generate` (a random value of `length` characters, written and never shown). With no
    /// source, the answer says how the human can enter the value themselves. Returns where the
    /// secret was written, never its value.
    #[tool]
    async fn set_secret(&self, Parameters(args): Parameters<tools::SetSecret>) -> CallToolResult {
        result(self.runner.set_secret(args).await)
    }

    /// What this service recorded of a target's writes, deletes, refusals and workflows, newest
    /// first: names, outcomes and times. Never returns a value.
    #[tool]
    async fn history(&self, Parameters(args): Parameters<tools::History>) -> CallToolResult {
        result(self.runner.history(args).await)
    }

    /// Each secret of a target against what this service wrote there: `in_sync`, `drifted`
    /// (changed outside it), `missing` (deleted outside it), `unconfirmed` or `unmanaged`.
    /// Never returns a value.
    #[tool]
    async fn status(&self, Parameters(args): Parameters<tools::Status>) -> CallToolResult {
        result(self.runner.status(args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mgraph-deploy-cli", super::VERSION))
            .with_instructions(INSTRUCTIONS)
    }
}
