//! The history: what `/execute` and the single routes record, `/executions/list` and
//! `/executions/get`, who may read them, and a write that is not lost when the store fails.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use axum::body::Body;
use futures_util::future::BoxFuture;
use http::Method;
use mgraph_deploy::history::History;
use mgraph_deploy::routes::RespondBy;
use mgraph_deploy::store::{
    Finish, NewExecution, Page, StepRecord, Store, StoreError, Stored, TargetKey, Written,
};
use mgraph_deploy_api::{HistoryCursor, SecretName};
use serde_json::{Value, json};
use wiremock::Mock;
use wiremock::matchers::{body_string_contains, method, path};

/// A PAT the upstream refuses on every list: it may read nothing.
fn outsider_pat() -> String {
    sealed_blob(41, 88)
}

async fn history_list(h: &Harness, pat: &str, target: Value) -> Reply {
    let body = json!({ "encrypted_pat": pat, "target": target });
    h.post_raw("/executions/list", body.to_string().into_bytes())
        .await
}

async fn history_get(h: &Harness, pat: &str, id: &str) -> Reply {
    let body = json!({ "encrypted_pat": pat, "id": id });
    h.post_raw("/executions/get", body.to_string().into_bytes())
        .await
}

/// `POST path` with `body` and the request id `id`.
async fn post_as(h: &Harness, path: &str, id: &str, body: &Value) -> Reply {
    h.send(
        authorised(Method::POST, path)
            .header("x-request-id", id)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// The create of `SLOW` answers after `delay`.
async fn slow_create(h: &Harness, delay: Duration) {
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/create"))
        .and(body_string_contains("\"SLOW\""))
        .respond_with(upstream_ok(201, json!({ "created": true }), &[]).set_delay(delay))
        .with_priority(1)
        .mount(&h.upstream)
        .await;
}

/// Lists succeed for every PAT but [`outsider_pat`]; creates succeed, except `BAD`'s.
async fn upstream_for_history(h: &Harness) {
    for scope in ["repo", "env", "org"] {
        Mock::given(method("POST"))
            .and(path(format!("/github-secrets-{scope}/list")))
            .and(body_string_contains(outsider_pat()))
            .respond_with(list_invalid_pat())
            .with_priority(1)
            .mount(&h.upstream)
            .await;
        h.upstream_answers(
            "POST",
            &format!("/github-secrets-{scope}/list"),
            listing(&[]),
        )
        .await;
    }
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/create"))
        .and(body_string_contains("\"BAD\""))
        .respond_with(upstream_failure(
            401,
            "decryption_failed",
            "Failed to decrypt secret value",
            json!({}),
        ))
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    // An organisation secret's visibility is read first: none yet.
    h.upstream_answers("POST", "/github-secrets-org/get", swallowed_404("ANY"))
        .await;
    for scope in ["repo", "org"] {
        h.upstream_answers(
            "POST",
            &format!("/github-secrets-{scope}/create"),
            upstream_ok(201, json!({ "created": true }), &[]),
        )
        .await;
    }
}

fn executions(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["data"]["executions"].as_array().unwrap().clone()
}

fn ids(reply: &Reply) -> Vec<String> {
    executions(reply)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_workflow_answered_207_can_be_read_back_step_by_step() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "GOOD", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "BAD", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "ORG_WIDE", "encrypted_value": sealed_value(),
              "target": org_target() },
        ] });

    let report = post_as(&h, "/execute", "bootstrap-1", &workflow).await;
    assert_eq!(report.status, 207, "{}", report.text);
    assert!(report.messages().is_empty(), "{:?}", report.messages());

    let listed = history_list(&h, &sealed_pat(), repo_target()).await;
    let execution = &executions(&listed)[0];
    assert_eq!(listed.json["operation"], "executions:list");
    assert_eq!(execution["id"], "bootstrap-1");
    assert_eq!(execution["route"], "POST /execute");
    assert_eq!(execution["caller"], API_KEY_NAME);
    assert_eq!(execution["status"], "partial");
    assert_eq!(
        [
            &execution["total"],
            &execution["completed"],
            &execution["failed"],
            &execution["skipped"]
        ],
        [&json!(3), &json!(2), &json!(1), &json!(0)]
    );
    assert!(
        execution["finished_at"].as_str().unwrap() >= execution["started_at"].as_str().unwrap()
    );
    assert_eq!(listed.json["data"]["next_cursor"], Value::Null);

    let got = history_get(&h, &sealed_pat(), "bootstrap-1").await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["operation"], "executions:get");
    let steps = got.json["data"]["execution"]["steps"].as_array().unwrap();
    let seen: Vec<(u64, &str, &str, &str, &Value)> = steps
        .iter()
        .map(|s| {
            (
                s["step"].as_u64().unwrap(),
                s["secret_name"].as_str().unwrap(),
                s["scope"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
                &s["error_type"],
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, "GOOD", "repo", "written", &Value::Null),
            (2, "BAD", "repo", "failed", &json!("decryption_failed")),
            (3, "ORG_WIDE", "org", "written", &Value::Null),
        ]
    );
    assert_eq!(steps[0]["target"], "octo-org/my-service");
    assert_eq!(steps[0]["operation"], "github:secrets:create");
    assert_eq!(steps[0]["upstream_calls"], 1);
    assert!(steps[0]["duration"].as_f64().unwrap() >= 0.0);

    // The organisation's history has it too.
    let org = history_list(&h, &sealed_pat(), org_target()).await;
    assert_eq!(ids(&org), ["bootstrap-1"]);
}

