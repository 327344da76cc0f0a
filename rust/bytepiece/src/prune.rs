//! Piece pruning, as the original's `Trainer.prune_pieces`: drop pieces that are too long or too
//! rare and give their counts to the pieces the Unigram tokenizer of the kept ones splits them
//! into; then drop "wasted" pieces (those that the tokenizer of all kept pieces splits into
//! others) until nothing changes; then, for each vocabulary size from the largest, keep the most
//! frequent pieces and repeat.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kmerge::merge_sorted;
use crate::lattice::{best_resegmentation, best_segmentation, piece_scores, Lattice};
use crate::matcher::Matcher;
use crate::monitor::{Monitor, Unit};
use crate::runs::{merge_runs, Run, RunWriter, Scratch};
use crate::table::PieceTable;
use crate::vocab::{Entry, Vocab, NUM_RESERVED};

/// Piece counts: piece bytes -> count.
pub type PieceCounts = HashMap<Vec<u8>, u64, rustc_hash::FxBuildHasher>;

/// Piece counts as the segmentation makes them, millions of times per corpus: a piece of up to
/// 15 bytes is packed with its length into a `u128` key, so that counting it touches no heap
/// object; longer ones are kept by their bytes.
///
/// With a memory limit ([`PieceCounter::with_memory`]), the counts are written to disk as runs
/// sorted by piece ([`PieceCounter::make_room`]) whenever the next chunk might not fit, and
/// merged by [`prune_runs`].
#[derive(Debug, Default)]
pub struct PieceCounter {
    short: HashMap<u128, u64, rustc_hash::FxBuildHasher>,
    long: PieceCounts,
    /// The bytes of the long pieces' keys and entries, about.
    long_bytes: usize,
    limit: Option<(usize, Arc<Scratch>)>,
    runs: Vec<Run<Vec<u8>>>,
}

impl PieceCounter {
    /// The longest piece packed in a key.
    const SHORT: usize = 15;

    /// An empty counter within `bytes` of memory, its runs written to `scratch`.
    pub fn with_memory(bytes: usize, scratch: Arc<Scratch>) -> PieceCounter {
        PieceCounter { limit: Some((bytes, scratch)), ..Default::default() }
    }

    /// Makes room for the pieces of a chunk of `len` bytes: with a memory limit, spills the
    /// counts to disk if they might not fit.
    ///
    /// The short pieces' hash table takes 25 bytes per bucket, at most 7/8 of them full, and
    /// doubles when full (both arrays held meanwhile); a spill lists its pieces, 24 bytes each,
    /// beside it. So a table of `B` buckets may double if `92·B` bytes (the doubled table and its
    /// list) fit in 9/10 of the limit; the long pieces get the last tenth.
    pub fn make_room(&mut self, len: usize) -> Result<()> {
        if let Some(bytes) = self.limit.as_ref().map(|(bytes, _)| *bytes) {
            let capacity = self.short.capacity();
            let buckets = if capacity == 0 { 0 } else { (capacity * 8 / 7 + 1).next_power_of_two() };
            let grows = self.short.len() + len > capacity;
            if (grows && 92 * buckets > bytes / 10 * 9) || self.long_bytes + len > bytes / 10 {
                self.spill()?;
                // once empty, the table takes its whole share (the list beside it included): no
                // keys to move
                let most = 1usize << (bytes / 10 * 9 / 46).max(16).ilog2();
                if most > buckets {
                    self.short = HashMap::default();
                    self.short.reserve(most / 8 * 7 - 1);
                }
            }
        }
        Ok(())
    }

    /// Writes the counts to disk as a run sorted by piece, and empties the counter.
    fn spill(&mut self) -> Result<()> {
        let scratch = match &self.limit {
            Some((_, scratch)) => scratch.clone(),
            None => {
                return Err(Error::InvalidArgument(
                    "a piece counter without a memory limit has no place to spill".into(),
                ))
            }
        };
        let mut m = Merged::of(self.short.drain(), self.long.drain());
        m.short.par_sort_unstable();
        m.long.par_sort_unstable();
        self.long_bytes = 0;
        let mut w = RunWriter::create(&scratch, "pieces")?;
        m.for_each_sorted(|p, c| w.push(&p.to_vec(), c))?;
        self.runs.push(w.finish()?);
        Ok(())
    }

