//! The real `mgraph-deploy` binary: start-up, the printed address, configuration errors, and
//! graceful shutdown. Only loopback, and port 0 so tests never collide.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mgraph-deploy");

/// The binary with a clean environment plus `vars`.
fn service(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("URL__TARGET_SERVER__GITHUB_SERVICE", "http://127.0.0.1:9")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

/// Reads the "listening on http://ADDR" line the binary prints once it is ready.
fn listening_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the binary prints its address");
    line.trim()
        .strip_prefix("mgraph-deploy listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned()
}

fn http_get(addr: &str, path: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("the service accepts connections");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn the_binary_serves_on_the_address_it_prints_and_stops_cleanly_on_sigterm() {
    let mut child = service(&[
        ("DEPLOY__LISTEN", "127.0.0.1:0"),
        ("FAST_API__AUTH__API_KEY__NAME", "x-api-key"),
        ("FAST_API__AUTH__API_KEY__VALUE", "local-key"),
    ])
    .spawn()
    .unwrap();
    let addr = listening_address(&mut child);

    let health = http_get(&addr, "/info/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#"{"status":"ok"}"#), "{health}");
    let status = http_get(&addr, "/info/status", "x-api-key: local-key\r\n");
    assert!(status.contains(r#""environment":"local""#), "{status}");
    let refused = http_get(&addr, "/info/status", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shutdown signal received"), "{stderr}");
}

#[test]
fn a_sigterm_as_soon_as_the_address_is_printed_still_stops_the_binary_cleanly() {
    for _ in 0..20 {
        let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0")])
            .spawn()
            .unwrap();
        listening_address(&mut child);
        terminate(&child);
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}

#[test]
fn the_local_binary_answers_many_kept_alive_connections_each_in_turn() {
    let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);

    // More kept-alive connections than the machine has cores, each answering several requests.
    let mut connections: Vec<TcpStream> =
        (0..7).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for round in 0..3 {
        for stream in &mut connections {
            let request = format!("GET /info/health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = [0u8; 512];
            let read = stream.read(&mut answer).unwrap();
            let answer = String::from_utf8_lossy(&answer[..read]);
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "round {round}: {answer}"
            );
            assert!(
                answer.ends_with(r#"{"status":"ok"}"#),
                "round {round}: {answer}"
            );
        }
    }
    drop(connections);

    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn a_request_s_log_line_is_written_while_the_binary_idles_not_when_it_stops() {
    let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let (lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let health = http_get(&addr, "/info/health", "x-request-id: idle-line-1\r\n");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // No other request, no signal: the worker that served it goes idle and writes its line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = logged
            .recv_timeout(left)
            .expect("the request's line is written while the binary runs");
        if line.contains("idle-line-1") {
            break line;
        }
    };
    assert!(line.contains("request completed"), "{line}");
    assert!(line.contains("route=\"/info/health\""), "{line}");

    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn without_an_api_key_the_local_binary_warns_that_it_is_open() {
    let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let status = http_get(&addr, "/info/status", "");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NO API KEY CONFIGURED"), "{stderr}");
}

#[test]
fn a_setting_the_service_no_longer_reads_is_named_in_a_warning_and_the_binary_serves() {
    let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0"), ("DEPLOY__WORKERS", "3")])
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let health = http_get(&addr, "/info/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DEPLOY__WORKERS is set but no longer read"),
        "{stderr}"
    );
}

#[test]
fn by_default_the_local_binary_keeps_its_history_under_the_users_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let mut child = service(&[
        ("DEPLOY__LISTEN", "127.0.0.1:0"),
        ("XDG_STATE_HOME", state.path().to_str().unwrap()),
    ])
    .spawn()
    .unwrap();
    let addr = listening_address(&mut child);
    let status = http_get(&addr, "/info/status", "");
    assert!(
        status.contains(r#""history":{"store":"sqlite","state":"ok"}"#),
        "{status}"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success());
    let file = state.path().join("mgraph-deploy/history.sqlite3");
    assert!(file.is_file(), "{} was not created", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }
}

#[test]
fn without_a_home_the_local_binary_keeps_no_history_and_says_why() {
    let mut child = service(&[("DEPLOY__LISTEN", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    let status = http_get(&addr, "/info/status", "");
    assert!(
        status.contains(r#""history":{"store":"none","state":"off"}"#),
        "{status}"
    );
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no history is kept") && stderr.contains("DEPLOY__STORE=sqlite:PATH"),
        "{stderr}"
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_a_message_naming_the_variable() {
    for (var, value) in [
        ("DEPLOY__UPSTREAM_TIMEOUT_SECONDS", "ten"),
        ("DEPLOY__MAX_BODY_BYTES", "0"),
        ("DEPLOY__LISTEN", "localhost"),
        ("URL__TARGET_SERVER__GITHUB_SERVICE", "github.dev.mgraph.ai"),
        ("DEPLOY__LOG_FORMAT", "xml"),
        ("RUST_LOG", "mgraph_deploy=loud"),
        ("FAST_API__AUTH__API_KEY__NAME", "x-api-key"),
        ("DEPLOY__STORE", "postgres://db/history"),
        ("DEPLOY__STORE", "sqlite:"),
        // A folder that cannot be created: /dev/null is a file.
        ("DEPLOY__STORE", "sqlite:/dev/null/history.sqlite3"),
        ("DEPLOY__HISTORY_RETENTION_DAYS", "0"),
    ] {
        let output = service(&[(var, value)]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(var)
                || (var == "FAST_API__AUTH__API_KEY__NAME"
                    && stderr.contains("FAST_API__AUTH__API_KEY__VALUE")),
            "{var}={value}: {stderr}"
        );
    }
}

#[test]
fn help_and_version_answer_without_starting_and_an_unknown_argument_is_refused() {
    let help = service(&[]).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    for var in [
        "URL__TARGET_SERVER__GITHUB_SERVICE",
        "FAST_API__AUTH__API_KEY__VALUE",
        "RUST_LOG",
    ] {
        assert!(text.contains(var), "--help lists {var}: {text}");
    }
    assert!(!text.contains("listening"), "{text}");
    for flag in ["--version", "-V"] {
        let version = service(&[]).arg(flag).output().unwrap();
        assert_eq!(version.status.code(), Some(0));
        let text = String::from_utf8_lossy(&version.stdout);
        assert!(
            text.starts_with(&format!("mgraph-deploy {}", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
    }
    let unknown = service(&[]).arg("--port").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("--help"),
        "{unknown:?}"
    );
}

#[test]
fn listening_beyond_loopback_without_an_api_key_is_refused() {
    let output = service(&[("DEPLOY__LISTEN", "0.0.0.0:0")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FAST_API__AUTH__API_KEY__NAME"), "{stderr}");
}
