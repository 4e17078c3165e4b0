use std::fmt;

use crate::rules;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Why a name was rejected. The message states the rule; it never repeats the rejected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub(crate) &'static str);

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $check:path, pattern: $pattern:literal, max: $max:literal, rule: $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(value: &str) -> Result<Self, NameError> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        /// A string with the rule's pattern; the description states the whole rule.
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .description(Some($rule))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// A name GitHub compares without regard to case and stores in upper case: the stored form is the
/// name (equality, order, hashing, display and the wire all use it), and the spelling it was
/// given in is kept only to say that it changed.
macro_rules! stored_upper_case_name {
    ($(#[$doc:meta])* $name:ident, $check:path, pattern: $pattern:literal, rule: $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            stored: String,
            /// The spelling it was given in, when that is not the stored form.
            given: Option<Box<str>>,
        }

        impl $name {
            /// The name as GitHub stores it.
            pub fn as_str(&self) -> &str {
                &self.stored
            }

            /// The spelling it was given in, when GitHub stores it otherwise (in upper case).
            pub fn given(&self) -> Option<&str> {
                self.given.as_deref()
            }

            /// One sentence saying that the name given is stored otherwise; `None` when it is not.
            pub fn stored_otherwise(&self) -> Option<String> {
                self.given.as_ref().map(|given| {
                    format!(
                        "'{given}' is written as '{}': GitHub stores secret names in upper case and treats names that differ only in case as one",
                        self.stored
                    )
                })
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.stored == other.stored
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.stored.hash(state);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.stored.cmp(&other.stored)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                $check(&value)?;
                let stored = value.to_ascii_uppercase();
                let given = (stored != value).then(|| value.into_boxed_str());
                Ok(Self { stored, given })
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(value: &str) -> Result<Self, NameError> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.stored
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.stored)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.stored, f)
            }
        }

        /// A string with the rule's pattern; the description states the whole rule.
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .description(Some($rule))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

stored_upper_case_name!(
    /// A GitHub Actions secret name: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters, and not
    /// starting with `GITHUB_` in any case (GitHub reserves that prefix). GitHub stores it in
    /// upper case: `api_key` and `API_KEY` are one secret, `API_KEY`.
    SecretName,
    check_secret_name,
    pattern: "^(?![Gg][Ii][Tt][Hh][Uu][Bb]_)[A-Za-z_][A-Za-z0-9_]*$",
    rule: "A GitHub Actions secret name: letters, digits and underscores, not starting with a digit, at most 255 characters, and not starting with GITHUB_ in any case. GitHub stores it in upper case (names that differ only in case are one secret)"
);
stored_upper_case_name!(
    /// A name in a presence check: a [`SecretName`], or exactly `GITHUB_TOKEN` (GitHub's built-in).
    PresenceName,
    check_presence_name,
    pattern: "^(?:[Gg][Ii][Tt][Hh][Uu][Bb]_[Tt][Oo][Kk][Ee][Nn]|(?![Gg][Ii][Tt][Hh][Uu][Bb]_)[A-Za-z_][A-Za-z0-9_]*)$",
    rule: "A secret name (see SecretName), or GITHUB_TOKEN (in any case), the token GitHub gives every workflow run"
);
validated_name!(
    /// A GitHub user or organisation login that owns a repository.
    OwnerName,
    check_login,
    pattern: "^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9])*$",
    max: 39,
    rule: "A GitHub user or organisation login: 1-39 letters, digits and single hyphens, not starting or ending with a hyphen"
);
validated_name!(
    /// A GitHub organisation login.
    OrgName,
    check_login,
    pattern: "^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9])*$",
    max: 39,
    rule: "A GitHub organisation login: 1-39 letters, digits and single hyphens, not starting or ending with a hyphen"
);
validated_name!(
    /// A GitHub repository name: 1–100 characters of `[A-Za-z0-9._-]`, not `.`, `..` or only
    /// underscores.
    RepoName,
    check_repo,
    pattern: "^(?!(?:\\.|\\.\\.|_+)$)[A-Za-z0-9._-]+$",
    max: 100,
    rule: "A GitHub repository name: 1-100 letters, digits, '.', '_' and '-'; not '.', '..' or only underscores"
);
validated_name!(
    /// A GitHub deployment environment name.
    EnvironmentName,
    check_environment,
    pattern: "^[A-Za-z0-9_.-](?:[A-Za-z0-9 _.-]*[A-Za-z0-9_.-])?$",
    max: 255,
    rule: "A GitHub deployment environment name: 1-255 letters, digits, spaces, '_', '.' and '-', not starting or ending with a space"
);

