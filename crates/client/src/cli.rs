//! `mgraph-deploy-cli`: seals locally, drives the Deploy Service, reports for people or (with
//! `--json`) for machines. Exit codes: 0 success, 1 an operation failed, 2 invalid input,
//! 3 service unreachable or not authorised. Plaintext never reaches the service, a log, an error
//! or `--json` output; sealed blobs are printed only by `seal`, whose job that is.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use mgraph_deploy_api::{
    Credentials, Envelope, EnvironmentName, ErrorType, NameError, OnError, OrgName, OwnerName,
    Plan, PresenceScope, RepoName, Report, SealedPat, SealedValue, SecretName, Status, Visibility,
    WorkflowBody, WorkflowOperation, WorkflowOptions,
};

use crate::api::{
    Answer, ApiKey, ClientError, DeployClient, Execution, Target, WriteOptions, valid,
};
use crate::seal::{Plaintext, PublicKey, Sealed};
use crate::values::{NamedValue, read_values};

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    OperationFailed = 1,
    InvalidInput = 2,
    Unreachable = 3,
}

impl Exit {
    /// `OperationFailed` when `failed`, else `Success`.
    fn unless(failed: bool) -> Self {
        if failed {
            Exit::OperationFailed
        } else {
            Exit::Success
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

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
    connection: Connection,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Connection {
    /// Deploy Service base URL.
    #[arg(
        long,
        global = true,
        env = "DEPLOY_SERVICE__URL",
        default_value = "https://deploy.dev.mgraph.ai"
    )]
    url: String,
    /// Header name of the service's API key.
    #[arg(long, global = true, env = "DEPLOY_SERVICE__API_KEY__NAME")]
    api_key_name: Option<String>,
    /// The service's API key (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long,
        global = true,
        env = "DEPLOY_SERVICE__API_KEY__VALUE",
        hide_env_values = true
    )]
    api_key_value: Option<String>,
    /// Give up on a request after this many seconds.
    #[arg(long, global = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=900))]
    timeout: u64,
}

/// Where the GitHub PAT comes from.
#[derive(Debug, Args, Clone)]
struct PatSource {
    /// Environment variable holding the GitHub PAT.
    #[arg(long, default_value = "GIT_HUB__ACCESS_TOKEN", value_name = "NAME")]
    pat_env: String,
    /// Read the GitHub PAT from standard input instead.
    #[arg(long)]
    pat_stdin: bool,
}

#[derive(Debug, Args, Clone)]
struct TargetArgs {
    /// Repository secrets of OWNER/REPO.
    #[arg(
        long,
        value_name = "OWNER/REPO",
        required_unless_present = "org",
        conflicts_with = "org"
    )]
    repo: Option<String>,
    /// Environment secrets of that repository's ENVIRONMENT.
    #[arg(
        long = "env",
        value_name = "ENVIRONMENT",
        requires = "repo",
        conflicts_with = "org"
    )]
    environment: Option<String>,
    /// Organisation secrets of ORG.
    #[arg(long, value_name = "ORG")]
    org: Option<String>,
}