    /// The runs of `parts` (counters with a memory limit), every part spilled.
    pub fn into_runs(parts: Vec<PieceCounter>) -> Result<Vec<Run<Vec<u8>>>> {
        let mut runs = Vec::new();
        for mut part in parts {
            if !part.short.is_empty() || !part.long.is_empty() {
                part.spill()?;
            }
            runs.append(&mut part.runs);
        }
        Ok(runs)
    }

    /// Counts one more `piece`.
    #[inline]
    pub fn add(&mut self, piece: &[u8]) {
        self.add_count(piece, 1);
    }

    /// Counts `piece` `n` more times.
    #[inline]
    pub fn add_count(&mut self, piece: &[u8], n: u64) {
        if piece.len() <= Self::SHORT {
            let mut key = [0u8; 16];
            key[..piece.len()].copy_from_slice(piece);
            key[Self::SHORT] = piece.len() as u8;
            *self.short.entry(u128::from_le_bytes(key)).or_insert(0) += n;
        } else if let Some(c) = self.long.get_mut(piece) {
            *c += n;
        } else {
            self.long_bytes += piece.len() + 56;
            self.long.insert(piece.to_vec(), n);
        }
    }

    /// Calls `f` with every piece of `parts` (counters without a memory limit) and its summed
    /// count, by increasing piece bytes.
    pub fn for_each_merged(parts: Vec<PieceCounter>, f: impl FnMut(&[u8], u64) -> Result<()>) -> Result<()> {
        Self::merged(parts)?.for_each_sorted(f)
    }

    /// The summed counts of `parts` (counters without a memory limit). Each part is sorted on
    /// its own thread, then the parts are merged in one sequential pass; no piece is copied to
    /// a heap object of its own.
    fn merged(parts: Vec<PieceCounter>) -> Result<Merged> {
        if parts.iter().any(|p| !p.runs.is_empty()) {
            return Err(Error::InvalidArgument("spilled piece counts are merged by prune_runs, not in memory".into()));
        }
        let sorted: Vec<Merged> = parts
            .into_par_iter()
            .map(|part| {
                let mut m = Merged::of(part.short.into_iter(), part.long.into_iter());
                m.short.sort_unstable();
                m.long.sort_unstable();
                m
            })
            .collect();
        let mut merged = Merged::default();
        for m in sorted {
            merged.short = merge_sorted(std::mem::take(&mut merged.short), m.short)?;
            merged.long = merge_sorted(std::mem::take(&mut merged.long), m.long)?;
        }
        Ok(merged)
    }
}

/// A short piece as it sorts: its bytes, zeros, and its length in the last byte (the bytes of
/// its key in [`PieceCounter`]'s table).
type ShortKey = [u8; PieceCounter::SHORT + 1];

/// The piece of a [`ShortKey`].
fn short_piece(key: &ShortKey) -> &[u8] {
    &key[..usize::from(key[PieceCounter::SHORT])]
}

/// Piece counts held as two lists, each piece in one of them: the pieces of up to
/// [`PieceCounter::SHORT`] bytes by their [`ShortKey`] (no heap object per piece: the pieces of
/// a large corpus are millions), the longer ones by their bytes.
#[derive(Debug, Default)]
struct Merged {
    short: Vec<(ShortKey, u64)>,
    long: Vec<(Vec<u8>, u64)>,
}

impl Merged {
    /// The pieces of a [`PieceCounter`]'s two tables, in their order.
    fn of(short: impl Iterator<Item = (u128, u64)>, long: impl Iterator<Item = (Vec<u8>, u64)>) -> Merged {
        Merged { short: short.map(|(k, c)| (k.to_le_bytes(), c)).collect(), long: long.collect() }
    }

    /// Adds a piece that neither list holds.
    fn push(&mut self, piece: &[u8], count: u64) {
        if piece.len() <= PieceCounter::SHORT {
            let mut key = [0u8; PieceCounter::SHORT + 1];
            key[..piece.len()].copy_from_slice(piece);
            key[PieceCounter::SHORT] = piece.len() as u8;
            self.short.push((key, count));
        } else {
            self.long.push((piece.to_vec(), count));
        }
    }

    fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    /// Calls `f` with every piece (by increasing bytes when both lists are sorted).
    fn for_each_sorted(self, mut f: impl FnMut(&[u8], u64) -> Result<()>) -> Result<()> {
        let mut long = self.long.into_iter().peekable();
        for (key, c) in &self.short {
            let piece = short_piece(key);
            while let Some((p, n)) = long.next_if(|(p, _)| &p[..] < piece) {
                f(&p, n)?;
            }
            f(piece, *c)?;
        }
        long.try_for_each(|(p, n)| f(&p, n))
    }

    /// Calls `f` with the pieces in batches of up to `batch`: the short ones, then the long ones.
    fn for_each_batch(&self, batch: usize, mut f: impl FnMut(&[(&[u8], u64)]) -> Result<()>) -> Result<()> {
        for part in self.short.chunks(batch) {
            f(&part.iter().map(|(k, c)| (short_piece(k), *c)).collect::<Vec<_>>())?;
        }
        for part in self.long.chunks(batch) {
            f(&part.iter().map(|(p, c)| (&p[..], *c)).collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// Moves the pieces that `keeps` holds into `to`.
    fn take_into(&mut self, to: &mut PieceCounts, keeps: impl Fn(&[u8], u64) -> bool) {
        let mut take = |p: &[u8], c: u64| {
            let kept = keeps(p, c);
            if kept {
                to.insert(p.to_vec(), c);
            }
            kept
        };
        self.short.retain(|(k, c)| !take(short_piece(k), *c));
        self.long.retain(|(p, c)| !take(p, *c));
    }
}

/// The rules of piece pruning.
#[derive(Debug, Clone)]
pub struct PruneConfig {
    /// Pieces longer than this (in bytes) are dropped (single bytes never are).
    pub max_piece_length: usize,
    /// Pieces counted fewer times are dropped (single bytes never are).
    pub min_count: u64,
    /// The vocabulary sizes wanted, reserved ids and special tokens included; each at least
    /// 259 plus the number of special tokens.
    pub max_vocab_sizes: Vec<usize>,
    /// Special tokens reserved before the pieces (none in the original): a piece with the same
    /// text is dropped and its count re-split, as a piece below `min_count` is.
    pub special_tokens: Vec<String>,
}

/// The smallest vocabulary size: 3 reserved ids and the 256 single bytes.
pub const MIN_VOCAB_SIZE: usize = 256 + NUM_RESERVED as usize;

/// A function computing natural logarithms elementwise.
pub type LogFn<'a> = &'a (dyn Fn(&[f64]) -> Result<Vec<f64>> + Sync);

impl PruneConfig {
    /// Whether the first pruning keeps `piece`, counted `count` times (the others are split).
    fn keeps(&self, piece: &[u8], count: u64) -> bool {
        piece.len() == 1
            || (piece.len() <= self.max_piece_length
                && count >= self.min_count
                && !self.special_tokens.iter().any(|s| s.as_bytes() == piece))
    }
}

/// The pieces that the first pruning drops, to be split: in memory, or in a run on disk, read
/// in batches either way.
enum Dropped {
    Memory(Merged),
    Run(Run<Vec<u8>>),
}

impl Dropped {
    /// Pieces split per batch.
    const BATCH: usize = 1 << 20;

    fn len(&self) -> u64 {
        match self {
            Dropped::Memory(m) => m.len() as u64,
            Dropped::Run(r) => r.len(),
        }
    }

    /// Calls `f` with every piece, in batches.
    fn for_each_batch(&self, mut f: impl FnMut(&[(&[u8], u64)]) -> Result<()>) -> Result<()> {
        match self {
            Dropped::Memory(m) => m.for_each_batch(Self::BATCH, f),
            Dropped::Run(run) => {
                let mut batch: Vec<(Vec<u8>, u64)> = Vec::with_capacity(Self::BATCH);
                let mut flush = |batch: &mut Vec<(Vec<u8>, u64)>| {
                    let r = f(&batch.iter().map(|(p, c)| (&p[..], *c)).collect::<Vec<_>>());
                    batch.clear();
                    r
                };
                run.for_each(|p, c| {
                    batch.push((p, c));
                    if batch.len() == Self::BATCH {
                        flush(&mut batch)?;
                    }
                    Ok(())
                })?;
                flush(&mut batch)
            }
        }
    }
}

/// Prunes `pieces` (the merged piece counts of the whole corpus) and returns one vocabulary
/// (piece -> count) per size of `config.max_vocab_sizes`, largest first, reporting to `monitor`.
///
/// The re-segmentations of dropped pieces (`split_pieces`) run here, in parallel on the
/// current rayon pool: they are work on the piece table, not on the corpus, so a distributed
/// trainer runs this step on its client (see the `table` module).
pub fn prune_pieces(
    pieces: PieceTable,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    let each = move |f: &mut dyn FnMut(&[u8], u64) -> Result<()>| {
        pieces.into_entries().into_iter().try_for_each(|(p, c)| f(&p, c))
    };
    prune_sorted(each, None, config, ln, monitor)
}

/// [`prune_pieces`] of the counts of `parts` (counters without a memory limit), merged in place.
pub fn prune_counters(
    parts: Vec<PieceCounter>,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    let mut dropped = PieceCounter::merged(parts)?;
    let mut keep = PieceCounts::default();
    dropped.take_into(&mut keep, |p, c| config.keeps(p, c));
    prune_partitioned(keep, Dropped::Memory(dropped), config, ln, monitor)
}

/// [`prune_pieces`] of the piece counts in sorted runs ([`PieceCounter::into_runs`]), merged
/// as they are read: see [`prune_sorted`].
pub fn prune_runs(
    runs: Vec<Run<Vec<u8>>>,
    scratch: &Arc<Scratch>,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    prune_sorted(move |f| merge_runs(&runs, |p, c| f(&p, c)), Some(scratch), config, ln, monitor)
}

/// [`prune_pieces`] of piece counts read once from `each` (which calls its argument with every
/// piece and its count; by increasing piece if `scratch` is given): the pieces kept at first
/// are held in memory and the dropped ones split in batches, from a run in `scratch` if given
/// (so that memory holds only the pieces kept), else from memory, where they split fastest by
/// increasing piece (see `Splitter::split`).
pub fn prune_sorted(
    each: impl FnOnce(&mut dyn FnMut(&[u8], u64) -> Result<()>) -> Result<()>,
    scratch: Option<&Arc<Scratch>>,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    let mut keep = PieceCounts::default();
    let mut run = scratch.map(|s| RunWriter::create(s, "dropped")).transpose()?;
    let mut memory = Merged::default();
    each(&mut |p, c| {
        if config.keeps(p, c) {
            keep.insert(p.to_vec(), c);
        } else if let Some(run) = run.as_mut() {
            run.push(&p.to_vec(), c)?;
        } else {
            memory.push(p, c);
        }
        Ok(())
    })?;
    let dropped = match run {
        Some(run) => Dropped::Run(run.finish()?),
        None => Dropped::Memory(memory),
    };
    prune_partitioned(keep, dropped, config, ln, monitor)
}

/// The rest of [`prune_pieces`], once the pieces are split into those kept at first (`keep`)
/// and the dropped ones.
fn prune_partitioned(
    mut keep: PieceCounts,
    dropped: Dropped,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    let specials = &config.special_tokens;
    check_special_tokens(specials)?;
    let least = MIN_VOCAB_SIZE + specials.len();
    let mut sizes = config.max_vocab_sizes.clone();
    if let Some(&small) = sizes.iter().find(|&&s| s < least) {
        return Err(Error::InvalidArgument(format!(
            "max_vocab_size must be at least {least} (3 reserved ids, {} special tokens and 256 bytes), got {small}",
            specials.len()
        )));
    }
    // the pieces' share of each size
    let mut sizes: Vec<usize> = sizes.iter_mut().map(|s| *s - specials.len()).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    // every byte is a piece: one never seen counts 1
    for b in 0..=255u8 {
        keep.entry(vec![b]).or_insert(1);
    }
    let mut splitter = Splitter::new(&keep, ln)?;
    monitor.stage("Prune Pieces: split rare/long", Some(dropped.len()), Unit::Items);
    // the splitter holds the scores of the pieces as they were: counts flowing into `keep`
    // change none of this round's splits
    let mut tally = splitter.tally();
    dropped.for_each_batch(|batch| splitter.split_into(batch, false, monitor, &mut tally))?;
    drop(dropped);
    for (p, c) in splitter.produced(tally) {
        *keep.entry(p).or_insert(0) += c;
    }
    keep = drop_wasted(keep, &mut splitter, ln, monitor, "Prune Pieces: ")?;
    let mut out = Vec::with_capacity(sizes.len());
    for size in sizes {
        if keep.len() > size - NUM_RESERVED as usize {
            let mut ranked: Vec<(Vec<u8>, u64)> = keep.into_iter().collect();
            ranked.sort_unstable_by(|(pa, ca), (pb, cb)| {
                (pa.len() > 1, std::cmp::Reverse(*ca), std::cmp::Reverse(pa.len()), pa).cmp(&(
                    pb.len() > 1,
                    std::cmp::Reverse(*cb),
                    std::cmp::Reverse(pb.len()),
                    pb,
                ))
            });
            let dropped = ranked.split_off(size - NUM_RESERVED as usize);
            keep = ranked.into_iter().collect();
            let mut dropped: Vec<(&[u8], u64)> = dropped.iter().map(|(p, c)| (&p[..], *c)).collect();
            dropped.par_sort_unstable(); // see `Splitter::split`
            splitter = Splitter::new(&keep, ln)?;
            let stage = format!("Prune Pieces: size {}", size + specials.len());
            monitor.stage(&stage, Some(dropped.len() as u64), Unit::Items);
            for (p, c) in splitter.split(&dropped, false, monitor)? {
                *keep.entry(p).or_insert(0) += c;
            }
            keep = drop_wasted(keep, &mut splitter, ln, monitor, &format!("{stage}, "))?;
        }
        out.push(keep.clone());
    }
    Ok(out)
}

/// Checks a list of special tokens: distinct, each of two bytes or more (a single byte is always
/// an ordinary piece).
pub fn check_special_tokens(specials: &[String]) -> Result<()> {
    for (i, s) in specials.iter().enumerate() {
        if s.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "special token {s:?} is shorter than 2 bytes: every single byte is an ordinary piece"
            )));
        }
        if specials[..i].contains(s) {
            return Err(Error::InvalidArgument(format!("special token {s:?} is given twice")));
        }
    }
    Ok(())
}

