//! The command line's grammar (clap) and how its target and write flags become requests.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The exit codes, in every `--help`.
pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  an operation failed, `exists` answered false, `presence` or `preflight` found a secret missing,
     or a dry run's plan says steps will fail
  2  invalid input: nothing was sent
  3  the Deploy Service is unreachable, timed out, dropped the connection after the request
     was sent, or refused the API key";

/// Seal secrets locally and write them to GitHub through the MGraph-AI Deploy Service.
///
/// Values and the PAT are sealed on this machine to the GitHub Service's public key; the Deploy
/// Service only ever sees sealed blobs.
#[derive(Debug, Parser)]
#[command(
    name = "mgraph-deploy-cli",
    version = super::VERSION,
    max_term_width = 100
)]
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
    /// Environment variable holding the GitHub PAT [default: GIT_HUB__ACCESS_TOKEN, then GH_TOKEN].
    #[arg(long, value_name = "NAME")]
    pub(super) pat_env: Option<String>,
    /// Read the GitHub PAT from standard input instead (a masked prompt at a terminal).
    #[arg(long, conflicts_with = "pat_env")]
    pub(super) pat_stdin: bool,
}

/// Which secrets: a repository's (the default), one of its environments', or an organisation's.
#[derive(Debug, Args, Clone)]
pub(super) struct TargetArgs {
    /// Repository OWNER/REPO [default: GH_REPO, then the current git repository's GitHub origin].
    #[arg(short = 'R', long, value_name = "OWNER/REPO", conflicts_with = "org")]
    pub(super) repo: Option<String>,
    /// Environment secrets of the repository's ENVIRONMENT.
    #[arg(
        short = 'e',
        long = "env",
        value_name = "ENVIRONMENT",
        conflicts_with = "org"
    )]
    pub(super) environment: Option<String>,
    /// Organisation secrets of ORG.
    #[arg(short = 'o', long, value_name = "ORG")]
    pub(super) org: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub(super) struct WriteArgs {
    /// Which repositories may use an organisation secret.
    #[arg(short = 'v', long, requires = "org", value_parser = ["all", "private", "selected"])]
    pub(super) visibility: Option<String>,
    /// Repository ids that may use an organisation secret, comma separated (implies
    /// `--visibility selected`).
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
    /// Print a shell completion script, e.g. `mgraph-deploy-cli completions bash >
    /// ~/.local/share/bash-completion/completions/mgraph-deploy-cli`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Seal a value (stdin, or --file) and print the sealed base64, for hand-written workflow files.
    Seal {
        /// Read the value from this file (exact bytes) instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Seal to this key (64 hex characters) instead of fetching it from the service.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Keep the trailing newline of a value read from stdin (trimmed by default, as `secret
        /// set` and gh do).
        #[arg(long, conflicts_with = "file")]
        keep_newline: bool,
        /// Seal an empty value (refused otherwise: an empty secret is usually a mistake).
        #[arg(long)]
        allow_empty: bool,
    },
    /// The GitHub PAT: `auth status` checks it.
    Auth {
        #[command(subcommand)]
        action: AuthCommand,
    },
    /// Single secret operations.
    Secret {
        #[command(subcommand)]
        action: SecretCommand,
    },
    /// Check that every secret this repository's workflows (.github/workflows) reference exists
    /// where their jobs run; list what is missing, shadowed by an environment, or unused (exit 1
    /// when anything required is missing).
    Preflight {
        /// The repository's root directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// OWNER/REPO [default: GH_REPO, then the GitHub origin remote of --dir].
        #[arg(short = 'R', long, value_name = "OWNER/REPO")]
        repo: Option<String>,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Serve the Secrets & Preflight page on 127.0.0.1: what this repository's workflows need,
    /// where each secret is, a field to save each missing one (sealed here, as `secret set`
    /// does), and the preflight checklist. Prints its URL (with a one-time token) and opens the
    /// browser; Ctrl-C stops it.
    Ui {
        /// The repository's root directory (its .github/workflows).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// OWNER/REPO [default: GH_REPO, then the GitHub origin remote of --dir].
        #[arg(short = 'R', long, value_name = "OWNER/REPO")]
        repo: Option<String>,
        /// Print the URL only; do not open a browser.
        #[arg(long)]
        no_open: bool,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Serve the Model Context Protocol on stdin/stdout, for AI agents: tools that list, check,
    /// plan and write secrets whose values are read on this machine and never returned (see the
    /// README for registering it with a client).
    Mcp {
        #[command(flatten)]
        pat: PatSource,
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
    /// Seal every value of a .env file (or JSON map) and write them all: one /execute, or
    /// several paced to GitHub's write limits when there are more than 80.
    Apply {
        /// The values: a .env file (see the README's rules) or a JSON object; `-` reads stdin.
        #[arg(short = 'f', long, visible_alias = "env-file")]
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
        /// With --dry-run: read the current secrets to show create / update / unchanged / drifted.
        #[arg(long, requires = "dry_run")]
        check_state: bool,
        /// Write every value, even those the service wrote last and nobody changed since (which
        /// are skipped otherwise).
        #[arg(long)]
        force: bool,
        /// Also delete the secrets the service wrote to this scope that the file no longer names
        /// (never one it did not write). Lists them and asks first at a terminal; elsewhere needs
        /// --yes.
        #[arg(long)]
        prune: bool,
        /// With --prune: delete without asking.
        #[arg(long, requires = "prune")]
        yes: bool,
        /// Operations in flight at once (1-16; the service's default otherwise).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
        concurrency: Option<u8>,
        /// What to do after a failure.
        #[arg(long, value_parser = ["continue", "stop"])]
        on_error: Option<String>,
        /// Time budget of the whole run, in seconds (1-840).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=840))]
        deadline: Option<u16>,
        /// Writes sent in any minute: GitHub's secondary limit is 80 content-creating requests a
        /// minute. More values are split into workflows that wait for room.
        #[arg(long, default_value_t = 80, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
        writes_per_minute: usize,
        /// Writes sent in any hour (GitHub's secondary limit: 500).
        #[arg(long, default_value_t = 500, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        writes_per_hour: usize,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Each secret of a target against what the service wrote there: in sync, drifted (changed
    /// outside it), missing (deleted outside it), unconfirmed, or unmanaged (not its own).
    Status {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
    /// What the service recorded of a target's writes, deletes, refusals and workflows, newest
    /// first (names and outcomes, never a value); `history show ID` shows one's steps. Shown to a
    /// PAT that can list the target's secrets.
    #[command(args_conflicts_with_subcommands = true)]
    History {
        #[command(subcommand)]
        show: Option<HistoryCommand>,
        #[command(flatten)]
        target: TargetArgs,
        /// How many executions to show (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
        #[command(flatten)]
        pat: PatSource,
    },
    /// Post a workflow file whose values are already sealed (see `seal`).
    Run {
        /// The workflow JSON (`-`: stdin). Without `credentials`, the PAT is sealed and added.
        workflow: PathBuf,
        /// Only plan it (POST /execute/plan).
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        pat: PatSource,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum AuthCommand {
    /// Whose GitHub PAT this is (as `gh auth status`), and whether it can read the secrets of
    /// the repository (--repo, GH_REPO or the git origin when there is one), an environment or
    /// an organisation (exit 1 when the PAT does not work or cannot read them).
    Status {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        pat: PatSource,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum HistoryCommand {
    /// One execution and its steps (those on targets the PAT can read).
    Show {
        /// The execution's id (the ID column of `history`; the request id it was recorded under).
        id: String,
        #[command(flatten)]
        pat: PatSource,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum SecretCommand {
    /// Write a secret. The value comes from stdin (a masked prompt at a terminal) unless --body,
    /// --value-file or --value-env; --env-file writes many.
    Set {
        /// The secret's name (none with --env-file).
        #[arg(
            value_name = "NAME",
            required_unless_present = "env_file",
            conflicts_with = "env_file"
        )]
        name: Option<String>,
        /// UNSAFE: the value on the command line, visible in `ps` and shell history.
        #[arg(short = 'b', long, group = "source", value_name = "VALUE")]
        body: Option<String>,
        /// Read the value from this file, byte for byte.
        #[arg(long, group = "source")]
        value_file: Option<PathBuf>,
        /// Read the value from this environment variable.
        #[arg(long, group = "source", value_name = "VAR")]
        value_env: Option<String>,
        /// Write every NAME=value of this .env file (or JSON object), as `apply`; `-` reads stdin.
        #[arg(short = 'f', long, group = "source", value_name = "FILE")]
        env_file: Option<PathBuf>,
        /// Keep the trailing newline of a value read from stdin (trimmed by default, as gh does).
        #[arg(long)]
        keep_newline: bool,
        /// Write an empty value (refused otherwise: an empty secret is usually a mistake).
        #[arg(long)]
        allow_empty: bool,
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
