//! Secret metadata as the upstream reports it, checked before any of it reaches a response:
//! names by GitHub's rules, timestamps as timestamps, visibility from its set. What fails a check
//! is dropped with a note and never echoed (an upstream that put a blob there must not leak it).

pub use mgraph_deploy_api::SecretMeta;
use serde_json::Value;

use crate::domain::{SecretName, Visibility};

/// GitHub's default page size; the upstream never asks for more, so a list this long may be cut.
pub const UPSTREAM_PAGE: usize = 30;

/// One page of a scope's secrets as the upstream listed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub secrets: Vec<SecretMeta>,
    /// How many entries the upstream sent, the dropped ones included.
    upstream_count: usize,
}

impl Page {
    /// Reads the upstream's `secrets` array; `None` when it is not an array.
    pub fn read(secrets: &Value, notes: &mut Vec<String>) -> Option<Self> {
        let entries = secrets.as_array()?;
        let mut dropped = 0;
        let secrets: Vec<SecretMeta> = entries
            .iter()
            .filter_map(|entry| {
                let meta = read_meta(entry, notes);
                dropped += usize::from(meta.is_none());
                meta
            })
            .collect();
        if dropped > 0 {
            notes.push(format!(
                "The GitHub Service listed {dropped} {} without a valid secret name; left out",
                if dropped == 1 { "entry" } else { "entries" }
            ));
        }
        Some(Self {
            secrets,
            upstream_count: entries.len(),
        })
    }

    pub fn contains(&self, name: &SecretName) -> bool {
        self.secrets.iter().any(|s| s.name == *name)
    }

    /// A full page: the scope may hold more than it shows, so absence must be confirmed by name.
    pub fn may_be_cut(&self) -> bool {
        self.upstream_count >= UPSTREAM_PAGE
    }
}

/// Reads one entry; `None` when it is not an object with a valid secret name. Members that
/// fail their check become `null`, with a note naming the secret and the member.
pub fn read_meta(entry: &Value, notes: &mut Vec<String>) -> Option<SecretMeta> {
    let name = SecretName::try_from(entry.get("name")?.as_str()?).ok()?;
    let mut dropped = Vec::new();
    let mut timestamp = |member: &'static str| match entry.get(member) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_timestamp(s) => Some(s.clone()),
        Some(_) => {
            dropped.push(member);
            None
        }
    };
    let created_at = timestamp("created_at");
    let updated_at = timestamp("updated_at");
    let visibility = match entry.get("visibility") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let visibility = serde_json::from_value::<Visibility>(v.clone()).ok();
            if visibility.is_none() {
                dropped.push("visibility");
            }
            visibility
        }
    };
    if !dropped.is_empty() {
        notes.push(format!(
            "The GitHub Service gave secret '{name}' an invalid {}; dropped",
            dropped.join(", ")
        ));
    }
    Some(SecretMeta {
        name,
        created_at,
        updated_at,
        visibility,
    })
}

/// An RFC 3339 date-time as GitHub writes them: `2024-01-15T10:30:00Z`, with optional fractional
/// seconds and a `Z` or `±hh:mm` offset.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let number = |range: std::ops::Range<usize>| {
        s.get(range)
            .and_then(|d| d.parse::<u32>().ok())
            .unwrap_or(99)
    };
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) <= 23
        && number(14..16) <= 59
        && number(17..19) <= 60;
    if !head {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') <= 23
                && (m1 - b'0') <= 5
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_timestamp;

    #[test]
    fn timestamps_are_rfc_3339_date_times() {
        for ok in [
            "2024-01-15T10:30:00Z",
            "2024-01-15T10:30:00.123Z",
            "2024-01-15T10:30:00+02:00",
            "2024-12-31T23:59:60-11:30",
        ] {
            assert!(is_timestamp(ok), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "2024-01-15",
            "2024-01-15 10:30:00Z",
            "2024-13-15T10:30:00Z",
            "2024-01-15T24:30:00Z",
            "2024-01-15T10:30:00",
            "2024-01-15T10:30:00.Z",
            "2024-01-15T10:30:00+2:00",
            "2024-01-15T10:30:00+25:00",
            "2024-01-15T10:30:00Zjunk",
            "２024-01-15T10:30:00Z",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }
}
