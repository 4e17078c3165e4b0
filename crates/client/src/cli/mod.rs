//! `mgraph-deploy-cli`: seals locally, drives the Deploy Service, reports for people or (with
//! `--json`) for machines. Exit codes ([`args::EXIT_CODES`]): 0 success, 1 an operation failed,
//! 2 invalid input, 3 service unreachable or not authorised. Plaintext never reaches the service,
//! a log, an error or `--json` output; sealed blobs are printed only by `seal`, whose job that is.

mod apply;
mod args;
mod auth;
mod completions;
mod history;
mod mcp;
mod output;
mod pacing;
mod preflight;
mod session;
mod target;
mod ui;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use mgraph_deploy_api::{
    Credentials, ErrorType, OnError, PresenceName, SealedPat, SealedValue, SecretName, Target,
    WorkflowOptions,
};

use crate::api::{ApiKey, ClientError, DeployClient, valid};
use crate::seal::{Plaintext, PublicKey, Sealed};

pub use args::Cli;
use args::{AuthCommand, Command, Connection, HistoryCommand, SecretCommand, TargetArgs};
use output::{Output, scope_word};
use session::{Session, has_decryption_failure, read_file, read_secret_stdin};

/// What `--version` prints: the crate's version and the commit it was built from, when known.
pub const VERSION: &str = env!("MGRAPH_DEPLOY_VERSION");

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

/// The grammar, with the exit codes at the end of every command's `--help`.
fn command() -> clap::Command {
    fn with_exit_codes(command: clap::Command) -> clap::Command {
        command
            .after_help(args::EXIT_CODES)
            .mut_subcommands(with_exit_codes)
    }
    with_exit_codes(<Cli as clap::CommandFactory>::command())
}

/// A refusal before anything was sent (exit 2).
#[derive(Debug)]
pub(super) struct InputError(String);

/// Parses the arguments and runs the command.
pub async fn main() -> ExitCode {
    let (args, fields) = json_fields(std::env::args_os().collect());
    let json_asked = args.iter().any(|a| a == "--json");
    let cli = match command()
        .try_get_matches_from(args)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        // Under --json a refusal is the JSON object too; help and the version are not refusals.
        Err(e) if json_asked && e.exit_code() == 2 => {
            report_error(true, "invalid_input", &clap_refusal(&e));
            return Exit::InvalidInput.into();
        }
        Err(e) => e.exit(),
    };
    let json_output = cli.json;
    let exit = match run(cli, fields).await {
        Ok(exit) => exit,
        Err(Failure::Input(InputError(message))) => {
            report_error(json_output, "invalid_input", &message);
            Exit::InvalidInput
        }
        Err(Failure::Client(e)) => {
            let (kind, exit) = match &e {
                ClientError::Unauthorized(_) => ("unauthorized", Exit::Unreachable),
                ClientError::Unreachable { .. } => ("unreachable", Exit::Unreachable),
                ClientError::Interrupted { .. } => ("interrupted", Exit::Unreachable),
                ClientError::Timeout(_) => ("timeout", Exit::Unreachable),
                ClientError::BadUrl(_) | ClientError::Invalid { .. } => {
                    ("invalid_input", Exit::InvalidInput)
                }
                ClientError::Unexpected { .. } => ("unexpected_response", Exit::OperationFailed),
            };
            // Name what the user can change.
            let fix = match &e {
                ClientError::Unauthorized(_) => {
                    "; set DEPLOY_SERVICE__API_KEY__NAME and DEPLOY_SERVICE__API_KEY__VALUE (or --api-key-name and --api-key-value) to the service's API key"
                }
                ClientError::Unreachable { .. } | ClientError::BadUrl(_) => {
                    "; check DEPLOY_SERVICE__URL (or --url)"
                }
                ClientError::Timeout(_) => {
                    "; what it asked may or may not have been done: a write's effect shows in `secret list`, or for a file in `apply -f FILE --dry-run --check-state`; --timeout SECONDS waits longer"
                }
                ClientError::Interrupted { .. } => {
                    "; what it asked may or may not have been done, some of a workflow's writes perhaps: `apply -f FILE --dry-run --check-state` (or `secret list`) shows what is there now"
                }
                _ => "",
            };
            let message = match &e {
                // The client's names for request fields, as the user knows them.
                ClientError::Invalid { what, rule } => {
                    let what = match *what {
                        "secret name" => "NAME",
                        "required name" => "a --require name",
                        "sealed value" => "the value",
                        "sealed PAT" => "the GitHub PAT",
                        other => other,
                    };
                    format!("{what} {rule} (refused before sending)")
                }
                _ => e.to_string(),
            };
            report_error(json_output, kind, &format!("{message}{fix}"));
            exit
        }
    };
    exit.into()
}

