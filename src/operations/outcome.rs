//! What an operation produced, and the response envelope of `api.md` §1.

use serde::Deserialize as _;
use serde_json::Value;

pub use mgraph_deploy_api::envelope::MAX_RETRY_AFTER_SECONDS;
pub use mgraph_deploy_api::{Envelope, ErrorType, OperationKind, RateLimit};

use crate::domain::{Scope, Target};
use crate::github_service::UpstreamRateLimit;

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

    /// A failure that another attempt may not meet (a connection that failed, say).
    pub fn transient(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::new(error_type, message)
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

/// The result of running one operation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: OperationKind,
    pub result: Result<Value, Failure>,
    pub messages: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    /// Calls it made to the GitHub Service (a read sent again counts once).
    pub upstream_calls: u32,
}

impl Outcome {
    /// An operation rejected before any upstream call.
    pub fn rejected(kind: OperationKind, failure: Failure) -> Self {
        Self {
            kind,
            result: Err(failure),
            messages: Vec::new(),
            rate_limit: None,
            upstream_calls: 0,
        }
    }

    pub fn status(&self) -> http::StatusCode {
        match &self.result {
            Ok(_) => http::StatusCode::OK,
            Err(f) => f.error_type.status(),
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err()
    }

    /// The scope a run on `target` wrote: the repository's when `env_fallback` applied (the
    /// data says so), else the target's.
    pub fn scope_written(data: &Value, target: &Target) -> Scope {
        data.get("scope")
            .and_then(|s| Scope::deserialize(s).ok())
            .unwrap_or(target.scope())
    }

    /// The `api.md` §1 envelope; `duration` is the seconds this service spent on the request.
    pub fn into_envelope(self, duration: f64) -> Envelope {
        let (success, data, error, error_type) = match self.result {
            Ok(data) => (true, Some(data), String::new(), None),
            Err(f) => (false, None, f.message, Some(f.error_type)),
        };
        Envelope {
            success,
            operation: Some(self.kind),
            data,
            error,
            error_type,
            messages: self.messages,
            duration,
            rate_limit: self.rate_limit,
        }
    }
}

/// A failure outside any operation's run (an unknown route or method, a missing API key), on a
/// route whose envelope names operations of type `O`.
pub fn failure_envelope<O>(kind: Option<O>, failure: &Failure) -> Envelope<Value, O> {
    Envelope {
        success: false,
        operation: kind,
        data: None,
        error: failure.message.clone(),
        error_type: Some(failure.error_type),
        messages: Vec::new(),
        duration: 0.0,
        rate_limit: None,
    }
}
