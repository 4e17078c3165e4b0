//! The PAT, read and sealed once per run, and re-sealed once when the GitHub Service's key changed.

use std::io::{IsTerminal, Read};
use std::path::Path;

use mgraph_deploy_api::{Envelope, ErrorType, Plan};

use super::args::PatSource;
use super::output::Output;
use super::{Failure, InputError};
use crate::api::{Answer, ClientError, DeployClient, Execution};
use crate::fingerprint::FingerprintKey;
use crate::seal::{Plaintext, PublicKey, Sealed};

/// The sealed PAT and the key it was sealed to; re-seals once when the service reports that the
/// GitHub Service could not open a blob (its key changes on every redeploy).
pub(super) struct Session {
    pub(super) client: DeployClient,
    pub(super) plain_pat: Plaintext,
    pub(super) key: PublicKey,
    pub(super) pat: Sealed,
    /// The key of the values' fingerprints: shared, or derived from the PAT.
    pub(super) fingerprints: FingerprintKey,
}

impl Session {
    pub(super) async fn open(
        client: &DeployClient,
        source: &PatSource,
        out: Option<&Output>,
    ) -> Result<Session, Failure> {
        let plain_pat = read_pat(source)?;
        let fingerprints =
            FingerprintKey::from_env_or_pat(&plain_pat).map_err(|e| InputError(e.to_string()))?;
        let key = client.public_key().await?;
        if let Some(out) = out {
            out.progress(format_args!("GitHub Service key {}", key.fingerprint()));
        }
        let pat = plain_pat.seal_to(&key);
        Ok(Self {
            client: client.clone(),
            plain_pat,
            key,
            pat,
            fingerprints,
        })
    }

    pub(super) async fn resealing<T: MaybeUndecryptable>(
        &mut self,
        mut call: impl AsyncFnMut(&DeployClient, &Session) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let first = call(&self.client, self).await?;
        if !first.undecryptable() {
            return Ok(first);
        }
        let key = self.client.public_key().await?;
        eprintln!(
            "note: the GitHub Service could not open a sealed blob (key {} → {}); re-sealing and retrying once",
            self.key.fingerprint(),
            key.fingerprint()
        );
        self.pat = self.plain_pat.seal_to(&key);
        self.key = key;
        call(&self.client, self).await
    }
}

/// Whether an answer says the GitHub Service could not open a blob.
pub(super) trait MaybeUndecryptable {
    fn undecryptable(&self) -> bool;
}

impl<D, O> MaybeUndecryptable for Answer<Envelope<D, O>> {
    fn undecryptable(&self) -> bool {
        self.is(ErrorType::DecryptionFailed)
    }
}

impl MaybeUndecryptable for Execution {
    fn undecryptable(&self) -> bool {
        has_decryption_failure(self)
    }
}

impl MaybeUndecryptable for Answer<Plan> {
    fn undecryptable(&self) -> bool {
        self.unreadable
            .iter()
            .any(|u| u.error_type == ErrorType::DecryptionFailed)
    }
}

pub(super) fn has_decryption_failure(execution: &Execution) -> bool {
    matches!(execution, Execution::Ran(report)
        if report.results.iter().any(|r| r.error_type == Some(ErrorType::DecryptionFailed)))
}

/// Where [`read_pat`] takes the PAT from: the environment variable's name, or `stdin`.
pub(super) fn pat_origin(source: &PatSource) -> String {
    if source.pat_stdin {
        return "stdin".to_owned();
    }
    match &source.pat_env {
        Some(name) => name.clone(),
        None => ["GIT_HUB__ACCESS_TOKEN", "GH_TOKEN"]
            .into_iter()
            .find(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
            .unwrap_or("GIT_HUB__ACCESS_TOKEN")
            .to_owned(),
    }
}

/// The PAT, trimmed (a PAT never contains whitespace, and a trailing newline breaks it): from
/// `--pat-stdin`, `--pat-env NAME`, or `GIT_HUB__ACCESS_TOKEN` then `GH_TOKEN`.
pub(super) fn read_pat(source: &PatSource) -> Result<Plaintext, InputError> {
    let raw = if source.pat_stdin {
        read_secret_stdin("GitHub PAT", false)?
    } else {
        let names = match &source.pat_env {
            Some(name) => vec![name.as_str()],
            None => vec!["GIT_HUB__ACCESS_TOKEN", "GH_TOKEN"],
        };
        let found = names
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        Plaintext::new(found.ok_or_else(|| {
            InputError(format!(
                "no GitHub PAT: set {} (or use --pat-env NAME or --pat-stdin)",
                names.join(" or ")
            ))
        })?)
    };
    let trimmed = raw.expose().trim();
    if trimmed.is_empty() {
        return Err(InputError("the GitHub PAT is empty".into()));
    }
    if trimmed.contains(char::is_whitespace) {
        return Err(InputError(
            "the GitHub PAT contains whitespace; check how it was copied".into(),
        ));
    }
    Ok(Plaintext::new(trimmed.to_owned()))
}

/// A secret from standard input: at a terminal, one line at a prompt that does not echo it;
/// otherwise everything up to the end, less its trailing newlines (CR or LF, as `gh` trims them)
/// unless `keep_newline`.
pub(super) fn read_secret_stdin(what: &str, keep_newline: bool) -> Result<Plaintext, InputError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let typed = rpassword::prompt_password(format!("{what} (not shown): "))
            .map_err(|e| InputError(format!("cannot read the {what} from the terminal: {e}")))?;
        return Ok(Plaintext::new(typed));
    }
    let text = read_stdin(what)?;
    if keep_newline {
        return Ok(text);
    }
    Ok(Plaintext::new(
        text.expose().trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// All of standard input, exactly.
pub(super) fn read_stdin(what: &str) -> Result<Plaintext, InputError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| InputError(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(Plaintext::new(text))
}

/// A file's exact contents; `-` is standard input.
pub(super) fn read_file(path: &Path) -> Result<Plaintext, InputError> {
    if path.as_os_str() == "-" {
        return read_stdin("value");
    }
    std::fs::read_to_string(path)
        .map(Plaintext::new)
        .map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))
}
