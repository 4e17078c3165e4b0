//! What the upstream sends us, at its edges: redirects (never followed, the credentials go nowhere
//! else), answers larger than any envelope (read up to a bound), a connection the upstream closed
//! without answering (a read is sent again, a write never is), and numbers that would overflow the
//! retry arithmetic.

use std::time::Duration;

use crate::helpers::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A second server that must never be called: where the redirects point.
async fn elsewhere() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "public_key": "ab".repeat(32), "algorithm": "NaCl/Curve25519/SealedBox",
        })))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_redirect_on_create_is_upstream_error_and_the_blobs_go_nowhere_else() {
    for status in [301, 302, 303, 307, 308] {
        let h = Harness::start().await;
        let other = elsewhere().await;
        let location = format!("{}/github-secrets-repo/create", other.uri());
        h.upstream_answers(
            "POST",
            "/github-secrets-repo/create",
            ResponseTemplate::new(status).insert_header("location", location.as_str()),
        )
        .await;

        let reply = h
            .operation("create", &create_body(repo_target(), "API_KEY"))
            .await;

        assert_eq!(reply.status, 502, "{status}: {}", reply.text);
        assert_eq!(reply.error_type(), "upstream_error");
        assert!(
            reply.error().contains(&status.to_string()),
            "{}",
            reply.error()
        );
        assert!(!reply.text.contains(&other.uri()), "{}", reply.text);
        assert_eq!(reply.json["data"], json!({}));
        let followed = other.received_requests().await.unwrap();
        assert!(followed.is_empty(), "{status}: the redirect was followed");
        assert_eq!(h.upstream_requests().await.len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_redirected_public_key_is_not_served() {
    let h = Harness::start().await;
    let other = elsewhere().await;
    h.upstream_answers(
        "GET",
        "/encryption/public-key",
        ResponseTemplate::new(307).insert_header(
            "location",
            format!("{}/encryption/public-key", other.uri()).as_str(),
        ),
    )
    .await;

    let reply = h.get("/public-keys/github").await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(reply.error().contains("307"), "{}", reply.error());
    assert!(other.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_larger_than_the_bound_is_upstream_error() {
    let h = Harness::start().await;
    let padding = "x".repeat(5 * 1024 * 1024);
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        ResponseTemplate::new(200).set_body_json(json!({
            "response_context": { "success": true, "status_code": 200, "errors": [],
                                  "messages": [], "error_type": "none", "rate_limit": null },
            "response_data": { "secrets": [], "padding": padding },
        })),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(
        reply.status,
        502,
        "{}",
        &reply.text[..reply.text.len().min(300)]
    );
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(reply.error().contains("larger than"), "{}", reply.error());
}

/// A loopback upstream written by hand, for what wiremock cannot do: each accepted connection
/// is handed to `serve` with its number (0 first).
async fn raw_upstream<F, Fut>(serve: F) -> String
where
    F: Fn(usize, TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(n, stream));
            n += 1;
        }
    });
    url
}

/// Reads one request head and its `content-length` body; the head, `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    read_request_and_body(stream).await.map(|(head, _)| head)
}

