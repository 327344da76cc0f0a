//! The lattice of a chunk: every vocabulary match as an edge from its start to its end, scored
//! by its piece's log-probability; the best path through it, or one drawn at random.
//!
//! A piece's score is `ln(count) - ln(total count)` ([`piece_scores`]). The best path is found in
//! one pass over the matches (by end position, longest first), keeping a candidate only when it
//! is strictly better than the one held; this breaks ties between equal scores exactly as the
//! original does.
//!
//! With `alpha >= 0` a segmentation `s` is drawn with probability proportional to
//! `exp(alpha * score(s))` ([`sample_path`]): one pass over the matches keeps, at every end
//! position, the log of the summed weights of all paths that reach it and a route drawn among
//! them in proportion to their weights (reservoir sampling), as the original does; backtracking
//! the drawn routes yields an exact sample. `alpha = 0` draws uniformly among all segmentations.
//! Cost and memory are linear in the chunk; nothing recurses.

use std::hint::select_unpredictable;

use crate::error::{Error, Result};
use crate::matcher::Matcher;
use crate::sampler::Rng;
use crate::vocab::NUM_RESERVED;

/// Reusable buffers for one chunk's lattice: the best (or summed) score reaching each end
/// position, and the piece chosen to end there.
///
/// The scores are held in a ring of a power of two slots longer than the longest piece,
/// position `e` in slot `e & mask`: the score of a position is read once, when the walks from it
/// start, after every piece ending there was seen, and its slot is free again before any piece
/// can end at the position that shares it. So a chunk takes 4 bytes per byte (its routes), not
/// 16: inference does not cap a line's length, and real corpora hold lines of megabytes
/// (a 2.4 MB line took 38 MB of fresh memory per thread).
#[derive(Debug, Default)]
pub struct Lattice {
    scores: Vec<f64>,
    /// The piece chosen to end at each position (see [`route`]).
    routes: Vec<u32>,
}

/// A route into an end position: the piece's slot in the matcher (see [`Matcher::piece_of`]:
/// its index plus one) and its length, packed so that backtracking needs no look-up; a length
/// of [`LONG`] or more is read from the matcher ([`Matcher::len_of`]).
#[inline(always)]
fn route(slot: u32, len: usize) -> u32 {
    slot << 8 | len.min(LONG as usize) as u32
}

/// The length in a route that stands for this one or more.
const LONG: u32 = 0xFF;

impl Lattice {
    /// Prepares for a chunk of `len` bytes and pieces of at most `longest` bytes: score 0 at
    /// position 0, `-inf` elsewhere. Returns the ring of scores, its mask, and the routes.
    pub(crate) fn reset(&mut self, len: usize, longest: usize) -> (&mut [f64], usize, &mut [u32]) {
        let ring = (longest + 1).next_power_of_two();
        self.scores.clear();
        self.scores.resize(ring, f64::NEG_INFINITY);
        self.scores[0] = 0.0;
        self.routes.clear();
        self.routes.resize(len + 1, 0);
        (&mut self.scores, ring - 1, &mut self.routes)
    }

    /// Follows the routes back from the end and appends the ids, in text order, to `out`.
    pub(crate) fn backtrack(&self, matcher: &Matcher, out: &mut Vec<u32>) {
        let first = out.len();
        let mut e = self.routes.len() - 1;
        while e > 0 {
            // Every position is reached (all single bytes are pieces), through a piece's slot.
            let (slot, len) = (self.routes[e] >> 8, self.routes[e] & LONG);
            out.push(Matcher::piece_of(slot).unwrap_or(0) as u32 + NUM_RESERVED);
            e -= if len == LONG { matcher.len_of(slot) } else { len as usize };
        }
        out[first..].reverse();
    }
}

/// Appends the ids of the best segmentation of `chunk` by the pieces of `matcher` (ties to the
/// first candidate, as the original breaks them) to `out`.
pub(crate) fn best_segmentation(matcher: &Matcher, chunk: &[u8], lattice: &mut Lattice, out: &mut Vec<u32>) {
    viterbi::<false>(matcher, chunk, lattice, out);
}

/// [`best_segmentation`] of a chunk that is often a piece itself, as the trainer's pieces are
/// when it re-splits them: once the walk from the first byte has scored the chunk as one piece,
/// that score is a floor for the best path's, and walks that cannot reach it are skipped (the
/// same ids; one comparison a start more, which slows other text).
pub(crate) fn best_resegmentation(matcher: &Matcher, chunk: &[u8], lattice: &mut Lattice, out: &mut Vec<u32>) {
    viterbi::<true>(matcher, chunk, lattice, out);
}

