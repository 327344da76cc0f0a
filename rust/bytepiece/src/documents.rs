//! The documents of a block of an input file: each line of a text file (without its newline),
//! or one string field of each record of a `.jsonl` file.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// What a file's lines hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentFormat {
    /// Every line is a document (a `\r` before the newline stays part of it).
    Lines,
    /// Every line is a JSON object whose field `field` (a string) is the document; blank lines
    /// are skipped.
    Jsonl {
        /// The name of the text field.
        field: String,
    },
}

/// A problem with one line of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line's number in the block, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// The documents of `block` (whole lines, as [`crate::blocks::Cut::AfterNewline`] cuts them)
/// and the number of lines it holds. With `skip_empty`, empty documents are left out.
pub fn documents<'a>(
    block: &'a [u8],
    format: &DocumentFormat,
    skip_empty: bool,
) -> Result<(Vec<Cow<'a, str>>, usize), LineError> {
    let body = block.strip_suffix(b"\n").unwrap_or(block);
    let mut docs = Vec::new();
    let mut lines = 0;
    if block.is_empty() {
        return Ok((docs, 0));
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        lines += 1;
        let text = std::str::from_utf8(line).map_err(|e| LineError {
            line: i + 1,
            message: format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
        })?;
        let doc = match format {
            DocumentFormat::Lines => Cow::Borrowed(text),
            DocumentFormat::Jsonl { field } => {
                if text.trim().is_empty() {
                    continue;
                }
                json_field(text, field).map_err(|message| LineError { line: i + 1, message })?
            }
        };
        if !(skip_empty && doc.is_empty()) {
            docs.push(doc);
        }
    }
    Ok((docs, lines))
}

/// The string `field` of the JSON object `record` (the last one if the field repeats).
fn json_field<'a>(record: &'a str, field: &str) -> Result<Cow<'a, str>, String> {
    let mut de = serde_json::Deserializer::from_str(record);
    let missing = || format!("no string field '{field}'");
    let found = FieldOf(field).deserialize(&mut de).and_then(|v| de.end().map(|()| v)).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            missing()
        } else {
            format!("invalid JSON ({e})")
        }
    })?;
    found.ok_or_else(missing)
}

/// Deserialises a JSON object into its field of this name, if that is a string.
struct FieldOf<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for FieldOf<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldOf<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut found = None;
        while let Some(is_field) = map.next_key_seed(KeyIs(self.0))? {
            if is_field {
                found = Some(map.next_value_seed(StringValue)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Deserialises an object's key into whether it is this name (without copying it).
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v == self.0)
    }
}

/// A JSON string, borrowed when it has no escapes.
struct StringValue;

impl<'de> DeserializeSeed<'de> for StringValue {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StringValue {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl() -> DocumentFormat {
        DocumentFormat::Jsonl { field: "text".into() }
    }

    #[test]
    fn lines_are_documents_without_their_newline() {
        let (docs, lines) = documents(b"a\n\nb\r\n", &DocumentFormat::Lines, false).unwrap();
        assert_eq!((docs, lines), (vec!["a".into(), "".into(), "b\r".into()], 3));
        let (docs, _) = documents(b"a\n\nlast", &DocumentFormat::Lines, true).unwrap();
        assert_eq!(docs, ["a", "last"]);
        assert_eq!(documents(b"", &DocumentFormat::Lines, false).unwrap(), (vec![], 0));
        assert_eq!(documents(b"\n", &DocumentFormat::Lines, false).unwrap(), (vec!["".into()], 1));
    }

    #[test]
    fn jsonl_records_give_their_field() {
        let block = concat!(
            "{\"id\": 1, \"text\": \"x\\ny\", \"more\": [1, {\"a\": 2}]}\n  \n",
            "{\"text\": \"\"}\n{\"text\": \"a\", \"text\": \"b\"}\n"
        )
        .as_bytes();
        let (docs, lines) = documents(block, &jsonl(), false).unwrap();
        assert_eq!((docs, lines), (vec!["x\ny".into(), "".into(), "b".into()], 4));
        let (docs, _) = documents(block, &jsonl(), true).unwrap();
        assert_eq!(docs, ["x\ny", "b"]);
        let named = DocumentFormat::Jsonl { field: "body".into() };
        assert_eq!(documents(b"{\"body\": \"ok\"}", &named, false).unwrap().0, ["ok"]);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = |block: &[u8], format: &DocumentFormat| documents(block, format, false).unwrap_err();
        assert_eq!(err(b"ok\nbad \xff\n", &DocumentFormat::Lines).line, 2);
        assert!(err(b"ok\nbad \xff\n", &DocumentFormat::Lines).message.contains("not valid UTF-8 (at byte 4)"));
        for (block, want) in [
            (&b"{\"text\": \"a\"}\n{\"text\": \n"[..], "invalid JSON"),
            (b"{\"text\": \"a\"}\n{\"text\": \"a\"} x\n", "invalid JSON"),
            (b"{\"text\": \"a\"}\n{\"other\": \"a\"}\n", "no string field 'text'"),
            (b"{\"text\": \"a\"}\n{\"text\": 3}\n", "no string field 'text'"),
            (b"{\"text\": \"a\"}\n[\"text\"]\n", "no string field 'text'"),
        ] {
            let e = err(block, &jsonl());
            assert_eq!(e.line, 2, "{e:?}");
            assert!(e.message.starts_with(want), "{e:?}");
        }
    }
}
