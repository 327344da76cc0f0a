//! The original BytePiece model format, both ways: a JSON object mapping each piece (standard
//! base64 of its bytes) to `[id, text, count]`, where `text` is the piece decoded as UTF-8 with
//! invalid bytes dropped. Files are written exactly as the original writes them
//! (`json.dump(..., indent=4, ensure_ascii=False)`, pieces in id order) and atomically.
//!
//! A special token (see [`crate::vocab`]) is written `[id, text, "special", 0]`: the original
//! reads the last item as the count, so it loads such a model and gives the token the score
//! `ln 0 = -inf`, which its segmentation never chooses. A model without special tokens is
//! byte-identical to the original's.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::normalize::decode_utf8_ignore;
use crate::vocab::{Entry, Vocab, NUM_RESERVED};

/// Reads and validates a model file.
pub fn load(path: impl AsRef<Path>) -> Result<Vocab> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, &path.display().to_string())
}

/// Parses and validates a model from the bytes of a model file; `origin` names it in errors.
pub fn parse(json: &[u8], origin: &str) -> Result<Vocab> {
    let raw: RawModel = serde_json::from_slice(json).map_err(|e| Error::InvalidModel {
        origin: origin.to_string(),
        message: format!("not a BytePiece model: {e}"),
    })?;
    let entries =
        raw.0.into_iter().map(|(Key(key), value)| decode_entry(&key, value, origin)).collect::<Result<Vec<_>>>()?;
    Vocab::from_entries(entries, origin)
}

/// Turns one `"base64": [id, text, count]` (or `[id, text, "special", 0]`) item into an
/// [`Entry`]; `text` is not used, as it is derived from the piece.
fn decode_entry(key: &str, value: RawValue, origin: &str) -> Result<Entry> {
    let invalid = |message: String| Error::InvalidModel { origin: origin.to_string(), message };
    let piece = BASE64.decode(key).map_err(|e| invalid(format!("key {key:?} is not valid base64 ({e})")))?;
    let id = value
        .id
        .as_u64()
        .ok_or_else(|| invalid(format!("key {key:?}: id {} is not a non-negative integer", value.id)))?;
    let count = value.count.as_u64();
    if value.special {
        return match (count, String::from_utf8(piece)) {
            (Some(0), Ok(text)) => Ok(Entry::special(&text, id)),
            _ => Err(invalid(format!("key {key:?}: a special token must be UTF-8 text with count 0"))),
        };
    }
    match count {
        Some(c) if c > 0 => Ok(Entry::piece(piece, id, c)),
        _ => Err(invalid(format!("key {key:?}: count {} is not a positive integer", value.count))),
    }
}

/// The marker between the text and the count of a special token's item.
const SPECIAL: &str = "special";

/// One item's value: `[id, text, count]` or `[id, text, "special", count]`.
struct RawValue {
    id: serde_json::Number,
    count: serde_json::Number,
    special: bool,
}

impl<'de> serde::Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[id, text, count] or [id, text, \"special\", 0]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<RawValue, A::Error> {
                let missing = || de::Error::custom("too few items");
                let id: serde_json::Number = seq.next_element()?.ok_or_else(missing)?;
                seq.next_element::<IgnoredAny>()?.ok_or_else(missing)?;
                let third: serde_json::Value = seq.next_element()?.ok_or_else(missing)?;
                let (count, special) = match third {
                    serde_json::Value::Number(n) => (n, false),
                    serde_json::Value::String(s) if s == SPECIAL => (seq.next_element()?.ok_or_else(missing)?, true),
                    other => return Err(de::Error::custom(format!("unexpected {other}"))),
                };
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("too many items"));
                }
                Ok(RawValue { id, count, special })
            }
        }
        deserializer.deserialize_seq(ValueVisitor)
    }
}

/// The model file's items in file order: (base64 key, value).
struct RawModel<'de>(Vec<(Key<'de>, RawValue)>);

/// A key of the model object: borrowed from the file's bytes when it has no escape (base64
/// never has one), so reading 80,000 pieces makes no string of each.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for RawModel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ModelVisitor;
        impl<'de> Visitor<'de> for ModelVisitor {
            type Value = RawModel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object mapping base64 pieces to [id, text, count]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawModel<'de>, A::Error> {
                let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: RawValue = map.next_value().map_err(|e| {
                        de::Error::custom(format!("the value of key {key:?} is not [id, text, count]: {e}"))
                    })?;
                    items.push((Key(key), value));
                }
                Ok(RawModel(items))
            }
        }
        deserializer.deserialize_map(ModelVisitor)
    }
}

