//! Every operation route, in every scope, against an upstream that succeeds: the envelope, the
//! upstream route and method chosen, and the request body passed through unchanged.

use crate::helpers::*;
use serde_json::{Value, json};

fn upstream_body(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).expect("the upstream receives JSON")
}

#[tokio::test]
async fn a_repository_list_returns_the_secrets_in_the_envelope() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        listing(&["AWS_REGION", "API_KEY"]),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({
            "success": true,
            "operation": "github:secrets:list",
            "data": { "secrets": [meta("AWS_REGION"), meta("API_KEY")], "scope": "repo",
                      "may_be_incomplete": false },
            "error": "",
            "error_type": null,
            "messages": [],
            "duration": reply.json["duration"],
            "rate_limit": { "remaining": 4990, "limit": 5000, "used": 10, "timestamp_reset": 1_795_356_724u64 },
        })
    );
    assert!(reply.json["duration"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn the_upstream_receives_the_sealed_pat_unchanged_with_its_api_key() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;

    h.operation("list", &list_body(repo_target())).await;

    let requests = h.upstream_requests().await;
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        sent.headers.get(UPSTREAM_KEY_NAME).unwrap(),
        UPSTREAM_KEY_VALUE
    );
    assert_eq!(
        upstream_body(sent),
        json!({ "encrypted_pat": sealed_pat(),
                "request_data": { "owner": "octo-org", "repo": "my-service" } })
    );
}

#[tokio::test]
async fn an_environment_list_goes_to_the_environment_routes() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/list", listing(&["DB_URL"]))
        .await;

    let reply = h.operation("list", &list_body(env_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["scope"], "environment");
    assert_eq!(reply.json["data"]["secrets"][0]["name"], "DB_URL");
    let body = upstream_body(&h.upstream_requests().await[0]);
    assert_eq!(
        body["request_data"],
        json!({ "owner": "octo-org", "repo": "my-service", "environment": "prod" })
    );
}

#[tokio::test]
async fn an_organisation_list_keeps_each_secrets_visibility() {
    let h = Harness::start().await;
    let secret = json!({ "name": "NPM_TOKEN", "created_at": "2024-01-15T10:30:00Z",
                         "updated_at": "2024-01-15T10:30:00Z", "visibility": "selected",
                         "selected_repositories_url": "https://api.github.com/x" });
    h.upstream_answers(
        "POST",
        "/github-secrets-org/list",
        upstream_ok(200, json!({ "secrets": [secret] }), &[]),
    )
    .await;

    let reply = h.operation("list", &list_body(org_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["scope"], "org");
    assert_eq!(
        reply.json["data"]["secrets"][0],
        json!({ "name": "NPM_TOKEN", "created_at": "2024-01-15T10:30:00Z",
                "updated_at": "2024-01-15T10:30:00Z", "visibility": "selected" })
    );
    assert_eq!(
        upstream_body(&h.upstream_requests().await[0])["request_data"],
        json!({ "org": "octo-org" })
    );
}

#[tokio::test]
async fn get_returns_the_secrets_metadata() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        upstream_ok(200, json!({ "secret": meta("API_KEY") }), &[]),
    )
    .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({ "secret": meta("API_KEY"), "scope": "repo" })
    );
    assert_eq!(reply.json["operation"], "github:secrets:get");
    assert_eq!(
        upstream_body(&h.upstream_requests().await[0])["request_data"]["secret_name"],
        "API_KEY"
    );
}

#[tokio::test]
async fn exists_is_true_when_the_upstream_finds_the_secret() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-env/get",
        upstream_ok(200, json!({ "secret": meta("DB_URL") }), &[]),
    )
    .await;

    let reply = h
        .operation("exists", &secret_body(env_target(), "DB_URL"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({ "exists": true, "secret_name": "DB_URL", "scope": "environment" })
    );
}

#[tokio::test]
async fn exists_is_false_only_after_a_list_shows_the_pat_works() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-repo/get", swallowed_404("NOPE"))
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&["OTHER"]))
        .await;

    let reply = h
        .operation("exists", &secret_body(repo_target(), "NOPE"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["exists"], false);
    assert_eq!(
        h.upstream_calls().await,
        vec![
            ("POST".into(), "/github-secrets-repo/get".into()),
            ("POST".into(), "/github-secrets-repo/list".into())
        ]
    );
    assert!(
        reply.messages().iter().any(|m| m.contains("Diagnosed")),
        "{:?}",
        reply.messages()
    );
}

