//! What each MCP tool does: its arguments checked with the API's own name rules, then the CLI's
//! own command run with `--json` in a child process, whose JSON document (names, scopes,
//! actions, outcomes, errors; never a value) is the tool's result. So a tool behaves, and
//! refuses, exactly as the command a person would type, with the same messages.
//!
//! Values reach the child without entering the model: from the server's environment
//! (`--value-env`), a local file (`--value-file`), or generated here and written to the child's
//! stdin.

use std::path::PathBuf;
use std::process::Stdio;

use mgraph_deploy_api::{EnvironmentName, OrgName, OwnerName, PresenceName, RepoName, SecretName};
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use zeroize::Zeroizing;

/// How the server runs the CLI: the binary, and the connection flags it was given.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    pub(super) binary: PathBuf,
    /// `--url=…`, `--timeout=…`, `--api-key-name=…`, `--pat-env=…`.
    pub(super) flags: Vec<String>,
    /// Set in the child's environment (never on its command line): the API key's value.
    pub(super) env: Vec<(String, String)>,
    /// The variables that hold this server's own credentials (the PAT's, the API key's):
    /// `from_env` never reads them.
    pub(super) credentials: Vec<String>,
}

/// A tool's answer: its structured content, and whether it is a tool error.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    pub(super) error: bool,
    pub(super) content: Value,
}

impl Answer {
    fn refused(error_type: &str, message: impl Into<String>) -> Self {
        Self {
            error: true,
            content: json!({ "error_type": error_type, "error": message.into() }),
        }
    }
}

/// A repository `OWNER/REPO` (with an environment) or an organisation.
#[derive(Debug, Default)]
pub(super) struct Where {
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    pub(super) environment: Option<String>,
}

impl Where {
    /// The CLI's target flags, every name checked by the rules GitHub applies.
    fn flags(&self) -> Result<Vec<String>, Answer> {
        let invalid = |message: String| Answer::refused("invalid_input", message);
        match (&self.repo, &self.org) {
            (Some(repo), None) => {
                let (owner, name) = repo
                    .split_once('/')
                    .ok_or_else(|| invalid(format!("repo must be OWNER/REPO, got {repo:?}")))?;
                let owner =
                    OwnerName::try_from(owner).map_err(|e| invalid(format!("repo's owner {e}")))?;
                let name = RepoName::try_from(name)
                    .map_err(|e| invalid(format!("repo's repository name {e}")))?;
                let mut flags = vec![format!("--repo={owner}/{name}")];
                if let Some(environment) = &self.environment {
                    let environment = EnvironmentName::try_from(environment.as_str())
                        .map_err(|e| invalid(format!("environment {e}")))?;
                    flags.push(format!("--env={environment}"));
                }
                Ok(flags)
            }
            (None, Some(org)) => {
                if self.environment.is_some() {
                    return Err(invalid(
                        "environment is for a repository's environment secrets: give repo with it, not org".into(),
                    ));
                }
                let org =
                    OrgName::try_from(org.as_str()).map_err(|e| invalid(format!("org {e}")))?;
                Ok(vec![format!("--org={org}")])
            }
            (Some(_), Some(_)) => Err(invalid("give repo or org, not both".into())),
            (None, None) => Err(invalid(
                "give repo (OWNER/REPO, optionally with environment) or org".into(),
            )),
        }
    }
}

/// `list_secrets`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListSecrets {
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    #[serde(default)]
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    #[serde(default)]
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    #[serde(default)]
    pub(super) environment: Option<String>,
}

/// `check_presence`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckPresence {
    /// The secret names a workflow run needs (`GITHUB_TOKEN` is built in: always present).
    pub(super) names: Vec<String>,
    /// The repository, `OWNER/REPO`.
    pub(super) repo: String,
    /// The environment the run uses: its secrets shadow the repository's.
    #[serde(default)]
    pub(super) environment: Option<String>,
}

