//! Converge, don't rewrite: client → Deploy Service (with its SQLite store) → GitHub Service
//! emulator, on loopback. A create that carries the value's fingerprint is skipped when the
//! service wrote that value last and GitHub's `updated_at` has not moved; written back, and said
//! so, when it moved; written on any doubt.

use std::time::Duration;

use mgraph_deploy_api::Action;
use mgraph_deploy_client::{
    Answer, DeployClient, Execution, Plaintext, PublicKey, Report, Sealed, Target,
};
use mgraph_deploy_emulator::{PatKind, Scope, seed};
use mgraph_deploy_local::{LocalStack, StackOptions};
use serde_json::{Value, json};

struct World {
    stack: LocalStack,
    client: DeployClient,
    key: PublicKey,
}

impl World {
    async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    async fn start_with(options: StackOptions) -> Self {
        let stack = LocalStack::start(options).await.unwrap();
        let api_key = mgraph_deploy_client::ApiKey {
            name: stack.api_key.name.clone(),
            value: stack.api_key.value.clone(),
        };
        let client =
            DeployClient::new(&stack.service_url, Some(api_key), Duration::from_secs(30)).unwrap();
        let key = client.public_key().await.unwrap();
        Self { stack, client, key }
    }

    fn pat(&self) -> Sealed {
        self.key.seal(PatKind::Admin.token().as_bytes())
    }

    fn seal(&self, value: &str) -> Sealed {
        Plaintext::new(value.to_owned()).seal_to(&self.key)
    }

    /// A workflow writing each `(name, value)` to the repository, each with a fingerprint of its
    /// value (a stand-in for the client's keyed one: the service only compares them).
    fn workflow(&self, secrets: &[(&str, &str)], options: Value) -> Value {
        let operations: Vec<Value> = secrets
            .iter()
            .map(|(name, value)| {
                json!({ "type": "github:secrets:create", "secret_name": name,
                        "encrypted_value": self.seal(value), "value_fingerprint": fingerprint(value) })
            })
            .collect();
        json!({ "credentials": { "github_pat": self.pat() }, "target": repo(),
                "options": options, "operations": operations })
    }

    async fn run(&self, workflow: &Value) -> Answer<Report> {
        match self.client.execute(workflow).await.unwrap() {
            Execution::Ran(report) => report,
            other => panic!("the workflow ran: {other:?}"),
        }
    }

    /// GitHub writes so far: the GitHub Service's create calls.
    fn writes(&self) -> usize {
        self.stack
            .emulator
            .requests()
            .iter()
            .filter(|r| r.ends_with("/create"))
            .count()
    }

    fn stored(&self, name: &str) -> Option<String> {
        self.stack
            .emulator
            .secret(&repo_scope(), name)
            .map(|s| s.plaintext)
    }

    fn write_outside(&self, name: &str, value: &str, at: &str) {
        assert!(
            self.stack
                .emulator
                .github(|gh| gh.write_outside(&repo_scope(), name, value, at))
        );
    }
}

fn fingerprint(value: &str) -> String {
    let sum: u64 = value.bytes().fold(1469598103934665603, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    });
    format!("test:k1:{sum:016x}")
}

fn repo() -> Target {
    Target::repo(seed::OWNER, seed::REPO).unwrap()
}

fn repo_scope() -> Scope {
    Scope::repo(seed::OWNER, seed::REPO)
}

fn actions(report: &Report) -> Vec<&'static str> {
    report
        .results
        .iter()
        .map(|r| {
            assert!(r.success, "{r:?}");
            if r.data["unchanged"] == true {
                "unchanged"
            } else if r.data["drifted"] == true {
                "drifted"
            } else {
                "written"
            }
        })
        .collect()
}

const FIVE: [(&str, &str); 5] = [
    ("ONE", "1"),
    ("TWO", "2"),
    ("THREE", "3"),
    ("FOUR", "4"),
    ("FIVE", "5"),
];

#[tokio::test]
async fn re_applying_unchanged_values_writes_nothing_and_one_changed_value_writes_one_secret() {
    let w = World::start().await;
    let first = w.run(&w.workflow(&FIVE, json!({}))).await;
    assert_eq!(actions(&first), ["written"; 5]);
    assert_eq!(w.writes(), 5);

    let again = w.run(&w.workflow(&FIVE, json!({}))).await;
    assert_eq!(again.status, 200);
    assert_eq!(actions(&again), ["unchanged"; 5]);
    assert_eq!(w.writes(), 5, "nothing written again");
    assert!(
        again.results[0]
            .messages
            .iter()
            .any(|m| m.starts_with("Not written: unchanged")),
        "{:?}",
        again.results[0].messages
    );

    let mut changed = FIVE;
    changed[2] = ("THREE", "three");
    let one = w.run(&w.workflow(&changed, json!({}))).await;
    assert_eq!(
        actions(&one),
        [
            "unchanged",
            "unchanged",
            "written",
            "unchanged",
            "unchanged"
        ]
    );
    assert_eq!(w.writes(), 6);
    assert_eq!(w.stored("THREE").as_deref(), Some("three"));

    let forced = w.run(&w.workflow(&changed, json!({ "force": true }))).await;
    assert_eq!(actions(&forced), ["written"; 5]);
    assert_eq!(w.writes(), 11);

    // The history tells the skipped steps apart.
    let listed = w
        .client
        .history(&w.pat(), &repo(), Some(1), None)
        .await
        .unwrap();
    let id = listed.data.as_ref().unwrap().executions[0].id.clone();
    let shown = w.client.execution(&w.pat(), id.as_str()).await.unwrap();
    let outcomes: Vec<&str> = shown
        .data
        .as_ref()
        .unwrap()
        .execution
        .steps
        .iter()
        .map(|s| s.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["written"; 5], "the forced run");
}