#[tokio::test]
async fn create_passes_the_sealed_value_through_and_reports_it_written() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(
            201,
            json!({ "created": true }),
            &["Secret 'AWS_REGION' created"],
        ),
    )
    .await;

    let reply = h
        .send(
            authorised(http::Method::POST, "/operations/github/secrets/create")
                // curl -d sends this content type; the body is JSON whatever it says.
                .header("content-type", "application/x-www-form-urlencoded")
                .body(create_body(repo_target(), "AWS_REGION").to_string().into())
                .unwrap(),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({ "created": true, "secret_name": "AWS_REGION", "scope": "repo" })
    );
    assert_eq!(reply.messages(), vec!["Secret 'AWS_REGION' created"]);
    assert_eq!(
        upstream_body(&h.upstream_requests().await[0]),
        json!({ "encrypted_pat": sealed_pat(),
                "request_data": { "owner": "octo-org", "repo": "my-service",
                                  "secret_name": "AWS_REGION", "encrypted_value": sealed_value() } })
    );
}

#[tokio::test]
async fn an_organisation_create_sends_visibility_and_repository_ids() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/create",
        upstream_ok(
            201,
            json!({ "created": true }),
            &["Org secret 'NPM_TOKEN' created"],
        ),
    )
    .await;
    let mut body = create_body(org_target(), "NPM_TOKEN");
    body["visibility"] = json!("selected");
    body["repo_ids"] = json!([101, 202]);

    let reply = h.operation("create", &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["scope"], "org");
    let sent = upstream_body(&h.upstream_requests().await[0]);
    assert_eq!(sent["request_data"]["visibility"], "selected");
    assert_eq!(sent["request_data"]["repo_ids"], json!([101, 202]));
}

fn org_meta(name: &str, visibility: &str) -> Value {
    json!({ "secret": { "name": name, "created_at": "2024-01-15T10:30:00Z",
                        "updated_at": "2024-01-15T10:30:00Z", "visibility": visibility,
                        "selected_repositories_url": null } })
}

async fn org_create_answers_created(h: &Harness) {
    h.upstream_answers(
        "POST",
        "/github-secrets-org/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;
}

#[tokio::test]
async fn an_organisation_update_without_visibility_keeps_the_current_visibility() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/get",
        upstream_ok(200, org_meta("NPM_TOKEN", "all"), &[]),
    )
    .await;
    org_create_answers_created(&h).await;

    let reply = h
        .operation("create", &create_body(org_target(), "NPM_TOKEN"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let calls = h.upstream_calls().await;
    assert_eq!(
        calls.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(),
        ["/github-secrets-org/get", "/github-secrets-org/create"]
    );
    let sent = upstream_body(&h.upstream_requests().await[1]);
    assert_eq!(sent["request_data"]["visibility"], "all");
    assert!(
        reply
            .messages()
            .iter()
            .any(|m| m.contains("Kept") && m.contains("all")),
        "{:?}",
        reply.messages()
    );
}

#[tokio::test]
async fn a_new_organisation_secret_without_visibility_is_private() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/get",
        swallowed_404("NPM_TOKEN"),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-org/list", listing(&["OTHER"]))
        .await;
    org_create_answers_created(&h).await;

    let reply = h
        .operation("create", &create_body(org_target(), "NPM_TOKEN"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let requests = h.upstream_requests().await;
    let sent = upstream_body(requests.last().unwrap());
    assert_eq!(sent["request_data"]["visibility"], "private");
    assert!(sent["request_data"].get("repo_ids").is_none());
}

#[tokio::test]
async fn an_organisation_secret_visible_to_selected_repositories_is_not_updated_blindly() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-org/get",
        upstream_ok(200, org_meta("NPM_TOKEN", "selected"), &[]),
    )
    .await;
    org_create_answers_created(&h).await;

    let reply = h
        .operation("create", &create_body(org_target(), "NPM_TOKEN"))
        .await;

    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.error_type(), "conflict");
    assert!(reply.error().contains("repo_ids"), "{}", reply.error());
    assert!(reply.error().contains("visibility"), "{}", reply.error());
    assert_eq!(h.upstream_requests().await.len(), 1, "no write was sent");
}

