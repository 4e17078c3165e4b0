use axum::Json;
use axum::extract::State;
use mgraph_deploy_api::{Health, HistoryStatus, ServiceStatus, Version};

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
        history: Some(match &state.history {
            None => HistoryStatus {
                store: "none".to_owned(),
                state: "off".to_owned(),
            },
            Some(history) => HistoryStatus {
                store: history.backend().to_owned(),
                state: if history.is_degraded() {
                    "degraded"
                } else {
                    "ok"
                }
                .to_owned(),
            },
        }),
    })
}