#[tokio::test]
async fn a_single_create_is_one_execution_of_one_step_with_the_scope_it_wrote() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    // The environment does not exist: the write falls back to the repository.
    h.upstream_answers("POST", "/github-secrets-env/create", swallowed_500())
        .await;
    Mock::given(method("POST"))
        .and(path("/github-secrets-env/list"))
        .respond_with(list_not_found())
        .with_priority(2)
        .mount(&h.upstream)
        .await;
    let mut body = create_body(env_target(), "API_KEY");
    body["env_fallback"] = json!("repo");

    let created = post_as(&h, "/operations/github/secrets/create", "create-1", &body).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["data"]["scope"], "repo");

    for target in [env_target(), repo_target()] {
        let listed = history_list(&h, &sealed_pat(), target.clone()).await;
        assert_eq!(ids(&listed), ["create-1"], "{target}");
        let execution = &executions(&listed)[0];
        assert_eq!(execution["route"], "POST /operations/github/secrets/create");
        assert_eq!(execution["status"], "completed");
        assert_eq!(execution["total"], 1);
        assert_eq!(execution["completed"], 1);
    }
    let got = history_get(&h, &sealed_pat(), "create-1").await;
    let step = &got.json["data"]["execution"]["steps"][0];
    assert_eq!(step["target"], "octo-org/my-service (environment 'prod')");
    assert_eq!(step["scope"], "repo", "the scope actually written");
    assert_eq!(step["secret_name"], "API_KEY");
    assert_eq!(step["outcome"], "written");
    assert!(step["upstream_calls"].as_u64().unwrap() >= 2, "{step}");
}

#[tokio::test]
async fn a_refused_request_is_recorded_under_the_target_its_body_names() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    let body = create_body(repo_target(), "1_STARTS_WITH_A_DIGIT");

    let refused = post_as(&h, "/operations/github/secrets/create", "refused-1", &body).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.messages().is_empty(), "{:?}", refused.messages());

    let listed = history_list(&h, &sealed_pat(), repo_target()).await;
    let execution = &executions(&listed)[0];
    assert_eq!(execution["id"], "refused-1");
    assert_eq!(execution["status"], "refused");
    let got = history_get(&h, &sealed_pat(), "refused-1").await;
    let step = &got.json["data"]["execution"]["steps"][0];
    assert_eq!(step["outcome"], "refused");
    assert_eq!(step["error_type"], "invalid_input");
    assert_eq!(
        step["secret_name"],
        Value::Null,
        "a name that was refused is not kept"
    );
    assert_eq!(step["upstream_calls"], 0);

    // A workflow refused as a whole is kept under the targets of its readable steps.
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "A", "encrypted_value": sealed_value() },
            { "type": "github:secrets:teleport" },
        ] });
    let invalid = post_as(&h, "/execute", "refused-2", &workflow).await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    let listed = history_list(&h, &sealed_pat(), repo_target()).await;
    assert_eq!(ids(&listed), ["refused-2", "refused-1"], "newest first");
    let got = history_get(&h, &sealed_pat(), "refused-2").await;
    assert_eq!(got.json["data"]["execution"]["status"], "refused");
    assert_eq!(got.json["data"]["execution"]["total"], 2);
}

