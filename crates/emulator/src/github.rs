//! An in-memory slice of api.github.com: repositories, environments, organisations, Actions
//! secrets with timestamps, and PATs with scopes, states and a primary rate limit.
//!
//! Secret values are kept as the plaintext the GitHub Service decrypted, so a test can prove a
//! value crossed the whole chain intact. Errors carry the text Python `requests` produces for
//! real GitHub (`401 Client Error: Unauthorized for url: https://api.github.com/...`), because
//! that is what the GitHub Service classifies and echoes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Repo {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Org {
        org: String,
    },
}

impl Scope {
    pub fn repo(owner: &str, repo: &str) -> Self {
        Self::Repo {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
        }
    }
    pub fn environment(owner: &str, repo: &str, environment: &str) -> Self {
        Self::Environment {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            environment: environment.to_owned(),
        }
    }
    pub fn org(org: &str) -> Self {
        Self::Org {
            org: org.to_owned(),
        }
    }

    /// GitHub's REST path of the scope's secrets collection.
    fn path(&self) -> String {
        match self {
            Self::Repo { owner, repo } => format!("/repos/{owner}/{repo}/actions/secrets"),
            Self::Environment {
                owner,
                repo,
                environment,
            } => format!("/repos/{owner}/{repo}/environments/{environment}/secrets"),
            Self::Org { org } => format!("/orgs/{org}/actions/secrets"),
        }
    }
}

/// A stored secret. `plaintext` is what the GitHub Service decrypted from the client's blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub plaintext: String,
    pub created_at: String,
    pub updated_at: String,
    /// Organisation secrets only.
    pub visibility: Option<String>,
    pub selected_repository_ids: Vec<u64>,
}

/// Secret metadata as GitHub lists it (never the value).
#[derive(Debug, Clone, Serialize)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

impl SecretMeta {
    /// The JSON the GitHub Service puts in `response_data` (org secrets carry two more fields).
    pub fn to_json(&self) -> Value {
        match &self.visibility {
            None => {
                json!({ "name": self.name, "created_at": self.created_at, "updated_at": self.updated_at })
            }
            Some(v) => {
                json!({ "name": self.name, "created_at": self.created_at, "updated_at": self.updated_at,
                               "visibility": v, "selected_repositories_url": null })
            }
        }
    }
}

/// What GitHub answered instead of success, as `requests` words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhError {
    pub status: u16,
    pub text: String,
}

impl GhError {
    fn new(status: u16, path: &str) -> Self {
        let reason = match status {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Error",
        };
        Self::with_reason(status, reason, path)
    }
    fn with_reason(status: u16, reason: &str, path: &str) -> Self {
        Self {
            status,
            text: format!("{status} Client Error: {reason} for url: https://api.github.com{path}"),
        }
    }
}

/// The preset PATs: the same kinds as the GitHub Service's own surrogate (contract §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatKind {
    /// repo, admin:org, workflow: everything works.
    Admin,
    /// repo: repository and environment secrets; organisations answer 403.
    RepoWrite,
    /// public_repo: reads work, writes answer 403.
    RepoRead,
    /// repo, admin:org.
    OrgAdmin,
    /// workflow only: secrets answer 403.
    EnvOnly,
    /// Expired: 401.
    Expired,
    /// GitHub's secondary limit: 429 on every call.
    RateLimited,
    /// No scopes: 403.
    NoScopes,
    /// Revoked or never valid: 401.
    Invalid,
}

impl PatKind {
    pub const ALL: [PatKind; 9] = [
        Self::Admin,
        Self::RepoWrite,
        Self::RepoRead,
        Self::OrgAdmin,
        Self::EnvOnly,
        Self::Expired,
        Self::RateLimited,
        Self::NoScopes,
        Self::Invalid,
    ];

