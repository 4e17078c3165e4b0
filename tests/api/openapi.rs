//! The OpenAPI document: served without the API key, valid in shape, listing exactly the routes
//! the router serves, and every status each route can answer; the docs page served offline.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use mgraph_deploy::openapi;
use mgraph_deploy::router::route_table;
use mgraph_deploy_api::{ErrorType, OperationKind};
use serde_json::{Value, json};

use crate::helpers::{API_KEY_NAME, Harness, meta, upstream_ok};

async fn anonymous(h: &Harness, path: &str) -> crate::helpers::Reply {
    h.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_lists_every_route_of_the_router_and_every_documented_route_is_served() {
    let h = Harness::start().await;
    let doc = anonymous(&h, "/openapi.json").await.json;
    let routed: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path))
        .collect();
    assert_eq!(documented(&doc), routed);

    for (method, path) in routed {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header(API_KEY_NAME, crate::helpers::API_KEY_VALUE)
            .body(Body::from("{}"))
            .unwrap();
        let reply = h.send(request).await;
        assert!(
            !(reply.status == 404 && reply.error().starts_with("No route")),
            "{method} {path} is documented but not routed: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn the_document_and_the_docs_page_are_served_without_the_api_key() {
    let h = Harness::start().await;
    let reply = anonymous(&h, "/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["openapi"], "3.1.0");
    assert_eq!(
        reply.json["components"]["securitySchemes"]["api_key_header"],
        json!({"type": "apiKey", "in": "header", "name": API_KEY_NAME, "description": "This service's API key (FAST_API__AUTH__API_KEY__VALUE)"})
    );
    assert_eq!(
        reply.json["components"]["securitySchemes"]["api_key_cookie"]["in"],
        "cookie"
    );

    let redirect = anonymous(&h, "/docs").await;
    assert_eq!(redirect.status, 303);
    assert_eq!(redirect.header("location"), Some("/docs/"));
    let page = anonymous(&h, "/docs/").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("swagger-ui-bundle.js"), "{}", page.text);
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let reply = anonymous(&h, asset).await;
        assert_eq!(reply.status, 200, "{asset}");
        assert!(reply.text.len() > 10_000, "{asset} is the vendored file");
    }
    // The page's files are exempt; nothing else under a new prefix is.
    assert_eq!(anonymous(&h, "/info/status").await.status, 401);
    let post = h
        .send(Request::post("/docs/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(post.status, 401);
}

#[tokio::test]
async fn every_operation_documents_each_status_it_can_answer_with_the_envelope() {
    let doc = serde_json::to_value(openapi::document("x-api-key")).unwrap();
    for kind in OperationKind::ALL {
        let responses = &doc["paths"][kind.path()]["post"]["responses"];
        let envelope = format!(
            "#/components/schemas/{}{}Envelope",
            kind.verb()[..1].to_uppercase(),
            &kind.verb()[1..]
        );
        for t in ErrorType::ALL
            .into_iter()
            .filter(|t| *t != ErrorType::Stopped)
        {
            let status = t.status().as_u16().to_string();
            let response = &responses[&status];
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                envelope,
                "{} {status} ({t})",
                kind.name()
            );
            assert!(
                response["description"]
                    .as_str()
                    .unwrap()
                    .contains(t.as_str()),
                "{} {status} names {t}",
                kind.name()
            );
            assert!(response["headers"]["x-request-id"].is_object());
        }
        assert!(responses["429"]["headers"]["retry-after"].is_object());
        assert_eq!(
            responses["200"]["content"]["application/json"]["schema"]["$ref"],
            envelope
        );
    }
    for (path, statuses) in [
        ("/execute", ["200", "207", "422", "401"]),
        ("/execute/plan", ["200", "422", "401", "500"]),
    ] {
        for status in statuses {
            assert!(
                doc["paths"][path]["post"]["responses"][status].is_object(),
                "{path} {status}"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_example_body_passes_validation_and_names_the_local_stack() {
    let h = Harness::with_history().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(upstream_ok(
            200,
            json!({ "secrets": [], "secret": meta("API_KEY"), "created": true, "deleted": true }),
            &[],
        ))
        .mount(&h.upstream)
        .await;
    let doc = anonymous(&h, "/openapi.json").await.json;
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(example) =
            item["post"]["requestBody"]["content"]["application/json"].get("example")
        else {
            continue;
        };
        let text = example.to_string();
        assert!(text.contains("mgraph+deploy+cli+seal"), "{path}: {text}");
        // Every example that names a target names the local stack's.
        assert!(
            text.contains("local-owner") || path == "/executions/get",
            "{path}: {text}"
        );
        let reply = h.post_raw(path, text.into_bytes()).await;
        assert_ne!(reply.status, 400, "{path}: {}", reply.text);
        assert_ne!(reply.status, 422, "{path}: {}", reply.text);
        tried += 1;
    }
    assert_eq!(
        tried, 12,
        "six operations, the token check, /execute, /execute/plan and the three history routes"
    );
}