#[tokio::test]
async fn repository_ids_without_visibility_write_a_secret_visible_to_those_repositories() {
    let h = Harness::start().await;
    org_create_answers_created(&h).await;
    let mut body = create_body(org_target(), "NPM_TOKEN");
    body["repo_ids"] = json!([7]);

    let reply = h.operation("create", &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let requests = h.upstream_requests().await;
    assert_eq!(requests.len(), 1, "nothing to read first");
    let sent = upstream_body(&requests[0]);
    assert_eq!(sent["request_data"]["visibility"], "selected");
    assert_eq!(sent["request_data"]["repo_ids"], json!([7]));
}

#[tokio::test]
async fn an_environment_create_writes_the_environment_secret() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-env/create",
        upstream_ok(
            201,
            json!({ "created": true }),
            &["Env secret 'DB_URL' created"],
        ),
    )
    .await;

    let reply = h
        .operation("create", &create_body(env_target(), "DB_URL"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["scope"], "environment");
    assert_eq!(
        upstream_body(&h.upstream_requests().await[0])["request_data"]["environment"],
        "prod"
    );
}

#[tokio::test]
async fn env_fallback_writes_the_repository_secret_when_the_environment_is_missing() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-env/list", list_not_found())
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(
            201,
            json!({ "created": true }),
            &["Secret 'DB_URL' created"],
        ),
    )
    .await;
    let mut body = create_body(env_target(), "DB_URL");
    body["env_fallback"] = json!("repo");

    let reply = h.operation("create", &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({ "created": true, "secret_name": "DB_URL", "scope": "repo", "env_fallback": true })
    );
    assert!(
        reply
            .messages()
            .iter()
            .any(|m| m.contains("Environment 'prod' does not exist") && m.contains("env_fallback")),
        "{:?}",
        reply.messages()
    );
    let last = h.upstream_requests().await.pop().unwrap();
    assert_eq!(last.url.path(), "/github-secrets-repo/create");
    assert_eq!(
        upstream_body(&last)["request_data"],
        json!({ "owner": "octo-org", "repo": "my-service", "secret_name": "DB_URL",
                "encrypted_value": sealed_value() })
    );
}

#[tokio::test]
async fn without_env_fallback_a_missing_environment_is_not_found() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/create", swallowed_500())
        .await;
    h.upstream_answers("POST", "/github-secrets-env/list", list_not_found())
        .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&[]))
        .await;

    let reply = h
        .operation("create", &create_body(env_target(), "DB_URL"))
        .await;

    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.error_type(), "not_found");
    assert_eq!(
        reply.error(),
        "Environment 'prod' does not exist in octo-org/my-service"
    );
    assert_eq!(reply.json["data"], json!({}));
    assert!(
        !h.upstream_calls()
            .await
            .iter()
            .any(|(_, p)| p == "/github-secrets-repo/create"),
        "nothing may be written to the repository without env_fallback"
    );
}

#[tokio::test]
async fn delete_uses_the_delete_method_with_a_json_body() {
    let h = Harness::start().await;
    h.upstream_answers(
        "DELETE",
        "/github-secrets-repo/delete",
        upstream_ok(200, json!({ "deleted": true }), &["Secret 'OLD' deleted"]),
    )
    .await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "OLD"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({ "deleted": true, "secret_name": "OLD", "scope": "repo" })
    );
    let sent = &h.upstream_requests().await[0];
    assert_eq!(sent.method.as_str(), "DELETE");
    assert_eq!(upstream_body(sent)["request_data"]["secret_name"], "OLD");
}

#[tokio::test]
async fn deleting_a_missing_secret_is_not_found_once_the_pat_is_shown_to_work() {
    let h = Harness::start().await;
    h.upstream_answers("DELETE", "/github-secrets-org/delete", swallowed_404("OLD"))
        .await;
    h.upstream_answers("POST", "/github-secrets-org/list", listing(&["OTHER"]))
        .await;

    let reply = h
        .operation("delete", &secret_body(org_target(), "OLD"))
        .await;

    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.error_type(), "not_found");
    assert_eq!(
        reply.error(),
        "Secret 'OLD' does not exist in organisation octo-org"
    );
}

#[tokio::test]
async fn a_full_page_listing_is_not_taken_as_proof_of_absence() {
    let h = Harness::start().await;
    let names: Vec<String> = (0..30).map(|i| format!("SECRET_{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.upstream_answers(
        "DELETE",
        "/github-secrets-repo/delete",
        swallowed_404("OLD"),
    )
    .await;
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&names))
        .await;
    // The secret is on a page the list could not show, and the delete was refused.
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        upstream_ok(200, json!({ "secret": meta("OLD") }), &[]),
    )
    .await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "OLD"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_ambiguous");
    assert!(
        reply.error().contains("write permission"),
        "{}",
        reply.error()
    );
    assert_eq!(
        h.upstream_calls().await.last().unwrap().1,
        "/github-secrets-repo/get"
    );
}

