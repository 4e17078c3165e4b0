//! The GitHub Service's routes (contract §3), with its quirks: get/delete report every GitHub
//! failure as 404 `not_found`, create/update report them as 500 `github_api_error`, create
//! answers 201 even when it overwrote, failures carry `rate_limit: null` unless the PAT works,
//! and only `list` classifies GitHub's errors.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

use crate::Shared;
use crate::github::{GhError, Scope};
use crate::keys::BlobError;
use crate::wire::{self, Envelope, RawRequest, Rejection};

/// The emulator's test aid, which the real GitHub Service does not have: the value it stored for
/// a secret, decrypted. Behind the emulator's API key like every other route.
pub const STORED_VALUE: &str = "/emulator/stored-value";

/// Where a stored value is: `owner` and `repo` (and `environment`), or `org`; and `name`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredValueQuery {
    owner: Option<String>,
    repo: Option<String>,
    environment: Option<String>,
    org: Option<String>,
    name: String,
}

/// `GET /emulator/stored-value?owner=O&repo=R[&environment=E]&name=N` (or `?org=O&name=N`):
/// `{"name", "value", "updated_at", "test_aid"}`, 404 when nothing is stored there.
async fn stored_value(
    State(shared): State<Arc<Shared>>,
    query: Result<axum::extract::Query<StoredValueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let usage = "pass owner and repo (and environment), or org; and name";
    let Ok(axum::extract::Query(q)) = query else {
        return wire::json_response(400, &json!({ "detail": usage }));
    };
    let scope = match (q.owner, q.repo, q.environment, q.org) {
        (Some(owner), Some(repo), None, None) => Scope::repo(&owner, &repo),
        (Some(owner), Some(repo), Some(env), None) => Scope::environment(&owner, &repo, &env),
        (None, None, None, Some(org)) => Scope::org(&org),
        _ => return wire::json_response(400, &json!({ "detail": usage })),
    };
    let stored = shared
        .github
        .lock()
        .expect("github lock")
        .secret(&scope, &q.name);
    match stored {
        Some(secret) => wire::json_response(
            200,
            &json!({
                "name": q.name.to_ascii_uppercase(),
                "value": secret.plaintext,
                "updated_at": secret.updated_at,
                "test_aid": "the emulator's: the real GitHub Service never shows a value",
            }),
        ),
        None => wire::json_response(404, &json!({ "detail": "no secret stored there" })),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Repo,
    Env,
    Org,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Get,
    Create,
    Update,
    Delete,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new()
        .route(STORED_VALUE, get(stored_value))
        .route("/encryption/public-key", get(public_key))
        .route("/auth/public-key", get(public_key))
        .route("/auth/test", get(auth_test))
        .route(
            "/info/health",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        );
    for (family, prefix) in [
        (Family::Repo, "/github-secrets-repo"),
        (Family::Env, "/github-secrets-env"),
        (Family::Org, "/github-secrets-org"),
    ] {
        let handler = move |action: Action| {
            move |State(shared): State<Arc<Shared>>, body: Bytes| async move {
                handle(&shared, family, action, &body)
            }
        };
        router = router
            .route(&format!("{prefix}/list"), post(handler(Action::List)))
            .route(&format!("{prefix}/get"), post(handler(Action::Get)))
            .route(&format!("{prefix}/create"), post(handler(Action::Create)))
            .route(&format!("{prefix}/update"), put(handler(Action::Update)))
            .route(&format!("{prefix}/delete"), delete(handler(Action::Delete)));
    }
    router
}

async fn public_key(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(json!({
        "public_key": shared.keys.lock().expect("keys lock").public_hex(),
        "algorithm": "NaCl/Curve25519/SealedBox",
        "timestamp": crate::epoch_millis(),
    }))
}

/// `GET /auth/test` (contract §3.3): always 200; UPPER_CASE error types; GitHub's `/user` then
/// `/rate_limit`.
async fn auth_test(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    let failed = |error_type: &str, error: &str| {
        wire::json_response(
            200,
            &json!({ "success": false, "error": error, "error_type": error_type, "user": null, "rate_limit": null }),
        )
    };
    let Some(sealed) = headers.get("x-osbot-github-pat") else {
        return failed("MISSING_HEADER", "Missing X-OSBot-GitHub-PAT header");
    };
    let keys = shared.keys.lock().expect("keys lock").clone();
    let Ok(pat) = sealed
        .to_str()
        .map_err(|_| ())
        .and_then(|blob| keys.open(blob).map_err(|_| ()))
    else {
        return failed(
            "DECRYPTION_FAILED",
            "Decryption failed: Invalid encrypted format or wrong key",
        );
    };
    let mut github = shared.github.lock().expect("github lock");
    match github.user(&pat) {
        Ok(login) => {
            let rate = github.rate_limit(&pat);
            wire::json_response(
                200,
                &json!({
                    "success": true, "error": null, "error_type": null,
                    "user": { "login": login, "id": 1_000_001, "name": null, "email": null, "plan": null },
                    "rate_limit": rate,
                }),
            )
        }
        Err(e) if e.status == 401 => {
            failed("INVALID_PAT", "GitHub API error: Bad credentials (401)")
        }
        Err(e) if e.status == 403 && e.text.contains("rate limit") => {
            failed("RATE_LIMIT", "GitHub API error: Rate limit exceeded")
        }
        Err(e) if e.status == 403 => failed(
            "INVALID_PAT",
            "GitHub API error: Forbidden - PAT may lack required scopes",
        ),
        Err(e) => failed(
            "GITHUB_ERROR",
            &format!("GitHub API error: {} Error", e.status),
        ),
    }
}

/// `response_data` on failure: the defaults of the route's response type.
fn default_data(action: Action) -> Value {
    match action {
        Action::List => json!({ "secrets": [] }),
        Action::Get => json!({ "secret": null }),
        Action::Create => json!({ "created": false }),
        Action::Update => json!({ "updated": false }),
        Action::Delete => json!({ "deleted": false }),
    }
}

fn handle(shared: &Shared, family: Family, action: Action, body: &[u8]) -> Response {
    let request = match validate(family, action, body) {
        Ok(request) => request,
        Err(rejection) => return rejection.into_response(),
    };
    let fail = |status, error_type, error: Option<String>| {
        Envelope::failure(status, error_type, error, default_data(action)).into_response()
    };

    // 1. Decrypt the PAT (and the value), before any GitHub call.
    let keys = shared.keys.lock().expect("keys lock").clone();
    if request.encrypted_pat.is_empty() {
        return fail(
            401,
            "decryption_failed",
            Some("Missing encrypted PAT".into()),
        );
    }
    let pat = match keys.open(&request.encrypted_pat) {
        Ok(pat) => pat,
        Err(_) => {
            return fail(
                401,
                "decryption_failed",
                Some("Decryption failed: Invalid encrypted format or wrong key".into()),
            );
        }
    };
    let value = if matches!(action, Action::Create | Action::Update) {
        match keys.open(&request.encrypted_value) {
            Ok(value) if !request.encrypted_value.is_empty() => Some(value),
            Ok(_) | Err(BlobError::WrongKey | BlobError::NotText) => {
                return fail(
                    401,
                    "decryption_failed",
                    Some("Failed to decrypt secret value".into()),
                );
            }
            Err(BlobError::Malformed(message)) => {
                return fail(401, "decryption_failed", Some(message));
            }
        }
    } else {
        None
    };
    // `requests` refuses a header value with a line break or leading whitespace, and says so
    // with the header in the message (the upstream leaks PAT material here; contract §8.14).
    if pat.contains(['\r', '\n']) || pat.starts_with(char::is_whitespace) {
        return fail(
            401,
            "decryption_failed",
            Some(format!(
                "Invalid leading whitespace, reserved character(s), or return character(s) in header value: 'token {pat}'"
            )),
        );
    }

    let scope = request.scope(family, action);
    let name = request.secret_name.clone();
    let mut github = shared.github.lock().expect("github lock");
    let mut envelope = match action {
        Action::List => match github.list(&pat, &scope) {
            Ok(secrets) => Envelope::success(
                200,
                None,
                json!({ "secrets": secrets.iter().map(|s| s.to_json()).collect::<Vec<_>>() }),
            ),
            Err(e) => {
                let (status, error_type) = classify(&e);
                // A failed list never reaches the rate-limit call.
                return fail(
                    status,
                    error_type,
                    Some(format!("GitHub API error: {}", e.text)),
                );
            }
        },
        Action::Get => match github.get(&pat, &scope, &name) {
            Ok(secret) => Envelope::success(200, None, json!({ "secret": secret.to_json() })),
            Err(_) => Envelope::failure(
                404,
                "not_found",
                (family == Family::Repo).then(|| format!("Secret '{name}' not found")),
                default_data(action),
            ),
        },
        Action::Create | Action::Update => {
            let value = value.expect("decrypted above for writes");
            let ids = request.repo_ids.clone().unwrap_or_default();
            let selected = if request.visibility.as_deref() == Some("selected") {
                ids
            } else {
                Vec::new()
            };
            match github.put(
                &pat,
                &scope,
                &name,
                &value,
                request.visibility.as_deref(),
                &selected,
            ) {
                Ok(_) if action == Action::Create => Envelope::success(
                    201,
                    Some(format!("{} '{name}' created", family.noun())),
                    json!({ "created": true }),
                ),
                Ok(_) => Envelope::success(
                    200,
                    Some(format!("{} '{name}' updated", family.noun())),
                    json!({ "updated": true }),
                ),
                Err(_) => Envelope::failure(
                    500,
                    "github_api_error",
                    Some(format!(
                        "Failed to {} {}",
                        if action == Action::Create {
                            "create"
                        } else {
                            "update"
                        },
                        family.noun().to_lowercase()
                    )),
                    default_data(action),
                ),
            }
        }
        Action::Delete => match github.delete(&pat, &scope, &name) {
            Ok(()) => Envelope::success(
                200,
                match family {
                    Family::Repo => Some(format!("Secret '{name}' deleted")),
                    Family::Env => None,
                    Family::Org => Some(format!("Org secret '{name}' deleted")),
                },
                json!({ "deleted": true }),
            ),
            Err(_) => Envelope::failure(
                404,
                "not_found",
                match family {
                    Family::Repo => {
                        Some(format!("Secret '{name}' not found or could not be deleted"))
                    }
                    Family::Env => None,
                    Family::Org => Some(format!("Org secret '{name}' not found")),
                },
                default_data(action),
            ),
        },
    };
    // The best-effort `GET /rate_limit` after the operation: null when the PAT does not work.
    envelope.rate_limit = github.rate_limit(&pat);
    if action == Action::List {
        envelope.duration = 0.004;
    }
    envelope.into_response()
}

/// The GitHub Service's substring classification of an exception text (contract §3.4).
fn classify(error: &GhError) -> (u16, &'static str) {
    let text = &error.text;
    if text.contains("401") {
        (401, "invalid_pat")
    } else if text.contains("403") && text.to_lowercase().contains("rate limit") {
        (429, "rate_limited")
    } else if text.contains("403") {
        (403, "forbidden")
    } else if text.contains("404") {
        (404, "not_found")
    } else {
        (500, "github_api_error")
    }
}

impl Family {
    /// The noun of success and failure messages.
    fn noun(self) -> &'static str {
        match self {
            Family::Repo => "Secret",
            Family::Env => "Env secret",
            Family::Org => "Org secret",
        }
    }
}