#[tokio::test]
async fn a_secret_changed_outside_the_service_is_planned_and_reported_as_drifted_and_written_back()
{
    let w = World::start().await;
    let secrets = [("API_KEY", "ours")];
    w.run(&w.workflow(&secrets, json!({}))).await;
    w.write_outside("API_KEY", "theirs", "2099-01-01T00:00:00Z");

    let plan = w
        .client
        .plan(&w.workflow(&secrets, json!({ "check_state": true })))
        .await
        .unwrap();
    assert_eq!(plan.plan[0].action, Action::Drifted, "{plan:?}");
    assert!(
        plan.warnings.iter().any(|m| m.contains("changed outside")),
        "{:?}",
        plan.warnings
    );

    let report = w.run(&w.workflow(&secrets, json!({}))).await;
    assert_eq!(actions(&report), ["drifted"]);
    assert!(
        report.results[0]
            .messages
            .iter()
            .any(|m| m.contains("2099-01-01T00:00:00Z")),
        "{:?}",
        report.results[0].messages
    );
    assert_eq!(w.stored("API_KEY").as_deref(), Some("ours"));

    let settled = w.run(&w.workflow(&secrets, json!({}))).await;
    assert_eq!(actions(&settled), ["unchanged"]);
    let plan = w
        .client
        .plan(&w.workflow(&secrets, json!({ "check_state": true })))
        .await
        .unwrap();
    assert_eq!(plan.plan[0].action, Action::Unchanged);
}

#[tokio::test]
async fn nothing_is_skipped_on_a_guess() {
    let w = World::start().await;
    w.run(&w.workflow(&[("KEY", "a")], json!({}))).await;
    let written = w.writes();

    // Another value, even within the same second as the write before it.
    let other = w.run(&w.workflow(&[("KEY", "b")], json!({}))).await;
    assert_eq!(actions(&other), ["written"]);
    assert_eq!(w.stored("KEY").as_deref(), Some("b"));

    // No fingerprint: written, and the fingerprint before it forgotten.
    let mut bare = w.workflow(&[("KEY", "b")], json!({}));
    bare["operations"][0]
        .as_object_mut()
        .unwrap()
        .remove("value_fingerprint");
    assert_eq!(actions(&*w.run(&bare).await), ["written"]);
    assert_eq!(
        actions(&*w.run(&w.workflow(&[("KEY", "b")], json!({}))).await),
        ["written"]
    );

    // Deleted by this service: forgotten, so written again.
    let delete = json!({ "credentials": { "github_pat": w.pat() }, "target": repo(),
        "operations": [{ "type": "github:secrets:delete", "secret_name": "KEY" }] });
    w.run(&delete).await;
    assert_eq!(
        actions(&*w.run(&w.workflow(&[("KEY", "b")], json!({}))).await),
        ["written"]
    );
    assert_eq!(w.stored("KEY").as_deref(), Some("b"));
    assert_eq!(w.writes(), written + 4);
}

#[tokio::test]
async fn two_writes_of_one_secret_at_once_never_leave_a_record_that_skips_the_wrong_value() {
    let w = World::start().await;
    for round in 0..16 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let (write_a, write_b) = (
            w.workflow(&[("RACE", &a)], json!({})),
            w.workflow(&[("RACE", &b)], json!({})),
        );
        let (left, right) = tokio::join!(w.run(&write_a), w.run(&write_b));
        assert_eq!((left.completed, right.completed), (1, 1));
        let kept = w.stored("RACE").unwrap();
        let lost = if kept == a { &b } else { &a };
        // The value GitHub does not hold is always written.
        let again = w.run(&w.workflow(&[("RACE", lost)], json!({}))).await;
        assert_eq!(actions(&again), ["written"], "round {round}");
        assert_eq!(w.stored("RACE").as_deref(), Some(lost.as_str()));
    }
}

