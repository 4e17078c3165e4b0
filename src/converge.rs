//! Converge, don't rewrite: a workflow's create whose value is the one this service wrote last,
//! and that nobody changed since, is not written again.
//!
//! The service never sees a value. The client sends a keyed fingerprint of it
//! (`value_fingerprint`, keyed on the client), which the service only compares with the one it
//! recorded when it last wrote the secret ([`Written`], in the [`store`](crate::store)), together
//! with GitHub's `updated_at` for the secret as read back right after that write. A create is
//! `unchanged` (not written) only when both still agree: the same fingerprint, and GitHub's
//! `updated_at` not moved. It is `drifted` (written back, and said so) when the fingerprint is
//! the same but `updated_at` moved: someone wrote it outside this service. Anything short of
//! certainty is a write: no record, no fingerprint, another fingerprint (another value or another
//! key), a record whose write was never confirmed, a secret that is gone, an `updated_at` that
//! cannot be read, a store that does not answer; an organisation secret whose repositories are
//! `selected` (GitHub's metadata does not show which).
//!
//! Two writes of one secret at once: each puts its claim before it writes and confirms it after
//! only if its claim is still the one recorded; one that finds another claim there cannot tell
//! whose value GitHub kept, and leaves a record without a fingerprint, so that the next run
//! writes.

use std::hash::BuildHasher as _;
use std::sync::Arc;

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use mgraph_deploy_api::{CreateData, SecretState, SecretStateEntry, SecretsStateData, Visibility};

use crate::domain::{SealedPat, SecretName, Target};
use crate::operations::{
    AbsentSecret, CreateRequest, ErrorType, Failure, Listing, OperationKind, Operations, Outcome,
    Request, SecretMeta, environment_missing,
};
use crate::store::{Store, TargetKey, TargetRef, Written, bounded, failed_store, now_ms};

/// What the service remembers of what it wrote. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Memory {
    store: Arc<dyn Store>,
}

/// What to do with a create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write it: nothing certain says it is unchanged.
    Write,
    /// Skip it: the value is the one this service wrote at `written_ms`, and GitHub's
    /// `updated_at` has not moved since.
    Unchanged { written_ms: u64 },
    /// Write it back: the value is the one this service wrote, but the secret was changed
    /// outside it (GitHub's `updated_at` is now `updated_at`, was `recorded`).
    Drifted {
        updated_at: String,
        recorded: String,
    },
}

/// Whether two secrets this service wrote hold the same value, by their fingerprints: known only
/// when both have one and they name one key (all but the last `:`-separated part, the client's
/// scheme and key id, are equal).
fn same_value(environment: &Written, repository: &Written) -> Option<bool> {
    let (Some(a), Some(b)) = (&environment.fingerprint, &repository.fingerprint) else {
        return None;
    };
    let key = |f: &str| f.rsplit_once(':').map(|(key, _)| key.to_owned());
    match (key(a.as_str()), key(b.as_str())) {
        (Some(x), Some(y)) if x == y => Some(a == b),
        _ => None,
    }
}

/// Whether GitHub's `updated_at` read back after a write answered at `answered_ms` can be that
/// write's: a later time (with two seconds for clocks and GitHub's whole seconds) is someone
/// else's write, made after it. A time that cannot be read is not.
fn written_by_then(updated_at: &str, answered_ms: u64) -> bool {
    humantime::parse_rfc3339(updated_at).is_ok_and(|at| {
        at.duration_since(std::time::UNIX_EPOCH)
            .is_ok_and(|at| at.as_millis() as u64 <= answered_ms + 2_000)
    })
}

/// How many secrets `state` looks up by name at once.
const LOOKUPS_AT_ONCE: usize = 8;
/// The most secrets beyond a listing's page `state` looks up by name (one read each): the
/// rest read as `unconfirmed`.
const MOST_LOOKED_UP: usize = 256;

