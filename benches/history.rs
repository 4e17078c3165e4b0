//! What recording in the history adds to a single create: two routers in one process, one keeping
//! no history and one on a SQLite file (the local default), each sending its create to the same
//! local upstream that answers at once. Requests alternate between them, so both see the same
//! machine; prints each one's p50 and p90 and the difference. A 6-step workflow is timed the same
//! way. Run with `cargo bench --bench history`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Request;
use http_body_util::BodyExt as _;
use mgraph_deploy::config::Config;
use mgraph_deploy::history::History;
use mgraph_deploy::{AppState, build_router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ROUNDS: usize = 2_000;

async fn create() -> axum::Json<Value> {
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

async fn router(upstream: &str, store: &str) -> Router {
    let config = Config::from_lookup(|name| match name {
        "URL__TARGET_SERVER__GITHUB_SERVICE" => Some(upstream.to_owned()),
        "DEPLOY__STORE" => Some(store.to_owned()),
        _ => None,
    })
    .expect("bench configuration");
    let history = History::open(&config.store, config.history_retention)
        .await
        .expect("the bench history opens");
    build_router(AppState::new(&config, history))
}

/// Sends `body` to `path`; the time to the whole answer.
async fn time(router: &Router, path: &str, body: &Value) -> Duration {
    let request = Request::post(path)
        .body(Body::from(body.to_string()))
        .unwrap();
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let elapsed = started.elapsed();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        !String::from_utf8_lossy(&bytes).contains("Not recorded"),
        "the history failed"
    );
    elapsed
}

fn percentile(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let upstream = Router::new().route("/github-secrets-repo/create", post(create));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("history.sqlite3").display());
    let without = router(&url, "none").await;
    let with = router(&url, &sqlite).await;

    let target = json!({ "owner": "bench-owner", "repo": "bench-repo" });
    let single = json!({ "encrypted_pat": blob(200, 88), "target": target,
                         "secret_name": "API_KEY", "encrypted_value": blob(1, 80) });
    let operations: Vec<Value> = (0..6)
        .map(|i| {
            json!({ "type": "github:secrets:create", "secret_name": format!("SECRET_{i}"),
                         "encrypted_value": blob(i as u8, 80) })
        })
        .collect();
    let workflow = json!({ "credentials": { "github_pat": blob(200, 88) }, "target": target,
                           "operations": operations });

    for (what, path, body, rounds) in [
        (
            "single create",
            "/operations/github/secrets/create",
            &single,
            ROUNDS,
        ),
        ("6-create workflow", "/execute", &workflow, ROUNDS / 4),
    ] {
        // Warm both: connections to the upstream, the database's pages.
        for _ in 0..20 {
            time(&without, path, body).await;
            time(&with, path, body).await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(time(&without, path, body).await);
            b.push(time(&with, path, body).await);
        }
        let (a50, a90) = (percentile(&mut a, 0.5), percentile(&mut a, 0.9));
        let (b50, b90) = (percentile(&mut b, 0.5), percentile(&mut b, 0.9));
        println!("{what}, {rounds} interleaved rounds against an upstream answering at once:");
        println!("  no history      p50 {a50:.3} ms   p90 {a90:.3} ms");
        println!("  SQLite history  p50 {b50:.3} ms   p90 {b90:.3} ms");
        println!(
            "  recording adds  p50 {:.3} ms   p90 {:.3} ms",
            b50 - a50,
            b90 - a90
        );
    }
}