#[derive(Debug, Args, Clone)]
struct WriteArgs {
    /// Which repositories may use an organisation secret.
    #[arg(long, requires = "org", value_parser = ["all", "private", "selected"])]
    visibility: Option<String>,
    /// Repository ids for `--visibility selected`, comma separated.
    #[arg(long, requires = "org", value_delimiter = ',', value_name = "ID,...")]
    repo_ids: Option<Vec<u64>>,
    /// With --env: write the repository secret if the environment does not exist.
    #[arg(long, requires = "environment")]
    env_fallback: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
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
enum SecretCommand {
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

/// A refusal before anything was sent (exit 2).
#[derive(Debug)]
struct InputError(String);

/// Parses the arguments and runs the command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_output = cli.json;
    let exit = match run(cli).await {
        Ok(exit) => exit,
        Err(Failure::Input(InputError(message))) => {
            report_error(json_output, "invalid_input", &message);
            Exit::InvalidInput
        }
        Err(Failure::Client(e)) => {
            let (kind, exit) = match &e {
                ClientError::Unauthorized(_) => ("unauthorized", Exit::Unreachable),
                ClientError::Unreachable { .. } => ("unreachable", Exit::Unreachable),
                ClientError::Timeout(_) => ("timeout", Exit::Unreachable),
                ClientError::BadUrl(_) | ClientError::Invalid { .. } => {
                    ("invalid_input", Exit::InvalidInput)
                }
                ClientError::Unexpected { .. } => ("unexpected_response", Exit::OperationFailed),
            };
            report_error(json_output, kind, &e.to_string());
            exit
        }
    };
    exit.into()
}

enum Failure {
    Input(InputError),
    Client(ClientError),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Self::Input(e)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

fn report_error(json_output: bool, kind: &str, message: &str) {
    if json_output {
        println!(
            "{}",
            json!({ "success": false, "error": message, "error_type": kind })
        );
    } else {
        eprintln!("error: {message}");
    }
}

async fn run(cli: Cli) -> Result<Exit, Failure> {
    let client = connect(&cli.connection)?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::PublicKey => {
            let key = client.public_key().await?;
            if out.json {
                out.print_json(&json!({ "public_key": key.to_hex(), "algorithm": "NaCl/Curve25519/SealedBox" }));
            } else {
                println!("{}", key.to_hex());
            }
            Ok(Exit::Success)
        }
        Command::Seal { file, public_key } => {
            let value = match &file {
                Some(path) => read_file(path)?,
                None => read_stdin("the value")?,
            };
            let key = match public_key {
                Some(hex_key) => PublicKey::from_hex(&hex_key)
                    .map_err(|e| InputError(format!("--public-key: {e}")))?,
                None => client.public_key().await?,
            };
            let sealed = value.seal_to(&key);
            if out.json {
                out.print_json(&json!({ "encrypted_value": sealed, "public_key": key.to_hex() }));
            } else {
                println!("{}", sealed.expose());
            }
            Ok(Exit::Success)
        }
        Command::Secret { action } => secret(&client, out, action).await,
        Command::Presence {
            require,
            target,
            pat,
        } => {
            let target = target.resolve()?;
            let mut session = Session::open(&client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.presence(&s.pat, &target, &require).await)
                .await?;
            Ok(out.envelope(
                &envelope,
                |data| Exit::unless(!data.all_present),
                |data| {
                    for s in &data.secrets {
                        match (s.present, s.scope) {
                            (true, Some(scope)) => {
                                println!("present  {} ({})", s.name, scope_word(scope));
                            }
                            _ => println!("MISSING  {}", s.name),
                        }
                    }
                },
            ))
        }
        Command::Apply {
            file,
            target,
            write,
            allow_empty,
            dry_run,
            check_state,
            concurrency,
            on_error,
            deadline,
            pat,
        } => {
            let values = read_values(&file).map_err(|e| InputError(e.to_string()))?;
            if !allow_empty {
                refuse_empty_values(&file, &values)?;
            }
            let target = target.resolve()?;
            let options = write.options()?;
            // Every name is checked before anything is sealed, and every bad one is named.
            let mut names = Vec::with_capacity(values.len());
            let mut bad = Vec::new();
            for v in &values {
                match SecretName::try_from(v.name.as_str()) {
                    Ok(valid) => names.push(valid),
                    Err(e) => bad.push(format!("{}: {e}", v.name)),
                }
            }
            if !bad.is_empty() {
                return Err(InputError(format!(
                    "{} holds names GitHub refuses:\n  {}",
                    file.display(),
                    bad.join("\n  ")
                ))
                .into());
            }
            let workflow_options = WorkflowOptions {
                concurrency: concurrency.map(u64::from),
                on_error: on_error.map(|o| {
                    if o == "stop" {
                        OnError::Stop
                    } else {
                        OnError::Continue
                    }
                }),
                deadline_seconds: deadline.map(u64::from),
                check_state: check_state.then_some(true),
            };
            let mut session = Session::open(&client, &pat, Some(&out)).await?;
            let build = |s: &Session| -> Result<Value, ClientError> {
                let mut operations = Vec::with_capacity(values.len());
                for (name, v) in names.iter().zip(&values) {
                    let sealed = sealed_value(&v.value.seal_to(&s.key))?;
                    operations.push(WorkflowOperation::Create(options.create(
                        &target,
                        name.clone(),
                        sealed,
                    )));
                }
                let workflow = WorkflowBody {
                    credentials: Credentials {
                        github_pat: sealed_pat(&s.pat)?,
                    },
                    target: Some(target.clone()),
                    options: Some(workflow_options.clone()),
                    operations,
                };
                Ok(serde_json::to_value(workflow).expect("a workflow is plain JSON"))
            };
            out.progress(format_args!(
                "sealed {} value(s) and the PAT to key {}; {} on {} via {}",
                values.len(),
                session.key.fingerprint(),
                if dry_run { "planning" } else { "writing" },
                target,
                client.base_url()
            ));
            if dry_run {
                let plan = session
                    .resealing(async |c, s| c.plan(&build(s)?).await)
                    .await?;
                return Ok(out.plan(&plan));
            }
            let execution = session
                .resealing(async |c, s| {
                    let ticker = out.ticker(values.len());
                    let result = c.execute(&build(s)?).await;
                    drop(ticker);
                    result
                })
                .await?;
            Ok(out.execution(&execution))
        }
        Command::Run {
            workflow,
            plan,
            pat,
        } => {
            let text = std::fs::read_to_string(&workflow)
                .map_err(|e| InputError(format!("cannot read {}: {e}", workflow.display())))?;
            let mut document: Value = serde_json::from_str(&text).map_err(|e| {
                InputError(format!(
                    "{} is not JSON (line {}, column {})",
                    workflow.display(),
                    e.line(),
                    e.column()
                ))
            })?;
            let Some(object) = document.as_object_mut() else {
                return Err(
                    InputError(format!("{} must hold a JSON object", workflow.display())).into(),
                );
            };
            if !object.contains_key("credentials") {
                let session = Session::open(&client, &pat, Some(&out)).await?;
                let credentials = Credentials {
                    github_pat: sealed_pat(&session.pat)?,
                };
                let credentials =
                    serde_json::to_value(credentials).expect("credentials are plain JSON");
                object.insert("credentials".into(), credentials);
            }
            if plan {
                let plan = client.plan(&document).await?;
                return Ok(out.plan(&plan));
            }
            let ticker = out.ticker(
                object
                    .get("operations")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
            );
            let execution = client.execute(&document).await?;
            drop(ticker);
            let exit = out.execution(&execution);
            if has_decryption_failure(&execution) {
                out.note("the GitHub Service could not open a blob: its key may have changed (it does on every redeploy); re-seal the values with `mgraph-deploy-cli seal`");
            }
            Ok(exit)
        }
    }
}

async fn secret(
    client: &DeployClient,
    out: Output,
    action: SecretCommand,
) -> Result<Exit, Failure> {
    match action {
        SecretCommand::Set {
            name,
            value_file,
            value_env,
            body,
            target,
            write,
            pat,
        } => {
            let target = target.resolve()?;
            let options = write.options()?;
            if pat.pat_stdin && value_file.is_none() && value_env.is_none() && body.is_none() {
                return Err(InputError("the PAT and the value cannot both come from stdin; use --value-file or --value-env".into()).into());
            }
            let value = match (value_file, value_env, body) {
                (Some(path), _, _) => read_file(&path)?,
                (_, Some(var), _) => Plaintext::new(std::env::var(&var).map_err(|_| {
                    InputError(format!(
                        "environment variable {var} is not set (or not UTF-8)"
                    ))
                })?),
                (_, _, Some(body)) => {
                    out.note("--body puts the value in your shell history and the process list; prefer stdin, --value-file or --value-env");
                    Plaintext::new(body)
                }
                _ => read_stdin("the value")?,
            };
            if value.expose().ends_with('\n') && value.expose().matches('\n').count() == 1 {
                out.note("the value ends with a newline, which is kept as part of the secret (use printf '%s' to avoid it)");
            }
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| {
                    c.create(&s.pat, &target, &name, &value.seal_to(&s.key), &options)
                        .await
                })
                .await?;
            Ok(out.envelope(
                &envelope,
                |_| Exit::Success,
                |data| println!("wrote {name} to {target} ({} secret)", data.scope),
            ))
        }
        SecretCommand::List { target, pat } => {
            let target = target.resolve()?;
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.list(&s.pat, &target).await)
                .await?;
            Ok(out.envelope(
                &envelope,
                |_| Exit::Success,
                |data| {
                    for s in &data.secrets {
                        println!(
                            "{:<40} updated {}",
                            s.name,
                            s.updated_at.as_deref().unwrap_or("?")
                        );
                    }
                    eprintln!("{} secret(s) in {target}", data.secrets.len());
                },
            ))
        }
        SecretCommand::Get { name, target, pat } => {
            let target = target.resolve()?;
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.get(&s.pat, &target, &name).await)
                .await?;
            Ok(out.envelope(
                &envelope,
                |_| Exit::Success,
                |data| {
                    let s = &data.secret;
                    println!("name        {}", s.name);
                    println!("created_at  {}", s.created_at.as_deref().unwrap_or("?"));
                    println!("updated_at  {}", s.updated_at.as_deref().unwrap_or("?"));
                    if let Some(v) = s.visibility {
                        println!("visibility  {}", v.as_str());
                    }
                },
            ))
        }
        SecretCommand::Exists { name, target, pat } => {
            let target = target.resolve()?;
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.exists(&s.pat, &target, &name).await)
                .await?;
            Ok(out.envelope(
                &envelope,
                |data| Exit::unless(!data.exists),
                |data| {
                    if data.exists {
                        println!("{name} exists in {target}");
                    } else {
                        println!("{name} does not exist in {target}");
                    }
                },
            ))
        }
        SecretCommand::Delete { name, target, pat } => {
            let target = target.resolve()?;
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.delete(&s.pat, &target, &name).await)
                .await?;
            Ok(out.envelope(
                &envelope,
                |_| Exit::Success,
                |_| println!("deleted {name} from {target}"),
            ))
        }
    }
}

