//! The `error_type` vocabulary (`api.md` §1) with the HTTP status of each, and the operations.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request or a workflow step failed. One type, one status: [`ErrorType::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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
    /// The request ran out of the time its runtime allows (a Lambda invocation's deadline), or a
    /// workflow step did not start before the workflow's deadline.
    Deadline,
    /// The request conflicts with the secret's current state.
    Conflict,
    /// The route exists; the method does not.
    MethodNotAllowed,
    /// A bug in this service, never caused by input.
    InternalError,
    /// Workflow steps only: not started because an earlier step failed and `on_error` is `stop`.
    Stopped,
    /// The history routes only: this service keeps no history (`DEPLOY__STORE=none`), or its
    /// store cannot be read now.
    HistoryUnavailable,
}

impl ErrorType {
    pub const ALL: [ErrorType; 17] = [
        ErrorType::InvalidInput,
        ErrorType::Unauthorized,
        ErrorType::DecryptionFailed,
        ErrorType::InvalidPat,
        ErrorType::Forbidden,
        ErrorType::NotFound,
        ErrorType::RateLimited,
        ErrorType::UpstreamError,
        ErrorType::UpstreamUnavailable,
        ErrorType::UpstreamTimeout,
        ErrorType::UpstreamAmbiguous,
        ErrorType::Deadline,
        ErrorType::Conflict,
        ErrorType::MethodNotAllowed,
        ErrorType::InternalError,
        ErrorType::Stopped,
        ErrorType::HistoryUnavailable,
    ];

    /// The status of an answer failing this way. `Stopped` only ever describes a workflow step
    /// (whose report is 207); its status is 424, "an earlier request failed".
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorType::Unauthorized | ErrorType::InvalidPat => StatusCode::UNAUTHORIZED,
            ErrorType::Forbidden => StatusCode::FORBIDDEN,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::Conflict => StatusCode::CONFLICT,
            ErrorType::DecryptionFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Stopped => StatusCode::FAILED_DEPENDENCY,
            ErrorType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorType::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::UpstreamError | ErrorType::UpstreamAmbiguous => StatusCode::BAD_GATEWAY,
            ErrorType::UpstreamUnavailable | ErrorType::HistoryUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorType::UpstreamTimeout | ErrorType::Deadline => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The wire name, `invalid_input`.
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
            ErrorType::Stopped => "stopped",
            ErrorType::HistoryUnavailable => "history_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations of `api.md` §2: `github:secrets:<verb>`, routed at
/// `POST /operations/github/secrets/<verb>` and usable as a workflow step's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum OperationKind {
    #[serde(rename = "github:secrets:list")]
    List,
    #[serde(rename = "github:secrets:get")]
    Get,
    #[serde(rename = "github:secrets:exists")]
    Exists,
    #[serde(rename = "github:secrets:create")]
    Create,
    #[serde(rename = "github:secrets:delete")]
    Delete,
    #[serde(rename = "github:secrets:presence")]
    Presence,
}

impl OperationKind {
    pub const ALL: [OperationKind; 6] = [
        OperationKind::List,
        OperationKind::Get,
        OperationKind::Exists,
        OperationKind::Create,
        OperationKind::Delete,
        OperationKind::Presence,
    ];

    /// Its wire name, its route and the route's last segment: the one table they all come from.
    const fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            OperationKind::List => (
                "github:secrets:list",
                "/operations/github/secrets/list",
                "list",
            ),
            OperationKind::Get => (
                "github:secrets:get",
                "/operations/github/secrets/get",
                "get",
            ),
            OperationKind::Exists => (
                "github:secrets:exists",
                "/operations/github/secrets/exists",
                "exists",
            ),
            OperationKind::Create => (
                "github:secrets:create",
                "/operations/github/secrets/create",
                "create",
            ),
            OperationKind::Delete => (
                "github:secrets:delete",
                "/operations/github/secrets/delete",
                "delete",
            ),
            OperationKind::Presence => (
                "github:secrets:presence",
                "/operations/github/secrets/presence",
                "presence",
            ),
        }
    }

    /// `github:secrets:<verb>`: the `operation` of an envelope, a workflow step's `type`.
    pub fn name(self) -> &'static str {
        self.names().0
    }

    /// The last path segment of its route (the OpenAPI operation id).
    pub fn verb(self) -> &'static str {
        self.names().2
    }

    /// Its route: `/operations/github/secrets/<verb>`.
    pub fn path(self) -> &'static str {
        self.names().1
    }

    /// The operation whose route is `path`.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.path() == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_type_s_wire_name_is_its_serde_name() {
        for t in ErrorType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            let back: ErrorType = serde_json::from_value(t.as_str().into()).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn every_operation_s_name_is_its_serde_name_and_routes_back() {
        for k in OperationKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(OperationKind::from_path(k.path()), Some(k));
            assert!(k.path().ends_with(&format!("/{}", k.verb())), "{k:?}");
        }
    }
}
