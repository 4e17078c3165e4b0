//! A request the service refuses before any upstream call: which field, which rule. Read by the
//! strict JSON pass ([`super::strict`]) and the typed parse ([`super::input`]) alike.

use super::{ErrorType, Failure};

/// A rejected request: which field, and which rule it broke. Never holds the rejected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.sentence())]
pub struct InvalidInput {
    /// Dotted path of the field (`target.owner`, `operations[2].secret_name`); empty for the whole body.
    pub field: String,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    fn sentence(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("`{}` {}", self.field, self.message)
        }
    }
}

impl From<InvalidInput> for Failure {
    fn from(e: InvalidInput) -> Self {
        Failure::new(ErrorType::InvalidInput, e.to_string())
    }
}

/// Where in the body `e` happened, as serde_json says it, without repeating any of the body.
pub(crate) fn position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(r, _)| r);
    format!("{reason} at line {} column {}", e.line(), e.column())
}

/// A key that may be repeated in a message: a plain identifier of at most 64 characters.
pub(crate) fn is_plain_key(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
