//! The bodies of `/info/*`, `/public-keys/github`, and of a failure outside `/operations/`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ErrorType;

/// `GET /info/health`: `{"status": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// `GET /info/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    pub version: String,
}

/// `GET /info/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    pub name: String,
    pub version: String,
    /// `operational`.
    pub status: String,
    /// `local` or `lambda`.
    pub environment: String,
    /// The history's store. (Absent from services that keep none of this kind.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryStatus>,
}

/// The history's store, in `/info/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryStatus {
    /// `sqlite`, `dynamodb`, or `none` (`DEPLOY__STORE`).
    pub store: String,
    /// `ok`; `degraded` when the last attempt to record or read failed (writes still happen,
    /// and say they were not recorded); `off` when there is no store.
    pub state: String,
}

/// `GET /public-keys/github`: the key every blob is sealed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyInfo {
    /// 64 lowercase hex characters: an X25519 public key.
    pub public_key: String,
    /// `NaCl/Curve25519/SealedBox`.
    pub algorithm: String,
    /// `github`.
    pub service: String,
}

/// A failure outside `/operations/` (and a refused API key on `/execute`, `/info/status`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    pub error: String,
    pub error_type: ErrorType,
}
