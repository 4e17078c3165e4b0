//! The `mgraph-deploy-cli` binary against the offline stack: what a user at a shell or a CI job
//! sees, including exit codes, and that no plaintext ever appears in its output.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use mgraph_deploy_emulator::{PatKind, Scope, seed};
use mgraph_deploy_local::LocalStack;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// The service caches the public key; the upstream then redeploys with a new one.
async fn rotate_after_the_service_cached_the_key(stack: &LocalStack) {
    let _ = reqwest::Client::new()
        .get(format!("{}/public-keys/github", stack.service_url))
        .header(&stack.api_key.name, &stack.api_key.value)
        .send()
        .await
        .unwrap();
    stack.emulator.rotate_key();
}

/// A .env file in the shapes people write: plain, double-quoted, single-quoted, multi-line.
const DOTENV: &str = "\
# bootstrap
AWS_ACCOUNT_ID=123456789012
AWS_DEFAULT_REGION=\"eu-west-2\"
AWS_ACCESS_KEY_ID='AKIAEXAMPLEEXAMPLE01'
AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY'
FAST_API__AUTH__API_KEY__NAME=\"x-api-key\"
FAST_API__AUTH__API_KEY__VALUE=\"first line of the value
second line with 'quotes' and a # hash\"
";

fn expected_values() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCOUNT_ID", "123456789012"),
        ("AWS_DEFAULT_REGION", "eu-west-2"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY",
        ),
        ("FAST_API__AUTH__API_KEY__NAME", "x-api-key"),
        (
            "FAST_API__AUTH__API_KEY__VALUE",
            "first line of the value\nsecond line with 'quotes' and a # hash",
        ),
    ]
}

fn assert_no_plaintext(run: &Run) {
    for (_, value) in expected_values() {
        for fragment in value.lines().filter(|l| l.len() >= 8) {
            assert!(
                !run.stdout.contains(fragment) && !run.stderr.contains(fragment),
                "plaintext {fragment:?} in output:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_writes_a_dotenv_file_with_quoted_and_multi_line_values_in_one_execute() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "bootstrap.env", DOTENV);

    let dry = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "apply",
            "-f",
            &file,
            "--repo",
            REPO,
            "--dry-run",
            "--check-state",
        ],
        None,
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.stdout.matches(" create ").count(), 6, "{}", dry.stdout);
    assert!(
        stack
            .emulator
            .secret(&Scope::repo(seed::OWNER, seed::REPO), "AWS_ACCOUNT_ID")
            .is_none(),
        "a dry run writes nothing"
    );

    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "--repo", REPO],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("6 of 6 completed, 0 failed, 0 skipped"),
        "{}",
        run.stderr
    );
    for (name, value) in expected_values() {
        let stored = stack
            .emulator
            .secret(&Scope::repo(seed::OWNER, seed::REPO), name)
            .unwrap();
        assert_eq!(stored.plaintext, value, "{name}");
    }
    assert_no_plaintext(&run);
    let creates = stack
        .emulator
        .requests()
        .iter()
        .filter(|r| r.ends_with("/github-secrets-repo/create"))
        .count();
    assert_eq!(creates, 6);

    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &["--json", "apply", "-f", &file, "--repo", REPO],
        None,
    )
    .await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (report["completed"].as_u64(), report["success"].as_bool()),
        (Some(6), Some(true))
    );
    assert_no_plaintext(&json);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_recovers_from_a_rotated_github_service_key_by_re_sealing_once() {
    let stack = stack().await;
    rotate_after_the_service_cached_the_key(&stack).await;

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "v.json",
        r#"{"ROTATED_ONE": "value one", "ROTATED_TWO": "value two"}"#,
    );
    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "--repo", REPO],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("re-sealing and retrying once"),
        "{}",
        run.stderr
    );
    let stored = stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "ROTATED_TWO")
        .unwrap();
    assert_eq!(stored.plaintext, "value two");

    stack.emulator.rotate_key();
    let single = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "ROTATED_ONE", "--repo", REPO],
        Some("again"),
    )
    .await;
    assert_eq!(single.code, 0, "{}", single.stderr);
    let stored = stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "ROTATED_ONE")
        .unwrap();
    assert_eq!(stored.plaintext, "again");
}

