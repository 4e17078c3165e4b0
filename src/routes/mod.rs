//! Thin handlers: parse, call one core function, map the result to a response.

pub mod execute;
pub mod info;
pub mod public_keys;
pub mod secrets;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, Uri};
use serde_json::json;

use crate::operations::ErrorType;

/// When the response must be on its way: set by the serving runtime when it has a hard limit
/// (a Lambda invocation's deadline, less a margin). `/execute` reports by then.
#[derive(Debug, Clone, Copy)]
pub struct RespondBy(pub tokio::time::Instant);

/// Marks a response with its failure class, so the request log line can report it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseErrorType(pub ErrorType);

/// `{"success": false, "error": ..., "error_type": ...}` with the type's status: the body of every
/// failure outside the operation envelope.
pub fn error_response(error_type: ErrorType, message: &str) -> Response {
    error_response_with_status(error_type.http_status(), error_type, message)
}

pub fn error_response_with_status(status: u16, error_type: ErrorType, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "success": false, "error": message, "error_type": error_type });
    let mut response = (status, Json(body)).into_response();
    response
        .extensions_mut()
        .insert(ResponseErrorType(error_type));
    response
}

/// Unknown path.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("No route for {method} {}", uri.path());
    let status = StatusCode::NOT_FOUND;
    (
        status,
        Json(json!({ "success": false, "error": message, "error_type": "not_found" })),
    )
        .into_response()
}

/// Known path, wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    let status = StatusCode::METHOD_NOT_ALLOWED;
    (
        status,
        Json(json!({ "success": false, "error": message, "error_type": "method_not_allowed" })),
    )
        .into_response()
}
