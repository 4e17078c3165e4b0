//! Reading secret values for `apply` and `secret set -f`: a `.env` file (the grammar of
//! [`crate::dotenv`]) or a JSON object of strings, from a file or (`-`) standard input.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::dotenv;
use crate::seal::Plaintext;

/// Why a values file was refused. Messages name keys, lines and columns, never values.
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

/// One named value, with the line it starts on when the file is a `.env`.
#[derive(Debug)]
pub struct NamedValue {
    pub name: String,
    pub value: Plaintext,
    pub line: Option<usize>,
}

/// How messages name `path`: `-` is standard input.
pub fn source_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The named values of `path` (`-` is standard input), in file order.
pub fn read_values(path: &Path) -> Result<Vec<NamedValue>, ValuesError> {
    let stdin = path.as_os_str() == "-";
    let shown = source_name(path);
    let read_error = |reason: String| ValuesError::Read {
        path: shown.clone(),
        reason,
    };
    let mut bytes = Zeroizing::new(Vec::new());
    if stdin {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| read_error(e.to_string()))?;
    } else {
        *bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    }
    let text = Zeroizing::new(text_of(&bytes).map_err(read_error)?.to_owned());
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{');
    let values = if is_json {
        from_json(&text, &shown)?
    } else {
        dotenv::parse(&text)
            .map_err(|e| ValuesError::Parse {
                path: shown.clone(),
                reason: e.to_string(),
            })?
            .into_iter()
            .map(|e| NamedValue {
                name: e.name,
                value: e.value,
                line: Some(e.line),
            })
            .collect()
    };
    if values.is_empty() {
        return Err(ValuesError::Empty { path: shown });
    }
    Ok(values)
}

/// The file as UTF-8, or where and why it is not.
fn text_of(bytes: &[u8]) -> Result<&str, String> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err("the file is UTF-16; save it as UTF-8".to_owned());
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[start..]).chars().count() + 1;
        format!("line {line}, column {column}: not UTF-8 text; save the file as UTF-8")
    })
}

fn from_json(text: &str, path: &str) -> Result<Vec<NamedValue>, ValuesError> {
    // Duplicates are caught by walking the raw entries before serde_json's map collapses them.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
        out.push(NamedValue {
            name,
            value: Plaintext::new(value),
            line: None,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<Vec<(String, String)>, ValuesError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_values(&path).map(|v| {
            v.into_iter()
                .map(|v| (v.name, v.value.expose().to_owned()))
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
    fn a_refusal_names_the_file_the_line_and_the_column() {
        let err = parse("x.env", "A=1\nB=p@ss$1word\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.env: line 2, column 7: B: a `$`"), "{err}");
        assert!(!err.contains("p@ss"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_with_where_and_utf16_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.env");
        std::fs::write(&path, b"A=1\nB=caf\xe9\n").unwrap();
        let err = read_values(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("line 2, column 6: not UTF-8 text; save the file as UTF-8"),
            "{err}"
        );
        std::fs::write(&path, b"\xff\xfeA\x00=\x001\x00").unwrap();
        let err = read_values(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("the file is UTF-16; save it as UTF-8"),
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
