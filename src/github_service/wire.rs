//! The GitHub Service's wire format (`github-service-contract.md` §3.4).

use serde::{Deserialize, Serialize};

use crate::domain::Visibility;

/// Request body of every `/github-secrets-*` route.
#[derive(Serialize)]
pub struct SecretsRequest<'a> {
    pub encrypted_pat: &'a str,
    pub request_data: RequestData<'a>,
}

/// `request_data`; absent members are omitted.
#[derive(Serialize, Default)]
pub struct RequestData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_ids: Option<&'a [u64]>,
}

/// The envelope every secrets route answers with. Lenient: the upstream sends `null` for members
/// it could not fill, and an unexpected extra field must not break us.
#[derive(Debug, Deserialize)]
pub struct SecretsResponse {
    pub response_context: ResponseContext,
    #[serde(default)]
    pub response_data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct ResponseContext {
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub messages: Option<Vec<String>>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<UpstreamRateLimit>,
}

/// GitHub's rate limit as the GitHub Service reports it; any member may be `null`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct UpstreamRateLimit {
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub remaining: Option<u64>,
    #[serde(default)]
    pub reset: Option<u64>,
    #[serde(default)]
    pub used: Option<u64>,
}

/// `GET /encryption/public-key`.
#[derive(Debug, Deserialize)]
pub struct PublicKeyResponse {
    pub public_key: String,
}
