//! Finds every vocabulary piece that starts at a given position of a text.
//!
//! The pieces are stored in a double-array trie: a walk from a start position follows one array
//! cell per byte and reports each node it passes, stopping as soon as no piece continues the
//! bytes read. The encoder walks from every position in order, so that for one end position the
//! candidates arrive by increasing start — longest first, the order in which the original's
//! Aho-Corasick automaton reports them, on which tie-breaking depends.
//!
//! Why this design: `docs/DESIGN.md`, *The matcher and the lattice*; the others measured and
//! dropped: *Designs measured and dropped*.

use crate::error::{Error, Result};
use crate::vocab::Vocab;

/// The `check` of a cell that no node owns: its label bits never equal a byte.
const FREE: u32 = u32::MAX;
/// Set in the `check` of a cell that is never a child (the root's): it never equals a byte.
const NOT_A_CHILD: u32 = 0x100;
/// The bits of `check` compared with the byte read: the label and the bit above it.
const LABEL_MASK: u32 = 0x1FF;
/// Where a node's piece slot starts in its `check`.
const SLOT_SHIFT: u32 = 9;
/// How many free cells to try for a node's children before placing them past the end.
const MAX_SCAN: usize = 512;
/// How many times a free cell may fail to take a node's first child before it is no longer tried.
const MAX_FAILS: u8 = 16;
/// The `next_free` of a free cell that is no longer in the list.
const UNLISTED: u32 = u32::MAX;

/// One trie node.
///
/// Its children live at `base + byte`, and every node's children have a base of their own, so
/// a cell is the child of the node reading `byte` exactly when the label in its `check` is
/// `byte` (as in darts-clone). The rest of `check` is the node's piece slot: 0 where no piece
/// ends, else the piece's index plus one. A walk's chain of dependent loads touches only these
/// 8-byte cells, and the slot indexes the scores directly: the scores take 8 bytes per piece
/// rather than per node, and backtracking needs no look-up (`docs/DESIGN.md` gives the
/// alternatives measured).
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
    /// The score of each piece slot: `-inf` for slot 0 (no piece), then piece `i`'s at `i + 1`.
    scores: Vec<f64>,
    /// The length in bytes of each slot's piece (0 for slot 0, no piece).
    lens: Vec<u32>,
    /// The length of the longest piece in the trie.
    longest: usize,
    /// The highest score of a piece when none is above 0 (a path's score then never rises as
    /// it goes on), else `+inf`.
    top: f64,
}

impl Matcher {
    /// Builds the trie over `vocab`'s pieces, piece `i` scored `scores[i]`.
    pub fn new(vocab: &Vocab, scores: &[f64]) -> Result<Matcher> {
        let pieces = vocab.pieces();
        let max_pieces = (u32::MAX >> SLOT_SHIFT) as usize - 1;
        if pieces.len() > max_pieces {
            return Err(Error::InvalidArgument(format!(
                "a vocabulary of {} pieces is too large to index (at most {max_pieces})",
                pieces.len()
            )));
        }
        if scores.len() != pieces.len() {
            return Err(Error::InvalidArgument(format!(
                "cannot index {} pieces with {} scores",
                pieces.len(),
                scores.len()
            )));
        }
        // special tokens (count 0) are never matched
        let order: Vec<u32> = vocab.by_bytes().iter().copied().filter(|&i| vocab.counts()[i as usize] > 0).collect();
        let keys: Vec<&[u8]> = order.iter().map(|&i| &*pieces[i as usize]).collect();
        let mut builder = Builder::new();
        builder.build(&keys, &order)?;
        let lens = std::iter::once(0).chain(pieces.iter().map(|p| p.len() as u32)).collect();
        let longest = keys.iter().map(|k| k.len()).max().unwrap_or(0);
        let mut matcher = Matcher { units: builder.finish(), scores: Vec::new(), lens, longest, top: 0.0 };
        matcher.rescore(scores)?;
        Ok(matcher)
    }

