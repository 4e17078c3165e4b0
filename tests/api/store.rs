//! One conformance suite for the history store, run against every backend: SQLite always, and
//! DynamoDB when `MGRAPH_DYNAMODB_TABLE` names a table (the CI gate starts moto's server and
//! makes one; `MGRAPH_REQUIRE_DYNAMODB` makes its absence a failure there).

use std::time::Duration;

use futures_util::future::join_all;
use mgraph_deploy::store::{
    DynamoDb, Finish, LONGEST_RUN, NewExecution, Sqlite, StepRecord, Store, TargetKey, TargetRef,
    Written, now_ms,
};
use mgraph_deploy_api::{
    ErrorType, ExecutionStatus, HistoryCursor, OperationKind, Scope, SecretName, StepOutcome,
    Target,
};

/// Ids and targets of one run of the suite, so that runs sharing a table never meet.
struct Run {
    tag: String,
}

impl Run {
    fn new() -> Self {
        Self {
            tag: format!("{:x}", now_ms() ^ u64::from(std::process::id())),
        }
    }

    fn id(&self, n: usize) -> String {
        format!("exec-{}-{n}", self.tag)
    }

    fn target(&self, repo: &str) -> Target {
        serde_json::from_value(serde_json::json!({
            "owner": format!("owner-{}", self.tag), "repo": repo }))
        .unwrap()
    }
}

fn start(id: &str, started_ms: u64, targets: &[&Target], total: u64) -> NewExecution {
    NewExecution {
        id: id.to_owned(),
        started_ms,
        caller: Some("x-api-key".to_owned()),
        route: "POST /execute".to_owned(),
        total,
        targets: targets.iter().map(|t| TargetRef::of(t)).collect(),
        deadline_ms: started_ms + 60_000,
        expires_at: started_ms / 1000 + 90 * 86_400,
    }
}

fn step(n: u64, target: &Target, name: &str) -> StepRecord {
    StepRecord {
        step: n,
        operation: OperationKind::Create,
        target: Some(TargetRef::of(target)),
        scope: Some(target.scope()),
        secret_name: Some(SecretName::try_from(name).unwrap()),
        outcome: if n.is_multiple_of(2) {
            StepOutcome::Failed
        } else {
            StepOutcome::Written
        },
        error_type: n.is_multiple_of(2).then_some(ErrorType::Forbidden),
        duration_ms: 12 * n,
        upstream_calls: n,
    }
}

fn finish(at: u64) -> Finish {
    Finish {
        finished_ms: at,
        status: ExecutionStatus::Partial,
        completed: 1,
        failed: 1,
        skipped: 0,
    }
}