/// `preflight`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Preflight {
    /// The repository's checkout on this machine (the directory holding `.github/workflows`).
    pub(super) dir: String,
    /// The repository on GitHub, `OWNER/REPO`.
    pub(super) repo: String,
}

/// `plan_apply` and `apply`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Apply {
    /// A `.env` file or a JSON object of strings on this machine; its values are read and sealed
    /// here and never returned.
    pub(super) file: String,
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    #[serde(default)]
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    #[serde(default)]
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    #[serde(default)]
    pub(super) environment: Option<String>,
    /// With `environment`: write the repository's secrets when the environment does not exist.
    #[serde(default)]
    pub(super) env_fallback: Option<bool>,
    /// Also delete the secrets this service wrote to the target that the file no longer names
    /// (never one it did not write). Needs `confirm: true` to delete; without it, only the plan.
    #[serde(default)]
    pub(super) prune: Option<bool>,
    /// Write every value, even those unchanged since this service wrote them.
    #[serde(default)]
    pub(super) force: Option<bool>,
    /// `true` after the human agreed to the deletions the plan lists.
    #[serde(default)]
    pub(super) confirm: Option<bool>,
}

/// `set_secret`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetSecret {
    /// The secret's name (GitHub stores it upper-case).
    pub(super) name: String,
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    #[serde(default)]
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    #[serde(default)]
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    #[serde(default)]
    pub(super) environment: Option<String>,
    /// The value is this environment variable of the MCP server's process.
    #[serde(default)]
    pub(super) from_env: Option<String>,
    /// The value is this file's exact contents, on this machine.
    #[serde(default)]
    pub(super) from_file: Option<String>,
    /// A random value, generated here, written, and never shown.
    #[serde(default)]
    pub(super) generate: Option<Generate>,
    /// With `environment`: write the repository's secret when the environment does not exist.
    #[serde(default)]
    pub(super) env_fallback: Option<bool>,
}

/// A random value's shape.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Generate {
    /// Characters, 8 to 4096.
    pub(super) length: u32,
    /// The characters it is drawn from [alphanumeric].
    #[serde(default)]
    pub(super) alphabet: Option<Alphabet>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum Alphabet {
    /// `A-Z a-z 0-9`.
    #[default]
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// `A-Z a-z 0-9 - _`.
    Base64url,
    /// Printable ASCII but space, quotes and backslash.
    Symbols,
}

impl Alphabet {
    fn characters(self) -> Vec<u8> {
        let alphanumeric = (b'A'..=b'Z').chain(b'a'..=b'z').chain(b'0'..=b'9');
        match self {
            Alphabet::Alphanumeric => alphanumeric.collect(),
            Alphabet::Hex => (b'0'..=b'9').chain(b'a'..=b'f').collect(),
            Alphabet::Base64url => alphanumeric.chain([b'-', b'_']).collect(),
            Alphabet::Symbols => (b'!'..=b'~')
                .filter(|c| !matches!(c, b'"' | b'\'' | b'\\' | b'`'))
                .collect(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alphabet::Alphanumeric => "alphanumeric",
            Alphabet::Hex => "hex",
            Alphabet::Base64url => "base64url",
            Alphabet::Symbols => "symbols",
        }
    }
}

/// The longest generated value (GitHub takes up to 48 KB).
const MAX_GENERATED: u32 = 4096;
const MIN_GENERATED: u32 = 8;

/// `length` characters of `alphabet`, each drawn uniformly (rejection sampling).
fn generate(length: u32, alphabet: Alphabet) -> Zeroizing<String> {
    use crypto_box::aead::rand_core::RngCore as _;
    let characters = alphabet.characters();
    let n = characters.len();
    // The largest multiple of n below 256: bytes at or above it are drawn again.
    let limit = 256 - 256 % n;
    let mut value = Zeroizing::new(String::with_capacity(length as usize));
    let mut bytes = Zeroizing::new([0u8; 64]);
    while value.len() < length as usize {
        crypto_box::aead::OsRng.fill_bytes(&mut *bytes);
        for &b in bytes.iter() {
            if (b as usize) < limit && value.len() < length as usize {
                value.push(characters[b as usize % n] as char);
            }
        }
    }
    value
}

/// `history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct History {
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    #[serde(default)]
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    #[serde(default)]
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    #[serde(default)]
    pub(super) environment: Option<String>,
    /// How many executions, newest first (1-1000) [20].
    #[serde(default)]
    pub(super) limit: Option<u64>,
}

