//! Requests of the operation routes: JSON parsing with field-naming errors, then the checks that
//! span several fields. Everything here runs before any upstream call.

use mgraph_deploy_api::{
    CreateOp, ListOp, OperationBody, OptionMisfit, OrgAccess, PresenceOp, SecretOp,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::{
    EnvFallback, PresenceName, SealedPat, SealedValue, SecretName, Target, ValueFingerprint,
    Visibility,
};

use super::invalid::{InvalidInput, is_plain_key, position};
use super::{OperationKind, strict};

/// Parses a JSON body whatever its `Content-Type`. Errors name the field and the rule; values
/// the client sent are never repeated (a misplaced sealed blob must not come back in an error).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, InvalidInput> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidInput::new(
            "",
            "the request body is empty; send a JSON object",
        ));
    }
    // Syntax first (trailing data included), so a malformed body is never reported as a missing
    // field, and keys given twice anywhere (serde keeps the last of them in a map); then the
    // shape, because serde would read a struct from an array by position.
    strict::check(body)?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(InvalidInput::new(
            "",
            "the request body must be a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(describe)
}

/// Reads an already-parsed JSON value (a part of a larger document) with the same field-naming
/// errors as [`parse_json`]. Field paths are relative to `value`.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, InvalidInput> {
    serde_path_to_error::deserialize(value).map_err(describe)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> InvalidInput {
    let path = err.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let inner = err.into_inner();
    match inner.classify() {
        // The syntax was checked before; serde_json reports some type mismatches (a boolean
        // where an enum's string belongs) as syntax errors.
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            if !path.is_empty() =>
        {
            return InvalidInput::new(path, "has the wrong JSON type");
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            return InvalidInput::new(
                "",
                format!("the request body is not valid JSON: {}", position(&inner)),
            );
        }
        serde_json::error::Category::Io | serde_json::error::Category::Data => {}
    }
    // serde says what went wrong only in words: the words are read to pick one of this crate's
    // messages, and only field and variant names that are plain keys are repeated from them.
    let text = inner.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return if is_plain_key(name) {
            InvalidInput::new(join_to(&path, name), "is required")
        } else {
            InvalidInput::new(path, "is missing a required field")
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let hint = match plain_names(expected) {
            Some(names) => format!("; expected one of {names}"),
            None => String::new(),
        };
        // The path already ends with the unknown key; a key that is not a plain identifier
        // (a blob pasted as a key, say) is reported on its parent so it is never echoed.
        let parent = path
            .strip_suffix(name)
            .map_or(path.as_str(), |p| p.trim_end_matches('.'));
        return if is_plain_key(name) {
            InvalidInput::new(join_to(parent, name), format!("is not a known field{hint}"))
        } else {
            InvalidInput::new(parent, format!("has an unknown field{hint}"))
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: null, expected ") {
        return InvalidInput::new(path, format!("must not be null: expected {}", plain(rest)));
    }
    if message.starts_with("invalid type: ") {
        let expected = message
            .rsplit_once(", expected ")
            .map_or("another type", |(_, e)| e);
        return if path.is_empty() {
            InvalidInput::new("", "the request body must be a JSON object")
        } else {
            InvalidInput::new(
                path,
                format!("has the wrong JSON type: expected {}", plain(expected)),
            )
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        return match plain_names(expected) {
            Some(names) => InvalidInput::new(path, format!("must be one of {names}")),
            None => InvalidInput::new(path, "is invalid"),
        };
    }
    if message.starts_with("invalid value: ") || message.starts_with("invalid length ") {
        let expected = message
            .rsplit_once(", expected ")
            .map_or("a valid value", |(_, e)| e);
        return InvalidInput::new(path, format!("is invalid: expected {}", plain(expected)));
    }
    // What is left is a validator's own message: repeated only when it is one of this crate's
    // rules (`mgraph_deploy_api::rules`), word for word.
    if mgraph_deploy_api::rules::is_rule(message) {
        InvalidInput::new(path, message.to_owned())
    } else {
        InvalidInput::new(path, "is invalid")
    }
}

/// serde's names for what it expected, in JSON words; anything else is "another type".
fn plain(expected: &str) -> &'static str {
    if expected.starts_with("struct ") || expected.starts_with("internally tagged enum") {
        return "a JSON object";
    }
    match expected {
        "u64" | "u32" | "usize" => "a whole number of 0 or more",
        "a sequence" => "a JSON array",
        "a boolean" => "true or false",
        "a string" => "a string",
        "a JSON number" | "a number" => "a number",
        "a map" => "a JSON object",
        _ => "another type",
    }
}

/// serde's list of expected names (`` `a`, `b` or `c` ``, `` one of `a`, `b` ``), rebuilt from
/// the names alone when every one is a plain key.
fn plain_names(expected: &str) -> Option<String> {
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let name = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    };
    (!names.is_empty() && names.iter().all(|n| name(n))).then(|| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn join_to(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// `list`: every secret's metadata in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub target: Target,
}

/// `get`, `exists` and `delete`: one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRequest {
    pub target: Target,
    pub secret_name: SecretName,
}

/// `create`: write (create or overwrite) one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub target: Target,
    pub secret_name: SecretName,
    pub value: SealedValue,
    /// `Some` exactly when the target is an organisation.
    pub org_access: Option<OrgAccess>,
    /// Write the repository secret when the target environment does not exist.
    pub env_fallback: bool,
    /// The client's keyed fingerprint of the value, when it sent one.
    pub fingerprint: Option<ValueFingerprint>,
}

/// `presence`: which of these names a workflow run in this repository (and environment) would see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRequest {
    pub target: Target,
    pub required: Vec<PresenceName>,
}

