//! `preflight`: are the secrets the repository's workflows reference there? Each environment's
//! names are checked through the presence route (as a run would see them: the environment's
//! secret shadows the repository's); the repository's and environments' lists tell what is
//! shadowed and what no workflow references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mgraph_deploy_api::{EnvironmentName, ErrorType, PresenceName, PresenceScope};
use serde_json::{Value, json};

use super::args::PatSource;
use super::output::Output;
use super::session::Session;
use super::{Exit, Failure, InputError};
use crate::api::{DeployClient, Target};
use crate::preflight::{Scan, scan};

/// The presence route's limit on names per call.
const PRESENCE_NAMES: usize = 100;

/// One referenced name in one environment (or the repository), and what the check found.
pub(super) struct Finding {
    pub(super) name: String,
    pub(super) environment: Option<String>,
    /// Where a run finds it; `None`: missing.
    pub(super) found_in: Option<PresenceScope>,
    /// An environment secret that also exists in the repository.
    pub(super) shadows: bool,
    /// When it shadows: whether the two hold the same value, as far as the service knows (it
    /// wrote both, under one fingerprint key, and neither changed since).
    pub(super) same_value: Option<bool>,
    pub(super) places: Vec<String>,
    /// Every reference is to a secret a called workflow declares `required: false`: missing,
    /// it fails nothing.
    pub(super) optional: bool,
}

impl Finding {
    /// Missing, and needed.
    pub(super) fn fails(&self) -> bool {
        self.found_in.is_none() && !self.optional
    }
}

pub(super) async fn preflight(
    client: &DeployClient,
    out: Output,
    dir: &Path,
    repository: Target,
    pat: &PatSource,
) -> Result<Exit, Failure> {
    let scan = scan(dir).map_err(|e| InputError(e.to_string()))?;
    if !matches!(repository, Target::Repo { .. }) {
        return Err(
            InputError("preflight checks a repository: pass --repo OWNER/REPO".into()).into(),
        );
    }
    let mut session = Session::open(client, pat, None).await?;
    let checked = check(&mut session, &scan, &repository).await?;
    let failed = checked.failed(&scan);
    if out.json {
        out.print_json(&report_json(&repository, &scan, &checked, failed));
    } else {
        print_report(&repository, &scan, &checked);
    }
    Ok(Exit::unless(failed))
}

/// What a preflight found: each referenced name where its jobs run, the secrets no workflow
/// references, and notes.
pub(super) struct Checked {
    pub(super) findings: Vec<Finding>,
    pub(super) unused: Vec<(String, Option<String>)>,
    pub(super) notes: Vec<String>,
}

impl Checked {
    /// Something required is missing, or not passed to a called workflow.
    pub(super) fn failed(&self, scan: &Scan) -> bool {
        self.findings.iter().any(Finding::fails) || scan.not_passed.iter().any(|n| !n.optional)
    }
}

/// Checks every name `scan` found against `repository` (`Target::Repo`): each environment's
/// names through the presence route, and the lists for shadowing and unused secrets.
pub(super) async fn check(
    session: &mut Session,
    scan: &Scan,
    repository: &Target,
) -> Result<Checked, Failure> {
    let Target::Repo { owner, repo } = repository else {
        return Err(
            InputError("preflight checks a repository: pass --repo OWNER/REPO".into()).into(),
        );
    };
    let mut notes = scan.notes.clone();

    let repo_secrets = names_in(session, repository, &mut notes)
        .await?
        .unwrap_or_default();
    let mut findings = Vec::new();
    let mut defined_elsewhere: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (environment, names) in scan.by_environment() {
        let (names, refused): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|n| PresenceName::try_from(n.as_str()).is_ok());
        for name in refused {
            notes.push(format!(
                "{name} (in {}) cannot be a secret's name, so it is always empty there",
                where_words(environment.as_deref())
            ));
        }
        if names.is_empty() {
            continue;
        }
        let (target, env_secrets) = match &environment {
            None => (repository.clone(), None),
            Some(name) => {
                let environment_name = EnvironmentName::try_from(name.as_str()).map_err(|e| {
                    InputError(format!(
                        "the workflows name an environment GitHub refuses: {name:?} {e}"
                    ))
                })?;
                let target = Target::Environment {
                    owner: owner.clone(),
                    repo: repo.clone(),
                    environment: environment_name,
                };
                match names_in(session, &target, &mut notes).await? {
                    Some(secrets) => (target, Some(secrets)),
                    None => {
                        notes.push(format!(
                            "environment {name} does not exist yet (GitHub creates it on the first run that names it): its secrets are checked in the repository"
                        ));
                        (repository.clone(), None)
                    }
                }
            }
        };
        let present = presence(session, &target, &names).await?;
        let shadowing = names.iter().any(|name| {
            present.get(name).copied().flatten() == Some(PresenceScope::Environment)
                && repo_secrets.contains(name)
        });
        let same = if shadowing {
            same_as_repository(session, &target).await
        } else {
            BTreeMap::new()
        };
        for name in names {
            let found_in = present.get(&name).copied().flatten();
            let shadows =
                found_in == Some(PresenceScope::Environment) && repo_secrets.contains(&name);
            let places = scan
                .places(&name, environment.as_deref())
                .into_iter()
                .map(str::to_owned)
                .collect();
            findings.push(Finding {
                optional: scan.is_optional(&name, environment.as_deref()),
                same_value: same.get(&name).copied().filter(|_| shadows),
                name,
                environment: environment.clone(),
                found_in,
                shadows,
                places,
            });
        }
        if let (Some(environment), Some(secrets)) = (&environment, env_secrets) {
            defined_elsewhere.insert(environment.clone(), secrets);
        }
    }
    let unused = unused(scan, &repo_secrets, &defined_elsewhere);
    Ok(Checked {
        findings,
        unused,
        notes,
    })
}