#[tokio::test]
async fn presence_lets_an_environment_secret_shadow_the_repository_one() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/list", listing(&["DB_URL"]))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        listing(&["DB_URL", "AWS_REGION"]),
    )
    .await;

    let reply = h
        .operation(
            "presence",
            &json!({ "encrypted_pat": sealed_pat(), "target": env_target(),
                     "required": ["DB_URL", "AWS_REGION", "GITHUB_TOKEN", "MISSING"] }),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"],
        json!({
            "secrets": [
                { "name": "DB_URL", "present": true, "scope": "environment" },
                { "name": "AWS_REGION", "present": true, "scope": "repo" },
                { "name": "GITHUB_TOKEN", "present": true, "scope": "builtin" },
                { "name": "MISSING", "present": false, "scope": null },
            ],
            "all_present": false,
        })
    );
    assert_eq!(reply.json["operation"], "github:secrets:presence");
}

#[tokio::test]
async fn presence_in_a_missing_environment_checks_the_repository_and_says_so() {
    let h = Harness::start().await;
    h.upstream_answers("POST", "/github-secrets-env/list", list_not_found())
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        listing(&["AWS_REGION"]),
    )
    .await;

    let reply = h
        .operation(
            "presence",
            &json!({ "encrypted_pat": sealed_pat(), "target": env_target(), "required": ["AWS_REGION"] }),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["all_present"], true);
    assert_eq!(reply.json["data"]["secrets"][0]["scope"], "repo");
    assert!(
        reply
            .messages()
            .iter()
            .any(|m| m.contains("only repository secrets were checked")),
        "{:?}",
        reply.messages()
    );
}

#[tokio::test]
async fn presence_confirms_names_missing_from_a_full_page_one_by_one() {
    let h = Harness::start().await;
    let names: Vec<String> = (0..30).map(|i| format!("SECRET_{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&names))
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        upstream_ok(200, json!({ "secret": meta("ON_PAGE_TWO") }), &[]),
    )
    .await;

    let reply = h
        .operation(
            "presence",
            &json!({ "encrypted_pat": sealed_pat(), "target": repo_target(),
                     "required": ["SECRET_00", "ON_PAGE_TWO"] }),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["all_present"], true);
    assert_eq!(
        h.upstream_calls().await,
        vec![
            ("POST".into(), "/github-secrets-repo/list".into()),
            ("POST".into(), "/github-secrets-repo/get".into())
        ]
    );
}

#[tokio::test]
async fn a_secret_name_in_lower_case_is_sent_and_answered_as_github_stores_it_and_the_envelope_says_so()
 {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/create",
        upstream_ok(201, json!({ "created": true }), &[]),
    )
    .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "api_key"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let sent = upstream_body(&h.upstream_requests().await[0]);
    assert_eq!(sent["request_data"]["secret_name"], "API_KEY");
    assert_eq!(reply.json["data"]["secret_name"], "API_KEY");
    assert_eq!(
        reply.messages()[0],
        "'api_key' is written as 'API_KEY': GitHub stores secret names in upper case and treats names that differ only in case as one"
    );
}

#[tokio::test]
async fn presence_finds_a_secret_whatever_the_case_it_is_asked_in() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        listing(&["AWS_ROLE_ARN"]),
    )
    .await;

    let reply = h
        .operation(
            "presence",
            &json!({ "encrypted_pat": sealed_pat(), "target": repo_target(),
                     "required": ["aws_role_arn"] }),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"]["secrets"],
        json!([{ "name": "AWS_ROLE_ARN", "present": true, "scope": "repo" }])
    );
    assert!(reply.messages()[0].starts_with("'aws_role_arn' is written as 'AWS_ROLE_ARN'"));
}

#[tokio::test]
async fn a_list_of_a_full_upstream_page_says_the_scope_may_hold_more() {
    let h = Harness::start().await;
    let names: Vec<String> = (0..30).map(|i| format!("S_{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.upstream_answers("POST", "/github-secrets-repo/list", listing(&names))
        .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["may_be_incomplete"], true);
    assert_eq!(
        reply.messages(),
        [
            "The GitHub Service listed 30 secrets, a full first page of GitHub's list, and reads no further: octo-org/my-service may hold more. exists, get and presence check a name exactly"
        ]
    );
}
