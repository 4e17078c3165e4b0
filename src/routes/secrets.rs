use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};

use crate::audit;
use crate::domain::{SecretName, Target};
use crate::history::OperationRun;
use crate::operations::{
    AbsentSecret, ErrorType, Failure, OperationKind, Outcome, parse_operation, target_of,
};
use crate::routes::{RespondBy, mark_failure, unreadable_body};
use crate::state::AppState;

/// `POST /operations/github/secrets/{kind}`. The body is JSON whatever its `Content-Type`.
/// A create, a delete and a refusal are recorded in the history (what the audit log has), by
/// the time the answer is due under a runtime limit ([`RespondBy`]).
pub async fn handle(
    kind: OperationKind,
    state: AppState,
    respond_by: Option<RespondBy>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let bytes = body.map_err(|rejection| {
        Failure::new(ErrorType::InvalidInput, unreadable_body(&rejection, &state))
    });
    let parsed = match &bytes {
        Ok(bytes) => parse_operation(kind, bytes).map_err(Failure::from),
        Err(failure) => Err(failure.clone()),
    };
    let mut outcome = match &parsed {
        Err(failure) => refused(kind, failure.clone()),
        Ok((pat, request)) => {
            // With a store, a write is remembered and a delete forgotten (`crate::converge`).
            let absent = AbsentSecret::IsNotFound;
            let outcome = match &state.history {
                Some(history) => {
                    let memory = history.memory();
                    memory
                        .run(&state.operations, pat, request, absent, None)
                        .await
                }
                None => state.operations.run(pat, request, absent).await,
            };
            match request.secret_name() {
                Some(name) if audit::is_audited(kind) => audited(request.target(), name, outcome),
                _ => outcome,
            }
        }
    };
    if let Some(history) = &state.history {
        // A refusal is recorded under the target its body names, when it names one validly.
        let named = match (&parsed, &bytes) {
            (Err(_), Ok(bytes)) => target_of(bytes),
            _ => None,
        };
        let run = match &parsed {
            Err(_) => Some(OperationRun::refused(
                &outcome,
                named.as_ref(),
                started.elapsed(),
            )),
            Ok((_, request)) if audit::is_audited(kind) => {
                Some(OperationRun::ran(&outcome, request, started.elapsed()))
            }
            Ok(_) => None,
        };
        if let Some(run) = run {
            let by = respond_by.map(RespondBy::record_by);
            let notes = history.record_operation(run, by).await;
            outcome.messages.extend(notes);
        }
    }
    respond(outcome, started.elapsed().as_secs_f64())
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
        mark_failure(&mut response, error_type, retry_after);
    }
    response
}
