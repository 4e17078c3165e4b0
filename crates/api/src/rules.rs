//! Every message this crate's validators give, and nothing else: a request refused for a rule
//! is told the rule in these words; anything a validator did not write is "is invalid".

pub const NAME_EMPTY: &str = "must not be empty";
pub const NAME_START: &str =
    "must start with a letter or underscore and contain only letters, digits and underscores";
pub const NAME_CHARS: &str = "must contain only letters, digits and underscores (A-Z, a-z, 0-9, _)";
pub const NAME_LENGTH: &str = "must be at most 255 characters";
pub const NAME_RESERVED: &str =
    "must not start with GITHUB_ (in any case): GitHub reserves that prefix";
pub const PRESENCE_RESERVED: &str =
    "must not start with GITHUB_ (in any case); the only such name allowed here is GITHUB_TOKEN";
pub const LOGIN: &str = "must be 1-39 characters of letters, digits and single hyphens, not starting or ending with a hyphen";
pub const REPO_CHARS: &str = "must be 1-100 characters of letters, digits, '.', '_' and '-'";
pub const REPO_DOTS: &str = "must not be '.' or '..'";
pub const REPO_UNDERSCORES: &str = "must not be made only of underscores";
pub const ENVIRONMENT_CHARS: &str =
    "must be 1-255 characters of letters, digits, spaces, '_', '.' and '-'";
pub const ENVIRONMENT_SPACES: &str = "must not start or end with a space";
pub const PAT_EMPTY: &str =
    "must not be empty: seal the GitHub PAT with the key from GET /public-keys/github";
pub const VALUE_EMPTY: &str =
    "must not be empty: seal the value with the key from GET /public-keys/github";
pub const BLOB_LONG: &str = "is too long: the GitHub Service accepts at most 65536 base64 characters (a plaintext of at most 49104 bytes)";
pub const BLOB_WHITESPACE: &str = "must be standard base64 without whitespace or line breaks";
pub const BLOB_URL_SAFE: &str = "uses the URL-safe base64 alphabet ('-', '_'); encode the sealed box with standard base64 ('+', '/') with '=' padding";
pub const BLOB_ALPHABET: &str =
    "must be standard base64 (A-Z, a-z, 0-9, '+', '/') with '=' padding";
pub const PAT_SHORT: &str = "is too short to be a sealed box of a PAT (a sealed box is at least 48 bytes longer than its plaintext)";
pub const VALUE_SHORT: &str = "is too short to be a sealed box (a sealed box is at least 48 bytes)";
pub const FINGERPRINT: &str = "must be 1-128 characters of letters, digits, ':', '_' and '-' (a keyed fingerprint computed on the client, never the value)";
pub const TARGET_ORG_ALONE: &str = "an organisation target has only `org`; do not combine it with `owner`, `repo` or `environment`";
pub const TARGET_SHAPE: &str = "must be {\"owner\", \"repo\"} (repository), {\"owner\", \"repo\", \"environment\"} (environment) or {\"org\"} (organisation)";

/// A `null` where a value belongs.
pub const NULL_MEMBER: &str = "must not be null: leave the field out to omit it";
/// A number that is not a whole number in range.
pub const WHOLE_NUMBER: &str = "must be a whole number from 0 to 9223372036854775807";
/// `options.concurrency` that is not a whole number.
pub const CONCURRENCY: &str = "must be a whole number from 1 to 16";
/// `options.deadline_seconds` that is not a whole number.
pub const DEADLINE_SECONDS: &str = "must be a whole number from 1 to 840";
/// `env_fallback` that is not `"repo"` (`true`, say).
pub const ENV_FALLBACK: &str =
    "must be \"repo\": the scope written when the environment does not exist (not true or false)";

/// Every rule message.
pub const ALL: &[&str] = &[
    NAME_EMPTY,
    NAME_START,
    NAME_CHARS,
    NAME_LENGTH,
    NAME_RESERVED,
    PRESENCE_RESERVED,
    LOGIN,
    REPO_CHARS,
    REPO_DOTS,
    REPO_UNDERSCORES,
    ENVIRONMENT_CHARS,
    ENVIRONMENT_SPACES,
    PAT_EMPTY,
    VALUE_EMPTY,
    BLOB_LONG,
    BLOB_WHITESPACE,
    BLOB_URL_SAFE,
    BLOB_ALPHABET,
    PAT_SHORT,
    VALUE_SHORT,
    TARGET_ORG_ALONE,
    TARGET_SHAPE,
    NULL_MEMBER,
    WHOLE_NUMBER,
    CONCURRENCY,
    DEADLINE_SECONDS,
    ENV_FALLBACK,
];

/// Whether `message` is one of this crate's rule messages, word for word.
pub fn is_rule(message: &str) -> bool {
    ALL.contains(&message)
}

#[cfg(test)]
mod tests {
    use crate::{
        EnvironmentName, OrgName, OwnerName, PresenceName, RepoName, SealedPat, SealedValue,
        SecretName, Target, TargetSpec,
    };

    #[test]
    fn every_message_a_validator_gives_is_a_rule() {
        let mut messages = Vec::new();
        for bad in ["", "1A", "A-B", "GITHUB_X", &"A".repeat(256)] {
            messages.extend(SecretName::try_from(bad).err().map(|e| e.to_string()));
            messages.extend(PresenceName::try_from(bad).err().map(|e| e.to_string()));
        }
        for bad in ["", "-a", "a--b", &"a".repeat(40)] {
            messages.extend(OwnerName::try_from(bad).err().map(|e| e.to_string()));
            messages.extend(OrgName::try_from(bad).err().map(|e| e.to_string()));
        }
        for bad in ["", ".", "..", "__", "a/b"] {
            messages.extend(RepoName::try_from(bad).err().map(|e| e.to_string()));
        }
        for bad in ["", " a", "a/b"] {
            messages.extend(EnvironmentName::try_from(bad).err().map(|e| e.to_string()));
        }
        for bad in ["", "a b", "a-_b", "a", "AAAA", &"A".repeat(70_000)] {
            messages.extend(
                SealedPat::try_from(bad.to_owned())
                    .err()
                    .map(|e| e.to_string()),
            );
            messages.extend(
                SealedValue::try_from(bad.to_owned())
                    .err()
                    .map(|e| e.to_string()),
            );
        }
        let org = OrgName::try_from("o").unwrap();
        for spec in [
            TargetSpec::default(),
            TargetSpec {
                org: Some(org),
                repo: Some(RepoName::try_from("r").unwrap()),
                ..TargetSpec::default()
            },
        ] {
            messages.extend(Target::try_from(spec).err().map(str::to_owned));
        }
        assert!(messages.len() >= 25, "{messages:?}");
        for message in messages {
            assert!(super::is_rule(&message), "not in rules::ALL: {message}");
        }
    }
}