/// The most names one presence check takes.
pub const MAX_PRESENCE_NAMES: usize = 100;

/// One operation, validated: what an operation route's body or a workflow step asks (the PAT
/// travels beside it). A new operation is a variant here and in [`OperationKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    List(ListRequest),
    Get(SecretRequest),
    Exists(SecretRequest),
    Create(CreateRequest),
    Delete(SecretRequest),
    Presence(PresenceRequest),
}

impl Request {
    pub fn kind(&self) -> OperationKind {
        match self {
            Request::List(_) => OperationKind::List,
            Request::Get(_) => OperationKind::Get,
            Request::Exists(_) => OperationKind::Exists,
            Request::Create(_) => OperationKind::Create,
            Request::Delete(_) => OperationKind::Delete,
            Request::Presence(_) => OperationKind::Presence,
        }
    }

    pub fn target(&self) -> &Target {
        match self {
            Request::List(r) => &r.target,
            Request::Get(r) | Request::Exists(r) | Request::Delete(r) => &r.target,
            Request::Create(r) => &r.target,
            Request::Presence(r) => &r.target,
        }
    }

    /// The one secret it names, if any.
    pub fn secret_name(&self) -> Option<&SecretName> {
        match self {
            Request::Get(r) | Request::Exists(r) | Request::Delete(r) => Some(&r.secret_name),
            Request::Create(r) => Some(&r.secret_name),
            Request::List(_) | Request::Presence(_) => None,
        }
    }

    /// A create that may fall back to the repository secret.
    pub fn env_fallback(&self) -> bool {
        matches!(self, Request::Create(r) if r.env_fallback)
    }

    /// Reads an operation's fields (no PAT) by the API crate's types, the one grammar of the
    /// operation routes and of workflow steps; then the checks that span several fields.
    pub fn parse(kind: OperationKind, fields: Value) -> Result<Self, InvalidInput> {
        match kind {
            OperationKind::List => Ok(Self::list(parse_value(fields)?)),
            OperationKind::Get | OperationKind::Exists | OperationKind::Delete => {
                Ok(Self::secret(kind, parse_value(fields)?))
            }
            OperationKind::Create => Self::create(parse_value(fields)?),
            OperationKind::Presence => Self::presence(parse_value(fields)?),
        }
    }

    fn list(op: ListOp) -> Self {
        Request::List(ListRequest { target: op.target })
    }