/// Re-splits every kept piece with the tokenizer of all kept pieces until the number of pieces
/// stops changing; a piece that is split into others loses its count to them. `splitter` holds
/// every piece of `keep` (and is rescored for each round). Round `n` reports as the stage
/// `{stage}wasted round {n}`.
fn drop_wasted(
    mut keep: PieceCounts,
    splitter: &mut Splitter,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
    stage: &str,
) -> Result<PieceCounts> {
    let mut round = 0;
    loop {
        round += 1;
        let before = keep.len();
        splitter.rescore(&keep, ln)?;
        let mut all: Vec<(&[u8], u64)> = keep.iter().map(|(p, c)| (&p[..], *c)).collect();
        all.par_sort_unstable(); // see `Splitter::split`
        monitor.stage(&format!("{stage}wasted round {round}"), Some(all.len() as u64), Unit::Items);
        keep = splitter.split(&all, true, monitor)?.into_iter().collect();
        if keep.len() == before {
            return Ok(keep);
        }
    }
}

/// The Unigram tokenizer of the kept pieces, which the original builds anew for every round.
/// Until the next vocabulary size, rounds only drop pieces, so the trie is built once for a set
/// of pieces and rescored for each later round: a piece no longer kept scores `-inf` and is
/// never chosen, which gives the segmentations of the smaller set's own tokenizer.
struct Splitter {
    vocab: Vocab,
    matcher: Matcher,
}