/// The names of `target`'s secrets; `None` when it is an environment that does not exist. A list
/// that may be cut at the GitHub Service's one page is noted: what it leaves out is not reported
/// unused.
async fn names_in(
    session: &mut Session,
    target: &Target,
    notes: &mut Vec<String>,
) -> Result<Option<BTreeSet<String>>, Failure> {
    let envelope = session
        .resealing(async |c, s| c.list(&s.pat, target).await)
        .await?;
    match (&envelope.data, envelope.error_type) {
        (Some(data), _) if envelope.success => {
            if data.may_be_incomplete {
                notes.push(format!(
                    "{target} may hold more secrets than the GitHub Service lists (GitHub's first page, {} of them): the unused ones among the rest, and environment secrets shadowing them, are not reported",
                    data.secrets.len()
                ));
            }
            Ok(Some(
                data.secrets
                    .iter()
                    .map(|s| s.name.as_str().to_owned())
                    .collect(),
            ))
        }
        (_, Some(ErrorType::NotFound)) if matches!(target, Target::Environment { .. }) => Ok(None),
        _ => Err(InputError(format!(
            "cannot list the secrets of {target}: {} ({})",
            envelope.error,
            envelope.error_type.map_or("unknown", ErrorType::as_str)
        ))
        .into()),
    }
}

/// Where a run in `target` finds each of `names` (`None`: nowhere).
/// For an environment's secrets, whether each holds the same value as the repository secret it
/// shadows, where the service knows (`/executions/secrets`); empty when it cannot say.
async fn same_as_repository(session: &mut Session, target: &Target) -> BTreeMap<String, bool> {
    let Ok(answer) = session
        .resealing(async |c, s| c.secrets_state(&s.pat, target).await)
        .await
    else {
        return BTreeMap::new();
    };
    answer
        .body
        .data
        .iter()
        .flat_map(|data| &data.secrets)
        .filter_map(|s| {
            s.same_as_repository
                .map(|same| (s.name.as_str().to_owned(), same))
        })
        .collect()
}

async fn presence(
    session: &mut Session,
    target: &Target,
    names: &[String],
) -> Result<BTreeMap<String, Option<PresenceScope>>, Failure> {
    let mut found = BTreeMap::new();
    for chunk in names.chunks(PRESENCE_NAMES) {
        let envelope = session
            .resealing(async |c, s| c.presence(&s.pat, target, chunk).await)
            .await?;
        let Some(data) = envelope.data.as_ref().filter(|_| envelope.success) else {
            return Err(InputError(format!(
                "cannot check the secrets of {target}: {} ({})",
                envelope.error,
                envelope.error_type.map_or("unknown", ErrorType::as_str)
            ))
            .into());
        };
        for entry in &data.secrets {
            found.insert(
                entry.name.as_str().to_owned(),
                entry.scope.filter(|_| entry.present),
            );
        }
    }
    Ok(found)
}