fn connect(connection: &Connection) -> Result<DeployClient, Failure> {
    let api_key = match (&connection.api_key_name, &connection.api_key_value) {
        (Some(name), Some(value)) if !name.is_empty() && !value.is_empty() => Some(ApiKey {
            name: name.clone(),
            value: value.clone(),
        }),
        (None, None) => None,
        _ => {
            return Err(InputError(
                "set both DEPLOY_SERVICE__API_KEY__NAME and DEPLOY_SERVICE__API_KEY__VALUE (or --api-key-name and --api-key-value), or neither".into(),
            )
            .into());
        }
    };
    Ok(DeployClient::new(
        &connection.url,
        api_key,
        Duration::from_secs(connection.timeout),
    )?)
}

/// The sealed PAT and the key it was sealed to; re-seals once when the service reports that the
/// GitHub Service could not open a blob (its key changes on every redeploy).
struct Session<'c> {
    client: &'c DeployClient,
    plain_pat: Plaintext,
    key: PublicKey,
    pat: Sealed,
}

impl<'c> Session<'c> {
    async fn open(
        client: &'c DeployClient,
        source: &PatSource,
        out: Option<&Output>,
    ) -> Result<Session<'c>, Failure> {
        let plain_pat = read_pat(source)?;
        let key = client.public_key().await?;
        if let Some(out) = out {
            out.progress(format_args!("GitHub Service key {}", key.fingerprint()));
        }
        let pat = plain_pat.seal_to(&key);
        Ok(Self {
            client,
            plain_pat,
            key,
            pat,
        })
    }

    async fn resealing<T: MaybeUndecryptable>(
        &mut self,
        mut call: impl AsyncFnMut(&DeployClient, &Session<'c>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let first = call(self.client, self).await?;
        if !first.undecryptable() {
            return Ok(first);
        }
        let key = self.client.public_key().await?;
        eprintln!(
            "note: the GitHub Service could not open a sealed blob (key {} → {}); re-sealing and retrying once",
            self.key.fingerprint(),
            key.fingerprint()
        );
        self.pat = self.plain_pat.seal_to(&key);
        self.key = key;
        call(self.client, self).await
    }
}

