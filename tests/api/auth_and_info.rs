//! This service's own API key, the info routes, the public-key route and its cache, request ids,
//! and the JSON answers to unknown routes.

use crate::helpers::*;
use axum::body::Body;
use http::{Method, Request};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const PUBLIC_KEY: &str = "6c5b2a7f0e0c8f2d4b1a39e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8";

fn anonymous(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

fn assert_unauthorized(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json["success"], false);
    assert_eq!(reply.json["error_type"], "unauthorized");
    assert!(reply.json["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn health_answers_without_a_key() {
    let h = Harness::start().await;
    let reply = h.send(anonymous(Method::GET, "/info/health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json, json!({ "status": "ok" }));
}

#[tokio::test]
async fn version_and_status_describe_this_service() {
    let h = Harness::start().await;
    let version = h.get("/info/version").await;
    assert_eq!(
        version.json,
        json!({ "version": env!("CARGO_PKG_VERSION") })
    );
    let status = h.get("/info/status").await;
    assert_eq!(
        status.json,
        json!({ "name": "mgraph_ai_service_deploy", "version": env!("CARGO_PKG_VERSION"),
                "status": "operational", "environment": "local",
                "history": { "store": "none", "state": "off" } })
    );
}

#[tokio::test]
async fn every_route_but_the_exempt_ones_needs_the_key() {
    let h = Harness::start().await;
    for (m, p) in [
        (Method::GET, "/info/version"),
        (Method::GET, "/info/status"),
        (Method::GET, "/public-keys/github"),
        (Method::POST, "/operations/github/secrets/list"),
        (Method::POST, "/operations/github/secrets/create"),
        (Method::POST, "/operations/github/secrets/presence"),
        (Method::GET, "/no/such/route"),
    ] {
        let reply = h.send(anonymous(m.clone(), p)).await;
        assert_unauthorized(&reply);
        assert!(
            reply.json["error"].as_str().unwrap().contains(API_KEY_NAME),
            "{m} {p}: {}",
            reply.text
        );
    }
    assert_eq!(h.upstream_requests().await.len(), 0);
}

#[tokio::test]
async fn the_exemption_matches_the_exact_path_and_method_only() {
    let h = Harness::start().await;
    for (m, p) in [
        (Method::GET, "/INFO/HEALTH"),
        (Method::GET, "/Info/Health"),
        (Method::GET, "/info/health/"),
        (Method::GET, "/info//health"),
        (Method::GET, "/info/health/../status"),
        (Method::GET, "/info/%68ealth"),
        (Method::POST, "/info/health"),
        (Method::OPTIONS, "/info/health"),
        (Method::OPTIONS, "/operations/github/secrets/create"),
        (Method::HEAD, "/info/status"),
        (Method::POST, "/docs/"),
        (Method::HEAD, "/docs/swagger-ui.css"),
        (Method::POST, "/openapi.json"),
    ] {
        let reply = h.send(anonymous(m.clone(), p)).await;
        assert_eq!(
            reply.status, 401,
            "{m} {p} must need the key: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn the_docs_page_s_exemption_reaches_no_other_route() {
    let h = Harness::start().await;
    for p in [
        "/docs/../info/status",
        "/docs/%2e%2e/info/status",
        "/docs//info/status",
    ] {
        let reply = h.send(anonymous(Method::GET, p)).await;
        assert!(
            reply.status == 404 && !reply.text.contains("operational"),
            "GET {p}: {} {}",
            reply.status,
            reply.text
        );
    }
}

#[tokio::test]
async fn head_of_health_is_exempt_like_its_get() {
    let h = Harness::start().await;
    let reply = h.send(anonymous(Method::HEAD, "/info/health")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let h = Harness::start().await;
    for wrong in [
        "wrong",
        "",
        &API_KEY_VALUE[..API_KEY_VALUE.len() - 1],
        &format!("{API_KEY_VALUE}x"),
    ] {
        let reply = h
            .send(
                Request::builder()
                    .uri("/info/status")
                    .header(API_KEY_NAME, wrong)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_unauthorized(&reply);
    }
}

#[tokio::test]
async fn the_key_is_accepted_from_a_cookie_when_the_header_is_absent() {
    let h = Harness::start().await;
    let cookie = format!("theme=dark; {API_KEY_NAME}={API_KEY_VALUE}; other=1");
    let reply = h
        .send(
            Request::builder()
                .uri("/info/status")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn a_wrong_header_is_not_rescued_by_a_right_cookie() {
    let h = Harness::start().await;
    let reply = h
        .send(
            Request::builder()
                .uri("/info/status")
                .header(API_KEY_NAME, "wrong")
                .header("cookie", format!("{API_KEY_NAME}={API_KEY_VALUE}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_unauthorized(&reply);
}

#[tokio::test]
async fn a_cookie_with_a_wrong_key_is_refused() {
    let h = Harness::start().await;
    let reply = h
        .send(
            Request::builder()
                .uri("/info/status")
                .header("cookie", format!("{API_KEY_NAME}=wrong"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_unauthorized(&reply);
}

#[tokio::test]
async fn in_lambda_without_a_key_every_route_but_health_is_refused() {
    let h = Harness::with_env(|vars| {
        vars.remove("FAST_API__AUTH__API_KEY__NAME");
        vars.remove("FAST_API__AUTH__API_KEY__VALUE");
        vars.insert("AWS_LAMBDA_RUNTIME_API".into(), "127.0.0.1:9001".into());
    })
    .await;
    assert_eq!(
        h.send(anonymous(Method::GET, "/info/health")).await.status,
        200
    );
    let reply = h.send(anonymous(Method::GET, "/info/status")).await;
    assert_unauthorized(&reply);
    assert!(
        reply.json["error"]
            .as_str()
            .unwrap()
            .contains("no API key configured")
    );
    // Presenting some key does not help: there is nothing to compare it with.
    let reply = h
        .send(
            Request::builder()
                .uri("/info/status")
                .header("x-api-key", "anything")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_unauthorized(&reply);
}

#[tokio::test]
async fn locally_without_a_key_the_service_is_open() {
    let h = Harness::with_env(|vars| {
        vars.remove("FAST_API__AUTH__API_KEY__NAME");
        vars.remove("FAST_API__AUTH__API_KEY__VALUE");
    })
    .await;
    let reply = h.send(anonymous(Method::GET, "/info/status")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["environment"], "local");
}

#[tokio::test]
async fn the_public_key_is_served_from_the_upstream_with_its_algorithm() {
    let h = Harness::start().await;
    h.upstream_answers(
        "GET",
        "/encryption/public-key",
        ResponseTemplate::new(200).set_body_json(json!({
            "public_key": PUBLIC_KEY, "algorithm": "NaCl/Curve25519/SealedBox", "timestamp": 1 })),
    )
    .await;

    let reply = h.get("/public-keys/github").await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({ "public_key": PUBLIC_KEY, "algorithm": "NaCl/Curve25519/SealedBox", "service": "github" })
    );
    let sent = &h.upstream_requests().await[0];
    assert_eq!(
        sent.headers.get(UPSTREAM_KEY_NAME).unwrap(),
        UPSTREAM_KEY_VALUE
    );
}

#[tokio::test]
async fn the_public_key_is_cached_until_a_decryption_failure_drops_it() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/encryption/public-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "public_key": PUBLIC_KEY })))
        .expect(2)
        .mount(&h.upstream)
        .await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        upstream_failure(
            401,
            "decryption_failed",
            "Decryption failed: Invalid encrypted format or wrong key",
            json!({ "secrets": [] }),
        ),
    )
    .await;

    assert_eq!(h.get("/public-keys/github").await.status, 200);
    assert_eq!(h.get("/public-keys/github").await.status, 200); // cached
    let failed = h.operation("list", &list_body(repo_target())).await;
    assert_eq!(failed.status, 422);
    assert!(
        failed.error().contains("encrypted_pat"),
        "{}",
        failed.error()
    );
    assert_eq!(h.get("/public-keys/github").await.status, 200); // fetched again
    // `expect(2)` is verified when the mock server drops.
}

#[tokio::test]
async fn a_ttl_of_zero_fetches_the_public_key_every_time() {
    let h = Harness::with_env(|vars| {
        vars.insert("DEPLOY__PUBLIC_KEY_TTL_SECONDS".into(), "0".into());
    })
    .await;
    Mock::given(method("GET"))
        .and(path("/encryption/public-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "public_key": PUBLIC_KEY })))
        .expect(3)
        .mount(&h.upstream)
        .await;
    for _ in 0..3 {
        assert_eq!(h.get("/public-keys/github").await.status, 200);
    }
}

#[tokio::test]
async fn an_unusable_public_key_is_an_upstream_error() {
    let h = Harness::start().await;
    h.upstream_answers(
        "GET",
        "/encryption/public-key",
        ResponseTemplate::new(200).set_body_json(json!({ "public_key": "not-hex" })),
    )
    .await;
    let reply = h.get("/public-keys/github").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json["error_type"], "upstream_error");
    // And nothing bad was cached.
    let again = h.get("/public-keys/github").await;
    assert_eq!(again.status, 502);
    assert_eq!(h.upstream_requests().await.len(), 2);
}

#[tokio::test]
async fn a_public_key_failure_upstream_keeps_the_status_and_detail() {
    let h = Harness::start().await;
    h.upstream_answers(
        "GET",
        "/encryption/public-key",
        ResponseTemplate::new(500).set_body_json(json!({ "detail": "Private key not configured" })),
    )
    .await;
    let reply = h.get("/public-keys/github").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json["error_type"], "upstream_error");
    assert!(
        reply.json["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500: Private key not configured"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn every_response_carries_a_generated_request_id() {
    let h = Harness::start().await;
    let a = h.send(anonymous(Method::GET, "/info/health")).await;
    let b = h.send(anonymous(Method::GET, "/info/status")).await; // refused, still has one
    let a = a.header("x-request-id").expect("generated").to_owned();
    let b = b
        .header("x-request-id")
        .expect("generated on a 401 too")
        .to_owned();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "a UUID: {a}");
}

#[tokio::test]
async fn a_clients_request_id_is_propagated() {
    let h = Harness::start().await;
    let reply = h
        .send(
            Request::builder()
                .uri("/info/health")
                .header("x-request-id", "ci-run-42.step_3")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some("ci-run-42.step_3"));
}

#[tokio::test]
async fn a_request_id_that_is_not_a_plain_identifier_is_replaced() {
    let h = Harness::start().await;
    let reply = h
        .send(
            Request::builder()
                .uri("/info/health")
                .header("x-request-id", sealed_pat())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let id = reply.header("x-request-id").unwrap();
    assert_ne!(id, sealed_pat());
    assert_eq!(id.len(), 36);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::start().await;
    let missing = h.get("/operations/github/secrets/update").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error_type"], "not_found");
    let wrong_method = h.get("/operations/github/secrets/create").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json["success"], false);
    assert_eq!(wrong_method.json["error_type"], "method_not_allowed");
}

#[tokio::test]
async fn a_panic_in_a_handler_is_a_500_internal_error_envelope_carrying_the_request_id_only() {
    use axum::routing::get;
    use mgraph_deploy::router::with_layers;

    let upstream = wiremock::MockServer::start().await;
    let state = mgraph_deploy::AppState::new(&config_from(&test_env(&upstream.uri())), None);
    let routes = axum::Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("payload that could carry input");
            }
        }),
    );
    let h = Harness::serving(upstream, with_layers(routes, state));

    let reply = h
        .send(
            authorised(Method::GET, "/boom")
                .header("x-request-id", "req-boom-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;

    assert_eq!(reply.status, 500, "{}", reply.text);
    assert_eq!(reply.json["success"], false);
    assert_eq!(reply.json["error_type"], "internal_error");
    assert!(reply.error().contains("req-boom-1"), "{}", reply.error());
    assert!(!reply.text.contains("payload"), "{}", reply.text);
    assert_eq!(reply.header("x-request-id"), Some("req-boom-1"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

/// The `api.md` §1 envelope, failure side: exactly its members.
fn assert_failure_envelope(reply: &Reply, status: u16, error_type: &str, operation: Value) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let keys: Vec<&str> = reply
        .json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {}", reply.text))
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "data",
            "duration",
            "error",
            "error_type",
            "messages",
            "operation",
            "rate_limit",
            "success"
        ],
        "{}",
        reply.text
    );
    assert_eq!(reply.json["success"], false);
    assert_eq!(reply.json["error_type"], error_type);
    assert_eq!(reply.json["operation"], operation);
    assert_eq!(reply.json["data"], json!({}));
    assert_eq!(reply.json["rate_limit"], Value::Null);
    assert!(!reply.error().is_empty());
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn every_answer_under_operations_is_the_envelope_404_405_and_401_included() {
    let h = Harness::start().await;

    let wrong_method = h.get("/operations/github/secrets/create").await;
    assert_failure_envelope(
        &wrong_method,
        405,
        "method_not_allowed",
        json!("github:secrets:create"),
    );
    assert_eq!(wrong_method.header("allow"), Some("POST"));

    for path in ["/operations/github/secrets/update", "/operations/x"] {
        let missing = h.post_raw(path, b"{}".to_vec()).await;
        assert_failure_envelope(&missing, 404, "not_found", Value::Null);
    }

    let anonymous = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/operations/github/secrets/list")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_failure_envelope(
        &anonymous,
        401,
        "unauthorized",
        json!("github:secrets:list"),
    );

    // Outside /operations the plain failure body stays.
    let elsewhere = h.get("/nope").await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(elsewhere.json["error_type"], "not_found");
    assert!(elsewhere.json.get("operation").is_none());
}

#[tokio::test]
async fn a_not_found_answer_never_echoes_a_path_that_could_carry_a_blob() {
    let h = Harness::start().await;
    let blob = sealed_pat()
        .replace('/', "_")
        .replace('+', "-")
        .replace('=', "");
    let reply = h.get(&format!("/operations/{blob}")).await;
    assert_eq!(reply.status, 404);
    assert!(!reply.text.contains(&blob[..16]), "{}", reply.text);
}
