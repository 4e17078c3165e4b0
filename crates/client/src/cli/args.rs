//! The command line's grammar (clap) and how its target and write flags become requests.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mgraph_deploy_api::{EnvironmentName, NameError, OrgName, OwnerName, RepoName, Visibility};

use super::InputError;
use crate::api::{Target, WriteOptions};

/// Seal secrets locally and write them to GitHub through the MGraph-AI Deploy Service.
///
/// Values and the PAT are sealed on this machine to the GitHub Service's public key; the Deploy
/// Service only ever sees sealed blobs. Exit codes: 0 success, 1 an operation failed (or
/// `exists` answered false, or `presence` found a secret missing), 2 invalid input, 3 the service
/// is unreachable or refused the API key.
#[derive(Debug, Parser)]
#[command(name = "mgraph-deploy-cli", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub(super) connection: Connection,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub(super) json: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Args)]
pub(super) struct Connection {
    /// Deploy Service base URL.
    #[arg(
        long,
        global = true,
        env = "DEPLOY_SERVICE__URL",
        default_value = "https://deploy.dev.mgraph.ai"
    )]
    pub(super) url: String,
    /// Header name of the service's API key.
    #[arg(long, global = true, env = "DEPLOY_SERVICE__API_KEY__NAME")]
    pub(super) api_key_name: Option<String>,
    /// The service's API key (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long,
        global = true,
        env = "DEPLOY_SERVICE__API_KEY__VALUE",
        hide_env_values = true
    )]
    pub(super) api_key_value: Option<String>,
    /// Give up on a request after this many seconds.
    #[arg(long, global = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub(super) timeout: u64,
}

/// Where the GitHub PAT comes from.
#[derive(Debug, Args, Clone)]
pub(super) struct PatSource {
    /// Environment variable holding the GitHub PAT.
    #[arg(long, default_value = "GIT_HUB__ACCESS_TOKEN", value_name = "NAME")]
    pub(super) pat_env: String,
    /// Read the GitHub PAT from standard input instead.
    #[arg(long)]
    pub(super) pat_stdin: bool,
}

#[derive(Debug, Args, Clone)]
pub(super) struct TargetArgs {
    /// Repository secrets of OWNER/REPO.
    #[arg(
        long,
        value_name = "OWNER/REPO",
        required_unless_present = "org",
        conflicts_with = "org"
    )]
    pub(super) repo: Option<String>,
    /// Environment secrets of that repository's ENVIRONMENT.
    #[arg(
        long = "env",
        value_name = "ENVIRONMENT",
        requires = "repo",
        conflicts_with = "org"
    )]
    pub(super) environment: Option<String>,
    /// Organisation secrets of ORG.
    #[arg(long, value_name = "ORG")]
    pub(super) org: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub(super) struct WriteArgs {
    /// Which repositories may use an organisation secret.
    #[arg(long, requires = "org", value_parser = ["all", "private", "selected"])]
    pub(super) visibility: Option<String>,
    /// Repository ids for `--visibility selected`, comma separated.
    #[arg(long, requires = "org", value_delimiter = ',', value_name = "ID,...")]
    pub(super) repo_ids: Option<Vec<u64>>,
    /// With --env: write the repository secret if the environment does not exist.
    #[arg(long, requires = "environment")]
    pub(super) env_fallback: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Print the GitHub Service public key values are sealed to.
    PublicKey,
    /// Seal a value (stdin, or --file) and print the sealed base64, for hand-written workflow files.
    Seal {
        /// Read the value from this file (exact bytes) instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Seal to this key (64 hex characters) instead of fetching it from the service.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
    /// Single secret operations.
    Secret {
        #[command(subcommand)]
        action: SecretCommand,
    },
    /// Check that required secrets are present (exit 1 when any is missing).
    Presence {
        /// Names that must be present, comma separated.
        #[arg(long, value_delimiter = ',', required = true, value_name = "NAME,...")]
        require: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Seal every value of a .env file (or JSON map) and write them all in one /execute.
    Apply {
        /// The values: a .env file (quotes and multi-line values allowed) or a JSON object.
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        write: WriteArgs,
        /// Write empty values too (refused otherwise: an empty secret is usually a mistake).
        #[arg(long)]
        allow_empty: bool,
        /// Only plan: show what would be written, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: read the current secrets to show create / update / noop.
        #[arg(long, requires = "dry_run")]
        check_state: bool,
        /// Operations in flight at once (1-16; the service's default otherwise).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
        concurrency: Option<u8>,
        /// What to do after a failure.
        #[arg(long, value_parser = ["continue", "stop"])]
        on_error: Option<String>,
        /// Time budget of the whole run, in seconds (1-840).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=840))]
        deadline: Option<u16>,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Post a workflow file whose values are already sealed (see `seal`).
    Run {
        /// The workflow JSON. Without `credentials`, the PAT is sealed and added.
        workflow: PathBuf,
        /// Only plan it (POST /execute/plan).
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        pat: PatSource,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum SecretCommand {
    /// Write a secret. The value comes from stdin unless --value-file, --value-env or --body.
    Set {
        name: String,
        /// Read the value from this file (exact bytes).
        #[arg(long, group = "source")]
        value_file: Option<PathBuf>,
        /// Read the value from this environment variable.
        #[arg(long, group = "source", value_name = "VAR")]
        value_env: Option<String>,
        /// UNSAFE: the value on the command line, visible in `ps` and shell history.
        #[arg(long, group = "source", value_name = "VALUE")]
        body: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// List secret names (never values).
    List {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Show a secret's metadata.
    Get {
        name: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Exit 0 if the secret exists, 1 if it does not.
    Exists {
        name: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Delete a secret.
    Delete {
        name: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
}

impl TargetArgs {
    pub(super) fn resolve(&self) -> Result<Target, InputError> {
        let rule = |flag: &'static str| move |e: NameError| InputError(format!("{flag} {e}"));
        if let Some(org) = &self.org {
            if self.environment.is_some() || self.repo.is_some() {
                return Err(InputError(
                    "--org names organisation secrets: it cannot be combined with --repo or --env"
                        .into(),
                ));
            }
            let org = OrgName::try_from(org.as_str()).map_err(rule("--org"))?;
            return Ok(Target::Org { org });
        }
        let repo = self.repo.as_deref().unwrap_or_default();
        let Some((owner, name)) = repo
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        else {
            return Err(InputError(format!(
                "--repo must be OWNER/REPO, got {repo:?}"
            )));
        };
        let owner = OwnerName::try_from(owner).map_err(rule("--repo owner"))?;
        let repo = RepoName::try_from(name).map_err(rule("--repo repository name"))?;
        Ok(match &self.environment {
            Some(environment) => Target::Environment {
                owner,
                repo,
                environment: EnvironmentName::try_from(environment.as_str())
                    .map_err(rule("--env"))?,
            },
            None => Target::Repo { owner, repo },
        })
    }
}

impl WriteArgs {
    pub(super) fn options(&self) -> Result<WriteOptions, InputError> {
        let visibility = match self.visibility.as_deref() {
            None => None,
            Some("all") => Some(Visibility::All),
            Some("private") => Some(Visibility::Private),
            Some("selected") => Some(Visibility::Selected),
            Some(other) => {
                return Err(InputError(format!(
                    "--visibility must be all, private or selected, got {other:?}"
                )));
            }
        };
        Ok(WriteOptions {
            visibility,
            repo_ids: self.repo_ids.clone(),
            env_fallback: self.env_fallback,
        })
    }
}