#[tokio::test]
async fn beyond_the_first_page_of_a_listing_unchanged_values_are_found_by_name() {
    let w = World::start().await;
    let values: Vec<(String, String)> = (0..40)
        .map(|i| (format!("SECRET_{i:02}"), format!("value-{i}")))
        .collect();
    let secrets: Vec<(&str, &str)> = values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    w.run(&w.workflow(&secrets, json!({ "concurrency": 16 })))
        .await;
    let plan = w
        .client
        .plan(&w.workflow(&secrets, json!({ "check_state": true })))
        .await
        .unwrap();
    let actions: Vec<Action> = plan.plan.iter().map(|s| s.action).collect();
    assert_eq!(actions, vec![Action::Unchanged; 40], "{:?}", plan.warnings);
    assert_eq!(plan.estimate.github_writes, 0);
}

#[tokio::test]
async fn prune_deletes_only_what_the_service_wrote_and_the_plan_shows_it_first() {
    let w = World::start().await;
    w.run(&w.workflow(&[("KEEP", "1"), ("OLD_A", "2"), ("OLD_B", "3")], json!({})))
        .await;
    w.write_outside("NOT_OURS", "x", "2099-01-01T00:00:00Z");

    let pruning = w.workflow(
        &[("KEEP", "1")],
        json!({ "prune": true, "check_state": true }),
    );
    let plan = w.client.plan(&pruning).await.unwrap();
    let steps: Vec<(String, Action)> = plan
        .plan
        .iter()
        .map(|s| (s.secret_name.as_ref().unwrap().to_string(), s.action))
        .collect();
    assert_eq!(
        steps,
        [
            ("KEEP".to_owned(), Action::Unchanged),
            ("OLD_A".to_owned(), Action::Prune),
            ("OLD_B".to_owned(), Action::Prune),
        ]
    );
    let unmanaged: Vec<String> = plan
        .unmanaged
        .iter()
        .map(|u| u.secret_name.to_string())
        .collect();
    assert_eq!(unmanaged, ["NOT_OURS"]);
    assert!(w.stored("OLD_A").is_some(), "a plan changes nothing");

    let report = w.run(&pruning).await;
    assert_eq!(report.status, 200, "{:?}", report.results);
    assert_eq!(report.total_operations, 3);
    let pruned: Vec<Option<Action>> = report.results.iter().map(|r| r.action).collect();
    assert_eq!(
        pruned,
        [
            Some(Action::Unchanged),
            Some(Action::Prune),
            Some(Action::Prune)
        ]
    );
    assert_eq!(w.stored("OLD_A"), None);
    assert_eq!(w.stored("OLD_B"), None);
    assert_eq!(w.stored("KEEP").as_deref(), Some("1"));
    assert_eq!(
        w.stored("NOT_OURS").as_deref(),
        Some("x"),
        "never ours, never deleted"
    );

    let again = w.client.plan(&pruning).await.unwrap();
    assert_eq!(
        again.plan.len(),
        1,
        "nothing left to prune: {:?}",
        again.plan
    );
}

#[tokio::test]
async fn a_write_that_failed_leaves_no_fingerprint_and_prune_spares_a_secret_it_never_wrote() {
    use mgraph_deploy::store::{Sqlite, Store, TargetKey, now_ms};
    use mgraph_deploy_emulator::Fault;
    use mgraph_deploy_local::StackStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let w = World::start_with(StackOptions {
        store: StackStore::At(path.clone()),
        ..StackOptions::default()
    })
    .await;

    // An existing secret this service never wrote; a write to it fails upstream.
    w.write_outside("LEGACY", "theirs", "2020-01-01T00:00:00Z");
    w.stack.emulator.fail_next(Fault::Status(500), 1);
    let failed = w.run(&w.workflow(&[("LEGACY", "ours")], json!({}))).await;
    assert_eq!(failed.failed, 1, "{:?}", failed.results);
    assert_eq!(w.stored("LEGACY").as_deref(), Some("theirs"));

    // Whatever it tried, the store keeps no fingerprint for it: the next run writes.
    let store = Sqlite::open(&path, now_ms()).unwrap();
    let record = store
        .written(TargetKey::of(&repo()), "LEGACY".try_into().unwrap())
        .await
        .unwrap()
        .expect("the attempt is remembered");
    assert_eq!((record.fingerprint, record.updated_at), (None, None));

    // A prune of a file without it leaves it alone, and says why.
    w.run(&w.workflow(&[("OTHER", "1")], json!({}))).await;
    let plan = w
        .client
        .plan(&w.workflow(&[("OTHER", "1")], json!({ "prune": true })))
        .await
        .unwrap();
    assert!(
        plan.plan.iter().all(|s| s.action != Action::Prune),
        "{:?}",
        plan.plan
    );
    assert!(
        plan.warnings
            .iter()
            .any(|m| m.contains("not pruned: LEGACY") && m.contains("unconfirmed")),
        "{:?}",
        plan.warnings
    );
    w.run(&w.workflow(&[("OTHER", "1")], json!({ "prune": true })))
        .await;
    assert_eq!(w.stored("LEGACY").as_deref(), Some("theirs"));
}
