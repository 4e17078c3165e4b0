//! `mgraph-deploy-cli history`: a bootstrap whose output was lost, read back from the service's
//! history, step by step; and nothing for a PAT that cannot read the repository.

mod common;

use common::*;
use mgraph_deploy_emulator::PatKind;
use serde_json::Value;

#[tokio::test]
async fn a_bootstrap_whose_output_was_lost_is_read_back_step_by_step_from_the_history() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let values = write_file(
        dir.path(),
        "bootstrap.env",
        "AWS_REGION=eu-west-2\nAPI_TOKEN=token-value-never-recorded\n",
    );
    let applied = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &values, "-R", REPO],
        None,
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // Its output is gone; a later write comes on top.
    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "LATER", "-R", REPO],
        Some("later"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);

    let table = cli(&stack, Some(PatKind::Admin), &["history", "-R", REPO], None).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("STARTED (UTC)"), "{}", table.stdout);
    assert!(
        lines[1].contains("completed") && lines[1].contains(" create "),
        "newest first:\n{}",
        table.stdout
    );
    assert!(
        lines[2].contains("completed") && lines[2].contains(" execute "),
        "{}",
        table.stdout
    );
    assert!(
        lines[2].contains(&stack.api_key.name),
        "the caller's key name: {}",
        lines[2]
    );
    assert!(
        table
            .stderr
            .contains("2 execution(s) of local-owner/local-repo"),
        "{}",
        table.stderr
    );

    let listed = cli(
        &stack,
        Some(PatKind::Admin),
        &["history", "-R", REPO, "--json"],
        None,
    )
    .await;
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    let id = listed["data"]["executions"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(lines[2].ends_with(&id), "{}", lines[2]);

    let shown = cli(
        &stack,
        Some(PatKind::Admin),
        &["history", "show", &id],
        None,
    )
    .await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .starts_with(&format!("execution {id}: completed (2 of 2 step(s) ok")),
        "{}",
        shown.stdout
    );
    for name in ["AWS_REGION", "API_TOKEN"] {
        assert!(
            shown.stdout.lines().any(|l| l.contains("written")
                && l.contains(name)
                && l.contains("local-owner/local-repo (repo)")),
            "{name}: {}",
            shown.stdout
        );
    }
    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &["history", "show", &id, "--json"],
        None,
    )
    .await;
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        json["data"]["execution"]["steps"].as_array().unwrap().len(),
        2
    );
    for run in [&table, &shown] {
        assert!(!run.stdout.contains("token-value-never-recorded"));
    }

    // More than a page: --limit pages through.
    let one = cli(
        &stack,
        Some(PatKind::Admin),
        &["history", "-R", REPO, "--limit", "1"],
        None,
    )
    .await;
    assert_eq!(one.stdout.lines().count(), 2, "{}", one.stdout);
    assert!(
        one.stderr.contains("there are older ones"),
        "{}",
        one.stderr
    );
}

#[tokio::test]
async fn a_pat_that_cannot_read_the_repository_sees_no_history_and_no_execution() {
    let stack = stack().await;
    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "PRIVATE_NAME", "-R", REPO, "--json"],
        Some("v"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let listed = cli(
        &stack,
        Some(PatKind::Admin),
        &["history", "-R", REPO, "--json"],
        None,
    )
    .await;
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    let id = listed["data"]["executions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let table = cli(
        &stack,
        Some(PatKind::Expired),
        &["history", "-R", REPO],
        None,
    )
    .await;
    assert_eq!(table.code, 1, "{}", table.stderr);
    assert!(table.stdout.is_empty(), "{}", table.stdout);
    assert!(table.stderr.contains("invalid_pat"), "{}", table.stderr);

    // A PAT that may not read the repository is told the id is not found, as an unknown one.
    let shown = cli(
        &stack,
        Some(PatKind::EnvOnly),
        &["history", "show", &id],
        None,
    )
    .await;
    assert_eq!(shown.code, 1, "{}", shown.stderr);
    assert!(shown.stderr.contains("not_found"), "{}", shown.stderr);
    assert!(!shown.stderr.contains("PRIVATE_NAME") && shown.stdout.is_empty());

    // A PAT that is no PAT is told so.
    let invalid = cli(
        &stack,
        Some(PatKind::Invalid),
        &["history", "show", &id],
        None,
    )
    .await;
    assert_eq!(invalid.code, 1, "{}", invalid.stderr);
    assert!(invalid.stderr.contains("invalid_pat"), "{}", invalid.stderr);
    assert!(!invalid.stderr.contains("PRIVATE_NAME") && invalid.stdout.is_empty());
}
