//! The route table and every tower layer, in one place.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use futures_util::FutureExt as _;
use http::{HeaderName, HeaderValue, Method};
use tower::{Layer, Service, ServiceBuilder};

use utoipa_swagger_ui::SwaggerUi;

use crate::auth;
use crate::config::{AuthPolicy, DEFAULT_API_KEY_NAME};
use crate::openapi;
use crate::operations::{ErrorType, OperationKind};
use crate::request_context;
use crate::routes::{self, ApiError, ResponseErrorType, execute, info, public_keys, secrets};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the service's router. Serving it (locally or in Lambda) is `runtime`'s job.
pub fn build_router(state: AppState) -> Router {
    let key_name = match state.auth.as_ref() {
        AuthPolicy::Required(key) => key.name.as_str(),
        AuthPolicy::Open | AuthPolicy::Locked => DEFAULT_API_KEY_NAME,
    };
    let (routes, _) = routes(key_name);
    with_layers(routes, state)
}

/// Every `(method, path)` the router serves, from the same code that builds it.
pub fn route_table() -> Vec<(Method, String)> {
    routes(DEFAULT_API_KEY_NAME).1
}

fn routes(key_name: &str) -> (Router<AppState>, Vec<(Method, String)>) {
    let mut table = Vec::new();
    let mut add = |router: Router<AppState>, method: Method, path: &str, handler| {
        table.push((method, path.to_owned()));
        router.route(path, handler)
    };
    let mut routes = Router::new();
    routes = add(routes, Method::GET, "/info/health", get(info::health));
    routes = add(routes, Method::GET, "/info/version", get(info::version));
    routes = add(routes, Method::GET, "/info/status", get(info::status));
    routes = add(
        routes,
        Method::GET,
        "/public-keys/github",
        get(public_keys::github),
    );
    routes = add(routes, Method::POST, "/execute", post(execute::execute));
    routes = add(routes, Method::POST, "/execute/plan", post(execute::plan));
    for kind in OperationKind::ALL {
        let handler =
            post(move |State(state): State<AppState>, body| secrets::handle(kind, state, body));
        routes = add(routes, Method::POST, kind.path(), handler);
    }
    // `/docs` (Swagger UI, vendored: no download at build or run time; its files are under
    // `/docs/`) and `/openapi.json`.
    let docs = SwaggerUi::new("/docs").url("/openapi.json", openapi::document(key_name));
    table.push((Method::GET, "/openapi.json".to_owned()));
    table.push((Method::GET, "/docs".to_owned()));
    (routes.merge(docs), table)
}

/// `routes` behind every layer of the service (request id, request context, API key, log line,
/// panic catching, body limit) and its fallbacks for unknown routes and methods.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        .layer(PerRequest {
            auth: state.auth.clone(),
        })
        .layer(DefaultBodyLimit::max(state.max_body_bytes));

    routes
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// Outermost, around every route: what every request gets. Its id (the client's `x-request-id`
/// when it is a plain identifier, which can then be logged and echoed without carrying a blob;
/// else a new one), the request context that log lines and audit events read, the API key
/// check, a panic turned into a 500, the request's log line, and `x-request-id` on the answer.
///
/// One layer rather than one per concern: each layer of its own (`from_fn` in particular,
/// which boxes the rest of the stack) cost measurable time per request (issue 14).
#[derive(Clone)]
struct PerRequest {
    auth: Arc<AuthPolicy>,
}

impl<S> Layer<S> for PerRequest {
    type Service = PerRequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerRequestService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
struct PerRequestService<S> {
    inner: S,
    auth: Arc<AuthPolicy>,
}

impl<S> Service<Request> for PerRequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let (id, id_text) = request_id(&mut request);
        let route: Arc<str> = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| Arc::from("<unmatched>"), |p| Arc::from(p.as_str()));
        let method = request.method().clone();
        // The service that was polled ready is the one to call (tower's contract).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        Box::pin(request_context::scope(method, route, id_text, async move {
            let mut response = match auth::check(&auth, &request) {
                Ok(()) => {
                    // The route's own code runs when its future is polled; `call` only makes it.
                    let served = AssertUnwindSafe(inner.call(request)).catch_unwind().await;
                    served.unwrap_or_else(|_| Ok(internal_error()))?
                }
                Err(refused) => refused,
            };
            response.headers_mut().insert(REQUEST_ID, id);
            log_response(&response, started.elapsed());
            Ok(response)
        }))
    }
}

/// The request's id, set on the request: the client's `x-request-id` when it is a plain
/// identifier, else a new UUID.
fn request_id(request: &mut Request) -> (HeaderValue, String) {
    if let Some(given) = request.headers().get(&REQUEST_ID) {
        if is_plain_id(given.as_bytes()) {
            let text = String::from_utf8_lossy(given.as_bytes()).into_owned();
            return (given.clone(), text);
        }
    }
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    let id = HeaderValue::from_str(text).expect("a UUID is a valid header value");
    request.headers_mut().insert(REQUEST_ID, id.clone());
    (id, text.to_owned())
}

/// 1 to 128 letters, digits, `-`, `_` or `.`.
fn is_plain_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The request's log line: status, time, upstream calls and the failure class.
fn log_response(response: &Response, latency: Duration) {
    let error_type = response
        .extensions()
        .get::<ResponseErrorType>()
        .map(|e| e.0.as_str());
    tracing::info!(
        status = response.status().as_u16(),
        duration_ms = latency.as_secs_f64() * 1000.0,
        upstream_calls = request_context::upstream_calls().unwrap_or(0),
        error_type,
        "request completed"
    );
}

/// A panic is a bug: 500 `internal_error` whose message carries the request id and nothing of
/// the panic (whose payload could hold input). The log line says where to look, not what.
fn internal_error() -> Response {
    let request_id = request_context::request_id();
    tracing::error!(
        request_id,
        "a request panicked; answered 500 internal_error (the panic's message is not logged)"
    );
    ApiError::new(
        ErrorType::InternalError,
        format!("Internal error in this service; quote request id {request_id} when reporting it"),
    )
    .into_response()
}
