//! The `.env` grammar of the CLI: values exactly as written, or a refusal naming the line, the
//! column and the fix. Nothing is ever substituted from the environment.
//!
//! - A UTF-8 byte order mark at the start is skipped; CRLF line endings read as LF.
//! - Blank lines and lines starting with `#` are comments; `export NAME=…` is `NAME=…`;
//!   spaces around `=` are allowed. A name is letters, digits and underscores, not starting with
//!   a digit; a name given twice is refused, also when the two differ only in case (GitHub
//!   stores secret names in upper case: they are one secret).
//! - `'single quotes'`: every character literal, newlines included; no escapes.
//! - `"double quotes"`: newlines allowed; the escapes `\n` `\r` `\t` `\"` `\\` `\$` and `` \` ``.
//! - Unquoted: up to the end of the line or a `#` after a space (a comment); the spaces around
//!   it are trimmed.
//! - Refused, because other tools (shells, docker compose, dotenv libraries) would read another
//!   value from the same line: `$` or `` ` `` unescaped in double quotes; `$`, `` ` ``, `\` or a
//!   quote inside an unquoted value; any other backslash escape; text after a closing quote; a
//!   carriage return that does not end a line.
//!
//! Errors never quote a value: only the line, the column and, once it is known, the name. After
//! an error confined to one `NAME=value` line (its name read, no quote opened), reading goes on
//! at the next line, so every such line is reported at once; after any other (a line without a
//! name, a broken quoted value), the lines that follow may be part of a value, so reading stops
//! there rather than take a value's text for names.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::seal::Plaintext;

/// One `NAME=value` of a file.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub value: Plaintext,
    /// The line (from 1) the entry starts on.
    pub line: usize,
}

/// Why a file was refused: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub column: usize,
    pub cause: String,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.cause
        )
    }
}

impl std::error::Error for DotenvError {}

/// A whole file, read in order: its entries, and every line in error.
#[derive(Debug)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub errors: Vec<DotenvError>,
}

/// Parses a whole file, in order.
pub fn parse(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = Zeroizing::new(text.replace("\r\n", "\n"));
    let mut parser = Parser {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
        column: 1,
        shaped: false,
        named: None,
        quoted: false,
    };
    let parsed = parser.entries();
    parser.chars.iter_mut().for_each(|c| *c = '\0');
    parsed
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    line: usize,
    column: usize,
    /// The entry being read: whether its line has a `=` after a word, its name once read, and
    /// whether its value opened a quote.
    shaped: bool,
    named: Option<String>,
    quoted: bool,
}

