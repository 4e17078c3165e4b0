//! The service binary in Lambda mode behind `cargo lambda watch --only-lambda-apis`, the Rust
//! Lambda ecosystem's own local emulator, whose function-URL endpoint turns plain HTTP into a
//! Lambda event: health, the public key, and a CLI `secret set` that reaches the GitHub Service
//! emulator and is stored intact.
//!
//! It needs two programs Cargo does not build, so plain `cargo test` skips it (`#[ignore]`);
//! `deploy/lambda-check.sh`, in `.ci/run`, runs it with
//! - `MGRAPH_DEPLOY_CARGO_LAMBDA`: the pinned `cargo-lambda` of `deploy/requirements.txt`;
//! - `MGRAPH_DEPLOY_LAMBDA_BINARY`: the service binary to drive (the zip's `bootstrap`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mgraph_deploy_emulator::{Emulator, PatKind, Scope, seed};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const CLI: &str = env!("CARGO_BIN_EXE_mgraph-deploy-cli");
const API_KEY_NAME: &str = "x-api-key";
const API_KEY_VALUE: &str = "lambda-watch-test-key";
/// The function `cargo lambda watch --only-lambda-apis` serves when none is named.
const FUNCTION: &str = "_";
/// Upper bound for any one step; a hang fails the test instead of stalling CI.
const STEP: Duration = Duration::from_secs(60);

fn program(variable: &str) -> PathBuf {
    let path = std::env::var_os(variable).unwrap_or_else(|| {
        panic!("{variable} is not set: run this test through deploy/lambda-check.sh (see the module doc)")
    });
    PathBuf::from(path)
}

/// Everything a child process writes to stdout and stderr, kept for assertions and failures.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    fn collect(&self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let text = self.0.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// `cargo lambda watch --only-lambda-apis` on a free loopback port.
struct Watch {
    _process: Child,
    port: u16,
    output: Output,
}

impl Watch {
    /// cargo-lambda cannot pick a port itself (`-P 0` means 9000), so it gets one just freed. If
    /// another process took that port in between, cargo-lambda exits 0 right after printing that
    /// it started, and the first request fails with both processes' output.
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let mut process = Command::new(program("MGRAPH_DEPLOY_CARGO_LAMBDA"))
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            // It reads the workspace's Cargo metadata, so it runs at the workspace root.
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cargo-lambda starts");
        let output = Output::default();
        output.collect(process.stderr.take().unwrap());
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        let started = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                printed.push_str(&line);
                printed.push('\n');
                if line.contains("starting Runtime server") {
                    return true;
                }
            }
            false
        })
        .await
        .expect("cargo lambda watch says it started, or exits");
        assert!(
            started,
            "cargo lambda watch exited:\n{printed}{}",
            output.text()
        );
        output.collect(lines.into_inner());
        Self {
            _process: process,
            port,
            output,
        }
    }

    /// The function URL base of the default function: what a user would give the CLI.
    fn function_url(&self) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{FUNCTION}", self.port)
    }

    fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }
}

/// The service binary in Lambda mode, polling cargo-lambda's Runtime API.
struct Function {
    _process: Child,
    output: Output,
}

impl Function {
    fn start(watch: &Watch, emulator: &Emulator) -> Self {
        let upstream_key = emulator.api_key().expect("the emulator has an API key");
        let mut process = Command::new(program("MGRAPH_DEPLOY_LAMBDA_BINARY"))
            .env_clear()
            // What cargo lambda watch prints as the variables the function needs.
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("AWS_LAMBDA_RUNTIME_API", watch.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("URL__TARGET_SERVER__GITHUB_SERVICE", emulator.url())
            .env(
                "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME",
                &upstream_key.name,
            )
            .env(
                "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE",
                &upstream_key.value,
            )
            .env("FAST_API__AUTH__API_KEY__NAME", API_KEY_NAME)
            .env("FAST_API__AUTH__API_KEY__VALUE", API_KEY_VALUE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the service binary starts");
        let output = Output::default();
        output.collect(process.stdout.take().unwrap());
        output.collect(process.stderr.take().unwrap());
        Self {
            _process: process,
            output,
        }
    }
}

async fn get(url: &str, api_key: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url).timeout(STEP);
    if api_key {
        request = request.header(API_KEY_NAME, API_KEY_VALUE);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("GET {url}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, body)
}

#[tokio::test]
#[ignore = "needs cargo-lambda and the service binary: deploy/lambda-check.sh runs it"]
async fn behind_cargo_lambda_watch_health_the_public_key_and_a_cli_create_reach_the_emulator() {
    let emulator = Emulator::start().await.unwrap();
    let watch = Watch::start().await;
    let function = Function::start(&watch, &emulator);
    let base = watch.function_url();
    let logs = || {
        format!(
            "service:\n{}\ncargo lambda watch:\n{}",
            function.output.text(),
            watch.output.text()
        )
    };

    let (status, health) = get(&format!("{base}/info/health"), false).await;
    assert_eq!(
        (status, &health),
        (200, &serde_json::json!({"status": "ok"})),
        "{}",
        logs()
    );

    let (status, key) = get(&format!("{base}/public-keys/github"), true).await;
    assert_eq!(status, 200, "{key}\n{}", logs());
    assert_eq!(
        key["public_key"],
        emulator.public_key_hex().as_str(),
        "{key}"
    );

    // The CLI seals the value and the PAT locally and posts them through the function URL.
    let value = "sealed on this machine, opened only by the GitHub Service";
    let mut cli = Command::new(CLI)
        .env_clear()
        .env("DEPLOY_SERVICE__URL", &base)
        .env("DEPLOY_SERVICE__API_KEY__NAME", API_KEY_NAME)
        .env("DEPLOY_SERVICE__API_KEY__VALUE", API_KEY_VALUE)
        .env("GIT_HUB__ACCESS_TOKEN", PatKind::Admin.token())
        .args(["secret", "set", "LAMBDA_WATCH_SECRET", "--repo"])
        .arg(format!("{}/{}", seed::OWNER, seed::REPO))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cli.stdin.take().unwrap();
    stdin.write_all(value.as_bytes()).await.unwrap();
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    cli.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    cli.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    let code = tokio::time::timeout(STEP, cli.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(code.success(), "{code}\n{out}\n{err}\n{}", logs());

    let stored = emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "LAMBDA_WATCH_SECRET")
        .unwrap_or_else(|| panic!("the secret reached the emulator\n{}", logs()));
    assert_eq!(stored.plaintext, value);
    assert!(
        emulator
            .requests()
            .iter()
            .any(|r| r.starts_with("POST ") && r.contains("secret")),
        "{:?}",
        emulator.requests()
    );

    // cargo lambda watch sends a duration as the deadline: the service says so once, and
    // uses its own budget for every invocation.
    let service_log = function.output.text();
    assert_eq!(
        service_log
            .matches("cannot be a Lambda invocation deadline")
            .count(),
        1,
        "{}",
        logs()
    );
    assert!(!service_log.contains(value) && !service_log.contains(&PatKind::Admin.token()));
}
