//! What a repository's GitHub Actions workflows need: every `secrets.NAME` their jobs reference,
//! with the environment each job runs in, read with a YAML parser from `.github/workflows/`.
//!
//! - A job's references are looked for in expressions: `${{ … }}` anywhere, and whole `if:`
//!   values. `secrets.NAME`, `secrets['NAME']` and `secrets["NAME"]` are read; names are compared
//!   upper-cased, as GitHub stores them. `GITHUB_TOKEN` is built in.
//! - `environment: NAME` or `environment: {name: NAME}` puts the job's references in that
//!   environment (whose secrets shadow the repository's).
//! - A workflow triggered only by `workflow_call` is read through its callers: a job calling a
//!   local one (`uses: ./.github/workflows/x.yml`) with `secrets: inherit` needs what it
//!   references; with a `secrets:` mapping, the mapping's values are what the caller needs, and a
//!   name the called workflow uses but the mapping does not pass is reported as not passed. A
//!   secret the called workflow declares with `required: false` (`on.workflow_call.secrets`) is
//!   optional: missing or not passed, it is reported as such and never fails the check.
//! - What cannot be known from the files (a remote reusable workflow, an environment or secret
//!   name computed by an expression) is reported as a note.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// Built in: GitHub provides it to every run.
pub const BUILTIN: &str = "GITHUB_TOKEN";

/// One reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Upper-cased.
    pub name: String,
    /// The job's environment; `None` for the repository.
    pub environment: Option<String>,
    /// `deploy.yml: deploy`.
    pub place: String,
    /// Read through a call of a workflow that declares it `required: false`.
    pub optional: bool,
}

/// A name a called workflow uses that its caller's `secrets:` mapping does not pass: it is empty
/// in that run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPassed {
    pub name: String,
    /// Where the called workflow uses it.
    pub place: String,
    /// The calling job.
    pub caller: String,
    /// The called workflow declares it `required: false`.
    pub optional: bool,
}

/// What the workflow files need.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<String>,
    pub references: Vec<Reference>,
    pub not_passed: Vec<NotPassed>,
    pub notes: Vec<String>,
}

