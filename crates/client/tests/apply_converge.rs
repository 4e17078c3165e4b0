//! `mgraph-deploy-cli apply` converges: values it wrote last and nobody changed since are not
//! written again, and it says how many of each first; the fingerprint key that makes this
//! possible never leaves the machine.

mod common;

use common::*;
use mgraph_deploy_emulator::{PatKind, Scope, seed};
use serde_json::Value;

/// GitHub writes so far: the GitHub Service's create calls.
fn writes(stack: &mgraph_deploy_local::LocalStack) -> usize {
    stack
        .emulator
        .requests()
        .iter()
        .filter(|r| r.ends_with("/create"))
        .count()
}

fn stored(stack: &mgraph_deploy_local::LocalStack, name: &str) -> String {
    stack
        .emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), name)
        .unwrap()
        .plaintext
}

const SHARED_KEY: &str = "0123456789abcdef0123456789abcdef-team-key";

#[tokio::test]
async fn re_applying_a_file_writes_nothing_and_says_so_and_one_changed_value_writes_one_secret() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "app.env",
        "API_URL=https://api.example\nAPI_TOKEN=first-token\nREGION=eu-west-2\n",
    );
    let apply = |args: &'static [&'static str]| {
        let file = file.clone();
        let stack = &stack;
        async move {
            let mut all = vec!["apply", "-f", file.as_str(), "-R", REPO];
            all.extend_from_slice(args);
            cli(stack, Some(PatKind::Admin), &all, None).await
        }
    };

    let first = apply(&[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("3 new, 0 changed, 0 unchanged (skipped), 0 drifted"),
        "{}",
        first.stderr
    );
    assert_eq!(writes(&stack), 3);

    let again = apply(&[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("0 new, 0 changed, 3 unchanged (skipped), 0 drifted"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("3 of 3 completed"),
        "{}",
        again.stderr
    );
    assert_eq!(writes(&stack), 3, "nothing written again");

    let json = apply(&["--json"]).await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    let actions: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged"; 3]);
    assert_eq!(report["completed"], 3);

    std::fs::write(
        &file,
        "API_URL=https://api.example\nAPI_TOKEN=second-token\nREGION=eu-west-2\n",
    )
    .unwrap();
    let one = apply(&["--json"]).await;
    let report: Value = serde_json::from_str(&one.stdout).unwrap();
    let actions: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged", "update", "unchanged"]);
    assert_eq!(writes(&stack), 4);
    assert_eq!(stored(&stack, "API_TOKEN"), "second-token");

    let forced = apply(&["--force"]).await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(writes(&stack), 7, "--force writes every value");
}

#[tokio::test]
async fn a_shared_fingerprint_key_lets_two_writers_agree_and_neither_it_nor_a_value_reaches_the_service()
 {
    let stack = stack().await;
    let (front, sent) = front_recording(&stack.service_url).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "app.env",
        "API_TOKEN=value-never-sent-in-clear\n",
    );
    let env = [
        ("DEPLOY_SERVICE__URL", front.as_str()),
        ("DEPLOY_FINGERPRINT_KEY", SHARED_KEY),
    ];
    let args = ["apply", "-f", file.as_str(), "-R", REPO];

    // A laptop writes; CI, with another PAT and the same key, finds it unchanged.
    let laptop = cli_in(&stack, Some(PatKind::Admin), &args, None, &env, None).await;
    assert_eq!(laptop.code, 0, "{}", laptop.stderr);
    let ci = cli_in(&stack, Some(PatKind::OrgAdmin), &args, None, &env, None).await;
    assert_eq!(ci.code, 0, "{}", ci.stderr);
    assert!(ci.stderr.contains("1 unchanged (skipped)"), "{}", ci.stderr);
    assert_eq!(writes(&stack), 1);

    // Without the shared key each PAT keys its own fingerprints: another writer writes.
    let own = cli_in(
        &stack,
        Some(PatKind::OrgAdmin),
        &args,
        None,
        &[("DEPLOY_SERVICE__URL", front.as_str())],
        None,
    )
    .await;
    assert_eq!(own.code, 0, "{}", own.stderr);
    assert!(own.stderr.contains("1 changed"), "{}", own.stderr);
    assert_eq!(writes(&stack), 2);

    let set = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "OTHER", "-R", REPO],
        Some("another-value-never-sent"),
        &env,
        None,
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);

    let sent = String::from_utf8_lossy(&sent.lock().unwrap()).into_owned();
    assert!(
        sent.contains("value_fingerprint") && sent.contains("hmac-sha256:"),
        "the front saw the requests"
    );
    for secret in [
        SHARED_KEY,
        "value-never-sent-in-clear",
        "another-value-never-sent",
        PatKind::Admin.token().as_str(),
        PatKind::OrgAdmin.token().as_str(),
    ] {
        assert!(!sent.contains(secret), "{secret} reached the service");
    }
}

#[tokio::test]
async fn a_shared_key_too_short_to_be_safe_is_refused_before_anything_is_sent() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.env", "API_TOKEN=x\n");
    let run = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO],
        None,
        &[("DEPLOY_FINGERPRINT_KEY", "short")],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("DEPLOY_FINGERPRINT_KEY is too short"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("short\n") && !run.stdout.contains("short"));
    // Set but empty, or a "file" that never ends: refused, never a silent other key.
    for (var, value, says) in [
        ("DEPLOY_FINGERPRINT_KEY", "", "set but empty"),
        (
            "DEPLOY_FINGERPRINT_KEY_FILE",
            "/dev/zero",
            "longer than 4096 bytes",
        ),
    ] {
        let run = cli_in(
            &stack,
            Some(PatKind::Admin),
            &["apply", "-f", &file, "-R", REPO],
            None,
            &[(var, value)],
            None,
        )
        .await;
        assert_eq!(run.code, 2, "{var}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{var}: {}", run.stderr);
    }
    assert_eq!(writes(&stack), 0);
}

