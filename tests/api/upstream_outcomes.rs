//! Every upstream outcome of `github-service-contract.md` §3.4, and what this service makes of it:
//! decryption failures, the 404/500 answers that hide GitHub's real error (diagnosed with one
//! list call), bodies without an envelope, and an upstream that cannot be reached or is slow.

use crate::helpers::*;
use serde_json::json;
use wiremock::ResponseTemplate;

fn assert_diagnosed(reply: &Reply) {
    assert!(
        reply
            .messages()
            .iter()
            .any(|m| m.starts_with("Diagnosed with an extra list call")),
        "the envelope must say a diagnosis was made: {:?}",
        reply.messages()
    );
}

#[tokio::test]
async fn a_blob_the_upstream_cannot_open_is_decryption_failed_with_advice_to_reseal() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_failure(
            401,
            "decryption_failed",
            "Failed to decrypt secret value",
            json!({ "created": false }),
        ),
    )
    .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_type(), "decryption_failed");
    assert!(
        reply.error().contains("encrypted_value"),
        "{}",
        reply.error()
    );
    assert!(
        reply.error().contains("GET /public-keys/github"),
        "{}",
        reply.error()
    );
    assert_eq!(reply.json["rate_limit"], json!(null));
    assert_eq!(
        h.upstream_requests().await.len(),
        1,
        "a decryption failure is not diagnosed"
    );
}

#[tokio::test]
async fn a_pat_with_a_trailing_newline_is_told_apart_from_a_wrong_key() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        upstream_failure(
            401,
            "decryption_failed",
            "Failed to decrypt PAT: Invalid header value b'token ghp_x\\n'",
            json!({ "secrets": [] }),
        ),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 422);
    assert!(
        reply.error().contains("trailing newline"),
        "{}",
        reply.error()
    );
    assert!(
        !reply.text.contains("ghp_"),
        "the upstream's echo of the token is not repeated"
    );
}

#[tokio::test]
async fn a_get_404_with_a_rejected_pat_is_diagnosed_as_invalid_pat() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", list_invalid_pat())
        .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_type(), "invalid_pat");
    assert_diagnosed(&reply);
    assert_eq!(reply.json["data"], json!({}));
    assert_eq!(
        reply.json["rate_limit"],
        json!(null),
        "never invented zeros"
    );
}

#[tokio::test]
async fn exists_with_a_rejected_pat_is_an_error_never_false() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers("POST", "/github-secrets-env/list", list_invalid_pat())
        .await;

    let reply = h
        .operation("exists", &secret_body(env_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_type(), "invalid_pat");
    assert_eq!(reply.json["success"], false);
    assert_eq!(reply.json["data"], json!({}));
}

#[tokio::test]
async fn a_delete_404_with_a_pat_lacking_scope_is_diagnosed_as_forbidden() {
    let h = Harness::start().await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-org/delete",
        swallowed_404("API_KEY"),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-org/list", list_forbidden())
        .await;

    let reply = h
        .operation("delete", &secret_body(org_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.error_type(), "forbidden");
    assert!(reply.error().contains("admin:org"), "{}", reply.error());
    assert_diagnosed(&reply);
}

#[tokio::test]
async fn a_get_404_under_githubs_primary_rate_limit_is_rate_limited_with_retry_after() {
    let h = Harness::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(429).set_body_json(json!({
            "response_context": {
                "success": false, "status_code": 429, "duration": 0.1, "timestamp": 1,
                "messages": [], "errors": ["GitHub API error: 403 Client Error: rate limit exceeded"],
                "error_type": "rate_limited",
                "rate_limit": { "limit": 5000, "remaining": 0, "reset": reset, "used": 5000 } },
            "response_data": { "secrets": [] } })),
    )
    .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 429, "{}", reply.text);
    assert_eq!(reply.error_type(), "rate_limited");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    assert_eq!(reply.json["rate_limit"]["remaining"], 0);
}

#[tokio::test]
async fn githubs_secondary_limit_reported_as_a_list_500_is_rate_limited() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        upstream_failure(
            500,
            "github_api_error",
            "GitHub API error: 429 Error",
            json!({ "secrets": [] }),
        ),
    )
    .await;

    let reply = h
        .operation("exists", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 429, "{}", reply.text);
    assert_eq!(reply.error_type(), "rate_limited");
    assert!(
        reply.header("retry-after").is_none(),
        "no reset time is known"
    );
}

#[tokio::test]
async fn a_get_404_in_a_missing_repository_is_not_found_naming_the_repository() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", list_not_found())
        .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.error_type(), "not_found");
    assert!(
        reply
            .error()
            .contains("Repository octo-org/my-service was not found"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_get_404_for_a_secret_the_list_shows_is_ambiguous() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("API_KEY"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["API_KEY"]))
        .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_ambiguous");
}

