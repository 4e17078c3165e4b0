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

/// The completion script of `shell`, written to `dir`; its path.
fn completion_script(shell: &str, dir: &std::path::Path) -> String {
    let output = std::process::Command::new(CLI)
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let path = dir.join(format!("completions.{shell}"));
    std::fs::write(&path, output.stdout).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Whether `shell` is on this machine; when it is not and `MGRAPH_REQUIRE_SHELLS` is set (the CI
/// gate installs every shell), the test fails.
fn have(shell: &str) -> bool {
    let found = std::process::Command::new(shell)
        .args(["-c", "exit 0"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("MGRAPH_REQUIRE_SHELLS").is_none(),
            "{shell} is not installed"
        );
        eprintln!("{shell} is not installed: its completions are not checked here");
    }
    found
}

/// What each shell completes after these words: the top level, a subcommand, a subcommand's flags.
const ASKED: [(&str, &[&str]); 3] = [
    ("mgraph-deploy-cli sec", &["secret"]),
    ("mgraph-deploy-cli secret s", &["set"]),
    (
        "mgraph-deploy-cli secret set --v",
        &["--value-env", "--value-file", "--visibility"],
    ),
];

fn run_shell(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{program}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn completions_offer_subcommands_and_their_flags_in_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();

    // bash: the function `complete -p` names, called as readline would, answers in COMPREPLY.
    let bash = completion_script("bash", dir.path());
    for (line, expected) in ASKED {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            r#"source {bash}
spec=$(complete -p mgraph-deploy-cli) || exit 3
function=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE="{line}"
COMP_POINT=${{#COMP_LINE}}
"$function" mgraph-deploy-cli "{current}" "{previous}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            words = words.join(" "),
            cword = words.len() - 1,
            current = words[words.len() - 1],
            previous = words[words.len() - 2],
        );
        let offered = run_shell("bash", &["-c", &script]);
        let mut offered: Vec<&str> = offered.lines().collect();
        offered.sort();
        assert_eq!(offered, expected, "bash, after {line:?}");
    }

    // fish: `complete -C` completes a command line as if typed.
    if have("fish") {
        let fish = completion_script("fish", dir.path());
        for (line, expected) in ASKED {
            let offered = run_shell(
                "fish",
                &["-c", &format!("source {fish}; complete -C '{line}'")],
            );
            let mut offered: Vec<&str> = offered
                .lines()
                .map(|l| l.split('\t').next().unwrap())
                .collect();
            offered.sort();
            assert_eq!(offered, expected, "fish, after {line:?}");
        }
    }

    // zsh: an interactive zsh in a pseudo-terminal (zsh/zpty), whose completion system is asked
    // with a TAB; each match it adds is printed between markers.
    if have("zsh") {
        let zsh = completion_script("zsh", dir.path());
        let capture = dir.path().join("capture.zsh");
        std::fs::write(&capture, ZSH_CAPTURE).unwrap();
        for (line, expected) in ASKED {
            let offered = run_shell(
                "timeout",
                &["20", "zsh", "-f", capture.to_str().unwrap(), &zsh, line],
            );
            let mut offered: Vec<&str> = offered
                .split("MATCH<")
                .skip(1)
                .filter_map(|m| m.split_once('>').map(|(word, _)| word))
                .collect();
            offered.sort();
            offered.dedup();
            assert_eq!(offered, expected, "zsh, after {line:?}");
        }
    }
}

/// `zsh -f capture.zsh SCRIPT LINE`: prints every match zsh's completion offers for LINE as
/// `MATCH<word>`, then `FINISHED.` (markers spelled in pieces, so that the terminal's echo of what is
/// typed never holds them).
const ZSH_CAPTURE: &str = r#"zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z 'PROMPT="> "'
zpty -w z 'autoload -U compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -rn -- "MA""TCH<$h>"; done
}'
zpty -w z 'comppostfuncs=( __done ); __done() { print -rn -- "FINI""SHED."; exit }'
zpty -w z "bindkey '^I' complete-word"
zpty -n -w z "$2"$'\t'
local out line
while zpty -r z line; do
  out+=$line
  [[ $out == *FINISHED.* ]] && break
done
print -r -- $out
zpty -d z
"#;

#[tokio::test(flavor = "multi_thread")]
async fn under_json_every_refusal_of_the_arguments_is_the_json_object_on_stdout() {
    let stack = stack().await;
    for args in [
        &["--json", "secret", "set", "X", "-R", REPO, "-o", seed::ORG][..],
        &["secret", "set", "X", "--no-such-flag", "--json"][..],
        &["--json", "secret"][..],
    ] {
        let run = cli(&stack, Some(PatKind::Admin), args, None).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let refusal: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {:?}", run.stdout));
        assert_eq!(refusal["success"], false, "{args:?}");
        assert_eq!(refusal["error_type"], "invalid_input", "{args:?}");
        assert!(
            refusal["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{args:?}: {refusal}"
        );
    }
    // The refusal says what is missing.
    let missing = cli(&stack, None, &["--json", "secret", "get"], None).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stdout.contains("<NAME>"), "{}", missing.stdout);
    // Help is not a refusal.
    let help = cli(&stack, None, &["--json", "secret", "set", "--help"], None).await;
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("Usage:"), "{}", help.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn gh_s_json_field_list_and_repository_urls_are_taken_as_gh_takes_them() {
    let stack = stack().await;
    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "secret",
            "set",
            "URL_FORM",
            "-R",
            "https://github.com/local-owner/local-repo",
        ],
        Some("v"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    assert_eq!(
        stack.emulator.secret(&scope, "URL_FORM").unwrap().plaintext,
        "v"
    );

    let listed = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["secret", "list", "--json", "name,updatedAt"],
        None,
        &[("GH_REPO", "https://github.com/local-owner/local-repo.git")],
        None,
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "URL_FORM")
        .expect("the secret is listed");
    let mut keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["name", "updatedAt"]);

    let refused = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "secret",
            "list",
            "-R",
            REPO,
            "--json",
            "name,numSelectedRepos",
        ],
        None,
    )
    .await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stdout.contains("numSelectedRepos is not available"),
        "{}",
        refused.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_dies_mid_execute_is_not_called_unreachable_and_the_cli_says_how_to_see_what_landed()
 {
    let stack = stack().await;
    let front = front_dropping_after(&stack.service_url, "/execute", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "x.env", "LANDED_A=1\nLANDED_B=2\n");

    let run = cli_in(
        &stack,
        Some(PatKind::Admin),
        &["apply", "-f", &file, "-R", REPO],
        None,
        &[("DEPLOY_SERVICE__URL", front.as_str())],
        None,
    )
    .await;

    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("failed after the request was sent")
            && run.stderr.contains("may or may not have been done")
            && run.stderr.contains("--dry-run --check-state"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("check DEPLOY_SERVICE__URL"),
        "{}",
        run.stderr
    );
    // The writes did land.
    let scope = Scope::repo(seed::OWNER, seed::REPO);
    assert!(stack.emulator.secret(&scope, "LANDED_A").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_reports_a_secret_declared_required_false_as_optional_and_never_fails_on_it() {
    let stack = stack().await;
    let set = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "REQ", "-R", REPO],
        Some("v"),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("reusable.yml"),
        "on:\n  workflow_call:\n    secrets:\n      OPT:\n        required: false\n      REQ:\n        required: true\njobs:\n  build:\n    runs-on: x\n    steps:\n      - run: echo ${{ secrets.OPT }} ${{ secrets.REQ }}\n",
    )
    .unwrap();
    std::fs::write(
        workflows.join("ci.yml"),
        "on: push\njobs:\n  inherit:\n    uses: ./.github/workflows/reusable.yml\n    secrets: inherit\n  mapped:\n    uses: ./.github/workflows/reusable.yml\n    secrets:\n      REQ: ${{ secrets.REQ }}\n",
    )
    .unwrap();
    let dir_arg = dir.path().to_str().unwrap();

    let text = cli(
        &stack,
        Some(PatKind::Admin),
        &["preflight", "--dir", dir_arg, "-R", REPO],
        None,
    )
    .await;
    let json = cli(
        &stack,
        Some(PatKind::Admin),
        &["--json", "preflight", "--dir", dir_arg, "-R", REPO],
        None,
    )
    .await;

    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    assert!(!text.stdout.contains("MISSING"), "{}", text.stdout);
    assert!(!text.stdout.contains("NOT PASSED"), "{}", text.stdout);
    let optional: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.starts_with("optional") && l.contains("OPT"))
        .collect();
    assert_eq!(
        optional.len(),
        2,
        "inherited and not passed: {}",
        text.stdout
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let opt = report["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "OPT")
        .unwrap();
    assert_eq!(
        (opt["present"].clone(), opt["optional"].clone()),
        (false.into(), true.into())
    );
    assert_eq!(report["not_passed"][0]["optional"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn seal_reads_stdin_as_secret_set_does_trailing_newlines_trimmed_unless_kept() {
    let stack = stack().await;
    let seal = async |args: &[&str], stdin: &str| {
        let run = cli(&stack, None, args, Some(stdin)).await;
        (
            run.code,
            stack.emulator.open(run.stdout.trim()).ok(),
            run.stderr,
        )
    };

    let (code, opened, stderr) = seal(&["seal"], "v\n").await;
    assert_eq!((code, opened.as_deref()), (0, Some("v")), "{stderr}");
    let (code, opened, stderr) = seal(&["seal", "--keep-newline"], "v\n").await;
    assert_eq!((code, opened.as_deref()), (0, Some("v\n")), "{stderr}");
    let (code, _, stderr) = seal(&["seal"], "\n").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--allow-empty"), "{stderr}");
    let (code, opened, stderr) = seal(&["seal", "--allow-empty"], "\n").await;
    assert_eq!((code, opened.as_deref()), (0, Some("")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_does_not_advise_splitting_the_workflows_it_splits_and_paces_itself() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let values: String = (0..75).map(|i| format!("PACED_{i:02}=v\n")).collect();
    let file = write_file(dir.path(), "many.env", &values);

    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["apply", "-f", &file, "-R", REPO];
        args.extend_from_slice(extra);
        let run = cli(&stack, Some(PatKind::Admin), &args, None).await;
        assert_eq!(run.code, 0, "{extra:?}: {}", run.stderr);
        for printed in [&run.stdout, &run.stderr] {
            assert!(
                !printed.contains("consider splitting"),
                "{extra:?}: {printed}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_s_refusals_name_the_cli_s_flags_not_the_api_s_fields() {
    let stack = stack().await;
    let selected = cli(
        &stack,
        Some(PatKind::Admin),
        &[
            "secret",
            "set",
            "NPM_TOKEN",
            "-o",
            seed::ORG,
            "--repo-ids",
            "101,202",
        ],
        Some("v1"),
    )
    .await;
    assert_eq!(selected.code, 0, "{}", selected.stderr);

    let again = cli(
        &stack,
        Some(PatKind::Admin),
        &["secret", "set", "NPM_TOKEN", "-o", seed::ORG],
        Some("v2"),
    )
    .await;

    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("pass `--repo-ids`")
            && again.stderr.contains("`-v/--visibility`")
            && !again.stderr.contains("`repo_ids`"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_cut_off_in_its_second_workflow_reports_what_the_first_wrote() {
    let stack = stack().await;
    let front = front_dropping_after(&stack.service_url, "/execute", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let values: String = (0..300).map(|i| format!("CUT_{i:03}=v\n")).collect();
    let file = write_file(dir.path(), "many.env", &values);

    let run = cli_in(
        &stack,
        Some(PatKind::Admin),
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
        &[("DEPLOY_SERVICE__URL", front.as_str())],
        None,
    )
    .await;

    assert_eq!(run.code, 3, "{}", run.stderr);
    let ok = run.stdout.lines().filter(|l| l.starts_with("ok")).count();
    let unknown = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL") && l.contains("may or may not have been written"))
        .count();
    assert_eq!((ok, unknown), (150, 150), "{}", run.stdout);
    assert!(
        run.stderr.contains("workflow 2 of 2 got no answer"),
        "{}",
        run.stderr
    );
}