async fn conformance(store: &dyn Store) {
    let run = Run::new();
    let now = now_ms();
    let app = run.target("app");
    let other = run.target("other");

    // Recorded, then read back as it was written.
    let first = start(&run.id(1), now, &[&app, &other], 2);
    store.begin(first.clone()).await.unwrap();
    store
        .step(run.id(1), step(2, &other, "B_KEY"), first.expires_at)
        .await
        .unwrap();
    store
        .step(run.id(1), step(1, &app, "a_key"), first.expires_at)
        .await
        .unwrap();
    let read = store.get(run.id(1), now).await.unwrap().unwrap();
    assert_eq!(
        read.start, first,
        "the start, its targets' keys and names included"
    );
    assert_eq!(read.start.caller.as_deref(), Some("x-api-key"));
    assert_eq!(read.start.route, "POST /execute");
    assert_eq!(read.status(now), ExecutionStatus::Running);
    assert_eq!(
        read.steps,
        vec![step(1, &app, "a_key"), step(2, &other, "B_KEY")],
        "in step order, names as stored"
    );
    assert_eq!(
        read.steps[0].secret_name.as_ref().unwrap().as_str(),
        "A_KEY"
    );
    store.finish(run.id(1), finish(now + 5)).await.unwrap();
    let read = store.get(run.id(1), now).await.unwrap().unwrap();
    assert_eq!(read.finish, Some(finish(now + 5)));
    assert_eq!(read.status(now), ExecutionStatus::Partial);

    // An id is recorded once: a second start with it is refused, never merged.
    let again = store.begin(start(&run.id(1), now + 1, &[&app], 1)).await;
    assert!(again.is_err_and(|e| e.exists), "an id was recorded twice");

    // Listed under each target it touched, and only there.
    for target in [&app, &other] {
        let page = store
            .list(TargetKey::of(target), 10, None, now)
            .await
            .unwrap();
        let ids: Vec<&str> = page
            .executions
            .iter()
            .map(|e| e.start.id.as_str())
            .collect();
        assert_eq!(ids, [run.id(1)], "{target}");
        assert_eq!(
            page.executions[0]
                .start
                .targets
                .iter()
                .map(|t| t.shown.as_str())
                .collect::<Vec<_>>(),
            [app.to_string(), other.to_string()]
        );
    }
    let nowhere = run.target("nowhere");
    let page = store
        .list(TargetKey::of(&nowhere), 10, None, now)
        .await
        .unwrap();
    assert!(page.executions.is_empty() && page.next.is_none());

    // Newest first, in pages; a whole execution recorded at once.
    let paged = run.target("paged");
    for n in 0..5u64 {
        let mut whole = mgraph_deploy::store::Stored {
            start: start(&run.id(10 + n as usize), now + n * 1000, &[&paged], 1),
            finish: Some(finish(now + n * 1000 + 10)),
            steps: vec![step(1, &paged, "SAME")],
        };
        whole.start.route = "POST /operations/github/secrets/create".to_owned();
        store.record(whole).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<HistoryCursor> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(TargetKey::of(&paged), 2, cursor.clone(), now)
            .await
            .unwrap();
        pages += 1;
        assert!(page.executions.len() <= 2);
        seen.extend(page.executions.into_iter().map(|e| e.start.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = (0..5).rev().map(|n| run.id(10 + n)).collect();
    assert_eq!(seen, newest_first);
    let whole = store.get(run.id(14), now).await.unwrap().unwrap();
    assert_eq!(whole.steps.len(), 1);
    assert_eq!(whole.status(now), ExecutionStatus::Partial);

    // Expiry is honoured on read, whether or not the backend deleted the records yet.
    let short = run.target("short");
    let mut expiring = start(&run.id(30), now, &[&short], 1);
    expiring.expires_at = now / 1000 + 60;
    store.begin(expiring).await.unwrap();
    let later = now + 61_000;
    assert!(store.get(run.id(30), later).await.unwrap().is_none());
    assert!(
        store
            .list(TargetKey::of(&short), 10, None, later)
            .await
            .unwrap()
            .executions
            .is_empty()
    );
    assert!(store.get(run.id(30), now).await.unwrap().is_some());

    // Never finished: running until its deadline, interrupted after; never running for
    // longer than the longest run.
    let cut = store.get(run.id(30), now).await.unwrap().unwrap();
    assert_eq!(cut.status(now + 60_000), ExecutionStatus::Running);
    assert_eq!(cut.status(now + 60_001), ExecutionStatus::Interrupted);
    let mut endless = cut.clone();
    endless.start.deadline_ms = u64::MAX;
    assert_eq!(
        endless.status(now + LONGEST_RUN.as_millis() as u64 + 1),
        ExecutionStatus::Interrupted
    );

    // Concurrent writers to one execution: every step lands.
    let busy = run.target("busy");
    let many = start(&run.id(40), now, &[&busy], 24);
    store.begin(many.clone()).await.unwrap();
    let writes = (1..=24u64).map(|n| {
        store.step(
            run.id(40),
            step(n, &busy, &format!("S_{n}")),
            many.expires_at,
        )
    });
    for written in join_all(writes).await {
        written.unwrap();
    }
    store.finish(run.id(40), finish(now + 9)).await.unwrap();
    let read = store.get(run.id(40), now).await.unwrap().unwrap();
    assert_eq!(
        read.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        (1..=24).collect::<Vec<_>>()
    );
    assert_eq!(read.steps[23].scope, Some(Scope::Repo));
}

fn claim(target: &Target, name: &str, claim: &str, fingerprint: Option<&str>) -> Written {
    Written {
        target: TargetRef::of(target),
        name: SecretName::try_from(name).unwrap(),
        execution: format!("exec-{claim}"),
        claim: claim.to_owned(),
        written_ms: 1_700_000_000_000,
        fingerprint: fingerprint.map(|f| f.try_into().unwrap()),
        settings: None,
        updated_at: None,
    }
}

/// What the service wrote: claimed, confirmed only by the claim still there, listed by
/// target, forgotten.
async fn written_conformance(store: &dyn Store) {
    let run = Run::new();
    let app = run.target("app");
    let key = TargetKey::of(&app);
    let name = |n: &str| SecretName::try_from(n).unwrap();

    assert_eq!(store.written(key.clone(), name("A")).await.unwrap(), None);
    let first = claim(&app, "A", "c1", Some("hmac-sha256:k1:aaaa"));
    store.claim(first.clone()).await.unwrap();
    assert_eq!(
        store.written(key.clone(), name("A")).await.unwrap(),
        Some(first.clone()),
        "a claim reads back as put, not yet confirmed"
    );
    assert!(
        !store
            .confirm(key.clone(), name("A"), "c0".into(), "t".into())
            .await
            .unwrap(),
        "another claim's confirmation changes nothing"
    );
    assert!(
        store
            .confirm(
                key.clone(),
                name("A"),
                "c1".into(),
                "2026-12-06T10:00:00Z".into()
            )
            .await
            .unwrap()
    );
    let confirmed = store
        .written(key.clone(), name("A"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        confirmed.updated_at.as_deref(),
        Some("2026-12-06T10:00:00Z")
    );
    assert_eq!(confirmed.fingerprint, first.fingerprint);

    // Two writes at once: the later claim replaces the earlier, whose confirmation then fails.
    store
        .claim(claim(&app, "A", "c2", Some("hmac-sha256:k1:bbbb")))
        .await
        .unwrap();
    store
        .claim(claim(&app, "A", "c3", Some("hmac-sha256:k1:cccc")))
        .await
        .unwrap();
    assert!(
        !store
            .confirm(key.clone(), name("A"), "c2".into(), "t2".into())
            .await
            .unwrap()
    );
    let open = store
        .written(key.clone(), name("A"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((open.claim.as_str(), open.updated_at), ("c3", None));

    // Listed by target, by name; a name is one record whatever wrote it last.
    store.claim(claim(&app, "B", "c4", None)).await.unwrap();
    let other = run.target("other");
    store.claim(claim(&other, "A", "c5", None)).await.unwrap();
    let names: Vec<String> = store
        .written_in(key.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name.to_string())
        .collect();
    assert_eq!(names, ["A", "B"]);

    // Forgotten: gone, and a late confirmation does not bring it back.
    store.forget(key.clone(), name("A")).await.unwrap();
    assert_eq!(store.written(key.clone(), name("A")).await.unwrap(), None);
    assert!(
        !store
            .confirm(key.clone(), name("A"), "c3".into(), "t3".into())
            .await
            .unwrap()
    );
    assert_eq!(store.written(key.clone(), name("A")).await.unwrap(), None);
    assert_eq!(
        store.written_in(TargetKey::of(&other)).await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("history.sqlite3"), now_ms()).unwrap();
    conformance(&store).await;
    written_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_first_version_is_migrated_and_keeps_its_executions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let store = Sqlite::open(&path, now_ms()).unwrap();
    let run = Run::new();
    let app = run.target("app");
    store
        .begin(start(&run.id(1), now_ms(), &[&app], 1))
        .await
        .unwrap();
    drop(store);
    // Back to the first version's schema: what a database of the first release holds.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch("DROP TABLE written; PRAGMA user_version = 1")
        .unwrap();
    drop(connection);
    let store = Sqlite::open(&path, now_ms()).unwrap();
    assert!(store.get(run.id(1), now_ms()).await.unwrap().is_some());
    written_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_store_passes_the_conformance_suite() {
    let Some(table) = std::env::var("MGRAPH_DYNAMODB_TABLE").ok() else {
        assert!(
            std::env::var_os("MGRAPH_REQUIRE_DYNAMODB").is_none(),
            "MGRAPH_DYNAMODB_TABLE is not set"
        );
        eprintln!("MGRAPH_DYNAMODB_TABLE is not set: the DynamoDB backend is checked by .ci/run");
        return;
    };
    let store = tokio::time::timeout(Duration::from_secs(30), DynamoDb::open(&table))
        .await
        .expect("DynamoDB answered")
        .unwrap();
    conformance(&store).await;
    written_conformance(&store).await;
}

#[test]
fn a_database_of_a_newer_version_is_refused_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    drop(Sqlite::open(&path, now_ms()).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    drop(connection);
    let refused = Sqlite::open(&path, now_ms()).unwrap_err();
    assert!(refused.message.contains("newer"), "{refused}");
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once_and_both_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|scope| {
        let opened: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    Sqlite::open(&path, now_ms()).map(drop)
                })
            })
            .collect();
        for open in opened {
            open.join().unwrap().unwrap();
        }
    });
}