fn rfc3339_seconds(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// An organisation secret's access as a write sets it, in words; `None` for other scopes.
fn settings(req: &CreateRequest) -> Option<String> {
    let access = req.org_access.as_ref()?;
    Some(match access.visibility {
        None => "kept".to_owned(),
        Some(Visibility::Selected) => {
            let ids: Vec<String> = access.repo_ids.iter().map(u64::to_string).collect();
            format!("selected:{}", ids.join(","))
        }
        Some(other) => other.as_str().to_owned(),
    })
}

/// Whether a skip can be certain for these settings: GitHub's metadata shows an organisation
/// secret's visibility, but not which repositories a `selected` one is shared with.
fn verifiable(settings: Option<&str>) -> bool {
    !settings.is_some_and(|s| s.starts_with("selected"))
}

/// A token naming one write, unique among the writes of this process and others.
fn claim_token() -> String {
    let random = std::collections::hash_map::RandomState::new().hash_one(now_ms());
    format!("{}.{random:016x}", crate::request_context::request_id())
}

impl Memory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// What to do with `req`, and the upstream calls deciding took. `Write` on any doubt.
    pub async fn decide(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        req: &CreateRequest,
    ) -> (Decision, u32) {
        self.decide_knowing(ops, pat, req, None).await
    }

    /// [`Memory::decide`], with the secret's metadata when a listing just read it (then no
    /// upstream call is made).
    pub async fn decide_knowing(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        req: &CreateRequest,
        known: Option<SecretMeta>,
    ) -> (Decision, u32) {
        let Some(fingerprint) = &req.fingerprint else {
            return (Decision::Write, 0);
        };
        let settings = settings(req);
        let record = bounded(
            self.store.backend(),
            self.store
                .written(TargetKey::of(&req.target), req.secret_name.clone()),
        )
        .await;
        let record = match record {
            Ok(Some(record)) => record,
            Ok(None) => return (Decision::Write, 0),
            Err(e) => {
                tracing::warn!(error = %e, "what was written could not be read: writing");
                return (Decision::Write, 0);
            }
        };
        let Some(recorded) = record.updated_at.clone() else {
            return (Decision::Write, 0);
        };
        if record.fingerprint.as_ref() != Some(fingerprint)
            || record.settings != settings
            || !verifiable(settings.as_deref())
        {
            return (Decision::Write, 0);
        }
        let (meta, calls) = match known {
            Some(meta) => (Ok(Some(meta)), 0),
            None => ops.secret_meta(pat, &req.target, &req.secret_name).await,
        };
        let Ok(Some(meta)) = meta else {
            return (Decision::Write, calls);
        };
        let visibility_holds = match req.org_access.as_ref().and_then(|a| a.visibility) {
            Some(asked) => meta.visibility == Some(asked),
            None => true,
        };
        let decision = match meta.updated_at {
            Some(now) if now == recorded && visibility_holds => Decision::Unchanged {
                written_ms: record.written_ms,
            },
            Some(now) if now != recorded => Decision::Drifted {
                updated_at: now,
                recorded,
            },
            _ => Decision::Write,
        };
        (decision, calls)
    }

    /// The outcome of a create that `decide` found unchanged: done, not written.
    pub fn unchanged(req: &CreateRequest, written_ms: u64, upstream_calls: u32) -> Outcome {
        let data = CreateData {
            created: false,
            secret_name: req.secret_name.clone(),
            scope: req.target.scope(),
            env_fallback: false,
            unchanged: true,
            drifted: false,
        };
        let written = rfc3339_seconds(written_ms);
        Outcome {
            kind: OperationKind::Create,
            result: Ok(serde_json::to_value(data).expect("plain JSON")),
            messages: vec![format!(
                "Not written: unchanged since this service wrote it at {written} (same value_fingerprint, and GitHub's updated_at has not moved); options.force writes it anyway"
            )],
            rate_limit: None,
            upstream_calls,
        }
    }

    /// Runs the create `request` (`req` is its body), remembering what it wrote: a claim
    /// before, GitHub's `updated_at` confirmed after.
    pub async fn write(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        request: &Request,
        req: &CreateRequest,
        drifted: Option<&Decision>,
    ) -> Outcome {
        let backend = self.store.backend();
        let key = TargetKey::of(&req.target);
        let claim = Written {
            target: TargetRef::of(&req.target),
            name: req.secret_name.clone(),
            execution: crate::request_context::request_id(),
            claim: claim_token(),
            written_ms: now_ms(),
            fingerprint: req.fingerprint.clone(),
            settings: settings(req),
            updated_at: None,
        };
        let claimed = bounded(backend, self.store.claim(claim.clone())).await;
        if let Err(e) = &claimed {
            tracing::warn!(error = %e, "a write could not be claimed: it is not remembered");
        }
        let mut outcome = ops.run(pat, request, AbsentSecret::IsDone).await;
        let answered_ms = now_ms();
        let Ok(data) = &mut outcome.result else {
            // It may have taken effect (a connection dropped after it was sent) while another
            // write of this secret confirmed its own claim: GitHub's value is not known.
            self.unknown(claim).await;
            return outcome;
        };
        if let Some(Decision::Drifted {
            updated_at,
            recorded,
        }) = drifted
        {
            data["drifted"] = true.into();
            outcome.messages.push(format!(
                "Drifted: changed outside this service at {updated_at} (this service wrote it before {recorded}); written back"
            ));
        }
        let written_scope = Outcome::scope_written(data, &req.target);
        if written_scope != req.target.scope() {
            // env_fallback wrote the repository secret: that one is this service's now, with
            // no fingerprint (a later run writes it again), and the environment's claim goes.
            self.fallback(&req.target, claim).await;
            return outcome;
        }
        // A value without a fingerprint is not confirmed (no read for it): its record says only
        // that this service wrote it, and a later run writes it again.
        if claimed.is_err() || req.fingerprint.is_none() {
            return outcome;
        }
        let (meta, calls) = ops.secret_meta(pat, &req.target, &req.secret_name).await;
        outcome.upstream_calls += calls;
        let read_back = meta.ok().flatten().and_then(|m| m.updated_at);
        let ours = read_back.filter(|at| written_by_then(at, answered_ms));
        let Some(updated_at) = ours else {
            self.unknown(claim).await;
            return outcome;
        };
        let confirmed = bounded(
            backend,
            self.store.confirm(
                key,
                req.secret_name.clone(),
                claim.claim.clone(),
                updated_at,
            ),
        )
        .await;
        if confirmed != Ok(true) {
            // Another write of this secret ran alongside (or the store failed): whose value
            // GitHub kept is unknown.
            tracing::warn!("this write could not be confirmed: its fingerprint is not kept");
            self.unknown(claim).await;
        }
        outcome
    }

    /// Leaves the secret's record saying that what GitHub holds is not known (no fingerprint,
    /// never confirmed): the next run writes, and a prune leaves it alone.
    async fn unknown(&self, claim: Written) {
        let unknown = Written {
            fingerprint: None,
            updated_at: None,
            ..claim
        };
        let _ = bounded(self.store.backend(), self.store.claim(unknown)).await;
    }

    async fn fallback(&self, target: &Target, claim: Written) {
        let backend = self.store.backend();
        let Some(repository) = target.repository() else {
            return;
        };
        let _ = bounded(
            backend,
            self.store.forget(TargetKey::of(target), claim.name.clone()),
        )
        .await;
        let repository_claim = Written {
            target: TargetRef::of(&repository),
            fingerprint: None,
            ..claim
        };
        let _ = bounded(backend, self.store.claim(repository_claim)).await;
    }

    /// Runs `request` as [`Operations::run`] does, remembering a create (`drifted`: what
    /// [`Memory::decide`] found) and forgetting a secret deleted or found absent.
    pub async fn run(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        request: &Request,
        absent: AbsentSecret,
        drifted: Option<&Decision>,
    ) -> Outcome {
        match request {
            Request::Create(req) => self.write(ops, pat, request, req, drifted).await,
            Request::Delete(req) => {
                let outcome = ops.run(pat, request, absent).await;
                if outcome.result.is_ok() {
                    self.forget(&req.target, &req.secret_name).await;
                }
                outcome
            }
            _ => ops.run(pat, request, absent).await,
        }
    }

    /// Each secret of `target` against what this service wrote there (`executions:secrets`).
    /// The PAT must list the target's secrets: the listing is the check, with `list`'s failures.
    pub async fn state(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        target: &Target,
    ) -> Result<SecretsStateData, Failure> {
        let page = match ops.scope_secrets(pat, target).await? {
            Listing::Secrets(page) => page,
            Listing::EnvironmentMissing => return Err(environment_missing(target)),
        };
        let written = self.written_in(target).await?;
        let may_be_incomplete = page.may_be_cut();
        let mut listed: BTreeMap<SecretName, SecretMeta> = page
            .secrets
            .into_iter()
            .map(|meta| (meta.name.clone(), meta))
            .collect();
        // Names not looked up (beyond the most looked up at once): their state is not known.
        let mut not_looked_up = std::collections::BTreeSet::new();
        if may_be_incomplete {
            // This service's own secrets beyond the page, by name, up to a bound.
            let mut beyond: Vec<SecretName> = written
                .iter()
                .map(|w| w.name.clone())
                .filter(|name| !listed.contains_key(name))
                .collect();
            if beyond.len() > MOST_LOOKED_UP {
                not_looked_up.extend(beyond.split_off(MOST_LOOKED_UP));
            }
            let found: Vec<Result<Option<SecretMeta>, Failure>> =
                futures_util::stream::iter(beyond)
                    .map(|name| async move { ops.secret_meta(pat, target, &name).await.0 })
                    .buffer_unordered(LOOKUPS_AT_ONCE)
                    .collect()
                    .await;
            for meta in found {
                if let Some(meta) = meta? {
                    listed.insert(meta.name.clone(), meta);
                }
            }
        }
        let mut secrets: Vec<SecretStateEntry> = written
            .iter()
            .map(|w| {
                let now = listed.get(&w.name).and_then(|m| m.updated_at.clone());
                let state = match (listed.contains_key(&w.name), &w.updated_at, &now) {
                    _ if not_looked_up.contains(&w.name) => SecretState::Unconfirmed,
                    (false, ..) => SecretState::Missing,
                    (true, Some(recorded), Some(now)) if recorded == now => SecretState::InSync,
                    (true, Some(_), Some(_)) => SecretState::Drifted,
                    _ => SecretState::Unconfirmed,
                };
                SecretStateEntry {
                    name: w.name.clone(),
                    state,
                    updated_at: now,
                    written_at: Some(rfc3339_seconds(w.written_ms)),
                    same_as_repository: None,
                }
            })
            .collect();
        let ours: std::collections::BTreeSet<&SecretName> =
            written.iter().map(|w| &w.name).collect();
        secrets.extend(
            listed
                .values()
                .filter(|meta| !ours.contains(&meta.name))
                .map(|meta| SecretStateEntry {
                    name: meta.name.clone(),
                    state: SecretState::Unmanaged,
                    updated_at: meta.updated_at.clone(),
                    written_at: None,
                    same_as_repository: None,
                }),
        );
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(repository) = target.repository().filter(|r| r != target) {
            self.compare_with_repository(ops, pat, &repository, &written, &mut secrets)
                .await;
        }
        Ok(SecretsStateData {
            secrets,
            scope: target.scope(),
            may_be_incomplete,
        })
    }

    /// Every secret of `target` this service wrote and has not deleted since.
    pub async fn written_in(&self, target: &Target) -> Result<Vec<Written>, Failure> {
        bounded(
            self.store.backend(),
            self.store.written_in(TargetKey::of(target)),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "what was written could not be read");
            Failure::new(
                ErrorType::HistoryUnavailable,
                format!("The history cannot be read now: {}", failed_store(&e)),
            )
        })
    }

    /// Fills in `same_as_repository` for an environment's secrets in sync that shadow a
    /// repository secret this service wrote, when that one is still as it was written (one read
    /// each, a few at once).
    async fn compare_with_repository(
        &self,
        ops: &Operations,
        pat: &SealedPat,
        repository: &Target,
        written: &[Written],
        secrets: &mut [SecretStateEntry],
    ) {
        let Ok(shadowed) = self.written_in(repository).await else {
            return;
        };
        let shadowed: BTreeMap<SecretName, Written> =
            shadowed.into_iter().map(|w| (w.name.clone(), w)).collect();
        let candidates: Vec<(usize, Written)> = secrets
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == SecretState::InSync)
            .filter_map(|(i, s)| shadowed.get(&s.name).map(|w| (i, w.clone())))
            .collect();
        let checked: Vec<(usize, Written, Option<String>)> = futures_util::stream::iter(candidates)
            .map(|(i, repo)| async move {
                let (meta, _) = ops.secret_meta(pat, repository, &repo.name).await;
                let now = meta.ok().flatten().and_then(|m| m.updated_at);
                (i, repo, now)
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .collect()
            .await;
        for (i, repo, now) in checked {
            let unmoved = now.is_some() && now == repo.updated_at;
            let ours = written.iter().find(|w| w.name == secrets[i].name);
            if let (true, Some(ours)) = (unmoved, ours) {
                secrets[i].same_as_repository = same_value(ours, &repo);
            }
        }
    }

    /// Forgets a secret this service deleted (or found absent).
    pub async fn forget(&self, target: &Target, name: &SecretName) {
        let forgotten = bounded(
            self.store.backend(),
            self.store.forget(TargetKey::of(target), name.clone()),
        )
        .await;
        if let Err(e) = forgotten {
            tracing::warn!(error = %e, "a deleted secret could not be forgotten");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::OrgAccess;

    fn org_create(visibility: Option<Visibility>, repo_ids: Vec<u64>) -> CreateRequest {
        serde_json::from_value::<Target>(serde_json::json!({ "org": "acme" }))
            .map(|target| CreateRequest {
                target,
                secret_name: "S".try_into().unwrap(),
                value: base64_value(),
                org_access: Some(OrgAccess {
                    visibility,
                    repo_ids,
                }),
                env_fallback: false,
                fingerprint: None,
            })
            .unwrap()
    }

    fn base64_value() -> crate::domain::SealedValue {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode([1u8; 60])
            .try_into()
            .unwrap()
    }

    #[test]
    fn an_updated_at_later_than_the_writes_answer_is_someone_elses() {
        let answered = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert!(written_by_then("2026-01-01T00:00:00Z", answered));
        assert!(written_by_then("2026-01-01T00:00:02Z", answered));
        assert!(!written_by_then("2026-01-01T00:00:03Z", answered));
        assert!(!written_by_then("2099-01-01T00:00:00Z", answered));
        assert!(!written_by_then("yesterday", answered));
    }

    #[test]
    fn an_organisation_secrets_settings_are_spelled_out_and_selected_ones_are_never_certain() {
        let kept = settings(&org_create(None, vec![]));
        let all = settings(&org_create(Some(Visibility::All), vec![]));
        let selected = settings(&org_create(Some(Visibility::Selected), vec![3, 1]));
        assert_eq!(kept.as_deref(), Some("kept"));
        assert_eq!(all.as_deref(), Some("all"));
        assert_eq!(selected.as_deref(), Some("selected:3,1"));
        assert!(verifiable(kept.as_deref()) && verifiable(all.as_deref()));
        assert!(!verifiable(selected.as_deref()));
        assert!(verifiable(None));
    }
}
