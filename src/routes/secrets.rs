use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use crate::audit;
use crate::domain::{SecretName, Target};
use crate::operations::{
    AbsentSecret, ErrorType, Failure, OperationKind, Outcome, parse_operation,
};
use crate::routes::{ResponseErrorType, unreadable_body};
use crate::state::AppState;

/// `POST /operations/github/secrets/{kind}`. The body is JSON whatever its `Content-Type`.
pub async fn handle(
    kind: OperationKind,
    state: AppState,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = match body {
        Err(rejection) => refused(
            kind,
            Failure::new(ErrorType::InvalidInput, unreadable_body(&rejection, &state)),
        ),
        Ok(bytes) => run(kind, &state, &bytes).await,
    };
    respond(outcome, started.elapsed().as_secs_f64())
}

async fn run(kind: OperationKind, state: &AppState, body: &[u8]) -> Outcome {
    match parse_operation(kind, body) {
        Err(e) => refused(kind, e.into()),
        Ok((pat, request)) => {
            let outcome = state
                .operations
                .run(&pat, &request, AbsentSecret::IsNotFound)
                .await;
            match request.secret_name() {
                Some(name) if audit::is_audited(kind) => audited(request.target(), name, outcome),
                _ => outcome,
            }
        }
    }
}

/// A request refused before any upstream call, with its audit event.
fn refused(kind: OperationKind, failure: Failure) -> Outcome {
    audit::Event::refused(kind.name(), failure.error_type).record();
    Outcome::rejected(kind, failure)
}

/// A create or delete that ran, with its audit event.
fn audited(target: &Target, secret_name: &SecretName, outcome: Outcome) -> Outcome {
    let (result, error_type) = audit::outcome_of(
        outcome.kind,
        outcome.result.as_ref().map_err(|f| f.error_type),
    );
    audit::Event {
        operation: outcome.kind.name(),
        step: None,
        target: Some(target),
        secret_name: Some(secret_name),
        outcome: result,
        error_type,
    }
    .record();
    outcome
}

/// The envelope with its status; `Retry-After` when a rate limit's reset is known.
pub fn respond(outcome: Outcome, duration: f64) -> Response {
    let status = outcome.status();
    let failed = outcome
        .failure()
        .map(|failure| (failure.error_type, failure.retry_after));
    let mut response = (status, Json(outcome.into_envelope(duration))).into_response();
    if let Some((error_type, retry_after)) = failed {
        response
            .extensions_mut()
            .insert(ResponseErrorType(error_type));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    response
}