    /// The 40-character token, `ghp_emulator_<kind>_` padded with the kind's letter.
    pub fn token(self) -> String {
        let (name, letter) = self.name_and_letter();
        let mut token = format!("ghp_emulator_{name}_");
        while token.len() < 40 {
            token.push(letter);
        }
        token
    }

    pub fn name(self) -> &'static str {
        self.name_and_letter().0
    }

    /// The GitHub login it belongs to: `emulator-<kind>`, hyphenated.
    pub fn login(self) -> String {
        format!("emulator-{}", self.name().replace('_', "-"))
    }

    fn name_and_letter(self) -> (&'static str, char) {
        match self {
            Self::Admin => ("admin", 'A'),
            Self::RepoWrite => ("repo_write", 'B'),
            Self::RepoRead => ("repo_read", 'C'),
            Self::OrgAdmin => ("org_admin", 'D'),
            Self::EnvOnly => ("env_only", 'E'),
            Self::Expired => ("expired", 'F'),
            Self::RateLimited => ("rate_limited", 'G'),
            Self::NoScopes => ("no_scopes", 'H'),
            Self::Invalid => ("invalid", 'I'),
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::Admin => &["repo", "admin:org", "workflow"],
            Self::RepoWrite | Self::RateLimited => &["repo"],
            Self::RepoRead => &["public_repo"],
            Self::OrgAdmin => &["repo", "admin:org"],
            Self::EnvOnly => &["workflow"],
            Self::Expired | Self::NoScopes | Self::Invalid => &[],
        }
    }

    fn state(self) -> PatState {
        match self {
            Self::Expired | Self::Invalid => PatState::Rejected,
            Self::RateLimited => PatState::SecondaryLimited,
            _ => PatState::Active,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatState {
    Active,
    /// Expired, revoked or unknown: 401 Bad credentials.
    Rejected,
    /// 429 on every call.
    SecondaryLimited,
}

/// GitHub's primary rate limit for one PAT, as `GET /rate_limit` → `rate` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub reset: u64,
    pub used: u64,
}

#[derive(Debug)]
struct Account {
    login: String,
    scopes: &'static [&'static str],
    state: PatState,
    rate: RateLimit,
}

#[derive(Debug, Default)]
struct Repo {
    secrets: BTreeMap<String, StoredSecret>,
    environments: BTreeMap<String, BTreeMap<String, StoredSecret>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// GitHub's default page size; the GitHub Service never asks for more.
pub const PAGE_SIZE: usize = 30;
const RATE_LIMIT: u64 = 5_000;

/// The in-memory GitHub.
#[derive(Debug, Default)]
pub struct GitHub {
    repos: BTreeMap<(String, String), Repo>,
    orgs: BTreeMap<String, BTreeMap<String, StoredSecret>>,
    accounts: HashMap<String, Account>,
}

impl GitHub {
    /// A GitHub that knows the preset PATs and nothing else.
    pub fn with_preset_pats() -> Self {
        let mut github = Self::default();
        for kind in PatKind::ALL {
            github.accounts.insert(
                kind.token(),
                Account {
                    login: kind.login(),
                    scopes: kind.scopes(),
                    state: kind.state(),
                    rate: fresh_rate(),
                },
            );
        }
        github
    }

    pub fn add_repo(&mut self, owner: &str, repo: &str) {
        self.repos
            .entry((owner.to_owned(), repo.to_owned()))
            .or_default();
    }

    /// Adds an environment (and its repository, if needed).
    pub fn add_environment(&mut self, owner: &str, repo: &str, environment: &str) {
        self.repos
            .entry((owner.to_owned(), repo.to_owned()))
            .or_default()
            .environments
            .entry(environment.to_owned())
            .or_default();
    }

    pub fn add_org(&mut self, org: &str) {
        self.orgs.entry(org.to_owned()).or_default();
    }

    /// The stored secret, plaintext included (a test's read-back). Names are GitHub's: any case.
    pub fn secret(&self, scope: &Scope, name: &str) -> Option<StoredSecret> {
        self.collection(scope)?.get(&stored_name(name)).cloned()
    }