#[tokio::test]
async fn a_pat_that_cannot_list_a_targets_secrets_sees_nothing_of_its_history() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    let created = post_as(
        &h,
        "/operations/github/secrets/create",
        "private-1",
        &create_body(repo_target(), "API_KEY"),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);

    let listed = history_list(&h, &outsider_pat(), repo_target()).await;
    // As `list` answers this PAT.
    assert_eq!(listed.status, 401, "{}", listed.text);
    assert_eq!(listed.error_type(), "invalid_pat");
    assert!(listed.json["data"].as_object().unwrap().is_empty());

    // A PAT that is no PAT is told so (the CLI reseals on `decryption_failed` the same way).
    let invalid = history_get(&h, &outsider_pat(), "private-1").await;
    assert_eq!(invalid.status, 401, "{}", invalid.text);
    assert_eq!(invalid.error_type(), "invalid_pat");

    // To a PAT that may not read the target, its id is `not_found`, as an id that never
    // existed is: nothing tells them apart.
    let forbidden_pat = sealed_blob(43, 88);
    Mock::given(method("POST"))
        .and(path("/github-secrets-repo/list"))
        .and(body_string_contains(&forbidden_pat))
        .respond_with(list_forbidden())
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    let got = history_get(&h, &forbidden_pat, "private-1").await;
    let never = history_get(&h, &forbidden_pat, "never-was").await;
    for reply in [&got, &never] {
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.error_type(), "not_found");
    }
    assert_eq!(got.error(), never.error().replace("never-was", "private-1"));
    for reply in [&invalid, &got] {
        assert!(!reply.text.contains("API_KEY"));
    }
}

#[tokio::test]
async fn an_execution_across_targets_shows_only_the_steps_on_targets_the_pat_can_read() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    // This PAT reads the repository, not the organisation.
    let repo_only = sealed_blob(42, 88);
    Mock::given(method("POST"))
        .and(path("/github-secrets-org/list"))
        .and(body_string_contains(&repo_only))
        .respond_with(list_forbidden())
        .with_priority(1)
        .mount(&h.upstream)
        .await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            { "type": "github:secrets:create", "secret_name": "REPO_KEY", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "ORG_KEY", "encrypted_value": sealed_value(),
              "target": org_target() },
        ] });
    let report = post_as(&h, "/execute", "across-1", &workflow).await;
    assert_eq!(report.status, 200, "{}", report.text);

    let got = history_get(&h, &repo_only, "across-1").await;
    assert_eq!(got.status, 200, "{}", got.text);
    let execution = &got.json["data"]["execution"];
    let names: Vec<&str> = execution["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["secret_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["REPO_KEY"]);
    assert_eq!(execution["targets"], json!(["octo-org/my-service"]));
    assert_eq!(execution["total"], 1, "counted over what it may see");
    assert!(!got.text.contains("ORG_KEY") && !got.text.contains("organisation"));

    // The repository's list names the repository only, never the organisation it cannot read.
    let listed = history_list(&h, &repo_only, repo_target()).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.json["data"]["executions"][0]["targets"],
        json!(["octo-org/my-service"])
    );
    assert!(!listed.text.contains("organisation"), "{}", listed.text);

    let org = history_list(&h, &repo_only, org_target()).await;
    assert_eq!(org.status, 403, "{}", org.text);
    assert!(!org.text.contains("across-1"));
}