/// What clap says when it refuses the arguments, in one line: its paragraph before the usage
/// (the refusal, what is missing, the values possible), without `error: `.
fn clap_refusal(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let said = said.join(" ");
    said.strip_prefix("error: ").unwrap_or(&said).to_owned()
}

/// `gh secret list --json name,updatedAt` names the fields after `--json`; clap would read the
/// list as a stray argument. In `secret list` (`ls`), a word after a `--json` made only of such
/// field names is taken out of the arguments and returned. Elsewhere nothing is taken: a word
/// after `--json` there is the command's own (`secret get --json name` reads secret NAME).
fn json_fields(mut args: Vec<OsString>) -> (Vec<OsString>, Option<Vec<String>>) {
    let Some(listing) = args
        .windows(2)
        .position(|w| w[0] == "secret" && (w[1] == "list" || w[1] == "ls"))
    else {
        return (args, None);
    };
    let fields_after = |at: usize, args: &[OsString]| -> Option<Vec<String>> {
        let fields: Vec<String> = args
            .get(at + 1)?
            .to_str()?
            .split(',')
            .map(str::to_owned)
            .collect();
        fields
            .iter()
            .all(|f| LIST_FIELDS.contains(&f.as_str()) || GH_ONLY_FIELDS.contains(&f.as_str()))
            .then_some(fields)
    };
    let mut found = None;
    let mut at = listing + 2;
    while at < args.len() {
        if args[at] == "--" {
            break;
        }
        if args[at] == "--json" {
            if let Some(fields) = fields_after(at, &args) {
                args.remove(at + 1);
                found = Some(fields);
            }
        }
        at += 1;
    }
    (args, found)
}

/// The fields of `secret list --json`, as gh names them.
const LIST_FIELDS: [&str; 5] = ["name", "createdAt", "updatedAt", "visibility", "scope"];
/// Fields of gh's that the GitHub Service cannot tell.
const GH_ONLY_FIELDS: [&str; 2] = ["numSelectedRepos", "selectedReposURL"];

