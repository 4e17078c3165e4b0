use mgraph_deploy_api::{
    CreateData, DeleteData, ExistsData, GetData, ListData, PresenceData, PresenceEntry,
    PresenceScope,
};
use serde_json::Value;

use crate::domain::{PresenceName, Scope, SealedBlob, SealedPat, SecretName, Target, Visibility};
use crate::github_service::{
    Action, GitHubService, Reply, RequestData, UpstreamError, UpstreamErrorType,
};

use super::metadata::{Page, SecretMeta, read_meta};
use super::{
    CreateRequest, ErrorType, Failure, ListRequest, OperationKind, OrgAccess, Outcome,
    PresenceRequest, RateLimit, Request, SecretRequest,
};

/// Runs operations against the GitHub Service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Operations {
    upstream: GitHubService,
}

impl Operations {
    pub fn new(upstream: GitHubService) -> Self {
        Self { upstream }
    }

    pub fn upstream(&self) -> &GitHubService {
        &self.upstream
    }

    /// Runs one operation with this sealed PAT. `absent` says what deleting a secret that does
    /// not exist is: `not_found` on the route, done (`deleted: false`) in a workflow.
    pub async fn run(&self, pat: &SealedPat, request: &Request, absent: AbsentSecret) -> Outcome {
        let mut outcome = match request {
            Request::List(req) => self.list(pat, req).await,
            Request::Get(req) => self.get(pat, req).await,
            Request::Exists(req) => self.exists(pat, req).await,
            Request::Create(req) => self.create(pat, req).await,
            Request::Delete(req) => self.delete(pat, req, absent == AbsentSecret::IsDone).await,
            Request::Presence(req) => self.presence(pat, req).await,
        };
        // A name given in another case than GitHub stores it in is sent, and answered, as stored.
        let renamed: Vec<String> = match request {
            Request::Presence(req) => req
                .required
                .iter()
                .filter_map(PresenceName::stored_otherwise)
                .collect(),
            other => other
                .secret_name()
                .and_then(SecretName::stored_otherwise)
                .into_iter()
                .collect(),
        };
        outcome.messages.splice(0..0, renamed);
        outcome
    }

