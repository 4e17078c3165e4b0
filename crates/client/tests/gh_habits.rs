//! What a daily `gh secret` user trips on, each through the CLI binary against the offline stack:
//! names GitHub treats as one, lists cut at a page, refusals under `--json`, `gh`'s own spellings.

mod common;

use common::*;
use mgraph_deploy_emulator::{PatKind, Scope, seed};

#[tokio::test(flavor = "multi_thread")]
async fn a_file_naming_one_secret_in_two_cases_is_refused_before_anything_is_sent() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "case.env", "lower=1\nLOWER=2\n");
    let before = stack.emulator.requests().len();

    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO, "--dry-run"],
        None,
    )
    .await;

    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("line 2, column 1: LOWER is given twice (line 1 as lower, line 2 as LOWER)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        stack.emulator.requests().len(),
        before,
        "something was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lower_case_name_is_written_as_github_stores_it_and_the_cli_says_so() {
    let stack = stack().await;
    let scope = Scope::repo(seed::OWNER, seed::REPO);

    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "api_key", "-R", REPO],
        Some("v1"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "x.env", "db_url=v2\n");
    let apply = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO],
        None,
    )
    .await;

    for (run, given, stored, value) in [
        (&set, "api_key", "API_KEY", "v1"),
        (&apply, "db_url", "DB_URL", "v2"),
    ] {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("note: '{given}' is written as '{stored}'")),
            "{}",
            run.stderr
        );
        assert_eq!(
            stack.emulator.secret(&scope, stored).unwrap().plaintext,
            value
        );
    }
    let names: Vec<String> = stack
        .emulator
        .secret_names(&scope)
        .into_iter()
        .filter(|n| n.eq_ignore_ascii_case("api_key") || n.eq_ignore_ascii_case("db_url"))
        .collect();
    assert_eq!(names, ["API_KEY", "DB_URL"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_list_lines_its_columns_up() {
    let stack = stack().await;
    let other = format!("{}/{}", seed::OWNER, seed::OTHER_REPO);
    for name in ["A", "A_MUCH_LONGER_SECRET_NAME"] {
        let run = cli(
            &stack,
            Some(PatKind::Admin),
            &["secret", "set", name, "-R", &other],
            Some("v"),
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    let run = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "list", "-R", &other],
        None,
    )
    .await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let columns: Vec<usize> = run
        .stdout
        .lines()
        .map(|line| line.find(" updated ").unwrap())
        .collect();
    assert_eq!(columns.len(), 2, "{}", run.stdout);
    assert_eq!(columns[0], columns[1], "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_cut_at_github_s_first_page_says_so_in_text_json_and_preflight() {
    let stack = stack().await;
    let other = format!("{}/{}", seed::OWNER, seed::OTHER_REPO);
    let dir = tempfile::tempdir().unwrap();
    let values: String = (0..31).map(|i| format!("S_{i:02}=v\n")).collect();
    let file = write_file(dir.path(), "many.env", &values);
    let applied = cli(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", &other],
        None,
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);

    let text = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "list", "-R", &other],
        None,
    )
    .await;
    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &["--json", "secret", "list", "-R", &other],
        None,
    )
    .await;

    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stderr
            .contains("30 secret(s) in local-owner/other-repo (the first page: there may be more)"),
        "{}",
        text.stderr
    );
    for run in [&text, &json] {
        assert!(
            run.stderr.contains("note: this is GitHub's first page"),
            "{}",
            run.stderr
        );
    }
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 30);

    // preflight: S_30 exists, but a one-page list cannot show it; it is not called unused, and
    // the report says why.
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("ci.yml"),
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ secrets.S_30 }}\n",
    )
    .unwrap();
    let preflight = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "preflight",
            "--dir",
            dir.path().to_str().unwrap(),
            "-R",
            &other,
        ],
        None,
    )
    .await;
    assert_eq!(
        preflight.code, 0,
        "{}{}",
        preflight.stdout, preflight.stderr
    );
    assert!(
        preflight
            .stderr
            .contains("may hold more secrets than the GitHub Service lists"),
        "{}",
        preflight.stderr
    );
}
