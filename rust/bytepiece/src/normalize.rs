//! Text handling shared by every front: NFC normalisation, the original's line splitting, and
//! the original's lenient UTF-8 decoding.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::digits::is_decimal_digit;

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

/// The most characters other than `\n` in one training chunk (the original's `maxlen`).
pub const TRAIN_MAX_CHARS: usize = 10_000;
/// The most newlines a training chunk ends with.
pub const TRAIN_MAX_NEWLINES: usize = 100;

/// Splits (NFC) text into training chunks as the original's `normalize(text, 10000,
/// isolate_digits)` does, i.e. Python's `re.findall` with `.{,10000}\n{1,100}|.{1,10000}`, or with
/// `isolate_digits` `\d|[^\n\d]{,10000}\n{1,100}|[^\n\d]{1,10000}` (where `\d` is any Unicode
/// decimal digit): runs of other characters are cut every 10,000 characters, a run's last piece
/// takes up to 100 of the newlines after it, and with `isolate_digits` every digit is a chunk.
pub fn split_for_training(text: &str, isolate_digits: bool) -> TrainChunks<'_> {
    TrainChunks { rest: text, isolate_digits }
}

/// Iterator over the chunks of [`split_for_training`].
#[derive(Debug, Clone)]
pub struct TrainChunks<'a> {
    rest: &'a str,
    isolate_digits: bool,
}

impl<'a> Iterator for TrainChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest;
        let first = rest.chars().next()?;
        let is_digit = |c: char| self.isolate_digits && is_decimal_digit(c);
        let end = if is_digit(first) {
            first.len_utf8()
        } else {
            // the run of characters that are neither newlines nor (isolated) digits, capped
            let mut end = 0;
            for (count, (i, c)) in rest.char_indices().enumerate() {
                if c == '\n' || is_digit(c) || count == TRAIN_MAX_CHARS {
                    break;
                }
                end = i + c.len_utf8();
            }
            if rest.as_bytes().get(end) == Some(&b'\n') {
                let newlines =
                    rest.as_bytes()[end..].iter().take(TRAIN_MAX_NEWLINES).take_while(|&&b| b == b'\n').count();
                end + newlines
            } else {
                end
            }
        };
        let (chunk, rest) = rest.split_at(end);
        self.rest = rest;
        Some(chunk.as_bytes())
    }
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
        split_lines(text.as_bytes()).map(|c| std::str::from_utf8(c).unwrap()).collect()
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

    fn train_chunks(text: &str, isolate: bool) -> Vec<String> {
        split_for_training(text, isolate).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect()
    }

    #[test]
    fn training_split_caps_runs_and_newlines() {
        assert!(train_chunks("", false).is_empty());
        assert_eq!(train_chunks("ab\n\ncd", false), ["ab\n\n", "cd"]);
        let long = "x".repeat(25_000);
        let chunks = train_chunks(&format!("{long}\n"), false);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [10_000, 10_000, 5_001]);
        let exact = "y".repeat(10_000);
        assert_eq!(train_chunks(&format!("{exact}\nz"), false), [format!("{exact}\n"), "z".into()]);
        let newlines = "\n".repeat(250);
        let chunks = train_chunks(&format!("a{newlines}b"), false);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [101, 100, 50, 1]);
        // characters, not bytes, are counted
        let han = "\u{4e2d}".repeat(10_001);
        assert_eq!(train_chunks(&han, false).iter().map(|c| c.chars().count()).collect::<Vec<_>>(), [10_000, 1]);
    }

    #[test]
    fn training_split_isolates_unicode_digits() {
        assert_eq!(train_chunks("ab12c\n\u{663}x", true), ["ab", "1", "2", "c\n", "\u{663}", "x"]);
        assert_eq!(train_chunks("ab12c", false), ["ab12c"]);
        assert_eq!(train_chunks("\n\n1", true), ["\n\n", "1"]);
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
