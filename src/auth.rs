//! This service's own API key: a header, or a cookie of the same name when the header is absent.
//! Compared in constant time. Only a few exact (method, path) pairs are exempt.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{Method, header};
use subtle::ConstantTimeEq;

use crate::audit;
use crate::config::{ApiKey, AuthPolicy};
use crate::operations::{ErrorType, OperationKind};
use crate::request_context;
use crate::routes::ApiError;

/// Routes anyone may call: exact paths, exact methods (`HEAD` only where it is a `GET` too), and
/// `GET` of the documentation page's own files under `/docs/`.
fn is_exempt(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("GET" | "HEAD", "/info/health") | ("GET", "/docs") | ("GET", "/openapi.json")
    ) || (method == Method::GET && path.starts_with("/docs/"))
}

/// Whether `request` may be served under `policy`: `Err` is the 401 to answer, its refusal
/// audited. A caller that presented the key is recorded in the request context, by the key's
/// name.
#[allow(clippy::result_large_err)] // the refusal is the answer, built once and returned
pub fn check(policy: &AuthPolicy, request: &Request) -> Result<(), Response> {
    if is_exempt(request.method(), request.uri().path()) {
        return Ok(());
    }
    let path = request.uri().path();
    let unauthorized = |message: &str| {
        audit::Event::refused(&audited_name(path), ErrorType::Unauthorized).record();
        Err(ApiError::at(path, ErrorType::Unauthorized, message).into_response())
    };
    match policy {
        AuthPolicy::Open => Ok(()),
        AuthPolicy::Locked => {
            tracing::error!(
                "refused a request: no API key is configured (FAST_API__AUTH__API_KEY__NAME / __VALUE are unset) and this service runs in AWS Lambda, so it fails closed"
            );
            unauthorized(
                "This service has no API key configured; it refuses requests until one is set",
            )
        }
        AuthPolicy::Required(key) => match presented(request, key) {
            None => unauthorized(&format!(
                "API key missing: send it in the `{}` header (or a cookie of that name)",
                key.name
            )),
            Some(given) if bool::from(given.ct_eq(key.value.as_bytes())) => {
                request_context::set_caller(&key.name);
                Ok(())
            }
            Some(_) => unauthorized("Invalid API key"),
        },
    }
}

/// What a refused request is called in the audit trail: its operation, or its path when that is
/// short and plain (a path could carry a blob).
fn audited_name(path: &str) -> String {
    if let Some(kind) = OperationKind::from_path(path) {
        return kind.name().to_owned();
    }
    if crate::routes::is_plain_path(path) {
        path.to_owned()
    } else {
        "<unrouted path>".to_owned()
    }
}

/// The key the caller presented: the header when present and non-empty, else the cookie.
fn presented<'r>(request: &'r Request, key: &ApiKey) -> Option<&'r [u8]> {
    if let Some(value) = request.headers().get(&key.name).filter(|v| !v.is_empty()) {
        return Some(value.as_bytes());
    }
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case(key.name.as_str()))
        .map(|(_, value)| value.as_bytes())
        .filter(|v| !v.is_empty())
}