impl PresenceName {
    /// The secret GitHub provides to every workflow run; never stored, always present.
    pub const BUILTIN_TOKEN: &'static str = "GITHUB_TOKEN";

    pub fn is_builtin(&self) -> bool {
        self.stored == Self::BUILTIN_TOKEN
    }

    /// The name as a storable secret name, or `None` for the built-in token.
    pub fn as_secret_name(&self) -> Option<SecretName> {
        (!self.is_builtin()).then(|| SecretName {
            stored: self.stored.clone(),
            given: self.given.clone(),
        })
    }
}

fn check_secret_name(value: &str) -> Result<(), NameError> {
    let mut chars = value.chars();
    match chars.next() {
        None => return Err(NameError(rules::NAME_EMPTY)),
        Some(first) if !(first.is_ascii_alphabetic() || first == '_') => {
            return Err(NameError(rules::NAME_START));
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(NameError(rules::NAME_CHARS));
    }
    if value.len() > 255 {
        return Err(NameError(rules::NAME_LENGTH));
    }
    if value.len() >= 7 && value[..7].eq_ignore_ascii_case("GITHUB_") {
        return Err(NameError(rules::NAME_RESERVED));
    }
    Ok(())
}

fn check_presence_name(value: &str) -> Result<(), NameError> {
    if value.eq_ignore_ascii_case(PresenceName::BUILTIN_TOKEN) {
        return Ok(());
    }
    check_secret_name(value).map_err(|e| {
        if e.0.starts_with("must not start with GITHUB_") {
            NameError(rules::PRESENCE_RESERVED)
        } else {
            e
        }
    })
}
validated_name!(
    /// What a client says identifies a value without revealing it: a keyed hash computed on the
    /// client (`mgraph-deploy-cli` sends `hmac-sha256:<key id>:<mac>`). Opaque to the service,
    /// which only compares it with the one it recorded for the secret it last wrote.
    ValueFingerprint,
    check_fingerprint,
    pattern: "^[A-Za-z0-9:_-]+$",
    max: 128,
    rule: "A value's fingerprint, keyed and computed on the client: 1-128 letters, digits, ':', '_' and '-'"
);

fn check_fingerprint(value: &str) -> Result<(), NameError> {
    let ok = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError(rules::FINGERPRINT))
    }
}

fn check_login(value: &str) -> Result<(), NameError> {
    let ok = (1..=39).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(())
    } else {
        Err(NameError(rules::LOGIN))
    }
}

fn check_repo(value: &str) -> Result<(), NameError> {
    if !(1..=100).contains(&value.len())
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(NameError(rules::REPO_CHARS));
    }
    if value == "." || value == ".." {
        return Err(NameError(rules::REPO_DOTS));
    }
    if value.bytes().all(|b| b == b'_') {
        // The GitHub Service refuses it with a framework 500 (`github-service-contract.md` §3.8).
        return Err(NameError(rules::REPO_UNDERSCORES));
    }
    Ok(())
}

