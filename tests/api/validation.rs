//! Bad requests are answered 400 `invalid_input`, naming the field and the rule, before the
//! upstream sees anything: every test ends by checking the upstream received zero requests.

use crate::helpers::*;
use serde_json::{Value, json};

/// Sends each `(route, body, field)` case and checks the 400 envelope names `field`.
async fn assert_rejected(h: &Harness, cases: &[(&str, Vec<u8>, &str)]) {
    for (verb, body, field) in cases {
        let reply = h
            .post_raw(&format!("/operations/github/secrets/{verb}"), body.clone())
            .await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(reply.status, 400, "{verb} {shown}: {}", reply.text);
        assert_eq!(reply.error_type(), "invalid_input", "{shown}");
        assert_eq!(reply.json["success"], false);
        assert_eq!(reply.json["data"], json!({}));
        assert_eq!(reply.json["operation"], format!("github:secrets:{verb}"));
        assert!(
            reply.error().starts_with(&format!("`{field}` ")),
            "{verb} {shown}: expected the error to name `{field}`, got {:?}",
            reply.error()
        );
    }
    assert_eq!(
        h.upstream_requests().await.len(),
        0,
        "no invalid request may reach the upstream"
    );
}

fn with(mut body: Value, key: &str, value: Value) -> Vec<u8> {
    body[key] = value;
    body.to_string().into_bytes()
}