#[tokio::test]
async fn status_tells_in_sync_drifted_missing_and_unmanaged_secrets_apart() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.env", "KEPT=1\nCHANGED=2\nGONE=3\n");
    let applied = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "SET_ALONE", "-R", REPO],
        Some("4"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    stack.emulator.github(|gh| {
        assert!(gh.write_outside(&scope, "CHANGED", "theirs", "2099-01-01T00:00:00Z"));
        assert!(gh.write_outside(&scope, "THEIRS", "x", "2099-01-01T00:00:00Z"));
        gh.delete(&PatKind::Admin.token(), &scope, "GONE").unwrap();
    });

    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &["status", "-R", REPO, "--json"],
        None,
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let answer: Value = serde_json::from_str(&json.stdout).unwrap();
    let states: Vec<(String, String)> = answer["data"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("CHANGED", "drifted"),
        ("GONE", "missing"),
        ("KEPT", "in_sync"),
        ("SET_ALONE", "in_sync"),
        ("THEIRS", "unmanaged"),
    ];
    assert_eq!(
        states,
        expected.map(|(n, s)| (n.to_owned(), s.to_owned())),
        "{}",
        json.stdout
    );

    let text = cli(&stack, Some(PatKind::Admin), &["status", "-R", REPO], None).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.starts_with("NAME "), "{}", text.stdout);
    assert!(
        text.stderr
            .contains("2 in sync, 1 drifted, 1 missing, 0 unconfirmed, 1 unmanaged"),
        "{}",
        text.stderr
    );
}

#[tokio::test]
async fn apply_prune_lists_what_it_would_delete_needs_yes_without_a_terminal_and_spares_the_unmanaged()
 {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.env", "KEEP=1\nOLD=2\n");
    let first = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    stack.emulator.github(|gh| {
        assert!(gh.write_outside(&scope, "NOT_OURS", "x", "2099-01-01T00:00:00Z"));
    });
    std::fs::write(&file, "KEEP=1\n").unwrap();
    let args = ["apply", "-f", file.as_str(), "-R", REPO, "--prune"];

    let planned = cli(
        &stack,
        Some(PatKind::Admin),
        &[&args[..], &["--dry-run", "--json"]].concat(),
        None,
    )
    .await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let prunes: Vec<&str> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "prune")
        .map(|s| s["secret_name"].as_str().unwrap())
        .collect();
    assert_eq!(prunes, ["OLD"]);
    assert_eq!(plan["unmanaged"][0]["secret_name"], "NOT_OURS");

    let unconfirmed = cli(&stack, Some(PatKind::Admin), &args, None).await;
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(
        unconfirmed.stderr.contains("pass --yes") && unconfirmed.stderr.contains("OLD"),
        "{}",
        unconfirmed.stderr
    );
    assert!(
        stack.emulator.secret(&scope, "OLD").is_some(),
        "nothing sent"
    );

    let confirmed = cli(
        &stack,
        Some(PatKind::Admin),
        &[&args[..], &["--yes"]].concat(),
        None,
    )
    .await;
    assert_eq!(confirmed.code, 0, "{}", confirmed.stderr);
    assert!(
        confirmed.stderr.contains("1 to prune") && confirmed.stderr.contains("2 of 2 completed"),
        "{}",
        confirmed.stderr
    );
    assert!(stack.emulator.secret(&scope, "OLD").is_none());
    assert!(stack.emulator.secret(&scope, "KEEP").is_some());
    assert!(stack.emulator.secret(&scope, "NOT_OURS").is_some());
}

#[tokio::test]
async fn preflight_says_whether_an_environment_secret_holds_the_value_of_the_repository_secret_it_shadows()
 {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let repo_file = write_file(dir.path(), "repo.env", "SAME_ONE=a\nOTHER_ONE=x\n");
    let env_file = write_file(dir.path(), "env.env", "SAME_ONE=a\nOTHER_ONE=y\n");
    for args in [
        vec!["apply", "-f", repo_file.as_str(), "-R", REPO],
        vec![
            "apply",
            "-f",
            env_file.as_str(),
            "-R",
            REPO,
            "-e",
            seed::ENVIRONMENT,
        ],
    ] {
        let run = cli(&stack, Some(PatKind::Admin), &args, None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let workflows = dir.path().join("project/.github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("deploy.yml"),
        format!(
            "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    environment: {}\n    steps:\n      - run: echo ${{{{ secrets.SAME_ONE }}}} ${{{{ secrets.OTHER_ONE }}}}\n",
            seed::ENVIRONMENT
        ),
    )
    .unwrap();
    let project = dir.path().join("project");
    let checked = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "preflight",
            "--dir",
            project.to_str().unwrap(),
            "-R",
            REPO,
            "--json",
        ],
        None,
    )
    .await;
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let report: Value = serde_json::from_str(&checked.stdout).unwrap();
    let shadowed: Vec<(String, Value)> = report["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["shadowed_value"].clone(),
            )
        })
        .collect();
    assert!(
        shadowed.contains(&("SAME_ONE".to_owned(), Value::from("same")))
            && shadowed.contains(&("OTHER_ONE".to_owned(), Value::from("different"))),
        "{shadowed:?}"
    );

    let text = cli(
        &stack,
        Some(PatKind::Admin),
        &["preflight", "--dir", project.to_str().unwrap(), "-R", REPO],
        None,
    )
    .await;
    assert!(
        text.stdout.contains("a different value, a likely mistake"),
        "{}",
        text.stdout
    );
}
