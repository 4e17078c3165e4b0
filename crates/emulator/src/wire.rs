//! The GitHub Service's request parsing and response shapes: the secrets envelope (contract
//! §3.4), the framework's 400/401/404/405/500 bodies (§1.1, §1.2) and its string types (§1.3, §3.8).

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::github::RateLimit;

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body.clone())).into_response()
}

/// The API-key middleware's 401: pretty-printed with a 4-space indent, keys in this order.
pub fn unauthorized(message: &str) -> Response {
    let body = json!({ "data": null, "error": null, "message": message, "status": "error" });
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    body.serialize(&mut ser)
        .expect("a JSON value always serialises");
    (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

/// A framework-level refusal (not an envelope): the status and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub body: Value,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// The framework's answer to a typed field failing its validator: a 500 with a Python traceback.
pub fn validator_500(type_name: &str, message: &str) -> Rejection {
    let error = format!("in {type_name}, {message}");
    Rejection {
        status: 500,
        body: json!({
            "detail": "An unexpected error occurred.",
            "error": error,
            "stack_trace": format!(
                "Traceback (most recent call last):\n  File \"/var/task/osbot_utils/type_safe/Type_Safe__Primitive.py\", line 31, in __new__\nValueError: {error}\n"
            ),
        }),
    }
}

/// The framework's 500 for an input blob that fails the check before decrypting.
pub fn blob_500(message: &str) -> Rejection {
    Rejection {
        status: 500,
        body: json!({
            "detail": "An unexpected error occurred.",
            "error": message,
            "stack_trace": format!(
                "Traceback (most recent call last):\n  File \"/var/task/mgraph_ai_service_github/schemas/encryption/Safe_Str__Encrypted_Value.py\", line 24, in __new__\nValueError: {message}\n"
            ),
        }),
    }
}

/// One pydantic error in the framework's 400 body.
pub fn pydantic_400(errors: Vec<Value>) -> Rejection {
    Rejection {
        status: 400,
        body: json!({ "detail": errors }),
    }
}

pub fn pydantic_error(kind: &str, loc: &[&str], msg: &str, input: &Value) -> Value {
    let mut loc_json = vec![json!("body")];
    loc_json.extend(loc.iter().map(|l| json!(l)));
    json!({ "type": kind, "loc": loc_json, "msg": msg, "input": input })
}

/// The secrets envelope. `status_code` always equals the HTTP status.
#[derive(Debug)]
pub struct Envelope {
    pub status: u16,
    pub messages: Vec<String>,
    pub errors: Vec<String>,
    pub error_type: &'static str,
    pub rate_limit: Option<RateLimit>,
    pub duration: f64,
    pub data: Value,
}

impl Envelope {
    pub fn success(status: u16, message: Option<String>, data: Value) -> Self {
        Self {
            status,
            messages: message.into_iter().collect(),
            errors: Vec::new(),
            error_type: "none",
            rate_limit: None,
            duration: 0.0,
            data,
        }
    }

    pub fn failure(
        status: u16,
        error_type: &'static str,
        error: Option<String>,
        data: Value,
    ) -> Self {
        Self {
            status,
            messages: Vec::new(),
            errors: error.into_iter().map(|e| safe_text(&e)).collect(),
            error_type,
            rate_limit: None,
            duration: 0.0,
            data,
        }
    }

    pub fn into_response(self) -> Response {
        let body = json!({
            "response_context": {
                "success": self.error_type == "none",
                "status_code": self.status,
                "duration": self.duration,
                "timestamp": crate::epoch_millis(),
                "messages": self.messages.iter().map(|m| safe_text(m)).collect::<Vec<_>>(),
                "errors": self.errors,
                "error_type": self.error_type,
                "rate_limit": self.rate_limit,
            },
            "response_data": self.data,
        });
        json_response(self.status, &body)
    }
}

/// `Safe_Str__Text`: characters outside its set become `_`; at most 4096 characters.
pub fn safe_text(text: &str) -> String {
    const EXTRA: &str = "_ ()[]-+=:;,.?*'\"";
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || EXTRA.contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(4096)
        .collect()
}

/// The fields of a secrets request, after the framework's JSON type checks.
#[derive(Debug, Default)]
pub struct RawRequest {
    /// The literal text `None` when absent or null (the upstream's quirk).
    pub encrypted_pat: String,
    pub owner: String,
    pub repo: String,
    pub org: String,
    pub secret_name: String,
    pub encrypted_value: String,
    pub environment: Option<String>,
    pub visibility: Option<String>,
    pub repo_ids: Option<Vec<u64>>,
}

/// Parses a body like FastAPI + pydantic would: JSON errors and wrong JSON types are 400s,
/// missing fields take defaults, unknown fields are ignored.
pub fn parse_request(body: &[u8]) -> Result<RawRequest, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        pydantic_400(vec![json!({
            "type": "json_invalid", "loc": ["body", e.column()], "msg": "JSON decode error",
            "input": {}, "ctx": { "error": e.to_string() } })])
    })?;
    let Value::Object(top) = value else {
        return Err(pydantic_400(vec![pydantic_error(
            "model_attributes_type",
            &[],
            "Input should be a valid dictionary or object to extract fields from",
            &value,
        )]));
    };
    let mut errors = Vec::new();
    let empty = Map::new();
    let data = match top.get("request_data") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(pydantic_error(
                "model_type",
                &["request_data"],
                "Input should be a valid dictionary",
                other,
            ));
            &empty
        }
    };
    let mut string = |map: &Map<String, Value>, loc: &[&str], key: &str| -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                let mut path = loc.to_vec();
                path.push(key);
                errors.push(pydantic_error(
                    "string_type",
                    &path,
                    "Input should be a valid string",
                    other,
                ));
                None
            }
        }
    };
    let rd = ["request_data"];
    let mut request = RawRequest {
        encrypted_pat: string(&top, &[], "encrypted_pat").unwrap_or_else(|| "None".to_owned()),
        owner: string(data, &rd, "owner").unwrap_or_default(),
        repo: string(data, &rd, "repo").unwrap_or_default(),
        org: string(data, &rd, "org").unwrap_or_default(),
        secret_name: string(data, &rd, "secret_name").unwrap_or_default(),
        encrypted_value: string(data, &rd, "encrypted_value").unwrap_or_else(|| "None".to_owned()),
        environment: string(data, &rd, "environment"),
        visibility: string(data, &rd, "visibility"),
        repo_ids: None,
    };
    if let Some(v) = &request.visibility
        && !matches!(v.as_str(), "all" | "private" | "selected")
    {
        errors.push(json!({
            "type": "literal_error", "loc": ["body", "request_data", "visibility"],
            "msg": "Input should be 'all', 'private' or 'selected'", "input": v,
            "ctx": { "expected": "'all', 'private' or 'selected'" } }));
    }
    match data.get("repo_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
            match ids {
                Some(ids) => request.repo_ids = Some(ids),
                None => errors.push(pydantic_error(
                    "int_parsing",
                    &["request_data", "repo_ids"],
                    "Input should be a valid integer",
                    &data["repo_ids"],
                )),
            }
        }
        Some(other) => errors.push(pydantic_error(
            "list_type",
            &["request_data", "repo_ids"],
            "Input should be a valid list",
            other,
        )),
    }
    if errors.is_empty() {
        Ok(request)
    } else {
        Err(pydantic_400(errors))
    }
}

