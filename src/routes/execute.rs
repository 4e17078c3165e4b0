//! `POST /execute` and `POST /execute/plan`: thin handlers over [`crate::workflow`].

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;

use crate::audit;
use crate::operations::ErrorType;
use crate::routes::{RespondBy, unreadable_body};
use crate::state::AppState;
use crate::workflow::{self, Parsed, Plan, PlanError};

fn parsed(state: &AppState, body: Result<Bytes, BytesRejection>) -> Parsed {
    match body {
        Ok(bytes) => workflow::parse(&bytes, state.workflow.defaults),
        Err(rejection) => {
            let mut parsed = workflow::parse(b"{}", state.workflow.defaults);
            parsed.errors = vec![PlanError {
                step: None,
                field: String::new(),
                message: unreadable_body(&rejection, state),
            }];
            parsed
        }
    }
}

fn invalid(plan: Plan) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(plan)).into_response()
}

/// Plans a workflow: 200 with the plan when it is valid, 422 with its errors when not.
pub async fn plan(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let parsed = parsed(&state, body);
    let mut plan = workflow::plan(&parsed);
    match parsed.into_workflow() {
        Err(_) => invalid(plan),
        Ok(wf) => {
            if wf.options.check_state {
                workflow::check_state(&state.operations, &wf.pat, &wf.steps, &mut plan).await;
            }
            Json(plan).into_response()
        }
    }
}

/// Runs a valid workflow: 200 when every step completed, 207 otherwise; 422 (nothing run) when invalid.
/// Under a runtime limit ([`RespondBy`]) the report is sent by then, whatever is still running.
pub async fn execute(
    State(state): State<AppState>,
    respond_by: Option<Extension<RespondBy>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match parsed(&state, body).into_workflow() {
        Err(parsed) => {
            audit::Event::refused("workflow", ErrorType::InvalidInput).record();
            invalid(workflow::plan(&parsed))
        }
        Ok(wf) => {
            let cutoff = respond_by.map(|Extension(RespondBy(at))| at);
            let report =
                workflow::execute(&state.operations, &wf, state.workflow.retry, cutoff).await;
            (workflow::report_status(&report), Json(report)).into_response()
        }
    }
}