/// Whether an answer says the GitHub Service could not open a blob.
trait MaybeUndecryptable {
    fn undecryptable(&self) -> bool;
}

impl<D> MaybeUndecryptable for Answer<Envelope<D>> {
    fn undecryptable(&self) -> bool {
        self.is(ErrorType::DecryptionFailed)
    }
}

impl MaybeUndecryptable for Execution {
    fn undecryptable(&self) -> bool {
        has_decryption_failure(self)
    }
}

impl MaybeUndecryptable for Answer<Plan> {
    fn undecryptable(&self) -> bool {
        self.unreadable
            .iter()
            .any(|u| u.error_type == ErrorType::DecryptionFailed)
    }
}

fn has_decryption_failure(execution: &Execution) -> bool {
    matches!(execution, Execution::Ran(report)
        if report.results.iter().any(|r| r.error_type == Some(ErrorType::DecryptionFailed)))
}

impl TargetArgs {
    fn resolve(&self) -> Result<Target, InputError> {
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
    fn options(&self) -> Result<WriteOptions, InputError> {
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

/// A blob this machine sealed, as the request type; a refusal would be a sealing bug.
fn sealed_pat(sealed: &Sealed) -> Result<SealedPat, ClientError> {
    valid("sealed PAT", sealed.expose())
}

fn sealed_value(sealed: &Sealed) -> Result<SealedValue, ClientError> {
    valid("sealed value", sealed.expose())
}

/// Refuses a file with empty values, naming each (and its line).
fn refuse_empty_values(file: &Path, values: &[NamedValue]) -> Result<(), InputError> {
    let empty: Vec<String> = values
        .iter()
        .filter(|v| v.value.expose().is_empty())
        .map(|v| match v.line {
            Some(line) => format!("{} (line {line})", v.name),
            None => v.name.clone(),
        })
        .collect();
    match empty.len() {
        0 => Ok(()),
        n => Err(InputError(format!(
            "{}: {} {} empty; pass --allow-empty to write empty values",
            file.display(),
            empty.join(", "),
            if n == 1 { "is" } else { "are" }
        ))),
    }
}

/// The PAT, trimmed (a PAT never contains whitespace, and a trailing newline breaks it).
fn read_pat(source: &PatSource) -> Result<Plaintext, InputError> {
    let raw = if source.pat_stdin {
        read_stdin("the PAT")?
    } else {
        Plaintext::new(std::env::var(&source.pat_env).map_err(|_| {
            InputError(format!(
                "no GitHub PAT: set {} (or use --pat-env NAME or --pat-stdin)",
                source.pat_env
            ))
        })?)
    };
    let trimmed = raw.expose().trim();
    if trimmed.is_empty() {
        return Err(InputError("the GitHub PAT is empty".into()));
    }
    if trimmed.contains(char::is_whitespace) {
        return Err(InputError(
            "the GitHub PAT contains whitespace; check how it was copied".into(),
        ));
    }
    Ok(Plaintext::new(trimmed.to_owned()))
}

fn read_stdin(what: &str) -> Result<Plaintext, InputError> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading {what} from stdin; end with Ctrl-D");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| InputError(format!("cannot read {what} from stdin: {e}")))?;
    Ok(Plaintext::new(text))
}

fn read_file(path: &Path) -> Result<Plaintext, InputError> {
    std::fs::read_to_string(path)
        .map(Plaintext::new)
        .map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))
}

