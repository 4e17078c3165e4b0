//! The local listener against slow and idle clients: a request's headers must arrive within the
//! header-read timeout (also how long a kept-alive connection may idle), its body must not pause
//! for longer, and the number of open connections is capped, so half-open connections can neither
//! pile up nor lock health out.

use std::time::Duration;

use crate::helpers::*;
use mgraph_deploy::config::ListenerLimits;
use mgraph_deploy::runtime::serve_until;
use mgraph_deploy::{AppState, build_router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the router on a free loopback port with these limits; returns its address.
async fn serve(limits: ListenerLimits) -> std::net::SocketAddr {
    serve_with(limits, &[]).await
}

/// Serves the router, configured also by `vars`, on a free loopback port with these limits.
async fn serve_with(limits: ListenerLimits, vars: &[(&str, &str)]) -> std::net::SocketAddr {
    let upstream = wiremock::MockServer::start().await;
    let mut env = test_env(&upstream.uri());
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let state = AppState::new(&config_from(&env), None);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = upstream;
        serve_until(
            listener,
            build_router(state),
            std::future::pending(),
            limits,
        )
        .await
    });
    addr
}

/// A connection that sends half a request head and then nothing.
async fn half_open(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /info/health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Waits (bounded) until the server closes `stream`.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn health(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /info/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_and_health_stays_reachable() {
    let addr = serve(ListenerLimits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 2,
    })
    .await;
    let mut slow = vec![half_open(addr).await, half_open(addr).await];

    let answer = tokio::time::timeout(Duration::from_secs(10), health(addr))
        .await
        .expect("health answered while slow clients held every connection slot");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for stream in &mut slow {
        assert!(closed_by_server(stream).await, "a slow client was kept");
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let addr = serve(ListenerLimits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 8,
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /info/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    assert!(
        closed_by_server(&mut stream).await,
        "the idle connection was kept"
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_answered_400_naming_the_setting() {
    let addr = serve_with(
        ListenerLimits::default(),
        &[("DEPLOY__HEADER_READ_TIMEOUT_SECONDS", "1")],
    )
    .await;
    for (path, status) in [
        ("/operations/github/secrets/list", "400"),
        ("/execute", "422"),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\n{API_KEY_NAME}: {API_KEY_VALUE}\r\ncontent-length: 100\r\n\r\n{{\"encrypted_pat\""
        );
        stream.write_all(head.as_bytes()).await.unwrap();

        // The rest of the body never comes.
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
            .await
            .expect("the service waited for the body without bound")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {answer}"
        );
        assert!(
            answer.contains(
                "stopped arriving for more than 1 s (DEPLOY__HEADER_READ_TIMEOUT_SECONDS)"
            ),
            "{path}: {answer}"
        );
    }
}
