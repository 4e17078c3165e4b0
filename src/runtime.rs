//! Serving the router: a local tokio listener, or the AWS Lambda runtime. Only this module knows
//! about Lambda.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderName, HeaderValue};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};
use tower::{ServiceExt, service_fn};

use crate::config::ListenerLimits;
use crate::operations::ErrorType;
use crate::router::build_router;
use crate::routes::{ApiError, RespondBy};
use crate::state::AppState;
use crate::telemetry;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `state` on `listen` until SIGTERM or Ctrl-C, then drains in-flight requests, blocking
/// the calling thread. Prints the bound address on stdout (useful with port 0).
///
/// Connections are served by `workers` threads, each running a single-threaded runtime with its
/// own router and upstream connection pool, so that a request, from its first byte to its upstream
/// call and its answer, never leaves the thread that read it: no cross-thread wakeups per request
/// (issue 14's profile showed them as the largest cost after the kernel's own socket work). The
/// calling thread accepts and hands each connection to the worker with the fewest open ones.
pub fn serve_local(
    state: &AppState,
    listen: SocketAddr,
    limits: ListenerLimits,
    workers: usize,
) -> Result<(), BoxError> {
    let acceptor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = acceptor
        .block_on(TcpListener::bind(listen))
        .map_err(|e| format!("cannot listen on {listen} (DEPLOY__LISTEN): {e}"))?;
    let addr = listener.local_addr()?;
    let stopped = {
        let _runtime = acceptor.enter();
        stop_signal()?
    };
    let shutdown = async {
        stopped.await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
    };
    let pool = (0..workers.max(1))
        .map(|index| Worker::start(index, build_router(state.for_worker()), limits))
        .collect::<std::io::Result<Vec<_>>>()?;
    println!("mgraph-deploy listening on http://{addr}");
    tracing::info!(%addr, workers = pool.len(), "listening");
    acceptor.block_on(accept_until(
        listener,
        shutdown,
        limits.max_connections,
        |stream, slot| hand_to_least_busy(&pool, stream, slot),
    ));
    let mut panicked = 0;
    for worker in pool {
        drop(worker.connections);
        if worker.thread.join().is_err() {
            panicked += 1;
        }
    }
    if panicked > 0 {
        return Err(format!("{panicked} worker thread(s) panicked").into());
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves `router` on an already bound `listener`, in the caller's runtime, until `shutdown`
/// completes, then drains in-flight requests. (The offline local stack runs the service
/// in-process with this.)
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ListenerLimits,
) -> std::io::Result<()> {
    let connections = Connections::new(limits);
    accept_until(
        listener,
        shutdown,
        limits.max_connections,
        |stream, slot| {
            connections.serve(stream, router.clone(), slot);
        },
    )
    .await;
    connections.drain().await;
    Ok(())
}

/// Accepts connections until `shutdown` completes, handing each to `hand` with its slot: past
/// `max_connections` open connections (slots held), new ones wait to be accepted.
async fn accept_until(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    max_connections: usize,
    mut hand: impl FnMut(TcpStream, OwnedSemaphorePermit),
) {
    let slots = Arc::new(Semaphore::new(max_connections));
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
        hand(stream, slot);
    }
}

/// The HTTP/1 connections of one runtime: a client must send each request's headers within the
/// header-read timeout (which is also how long a kept-alive connection may idle), and draining
/// lets the requests in flight finish.
struct Connections {
    http: hyper::server::conn::http1::Builder,
    graceful: GracefulShutdown,
}

impl Connections {
    fn new(limits: ListenerLimits) -> Self {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        Self {
            http,
            graceful: GracefulShutdown::new(),
        }
    }

    /// Serves `stream` on a task of the current runtime; `slot` is held until it closes.
    fn serve(&self, stream: TcpStream, router: Router, slot: impl Send + 'static) {
        // An answer goes out in one write; nothing is gained by holding it back (Nagle).
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router);
        let connection = self
            .graceful
            .watch(self.http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }

    async fn drain(self) {
        self.graceful.shutdown().await;
    }
}

/// A connection handed to a worker, with what it holds while open.
struct Handed {
    stream: std::net::TcpStream,
    held: Held,
}

/// A connection's slot under `DEPLOY__MAX_CONNECTIONS`, and its place in its worker's count.
struct Held {
    _slot: OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One thread with its own single-threaded runtime, serving the connections handed to it.
struct Worker {
    connections: mpsc::UnboundedSender<Handed>,
    open: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Starts `worker-{index}` and returns once it runs. It serves until its sender is dropped,
    /// then drains.
    fn start(index: usize, router: Router, limits: ListenerLimits) -> std::io::Result<Self> {
        // The lines its requests log are written together each time it waits for I/O.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(telemetry::flush_this_thread)
            .build()?;
        let (connections, mut handed) = mpsc::unbounded_channel::<Handed>();
        let (running, started) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let _batching = telemetry::batch_this_thread();
                runtime.block_on(async move {
                    let _ = running.send(());
                    let served = Connections::new(limits);
                    while let Some(Handed { stream, held }) = handed.recv().await {
                        match TcpStream::from_std(stream) {
                            Ok(stream) => served.serve(stream, router.clone(), held),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not take over a connection");
                            }
                        }
                    }
                    served.drain().await;
                });
            })?;
        started
            .recv()
            .map_err(|_| std::io::Error::other(format!("worker-{index} did not start")))?;
        Ok(Self {
            connections,
            open: Arc::new(AtomicUsize::new(0)),
            thread,
        })
    }
}

/// Hands `stream` to the worker with the fewest open connections.
fn hand_to_least_busy(pool: &[Worker], stream: TcpStream, slot: OwnedSemaphorePermit) {
    let Some(worker) = pool.iter().min_by_key(|w| w.open.load(Ordering::Relaxed)) else {
        return;
    };
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "could not hand a connection to a worker");
            return;
        }
    };
    worker.open.fetch_add(1, Ordering::Relaxed);
    let held = Held {
        _slot: slot,
        open: worker.open.clone(),
    };
    // A worker stops receiving only after this thread stopped handing out connections.
    let _ = worker.connections.send(Handed { stream, held });
}

/// Serves `router` through the Lambda Runtime API on a single-threaded runtime, blocking the
/// calling thread: Lambda sends an instance one request at a time.
pub fn run_lambda(router: Router, timeout: Duration) -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve_lambda(router, timeout))
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

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `/execute` hands in its report this long before the invocation's deadline.
const REPORT_MARGIN: Duration = Duration::from_secs(1);
/// Any request still running this long before the deadline is answered 504 `deadline`, so that
/// the caller gets an answer rather than Lambda's bare timeout error.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

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
