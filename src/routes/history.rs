//! `POST /executions/list`, `/executions/get` and `/executions/secrets`: thin handlers over
//! [`crate::history`] and [`crate::converge`].
//! POST, so that the sealed PAT never goes in a URL.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use mgraph_deploy_api::{HistoryGetBody, HistoryListBody, HistoryOperation, SecretsStateBody};

use crate::history::History;
use crate::operations::{ErrorType, Failure};
use crate::routes::{read, respond};
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
    respond(HistoryOperation::List, result, started, None)
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
    respond(HistoryOperation::Get, result, started, None)
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
    respond(HistoryOperation::Secrets, result, started, None)
}

fn kept(state: &AppState) -> Result<&History, Failure> {
    state.history.as_ref().ok_or_else(|| {
        Failure::new(
            ErrorType::HistoryUnavailable,
            "This service keeps no history: DEPLOY__STORE is `none` (or, in AWS Lambda, unset)",
        )
    })
}
