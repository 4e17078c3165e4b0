//! Validated request vocabulary: names, sealed blobs and targets.
//!
//! Every type here is built only through validation, so a value of one of these types is known to be
//! acceptable to GitHub and to the GitHub Service *as is*: nothing is ever trimmed, rewritten or
//! sanitised. Deserialising a request into these types is the whole of input validation. Error
//! messages name the rule, never the rejected value (which may be a misplaced credential).

use serde::Deserialize as _;

mod names;
mod sealed;
mod target;

pub use names::{
    EnvironmentName, NameError, OrgName, OwnerName, PresenceName, RepoName, SecretName,
};
pub use sealed::{SealedBlob, SealedPat, SealedValue};
pub use target::{EnvFallback, Scope, Target, TargetSpec, Visibility};

/// For an optional member: absent is `None`, `null` is refused (a `null` is never read as
/// "absent": `"environment": null` must not turn an environment write into a repository write).
/// Use with `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(NULL_MEMBER)),
    }
}

/// The message for a `null` where a value belongs.
pub const NULL_MEMBER: &str = "must not be null: leave the field out to omit it";