    async fn list(&self, pat: &SealedPat, req: &ListRequest) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let result = match run.list(&req.target).await {
            Ok(Listing::Secrets(page)) => {
                let may_be_incomplete = page.may_be_cut();
                if may_be_incomplete {
                    run.messages.push(format!(
                        "The GitHub Service listed {} secrets, a full first page of GitHub's list, and reads no further: {} may hold more. exists, get and presence check a name exactly",
                        page.secrets.len(),
                        req.target
                    ));
                }
                Ok(data(ListData {
                    secrets: page.secrets,
                    scope: req.target.scope(),
                    may_be_incomplete,
                }))
            }
            Ok(Listing::EnvironmentMissing) => Err(environment_missing(&req.target)),
            Err(f) => Err(f),
        };
        run.finish(OperationKind::List, result)
    }

    async fn get(&self, pat: &SealedPat, req: &SecretRequest) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let result = match run.get(&req.target, &req.secret_name).await {
            Ok(Found::Yes(secret)) => Ok(data(GetData {
                secret,
                scope: req.target.scope(),
            })),
            Ok(Found::No) => Err(Failure::new(
                ErrorType::NotFound,
                format!(
                    "Secret '{}' does not exist in {}",
                    req.secret_name, req.target
                ),
            )),
            Err(f) => Err(f),
        };
        run.finish(OperationKind::Get, result)
    }

    async fn exists(&self, pat: &SealedPat, req: &SecretRequest) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let result = run.get(&req.target, &req.secret_name).await.map(|found| {
            data(ExistsData {
                exists: matches!(found, Found::Yes(_)),
                secret_name: req.secret_name.clone(),
                scope: req.target.scope(),
            })
        });
        run.finish(OperationKind::Exists, result)
    }

    async fn create(&self, pat: &SealedPat, req: &CreateRequest) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let result = run.create(req).await;
        run.finish(OperationKind::Create, result)
    }

    async fn delete(&self, pat: &SealedPat, req: &SecretRequest, absent_is_fine: bool) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let deleted = |deleted| {
            Ok(data(DeleteData {
                deleted,
                secret_name: req.secret_name.clone(),
                scope: req.target.scope(),
            }))
        };
        let gone = || {
            format!(
                "The connection to the GitHub Service failed after the delete of secret '{}' was sent; the secret is not in {} now, but whether this request deleted it or it was already absent cannot be told",
                req.secret_name, req.target
            )
        };
        let result = match run.delete(&req.target, &req.secret_name).await {
            Ok(Deleted::Yes) => deleted(true),
            Ok(Deleted::Absent) if absent_is_fine => deleted(false),
            Ok(Deleted::GoneUnattributed) if absent_is_fine => {
                run.messages.push(gone());
                deleted(false)
            }
            Ok(Deleted::Absent) => Err(Failure::new(
                ErrorType::NotFound,
                format!(
                    "Secret '{}' does not exist in {}",
                    req.secret_name, req.target
                ),
            )),
            Ok(Deleted::GoneUnattributed) => {
                Err(Failure::new(ErrorType::UpstreamAmbiguous, gone()))
            }
            Err(f) => Err(f),
        };
        run.finish(OperationKind::Delete, result)
    }

    /// The secrets of one scope (one list call; a missing environment is told apart).
    pub async fn scope_secrets(
        &self,
        pat: &SealedPat,
        target: &Target,
    ) -> Result<Listing, Failure> {
        Run::new(&self.upstream, pat.blob()).list(target).await
    }

    /// Whether one secret exists, for names a full page of a listing could not show.
    pub async fn secret_exists(
        &self,
        pat: &SealedPat,
        target: &Target,
        name: &SecretName,
    ) -> Result<bool, Failure> {
        let found = Run::new(&self.upstream, pat.blob())
            .get(target, name)
            .await?;
        Ok(matches!(found, Found::Yes(_)))
    }

    /// One secret's metadata (`None`: confirmed absent), and the upstream calls it took.
    pub async fn secret_meta(
        &self,
        pat: &SealedPat,
        target: &Target,
        name: &SecretName,
    ) -> (Result<Option<SecretMeta>, Failure>, u32) {
        let mut run = Run::new(&self.upstream, pat.blob());
        let found = run.get(target, name).await.map(|found| match found {
            Found::Yes(meta) => Some(meta),
            Found::No => None,
        });
        (found, run.upstream_calls)
    }

    async fn presence(&self, pat: &SealedPat, req: &PresenceRequest) -> Outcome {
        let mut run = Run::new(&self.upstream, pat.blob());
        let result = run.presence(&req.target, &req.required).await;
        run.finish(OperationKind::Presence, result)
    }
}

/// An operation's `data` as the envelope carries it.
fn data(data: impl serde::Serialize) -> Value {
    serde_json::to_value(data).expect("operation data is plain JSON: named members, no maps")
}

/// What deleting a secret that does not exist is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbsentSecret {
    /// `not_found` (an operation route: the caller named a secret that is not there).
    IsNotFound,
    /// Done, `deleted: false` (a workflow step: "make sure it is gone").
    IsDone,
}

/// The listing of a scope, or the one "not found" that is worth telling apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Secrets(Page),
    /// The repository exists and the PAT can read it, but the environment does not exist.
    EnvironmentMissing,
}

enum Found {
    Yes(SecretMeta),
    /// Confirmed absent: the PAT was shown to work in this scope.
    No,
}

/// One operation in progress: the upstream calls it makes, the notes it gathers, the last rate limit.
struct Run<'a> {
    upstream: &'a GitHubService,
    pat: &'a SealedBlob,
    messages: Vec<String>,
    rate_limit: Option<RateLimit>,
    upstream_calls: u32,
}