    /// Gives piece `i` (an index in `vocab.pieces()` of the vocabulary the trie was built
    /// over) the score `scores[i]`, as [`Matcher::new`] does; `-inf` leaves it out of every
    /// segmentation. The trie stays as it is.
    pub fn rescore(&mut self, scores: &[f64]) -> Result<()> {
        if !self.scores.is_empty() && scores.len() + 1 != self.scores.len() {
            return Err(Error::InvalidArgument(format!(
                "{} scores for a trie over {} pieces",
                scores.len(),
                self.scores.len() - 1
            )));
        }
        self.scores.clear();
        self.scores.push(f64::NEG_INFINITY);
        self.scores.extend_from_slice(scores);
        let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        self.top = if top > 0.0 { f64::INFINITY } else { top };
        Ok(())
    }

    /// The score of each piece, in the order of `vocab.pieces()`.
    pub fn scores(&self) -> &[f64] {
        &self.scores[1..]
    }

    /// Calls `f(end, slot, score)` for every trie node on the path of `text[start..]`, by
    /// increasing `end`: `slot` is the node's piece slot (see [`Matcher::piece_of`]) and
    /// `score` that piece's score, `-inf` where no piece ends (so a caller that keeps the best
    /// score needs no test).
    #[inline(always)]
    pub fn for_each_prefix(&self, text: &[u8], start: usize, mut f: impl FnMut(usize, u32, f64)) {
        let units = &self.units[..];
        let scores = &self.scores[..];
        let mut base = units[0].base as usize;
        for (pos, &byte) in text[start..].iter().enumerate() {
            let next = base + byte as usize;
            // `finish` pads the array so that `base + 255` is in bounds for every node.
            debug_assert!(next < units.len());
            // SAFETY: `base` is the base of a node of this trie, see above.
            let unit = unsafe { *units.get_unchecked(next) };
            if unit.check & LABEL_MASK != u32::from(byte) {
                return;
            }
            base = unit.base as usize;
            let slot = unit.check >> SLOT_SHIFT;
            debug_assert!((slot as usize) < scores.len());
            // SAFETY: the builder gives slots up to the number of pieces, and `rescore` keeps
            // one score per piece plus one for slot 0.
            f(start + pos + 1, slot, unsafe { *scores.get_unchecked(slot as usize) });
        }
    }

    /// The length in bytes of the piece of a slot given by [`Matcher::for_each_prefix`].
    #[inline]
    pub fn len_of(&self, slot: u32) -> usize {
        self.lens[slot as usize] as usize
    }

    /// The highest score of a piece when none is above 0, else `+inf`: any path of one piece or
    /// more from a position scores at most the position's score plus this.
    pub fn top(&self) -> f64 {
        self.top
    }

    /// The length in bytes of the longest piece a walk can find.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// The index in `vocab.pieces()` of the piece of a slot given by
    /// [`Matcher::for_each_prefix`], `None` for slot 0 (no piece ends there).
    #[inline]
    pub fn piece_of(slot: u32) -> Option<usize> {
        (slot as usize).checked_sub(1)
    }
}

/// Places trie nodes into the double array, keeping the free cells in a linked list.
struct Builder {
    units: Vec<Unit>,
    /// Which bases a node already has: no two nodes may share one.
    used_bases: Vec<bool>,
    /// How many times each free cell failed to take a node's first child.
    fails: Vec<u8>,
    /// Nodes without children, whose base `finish` points at cells that no node owns.
    leaves: Vec<u32>,
    /// For a free cell, the next and previous free cells (a circular list through `head`).
    next_free: Vec<u32>,
    prev_free: Vec<u32>,
    head: Option<u32>,
}

impl Builder {
    fn new() -> Builder {
        let mut b = Builder {
            units: Vec::new(),
            used_bases: Vec::new(),
            fails: Vec::new(),
            leaves: Vec::new(),
            next_free: Vec::new(),
            prev_free: Vec::new(),
            head: None,
        };
        b.grow(1);
        b.take(0, NOT_A_CHILD);
        b
    }

