//! The trainer's segmentation: a Viterbi over n-gram states, as the original's
//! `Trainer._tokenize`.
//!
//! At byte `i` the state `j` (0 to `order - 1`) means "byte `i` is the `j + 1`-th byte of the
//! current piece", scored by the log-probability of byte `i` given the `j` bytes before it. From
//! any state the next byte may start a piece (state 0); from state `j` it may continue it (state
//! `j + 1`, capped at `order - 1`). With `ensure_unicode`, no piece starts on a UTF-8
//! continuation byte. The arithmetic and the tie-breaking (the first best predecessor, state 0
//! when every predecessor is impossible) are the original's NumPy code's, step for step.

use crate::model::NgramModel;
use crate::ngram_key::MAX_ORDER;

const NEG_INF: f64 = f64::NEG_INFINITY;

/// Reusable buffers for [`segment`].
#[derive(Debug, Default)]
pub struct Workspace {
    prev: Vec<f64>,
    cur: Vec<f64>,
    /// The logarithms of the counts of the n-grams ending at the previous byte and at this one.
    raw_prev: Vec<f64>,
    raw: Vec<f64>,
    /// `routes[(i - 1) * order + b]`: the best predecessor state of state `b` at byte `i`.
    routes: Vec<u8>,
    states: Vec<u8>,
}

/// Calls `f` with each piece of the best segmentation of `chunk`, in order.
pub fn segment(model: &NgramModel, chunk: &[u8], ensure_unicode: bool, ws: &mut Workspace, mut f: impl FnMut(&[u8])) {
    let n = chunk.len();
    if n == 0 {
        return;
    }
    let order = model.order();
    ws.prev.clear();
    ws.prev.resize(order, NEG_INF);
    ws.cur.clear();
    ws.cur.resize(order, NEG_INF);
    ws.routes.clear();
    ws.routes.resize((n - 1) * order, 0);
    ws.raw.clear();
    ws.raw.resize(order, 0.0);
    ws.raw_prev.clear();
    ws.raw_prev.resize(order, 0.0);
    // the tables are far larger than the caches, and the keys depend on the text alone: their
    // lines are loaded ahead
    for i in -2 * NgramModel::PREFETCH as isize..=0 {
        model.prefetch_ahead(chunk, i);
    }
    emissions(model, chunk, 0, ensure_unicode, ws, true);
    for i in 1..n {
        model.prefetch_ahead(chunk, i as isize);
        emissions(model, chunk, i, ensure_unicode, ws, false);
        let routes = &mut ws.routes[(i - 1) * order..i * order];
        let (prev, cur) = (&ws.prev, &mut ws.cur);
        // Computed in the original's order: (previous score + transition 0) + emission. A
        // transition of -inf makes the candidate -inf; the first maximum wins, and when every
        // candidate is -inf NumPy's argmax gives state 0.
        let mut next = [NEG_INF; MAX_ORDER];
        for b in 0..order {
            let emit = cur[b];
            let (mut best, mut arg) = (NEG_INF, 0u8);
            let mut consider = |a: usize| {
                let score = (prev[a] + 0.0) + emit;
                if score > best {
                    best = score;
                    arg = a as u8;
                }
            };
            if b == 0 {
                (0..order).for_each(&mut consider);
            } else {
                consider(b - 1);
                if b == order - 1 {
                    consider(b);
                }
            }
            next[b] = best;
            routes[b] = arg;
        }
        ws.prev.copy_from_slice(&next[..order]);
    }
    // backtrack from the first best final state
    let last = first_argmax(&ws.prev);
    ws.states.clear();
    ws.states.resize(n, 0);
    ws.states[n - 1] = last;
    for i in (1..n).rev() {
        let s = ws.states[i] as usize;
        ws.states[i - 1] = ws.routes[(i - 1) * order + s];
    }
    // pieces start where the state is 0 (bytes before the first such start are not counted)
    let mut start = None;
    for (i, &s) in ws.states.iter().enumerate() {
        if s == 0 {
            if let Some(st) = start {
                f(&chunk[st..i]);
            }
            start = Some(i);
        }
    }
    if let Some(st) = start {
        f(&chunk[st..]);
    }
}

/// The emission scores at byte `i` (into `ws.prev` for the first byte, else `ws.cur`): for
/// state `j`, the log-probability of the n-gram `chunk[i - j..=i]`, `-inf` if it was pruned (or
/// `j > i`): the logarithm of its count minus that of its prefix, the n-gram of `j` bytes that
/// ends at byte `i - 1` (looked up at the step before: it is kept when its extension is).
#[inline]
fn emissions(model: &NgramModel, chunk: &[u8], i: usize, ensure_unicode: bool, ws: &mut Workspace, first: bool) {
    std::mem::swap(&mut ws.raw, &mut ws.raw_prev);
    let found = model.log_counts_ending_at(chunk, i, &mut ws.raw);
    let out = if first { &mut ws.prev } else { &mut ws.cur };
    out.fill(NEG_INF);
    out[0] = ws.raw[0] - model.log_positions();
    for ((o, &raw), &prefix) in out[1..found].iter_mut().zip(&ws.raw[1..found]).zip(&ws.raw_prev) {
        *o = raw - prefix;
    }
    if ensure_unicode && (0x80..0xC0).contains(&chunk[i]) {
        out[0] = NEG_INF;
    }
}

/// NumPy's `argmax`: the first index of the largest value (0 when all are -inf).
fn first_argmax(xs: &[f64]) -> u8 {
    let mut arg = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[arg] {
            arg = i;
        }
    }
    arg as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ngram::NgramCounts;

    fn model(text: &[u8], order: usize, min_count: u64) -> NgramModel {
        let mut c = NgramCounts::new(order).unwrap();
        c.add_chunk(text).unwrap();
        NgramModel::from_table(NgramCounts::table_of(vec![c], 0, min_count).unwrap(), &crate::test_support::ln).unwrap()
    }

    fn pieces(m: &NgramModel, chunk: &[u8], ensure_unicode: bool) -> Vec<Vec<u8>> {
        let mut out = vec![];
        segment(m, chunk, ensure_unicode, &mut Workspace::default(), |p| out.push(p.to_vec()));
        out
    }

    #[test]
    fn frequent_sequences_become_pieces_and_tile_the_chunk() {
        let text = b"the cat the cat the cat the dog ".repeat(20);
        let m = model(&text, 4, 2);
        // the original's _tokenize gives the same
        assert_eq!(pieces(&m, b"the cat", true), [b"the cat".to_vec()]);
    }

    #[test]
    fn ensure_unicode_never_starts_a_piece_on_a_continuation_byte() {
        let text = "\u{4e2d}\u{6587}ab".repeat(5);
        let m = model(text.as_bytes(), 3, 1);
        for p in pieces(&m, text.as_bytes(), true) {
            assert!(!(0x80..0xC0).contains(&p[0]), "{p:?}");
        }
    }

    #[test]
    fn an_impossible_state_falls_back_to_single_bytes() {
        // "\u{e9}" (c3 a9) is unseen: its bigram is pruned, so with ensure_unicode every state at
        // the continuation byte is -inf; NumPy's argmax then picks state 0 everywhere after it,
        // and the rest of the chunk falls into single bytes (the original's _tokenize gives the
        // same).
        let m = model(b"xyxyxyxyxy", 2, 2);
        let got = pieces(&m, "xy\u{e9}xy".as_bytes(), true);
        assert_eq!(got, [b"xy".to_vec(), b"\xc3".to_vec(), b"\xa9".to_vec(), b"x".to_vec(), b"y".to_vec()]);
    }
}
