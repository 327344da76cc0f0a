//! Where each piece came from: spans in the caller's text, across NFC normalisation.
//!
//! The text is cut before every character of canonical combining class 0 whose NFC quick-check
//! is not "maybe" (nothing before it can compose with it or reorder around it), so NFC of the
//! text is NFC of each segment, joined (checked: if not, the whole text is one unit). A segment
//! that NFC leaves alone maps character by character; one that NFC changes is one unit, all of
//! whose normalised bytes map to the whole segment. A piece's span runs from the start of the
//! unit holding its first byte to the end of the unit holding its last byte: the spans cover the
//! text in order, and two neighbours overlap only on a unit that they split (a multi-byte
//! character cut inside, or a segment NFC changed).

use std::borrow::Cow;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::normalize::nfc;

/// A run of the normalised text: the original characters `char_start..` (up to the next run's
/// start) normalise to the bytes `norm_start..` (up to the next run's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    norm_start: usize,
    char_start: usize,
    /// NFC changed these characters: the run is one unit.
    changed: bool,
}

/// A normalised text and how its bytes map back to positions in the original.
#[derive(Debug)]
pub struct Alignment<'a> {
    normalized: Cow<'a, [u8]>,
    /// The runs in order, then a sentinel at (normalised length, original length).
    runs: Vec<Run>,
    /// Positions count bytes (raw input) rather than characters.
    bytes: bool,
}

impl<'a> Alignment<'a> {
    /// The NFC form of `text`, positions counted in characters (Unicode code points).
    pub fn of_str(text: &'a str) -> Alignment<'a> {
        let (normalized, runs) = match nfc(text) {
            Cow::Borrowed(_) => {
                (Cow::Borrowed(text.as_bytes()), vec![identity(0, 0), sentinel(text.len(), text.chars().count())])
            }
            Cow::Owned(normalized) => {
                let mut runs = changed_runs(text);
                if runs.last().map(|r| r.norm_start) != Some(normalized.len()) {
                    // not expected from the Unicode rules; stay correct, if coarse
                    runs = vec![
                        Run { norm_start: 0, char_start: 0, changed: true },
                        sentinel(normalized.len(), text.chars().count()),
                    ];
                }
                (Cow::Owned(normalized.into_bytes()), runs)
            }
        };
        Alignment { normalized, runs, bytes: false }
    }

    /// Raw bytes, not normalised; positions counted in bytes.
    pub fn of_bytes(bytes: &'a [u8]) -> Alignment<'a> {
        Alignment {
            normalized: Cow::Borrowed(bytes),
            runs: vec![identity(0, 0), sentinel(bytes.len(), bytes.len())],
            bytes: true,
        }
    }

    /// The bytes that are segmented.
    pub fn normalized(&self) -> &[u8] {
        &self.normalized
    }

    /// The span in the original of each of the consecutive pieces of the normalised text whose
    /// byte lengths are `lengths` (each at least 1, summing to the normalised length at most).
    pub fn spans(&self, lengths: impl IntoIterator<Item = usize>) -> Vec<(usize, usize)> {
        let mut cursor = Cursor::new(self);
        let mut start = 0;
        lengths
            .into_iter()
            .map(|len| {
                let first = cursor.unit_at(start).0;
                start += len.max(1);
                (first, cursor.unit_at(start - 1).1)
            })
            .collect()
    }

    /// The original's length (characters, or bytes for raw input).
    pub fn original_len(&self) -> usize {
        self.runs.last().map_or(0, |r| r.char_start)
    }
}

fn identity(norm_start: usize, char_start: usize) -> Run {
    Run { norm_start, char_start, changed: false }
}

fn sentinel(norm_len: usize, chars: usize) -> Run {
    identity(norm_len, chars)
}

/// True for a character that starts a segment NFC treats on its own: a starter that cannot be
/// the second of a composition (quick-check "maybe" marks those) and, if NFC changes it, whose
/// decomposition starts with such a starter (U+0F73 decomposes into marks that reorder with the
/// marks before it).
fn is_stable(c: char) -> bool {
    let starter = |c: char| canonical_combining_class(c) == 0;
    match is_nfc_quick(std::iter::once(c)) {
        IsNormalized::Yes => starter(c),
        IsNormalized::Maybe => false,
        IsNormalized::No => {
            let mut first = None;
            unicode_normalization::char::decompose_canonical(c, |d| {
                first.get_or_insert(d);
            });
            starter(c) && first.is_some_and(|d| starter(d) && is_nfc_quick(std::iter::once(d)) != IsNormalized::Maybe)
        }
    }
}

/// The runs of a text that NFC changes, the sentinel last.
fn changed_runs(text: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut norm_len = 0;
    let mut chars = 0;
    let mut segment_start = 0;
    let mut segment_chars = 0;
    let mut flush = |segment: &str, seg_chars: usize, norm_len: &mut usize, chars: &mut usize| {
        let composed: String = segment.nfc().collect();
        let changed = composed != segment;
        let extends = runs.last().is_some_and(|r| !r.changed && !changed);
        if !extends {
            runs.push(Run { norm_start: *norm_len, char_start: *chars, changed });
        }
        *norm_len += composed.len();
        *chars += seg_chars;
    };
    for (i, c) in text.char_indices() {
        if i > 0 && is_stable(c) {
            flush(&text[segment_start..i], segment_chars, &mut norm_len, &mut chars);
            segment_start = i;
            segment_chars = 0;
        }
        segment_chars += 1;
    }
    if !text.is_empty() {
        flush(&text[segment_start..], segment_chars, &mut norm_len, &mut chars);
    }
    runs.push(sentinel(norm_len, chars));
    runs
}

/// Walks the normalised text once, forward, mapping byte positions to units.
struct Cursor<'a> {
    alignment: &'a Alignment<'a>,
    /// Index of the run holding `pos`.
    run: usize,
    /// A unit boundary in the normalised text, and the original position there.
    pos: usize,
    chars: usize,
}

impl<'a> Cursor<'a> {
    fn new(alignment: &'a Alignment<'a>) -> Cursor<'a> {
        Cursor { alignment, run: 0, pos: 0, chars: 0 }
    }

