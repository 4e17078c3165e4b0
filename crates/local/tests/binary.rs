//! The `mgraph-deploy-local` binary as a user runs it: its banner, its API key from the
//! environment, and a graceful stop on SIGTERM and Ctrl-C with an `/execute` in flight.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

use mgraph_deploy_emulator::PatKind;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mgraph-deploy-local");

struct Stack {
    child: Child,
    banner: String,
    stderr: BufReader<ChildStderr>,
    _stdout: BufReader<ChildStdout>,
}

/// Starts the binary on free ports and reads its banner (up to the line saying how to stop it).
fn start(env: &[(&str, &str)], args: &[&str]) -> Stack {
    let mut child = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Ctrl-C stops both") {
        let read = stdout.read_line(&mut banner).unwrap();
        assert!(read > 0, "the stack exited before its banner: {banner}");
    }
    let stderr = BufReader::new(child.stderr.take().unwrap());
    Stack {
        child,
        banner,
        stderr,
        _stdout: stdout,
    }
}

/// The value after `label` on its banner line.
fn field<'b>(banner: &'b str, label: &str) -> &'b str {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {banner}"))
        .trim()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

impl Stack {
    /// Reads stderr until a line contains `text`; returns everything read.
    fn wait_for_log(&mut self, text: &str) -> String {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let read = self.stderr.read_line(&mut line).unwrap();
            assert!(
                read > 0,
                "the stack's stderr ended before {text:?}:\n{seen}"
            );
            seen.push_str(&line);
            if line.contains(text) {
                return seen;
            }
        }
    }
}

/// A three-step workflow of writes, one at a time (each slowed by the emulator's latency).
fn slow_workflow(stack: &Stack) -> std::thread::JoinHandle<(u16, Value)> {
    let service = field(&stack.banner, "Deploy Service").to_owned();
    let (name, value) = field(&stack.banner, "API key").split_once(": ").unwrap();
    let (name, value) = (name.to_owned(), value.to_owned());
    let key_hex = field(&stack.banner, "GitHub Service")
        .split("public key ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_owned();
    std::thread::spawn(move || {
        let key = mgraph_deploy_client::PublicKey::from_hex(&key_hex).unwrap();
        let seal = |text: &str| key.seal(text.as_bytes()).expose().to_owned();
        let operations: Vec<Value> = (1..=3)
            .map(|i| json!({ "type": "github:secrets:create", "secret_name": format!("SLOW_{i}"), "encrypted_value": seal("v") }))
            .collect();
        let body = json!({
            "credentials": { "github_pat": seal(&PatKind::Admin.token()) },
            "target": { "owner": "local-owner", "repo": "local-repo" },
            "options": { "concurrency": 1 },
            "operations": operations,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("{service}/execute"))
                .header(name, value)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    })
}

#[test]
fn the_banner_prints_the_emulator_key_and_every_pat_and_a_set_api_key_is_kept() {
    let mut stack = start(
        &[
            ("FAST_API__AUTH__API_KEY__NAME", "x-my-key"),
            ("FAST_API__AUTH__API_KEY__VALUE", "kept-across-restarts"),
        ],
        &[],
    );
    assert_eq!(
        field(&stack.banner, "API key"),
        "x-my-key: kept-across-restarts"
    );
    let emulator_key = field(&stack.banner, "its API key");
    assert!(emulator_key.starts_with("x-github-service-key: "));
    // How to read back a stored value: the emulator's test aid, with its key.
    let read_back = stack
        .banner
        .lines()
        .find(|l| l.contains("/emulator/stored-value?owner=local-owner&repo=local-repo&name="))
        .unwrap_or_else(|| panic!("{}", stack.banner));
    assert!(read_back.contains(emulator_key), "{read_back}");
    for kind in PatKind::ALL {
        assert!(
            stack.banner.contains(&kind.token()),
            "{}: {}",
            kind.name(),
            stack.banner
        );
    }
    signal(&stack.child, "-TERM");
    assert!(stack.child.wait().unwrap().success());

    let half = Command::new(BIN)
        .env_clear()
        .env("FAST_API__AUTH__API_KEY__NAME", "x-my-key")
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("FAST_API__AUTH__API_KEY__VALUE"));
}

#[test]
fn sigterm_and_ctrl_c_let_a_running_execute_finish_and_say_so() {
    for name in ["-TERM", "-INT"] {
        let mut stack = start(&[], &["--emulator-latency-ms", "400"]);
        let workflow = slow_workflow(&stack);
        // The first step's log line: the second is now waiting on the emulator.
        stack.wait_for_log("workflow step");
        signal(&stack.child, name);
        let said = stack.wait_for_log("stopped");
        assert!(said.contains("requests in flight"), "{name}: {said}");
        let (status, report) = workflow.join().unwrap();
        assert_eq!(status, 200, "{name}: {report}");
        assert_eq!(report["completed"], 3, "{name}: {report}");
        assert!(stack.child.wait().unwrap().success(), "{name}");
    }
}