/// `status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Status {
    /// The repository, `OWNER/REPO`. Give `repo` or `org`.
    #[serde(default)]
    pub(super) repo: Option<String>,
    /// The organisation (organisation secrets). Give `repo` or `org`.
    #[serde(default)]
    pub(super) org: Option<String>,
    /// With `repo`: that repository's environment (its environment secrets).
    #[serde(default)]
    pub(super) environment: Option<String>,
}

/// The target named by a tool's `repo`, `org` and `environment`.
macro_rules! target_of {
    ($($tool:ident),*) => {$(
        impl $tool {
            fn target(&self) -> Where {
                Where {
                    repo: self.repo.clone(),
                    org: self.org.clone(),
                    environment: self.environment.clone(),
                }
            }
        }
    )*};
}
target_of!(ListSecrets, Apply, SetSecret, History, Status);

impl Runner {
    pub(super) async fn list_secrets(&self, args: ListSecrets) -> Answer {
        match args.target().flags() {
            Ok(target) => self.run(&["secret", "list"], target, None).await,
            Err(refusal) => refusal,
        }
    }

    pub(super) async fn check_presence(&self, args: CheckPresence) -> Answer {
        let target = Where {
            repo: Some(args.repo),
            org: None,
            environment: args.environment,
        };
        let target = match target.flags() {
            Ok(target) => target,
            Err(refusal) => return refusal,
        };
        if args.names.is_empty() {
            return Answer::refused("invalid_input", "names is empty: name the secrets to check");
        }
        for name in &args.names {
            if let Err(e) = PresenceName::try_from(name.as_str()) {
                return Answer::refused("invalid_input", format!("names: {name:?} {e}"));
            }
        }
        let mut flags = target;
        flags.push(format!("--require={}", args.names.join(",")));
        self.run(&["presence"], flags, None).await
    }

    pub(super) async fn preflight(&self, args: Preflight) -> Answer {
        let target = Where {
            repo: Some(args.repo),
            ..Where::default()
        };
        let mut flags = match target.flags() {
            Ok(flags) => flags,
            Err(refusal) => return refusal,
        };
        flags.push(format!("--dir={}", args.dir));
        self.run(&["preflight"], flags, None).await
    }

    /// `plan_apply` (`dry_run`) and `apply`. A prune without `confirm: true` is only planned.
    pub(super) async fn apply(&self, args: Apply, dry_run: bool) -> Answer {
        let mut flags = match args.target().flags() {
            Ok(flags) => flags,
            Err(refusal) => return refusal,
        };
        if args.file.trim() == "-" || args.file.trim().is_empty() {
            return Answer::refused(
                "invalid_input",
                "file must be the path of a .env or JSON file on this machine",
            );
        }
        flags.push(format!("--file={}", args.file));
        if args.env_fallback == Some(true) {
            flags.push("--env-fallback".into());
        }
        if args.force == Some(true) {
            flags.push("--force".into());
        }
        let prune = args.prune == Some(true);
        let confirmed = args.confirm == Some(true);
        if prune {
            flags.push("--prune".into());
        }
        if dry_run || (prune && !confirmed) {
            flags.extend(["--dry-run".into(), "--check-state".into()]);
            let mut answer = self.run(&["apply"], flags, None).await;
            if prune && !dry_run && !answer.error {
                let deletes = would_delete(&answer.content);
                answer.content["confirmation_needed"] = json!(true);
                answer.content["would_delete"] = json!(deletes);
                answer.content["message"] = json!(format!(
                    "Nothing was written: with prune, apply deletes {} secret(s) this service wrote that the file no longer names ({}). Show them to the human; call apply again with confirm: true only once they agree.",
                    deletes.len(),
                    if deletes.is_empty() {
                        "none".to_owned()
                    } else {
                        deletes.join(", ")
                    }
                ));
            }
            return answer;
        }
        if prune {
            flags.push("--yes".into());
        }
        self.run(&["apply"], flags, None).await
    }

