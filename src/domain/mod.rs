//! Validated request vocabulary: names, sealed blobs and targets, from the API crate
//! (`crates/api`), where the contract is written once.
//!
//! Every type here is built only through validation, so a value of one of these types is known to be
//! acceptable to GitHub and to the GitHub Service *as is*: nothing is ever trimmed, rewritten or
//! sanitised. Deserialising a request into these types is the whole of input validation. Error
//! messages name the rule, never the rejected value (which may be a misplaced credential).

pub use mgraph_deploy_api::{
    EnvFallback, EnvironmentName, NULL_MEMBER, NameError, OrgName, OwnerName, PresenceName,
    RepoName, Scope, SealedBlob, SealedPat, SealedValue, SecretName, Target, TargetSpec,
    ValueFingerprint, Visibility, present,
};
