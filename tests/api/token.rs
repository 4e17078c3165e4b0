//! `POST /operations/github/token/check`: the upstream's `/auth/test` (always HTTP 200, UPPER_CASE
//! error types) read into this service's envelope, and a target's secrets tried with one list.

use crate::helpers::*;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

const CHECK: &str = "/operations/github/token/check";

/// `/auth/test`'s answer for a PAT that works.
fn auth_ok(login: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "error": null, "error_type": null,
        "user": { "login": login, "id": 1_000_001, "name": "Octo Cat", "email": null, "plan": null },
        "rate_limit": { "limit": 5000, "remaining": 4999, "reset": 1_734_571_490u64, "used": 1 },
    }))
}

/// `/auth/test`'s answer for a failure: still HTTP 200.
fn auth_failed(error_type: &str, error: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": false, "error": error, "error_type": error_type, "user": null, "rate_limit": null,
    }))
}

async fn answers_auth_test(h: &Harness, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/auth/test"))
        .and(header("x-osbot-github-pat", sealed_pat().as_str()))
        .respond_with(answer)
        .mount(&h.upstream)
        .await;
}

async fn check(h: &Harness, body: Value) -> Reply {
    h.post_raw(CHECK, body.to_string().into_bytes()).await
}

#[tokio::test]
async fn a_working_pat_is_answered_with_its_login_and_rate_limit_from_one_upstream_call() {
    let h = Harness::start().await;
    answers_auth_test(&h, auth_ok("octo")).await;

    let reply = check(&h, json!({ "encrypted_pat": sealed_pat() })).await;

    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["operation"], "github:token:check");
    assert_eq!(reply.json["data"]["login"], "octo");
    assert_eq!(reply.json["data"]["rate_limit"]["remaining"], 4999);
    assert_eq!(
        reply.json["rate_limit"]["timestamp_reset"],
        1_734_571_490u64
    );
    assert!(reply.json["data"].get("target").is_none());
    assert_eq!(
        h.upstream_calls().await,
        [("GET".to_owned(), "/auth/test".to_owned())]
    );
    let sent = &h.upstream_requests().await[0];
    assert!(sent.body.is_empty(), "the PAT goes in the header only");
}

#[tokio::test]
async fn each_upper_case_failure_of_the_upstream_has_this_service_s_error_type_and_status() {
    let cases = [
        (
            "INVALID_PAT",
            "GitHub API error: Bad credentials (401)",
            401,
            "invalid_pat",
        ),
        (
            "INVALID_PAT",
            "GitHub API error: Forbidden - PAT may lack required scopes",
            401,
            "invalid_pat",
        ),
        (
            "DECRYPTION_FAILED",
            "Decryption failed: Invalid encrypted format or wrong key",
            422,
            "decryption_failed",
        ),
        (
            "RATE_LIMIT",
            "GitHub API error: Rate limit exceeded",
            429,
            "rate_limited",
        ),
        (
            "GITHUB_ERROR",
            "GitHub API error: 429 Error",
            429,
            "rate_limited",
        ),
        (
            "GITHUB_ERROR",
            "GitHub API error: Resource not found (404)",
            502,
            "upstream_error",
        ),
        (
            "MISSING_HEADER",
            "Missing X-OSBot-GitHub-PAT header",
            502,
            "upstream_error",
        ),
    ];
    for (upstream, said, status, ours) in cases {
        let h = Harness::start().await;
        answers_auth_test(&h, auth_failed(upstream, said)).await;
        let reply = check(&h, json!({ "encrypted_pat": sealed_pat() })).await;
        assert_eq!(
            (reply.status, reply.error_type()),
            (status, ours),
            "{upstream}: {}",
            reply.json
        );
        assert_eq!(reply.json["data"], json!({}));
    }
}

#[tokio::test]
async fn an_answer_that_is_not_the_token_check_s_is_an_upstream_error_not_a_login() {
    let answers = [
        ResponseTemplate::new(500).set_body_json(json!({ "detail": "Internal Server Error" })),
        ResponseTemplate::new(200).set_body_string("<html>proxy</html>"),
        ResponseTemplate::new(200).set_body_json(json!({ "success": true, "user": null })),
        ResponseTemplate::new(200)
            .set_body_json(json!({ "success": true, "user": { "login": "<b>x</b>" } })),
    ];
    for answer in answers {
        let h = Harness::start().await;
        answers_auth_test(&h, answer).await;
        let reply = check(&h, json!({ "encrypted_pat": sealed_pat() })).await;
        assert_eq!(
            (reply.status, reply.error_type()),
            (502, "upstream_error"),
            "{}",
            reply.json
        );
        assert!(!reply.text.contains("<b>"));
    }
}

#[tokio::test]
async fn with_a_target_the_answer_says_whether_the_pat_can_read_its_secrets() {
    let h = Harness::start().await;
    answers_auth_test(&h, auth_ok("octo")).await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["A"]))
        .await;
    h.upstream_answers("POST", "/github-secrets-org/list", list_forbidden())
        .await;

    let readable = check(
        &h,
        json!({ "encrypted_pat": sealed_pat(), "target": repo_target() }),
    )
    .await;
    assert_eq!(readable.status, 200, "{}", readable.json);
    assert_eq!(
        readable.json["data"]["target"],
        json!({ "target": repo_target(), "can_read_secrets": true })
    );

    let refused = check(
        &h,
        json!({ "encrypted_pat": sealed_pat(), "target": org_target() }),
    )
    .await;
    assert_eq!(refused.status, 200, "{}", refused.json);
    let access = &refused.json["data"]["target"];
    assert_eq!(access["can_read_secrets"], false);
    assert_eq!(access["error_type"], "forbidden");
    assert!(
        access["error"].as_str().unwrap().contains("admin:org"),
        "{access}"
    );
}

#[tokio::test]
async fn a_target_whose_list_fails_for_a_reason_not_the_pat_s_fails_the_check() {
    let h = Harness::start().await;
    answers_auth_test(&h, auth_ok("octo")).await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(503).set_body_string("unavailable"),
    )
    .await;
    let reply = check(
        &h,
        json!({ "encrypted_pat": sealed_pat(), "target": repo_target() }),
    )
    .await;
    assert_eq!(reply.error_type(), "upstream_error", "{}", reply.json);
    assert_eq!(reply.json["operation"], "github:token:check");
}

#[tokio::test]
async fn a_body_with_a_null_target_an_unknown_member_or_no_pat_is_refused_before_any_upstream_call()
{
    let h = Harness::start().await;
    for body in [
        json!({ "encrypted_pat": sealed_pat(), "target": null }),
        json!({ "encrypted_pat": sealed_pat(), "scopes": ["repo"] }),
        json!({ "target": repo_target() }),
        json!({ "encrypted_pat": "not base64!" }),
    ] {
        let reply = check(&h, body.clone()).await;
        assert_eq!(
            (reply.status, reply.error_type()),
            (400, "invalid_input"),
            "{body}"
        );
        assert_eq!(reply.json["operation"], "github:token:check");
    }
    assert!(h.upstream_calls().await.is_empty());
}
