//! What the service logs: one line per request with its request id, route, status, duration and
//! upstream call count; and, over every route and error path, never any part of a sealed blob.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::helpers::*;
use axum::body::Body;
use http::{Method, Request};
use mgraph_deploy::config::LogFormat;
use mgraph_deploy::telemetry;
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::ResponseTemplate;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything this crate and the HTTP stack under it (tower-http, reqwest, hyper, hyper-util,
/// rustls) log, at every level.
const VERBOSE: &str = "mgraph_deploy=trace,tower_http=trace,reqwest=trace,hyper=trace,hyper_util=trace,rustls=trace,warn";

/// The blobs every request below carries, in the right and in the wrong places.
pub(crate) fn blobs() -> Vec<String> {
    vec![sealed_pat(), sealed_value(), sealed_blob(77, 100)]
}

fn assert_no_blob_in(text: &str) {
    for blob in blobs() {
        for window in blob.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !text.contains(window),
                "the log carries part of a sealed blob ({window}):\n{text}"
            );
        }
    }
}

/// Drives every route through success and failure, with blobs everywhere a client could put them.
pub(crate) async fn exercise_every_route(h: &Harness) -> usize {
    let odd = sealed_blob(77, 100);
    h.upstream_answers(
        "GET",
        "/encryption/public-key",
        ResponseTemplate::new(200).set_body_json(json!({ "public_key": "ab".repeat(32) })),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["A"]))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("B"))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    h.upstream_answers("DELETE", "/github-secrets-repo/delete", swallowed_404("B"))
        .await;
    // Environment scope: the upstream echoes the input back in a framework error.
    h.upstream_answers(
        "POST",
        "/github-secrets-env/create",
        ResponseTemplate::new(400).set_body_json(json!({ "detail": [ {
            "type": "string_type", "loc": ["body", "encrypted_pat"], "msg": "bad", "input": sealed_pat() } ] })),
    )
    .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-env/get",
        ResponseTemplate::new(500).set_body_json(json!({
            "detail": "x", "error": format!("Invalid base64: {}", sealed_value()), "stack_trace": sealed_pat() })),
    )
    .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-env/list",
        upstream_failure(
            401,
            "decryption_failed",
            &format!("Decryption failed for {odd}"),
            json!({}),
        ),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-org/create", swallowed_500())
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/list",
        upstream_failure(
            401,
            "invalid_pat",
            "GitHub API error: 401 Error",
            json!({ "secrets": [] }),
        ),
    )
    .await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-org/delete",
        ResponseTemplate::new(502).set_body_string(format!("<html>{odd}</html>")),
    )
    .await;

    // The token check: the upstream echoes the PAT's header back in an error.
    h.upstream_answers(
        "GET",
        "/auth/test",
        ResponseTemplate::new(200).set_body_json(json!({
            "success": false, "error_type": "GITHUB_ERROR", "user": null, "rate_limit": null,
            "error": format!("GitHub API error: Invalid header value: 'token {odd}'") })),
    )
    .await;
    for body in [
        json!({ "encrypted_pat": sealed_pat(), "target": repo_target() }),
        json!({ "encrypted_pat": sealed_pat(), odd.clone(): sealed_value() }),
    ] {
        h.post_raw(
            "/operations/github/token/check",
            body.to_string().into_bytes(),
        )
        .await;
    }

    let pat = sealed_pat();
    let value = sealed_value();
    let bodies: Vec<(&str, Value)> = vec![
        (
            "list",
            json!({ "encrypted_pat": pat, "target": repo_target() }),
        ),
        (
            "list",
            json!({ "encrypted_pat": pat, "target": env_target() }),
        ),
        ("get", secret_body(repo_target(), "B")),
        ("get", secret_body(env_target(), "B")),
        ("exists", secret_body(repo_target(), "B")),
        ("create", create_body(repo_target(), "A")),
        ("create", create_body(env_target(), "A")),
        ("create", create_body(org_target(), "A")),
        ("delete", secret_body(repo_target(), "B")),
        ("delete", secret_body(org_target(), "B")),
        (
            "presence",
            json!({ "encrypted_pat": pat, "target": env_target(), "required": ["A"] }),
        ),
        (
            "presence",
            json!({ "encrypted_pat": pat, "target": repo_target(), "required": ["A", "GITHUB_TOKEN"] }),
        ),
        // Invalid requests, blobs in the wrong places.
        (
            "list",
            json!({ "encrypted_pat": pat, "target": repo_target(), "encrypted_value": value }),
        ),
        (
            "list",
            json!({ "encrypted_pat": pat, "target": repo_target(), odd.clone(): 1 }),
        ),
        (
            "get",
            json!({ "encrypted_pat": pat, "target": repo_target(), "secret_name": odd }),
        ),
        (
            "create",
            json!({ "encrypted_pat": format!("{pat}="), "target": repo_target(), "secret_name": "A", "encrypted_value": value }),
        ),
        (
            "create",
            json!({ "encrypted_pat": odd, "target": { "owner": value, "repo": "r" }, "secret_name": "A", "encrypted_value": value }),
        ),
    ];
    let mut requests = 0;
    for (verb, body) in &bodies {
        h.operation(verb, body).await;
        requests += 1;
    }
    h.post_raw(
        "/operations/github/secrets/create",
        format!("{{\"encrypted_pat\": \"{pat}\", ").into_bytes(),
    )
    .await;
    let workflow = json!({
        "credentials": { "github_pat": pat }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "A", "encrypted_value": value },
            { "type": "github:secrets:create", "secret_name": "B", "encrypted_value": value,
              "target": org_target() },
            { "type": "github:secrets:delete", "secret_name": "B" },
            { "type": "github:secrets:get", "secret_name": odd },
        ] });
    h.post_raw("/execute", workflow.to_string().into_bytes())
        .await;
    h.post_raw("/execute/plan", workflow.to_string().into_bytes())
        .await;
    let mut valid = workflow.clone();
    valid["operations"].as_array_mut().unwrap().pop();
    h.post_raw("/execute", valid.to_string().into_bytes()).await;
    h.get("/public-keys/github").await;
    h.get("/info/status").await;
    h.send(
        Request::builder()
            .uri("/info/health")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // Refused: a blob as the API key, in a cookie, and as the request id.
    h.send(
        Request::builder()
            .method(Method::POST)
            .uri("/operations/github/secrets/list")
            .header(API_KEY_NAME, &pat)
            .header("cookie", format!("{API_KEY_NAME}={value}"))
            .header("x-request-id", &odd)
            .body(Body::from(
                json!({ "encrypted_pat": pat, "target": repo_target() }).to_string(),
            ))
            .unwrap(),
    )
    .await;
    requests + 10
}

