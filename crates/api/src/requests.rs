//! Request bodies: one per operation route, and the workflow file of `/execute` and
//! `/execute/plan`. Unknown members are refused, and so is `null` for any member (leave an
//! optional member out instead).

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::{
    EnvFallback, PresenceName, Scope, SealedPat, SealedValue, SecretName, Target, Visibility,
    present, present_whole_number, present_whole_numbers,
};

/// `github:secrets:list`: every secret's metadata in one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBody {
    pub encrypted_pat: SealedPat,
    pub target: Target,
}

/// `github:secrets:get`, `exists` and `delete`: one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    pub encrypted_pat: SealedPat,
    pub target: Target,
    pub secret_name: SecretName,
}

/// `github:secrets:create`: write (create or overwrite) one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub encrypted_pat: SealedPat,
    pub target: Target,
    pub secret_name: SecretName,
    pub encrypted_value: SealedValue,
    /// Organisation targets only. Left out: an existing secret keeps its visibility (a new one is
    /// `private`); with `repo_ids` alone, `selected`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub visibility: Option<Visibility>,
    /// Organisation targets with visibility `selected` only: the repositories that may read it.
    #[serde(
        default,
        deserialize_with = "present_whole_numbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub repo_ids: Option<Vec<u64>>,
    /// Environment targets only: `repo` writes the repository secret when the environment does
    /// not exist.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub env_fallback: Option<EnvFallback>,
}

/// `github:secrets:presence`: which names a workflow run in this repository (and environment)
/// would see. 1 to 100 names; not for organisation targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    pub encrypted_pat: SealedPat,
    #[schema(schema_with = repository_or_environment)]
    pub target: Target,
    #[schema(min_items = 1, max_items = 100)]
    pub required: Vec<PresenceName>,
}

fn repo_id() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(crate::MAX_WHOLE_NUMBER))
}

fn repo_ids() -> ArrayBuilder {
    ArrayBuilder::new().items(repo_id())
}

fn repository_or_environment() -> RefOr<Schema> {
    Target::schema_of(&[Scope::Repo, Scope::Environment])
}

/// The options a write takes depend on its target's scope, so the schema lists each allowed
/// combination: repository; environment (with `env_fallback`); organisation keeping the
/// visibility, setting `all` or `private`, or `selected` with at least one repository id.
impl PartialSchema for CreateBody {
    fn schema() -> RefOr<Schema> {
        let base = |scope: Scope| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .property("encrypted_pat", SealedPat::schema())
                .required("encrypted_pat")
                .property("target", Target::shape_schema(scope))
                .required("target")
                .property("secret_name", SecretName::schema())
                .required("secret_name")
                .property("encrypted_value", SealedValue::schema())
                .required("encrypted_value")
        };
        let visibility = |values: &[&str]| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values.to_vec()))
        };
        let repo_ids = ArrayBuilder::new()
            .items(repo_id())
            .min_items(Some(1))
            .description(Some("The repositories that may read a `selected` secret"));
        AnyOfBuilder::new()
            .item(base(Scope::Repo).title(Some("repository")))
            .item(
                base(Scope::Environment)
                    .title(Some("environment"))
                    .property("env_fallback", EnvFallback::schema()),
            )
            .item(base(Scope::Org).title(Some("organisation, keeping the visibility")))
            .item(
                base(Scope::Org)
                    .title(Some("organisation, all or private"))
                    .property("visibility", visibility(&["all", "private"]))
                    .required("visibility"),
            )
            .item(
                base(Scope::Org)
                    .title(Some("organisation, selected repositories"))
                    .property("visibility", visibility(&["selected"]))
                    .property("repo_ids", repo_ids)
                    .required("repo_ids"),
            )
            .description(Some(
                "Write (create or overwrite) one secret. `visibility` and `repo_ids` are for organisation targets; `env_fallback: repo` writes the repository secret when an environment target does not exist",
            ))
            .into()
    }
}

impl ToSchema for CreateBody {}

/// A workflow file: one sealed PAT, a default target, options and up to 256 operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    pub credentials: Credentials,
    /// The target of every operation that names none.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub target: Option<Target>,
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub options: Option<WorkflowOptions>,
    #[schema(min_items = 1, max_items = 256)]
    pub operations: Vec<WorkflowOperation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub github_pat: SealedPat,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowOptions {
    /// Steps running at once, 1 to 16 (steps touching the same secret or scope never overlap).
    #[schema(minimum = 1, maximum = 16)]
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: Option<u64>,
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_error: Option<OnError>,
    /// 1 to 840: no step or retry starts later.
    #[schema(minimum = 1, maximum = 840)]
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline_seconds: Option<u64>,
    /// Plan only: read the current secrets to tell creates from updates.
    #[schema(nullable = false)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_state: Option<bool>,
}

/// What to do after a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    #[default]
    Continue,
    Stop,
}

/// One step: an operation's body without `encrypted_pat` (the workflow's PAT is used), `target`
/// optional when the workflow has a default one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum WorkflowOperation {
    #[serde(rename = "github:secrets:list")]
    List {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
    },
    #[serde(rename = "github:secrets:get")]
    Get {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        secret_name: SecretName,
    },
    #[serde(rename = "github:secrets:exists")]
    Exists {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        secret_name: SecretName,
    },
    #[serde(rename = "github:secrets:create")]
    Create {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        secret_name: SecretName,
        encrypted_value: SealedValue,
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        visibility: Option<Visibility>,
        #[schema(nullable = false, schema_with = repo_ids)]
        #[serde(
            default,
            deserialize_with = "present_whole_numbers",
            skip_serializing_if = "Option::is_none"
        )]
        repo_ids: Option<Vec<u64>>,
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        env_fallback: Option<EnvFallback>,
    },
    /// In a workflow, deleting a secret that is already absent succeeds with `deleted: false`.
    #[serde(rename = "github:secrets:delete")]
    Delete {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        secret_name: SecretName,
    },
    #[serde(rename = "github:secrets:presence")]
    Presence {
        #[schema(nullable = false)]
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        required: Vec<PresenceName>,
    },
}
