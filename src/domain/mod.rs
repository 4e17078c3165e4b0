//! Validated request vocabulary: names, sealed blobs and targets.
//!
//! Every type here is built only through validation, so a value of one of these types is known to be
//! acceptable to GitHub and to the GitHub Service *as is*: nothing is ever trimmed, rewritten or
//! sanitised. Deserialising a request into these types is the whole of input validation. Error
//! messages name the rule, never the rejected value (which may be a misplaced credential).

mod names;
mod sealed;
mod target;

pub use names::{
    EnvironmentName, NameError, OrgName, OwnerName, PresenceName, RepoName, SecretName,
};
pub use sealed::{SealedBlob, SealedPat, SealedValue};
pub use target::{EnvFallback, Scope, Target, TargetSpec, Visibility};
