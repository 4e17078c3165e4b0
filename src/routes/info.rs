use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

pub const SERVICE_NAME: &str = "mgraph_ai_service_deploy";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn version() -> Json<Value> {
    Json(json!({ "version": VERSION }))
}

pub async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": SERVICE_NAME,
        "version": VERSION,
        "status": "operational",
        "environment": state.runtime.environment_name(),
    }))
}
