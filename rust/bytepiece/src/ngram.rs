//! Byte n-gram counts and the n-gram language model the trainer segments with.
//!
//! An n-gram of up to [`MAX_ORDER`] bytes is packed into a `u64` ([`crate::ngram_key`]) (first byte most significant),
//! one flat hash table per length: no heap object per n-gram. Counting is a sum, so tables
//! counted on any split of the text merge into the same result in any order.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::keytable::{KeyTable, SortedEntries};
use crate::model::{model_bytes, NgramModel, SortedCounts};
use crate::ngram_key::{keeps_ngram, pack, MAX_ORDER};
use crate::runs::{merge_runs, Run, RunWriter, Scratch};
use crate::table::{Fingerprint, NgramTable};

/// How many bytes ahead the table slots of n-grams are prefetched.
pub(crate) const PREFETCH: usize = 8;

/// Counts of every byte n-gram of length 1 to `order`, and of the positions.
///
/// Counting touches one table entry per byte: it counts *windows*, the `order` bytes starting at
/// each position (shorter where a chunk ends). An n-gram's count is the sum of the counts of the
/// windows it begins, which [`Completion`] adds up, longest n-grams first, once per table rather
/// than once per byte.
///
/// The tables stay within a budget: past it they are completed, written to disk as runs sorted
/// by key and emptied, and the runs are merged when the model is built (so that counting needs
/// bounded memory whatever the corpus; the result is the same).
#[derive(Debug)]
pub struct NgramCounts {
    order: usize,
    /// `tables[j - 1]`: the windows of length `j` (all of length `order` but those at the end of
    /// a chunk).
    tables: Vec<KeyTable>,
    positions: u64,
    budget: Budget,
    /// Where the runs are written.
    scratch: Arc<Scratch>,
    /// `runs[j - 1]`: sorted runs of the n-grams of length `j` written to disk.
    runs: Vec<Vec<Run<u64>>>,
    /// What the runs written so far say of the n-gram model (see [`NgramCounts::least_kept`]).
    least_kept: KeptCounts,
}

/// How [`NgramCounts`] keep within memory.
#[derive(Debug, Clone)]
enum Budget {
    /// Tables grow as needed while they hold at most this many entries, then spill.
    Entries(usize),
    /// The tables grow within this many bytes, then spill when full; spilled runs are checked
    /// against `min_count` as they are written.
    Bytes { bytes: usize, min_count: u64 },
}

impl Budget {
    /// The most slots of the full windows' table within `bytes`: 7/8 of them (the windows at
    /// the ends of chunks, in the shorter tables, get the rest).
    fn full_table_slots(bytes: usize) -> usize {
        bytes / 8 * 7 / KeyTable::SLOT_BYTES
    }
}

/// Counts of the n-grams of 2 bytes or more that a `min_count` keeps: how many for each count
/// (counts from [`KeptCounts::EXACT`] on share the last cell).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptCounts {
    /// `cells[c - min_count]`: the n-grams counted `c` times.
    cells: Vec<u64>,
    min_count: u64,
}

impl KeptCounts {
    /// Counts from this one up are not told apart.
    const EXACT: u64 = 1 << 12;

    /// No counts yet, of n-grams kept by `min_count`.
    pub(crate) fn new(min_count: u64) -> KeptCounts {
        let min_count = min_count.max(1);
        KeptCounts { cells: vec![0; (Self::EXACT.saturating_sub(min_count) + 1) as usize], min_count }
    }

    /// Counts one more n-gram counted `count` times.
    #[inline]
    pub(crate) fn add(&mut self, count: u64) {
        if count >= self.min_count {
            let i = (count.min(Self::EXACT.max(self.min_count)) - self.min_count) as usize;
            self.cells[i] += 1;
        }
    }

    /// The n-grams (of 2 bytes or more) kept.
    pub fn kept(&self) -> u64 {
        self.cells.iter().sum()
    }