/// Human or JSON output. Progress and notes go to stderr.
#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn print_json(&self, value: &impl serde::Serialize) {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut stdout, value);
        let _ = writeln!(stdout);
    }

    fn progress(&self, message: std::fmt::Arguments<'_>) {
        if !self.json {
            eprintln!("{message}");
        }
    }

    fn note(&self, message: &str) {
        eprintln!("note: {message}");
    }

    /// A line on stderr every few seconds while a workflow runs (terminals only).
    fn ticker(&self, operations: usize) -> Option<Ticker> {
        if self.json {
            return None;
        }
        eprintln!("running {operations} operation(s)…");
        std::io::stderr().is_terminal().then(|| {
            let started = Instant::now();
            Ticker(tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(2));
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("  … still running ({}s)", started.elapsed().as_secs());
                }
            }))
        })
    }

    /// Prints an operation envelope: its data by `print` (or as JSON), and exits by `exit_of`
    /// on success (`exists` and `presence` answer 1 for false and missing).
    fn envelope<D: serde::Serialize>(
        &self,
        envelope: &Answer<Envelope<D>>,
        exit_of: impl FnOnce(&D) -> Exit,
        print: impl FnOnce(&D),
    ) -> Exit {
        let exit = match (&envelope.data, envelope.success) {
            (Some(data), true) => {
                if !self.json {
                    print(data);
                }
                exit_of(data)
            }
            _ => {
                if !self.json {
                    eprintln!(
                        "error: {} ({}, HTTP {})",
                        envelope.error,
                        envelope.error_type.map_or("unknown", ErrorType::as_str),
                        envelope.status
                    );
                }
                match envelope.error_type {
                    Some(ErrorType::InvalidInput) => Exit::InvalidInput,
                    Some(ErrorType::Unauthorized) => Exit::Unreachable,
                    _ => Exit::OperationFailed,
                }
            }
        };
        if self.json {
            self.print_json(&envelope.body);
        } else {
            for message in &envelope.messages {
                eprintln!("  {message}");
            }
        }
        exit
    }

    fn plan(&self, plan: &Plan) -> Exit {
        if self.json {
            self.print_json(plan);
        } else {
            for step in &plan.plan {
                println!(
                    "{:>3}. {:<7} {:<40} {} ({})",
                    step.step,
                    step.action.as_str(),
                    step.secret_name.as_ref().map_or("-", |n| n.as_str()),
                    step.target,
                    step.scope
                );
            }
            for warning in &plan.warnings {
                eprintln!("warning: {warning}");
            }
            print_plan_errors(plan);
        }
        if plan.valid {
            Exit::Success
        } else {
            Exit::InvalidInput
        }
    }

    fn execution(&self, execution: &Execution) -> Exit {
        match execution {
            Execution::Invalid(plan) => {
                if self.json {
                    self.print_json(&plan.body);
                } else {
                    eprintln!("the workflow is invalid; nothing was written");
                    print_plan_errors(plan);
                }
                Exit::InvalidInput
            }
            Execution::Ran(report) => {
                if self.json {
                    self.print_json(&report.body);
                } else {
                    print_report(report);
                }
                if report.success {
                    Exit::Success
                } else {
                    Exit::OperationFailed
                }
            }
        }
    }
}

