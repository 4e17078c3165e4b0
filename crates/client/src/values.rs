//! Reading secret values for `apply` and `secret set -f`: a `.env` file (the grammar of
//! [`crate::dotenv`]) or a JSON object of strings, from a file or (`-`) standard input.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use mgraph_deploy_api::SecretName;
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
    /// Every problem of the file, in file order: nothing of it may be sent.
    #[error("{path}: {}", listed(.problems))]
    Refused { path: String, problems: Vec<String> },
    #[error("{path}: no secrets in the file")]
    Empty { path: String },
}

/// One problem as it is; several counted, one a line.
fn listed(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!(
            "{} problems; nothing was sealed or sent:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// The values of a file that passed every check, with their names as GitHub stores them.
#[derive(Debug)]
pub struct Values {
    pub entries: Vec<NamedValue>,
    /// The name of each entry, in the same order.
    pub names: Vec<SecretName>,
}

/// One named value, with the line it starts on when the file is a `.env`.
#[derive(Debug)]
pub struct NamedValue {
    pub name: String,
    pub value: Plaintext,
    pub line: Option<usize>,
    /// Where it is in its file: its line (a .env) or its position (JSON), for ordering problems.
    pub order: usize,
}

/// How messages name `path`: `-` is standard input.
pub fn source_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The named values of `path` (`-` is standard input), in file order, once every check passed:
/// the file's syntax, each name given once (names that differ only in case are one secret) and
/// one GitHub takes, and no empty value unless `allow_empty`. Every problem is reported at once.
pub fn read_values(path: &Path, allow_empty: bool) -> Result<Values, ValuesError> {
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
    // (where, problem): sorted in the end by the line (a .env) or the entry's position (JSON),
    // problems of the file as a whole last.
    let mut problems: Vec<(Option<usize>, String)> = Vec::new();
    let entries = if is_json {
        from_json(&text, &shown, &mut problems)?
    } else {
        let parsed = dotenv::parse(&text);
        problems.extend(parsed.errors.iter().map(|e| (Some(e.line), e.to_string())));
        parsed
            .entries
            .into_iter()
            .map(|e| NamedValue {
                name: e.name,
                value: e.value,
                line: Some(e.line),
                order: e.line,
            })
            .collect()
    };
    if entries.is_empty() && problems.is_empty() {
        return Err(ValuesError::Empty { path: shown });
    }
    let mut names = Vec::with_capacity(entries.len());
    for entry in &entries {
        match SecretName::try_from(entry.name.as_str()) {
            Ok(name) => names.push(name),
            Err(rule) => problems.push(match entry.line {
                Some(line) => (Some(line), format!("line {line}: {}: {rule}", entry.name)),
                None => (Some(entry.order), format!("{}: {rule}", entry.name)),
            }),
        }
    }
    let empty: Vec<String> = entries
        .iter()
        .filter(|v| v.value.expose().is_empty())
        .map(|v| match v.line {
            Some(line) => format!("{} (line {line})", v.name),
            None => v.name.clone(),
        })
        .collect();
    if !allow_empty && !empty.is_empty() {
        let verb = if empty.len() == 1 { "is" } else { "are" };
        problems.push((
            None,
            format!(
                "{} {verb} empty; pass --allow-empty to write empty values",
                empty.join(", ")
            ),
        ));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        return Err(ValuesError::Refused {
            path: shown,
            problems: problems.into_iter().map(|(_, p)| p).collect(),
        });
    }
    Ok(Values { entries, names })
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

/// The entries of a JSON object of strings; a name given twice (in any case) is a problem.
fn from_json(
    text: &str,
    path: &str,
    problems: &mut Vec<(Option<usize>, String)>,
) -> Result<Vec<NamedValue>, ValuesError> {
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
    // By the name as GitHub stores it: its spelling at the first appearance.
    let mut first: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (index, (name, value)) in entries.into_iter().enumerate() {
        let order = index + 1;
        let serde_json::Value::String(value) = value else {
            problems.push((
                Some(order),
                format!("the value of {name} must be a JSON string"),
            ));
            continue;
        };
        let stored = name.to_ascii_uppercase();
        if let Some(spelled) = first.get(&stored) {
            problems.push((
                Some(order),
                if *spelled == name {
                    format!("{name} is given twice; remove one")
                } else {
                    format!(
                        "{stored} is given twice (as {spelled} and as {name}): GitHub stores secret names in upper case, so they are one secret; remove one"
                    )
                },
            ));
            continue;
        }
        first.insert(stored, name.clone());
        out.push(NamedValue {
            name,
            value: Plaintext::new(value),
            line: None,
            order,
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
        read_values(&path, false).map(|v| {
            v.entries
                .into_iter()
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
        let err = read_values(&path, false).unwrap_err().to_string();
        assert!(
            err.ends_with("line 2, column 6: not UTF-8 text; save the file as UTF-8"),
            "{err}"
        );
        std::fs::write(&path, b"\xff\xfeA\x00=\x001\x00").unwrap();
        let err = read_values(&path, false).unwrap_err().to_string();
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

    #[test]
    fn every_problem_of_a_file_is_listed_at_once_in_file_order() {
        let err = parse(
            "x.env",
            "GITHUB_ONE=1\nA=1\nB=p@ss$1word\nEMPTY=\ngithub_two=2\nA=2\nALSO_EMPTY=\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            &err[err.find("x.env").unwrap()..],
            "x.env: 5 problems; nothing was sealed or sent:\n  \
             line 1: GITHUB_ONE: must not start with GITHUB_ (in any case): GitHub reserves that prefix\n  \
             line 3, column 7: B: a `$` in an unquoted value (shells, docker compose and dotenv libraries substitute `$`); put the whole value in single quotes\n  \
             line 5: github_two: must not start with GITHUB_ (in any case): GitHub reserves that prefix\n  \
             line 6, column 1: A is given twice (lines 2 and 6); remove one\n  \
             EMPTY (line 4), ALSO_EMPTY (line 7) are empty; pass --allow-empty to write empty values"
        );
        assert!(!err.contains("p@ss"), "{err}");
    }

    #[test]
    fn names_that_differ_only_in_case_are_one_secret_in_json_too_and_names_are_stored_upper_case() {
        let err = parse("v.json", r#"{"lower": "1", "LOWER": "2"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LOWER is given twice (as lower and as LOWER)"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.env");
        std::fs::write(&path, "api_key=1\n").unwrap();
        let values = read_values(&path, false).unwrap();
        assert_eq!(values.names[0].as_str(), "API_KEY");
        assert_eq!(values.names[0].given(), Some("api_key"));
    }
}
