//! The route table and every tower layer, in one place.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderName;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::require_api_key;
use crate::operations::{ErrorType, OperationKind};
use crate::request_context;
use crate::routes::{self, ResponseErrorType, error_response, execute, info, public_keys, secrets};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the service's router. Serving it (locally or in Lambda) is `runtime`'s job.
pub fn build_router(state: AppState) -> Router {
    let mut routes = Router::new()
        .route("/info/health", get(info::health))
        .route("/info/version", get(info::version))
        .route("/info/status", get(info::status))
        .route("/public-keys/github", get(public_keys::github))
        .route("/execute", post(execute::execute))
        .route("/execute/plan", post(execute::plan));
    for kind in OperationKind::ALL {
        let path = format!("/operations/github/secrets/{}", kind.verb());
        routes = routes.route(
            &path,
            post(move |State(state): State<AppState>, body| secrets::handle(kind, state, body)),
        );
    }
    with_layers(routes, state)
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
    error_response(
        ErrorType::InternalError,
        &format!("Internal error in this service; quote request id {request_id} when reporting it"),
    )
}
