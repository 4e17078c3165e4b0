use std::fmt;

use crate::rules;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::{EnvironmentName, OrgName, OwnerName, RepoName, present};

/// Where secrets live. The scope is a property of the target's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Repo,
    Environment,
    Org,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Repo => "repo",
            Scope::Environment => "environment",
            Scope::Org => "org",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated target. On the wire: `{"owner", "repo"}`, `{"owner", "repo", "environment"}` or
/// `{"org"}`; any other shape is refused with the rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TargetSpec", into = "TargetSpec")]
pub enum Target {
    Repo {
        owner: OwnerName,
        repo: RepoName,
    },
    Environment {
        owner: OwnerName,
        repo: RepoName,
        environment: EnvironmentName,
    },
    Org {
        org: OrgName,
    },
}

impl Target {
    /// `owner/repo`'s repository secrets.
    pub fn repo(owner: &str, repo: &str) -> Result<Self, crate::NameError> {
        Ok(Target::Repo {
            owner: OwnerName::try_from(owner)?,
            repo: RepoName::try_from(repo)?,
        })
    }

    /// The secrets of `owner/repo`'s deployment environment `environment`.
    pub fn environment(
        owner: &str,
        repo: &str,
        environment: &str,
    ) -> Result<Self, crate::NameError> {
        Ok(Target::Environment {
            owner: OwnerName::try_from(owner)?,
            repo: RepoName::try_from(repo)?,
            environment: EnvironmentName::try_from(environment)?,
        })
    }

    /// The organisation `org`'s secrets.
    pub fn org(org: &str) -> Result<Self, crate::NameError> {
        Ok(Target::Org {
            org: OrgName::try_from(org)?,
        })
    }

    pub fn scope(&self) -> Scope {
        match self {
            Target::Repo { .. } => Scope::Repo,
            Target::Environment { .. } => Scope::Environment,
            Target::Org { .. } => Scope::Org,
        }
    }

    /// The repository this target is in or beside (`None` for an organisation).
    pub fn repository(&self) -> Option<Target> {
        match self {
            Target::Repo { .. } => Some(self.clone()),
            Target::Environment { owner, repo, .. } => Some(Target::Repo {
                owner: owner.clone(),
                repo: repo.clone(),
            }),
            Target::Org { .. } => None,
        }
    }
}

/// Human form used in messages and reports: `owner/repo`, `owner/repo (environment dev)`, `org o`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Repo { owner, repo } => write!(f, "{owner}/{repo}"),
            Target::Environment {
                owner,
                repo,
                environment,
            } => write!(f, "{owner}/{repo} (environment '{environment}')"),
            Target::Org { org } => write!(f, "organisation {org}"),
        }
    }
}

/// The wire form of a target, before its shape is checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub owner: Option<OwnerName>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub repo: Option<RepoName>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub environment: Option<EnvironmentName>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub org: Option<OrgName>,
}

impl From<Target> for TargetSpec {
    fn from(target: Target) -> Self {
        match target {
            Target::Repo { owner, repo } => TargetSpec {
                owner: Some(owner),
                repo: Some(repo),
                ..TargetSpec::default()
            },
            Target::Environment {
                owner,
                repo,
                environment,
            } => TargetSpec {
                owner: Some(owner),
                repo: Some(repo),
                environment: Some(environment),
                org: None,
            },
            Target::Org { org } => TargetSpec {
                org: Some(org),
                ..TargetSpec::default()
            },
        }
    }
}

/// One of the three shapes, each closed to other members.
impl PartialSchema for Target {
    fn schema() -> RefOr<Schema> {
        Target::schema_of(&[Scope::Repo, Scope::Environment, Scope::Org])
    }
}

impl Target {
    /// The schema of the shapes of these scopes (presence takes no organisation).
    pub fn schema_of(scopes: &[Scope]) -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "Where the secrets live; the shape decides the scope: repository, environment or organisation",
        ));
        for scope in scopes {
            one_of = one_of.item(Target::shape_schema(*scope));
        }
        one_of.into()
    }

    /// The closed object of one scope's shape.
    pub fn shape_schema(scope: Scope) -> RefOr<Schema> {
        let (title, members): (&str, Vec<(&str, RefOr<Schema>)>) = match scope {
            Scope::Repo => (
                "repository",
                vec![("owner", OwnerName::schema()), ("repo", RepoName::schema())],
            ),
            Scope::Environment => (
                "environment",
                vec![
                    ("owner", OwnerName::schema()),
                    ("repo", RepoName::schema()),
                    ("environment", EnvironmentName::schema()),
                ],
            ),
            Scope::Org => ("organisation", vec![("org", OrgName::schema())]),
        };
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some(title))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for (name, schema) in members {
            object = object.property(name, schema).required(name);
        }
        object.into()
    }
}

impl ToSchema for Target {}

impl TryFrom<TargetSpec> for Target {
    type Error = &'static str;

