//! The emulator answers as the real GitHub Service does (github-service-contract.md §1–§3),
//! quirks included, over real HTTP.

use mgraph_deploy_emulator::{Emulator, Fault, KeyPair, PatKind, Scope, seed};
use serde_json::{Value, json};

struct Call {
    status: u16,
    body: Value,
}

async fn call(emulator: &Emulator, method: &str, path: &str, body: Value) -> Call {
    let key = emulator.api_key().unwrap();
    let response = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", emulator.url()))
        .header(&key.name, &key.value)
        .json(&body)
        .send()
        .await
        .unwrap();
    Call {
        status: response.status().as_u16(),
        body: response.json().await.unwrap(),
    }
}

fn repo_request(emulator: &Emulator, pat: PatKind, extra: Value) -> Value {
    let mut data = json!({ "owner": seed::OWNER, "repo": seed::REPO });
    data.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "encrypted_pat": emulator.seal(&pat.token()), "request_data": data })
}

#[tokio::test]
async fn create_answers_201_created_even_when_it_overwrites_and_stores_the_decrypted_value() {
    let emulator = Emulator::start().await.unwrap();
    for value in ["first", "second"] {
        let body = repo_request(
            &emulator,
            PatKind::Admin,
            json!({ "secret_name": "API_KEY", "encrypted_value": emulator.seal(value) }),
        );
        let c = call(&emulator, "POST", "/github-secrets-repo/create", body).await;
        assert_eq!(c.status, 201);
        assert_eq!(c.body["response_context"]["status_code"], 201);
        assert_eq!(
            c.body["response_context"]["messages"],
            json!(["Secret 'API_KEY' created"])
        );
        assert_eq!(c.body["response_context"]["rate_limit"]["limit"], 5000);
        assert_eq!(c.body["response_data"], json!({ "created": true }));
    }
    let stored = emulator
        .secret(&Scope::repo(seed::OWNER, seed::REPO), "API_KEY")
        .unwrap();
    assert_eq!(stored.plaintext, "second");
}

#[tokio::test]
async fn get_and_delete_report_a_bad_pat_as_a_missing_secret_and_create_as_a_500() {
    let emulator = Emulator::start().await.unwrap();
    let named = json!({ "secret_name": "X" });
    let c = call(
        &emulator,
        "POST",
        "/github-secrets-repo/get",
        repo_request(&emulator, PatKind::Invalid, named.clone()),
    )
    .await;
    assert_eq!(c.status, 404);
    assert_eq!(c.body["response_context"]["error_type"], "not_found");
    assert_eq!(
        c.body["response_context"]["errors"],
        json!(["Secret 'X' not found"])
    );
    assert_eq!(c.body["response_context"]["rate_limit"], Value::Null);
    assert_eq!(c.body["response_data"], json!({ "secret": null }));

    let c = call(
        &emulator,
        "DELETE",
        "/github-secrets-repo/delete",
        repo_request(&emulator, PatKind::NoScopes, named),
    )
    .await;
    assert_eq!(c.status, 404);
    assert_eq!(
        c.body["response_context"]["errors"],
        json!(["Secret 'X' not found or could not be deleted"])
    );
    assert_eq!(
        c.body["response_context"]["rate_limit"]["limit"], 5000,
        "the PAT itself works"
    );

    let body = repo_request(
        &emulator,
        PatKind::RepoRead,
        json!({ "secret_name": "X", "encrypted_value": emulator.seal("v") }),
    );
    let c = call(&emulator, "POST", "/github-secrets-repo/create", body).await;
    assert_eq!(c.status, 500);
    assert_eq!(c.body["response_context"]["error_type"], "github_api_error");
    assert_eq!(
        c.body["response_context"]["errors"],
        json!(["Failed to create secret"])
    );
}