/// Secrets defined in the repository or an environment that no workflow references there.
fn unused(
    scan: &Scan,
    repo_secrets: &BTreeSet<String>,
    environments: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(String, Option<String>)> {
    let referenced: BTreeSet<&str> = scan.references.iter().map(|r| r.name.as_str()).collect();
    let mut out: Vec<(String, Option<String>)> = repo_secrets
        .iter()
        .filter(|n| !referenced.contains(n.as_str()))
        .map(|n| (n.clone(), None))
        .collect();
    for (environment, secrets) in environments {
        let here: BTreeSet<&str> = scan
            .references
            .iter()
            .filter(|r| r.environment.as_deref() == Some(environment))
            .map(|r| r.name.as_str())
            .collect();
        out.extend(
            secrets
                .iter()
                .filter(|n| !here.contains(n.as_str()))
                .map(|n| (n.clone(), Some(environment.clone()))),
        );
    }
    out
}

pub(super) fn where_words(environment: Option<&str>) -> String {
    environment.map_or_else(|| "repository".to_owned(), |e| format!("environment {e}"))
}

fn print_report(repository: &Target, scan: &Scan, checked: &Checked) {
    let Checked {
        findings,
        unused,
        notes,
    } = checked;
    println!(
        "preflight of {repository}: {} workflow file(s), {} secret reference(s) ({} is built in)",
        scan.files.len(),
        findings.len(),
        crate::preflight::BUILTIN
    );
    for f in findings {
        let (status, found) = match (f.found_in, f.shadows) {
            (None, _) if f.optional => (
                "optional",
                "  [missing; declared required: false]".to_owned(),
            ),
            (None, _) => ("MISSING", String::new()),
            (Some(PresenceScope::Environment), true) => (
                "present",
                match f.same_value {
                    Some(true) => "  [environment secret, shadows the repository's: the same value]",
                    Some(false) => {
                        "  [environment secret, shadows the repository's: a different value, a likely mistake]"
                    }
                    None => "  [environment secret, shadows the repository's]",
                }
                .to_owned(),
            ),
            (Some(scope), _) => (
                "present",
                format!("  [{} secret]", super::output::scope_word(scope)),
            ),
        };
        println!(
            "{status:<10} {:<28} {:<24} {}{found}",
            f.name,
            where_words(f.environment.as_deref()),
            f.places.join(", ")
        );
    }
    for n in &scan.not_passed {
        let status = if n.optional { "optional" } else { "NOT PASSED" };
        let note = if n.optional {
            " (declared required: false: it is empty there)"
        } else {
            ""
        };
        println!(
            "{status:<10} {:<28} {:<24} used by {}, but {} passes only its `secrets:` mapping{note}",
            n.name, "", n.place, n.caller
        );
    }
    for (name, environment) in unused {
        println!(
            "{:<10} {name:<28} {:<24} defined, referenced by no workflow",
            "unused",
            where_words(environment.as_deref())
        );
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    let missing = findings.iter().filter(|f| f.fails()).count();
    let not_passed = scan.not_passed.iter().filter(|n| !n.optional).count();
    let optional = findings
        .iter()
        .filter(|f| f.found_in.is_none() && f.optional)
        .count()
        + scan.not_passed.iter().filter(|n| n.optional).count();
    eprintln!(
        "{missing} missing, {not_passed} not passed, {optional} optional and absent, {} unused (organisation secrets are not counted: one visible to the repository would also do)",
        unused.len()
    );
}

fn report_json(repository: &Target, scan: &Scan, checked: &Checked, failed: bool) -> Value {
    let Checked {
        findings,
        unused,
        notes,
    } = checked;
    json!({
        "repository": repository.to_string(),
        "files": scan.files,
        "secrets": findings.iter().map(|f| json!({
            "name": f.name,
            "environment": f.environment,
            "present": f.found_in.is_some(),
            "scope": f.found_in,
            "shadows_repository": f.shadows,
            "shadowed_value": f.same_value.map(|same| if same { "same" } else { "different" }),
            "used_in": f.places,
            "optional": f.optional,
        })).collect::<Vec<_>>(),
        "not_passed": scan.not_passed.iter().map(|n| json!({
            "name": n.name, "used_in": n.place, "caller": n.caller, "optional": n.optional,
        })).collect::<Vec<_>>(),
        "unused": unused.iter().map(|(name, environment)| json!({
            "name": name, "environment": environment,
        })).collect::<Vec<_>>(),
        "notes": notes,
        "ok": !failed,
    })
}