fn scope_word(scope: PresenceScope) -> &'static str {
    match scope {
        PresenceScope::Environment => "environment",
        PresenceScope::Repo => "repo",
        PresenceScope::Builtin => "builtin",
    }
}

fn print_plan_errors(plan: &Plan) {
    for e in &plan.errors {
        match e.step {
            Some(step) => eprintln!("error: step {step}, {}: {}", e.field, e.message),
            None => eprintln!("error: {}: {}", e.field, e.message),
        }
    }
}

fn print_report(report: &Answer<Report>) {
    for r in &report.results {
        let mark = match r.status {
            Status::Completed => "ok  ",
            Status::Skipped => "skip",
            Status::Failed => "FAIL",
        };
        let tail = match (&r.error, &r.error_type) {
            (Some(error), Some(kind)) => format!("  {kind}: {error}"),
            _ => String::new(),
        };
        println!(
            "{mark} {:>3}. {:<22} {:<36} {} ({}) {:.2}s, {} attempt(s){tail}",
            r.step,
            r.operation.name(),
            r.secret_name.as_ref().map_or("-", |n| n.as_str()),
            r.target,
            r.scope,
            r.duration,
            r.attempts,
        );
    }
    eprintln!(
        "{} of {} completed, {} failed, {} skipped in {:.2}s (HTTP {})",
        report.completed,
        report.total_operations,
        report.failed,
        report.skipped,
        report.duration,
        report.status
    );
    if let Some(rate) = &report.rate_limit {
        let known = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        eprintln!(
            "GitHub rate limit: {} of {} left",
            known(rate.remaining),
            known(rate.limit)
        );
    }
}

/// Stops the progress ticker when dropped.
struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}