impl Scan {
    /// The names referenced, by environment (`None` first), each once, sorted.
    pub fn by_environment(&self) -> BTreeMap<Option<String>, Vec<String>> {
        let mut out: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
        for r in &self.references {
            let names = out.entry(r.environment.clone()).or_default();
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        out.values_mut().for_each(|names| names.sort());
        out
    }

    /// Whether every reference to `name` in `environment` is optional.
    pub fn is_optional(&self, name: &str, environment: Option<&str>) -> bool {
        self.references
            .iter()
            .filter(|r| r.name == name && r.environment.as_deref() == environment)
            .all(|r| r.optional)
    }

    /// Where `name` is referenced in `environment`.
    pub fn places(&self, name: &str, environment: Option<&str>) -> Vec<&str> {
        self.references
            .iter()
            .filter(|r| r.name == name && r.environment.as_deref() == environment)
            .map(|r| r.place.as_str())
            .collect()
    }
}

/// Why the workflows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("no workflows: {0} does not exist (run from the repository's root, or pass --dir)")]
    NoWorkflows(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: line {line}, column {column}: not YAML: {reason}")]
    Yaml {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
}

/// A parsed workflow file.
struct Workflow {
    /// File name, as places are shown.
    file: String,
    doc: Yaml,
}

/// Reads every `*.yml` and `*.yaml` of `root/.github/workflows`.
pub fn scan(root: &Path) -> Result<Scan, PreflightError> {
    let dir = root.join(".github").join("workflows");
    let read_error = |path: &Path, e: std::io::Error| PreflightError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let entries = std::fs::read_dir(&dir)
        .map_err(|_| PreflightError::NoWorkflows(dir.display().to_string()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| read_error(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut workflows = BTreeMap::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doc = YamlLoader::load_from_str(&text)
            .map_err(|e| PreflightError::Yaml {
                path: path.display().to_string(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
                reason: e.info().to_owned(),
            })?
            .into_iter()
            .next()
            .unwrap_or(Yaml::Null);
        workflows.insert(file.clone(), Workflow { file, doc });
    }
    let mut scan = Scan {
        files: workflows.keys().cloned().collect(),
        ..Scan::default()
    };
    for workflow in workflows.values() {
        if only_called(&workflow.doc) {
            continue;
        }
        let mut visiting = HashSet::new();
        read_workflow(workflow, &workflows, None, &mut visiting, &mut scan);
    }
    Ok(scan)
}

/// Whether `on:` names `workflow_call` and nothing else.
fn only_called(doc: &Yaml) -> bool {
    let triggers: Vec<&str> = match &doc["on"] {
        Yaml::String(s) => vec![s.as_str()],
        Yaml::Array(list) => list.iter().filter_map(Yaml::as_str).collect(),
        Yaml::Hash(map) => map.keys().filter_map(Yaml::as_str).collect(),
        _ => Vec::new(),
    };
    triggers == ["workflow_call"]
}

/// The references of `workflow`'s jobs. `through` is the calling job when it is read through a
/// `secrets: inherit` call.
fn read_workflow(
    workflow: &Workflow,
    all: &BTreeMap<String, Workflow>,
    through: Option<&str>,
    visiting: &mut HashSet<String>,
    scan: &mut Scan,
) {
    if !visiting.insert(workflow.file.clone()) {
        return;
    }
    let Some(jobs) = workflow.doc["jobs"].as_hash() else {
        visiting.remove(&workflow.file);
        return;
    };
    for (id, job) in jobs {
        let id = id.as_str().unwrap_or("?");
        let place = match through {
            Some(caller) => format!("{}: {id} (called by {caller})", workflow.file),
            None => format!("{}: {id}", workflow.file),
        };
        let environment = environment_of(job, &place, scan);
        if let Some(uses) = job["uses"].as_str() {
            read_call(uses, job, &place, all, visiting, scan);
            continue;
        }
        let mut found = Vec::new();
        collect(job, false, &mut found, &place, scan);
        let optional = if through.is_some() {
            optional_secrets(&workflow.doc)
        } else {
            HashSet::new()
        };
        scan.references
            .extend(found.into_iter().map(|name| Reference {
                optional: optional.contains(&name),
                name,
                environment: environment.clone(),
                place: place.clone(),
            }));
    }
    visiting.remove(&workflow.file);
}

/// The secrets a reusable workflow declares `required: false` (or without `required`, which
/// GitHub reads as not required) under `on.workflow_call.secrets`, upper-cased.
fn optional_secrets(doc: &Yaml) -> HashSet<String> {
    let Some(declared) = doc["on"]["workflow_call"]["secrets"].as_hash() else {
        return HashSet::new();
    };
    declared
        .iter()
        .filter(|(_, spec)| spec["required"].as_bool() != Some(true))
        .filter_map(|(name, _)| name.as_str().map(str::to_ascii_uppercase))
        .collect()
}

/// A job calling a reusable workflow.
fn read_call(
    uses: &str,
    job: &Yaml,
    place: &str,
    all: &BTreeMap<String, Workflow>,
    visiting: &mut HashSet<String>,
    scan: &mut Scan,
) {
    let called = uses
        .strip_prefix("./.github/workflows/")
        .and_then(|file| all.get(file));
    match (&job["secrets"], called) {
        (Yaml::String(s), Some(called)) if s == "inherit" => {
            read_workflow(called, all, Some(place), visiting, scan);
        }
        (Yaml::String(s), None) if s == "inherit" => scan.notes.push(format!(
            "{place} passes every secret to {uses}, which is not in this repository: what it needs is not checked"
        )),
        (Yaml::Hash(mapping), called) => {
            let optional = called.map(|c| optional_secrets(&c.doc)).unwrap_or_default();
            for (key, value) in mapping {
                let mut found = Vec::new();
                collect(value, false, &mut found, place, scan);
                // What the caller passes for an optional secret may be missing too.
                let passed_optional = key
                    .as_str()
                    .is_some_and(|k| optional.contains(&k.to_ascii_uppercase()));
                scan.references.extend(found.into_iter().map(|name| Reference {
                    name,
                    environment: None,
                    place: place.to_owned(),
                    optional: passed_optional,
                }));
            }
            let Some(called) = called else { return };
            let passed: HashSet<String> = mapping
                .keys()
                .filter_map(Yaml::as_str)
                .map(str::to_ascii_uppercase)
                .collect();
            let mut inner = Scan::default();
            let mut seen = visiting.clone();
            read_workflow(called, all, Some(place), &mut seen, &mut inner);
            for r in inner.references {
                if !passed.contains(&r.name) {
                    scan.not_passed.push(NotPassed {
                        optional: r.optional,
                        name: r.name,
                        place: r.place,
                        caller: place.to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
}

/// The job's environment name, or `None` (with a note when it is computed by an expression).
fn environment_of(job: &Yaml, place: &str, scan: &mut Scan) -> Option<String> {
    let name = match &job["environment"] {
        Yaml::String(s) => s.as_str(),
        env @ Yaml::Hash(_) => env["name"].as_str()?,
        _ => return None,
    };
    if name.contains("${{") {
        scan.notes.push(format!(
            "{place}: the environment is computed ({name}); its secrets are checked in the repository only"
        ));
        return None;
    }
    Some(name.to_owned())
}

/// Every secret name referenced in the expressions of `node`.
fn collect(node: &Yaml, is_if: bool, found: &mut Vec<String>, place: &str, scan: &mut Scan) {
    match node {
        Yaml::String(text) => {
            let expressions: Vec<&str> = if is_if && !text.contains("${{") {
                vec![text.as_str()]
            } else {
                text.split("${{")
                    .skip(1)
                    .map(|rest| rest.split("}}").next().unwrap_or(rest))
                    .collect()
            };
            for expression in expressions {
                for reference in secret_references(expression) {
                    match reference {
                        Some(name) if name != BUILTIN && !found.contains(&name) => {
                            found.push(name);
                        }
                        Some(_) => {}
                        None => scan.notes.push(format!(
                            "{place}: a secret whose name is computed ({}); not checked",
                            expression.trim()
                        )),
                    }
                }
            }
        }
        Yaml::Array(items) => {
            for item in items {
                collect(item, false, found, place, scan);
            }
        }
        Yaml::Hash(map) => {
            for (key, value) in map {
                collect(value, key.as_str() == Some("if"), found, place, scan);
            }
        }
        _ => {}
    }
}

/// The secret names an expression reads: `Some(NAME)`, or `None` for `secrets[<expression>]`.
fn secret_references(expression: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let bytes = expression.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut from = 0;
    while let Some(found) = expression[from..].find("secrets") {
        let start = from + found;
        let end = start + "secrets".len();
        from = end;
        if start > 0 && (ident(bytes[start - 1]) || bytes[start - 1] == b'.') {
            continue;
        }
        let rest = &expression[end..];
        if let Some(after) = rest.strip_prefix('.') {
            let name: String = after
                .bytes()
                .take_while(|b| ident(*b))
                .map(char::from)
                .collect();
            if !name.is_empty() {
                out.push(Some(name.to_ascii_uppercase()));
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let after = after.trim_start();
            let quoted = after
                .strip_prefix('\'')
                .and_then(|a| a.split_once('\''))
                .or_else(|| after.strip_prefix('"').and_then(|a| a.split_once('"')));
            match quoted {
                Some((name, tail)) if tail.trim_start().starts_with(']') => {
                    out.push(Some(name.to_ascii_uppercase()));
                }
                _ => out.push(None),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_name_their_secrets_in_every_spelling_and_nothing_else() {
        assert_eq!(
            secret_references("secrets.npm_token != '' && secrets['A_B'] || secrets[\"C\"]"),
            vec![
                Some("NPM_TOKEN".to_owned()),
                Some("A_B".to_owned()),
                Some("C".to_owned())
            ]
        );
        assert_eq!(secret_references("inputs.secrets.x || mysecrets.y"), vec![]);
        assert_eq!(secret_references("secrets[matrix.name]"), vec![None]);
    }
}
