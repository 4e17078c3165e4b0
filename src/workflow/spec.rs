//! A workflow file, parsed and validated as a whole: every problem is reported (with its step
//! number and field), so one round trip fixes a file.

use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{SealedPat, SecretName, Target, present};
use mgraph_deploy_api::{WorkflowOperation, WorkflowOptions};

use crate::operations::{InvalidInput, OperationKind, Request, parse_json, parse_value};

/// The most operations one workflow takes.
pub const MAX_OPERATIONS: usize = 256;
pub const MAX_CONCURRENCY: u64 = 16;
pub const MAX_DEADLINE_SECONDS: u64 = 840;

pub use mgraph_deploy_api::{OnError, PlanError};

/// Workflow options, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub concurrency: usize,
    pub on_error: OnError,
    pub deadline: Duration,
    /// Plan only: read the current secrets to refine actions.
    pub check_state: bool,
    /// Write every create, even one whose fingerprint says it is unchanged.
    pub force: bool,
    /// Delete what this service wrote to the workflow's targets that it no longer names.
    pub prune: bool,
}

/// Defaults for options a workflow leaves out (from the service's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    pub concurrency: usize,
    pub deadline: Duration,
}

/// One validated operation of a workflow.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in the file.
    pub number: usize,
    pub request: Request,
}

impl Step {
    pub fn kind(&self) -> OperationKind {
        self.request.kind()
    }

    pub fn target(&self) -> &Target {
        self.request.target()
    }

    pub fn secret_name(&self) -> Option<&SecretName> {
        self.request.secret_name()
    }
}

/// A valid workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub pat: SealedPat,
    pub options: Options,
    pub steps: Vec<Step>,
}

/// What parsing found: the steps that are valid, and every problem.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub pat: Option<SealedPat>,
    pub options: Options,
    pub steps: Vec<Step>,
    pub total_operations: usize,
    pub errors: Vec<PlanError>,
}