    /// The smallest `min_count` that keeps at most `n` n-grams (of 2 bytes or more), with the
    /// number it keeps; `None` when even [`KeptCounts::EXACT`] keeps more.
    pub fn min_count_for(&self, n: u64) -> Option<(u64, u64)> {
        let mut above = 0;
        for (i, &c) in self.cells.iter().enumerate().rev() {
            if above + c > n {
                return (i + 1 < self.cells.len()).then(|| (self.min_count + i as u64 + 1, above));
            }
            above += c;
        }
        Some((self.min_count, above))
    }
}

impl NgramCounts {
    /// Empty counts for n-grams up to `order` bytes (1 to [`MAX_ORDER`]), with no budget.
    pub fn new(order: usize) -> Result<NgramCounts> {
        NgramCounts::with_budget(order, usize::MAX, Arc::new(Scratch::new(None)))
    }

    /// Empty counts that spill to `scratch` whenever their tables hold more than `budget`
    /// entries.
    pub fn with_budget(order: usize, budget: usize, scratch: Arc<Scratch>) -> Result<NgramCounts> {
        NgramCounts::make(order, Budget::Entries(budget.max(1)), scratch)
    }

    /// Empty counts whose tables grow to at most `bytes` of memory and spill to `scratch` when
    /// full; [`NgramCounts::least_kept`] tells what the spilled runs say of the model that
    /// `min_count` will give.
    pub fn with_memory(order: usize, bytes: usize, scratch: Arc<Scratch>, min_count: u64) -> Result<NgramCounts> {
        NgramCounts::make(order, Budget::Bytes { bytes, min_count }, scratch)
    }

    fn make(order: usize, budget: Budget, scratch: Arc<Scratch>) -> Result<NgramCounts> {
        check_order(order)?;
        let tables = vec![KeyTable::default(); order];
        let mut least_kept = KeptCounts::default();
        if let Budget::Bytes { min_count, .. } = &budget {
            least_kept = KeptCounts::new(*min_count);
        }
        Ok(NgramCounts {
            order,
            tables,
            positions: 0,
            budget,
            scratch,
            runs: (0..order).map(|_| Vec::new()).collect(),
            least_kept,
        })
    }

    /// The order these counts were made for.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Of the runs spilled so far, the one that keeps the most n-grams with the `min_count`
    /// given to [`NgramCounts::with_memory`]: counts only grow, so the model will keep at least
    /// as many (empty counts when nothing was spilled or without a memory budget).
    pub fn least_kept(&self) -> &KeptCounts {
        &self.least_kept
    }

