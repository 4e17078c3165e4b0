//! Request bodies: one per operation route, and the workflow file of `/execute` and
//! `/execute/plan`. Unknown members are refused, and so is `null` for any member (leave an
//! optional member out instead).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    EnvFallback, PresenceName, SealedPat, SealedValue, SecretName, Target, Visibility, present,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
        deserialize_with = "present",
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
    pub target: Target,
    pub required: Vec<PresenceName>,
}

/// A workflow file: one sealed PAT, a default target, options and up to 256 operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    pub credentials: Credentials,
    /// The target of every operation that names none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub target: Option<Target>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub options: Option<WorkflowOptions>,
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
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: Option<u64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_error: Option<OnError>,
    /// 1 to 840: no step or retry starts later.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline_seconds: Option<u64>,
    /// Plan only: read the current secrets to tell creates from updates.
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
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
    },
    #[serde(rename = "github:secrets:get")]
    Get {
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
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        secret_name: SecretName,
        encrypted_value: SealedValue,
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        visibility: Option<Visibility>,
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        repo_ids: Option<Vec<u64>>,
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
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        target: Option<Target>,
        required: Vec<PresenceName>,
    },
}