#[tokio::test(flavor = "multi_thread")]
async fn single_secret_commands_cover_every_scope_with_their_exit_codes() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let env_target = ["--repo", REPO, "--env", seed::ENVIRONMENT];
    let org_target = ["--org", seed::ORG];
    for target in [&["--repo", REPO][..], &env_target[..], &org_target[..]] {
        let with = |args: &[&'static str]| -> Vec<&'static str> { [args, target].concat() };
        let set = cli(
            &stack,
            admin,
            &with(&["secret", "set", "CLI_SECRET"]),
            Some("from stdin"),
        )
        .await;
        assert_eq!(set.code, 0, "{target:?}: {}", set.stderr);
        let exists = cli(
            &stack,
            admin,
            &with(&["secret", "exists", "CLI_SECRET"]),
            None,
        )
        .await;
        assert_eq!(exists.code, 0, "{}", exists.stderr);
        let list = cli(&stack, admin, &with(&["secret", "list"]), None).await;
        assert!(list.stdout.contains("CLI_SECRET"), "{}", list.stdout);
        let get = cli(
            &stack,
            admin,
            &with(&["--json", "secret", "get", "CLI_SECRET"]),
            None,
        )
        .await;
        let envelope: Value = serde_json::from_str(&get.stdout).unwrap();
        assert_eq!(envelope["data"]["secret"]["name"], "CLI_SECRET");
        let delete = cli(
            &stack,
            admin,
            &with(&["secret", "delete", "CLI_SECRET"]),
            None,
        )
        .await;
        assert_eq!(delete.code, 0, "{}", delete.stderr);
        let gone = cli(
            &stack,
            admin,
            &with(&["secret", "exists", "CLI_SECRET"]),
            None,
        )
        .await;
        assert_eq!(gone.code, 1, "exists answers false with exit 1");
        assert!(get.stdout.len() + list.stdout.len() > 0 && !list.stdout.contains("from stdin"));
    }
    let stored = stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "CLI_SECRET");
    assert!(stored.is_none());

    let presence = cli(
        &stack,
        admin,
        &[
            "presence",
            "--require",
            "GITHUB_TOKEN,NOT_THERE",
            "--repo",
            REPO,
        ],
        None,
    )
    .await;
    assert_eq!(
        presence.code, 1,
        "a missing required secret fails the check"
    );
    assert!(
        presence.stdout.contains("MISSING  NOT_THERE"),
        "{}",
        presence.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_tell_invalid_input_from_failed_operations_from_an_unreachable_or_refusing_service()
 {
    let stack = stack().await;
    let bad_repo = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "list", "--repo", "no-slash"],
        None,
    )
    .await;
    assert_eq!(bad_repo.code, 2, "{}", bad_repo.stderr);
    let bad_name = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "1BAD", "--repo", REPO],
        // No stdin: the name is refused before the value is read.
        None,
    )
    .await;
    assert_eq!(bad_name.code, 2, "{}", bad_name.stderr);
    assert!(
        bad_name.stderr.contains("NAME must not start with a digit")
            || bad_name.stderr.contains("error: NAME "),
        "{}",
        bad_name.stderr
    );
    let no_pat = cli(&stack, None, &["secret", "list", "--repo", REPO], None).await;
    assert_eq!(no_pat.code, 2);
    assert!(
        no_pat.stderr.contains("GIT_HUB__ACCESS_TOKEN"),
        "{}",
        no_pat.stderr
    );

    let expired = cli(
        &stack,
        Some(PatKind::Expired),
        &["--json", "secret", "get", "X", "--repo", REPO],
        None,
    )
    .await;
    assert_eq!(expired.code, 1);
    let envelope: Value = serde_json::from_str(&expired.stdout).unwrap();
    assert_eq!(envelope["error_type"], "invalid_pat");
    assert!(
        !expired.stdout.contains(&PatKind::Expired.token())
            && !expired.stderr.contains(&PatKind::Expired.token())
    );

    let mut wrong_key = cli(
        &stack,
        Some(PatKind::Admin),
        &["--api-key-value", "wrong", "public-key"],
        None,
    )
    .await;
    assert_eq!(wrong_key.code, 3, "{}", wrong_key.stderr);
    wrong_key = cli(
        &stack,
        Some(PatKind::Admin),
        &["--json", "--url", "http://127.0.0.1:9", "public-key"],
        None,
    )
    .await;
    assert_eq!(wrong_key.code, 3);
    let body: Value = serde_json::from_str(&wrong_key.stdout).unwrap();
    assert_eq!(body["error_type"], "unreachable");
}

