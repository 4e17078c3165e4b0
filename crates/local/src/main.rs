//! `mgraph-deploy-local`: the Deploy Service and the GitHub Service emulator on loopback, offline,
//! with fresh keys; prints the URLs, the API keys, the emulated PATs and a ready-to-paste CLI
//! command. Ctrl-C or SIGTERM stops it after the requests in flight have finished.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mgraph_deploy::config::{LogFormat, VAR_API_KEY_NAME, VAR_API_KEY_VALUE};
use mgraph_deploy_emulator::{ApiKey, PatKind, seed};
use mgraph_deploy_local::{LocalStack, StackOptions, StackStore};

/// Runs the Deploy Service against an in-memory GitHub Service emulator. Nothing leaves this
/// machine: no network, no credentials. The service's API key is FAST_API__AUTH__API_KEY__NAME
/// and __VALUE when both are set (so a restart keeps it), else a fresh random one.
#[derive(Debug, Parser)]
#[command(version = env!("MGRAPH_DEPLOY_VERSION"))]
struct Args {
    /// Address of the Deploy Service.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the GitHub Service emulator (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    emulator_listen: SocketAddr,
    /// Log filter for the service's request log (RUST_LOG syntax).
    #[arg(long, default_value = "info")]
    log: String,
    /// Delay every emulated GitHub Service answer by this many milliseconds (to watch progress,
    /// retries and deadlines at a human pace).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    emulator_latency_ms: u64,
    /// Keep the service's history in this SQLite file (created when missing) instead of a
    /// temporary one removed when the stack stops.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    for addr in [args.listen, args.emulator_listen] {
        if !addr.ip().is_loopback() {
            eprintln!(
                "mgraph-deploy-local: {addr} is not a loopback address; the local stack only listens on loopback"
            );
            return ExitCode::from(2);
        }
    }
    if let Err(e) = mgraph_deploy::config::check_log_filter(&args.log) {
        eprintln!("mgraph-deploy-local: --log is not a log filter: {e}");
        return ExitCode::from(2);
    }
    let api_key = match api_key_from_env() {
        Ok(key) => key,
        Err(message) => {
            eprintln!("mgraph-deploy-local: {message}");
            return ExitCode::from(2);
        }
    };
    mgraph_deploy::telemetry::init(LogFormat::Pretty, &args.log);
    let stack = match LocalStack::start(StackOptions {
        service_listen: args.listen,
        emulator_listen: args.emulator_listen,
        service_env: Vec::new(),
        api_key,
        store: args.store.map_or(StackStore::Temporary, StackStore::At),
    })
    .await
    {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("mgraph-deploy-local: {e} (choose another address with --listen)");
            return ExitCode::FAILURE;
        }
    };
    stack
        .emulator
        .set_latency(Duration::from_millis(args.emulator_latency_ms));
    let stopped = match mgraph_deploy::runtime::stop_signal() {
        Ok(stopped) => stopped,
        Err(e) => {
            eprintln!("mgraph-deploy-local: cannot handle Ctrl-C and SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Not println!: a closed stdout (a pipe whose reader left) must not stop the stack.
    let _ = writeln!(std::io::stdout(), "{}", banner(&stack));
    let signal = stopped.await;
    eprintln!(
        "mgraph-deploy-local: {signal}: stopping; requests in flight (a running /execute included) finish first (Ctrl-C again to quit at once)"
    );
    tokio::select! {
        () = stack.stop() => eprintln!("mgraph-deploy-local: stopped"),
        _ = tokio::signal::ctrl_c() => {
            eprintln!("mgraph-deploy-local: quit with requests still in flight");
            return ExitCode::from(130);
        }
    }
    ExitCode::SUCCESS
}

/// The service's API key from `FAST_API__AUTH__API_KEY__NAME` and `__VALUE`: both, or neither.
fn api_key_from_env() -> Result<Option<ApiKey>, String> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get(VAR_API_KEY_NAME), get(VAR_API_KEY_VALUE)) {
        (Some(name), Some(value)) => Ok(Some(ApiKey { name, value })),
        (None, None) => Ok(None),
        _ => Err(format!(
            "set both {VAR_API_KEY_NAME} and {VAR_API_KEY_VALUE}, or neither (a fresh key is made)"
        )),
    }
}

fn banner(stack: &LocalStack) -> String {
    let admin = PatKind::Admin.token();
    let key = &stack.api_key;
    let owner = seed::OWNER;
    let repo = seed::REPO;
    let emulator_key = stack
        .emulator
        .api_key()
        .map_or_else(|| "none".to_owned(), |k| format!("{}: {}", k.name, k.value));
    let pats: String = PatKind::ALL
        .iter()
        .map(|kind| format!("\n    {:<13} {}", kind.name(), kind.token()))
        .collect();
    format!(
        "\
MGraph-AI Deploy Service: offline local stack (an emulated GitHub Service; nothing leaves this machine)

  Deploy Service   {service}
  API key          {name}: {value}
  GitHub Service   {emulator}  (emulator, public key {public_key})
  its API key      {emulator_key}
  Repositories     {owner}/{repo} (environment: {env}), {owner}/{other}
  Organisation     {org}
  History          {store}
  GitHub PATs      (emulated; each behaves as its name says){pats}

Create six secrets with the CLI, in another terminal from the project directory:

  export DEPLOY_SERVICE__URL={service}
  export DEPLOY_SERVICE__API_KEY__NAME={name}
  export DEPLOY_SERVICE__API_KEY__VALUE={value}
  export GIT_HUB__ACCESS_TOKEN={admin}
  cargo run -q -p mgraph-deploy-client -- apply -f examples/bootstrap.env --repo {owner}/{repo}
  cargo run -q -p mgraph-deploy-client -- secret list --repo {owner}/{repo}
  cargo run -q -p mgraph-deploy-client -- history --repo {owner}/{repo}

Or with curl:  curl -H '{name}: {value}' {service}/public-keys/github

To read back a value the emulator stored (its test aid; the real GitHub Service never shows one):
  curl -H '{emulator_key}' '{emulator}{stored_value}?owner={owner}&repo={repo}&name=AWS_ACCOUNT_ID'

Ctrl-C stops both, after the requests in flight. To keep this API key across restarts:
  export {key_name_var}={name} {key_value_var}={value}",
        service = stack.service_url,
        store = stack.store,
        name = key.name,
        value = key.value,
        emulator = stack.emulator.url(),
        public_key = stack.emulator.public_key_hex(),
        stored_value = mgraph_deploy_emulator::STORED_VALUE,
        env = seed::ENVIRONMENT,
        other = seed::OTHER_REPO,
        org = seed::ORG,
        key_name_var = VAR_API_KEY_NAME,
        key_value_var = VAR_API_KEY_VALUE,
    )
}