#[tokio::test]
async fn a_create_500_with_a_rejected_pat_is_diagnosed_as_invalid_pat() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", list_invalid_pat())
        .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_type(), "invalid_pat");
    assert_diagnosed(&reply);
}

#[tokio::test]
async fn a_create_500_in_a_missing_organisation_is_not_found() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-org/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-org/list", list_not_found())
        .await;
    // With a visibility, nothing is read before the write.
    let mut body = create_body(org_target(), "API_KEY");
    body["visibility"] = json!("all");

    let reply = h.operation("create", &body).await;

    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.error_type(), "not_found");
    assert!(
        reply.error().contains("organisation octo-org"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_create_500_with_a_pat_that_can_read_is_ambiguous_naming_write_permission_first() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_ambiguous");
    let error = reply.error();
    let permission = error.find("write permission").expect(error);
    let other = error.find("otherwise").expect(error);
    assert!(permission < other, "{error}");
    assert_eq!(
        h.upstream_requests().await.len(),
        2,
        "one write, one diagnosing list"
    );
}

#[tokio::test]
async fn a_delete_404_for_a_secret_the_list_shows_is_ambiguous() {
    let h = Harness::start().await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-repo/delete",
        swallowed_404("API_KEY"),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["API_KEY"]))
        .await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_ambiguous");
}

#[tokio::test]
async fn a_list_401_is_invalid_pat_without_a_diagnosis() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/list", list_invalid_pat())
        .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_type(), "invalid_pat");
    assert!(reply.messages().is_empty());
    assert_eq!(h.upstream_requests().await.len(), 1);
}

#[tokio::test]
async fn a_rate_limit_with_null_members_is_reported_with_those_members_null() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(200).set_body_json(json!({
            "response_context": {
                "success": true, "status_code": 200, "duration": 0.2, "timestamp": 1,
                "messages": null, "errors": null, "error_type": null,
                "rate_limit": { "limit": 5000, "remaining": null, "reset": null, "used": 3 } },
            "response_data": { "secrets": [] } })),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["rate_limit"],
        json!({ "remaining": null, "limit": 5000, "used": 3, "timestamp_reset": null })
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_upstream_error_keeping_the_status() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(reply.error().contains("HTTP 500"), "{}", reply.error());
    assert!(reply.error().contains("not JSON"), "{}", reply.error());
}

#[tokio::test]
async fn a_framework_validation_400_keeps_the_field_and_rule_but_not_the_echoed_input() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        ResponseTemplate::new(400).set_body_json(json!({ "detail": [ {
            "type": "string_type", "loc": ["body", "request_data", "owner"],
            "msg": "Input should be a valid string", "input": sealed_value() } ] })),
    )
    .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(
        reply.error().contains("HTTP 400")
            && reply
                .error()
                .contains("body.request_data.owner: Input should be a valid string"),
        "{}",
        reply.error()
    );
    assert!(!reply.text.contains(&sealed_value()[..24]));
}

#[tokio::test]
async fn a_framework_500_keeps_the_error_but_not_the_stack_trace() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        ResponseTemplate::new(500).set_body_json(json!({
            "detail": "An unexpected error occurred",
            "error": "Invalid base64 encoded encrypted data: Only base64 data is allowed",
            "stack_trace": "Traceback (most recent call last):\n  File \"x.py\"" })),
    )
    .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(reply.error().contains("HTTP 500"), "{}", reply.error());
    assert!(
        reply.error().contains("Only base64 data is allowed"),
        "{}",
        reply.error()
    );
    assert!(!reply.text.contains("Traceback"));
}

#[tokio::test]
async fn the_upstream_refusing_this_services_key_is_reported_as_a_configuration_problem() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(401).set_body_json(json!({
            "data": null, "error": null, "message": "Invalid API key", "status": "error" })),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(
        reply
            .error()
            .contains("AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_success_without_a_secrets_array_is_an_upstream_error_not_an_empty_list() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        upstream_ok(200, json!({}), &[]),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
}

#[tokio::test]
async fn an_unreachable_upstream_is_upstream_unavailable() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::with_env(|vars| {
        vars.insert(
            "URL__TARGET_SERVER__GITHUB_SERVICE".into(),
            format!("http://127.0.0.1:{port}"),
        );
    })
    .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_unavailable");
    assert_eq!(reply.json["operation"], "github:secrets:get");

    let key = h.get("/public-keys/github").await;
    assert_eq!(key.status, 503, "{}", key.text);
    assert_eq!(
        key.json,
        json!({ "success": false, "error": key.json["error"], "error_type": "upstream_unavailable" })
    );
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_is_upstream_timeout() {
    let h = Harness::start().await; // the harness sets a 1 s upstream timeout
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[])
            .set_delay(std::time::Duration::from_secs(5)),
    )
    .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 504, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_timeout");
    assert!(reply.error().contains("within 1 s"), "{}", reply.error());
}
