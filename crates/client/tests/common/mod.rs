//! The CLI binary run as a user would: a clean environment, the offline stack, its exit code and
//! what it printed. Shared by the CLI's test files.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::Stdio;

use mgraph_deploy_emulator::PatKind;
use mgraph_deploy_local::{LocalStack, StackOptions};
use tokio::io::AsyncWriteExt;

pub const CLI: &str = env!("CARGO_BIN_EXE_mgraph-deploy-cli");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the CLI with a clean environment: only the variables given here.
pub async fn cli(
    stack: &LocalStack,
    pat: Option<PatKind>,
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    cli_in(stack, pat, args, stdin, &[], None).await
}

/// [`cli`] with more variables, and in `dir` when given. `PATH` is kept so that `git` is found.
pub async fn cli_in(
    stack: &LocalStack,
    pat: Option<PatKind>,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
    dir: Option<&Path>,
) -> Run {
    let mut command = tokio::process::Command::new(CLI);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DEPLOY_SERVICE__URL", &stack.service_url)
        .env("DEPLOY_SERVICE__API_KEY__NAME", &stack.api_key.name)
        .env("DEPLOY_SERVICE__API_KEY__VALUE", &stack.api_key.value)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(kind) = pat {
        command.env("GIT_HUB__ACCESS_TOKEN", kind.token());
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The repository every test writes to unless it says otherwise.
pub const REPO: &str = "local-owner/local-repo";

/// The offline stack: the service and the GitHub Service emulator on loopback.
pub async fn stack() -> LocalStack {
    LocalStack::start(StackOptions::default()).await.unwrap()
}

/// Writes `text` to `dir/name`; its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}