    /// Extends the array to at least `len` cells, the new ones free.
    fn grow(&mut self, len: usize) {
        while self.units.len() < len {
            let i = self.units.len() as u32;
            self.units.push(Unit { base: 0, check: FREE });
            self.used_bases.push(false);
            self.fails.push(0);
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

    /// Takes free cell `i` for a node, with `check` as given.
    fn take(&mut self, i: u32, check: u32) {
        if self.next_free[i as usize] != UNLISTED {
            self.unlist(i);
        }
        self.units[i as usize].check = check;
    }

    /// Removes free cell `i` from the list of cells that [`Builder::find_base`] tries.
    fn unlist(&mut self, i: u32) {
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
        self.next_free[i as usize] = UNLISTED;
    }

    fn is_free(&self, i: usize) -> bool {
        i >= self.units.len() || self.units[i].check == FREE
    }

    /// Finds a base that no node has yet, at which every label's cell is free. A free cell that
    /// fails `MAX_FAILS` times is no longer tried: with a small alphabet, the bases that would put
    /// a label on it are soon all taken, and scanning such cells again and again would push every
    /// later node past the end of the array.
    fn find_base(&mut self, labels: &[u8]) -> usize {
        let first = labels[0] as usize;
        if let Some(head) = self.head {
            let mut cell = head;
            for _ in 0..MAX_SCAN {
                let c = cell as usize;
                let next = self.next_free[c];
                if c > first {
                    let base = c - first;
                    if !self.used_bases[base] && labels.iter().all(|&l| self.is_free(base + l as usize)) {
                        return base;
                    }
                }
                self.fails[c] += 1;
                if self.fails[c] == MAX_FAILS {
                    self.unlist(cell);
                }
                if next == head || self.head.is_none() {
                    break;
                }
                cell = next;
            }
        }
        // Every base from `len - 255` on is unused (each node's base + 255 is in the array) and
        // every cell from `len` on is free: put the first label on the first new cell.
        (self.units.len().saturating_sub(first)).max(1)
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
                self.units[node as usize].check |= (values[lo] + 1) << SLOT_SHIFT;
                lo += 1;
            }
            if lo == hi {
                self.leaves.push(node);
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
            if base + 512 > u32::MAX as usize / 2 {
                return Err(Error::InvalidArgument("the vocabulary is too large to index".into()));
            }
            self.grow(base + 256);
            self.units[node as usize].base = base as u32;
            self.used_bases[base] = true;
            for (k, &label) in labels.iter().enumerate() {
                let child = (base + label as usize) as u32;
                self.take(child, u32::from(label));
                stack.push((child, starts[k], starts[k + 1], depth + 1));
            }
        }
        Ok(())
    }

    /// The array: padded so that every node's `base + 255` is a valid index, and ending with
    /// 256 cells that no node owns, the base of every node without children.
    fn finish(mut self) -> Vec<Unit> {
        let max_base = self.units.iter().filter(|u| u.check != FREE).map(|u| u.base as usize).max();
        let leaf_base = self.units.len().max(max_base.unwrap_or(0) + 256);
        self.grow(leaf_base + 256);
        for &leaf in &self.leaves {
            self.units[leaf as usize].base = leaf_base as u32;
        }
        self.units
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;

    #[test]
    fn finds_every_piece_at_a_start_shortest_first() {
        let vocab =
            Vocab::from_entries(entries_with(&[(b"bc", 1), (b"abc", 1), (b"ab", 1), (b"abcd\0x", 1)]), "t").unwrap();
        let scores: Vec<f64> = (0..vocab.len()).map(|i| -(i as f64)).collect();
        let matcher = Matcher::new(&vocab, &scores).unwrap();
        let found = |text: &[u8], start| {
            let mut seen = vec![];
            matcher.for_each_prefix(text, start, |e, slot, score| {
                if let Some(i) = Matcher::piece_of(slot) {
                    assert_eq!(score, scores[i]);
                    assert_eq!(e - start, vocab.pieces()[i].len());
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
    fn rescoring_needs_one_score_per_piece() {
        let vocab = Vocab::from_entries(entries_with(&[(b"ab", 1)]), "t").unwrap();
        let n = vocab.len();
        let mut matcher = Matcher::new(&vocab, &vec![-1.0; n]).unwrap();
        assert!(Matcher::new(&vocab, &vec![-1.0; n - 1]).is_err());
        assert!(matcher.rescore(&vec![-2.0; n + 1]).is_err());
        assert!(matcher.rescore(&vec![-2.0; n - 1]).is_err());
        let ab = vocab.pieces().iter().position(|p| &p[..] == b"ab").unwrap();
        let mut scores = vec![-2.0; n];
        scores[ab] = -0.5;
        matcher.rescore(&scores).unwrap();
        assert_eq!(matcher.scores(), &scores[..]);
        let mut found = vec![];
        matcher.for_each_prefix(b"ab", 0, |e, slot, score| found.push((e, Matcher::piece_of(slot), score)));
        assert_eq!(found.last(), Some(&(2, Some(ab), -0.5)));
    }

    /// The piece that the walk over all of `text` ends on.
    fn whole_piece(matcher: &Matcher, text: &[u8]) -> Option<usize> {
        let mut hit = None;
        matcher.for_each_prefix(text, 0, |e, slot, _| {
            if e == text.len() {
                hit = Matcher::piece_of(slot)
            }
        });
        hit
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
            let piece: Vec<u8> = (0..len).map(|k| b"abcdefgh\xe4\xff"[((x >> (4 * k % 64)) % 10) as usize]).collect();
            if seen.insert(piece.clone()) {
                extra.push((piece, 1));
            }
        }
        let refs: Vec<(&[u8], u64)> = extra.iter().map(|(p, c)| (&p[..], *c)).collect();
        let vocab = Vocab::from_entries(entries_with(&refs), "t").unwrap();
        let matcher = Matcher::new(&vocab, &vec![0.0; vocab.len()]).unwrap();
        for (i, piece) in vocab.pieces().iter().enumerate() {
            assert_eq!(whole_piece(&matcher, piece), Some(i));
        }
    }

    #[test]
    fn the_array_stays_dense_over_a_small_alphabet() {
        // Random pieces over 27 letters: the bases that would put a label on an early free cell
        // are soon all taken (each node needs a base of its own); such cells must stop being
        // tried, or every later node is placed past the end with 256 cells to itself.
        let mut lcg = crate::test_support::lcg(7);
        let mut next = move || (lcg() >> 33) as usize;
        let mut pieces = std::collections::BTreeSet::new();
        while pieces.len() < 300_000 {
            let len = 2 + next() % 11;
            pieces.insert((0..len).map(|_| b"abcdefghijklmnopqrstuvwxyz "[next() % 27]).collect::<Vec<u8>>());
        }
        let refs: Vec<(&[u8], u64)> = pieces.iter().map(|p| (&p[..], 1)).collect();
        let vocab = Vocab::from_entries(entries_with(&refs), "t").unwrap();
        let matcher = Matcher::new(&vocab, &vec![-1.0; vocab.len()]).unwrap();
        let nodes: std::collections::HashSet<&[u8]> =
            vocab.pieces().iter().flat_map(|p| (1..=p.len()).map(move |n| &p[..n])).collect();
        let cells = matcher.units.len();
        assert!(cells < nodes.len() * 11 / 10 + 1024, "{cells} cells for {} nodes", nodes.len());
        for (i, piece) in vocab.pieces().iter().enumerate().step_by(97) {
            assert_eq!(whole_piece(&matcher, piece), Some(i));
        }
    }
}