#[tokio::test]
async fn a_targets_history_is_paged_newest_first_and_the_limit_is_checked() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    for n in 1..=5 {
        let id = format!("page-{n}");
        let body = create_body(repo_target(), &format!("KEY_{n}"));
        let reply = post_as(&h, "/operations/github/secrets/create", &id, &body).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // Distinct start times: the list's order is by time.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut body =
            json!({ "encrypted_pat": sealed_pat(), "target": repo_target(), "limit": 2 });
        if !cursor.is_null() {
            body["cursor"] = cursor.clone();
        }
        let page = h
            .post_raw("/executions/list", body.to_string().into_bytes())
            .await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        cursor = page.json["data"]["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, ["page-5", "page-4", "page-3", "page-2", "page-1"]);

    for (limit, field) in [
        (json!(0), "limit"),
        (json!(101), "limit"),
        (json!("2"), "limit"),
    ] {
        let body =
            json!({ "encrypted_pat": sealed_pat(), "target": repo_target(), "limit": limit });
        let reply = h
            .post_raw("/executions/list", body.to_string().into_bytes())
            .await;
        assert_eq!(reply.status, 400, "{limit}: {}", reply.text);
        assert!(reply.error().contains(field), "{}", reply.error());
    }
    let garbage = json!({ "encrypted_pat": sealed_pat(), "target": repo_target(), "cursor": "not a cursor!" });
    let reply = h
        .post_raw("/executions/list", garbage.to_string().into_bytes())
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.error().contains("cursor"), "{}", reply.error());
}

#[tokio::test]
async fn a_reused_request_id_is_recorded_under_a_fresh_id_and_the_answer_says_which() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    let body = create_body(repo_target(), "API_KEY");
    let first = post_as(&h, "/operations/github/secrets/create", "same-id", &body).await;
    let second = post_as(&h, "/operations/github/secrets/create", "same-id", &body).await;
    assert!(first.messages().is_empty());
    let note = second
        .messages()
        .into_iter()
        .find(|m| m.contains("was recorded before"))
        .expect("the second answer names its execution");
    let listed = ids(&history_list(&h, &sealed_pat(), repo_target()).await);
    assert_eq!(listed.len(), 2, "both recorded: {listed:?}");
    assert!(listed.contains(&"same-id".to_owned()));
    let fresh = listed.iter().find(|id| *id != "same-id").unwrap();
    assert!(note.contains(fresh.as_str()), "{note}");
}

#[tokio::test]
async fn the_history_routes_answer_503_history_unavailable_when_no_store_is_kept() {
    let h = Harness::start().await;
    let reply = history_list(&h, &sealed_pat(), repo_target()).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.error_type(), "history_unavailable");
    assert!(reply.error().contains("DEPLOY__STORE"), "{}", reply.error());
    assert_eq!(reply.json["operation"], "executions:list");
    let reply = history_get(&h, &sealed_pat(), "any").await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    let status = h.get("/info/status").await;
    assert_eq!(
        status.json["history"],
        json!({ "store": "none", "state": "off" })
    );
}

