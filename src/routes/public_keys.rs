use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mgraph_deploy_api::PublicKeyInfo;

use crate::operations::Failure;
use crate::routes::ApiError;
use crate::state::AppState;

pub const ALGORITHM: &str = "NaCl/Curve25519/SealedBox";

/// `GET /public-keys/github`: the key clients seal to, from a short cache.
pub async fn github(State(state): State<AppState>) -> Response {
    match state.operations.upstream().public_key().await {
        Ok(key) => Json(PublicKeyInfo {
            public_key: key,
            algorithm: ALGORITHM.to_owned(),
            service: "github".to_owned(),
        })
        .into_response(),
        Err(e) => ApiError::from(Failure::from(e)).into_response(),
    }
}