    pub(super) async fn set_secret(&self, args: SetSecret) -> Answer {
        let name = match SecretName::try_from(args.name.as_str()) {
            Ok(name) => name,
            Err(e) => return Answer::refused("invalid_input", format!("name {e}")),
        };
        let mut flags = match args.target().flags() {
            Ok(flags) => flags,
            Err(refusal) => return refusal,
        };
        if args.env_fallback == Some(true) {
            flags.push("--env-fallback".into());
        }
        let sources = [
            args.from_env.is_some(),
            args.from_file.is_some(),
            args.generate.is_some(),
        ];
        let target_words = flags.join(" ");
        let command = ["secret", "set", name.as_str()];
        match (args.from_env, args.from_file, args.generate) {
            _ if sources.iter().filter(|s| **s).count() > 1 => Answer::refused(
                "invalid_input",
                "give one source of the value: from_env, from_file or generate",
            ),
            (Some(var), _, _) => {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    return Answer::refused(
                        "invalid_input",
                        "from_env must name an environment variable",
                    );
                }
                if self
                    .credentials
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&var))
                {
                    return Answer::refused(
                        "invalid_input",
                        format!(
                            "from_env names {var}, which holds this server's own credential: it is never written as a secret"
                        ),
                    );
                }
                if std::env::var_os(&var).is_none() {
                    return Answer::refused(
                        "invalid_input",
                        format!(
                            "environment variable {var} is not set in the MCP server's environment (set it where the server is started)"
                        ),
                    );
                }
                flags.push(format!("--value-env={var}"));
                self.run(&command, flags, None).await
            }
            (_, Some(file), _) => {
                if file.trim() == "-" || file.trim().is_empty() {
                    return Answer::refused(
                        "invalid_input",
                        "from_file must be the path of a file on this machine",
                    );
                }
                flags.push(format!("--value-file={file}"));
                self.run(&command, flags, None).await
            }
            (_, _, Some(shape)) => {
                if !(MIN_GENERATED..=MAX_GENERATED).contains(&shape.length) {
                    return Answer::refused(
                        "invalid_input",
                        format!("generate.length must be {MIN_GENERATED} to {MAX_GENERATED}"),
                    );
                }
                let alphabet = shape.alphabet.unwrap_or_default();
                let value = generate(shape.length, alphabet);
                let mut answer = self.run(&command, flags, Some(value)).await;
                if !answer.error {
                    answer.content["generated"] = json!({ "length": shape.length, "alphabet": alphabet.name(), "shown": false });
                }
                answer
            }
            (None, None, None) => Answer::refused(
                "value_needed",
                format!(
                    "No value source: a value must never pass through this conversation. Ask the human to run `mgraph-deploy-cli ui` (a page on their machine with a field for each missing secret) or `mgraph-deploy-cli secret set {name} {target_words}` (it prompts without echo); or call set_secret again with from_env, from_file or generate."
                ),
            ),
        }
    }

    pub(super) async fn history(&self, args: History) -> Answer {
        let mut flags = match args.target().flags() {
            Ok(flags) => flags,
            Err(refusal) => return refusal,
        };
        if let Some(limit) = args.limit {
            flags.push(format!("--limit={limit}"));
        }
        self.run(&["history"], flags, None).await
    }

    pub(super) async fn status(&self, args: Status) -> Answer {
        match args.target().flags() {
            Ok(flags) => self.run(&["status"], flags, None).await,
            Err(refusal) => refusal,
        }
    }

    /// Runs `mgraph-deploy-cli --json COMMAND FLAGS`; its JSON is the answer. A JSON object
    /// with `success: false` is a tool error, with the CLI's message and type. What the CLI said
    /// on stderr (notes, never a value) comes along as `notes`.
    async fn run(
        &self,
        command: &[&str],
        flags: Vec<String>,
        stdin: Option<Zeroizing<String>>,
    ) -> Answer {
        let mut child = match tokio::process::Command::new(&self.binary)
            .args(command)
            .args(&flags)
            .args(&self.flags)
            .arg("--json")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                return Answer::refused(
                    "internal_error",
                    format!("cannot run {}: {e}", self.binary.display()),
                );
            }
        };
        if let (Some(value), Some(mut input)) = (stdin, child.stdin.take()) {
            let written = input.write_all(value.as_bytes()).await;
            drop(input);
            if let Err(e) = written {
                return Answer::refused(
                    "internal_error",
                    format!("cannot hand the value to the CLI: {e}"),
                );
            }
        }
        let output = match child.wait_with_output().await {
            Ok(output) => output,
            Err(e) => return Answer::refused("internal_error", format!("the CLI failed: {e}")),
        };
        let exit_code = output.status.code().unwrap_or(-1);
        let notes: Vec<String> = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        let Ok(document) = serde_json::from_slice::<Value>(&output.stdout) else {
            return Answer {
                error: true,
                content: json!({
                    "error_type": "unexpected",
                    "error": format!("the CLI exited {exit_code} without a JSON answer"),
                    "notes": notes,
                }),
            };
        };
        let failed = document.get("success") == Some(&Value::Bool(false))
            && document.get("error").is_some_and(Value::is_string);
        if failed {
            return Answer {
                error: true,
                content: json!({
                    "error_type": document["error_type"],
                    "error": document["error"],
                    "exit_code": exit_code,
                    "notes": notes,
                }),
            };
        }
        Answer {
            error: false,
            content: json!({ "exit_code": exit_code, "result": document, "notes": notes }),
        }
    }
}