/// `Safe_Str__GitHub__Secret_Name` (strict): the empty string is accepted.
pub fn check_secret_name(name: &str) -> Result<(), Rejection> {
    const TYPE: &str = "Safe_Str__GitHub__Secret_Name";
    if name.len() > 255 {
        return Err(validator_500(
            TYPE,
            &format!(
                "value exceeds maximum length of 255 characters (was {})",
                name.len()
            ),
        ));
    }
    if name.is_empty() {
        return Ok(());
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(validator_500(
            TYPE,
            "value does not match required pattern: ^[a-zA-Z_][a-zA-Z0-9_]*$",
        ));
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(validator_500(
            TYPE,
            &format!("secret names cannot start with 'GITHUB_' prefix (reserved): {name}"),
        ));
    }
    Ok(())
}

/// `Safe_Str__GitHub__Repo_Owner`: trims, replaces characters outside `[A-Za-z0-9-]` with `_`,
/// then rejects hyphen and length problems.
pub fn sanitise_owner(owner: &str) -> Result<String, Rejection> {
    const TYPE: &str = "Safe_Str__GitHub__Repo_Owner";
    let value: String = owner
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if value.chars().count() > 39 {
        return Err(validator_500(
            TYPE,
            &format!(
                "value exceeds maximum length of 39 characters (was {})",
                value.chars().count()
            ),
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(validator_500(
            TYPE,
            &format!("gitHub owner name cannot start or end with a hyphen: {value}"),
        ));
    }
    if value.contains("--") {
        return Err(validator_500(
            TYPE,
            &format!("gitHub owner name cannot contain consecutive hyphens: {value}"),
        ));
    }
    if !value.is_empty() && value.chars().all(|c| c == '_') {
        return Err(validator_500(
            TYPE,
            "value cannot consist only of underscores",
        ));
    }
    Ok(value)
}

/// `Safe_Str__GitHub__Repo_Name`: trims, replaces characters outside `[A-Za-z0-9._-]` with `_`.
pub fn sanitise_repo(repo: &str) -> Result<String, Rejection> {
    const TYPE: &str = "Safe_Str__GitHub__Repo_Name";
    let value: String = repo
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if value.chars().count() > 100 {
        return Err(validator_500(
            TYPE,
            &format!(
                "value exceeds maximum length of 100 characters (was {})",
                value.chars().count()
            ),
        ));
    }
    if value == "." || value == ".." {
        return Err(validator_500(
            TYPE,
            &format!("repository name cannot be '{value}'"),
        ));
    }
    if !value.is_empty() && value.chars().all(|c| c == '_') {
        return Err(validator_500(
            TYPE,
            "value cannot consist only of underscores",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_replaces_slashes_and_newlines_with_underscores() {
        assert_eq!(
            safe_text("401 Client Error: for url: https://api.github.com/x\n"),
            "401 Client Error: for url: https:__api.github.com_x_"
        );
    }

    #[test]
    fn owners_are_rewritten_not_rejected_unless_hyphens_are_misplaced() {
        assert_eq!(sanitise_owner(" my.org ").unwrap(), "my_org");
        assert!(sanitise_owner("-x").is_err());
        assert!(sanitise_owner("a--b").is_err());
        assert_eq!(sanitise_repo("my repo.rs").unwrap(), "my_repo.rs");
        assert!(sanitise_repo("..").is_err());
    }

    #[test]
    fn secret_names_follow_the_strict_type_and_the_reserved_prefix_in_any_case() {
        assert!(check_secret_name("API_KEY").is_ok());
        assert!(check_secret_name("").is_ok());
        assert!(check_secret_name("github_x").is_err());
        assert!(check_secret_name("1X").is_err());
        assert!(check_secret_name("my-secret").is_err());
    }

    #[test]
    fn wrong_json_types_are_400s_and_absent_blobs_read_as_the_text_none() {
        assert!(parse_request(br#"{"request_data": {"owner": 123}}"#).is_err());
        assert!(parse_request(br#"{"request_data": {"visibility": "public"}}"#).is_err());
        let r = parse_request(br#"{"request_data": {"owner": "o", "extra": 1}}"#).unwrap();
        assert_eq!(r.encrypted_pat, "None");
        assert_eq!(r.owner, "o");
    }
}
