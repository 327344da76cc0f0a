//! Text handling shared by every front: NFC normalisation, the original's line splitting, and
//! the original's lenient UTF-8 decoding.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The Unicode version of the NFC tables compiled into this crate.
///
/// CPython's `unicodedata` may use another version (3.11 uses 14.0); the two differ only on
/// characters assigned after the older version that have canonical decompositions.
pub const UNICODE_VERSION: (u8, u8, u8) = unicode_normalization::UNICODE_VERSION;

/// Returns `text` in Normalization Form C, borrowing it when it already is (the common case).
pub fn nfc(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_nfc_inert) {
        return Cow::Borrowed(text);
    }
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        _ => {
            let composed: String = text.nfc().collect();
            if composed == text {
                Cow::Borrowed(text)
            } else {
                Cow::Owned(composed)
            }
        }
    }
}

/// True for characters that NFC leaves alone whatever surrounds them (quick-check "yes" and
/// combining class 0, in blocks whose every character has these properties): a cheap first
/// test that spares the table look-ups of the full quick check on most real text.
#[inline]
fn is_nfc_inert(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{2FF}'            // ASCII, Latin-1, Latin Extended A and B, IPA
        | '\u{3000}'..='\u{3029}'      // CJK symbols and punctuation (before the tone marks)
        | '\u{3400}'..='\u{4DBF}'      // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}'      // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7A3}'      // Hangul syllables
        | '\u{FF01}'..='\u{FFEF}'      // half- and fullwidth forms
    )
}

/// Splits `text` the way the original splits text for encoding (Python `re.findall(".*\n+|.+")`):
/// each chunk is a run of bytes other than `\n` followed by the run of `\n` after it.
///
/// Only `\n` ends a chunk (not `\r`, U+2028 or other line breaks); the chunks tile `text`, and an
/// empty text has none.
pub fn split_lines(text: &[u8]) -> LineChunks<'_> {
    LineChunks { rest: text }
}

/// Iterator over the chunks of [`split_lines`].
#[derive(Debug, Clone)]
pub struct LineChunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for LineChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut end = match memchr_newline(self.rest) {
            Some(i) => i,
            None => self.rest.len(),
        };
        while end < self.rest.len() && self.rest[end] == b'\n' {
            end += 1;
        }
        let (chunk, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(chunk)
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Decodes UTF-8 the way Python's `bytes.decode(errors="ignore")` does: every maximal invalid
/// subsequence is dropped, valid text is kept as it is.
pub fn decode_utf8_ignore(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str) -> Vec<&str> {
        split_lines(text.as_bytes())
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_the_original_regex() {
        assert!(chunks("").is_empty());
        assert_eq!(chunks("\n\n"), ["\n\n"]);
        assert_eq!(chunks("ab\n\ncd\nef"), ["ab\n\n", "cd\n", "ef"]);
        assert_eq!(chunks("\nab"), ["\n", "ab"]);
        assert_eq!(chunks("a\r\n\r\nb"), ["a\r\n", "\r\n", "b"]);
        assert_eq!(chunks("x\u{2028}y"), ["x\u{2028}y"]);
    }

    #[test]
    fn inert_characters_are_nfc_inert_by_the_full_tables() {
        use unicode_normalization::char::canonical_combining_class;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32).filter(|&c| is_nfc_inert(c)) {
            let one = c.to_string();
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
            assert_eq!(is_nfc_quick(one.chars()), IsNormalized::Yes, "{c:?}");
            // nothing composes with it as the second character of a pair
            for first in ['a', 'e', '\u{1100}', '\u{AC00}', '\u{3046}'] {
                let pair: String = [first, c].iter().collect();
                assert_eq!(pair.nfc().collect::<String>(), pair, "{first:?}{c:?}");
            }
        }
    }

    #[test]
    fn nfc_composes_and_borrows_when_already_composed() {
        assert_eq!(nfc("e\u{301}"), "\u{e9}");
        assert!(matches!(nfc("plain ascii"), Cow::Borrowed(_)));
        assert_eq!(nfc("\u{1100}\u{1161}\u{11a8}"), "\u{ac01}");
    }

    #[test]
    fn decode_ignore_drops_invalid_subsequences() {
        assert_eq!(decode_utf8_ignore(b"a\xe4\xb8b"), "ab");
        assert_eq!(decode_utf8_ignore(b"\xff\xfe"), "");
        assert_eq!(decode_utf8_ignore("\u{4e2d}".as_bytes()), "\u{4e2d}");
        // a surrogate encoded in UTF-8 is invalid for Python too
        assert_eq!(decode_utf8_ignore(b"x\xed\xa0\x80y"), "xy");
    }
}
