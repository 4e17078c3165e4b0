//! `mgraph-deploy-cli`: seals locally, drives the Deploy Service, reports for people or (with
//! `--json`) for machines. Exit codes: 0 success, 1 an operation failed, 2 invalid input,
//! 3 service unreachable or not authorised. Plaintext never reaches the service, a log, an error
//! or `--json` output; sealed blobs are printed only by `seal`, whose job that is.

mod args;
mod output;
mod session;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use mgraph_deploy_api::{
    Credentials, OnError, SealedPat, SealedValue, SecretName, WorkflowBody, WorkflowOperation,
    WorkflowOptions,
};

use crate::api::{ApiKey, ClientError, DeployClient, valid};
use crate::seal::{Plaintext, PublicKey, Sealed};
use crate::values::{NamedValue, read_values};

pub use args::Cli;
use args::{Command, Connection, SecretCommand};
use output::{Output, scope_word};
use session::{Session, has_decryption_failure, read_file, read_stdin};

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
