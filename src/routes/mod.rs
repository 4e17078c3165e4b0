//! Thin handlers: parse, call one core function, map the result to a response.

pub mod execute;
pub mod history;
pub mod info;
pub mod public_keys;
pub mod secrets;
pub mod token;

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use mgraph_deploy_api::{Envelope, ErrorBody, HistoryOperation, TokenOperation};
use serde::Serialize;

use crate::operations::{
    ErrorType, Failure, OperationKind, RateLimit, failure_envelope, parse_json,
};
use crate::state::AppState;

/// When the response must be on its way: set by the serving runtime when it has a hard limit
/// (a Lambda invocation's deadline, less a margin). `/execute` reports by then.
#[derive(Debug, Clone, Copy)]
pub struct RespondBy(pub tokio::time::Instant);

impl RespondBy {
    /// How long after its report is due a workflow may still wait for its history to be
    /// written: less than the runtime's own margin between the report and its answer (checked
    /// where those margins are set, in `runtime.rs`).
    pub const RECORD_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

    /// When the history of a workflow must be written, at the latest.
    pub fn record_by(self) -> tokio::time::Instant {
        self.0 + Self::RECORD_GRACE
    }
}

/// Marks a response with its failure class, so the request log line can report it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseErrorType(pub ErrorType);

/// A failure outside an operation's run (a refused API key, an unknown route or method, a
/// panic, a missed deadline, an upstream that could not give the public key): the error is the
/// response. Its body is the §1 envelope on an operation route, else
/// `{"success": false, "error": ..., "error_type": ...}`; its status is the type's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    error_type: ErrorType,
    message: String,
    /// `Some` on a route that answers with the envelope: the body is one.
    route: Option<EnvelopeRoute>,
}

/// The routes that answer with the §1 envelope, and the operation a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvelopeRoute {
    /// `/operations/...`.
    Operation(Option<OperationKind>),
    /// `/operations/github/token/...`.
    Token(TokenOperation),
    /// `/executions/...`.
    History(Option<HistoryOperation>),
}

impl EnvelopeRoute {
    fn of(path: &str) -> Option<Self> {
        if let Some(token) = TokenOperation::ALL.into_iter().find(|t| t.path() == path) {
            Some(Self::Token(token))
        } else if path.starts_with("/operations/") {
            Some(Self::Operation(OperationKind::from_path(path)))
        } else if path.starts_with("/executions/") {
            Some(Self::History(HistoryOperation::from_path(path)))
        } else {
            None
        }
    }
}

impl ApiError {
    /// The plain body.
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            route: None,
        }
    }

    /// The body `path` answers with: the envelope under `/operations/` and `/executions/`, else
    /// the plain one.
    pub fn at(path: &str, error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            route: EnvelopeRoute::of(path),
            ..Self::new(error_type, message)
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        Self::new(failure.error_type, failure.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error_type.status();
        let mut response = match self.route {
            Some(EnvelopeRoute::Operation(operation)) => {
                let failure = Failure::new(self.error_type, self.message);
                (status, Json(failure_envelope(operation, &failure))).into_response()
            }
            Some(EnvelopeRoute::History(operation)) => {
                let failure = Failure::new(self.error_type, self.message);
                (status, Json(failure_envelope(operation, &failure))).into_response()
            }
            Some(EnvelopeRoute::Token(operation)) => {
                let failure = Failure::new(self.error_type, self.message);
                (status, Json(failure_envelope(Some(operation), &failure))).into_response()
            }
            None => {
                let body = ErrorBody {
                    success: false,
                    error: self.message,
                    error_type: self.error_type,
                };
                (status, Json(body)).into_response()
            }
        };
        response
            .extensions_mut()
            .insert(ResponseErrorType(self.error_type));
        response
    }
}

/// Marks a failure's response: its class for the request log, and `Retry-After` when a rate
/// limit's reset is known.
pub fn mark_failure(response: &mut Response, error_type: ErrorType, retry_after: Option<u64>) {
    response
        .extensions_mut()
        .insert(ResponseErrorType(error_type));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
}

/// A body read whole and parsed as `T` (unknown members and `null`s refused, as everywhere).
pub fn read<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Failure> {
    let bytes = body.map_err(|rejection| {
        Failure::new(ErrorType::InvalidInput, unreadable_body(&rejection, state))
    })?;
    Ok(parse_json(&bytes)?)
}

/// The §1 envelope of `operation`'s `result`, with its status (and `Retry-After` on a rate
/// limit whose reset is known).
pub fn respond<D: Serialize, O: Serialize>(
    operation: O,
    result: Result<D, Failure>,
    started: Instant,
    rate_limit: Option<RateLimit>,
) -> Response {
    let (status, error_type, retry_after) = match &result {
        Ok(_) => (StatusCode::OK, None, None),
        Err(f) => (f.error_type.status(), Some(f.error_type), f.retry_after),
    };
    let (data, error) = match result {
        Ok(data) => (Some(data), String::new()),
        Err(f) => (None, f.message),
    };
    let envelope = Envelope {
        success: error_type.is_none(),
        operation: Some(operation),
        data,
        error,
        error_type,
        messages: Vec::new(),
        duration: started.elapsed().as_secs_f64(),
        rate_limit,
    };
    let mut response = (status, Json(envelope)).into_response();
    if let Some(error_type) = error_type {
        mark_failure(&mut response, error_type, retry_after);
    }
    response
}

/// Why a request body could not be read, in one sentence naming the setting that bounds it.
pub fn unreadable_body(rejection: &BytesRejection, state: &AppState) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return format!(
                "The request body stopped arriving for more than {} s (DEPLOY__HEADER_READ_TIMEOUT_SECONDS)",
                state.body_timeout.as_secs()
            );
        }
        cause = error.source();
    }
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "The request body is larger than {} bytes (DEPLOY__MAX_BODY_BYTES)",
            state.max_body_bytes
        )
    } else {
        "The request body could not be read: the connection failed, or it was malformed".to_owned()
    }
}

/// Unknown path. The path is repeated only when it is short and plain (it could carry a blob).
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let message = if is_plain_path(path) {
        format!("No route for {method} {path}")
    } else {
        format!("No route for this {method} path")
    };
    ApiError::at(path, ErrorType::NotFound, message).into_response()
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
    ApiError::at(uri.path(), ErrorType::MethodNotAllowed, message).into_response()
}