#[tokio::test]
async fn the_history_routes_need_the_api_key_and_answer_the_envelope_when_refused() {
    let h = Harness::with_history().await;
    let reply = h
        .send(
            http::Request::builder()
                .method(Method::POST)
                .uri("/executions/list")
                .body(Body::from(
                    json!({ "encrypted_pat": sealed_pat(), "target": repo_target() }).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json["operation"], "executions:list");
    assert_eq!(reply.json["success"], false);
    let wrong_method = h.get("/executions/get").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json["operation"], "executions:get");
    assert!(h.upstream_requests().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// A store that is down.

/// A store that is down: every call fails at once, as one that cannot be reached does, or
/// never answers.
#[derive(Debug, Clone, Copy)]
enum Broken {
    Fails,
    Hangs,
}

impl Broken {
    fn call<T: Send + 'static>(self) -> BoxFuture<'static, Result<T, StoreError>> {
        match self {
            Broken::Fails => Box::pin(async {
                Err(StoreError {
                    backend: "sqlite",
                    message: "disk I/O error".to_owned(),
                    exists: false,
                })
            }),
            Broken::Hangs => Box::pin(std::future::pending()),
        }
    }
}

impl Store for Broken {
    fn backend(&self) -> &'static str {
        match self {
            Broken::Fails => "sqlite",
            Broken::Hangs => "dynamodb",
        }
    }
    fn begin(&self, _: NewExecution) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
    fn step(&self, _: String, _: StepRecord, _: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
    fn finish(&self, _: String, _: Finish) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
    fn record(&self, _: Stored) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
    fn list(
        &self,
        _: TargetKey,
        _: usize,
        _: Option<HistoryCursor>,
        _: u64,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        self.call()
    }
    fn get(&self, _: String, _: u64) -> BoxFuture<'_, Result<Option<Stored>, StoreError>> {
        self.call()
    }
    fn claim(&self, _: Written) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
    fn confirm(
        &self,
        _: TargetKey,
        _: SecretName,
        _: String,
        _: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.call()
    }
    fn written(
        &self,
        _: TargetKey,
        _: SecretName,
    ) -> BoxFuture<'_, Result<Option<Written>, StoreError>> {
        self.call()
    }
    fn written_in(&self, _: TargetKey) -> BoxFuture<'_, Result<Vec<Written>, StoreError>> {
        self.call()
    }
    fn forget(&self, _: TargetKey, _: SecretName) -> BoxFuture<'_, Result<(), StoreError>> {
        self.call()
    }
}

/// A harness whose history's store is `broken`.
async fn with_store(broken: Broken) -> Harness {
    Harness::with_state(
        |_| {},
        |state| {
            state.history = Some(History::new(
                Arc::new(broken),
                Duration::from_secs(90 * 86_400),
            ))
        },
    )
    .await
}

#[tokio::test]
async fn when_the_store_is_down_a_write_still_happens_and_says_it_was_not_recorded() {
    let h = with_store(Broken::Fails).await;
    upstream_for_history(&h).await;
    let status = h.get("/info/status").await;
    assert_eq!(
        status.json["history"],
        json!({ "store": "sqlite", "state": "ok" })
    );

    let created = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["data"]["created"], true);
    assert_eq!(
        h.upstream_calls().await.len(),
        1,
        "the create went out, once"
    );
    let messages = created.messages();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Not recorded in the history") && m.contains("audit log")),
        "{messages:?}"
    );

    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "operations": [
            // A fingerprint the store cannot be asked about is a write.
            { "type": "github:secrets:create", "secret_name": "A", "encrypted_value": sealed_value(),
              "value_fingerprint": "hmac-sha256:k1:aaaa" },
            { "type": "github:secrets:create", "secret_name": "B", "encrypted_value": sealed_value() },
        ] });
    let report = h
        .post_raw("/execute", workflow.to_string().into_bytes())
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.json["completed"], 2);
    assert_eq!(report.json["results"][0]["data"]["created"], true);
    assert_eq!(
        h.upstream_calls().await.len(),
        3,
        "both written, and nothing read back for a claim the store did not take"
    );
    assert!(
        report.messages().iter().any(|m| m.contains("Not recorded")),
        "{}",
        report.text
    );

    let status = h.get("/info/status").await;
    assert_eq!(status.json["status"], "operational");
    assert_eq!(
        status.json["history"],
        json!({ "store": "sqlite", "state": "degraded" })
    );

    let read = history_list(&h, &sealed_pat(), repo_target()).await;
    assert_eq!(read.status, 503, "{}", read.text);
    assert_eq!(read.error_type(), "history_unavailable");

    // The store's own words (which may name an account, a role or a path) stay in the log.
    for answer in [&created.text, &report.text, &read.text] {
        assert!(!answer.contains("disk I/O"), "{answer}");
    }
}

#[tokio::test]
async fn a_store_that_does_not_answer_delays_a_write_by_its_timeout_at_most() {
    let h = with_store(Broken::Hangs).await;
    upstream_for_history(&h).await;
    let created = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(
        created
            .messages()
            .iter()
            .any(|m| m.contains("no answer within 3 s")),
        "{:?}",
        created.messages()
    );
    assert_eq!(
        h.get("/info/status").await.json["history"]["state"],
        "degraded"
    );
}

