//! Which secrets a command works on, from its flags, `GH_REPO` or the git `origin` remote (as
//! `gh` does), and the write options that fit them. Errors name the flag or variable to change.

use mgraph_deploy_api::{
    EnvFallback, EnvironmentName, NameError, OptionMisfit, OrgName, OwnerName, RepoName, Visibility,
};

use std::path::Path;

use super::InputError;
use super::args::{TargetArgs, WriteArgs};
use crate::api::{Target, WriteOptions};

/// Where the repository came from when `--repo` was not given.
const NO_REPOSITORY: &str = "no repository: pass --repo OWNER/REPO (or --org ORG), set GH_REPO, or run inside a git repository whose origin remote is on github.com";

impl TargetArgs {
    /// The target, and a note saying where the repository came from when it was not `--repo`
    /// (the git remote is the one of `dir`'s repository).
    pub(super) fn resolve_in(&self, dir: &Path) -> Result<(Target, Option<String>), InputError> {
        if let Some(org) = &self.org {
            if self.environment.is_some() || self.repo.is_some() {
                return Err(InputError(
                    "--org names organisation secrets: it cannot be combined with --repo or --env"
                        .into(),
                ));
            }
            let org = OrgName::try_from(org.as_str()).map_err(rule("--org"))?;
            return Ok((Target::Org { org }, None));
        }
        let (owner, repo, source) = match &self.repo {
            Some(repo) => {
                let (owner, repo) = owner_and_repo(repo).ok_or_else(|| {
                    InputError(format!(
                        "--repo must be OWNER/REPO (or https://github.com/OWNER/REPO), got {repo:?}"
                    ))
                })?;
                (owner, repo, None)
            }
            None => default_repository(dir)?,
        };
        let owner = OwnerName::try_from(owner.as_str()).map_err(rule("--repo owner"))?;
        let repo = RepoName::try_from(repo.as_str()).map_err(rule("--repo repository name"))?;
        let note = source.map(|source| format!("using {owner}/{repo} (from {source})"));
        let target = match &self.environment {
            Some(environment) => Target::Environment {
                owner,
                repo,
                environment: EnvironmentName::try_from(environment.as_str())
                    .map_err(rule("--env"))?,
            },
            None => Target::Repo { owner, repo },
        };
        Ok((target, note))
    }
}

fn rule(flag: &'static str) -> impl Fn(NameError) -> InputError {
    move |e| InputError(format!("{flag} {e}"))
}

/// `OWNER/REPO`, also as gh takes it: `github.com/OWNER/REPO` or the repository's URL
/// (`https://github.com/OWNER/REPO`, with `.git` or `/` at the end, or a git remote's URL).
fn owner_and_repo(text: &str) -> Option<(String, String)> {
    if text.contains("://") || text.starts_with("git@") {
        return github_repository(text).ok();
    }
    let text = text.strip_prefix("github.com/").unwrap_or(text);
    let text = text.trim_end_matches('/');
    let text = text.strip_suffix(".git").unwrap_or(text);
    let (owner, repo) = text.split_once('/')?;
    (!owner.is_empty() && !repo.is_empty() && !repo.contains('/'))
        .then(|| (owner.to_owned(), repo.to_owned()))
}

