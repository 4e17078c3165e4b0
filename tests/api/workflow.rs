//! `/execute` and `/execute/plan`: validation, plan warnings and state, and the executor's
//! ordering, overlap, retries, deadline and `on_error` behaviour.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use mgraph_deploy::workflow::RetryPolicy;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

fn create_op(name: &str) -> Value {
    json!({ "type": "github:secrets:create", "secret_name": name, "encrypted_value": sealed_value() })
}

fn workflow(operations: Vec<Value>, options: Value) -> Value {
    json!({ "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
            "options": options, "operations": operations })
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

async fn harness() -> Harness {
    Harness::with_state(|_| {}, |state| state.workflow.retry = fast_retries()).await
}

async fn run(h: &Harness, route: &str, body: &Value) -> Reply {
    h.post_raw(route, body.to_string().into_bytes()).await
}

fn statuses(reply: &Reply) -> Vec<String> {
    reply.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// An upstream that records what is in flight: every request is held for a fixed latency.

#[derive(Default)]
struct Recorder {
    in_flight: Vec<String>,
    max_in_flight: usize,
    /// `("start" | "end", secret or scope key)` in the order they happened.
    events: Vec<(&'static str, String)>,
    /// A secret that arrived while another request on it was in flight.
    same_secret_overlaps: Vec<String>,
}

#[derive(Clone)]
struct Recording {
    recorder: Arc<Mutex<Recorder>>,
    latency: Duration,
}

async fn record(State(rec): State<Recording>, Json(body): Json<Value>) -> Json<Value> {
    let data = &body["request_data"];
    let key = data["secret_name"]
        .as_str()
        .map_or_else(|| "<list>".to_owned(), str::to_owned);
    {
        let mut r = rec.recorder.lock().unwrap();
        if key != "<list>" && r.in_flight.contains(&key) {
            r.same_secret_overlaps.push(key.clone());
        }
        r.in_flight.push(key.clone());
        r.max_in_flight = r.max_in_flight.max(r.in_flight.len());
        r.events.push(("start", key.clone()));
    }
    tokio::time::sleep(rec.latency).await; // the upstream's latency, not synchronisation
    {
        let mut r = rec.recorder.lock().unwrap();
        let at = r.in_flight.iter().position(|k| *k == key).unwrap();
        r.in_flight.remove(at);
        r.events.push(("end", key.clone()));
    }
    let data = if key == "<list>" {
        json!({ "secrets": [] })
    } else {
        json!({ "created": true, "secret": meta(&key), "deleted": true })
    };
    Json(json!({
        "response_context": { "success": true, "status_code": 200, "messages": [], "errors": [],
                              "error_type": "none", "rate_limit": upstream_rate_limit() },
        "response_data": data }))
}

/// Starts the recording upstream and a service pointed at it.
async fn recording_service(latency: Duration) -> (Harness, Arc<Mutex<Recorder>>) {
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let app = Router::new()
        .route("/github-secrets-repo/{action}", post(record).delete(record))
        .route("/github-secrets-env/{action}", post(record).delete(record))
        .with_state(Recording {
            recorder: recorder.clone(),
            latency,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = Harness::with_state(
        |vars| {
            vars.insert("URL__TARGET_SERVER__GITHUB_SERVICE".into(), url);
        },
        |state| state.workflow.retry = fast_retries(),
    )
    .await;
    (h, recorder)
}

#[tokio::test]
async fn steps_on_different_secrets_overlap_up_to_the_concurrency_and_never_beyond() {
    let (h, recorder) = recording_service(Duration::from_millis(60)).await;
    let ops = (0..12).map(|i| create_op(&format!("S_{i}"))).collect();

    let reply = run(&h, "/execute", &workflow(ops, json!({ "concurrency": 4 }))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["completed"], 12);
    assert_eq!(recorder.lock().unwrap().max_in_flight, 4);
}

#[tokio::test]
async fn steps_on_the_same_secret_never_overlap_and_keep_file_order() {
    let (h, recorder) = recording_service(Duration::from_millis(30)).await;
    let get = |n: &str| json!({ "type": "github:secrets:get", "secret_name": n });
    let delete = |n: &str| json!({ "type": "github:secrets:delete", "secret_name": n });
    let ops = vec![
        create_op("SHARED"),
        create_op("OTHER_1"),
        get("SHARED"),
        create_op("OTHER_2"),
        delete("SHARED"),
        create_op("OTHER_3"),
        create_op("SHARED"),
        get("SHARED"),
    ];

    let reply = run(&h, "/execute", &workflow(ops, json!({ "concurrency": 8 }))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let r = recorder.lock().unwrap();
    assert!(
        r.same_secret_overlaps.is_empty(),
        "{:?}",
        r.same_secret_overlaps
    );
    assert!(r.max_in_flight >= 2, "other secrets still overlap");
    let shared: Vec<&str> = r
        .events
        .iter()
        .filter(|(_, k)| k == "SHARED")
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(shared, ["start", "end"].repeat(5), "one at a time");
}

#[tokio::test]
async fn names_that_differ_only_in_case_are_one_secret_written_one_at_a_time_in_file_order() {
    let (h, recorder) = recording_service(Duration::from_millis(30)).await;
    let ops = vec![
        create_op("shared"),
        create_op("SHARED"),
        create_op("Shared"),
    ];

    let plan = run(&h, "/execute/plan", &workflow(ops.clone(), json!({}))).await;
    let reply = run(&h, "/execute", &workflow(ops, json!({ "concurrency": 8 }))).await;

    let warnings = plan.json["warnings"].to_string();
    assert!(
        warnings.contains("step 2 writes SHARED in octo-org/my-service again (step 1 wrote it before); the last write wins"),
        "{warnings}"
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let r = recorder.lock().unwrap();
    let shared: Vec<&str> = r
        .events
        .iter()
        .filter(|(_, k)| k == "SHARED")
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(
        shared,
        ["start", "end"].repeat(3),
        "one at a time, as stored"
    );
    assert!(r.same_secret_overlaps.is_empty());
}

#[tokio::test]
async fn a_list_starts_only_after_every_earlier_write_of_its_scope_ended() {
    let (h, recorder) = recording_service(Duration::from_millis(30)).await;
    let ops = vec![
        create_op("A"),
        create_op("B"),
        json!({ "type": "github:secrets:list" }),
        create_op("C"),
    ];

    let reply = run(&h, "/execute", &workflow(ops, json!({ "concurrency": 4 }))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let r = recorder.lock().unwrap();
    let at = |event: &str, key: &str| {
        r.events
            .iter()
            .position(|(e, k)| *e == event && k == key)
            .unwrap()
    };
    assert!(at("start", "<list>") > at("end", "A"));
    assert!(at("start", "<list>") > at("end", "B"));
    assert!(
        at("start", "C") > at("end", "<list>"),
        "a later write waits for the list"
    );
}

/// Creates succeed, except for the secret `BAD`, whose value the upstream cannot open.
async fn creates_succeed_except_bad(h: &Harness) {
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/create"))
        .and(body_partial_json(
            json!({ "request_data": { "secret_name": "BAD" } }),
        ))
        .respond_with(upstream_failure(
            401,
            "decryption_failed",
            "Failed to decrypt secret value",
            json!({}),
        ))
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_seed_briefs_six_secret_workflow_runs_end_to_end() {
    let h = harness().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    let names = [
        "AWS_ACCOUNT_ID",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "FAST_API__AUTH__API_KEY__NAME",
        "FAST_API__AUTH__API_KEY__VALUE",
    ];
    let body = json!({
        "credentials": { "github_pat": sealed_pat() },
        "target": { "owner": "the-cyber-boardroom", "repo": "my-new-service" },
        "operations": names.iter().enumerate().map(|(i, n)| json!({
            "type": "github:secrets:create", "secret_name": n,
            "encrypted_value": sealed_blob(100 + i as u64, 80) })).collect::<Vec<_>>(),
    });

    let reply = run(&h, "/execute", &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["success"], true);
    assert_eq!(reply.json["total_operations"], 6);
    assert_eq!(reply.json["completed"], 6);
    assert_eq!(reply.json["failed"], 0);
    assert_eq!(reply.json["skipped"], 0);
    let first = &reply.json["results"][0];
    assert_eq!(first["step"], 1);
    assert_eq!(first["operation"], "github:secrets:create");
    assert_eq!(first["secret_name"], "AWS_ACCOUNT_ID");
    assert_eq!(first["target"], "the-cyber-boardroom/my-new-service");
    assert_eq!(first["scope"], "repo");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["data"]["created"], true);
    assert_eq!(reply.json["rate_limit"]["remaining"], 4990);
    let mut sent: Vec<(String, String)> = h
        .upstream_requests()
        .await
        .iter()
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["request_data"]["secret_name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                b["request_data"]["encrypted_value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    sent.sort();
    let mut expected: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), sealed_blob(100 + i as u64, 80)))
        .collect();
    expected.sort();
    assert_eq!(sent, expected, "each value passed through unchanged");
}

#[tokio::test]
async fn a_step_with_its_own_target_goes_to_that_scope() {
    let h = harness().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-env/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    let mut org = create_op("NPM_TOKEN");
    org["target"] = org_target();
    org["visibility"] = json!("all");
    let mut env = create_op("DB_URL");
    env["target"] = env_target();

    let reply = run(&h, "/execute", &workflow(vec![org, env], json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["results"][0]["scope"], "org");
    assert_eq!(reply.json["results"][1]["scope"], "environment");
    assert_eq!(
        reply.json["results"][1]["target"],
        "octo-org/my-service (environment 'prod')"
    );
}

#[tokio::test]
async fn deleting_an_absent_secret_in_a_workflow_completes_with_deleted_false() {
    let h = harness().await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-repo/delete",
        swallowed_404("GONE"),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["OTHER"]))
        .await;
    let ops = vec![json!({ "type": "github:secrets:delete", "secret_name": "GONE" })];

    let reply = run(&h, "/execute", &workflow(ops, json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["results"][0]["data"],
        json!({ "deleted": false, "secret_name": "GONE", "scope": "repo" })
    );
}

#[tokio::test]
async fn transient_upstream_failures_are_retried_up_to_three_attempts() {
    let h = harness().await;
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/create"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;

    let reply = run(&h, "/execute", &workflow(vec![create_op("A")], json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["results"][0]["attempts"], 3);
    assert_eq!(reply.json["results"][0]["status"], "completed");
}

#[tokio::test]
async fn a_step_still_failing_after_three_attempts_reports_them() {
    let h = harness().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
    )
    .await;

    let reply = run(&h, "/execute", &workflow(vec![create_op("A")], json!({}))).await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(reply.json["results"][0]["attempts"], 3);
    assert_eq!(reply.json["results"][0]["error_type"], "upstream_error");
    assert_eq!(h.upstream_requests().await.len(), 3);
}

#[tokio::test]
async fn a_rejected_pat_is_never_retried() {
    let h = harness().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("A"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", list_invalid_pat())
        .await;
    let ops = vec![json!({ "type": "github:secrets:get", "secret_name": "A" })];

    let reply = run(&h, "/execute", &workflow(ops, json!({}))).await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(reply.json["results"][0]["error_type"], "invalid_pat");
    assert_eq!(reply.json["results"][0]["attempts"], 1);
    assert_eq!(
        h.upstream_requests().await.len(),
        2,
        "one get, one diagnosing list"
    );
}

#[tokio::test]
async fn a_rate_limited_step_waits_for_the_reset_before_trying_again() {
    let h = harness().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/list"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "response_context": { "success": false, "status_code": 429, "messages": [],
                "errors": ["GitHub API error: 403 rate limit exceeded"], "error_type": "rate_limited",
                "rate_limit": { "limit": 5000, "remaining": 0, "reset": reset, "used": 5000 } },
            "response_data": { "secrets": [] } })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;
    let ops = vec![json!({ "type": "github:secrets:list" })];

    let started = Instant::now();
    let reply = run(&h, "/execute", &workflow(ops, json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["results"][0]["attempts"], 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After (at least 1 s) was honoured, not the 5 ms backoff: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn steps_not_started_before_the_deadline_are_skipped() {
    let h = harness().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]).set_delay(Duration::from_millis(700)),
    )
    .await;
    let ops = (0..4).map(|i| create_op(&format!("S_{i}"))).collect();

    let reply = run(
        &h,
        "/execute",
        &workflow(ops, json!({ "concurrency": 1, "deadline_seconds": 1 })),
    )
    .await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(
        statuses(&reply),
        ["completed", "completed", "skipped", "skipped"]
    );
    assert_eq!(reply.json["results"][2]["error_type"], "deadline");
    assert_eq!(reply.json["results"][2]["attempts"], 0);
    assert_eq!(reply.json["completed"], 2);
    assert_eq!(reply.json["skipped"], 2);
    assert_eq!(h.upstream_requests().await.len(), 2);
}

#[tokio::test]
async fn on_error_stop_skips_everything_after_the_first_failure() {
    let h = harness().await;
    creates_succeed_except_bad(&h).await;
    let ops = vec![
        create_op("GOOD"),
        create_op("BAD"),
        create_op("NEXT"),
        create_op("LAST"),
    ];

    let reply = run(
        &h,
        "/execute",
        &workflow(ops, json!({ "concurrency": 1, "on_error": "stop" })),
    )
    .await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(
        statuses(&reply),
        ["completed", "failed", "skipped", "skipped"]
    );
    assert_eq!(reply.json["results"][1]["error_type"], "decryption_failed");
    assert_eq!(reply.json["results"][1]["attempts"], 1);
    assert_eq!(reply.json["results"][3]["error_type"], "stopped");
    assert_eq!(
        (
            &reply.json["completed"],
            &reply.json["failed"],
            &reply.json["skipped"]
        ),
        (&json!(1), &json!(1), &json!(2))
    );
}

#[tokio::test]
async fn with_on_error_continue_a_partial_failure_answers_207_with_the_counts() {
    let h = harness().await;
    creates_succeed_except_bad(&h).await;
    let ops = vec![create_op("A"), create_op("BAD"), create_op("B")];

    let reply = run(&h, "/execute", &workflow(ops, json!({}))).await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(reply.json["success"], false);
    assert_eq!(statuses(&reply), ["completed", "failed", "completed"]);
    assert_eq!(reply.json["completed"], 2);
    assert_eq!(reply.json["failed"], 1);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_workflow_is_answered_422_with_every_error_and_never_run() {
    let h = harness().await;
    let body = json!({
        "credentials": { "github_pat": "not base64!" },
        "options": { "concurrency": 17, "on_error": "panic" },
        "operations": [
            create_op("FINE"),
            { "type": "github:secrets:create", "secret_name": "GITHUB_X", "encrypted_value": sealed_value() },
            { "type": "github:secrets:rename", "secret_name": "A" },
            { "type": "github:secrets:get", "secret_name": "A", "encrypted_value": sealed_value(),
              "target": repo_target() },
            { "type": "github:secrets:list", "encrypted_pat": sealed_pat() },
        ],
    });

    for route in ["/execute", "/execute/plan"] {
        let reply = run(&h, route, &body).await;
        assert_eq!(reply.status, 422, "{route}: {}", reply.text);
        assert_eq!(reply.json["valid"], false);
        let errors: Vec<(Value, String)> = reply.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["step"].clone(), e["field"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            errors,
            vec![
                (Value::Null, "credentials.github_pat".to_owned()),
                (Value::Null, "options.on_error".to_owned()),
                (json!(1), "target".to_owned()),
                (json!(2), "secret_name".to_owned()),
                (json!(3), "type".to_owned()),
                (json!(4), "encrypted_value".to_owned()),
                (json!(5), "encrypted_pat".to_owned()),
            ],
            "{route}: {}",
            reply.text
        );
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn options_out_of_range_and_too_many_operations_are_errors() {
    let h = harness().await;
    let ops: Vec<Value> = (0..257).map(|i| create_op(&format!("S_{i}"))).collect();
    let reply = run(
        &h,
        "/execute/plan",
        &workflow(ops, json!({ "concurrency": 0, "deadline_seconds": 841 })),
    )
    .await;
    assert_eq!(reply.status, 422);
    let fields: Vec<&str> = reply.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "options.concurrency",
            "options.deadline_seconds",
            "operations"
        ]
    );
    assert_eq!(reply.json["total_operations"], 257);
}

#[tokio::test]
async fn the_plan_lists_each_step_and_warns_about_overwrites_and_writes_after_deletes() {
    let h = harness().await;
    let ops = vec![
        create_op("AWS_ACCOUNT_ID"),
        json!({ "type": "github:secrets:delete", "secret_name": "OLD" }),
        json!({ "type": "github:secrets:exists", "secret_name": "AWS_ACCOUNT_ID" }),
        create_op("AWS_ACCOUNT_ID"),
        create_op("OLD"),
    ];

    let reply = run(&h, "/execute/plan", &workflow(ops, json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["valid"], true);
    assert_eq!(
        reply.json["plan"][0],
        json!({ "step": 1, "operation": "github:secrets:create", "secret_name": "AWS_ACCOUNT_ID",
                "target": "octo-org/my-service", "scope": "repo", "action": "write" })
    );
    let actions: Vec<&str> = reply.json["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["write", "delete", "read", "write", "write"]);
    assert_eq!(
        reply.json["warnings"],
        json!([
            "step 4 writes AWS_ACCOUNT_ID in octo-org/my-service again (step 1 wrote it before); the last write wins",
            "step 5 writes OLD in octo-org/my-service after step 2 deleted it",
        ])
    );
    assert_eq!(reply.json["estimate"]["github_service_calls"], 5);
    assert_eq!(
        h.upstream_requests().await.len(),
        0,
        "a plan never calls upstream without check_state"
    );
}

#[tokio::test]
async fn a_large_workflow_is_warned_about_githubs_secondary_limits() {
    let h = harness().await;
    let ops = (0..70).map(|i| create_op(&format!("S_{i}"))).collect();
    let reply = run(&h, "/execute/plan", &workflow(ops, json!({}))).await;
    assert_eq!(reply.status, 200);
    let warnings = reply.json["warnings"].to_string();
    assert!(warnings.contains("secondary limit of 80"), "{warnings}");
}

#[tokio::test]
async fn check_state_reads_each_scope_once_and_refines_the_actions() {
    let h = harness().await;
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/list"))
        .respond_with(listing(&["EXISTING"]))
        .expect(1)
        .mount(&h.upstream)
        .await;
    let ops = vec![
        create_op("EXISTING"),
        create_op("NEW"),
        create_op("NEW"),
        json!({ "type": "github:secrets:delete", "secret_name": "MISSING" }),
        json!({ "type": "github:secrets:delete", "secret_name": "EXISTING" }),
        json!({ "type": "github:secrets:get", "secret_name": "NEW" }),
    ];

    let reply = run(
        &h,
        "/execute/plan",
        &workflow(ops, json!({ "check_state": true })),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["state_checked"], true);
    let actions: Vec<&str> = reply.json["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["update", "create", "update", "noop", "delete", "read"]
    );
}

#[tokio::test]
async fn under_a_runtime_limit_the_report_is_sent_in_time_and_a_running_step_is_reported_unknown() {
    let h = harness().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]).set_delay(Duration::from_secs(5)),
    )
    .await;
    let body = workflow(
        vec![create_op("SLOW"), json!({ "type": "github:secrets:list" })],
        json!({ "concurrency": 1, "deadline_seconds": 25 }),
    );
    let mut request = authorised(http::Method::POST, "/execute")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(mgraph_deploy::routes::RespondBy(
            tokio::time::Instant::now() + Duration::from_millis(300),
        ));

    let reply = h.send(request).await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    assert_eq!(statuses(&reply), vec!["failed", "skipped"]);
    let (slow, list) = (&reply.json["results"][0], &reply.json["results"][1]);
    assert_eq!(
        (&slow["error_type"], &slow["attempts"]),
        (&json!("deadline"), &json!(1))
    );
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("whether it took effect is unknown"),
        "{slow}"
    );
    assert_eq!(list["error_type"], "deadline", "{list}");
    assert_eq!(
        (
            reply.json["completed"].as_u64(),
            reply.json["failed"].as_u64(),
            reply.json["skipped"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );
    assert_eq!(
        h.upstream_requests().await.len(),
        1,
        "the list never started"
    );
}

fn plan_errors(reply: &Reply) -> Vec<(Option<u64>, String, String)> {
    reply.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["step"].as_u64(),
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_null_anywhere_in_a_workflow_is_a_wrong_type_and_nothing_runs() {
    let h = harness().await;
    let base = workflow(vec![create_op("A")], json!({}));
    let mut cases: Vec<(Value, Option<u64>, &str)> = Vec::new();
    for key in ["credentials", "target", "options", "operations"] {
        let mut body = base.clone();
        body[key] = Value::Null;
        cases.push((body, None, key));
    }
    let mut body = base.clone();
    body["options"] = json!({ "concurrency": null });
    cases.push((body, None, "options.concurrency"));
    let mut body = base.clone();
    body["operations"][0]["target"] = Value::Null;
    cases.push((body, Some(1), "target"));
    let mut body = base.clone();
    body["operations"][0]["target"] =
        json!({ "owner": "octo-org", "repo": "my-service", "environment": null });
    cases.push((body, Some(1), "target.environment"));
    let mut body = base.clone();
    body["operations"][0]["secret_name"] = Value::Null;
    cases.push((body, Some(1), "secret_name"));

    for (body, step, field) in cases {
        let reply = run(&h, "/execute", &body).await;
        assert_eq!(reply.status, 422, "{field}: {}", reply.text);
        let errors = plan_errors(&reply);
        assert!(
            errors
                .iter()
                .any(|(s, f, m)| *s == step && f == field && m.contains("null")),
            "{field}: {errors:?}"
        );
    }
    assert!(h.upstream_requests().await.is_empty());
}

#[tokio::test]
async fn a_key_given_twice_in_a_workflow_is_refused_as_on_single_routes() {
    let h = harness().await;
    let pat = sealed_pat();
    let value = sealed_value();
    let cases = [
        (
            format!(
                r#"{{"credentials":{{"github_pat":"{pat}"}},"target":{{"owner":"o","repo":"r"}},
                "operations":[{{"type":"github:secrets:delete","type":"github:secrets:create","secret_name":"A","encrypted_value":"{value}"}}]}}"#
            ),
            "operations[0].type",
        ),
        (
            format!(
                r#"{{"credentials":{{"github_pat":"{pat}"}},"target":{{"owner":"o","repo":"r"}},
                "operations":[{{"type":"github:secrets:delete","secret_name":"A","secret_name":"B"}}]}}"#
            ),
            "operations[0].secret_name",
        ),
        (
            format!(
                r#"{{"credentials":{{"github_pat":"{pat}","github_pat":"{pat}"}},"target":{{"owner":"o","repo":"r"}},
                "operations":[{{"type":"github:secrets:delete","secret_name":"A"}}]}}"#
            ),
            "credentials.github_pat",
        ),
        (
            format!(
                r#"{{"credentials":{{"github_pat":"{pat}"}},"target":{{"owner":"o","owner":"p","repo":"r"}},
                "operations":[{{"type":"github:secrets:delete","secret_name":"A"}}]}}"#
            ),
            "target.owner",
        ),
    ];
    for (body, field) in cases {
        let reply = h.post_raw("/execute", body.into_bytes()).await;
        assert_eq!(reply.status, 422, "{field}: {}", reply.text);
        let errors = plan_errors(&reply);
        assert!(
            errors
                .iter()
                .any(|(_, f, m)| f == field && m.contains("twice")),
            "{field}: {errors:?}"
        );
        assert!(!reply.text.contains(&pat[..16]));
    }
    assert!(h.upstream_requests().await.is_empty());
}

#[tokio::test]
async fn the_plan_says_which_names_are_written_as_github_stores_them() {
    let h = harness().await;
    let reply = run(
        &h,
        "/execute/plan",
        &workflow(vec![create_op("api_key")], json!({})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["plan"][0]["secret_name"], "API_KEY");
    assert_eq!(
        reply.json["warnings"][0],
        "step 1: 'api_key' is written as 'API_KEY': GitHub stores secret names in upper case and treats names that differ only in case as one"
    );
}

#[tokio::test]
async fn prune_without_a_store_is_refused_before_anything_runs() {
    let h = harness().await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "options": { "prune": true },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "A", "encrypted_value": sealed_value() },
        ] });
    for path in ["/execute/plan", "/execute"] {
        let reply = h.post_raw(path, workflow.to_string().into_bytes()).await;
        assert_eq!(reply.status, 422, "{path}: {}", reply.text);
        assert_eq!(
            reply.json["errors"][0]["field"], "options.prune",
            "{}",
            reply.text
        );
    }
    assert!(h.upstream_calls().await.is_empty());
}
