//! Finds every vocabulary piece at every position of a text.
//!
//! Built on a double-array Aho-Corasick automaton (`daachorse`): one pass over the text reports
//! all occurrences, by increasing end position and, at one end position, longest first — the
//! order the original's `pyahocorasick` automaton reports them in, on which tie-breaking between
//! equal-score segmentations depends.

use daachorse::DoubleArrayAhoCorasick;

use crate::error::{Error, Result};
use crate::vocab::Vocab;

/// A multi-pattern matcher over the pieces of a vocabulary.
pub struct Matcher {
    automaton: DoubleArrayAhoCorasick<u32>,
}

impl Matcher {
    /// Builds the matcher; the value reported for a piece is its index in `vocab.pieces()`.
    pub fn new(vocab: &Vocab) -> Result<Matcher> {
        let automaton = DoubleArrayAhoCorasick::with_values(
            vocab.pieces().iter().enumerate().map(|(i, p)| (&**p, i as u32)),
        )
        .map_err(|e| Error::InvalidArgument(format!("cannot index the vocabulary: {e}")))?;
        Ok(Matcher { automaton })
    }

    /// Calls `f(start, end, piece_index)` for every occurrence of a piece in `text`, by
    /// increasing `end` and, for one `end`, by increasing `start` (longest first).
    #[inline]
    pub fn for_each_match(&self, text: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        for m in self.automaton.find_overlapping_iter(text) {
            f(m.start(), m.end(), m.value() as usize);
        }
    }
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;

    #[test]
    fn reports_by_end_then_longest_first() {
        let vocab = Vocab::from_entries(
            entries_with(&[(b"bc", 1), (b"abc", 1), (b"ab", 1)]),
            "t",
        )
        .unwrap();
        let matcher = Matcher::new(&vocab).unwrap();
        let mut seen = vec![];
        matcher.for_each_match(b"abc", |s, e, i| seen.push((s, e, &*vocab.pieces()[i])));
        let expected: Vec<(usize, usize, &[u8])> = vec![
            (0, 1, b"a"),
            (0, 2, b"ab"),
            (1, 2, b"b"),
            (0, 3, b"abc"),
            (1, 3, b"bc"),
            (2, 3, b"c"),
        ];
        assert_eq!(seen, expected);
    }
}
