//! `mgraph-deploy-local`: the Deploy Service and the GitHub Service emulator on loopback, offline,
//! with fresh keys; prints the URLs, the API key and a ready-to-paste CLI command. Ctrl-C stops it.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mgraph_deploy::config::LogFormat;
use mgraph_deploy_emulator::{PatKind, seed};
use mgraph_deploy_local::{LocalStack, StackOptions};

/// Runs the Deploy Service against an in-memory GitHub Service emulator. Nothing leaves this
/// machine: no network, no credentials.
#[derive(Debug, Parser)]
#[command(version)]
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
    mgraph_deploy::telemetry::init(LogFormat::Pretty, &args.log);
    let stack = match LocalStack::start(StackOptions {
        service_listen: args.listen,
        emulator_listen: args.emulator_listen,
        service_env: Vec::new(),
    })
    .await
    {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("mgraph-deploy-local: {e} (choose another address with --listen)");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", banner(&stack));
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("mgraph-deploy-local: stopping");
    ExitCode::SUCCESS
}

fn banner(stack: &LocalStack) -> String {
    let admin = PatKind::Admin.token();
    let key = &stack.api_key;
    let owner = seed::OWNER;
    let repo = seed::REPO;
    format!(
        "\
MGraph-AI Deploy Service: offline local stack (an emulated GitHub Service; nothing leaves this machine)

  Deploy Service   {service}
  API key          {name}: {value}
  GitHub Service   {emulator}  (emulator, public key {public_key})
  Repositories     {owner}/{repo} (environment: {env}), {owner}/{other}
  Organisation     {org}
  GitHub PAT       {admin}  (emulated admin; also ghp_emulator_<repo_write|repo_read|expired|invalid|rate_limited|no_scopes>_…)

Create six secrets with the CLI, in another terminal from the project directory:

  export DEPLOY_SERVICE__URL={service}
  export DEPLOY_SERVICE__API_KEY__NAME={name}
  export DEPLOY_SERVICE__API_KEY__VALUE={value}
  export GIT_HUB__ACCESS_TOKEN={admin}
  cargo run -q -p mgraph-deploy-client -- apply -f examples/bootstrap.env --repo {owner}/{repo}
  cargo run -q -p mgraph-deploy-client -- secret list --repo {owner}/{repo}

Or with curl:  curl -H '{name}: {value}' {service}/public-keys/github

Ctrl-C stops both.",
        service = stack.service_url,
        name = key.name,
        value = key.value,
        emulator = stack.emulator.url(),
        public_key = stack.emulator.public_key_hex(),
        env = seed::ENVIRONMENT,
        other = seed::OTHER_REPO,
        org = seed::ORG,
    )
}