/// Renders a vocabulary as the original writes it, byte for byte.
pub fn to_json(vocab: &Vocab) -> String {
    let mut out = String::with_capacity(vocab.len() * 64);
    out.push('{');
    for (i, (piece, count)) in vocab.pieces().iter().zip(vocab.counts()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n    \"");
        BASE64.encode_string(piece, &mut out);
        out.push_str("\": [\n        ");
        out.push_str(&(i as u64 + u64::from(NUM_RESERVED)).to_string());
        out.push_str(",\n        ");
        push_json_string(&mut out, &decode_utf8_ignore(piece));
        out.push_str(",\n        ");
        if *count == 0 {
            // a special token
            push_json_string(&mut out, SPECIAL);
            out.push_str(",\n        ");
        }
        out.push_str(&count.to_string());
        out.push_str("\n    ]");
    }
    out.push_str(if vocab.is_empty() { "}" } else { "\n}" });
    out
}

/// Appends `text` as a JSON string the way Python's `json` does with `ensure_ascii=False`.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a vocabulary to `path` in the original format, atomically (see [`crate::atomic`]).
pub fn save(vocab: &Vocab, path: impl AsRef<Path>) -> Result<()> {
    write_atomic(path, to_json(vocab).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;

    fn model_json(extra: &[(&[u8], u64)]) -> String {
        to_json(&Vocab::from_entries(entries_with(extra), "t").unwrap())
    }

    #[test]
    fn writes_the_original_layout() {
        let json = model_json(&[(b"\xe4\xb8\xad", 7), (b"a\"b", 2)]);
        assert!(json.starts_with("{\n    \"AA==\": [\n        3,\n        \"\\u0000\",\n        1\n    ],\n"));
        assert!(json.contains("\"5Lit\": [\n        259,\n        \"\u{4e2d}\",\n        7\n    ]"));
        assert!(json.contains("\"YSJi\": [\n        260,\n        \"a\\\"b\",\n        2\n    ]\n}"));
        assert!(json.contains("\"Cg==\": [\n        13,\n        \"\\n\",\n"));
        // a lone continuation byte decodes to nothing
        assert!(json.contains("\"gA==\": [\n        131,\n        \"\",\n"));
    }

    #[test]
    fn round_trips_through_parse() {
        let json = model_json(&[(b"ab", 5), (b"\xff\xfe", 9)]);
        let vocab = parse(json.as_bytes(), "x").unwrap();
        assert_eq!(vocab.id(b"\xff\xfe"), Some(260));
        assert_eq!(to_json(&vocab), json);
    }

    #[test]
    fn reports_what_is_wrong() {
        let e = |s: &str| parse(s.as_bytes(), "f.model").unwrap_err().to_string();
        assert!(e("not json").starts_with("f.model: not a BytePiece model"));
        assert!(e("[1, 2]").contains("JSON object"));
        assert!(e(r#"{"@@": [3, "", 1]}"#).contains("not valid base64"));
        assert!(e(r#"{"AA==": [3, "", 0]}"#).contains("count 0 is not a positive integer"));
        assert!(e(r#"{"AA==": [-3, "", 1]}"#).contains("id -3"));
        assert!(e(r#"{"AA==": [3, 1]}"#).contains("not [id, text, count]"));
        assert!(e(r#"{}"#).contains("empty"));
        assert!(e(r#"{"AA==": [3, "", 1]}"#).contains("single-byte piece(s) missing"));
    }

    #[test]
    fn saves_and_loads_a_file_and_names_what_is_not_one() {
        let dir = std::env::temp_dir().join(format!("bp-io-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.model");
        let vocab = Vocab::from_entries(entries_with(&[(b"ab", 5)]), "t").unwrap();
        save(&vocab, &path).unwrap();
        assert_eq!(to_json(&load(&path).unwrap()), to_json(&vocab));
        assert!(matches!(save(&vocab, &dir), Err(Error::IsADirectory { .. })));
        assert!(matches!(load(&dir), Err(Error::IsADirectory { .. })));
        assert!(matches!(load(dir.join("absent.model")), Err(Error::NotFound { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