/// The best path, with the floor of [`best_resegmentation`] if `FLOOR`.
#[inline(always)]
fn viterbi<const FLOOR: bool>(matcher: &Matcher, chunk: &[u8], lattice: &mut Lattice, out: &mut Vec<u32>) {
    let n = chunk.len();
    let (best, mask, routes) = lattice.reset(n, matcher.longest());
    // No score is above 0 (else `top` is +inf), so a path from a start scoring `base` ends at
    // most at `base + top`: below the floor, no candidate from that start is the first best at
    // any position of the best path, and skipping its walk changes nothing.
    let mut floor = f64::NEG_INFINITY;
    let top = matcher.top();
    for s in 0..n {
        let base = std::mem::replace(&mut best[s & mask], f64::NEG_INFINITY);
        if FLOOR {
            if s == 1 && n <= mask {
                floor = best[n & mask]; // the chunk as one piece, or -inf
            }
            if base + top < floor {
                continue;
            }
        }
        // Nodes where no piece ends score -inf and never win.
        matcher.for_each_prefix(chunk, s, |e, slot, score| {
            // Branch-free: which candidate wins is unpredictable.
            let score = base + score;
            let held = best[e & mask];
            let better = score > held;
            best[e & mask] = select_unpredictable(better, score, held);
            routes[e] = select_unpredictable(better, route(slot, e - s), routes[e]);
        });
    }
    lattice.backtrack(matcher, out);
}

/// The score (log-probability) of each piece of a vocabulary whose counts are `counts` (in id
/// order from 3): the logarithm of its count minus that of the total, with `ln` applied
/// elementwise to the positive counts (as `f64`, in order) followed by their total; `-inf` for
/// a count of 0 (a special token, or a piece left out of every segmentation).
pub(crate) fn piece_scores(counts: &[u64], ln: impl FnOnce(&[f64]) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    let mut xs: Vec<f64> = counts.iter().filter(|&&c| c > 0).map(|&c| c as f64).collect();
    xs.push(total as f64);
    let logs = ln(&xs)?;
    if logs.len() != xs.len() || logs.iter().any(|l| !l.is_finite()) {
        return Err(Error::InvalidArgument(
            "the logarithm function gave a wrong number of values or a non-finite one".into(),
        ));
    }
    let log_total = logs[logs.len() - 1];
    let mut logs = logs[..logs.len() - 1].iter();
    Ok(counts
        .iter()
        .map(|&c| match c {
            0 => f64::NEG_INFINITY,
            _ => logs.next().map_or(f64::NEG_INFINITY, |l| l - log_total),
        })
        .collect())
}

/// Draws one segmentation of `chunk` and appends its piece indices to `out`.
pub(crate) fn sample_path(
    matcher: &Matcher,
    chunk: &[u8],
    alpha: f64,
    rng: &mut Rng,
    lattice: &mut Lattice,
    out: &mut Vec<u32>,
) {
    let (best, mask, routes) = lattice.reset(chunk.len(), matcher.longest());
    for s in 0..chunk.len() {
        let base = std::mem::replace(&mut best[s & mask], f64::NEG_INFINITY);
        matcher.for_each_prefix(chunk, s, |e, slot, score| {
            if score == f64::NEG_INFINITY {
                return; // no piece ends at this node
            }
            let score = base + alpha * score;
            let before = best[e & mask];
            let total = log_add_exp(before, score);
            best[e & mask] = total;
            if before == f64::NEG_INFINITY || rng.next_f64() < (score - total).exp() {
                routes[e] = route(slot, e - s);
            }
        });
    }
    lattice.backtrack(matcher, out);
}