fn without(mut body: Value, key: &str) -> Vec<u8> {
    body.as_object_mut().unwrap().remove(key);
    body.to_string().into_bytes()
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_are_rejected_before_the_upstream() {
    let h = Harness::start().await;
    for body in [
        &b""[..],
        b"   ",
        b"{",
        b"{\"encrypted_pat\": }",
        b"[]",
        b"\"text\"",
        b"{} trailing",
    ] {
        let reply = h
            .post_raw("/operations/github/secrets/list", body.to_vec())
            .await;
        assert_eq!(
            reply.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            reply.text
        );
        assert_eq!(reply.error_type(), "invalid_input");
        assert!(
            reply.error().starts_with("The request body")
                || reply.error().starts_with("the request body"),
            "{}",
            reply.error()
        );
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn missing_fields_unknown_fields_and_wrong_types_are_named() {
    let h = Harness::start().await;
    let create = create_body(repo_target(), "API_KEY");
    let cases = vec![
        (
            "create",
            without(create.clone(), "encrypted_pat"),
            "encrypted_pat",
        ),
        (
            "create",
            without(create.clone(), "encrypted_value"),
            "encrypted_value",
        ),
        (
            "create",
            without(create.clone(), "secret_name"),
            "secret_name",
        ),
        ("create", without(create.clone(), "target"), "target"),
        (
            "create",
            with(create.clone(), "secret_nmae", json!("X")),
            "secret_nmae",
        ),
        (
            "create",
            with(create.clone(), "secret_name", json!(42)),
            "secret_name",
        ),
        (
            "create",
            with(create.clone(), "target", json!("octo-org/my-service")),
            "target",
        ),
        // A typo must not silently write to another scope.
        (
            "create",
            with(
                create.clone(),
                "target",
                json!({ "owner": "o", "repo": "r", "enviroment": "prod" }),
            ),
            "target.enviroment",
        ),
        (
            "get",
            with(
                secret_body(repo_target(), "A"),
                "encrypted_value",
                json!(sealed_value()),
            ),
            "encrypted_value",
        ),
        (
            "list",
            with(
                json!({ "encrypted_pat": sealed_pat(), "target": repo_target() }),
                "secret_name",
                json!("A"),
            ),
            "secret_name",
        ),
        (
            "presence",
            json!({ "encrypted_pat": sealed_pat(), "target": repo_target() })
                .to_string()
                .into_bytes(),
            "required",
        ),
        (
            "presence",
            json!({ "encrypted_pat": sealed_pat(), "target": repo_target(), "required": "A" })
                .to_string()
                .into_bytes(),
            "required",
        ),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn sealed_blobs_must_be_strict_standard_base64_of_a_sealed_box() {
    let h = Harness::start().await;
    let create = create_body(repo_target(), "API_KEY");
    let pat = sealed_pat();
    let url_safe = sealed_blob(9, 120).replace('+', "-").replace('/', "_");
    assert!(
        url_safe.contains(['-', '_']),
        "the fixture must use the URL-safe alphabet"
    );
    let cases = vec![
        (
            "create",
            with(create.clone(), "encrypted_pat", json!("")),
            "encrypted_pat",
        ),
        (
            "create",
            with(create.clone(), "encrypted_pat", json!(format!("{pat}\n"))),
            "encrypted_pat",
        ),
        (
            "create",
            with(
                create.clone(),
                "encrypted_pat",
                json!(format!("{} {}", &pat[..40], &pat[40..])),
            ),
            "encrypted_pat",
        ),
        (
            "create",
            with(
                create.clone(),
                "encrypted_pat",
                json!(pat.trim_end_matches('=')),
            ),
            "encrypted_pat",
        ),
        (
            "create",
            with(create.clone(), "encrypted_pat", json!(url_safe)),
            "encrypted_pat",
        ),
        (
            "create",
            with(
                create.clone(),
                "encrypted_pat",
                json!("ghp_notsealed0123456789"),
            ),
            "encrypted_pat",
        ),
        // 48 bytes is a sealed empty string: an empty PAT is useless.
        (
            "create",
            with(create.clone(), "encrypted_pat", json!(sealed_blob(3, 48))),
            "encrypted_pat",
        ),
        (
            "create",
            with(create.clone(), "encrypted_value", json!(sealed_blob(3, 47))),
            "encrypted_value",
        ),
        (
            "create",
            with(
                create.clone(),
                "encrypted_value",
                json!(sealed_blob(3, 49_200)),
            ),
            "encrypted_value",
        ),
        (
            "create",
            with(create.clone(), "encrypted_value", json!(null)),
            "encrypted_value",
        ),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn a_url_safe_blob_gets_a_hint_about_the_alphabet() {
    let h = Harness::start().await;
    let url_safe = sealed_blob(9, 120).replace('+', "-").replace('/', "_");
    let reply = h
        .operation(
            "list",
            &json!({ "encrypted_pat": url_safe, "target": repo_target() }),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("URL-safe"), "{}", reply.error());
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn names_follow_githubs_rules_and_are_never_rewritten() {
    let h = Harness::start().await;
    let t = |owner: &str, repo: &str| json!({ "owner": owner, "repo": repo });
    let cases = vec![
        (
            "create",
            create_body(repo_target(), "GITHUB_SECRET")
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "create",
            create_body(repo_target(), "github_secret")
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "create",
            create_body(repo_target(), "1PASSWORD")
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "create",
            create_body(repo_target(), "API-KEY")
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "create",
            create_body(repo_target(), " API_KEY")
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "create",
            create_body(repo_target(), &"A".repeat(256))
                .to_string()
                .into_bytes(),
            "secret_name",
        ),
        (
            "get",
            secret_body(repo_target(), "").to_string().into_bytes(),
            "secret_name",
        ),
        (
            "get",
            secret_body(t("-octo", "r"), "A").to_string().into_bytes(),
            "target.owner",
        ),
        (
            "get",
            secret_body(t("octo--org", "r"), "A")
                .to_string()
                .into_bytes(),
            "target.owner",
        ),
        (
            "get",
            secret_body(t(&"o".repeat(40), "r"), "A")
                .to_string()
                .into_bytes(),
            "target.owner",
        ),
        (
            "get",
            secret_body(t("octo", ".."), "A").to_string().into_bytes(),
            "target.repo",
        ),
        (
            "get",
            secret_body(t("octo", "my/repo"), "A")
                .to_string()
                .into_bytes(),
            "target.repo",
        ),
        (
            "get",
            secret_body(t("octo", &"r".repeat(101)), "A")
                .to_string()
                .into_bytes(),
            "target.repo",
        ),
        (
            "get",
            secret_body(
                json!({ "owner": "o", "repo": "r", "environment": "prod/eu" }),
                "A",
            )
            .to_string()
            .into_bytes(),
            "target.environment",
        ),
        (
            "get",
            secret_body(
                json!({ "owner": "o", "repo": "r", "environment": " prod" }),
                "A",
            )
            .to_string()
            .into_bytes(),
            "target.environment",
        ),
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": { "org": "octo_org" } })
                .to_string()
                .into_bytes(),
            "target.org",
        ),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn a_target_must_have_exactly_one_shape() {
    let h = Harness::start().await;
    let cases = vec![
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": {} })
                .to_string()
                .into_bytes(),
            "target",
        ),
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": { "owner": "o" } })
                .to_string()
                .into_bytes(),
            "target",
        ),
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": { "repo": "r" } })
                .to_string()
                .into_bytes(),
            "target",
        ),
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": { "org": "o", "repo": "r" } })
                .to_string()
                .into_bytes(),
            "target",
        ),
        (
            "list",
            json!({ "encrypted_pat": sealed_pat(), "target": { "org": "o", "environment": "e" } })
                .to_string()
                .into_bytes(),
            "target",
        ),
        // presence is about what a workflow run in a repository sees
        (
            "presence",
            json!({ "encrypted_pat": sealed_pat(), "target": org_target(), "required": ["A"] })
                .to_string()
                .into_bytes(),
            "target",
        ),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn organisation_options_and_env_fallback_are_checked_against_the_scope() {
    let h = Harness::start().await;
    let org = create_body(org_target(), "NPM_TOKEN");
    let mut selected = org.clone();
    selected["visibility"] = json!("selected");
    let mut private_with_ids = org.clone();
    private_with_ids["visibility"] = json!("private");
    private_with_ids["repo_ids"] = json!([1]);
    let cases = vec![
        ("create", selected.to_string().into_bytes(), "repo_ids"),
        (
            "create",
            with(selected.clone(), "repo_ids", json!([])),
            "repo_ids",
        ),
        (
            "create",
            with(selected.clone(), "repo_ids", json!(["1"])),
            "repo_ids[0]",
        ),
        (
            "create",
            with(selected.clone(), "repo_ids", json!([-1])),
            "repo_ids[0]",
        ),
        (
            "create",
            private_with_ids.to_string().into_bytes(),
            "repo_ids",
        ),
        (
            "create",
            with(org.clone(), "repo_ids", json!([])),
            "repo_ids",
        ),
        (
            "create",
            with(org.clone(), "visibility", json!("public")),
            "visibility",
        ),
        (
            "create",
            with(create_body(repo_target(), "A"), "visibility", json!("all")),
            "visibility",
        ),
        (
            "create",
            with(
                create_body(repo_target(), "A"),
                "env_fallback",
                json!("repo"),
            ),
            "env_fallback",
        ),
        (
            "create",
            with(create_body(env_target(), "A"), "env_fallback", json!("org")),
            "env_fallback",
        ),
        (
            "create",
            with(create_body(env_target(), "A"), "env_fallback", json!(true)),
            "env_fallback",
        ),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn presence_takes_only_secret_names_and_the_builtin_token() {
    let h = Harness::start().await;
    let body = |required: Value| {
        json!({ "encrypted_pat": sealed_pat(), "target": repo_target(), "required": required })
            .to_string()
            .into_bytes()
    };
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let cases = vec![
        ("presence", body(json!([])), "required"),
        ("presence", body(json!(["GITHUB_SHA"])), "required[0]"),
        ("presence", body(json!(["A", "bad-name"])), "required[1]"),
        ("presence", body(json!(many)), "required"),
    ];
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_refused_unread() {
    let h = Harness::with_env(|vars| {
        vars.insert("DEPLOY__MAX_BODY_BYTES".into(), "2048".into());
    })
    .await;
    let mut body = create_body(repo_target(), "API_KEY");
    body["encrypted_value"] = json!(sealed_blob(5, 3000));

    let reply = h.operation("create", &body).await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error_type(), "invalid_input");
    assert!(
        reply.error().contains("DEPLOY__MAX_BODY_BYTES"),
        "{}",
        reply.error()
    );
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn rejections_never_echo_a_blob_even_one_sent_in_the_wrong_place() {
    let h = Harness::start().await;
    let pat = sealed_pat();
    let value = sealed_value();
    let bodies = vec![
        (
            "list",
            json!({ "encrypted_pat": pat, "target": repo_target(), "encrypted_value": value }),
        ),
        (
            "list",
            json!({ "encrypted_pat": pat, "target": repo_target(), value.clone(): pat }),
        ),
        (
            "get",
            json!({ "encrypted_pat": pat, "target": repo_target(), "secret_name": value }),
        ),
        (
            "get",
            json!({ "encrypted_pat": pat, "target": { "owner": value, "repo": "r" }, "secret_name": "A" }),
        ),
        (
            "create",
            json!({ "encrypted_pat": format!("{pat}!"), "target": repo_target(), "secret_name": "A", "encrypted_value": value }),
        ),
        (
            "create",
            json!({ "encrypted_pat": pat, "target": repo_target(), "secret_name": "A", "encrypted_value": 7 }),
        ),
        (
            "presence",
            json!({ "encrypted_pat": pat, "target": repo_target(), "required": [value] }),
        ),
    ];
    for (verb, body) in bodies {
        let reply = h.operation(verb, &body).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        for blob in [&pat, &value] {
            for window in blob.as_bytes().windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !reply.text.contains(window),
                    "{verb}: the reply echoes part of a blob: {}",
                    reply.text
                );
            }
        }
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn a_null_member_is_a_wrong_type_never_an_absent_field() {
    let h = Harness::start().await;
    let env_create = create_body(env_target(), "API_KEY");
    let org_create = create_body(org_target(), "API_KEY");
    let mut env_null = env_create.clone();
    env_null["target"]["environment"] = Value::Null;
    let mut org_null = list_body(repo_target());
    org_null["target"]["org"] = Value::Null;
    let cases = vec![
        (
            "create",
            env_null.to_string().into_bytes(),
            "target.environment",
        ),
        ("list", org_null.to_string().into_bytes(), "target.org"),
        (
            "create",
            with(org_create.clone(), "visibility", Value::Null),
            "visibility",
        ),
        (
            "create",
            with(org_create.clone(), "repo_ids", Value::Null),
            "repo_ids",
        ),
        (
            "create",
            with(env_create.clone(), "env_fallback", Value::Null),
            "env_fallback",
        ),
        (
            "create",
            with(env_create.clone(), "secret_name", Value::Null),
            "secret_name",
        ),
        ("create", with(env_create, "target", Value::Null), "target"),
    ];
    assert_rejected(&h, &cases).await;
    for (_, body, field) in &cases {
        let reply = h
            .post_raw("/operations/github/secrets/create", body.clone())
            .await;
        assert!(reply.error().contains("null"), "{field}: {}", reply.error());
    }
}

#[tokio::test]
async fn a_key_given_twice_is_refused_naming_it_and_never_echoing_an_unplain_key() {
    let h = Harness::start().await;
    let pat = sealed_pat();
    let dup_env = format!(
        r#"{{"encrypted_pat":"{pat}","target":{{"owner":"o","repo":"r","environment":"a","environment":"b"}}}}"#
    );
    let dup_top = format!(
        r#"{{"encrypted_pat":"{pat}","encrypted_pat":"{pat}","target":{{"owner":"o","repo":"r"}}}}"#
    );
    assert_rejected(
        &h,
        &[
            ("list", dup_env.into_bytes(), "target.environment"),
            ("list", dup_top.into_bytes(), "encrypted_pat"),
        ],
    )
    .await;
    let blob_key = format!(r#"{{"{pat}":1,"{pat}":2}}"#);
    let reply = h
        .post_raw("/operations/github/secrets/list", blob_key.into_bytes())
        .await;
    assert_eq!(reply.status, 400);
    assert!(!reply.text.contains(&pat[..16]), "{}", reply.text);
}

#[tokio::test]
async fn a_repository_name_of_only_underscores_is_refused_as_the_github_service_would() {
    let h = Harness::start().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = ["_", "___"]
        .into_iter()
        .map(|repo| {
            let body = list_body(json!({ "owner": "octo-org", "repo": repo }));
            ("list", body.to_string().into_bytes(), "target.repo")
        })
        .collect();
    assert_rejected(&h, &cases).await;
}

#[tokio::test]
async fn a_whole_number_written_with_a_zero_fraction_is_that_number_and_a_fraction_is_refused() {
    let h = Harness::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(upstream_ok(200, json!({}), &[]))
        .mount(&h.upstream)
        .await;
    let mut body = create_body(org_target(), "NPM_TOKEN");
    body["repo_ids"] = json!([3.0, 4]);
    let reply = h.operation("create", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let sent: Value = serde_json::from_slice(&h.upstream_requests().await[0].body).unwrap();
    assert_eq!(sent["request_data"]["repo_ids"], json!([3, 4]));

    let h = Harness::start().await;
    for (ids, field) in [
        (json!([3.5]), "repo_ids[0]"),
        (json!([1, -2.0]), "repo_ids[1]"),
        (json!([1e300]), "repo_ids[0]"),
        (json!([9_223_372_036_854_775_808u64]), "repo_ids[0]"),
    ] {
        body["repo_ids"] = ids;
        let reply = h.operation("create", &body).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(
            reply.error(),
            format!("`{field}` must be a whole number from 0 to 9223372036854775807")
        );
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn a_refusal_states_the_field_s_own_rule_never_a_generic_one() {
    let h = Harness::start().await;
    let mut env_create = create_body(env_target(), "API_KEY");
    env_create["env_fallback"] = json!(true);
    let reply = h.operation("create", &env_create).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.error(),
        r#"`env_fallback` must be "repo": the scope written when the environment does not exist (not true or false)"#
    );

    // A number no type can hold is named by its field, not placed at a column of the body.
    let mut org_create = create_body(org_target(), "NPM_TOKEN");
    org_create["repo_ids"] = json!([1, 2]);
    let text = org_create.to_string().replace("[1,2]", "[1,1e400]");
    let reply = h
        .post_raw("/operations/github/secrets/create", text.into_bytes())
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error(), "`repo_ids[1]` is a number out of range");

    for (options, field, rule) in [
        (json!({ "concurrency": 2.5 }), "concurrency", "from 1 to 16"),
        (
            json!({ "deadline_seconds": 0.5 }),
            "deadline_seconds",
            "from 1 to 840",
        ),
    ] {
        let workflow = json!({
            "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
            "options": options,
            "operations": [ { "type": "github:secrets:list" } ] });
        let reply = h
            .post_raw("/execute/plan", workflow.to_string().into_bytes())
            .await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        let error = &reply.json["errors"][0];
        assert_eq!(error["field"], format!("options.{field}"), "{error}");
        assert_eq!(
            error["message"],
            format!("must be a whole number {rule}"),
            "{error}"
        );
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}
