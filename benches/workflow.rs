//! Workflow throughput: a 100-create workflow against a local upstream that answers every call
//! after a fixed 50 ms, at concurrency 1, 4 and 16. Prints the wall time next to the ideal
//! `ceil(100 / c) × 50 ms`. Run with `cargo bench --bench workflow`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Request;
use http_body_util::BodyExt as _;
use mgraph_deploy::config::Config;
use mgraph_deploy::{AppState, build_router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const OPERATIONS: usize = 100;
const LATENCY: Duration = Duration::from_millis(50);

async fn slow_create() -> axum::Json<Value> {
    tokio::time::sleep(LATENCY).await; // the simulated upstream latency
    axum::Json(json!({
        "response_context": { "success": true, "status_code": 201, "messages": [], "errors": [],
                              "error_type": "none", "rate_limit": null },
        "response_data": { "created": true } }))
}

fn blob(seed: u8, len: usize) -> String {
    STANDARD.encode(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

#[tokio::main]
async fn main() {
    let upstream = Router::new().route("/github-secrets-repo/create", post(slow_create));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let config = Config::from_lookup(|name| match name {
        "URL__TARGET_SERVER__GITHUB_SERVICE" => Some(url.clone()),
        _ => None,
    })
    .expect("bench configuration");
    let router = build_router(AppState::new(&config, None));

    println!(
        "{OPERATIONS} creates, upstream latency {} ms",
        LATENCY.as_millis()
    );
    println!(
        "{:>12} {:>12} {:>12} {:>10}",
        "concurrency", "wall (ms)", "ideal (ms)", "overhead"
    );
    for concurrency in [1usize, 4, 16] {
        let operations: Vec<Value> = (0..OPERATIONS)
            .map(|i| {
                json!({ "type": "github:secrets:create", "secret_name": format!("SECRET_{i:03}"),
                             "encrypted_value": blob(i as u8, 80) })
            })
            .collect();
        let body = json!({
            "credentials": { "github_pat": blob(200, 88) },
            "target": { "owner": "bench-owner", "repo": "bench-repo" },
            "options": { "concurrency": concurrency, "deadline_seconds": 120 },
            "operations": operations,
        });
        let request = Request::post("/execute")
            .body(Body::from(body.to_string()))
            .unwrap();
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let wall = started.elapsed();
        let report: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(report["completed"], OPERATIONS, "{report}");
        let ideal = LATENCY * OPERATIONS.div_ceil(concurrency) as u32;
        println!(
            "{:>12} {:>12.0} {:>12.0} {:>9.1}%",
            concurrency,
            wall.as_secs_f64() * 1000.0,
            ideal.as_secs_f64() * 1000.0,
            (wall.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0
        );
    }
}