/// The names a dry run's plan would prune.
fn would_delete(content: &Value) -> Vec<String> {
    content["result"]["plan"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|step| step["action"] == "prune")
        .filter_map(|step| step["secret_name"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_value_has_the_length_asked_and_only_its_alphabet_s_characters() {
        for alphabet in [
            Alphabet::Alphanumeric,
            Alphabet::Hex,
            Alphabet::Base64url,
            Alphabet::Symbols,
        ] {
            let value = generate(100, alphabet);
            assert_eq!(value.len(), 100);
            let allowed = alphabet.characters();
            assert!(value.bytes().all(|b| allowed.contains(&b)), "{alphabet:?}");
        }
        assert_ne!(*generate(32, Alphabet::Hex), *generate(32, Alphabet::Hex));
    }

    #[test]
    fn a_target_is_checked_by_github_s_rules_and_cannot_smuggle_a_flag() {
        let flags = |repo: Option<&str>, org: Option<&str>, environment: Option<&str>| {
            Where {
                repo: repo.map(str::to_owned),
                org: org.map(str::to_owned),
                environment: environment.map(str::to_owned),
            }
            .flags()
        };
        assert_eq!(
            flags(Some("octo/app"), None, Some("prod")).unwrap(),
            ["--repo=octo/app", "--env=prod"]
        );
        assert_eq!(flags(None, Some("octo"), None).unwrap(), ["--org=octo"]);
        for (repo, org, environment) in [
            (Some("--org=x/y"), None, None),
            (Some("octo"), None, None),
            (Some("a/b"), Some("c"), None),
            (None, Some("c"), Some("prod")),
            (None, None, None),
            (Some("octo/app"), None, Some("")),
        ] {
            let refused = flags(repo, org, environment).unwrap_err();
            assert!(refused.error);
            assert_eq!(refused.content["error_type"], "invalid_input");
        }
    }
}
