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
/// it could not fill, and an unexpected extra field must not break us. `D` is what is kept of
/// `response_data`.
#[derive(Debug, Deserialize)]
pub struct SecretsResponse<D = serde_json::Value> {
    pub response_context: ResponseContext,
    #[serde(default)]
    pub response_data: D,
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
    pub error_type: UpstreamErrorType,
    #[serde(default)]
    pub rate_limit: Option<UpstreamRateLimit>,
}

/// The upstream's `error_type` (`github-service-contract.md` §3.4), read once here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UpstreamErrorType {
    /// `none`, `null` or absent.
    #[default]
    None,
    DecryptionFailed,
    InvalidPat,
    NotFound,
    Forbidden,
    RateLimited,
    GithubApiError,
    /// Anything else: its text when it is a plain identifier (it is repeated in messages),
    /// else `unrecognised`.
    Unknown(String),
}

impl UpstreamErrorType {
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            None | Some("none") => Self::None,
            Some("decryption_failed") => Self::DecryptionFailed,
            Some("invalid_pat") => Self::InvalidPat,
            Some("not_found") => Self::NotFound,
            Some("forbidden") => Self::Forbidden,
            Some("rate_limited") => Self::RateLimited,
            Some("github_api_error") => Self::GithubApiError,
            Some(other) => {
                let plain = (1..=64).contains(&other.len())
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                Self::Unknown(if plain { other } else { "unrecognised" }.to_owned())
            }
        }
    }

    /// The wire text (for an unknown type, what [`UpstreamErrorType::Unknown`] kept).
    pub fn as_str(&self) -> &str {
        match self {
            Self::None => "none",
            Self::DecryptionFailed => "decryption_failed",
            Self::InvalidPat => "invalid_pat",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::GithubApiError => "github_api_error",
            Self::Unknown(text) => text,
        }
    }
}

impl<'de> Deserialize<'de> for UpstreamErrorType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ErrorTypeVisitor)
    }
}

/// Lenient like the rest of the envelope: `null` is none, and a type of another JSON kind than
/// a string is unrecognised.
struct ErrorTypeVisitor;

impl<'de> serde::de::Visitor<'de> for ErrorTypeVisitor {
    type Value = UpstreamErrorType;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(UpstreamErrorType::parse(Some(text)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(UpstreamErrorType::None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(unrecognised())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(unrecognised())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(unrecognised())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(unrecognised())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(unrecognised())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(unrecognised())
    }
}

fn unrecognised() -> UpstreamErrorType {
    UpstreamErrorType::Unknown("unrecognised".to_owned())
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

/// `GET /auth/test` (contract §3.3): always HTTP 200, the result in the body; its `error_type`s
/// are UPPER_CASE and differ from the secrets envelope's. Lenient as the envelope is. No
/// `Debug`: its `error` is the upstream's unscrubbed text, which has been seen to carry the PAT.
#[derive(Default, Deserialize)]
pub struct AuthTestResponse {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_type: Option<serde_json::Value>,
    #[serde(default)]
    pub user: Option<AuthTestUser>,
    #[serde(default)]
    pub rate_limit: Option<UpstreamRateLimit>,
}

/// The one member of `/auth/test`'s `user` this service reads.
#[derive(Default, Deserialize)]
pub struct AuthTestUser {
    #[serde(default)]
    pub login: Option<String>,
}

/// `GET /encryption/public-key`.
#[derive(Debug, Deserialize)]
pub struct PublicKeyResponse {
    pub public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(error_type: serde_json::Value) -> UpstreamErrorType {
        let context: ResponseContext =
            serde_json::from_value(serde_json::json!({ "error_type": error_type })).unwrap();
        context.error_type
    }

    #[test]
    fn the_upstream_s_error_types_are_read_into_the_enum_and_anything_else_is_unknown() {
        assert_eq!(
            read(serde_json::json!("not_found")),
            UpstreamErrorType::NotFound
        );
        assert_eq!(read(serde_json::json!("none")), UpstreamErrorType::None);
        assert_eq!(read(serde_json::Value::Null), UpstreamErrorType::None);
        assert_eq!(
            read(serde_json::json!("server_error")),
            UpstreamErrorType::Unknown("server_error".into())
        );
        // Not a plain identifier (it could carry anything): never repeated.
        for odd in [
            serde_json::json!("AAAA+/==bWFueSBieXRlcw=="),
            serde_json::json!(7),
            serde_json::json!(true),
            serde_json::json!([1, "none"]),
            serde_json::json!({ "type": "none" }),
            serde_json::json!("x".repeat(65)),
        ] {
            assert_eq!(read(odd).as_str(), "unrecognised");
        }
    }
}
