//! `history` and `history show ID`: what the service recorded, as a table or one execution's
//! steps.

use mgraph_deploy_api::{
    Envelope, ExecutionSummary, HistoryCursor, HistoryListData, HistoryOperation, MAX_HISTORY_PAGE,
    SecretState, SecretsStateData,
};

use super::args::PatSource;
use super::output::Output;
use super::session::Session;
use super::{Exit, Failure};
use crate::api::{Answer, DeployClient, Target};

/// `history`: the newest `limit` executions of `target`, a page at a time.
pub(super) async fn list(
    client: &DeployClient,
    out: Output,
    target: &Target,
    limit: u64,
    pat: &PatSource,
) -> Result<Exit, Failure> {
    let mut session = Session::open(client, pat, None).await?;
    let mut cursor: Option<HistoryCursor> = None;
    let mut shown: Vec<ExecutionSummary> = Vec::new();
    let answer = loop {
        let page = (limit - shown.len() as u64).min(MAX_HISTORY_PAGE);
        let mut answer = session
            .resealing(async |c, s| c.history(&s.pat, target, Some(page), cursor.clone()).await)
            .await?;
        let Some(data) = answer.body.data.as_mut() else {
            break answer;
        };
        shown.append(&mut data.executions);
        cursor = data.next_cursor.take();
        if cursor.is_none() || shown.len() as u64 >= limit {
            data.executions = std::mem::take(&mut shown);
            data.next_cursor = cursor;
            break answer;
        }
    };
    Ok(out.envelope(&answer, |_| Exit::Success, |data| table(target, data)))
}

/// `status`: each secret of `target` against what the service wrote there.
pub(super) async fn status(
    client: &DeployClient,
    out: Output,
    target: &Target,
    pat: &PatSource,
) -> Result<Exit, Failure> {
    let mut session = Session::open(client, pat, None).await?;
    let answer = session
        .resealing(async |c, s| c.secrets_state(&s.pat, target).await)
        .await?;
    Ok(out.envelope(&answer, |_| Exit::Success, |data| states(target, data)))
}

/// One line per secret: name, state, GitHub's time, when the service wrote it.
fn states(target: &Target, data: &SecretsStateData) {
    if data.secrets.is_empty() {
        eprintln!("no secrets in {target}");
        return;
    }
    let width = data
        .secrets
        .iter()
        .map(|s| s.name.as_str().len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    println!(
        "{:<width$}  {:<11}  {:<19}  WRITTEN BY THIS SERVICE (UTC)",
        "NAME", "STATE", "UPDATED (UTC)"
    );
    for s in &data.secrets {
        println!(
            "{:<width$}  {:<11}  {:<19}  {}",
            s.name.as_str(),
            s.state.as_str(),
            s.updated_at.as_deref().map_or_else(|| "-".to_owned(), when),
            s.written_at.as_deref().map_or_else(|| "-".to_owned(), when),
        );
    }
    let count = |state| data.secrets.iter().filter(|s| s.state == state).count();
    eprintln!(
        "{target}: {} in sync, {} drifted, {} missing, {} unconfirmed, {} unmanaged",
        count(SecretState::InSync),
        count(SecretState::Drifted),
        count(SecretState::Missing),
        count(SecretState::Unconfirmed),
        count(SecretState::Unmanaged),
    );
    if data.may_be_incomplete {
        eprintln!(
            "note: GitHub's list was a full first page: unmanaged secrets beyond it are not shown"
        );
    }
}

/// The executions, newest first, one line each.
fn table(target: &Target, data: &HistoryListData) {
    if data.executions.is_empty() {
        eprintln!("nothing recorded for {target}");
        return;
    }
    let caller_width = data
        .executions
        .iter()
        .map(|e| e.caller.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(0)
        .max("CALLER".len());
    println!(
        "{:<19}  {:<11}  {:>5}  {:>4}  {:>6}  {:>7}  {:<8}  {:<caller_width$}  ID",
        "STARTED (UTC)", "STATUS", "STEPS", "OK", "FAILED", "SKIPPED", "ROUTE", "CALLER"
    );
    for e in &data.executions {
        println!(
            "{:<19}  {:<11}  {:>5}  {:>4}  {:>6}  {:>7}  {:<8}  {:<caller_width$}  {}",
            when(&e.started_at),
            e.status.as_str(),
            e.total,
            e.completed,
            e.failed,
            e.skipped,
            route_word(&e.route),
            e.caller.as_deref().unwrap_or("-"),
            e.id
        );
    }
    let more = if data.next_cursor.is_some() {
        " (there are older ones: --limit N shows more)"
    } else {
        ""
    };
    eprintln!("{} execution(s) of {target}{more}", data.executions.len());
}

/// `history show ID`.
pub(super) async fn show(
    client: &DeployClient,
    out: Output,
    id: &str,
    pat: &PatSource,
) -> Result<Exit, Failure> {
    let mut session = Session::open(client, pat, None).await?;
    let answer: Answer<Envelope<_, HistoryOperation>> = session
        .resealing(async |c, s| c.execution(&s.pat, id).await)
        .await?;
    Ok(out.envelope(
        &answer,
        |_| Exit::Success,
        |data| {
            let e = &data.execution.summary;
            println!(
                "execution {}: {} ({} of {} step(s) ok, {} failed, {} skipped)",
                e.id,
                e.status.as_str(),
                e.completed,
                e.total,
                e.failed,
                e.skipped
            );
            println!(
                "  {} by {}",
                e.route,
                e.caller.as_deref().unwrap_or("a caller without an API key")
            );
            println!(
                "  started {}, finished {}",
                e.started_at,
                e.finished_at.as_deref().unwrap_or("-")
            );
            if !e.targets.is_empty() {
                println!("  targets {}", e.targets.join("; "));
            }
            let name_width = data
                .execution
                .steps
                .iter()
                .map(|s| s.secret_name.as_ref().map_or(1, |n| n.as_str().len()))
                .max()
                .unwrap_or(0);
            for s in &data.execution.steps {
                let scope = s
                    .scope
                    .map(|scope| format!(" ({scope})"))
                    .unwrap_or_default();
                let error = s
                    .error_type
                    .map(|t| format!("  {}", t.as_str()))
                    .unwrap_or_default();
                println!(
                    "{:>4}. {:<8} {:<7} {:<name_width$}  {}{scope}  {:.3} s, {} call(s){error}",
                    s.step,
                    s.outcome.as_str(),
                    s.operation.verb(),
                    s.secret_name.as_ref().map_or("-", |n| n.as_str()),
                    s.target.as_deref().unwrap_or("(target not read)"),
                    s.duration,
                    s.upstream_calls
                );
            }
        },
    ))
}

/// `2026-12-06T10:31:02.123Z` as `2026-12-06 10:31:02`.
fn when(rfc3339: &str) -> String {
    rfc3339
        .get(..19)
        .map_or_else(|| rfc3339.to_owned(), |s| s.replace('T', " "))
}

/// `POST /execute` as `execute`, `POST /operations/github/secrets/create` as `create`.
fn route_word(route: &str) -> &str {
    route.rsplit('/').next().unwrap_or(route)
}
