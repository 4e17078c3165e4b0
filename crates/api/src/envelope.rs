//! The answer of every `/operations/...` route (`api.md` §1) and each operation's `data`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{ErrorType, OperationKind, PresenceName, Scope, SecretName, Visibility};

/// The envelope. `data` is the operation's result on success (`D`: [`ListData`], [`GetData`], …)
/// and `{}` on failure, which is `None` here.
///
/// `O` names the operation: an [`OperationKind`] on `/operations/*`, a
/// [`crate::HistoryOperation`] on `/executions/*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "D: Serialize, O: Serialize",
    deserialize = "D: DeserializeOwned, O: DeserializeOwned"
))]
pub struct Envelope<D = Value, O = OperationKind> {
    pub success: bool,
    /// `None` only when the path names no operation (404).
    pub operation: Option<O>,
    #[serde(with = "data_or_empty")]
    pub data: Option<D>,
    /// Empty on success.
    pub error: String,
    pub error_type: Option<ErrorType>,
    #[serde(default)]
    pub messages: Vec<String>,
    /// Seconds this service spent on the request.
    pub duration: f64,
    pub rate_limit: Option<RateLimit>,
}

impl<D, O> Envelope<D, O> {
    pub fn is(&self, error_type: ErrorType) -> bool {
        self.error_type == Some(error_type)
    }
}

/// `data`: the value, or `{}` for `None` (a failure).
mod data_or_empty {
    use super::*;

    pub fn serialize<D: Serialize, S: Serializer>(
        data: &Option<D>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(data) => data.serialize(serializer),
            None => serde_json::Map::new().serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: DeserializeOwned, De: Deserializer<'de>>(
        deserializer: De,
    ) -> Result<Option<D>, De::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(None);
        }
        D::deserialize(value)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// GitHub's rate limit as last reported upstream. Members the upstream left `null` stay `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimit {
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    pub used: Option<u64>,
    /// Unix time (seconds) when the limit resets.
    pub timestamp_reset: Option<u64>,
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

/// A secret's metadata (never its value: GitHub does not return values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretMeta {
    pub name: SecretName,
    /// RFC 3339, as GitHub reported it.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Organisation secrets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// `github:secrets:list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListData {
    pub secrets: Vec<SecretMeta>,
    pub scope: Scope,
    /// The GitHub Service reads only the first page of GitHub's list (30 secrets): when it sent a
    /// full page, the scope may hold more than `secrets` shows. `exists`, `get` and `presence`
    /// check a name exactly.
    #[serde(default)]
    pub may_be_incomplete: bool,
}

/// `github:secrets:get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetData {
    pub secret: SecretMeta,
    pub scope: Scope,
}

/// `github:secrets:exists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExistsData {
    pub exists: bool,
    pub secret_name: SecretName,
    pub scope: Scope,
}

/// `github:secrets:create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateData {
    pub created: bool,
    pub secret_name: SecretName,
    /// Where it was written: `repo` when `env_fallback` applied.
    pub scope: Scope,
    /// Present (`true`) only when the environment did not exist and the repository secret was
    /// written instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub env_fallback: bool,
    /// Present (`true`) only for a workflow step that was not written: its `value_fingerprint`
    /// is the one this service wrote last, and GitHub's `updated_at` has not moved since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// Present (`true`) only when the value is the one this service wrote last but the secret was
    /// changed outside it since: it was written back (`messages` says when it changed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drifted: bool,
}

/// `github:secrets:delete`. `deleted: false` only in a workflow: the secret was already absent, or
/// it is absent after a delete whose connection failed, which cannot say it removed it (`messages`
/// says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteData {
    pub deleted: bool,
    pub secret_name: SecretName,
    pub scope: Scope,
}

/// `github:secrets:presence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresenceData {
    pub secrets: Vec<PresenceEntry>,
    pub all_present: bool,
}

/// One required name and where a workflow run would find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresenceEntry {
    pub name: PresenceName,
    pub present: bool,
    /// `None` when missing.
    pub scope: Option<PresenceScope>,
}

/// Where a present name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceScope {
    Environment,
    Repo,
    /// `GITHUB_TOKEN`, which GitHub gives every workflow run.
    Builtin,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_s_data_is_an_empty_object_both_ways() {
        let failure = json!({
            "success": false, "operation": "github:secrets:list", "data": {},
            "error": "no", "error_type": "not_found", "messages": [], "duration": 0.1,
            "rate_limit": null
        });
        let envelope: Envelope<ListData> = serde_json::from_value(failure.clone()).unwrap();
        assert_eq!(envelope.data, None);
        assert!(envelope.is(ErrorType::NotFound));
        assert_eq!(serde_json::to_value(&envelope).unwrap(), failure);
    }

    #[test]
    fn a_rate_limit_with_null_members_is_read() {
        let limit: RateLimit = serde_json::from_value(
            json!({"remaining": null, "limit": 5000, "used": null, "timestamp_reset": null}),
        )
        .unwrap();
        assert_eq!(limit.limit, Some(5000));
        assert_eq!(limit.retry_after(), None);
    }
}