const DOLLAR_FIX: &str = "shells, docker compose and dotenv libraries substitute `$`";
const BACKTICK_FIX: &str = "shells run the text between backticks as a command";

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, cause: impl Into<String>) -> DotenvError {
        DotenvError {
            line: self.line,
            column: self.column,
            cause: cause.into(),
        }
    }

    fn error_at(line: usize, column: usize, cause: impl Into<String>) -> DotenvError {
        DotenvError {
            line,
            column,
            cause: cause.into(),
        }
    }

    /// A `\r` that is not part of a CRLF (those were read as LF).
    fn carriage_return(&self) -> DotenvError {
        self.error("a carriage return that does not end a line; save the file with LF or CRLF line endings")
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips a comment's text, up to (not including) the end of the line.
    fn skip_to_line_end(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.bump();
        }
    }

    fn entries(&mut self) -> Parsed {
        let mut entries: Vec<Entry> = Vec::new();
        let mut errors = Vec::new();
        // By the name as GitHub stores it: the line and the spelling of its first appearance.
        let mut first: HashMap<String, (usize, String)> = HashMap::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                None => return Parsed { entries, errors },
                Some('\n') => {
                    self.bump();
                    continue;
                }
                Some('#') => {
                    self.skip_to_line_end();
                    continue;
                }
                Some('\r') => {
                    errors.push(self.carriage_return());
                    return Parsed { entries, errors };
                }
                Some(_) => {}
            }
            let (line, column) = (self.line, self.column);
            self.shaped = false;
            self.named = None;
            self.quoted = false;
            let entry = match self.entry(line) {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(e);
                    if let Some(name) = self.named.take() {
                        first
                            .entry(name.to_ascii_uppercase())
                            .or_insert((line, name));
                    }
                    if !self.shaped || self.quoted {
                        return Parsed { entries, errors };
                    }
                    self.skip_to_line_end();
                    continue;
                }
            };
            let stored = entry.name.to_ascii_uppercase();
            match first.get(&stored) {
                Some((first_line, spelled)) if *spelled == entry.name => {
                    errors.push(Self::error_at(
                        line,
                        column,
                        format!(
                            "{} is given twice (lines {first_line} and {line}); remove one",
                            entry.name
                        ),
                    ));
                }
                Some((first_line, spelled)) => {
                    errors.push(Self::error_at(
                        line,
                        column,
                        format!(
                            "{stored} is given twice (line {first_line} as {spelled}, line {line} as {}): GitHub stores secret names in upper case, so they are one secret; remove one",
                            entry.name
                        ),
                    ));
                }
                None => {
                    first.insert(stored, (line, entry.name.clone()));
                    entries.push(entry);
                }
            }
        }
    }

    /// One `NAME=value` starting on `line`.
    fn entry(&mut self, line: usize) -> Result<Entry, DotenvError> {
        let name = self.name()?;
        self.named = Some(name.clone());
        let (value, quoted) = self.value(&name)?;
        if quoted {
            self.after_closing_quote(&name)?;
        }
        Ok(Entry {
            name,
            value: Plaintext::new(value.to_string()),
            line,
        })
    }

    /// `[export ]NAME =`, leaving the cursor after the `=`.
    fn name(&mut self) -> Result<String, DotenvError> {
        let (line, column) = (self.line, self.column);
        let mut word = self.word();
        if word == "export" && matches!(self.peek(), Some(' ' | '\t')) {
            self.skip_blanks();
            word = self.word();
        }
        // A word that is not followed by `=` may be part of a value (a broken multi-line one):
        // it is never echoed.
        let name_column = self.column - word.chars().count();
        self.skip_blanks();
        if self.peek() != Some('=') {
            return Err(Self::error_at(
                line,
                column,
                "expected NAME=value (a line without `=`; a value spanning lines must be in quotes)",
            ));
        }
        self.shaped = true;
        if word.is_empty() {
            return Err(Self::error_at(
                line,
                column,
                "a `=` without a name before it",
            ));
        }
        if word.starts_with('\u{feff}') {
            return Err(Self::error_at(
                line,
                name_column,
                "an invisible byte order mark (U+FEFF) before the name; remove it",
            ));
        }
        let valid = word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !word.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(Self::error_at(
                line,
                name_column,
                "the name must be letters, digits and underscores, not starting with a digit",
            ));
        }
        self.bump();
        Ok(word)
    }

    /// Characters up to a blank, `=`, the end of the line or of the file.
    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | '\t' | '=' | '\n') {
                break;
            }
            word.push(c);
            self.bump();
        }
        word
    }

    /// The value after `=`, and whether it was quoted.
    fn value(&mut self, name: &str) -> Result<(Zeroizing<String>, bool), DotenvError> {
        let spaced = matches!(self.peek(), Some(' ' | '\t'));
        self.skip_blanks();
        match self.peek() {
            Some('\'') => Ok((self.single_quoted(name)?, true)),
            Some('"') => Ok((self.double_quoted(name)?, true)),
            Some('#') if !spaced => Err(self.error(format!(
                "{name}: a value starting with `#` (some tools read a comment); put the value in quotes"
            ))),
            _ => Ok((self.unquoted(name)?, false)),
        }
    }

    fn single_quoted(&mut self, name: &str) -> Result<Zeroizing<String>, DotenvError> {
        let (line, column) = (self.line, self.column);
        self.bump();
        self.quoted = true;
        let mut value = Zeroizing::new(String::new());
        loop {
            match self.peek() {
                None => return Err(Self::unclosed(name, "single", line, column)),
                Some('\'') => {
                    self.bump();
                    return Ok(value);
                }
                Some('\r') => return Err(self.carriage_return()),
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    fn double_quoted(&mut self, name: &str) -> Result<Zeroizing<String>, DotenvError> {
        let (line, column) = (self.line, self.column);
        self.bump();
        self.quoted = true;
        let mut value = Zeroizing::new(String::new());
        loop {
            match self.peek() {
                None => return Err(Self::unclosed(name, "double", line, column)),
                Some('"') => {
                    self.bump();
                    return Ok(value);
                }
                Some('\r') => return Err(self.carriage_return()),
                Some('$') => {
                    return Err(self.error(format!(
                        "{name}: a `$` inside double quotes ({DOLLAR_FIX}); write `\\$` for a literal dollar, or put the value in single quotes"
                    )));
                }
                Some('`') => {
                    return Err(self.error(format!(
                        "{name}: a backtick inside double quotes ({BACKTICK_FIX}); write \\` for a literal backtick, or put the value in single quotes"
                    )));
                }
                Some('\\') => {
                    let escape = self.error(format!(
                        "{name}: an unknown escape; inside double quotes a backslash goes before n, r, t, \", \\, $ or `; write `\\\\` for a backslash, or put the value in single quotes"
                    ));
                    self.bump();
                    let c = match self.peek() {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some(c @ ('"' | '\\' | '$' | '`')) => c,
                        None => return Err(Self::unclosed(name, "double", line, column)),
                        _ => return Err(escape),
                    };
                    value.push(c);
                    self.bump();
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    fn unclosed(name: &str, kind: &str, line: usize, column: usize) -> DotenvError {
        Self::error_at(
            line,
            column,
            format!("{name}: the {kind} quote opened here is never closed"),
        )
    }

    fn unquoted(&mut self, name: &str) -> Result<Zeroizing<String>, DotenvError> {
        let mut value = Zeroizing::new(String::new());
        let quote_it = "put the whole value in single quotes";
        while let Some(c) = self.peek() {
            match c {
                '\n' => break,
                '#' if value.is_empty() || value.ends_with([' ', '\t']) => {
                    self.skip_to_line_end();
                    break;
                }
                '\r' => return Err(self.carriage_return()),
                '$' => {
                    return Err(self.error(format!(
                        "{name}: a `$` in an unquoted value ({DOLLAR_FIX}); {quote_it}"
                    )));
                }
                '`' => {
                    return Err(self.error(format!(
                        "{name}: a backtick in an unquoted value ({BACKTICK_FIX}); {quote_it}"
                    )));
                }
                '\\' => {
                    return Err(self.error(format!(
                        "{name}: a backslash in an unquoted value (tools disagree on what it escapes); {quote_it}"
                    )));
                }
                '\'' | '"' => {
                    return Err(self.error(format!(
                        "{name}: a quote inside an unquoted value (tools disagree on where the value ends); {quote_it}, or in double quotes with \\\" for the quote"
                    )));
                }
                c => {
                    value.push(c);
                    self.bump();
                }
            }
        }
        let kept = value.trim_end_matches([' ', '\t']).len();
        value.truncate(kept);
        Ok(value)
    }

    /// After a quoted value: blanks, then an optional comment, then the end of the line.
    fn after_closing_quote(&mut self, name: &str) -> Result<(), DotenvError> {
        let glued = !matches!(self.peek(), None | Some(' ' | '\t' | '\n'));
        self.skip_blanks();
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some('#') if !glued => {
                self.skip_to_line_end();
                Ok(())
            }
            Some('\r') => Err(self.carriage_return()),
            Some(_) => Err(self.error(format!(
                "{name}: text after the closing quote (a value is one quoted string; a comment needs a space before `#`)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, String)> {
        let parsed = parse(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed
            .entries
            .into_iter()
            .map(|e| (e.name, e.value.expose().to_owned()))
            .collect()
    }

    /// The first error of a file with exactly one.
    fn refusal(text: &str) -> DotenvError {
        let mut errors = parse(text).errors;
        assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
        errors.remove(0)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn unquoted_values_run_to_a_comment_after_a_space_and_are_trimmed() {
        assert_eq!(
            values("A=plain\nB = spaced value  # comment\nC=a#b\nD=\nE= # only a comment\n"),
            pairs(&[
                ("A", "plain"),
                ("B", "spaced value"),
                ("C", "a#b"),
                ("D", ""),
                ("E", "")
            ])
        );
        let e = refusal("A=#x\n");
        assert_eq!((e.line, e.column), (1, 3));
        assert!(e.cause.contains("starting with `#`"), "{e}");
    }

    #[test]
    fn single_quotes_are_literal_and_double_quotes_know_six_escapes() {
        assert_eq!(
            values(
                "S='p@ss$1word \\n `x` \"q\"'\nM='line 1\nline 2'\nD=\"a\\tb\\nc \\$HOME \\\\ \\\" \\` 'q'\"\n"
            ),
            pairs(&[
                ("S", "p@ss$1word \\n `x` \"q\""),
                ("M", "line 1\nline 2"),
                ("D", "a\tb\nc $HOME \\ \" ` 'q'"),
            ])
        );
    }

    #[test]
    fn a_bom_crlf_export_and_comments_are_read_as_people_write_them() {
        assert_eq!(
            values("\u{feff}# header\r\nexport A=1\r\n\r\n  B=\"x\r\ny\" # note\r\nexport=2\r\n"),
            pairs(&[("A", "1"), ("B", "x\ny"), ("export", "2")])
        );
    }

    #[test]
    fn a_dollar_outside_single_quotes_is_refused_with_its_position_and_the_fix() {
        let e = refusal("A=1\nDB_PASSWORD=p@ss$1word\n");
        assert_eq!((e.line, e.column), (2, 17));
        assert!(e.cause.starts_with("DB_PASSWORD: a `$`"), "{e}");
        assert!(e.cause.contains("single quotes"), "{e}");
        let e = refusal("PW=\"pa$$word\"\n");
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.cause.contains("write `\\$`"), "{e}");
    }

    #[test]
    fn ambiguous_unquoted_values_are_refused() {
        for (text, column, cause) in [
            ("A=x\\ny\n", 4, "a backslash"),
            ("A=a`id`\n", 4, "a backtick"),
            ("A=it's\n", 5, "a quote inside"),
            ("A=\"x\"y\n", 6, "text after the closing quote"),
            ("A='x'#c\n", 6, "text after the closing quote"),
            ("A=\"\\q\"\n", 4, "an unknown escape"),
            ("A=\"`\"\n", 4, "a backtick inside double quotes"),
        ] {
            let e = refusal(text);
            assert_eq!((e.line, e.column), (1, column), "{text:?}: {e}");
            assert!(e.cause.contains(cause), "{text:?}: {e}");
        }
    }

    #[test]
    fn structural_errors_name_the_line_and_never_quote_the_text() {
        let e = refusal("A=1\ns3cretfragment\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.cause.starts_with("expected NAME=value"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        let e = refusal("A=1\n\nB=\"s3cret\nmore\n");
        assert_eq!((e.line, e.column), (3, 3));
        assert_eq!(e.cause, "B: the double quote opened here is never closed");
        let e = refusal("1A=x\n");
        assert!(e.cause.starts_with("the name must be letters"), "{e}");
        let e = refusal("A-B=x\n");
        assert!(e.cause.starts_with("the name must be letters"), "{e}");
        let e = refusal("=x\n");
        assert!(e.cause.contains("without a name"), "{e}");
        let e = refusal("A=1\nB=2\nA=3\n");
        assert_eq!((e.line, e.column), (3, 1));
        assert_eq!(e.cause, "A is given twice (lines 1 and 3); remove one");
        let e = refusal("A=x\ry\n");
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.cause.contains("carriage return"), "{e}");
        let e = refusal("A=1\n\u{feff}B=2\n");
        assert!(e.cause.contains("byte order mark"), "{e}");
    }

    #[test]
    fn names_that_differ_only_in_case_are_one_secret_given_twice() {
        let e = refusal("lower=1\nLOWER=2\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(
            e.cause,
            "LOWER is given twice (line 1 as lower, line 2 as LOWER): GitHub stores secret names in upper case, so they are one secret; remove one"
        );
    }

    #[test]
    fn errors_of_one_line_entries_are_all_reported_and_the_good_ones_read() {
        let parsed = parse("A=$x\nGOOD=1\nB=a`b`\nA=again\n1C=x\nLAST='ok'\n");
        let found: Vec<(usize, String)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.cause.split(':').next().unwrap().to_owned()))
            .collect();
        assert_eq!(
            found,
            [
                (1, "A".to_owned()),
                (3, "B".to_owned()),
                (4, "A is given twice (lines 1 and 4); remove one".to_owned()),
                (
                    5,
                    "the name must be letters, digits and underscores, not starting with a digit"
                        .to_owned()
                ),
            ]
        );
        let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["GOOD", "LAST"]);
    }

    #[test]
    fn after_a_broken_quoted_value_reading_stops_rather_than_take_its_text_for_names() {
        // The rest of CERT's value looks like entries; none of it may be read as one.
        let parsed = parse("CERT='line one\nit's here\nexport SESSION_KEY=abc$123\nGITHUB_X=1\n");
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert_eq!(parsed.errors[0].line, 2);
        assert!(
            parsed.errors[0]
                .cause
                .starts_with("CERT: text after the closing quote")
        );
        assert!(parsed.entries.is_empty());
        // A line without a name may be a value's too.
        let parsed = parse("A=1\nloose text\nSESSION_KEY=a$b\n");
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        // An escape cut by the end of the file is a quote never closed.
        let e = refusal("A=\"abc\\");
        assert_eq!(e.cause, "A: the double quote opened here is never closed");
    }
}