/// Reads one request: its head and its `content-length` body; `None` at end of stream.
async fn read_request_and_body(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

fn http_response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn list_envelope() -> String {
    json!({
        "response_context": { "success": true, "status_code": 200, "errors": [], "messages": [],
                              "error_type": "none", "rate_limit": null },
        "response_data": { "secrets": [] },
    })
    .to_string()
}

async fn harness_for(url: &str) -> Harness {
    let url = url.to_owned();
    Harness::with_env(move |vars| {
        vars.insert("URL__TARGET_SERVER__GITHUB_SERVICE".into(), url);
        vars.insert("DEPLOY__UPSTREAM_TIMEOUT_SECONDS".into(), "5".into());
    })
    .await
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_bound_not_read_until_the_timeout() {
    let url = raw_upstream(|_, mut stream| async move {
        if read_request(&mut stream).await.is_none() {
            return;
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        while stream.write_all(chunk.as_bytes()).await.is_ok() {}
    })
    .await;
    let h = harness_for(&url).await;

    let started = std::time::Instant::now();
    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(reply.error().contains("larger than"), "{}", reply.error());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the answer was read until the upstream timeout"
    );
}

#[tokio::test]
async fn a_read_the_upstream_dropped_after_an_error_is_sent_once_more_on_a_new_connection() {
    // Connection 0 answers its first request with a framework 500 and then, like uvicorn after an
    // unhandled exception, closes without answering the next request sent on it. Every later
    // connection answers properly.
    let lists = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = lists.clone();
    let url = raw_upstream(move |n, mut stream| {
        let lists = counted.clone();
        async move {
            if n == 0 {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                let body = r#"{"detail":"An unexpected error occurred.","error":"bad repo"}"#;
                let _ = stream
                    .write_all(&http_response("500 Internal Server Error", body))
                    .await;
                if read_request(&mut stream).await.is_some() {
                    lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                return; // dropped: closed without an answer
            }
            while read_request(&mut stream).await.is_some() {
                lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if stream
                    .write_all(&http_response("200 OK", &list_envelope()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    })
    .await;
    let h = harness_for(&url).await;

    let first = h.operation("list", &list_body(repo_target())).await;
    assert_eq!(first.status, 502, "{}", first.text);

    let second = h.operation("list", &list_body(repo_target())).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json["data"]["secrets"], json!([]));
    assert_eq!(
        lists.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the list the upstream dropped, and the same list once more"
    );
}

/// A GitHub Service written by hand, holding the secret names of one repository: list, get,
/// create and delete answer as the real one does, except that the second request on the first
/// connection is read and then dropped without an answer, after acting on it when `acts`.
struct DroppingUpstream {
    url: String,
    secrets: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// `METHOD /path` of every request read, dropped ones included.
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DroppingUpstream {
    async fn start(existing: &[&str], acts: bool) -> Self {
        let secrets = std::sync::Arc::new(std::sync::Mutex::new(
            existing.iter().map(|s| s.to_string()).collect(),
        ));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (state, log) = (secrets.clone(), received.clone());
        let url = raw_upstream(move |n, mut stream| {
            let (state, log) = (state.clone(), log.clone());
            async move {
                let mut on_this_connection = 0;
                while let Some((head, body)) = read_request_and_body(&mut stream).await {
                    on_this_connection += 1;
                    let line = head.lines().next().unwrap_or_default();
                    let request = line.rsplit_once(' ').map_or(line, |(r, _)| r).to_owned();
                    log.lock().unwrap().push(request.clone());
                    let dropping = n == 0 && on_this_connection == 2;
                    if dropping && !acts {
                        return;
                    }
                    let answer = Self::answer(&state, &request, &body);
                    if dropping {
                        return; // acted on it, then closed without answering
                    }
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await;
        Self {
            url,
            secrets,
            received,
        }
    }

    fn answer(
        state: &std::sync::Mutex<std::collections::BTreeSet<String>>,
        request: &str,
        body: &[u8],
    ) -> Vec<u8> {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let name = body["request_data"]["secret_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut secrets = state.lock().unwrap();
        let envelope = |status: u16, success: bool, error_type: &str, data: serde_json::Value| {
            json!({
                "response_context": { "success": success, "status_code": status, "errors": [],
                                      "messages": [], "error_type": error_type, "rate_limit": null },
                "response_data": data,
            })
            .to_string()
        };
        let (status, text) = match request {
            "POST /github-secrets-repo/list" => {
                let listed: Vec<_> = secrets.iter().map(|n| meta(n)).collect();
                (
                    "200 OK",
                    envelope(200, true, "none", json!({ "secrets": listed })),
                )
            }
            "POST /github-secrets-repo/get" if secrets.contains(&name) => (
                "200 OK",
                envelope(200, true, "none", json!({ "secret": meta(&name) })),
            ),
            "POST /github-secrets-repo/create" => {
                secrets.insert(name);
                (
                    "201 Created",
                    envelope(201, true, "none", json!({ "created": true })),
                )
            }
            "DELETE /github-secrets-repo/delete" if secrets.remove(&name) => (
                "200 OK",
                envelope(200, true, "none", json!({ "deleted": true })),
            ),
            _ => (
                "404 Not Found",
                envelope(404, false, "not_found", json!({})),
            ),
        };
        http_response(status, &text)
    }

    fn received(&self, request: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == request)
            .count()
    }

    fn holds(&self, name: &str) -> bool {
        self.secrets.lock().unwrap().contains(name)
    }
}

const DELETE: &str = "DELETE /github-secrets-repo/delete";
const CREATE: &str = "POST /github-secrets-repo/create";

/// A harness whose first upstream connection has served one list and sits idle in the pool, so
/// that the next request goes out on it.
async fn with_one_idle_connection(upstream: &DroppingUpstream) -> Harness {
    let h = harness_for(&upstream.url).await;
    let listed = h.operation("list", &list_body(repo_target())).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    h
}

#[tokio::test]
async fn a_delete_the_upstream_acted_on_before_dropping_the_connection_is_sent_once_and_is_not_reported_missing()
 {
    let upstream = DroppingUpstream::start(&["OLD_TOKEN"], true).await;
    let h = with_one_idle_connection(&upstream).await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "OLD_TOKEN"))
        .await;

    assert_eq!(upstream.received(DELETE), 1, "the delete was sent again");
    assert!(!upstream.holds("OLD_TOKEN"));
    // Gone now; but "absent afterwards" cannot tell "deleted by this request" from "never there".
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_ambiguous");
    assert!(
        reply
            .error()
            .contains("after the delete of secret 'OLD_TOKEN' was sent")
            && reply.error().contains("not in octo-org/my-service now"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_dropped_delete_of_a_secret_that_never_existed_is_not_reported_as_deleted() {
    let upstream = DroppingUpstream::start(&[], true).await;
    let h = with_one_idle_connection(&upstream).await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "NEVER_THERE"))
        .await;

    assert_eq!(upstream.received(DELETE), 1);
    assert_ne!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"], json!({}));
    assert_eq!(reply.error_type(), "upstream_ambiguous");
}

#[tokio::test]
async fn a_delete_the_upstream_dropped_without_acting_is_sent_once_and_reported_as_not_done() {
    let upstream = DroppingUpstream::start(&["OLD_TOKEN"], false).await;
    let h = with_one_idle_connection(&upstream).await;

    let reply = h
        .operation("delete", &secret_body(repo_target(), "OLD_TOKEN"))
        .await;

    assert_eq!(upstream.received(DELETE), 1, "the delete was sent again");
    assert!(upstream.holds("OLD_TOKEN"));
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(
        reply
            .error()
            .contains("still finds it in octo-org/my-service")
            && reply.error().contains("has not taken effect"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_create_the_upstream_dropped_without_acting_is_sent_once_and_reported_as_not_written() {
    let upstream = DroppingUpstream::start(&[], false).await;
    let h = with_one_idle_connection(&upstream).await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(upstream.received(CREATE), 1, "the create was sent again");
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
    assert!(
        reply
            .error()
            .contains("does not find it in octo-org/my-service")
            && reply.error().contains("has not taken effect"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn a_create_dropped_after_it_went_out_over_an_existing_secret_is_ambiguous_and_sent_once() {
    for acts in [true, false] {
        let upstream = DroppingUpstream::start(&["API_KEY"], acts).await;
        let h = with_one_idle_connection(&upstream).await;

        let reply = h
            .operation("create", &create_body(repo_target(), "API_KEY"))
            .await;

        assert_eq!(upstream.received(CREATE), 1, "acts: {acts}: sent again");
        assert_eq!(reply.status, 502, "{}", reply.text);
        assert_eq!(reply.error_type(), "upstream_ambiguous");
        assert!(
            reply.error().contains("may or may not have taken effect"),
            "{}",
            reply.error()
        );
    }
}

#[tokio::test]
async fn a_create_the_upstream_acted_on_before_dropping_is_not_reported_as_written_or_failed_by_guess()
 {
    // A new secret: the create took effect, but no answer said so.
    let upstream = DroppingUpstream::start(&[], true).await;
    let h = with_one_idle_connection(&upstream).await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(upstream.received(CREATE), 1, "the create was sent again");
    assert!(upstream.holds("API_KEY"));
    assert_eq!(reply.error_type(), "upstream_ambiguous", "{}", reply.text);
}

#[tokio::test]
async fn in_a_workflow_a_dropped_delete_that_took_effect_completes_without_a_second_delete() {
    let upstream = DroppingUpstream::start(&["OLD_TOKEN"], true).await;
    let h = with_one_idle_connection(&upstream).await;
    let workflow = json!({
        "credentials": { "github_pat": sealed_pat() },
        "target": repo_target(),
        "operations": [ { "type": "github:secrets:delete", "secret_name": "OLD_TOKEN" } ],
    });

    let reply = h
        .post_raw("/execute", workflow.to_string().into_bytes())
        .await;

    // The step's aim, the secret gone, holds; that this step removed it cannot be said.
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(upstream.received(DELETE), 1);
    let step = &reply.json["results"][0];
    assert_eq!(step["data"]["deleted"], false);
    assert_eq!(step["attempts"], 1);
    assert!(
        step["messages"][0]
            .as_str()
            .is_some_and(|m| m.contains("cannot be told")),
        "{step}"
    );
}

/// An upstream whose first connection answers the head of its first request and a part of its
/// body, then closes; every later connection answers `answer` to everything. Counts the requests
/// it read whose request line is `request`.
async fn cut_mid_answer(
    request: &'static str,
    answer: fn() -> Vec<u8>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    let url = raw_upstream(move |n, mut stream| {
        let count = counted.clone();
        async move {
            while let Some(head) = read_request(&mut stream).await {
                if head.starts_with(request) {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let whole = answer();
                if n == 0 {
                    let _ = stream.write_all(&whole[..whole.len() - 10]).await;
                    return;
                }
                if stream.write_all(&whole).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (url, count)
}

#[tokio::test]
async fn a_read_whose_answer_is_cut_in_the_middle_is_sent_once_more() {
    let (url, lists) = cut_mid_answer("POST /github-secrets-repo/list", || {
        http_response("200 OK", &list_envelope())
    })
    .await;
    let h = harness_for(&url).await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(lists.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_create_whose_answer_is_cut_in_the_middle_is_not_sent_again() {
    let (url, creates) = cut_mid_answer("POST /github-secrets-repo/create", || {
        let created = json!({
            "response_context": { "success": true, "status_code": 201, "errors": [], "messages": [],
                                  "error_type": "none", "rate_limit": null },
            "response_data": { "created": true },
        });
        http_response("201 Created", &created.to_string())
    })
    .await;
    let h = harness_for(&url).await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(creates.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The check that follows reads a list (this upstream answers it with a create's envelope,
    // which is no list): whatever it concludes, the write is not claimed.
    assert_ne!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn a_write_the_upstream_does_not_answer_in_time_says_it_may_have_taken_effect() {
    let url = raw_upstream(|_, mut stream| async move {
        while read_request(&mut stream).await.is_some() {
            // Read, and never answered.
        }
    })
    .await;
    let h = Harness::with_env(move |vars| {
        vars.insert("URL__TARGET_SERVER__GITHUB_SERVICE".into(), url);
        vars.insert("DEPLOY__UPSTREAM_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 504, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_timeout");
    assert!(
        reply.error().contains("may or may not have taken effect"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn an_https_upstream_is_spoken_to_only_in_tls_and_one_that_answers_in_clear_is_unavailable() {
    // A plain TCP server where the configuration says https: it records what arrives and
    // answers in clear, as a misconfigured or intercepting host would.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let record = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            if let Ok(n) = stream.read(&mut buffer).await {
                record.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
            let _ = stream
                .write_all(&http_response("200 OK", &list_envelope()))
                .await;
        }
    });
    let h = harness_for(&format!("https://127.0.0.1:{port}")).await;

    let reply = h
        .operation("create", &create_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_unavailable");
    let received = received.lock().unwrap().clone();
    assert_eq!(
        received.first(),
        Some(&0x16),
        "a TLS handshake record first"
    );
    let text = String::from_utf8_lossy(&received);
    for blob in [sealed_pat(), sealed_value()] {
        assert!(!text.contains(&blob[..16]), "a blob went out in clear");
    }
    assert!(
        !text.contains("github-secrets"),
        "the request went out in clear"
    );
}

/// A list the upstream refuses as rate limited, with a reset time near 2^64.
fn rate_limited_until_the_end_of_time() -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({
        "response_context": { "success": false, "status_code": 429, "messages": [],
            "errors": ["GitHub API error: 403 rate limit exceeded"], "error_type": "rate_limited",
            "rate_limit": { "limit": 5000, "remaining": 0, "reset": 18_446_744_073_709_551_000u64,
                            "used": 5000 } },
        "response_data": { "secrets": [] } }))
}

#[tokio::test]
async fn an_absurd_rate_limit_reset_gives_a_retry_after_of_at_most_an_hour() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        rate_limited_until_the_end_of_time(),
    )
    .await;

    let reply = h.operation("list", &list_body(repo_target())).await;

    assert_eq!(reply.status, 429, "{}", reply.text);
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry_after, 3600);
}

#[tokio::test]
async fn an_absurd_rate_limit_reset_in_a_workflow_is_reported_not_a_dropped_connection() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/list",
        rate_limited_until_the_end_of_time(),
    )
    .await;
    let body = json!({ "credentials": { "github_pat": sealed_pat() }, "target": repo_target(),
                       "operations": [{ "type": "github:secrets:list" }] });

    let reply = h.post_raw("/execute", body.to_string().into_bytes()).await;

    assert_eq!(reply.status, 207, "{}", reply.text);
    let step = &reply.json["results"][0];
    assert_eq!(step["error_type"], "rate_limited");
    assert_eq!(step["attempts"], 1, "an hour's wait is past the deadline");
}

#[tokio::test]
async fn metadata_the_upstream_sends_is_validated_and_what_is_wrong_is_dropped_never_echoed() {
    let h = Harness::start().await;
    let blob = sealed_blob(9, 80);
    h.upstream_answers(
        "POST",
        "/github-secrets-org/list",
        upstream_ok(
            200,
            json!({ "secrets": [
                { "name": "GOOD", "created_at": "2024-01-15T10:30:00Z",
                  "updated_at": "2024-01-15T10:30:00.123+02:00", "visibility": "all",
                  "selected_repositories_url": blob },
                { "name": blob, "created_at": "2024-01-15T10:30:00Z",
                  "updated_at": "2024-01-15T10:30:00Z", "visibility": "private" },
                { "name": "ODD_DATES", "created_at": blob, "updated_at": "yesterday",
                  "visibility": blob },
                { "name": 42 },
                "not an object",
            ] }),
            &[],
        ),
    )
    .await;

    let reply = h.operation("list", &list_body(org_target())).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["data"]["secrets"],
        json!([
            { "name": "GOOD", "created_at": "2024-01-15T10:30:00Z",
              "updated_at": "2024-01-15T10:30:00.123+02:00", "visibility": "all" },
            { "name": "ODD_DATES", "created_at": null, "updated_at": null },
        ])
    );
    assert!(!reply.text.contains(&blob[..12]), "{}", reply.text);
    let messages = reply.messages().join(" | ");
    assert!(messages.contains("3 entries"), "{messages}");
    assert!(messages.contains("ODD_DATES"), "{messages}");
}

#[tokio::test]
async fn a_get_whose_metadata_names_another_secret_is_upstream_error() {
    let h = Harness::start().await;
    h.upstream_answers(
        "POST",
        "/github-secrets-repo/get",
        upstream_ok(200, json!({ "secret": meta("OTHER") }), &[]),
    )
    .await;

    let reply = h
        .operation("get", &secret_body(repo_target(), "API_KEY"))
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(reply.error_type(), "upstream_error");
}