impl Splitter {
    /// The tokenizer of `keep`.
    fn new(keep: &PieceCounts, ln: LogFn<'_>) -> Result<Splitter> {
        let vocab = vocab_of(keep, &[], "kept pieces")?;
        let matcher = Matcher::new(&vocab, &piece_scores(vocab.counts(), |xs| ln(xs))?)?;
        Ok(Splitter { vocab, matcher })
    }

    /// Rescores for the counts of `keep`, whose pieces must all be in the vocabulary.
    fn rescore(&mut self, keep: &PieceCounts, ln: LogFn<'_>) -> Result<()> {
        let counts: Vec<u64> = self.vocab.pieces().iter().map(|p| keep.get(&p[..]).copied().unwrap_or(0)).collect();
        if counts.iter().filter(|&&c| c > 0).count() != keep.len() {
            return Err(Error::InvalidArgument("kept pieces outside the tokenizer being rescored".into()));
        }
        self.matcher.rescore(&piece_scores(&counts, |xs| ln(xs))?)
    }

    /// Splits each piece of `drop` and returns the summed counts of the pieces produced (the
    /// counts of `drop` flowing to them): see [`Splitter::split_into`].
    fn split(&self, drop: &[(&[u8], u64)], own: bool, monitor: &dyn Monitor) -> Result<Vec<(Vec<u8>, u64)>> {
        let mut tally = self.tally();
        self.split_into(drop, own, monitor, &mut tally)?;
        Ok(self.produced(tally).collect())
    }

