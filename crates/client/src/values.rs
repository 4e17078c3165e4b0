//! Reading secret values for `apply`: a `.env` file (quotes, escapes and multi-line values as
//! `dotenvy` parses them) or a JSON object of strings.

use std::collections::HashSet;
use std::path::Path;

use crate::seal::Plaintext;

/// Why a values file was refused. Messages name keys and lines, never values.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: {name} is given twice; remove one")]
    Duplicate { path: String, name: String },
    #[error("{path}: no secrets in the file")]
    Empty { path: String },
}

/// The named values of `path`, in file order.
pub fn read_values(path: &Path) -> Result<Vec<(String, Plaintext)>, ValuesError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ValuesError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    let values = if is_json {
        from_json(&text, &shown)?
    } else {
        from_dotenv(&text, &shown)?
    };
    if values.is_empty() {
        return Err(ValuesError::Empty { path: shown });
    }
    Ok(values)
}

fn from_json(text: &str, path: &str) -> Result<Vec<(String, Plaintext)>, ValuesError> {
    // Duplicates are caught by walking the raw entries before serde_json's map collapses them.
    let entries: Vec<(String, serde_json::Value)> = serde_json::from_str::<JsonEntries>(text)
        .map_err(|e| ValuesError::Parse {
            path: path.to_owned(),
            reason: format!(
                "expected a JSON object of NAME: \"value\" strings (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?
        .0;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let serde_json::Value::String(value) = value else {
            return Err(ValuesError::Parse {
                path: path.to_owned(),
                reason: format!("the value of {name} must be a JSON string"),
            });
        };
        if !seen.insert(name.clone()) {
            return Err(ValuesError::Duplicate {
                path: path.to_owned(),
                name,
            });
        }
        out.push((name, Plaintext::new(value)));
    }
    Ok(out)
}

/// A JSON object's entries in order, duplicates kept.
struct JsonEntries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonEntries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(JsonEntries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn from_dotenv(text: &str, path: &str) -> Result<Vec<(String, Plaintext)>, ValuesError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (name, value) = item.map_err(|e| ValuesError::Parse {
            path: path.to_owned(),
            reason: describe_dotenv_error(&e),
        })?;
        if !seen.insert(name.clone()) {
            return Err(ValuesError::Duplicate {
                path: path.to_owned(),
                name,
            });
        }
        out.push((name, Plaintext::new(value)));
    }
    Ok(out)
}

/// dotenvy's parse errors quote the offending line, which may hold a value: keep only where.
fn describe_dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, index) => {
            format!("cannot parse the entry at character {index} (check its quotes)")
        }
        dotenvy::Error::Io(e) => e.to_string(),
        _ => "cannot parse the file as .env".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<Vec<(String, String)>, ValuesError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_values(&path).map(|v| {
            v.into_iter()
                .map(|(k, p)| (k, p.expose().to_owned()))
                .collect()
        })
    }

    #[test]
    fn a_dotenv_file_keeps_quoted_and_multi_line_values_in_file_order() {
        let values = parse(
            "x.env",
            "# comment\nA=plain\nB=\"two words\"\nC='single $NOT_EXPANDED'\nD=\"line 1\nline 2\"\n",
        )
        .unwrap();
        assert_eq!(
            values,
            vec![
                ("A".into(), "plain".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "single $NOT_EXPANDED".into()),
                ("D".into(), "line 1\nline 2".into()),
            ]
        );
    }

    #[test]
    fn a_json_map_of_strings_is_read_and_anything_else_is_refused_without_echoing_values() {
        let values = parse("v.json", r#"{"A": "1", "B": "x\ny"}"#).unwrap();
        assert_eq!(values[1], ("B".into(), "x\ny".into()));
        let err = parse("v.json", r#"{"A": 5}"#).unwrap_err().to_string();
        assert!(err.contains("A must be a JSON string"), "{err}");
        let err = parse("v.json", r#"{"A": "s3cret", "A": "t"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("A is given twice") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn an_unterminated_quote_is_an_error_that_does_not_quote_the_line() {
        let err = parse("x.env", "A=\"s3cret-unterminated\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            parse("x.env", "# nothing\n")
                .unwrap_err()
                .to_string()
                .contains("no secrets")
        );
    }
}