#[tokio::test(flavor = "multi_thread")]
async fn seal_output_opens_upstream_and_run_posts_a_hand_built_workflow() {
    let stack = stack().await;
    let sealed = cli(&stack, None, &["seal"], Some("hand sealed value")).await;
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);
    let blob = sealed.stdout.trim();
    assert_eq!(stack.emulator.open(blob).unwrap(), "hand sealed value");

    let offline = cli(
        &stack,
        None,
        &["seal", "--public-key", &stack.emulator.public_key_hex()],
        Some("offline"),
    )
    .await;
    assert_eq!(
        stack.emulator.open(offline.stdout.trim()).unwrap(),
        "offline"
    );

    let dir = tempfile::tempdir().unwrap();
    let workflow = serde_json::json!({
        "target": { "owner": seed::OWNER, "repo": seed::REPO },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "HAND_BUILT", "encrypted_value": blob },
            { "type": "github:secrets:exists", "secret_name": "HAND_BUILT" } ] });
    let file = write_file(dir.path(), "workflow.json", &workflow.to_string());
    let plan = cli(
        &stack,
        Some(PatKind::Admin),
        &["run", "-", "--plan"],
        Some(&workflow.to_string()),
    )
    .await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        stack
            .emulator
            .secret(&Scope::repo(seed::OWNER, seed::REPO), "HAND_BUILT")
            .is_none()
    );
    let run = cli(&stack, Some(PatKind::Admin), &["run", &file], None).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let stored = stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "HAND_BUILT")
        .unwrap();
    assert_eq!(stored.plaintext, "hand sealed value");
}