fn check_environment(value: &str) -> Result<(), NameError> {
    if !(1..=255).contains(&value.len())
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-'))
    {
        return Err(NameError(rules::ENVIRONMENT_CHARS));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(NameError(rules::ENVIRONMENT_SPACES));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_githubs_rules_and_are_what_github_stores() {
        for ok in [
            "AWS_ACCOUNT_ID",
            "_X",
            "A1",
            "GITHUBX",
            "GITHUB",
            &"A".repeat(255),
        ] {
            let name = SecretName::try_from(ok).unwrap();
            assert_eq!((name.as_str(), name.given()), (ok, None));
        }
        for (given, stored) in [("_x", "_X"), ("a1", "A1"), ("Api_Key", "API_KEY")] {
            let name = SecretName::try_from(given).unwrap();
            assert_eq!((name.as_str(), name.given()), (stored, Some(given)));
            assert!(
                name.stored_otherwise()
                    .unwrap()
                    .contains(&format!("'{given}' is written as '{stored}'"))
            );
        }
        for bad in [
            "",
            "1ABC",
            "my-secret",
            "with space",
            "GITHUB_X",
            "github_x",
            "Github_Token",
            "É",
            &"A".repeat(256),
        ] {
            assert!(
                SecretName::try_from(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn names_that_differ_only_in_case_are_one_name_shown_and_sent_as_github_stores_it() {
        let lower = SecretName::try_from("api_key").unwrap();
        let upper = SecretName::try_from("API_KEY").unwrap();
        assert_eq!(lower, upper);
        let state = std::hash::RandomState::new();
        assert_eq!(
            std::hash::BuildHasher::hash_one(&state, &lower),
            std::hash::BuildHasher::hash_one(&state, &upper)
        );
        assert_eq!(lower.to_string(), "API_KEY");
        assert_eq!(serde_json::to_value(&lower).unwrap(), "API_KEY");
        let read: SecretName = serde_json::from_value("Api_Key".into()).unwrap();
        assert_eq!((read.as_str(), read.given()), ("API_KEY", Some("Api_Key")));
        assert!(upper.stored_otherwise().is_none());
        let presence = PresenceName::try_from("aws_role_arn").unwrap();
        assert_eq!(presence.as_str(), "AWS_ROLE_ARN");
        assert_eq!(
            presence.as_secret_name().unwrap(),
            SecretName::try_from("AWS_ROLE_ARN").unwrap()
        );
    }

    #[test]
    fn a_secret_name_fills_the_width_it_is_shown_in() {
        let name = SecretName::try_from("A").unwrap();
        assert_eq!(format!("[{name:<4}]"), "[A   ]");
    }

    #[test]
    fn presence_names_allow_only_the_builtin_token_among_github_names() {
        assert!(PresenceName::try_from("GITHUB_TOKEN").unwrap().is_builtin());
        // Names are compared as GitHub stores them, the built-in token's too.
        assert!(PresenceName::try_from("github_token").unwrap().is_builtin());
        assert!(PresenceName::try_from("GITHUB_OTHER").is_err());
        let aws = PresenceName::try_from("AWS_ROLE_ARN").unwrap();
        assert!(!aws.is_builtin());
        assert_eq!(aws.as_secret_name().unwrap().as_str(), "AWS_ROLE_ARN");
    }

    #[test]
    fn logins_reject_edge_hyphens_double_hyphens_and_other_characters() {
        for ok in ["a", "the-cyber-boardroom", "A1-b2", &"a".repeat(39)] {
            assert!(OwnerName::try_from(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "-x", "x-", "a--b", "a_b", "a.b", "a b", &"a".repeat(40)] {
            assert!(OrgName::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repo_names_reject_dot_names_and_foreign_characters() {
        for ok in [
            "r",
            "my-new-service",
            "a.b_c-d",
            ".github",
            &"r".repeat(100),
        ] {
            assert!(RepoName::try_from(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", ".", "..", "_", "___", "a/b", "a b", &"r".repeat(101)] {
            assert!(RepoName::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn environment_names_allow_spaces_inside_but_not_at_the_edges() {
        for ok in ["dev", "prod eu-1", "a.b_c"] {
            assert!(EnvironmentName::try_from(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", " dev", "dev ", "dev/x", "dév", &"e".repeat(256)] {
            assert!(EnvironmentName::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejection_messages_never_repeat_the_rejected_value() {
        let value = "zzz-this-looks-like-a-credential-zzz/";
        for message in [
            SecretName::try_from(value).unwrap_err().to_string(),
            OwnerName::try_from(value).unwrap_err().to_string(),
            RepoName::try_from(value).unwrap_err().to_string(),
            EnvironmentName::try_from(value).unwrap_err().to_string(),
        ] {
            assert!(!message.contains("credential"), "{message}");
        }
    }
}