pub(super) enum Failure {
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

async fn run(cli: Cli, fields: Option<Vec<String>>) -> Result<Exit, Failure> {
    let listing = matches!(
        cli.command,
        Command::Secret {
            action: SecretCommand::List { .. }
        }
    );
    if fields.is_some() && !listing {
        return Err(InputError(
            "a field list after --json is for `secret list` (as gh's); other commands print their whole JSON document".into(),
        )
        .into());
    }
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        completions::write(shell, &mut command, &mut std::io::stdout().lock())
            .map_err(|e| InputError(format!("cannot write the completion script: {e}")))?;
        return Ok(Exit::Success);
    }
    if let Command::Mcp { pat } = &cli.command {
        return mcp::serve(&cli.connection, pat).await;
    }
    let client = connect(&cli.connection)?;
    let out = Output {
        json: cli.json,
        flags: !matches!(cli.command, Command::Run { .. }),
    };
    match cli.command {
        Command::Completions { .. } | Command::Mcp { .. } => {
            unreachable!("answered before connecting")
        }
        Command::PublicKey => {
            let key = client.public_key().await?;
            if out.json {
                out.print_json(&json!({ "public_key": key.to_hex(), "algorithm": "NaCl/Curve25519/SealedBox" }));
            } else {
                println!("{}", key.to_hex());
            }
            Ok(Exit::Success)
        }
        Command::Seal {
            file,
            public_key,
            keep_newline,
            allow_empty,
        } => {
            // The value as `secret set` would write it: stdin less its trailing newlines.
            let value = match &file {
                Some(path) => read_file(path)?,
                None => read_secret_stdin("the value", keep_newline)?,
            };
            if value.expose().is_empty() && !allow_empty {
                return Err(InputError(
                    "the value is empty; pass --allow-empty to seal an empty value".into(),
                )
                .into());
            }
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
        Command::Auth {
            action: AuthCommand::Status { target, pat },
        } => auth::status(&client, out, &target, &pat).await,
        Command::Secret { action } => secret(&client, out, action, fields).await,
        Command::Preflight { dir, repo, pat } => {
            let target = TargetArgs {
                repo,
                environment: None,
                org: None,
            };
            let repository = resolve_in(&target, &dir)?;
            preflight::preflight(&client, out, &dir, repository, &pat).await
        }
        Command::Ui {
            dir,
            repo,
            no_open,
            pat,
        } => {
            let target = TargetArgs {
                repo,
                environment: None,
                org: None,
            };
            let repository = resolve_in(&target, &dir)?;
            ui::serve(&client, out, &dir, repository, &pat, !no_open).await
        }
        Command::Presence {
            require,
            target,
            pat,
        } => {
            let target = resolve(&target)?;
            for name in &require {
                let name = PresenceName::try_from(name.as_str())
                    .map_err(|e| InputError(format!("a --require name {e}")))?;
                if let Some(note) = name.stored_otherwise() {
                    out.note(&note);
                }
            }
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
            force,
            prune,
            yes,
            concurrency,
            on_error,
            deadline,
            writes_per_minute,
            writes_per_hour,
            pat,
        } => {
            let target = resolve(&target)?;
            let options = write.options(&target)?;
            let settings = apply::Settings {
                allow_empty,
                dry_run,
                workflow: WorkflowOptions {
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
                    force: force.then_some(true),
                    prune: None,
                },
                writes_per_minute,
                writes_per_hour,
                prune: prune.then_some(yes),
            };
            apply::apply(&client, out, &pat, &file, (target, options), settings).await
        }
        Command::Status { target, pat } => {
            history::status(&client, out, &resolve(&target)?, &pat).await
        }
        Command::History {
            show: Some(HistoryCommand::Show { id, pat }),
            ..
        } => history::show(&client, out, &id, &pat).await,
        Command::History {
            show: None,
            target,
            limit,
            pat,
        } => history::list(&client, out, &resolve(&target)?, limit, &pat).await,
        Command::Run {
            workflow,
            plan,
            pat,
        } => {
            if workflow.as_os_str() == "-" && pat.pat_stdin {
                return Err(InputError(
                    "the workflow and the PAT cannot both come from stdin: use --pat-env".into(),
                )
                .into());
            }
            let text = read_file(&workflow)?;
            let mut document: Value = serde_json::from_str(text.expose()).map_err(|e| {
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

/// `secret …`; `fields`: the field list of `secret list --json` (gh's), when given.
async fn secret(
    client: &DeployClient,
    out: Output,
    action: SecretCommand,
    fields: Option<Vec<String>>,
) -> Result<Exit, Failure> {
    match action {
        SecretCommand::Set {
            name,
            body,
            value_file,
            value_env,
            env_file,
            keep_newline,
            allow_empty,
            target,
            write,
            pat,
        } => {
            let target = resolve(&target)?;
            let options = write.options(&target)?;
            let from_stdin = body.is_none() && value_file.is_none() && value_env.is_none();
            if pat.pat_stdin && (from_stdin || env_file.as_deref() == Some(Path::new("-"))) {
                return Err(InputError("the PAT and the value cannot both come from stdin: use --body, --value-file, --value-env or --env-file FILE for the value, or --pat-env for the PAT".into()).into());
            }
            if let Some(file) = env_file {
                let settings = apply::Settings {
                    allow_empty,
                    dry_run: false,
                    workflow: WorkflowOptions::default(),
                    writes_per_minute: pacing::WRITES_PER_MINUTE,
                    writes_per_hour: pacing::WRITES_PER_HOUR,
                    prune: None,
                };
                return apply::apply(client, out, &pat, &file, (target, options), settings).await;
            }
            let name = name.expect("clap requires NAME without --env-file");
            let name = check_name(&name, out)?;
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
                _ => read_secret_stdin(&format!("value of {name}"), keep_newline)?,
            };
            if value.expose().is_empty() && !allow_empty {
                return Err(InputError(format!(
                    "the value of {name} is empty; pass --allow-empty to write an empty secret"
                ))
                .into());
            }
            if value.expose().ends_with('\n') && value.expose().matches('\n').count() == 1 {
                out.note("the value ends with a newline, which is kept as part of the secret");
            }
            let mut session = Session::open(client, &pat, None).await?;
            let stored = SecretName::try_from(name.as_str()).expect("checked above");
            let options = crate::api::WriteOptions {
                fingerprint: Some(session.fingerprints.of(&stored, &value)),
                ..options
            };
            let envelope = session
                .resealing(async |c, s| {
                    c.create(&s.pat, &target, &name, &value.seal_to(&s.key), &options)
                        .await
                })
                .await?;
            let exit = out.envelope(
                &envelope,
                |_| Exit::Success,
                |data| {
                    if let (true, Target::Environment { owner, repo, environment }) =
                        (data.env_fallback, &target)
                    {
                        println!("wrote {name} to {owner}/{repo} as a repository secret: environment '{environment}' does not exist (--env-fallback)");
                    } else {
                        println!("wrote {name} to {target} ({} secret)", scope_words(data.scope));
                    }
                },
            );
            suggest_env_fallback(out, &target, envelope.error_type);
            Ok(exit)
        }
        SecretCommand::List { target, pat } => {
            let target = resolve(&target)?;
            let fields = fields.unwrap_or_else(|| LIST_FIELDS.map(str::to_owned).to_vec());
            if let Some(unknown) = fields.iter().find(|f| GH_ONLY_FIELDS.contains(&f.as_str())) {
                return Err(InputError(format!(
                    "--json field {unknown} is not available: the GitHub Service cannot read back which repositories an organisation secret is visible to; the fields are {}",
                    LIST_FIELDS.join(", ")
                ))
                .into());
            }
            let mut session = Session::open(client, &pat, None).await?;
            let envelope = session
                .resealing(async |c, s| c.list(&s.pat, &target).await)
                .await?;
            let cut = envelope.data.as_ref().is_some_and(|d| d.may_be_incomplete);
            if cut {
                out.note(&format!(
                    "this is GitHub's first page of {target}'s secrets, the most the GitHub Service reads: there may be more; `secret exists NAME` and `presence --require NAMES` check names exactly"
                ));
            }
            if let (true, Some(data)) = (out.json, &envelope.data) {
                // As `gh secret list --json name,createdAt,updatedAt,visibility`, plus the scope.
                let listed: Vec<Value> = data
                    .secrets
                    .iter()
                    .map(|s| {
                        let field = |name: &str| match name {
                            "name" => json!(s.name),
                            "createdAt" => json!(s.created_at),
                            "updatedAt" => json!(s.updated_at),
                            "visibility" => json!(s.visibility.map(|v| v.as_str())),
                            _ => json!(data.scope),
                        };
                        Value::Object(fields.iter().map(|f| (f.clone(), field(f))).collect())
                    })
                    .collect();
                out.print_json(&listed);
                return Ok(Exit::Success);
            }
            Ok(out.envelope(
                &envelope,
                |_| Exit::Success,
                |data| {
                    let width = data.secrets.iter().map(|s| s.name.as_str().len()).max();
                    for s in &data.secrets {
                        println!(
                            "{:<width$} updated {}",
                            s.name,
                            s.updated_at.as_deref().unwrap_or("?"),
                            width = width.unwrap_or(0)
                        );
                    }
                    let more = if data.may_be_incomplete {
                        " (the first page: there may be more)"
                    } else {
                        ""
                    };
                    eprintln!("{} secret(s) in {target}{more}", data.secrets.len());
                },
            ))
        }
        SecretCommand::Get { name, target, pat } => {
            let target = resolve(&target)?;
            let name = check_name(&name, out)?;
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
            let target = resolve(&target)?;
            let name = check_name(&name, out)?;
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
            let target = resolve(&target)?;
            let name = check_name(&name, out)?;
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

/// The target of the flags; says where the repository came from when it was not `--repo`.
fn resolve(args: &TargetArgs) -> Result<Target, InputError> {
    resolve_in(args, Path::new("."))
}

fn resolve_in(args: &TargetArgs, dir: &Path) -> Result<Target, InputError> {
    let (target, note) = args.resolve_in(dir)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(target)
}

/// `repository`, `environment`, `organisation`.
fn scope_words(scope: mgraph_deploy_api::Scope) -> &'static str {
    match scope {
        mgraph_deploy_api::Scope::Repo => "repository",
        mgraph_deploy_api::Scope::Environment => "environment",
        mgraph_deploy_api::Scope::Org => "organisation",
    }
}

/// After a write to an environment answered `not_found`: the flag that writes the repository
/// secret instead.
fn suggest_env_fallback(out: Output, target: &Target, error: Option<ErrorType>) {
    if matches!(target, Target::Environment { .. }) && error == Some(ErrorType::NotFound) {
        out.note("if the environment does not exist, create it in the repository's settings, or pass --env-fallback to write repository secrets instead");
    }
}

/// A secret NAME as GitHub takes it, checked before anything is read or sent: the name as GitHub
/// stores it (upper case), with a note when it was given otherwise.
fn check_name(name: &str, out: Output) -> Result<String, InputError> {
    let name = SecretName::try_from(name).map_err(|e| InputError(format!("NAME {e}")))?;
    if let Some(note) = name.stored_otherwise() {
        out.note(&note);
    }
    Ok(name.as_str().to_owned())
}

/// A blob this machine sealed, as the request type; a refusal would be a sealing bug.
fn sealed_pat(sealed: &Sealed) -> Result<SealedPat, ClientError> {
    valid("sealed PAT", sealed.expose())
}

fn sealed_value(sealed: &Sealed) -> Result<SealedValue, ClientError> {
    valid("sealed value", sealed.expose())
}
