//! What the CLI prints: for people on stdout (results) and stderr (progress, notes, errors), or
//! (`--json`) one JSON document on stdout.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use mgraph_deploy_api::{Envelope, ErrorType, Plan, PresenceScope, Report, Status};

use super::Exit;
use crate::api::{Answer, Execution};

/// Human or JSON output. Progress and notes go to stderr.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub(super) json: bool,
    /// The request fields the service's messages name are shown as the flags that set them:
    /// not for `run`, whose user wrote the fields.
    pub(super) flags: bool,
}

impl Output {
    pub(super) fn print_json(&self, value: &impl serde::Serialize) {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut stdout, value);
        let _ = writeln!(stdout);
    }

    pub(super) fn progress(&self, message: std::fmt::Arguments<'_>) {
        if !self.json {
            eprintln!("{message}");
        }
    }

    /// A plan's warnings, on stderr.
    pub(super) fn warnings(&self, warnings: &[String]) {
        if !self.json {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
        }
    }

    pub(super) fn note(&self, message: &str) {
        eprintln!("note: {message}");
    }

    /// A line on stderr every few seconds while a workflow runs (terminals only).
    pub(super) fn ticker(&self, operations: usize) -> Option<Ticker> {
        if self.json {
            return None;
        }
        eprintln!("running {operations} operation(s)…");
        std::io::stderr().is_terminal().then(|| {
            let started = Instant::now();
            Ticker(tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(2));
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("  … still running ({}s)", started.elapsed().as_secs());
                }
            }))
        })
    }

    /// Prints an operation envelope: its data by `print` (or as JSON), and exits by `exit_of`
    /// on success (`exists` and `presence` answer 1 for false and missing).
    pub(super) fn envelope<D: serde::Serialize, O: serde::Serialize>(
        &self,
        envelope: &Answer<Envelope<D, O>>,
        exit_of: impl FnOnce(&D) -> Exit,
        print: impl FnOnce(&D),
    ) -> Exit {
        let exit = match (&envelope.data, envelope.success) {
            (Some(data), true) => {
                if !self.json {
                    print(data);
                }
                exit_of(data)
            }
            _ => {
                if !self.json {
                    eprintln!(
                        "error: {} ({}, HTTP {})",
                        self.words(&envelope.error),
                        envelope.error_type.map_or("unknown", ErrorType::as_str),
                        envelope.status
                    );
                }
                match envelope.error_type {
                    Some(ErrorType::InvalidInput) => Exit::InvalidInput,
                    Some(ErrorType::Unauthorized) => Exit::Unreachable,
                    _ => Exit::OperationFailed,
                }
            }
        };
        if self.json {
            self.print_json(&envelope.body);
        } else {
            for message in &envelope.messages {
                eprintln!("  {}", self.words(message));
            }
        }
        exit
    }

    pub(super) fn plan(&self, plan: &Plan) -> Exit {
        if self.json {
            self.print_json(plan);
        } else {
            for step in &plan.plan {
                println!(
                    "{:>3}. {:<7} {:<40} {} ({})",
                    step.step,
                    step.action.as_str(),
                    step.secret_name.as_ref().map_or("-", |n| n.as_str()),
                    step.target,
                    step.scope
                );
            }
            self.warnings(&plan.warnings);
            print_plan_errors(plan);
        }
        let failing = plan.will_fail.len()
            + plan
                .unreadable
                .iter()
                .filter(|u| {
                    matches!(
                        u.error_type,
                        ErrorType::InvalidPat | ErrorType::Forbidden | ErrorType::NotFound
                    )
                })
                .count();
        if !plan.valid {
            Exit::InvalidInput
        } else if failing > 0 {
            if !self.json {
                eprintln!(
                    "the plan says some steps will fail (see the warnings); nothing was written"
                );
            }
            Exit::OperationFailed
        } else {
            Exit::Success
        }
    }

    pub(super) fn execution(&self, execution: &Execution) -> Exit {
        match execution {
            Execution::Invalid(plan) => {
                if self.json {
                    self.print_json(&plan.body);
                } else {
                    eprintln!("the workflow is invalid; nothing was written");
                    print_plan_errors(plan);
                }
                Exit::InvalidInput
            }
            Execution::Ran(report) => {
                if self.json {
                    self.print_json(&report.body);
                } else {
                    print_report(report, *self);
                }
                if report.success {
                    Exit::Success
                } else {
                    Exit::OperationFailed
                }
            }
        }
    }
}

pub(super) fn scope_word(scope: PresenceScope) -> &'static str {
    match scope {
        PresenceScope::Environment => "environment",
        PresenceScope::Repo => "repo",
        PresenceScope::Builtin => "builtin",
    }
}

pub(super) fn print_plan_errors(plan: &Plan) {
    for e in &plan.errors {
        match e.step {
            Some(step) => eprintln!("error: step {step}, {}: {}", e.field, e.message),
            None => eprintln!("error: {}: {}", e.field, e.message),
        }
    }
}

pub(super) fn print_report(report: &Answer<Report>, out: Output) {
    for r in &report.results {
        let mark = match r.status {
            Status::Completed => "ok  ",
            Status::Skipped => "skip",
            Status::Failed => "FAIL",
        };
        let tail = match (&r.error, &r.error_type) {
            (Some(error), Some(kind)) => format!("  {kind}: {}", out.words(error)),
            (Some(error), None) => format!("  {}", out.words(error)),
            (None, _) => String::new(),
        };
        // The scope written: `repo` when env_fallback applied.
        let scope = if r.data["env_fallback"] == true {
            format!("{}: the environment does not exist, env fallback", r.scope)
        } else {
            r.scope.to_string()
        };
        println!(
            "{mark} {:>3}. {:<22} {:<36} {} ({scope}) {:.2}s, {} attempt(s){tail}",
            r.step,
            r.operation.name(),
            r.secret_name.as_ref().map_or("-", |n| n.as_str()),
            r.target,
            r.duration,
            r.attempts,
        );
    }
    eprintln!(
        "{} of {} completed, {} failed, {} skipped in {:.2}s (HTTP {})",
        report.completed,
        report.total_operations,
        report.failed,
        report.skipped,
        report.duration,
        report.status
    );
    if let Some(rate) = &report.rate_limit {
        let known = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        eprintln!(
            "GitHub rate limit: {} of {} left",
            known(rate.remaining),
            known(rate.limit)
        );
    }
}

/// The service names its request fields; a CLI user knows the flags that set them.
const FIELDS_AS_FLAGS: [(&str, &str); 3] = [
    ("`repo_ids`", "`--repo-ids`"),
    ("`visibility`", "`-v/--visibility`"),
    ("(env_fallback: repo)", "(--env-fallback)"),
];

impl Output {
    /// A message of the service, with the request fields it names written as the CLI's flags
    /// when the command has them.
    fn words(&self, message: &str) -> String {
        if !self.flags {
            return message.to_owned();
        }
        FIELDS_AS_FLAGS
            .iter()
            .fold(message.to_owned(), |text, (field, flag)| {
                text.replace(field, flag)
            })
    }
}

/// Stops the progress ticker when dropped.
pub(super) struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}