    /// Counts the n-grams of one chunk (n-grams do not cross chunks), spilling the tables to disk
    /// first if the chunk might outgrow the budget.
    pub fn add_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let (n, order) = (chunk.len(), self.order);
        let full_up = match &self.budget {
            Budget::Entries(entries) => self.tables.iter().map(KeyTable::len).sum::<usize>() > *entries,
            Budget::Bytes { bytes, .. } => {
                // the full windows' table grows (doubling, then to what the budget leaves) while
                // the old and the new array fit in its share
                let full = &mut self.tables[order - 1];
                if full.room() < n {
                    let limit = Budget::full_table_slots(*bytes);
                    let grown = (2 * full.slots()).min(limit.saturating_sub(full.slots()));
                    if grown * 3 / 4 >= full.len() + n {
                        full.grow_to(grown);
                    }
                }
                self.tables[order - 1].room() < n
                    || self.tables[..order - 1].iter().map(KeyTable::bytes).sum::<usize>() > bytes / 8
            }
        };
        if full_up && self.tables.iter().any(|t| !t.is_empty()) {
            self.spill()?;
            if let Budget::Bytes { bytes, .. } = &self.budget {
                // once empty, the full windows' table takes its whole share: no keys to move
                let limit = Budget::full_table_slots(*bytes);
                if self.tables[order - 1].slots() < limit {
                    self.tables[order - 1] = KeyTable::default();
                    self.tables[order - 1] = KeyTable::with_slots(limit);
                }
            }
        }
        self.positions += n as u64;
        let mask = u64::MAX >> (64 - 8 * order);
        let full = &mut self.tables[order - 1];
        // the key of the window that ends PREFETCH bytes ahead, whose slot is loaded meanwhile
        let mut ahead = chunk.iter().take(PREFETCH).fold(0u64, |k, &b| (k << 8) | u64::from(b)) & mask;
        let mut key = 0u64;
        for (i, &b) in chunk.iter().enumerate() {
            if let Some(&next) = chunk.get(i + PREFETCH) {
                ahead = ((ahead << 8) | u64::from(next)) & mask;
                full.prefetch(ahead);
            }
            key = ((key << 8) | u64::from(b)) & mask;
            if i + 1 >= order {
                full.add(key, 1);
            }
        }
        for start in n.saturating_sub(order - 1)..n {
            self.tables[n - start - 1].add(pack(&chunk[start..]), 1);
        }
        Ok(())
    }

    /// Writes every table to disk as a sorted run of n-gram counts and empties it (its memory is
    /// kept for reuse).
    fn spill(&mut self) -> Result<()> {
        let mut writers = (1..=self.order)
            .map(|j| RunWriter::create(&self.scratch, &format!("ngrams{j}")))
            .collect::<Result<Vec<_>>>()?;
        let mut kept = match self.budget {
            Budget::Bytes { min_count, .. } => Some(KeptCounts::new(min_count)),
            Budget::Entries(_) => None,
        };
        Completion::of_tables(&mut self.tables, true, &mut |j, k, c| {
            if let (Some(kept), true) = (kept.as_mut(), j > 0) {
                kept.add(c);
            }
            writers[j].push(&k, c)
        })?;
        for (writer, runs) in writers.into_iter().zip(&mut self.runs) {
            runs.push(writer.finish()?);
        }
        if let Some(kept) = kept {
            if kept.kept() > self.least_kept.kept() {
                self.least_kept = kept;
            }
        }
        Ok(())
    }

    /// True when some counts are on disk.
    pub fn spilled(&self) -> bool {
        self.runs.iter().any(|r| !r.is_empty())
    }

    /// The complete n-gram counts of `parts` (counted with the same order) summed, as a sorted
    /// [`NgramTable`] tagged `tag`, keeping the n-grams that [`keeps_ngram`] keeps with
    /// `min_count` (0: every n-gram, an unpruned table that merges with others).
    ///
    /// In memory, each part's tables are completed in parallel into a table of its own, and the
    /// tables are merged and pruned as shards' tables are ([`NgramTable::merge`],
    /// [`NgramTable::pruned`]); if any part has spilled, every part is written to disk and the
    /// runs are read once, in key order, pruned as they are read.
    pub fn table_of(parts: Vec<NgramCounts>, tag: u64, min_count: u64) -> Result<NgramTable> {
        let order = check_parts(&parts)?;
        if !parts.iter().any(NgramCounts::spilled) {
            let mut tables = parts
                .into_par_iter()
                .map(|mut part| {
                    let mut lists: Vec<Vec<(u64, u64)>> = vec![Vec::new(); order];
                    Completion::of_tables(&mut part.tables, false, &mut |j, k, c| {
                        lists[j].push((k, c));
                        Ok(())
                    })?;
                    NgramTable::new(order, tag, 0, part.positions, lists)
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter();
            let first = tables.next().unwrap_or_else(|| unreachable!("at least one part"));
            let merged = tables.try_fold(first, NgramTable::merge)?;
            return if min_count == 0 { Ok(merged) } else { merged.pruned(min_count) };
        }
        let (runs, positions) = NgramCounts::into_runs(parts)?;
        let mut entries = Vec::with_capacity(order);
        for (j, runs) in runs.iter().enumerate() {
            let mut list = Vec::new();
            merge_list(runs, j + 1, min_count, &mut |k, c| list.push((k, c)))?;
            entries.push(list);
        }
        NgramTable::new(order, tag, min_count, positions, entries)
    }

    /// Every part spilled: the runs of each length, and the positions counted.
    pub(crate) fn into_runs(parts: Vec<NgramCounts>) -> Result<(Vec<Vec<Run<u64>>>, u64)> {
        let order = check_parts(&parts)?;
        let positions = parts.iter().map(|p| p.positions).sum();
        let mut runs: Vec<Vec<Run<u64>>> = (0..order).map(|_| Vec::new()).collect();
        for mut part in parts {
            if part.tables.iter().any(|t| !t.is_empty()) {
                part.spill()?;
            }
            part.tables = Vec::new();
            for (all, mine) in runs.iter_mut().zip(std::mem::take(&mut part.runs)) {
                all.extend(mine);
            }
        }
        Ok((runs, positions))
    }

    /// The n-gram model of `parts` built from runs on disk, with bounded memory: each length's
    /// runs are merged and pruned by `min_count` into one run in `scratch`, which the model is
    /// built from. The table fingerprinted is the one [`NgramCounts::table_of`] would give with
    /// the same `tag` and `min_count`. Fails with [`Error::InvalidArgument`] (naming what would
    /// fit, see [`check_model_fits`]) if the model would take more than `model_budget` bytes.
    pub fn model_of(
        parts: Vec<NgramCounts>,
        scratch: &Arc<Scratch>,
        tag: u64,
        min_count: u64,
        model_budget: usize,
        memory_mb_for: &dyn Fn(usize) -> usize,
        ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>,
    ) -> Result<NgramModel> {
        let min_count = min_count.max(1);
        let (runs, positions) = NgramCounts::into_runs(parts)?;
        let order = runs.len();
        let mut fingerprint = Fingerprint::new(order, tag, min_count, positions);
        let mut kept = KeptCounts::new(min_count);
        let mut pruned = Vec::with_capacity(order);
        for (j, runs) in runs.into_iter().enumerate() {
            let mut out = RunWriter::create(scratch, &format!("model{}", j + 1))?;
            merge_runs(&runs, |k, c| {
                if keeps_ngram(j + 1, c, min_count) {
                    if j > 0 {
                        kept.add(c);
                    }
                    fingerprint.entry(k, c);
                    out.push(&k, c)?;
                }
                Ok(())
            })?;
            drop(runs);
            fingerprint.end_list(out.len());
            pruned.push(out.finish()?);
        }
        check_model_fits(&kept, model_budget, true, memory_mb_for)?;
        let lists: Vec<&dyn SortedCounts> = pruned.iter().map(|r| r as &dyn SortedCounts).collect();
        NgramModel::build(&lists, positions, fingerprint.finish(), Some(model_budget), ln)
    }
}

/// Merges `runs` of the n-grams of `len` bytes, calling `push(key, count)` for each one that
/// `min_count` keeps (0: every one), by increasing key.
pub(crate) fn merge_list(runs: &[Run<u64>], len: usize, min_count: u64, push: &mut dyn FnMut(u64, u64)) -> Result<()> {
    merge_runs(runs, |k, c| {
        if min_count == 0 || keeps_ngram(len, c, min_count) {
            push(k, c);
        }
        Ok(())
    })
}

/// Fails with a message naming what would fit when the n-grams that `kept` counts make a model
/// larger than `budget` bytes (`exact`: they are all the counts, else a lower bound from part of
/// the corpus); `memory_mb_for(bytes)` is the `max_memory_mb` that leaves a model that many bytes.
pub fn check_model_fits(
    kept: &KeptCounts,
    budget: usize,
    exact: bool,
    memory_mb_for: &dyn Fn(usize) -> usize,
) -> Result<()> {
    let need = model_bytes(kept.kept() as usize);
    if need <= budget {
        return Ok(());
    }
    let fits = (budget.saturating_sub(model_bytes(0)) / model_bytes(1).saturating_sub(model_bytes(0)).max(1)) as u64;
    let (least, most) = if exact { ("", "") } else { ("at least ", "at most ") };
    let suggestion = match kept.min_count_for(fits) {
        Some((m, n)) => format!("or min_count to {least}{m} (which keeps {most}{n} of them)"),
        None => format!("or min_count to more than {}", KeptCounts::EXACT),
    };
    Err(Error::InvalidArgument(format!(
        "the n-gram model needs {least}{} MB ({least}{} n-grams counted at least {} times{}), more than the {} MB \
         that max_memory_mb leaves it: raise max_memory_mb to {least}{}, {suggestion}",
        need.div_ceil(1 << 20),
        kept.kept(),
        kept.min_count,
        if exact { "" } else { " in part of the corpus already" },
        budget >> 20,
        memory_mb_for(need),
    )))
}

fn check_parts(parts: &[NgramCounts]) -> Result<usize> {
    let order = parts.first().map_or(0, NgramCounts::order);
    if parts.is_empty() || parts.iter().any(|p| p.order != order) {
        return Err(Error::InvalidArgument("n-gram counts of different orders (or none) cannot be merged".into()));
    }
    Ok(order)
}

/// Turns window counts, sorted by key in their own tables, into n-gram counts: `sink(j, key,
/// count)` gets every n-gram of `j + 1` bytes once, by increasing key within each length.
///
/// A length's n-grams are its own windows merged with the summed counts of the prefixes one
/// byte shorter of the longer n-grams; prefixes of sorted keys come sorted, and n-grams that
/// share a prefix are next to each other, so this is one sequential pass that holds one pending
/// prefix per length and writes as it goes (to memory or to disk).
struct Completion<'a, 's> {
    own: Vec<&'a [(u64, u64)]>,
    next: Vec<usize>,
    pending: Vec<Option<(u64, u64)>>,
    sink: &'s mut dyn FnMut(usize, u64, u64) -> Result<()>,
}

impl Completion<'_, '_> {
    /// Completes the windows of `tables` (`tables[j]`: of `j + 1` bytes) and empties them,
    /// keeping their memory if `keep`.
    fn of_tables(
        tables: &mut Vec<KeyTable>,
        keep: bool,
        sink: &mut dyn FnMut(usize, u64, u64) -> Result<()>,
    ) -> Result<()> {
        let sorted: Vec<SortedEntries> = std::mem::take(tables).into_iter().map(KeyTable::into_sorted).collect();
        let order = sorted.len();
        let mut c = Completion {
            own: sorted.iter().map(SortedEntries::entries).collect(),
            next: vec![0; order],
            pending: vec![None; order],
            sink,
        };
        let done = (0..order).rev().try_for_each(|j| c.finish(j));
        drop(c);
        *tables = sorted.into_iter().map(|s| if keep { s.into_table() } else { KeyTable::default() }).collect();
        done
    }

    fn emit(&mut self, j: usize, key: u64, count: u64) -> Result<()> {
        (self.sink)(j, key, count)?;
        if j > 0 {
            self.feed(j - 1, key >> 8, count)?;
        }
        Ok(())
    }

    /// Adds `count` to the prefix `key` of `j + 1` bytes; a new prefix settles the last one.
    fn feed(&mut self, j: usize, key: u64, count: u64) -> Result<()> {
        match self.pending[j] {
            Some((k, c)) if k == key => self.pending[j] = Some((k, c.wrapping_add(count))),
            last => {
                self.pending[j] = Some((key, count));
                if let Some(last) = last {
                    self.settle(j, last)?;
                }
            }
        }
        Ok(())
    }

    /// Emits the own windows before `key`, then `key` with its own count added.
    fn settle(&mut self, j: usize, (key, mut count): (u64, u64)) -> Result<()> {
        while let Some(&(k, c)) = self.own[j].get(self.next[j]) {
            if k > key {
                break;
            }
            self.next[j] += 1;
            if k == key {
                count = count.wrapping_add(c);
                break;
            }
            self.emit(j, k, c)?;
        }
        self.emit(j, key, count)
    }

    /// Emits what is left of length `j + 1` (once the longer lengths are done).
    fn finish(&mut self, j: usize) -> Result<()> {
        if let Some(last) = self.pending[j].take() {
            self.settle(j, last)?;
        }
        while let Some(&(k, c)) = self.own[j].get(self.next[j]) {
            self.next[j] += 1;
            self.emit(j, k, c)?;
        }
        Ok(())
    }
}

fn check_order(order: usize) -> Result<()> {
    if (1..=MAX_ORDER).contains(&order) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("order must be between 1 and {MAX_ORDER}, got {order}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::ln;

    /// The complete n-gram counts of `parts`: `(count of n-gram, distinct per length)`.
    fn complete(parts: Vec<NgramCounts>) -> (impl Fn(&[u8]) -> u64, Vec<usize>) {
        let table = NgramCounts::table_of(parts, 0, 0).unwrap();
        let distinct = (1..=table.order()).map(|n| table.entries(n).len()).collect();
        let (positions, order) = (table.positions(), table.order());
        let count = move |g: &[u8]| match g.len() {
            0 => positions,
            n if n <= order => {
                let list = table.entries(n);
                list.binary_search_by_key(&pack(g), |&(k, _)| k).map_or(0, |i| list[i].1)
            }
            _ => 0,
        };
        (count, distinct)
    }

    #[test]
    fn counts_every_ngram_within_chunks_and_merges() {
        let of = |text: &[u8]| {
            let mut c = NgramCounts::new(3).unwrap();
            c.add_chunk(text).unwrap();
            c
        };
        let (count, _) = complete(vec![of(b"abab")]);
        assert_eq!(count(b"ab"), 2);
        assert_eq!(count(b"aba"), 1);
        assert_eq!(count(b"b"), 2);
        assert_eq!(count(b""), 4);
        let (count, distinct) = complete(vec![of(b"abab"), of(b"ba")]);
        assert_eq!(count(b"ba"), 2);
        assert_eq!(count(b"b"), 3);
        assert_eq!(count(b""), 6);
        assert_eq!(count(b"abab"), 0);
        assert_eq!(distinct, [2, 2, 2]);
        assert!(NgramCounts::new(9).is_err());
        assert!(NgramCounts::new(0).is_err());
    }

    #[test]
    fn window_counts_equal_direct_counts() {
        // every order, chunks shorter and longer than the order, bytes 0 and 255 in keys
        let text: Vec<u8> = (0..3000u32).map(|i| [0u8, 255, 7, 7, 0, 1][(i * i % 7 % 6) as usize]).collect();
        for order in 1..=MAX_ORDER {
            let mut c = NgramCounts::new(order).unwrap();
            let mut direct: Vec<std::collections::HashMap<Vec<u8>, u64>> = vec![Default::default(); order];
            for chunk in text.chunks(1 + order * 3 / 2).chain([&text[..1], &text[..order]]) {
                c.add_chunk(chunk).unwrap();
                for i in 0..chunk.len() {
                    for j in 1..=order.min(chunk.len() - i) {
                        *direct[j - 1].entry(chunk[i..i + j].to_vec()).or_insert(0) += 1;
                    }
                }
            }
            let (count, distinct) = complete(vec![c]);
            assert_eq!(distinct, direct.iter().map(|t| t.len()).collect::<Vec<_>>(), "order {order}");
            for table in &direct {
                for (g, &n) in table {
                    assert_eq!(count(g), n, "order {order}, {g:?}");
                }
            }
        }
    }

    /// Every score of a model, by length and key (the keys found in `table`).
    fn scores(m: &NgramModel, table: &NgramTable) -> Vec<(usize, u64, u64)> {
        (1..=table.order())
            .flat_map(|n| table.entries(n).iter().map(move |&(k, _)| (n, k)))
            .map(|(n, k)| (n, k, m.log_prob(n, k).unwrap().to_bits()))
            .collect()
    }

    #[test]
    fn spilled_counts_give_the_same_table_and_model() {
        let mut x = 7u64;
        let text: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b"abcdefgh"[(x >> 61) as usize]
            })
            .collect();
        let fill = |mut parts: Vec<NgramCounts>| {
            for (i, chunk) in text.chunks(333).enumerate() {
                let n = parts.len();
                parts[i % n].add_chunk(chunk).unwrap();
            }
            parts
        };
        let parts = |budget: usize| {
            fill((0..3).map(|_| NgramCounts::with_budget(4, budget, Arc::new(Scratch::new(None))).unwrap()).collect())
        };
        let in_memory = parts(usize::MAX);
        assert!(!in_memory.iter().any(NgramCounts::spilled));
        let want = NgramCounts::table_of(in_memory, 0, 3).unwrap();
        let spilling = parts(50);
        assert!(spilling.iter().any(NgramCounts::spilled));
        assert_eq!(NgramCounts::table_of(spilling, 0, 3).unwrap(), want);
        let model = NgramModel::from_table(want.clone(), &ln).unwrap();
        assert!(want.len() > 300);
        // within a memory budget: the same model, built from runs, with the same fingerprint
        let scratch = Arc::new(Scratch::new(None));
        let bounded = fill((0..2).map(|_| NgramCounts::with_memory(4, 20_000, scratch.clone(), 3).unwrap()).collect());
        assert!(bounded.iter().all(NgramCounts::spilled));
        let least = bounded.iter().map(|p| p.least_kept().kept()).max().unwrap();
        assert!(least > 0 && least < want.len() as u64 - 256, "a lower bound: {least}");
        let from_runs = NgramCounts::model_of(bounded, &scratch, 0, 3, usize::MAX, &|b| b, &ln).unwrap();
        assert_eq!(from_runs.fingerprint(), model.fingerprint());
        assert_eq!(from_runs.sizes(), model.sizes());
        assert_eq!(scores(&from_runs, &want), scores(&model, &want));
        // too small a budget for the model: a clear error, naming what would fit
        let bounded = fill(vec![NgramCounts::with_memory(4, 20_000, scratch.clone(), 3).unwrap()]);
        let err =
            NgramCounts::model_of(bounded, &scratch, 0, 3, model_bytes(10), &|b| b >> 10, &ln).unwrap_err().to_string();
        let need = model_bytes(from_runs.sizes()[1..].iter().sum());
        let want = format!("raise max_memory_mb to {}, or min_count to ", need >> 10);
        assert!(err.starts_with("the n-gram model needs ") && err.contains(&want), "{err}");
        drop(scratch);
    }

    #[test]
    fn tables_grow_within_their_memory() {
        let budget = 1 << 20;
        let table_bytes = |c: &NgramCounts| c.tables.iter().map(KeyTable::bytes).sum::<usize>();
        let mut c = NgramCounts::with_memory(4, budget, Arc::new(Scratch::new(None)), 2).unwrap();
        c.add_chunk(b"a small text").unwrap();
        assert!(table_bytes(&c) < budget / 100, "a small text takes little memory");
        let mut x = 1u64;
        for _ in 0..3000 {
            let chunk: Vec<u8> = (0..100)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (x >> 56) as u8
                })
                .collect();
            c.add_chunk(&chunk).unwrap();
            assert!(table_bytes(&c) <= budget, "{} bytes", table_bytes(&c));
        }
        assert!(c.spilled());
        assert!(table_bytes(&c) > budget / 2, "the budget is used before spilling");
    }

    #[test]
    fn kept_counts_suggest_a_min_count() {
        let mut kept = KeptCounts::new(2);
        for c in [1, 2, 2, 3, 5, 9000] {
            kept.add(c);
        }
        assert_eq!(kept.kept(), 5);
        assert_eq!(kept.min_count_for(5), Some((2, 5)));
        assert_eq!(kept.min_count_for(3), Some((3, 3)));
        assert_eq!(kept.min_count_for(1), Some((6, 1)));
        assert_eq!(kept.min_count_for(0), None);
    }

    #[test]
    fn model_is_conditional_and_pruned() {
        let model = |text: &[u8], min_count| {
            let mut c = NgramCounts::new(2).unwrap();
            c.add_chunk(text).unwrap();
            NgramModel::from_table(NgramCounts::table_of(vec![c], 0, min_count).unwrap(), &ln).unwrap()
        };
        let m = model(b"aab", 2);
        // 3 positions + 254 missing bytes counted once each
        let total = (3.0f64 + 254.0).ln();
        assert_eq!(m.log_prob(1, pack(b"a")), Some(2f64.ln() - total));
        assert_eq!(m.log_prob(1, pack(b"z")), Some(0.0 - total));
        assert_eq!(m.log_prob(2, pack(b"aa")), None, "count 1 < min_count 2");
        let m = model(b"aaa", 2);
        assert_eq!(m.log_prob(2, pack(b"aa")), Some(2f64.ln() - 3f64.ln()));
        assert_eq!(m.sizes(), [256, 1]);
    }
}
