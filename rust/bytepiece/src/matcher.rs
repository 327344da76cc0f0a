//! Finds every vocabulary piece that starts at a given position of a text.
//!
//! The pieces are stored in a double-array trie: a walk from a start position follows one array
//! cell per byte and reports each node it passes, stopping as soon as no piece continues the
//! bytes read. The encoder walks from every position in order, so that for one end position the
//! candidates arrive by increasing start — longest first, the order in which the original's
//! Aho-Corasick automaton reports them, on which tie-breaking depends.
//!
//! Measured on this project's corpus (1 MB of English, 80k model, one core): the walks plus the
//! Viterbi run at about 28 MB/s where a double-array Aho-Corasick automaton (`daachorse`,
//! overlapping search) plus the same Viterbi ran at 24 MB/s, and the trie builds in a third of
//! the time. Also tried and dropped, as no faster: four walks side by side without branches,
//! the first steps of each walk without branches, breadth-first and count-ordered node layouts,
//! prefetching the next walks' second node, an Aho-Corasick automaton over this double array
//! with each state's matches in one contiguous run (the same ids, about 10% slower), and (session
//! 4, best of 5 runs each, A/B) the score inside a 16-byte cell (31.0 against 36.2 MB/s), a
//! shortcut for bytes that start no longer piece, such as UTF-8 continuation bytes (38.0 against
//! 39.5), and placing a node's only child in the cells just after it, so that the tails of long
//! pieces are read in sequence (no measurable change).

use crate::error::{Error, Result};
use crate::vocab::Vocab;

/// Marks a cell that no node owns.
const FREE: u32 = u32::MAX;
/// Marks a node where no piece ends.
const NO_PIECE: u32 = u32::MAX;
/// The score of a node where no piece ends: it never improves a path.
const NO_SCORE: f64 = f64::NEG_INFINITY;
/// How many free cells to try for a node's children before placing them past the end.
const MAX_SCAN: usize = 512;

/// One trie node: its children live at `base + byte`, and a cell belongs to the node whose index
/// is in its `check`. Scores live in a parallel array: a walk's chain of dependent loads touches
/// only these 8-byte cells (measured: walks alone run 25% faster than with the score inside a
/// 16-byte cell), while the score loads are independent and overlap.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
struct Unit {
    base: u32,
    check: u32,
}

/// A double-array trie over the pieces of a vocabulary and their scores.
#[derive(Debug)]
pub struct Matcher {
    units: Vec<Unit>,
    scores: Vec<f64>,
    /// For each node, the index and the length of the piece ending there (index `NO_PIECE` if
    /// none): what backtracking needs, in one load.
    pieces: Vec<(u32, u32)>,
}

impl Matcher {
    /// Builds the trie over `vocab`'s pieces, piece `i` scored `scores[i]`.
    pub fn new(vocab: &Vocab, scores: &[f64]) -> Result<Matcher> {
        let pieces = vocab.pieces();
        if pieces.len() >= NO_PIECE as usize || scores.len() != pieces.len() {
            return Err(Error::InvalidArgument(format!(
                "cannot index {} pieces with {} scores",
                pieces.len(),
                scores.len()
            )));
        }
        // special tokens (count 0) are never matched
        let mut order: Vec<u32> = (0..pieces.len() as u32)
            .filter(|&i| vocab.counts()[i as usize] > 0)
            .collect();
        order.sort_unstable_by(|&a, &b| pieces[a as usize].cmp(&pieces[b as usize]));
        let keys: Vec<&[u8]> = order.iter().map(|&i| &*pieces[i as usize]).collect();
        let mut builder = Builder::new();
        builder.build(&keys, &order)?;
        let (units, node_pieces) = builder.finish();
        let mut matcher = Matcher {
            units,
            scores: vec![NO_SCORE; node_pieces.len()],
            pieces: node_pieces,
        };
        matcher.rescore(scores)?;
        Ok(matcher)
    }

    /// Gives piece `i` (an index in `vocab.pieces()` of the vocabulary the trie was built
    /// over) the score `scores[i]`, as [`Matcher::new`] does; `-inf` leaves it out of every
    /// segmentation. The trie stays as it is.
    pub fn rescore(&mut self, scores: &[f64]) -> Result<()> {
        for (score, &(piece, _)) in self.scores.iter_mut().zip(&self.pieces) {
            if piece != NO_PIECE {
                *score = *scores.get(piece as usize).ok_or_else(|| {
                    Error::InvalidArgument(format!("no score for piece {piece} among {} scores", scores.len()))
                })?;
            }
        }
        Ok(())
    }