fn request_data(target: &Target) -> RequestData<'_> {
    match target {
        Target::Repo { owner, repo } => RequestData {
            owner: Some(owner.as_str()),
            repo: Some(repo.as_str()),
            ..Default::default()
        },
        Target::Environment {
            owner,
            repo,
            environment,
        } => RequestData {
            owner: Some(owner.as_str()),
            repo: Some(repo.as_str()),
            environment: Some(environment.as_str()),
            ..Default::default()
        },
        Target::Org { org } => RequestData {
            org: Some(org.as_str()),
            ..Default::default()
        },
    }
}

pub fn environment_missing(target: &Target) -> Failure {
    match target {
        Target::Environment {
            owner,
            repo,
            environment,
        } => Failure::new(
            ErrorType::NotFound,
            format!("Environment '{environment}' does not exist in {owner}/{repo}"),
        ),
        other => Failure::new(ErrorType::NotFound, format!("{other} was not found")),
    }
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        from_upstream_error(e)
    }
}

fn from_upstream_error(e: UpstreamError) -> Failure {
    let error_type = match e {
        UpstreamError::Unavailable => ErrorType::UpstreamUnavailable,
        UpstreamError::Timeout(_) => ErrorType::UpstreamTimeout,
        _ => ErrorType::UpstreamError,
    };
    let transient = match &e {
        UpstreamError::Dropped => true,
        UpstreamError::NotJson { status }
        | UpstreamError::NoEnvelope { status, .. }
        | UpstreamError::Failed { status, .. } => matches!(status, 502..=504),
        _ => false,
    };
    let message = capitalise(&e.to_string());
    if transient {
        Failure::transient(error_type, message)
    } else {
        Failure::new(error_type, message)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn write_permission_hint(scope: Scope) -> &'static str {
    match scope {
        Scope::Org => {
            "a classic PAT needs `admin:org`; a fine-grained token needs organisation Secrets read and write"
        }
        Scope::Repo | Scope::Environment => {
            "a classic PAT needs `repo`; a fine-grained token needs Secrets (and for environments, Environments) read and write"
        }
    }
}

impl<'a> Run<'a> {
    fn new(upstream: &'a GitHubService, pat: &'a SealedBlob) -> Self {
        Self {
            upstream,
            pat,
            messages: Vec::new(),
            rate_limit: None,
            upstream_calls: 0,
        }
    }

    fn finish(self, kind: OperationKind, result: Result<Value, Failure>) -> Outcome {
        let result = result.map_err(|mut f| {
            if f.error_type == ErrorType::RateLimited && f.retry_after.is_none() {
                f.retry_after = self.rate_limit.and_then(|r| r.retry_after());
            }
            f
        });
        Outcome {
            kind,
            result,
            messages: self.messages,
            rate_limit: self.rate_limit,
            upstream_calls: self.upstream_calls,
        }
    }

    /// One upstream call; the rate limit it reports is kept.
    async fn send(
        &mut self,
        target: &Target,
        action: Action,
        data: RequestData<'_>,
    ) -> Result<Reply, UpstreamError> {
        self.upstream_calls += 1;
        let reply = self
            .upstream
            .secrets(target.scope(), action, self.pat, data)
            .await?;
        if let Some(rl) = reply.context.rate_limit {
            self.rate_limit = Some(rl.into());
        }
        Ok(reply)
    }

    async fn call(
        &mut self,
        target: &Target,
        action: Action,
        data: RequestData<'_>,
    ) -> Result<Reply, Failure> {
        self.send(target, action, data)
            .await
            .map_err(from_upstream_error)
    }

    /// What `reply` says, before any diagnosis: done when `done` accepts it; ambiguous when its
    /// error type is one of `ambiguous` (the upstream gives those for several causes, and a
    /// diagnosis follows); otherwise a failure taken at the upstream's word.
    fn classify(
        &self,
        reply: Reply,
        target: &Target,
        done: fn(&Reply) -> bool,
        ambiguous: &[UpstreamErrorType],
    ) -> Result<Answer, Failure> {
        if done(&reply) {
            Ok(Answer::Done(reply))
        } else if ambiguous.contains(reply.error_type()) {
            Ok(Answer::Ambiguous(reply))
        } else {
            Err(self.plain_failure(&reply, target))
        }
    }

    /// Maps an upstream failure whose `error_type` can be taken at its word.
    fn plain_failure(&self, reply: &Reply, target: &Target) -> Failure {
        let said = reply.error_text();
        let said_suffix = said
            .as_deref()
            .map(|s| format!(" (GitHub Service: {s})"))
            .unwrap_or_default();
        match reply.error_type() {
            UpstreamErrorType::DecryptionFailed => decryption_failure(said.as_deref()),
            UpstreamErrorType::InvalidPat => Failure::new(
                ErrorType::InvalidPat,
                "GitHub rejected the PAT: it is wrong, expired or revoked",
            ),
            UpstreamErrorType::Forbidden => Failure::new(
                ErrorType::Forbidden,
                format!(
                    "The PAT lacks permission for {} secrets of {target}: {}",
                    target.scope(),
                    write_permission_hint(target.scope())
                ),
            ),
            UpstreamErrorType::RateLimited => rate_limited(),
            UpstreamErrorType::GithubApiError
                if said.as_deref().is_some_and(|s| s.contains("429")) =>
            {
                rate_limited()
            }
            _ => Failure::new(
                ErrorType::UpstreamError,
                format!(
                    "The GitHub Service failed with HTTP {} ({}){said_suffix}",
                    reply.http_status,
                    reply.error_type().as_str()
                ),
            ),
        }
    }

    /// Lists one scope. The upstream's list reports GitHub's errors faithfully, so its 404 means
    /// the repository, environment or organisation is missing (or invisible to the PAT).
    async fn list(&mut self, target: &Target) -> Result<Listing, Failure> {
        let reply = self
            .call(target, Action::List, request_data(target))
            .await?;
        if let Answer::Done(reply) = self.classify(reply, target, answered_2xx, &NOT_FOUND)? {
            let page = reply
                .data
                .get("secrets")
                .and_then(|s| Page::read(s, &mut self.messages))
                .ok_or_else(|| {
                    Failure::new(
                        ErrorType::UpstreamError,
                        "The GitHub Service answered a list without a usable `secrets` array",
                    )
                })?;
            return Ok(Listing::Secrets(page));
        }
        match target {
            Target::Environment { .. } => {
                // Repository missing, or only the environment? One more list tells.
                let repository = target
                    .repository()
                    .expect("an environment is in a repository");
                match Box::pin(self.list(&repository)).await? {
                    Listing::Secrets(_) => Ok(Listing::EnvironmentMissing),
                    Listing::EnvironmentMissing => {
                        unreachable!("a repository listing has no environment")
                    }
                }
            }
            Target::Repo { .. } => Err(Failure::new(
                ErrorType::NotFound,
                format!("Repository {target} was not found, or the PAT cannot see it"),
            )),
            Target::Org { .. } => Err(Failure::new(
                ErrorType::NotFound,
                format!("The {target} was not found, or the PAT cannot see it"),
            )),
        }
    }

    /// Runs the diagnosing list after an ambiguous answer; notes that it did.
    async fn diagnose(&mut self, target: &Target, reply: &Reply) -> Result<Listing, Failure> {
        let said = reply
            .error_text()
            .unwrap_or_else(|| reply.error_type().as_str().to_owned());
        let listing = self.list(target).await;
        let conclusion = match &listing {
            Ok(Listing::Secrets(_)) => "the PAT can read this scope".to_owned(),
            Ok(Listing::EnvironmentMissing) => "the environment does not exist".to_owned(),
            Err(f) => format!("{} ({})", f.message, f.error_type.as_str()),
        };
        self.messages.push(format!(
            "Diagnosed with an extra list call after the GitHub Service answered HTTP {} '{said}': {conclusion}",
            reply.http_status
        ));
        listing
    }

    async fn get(&mut self, target: &Target, name: &SecretName) -> Result<Found, Failure> {
        let data = RequestData {
            secret_name: Some(name.as_str()),
            ..request_data(target)
        };
        let reply = self.call(target, Action::Get, data).await?;
        let reply = match self.classify(reply, target, answered_200, &NOT_FOUND)? {
            Answer::Done(reply) => reply,
            Answer::Ambiguous(reply) => return self.get_diagnosed(target, name, &reply).await,
        };
        let secret = reply
            .data
            .get("secret")
            .and_then(|s| read_meta(s, &mut self.messages))
            .filter(|s| s.name == *name)
            .ok_or_else(|| {
                Failure::new(
                    ErrorType::UpstreamError,
                    "The GitHub Service answered a get without the secret's metadata",
                )
            })?;
        Ok(Found::Yes(secret))
    }

    /// A get the upstream answered "not found": absent, or refused?
    async fn get_diagnosed(
        &mut self,
        target: &Target,
        name: &SecretName,
        reply: &Reply,
    ) -> Result<Found, Failure> {
        match self.diagnose(target, reply).await? {
            Listing::EnvironmentMissing => Err(environment_missing(target)),
            Listing::Secrets(page) if page.contains(name) => Err(Failure::new(
                ErrorType::UpstreamAmbiguous,
                format!(
                    "The GitHub Service reported secret '{name}' as not found, but it is listed in {target}; GitHub may have rejected the read (rate limit or permission), retry later"
                ),
            )),
            Listing::Secrets(_) => Ok(Found::No),
        }
    }

    async fn delete(&mut self, target: &Target, name: &SecretName) -> Result<Deleted, Failure> {
        let data = RequestData {
            secret_name: Some(name.as_str()),
            ..request_data(target)
        };
        let reply = match self.send(target, Action::Delete, data).await {
            Err(UpstreamError::Dropped) => return self.delete_interrupted(target, name).await,
            Err(UpstreamError::Timeout(seconds)) => {
                return Err(unanswered_write("delete", name, seconds));
            }
            sent => sent.map_err(from_upstream_error)?,
        };
        let reply = match self.classify(reply, target, answered_2xx, &NOT_FOUND)? {
            Answer::Done(reply) => {
                self.messages.extend(reply.messages());
                return Ok(Deleted::Yes);
            }
            Answer::Ambiguous(reply) => reply,
        };
        let still_there = || {
            Failure::new(
                ErrorType::UpstreamAmbiguous,
                format!(
                    "Could not delete secret '{name}' from {target} although it exists and the PAT can read it: the PAT most likely lacks write permission ({}), or GitHub refused the delete",
                    write_permission_hint(target.scope())
                ),
            )
        };
        match self.diagnose(target, &reply).await? {
            Listing::EnvironmentMissing => Err(environment_missing(target)),
            Listing::Secrets(page) if page.contains(name) => Err(still_there()),
            Listing::Secrets(page) if page.may_be_cut() => {
                // A full page may be cut short: ask for the name itself.
                match self.get(target, name).await? {
                    Found::Yes(_) => Err(still_there()),
                    Found::No => Ok(Deleted::Absent),
                }
            }
            Listing::Secrets(_) => Ok(Deleted::Absent),
        }
    }

    /// A delete whose connection failed after it went out, so that the upstream may have acted on
    /// it: never sent again blindly. Whether the secret is still there says what became of it, as
    /// far as reading right after can tell (the upstream may still be at work on it).
    async fn delete_interrupted(
        &mut self,
        target: &Target,
        name: &SecretName,
    ) -> Result<Deleted, Failure> {
        let sent = format!(
            "The connection to the GitHub Service failed after the delete of secret '{name}' was sent"
        );
        match self.locate(target, name).await {
            Err(f) => Err(unknown_effect(&sent, &f)),
            Ok(Located::EnvironmentMissing) => Err(environment_missing(target)),
            Ok(Located::Absent) => Ok(Deleted::GoneUnattributed),
            Ok(Located::Present) => Err(Failure::transient(
                ErrorType::UpstreamError,
                format!(
                    "{sent}, and a read right after still finds it in {target}: the delete has not taken effect; try again"
                ),
            )),
        }
    }

    /// A create whose connection failed after it went out: never sent again blindly. A secret
    /// that is not there has not been written; one that is may hold the old value or the new
    /// one, which nobody can read back.
    async fn write_interrupted(
        &mut self,
        target: &Target,
        name: &SecretName,
    ) -> Result<Written, Failure> {
        let sent = format!(
            "The connection to the GitHub Service failed after the write of secret '{name}' was sent"
        );
        match self.locate(target, name).await {
            Err(f) => Err(unknown_effect(&sent, &f)),
            Ok(Located::EnvironmentMissing) => Ok(Written::EnvironmentMissing),
            Ok(Located::Absent) => Err(Failure::transient(
                ErrorType::UpstreamError,
                format!(
                    "{sent}, and a read right after does not find it in {target}: the write has not taken effect; try again"
                ),
            )),
            Ok(Located::Present) => Err(Failure::new(
                ErrorType::UpstreamAmbiguous,
                format!(
                    "{sent}: the write may or may not have taken effect; the secret exists in {target}, but GitHub never shows a value, so whether it holds the new one cannot be told; write it again"
                ),
            )),
        }
    }

    /// Whether `name` is in `target` now: one list, and a get when the list's page may be cut.
    async fn locate(&mut self, target: &Target, name: &SecretName) -> Result<Located, Failure> {
        match self.list(target).await? {
            Listing::EnvironmentMissing => Ok(Located::EnvironmentMissing),
            Listing::Secrets(page) if page.contains(name) => Ok(Located::Present),
            Listing::Secrets(page) if page.may_be_cut() => match self.get(target, name).await? {
                Found::Yes(_) => Ok(Located::Present),
                Found::No => Ok(Located::Absent),
            },
            Listing::Secrets(_) => Ok(Located::Absent),
        }
    }

    async fn create(&mut self, req: &CreateRequest) -> Result<Value, Failure> {
        match self.write(&req.target, req).await? {
            Written::Yes => Ok(data(CreateData {
                created: true,
                secret_name: req.secret_name.clone(),
                scope: req.target.scope(),
                env_fallback: false,
                unchanged: false,
                drifted: false,
            })),
            Written::EnvironmentMissing if req.env_fallback => {
                let repository = req
                    .target
                    .repository()
                    .expect("an environment is in a repository");
                self.messages.push(format!(
                    "Environment '{}' does not exist in {repository}; wrote the repository secret instead (env_fallback: repo)",
                    env_name(&req.target)
                ));
                match self.write(&repository, req).await? {
                    Written::Yes => Ok(data(CreateData {
                        created: true,
                        secret_name: req.secret_name.clone(),
                        scope: Scope::Repo,
                        env_fallback: true,
                        unchanged: false,
                        drifted: false,
                    })),
                    Written::EnvironmentMissing => {
                        unreachable!("a repository target has no environment")
                    }
                }
            }
            Written::EnvironmentMissing => Err(environment_missing(&req.target)),
        }
    }

    async fn write(&mut self, target: &Target, req: &CreateRequest) -> Result<Written, Failure> {
        let org = req.org_access.as_ref();
        let visibility = match org {
            None => None,
            Some(OrgAccess {
                visibility: Some(v),
                ..
            }) => Some(*v),
            Some(_) => Some(self.current_visibility(target, &req.secret_name).await?),
        };
        let data = RequestData {
            secret_name: Some(req.secret_name.as_str()),
            encrypted_value: Some(req.value.blob().expose()),
            visibility,
            repo_ids: org
                .filter(|o| !o.repo_ids.is_empty())
                .map(|o| o.repo_ids.as_slice()),
            ..request_data(target)
        };
        let reply = match self.send(target, Action::Create, data).await {
            Err(UpstreamError::Dropped) => {
                return self.write_interrupted(target, &req.secret_name).await;
            }
            Err(UpstreamError::Timeout(seconds)) => {
                return Err(unanswered_write("write", &req.secret_name, seconds));
            }
            sent => sent.map_err(from_upstream_error)?,
        };
        let ambiguous = [
            UpstreamErrorType::GithubApiError,
            UpstreamErrorType::NotFound,
        ];
        let reply = match self.classify(reply, target, answered_2xx, &ambiguous)? {
            Answer::Done(reply) => {
                self.messages.extend(reply.messages());
                return Ok(Written::Yes);
            }
            Answer::Ambiguous(reply) => reply,
        };
        match self.diagnose(target, &reply).await? {
            Listing::EnvironmentMissing => Ok(Written::EnvironmentMissing),
            Listing::Secrets(_) => Err(Failure::new(
                ErrorType::UpstreamAmbiguous,
                format!(
                    "Could not write secret '{}' to {target}, although the PAT can read it: the PAT most likely lacks write permission ({}); otherwise GitHub refused the write",
                    req.secret_name,
                    write_permission_hint(target.scope())
                ),
            )),
        }
    }

    /// The visibility an organisation write without one must keep: the secret's current one,
    /// `private` for a new secret. The upstream cannot read back which repositories a `selected`
    /// secret is visible to, so such a secret is not written without them.
    async fn current_visibility(
        &mut self,
        target: &Target,
        name: &SecretName,
    ) -> Result<Visibility, Failure> {
        let visibility = match self.get(target, name).await? {
            Found::No => return Ok(Visibility::Private),
            Found::Yes(meta) => meta.visibility,
        };
        match visibility {
            Some(Visibility::Selected) => Err(Failure::new(
                ErrorType::Conflict,
                format!(
                    "Secret '{name}' of {target} is visible to selected repositories, which the GitHub Service cannot read back; pass `repo_ids` (the repositories that should see it) or another `visibility` to write it"
                ),
            )),
            Some(kept) => {
                self.messages.push(format!(
                    "Kept the current visibility '{}' of secret '{name}' (no `visibility` was given)",
                    kept.as_str()
                ));
                Ok(kept)
            }
            None => Err(Failure::new(
                ErrorType::UpstreamError,
                format!(
                    "The GitHub Service did not report the current visibility of secret '{name}' of {target}; pass `visibility` to write it"
                ),
            )),
        }
    }

    async fn presence(
        &mut self,
        target: &Target,
        required: &[PresenceName],
    ) -> Result<Value, Failure> {
        let repository = target
            .repository()
            .expect("presence targets are validated to be in a repository");
        let env_secrets = match target {
            Target::Environment { .. } => match self.list(target).await? {
                Listing::Secrets(s) => Some(s),
                Listing::EnvironmentMissing => {
                    self.messages.push(format!(
                        "Environment '{}' does not exist in {repository}; only repository secrets were checked",
                        env_name(target)
                    ));
                    None
                }
            },
            _ => None,
        };
        let repo_secrets = match self.list(&repository).await? {
            Listing::Secrets(s) => s,
            Listing::EnvironmentMissing => unreachable!("a repository listing has no environment"),
        };

        let mut report = Vec::with_capacity(required.len());
        for name in required {
            let Some(secret_name) = name.as_secret_name() else {
                report.push(PresenceEntry {
                    name: name.clone(),
                    present: true,
                    scope: Some(PresenceScope::Builtin),
                });
                continue;
            };
            let mut scope = None;
            if let Some(env) = &env_secrets {
                if self.present(target, env, &secret_name).await? {
                    scope = Some(PresenceScope::Environment);
                }
            }
            if scope.is_none()
                && self
                    .present(&repository, &repo_secrets, &secret_name)
                    .await?
            {
                scope = Some(PresenceScope::Repo);
            }
            report.push(PresenceEntry {
                name: name.clone(),
                present: scope.is_some(),
                scope,
            });
        }
        let all_present = report.iter().all(|r| r.present);
        Ok(data(PresenceData {
            secrets: report,
            all_present,
        }))
    }

    /// Whether `name` is in a scope whose listing is `listed`; a full page is confirmed by name.
    async fn present(
        &mut self,
        target: &Target,
        listed: &Page,
        name: &SecretName,
    ) -> Result<bool, Failure> {
        if listed.contains(name) {
            return Ok(true);
        }
        if !listed.may_be_cut() {
            return Ok(false);
        }
        Ok(matches!(self.get(target, name).await?, Found::Yes(_)))
    }
}

enum Written {
    Yes,
    EnvironmentMissing,
}

/// What became of a delete.
enum Deleted {
    Yes,
    /// Confirmed absent: the PAT was shown to work in this scope.
    Absent,
    /// Absent after a delete whose connection failed: removed by this delete, or already absent.
    GoneUnattributed,
}

/// Where a secret is, as far as reading tells.
enum Located {
    Present,
    Absent,
    EnvironmentMissing,
}

/// A write or delete the GitHub Service did not answer in time: it went out, and may be done.
fn unanswered_write(what: &str, name: &SecretName, seconds: u64) -> Failure {
    Failure::new(
        ErrorType::UpstreamTimeout,
        format!(
            "The GitHub Service did not answer within {seconds} s after the {what} of secret '{name}' was sent: it may or may not have taken effect"
        ),
    )
}

/// A write or delete that went out, whose fate the read after it could not tell.
fn unknown_effect(sent: &str, check: &Failure) -> Failure {
    Failure::new(
        ErrorType::UpstreamAmbiguous,
        format!(
            "{sent}: it may or may not have taken effect, and reading the secrets afterwards failed too: {} ({})",
            check.message, check.error_type
        ),
    )
}

/// An upstream answer, classified.
enum Answer {
    /// It did what was asked.
    Done(Reply),
    /// An answer the upstream gives for several causes; the diagnosis that follows tells which.
    Ambiguous(Reply),
}

/// The upstream's own `not_found`: a missing scope, a missing secret, or a refused PAT.
const NOT_FOUND: [UpstreamErrorType; 1] = [UpstreamErrorType::NotFound];

fn answered_2xx(reply: &Reply) -> bool {
    reply.context.success && (200..300).contains(&reply.http_status)
}

fn answered_200(reply: &Reply) -> bool {
    reply.context.success && reply.http_status == 200
}

fn env_name(target: &Target) -> &str {
    match target {
        Target::Environment { environment, .. } => environment.as_str(),
        _ => "",
    }
}

pub(super) fn rate_limited() -> Failure {
    Failure::new(
        ErrorType::RateLimited,
        "GitHub's rate limit for this PAT is exhausted; retry after it resets",
    )
}

pub(super) fn decryption_failure(said: Option<&str>) -> Failure {
    let said = said.unwrap_or_default();
    let message = if said.contains("header") || said.contains("whitespace") {
        "The GitHub Service opened the PAT, but it is not usable as a token: it most likely contains whitespace or a trailing newline; seal the PAT again without it"
    } else if said.contains("secret value") {
        "The GitHub Service could not open encrypted_value: it was sealed to another (or an old) public key, or is corrupt; fetch GET /public-keys/github again and re-seal"
    } else if said.contains("PAT") || said.contains("Decryption failed") || said.contains("base64")
    {
        "The GitHub Service could not open encrypted_pat: it was sealed to another (or an old) public key, or is corrupt; fetch GET /public-keys/github again and re-seal"
    } else {
        "The GitHub Service could not open a sealed blob: it was sealed to another (or an old) public key, or is corrupt; fetch GET /public-keys/github again and re-seal"
    };
    Failure::new(ErrorType::DecryptionFailed, message)
}
