//! Value fingerprints, computed and keyed on the client, so that the service can tell "the same
//! value as the one it last wrote" without being able to learn the value.
//!
//! `hmac-sha256:<key id>:<mac>`: the MAC is HMAC-SHA256 over the secret's name and the value,
//! under a key that never leaves this machine; the key id is 16 hex characters of an HMAC of a
//! fixed text under the same key, so it tells two keys apart and nothing more (recovering the key
//! from it is as hard as from any MAC). The name is in the MAC so that equal values under
//! different names do not look equal; the same name in two scopes (an environment secret
//! shadowing the repository's) gives equal fingerprints for equal values, which is what
//! `preflight` compares.
//!
//! The key: `DEPLOY_FINGERPRINT_KEY` (at least 32 characters: `openssl rand -hex 32`) or the file
//! `DEPLOY_FINGERPRINT_KEY_FILE` names, shared by everyone who writes the same secrets (a laptop
//! and CI) so that their fingerprints agree; without either, one derived from the GitHub PAT, which
//! needs no set-up but changes when the PAT does (then every value is written once more).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use mgraph_deploy_api::{SecretName, ValueFingerprint};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::seal::Plaintext;

/// The variable holding a shared fingerprint key.
pub const VAR_KEY: &str = "DEPLOY_FINGERPRINT_KEY";
/// The variable naming a file that holds a shared fingerprint key.
pub const VAR_KEY_FILE: &str = "DEPLOY_FINGERPRINT_KEY_FILE";
/// The shortest shared key taken, in bytes: a short one could be guessed from a fingerprint of a
/// guessable value.
pub const MIN_SHARED_KEY: usize = 32;

const KEY_CONTEXT: &[u8] = b"mgraph-deploy value fingerprint key v1";
const ID_CONTEXT: &[u8] = b"mgraph-deploy value fingerprint key id v1";
const SCHEME: &str = "hmac-sha256";

/// Where a key came from, to say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `DEPLOY_FINGERPRINT_KEY`.
    Variable,
    /// The file `DEPLOY_FINGERPRINT_KEY_FILE` names.
    File,
    /// Derived from the GitHub PAT.
    Pat,
}

/// A fingerprint key. Its `Debug` shows the key id only.
pub struct FingerprintKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
    pub source: KeySource,
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintKey({}, {:?})", self.id, self.source)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Why a shared key was refused. Never holds the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "{VAR_KEY} is too short: a shared fingerprint key must be at least {MIN_SHARED_KEY} characters (make one with `openssl rand -hex 32`)"
    )]
    VariableShort,
    #[error(
        "the fingerprint key file {0} holds less than {MIN_SHARED_KEY} bytes (make one with `openssl rand -hex 32 > FILE`)"
    )]
    FileShort(String),
    #[error("cannot read the fingerprint key file {0}: {1}")]
    FileUnreadable(String, String),
    #[error("{VAR_KEY} and {VAR_KEY_FILE} are both set: keep one")]
    Both,
    #[error("{0} is set but empty or not UTF-8: unset it to use the key derived from the PAT")]
    Unreadable(&'static str),
    #[error(
        "the fingerprint key file {0} is longer than {MAX_KEY_FILE} bytes: it should hold one key"
    )]
    FileLong(String),
}

/// The longest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// A variable's text: `None` when unset, refused when set but empty or not UTF-8 (a silent
/// fall back to another key would write every value again).
fn variable(name: &'static str) -> Result<Option<String>, KeyError> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) if !text.is_empty() => Ok(Some(text)),
            _ => Err(KeyError::Unreadable(name)),
        },
    }
}

impl FingerprintKey {
    fn from_secret(secret: &[u8], source: KeySource) -> Self {
        let key = Zeroizing::new(mac(secret, &[KEY_CONTEXT]));
        let id = hex::encode(&mac(key.as_slice(), &[ID_CONTEXT])[..8]);
        Self { key, id, source }
    }

