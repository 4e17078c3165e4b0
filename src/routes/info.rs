use axum::Json;
use axum::extract::State;
use mgraph_deploy_api::{Health, ServiceStatus, Version};

use crate::state::AppState;

pub const SERVICE_NAME: &str = "mgraph_ai_service_deploy";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

pub async fn version() -> Json<Version> {
    Json(Version {
        version: VERSION.to_owned(),
    })
}

pub async fn status(State(state): State<AppState>) -> Json<ServiceStatus> {
    Json(ServiceStatus {
        name: SERVICE_NAME.to_owned(),
        version: VERSION.to_owned(),
        status: "operational".to_owned(),
        environment: state.runtime.environment_name().to_owned(),
    })
}