/// `ln(exp(x) + exp(y))` without overflow; `-inf` when both are `-inf`.
#[inline]
fn log_add_exp(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x >= y { (x, y) } else { (y, x) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::xorshift;
    use crate::vocab::{tests::entries_with, Vocab};

    /// The best segmentation by the textbook Viterbi, a score for every position held to the
    /// end, every substring looked up (ties to the candidate seen first: by end, then longest).
    fn reference(vocab: &Vocab, scores: &[f64], chunk: &[u8]) -> Vec<u32> {
        let n = chunk.len();
        let mut best = vec![f64::NEG_INFINITY; n + 1];
        let mut from = vec![(0usize, 0u32); n + 1];
        best[0] = 0.0;
        for e in 1..=n {
            for s in 0..e {
                if let Some(id) = vocab.id(&chunk[s..e]) {
                    let score = best[s] + scores[(id - NUM_RESERVED) as usize];
                    if score > best[e] {
                        best[e] = score;
                        from[e] = (s, id);
                    }
                }
            }
        }
        let mut ids = vec![];
        let mut e = n;
        while e > 0 {
            ids.push(from[e].1);
            e = from[e].0;
        }
        ids.reverse();
        ids
    }

    /// A vocabulary of the 256 bytes and the distinct ones of `tries` pieces drawn by `next`:
    /// 2 to `1 + spread` letters of `alphabet`, each counted 1 to `most` times.
    fn random_vocab(next: &mut impl FnMut() -> u64, alphabet: &[u8], tries: usize, spread: u64, most: u64) -> Vocab {
        let mut extra: Vec<(Vec<u8>, u64)> = vec![];
        for _ in 0..tries {
            let len = 2 + next() % spread;
            let piece: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if !extra.iter().any(|(p, _)| *p == piece) {
                extra.push((piece, 1 + next() % most));
            }
        }
        let refs: Vec<(&[u8], u64)> = extra.iter().map(|(p, c)| (&p[..], *c)).collect();
        Vocab::from_entries(entries_with(&refs), "m").unwrap()
    }

    /// The scores of `vocab`'s pieces from their counts.
    fn scores_of(vocab: &Vocab) -> Vec<f64> {
        piece_scores(vocab.counts(), crate::test_support::ln).unwrap()
    }

    #[test]
    fn chunks_far_longer_than_the_score_ring_segment_as_with_every_score_held() {
        // pieces up to 9 bytes (a ring of 16 scores) over a 2-letter alphabet, so that most
        // positions have candidates of every length and long chunks wrap the ring many times
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let vocab = random_vocab(&mut next, b"ab", 600, 8, 50);
        let scores = scores_of(&vocab);
        let matcher = Matcher::new(&vocab, &scores).unwrap();
        assert_eq!(matcher.longest(), 9);
        let mut lattice = Lattice::default();
        for len in [0usize, 1, 15, 16, 17, 5000] {
            let chunk: Vec<u8> = (0..len).map(|_| b"ab"[(next() % 2) as usize]).collect();
            let mut ids = vec![7];
            best_segmentation(&matcher, &chunk, &mut lattice, &mut ids);
            assert_eq!(ids[1..], reference(&vocab, &scores, &chunk), "a chunk of {len} bytes");
            let pieces: Vec<u8> = ids[1..].iter().flat_map(|&id| vocab.piece(id).unwrap().to_vec()).collect();
            assert_eq!(pieces, chunk);
        }
        // pieces longer than a route's length field
        let long: Vec<Vec<u8>> = [254usize, 255, 256, 300].iter().map(|&n| vec![b'x'; n]).collect();
        let extra: Vec<(&[u8], u64)> = long.iter().map(|p| (&p[..], 1000)).collect();
        let long_vocab = Vocab::from_entries(entries_with(&extra), "m").unwrap();
        let long_scores = scores_of(&long_vocab);
        let long_matcher = Matcher::new(&long_vocab, &long_scores).unwrap();
        for n in [254usize, 255, 256, 301, 555, 1000] {
            let mut ids = vec![];
            let chunk = vec![b'x'; n];
            best_segmentation(&long_matcher, &chunk, &mut lattice, &mut ids);
            assert_eq!(ids, reference(&long_vocab, &long_scores, &chunk), "{n} bytes of x");
        }
        // a draw that follows the scores alone (alpha large) takes the best path too
        let chunk: Vec<u8> = (0..3000).map(|_| b"ab"[(next() % 2) as usize]).collect();
        let mut drawn = vec![];
        sample_path(&matcher, &chunk, 1e6, &mut Rng::new(5), &mut lattice, &mut drawn);
        assert_eq!(drawn, reference(&vocab, &scores, &chunk));
    }

    #[test]
    fn resegmenting_pieces_gives_the_best_segmentation() {
        // pieces over 3 letters whose counts make many of them split into others, with scores
        // from counts (none above 0) and with one score above 0 (no walk may be skipped)
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let vocab = random_vocab(&mut next, b"abc", 400, 10, 1000);
        let counted = scores_of(&vocab);
        let mut raised = counted.clone();
        raised[vocab.len() - 1] = 0.5;
        let mut chunks: Vec<Vec<u8>> = vocab.pieces().iter().map(|p| p.to_vec()).collect();
        chunks.extend((0..200).map(|_| (0..1 + next() % 40).map(|_| b"abc"[(next() % 3) as usize]).collect()));
        let mut lattice = Lattice::default();
        let mut whole = 0;
        for scores in [&counted, &raised] {
            let matcher = Matcher::new(&vocab, scores).unwrap();
            assert_eq!(matcher.top() == f64::INFINITY, scores == &raised);
            for chunk in &chunks {
                let mut ids = vec![];
                best_resegmentation(&matcher, chunk, &mut lattice, &mut ids);
                let expect = reference(&vocab, scores, chunk);
                assert_eq!(ids, expect, "{:?}", String::from_utf8_lossy(chunk));
                whole += usize::from(expect.len() == 1 && chunk.len() > 1);
            }
        }
        assert!(whole > 100, "chunks that are their own best piece: {whole}");
    }

    #[test]
    fn log_add_exp_handles_infinities() {
        assert_eq!(log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, -2.0), -2.0);
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