/// The framework's checks, in its order: JSON types (400), then the typed fields (500).
fn validate(family: Family, action: Action, body: &[u8]) -> Result<RawRequest, Rejection> {
    let mut request = wire::parse_request(body)?;
    if let Err(BlobError::Malformed(message)) = crate::keys::check_blob(&request.encrypted_pat) {
        return Err(wire::blob_500(&message));
    }
    if family == Family::Org {
        request.org = wire::sanitise_owner(&request.org)?;
    } else {
        request.owner = wire::sanitise_owner(&request.owner)?;
        request.repo = wire::sanitise_repo(&request.repo)?;
    }
    if action != Action::List {
        wire::check_secret_name(&request.secret_name)?;
    }
    if let Some(environment) = &request.environment {
        request.environment = Some(wire::safe_text(environment));
    }
    Ok(request)
}

impl RawRequest {
    /// The scope the upstream actually writes to: an empty environment falls back to the
    /// repository, except on create (which always targets the environment).
    fn scope(&self, family: Family, action: Action) -> Scope {
        match family {
            Family::Repo => Scope::repo(&self.owner, &self.repo),
            Family::Org => Scope::org(&self.org),
            Family::Env => match self.environment.as_deref() {
                Some(env) if !env.is_empty() => Scope::environment(&self.owner, &self.repo, env),
                _ if action == Action::Create => Scope::environment(&self.owner, &self.repo, ""),
                _ => Scope::repo(&self.owner, &self.repo),
            },
        }
    }
}
