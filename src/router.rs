//! The route table and every tower layer, in one place.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{HeaderName, Method};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};
use tracing::Span;

use utoipa_swagger_ui::SwaggerUi;

use crate::auth;
use crate::config::{AuthPolicy, DEFAULT_API_KEY_NAME};
use crate::openapi;
use crate::operations::{ErrorType, OperationKind};
use crate::request_context;
use crate::routes::{
    self, ApiError, RespondBy, ResponseErrorType, execute, history, info, public_keys, secrets,
    token,
};
use crate::state::AppState;
use mgraph_deploy_api::{HistoryOperation, TokenOperation};

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    routes = add(
        routes,
        Method::POST,
        HistoryOperation::List.path(),
        post(history::list),
    );
    routes = add(
        routes,
        Method::POST,
        HistoryOperation::Get.path(),
        post(history::get),
    );
    routes = add(
        routes,
        Method::POST,
        HistoryOperation::Secrets.path(),
        post(history::secrets),
    );
    for kind in OperationKind::ALL {
        let handler = post(
            move |State(state): State<AppState>, respond_by: Option<Extension<RespondBy>>, body| {
                secrets::handle(kind, state, respond_by.map(|Extension(by)| by), body)
            },
        );
        routes = add(routes, Method::POST, kind.path(), handler);
    }
    routes = add(
        routes,
        Method::POST,
        TokenOperation::Check.path(),
        post(token::check),
    );
    // `/docs` (Swagger UI, vendored: no download at build or run time; its files are under
    // `/docs/`) and `/openapi.json`.
    let docs = SwaggerUi::new("/docs").url("/openapi.json", openapi::document(key_name));
    table.push((Method::GET, "/openapi.json".to_owned()));
    table.push((Method::GET, "/docs".to_owned()));
    (routes.merge(docs), table)
}

/// `routes` behind every layer of the service and its fallbacks for unknown routes and methods.
/// From the outside in: a client's unusable request id dropped, the request id set and echoed,
/// the request context, the request span and its log line, panics caught, the API key checked,
/// the body's arrival bounded in time and in size.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(log_response)
        .on_failure(());

    let layers = ServiceBuilder::new()
        .map_request(drop_unusable_request_id)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn(request_context))
        .layer(trace)
        .layer(CatchPanicLayer::custom(internal_error))
        .layer(ValidateRequestHeaderLayer::custom(ApiKey(
            state.auth.clone(),
        )))
        .layer(RequestBodyTimeoutLayer::new(state.body_timeout))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));

    routes
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The span every line logged while serving a request is in: method, route and request id.
fn request_span(request: &Request) -> Span {
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

/// A client's `x-request-id` is logged and echoed, so it must not be able to carry a blob: one
/// that is not 1 to 128 letters, digits, `-`, `_` or `.` is dropped, and the next layer makes one.
fn drop_unusable_request_id(mut request: Request) -> Request {
    let acceptable = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        (1..=128).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !acceptable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// A layer of our own, for a rule of `api.md` §4 that no tower-http layer can say: every audit
/// event carries the request id, the *name* of the API key the caller presented and the upstream
/// calls the request made, and the request's log line that count. The request runs inside its
/// [`request_context`], where the core records and reads them.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    request_context::scope(request_id, next.run(request)).await
}

/// This service's API key, checked by tower-http's `ValidateRequestHeaderLayer` with the rule of
/// [`auth::check`].
#[derive(Clone)]
struct ApiKey(Arc<AuthPolicy>);

impl ValidateRequest<Body> for ApiKey {
    type ResponseBody = Body;

    fn validate(&mut self, request: &mut Request) -> Result<(), Response> {
        auth::check(&self.0, request)
    }
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