    /// A count of 0 for every piece of the vocabulary, for [`Splitter::split_into`].
    fn tally(&self) -> Vec<u64> {
        vec![0; self.vocab.len()]
    }

    /// The pieces of a tally counted above 0, with their counts.
    fn produced(&self, tally: Vec<u64>) -> impl Iterator<Item = (Vec<u8>, u64)> + '_ {
        self.vocab.pieces().iter().zip(tally).filter(|&(_, c)| c > 0).map(|(p, c)| (p.to_vec(), c))
    }

    /// Splits each piece of `drop`, adding its count to the tally of every piece produced (so
    /// that batches sum into one tally). `own`: the pieces are the splitter's own (most split
    /// into themselves, which [`best_resegmentation`] finds sooner). Pieces in byte order split
    /// faster: consecutive walks share their first nodes.
    fn split_into(&self, drop: &[(&[u8], u64)], own: bool, monitor: &dyn Monitor, tally: &mut [u64]) -> Result<()> {
        monitor.check()?;
        let segment = if own { best_resegmentation } else { best_segmentation };
        let n = self.vocab.len();
        // One tally (a count per piece of the vocabulary) per rayon job, not per part.
        let counts = drop
            .par_chunks(4096)
            .try_fold(
                || (vec![0u64; n], Lattice::default(), Vec::new()),
                |(mut counts, mut lattice, mut ids), part| {
                    for &(piece, count) in part {
                        ids.clear();
                        segment(&self.matcher, piece, &mut lattice, &mut ids);
                        for &id in &ids {
                            counts[(id - NUM_RESERVED) as usize] += count;
                        }
                    }
                    monitor.advance(part.len() as u64);
                    monitor.check().map(|()| (counts, lattice, ids))
                },
            )
            .map(|tally| tally.map(|(counts, _, _)| counts))
            .try_reduce_with(|mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                Ok(a)
            })
            .transpose()?;
        if let Some(counts) = counts {
            tally.iter_mut().zip(counts).for_each(|(x, y)| *x += y);
        }
        Ok(())
    }
}

