//! How the ids of encoded documents are written: as lines of text (decimal ids, `{"ids": [...]}`
//! records, JSON lists of pieces) or as little-endian integers (the `.bin` and `.npy` outputs).

use crate::error::{Error, Result};
use crate::vocab::{Vocab, RESERVED_NAMES};

/// The bytes a document's ids are written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdFormat {
    /// `prefix`, the ids in decimal joined by `sep`, then `suffix`.
    Decimal {
        /// Written before the ids.
        prefix: String,
        /// Written between two ids.
        sep: String,
        /// Written after the ids.
        suffix: String,
    },
    /// A JSON list of the pieces (their text; bytes that are not UTF-8 as `\xNN`), one per
    /// line: `names[id]` is an id's JSON string.
    Pieces {
        /// The JSON string of each id's piece, in id order.
        names: Vec<Box<[u8]>>,
    },
    /// Each id as a little-endian `u16`, nothing between documents.
    U16,
    /// Each id as a little-endian `u32`, nothing between documents.
    U32,
}

impl IdFormat {
    /// The format of this name for the ids of `vocab`: `ids` (a line of decimal ids per
    /// document), `jsonl` (`{"ids": [...]}` per document), `pieces` (a JSON list of pieces per
    /// document), `uint16` or `uint32` (little-endian integers).
    pub fn by_name(name: &str, vocab: &Vocab) -> Result<IdFormat> {
        let decimal = |prefix: &str, sep: &str, suffix: &str| IdFormat::Decimal {
            prefix: prefix.into(),
            sep: sep.into(),
            suffix: suffix.into(),
        };
        Ok(match name {
            "ids" => decimal("", " ", "\n"),
            "jsonl" => decimal("{\"ids\": [", ", ", "]}\n"),
            "pieces" => IdFormat::Pieces { names: piece_names(vocab) },
            "uint16" if vocab.vocab_size() > 1 << 16 => {
                return Err(Error::InvalidArgument(format!(
                    "the model has {} ids, more than uint16 holds: use uint32",
                    vocab.vocab_size()
                )))
            }
            "uint16" => IdFormat::U16,
            "uint32" => IdFormat::U32,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown id format {other:?} (ids, jsonl, pieces, uint16 or uint32)"
                )))
            }
        })
    }

    /// Appends one document's ids to `out`.
    pub fn append(&self, ids: &[u32], out: &mut Vec<u8>) {
        match self {
            IdFormat::Decimal { prefix, sep, suffix } => {
                out.extend_from_slice(prefix.as_bytes());
                for (k, &id) in ids.iter().enumerate() {
                    if k > 0 {
                        out.extend_from_slice(sep.as_bytes());
                    }
                    push_decimal(id, out);
                }
                out.extend_from_slice(suffix.as_bytes());
            }
            IdFormat::Pieces { names } => {
                out.push(b'[');
                for (k, &id) in ids.iter().enumerate() {
                    if k > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(names.get(id as usize).map_or(&b"null"[..], |n| n));
                }
                out.extend_from_slice(b"]\n");
            }
            IdFormat::U16 => out.extend(ids.iter().flat_map(|&id| (id as u16).to_le_bytes())),
            IdFormat::U32 => out.extend(ids.iter().flat_map(|&id| id.to_le_bytes())),
        }
    }

    /// About how many bytes `tokens` ids take in this format (to reserve room).
    pub fn size_hint(&self, tokens: usize) -> usize {
        match self {
            IdFormat::U16 => 2 * tokens,
            IdFormat::U32 => 4 * tokens,
            IdFormat::Decimal { .. } => 7 * tokens,
            IdFormat::Pieces { .. } => 10 * tokens,
        }
    }
}

fn push_decimal(id: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let (mut i, mut v) = (digits.len(), id);
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The JSON string of every id's piece: `"<pad>"`, `"<bos>"`, `"<eos>"`, then each piece.
fn piece_names(vocab: &Vocab) -> Vec<Box<[u8]>> {
    RESERVED_NAMES
        .iter()
        .map(|n| json_string(n.as_bytes()))
        .chain(vocab.pieces().iter().map(|p| json_string(p)))
        .collect()
}

/// `piece` as a JSON string, as Python's `json.dumps(piece.decode("utf-8", "backslashreplace"),
/// ensure_ascii=False)` writes it: UTF-8 text as it is, each byte that is not part of a
/// character as the four characters `\xNN` (so `\\xNN` in JSON), and JSON's escapes.
pub fn json_string(piece: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(piece.len() + 2);
    out.push(b'"');
    for chunk in piece.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\\\x{b:02x}").as_bytes());
        }
    }
    out.push(b'"');
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;
    use crate::vocab::Entry;

    fn vocab() -> Vocab {
        let mut entries = entries_with(&[]);
        entries.push(Entry::piece("中\"文".as_bytes().to_vec(), 259, 5));
        Vocab::from_entries(entries, "test").unwrap()
    }

    fn written(format: &IdFormat, docs: &[&[u32]]) -> Vec<u8> {
        let mut out = vec![];
        for d in docs {
            format.append(d, &mut out);
        }
        out
    }

    #[test]
    fn text_formats_write_a_line_per_document() {
        let v = vocab();
        let docs: &[&[u32]] = &[&[1, 4_000_000_000, 0], &[], &[259, 13, 258]];
        let ids = IdFormat::by_name("ids", &v).unwrap();
        assert_eq!(written(&ids, docs), b"1 4000000000 0\n\n259 13 258\n");
        let jsonl = IdFormat::by_name("jsonl", &v).unwrap();
        assert_eq!(written(&jsonl, docs[1..].as_ref()), b"{\"ids\": []}\n{\"ids\": [259, 13, 258]}\n");
        let pieces = IdFormat::by_name("pieces", &v).unwrap();
        let out = String::from_utf8(written(&pieces, &[&[1, 259, 13, 258, 2]])).unwrap();
        assert_eq!(out, "[\"<bos>\", \"中\\\"文\", \"\\n\", \"\\\\xff\", \"<eos>\"]\n");
    }

    #[test]
    fn binary_formats_are_little_endian() {
        let v = vocab();
        let docs: &[&[u32]] = &[&[1, 258], &[259]];
        assert_eq!(written(&IdFormat::by_name("uint16", &v).unwrap(), docs), [1, 0, 2, 1, 3, 1]);
        assert_eq!(written(&IdFormat::by_name("uint32", &v).unwrap(), &docs[1..]), [3, 1, 0, 0]);
        assert!(IdFormat::by_name("int8", &v).unwrap_err().to_string().contains("unknown id format"));
    }

    #[test]
    fn json_strings_escape_as_python_does() {
        assert_eq!(&*json_string(b"a\x01\x7f\x08\x0c\t"), b"\"a\\u0001\x7f\\b\\f\\t\"");
        assert_eq!(&*json_string(b"\xe4\xb8A\xe4\xb8\xad"), "\"\\\\xe4\\\\xb8A中\"".as_bytes());
    }
}