    /// The key from the environment (`DEPLOY_FINGERPRINT_KEY`, `DEPLOY_FINGERPRINT_KEY_FILE`),
    /// or else derived from `pat`.
    pub fn from_env_or_pat(pat: &Plaintext) -> Result<Self, KeyError> {
        match (variable(VAR_KEY)?, variable(VAR_KEY_FILE)?) {
            (Some(_), Some(_)) => Err(KeyError::Both),
            (Some(key), None) => {
                let key = Zeroizing::new(key);
                let key = key.as_bytes().trim_ascii();
                if key.len() < MIN_SHARED_KEY {
                    return Err(KeyError::VariableShort);
                }
                Ok(Self::from_secret(key, KeySource::Variable))
            }
            (None, Some(path)) => {
                use std::io::Read as _;
                let unreadable =
                    |e: std::io::Error| KeyError::FileUnreadable(path.clone(), e.to_string());
                let mut bytes = Zeroizing::new(Vec::new());
                std::fs::File::open(&path)
                    .map_err(unreadable)?
                    .take(MAX_KEY_FILE + 1)
                    .read_to_end(&mut bytes)
                    .map_err(unreadable)?;
                if bytes.len() as u64 > MAX_KEY_FILE {
                    return Err(KeyError::FileLong(path));
                }
                let key = bytes.trim_ascii();
                if key.len() < MIN_SHARED_KEY {
                    return Err(KeyError::FileShort(path));
                }
                Ok(Self::from_secret(key, KeySource::File))
            }
            (None, None) => Ok(Self::from_secret(pat.expose().as_bytes(), KeySource::Pat)),
        }
    }

    /// 16 hex characters naming the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The fingerprint of `value` as the secret `name`.
    pub fn of(&self, name: &SecretName, value: &Plaintext) -> ValueFingerprint {
        let digest = mac(
            self.key.as_slice(),
            &[name.as_str().as_bytes(), &[0], value.expose().as_bytes()],
        );
        let text = format!("{SCHEME}:{}:{}", self.id, URL_SAFE_NO_PAD.encode(digest));
        ValueFingerprint::try_from(text).expect("the scheme, hex and base64url fit the rule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> FingerprintKey {
        FingerprintKey::from_secret(secret.as_bytes(), KeySource::Variable)
    }

    fn name(n: &str) -> SecretName {
        SecretName::try_from(n).unwrap()
    }

    fn value(v: &str) -> Plaintext {
        Plaintext::new(v.to_owned())
    }

    #[test]
    fn a_fingerprint_names_its_scheme_and_key_and_is_the_same_for_the_same_key_name_and_value() {
        let k = key(&"k".repeat(32));
        let fp = k.of(&name("API_KEY"), &value("v"));
        let text = fp.as_str();
        assert!(
            text.starts_with(&format!("hmac-sha256:{}:", k.id())),
            "{text}"
        );
        assert_eq!(k.id().len(), 16);
        assert!(text.len() <= 128);
        assert_eq!(fp, key(&"k".repeat(32)).of(&name("API_KEY"), &value("v")));
    }

    #[test]
    fn another_value_name_or_key_gives_another_fingerprint_and_neither_holds_the_key_or_value() {
        let secret = "a-shared-key-of-32-characters-ok";
        let k = key(secret);
        let fp = k.of(&name("API_KEY"), &value("hunter2"));
        assert_ne!(fp, k.of(&name("API_KEY"), &value("hunter3")));
        assert_ne!(fp, k.of(&name("OTHER_KEY"), &value("hunter2")));
        let other = key("another-shared-key-of-32-chars!!");
        assert_ne!(other.id(), k.id());
        assert_ne!(fp, other.of(&name("API_KEY"), &value("hunter2")));
        for shown in [fp.as_str().to_owned(), format!("{k:?}")] {
            assert!(
                !shown.contains(secret) && !shown.contains("hunter2"),
                "{shown}"
            );
        }
    }
}
