//! One pass over a request body before it is read into types: is it JSON, and is every key of
//! every object given once? (`serde_json` keeps the last of a key given twice when it builds a
//! map, so a workflow's operations would silently take their last `type`.)

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::invalid::{InvalidInput, is_plain_key, position};

/// Where a value is in the document, as a chain of borrowed segments (no allocation unless an
/// error is reported).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Checks `body`'s syntax (trailing data included) and that no object repeats a key.
pub fn check(body: &[u8]) -> Result<(), InvalidInput> {
    let refusal = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = Walk {
        path: Path::Root,
        refusal: &refusal,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (walked, refusal.into_inner()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(found)) => Err(found),
        (Err(e), None) => Err(InvalidInput::new(
            "",
            format!("the request body is not valid JSON: {}", position(&e)),
        )),
    }
}

struct Walk<'a> {
    path: Path<'a>,
    /// The refusal that names a field: a key given twice, or a number out of range.
    refusal: &'a RefCell<Option<InvalidInput>>,
}

impl Walk<'_> {
    /// serde_json reads a number too large for any type (`1e400`) as a syntax error at a column;
    /// the innermost value it failed in is named instead (when its key can be repeated).
    fn out_of_range<E: de::Error>(&self, at: Path<'_>, error: E) -> E {
        let mut found = self.refusal.borrow_mut();
        if found.is_none() && error.to_string().starts_with("number out of range") {
            let named = match at {
                Path::Key(_, key) if !is_plain_key(key) => self.path,
                other => other,
            };
            *found = Some(InvalidInput::new(
                named.to_string(),
                "is a number out of range",
            ));
        }
        error
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let path = Path::Index(&self.path, index);
            let element = seq.next_element_seed(Walk {
                path,
                refusal: self.refusal,
            });
            match element.map_err(|e| self.out_of_range(path, e))? {
                Some(()) => index += 1,
                None => return Ok(()),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                // A key that is not a plain name (a blob pasted as a key, say) is never echoed.
                let found = if is_plain_key(&key) {
                    InvalidInput::new(Path::Key(&self.path, &key).to_string(), "is given twice")
                } else if matches!(self.path, Path::Root) {
                    InvalidInput::new("", "the request body has a key given twice")
                } else {
                    InvalidInput::new(self.path.to_string(), "has a key given twice")
                };
                *self.refusal.borrow_mut() = Some(found);
                return Err(de::Error::custom("a key given twice"));
            }
            let path = Path::Key(&self.path, &key);
            map.next_value_seed(Walk {
                path,
                refusal: self.refusal,
            })
            .map_err(|e| self.out_of_range(path, e))?;
            seen.insert(key);
        }
        Ok(())
    }
}
