//! `POST /operations/github/token/check`: a thin handler over [`Operations::check_token`].
//! POST, so that the sealed PAT never goes in a URL.
//!
//! [`Operations::check_token`]: crate::operations::Operations::check_token

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use mgraph_deploy_api::{TokenCheckBody, TokenOperation};

use crate::routes::{read, respond};
use crate::state::AppState;

/// Whose PAT it is, and whether it can read a target's secrets.
pub async fn check(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let body: TokenCheckBody = match read(&state, body) {
        Ok(body) => body,
        Err(failure) => {
            return respond::<(), _>(TokenOperation::Check, Err(failure), started, None);
        }
    };
    let checked = state
        .operations
        .check_token(&body.encrypted_pat, body.target.as_ref())
        .await;
    respond(
        TokenOperation::Check,
        checked.result,
        started,
        checked.rate_limit,
    )
}
