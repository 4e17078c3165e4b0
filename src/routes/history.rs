//! `POST /executions/list`, `/executions/get` and `/executions/secrets`: thin handlers over
//! [`crate::history`] and [`crate::converge`].
//! POST, so that the sealed PAT never goes in a URL.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use mgraph_deploy_api::{
    Envelope, HistoryGetBody, HistoryListBody, HistoryOperation, SecretsStateBody,
};
use serde::Serialize;

use crate::history::History;
use crate::operations::{ErrorType, Failure, parse_json};
use crate::routes::{mark_failure, unreadable_body};
use crate::state::AppState;

/// A target's executions, newest first.
pub async fn list(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let history = kept(&state)?;
        let body: HistoryListBody = read(&state, body)?;
        history
            .list(
                &state.operations,
                &body.encrypted_pat,
                &body.target,
                body.limit,
                body.cursor,
            )
            .await
    }
    .await;
    respond(HistoryOperation::List, result, started)
}

/// One execution and the steps the caller may see.
pub async fn get(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let history = kept(&state)?;
        let body: HistoryGetBody = read(&state, body)?;
        history
            .get(&state.operations, &body.encrypted_pat, &body.id)
            .await
    }
    .await;
    respond(HistoryOperation::Get, result, started)
}

/// Each secret of a target, against what this service wrote there.
pub async fn secrets(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let memory = kept(&state)?.memory();
        let body: SecretsStateBody = read(&state, body)?;
        memory
            .state(&state.operations, &body.encrypted_pat, &body.target)
            .await
    }
    .await;
    respond(HistoryOperation::Secrets, result, started)
}

fn kept(state: &AppState) -> Result<&History, Failure> {
    state.history.as_ref().ok_or_else(|| {
        Failure::new(
            ErrorType::HistoryUnavailable,
            "This service keeps no history: DEPLOY__STORE is `none` (or, in AWS Lambda, unset)",
        )
    })
}

fn read<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Failure> {
    let bytes = body.map_err(|rejection| {
        Failure::new(ErrorType::InvalidInput, unreadable_body(&rejection, state))
    })?;
    Ok(parse_json(&bytes)?)
}

/// The §1 envelope with its status.
fn respond<D: Serialize>(
    operation: HistoryOperation,
    result: Result<D, Failure>,
    started: Instant,
) -> Response {
    let (status, error_type, retry_after) = match &result {
        Ok(_) => (http::StatusCode::OK, None, None),
        Err(f) => (f.error_type.status(), Some(f.error_type), f.retry_after),
    };
    let (data, error) = match result {
        Ok(data) => (Some(data), String::new()),
        Err(f) => (None, f.message),
    };
    let envelope = Envelope {
        success: error_type.is_none(),
        operation: Some(operation),
        data,
        error,
        error_type,
        messages: Vec::new(),
        duration: started.elapsed().as_secs_f64(),
        rate_limit: None,
    };
    let mut response = (status, Json(envelope)).into_response();
    if let Some(error_type) = error_type {
        mark_failure(&mut response, error_type, retry_after);
    }
    response
}