    /// The original span `(start, end)` of the unit holding normalised byte `at`; positions
    /// must not decrease from call to call. Past the end: the empty span at the end.
    fn unit_at(&mut self, at: usize) -> (usize, usize) {
        let runs = &self.alignment.runs;
        let end = runs.len() - 1;
        while self.run < end && runs[self.run + 1].norm_start <= at {
            self.run += 1;
            self.pos = runs[self.run].norm_start;
            self.chars = runs[self.run].char_start;
        }
        if self.run == end {
            let n = runs[end].char_start;
            return (n, n);
        }
        let run = runs[self.run];
        if run.changed {
            return (run.char_start, runs[self.run + 1].char_start);
        }
        let text = &self.alignment.normalized;
        loop {
            let width = if self.alignment.bytes { 1 } else { utf8_width(text[self.pos]) };
            if at < self.pos + width {
                return (self.chars, self.chars + 1);
            }
            self.pos += width;
            self.chars += 1;
        }
    }
}

/// The length of the UTF-8 sequence that `lead` starts.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_text_maps_character_by_character() {
        let a = Alignment::of_str("aé世");
        assert_eq!(a.normalized(), "aé世".as_bytes());
        // "a" | the first byte of é | its second byte and 世
        assert_eq!(a.spans([1, 1, 4]), vec![(0, 1), (1, 2), (1, 3)]);
        assert_eq!(a.original_len(), 3);
    }

    #[test]
    fn a_segment_nfc_changes_is_one_unit() {
        // "e" + combining acute composes to "é" (2 bytes); "x" before and "y" after stay
        let text = "xe\u{301}y";
        let a = Alignment::of_str(text);
        assert_eq!(a.normalized(), "xéy".as_bytes());
        assert_eq!(a.spans([1, 1, 1, 1]), vec![(0, 1), (1, 3), (1, 3), (3, 4)]);
        assert_eq!(a.spans([1, 2, 1]), vec![(0, 1), (1, 3), (3, 4)]);
        // a singleton decomposition (Angstrom sign -> Å) and a reordering of marks
        let text = "\u{212B}a\u{0323}\u{0302}b\u{0302}\u{0323}";
        let a = Alignment::of_str(text);
        let norm: String = text.nfc().collect();
        assert_eq!(a.normalized(), norm.as_bytes());
        // the Angstrom sign is a unit of its own: "Å" (2 bytes) maps to it alone
        assert_eq!(a.spans([2]), vec![(0, 1)]);
    }

    #[test]
    fn segments_normalise_independently() {
        let samples = [
            "\u{1100}\u{1161}\u{11A8}", // Hangul jamo compose into one syllable
            "A\u{30A}\u{301}e\u{301}\u{301}",
            "\u{FB2C}\u{5B4}",             // Hebrew presentation form, excluded from composition
            "ﬁ\u{0344}\u{0F73}x",          // compatibility char, decomposing marks
            "\u{3099}a\u{3099}か\u{3099}", // leading mark, kana voicing
            "z\u{31E}\u{31E}\u{F73}",      // found by fuzzing: U+0F73's marks reorder before U+031E
        ];
        for s in samples {
            let a = Alignment::of_str(s);
            let norm: String = s.nfc().collect();
            assert_eq!(a.normalized(), norm.as_bytes(), "{s:?}");
            // the segments' NFC forms join into the text's (no fallback to one coarse unit)
            assert_eq!(changed_runs(s).last().map(|r| r.norm_start), Some(norm.len()), "{s:?}");
            let spans = a.spans(std::iter::repeat_n(1, norm.len()));
            assert_eq!(spans.first().map(|s| s.0), Some(0));
            assert_eq!(spans.last().map(|s| s.1), Some(s.chars().count()));
            assert!(spans.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[1].0 <= w[0].1));
        }
    }

    #[test]
    fn every_segment_start_normalises_on_its_own() {
        // what comes before a segment start never composes with it or reorders around it
        let before = [
            "e", "\u{1100}", "\u{AC00}", "e\u{301}", "\u{0B47}", "\u{0DD9}", "\u{1025}", "z\u{31E}", "z\u{345}",
            "z\u{F71}", "\u{301}", "z\u{5B0}",
        ];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32).filter(|&c| is_stable(c)) {
            for b in before {
                let joined: String = format!("{b}{c}").nfc().collect();
                let apart: String = b.nfc().chain(std::iter::once(c).nfc()).collect();
                assert_eq!(joined, apart, "{b:?} + {c:?}");
            }
        }
    }

    #[test]
    fn raw_bytes_map_to_byte_positions() {
        let a = Alignment::of_bytes(b"ab\xff\xe4\xb8");
        assert_eq!(a.spans([2, 1, 2]), vec![(0, 2), (2, 3), (3, 5)]);
    }
}
