//! Converge, don't rewrite, measured: `mgraph-deploy-cli apply` of a 100-value file against the
//! offline stack (the service with its SQLite store, the GitHub Service emulator answering every
//! call after 100 ms), four times in a row: the first apply, the same file again, the file with
//! one value changed, and the same file with `--force` (what a rewrite-all tool does). Prints
//! GitHub writes (the GitHub Service's create calls) and wall time for each. The CLI's pacing to
//! GitHub's secondary limits is lifted (`--writes-per-minute`, `--writes-per-hour`) so that wall
//! time is the work, not the wait: at GitHub's 80 writes a minute, 100 writes also wait about
//! 15 s for room, and 1,000 (ten such repositories) over an hour.
//!
//! Run with `cargo bench -p mgraph-deploy-client --bench converge`.

use std::time::{Duration, Instant};

use mgraph_deploy_emulator::PatKind;
use mgraph_deploy_local::{LocalStack, StackOptions};

const VALUES: usize = 100;
const LATENCY: Duration = Duration::from_millis(100);
const CLI: &str = env!("CARGO_BIN_EXE_mgraph-deploy-cli");

fn writes(stack: &LocalStack) -> usize {
    stack
        .emulator
        .requests()
        .iter()
        .filter(|r| r.ends_with("/create"))
        .count()
}

fn file(changed: Option<usize>) -> String {
    (0..VALUES)
        .map(|i| {
            let value = if Some(i) == changed {
                format!("changed-{i}")
            } else {
                format!("value-{i}-{}", "x".repeat(40))
            };
            format!("SECRET_{i:03}={value}\n")
        })
        .collect()
}

/// Runs one apply; its wall time, and the writes it made.
fn apply(stack: &LocalStack, path: &std::path::Path, extra: &[&str]) -> (Duration, usize) {
    let before = writes(stack);
    let started = Instant::now();
    let output = std::process::Command::new(CLI)
        .env_clear()
        .env("DEPLOY_SERVICE__URL", &stack.service_url)
        .env("DEPLOY_SERVICE__API_KEY__NAME", &stack.api_key.name)
        .env("DEPLOY_SERVICE__API_KEY__VALUE", &stack.api_key.value)
        .env("GIT_HUB__ACCESS_TOKEN", PatKind::Admin.token())
        .args(["apply", "-f"])
        .arg(path)
        .args([
            "-R",
            "local-owner/local-repo",
            "--writes-per-minute",
            "10000",
            "--writes-per-hour",
            "100000",
        ])
        .args(extra)
        .output()
        .expect("the CLI runs");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (took, writes(stack) - before)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = runtime
        .block_on(LocalStack::start(StackOptions::default()))
        .unwrap();
    stack.emulator.set_latency(LATENCY);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.env");

    println!(
        "apply of {VALUES} values, every upstream call answered after {} ms\n",
        LATENCY.as_millis()
    );
    println!("{:<44} {:>14} {:>10}", "run", "GitHub writes", "wall");
    let row = |name: &str, changed: Option<usize>, extra: &[&str]| {
        std::fs::write(&path, file(changed)).unwrap();
        let (took, writes) = apply(&stack, &path, extra);
        println!("{name:<44} {writes:>14} {:>9.2}s", took.as_secs_f64());
    };
    row("first apply", None, &[]);
    row("the same file again", None, &[]);
    row("one value changed", Some(42), &[]);
    row(
        "the same file, --force (rewrite-all)",
        Some(42),
        &["--force"],
    );
}
