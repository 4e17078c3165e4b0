//! The route table and every tower layer, in one place.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use http::{HeaderName, Method};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use utoipa_swagger_ui::SwaggerUi;

use crate::auth::require_api_key;
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
        routes = add(routes, Method::POST, &kind.path(), handler);
    }
    // `/docs` (Swagger UI, vendored: no download at build or run time; its files are under
    // `/docs/`) and `/openapi.json`.
    let docs = SwaggerUi::new("/docs").url("/openapi.json", openapi::document(key_name));
    table.push((Method::GET, "/openapi.json".to_owned()));
    table.push((Method::GET, "/docs".to_owned()));
    (routes.merge(docs), table)
}

/// `routes` behind every layer of the service (request id, request context, log line, panic
/// catching, API key, body limit) and its fallbacks for unknown routes and methods.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("<unmatched>", MatchedPath::as_str);
            tracing::info_span!(
                "request",
                method = %request.method(),
                route,
                request_id = request_context::request_id()
            )
        })
        .on_request(())
        .on_response(log_response)
        .on_failure(());

    let layers = ServiceBuilder::new()
        .layer(middleware::from_fn(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn(request_context))
        .layer(trace)
        .layer(CatchPanicLayer::custom(internal_error))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));

    routes
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The request's log line: status, time, upstream calls and the failure class.
fn log_response<B>(response: &http::Response<B>, latency: Duration, _span: &Span) {
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

/// Outermost: drops a client `x-request-id` that is not a plain identifier (it would be logged
/// and echoed, so it must not be able to carry a blob); the next layer then makes one.
async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let acceptable = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        (1..=128).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !acceptable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// Serves the request inside its [`request_context`]: its id (set by now), caller and upstream
/// call count, for the log line, the audit events and the panic handler.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    request_context::scope(request_id, next.run(request)).await
}

/// A panic is a bug: 500 `internal_error` whose message carries the request id and nothing of
/// the panic (whose payload could hold input). The log line says where to look, not what.
fn internal_error(_payload: Box<dyn Any + Send + 'static>) -> Response {
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