    /// A write by someone else, straight to GitHub, at `updated_at` (a test's aid: a secret
    /// changed outside the service, in a later second than the service's own write). `false`
    /// when there is no such scope.
    pub fn write_outside(
        &mut self,
        scope: &Scope,
        name: &str,
        plaintext: &str,
        updated_at: &str,
    ) -> bool {
        let Some(secrets) = self.collection_mut(scope) else {
            return false;
        };
        let secret = secrets
            .entry(stored_name(name))
            .or_insert_with(|| StoredSecret {
                plaintext: String::new(),
                created_at: updated_at.to_owned(),
                updated_at: String::new(),
                visibility: None,
                selected_repository_ids: Vec::new(),
            });
        secret.plaintext = plaintext.to_owned();
        secret.updated_at = updated_at.to_owned();
        true
    }

    /// The names stored in `scope`, in GitHub's order (a test's read-back; no PAT, no page).
    pub fn names(&self, scope: &Scope) -> Vec<String> {
        self.collection(scope)
            .map(|secrets| secrets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Uses up `pat`'s primary rate limit until `reset_in` from now: GitHub then answers
    /// `403 rate limit exceeded` until the reset.
    pub fn exhaust_rate_limit(&mut self, pat: &str, reset_in: Duration) {
        if let Some(account) = self.accounts.get_mut(pat) {
            account.rate.used += account.rate.remaining;
            account.rate.remaining = 0;
            account.rate.reset = now_epoch_seconds() + reset_in.as_secs();
        }
    }

    /// `GET /rate_limit`: does not count against the limit, but needs a usable PAT.
    pub fn rate_limit(&mut self, pat: &str) -> Option<RateLimit> {
        let account = self.accounts.get_mut(pat)?;
        if account.state != PatState::Active {
            return None;
        }
        refill_if_due(&mut account.rate);
        Some(account.rate)
    }

    /// `GET /user`: the PAT's login. Needs a usable PAT and room in its primary rate limit, and
    /// no scope; counts the call.
    pub fn user(&mut self, pat: &str) -> Result<String, GhError> {
        self.authenticate(pat, "/user")
            .map(|account| account.login.clone())
    }

    pub fn list(&mut self, pat: &str, scope: &Scope) -> Result<Vec<SecretMeta>, GhError> {
        let path = scope.path();
        self.authorize(pat, scope, Access::Read, &path)?;
        let secrets = self
            .collection(scope)
            .ok_or_else(|| GhError::new(404, &path))?;
        Ok(secrets
            .iter()
            .take(PAGE_SIZE)
            .map(|(name, s)| meta(name, s))
            .collect())
    }

    pub fn get(&mut self, pat: &str, scope: &Scope, name: &str) -> Result<SecretMeta, GhError> {
        let path = format!("{}/{name}", scope.path());
        let name = &stored_name(name);
        self.authorize(pat, scope, Access::Read, &path)?;
        self.collection(scope)
            .and_then(|secrets| secrets.get(name))
            .map(|s| meta(name, s))
            .ok_or_else(|| GhError::new(404, &path))
    }

    /// What the GitHub Service does to write a secret: `GET …/public-key`, then `PUT …/{name}`.
    /// Answers whether the secret was new (GitHub's 201) rather than replaced (204).
    pub fn put(
        &mut self,
        pat: &str,
        scope: &Scope,
        name: &str,
        plaintext: &str,
        visibility: Option<&str>,
        selected_repository_ids: &[u64],
    ) -> Result<bool, GhError> {
        let key_path = format!("{}/public-key", scope.path());
        self.authorize(pat, scope, Access::Read, &key_path)?;
        self.collection(scope)
            .ok_or_else(|| GhError::new(404, &key_path))?;
        let path = format!("{}/{name}", scope.path());
        let name = &stored_name(name);
        self.authorize(pat, scope, Access::Write, &path)?;
        let now = now_iso();
        let is_org = matches!(scope, Scope::Org { .. });
        let secrets = self
            .collection_mut(scope)
            .ok_or_else(|| GhError::new(404, &path))?;
        let created_at = secrets
            .get(name)
            .map_or_else(|| now.clone(), |s| s.created_at.clone());
        let new = secrets
            .insert(
                name.to_owned(),
                StoredSecret {
                    plaintext: plaintext.to_owned(),
                    created_at,
                    updated_at: now,
                    visibility: is_org.then(|| visibility.unwrap_or("private").to_owned()),
                    selected_repository_ids: selected_repository_ids.to_vec(),
                },
            )
            .is_none();
        Ok(new)
    }

    pub fn delete(&mut self, pat: &str, scope: &Scope, name: &str) -> Result<(), GhError> {
        let path = format!("{}/{name}", scope.path());
        let name = &stored_name(name);
        self.authorize(pat, scope, Access::Write, &path)?;
        self.collection_mut(scope)
            .and_then(|secrets| secrets.remove(name))
            .map(|_| ())
            .ok_or_else(|| GhError::new(404, &path))
    }

    /// Authentication, then the primary rate limit, then scopes (GitHub's order). Counts the call.
    fn authorize(
        &mut self,
        pat: &str,
        scope: &Scope,
        access: Access,
        path: &str,
    ) -> Result<(), GhError> {
        let account = self.authenticate(pat, path)?;
        let has = |s: &str| account.scopes.contains(&s);
        let allowed = match (scope, access) {
            (Scope::Org { .. }, _) => has("admin:org"),
            (_, Access::Read) => has("repo") || has("public_repo"),
            (_, Access::Write) => has("repo"),
        };
        if allowed {
            Ok(())
        } else {
            Err(GhError::new(403, path))
        }
    }

    /// Authentication, then the primary rate limit (GitHub's order); counts the call.
    fn authenticate(&mut self, pat: &str, path: &str) -> Result<&mut Account, GhError> {
        let Some(account) = self.accounts.get_mut(pat) else {
            return Err(GhError::new(401, path));
        };
        match account.state {
            PatState::Rejected => return Err(GhError::new(401, path)),
            PatState::SecondaryLimited => return Err(GhError::new(429, path)),
            PatState::Active => {}
        }
        refill_if_due(&mut account.rate);
        if account.rate.remaining == 0 {
            return Err(GhError::with_reason(403, "rate limit exceeded", path));
        }
        account.rate.remaining -= 1;
        account.rate.used += 1;
        Ok(account)
    }

    fn collection(&self, scope: &Scope) -> Option<&BTreeMap<String, StoredSecret>> {
        match scope {
            Scope::Repo { owner, repo } => self
                .repos
                .get(&(owner.clone(), repo.clone()))
                .map(|r| &r.secrets),
            Scope::Environment {
                owner,
                repo,
                environment,
            } => self
                .repos
                .get(&(owner.clone(), repo.clone()))?
                .environments
                .get(environment),
            Scope::Org { org } => self.orgs.get(org),
        }
    }

    fn collection_mut(&mut self, scope: &Scope) -> Option<&mut BTreeMap<String, StoredSecret>> {
        match scope {
            Scope::Repo { owner, repo } => self
                .repos
                .get_mut(&(owner.clone(), repo.clone()))
                .map(|r| &mut r.secrets),
            Scope::Environment {
                owner,
                repo,
                environment,
            } => self
                .repos
                .get_mut(&(owner.clone(), repo.clone()))?
                .environments
                .get_mut(environment),
            Scope::Org { org } => self.orgs.get_mut(org),
        }
    }
}

fn meta(name: &str, secret: &StoredSecret) -> SecretMeta {
    SecretMeta {
        name: name.to_owned(),
        created_at: secret.created_at.clone(),
        updated_at: secret.updated_at.clone(),
        visibility: secret.visibility.clone(),
    }
}

fn fresh_rate() -> RateLimit {
    RateLimit {
        limit: RATE_LIMIT,
        remaining: RATE_LIMIT,
        reset: now_epoch_seconds() + 3_600,
        used: 0,
    }
}

fn refill_if_due(rate: &mut RateLimit) {
    if now_epoch_seconds() >= rate.reset {
        *rate = fresh_rate();
    }
}

pub(crate) fn now_epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_iso() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A secret name as GitHub stores it: in upper case, whatever case it was given in (names that
/// differ only in case are one secret).
fn stored_name(name: &str) -> String {
    name.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> GitHub {
        let mut gh = GitHub::with_preset_pats();
        gh.add_environment("o", "r", "prod");
        gh.add_org("acme");
        gh
    }

    #[test]
    fn a_put_reports_new_then_replaced_and_keeps_the_creation_time() {
        let mut gh = github();
        let admin = PatKind::Admin.token();
        let scope = Scope::repo("o", "r");
        assert_eq!(gh.put(&admin, &scope, "A", "1", None, &[]), Ok(true));
        let first = gh.secret(&scope, "A").unwrap();
        assert_eq!(gh.put(&admin, &scope, "A", "2", None, &[]), Ok(false));
        let second = gh.secret(&scope, "A").unwrap();
        assert_eq!(second.plaintext, "2");
        assert_eq!(second.created_at, first.created_at);
    }

    #[test]
    fn checks_run_in_githubs_order_authentication_then_scope_then_existence() {
        let mut gh = github();
        let missing = Scope::repo("o", "missing");
        assert_eq!(
            gh.list(&PatKind::Expired.token(), &missing)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            gh.list(&PatKind::NoScopes.token(), &missing)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            gh.list(&PatKind::Admin.token(), &missing)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            gh.list(&PatKind::RateLimited.token(), &missing)
                .unwrap_err()
                .status,
            429
        );
        let org = Scope::org("acme");
        assert_eq!(
            gh.list(&PatKind::RepoWrite.token(), &org)
                .unwrap_err()
                .status,
            403
        );
        let repo = Scope::repo("o", "r");
        assert!(gh.list(&PatKind::RepoRead.token(), &repo).is_ok());
        let err = gh
            .put(&PatKind::RepoRead.token(), &repo, "A", "1", None, &[])
            .unwrap_err();
        assert_eq!(err.status, 403);
        assert_eq!(
            err.text,
            "403 Client Error: Forbidden for url: https://api.github.com/repos/o/r/actions/secrets/A"
        );
    }

    #[test]
    fn an_exhausted_rate_limit_answers_403_rate_limit_exceeded_and_counts_calls_until_then() {
        let mut gh = github();
        let admin = PatKind::Admin.token();
        let scope = Scope::repo("o", "r");
        gh.list(&admin, &scope).unwrap();
        let rate = gh.rate_limit(&admin).unwrap();
        assert_eq!((rate.used, rate.remaining), (1, RATE_LIMIT - 1));
        gh.exhaust_rate_limit(&admin, Duration::from_secs(60));
        let err = gh.list(&admin, &scope).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(err.text.contains("rate limit exceeded"));
    }

    #[test]
    fn lists_stop_at_one_page_of_thirty() {
        let mut gh = github();
        let admin = PatKind::Admin.token();
        let scope = Scope::environment("o", "r", "prod");
        for i in 0..35 {
            gh.put(&admin, &scope, &format!("S{i:02}"), "v", None, &[])
                .unwrap();
        }
        assert_eq!(gh.list(&admin, &scope).unwrap().len(), PAGE_SIZE);
    }

    #[test]
    fn preset_tokens_are_forty_characters() {
        for kind in PatKind::ALL {
            assert_eq!(kind.token().len(), 40, "{kind:?}");
        }
    }
}