impl Parsed {
    /// The workflow, when there was no problem at all.
    pub fn into_workflow(self) -> Result<Workflow, Parsed> {
        match (&self.pat, self.errors.is_empty()) {
            (Some(pat), true) => Ok(Workflow {
                pat: pat.clone(),
                options: self.options,
                steps: self.steps,
            }),
            _ => Err(self),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    #[serde(default, deserialize_with = "present")]
    credentials: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    target: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    options: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    operations: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    github_pat: SealedPat,
}

fn workflow_error(e: InvalidInput, prefix: &str) -> PlanError {
    let field = match (prefix, e.field.as_str()) {
        (p, "") => p.to_owned(),
        ("", f) => f.to_owned(),
        (p, f) if f.starts_with('[') => format!("{p}{f}"),
        (p, f) => format!("{p}.{f}"),
    };
    PlanError {
        step: None,
        field,
        message: e.message,
    }
}

fn step_error(step: usize, e: InvalidInput) -> PlanError {
    PlanError {
        step: Some(step),
        field: e.field,
        message: e.message,
    }
}

/// Parses a workflow body. Never fails outright: problems are collected in [`Parsed::errors`].
pub fn parse(body: &[u8], defaults: Defaults) -> Parsed {
    let mut parsed = Parsed {
        pat: None,
        options: Options {
            concurrency: defaults.concurrency,
            on_error: OnError::Continue,
            deadline: defaults.deadline,
            check_state: false,
            force: false,
            prune: false,
        },
        steps: Vec::new(),
        total_operations: 0,
        errors: Vec::new(),
    };
    let raw: RawWorkflow = match parse_json(body) {
        Ok(raw) => raw,
        Err(e) => {
            parsed.errors.push(workflow_error(e, ""));
            return parsed;
        }
    };
    let mut errors = Vec::new();

    match raw.credentials {
        None => errors.push(workflow_error(
            InvalidInput::new("", "is required: {\"github_pat\": \"<sealed PAT>\"}"),
            "credentials",
        )),
        Some(value) => match parse_value::<Credentials>(value) {
            Ok(c) => parsed.pat = Some(c.github_pat),
            Err(e) => errors.push(workflow_error(e, "credentials")),
        },
    }

    let default_target = match raw.target {
        None => None,
        Some(value) => match parse_value::<Target>(value) {
            Ok(target) => Some(target),
            Err(e) => {
                errors.push(workflow_error(e, "target"));
                None
            }
        },
    };
    let default_target_invalid = errors.iter().any(|e| e.field.starts_with("target"));

    if let Some(value) = raw.options {
        match parse_value::<WorkflowOptions>(value) {
            Ok(o) => parsed.options = options(o, parsed.options, &mut errors),
            Err(e) => errors.push(workflow_error(e, "options")),
        }
    }

    let operations = match raw.operations {
        None => {
            errors.push(workflow_error(
                InvalidInput::new("", "is required: a list of operations"),
                "operations",
            ));
            Vec::new()
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(workflow_error(
                InvalidInput::new("", "must be a JSON array of operations"),
                "operations",
            ));
            Vec::new()
        }
    };
    parsed.total_operations = operations.len();
    if operations.len() > MAX_OPERATIONS {
        errors.push(workflow_error(
            InvalidInput::new(
                "",
                format!(
                    "has {} operations; a workflow takes at most {MAX_OPERATIONS}: split it",
                    operations.len()
                ),
            ),
            "operations",
        ));
    } else if operations.is_empty() && !errors.iter().any(|e| e.field == "operations") {
        errors.push(workflow_error(
            InvalidInput::new("", "is empty: list at least one operation"),
            "operations",
        ));
    } else {
        for (index, value) in operations.into_iter().enumerate() {
            let number = index + 1;
            match step(
                number,
                value,
                default_target.as_ref(),
                default_target_invalid,
            ) {
                Ok(step) => parsed.steps.push(step),
                Err(Some(e)) => errors.push(step_error(number, e)),
                Err(None) => {} // only the default target is wrong; reported once above
            }
        }
    }
    parsed.errors = errors;
    parsed
}

fn options(raw: WorkflowOptions, mut options: Options, errors: &mut Vec<PlanError>) -> Options {
    let mut fail = |field: &str, message: String| {
        errors.push(PlanError {
            step: None,
            field: format!("options.{field}"),
            message,
        });
    };
    if let Some(c) = raw.concurrency {
        if (1..=MAX_CONCURRENCY).contains(&c) {
            options.concurrency = c as usize;
        } else {
            fail(
                "concurrency",
                format!("must be from 1 to {MAX_CONCURRENCY}"),
            );
        }
    }
    if let Some(d) = raw.deadline_seconds {
        if (1..=MAX_DEADLINE_SECONDS).contains(&d) {
            options.deadline = Duration::from_secs(d);
        } else {
            fail(
                "deadline_seconds",
                format!("must be from 1 to {MAX_DEADLINE_SECONDS}"),
            );
        }
    }
    if let Some(on_error) = raw.on_error {
        options.on_error = on_error;
    }
    if let Some(check) = raw.check_state {
        options.check_state = check;
    }
    if let Some(force) = raw.force {
        options.force = force;
    }
    if let Some(prune) = raw.prune {
        options.prune = prune;
    }
    options
}

/// Each operation's member names, read once from its type.
static FIELDS: LazyLock<Vec<(OperationKind, Vec<String>)>> = LazyLock::new(|| {
    OperationKind::ALL
        .into_iter()
        .map(|kind| (kind, WorkflowOperation::field_names(kind)))
        .collect()
});

/// Validates one operation. `Err(None)`: it is fine except that it needs the (invalid) default target.
///
/// A step is an operation's fields and its `type`: the fields are read by [`Request::parse`],
/// as an operation route's body is, once the default target is put in when the step has none.
fn step(
    number: usize,
    value: Value,
    default_target: Option<&Target>,
    default_target_invalid: bool,
) -> Result<Step, Option<InvalidInput>> {
    let Value::Object(mut fields) = value else {
        return Err(Some(InvalidInput::new("", "must be a JSON object")));
    };
    if fields.contains_key("encrypted_pat") {
        return Err(Some(InvalidInput::new(
            "encrypted_pat",
            "is not a field of an operation: the sealed PAT goes once in credentials.github_pat",
        )));
    }
    let names = || {
        let names: Vec<&str> = OperationKind::ALL.iter().map(|k| k.name()).collect();
        InvalidInput::new("type", format!("must be one of {}", names.join(", ")))
    };
    let kind = match fields.remove("type") {
        None => return Err(Some(InvalidInput::new("type", "is required"))),
        Some(Value::String(name)) => OperationKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| Some(names()))?,
        Some(_) => return Err(Some(names())),
    };
    // A field another operation takes is named as such, before the grammar calls it unknown.
    let own = |key: &String| FIELDS.iter().any(|(k, f)| *k == kind && f.contains(key));
    let anyone = |key: &String| FIELDS.iter().any(|(_, f)| f.contains(key));
    if let Some(unused) = fields.keys().find(|key| !own(key) && anyone(key)) {
        return Err(Some(InvalidInput::new(
            unused.as_str(),
            format!("is not used by {}", kind.name()),
        )));
    }
    if !fields.contains_key("target") {
        match default_target {
            Some(target) => {
                let target = serde_json::to_value(target).expect("a target is plain JSON");
                fields.insert("target".to_owned(), target);
            }
            // The step's own fields are still checked, and their errors come first.
            None => {
                return Err(match Request::parse(kind, Value::Object(fields)) {
                    Err(e) if !(e.field == "target" && e.message == "is required") => Some(e),
                    _ if default_target_invalid => None,
                    _ => Some(InvalidInput::new(
                        "target",
                        "is required: the workflow has no default target",
                    )),
                });
            }
        }
    }
    let request = Request::parse(kind, Value::Object(fields)).map_err(Some)?;
    Ok(Step { number, request })
}
