//! `auth status`: whose PAT this is and whether it can read a target's secrets, through the CLI
//! binary against the offline stack (the emulator's preset PATs).

mod common;

use common::*;
use mgraph_deploy_emulator::PatKind;

#[tokio::test(flavor = "multi_thread")]
async fn a_working_pat_is_reported_with_its_login_where_it_came_from_and_read_access() {
    let stack = stack().await;

    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["auth", "status", "-R", REPO],
        None,
    )
    .await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("✓ Logged in to GitHub as emulator-admin (GIT_HUB__ACCESS_TOKEN)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Rate limit: "), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("✓ Can read the secrets of local-owner/local-repo"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(&PatKind::Admin.token()));
    assert!(!run.stderr.contains(&PatKind::Admin.token()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pat_from_another_variable_is_named_and_json_output_carries_the_same_facts() {
    let stack = stack().await;
    let token = PatKind::RepoWrite.token();

    let run = cli_in(
        &stack,
        None,
        &[
            "auth",
            "status",
            "-R",
            REPO,
            "--json",
            "--pat-env",
            "MY_PAT",
        ],
        None,
        &[("MY_PAT", &token)],
        None,
    )
    .await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["login"], "emulator-repo-write");
    assert_eq!(json["pat_from"], "MY_PAT");
    assert_eq!(json["target"]["can_read_secrets"], true);
    assert!(!run.stdout.contains(&token));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pat_that_cannot_read_the_target_exits_1_naming_why() {
    let stack = stack().await;

    let run = cli(
        &stack,
        Some(PatKind::RepoWrite),
        &["auth", "status", "--org", "local-org"],
        None,
    )
    .await;

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("✓ Logged in to GitHub as emulator-repo-write"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "✗ Cannot read the secrets of organisation local-org: The PAT lacks permission"
        ),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_rate_limited_pat_exits_1_with_the_service_s_error_type() {
    let stack = stack().await;
    for (kind, error_type) in [
        (PatKind::Expired, "invalid_pat"),
        (PatKind::Invalid, "invalid_pat"),
        (PatKind::RateLimited, "rate_limited"),
    ] {
        let run = cli(
            &stack,
            Some(kind),
            &["auth", "status", "--json", "-R", REPO],
            None,
        )
        .await;
        assert_eq!(run.code, 1, "{kind:?}: {}", run.stderr);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(json["error_type"], error_type, "{kind:?}: {json}");
        assert!(!run.stdout.contains(&kind.token()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_a_repository_and_without_flags_only_the_login_is_checked() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();

    let run = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["auth", "status"],
        None,
        &[],
        Some(dir.path()),
    )
    .await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("✓ Logged in to GitHub as emulator-admin")
    );
    assert!(!run.stdout.contains("secrets of"), "{}", run.stdout);
}