    fn try_from(spec: TargetSpec) -> Result<Self, Self::Error> {
        match spec {
            TargetSpec {
                owner: Some(owner),
                repo: Some(repo),
                environment: None,
                org: None,
            } => Ok(Target::Repo { owner, repo }),
            TargetSpec {
                owner: Some(owner),
                repo: Some(repo),
                environment: Some(environment),
                org: None,
            } => Ok(Target::Environment {
                owner,
                repo,
                environment,
            }),
            TargetSpec {
                owner: None,
                repo: None,
                environment: None,
                org: Some(org),
            } => Ok(Target::Org { org }),
            TargetSpec { org: Some(_), .. } => Err(rules::TARGET_ORG_ALONE),
            _ => Err(rules::TARGET_SHAPE),
        }
    }
}

/// Who may read an organisation secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    All,
    #[default]
    Private,
    Selected,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected => "selected",
        }
    }
}

/// What to do when an environment does not exist. The only choice is to write the repository
/// secret: `"repo"`. Anything else (`true`, say) is refused saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvFallback {
    Repo,
}

impl<'de> Deserialize<'de> for EnvFallback {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) if s == "repo" => Ok(EnvFallback::Repo),
            _ => Err(serde::de::Error::custom(crate::rules::ENV_FALLBACK)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Target, String> {
        let spec: TargetSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Target::try_from(spec).map_err(str::to_owned)
    }

    #[test]
    fn the_shape_of_a_target_decides_its_scope() {
        assert_eq!(
            spec(r#"{"owner":"o","repo":"r"}"#).unwrap().scope(),
            Scope::Repo
        );
        assert_eq!(
            spec(r#"{"owner":"o","repo":"r","environment":"dev"}"#)
                .unwrap()
                .scope(),
            Scope::Environment
        );
        assert_eq!(spec(r#"{"org":"o"}"#).unwrap().scope(), Scope::Org);
    }

    #[test]
    fn incomplete_or_mixed_targets_are_rejected() {
        for bad in [
            r#"{}"#,
            r#"{"owner":"o"}"#,
            r#"{"repo":"r"}"#,
            r#"{"owner":"o","environment":"dev"}"#,
            r#"{"org":"o","repo":"r"}"#,
            r#"{"owner":"o","repo":"r","enviroment":"dev"}"#,
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_environment_target_knows_its_repository() {
        let target = spec(r#"{"owner":"o","repo":"r","environment":"dev"}"#).unwrap();
        assert_eq!(
            target.repository().unwrap(),
            spec(r#"{"owner":"o","repo":"r"}"#).unwrap()
        );
        assert_eq!(target.to_string(), "o/r (environment 'dev')");
    }
}

/// Settings of an organisation secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccess {
    /// `None`: keep the secret's current visibility (`private` for a new secret).
    pub visibility: Option<Visibility>,
    /// Repositories that may read a `selected` secret; empty otherwise.
    pub repo_ids: Vec<u64>,
}

/// Why a create's options do not fit its target. The service names the request field, the CLI
/// the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionMisfit {
    /// Visibility `selected` (given, or implied by `repo_ids`) without a repository id.
    SelectedWithoutRepoIds,
    /// `repo_ids` with visibility `all` or `private`.
    RepoIdsWithoutSelected,
    VisibilityOutsideOrg,
    RepoIdsOutsideOrg,
    EnvFallbackOutsideEnvironment,
}

/// The write options of a create in `target`: the organisation settings (organisation targets
/// only) and whether a missing environment falls back to the repository. `repo_ids` given alone
/// mean visibility `selected`, as they are only read for it.
pub fn write_options(
    target: &Target,
    visibility: Option<Visibility>,
    repo_ids: Option<Vec<u64>>,
    env_fallback: Option<EnvFallback>,
) -> Result<(Option<OrgAccess>, bool), OptionMisfit> {
    let org_access = match target {
        Target::Org { .. } => {
            let visibility = match (visibility, &repo_ids) {
                (None, Some(_)) => Some(Visibility::Selected),
                (visibility, _) => visibility,
            };
            let repo_ids = match (visibility, repo_ids) {
                (Some(Visibility::Selected), Some(ids)) if !ids.is_empty() => ids,
                (Some(Visibility::Selected), _) => {
                    return Err(OptionMisfit::SelectedWithoutRepoIds);
                }
                (_, Some(_)) => return Err(OptionMisfit::RepoIdsWithoutSelected),
                (_, None) => Vec::new(),
            };
            Some(OrgAccess {
                visibility,
                repo_ids,
            })
        }
        _ if visibility.is_some() => return Err(OptionMisfit::VisibilityOutsideOrg),
        _ if repo_ids.is_some() => return Err(OptionMisfit::RepoIdsOutsideOrg),
        _ => None,
    };
    let env_fallback = match (env_fallback, target) {
        (None, _) => false,
        (Some(EnvFallback::Repo), Target::Environment { .. }) => true,
        (Some(_), _) => return Err(OptionMisfit::EnvFallbackOutsideEnvironment),
    };
    Ok((org_access, env_fallback))
}