    /// Calls `f(end, node, score)` for every trie node on the path of `text[start..]`, by
    /// increasing `end`: each node where a piece ends gives that piece's score, the others
    /// `-inf` (so a caller that keeps the best score needs no test). [`Matcher::piece_at`] tells
    /// which piece a node is.
    #[inline(always)]
    pub fn for_each_prefix(&self, text: &[u8], start: usize, mut f: impl FnMut(usize, u32, f64)) {
        let units = &self.units[..];
        let scores = &self.scores[..units.len()];
        let mut node = 0u32;
        let mut base = units[0].base as usize;
        for (pos, &byte) in text[start..].iter().enumerate() {
            let next = base + byte as usize;
            // `finish` pads the array so that `base + 255` is in bounds for every node.
            debug_assert!(next < units.len());
            // SAFETY: `base` is the base of a node of this trie, see above.
            let unit = unsafe { *units.get_unchecked(next) };
            if unit.check != node {
                return;
            }
            node = next as u32;
            base = unit.base as usize;
            // SAFETY: as above, `scores` has one entry per cell.
            f(start + pos + 1, node, unsafe { *scores.get_unchecked(next) });
        }
    }

    /// The index (in `vocab.pieces()`) and the length of the piece ending at `node`, if any.
    #[inline]
    pub fn piece_at(&self, node: u32) -> Option<(usize, usize)> {
        match self.pieces.get(node as usize) {
            Some(&(p, len)) if p != NO_PIECE => Some((p as usize, len as usize)),
            _ => None,
        }
    }
}

/// Places trie nodes into the double array, keeping the free cells in a linked list.
struct Builder {
    units: Vec<Unit>,
    pieces: Vec<(u32, u32)>,
    /// For a free cell, the next and previous free cells (a circular list through `head`).
    next_free: Vec<u32>,
    prev_free: Vec<u32>,
    head: Option<u32>,
}

impl Builder {
    fn new() -> Builder {
        let mut b = Builder {
            units: Vec::new(),
            pieces: Vec::new(),
            next_free: Vec::new(),
            prev_free: Vec::new(),
            head: None,
        };
        b.grow(1);
        b.take(0, 0);
        b
    }

    /// Extends the array to at least `len` cells, the new ones free.
    fn grow(&mut self, len: usize) {
        while self.units.len() < len {
            let i = self.units.len() as u32;
            self.units.push(Unit { base: 0, check: FREE });
            self.pieces.push((NO_PIECE, 0));
            self.next_free.push(i);
            self.prev_free.push(i);
            match self.head {
                None => self.head = Some(i),
                Some(h) => {
                    let tail = self.prev_free[h as usize];
                    self.next_free[tail as usize] = i;
                    self.prev_free[i as usize] = tail;
                    self.next_free[i as usize] = h;
                    self.prev_free[h as usize] = i;
                }
            }
        }
    }

    /// Gives free cell `i` to node `owner`.
    fn take(&mut self, i: u32, owner: u32) {
        let (n, p) = (self.next_free[i as usize], self.prev_free[i as usize]);
        if n == i {
            self.head = None;
        } else {
            self.next_free[p as usize] = n;
            self.prev_free[n as usize] = p;
            if self.head == Some(i) {
                self.head = Some(n);
            }
        }
        self.units[i as usize].check = owner;
    }

    fn is_free(&self, i: usize) -> bool {
        i >= self.units.len() || self.units[i].check == FREE
    }

    /// Finds a base at which every label's cell is free.
    fn find_base(&self, labels: &[u8]) -> usize {
        let first = labels[0] as usize;
        if let Some(head) = self.head {
            let mut cell = head;
            for _ in 0..MAX_SCAN {
                let c = cell as usize;
                if c > first && labels.iter().all(|&l| self.is_free(c - first + l as usize)) {
                    return c - first;
                }
                cell = self.next_free[c];
                if cell == head {
                    break;
                }
            }
        }
        self.units.len().max(1)
    }