async fn capture_over_every_route(format: LogFormat) -> (String, usize) {
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard =
        tracing::subscriber::set_default(telemetry::subscriber(format, VERBOSE, capture.clone()));
    // With a history, so that what recording logs is scanned too.
    let h = Harness::with_history().await;
    let requests = exercise_every_route(&h).await;
    (capture.text(), requests)
}

#[tokio::test]
async fn no_json_log_line_carries_any_part_of_a_sealed_blob() {
    let (text, _) = capture_over_every_route(LogFormat::Json).await;
    assert!(
        text.contains("request completed"),
        "the capture must see the service's logs:\n{text}"
    );
    assert!(
        text.contains("workflow step") && text.contains("workflow finished"),
        "the capture must see the workflow's events"
    );
    assert!(
        text.contains(r#""target":"reqwest"#),
        "the capture must see what reqwest logs"
    );
    assert_no_blob_in(&text);
}

#[tokio::test]
async fn no_human_readable_log_line_carries_any_part_of_a_sealed_blob() {
    let (text, _) = capture_over_every_route(LogFormat::Pretty).await;
    assert!(
        text.contains("request completed"),
        "the capture must see the service's logs:\n{text}"
    );
    assert_no_blob_in(&text);
}

#[tokio::test]
async fn each_request_logs_one_json_line_with_id_route_status_duration_and_upstream_calls() {
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        "info",
        capture.clone(),
    ));
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("B"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;

    let reply = h
        .send(
            authorised(Method::POST, "/operations/github/secrets/get")
                .header("x-request-id", "trace-me-1")
                .body(Body::from(secret_body(repo_target(), "B").to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 404);

    let lines: Vec<Value> = capture
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .filter(|l: &Value| l["message"] == "request completed")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["status"], 404);
    assert_eq!(line["upstream_calls"], 2, "one get, one diagnosing list");
    assert_eq!(line["error_type"], "not_found");
    assert!(line["duration_ms"].as_f64().is_some());
    assert_eq!(line["span"]["request_id"], "trace-me-1");
    assert_eq!(line["span"]["route"], "/operations/github/secrets/get");
    assert_eq!(line["span"]["method"], "POST");
}

/// The audit events of a capture, grouped by request id.
fn audit_events(text: &str) -> std::collections::HashMap<String, Vec<Value>> {
    let mut by_request: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for line in text.lines() {
        let line: Value = serde_json::from_str(line).expect("every line is JSON");
        if line["target"] == "audit" {
            let id = line["request_id"].as_str().unwrap_or_default().to_owned();
            by_request.entry(id).or_default().push(line);
        }
    }
    by_request
}

#[tokio::test]
async fn every_write_delete_and_refusal_emits_exactly_one_audit_event_and_none_carries_a_blob() {
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        "info",
        capture.clone(),
    ));
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-repo/delete",
        upstream_ok(200, json!({ "deleted": true }), &[]),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;
    h.upstream_answers("POST", "/github-secrets-env/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-env/list", list_invalid_pat())
        .await;

    let send = |id: &str, path: &str, body: Value, key: bool| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("x-request-id", id);
        if key {
            request = request.header(API_KEY_NAME, API_KEY_VALUE);
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let op = |verb: &str| format!("/operations/github/secrets/{verb}");
    let workflow = json!({ "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "W1", "encrypted_value": sealed_value() },
            { "type": "github:secrets:list" },
            { "type": "github:secrets:delete", "secret_name": "W2" } ] });
    // (request id, request, the (outcome, error_type) of each audit event it must emit)
    type Case<'a> = (&'a str, Request<Body>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "a-create",
            send(
                "a-create",
                &op("create"),
                create_body(repo_target(), "A"),
                true,
            ),
            vec![("written", "")],
        ),
        (
            "a-delete",
            send(
                "a-delete",
                &op("delete"),
                secret_body(repo_target(), "A"),
                true,
            ),
            vec![("deleted", "")],
        ),
        (
            "a-failed",
            send(
                "a-failed",
                &op("create"),
                create_body(env_target(), "A"),
                true,
            ),
            vec![("failed", "invalid_pat")],
        ),
        (
            "a-invalid",
            send(
                "a-invalid",
                &op("create"),
                json!({ "encrypted_pat": sealed_pat() }),
                true,
            ),
            vec![("refused", "invalid_input")],
        ),
        (
            "a-read-invalid",
            send(
                "a-read-invalid",
                &op("list"),
                json!({ "target": sealed_pat() }),
                true,
            ),
            vec![("refused", "invalid_input")],
        ),
        (
            "a-no-key",
            send(
                "a-no-key",
                &op("create"),
                create_body(repo_target(), "A"),
                false,
            ),
            vec![("refused", "unauthorized")],
        ),
        (
            "a-read",
            send("a-read", &op("list"), list_body(repo_target()), true),
            vec![],
        ),
        (
            "a-workflow",
            send("a-workflow", "/execute", workflow, true),
            vec![("written", ""), ("deleted", "")],
        ),
        (
            "a-bad-workflow",
            send(
                "a-bad-workflow",
                "/execute",
                json!({ "operations": [] }),
                true,
            ),
            vec![("refused", "invalid_input")],
        ),
    ];
    let mut expected = Vec::new();
    for (id, request, outcomes) in cases {
        h.send(request).await;
        expected.push((id, outcomes));
    }

    let text = capture.text();
    let events = audit_events(&text);
    for (id, outcomes) in expected {
        let got: Vec<(String, String)> = events
            .get(id)
            .map(|e| {
                e.iter()
                    .map(|e| {
                        (
                            e["outcome"].as_str().unwrap().to_owned(),
                            e["error_type"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, String)> = outcomes
            .iter()
            .map(|(o, e)| (o.to_string(), e.to_string()))
            .collect();
        assert_eq!(got, want, "{id}");
    }
    let create = &events["a-create"][0];
    assert_eq!(create["operation"], "github:secrets:create");
    assert_eq!(create["scope"], "repo");
    assert_eq!(create["resource"], "octo-org/my-service");
    assert_eq!(create["secret_name"], "A");
    assert_eq!(create["caller"], API_KEY_NAME);
    assert_eq!(create["upstream_calls"], 1);
    assert!(create["timestamp"].as_str().is_some());
    assert!(events["a-no-key"][0].get("caller").is_none());
    assert_eq!(events["a-workflow"][0]["step"], 1);
    assert_eq!(events["a-workflow"][1]["step"], 3);
    let audit_text: String = events
        .values()
        .flatten()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!audit_text.contains(API_KEY_VALUE));
    assert_no_blob_in(&audit_text);
}

#[tokio::test]
async fn each_workflow_step_logs_inside_its_own_span_so_concurrent_steps_are_told_apart() {
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        "mgraph_deploy=debug,warn",
        capture.clone(),
    ));
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        ResponseTemplate::new(503),
    )
    .await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() },
        "target": repo_target(),
        "options": { "concurrency": 2, "deadline_seconds": 1 },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "FIRST", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "SECOND", "encrypted_value": sealed_value() },
        ],
    });
    let reply = h
        .post_raw("/execute", workflow.to_string().into_bytes())
        .await;
    assert_eq!(reply.status, 207, "{}", reply.text);

    let failures: Vec<Value> = capture
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .filter(|l: &Value| l["message"] == "upstream call")
        .collect();
    // `span` is the innermost span (the step); `spans` every one from the outside in.
    assert!(
        failures.iter().all(|l| l["spans"][0]["name"] == "request"
            && l["spans"][0]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
            && l["spans"][0]["route"] == "/execute"),
        "a step's lines carry its request too: {failures:#?}"
    );
    let mut steps: Vec<(Value, Value)> = failures
        .iter()
        .map(|l| (l["span"]["step"].clone(), l["span"]["secret_name"].clone()))
        .collect();
    steps.sort_by_key(|(step, _)| step.to_string());
    steps.dedup();
    assert_eq!(
        steps,
        [(json!(1), json!("FIRST")), (json!(2), json!("SECOND"))],
        "{failures:#?}"
    );
}

