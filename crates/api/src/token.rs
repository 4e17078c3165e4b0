//! `POST /operations/github/token/check`: whose PAT this is, and whether it can read a target's
//! secrets. As `gh auth status`, before anything is written.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ErrorType, RateLimit, SealedPat, Target, present};

/// The token routes, as an envelope's `operation` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum TokenOperation {
    /// Who the PAT belongs to, and (with a target) whether it can read the target's secrets.
    #[serde(rename = "github:token:check")]
    Check,
}

impl TokenOperation {
    pub const ALL: [TokenOperation; 1] = [TokenOperation::Check];

    /// Its wire name, its route and the route's last segment.
    const fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            TokenOperation::Check => (
                "github:token:check",
                "/operations/github/token/check",
                "check",
            ),
        }
    }

    pub fn name(self) -> &'static str {
        self.names().0
    }

    pub fn path(self) -> &'static str {
        self.names().1
    }

    /// The OpenAPI operation id is `token_<verb>`.
    pub fn verb(self) -> &'static str {
        self.names().2
    }
}

/// `POST /operations/github/token/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCheckBody {
    pub encrypted_pat: SealedPat,
    /// Also check that the PAT can read this target's secrets (one `list`).
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub target: Option<Target>,
}

/// `github:token:check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenCheckData {
    /// The GitHub login the PAT belongs to.
    pub login: String,
    /// The PAT's GitHub rate limit, as GitHub reported it with the check.
    pub rate_limit: Option<RateLimit>,
    /// With a target in the request: whether the PAT can read its secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetAccess>,
}

/// Whether a PAT can read a target's secrets: its `list` answered. GitHub tells whether a PAT can
/// *write* them only when it writes: a fine-grained PAT may read secrets and not write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TargetAccess {
    pub target: Target,
    pub can_read_secrets: bool,
    /// When it cannot: why, as `list` said it (`forbidden`, `not_found`, `invalid_pat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorType>,
    /// When it cannot: `list`'s message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
