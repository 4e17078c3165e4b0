//! Thin handlers: parse, call one core function, map the result to a response.

pub mod execute;
pub mod info;
pub mod public_keys;
pub mod secrets;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{Method, Uri};
use mgraph_deploy_api::ErrorBody;

use crate::operations::{ErrorType, Failure, OperationKind, failure_envelope};

/// When the response must be on its way: set by the serving runtime when it has a hard limit
/// (a Lambda invocation's deadline, less a margin). `/execute` reports by then.
#[derive(Debug, Clone, Copy)]
pub struct RespondBy(pub tokio::time::Instant);

/// Marks a response with its failure class, so the request log line can report it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseErrorType(pub ErrorType);

/// The body of every failure: the §1 envelope under `/operations/`, else
/// `{"success": false, "error": ..., "error_type": ...}`; the type's status.
pub fn failure_response(path: &str, error_type: ErrorType, message: &str) -> Response {
    let status = error_type.status();
    let mut response = if path.starts_with("/operations/") {
        let failure = Failure::new(error_type, message);
        let envelope = failure_envelope(OperationKind::from_path(path), &failure);
        (status, Json(envelope)).into_response()
    } else {
        let body = ErrorBody {
            success: false,
            error: message.to_owned(),
            error_type,
        };
        (status, Json(body)).into_response()
    };
    response
        .extensions_mut()
        .insert(ResponseErrorType(error_type));
    response
}

/// A failure outside `/operations/` (the plain body).
pub fn error_response(error_type: ErrorType, message: &str) -> Response {
    failure_response("", error_type, message)
}

/// Unknown path. The path is repeated only when it is short and plain (it could carry a blob).
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let plain = path.len() <= 100
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && !path.split('/').any(|segment| segment.len() > 40);
    let message = if plain {
        format!("No route for {method} {path}")
    } else {
        format!("No route for this {method} path")
    };
    failure_response(path, ErrorType::NotFound, &message)
}

/// A path that may be repeated in an answer or a log: short, plain, no long segment.
pub fn is_plain_path(path: &str) -> bool {
    path.len() <= 100
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && !path.split('/').any(|segment| segment.len() > 40)
}

/// Known path, wrong method (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    failure_response(uri.path(), ErrorType::MethodNotAllowed, &message)
}