#[tokio::test]
async fn dynamodb_no_log_line_carries_the_aws_session_token_even_at_trace() {
    let Ok(table) = std::env::var("MGRAPH_DYNAMODB_TABLE") else {
        assert!(
            std::env::var_os("MGRAPH_REQUIRE_DYNAMODB").is_none(),
            "MGRAPH_DYNAMODB_TABLE is not set"
        );
        return;
    };
    let token = std::env::var("AWS_SESSION_TOKEN")
        .expect("deploy/dynamodb-local.sh gives the credentials a session token");
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        "trace",
        capture.clone(),
    ));
    let h = Harness::with_state(
        |vars| {
            vars.insert("DEPLOY__STORE".into(), format!("dynamodb:{table}"));
        },
        |_| {},
    )
    .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    let created = h
        .operation("create", &create_body(repo_target(), "SIGNED"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(created.messages().is_empty(), "{:?}", created.messages());
    let text = capture.text();
    assert!(
        text.contains(r#""target":"aws_smithy_runtime"#),
        "the capture must see the AWS SDK's logs"
    );
    let carriers: Vec<&str> = text.lines().filter(|l| l.contains(&token)).collect();
    assert!(
        carriers.is_empty(),
        "a log line carries the session token: {}",
        carriers
            .iter()
            .map(|l| &l[..l.len().min(300)])
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_aws_sdks_credential_carrying_trace_lines_stay_out_whatever_filter_is_asked_for() {
    for filter in [
        "trace",
        "aws_sigv4=trace",
        "aws_sigv4::http_request=trace",
        "debug,aws_smithy_runtime::client::orchestrator::operation=trace",
    ] {
        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(telemetry::subscriber(
            LogFormat::Json,
            filter,
            capture.clone(),
        ));
        tracing::callsite::rebuild_interest_cache();
        tracing::trace!(target: "aws_sigv4::http_request::sign", "canonical request: TOKEN-1");
        tracing::trace!(
            target: "aws_smithy_runtime::client::orchestrator::operation",
            "transmitting request: TOKEN-2"
        );
        tracing::debug!(target: "aws_sigv4::http_request::sign", "signing: kept");
        let text = capture.text();
        assert!(!text.contains("TOKEN-"), "{filter}: {text}");
        assert!(text.contains("signing: kept"), "{filter}: {text}");
    }
}

#[tokio::test]
async fn an_unchanged_create_is_audited_as_unchanged_and_its_fingerprint_is_in_no_log_line() {
    let capture = Capture::default();
    keep_every_callsite_live();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        "trace",
        capture.clone(),
    ));
    let h = Harness::with_history().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        upstream_ok(
            200,
            json!({ "secret": { "name": "KEY", "created_at": "2026-01-01T00:00:00Z",
                                "updated_at": "2026-01-01T00:00:00Z" } }),
            &[],
        ),
    )
    .await;
    let fingerprint = "hmac-sha256:0123456789abcdef:ZmluZ2VycHJpbnQtbm90LWluLWxvZ3M";
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [{ "type": "github:secrets:create", "secret_name": "KEY",
                         "encrypted_value": sealed_value(), "value_fingerprint": fingerprint }] });
    for id in ["converge-1", "converge-2"] {
        let reply = h
            .send(
                authorised(Method::POST, "/execute")
                    .header("x-request-id", id)
                    .body(Body::from(workflow.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let text = capture.text();
    let events = audit_events(&text);
    let outcome = |id: &str| events[id][0]["outcome"].as_str().unwrap().to_owned();
    assert_eq!(outcome("converge-1"), "written");
    assert_eq!(outcome("converge-2"), "unchanged");
    assert!(!text.contains("ZmluZ2VycHJpbnQtbm90LWluLWxvZ3M"));
}
