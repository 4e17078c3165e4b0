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
        Ok(bytes) => {
            let mut parsed = workflow::parse(&bytes, state.workflow.defaults);
            workflow::prune::needs_store(&mut parsed, state.history.is_some());
            parsed
        }
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
            let memory = state.history.as_ref().map(|h| h.memory());
            let ops = &state.operations;
            if wf.options.check_state {
                let force = wf.options.force;
                workflow::check_state(ops, memory.as_ref(), force, &wf.pat, &wf.steps, &mut plan)
                    .await;
            }
            if let (true, Some(memory)) = (wf.options.prune, &memory) {
                workflow::prune::plan(ops, memory, &wf.pat, &wf.steps, &mut plan).await;
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
            let mut plan = workflow::plan(&parsed);
            if let Some(history) = &state.history {
                let total = parsed.total_operations as u64;
                let by = respond_by.map(|Extension(respond_by)| respond_by.record_by());
                let notes = history
                    .record_refused_workflow(&parsed.steps, total, by)
                    .await;
                plan.warnings.extend(notes);
            }
            invalid(plan)
        }
        Ok(mut wf) => {
            let respond_by = respond_by.map(|Extension(respond_by)| respond_by);
            // The prune's deletes run after the workflow's own steps in number.
            let named = wf.steps.len();
            let mut pruning_notes = Vec::new();
            if let (true, Some(history)) = (wf.options.prune, &state.history) {
                let (ops, memory) = (&state.operations, history.memory());
                match workflow::prune::prune(ops, &memory, &wf.pat, &wf.steps).await {
                    Ok(pruning) => {
                        wf.steps.extend(pruning.steps);
                        pruning_notes = pruning.notes;
                    }
                    Err(failure) => {
                        pruning_notes = vec![format!("Nothing was pruned: {}", failure.message)];
                    }
                }
            }
            let cutoff = respond_by.map(|RespondBy(at)| at);
            let retry = state.workflow.retry;
            let report = match &state.history {
                None => workflow::execute(&state.operations, None, &wf, retry, cutoff, &()).await,
                Some(history) => {
                    let runs_for = cutoff.map_or(wf.options.deadline, |cutoff| {
                        cutoff
                            .saturating_duration_since(tokio::time::Instant::now())
                            .min(wf.options.deadline)
                    });
                    let recording = history.start_workflow(&wf.steps, runs_for);
                    let memory = history.memory();
                    let mut report = workflow::execute(
                        &state.operations,
                        Some(&memory),
                        &wf,
                        retry,
                        cutoff,
                        &recording,
                    )
                    .await;
                    let notes = recording
                        .finish(&report, respond_by.map(RespondBy::record_by))
                        .await;
                    report.messages.extend(notes);
                    report
                }
            };
            let mut report = report;
            report.messages.extend(pruning_notes);
            for result in report.results.iter_mut().skip(named) {
                result.action = Some(workflow::Action::Prune);
            }
            (workflow::report_status(&report), Json(report)).into_response()
        }
    }
}
