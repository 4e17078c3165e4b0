//! Serving the router: a local tokio listener, or the AWS Lambda runtime. Only this module knows
//! about Lambda.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::response::{IntoResponse as _, Response};
use http::HeaderValue;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};
use tower::{ServiceExt, service_fn};

use crate::config::{ListenerLimits, RuntimeMode};
use crate::operations::ErrorType;
use crate::router::REQUEST_ID;
use crate::routes::{ApiError, RespondBy};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The tokio runtime a mode runs on: a thread per core locally; one thread in AWS Lambda, which
/// sends an instance one request at a time.
pub fn tokio_runtime(mode: RuntimeMode) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match mode {
        RuntimeMode::Local => tokio::runtime::Builder::new_multi_thread(),
        RuntimeMode::Lambda => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()
}

/// Serves `router` on `listen` until SIGTERM or Ctrl-C; then drains in-flight requests. Prints
/// the bound address on stdout (useful with port 0).
pub async fn serve_local(
    router: Router,
    listen: SocketAddr,
    limits: ListenerLimits,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen} (DEPLOY__LISTEN): {e}"))?;
    let addr = listener.local_addr()?;
    let stopped = stop_signal()?;
    let shutdown = async {
        stopped.await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
    };
    println!("mgraph-deploy listening on http://{addr}");
    tracing::info!(%addr, "listening");
    serve_until(listener, router, shutdown, limits).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `router` on an already bound `listener` until `shutdown` completes, then drains
/// in-flight requests. A client must send each request's headers within the header-read timeout
/// (which is also how long a kept-alive connection may idle); past `max_connections` open
/// connections, new ones wait to be accepted. (The offline local stack runs the service
/// in-process with this.)
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ListenerLimits,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // An answer goes out in one write; nothing is gained by holding it back (Nagle).
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves `router` through the Lambda Runtime API (API Gateway v1/v2 and Function URL events).
/// `timeout` is the function's own, the budget of an invocation whose deadline cannot be believed.
pub async fn serve_lambda(router: Router, timeout: Duration) -> Result<(), BoxError> {
    tracing::info!("serving through the AWS Lambda runtime");
    lambda_http::run(service_fn(move |request| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(invoke(router, request, timeout).await) }
    }))
    .await
}

/// `/execute` hands in its report this long before the invocation's deadline.
const REPORT_MARGIN: Duration = Duration::from_secs(1);
/// Any request still running this long before the deadline is answered 504 `deadline`, so that
/// the caller gets an answer rather than Lambda's bare timeout error.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);
// A workflow's history is written in the time between the two margins.
const _: () = assert!(
    REPORT_MARGIN.as_millis() > ANSWER_MARGIN.as_millis() + RespondBy::RECORD_GRACE.as_millis()
);

/// One invocation: the route path without the API Gateway stage, and an answer before the
/// invocation's deadline.
async fn invoke(router: Router, mut request: lambda_http::Request, timeout: Duration) -> Response {
    strip_stage(&mut request);
    let request_id = default_request_id(&mut request);
    let deadline = request
        .lambda_context_ref()
        .map(|c| believable_deadline(c.deadline(), timeout));
    let Some(deadline) = deadline else {
        return router.oneshot(request).await.unwrap_or_else(|e| match e {});
    };
    let respond_by = deadline.checked_sub(REPORT_MARGIN).unwrap_or(deadline);
    request.extensions_mut().insert(RespondBy(respond_by));
    let answer_by = deadline.checked_sub(ANSWER_MARGIN).unwrap_or(deadline);
    match timeout_at(answer_by, router.oneshot(request)).await {
        Ok(response) => response.unwrap_or_else(|e| match e {}),
        Err(_) => {
            tracing::error!(
                "answered 504: the request was still running at the Lambda invocation's deadline"
            );
            let mut response = ApiError::new(
                ErrorType::Deadline,
                "The request did not finish within this function's time limit; an operation it started may or may not have taken effect",
            )
            .into_response();
            if let Some(id) = request_id {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            response
        }
    }
}

/// Lambda's longest function timeout, plus clock skew: no real deadline is further away.
const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60 + 60);

/// The invocation's deadline on the monotonic clock. A deadline already past when the invocation
/// arrives, or further than any Lambda timeout (`cargo lambda watch` sends a duration where Lambda
/// sends an epoch time), is not believed: the function's `timeout` from now is used instead, with
/// one warning per process.
fn believable_deadline(deadline: SystemTime, timeout: Duration) -> Instant {
    static WARNED: AtomicBool = AtomicBool::new(false);
    match deadline.duration_since(SystemTime::now()) {
        Ok(left) if !left.is_zero() && left <= LONGEST_INVOCATION => Instant::now() + left,
        _ => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    timeout_seconds = timeout.as_secs(),
                    "the runtime's lambda-runtime-deadline-ms cannot be a Lambda invocation deadline (already past, or more than 16 minutes away); using DEPLOY__LAMBDA_TIMEOUT_SECONDS from each invocation's start instead"
                );
            }
            Instant::now() + timeout
        }
    }
}

/// Without a request id of the caller's, the invocation's own id is the request's: it is the one
/// in Lambda's log lines, and a response made outside the router can carry it. Returns it when
/// it was set here.
fn default_request_id(request: &mut lambda_http::Request) -> Option<HeaderValue> {
    if request.headers().contains_key(REQUEST_ID) {
        return None;
    }
    let id = request.lambda_context_ref()?.request_id.as_str();
    let id = HeaderValue::from_str(id).ok()?;
    request.headers_mut().insert(REQUEST_ID, id.clone());
    Some(id)
}

/// Rewrites the URI to the route path, when the stage is in front of it.
fn strip_stage(request: &mut lambda_http::Request) {
    let Some(path) = route_path(request) else {
        return;
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = format!("{path}{query}").parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
}

/// The path the router should see when it differs from the URI's: API Gateway REST APIs and
/// HTTP APIs on a named stage (lambda_http puts `/{stage}` in front of every path, also behind a
/// custom domain whose mapping removed it) carry the stage as the first segment.
fn route_path(request: &lambda_http::Request) -> Option<String> {
    let stage = match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.stage.as_deref(),
        RequestContext::ApiGatewayV2(context) => context.stage.as_deref(),
        _ => None,
    }?;
    without_stage(request.uri().path(), stage)
}

fn without_stage(path: &str, stage: &str) -> Option<String> {
    if stage.is_empty() || stage == "$default" {
        return None;
    }
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    if rest.is_empty() {
        Some("/".to_owned())
    } else if rest.starts_with('/') {
        Some(rest.to_owned())
    } else {
        None
    }
}

/// Resolves on Ctrl-C (`"interrupted"`) or SIGTERM (`"SIGTERM"`), naming it. The handlers are
/// installed by this call, not when the future is first polled: a signal that comes as soon as a
/// binary has said it is up must stop it gracefully, not kill it. Call inside a runtime.
pub fn stop_signal() -> std::io::Result<impl Future<Output = &'static str> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => "interrupted",
                _ = terminate.recv() => "SIGTERM",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::without_stage;

    #[test]
    fn a_stage_prefix_is_removed_only_as_a_whole_first_segment() {
        assert_eq!(
            without_stage("/dev/info/health", "dev").as_deref(),
            Some("/info/health")
        );
        assert_eq!(without_stage("/dev", "dev").as_deref(), Some("/"));
        assert_eq!(without_stage("/devices/x", "dev"), None);
        assert_eq!(without_stage("/info/health", "dev"), None);
        assert_eq!(without_stage("/info/health", "$default"), None);
        assert_eq!(without_stage("/info/health", ""), None);
    }
}
