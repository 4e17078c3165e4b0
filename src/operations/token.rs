//! `github:token:check`: the upstream's `/auth/test` (contract §3.3), whose answers are always
//! HTTP 200 with UPPER_CASE error types, read into this service's error types; and, for a target,
//! one `list` to tell whether the PAT can read its secrets.

use mgraph_deploy_api::{TargetAccess, TokenCheckData};

use super::secrets::{decryption_failure, rate_limited};
use super::{ErrorType, Failure, Listing, Operations, RateLimit};
use crate::domain::{SealedPat, Target};
use crate::github_service::{AuthTestResponse, scrub};

/// What a token check found, and GitHub's rate limit for the PAT when it said.
#[derive(Debug)]
pub struct TokenCheck {
    pub result: Result<TokenCheckData, Failure>,
    pub rate_limit: Option<RateLimit>,
}

impl Operations {
    /// Whose PAT `pat` is; with `target`, whether it can read the target's secrets. A `list` that
    /// fails for a reason that is the PAT's (`forbidden`, `not_found`, `invalid_pat`, a missing
    /// environment) is the answer "cannot read"; any other failure (a rate limit, the upstream)
    /// fails the check, since it says nothing about the PAT.
    pub async fn check_token(&self, pat: &SealedPat, target: Option<&Target>) -> TokenCheck {
        let answer = match self.upstream().auth_test(pat.blob()).await {
            Ok(answer) => answer,
            Err(e) => {
                return TokenCheck {
                    result: Err(e.into()),
                    rate_limit: None,
                };
            }
        };
        let rate_limit = answer.rate_limit.map(RateLimit::from);
        let login = match login(answer) {
            Ok(login) => login,
            Err(failure) => {
                return TokenCheck {
                    result: Err(failure),
                    rate_limit,
                };
            }
        };
        let access = match target {
            None => None,
            Some(target) => match access(self, pat, target).await {
                Ok(access) => Some(access),
                Err(failure) => {
                    return TokenCheck {
                        result: Err(failure),
                        rate_limit,
                    };
                }
            },
        };
        TokenCheck {
            result: Ok(TokenCheckData {
                login,
                rate_limit,
                target: access,
            }),
            rate_limit,
        }
    }
}

/// The login of a successful `/auth/test`, or its failure in this service's terms.
fn login(answer: AuthTestResponse) -> Result<String, Failure> {
    let said = answer.error.as_deref().map(scrub).unwrap_or_default();
    let error_type = answer
        .error_type
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if answer.success == Some(true) && error_type.is_empty() {
        return answer
            .user
            .and_then(|user| user.login)
            .filter(|login| is_login(login))
            .ok_or_else(|| {
                Failure::new(
                    ErrorType::UpstreamError,
                    "The GitHub Service's token check succeeded without a usable GitHub login",
                )
            });
    }
    Err(match error_type {
        "DECRYPTION_FAILED" => decryption_failure(Some(&format!("PAT {said}"))),
        "INVALID_PAT" if said.contains("403") || said.contains("Forbidden") => Failure::new(
            ErrorType::InvalidPat,
            "GitHub refused the PAT (HTTP 403): it is not allowed to read its own user",
        ),
        "INVALID_PAT" => Failure::new(
            ErrorType::InvalidPat,
            "GitHub rejected the PAT: it is wrong, expired or revoked",
        ),
        "RATE_LIMIT" => rate_limited(),
        "GITHUB_ERROR" if said.contains("429") => rate_limited(),
        // `requests` refused the PAT as a header value (contract §8.14).
        "GITHUB_ERROR" if said.contains("header value") || said.contains("whitespace") => {
            decryption_failure(Some("header"))
        }
        _ => {
            let named = if is_plain(error_type) {
                error_type
            } else {
                "unrecognised"
            };
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            Failure::new(
                ErrorType::UpstreamError,
                format!("The GitHub Service's token check failed ({named}){said}"),
            )
        }
    })
}

