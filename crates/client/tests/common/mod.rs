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

/// A front for the service at `service_url` that passes every request on (one per connection)
/// and its answer back, unless `answer(head, body)`, told of each request, says not to: then it
/// closes the client's connection without an answer, after the service acted on the request.
/// Its URL.
async fn front(
    service_url: &str,
    answer: impl Fn(&str, &[u8]) -> bool + Send + Sync + 'static,
) -> String {
    use tokio::io::AsyncReadExt;
    let service = service_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (service, answer) = (service.clone(), answer.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut client).await else {
                    return;
                };
                let answered = answer(&head, &body);
                // One request per connection: the answer is read to its end.
                let head = format!("{head}\r\nconnection: close\r\n\r\n");
                let mut upstream = tokio::net::TcpStream::connect(&service).await.unwrap();
                upstream.write_all(head.as_bytes()).await.unwrap();
                upstream.write_all(&body).await.unwrap();
                let mut reply = Vec::new();
                let _ = upstream.read_to_end(&mut reply).await;
                if answered {
                    let _ = client.write_all(&reply).await;
                }
            });
        }
    });
    url
}

/// A front for the service at `service_url` that closes the client's connection without an
/// answer after passing on the `nth` request (from 1) to `dropped_path`: a service that died
/// mid-request, after acting on it. Its URL.
pub async fn front_dropping_after(
    service_url: &str,
    dropped_path: &'static str,
    nth: usize,
) -> String {
    let seen = std::sync::atomic::AtomicUsize::new(0);
    front(service_url, move |head, _| {
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        path != dropped_path || seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 != nth
    })
    .await
}

/// A front for the service at `service_url` that keeps every byte the client sent. Its URL, and
/// those bytes.
pub async fn front_recording(
    service_url: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = sent.clone();
    let url = front(service_url, move |head, body| {
        let mut sent = sent.lock().unwrap();
        sent.extend_from_slice(head.as_bytes());
        sent.extend_from_slice(body);
        true
    })
    .await;
    (url, recorded)
}

/// One request's head (without its blank line) and its `content-length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = bytes[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    Some((head, body))
}
