//! The route table and every tower layer, in one place.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderName;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::require_api_key;
use crate::github_service::{count_calls, upstream_calls};
use crate::operations::OperationKind;
use crate::routes::{self, ResponseErrorType, execute, info, public_keys, secrets};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the service's router. Serving it (locally or in Lambda) is `runtime`'s job.
pub fn build_router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/info/health", get(info::health))
        .route("/info/version", get(info::version))
        .route("/info/status", get(info::status))
        .route("/public-keys/github", get(public_keys::github))
        .route("/execute", post(execute::execute))
        .route("/execute/plan", post(execute::plan));
    for kind in OperationKind::ALL {
        let path = format!("/operations/github/secrets/{}", kind.verb());
        router = router.route(
            &path,
            post(move |State(state): State<AppState>, body| secrets::handle(kind, state, body)),
        );
    }

    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("<unmatched>", MatchedPath::as_str);
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), route, request_id)
        })
        .on_request(())
        .on_response(|response: &Response, latency: Duration, _span: &Span| {
            let error_type = response
                .extensions()
                .get::<ResponseErrorType>()
                .map(|e| e.0.as_str());
            tracing::info!(
                status = response.status().as_u16(),
                duration_ms = latency.as_secs_f64() * 1000.0,
                upstream_calls = upstream_calls().unwrap_or(0),
                error_type,
                "request completed"
            );
        })
        .on_failure(());

    let layers = ServiceBuilder::new()
        .layer(middleware::from_fn(request_context))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));

    router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// Outermost: counts upstream calls for the log line, and drops a client `x-request-id` that is
/// not a plain identifier (it would be logged and echoed, so it must not be able to carry a blob).
async fn request_context(mut request: Request, next: Next) -> Response {
    let acceptable = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        (1..=128).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !acceptable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    count_calls(next.run(request)).await
}