#[tokio::test]
async fn list_classifies_githubs_errors_by_substring_and_carries_a_null_rate_limit() {
    let emulator = Emulator::start().await.unwrap();
    let cases = [
        (PatKind::Expired, 401, "invalid_pat"),
        (PatKind::NoScopes, 403, "forbidden"),
        (PatKind::RateLimited, 500, "github_api_error"),
    ];
    for (pat, status, error_type) in cases {
        let c = call(
            &emulator,
            "POST",
            "/github-secrets-repo/list",
            repo_request(&emulator, pat, json!({})),
        )
        .await;
        assert_eq!(
            (
                c.status,
                c.body["response_context"]["error_type"].as_str().unwrap()
            ),
            (status, error_type),
            "{pat:?}"
        );
        assert_eq!(c.body["response_context"]["rate_limit"], Value::Null);
        assert!(
            c.body["response_context"]["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("GitHub API error: ")
        );
    }
    emulator.github(|gh| {
        gh.exhaust_rate_limit(&PatKind::Admin.token(), std::time::Duration::from_secs(60))
    });
    let c = call(
        &emulator,
        "POST",
        "/github-secrets-repo/list",
        repo_request(&emulator, PatKind::Admin, json!({})),
    )
    .await;
    assert_eq!(c.status, 429);
    assert_eq!(
        c.body["response_context"]["errors"][0],
        format!(
            "GitHub API error: 403 Client Error: rate limit exceeded for url: https:__api.github.com_repos_{}_{}_actions_secrets",
            seed::OWNER,
            seed::REPO
        )
    );
}

#[tokio::test]
async fn blobs_sealed_to_another_key_fail_with_decryption_failed_before_github_is_called() {
    let emulator = Emulator::start().await.unwrap();
    let other = KeyPair::generate();
    let body = json!({ "encrypted_pat": other.seal(PatKind::Admin.token().as_bytes()),
                       "request_data": { "owner": seed::OWNER, "repo": seed::REPO } });
    let c = call(&emulator, "POST", "/github-secrets-repo/list", body).await;
    assert_eq!(c.status, 401);
    assert_eq!(
        c.body["response_context"]["errors"],
        json!(["Decryption failed: Invalid encrypted format or wrong key"])
    );

    let body = repo_request(
        &emulator,
        PatKind::Admin,
        json!({ "secret_name": "X", "encrypted_value": other.seal(b"v") }),
    );
    let c = call(&emulator, "POST", "/github-secrets-repo/create", body).await;
    assert_eq!(c.status, 401);
    assert_eq!(
        c.body["response_context"]["errors"],
        json!(["Failed to decrypt secret value"])
    );

    let old = emulator.seal(&PatKind::Admin.token());
    emulator.rotate_key();
    let body = json!({ "encrypted_pat": old, "request_data": { "owner": seed::OWNER, "repo": seed::REPO } });
    let c = call(&emulator, "POST", "/github-secrets-repo/list", body).await;
    assert_eq!(
        c.body["response_context"]["error_type"],
        "decryption_failed"
    );
}

#[tokio::test]
async fn validation_failures_come_back_in_the_frameworks_400_and_500_shapes() {
    let emulator = Emulator::start().await.unwrap();
    let c = call(
        &emulator,
        "POST",
        "/github-secrets-repo/get",
        repo_request(
            &emulator,
            PatKind::Admin,
            json!({ "secret_name": "github_x" }),
        ),
    )
    .await;
    assert_eq!(c.status, 500);
    assert_eq!(c.body["detail"], "An unexpected error occurred.");
    assert!(
        c.body["stack_trace"]
            .as_str()
            .unwrap()
            .starts_with("Traceback")
    );

    let c = call(
        &emulator,
        "POST",
        "/github-secrets-repo/list",
        json!({ "request_data": { "owner": 123 } }),
    )
    .await;
    assert_eq!(c.status, 400);
    assert_eq!(
        c.body["detail"][0]["loc"],
        json!(["body", "request_data", "owner"])
    );

    let c = call(&emulator, "GET", "/github-secrets-repo/list", json!({})).await;
    assert_eq!(
        (c.status, c.body),
        (405, json!({ "detail": "Method Not Allowed" }))
    );
}

#[tokio::test]
async fn the_api_key_is_required_everywhere_with_the_frameworks_401_bodies() {
    let emulator = Emulator::start().await.unwrap();
    let url = format!("{}/info/health", emulator.url());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 401);
    let text = response.text().await.unwrap();
    assert!(text.contains("\n    \"message\": \"Client API key is missing, you need to set it on a header or cookie\""), "{text}");
    let key = emulator.api_key().unwrap();
    let response = reqwest::Client::new()
        .get(&url)
        .header("cookie", format!("{}={}", key.name, key.value))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the cookie is read when the header is absent"
    );
}

#[tokio::test]
async fn fault_knobs_inject_statuses_and_connection_resets_then_recover() {
    let emulator = Emulator::start().await.unwrap();
    emulator.fail_next(Fault::Status(503), 1);
    emulator.fail_next(Fault::Reset, 1);
    let client = reqwest::Client::new();
    let key = emulator.api_key().unwrap();
    let get = || {
        client
            .get(format!("{}/encryption/public-key", emulator.url()))
            .header(&key.name, &key.value)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 503);
    let reset = match get().await {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(reset, "the second request must fail at the transport level");
    let body: Value = get().await.unwrap().json().await.unwrap();
    assert_eq!(body["public_key"], emulator.public_key_hex());
    assert_eq!(emulator.requests().len(), 3);
}

#[tokio::test]
async fn the_emulator_s_test_aid_shows_a_stored_value_behind_its_api_key_and_nothing_else() {
    let emulator = Emulator::start().await.unwrap();
    let body = repo_request(
        &emulator,
        PatKind::Admin,
        json!({ "secret_name": "api_key", "encrypted_value": emulator.seal("line 1\nline 2") }),
    );
    assert_eq!(
        call(&emulator, "POST", "/github-secrets-repo/create", body)
            .await
            .status,
        201
    );
    let key = emulator.api_key().unwrap();
    let get = |query: &str, with_key: bool| {
        let mut request = reqwest::Client::new().get(format!(
            "{}{}?{query}",
            emulator.url(),
            mgraph_deploy_emulator::STORED_VALUE
        ));
        if with_key {
            request = request.header(&key.name, &key.value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let (status, shown) = get("owner=local-owner&repo=local-repo&name=API_KEY", true).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["name"], "API_KEY");
    assert_eq!(shown["value"], "line 1\nline 2");
    assert!(
        shown["test_aid"]
            .as_str()
            .unwrap()
            .contains("never shows a value")
    );
    assert_eq!(
        get("owner=local-owner&repo=local-repo&name=API_KEY", false)
            .await
            .0,
        401
    );
    assert_eq!(
        get("owner=local-owner&repo=local-repo&name=NOPE", true)
            .await
            .0,
        404
    );
    assert_eq!(get("org=local-org&owner=x&name=API_KEY", true).await.0, 400);
    assert_eq!(get("name=API_KEY", true).await.0, 400);
}