    /// `kind` is get, exists or delete.
    fn secret(kind: OperationKind, op: SecretOp) -> Self {
        let request = SecretRequest {
            target: op.target,
            secret_name: op.secret_name,
        };
        match kind {
            OperationKind::Get => Request::Get(request),
            OperationKind::Exists => Request::Exists(request),
            _ => Request::Delete(request),
        }
    }

    fn create(op: CreateOp) -> Result<Self, InvalidInput> {
        let (org_access, env_fallback) =
            write_options(&op.target, op.visibility, op.repo_ids, op.env_fallback, "")?;
        Ok(Request::Create(CreateRequest {
            target: op.target,
            secret_name: op.secret_name,
            value: op.encrypted_value,
            org_access,
            env_fallback,
            fingerprint: op.value_fingerprint,
        }))
    }

    fn presence(op: PresenceOp) -> Result<Self, InvalidInput> {
        check_presence(&op.target, &op.required, "")?;
        Ok(Request::Presence(PresenceRequest {
            target: op.target,
            required: op.required,
        }))
    }
}

/// An operation route's body: `encrypted_pat` and the operation's fields. A body its types
/// accept is read in one pass; any other is read again member by member, so that the error
/// names the field and the rule, and the operation's fields before the PAT.
/// The target a body names, read on its own (`None` when it names none validly): a refused
/// request is recorded under it.
pub fn target_of(body: &[u8]) -> Option<Target> {
    #[derive(serde::Deserialize)]
    struct Named {
        target: Target,
    }
    serde_json::from_slice::<Named>(body)
        .ok()
        .map(|named| named.target)
}

pub fn parse_operation(
    kind: OperationKind,
    body: &[u8],
) -> Result<(SealedPat, Request), InvalidInput> {
    if let Some(read) = read_in_one_pass(kind, body) {
        return read;
    }
    let mut fields: serde_json::Map<String, Value> = parse_json(body)?;
    let pat = fields.remove("encrypted_pat");
    let request = Request::parse(kind, Value::Object(fields))?;
    /// The PAT read as the member it is, so its errors are named as in the body.
    #[derive(serde::Deserialize)]
    struct Pat {
        encrypted_pat: SealedPat,
    }
    let pat = match pat {
        None => return Err(InvalidInput::new("encrypted_pat", "is required")),
        Some(value) => {
            let pat: Pat = parse_value(serde_json::json!({ "encrypted_pat": value }))?;
            pat.encrypted_pat
        }
    };
    Ok((pat, request))
}

/// The body read straight into its types; `None` when they refuse it. (Their derived readers
/// refuse a member given twice, so no object of an accepted body repeats a key.)
fn read_in_one_pass(
    kind: OperationKind,
    body: &[u8],
) -> Option<Result<(SealedPat, Request), InvalidInput>> {
    fn read<Op: DeserializeOwned>(body: &[u8]) -> Option<(SealedPat, Op)> {
        let read: OperationBody<Op> = serde_json::from_slice(body).ok()?;
        Some((read.encrypted_pat, read.op))
    }
    Some(match kind {
        OperationKind::List => read(body).map(|(pat, op)| Ok((pat, Request::list(op))))?,
        OperationKind::Get | OperationKind::Exists | OperationKind::Delete => {
            read(body).map(|(pat, op)| Ok((pat, Request::secret(kind, op))))?
        }
        OperationKind::Create => {
            let (pat, op) = read(body)?;
            Request::create(op).map(|request| (pat, request))
        }
        OperationKind::Presence => {
            let (pat, op) = read(body)?;
            Request::presence(op).map(|request| (pat, request))
        }
    })
}