    /// Builds the subtrees for sorted, distinct `keys` (with their piece indices) below the root.
    fn build(&mut self, keys: &[&[u8]], values: &[u32]) -> Result<()> {
        // (node, range of keys below it, depth), depth first: a node's children are placed soon
        // after it, so that a walk tends to stay in nearby cache lines (measured: breadth first
        // misses the L1 cache a third more often).
        let mut stack = vec![(0u32, 0usize, keys.len(), 0usize)];
        let mut labels = Vec::with_capacity(256);
        let mut starts = Vec::with_capacity(257);
        while let Some((node, mut lo, hi, depth)) = stack.pop() {
            if lo < hi && keys[lo].len() == depth {
                self.pieces[node as usize] = (values[lo], depth as u32);
                lo += 1;
            }
            if lo == hi {
                continue;
            }
            labels.clear();
            starts.clear();
            for (i, key) in keys.iter().enumerate().take(hi).skip(lo) {
                let label = key[depth];
                if labels.last() != Some(&label) {
                    labels.push(label);
                    starts.push(i);
                }
            }
            starts.push(hi);
            let base = self.find_base(&labels);
            if base + 256 > u32::MAX as usize / 2 {
                return Err(Error::InvalidArgument("the vocabulary is too large to index".into()));
            }
            self.grow(base + 256);
            self.units[node as usize].base = base as u32;
            for (k, &label) in labels.iter().enumerate() {
                let child = (base + label as usize) as u32;
                self.take(child, node);
                stack.push((child, starts[k], starts[k + 1], depth + 1));
            }
        }
        Ok(())
    }

    /// The array, padded so that every node's `base + 255` is a valid index, and the piece of
    /// each node.
    fn finish(mut self) -> (Vec<Unit>, Vec<(u32, u32)>) {
        let max_base = self.units.iter().filter(|u| u.check != FREE).map(|u| u.base as usize).max();
        self.grow(max_base.unwrap_or(0) + 256);
        (self.units, self.pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;

    #[test]
    fn finds_every_piece_at_a_start_shortest_first() {
        let vocab = Vocab::from_entries(
            entries_with(&[(b"bc", 1), (b"abc", 1), (b"ab", 1), (b"abcd\0x", 1)]),
            "t",
        )
        .unwrap();
        let scores: Vec<f64> = (0..vocab.len()).map(|i| -(i as f64)).collect();
        let matcher = Matcher::new(&vocab, &scores).unwrap();
        let found = |text: &[u8], start| {
            let mut seen = vec![];
            matcher.for_each_prefix(text, start, |e, node, score| {
                if let Some((i, len)) = matcher.piece_at(node) {
                    assert_eq!(score, scores[i]);
                    assert_eq!(len, vocab.pieces()[i].len());
                    seen.push((e, vocab.pieces()[i].to_vec()));
                } else {
                    assert_eq!(score, f64::NEG_INFINITY);
                }
            });
            seen
        };
        assert_eq!(
            found(b"abcd\0x", 0),
            [(1, b"a".to_vec()), (2, b"ab".to_vec()), (3, b"abc".to_vec()), (6, b"abcd\0x".to_vec())]
        );
        assert_eq!(found(b"abc", 1), [(2, b"b".to_vec()), (3, b"bc".to_vec())]);
        assert_eq!(found(b"abc", 3), []);
    }

    #[test]
    fn every_piece_of_a_large_vocabulary_is_found_exactly() {
        // pieces over a small alphabet, so that the trie is dense and cells are contended
        let mut extra: Vec<(Vec<u8>, u64)> = vec![];
        let mut x = 12345u64;
        let mut seen = std::collections::HashSet::new();
        while extra.len() < 20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 2 + (x >> 60) as usize;
            let piece: Vec<u8> = (0..len)
                .map(|k| b"abcdefgh\xe4\xff"[((x >> (4 * k % 64)) % 10) as usize])
                .collect();
            if seen.insert(piece.clone()) {
                extra.push((piece, 1));
            }
        }
        let refs: Vec<(&[u8], u64)> = extra.iter().map(|(p, c)| (&p[..], *c)).collect();
        let vocab = Vocab::from_entries(entries_with(&refs), "t").unwrap();
        let matcher = Matcher::new(&vocab, &vec![0.0; vocab.len()]).unwrap();
        for (i, piece) in vocab.pieces().iter().enumerate() {
            let mut hit = None;
            matcher.for_each_prefix(piece, 0, |e, node, _| {
                if e == piece.len() {
                    hit = matcher.piece_at(node).map(|(i, _)| i)
                }
            });
            assert_eq!(hit, Some(i));
        }
    }
}
