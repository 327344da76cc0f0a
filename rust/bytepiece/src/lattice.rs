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
/// position and the route chosen to end there (see [`route`]).
#[derive(Debug, Default)]
pub struct Lattice {
    scores: Vec<f64>,
    routes: Vec<u64>,
}

/// A route into an end position: the piece's slot in the matcher (see
/// [`Matcher::piece_of`]: its index plus one) and its length, packed so that backtracking needs
/// no look-up.
#[inline(always)]
pub(crate) fn route(slot: u32, len: usize) -> u64 {
    u64::from(slot) << 32 | len as u64
}

impl Lattice {
    /// Prepares for a chunk of `len` bytes: score 0 at position 0, `-inf` elsewhere.
    pub(crate) fn reset(&mut self, len: usize) -> (&mut [f64], &mut [u64]) {
        self.scores.clear();
        self.scores.resize(len + 1, f64::NEG_INFINITY);
        self.scores[0] = 0.0;
        self.routes.clear();
        self.routes.resize(len + 1, 0);
        (&mut self.scores, &mut self.routes)
    }

    /// Follows the routes back from the end and appends the ids, in text order, to `out`.
    pub(crate) fn backtrack(&self, out: &mut Vec<u32>) {
        let first = out.len();
        let mut e = self.routes.len() - 1;
        while e > 0 {
            // Every position is reached (all single bytes are pieces), through a piece's slot.
            let r = self.routes[e];
            let piece = Matcher::piece_of((r >> 32) as u32).unwrap_or(0) as u32;
            out.push(piece + NUM_RESERVED);
            e -= r as u32 as usize;
        }
        out[first..].reverse();
    }
}

/// Appends the ids of the best segmentation of `chunk` by the pieces of `matcher` (ties to the
/// first candidate, as the original breaks them) to `out`.
pub(crate) fn best_segmentation(matcher: &Matcher, chunk: &[u8], lattice: &mut Lattice, out: &mut Vec<u32>) {
    let (best, routes) = lattice.reset(chunk.len());
    for s in 0..chunk.len() {
        let base = best[s];
        // Nodes where no piece ends score -inf and never win.
        matcher.for_each_prefix(chunk, s, |e, slot, score| {
            // Branch-free: which candidate wins is unpredictable.
            let score = base + score;
            let held = best[e];
            let better = score > held;
            best[e] = select_unpredictable(better, score, held);
            routes[e] = select_unpredictable(better, route(slot, e - s), routes[e]);
        });
    }
    lattice.backtrack(out);
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
    let (best, routes) = lattice.reset(chunk.len());
    for s in 0..chunk.len() {
        let base = best[s];
        matcher.for_each_prefix(chunk, s, |e, slot, score| {
            if score == f64::NEG_INFINITY {
                return; // no piece ends at this node
            }
            let score = base + alpha * score;
            let before = best[e];
            let total = log_add_exp(before, score);
            best[e] = total;
            if before == f64::NEG_INFINITY || rng.next_f64() < (score - total).exp() {
                routes[e] = route(slot, e - s);
            }
        });
    }
    lattice.backtrack(out);
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

    #[test]
    fn log_add_exp_handles_infinities() {
        assert_eq!(log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, -2.0), -2.0);
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