/// A service stand-in answering every route with one canned body: shapes the real service can
/// legally send but the offline stack does not produce on demand.
async fn canned_service(answers: Vec<(&'static str, u16, Value)>) -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // The head, then as many body bytes as it announces.
                let (head, body_read) = loop {
                    let n = socket.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_string();
                        break (head, request.len() - end - 4);
                    }
                };
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                let mut remaining = length.saturating_sub(body_read);
                while remaining > 0 {
                    let n = socket.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    remaining = remaining.saturating_sub(n);
                }
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = answers
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map(|(_, s, b)| (*s, b.to_string()))
                    .unwrap_or((404, "{}".to_owned()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn the_cli_reads_null_rate_limit_members_and_keeps_each_step_s_messages() {
    let null_rate_limit = serde_json::json!({
        "remaining": null, "limit": null, "used": null, "timestamp_reset": null
    });
    let url = canned_service(vec![
        (
            "/public-keys/github",
            200,
            serde_json::json!({
                "public_key": "e86904034676c1d38ed9649c8e77564f100fca16862ef617e6f5a06354411104",
                "algorithm": "NaCl/Curve25519/SealedBox", "service": "github"
            }),
        ),
        (
            "/operations/github/secrets/list",
            200,
            serde_json::json!({
                "success": true, "operation": "github:secrets:list",
                "data": {"secrets": [{"name": "A", "created_at": null, "updated_at": null}], "scope": "repo"},
                "error": "", "error_type": null, "messages": ["noted"], "duration": 0.01,
                "rate_limit": null_rate_limit
            }),
        ),
        (
            "/execute",
            207,
            serde_json::json!({
                "success": false, "total_operations": 1, "completed": 0, "failed": 1, "skipped": 0,
                "duration": 0.5, "rate_limit": null_rate_limit,
                "results": [{
                    "step": 1, "operation": "github:secrets:delete", "secret_name": "A",
                    "target": "o/r", "scope": "repo", "status": "failed", "success": false,
                    "duration": 0.4, "attempts": 3, "error": "busy", "error_type": "upstream_unavailable",
                    "data": {}, "messages": ["not retried: the next attempt would start after the workflow's deadline (wait 1.0 s)"]
                }]
            }),
        ),
    ])
    .await;
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let output = tokio::process::Command::new(CLI)
                .env_clear()
                .env("DEPLOY_SERVICE__URL", &url)
                .env("GIT_HUB__ACCESS_TOKEN", PatKind::Admin.token())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .await
                .unwrap();
            (
                output.status.code().unwrap(),
                String::from_utf8(output.stdout).unwrap(),
                String::from_utf8(output.stderr).unwrap(),
            )
        }
    };

    let (code, stdout, stderr) = run(vec![
        "secret".into(),
        "list".into(),
        "--repo".into(),
        "o/r".into(),
    ])
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("A "), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("w.json");
    std::fs::write(
        &workflow,
        r#"{"credentials":{"github_pat":"x"},"operations":[{"type":"github:secrets:delete","secret_name":"A"}]}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(vec![
        "--json".into(),
        "run".into(),
        workflow.display().to_string(),
    ])
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["rate_limit"], null_rate_limit);
    assert_eq!(
        report["results"][0]["messages"][0],
        "not retried: the next attempt would start after the workflow's deadline (wait 1.0 s)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_with_check_state_re_seals_once_after_a_key_rotation() {
    let stack = stack().await;
    rotate_after_the_service_cached_the_key(&stack).await;

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "v.json", r#"{"PLANNED": "value"}"#);
    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "apply",
            "-f",
            &file,
            "--repo",
            REPO,
            "--dry-run",
            "--check-state",
        ],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("re-sealing and retrying once"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("create"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_names_every_name_github_refuses_before_sealing_or_sending_anything() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "v.json",
        r#"{"GOOD": "1", "1BAD": "2", "GITHUB_X": "3"}"#,
    );
    let before = stack.emulator.requests().len();
    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "--repo", REPO],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("1BAD: must start with a letter")
            && run.stderr.contains("GITHUB_X: must not start with GITHUB_"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.emulator.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_with_an_organisation_is_refused_never_written_as_an_organisation_secret() {
    let stack = stack().await;
    for args in [
        &["secret", "set", "X", "--org", seed::ORG, "--env", "prod"][..],
        &["secret", "list", "--org", seed::ORG, "--env", "prod"][..],
    ] {
        // No stdin: the flags are refused before anything is read (writing it would race the
        // exit and break the pipe).
        let run = cli(&stack, Some(PatKind::Admin), args, None).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("--env") && run.stderr.contains("--org"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(stack.emulator.secret(&Scope::org(seed::ORG), "X").is_none());
}

/// Runs `apply` on every `.env` fixture of `tests/data/dotenv`: an `accepted-*` file's values
/// land byte for byte; a `refused-*` file is refused with its line, column and fix, and nothing
/// of it is written (each starts with a valid `WRITTEN_BEFORE`).
#[tokio::test(flavor = "multi_thread")]
async fn every_dotenv_fixture_lands_byte_for_byte_or_is_refused_with_its_line_and_fix() {
    let stack = stack().await;
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dotenv");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    fixtures.sort();
    let (mut accepted, mut refused) = (0, 0);
    for fixture in &fixtures {
        let file = fixture.to_str().unwrap();
        let stem = file.strip_suffix(".env").unwrap();
        let run = cli(
            &stack,
            Some(PatKind::Admin),
            &["apply", "-f", file, "--repo", REPO],
            None,
        )
        .await;
        if let Ok(expected) = std::fs::read_to_string(format!("{stem}.expected.json")) {
            accepted += 1;
            assert_eq!(run.code, 0, "{file}: {}", run.stderr);
            let expected: serde_json::Map<String, Value> = serde_json::from_str(&expected).unwrap();
            for (name, value) in expected {
                let stored = stack.emulator.secret(&scope, &name).unwrap();
                assert_eq!(
                    stored.plaintext.as_bytes(),
                    value.as_str().unwrap().as_bytes(),
                    "{file}: {name}"
                );
            }
        } else {
            refused += 1;
            let error = std::fs::read_to_string(format!("{stem}.error.txt")).unwrap();
            assert_eq!(run.code, 2, "{file}: {}", run.stderr);
            let wanted = format!("{file}: {}", error.trim_end());
            assert!(
                run.stderr.contains(&wanted),
                "{file}: wanted {wanted:?} in\n{}",
                run.stderr
            );
            assert!(
                stack.emulator.secret(&scope, "WRITTEN_BEFORE").is_none(),
                "{file}: something was written"
            );
        }
    }
    assert!(
        accepted >= 2 && refused >= 10,
        "{accepted} accepted, {refused} refused fixtures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_empty_writes_the_empty_values_a_plain_apply_refuses() {
    let stack = stack().await;
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dotenv/refused-empty.env"
    );
    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", file, "--repo", REPO, "--allow-empty"],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in ["EMPTY", "ALSO_EMPTY"] {
        assert_eq!(stack.emulator.secret(&scope, name).unwrap().plaintext, "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gh_s_short_flags_write_the_scope_asked_for_and_stdin_loses_its_trailing_newline() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let repo = Scope::repo(seed::OWNER, seed::REPO);

    let env = cli(
        &stack,
        admin,
        &[
            "secret",
            "set",
            "ENV_SECRET",
            "-R",
            REPO,
            "-e",
            seed::ENVIRONMENT,
        ],
        Some("v1\r\n\n"),
    )
    .await;
    assert_eq!(env.code, 0, "{}", env.stderr);
    let environment = Scope::environment(seed::OWNER, seed::REPO, seed::ENVIRONMENT);
    assert_eq!(
        stack
            .emulator
            .secret(&environment, "ENV_SECRET")
            .unwrap()
            .plaintext,
        "v1"
    );
    assert!(env.stdout.contains("environment secret"), "{}", env.stdout);

    let kept = cli(
        &stack,
        admin,
        &["secret", "set", "KEPT", "-R", REPO, "--keep-newline"],
        Some("v2\n"),
    )
    .await;
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert_eq!(
        stack.emulator.secret(&repo, "KEPT").unwrap().plaintext,
        "v2\n"
    );

    let org = cli(
        &stack,
        admin,
        &[
            "secret",
            "set",
            "ORG_SECRET",
            "-o",
            seed::ORG,
            "-v",
            "selected",
            "--repo-ids",
            "1,2",
            "-b",
            "body-value",
        ],
        None,
    )
    .await;
    assert_eq!(org.code, 0, "{}", org.stderr);
    let stored = stack
        .emulator
        .secret(&Scope::org(seed::ORG), "ORG_SECRET")
        .unwrap();
    assert_eq!(
        (stored.plaintext.as_str(), stored.visibility.as_deref()),
        ("body-value", Some("selected"))
    );
    assert_eq!(stored.selected_repository_ids, vec![1, 2]);
    assert!(
        org.stderr.contains("--body"),
        "the shell-history warning: {}",
        org.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "bulk.env", "BULK_A=a\nBULK_B='b$'\n");
    let bulk = cli(
        &stack,
        admin,
        &["secret", "set", "-f", &file, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(bulk.code, 0, "{}", bulk.stderr);
    assert_eq!(
        stack.emulator.secret(&repo, "BULK_B").unwrap().plaintext,
        "b$"
    );
    let piped = cli(
        &stack,
        admin,
        &["secret", "set", "-f", "-", "-R", REPO],
        Some("PIPED=from stdin\n"),
    )
    .await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(
        stack.emulator.secret(&repo, "PIPED").unwrap().plaintext,
        "from stdin"
    );

    let list = cli(
        &stack,
        admin,
        &["--json", "secret", "list", "-R", REPO],
        None,
    )
    .await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    let kept = listed.iter().find(|s| s["name"] == "KEPT").unwrap();
    let mut fields: Vec<&str> = kept
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["createdAt", "name", "scope", "updatedAt", "visibility"]
    );
    assert_eq!(kept["scope"], "repo");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_repository_comes_from_gh_repo_then_the_origin_remote_and_the_cli_says_which() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let repo = Scope::repo(seed::OWNER, seed::REPO);
    let dir = tempfile::tempdir().unwrap();

    let from_env = cli_in(
        &stack,
        admin,
        &["secret", "set", "FROM_GH_REPO"],
        Some("x"),
        &[("GH_REPO", REPO)],
        Some(dir.path()),
    )
    .await;
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    assert!(
        from_env.stderr.contains(&format!("{REPO} (from GH_REPO)")),
        "{}",
        from_env.stderr
    );
    assert!(stack.emulator.secret(&repo, "FROM_GH_REPO").is_some());

    let nowhere = cli_in(
        &stack,
        admin,
        &["secret", "list"],
        None,
        &[],
        Some(dir.path()),
    )
    .await;
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(
        nowhere.stderr.contains("--repo") && nowhere.stderr.contains("GH_REPO"),
        "{}",
        nowhere.stderr
    );

    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        "git@github.com:local-owner/local-repo.git",
    ]);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let from_git = cli_in(
        &stack,
        admin,
        &["secret", "set", "FROM_ORIGIN", "-e", seed::ENVIRONMENT],
        Some("y"),
        &[],
        Some(&dir.path().join("sub")),
    )
    .await;
    assert_eq!(from_git.code, 0, "{}", from_git.stderr);
    assert!(
        from_git
            .stderr
            .contains(&format!("{REPO} (from the git remote origin)")),
        "{}",
        from_git.stderr
    );
    let environment = Scope::environment(seed::OWNER, seed::REPO, seed::ENVIRONMENT);
    assert!(stack.emulator.secret(&environment, "FROM_ORIGIN").is_some());

    git(&[
        "remote",
        "set-url",
        "origin",
        "https://gitlab.com/local-owner/local-repo.git",
    ]);
    let gitlab = cli_in(
        &stack,
        admin,
        &["secret", "list"],
        None,
        &[],
        Some(dir.path()),
    )
    .await;
    assert_eq!(gitlab.code, 2, "{}", gitlab.stderr);
    assert!(
        gitlab.stderr.contains("gitlab.com") && gitlab.stderr.contains("--repo"),
        "{}",
        gitlab.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pat_comes_from_gh_token_when_git_hub_access_token_is_unset() {
    let stack = stack().await;
    let token = PatKind::Admin.token();
    let run = cli_in(
        &stack,
        None,
        &["secret", "list", "-R", REPO],
        None,
        &[("GH_TOKEN", &token)],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let none = cli(&stack, None, &["secret", "list", "-R", REPO], None).await;
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("GIT_HUB__ACCESS_TOKEN") && none.stderr.contains("GH_TOKEN"),
        "{}",
        none.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_values_from_stdin_or_body_are_refused_unless_allow_empty() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let repo = Scope::repo(seed::OWNER, seed::REPO);
    let stdin = cli(
        &stack,
        admin,
        &["secret", "set", "EMPTY", "-R", REPO],
        Some("\n"),
    )
    .await;
    assert_eq!(stdin.code, 2, "{}", stdin.stderr);
    assert!(stdin.stderr.contains("--allow-empty"), "{}", stdin.stderr);
    let body = cli(
        &stack,
        admin,
        &["secret", "set", "EMPTY", "-R", REPO, "-b", ""],
        None,
    )
    .await;
    assert_eq!(body.code, 2, "{}", body.stderr);
    assert!(stack.emulator.secret(&repo, "EMPTY").is_none());
    let allowed = cli(
        &stack,
        admin,
        &["secret", "set", "EMPTY", "-R", REPO, "--allow-empty"],
        Some(""),
    )
    .await;
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(stack.emulator.secret(&repo, "EMPTY").unwrap().plaintext, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn env_fallback_reports_the_repository_scope_it_wrote_in_text_and_json() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let repo = Scope::repo(seed::OWNER, seed::REPO);
    let set = cli(
        &stack,
        admin,
        &[
            "secret",
            "set",
            "FALLBACK_ONE",
            "-R",
            REPO,
            "-e",
            "staging",
            "--env-fallback",
        ],
        Some("1"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stdout.contains("repository secret") && set.stdout.contains("'staging' does not exist"),
        "{}",
        set.stdout
    );
    assert!(stack.emulator.secret(&repo, "FALLBACK_ONE").is_some());

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "f.env", "FALLBACK_TWO=2\n");
    let text = cli(
        &stack,
        admin,
        &[
            "apply",
            "-f",
            &file,
            "-R",
            REPO,
            "-e",
            "staging",
            "--env-fallback",
        ],
        None,
    )
    .await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("FALLBACK_TWO"))
        .unwrap();
    assert!(
        line.contains("(repo") && !line.contains("(environment)"),
        "{line}"
    );
    let json = cli(
        &stack,
        admin,
        &[
            "--json",
            "apply",
            "-f",
            &file,
            "-R",
            REPO,
            "-e",
            "staging",
            "--env-fallback",
        ],
        None,
    )
    .await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["results"][0]["scope"], "repo", "{report}");
    assert_eq!(report["results"][0]["data"]["scope"], "repo");

    let missing = cli(
        &stack,
        admin,
        &["secret", "set", "NO_FALLBACK", "-R", REPO, "-e", "staging"],
        Some("1"),
    )
    .await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("--env-fallback"),
        "a missing environment suggests it: {}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flag_combinations_that_mean_nothing_are_refused_naming_the_flags() {
    let stack = stack().await;
    for (args, flags) in [
        (
            &[
                "secret",
                "set",
                "X",
                "-o",
                seed::ORG,
                "-v",
                "all",
                "--repo-ids",
                "1",
                "-b",
                "x",
            ][..],
            &["--repo-ids", "--visibility selected"][..],
        ),
        (
            &[
                "secret",
                "set",
                "X",
                "-o",
                seed::ORG,
                "-v",
                "selected",
                "-b",
                "x",
            ],
            &["--repo-ids"],
        ),
        (
            &["secret", "set", "X", "-R", REPO, "-o", seed::ORG, "-b", "x"],
            &["--repo", "--org"],
        ),
        (
            &[
                "secret",
                "set",
                "X",
                "-R",
                REPO,
                "--env-fallback",
                "-b",
                "x",
            ],
            &["--env-fallback", "--env"],
        ),
        (
            &["secret", "set", "X", "-R", REPO, "-v", "all", "-b", "x"],
            &["--visibility", "--org"],
        ),
        (
            &["secret", "set", "X", "-f", "x.env", "-R", REPO],
            &["NAME", "--env-file"],
        ),
        (
            &["secret", "set", "bad-name", "-R", REPO, "-b", "x"],
            &["NAME must contain only"],
        ),
        (
            &["presence", "--require", "a b", "-R", REPO],
            &["a --require name must"],
        ),
        (
            &["apply", "-f", "x.env", "-o", seed::ORG, "-e", "prod"],
            &["--env", "--org"],
        ),
    ] {
        let run = cli(&stack, Some(PatKind::Admin), args, None).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        for flag in flags {
            assert!(
                run.stderr.contains(flag),
                "{args:?} should name {flag}: {}",
                run.stderr
            );
        }
    }
    assert!(
        stack.emulator.requests().is_empty(),
        "nothing reached the GitHub Service"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_api_key_names_the_variables_to_fix() {
    let stack = stack().await;
    let run = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["secret", "list", "-R", REPO],
        None,
        &[("DEPLOY_SERVICE__API_KEY__VALUE", "wrong")],
        None,
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("DEPLOY_SERVICE__API_KEY__VALUE"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_256_values_are_split_into_paced_workflows_reported_as_one_run() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let repo = Scope::repo(seed::OWNER, seed::REPO);
    let dir = tempfile::tempdir().unwrap();
    let text: String = (1..=300)
        .map(|i| format!("BULK_{i:03}='value {i}'\n"))
        .collect();
    let file = write_file(dir.path(), "many.env", &text);

    let dry = cli(
        &stack,
        admin,
        &["apply", "-f", &file, "-R", REPO, "--dry-run"],
        None,
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.stdout.matches(" write ").count(), 300, "{}", dry.stdout);
    assert!(
        dry.stdout.contains("300. write   BULK_300"),
        "steps numbered through: {}",
        dry.stdout
    );
    assert!(
        dry.stderr.contains("300 writes in 4 workflows of at most 80, paced to 80 writes a minute and 500 an hour (GitHub's secondary limits): about 3 min"),
        "{}",
        dry.stderr
    );

    let run = cli(
        &stack,
        admin,
        &[
            "apply",
            "-f",
            &file,
            "-R",
            REPO,
            "--writes-per-minute",
            "1000",
            "--writes-per-hour",
            "5000",
        ],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("running workflow 2 of 2 (150 operations)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("warning: workflow 1 of 2 (steps from 1): 150 writes"),
        "the plan's warnings are shown: {}",
        run.stderr
    );
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("ok")).count(),
        300
    );
    assert!(
        run.stderr.contains("300 of 300 completed"),
        "{}",
        run.stderr
    );
    for i in [1, 150, 151, 300] {
        let name = format!("BULK_{i:03}");
        assert_eq!(
            stack.emulator.secret(&repo, &name).unwrap().plaintext,
            format!("value {i}")
        );
    }

    // Again, unchanged: workflows paced apart carry every value, and the service, deciding each
    // when it runs, writes none.
    let creates = || {
        stack
            .emulator
            .requests()
            .iter()
            .filter(|r| r.ends_with("/create"))
            .count()
    };
    let before = creates();
    let again = cli(
        &stack,
        admin,
        &[
            "--json",
            "apply",
            "-f",
            &file,
            "-R",
            REPO,
            "--writes-per-minute",
            "1000",
            "--writes-per-hour",
            "5000",
        ],
        None,
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 300);
    assert!(results.iter().all(|r| r["action"] == "unchanged"));
    assert_eq!(creates(), before, "nothing written again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_whose_plan_knows_steps_will_fail_exits_1_and_suggests_env_fallback() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "f.env", "A=1\n");
    let args = [
        "apply",
        "-f",
        &file,
        "-R",
        REPO,
        "-e",
        "staging",
        "--dry-run",
        "--check-state",
    ];
    let dry = cli(&stack, Some(PatKind::Admin), &args, None).await;
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    assert!(
        dry.stderr.contains("will fail with not_found"),
        "{}",
        dry.stderr
    );
    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &[&["--json"][..], &args].concat(),
        None,
    )
    .await;
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        plan["will_fail"],
        serde_json::json!([{ "step": 1, "error_type": "not_found" }])
    );
    let real = cli(&stack, Some(PatKind::Admin), &args[..7], None).await;
    assert_eq!(real.code, 1, "{}", real.stderr);
    assert!(real.stderr.contains("--env-fallback"), "{}", real.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_the_version_with_its_commit_need_no_service() {
    let stack = stack().await;
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = cli(&stack, None, &["completions", shell], None).await;
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("env-file"), "{shell}: {}", run.stdout);
    }
    let version = cli(&stack, None, &["--version"], None).await;
    assert_eq!(version.code, 0);
    assert!(
        version
            .stdout
            .starts_with(&format!("mgraph-deploy-cli {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        version.stdout
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert!(
            version.stdout.contains(&format!("(commit {commit})")),
            "{}",
            version.stdout
        );
    }
    let help = cli(&stack, None, &["secret", "set", "--help"], None).await;
    assert!(
        help.stdout.contains("Exit codes:") && help.stdout.contains("-R, --repo"),
        "{}",
        help.stdout
    );
}

/// `tests/data/preflight` holds workflow files written like real ones: a CI job, a deploy job in
/// `production`, a notify job, a local reusable workflow called with `secrets: inherit` and with a
/// mapping (its job runs in `staging`, which does not exist yet), and a remote reusable workflow.
#[tokio::test(flavor = "multi_thread")]
async fn preflight_finds_the_missing_shadowed_unpassed_and_unused_secrets_of_a_repository() {
    let stack = stack().await;
    let admin = Some(PatKind::Admin);
    let dir = tempfile::tempdir().unwrap();
    let repo_file = write_file(
        dir.path(),
        "repo.env",
        "NPM_TOKEN=n\nSLACK_WEBHOOK=s\nREGISTRY_PASSWORD=r\nAWS_ROLE_ARN=repo-level\nOLD_UNUSED=o\n",
    );
    let env_file = write_file(dir.path(), "env.env", "AWS_ROLE_ARN=a\nDEPLOY_KEY=d\n");
    for args in [
        &["secret", "set", "-f", &repo_file, "-R", REPO][..],
        &[
            "secret",
            "set",
            "-f",
            &env_file,
            "-R",
            REPO,
            "-e",
            seed::ENVIRONMENT,
        ],
    ] {
        let run = cli(&stack, admin, args, None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/preflight");

    let text = cli(
        &stack,
        admin,
        &["preflight", "--dir", fixture, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(
        text.code, 1,
        "something required is missing: {}\n{}",
        text.stdout, text.stderr
    );
    let line = |name: &str, what: &str| {
        text.stdout
            .lines()
            .find(|l| l.contains(name) && l.contains(what))
            .unwrap_or_else(|| panic!("no {what} line for {name}:\n{}", text.stdout))
            .to_owned()
    };
    assert!(line("CODECOV_TOKEN", "MISSING").contains("ci.yml: test"));
    assert!(
        line("SENTRY_DSN", "MISSING")
            .contains("publish.yml: publish (called by deploy.yml: publish-inherited)")
    );
    line("AWS_ROLE_ARN", "shadows the repository's");
    line("DEPLOY_KEY", "[environment secret]");
    line("NPM_TOKEN", "[repo secret]");
    line("SENTRY_DSN", "NOT PASSED");
    line("OLD_UNUSED", "unused");
    assert!(
        !text.stdout.contains("GITHUB_TOKEN  "),
        "built in: {}",
        text.stdout
    );
    assert!(
        text.stderr
            .contains("environment staging does not exist yet"),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr
            .contains("octo-org/security/.github/workflows/scan.yml@v2"),
        "{}",
        text.stderr
    );

    let json = cli(
        &stack,
        admin,
        &["--json", "preflight", "--dir", fixture, "-R", REPO],
        None,
    )
    .await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let missing: Vec<&str> = report["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["present"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["CODECOV_TOKEN", "SENTRY_DSN"]);

    // Once the two are set and the reusable workflow's caller passes what it uses, it passes.
    let fixed = tempfile::tempdir().unwrap();
    let workflows = fixed.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for file in ["ci.yml", "publish.yml"] {
        std::fs::copy(
            format!("{fixture}/.github/workflows/{file}"),
            workflows.join(file),
        )
        .unwrap();
    }
    let deploy = std::fs::read_to_string(format!("{fixture}/.github/workflows/deploy.yml"))
        .unwrap()
        .replace(
            "      registry_password: ${{ secrets.REGISTRY_PASSWORD }}",
            "      registry_password: ${{ secrets.REGISTRY_PASSWORD }}\n      SENTRY_DSN: ${{ secrets.SENTRY_DSN }}",
        );
    std::fs::write(workflows.join("deploy.yml"), deploy).unwrap();
    let more = write_file(dir.path(), "more.env", "CODECOV_TOKEN=c\nSENTRY_DSN=s\n");
    let set = cli(
        &stack,
        admin,
        &["secret", "set", "-f", &more, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let ok = cli(
        &stack,
        admin,
        &[
            "preflight",
            "--dir",
            fixed.path().to_str().unwrap(),
            "-R",
            REPO,
        ],
        None,
    )
    .await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
}