/// The vocabulary of `pieces` as the original dumps it: ids from 3 by (length, bytes), after
/// the special tokens `specials` (ids from 3, in the given order; none in the original).
pub fn vocab_of(pieces: &PieceCounts, specials: &[String], origin: &str) -> Result<Vocab> {
    let mut sorted: Vec<(&Vec<u8>, &u64)> = pieces.iter().collect();
    sorted.sort_unstable_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
    let first = u64::from(NUM_RESERVED);
    let entries = specials
        .iter()
        .enumerate()
        .map(|(i, s)| Entry::special(s, i as u64 + first))
        .chain(
            sorted
                .into_iter()
                .enumerate()
                .map(|(i, (p, &c))| Entry::piece(p.clone(), (specials.len() + i) as u64 + first, c)),
        )
        .collect();
    Vocab::from_entries(entries, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merged counts of `parts`, in the order given.
    fn merged(parts: Vec<PieceCounter>) -> Vec<(Vec<u8>, u64)> {
        let mut out = vec![];
        PieceCounter::for_each_merged(parts, |p, c| {
            out.push((p.to_vec(), c));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn piece_counter_counts_short_and_long_pieces_and_merges() {
        let long = [7u8; 40];
        let mut a = PieceCounter::default();
        for p in [&b""[..], b"a", b"a", b"\0", b"\0\0", &long[..15], &long[..16], &long] {
            a.add(p);
        }
        let mut b = PieceCounter::default();
        b.add(b"a");
        b.add(&long);
        let entries = merged(vec![a, b]);
        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "by increasing bytes");
        let counts: PieceCounts = entries.into_iter().collect();
        let expect: PieceCounts = [
            (b"".to_vec(), 1),
            (b"a".to_vec(), 3),
            (b"\0".to_vec(), 1),
            (b"\0\0".to_vec(), 1),
            (long[..15].to_vec(), 1),
            (long[..16].to_vec(), 1),
            (long.to_vec(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, expect);
    }

    use crate::test_support::ln;

    #[test]
    fn a_piece_counter_grows_within_its_memory_then_spills() {
        let limit = 4 << 20;
        let mut c = PieceCounter::with_memory(limit, Arc::new(Scratch::new(None)));
        c.make_room(10).unwrap();
        c.add(b"ab");
        assert!(c.short.capacity() < 100, "a few pieces take little memory");
        for i in 0..400_000u32 {
            if i % 100 == 0 {
                c.make_room(100).unwrap();
            }
            c.add(&i.to_le_bytes());
            // the table (25 bytes a bucket) and the list a spill makes (24 bytes a piece)
            assert!(c.short.capacity() * 8 / 7 * 25 + c.short.capacity() * 24 <= limit, "{}", c.short.capacity());
        }
        assert!(!c.runs.is_empty(), "spilled");
        let runs = PieceCounter::into_runs(vec![c]).unwrap();
        let mut n = 0;
        crate::runs::merge_runs(&runs, |_, c| {
            n += c;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 400_001);
    }

    #[test]
    fn rare_and_long_pieces_give_their_counts_to_their_parts() {
        let mut pieces = PieceCounter::default();
        pieces.add_count(b"ab", 50);
        pieces.add_count(b"abc", 1); // rare: split into ab + c
        pieces.add_count(b"abababab", 10); // too long: split into ab x4
        let config =
            PruneConfig { max_piece_length: 4, min_count: 2, max_vocab_sizes: vec![1000], special_tokens: vec![] };
        let out =
            prune_pieces(PieceTable::new(0, merged(vec![pieces])), &config, &ln, &crate::monitor::Silent).unwrap();
        assert_eq!(out.len(), 1);
        let v = &out[0];
        assert_eq!(v[&b"ab".to_vec()], 50 + 1 + 40);
        assert_eq!(v[&b"c".to_vec()], 1 + 1);
        assert!(!v.contains_key(&b"abc".to_vec()));
        assert_eq!(v.len(), 257);
    }

    #[test]
    fn a_rescored_splitter_splits_as_one_built_for_fewer_pieces() {
        // a vocabulary where dropping pieces and changing counts changes the best splits
        let counts = |extra: &[(&[u8], u64)]| -> PieceCounts {
            let mut keep: PieceCounts = (0..=255u8).map(|b| (vec![b], 3)).collect();
            keep.extend(extra.iter().map(|&(p, c)| (p.to_vec(), c)));
            keep
        };
        let all = counts(&[(b"ab", 40), (b"abc", 9), (b"bcd", 30), (b"cd", 5), (b"abcd", 2), (b"da", 7)]);
        let fewer = counts(&[(b"ab", 3), (b"bcd", 60), (b"cd", 50), (b"da", 1)]);
        let texts: Vec<&[u8]> = vec![b"abcd", b"abcdabcd", b"dabcdab", b"xabcdcdy", b"abc"];
        let drop: Vec<(&[u8], u64)> = texts.iter().enumerate().map(|(i, t)| (*t, i as u64 + 1)).collect();
        let sorted = |mut v: Vec<(Vec<u8>, u64)>| {
            v.sort_unstable();
            v
        };
        let mut reused = Splitter::new(&all, &ln).unwrap();
        let before = sorted(reused.split(&drop, false, &crate::monitor::Silent).unwrap());
        // its own pieces split as any others
        let own: Vec<(&[u8], u64)> = all.iter().map(|(p, c)| (&p[..], *c)).collect();
        assert_eq!(
            sorted(reused.split(&own, true, &crate::monitor::Silent).unwrap()),
            sorted(reused.split(&own, false, &crate::monitor::Silent).unwrap())
        );
        reused.rescore(&fewer, &ln).unwrap();
        let fresh = Splitter::new(&fewer, &ln).unwrap();
        let after = sorted(reused.split(&drop, false, &crate::monitor::Silent).unwrap());
        assert_eq!(after, sorted(fresh.split(&drop, false, &crate::monitor::Silent).unwrap()));
        assert_ne!(after, before, "the rescoring changed the splits");
        assert!(after.iter().all(|(p, _)| fewer.contains_key(p)), "dropped pieces are never used");
        // a piece outside the trie cannot be rescored
        assert!(reused.rescore(&counts(&[(b"zz", 4)]), &ln).is_err());
    }

    #[test]
    fn counters_pruned_in_place_give_the_vocabulary_of_their_table() {
        // short and long pieces, kept and dropped, in two counters that share some
        let mut lcg = crate::test_support::lcg(99);
        let mut next = move || (lcg() >> 33) as usize;
        let parts: Vec<PieceCounter> = (0..2)
            .map(|_| {
                let mut c = PieceCounter::default();
                for _ in 0..3000 {
                    let len = 1 + next() % 24;
                    let piece: Vec<u8> = (0..len).map(|_| b"abcd"[next() % 4]).collect();
                    c.add_count(&piece, 1 + (next() % 5) as u64);
                }
                c
            })
            .collect();
        let copy = |parts: &[PieceCounter]| -> Vec<PieceCounter> {
            parts
                .iter()
                .map(|p| PieceCounter { short: p.short.clone(), long: p.long.clone(), ..Default::default() })
                .collect()
        };
        let config =
            PruneConfig { max_piece_length: 12, min_count: 3, max_vocab_sizes: vec![400, 300], special_tokens: vec![] };
        let silent = &crate::monitor::Silent;
        let table = PieceTable::new(0, merged(copy(&parts)));
        assert!(table.entries().iter().any(|(p, c)| p.len() > PieceCounter::SHORT && *c < 3), "long dropped pieces");
        let want = prune_pieces(table, &config, &ln, silent).unwrap();
        assert_eq!(prune_counters(parts, &config, &ln, silent).unwrap(), want);
        assert_eq!(want.iter().map(|v| v.len()).collect::<Vec<_>>(), [397, 297]);
    }

    #[test]
    fn each_size_keeps_the_most_frequent_pieces() {
        let mut pieces = PieceCounter::default();
        for (i, p) in [b"xa", b"xb", b"xc", b"xd"].iter().enumerate() {
            pieces.add_count(*p, 100 * (i as u64 + 1));
        }
        let config = PruneConfig {
            max_piece_length: 36,
            min_count: 2,
            max_vocab_sizes: vec![260, 1000, 261],
            special_tokens: vec![],
        };
        let out =
            prune_pieces(PieceTable::new(0, merged(vec![pieces])), &config, &ln, &crate::monitor::Silent).unwrap();
        assert_eq!(out.iter().map(|v| v.len()).collect::<Vec<_>>(), [260, 258, 257]);
        assert!(out[2].contains_key(b"xd".as_slice()));
        assert!(prune_pieces(
            PieceTable::default(),
            &PruneConfig { max_vocab_sizes: vec![100], ..config },
            &ln,
            &crate::monitor::Silent
        )
        .is_err());
    }
}