/// Checks the write options against the target's scope. `prefix` is prepended to field names
/// (`operations[3].` in a workflow).
pub fn write_options(
    target: &Target,
    visibility: Option<Visibility>,
    repo_ids: Option<Vec<u64>>,
    env_fallback: Option<EnvFallback>,
    prefix: &str,
) -> Result<(Option<OrgAccess>, bool), InvalidInput> {
    mgraph_deploy_api::write_options(target, visibility, repo_ids, env_fallback).map_err(|misfit| {
        let (field, rule) = match misfit {
            OptionMisfit::SelectedWithoutRepoIds => (
                "repo_ids",
                "is required and must list at least one repository id when visibility is `selected`",
            ),
            OptionMisfit::RepoIdsWithoutSelected => {
                ("repo_ids", "is allowed only with visibility `selected`")
            }
            OptionMisfit::VisibilityOutsideOrg => (
                "visibility",
                "applies only to organisation targets ({\"org\": ...})",
            ),
            OptionMisfit::RepoIdsOutsideOrg => (
                "repo_ids",
                "applies only to organisation targets ({\"org\": ...})",
            ),
            OptionMisfit::EnvFallbackOutsideEnvironment => (
                "env_fallback",
                "applies only to environment targets ({\"owner\", \"repo\", \"environment\"})",
            ),
        };
        InvalidInput::new(format!("{prefix}{field}"), rule)
    })
}

