//! What an operation produced, and the response envelope of `api.md` §1.

use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::github_service::UpstreamRateLimit;

/// The `error_type` vocabulary of `api.md` §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidInput,
    Unauthorized,
    DecryptionFailed,
    InvalidPat,
    Forbidden,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamAmbiguous,
    /// The request ran out of the time its runtime allows (a Lambda invocation's deadline).
    Deadline,
    /// The request conflicts with the secret's current state.
    Conflict,
    /// The route exists; the method does not.
    MethodNotAllowed,
    /// A bug in this service, never caused by input.
    InternalError,
}

impl ErrorType {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorType::Unauthorized | ErrorType::InvalidPat => StatusCode::UNAUTHORIZED,
            ErrorType::Forbidden => StatusCode::FORBIDDEN,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::Conflict => StatusCode::CONFLICT,
            ErrorType::DecryptionFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorType::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::UpstreamError | ErrorType::UpstreamAmbiguous => StatusCode::BAD_GATEWAY,
            ErrorType::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::UpstreamTimeout | ErrorType::Deadline => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn http_status(self) -> u16 {
        self.status().as_u16()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidInput => "invalid_input",
            ErrorType::Unauthorized => "unauthorized",
            ErrorType::DecryptionFailed => "decryption_failed",
            ErrorType::InvalidPat => "invalid_pat",
            ErrorType::Forbidden => "forbidden",
            ErrorType::NotFound => "not_found",
            ErrorType::RateLimited => "rate_limited",
            ErrorType::UpstreamError => "upstream_error",
            ErrorType::UpstreamUnavailable => "upstream_unavailable",
            ErrorType::UpstreamTimeout => "upstream_timeout",
            ErrorType::UpstreamAmbiguous => "upstream_ambiguous",
            ErrorType::Deadline => "deadline",
            ErrorType::Conflict => "conflict",
            ErrorType::MethodNotAllowed => "method_not_allowed",
            ErrorType::InternalError => "internal_error",
        }
    }
}

/// Why an operation did not do what was asked. `message` is one sentence and never holds a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_type: ErrorType,
    pub message: String,
    /// Seconds until GitHub's rate limit resets, when known.
    pub retry_after: Option<u64>,
    /// The upstream could not answer this time (connection dropped, HTTP 502/503/504): trying
    /// again may succeed. Timeouts, refused connections, rate limits and ambiguous answers are
    /// told by their `error_type`.
    pub transient: bool,
}

impl Failure {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            retry_after: None,
            transient: false,
        }
    }

    /// Whether an idempotent operation that failed this way is worth another attempt.
    pub fn is_retryable(&self) -> bool {
        self.transient
            || matches!(
                self.error_type,
                ErrorType::UpstreamUnavailable
                    | ErrorType::UpstreamTimeout
                    | ErrorType::RateLimited
                    | ErrorType::UpstreamAmbiguous
            )
    }
}

/// GitHub's rate limit as last reported upstream. Members the upstream left `null` stay `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    pub used: Option<u64>,
    pub timestamp_reset: Option<u64>,
}

impl From<UpstreamRateLimit> for RateLimit {
    fn from(r: UpstreamRateLimit) -> Self {
        Self {
            remaining: r.remaining,
            limit: r.limit,
            used: r.used,
            timestamp_reset: r.reset,
        }
    }
}

/// The longest wait this service ever advises or makes (`Retry-After`, a retry's backoff):
/// GitHub's primary rate limit resets within an hour, so a later reset is not believed.
pub const MAX_RETRY_AFTER_SECONDS: u64 = 3600;

impl RateLimit {
    /// Seconds until the reset (1 to [`MAX_RETRY_AFTER_SECONDS`]), when the limit is exhausted
    /// and the reset time is known.
    pub fn retry_after(&self) -> Option<u64> {
        if self.remaining != Some(0) {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        self.timestamp_reset
            .map(|reset| reset.saturating_sub(now).clamp(1, MAX_RETRY_AFTER_SECONDS))
    }
}

/// The operations of `api.md` §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    List,
    Get,
    Exists,
    Create,
    Delete,
    Presence,
}

impl OperationKind {
    /// The operation whose route is `path`.
    pub fn from_path(path: &str) -> Option<Self> {
        let verb = path.strip_prefix("/operations/github/secrets/")?;
        Self::ALL.into_iter().find(|k| k.verb() == verb)
    }

    pub const ALL: [OperationKind; 6] = [
        OperationKind::List,
        OperationKind::Get,
        OperationKind::Exists,
        OperationKind::Create,
        OperationKind::Delete,
        OperationKind::Presence,
    ];

    /// `github:secrets:<verb>`.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::List => "github:secrets:list",
            OperationKind::Get => "github:secrets:get",
            OperationKind::Exists => "github:secrets:exists",
            OperationKind::Create => "github:secrets:create",
            OperationKind::Delete => "github:secrets:delete",
            OperationKind::Presence => "github:secrets:presence",
        }
    }

    /// The last path segment of its route.
    pub fn verb(self) -> &'static str {
        &self.name()["github:secrets:".len()..]
    }
}

/// The result of running one operation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: OperationKind,
    pub result: Result<Value, Failure>,
    pub messages: Vec<String>,
    pub rate_limit: Option<RateLimit>,
}

impl Outcome {
    /// An operation rejected before any upstream call.
    pub fn rejected(kind: OperationKind, failure: Failure) -> Self {
        Self {
            kind,
            result: Err(failure),
            messages: Vec::new(),
            rate_limit: None,
        }
    }

    pub fn http_status(&self) -> u16 {
        match &self.result {
            Ok(_) => 200,
            Err(f) => f.error_type.http_status(),
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err()
    }

    /// The `api.md` §1 envelope; `duration` is the seconds this service spent on the request.
    pub fn envelope(&self, duration: f64) -> Envelope {
        let (success, data, error, error_type) = match &self.result {
            Ok(data) => (true, data.clone(), String::new(), None),
            Err(f) => (
                false,
                Value::Object(Default::default()),
                f.message.clone(),
                Some(f.error_type),
            ),
        };
        Envelope {
            success,
            operation: Some(self.kind.name()),
            data,
            error,
            error_type,
            messages: self.messages.clone(),
            duration,
            rate_limit: self.rate_limit,
        }
    }
}

impl Envelope {
    /// A failure outside any operation's run (an unknown route or method, a missing API key).
    pub fn failure(kind: Option<OperationKind>, failure: &Failure) -> Self {
        Self {
            success: false,
            operation: kind.map(OperationKind::name),
            data: Value::Object(Default::default()),
            error: failure.message.clone(),
            error_type: Some(failure.error_type),
            messages: Vec::new(),
            duration: 0.0,
            rate_limit: None,
        }
    }
}

/// Response body of every `/operations/...` route.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub success: bool,
    /// `None` only when the path names no operation (404).
    pub operation: Option<&'static str>,
    pub data: Value,
    pub error: String,
    pub error_type: Option<ErrorType>,
    pub messages: Vec<String>,
    pub duration: f64,
    pub rate_limit: Option<RateLimit>,
}