/// Whether the PAT can read `target`'s secrets.
async fn access(
    operations: &Operations,
    pat: &SealedPat,
    target: &Target,
) -> Result<TargetAccess, Failure> {
    let cannot = |failure: Failure| TargetAccess {
        target: target.clone(),
        can_read_secrets: false,
        error_type: Some(failure.error_type),
        error: Some(failure.message),
    };
    match operations.scope_secrets(pat, target).await {
        Ok(Listing::Secrets(_)) => Ok(TargetAccess {
            target: target.clone(),
            can_read_secrets: true,
            error_type: None,
            error: None,
        }),
        Ok(Listing::EnvironmentMissing) => Ok(cannot(super::environment_missing(target))),
        Err(f)
            if matches!(
                f.error_type,
                ErrorType::Forbidden | ErrorType::NotFound | ErrorType::InvalidPat
            ) =>
        {
            Ok(cannot(f))
        }
        Err(f) => Err(f),
    }
}

/// A GitHub login: 1 to 39 ASCII letters, digits and hyphens (the emulators add a few more
/// characters; anything else is not repeated).
fn is_login(login: &str) -> bool {
    (1..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'[' | b']'))
}

/// An error type worth repeating: a plain identifier.
fn is_plain(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: serde_json::Value) -> AuthTestResponse {
        serde_json::from_value(json).unwrap()
    }

    fn failed(error_type: &str, error: &str) -> Failure {
        login(answer(serde_json::json!({
            "success": false, "error": error, "error_type": error_type, "user": null, "rate_limit": null
        })))
        .unwrap_err()
    }

    #[test]
    fn each_upper_case_error_type_of_the_upstream_becomes_this_service_s() {
        let cases = [
            (
                "DECRYPTION_FAILED",
                "Decryption failed: Invalid encrypted format or wrong key",
                ErrorType::DecryptionFailed,
            ),
            (
                "DECRYPTION_FAILED",
                "Invalid base64 encoding: Incorrect padding",
                ErrorType::DecryptionFailed,
            ),
            (
                "INVALID_PAT",
                "GitHub API error: Bad credentials (401)",
                ErrorType::InvalidPat,
            ),
            (
                "INVALID_PAT",
                "GitHub API error: Forbidden - PAT may lack required scopes",
                ErrorType::InvalidPat,
            ),
            (
                "RATE_LIMIT",
                "GitHub API error: Rate limit exceeded",
                ErrorType::RateLimited,
            ),
            (
                "GITHUB_ERROR",
                "GitHub API error: 429 Error",
                ErrorType::RateLimited,
            ),
            (
                "GITHUB_ERROR",
                "GitHub API error: Resource not found (404)",
                ErrorType::UpstreamError,
            ),
            (
                "MISSING_HEADER",
                "Missing X-OSBot-GitHub-PAT header",
                ErrorType::UpstreamError,
            ),
            ("SOMETHING_NEW", "", ErrorType::UpstreamError),
        ];
        for (upstream, said, ours) in cases {
            assert_eq!(
                failed(upstream, said).error_type,
                ours,
                "{upstream}: {said}"
            );
        }
    }

    #[test]
    fn a_pat_the_upstream_echoes_in_a_header_error_is_not_repeated() {
        let pat = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        let f = failed(
            "GITHUB_ERROR",
            &format!(
                "GitHub API error: Invalid leading whitespace, reserved character(s), or return character(s) in header value: 'token {pat}\\n'"
            ),
        );
        assert_eq!(f.error_type, ErrorType::DecryptionFailed);
        assert!(!f.message.contains(pat), "{}", f.message);
        let f = failed("GITHUB_ERROR", &format!("GitHub API error: weird {pat}"));
        assert!(!f.message.contains(pat), "{}", f.message);
    }

    #[test]
    fn a_success_without_a_plain_login_is_an_upstream_error_and_an_odd_type_is_not_repeated() {
        for user in [
            serde_json::Value::Null,
            serde_json::json!({}),
            serde_json::json!({ "login": "" }),
            serde_json::json!({ "login": "a b<script>" }),
        ] {
            let f =
                login(answer(serde_json::json!({ "success": true, "user": user }))).unwrap_err();
            assert_eq!(f.error_type, ErrorType::UpstreamError);
        }
        let f = failed("AAAA+/==bWFueSBieXRlcw==", "");
        assert!(f.message.contains("(unrecognised)"), "{}", f.message);
        let ok = login(answer(serde_json::json!({
            "success": true, "error": null, "error_type": null,
            "user": { "login": "octo", "id": 1 }, "rate_limit": { "limit": 5000 }
        })));
        assert_eq!(ok.unwrap(), "octo");
    }
}