/// `GH_REPO`, else the GitHub repository of the current directory's `origin` remote.
fn default_repository(dir: &Path) -> Result<(String, String, Option<&'static str>), InputError> {
    if let Ok(value) = std::env::var("GH_REPO")
        && !value.is_empty()
    {
        let (owner, repo) = owner_and_repo(&value).ok_or_else(|| {
            InputError(format!(
                "GH_REPO must be OWNER/REPO (or github.com/OWNER/REPO, or https://github.com/OWNER/REPO), got {value:?}"
            ))
        })?;
        return Ok((owner, repo, Some("GH_REPO")));
    }
    let output = std::process::Command::new("git")
        .args(["config", "--get", "remote.origin.url"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output();
    let url = match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => return Err(InputError(NO_REPOSITORY.into())),
    };
    match github_repository(&url) {
        Ok((owner, repo)) => Ok((owner, repo, Some("the git remote origin"))),
        Err(host) => Err(InputError(format!(
            "the git remote origin is on {host}, not github.com: pass --repo OWNER/REPO (or set GH_REPO)"
        ))),
    }
}

/// The owner and repository of a GitHub remote URL (`https://github.com/o/r.git`,
/// `git@github.com:o/r.git`, `ssh://git@github.com/o/r`), or the host it names instead.
fn github_repository(url: &str) -> Result<(String, String), String> {
    let (host, path) = if let Some((_, rest)) = url.split_once("://") {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split_once('/').unwrap_or((rest, ""))
    } else if let Some((left, path)) = url.split_once(':') {
        (left.rsplit_once('@').map_or(left, |(_, h)| h), path)
    } else {
        return Err("a local path".to_owned());
    };
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    if host != "github.com" && host != "www.github.com" {
        return Err(host);
    }
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    owner_and_repo(path).ok_or_else(|| "github.com without OWNER/REPO".to_owned())
}

impl WriteArgs {
    /// The options of a write in `target`, or the flags that do not fit it.
    pub(super) fn options(&self, target: &Target) -> Result<WriteOptions, InputError> {
        let visibility = match self.visibility.as_deref() {
            None => None,
            Some("all") => Some(Visibility::All),
            Some("private") => Some(Visibility::Private),
            Some("selected") => Some(Visibility::Selected),
            Some(other) => {
                return Err(InputError(format!(
                    "--visibility must be all, private or selected, got {other:?}"
                )));
            }
        };
        let env_fallback = self.env_fallback.then_some(EnvFallback::Repo);
        mgraph_deploy_api::write_options(target, visibility, self.repo_ids.clone(), env_fallback)
            .map_err(|misfit| {
                InputError(
                    match misfit {
                        OptionMisfit::SelectedWithoutRepoIds => {
                            "--visibility selected needs --repo-ids ID,... (the repositories that may use the secret)"
                        }
                        OptionMisfit::RepoIdsWithoutSelected => {
                            "--repo-ids goes with --visibility selected (or without --visibility)"
                        }
                        OptionMisfit::VisibilityOutsideOrg => {
                            "--visibility applies only to organisation secrets (--org)"
                        }
                        OptionMisfit::RepoIdsOutsideOrg => {
                            "--repo-ids applies only to organisation secrets (--org)"
                        }
                        OptionMisfit::EnvFallbackOutsideEnvironment => {
                            "--env-fallback applies only to environment secrets (--env)"
                        }
                    }
                    .into(),
                )
            })?;
        Ok(WriteOptions {
            visibility,
            repo_ids: self.repo_ids.clone(),
            env_fallback: self.env_fallback,
            fingerprint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_in_every_url_form_name_their_repository_and_others_their_host() {
        for url in [
            "https://github.com/octo/app.git",
            "https://user:token@github.com/octo/app",
            "http://github.com/octo/app/",
            "git@github.com:octo/app.git",
            "ssh://git@github.com:22/octo/app.git",
            "git://github.com/octo/app.git",
        ] {
            assert_eq!(
                github_repository(url),
                Ok(("octo".to_owned(), "app".to_owned())),
                "{url}"
            );
        }
        assert_eq!(
            github_repository("git@gitlab.com:octo/app.git"),
            Err("gitlab.com".to_owned())
        );
        assert!(github_repository("/srv/git/app.git").is_err());
        assert!(github_repository("https://github.com/octo").is_err());
    }

    #[test]
    fn a_repository_is_taken_in_each_form_gh_takes_it() {
        for text in [
            "octo/app",
            "github.com/octo/app",
            "https://github.com/octo/app",
            "https://github.com/octo/app.git",
            "https://github.com/octo/app/",
            "git@github.com:octo/app.git",
        ] {
            assert_eq!(
                owner_and_repo(text),
                Some(("octo".to_owned(), "app".to_owned())),
                "{text}"
            );
        }
        for text in [
            "octo",
            "https://gitlab.com/octo/app",
            "octo/app/extra",
            "https://github.com/octo/app/tree/main",
        ] {
            assert_eq!(owner_and_repo(text), None, "{text}");
        }
    }
}