#[tokio::test]
async fn under_a_runtime_limit_a_single_write_and_a_refused_workflow_stop_recording_when_their_answer_is_due()
 {
    let h = with_store(Broken::Hangs).await;
    upstream_for_history(&h).await;
    let due = |path: &str, body: &Value| {
        let mut request = authorised(Method::POST, path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        // Due before the store's own timeout would end the wait.
        request.extensions_mut().insert(RespondBy(
            tokio::time::Instant::now() + Duration::from_millis(300),
        ));
        request
    };
    let created = h
        .send(due(
            "/operations/github/secrets/create",
            &create_body(repo_target(), "API_KEY"),
        ))
        .await;
    let refused = h
        .send(due(
            "/execute",
            &json!({ "credentials": { "github_pat": sealed_pat() }, "operations": [] }),
        ))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(refused.status, 422, "{}", refused.text);
    for (answer, notes) in [
        (&created, created.messages()),
        (
            &refused,
            refused.json["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_owned())
                .collect(),
        ),
    ] {
        assert!(
            notes
                .iter()
                .any(|m| m.contains("was still writing when this answer was due")),
            "{}",
            answer.text
        );
    }
}

#[tokio::test]
async fn steps_are_recorded_as_they_finish_while_the_workflow_still_runs() {
    let h = Harness::with_history_and(
        |vars| {
            vars.insert("DEPLOY__UPSTREAM_TIMEOUT_SECONDS".into(), "120".into());
        },
        |_| {},
    )
    .await;
    upstream_for_history(&h).await;
    slow_create(&h, Duration::from_secs(100)).await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "options": { "concurrency": 1 },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "FAST", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "SLOW", "encrypted_value": sealed_value() },
        ] });
    let running = {
        let h_router = h.router.clone();
        tokio::spawn(async move {
            use tower::ServiceExt as _;
            h_router
                .oneshot(
                    authorised(Method::POST, "/execute")
                        .header("x-request-id", "in-flight-1")
                        .body(Body::from(workflow.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap()
                .status()
        })
    };
    // Wait until the slow step has reached the upstream: the fast one has finished by then.
    let slow_arrived = || async {
        h.upstream_requests()
            .await
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("\"SLOW\""))
    };
    while !slow_arrived().await {
        tokio::task::yield_now().await;
    }
    let mut got = history_get(&h, &sealed_pat(), "in-flight-1").await;
    // The step's record may still be on its way to the store.
    while got.json["data"]["execution"]["steps"]
        .as_array()
        .map_or(0, Vec::len)
        < 1
    {
        tokio::task::yield_now().await;
        got = history_get(&h, &sealed_pat(), "in-flight-1").await;
    }
    let execution = &got.json["data"]["execution"];
    assert_eq!(execution["status"], "running", "{execution}");
    assert_eq!(execution["finished_at"], Value::Null);
    assert_eq!(execution["steps"][0]["secret_name"], "FAST");
    assert_eq!(execution["steps"].as_array().unwrap().len(), 1);

    // The slow step never ends: the request is dropped, as a stopped process would leave it.
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    let got = history_get(&h, &sealed_pat(), "in-flight-1").await;
    assert_eq!(got.json["data"]["execution"]["status"], "running");
    assert_eq!(
        got.json["data"]["execution"]["steps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_workflow_cut_off_at_its_runtime_limit_is_recorded_with_the_steps_that_ran() {
    let h = Harness::with_history().await;
    upstream_for_history(&h).await;
    slow_create(&h, Duration::from_secs(5)).await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
        "options": { "concurrency": 1 },
        "operations": [
            { "type": "github:secrets:create", "secret_name": "FAST", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "SLOW", "encrypted_value": sealed_value() },
            { "type": "github:secrets:create", "secret_name": "NEVER", "encrypted_value": sealed_value() },
        ] });
    let mut request = authorised(Method::POST, "/execute")
        .header("x-request-id", "cut-1")
        .body(Body::from(workflow.to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(mgraph_deploy::routes::RespondBy(
            tokio::time::Instant::now() + Duration::from_millis(500),
        ));
    let report = h.send(request).await;
    assert_eq!(report.status, 207, "{}", report.text);
    assert!(report.messages().is_empty(), "{:?}", report.messages());

    let got = history_get(&h, &sealed_pat(), "cut-1").await;
    let execution = &got.json["data"]["execution"];
    assert_eq!(execution["status"], "partial");
    let outcomes: Vec<(&str, &str, &Value)> = execution["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["secret_name"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
                &s["error_type"],
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("FAST", "written", &Value::Null),
            ("SLOW", "failed", &json!("deadline")),
            ("NEVER", "skipped", &json!("deadline")),
        ]
    );
}

#[tokio::test]
async fn the_history_file_holds_no_pat_value_blob_or_api_key_after_every_route_ran() {
    let h = Harness::with_history().await;
    crate::logs::exercise_every_route(&h).await;
    let path = h.store_path.clone().unwrap();
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    // The test can fail: the history holds what was done.
    assert!(text.contains("octo-org/my-service"), "nothing was recorded");
    assert!(
        text.contains(API_KEY_NAME),
        "the caller's key name is recorded"
    );
    assert!(!text.contains(API_KEY_VALUE));
    for blob in crate::logs::blobs() {
        for window in blob.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !text.contains(window),
                "the history file carries part of a sealed blob ({window})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// On DynamoDB (moto's server in `.ci/run`; skipped without `MGRAPH_DYNAMODB_TABLE`).

/// The table `MGRAPH_DYNAMODB_TABLE` names; `None` (the test is skipped) when unset, unless
/// `MGRAPH_REQUIRE_DYNAMODB` is set.
fn dynamodb_table() -> Option<String> {
    let table = std::env::var("MGRAPH_DYNAMODB_TABLE").ok();
    if table.is_none() {
        assert!(
            std::env::var_os("MGRAPH_REQUIRE_DYNAMODB").is_none(),
            "MGRAPH_DYNAMODB_TABLE is not set"
        );
        eprintln!("MGRAPH_DYNAMODB_TABLE is not set: the DynamoDB backend is checked by .ci/run");
    }
    table
}

/// Every item of `table`, as text.
async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> String {
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            text.push_str(&format!("{item:?}\n"));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return text;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_a_full_scan_of_the_table_holds_no_pat_value_blob_or_api_key_after_every_route_ran()
 {
    let Some(table) = dynamodb_table() else {
        return;
    };
    let h = Harness::with_state(
        |vars| {
            vars.insert("DEPLOY__STORE".into(), format!("dynamodb:{table}"));
        },
        |_| {},
    )
    .await;
    crate::logs::exercise_every_route(&h).await;
    let text = scan(&mgraph_deploy::store::dynamodb::client().await, &table).await;
    assert!(text.contains("octo-org/my-service"), "nothing was recorded");
    assert!(text.contains(API_KEY_NAME));
    assert!(!text.contains(API_KEY_VALUE));
    for blob in crate::logs::blobs() {
        for window in blob.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !text.contains(window),
                "the table carries part of a sealed blob ({window})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_when_the_table_is_gone_a_write_still_happens_and_says_it_was_not_recorded() {
    if dynamodb_table().is_none() {
        return;
    }
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let client = mgraph_deploy::store::dynamodb::client().await;
    let table = format!("mgraph-deploy-history-gone-{}", std::process::id());
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await
        .unwrap();
    let h = Harness::with_state(
        |vars| {
            vars.insert("DEPLOY__STORE".into(), format!("dynamodb:{table}"));
        },
        |_| {},
    )
    .await;
    upstream_for_history(&h).await;
    let first = h
        .operation("create", &create_body(repo_target(), "BEFORE"))
        .await;
    assert!(first.messages().is_empty(), "{:?}", first.messages());

    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();

    let created = h
        .operation("create", &create_body(repo_target(), "AFTER"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["data"]["created"], true);
    assert!(
        created
            .messages()
            .iter()
            .any(|m| m.contains("Not recorded in the history") && m.contains("dynamodb")),
        "{:?}",
        created.messages()
    );
    assert_eq!(
        h.get("/info/status").await.json["history"],
        json!({ "store": "dynamodb", "state": "degraded" })
    );
}