pub fn check_presence(
    target: &Target,
    required: &[PresenceName],
    prefix: &str,
) -> Result<(), InvalidInput> {
    if matches!(target, Target::Org { .. }) {
        return Err(InvalidInput::new(
            format!("{prefix}target"),
            "must be a repository or an environment: presence answers what a workflow run would see",
        ));
    }
    if required.is_empty() || required.len() > MAX_PRESENCE_NAMES {
        return Err(InvalidInput::new(
            format!("{prefix}required"),
            format!("must list 1 to {MAX_PRESENCE_NAMES} secret names"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn blob() -> String {
        base64::engine::general_purpose::STANDARD.encode([7u8; 60])
    }

    fn create(extra: &str) -> Result<CreateRequest, InvalidInput> {
        let body = format!(
            r#"{{"encrypted_pat":"{b}","target":{{"org":"acme"}},"secret_name":"S","encrypted_value":"{b}"{extra}}}"#,
            b = blob()
        );
        match parse_operation(OperationKind::Create, body.as_bytes())?.1 {
            Request::Create(request) => Ok(request),
            other => panic!("a create reads as a create: {other:?}"),
        }
    }

    struct ListRequest;

    impl ListRequest {
        fn from_json(body: &[u8]) -> Result<Request, InvalidInput> {
            parse_operation(OperationKind::List, body).map(|(_, request)| request)
        }
    }

    #[test]
    fn a_message_that_is_not_one_of_this_crate_s_rules_is_never_repeated() {
        #[derive(Debug)]
        struct Odd;
        impl<'de> serde::Deserialize<'de> for Odd {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let _ = serde_json::Value::deserialize(d)?;
                Err(serde::de::Error::custom("from elsewhere: AAAAsealedBBBB"))
            }
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            odd: Odd,
        }
        let err = parse_json::<Body>(br#"{"odd": 1}"#).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("odd", "is invalid")
        );

        // One of the rules is repeated word for word.
        let err =
            ListRequest::from_json(br#"{"encrypted_pat":"","target":{"org":"o"}}"#).unwrap_err();
        assert_eq!(err.message, mgraph_deploy_api::rules::PAT_EMPTY);
    }

    #[test]
    fn errors_name_the_nested_field_and_the_rule() {
        let body = format!(
            r#"{{"encrypted_pat":"{}","target":{{"owner":"-x","repo":"r"}}}}"#,
            blob()
        );
        let err = ListRequest::from_json(body.as_bytes()).unwrap_err();
        assert_eq!(err.field, "target.owner");
        assert!(err.message.contains("hyphen"));
    }

    #[test]
    fn a_typo_in_a_field_name_is_rejected_not_ignored() {
        let body = format!(
            r#"{{"encrypted_pat":"{}","target":{{"owner":"o","repo":"r","enviroment":"dev"}}}}"#,
            blob()
        );
        let err = ListRequest::from_json(body.as_bytes()).unwrap_err();
        assert_eq!(err.field, "target.enviroment");
        assert!(err.message.contains("environment"), "{err}");
    }

    #[test]
    fn missing_fields_and_wrong_types_are_named() {
        let err = ListRequest::from_json(br#"{"target":{"org":"o"}}"#).unwrap_err();
        assert_eq!(err.field, "encrypted_pat");
        assert_eq!(err.message, "is required");
        let err =
            ListRequest::from_json(br#"{"encrypted_pat":5,"target":{"org":"o"}}"#).unwrap_err();
        assert_eq!(err.field, "encrypted_pat");
        assert!(err.message.contains("wrong JSON type"));
    }

    #[test]
    fn malformed_empty_and_non_object_bodies_are_described() {
        assert!(
            ListRequest::from_json(b"")
                .unwrap_err()
                .message
                .contains("empty")
        );
        assert!(
            ListRequest::from_json(b"{")
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
        assert!(
            ListRequest::from_json(b"[]")
                .unwrap_err()
                .message
                .contains("JSON object")
        );
        assert!(
            ListRequest::from_json(b"{} x")
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
    }

    #[test]
    fn a_blob_in_the_wrong_place_is_not_echoed() {
        let b = blob();
        for body in [
            format!(r#"{{"encrypted_pat":"{b}","target":"{b}"}}"#),
            format!(r#"{{"encrypted_pat":"{b}","target":{{"org":"{b}"}}}}"#),
            format!(r#"{{"encrypted_pat":"{b}","target":{{"org":"o"}},"{b}":1}}"#),
        ] {
            let err = ListRequest::from_json(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(!err.contains(&b[..16]), "{err}");
        }
        let err = create(&format!(r#","visibility":"{b}""#))
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&b[..16]), "{err}");
    }

    /// The slow reader alone, for comparison.
    fn member_by_member(
        kind: OperationKind,
        body: &str,
    ) -> Result<(SealedPat, Request), InvalidInput> {
        let mut fields: serde_json::Map<String, Value> = parse_json(body.as_bytes())?;
        let pat = fields.remove("encrypted_pat");
        let request = Request::parse(kind, Value::Object(fields))?;
        let pat = pat.ok_or_else(|| InvalidInput::new("encrypted_pat", "is required"))?;
        let pat: SealedPat = serde_json::from_value(pat)
            .map_err(|_| InvalidInput::new("encrypted_pat", "is invalid"))?;
        Ok((pat, request))
    }

    #[test]
    fn a_body_read_in_one_pass_reads_as_it_does_member_by_member_and_any_other_falls_back() {
        let b = blob();
        let repo = r#"{"owner":"o","repo":"r"}"#;
        let cases: Vec<(OperationKind, String)> = vec![
            (
                OperationKind::List,
                format!(r#"{{"encrypted_pat":"{b}","target":{repo}}}"#),
            ),
            (
                OperationKind::List,
                format!(r#" {{ "target" : {repo} , "encrypted_pat" : "{b}" }} "#),
            ),
            (
                OperationKind::Get,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{{"owner":"o","repo":"r","environment":"e"}},"secret_name":"S"}}"#
                ),
            ),
            (
                OperationKind::Delete,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{{"org":"o"}},"secret_n\u0061me":"S"}}"#
                ),
            ),
            (
                OperationKind::Create,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{{"org":"o"}},"secret_name":"S","encrypted_value":"{b}","repo_ids":[1]}}"#
                ),
            ),
            (
                OperationKind::Create,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{{"owner":"o","repo":"r","environment":"e"}},"secret_name":"S","encrypted_value":"{b}","env_fallback":"repo"}}"#
                ),
            ),
            (
                OperationKind::Presence,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{repo},"required":["A","GITHUB_TOKEN"]}}"#
                ),
            ),
            // What the one pass must refuse, for the member-by-member reader to name.
            (
                OperationKind::List,
                format!(r#"{{"encrypted_pat":"{b}","encrypted_pat":"{b}","target":{repo}}}"#),
            ),
            (
                OperationKind::List,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{{"owner":"o","owner":"p","repo":"r"}}}}"#
                ),
            ),
            (
                OperationKind::Get,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{repo},"secret_name":"S","secret_name":"T"}}"#
                ),
            ),
            (
                OperationKind::List,
                format!(r#"{{"encrypted_pat":"{b}","target":{repo},"extra":1}}"#),
            ),
            (
                OperationKind::List,
                format!(r#"{{"encrypted_pat":"{b}","target":{repo}}} {{}}"#),
            ),
            (
                OperationKind::List,
                format!(r#"{{"encrypted_pat":null,"target":{repo}}}"#),
            ),
            (OperationKind::List, format!(r#"{{"target":{repo}}}"#)),
            (OperationKind::List, format!(r#"["{b}",{repo}]"#)),
            (
                OperationKind::Create,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{repo},"secret_name":"S","encrypted_value":"{b}","visibility":null}}"#
                ),
            ),
            (
                OperationKind::Create,
                format!(
                    r#"{{"encrypted_pat":"{b}","target":{repo},"secret_name":"S","encrypted_value":"{b}","repo_ids":[1]}}"#
                ),
            ),
            (
                OperationKind::Presence,
                format!(r#"{{"encrypted_pat":"{b}","target":{{"org":"o"}},"required":["A"]}}"#),
            ),
        ];
        for (kind, body) in &cases {
            let slow = member_by_member(*kind, body);
            let parsed = parse_operation(*kind, body.as_bytes());
            match read_in_one_pass(*kind, body.as_bytes()) {
                Some(fast) => {
                    assert_eq!(fast, slow, "{body}");
                    assert_eq!(
                        fast.as_ref()
                            .ok()
                            .map(|(pat, _)| pat.blob().expose().to_owned()),
                        slow.as_ref()
                            .ok()
                            .map(|(pat, _)| pat.blob().expose().to_owned()),
                        "{body}"
                    );
                }
                None => assert!(slow.is_err(), "refused in one pass only: {body}"),
            }
            assert_eq!(parsed.is_ok(), slow.is_ok(), "{body}");
        }
        // Every well-formed case above was read in one pass.
        assert_eq!(
            cases
                .iter()
                .filter(|(k, b)| read_in_one_pass(*k, b.as_bytes()).is_some_and(|r| r.is_ok()))
                .count(),
            7
        );
    }

    #[test]
    fn org_writes_keep_the_visibility_unless_told_and_check_repo_ids() {
        assert_eq!(
            create("").unwrap().org_access.unwrap(),
            OrgAccess {
                visibility: None,
                repo_ids: vec![]
            }
        );
        assert_eq!(
            create(r#","repo_ids":[3]"#).unwrap().org_access.unwrap(),
            OrgAccess {
                visibility: Some(Visibility::Selected),
                repo_ids: vec![3]
            }
        );
        assert!(create(r#","repo_ids":[]"#).is_err());
        assert!(create(r#","visibility":"selected""#).is_err());
        assert!(create(r#","visibility":"selected","repo_ids":[]"#).is_err());
        assert!(create(r#","visibility":"all","repo_ids":[1]"#).is_err());
        let ok = create(r#","visibility":"selected","repo_ids":[1,2]"#).unwrap();
        assert_eq!(ok.org_access.unwrap().repo_ids, vec![1, 2]);
        assert_eq!(
            create(r#","env_fallback":"repo""#).unwrap_err().field,
            "env_fallback"
        );
    }

    #[test]
    fn a_value_fingerprint_is_taken_as_sent_and_refused_when_null_long_or_of_other_characters() {
        let taken = create(r#","value_fingerprint":"hmac-sha256:k_1-A:Zm9v""#).unwrap();
        assert_eq!(
            taken.fingerprint.unwrap().as_str(),
            "hmac-sha256:k_1-A:Zm9v"
        );
        assert_eq!(create("").unwrap().fingerprint, None);
        let longest = "f".repeat(128);
        assert!(create(&format!(r#","value_fingerprint":"{longest}""#)).is_ok());
        for refused in [
            "null".to_owned(),
            r#""""#.to_owned(),
            format!(r#""{longest}f""#),
            r#""hmac sha256""#.to_owned(),
            r#""abc=""#.to_owned(),
            r#""ab/c""#.to_owned(),
            "42".to_owned(),
        ] {
            let err = create(&format!(r#","value_fingerprint":{refused}"#)).unwrap_err();
            assert_eq!(err.field, "value_fingerprint", "{refused}");
        }
    }
}
