//! Byte n-gram counts and the n-gram language model the trainer segments with.
//!
//! An n-gram of up to [`MAX_ORDER`] bytes is packed into a `u64` (first byte most significant),
//! one flat hash table per length: no heap object per n-gram. Counting is a sum, so tables
//! counted on any split of the text merge into the same result in any order.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::keytable::KeyTable;
use crate::table::{keeps_ngram, merge_sorted, NgramTable};

/// The longest n-gram (and so the highest `order`) the trainer supports: 8 bytes fill a `u64`.
pub const MAX_ORDER: usize = 8;

/// How many bytes ahead the table slots of n-grams are prefetched.
pub(crate) const PREFETCH: usize = 8;

/// Packs up to 8 bytes, first byte most significant.
#[inline]
pub fn pack(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |key, &b| (key << 8) | u64::from(b))
}

/// Counts of every byte n-gram of length 1 to `order`, and of the positions.
///
/// Counting touches one table entry per byte: it counts *windows*, the `order` bytes starting at
/// each position (shorter where a chunk ends). An n-gram's count is the sum of the counts of the
/// windows it begins, which `complete_lists` adds up, longest n-grams first, once per table rather
/// than once per byte.
///
/// The tables stay within a budget of entries: past it they are completed, written to disk as
/// runs sorted by key and emptied, and the runs are merged when the model is built (so that
/// counting needs bounded memory whatever the corpus; the result is the same).
#[derive(Debug)]
pub struct NgramCounts {
    order: usize,
    /// `tables[j - 1]`: the windows of length `j` (all of length `order` but those at the end of
    /// a chunk).
    tables: Vec<KeyTable>,
    positions: u64,
    budget: usize,
    /// `runs[j - 1]`: sorted runs of the n-grams of length `j` written to disk.
    runs: Vec<Vec<Run>>,
}

impl NgramCounts {
    /// Empty counts for n-grams up to `order` bytes (1 to [`MAX_ORDER`]), with no budget.
    pub fn new(order: usize) -> Result<NgramCounts> {
        NgramCounts::with_budget(order, usize::MAX)
    }

    /// Empty counts that spill to disk whenever their tables hold more than `budget` entries.
    pub fn with_budget(order: usize, budget: usize) -> Result<NgramCounts> {
        check_order(order)?;
        Ok(NgramCounts {
            order,
            tables: vec![KeyTable::default(); order],
            positions: 0,
            budget: budget.max(1),
            runs: (0..order).map(|_| Vec::new()).collect(),
        })
    }

    /// The order these counts were made for.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Counts the n-grams of one chunk (n-grams do not cross chunks), spilling the tables to disk
    /// if they outgrow the budget.
    pub fn add_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let (n, order) = (chunk.len(), self.order);
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
        if self.tables.iter().map(|t| t.len()).sum::<usize>() > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes every table to disk as a sorted run of n-gram counts and empties it (its memory is
    /// kept for reuse).
    fn spill(&mut self) -> Result<()> {
        let lists = complete_lists(&mut self.tables, false)?;
        for (list, runs) in lists.iter().zip(&mut self.runs) {
            if !list.is_empty() {
                runs.push(Run::write(list)?);
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
    /// In memory, each part's tables are completed (`complete_lists`) in parallel into a
    /// table of its own, and the tables are merged and pruned as shards' tables are
    /// ([`NgramTable::merge`], [`NgramTable::pruned`]); if any part has spilled, every part is
    /// written to disk and the runs are read once, in key order, pruned as they are read.
    pub fn table_of(parts: Vec<NgramCounts>, tag: u64, min_count: u64) -> Result<NgramTable> {
        let order = parts.first().map_or(0, NgramCounts::order);
        if parts.is_empty() || parts.iter().any(|p| p.order != order) {
            return Err(Error::InvalidArgument(
                "n-gram counts of different orders (or none) cannot be merged".into(),
            ));
        }
        if !parts.iter().any(NgramCounts::spilled) {
            let mut tables = parts
                .into_par_iter()
                .map(|mut part| NgramTable::new(order, tag, 0, part.positions, complete_lists(&mut part.tables, true)?))
                .collect::<Result<Vec<_>>>()?
                .into_iter();
            let first = tables.next().unwrap_or_else(|| unreachable!("at least one part"));
            let merged = tables.try_fold(first, NgramTable::merge)?;
            return if min_count == 0 { Ok(merged) } else { merged.pruned(min_count) };
        }
        let positions = parts.iter().map(|p| p.positions).sum();
        let mut runs: Vec<Vec<Run>> = (0..order).map(|_| Vec::new()).collect();
        for mut part in parts {
            part.spill()?;
            for (all, mine) in runs.iter_mut().zip(std::mem::take(&mut part.runs)) {
                all.extend(mine);
            }
        }
        let mut entries = Vec::with_capacity(order);
        for (j, runs) in runs.iter().enumerate() {
            let mut list = Vec::new();
            merge_runs(runs, |k, c| {
                if min_count == 0 || keeps_ngram(j + 1, c, min_count) {
                    list.push((k, c));
                }
            })?;
            entries.push(list);
        }
        NgramTable::new(order, tag, min_count, positions, entries)
    }
}

/// Turns window counts into n-gram counts, one list per length (index `j`: `j + 1` bytes)
/// sorted by key, and empties the tables (their memory freed if `free`, else kept for reuse).
///
/// From the longest down: a length's list is its own windows' counts, sorted, merged with the
/// counts of the prefixes of the longer n-grams (see [`prefix_sums`]); sorted keys keep this
/// a sequential pass rather than a hash look-up per n-gram.
fn complete_lists(tables: &mut [KeyTable], free: bool) -> Result<Vec<Vec<(u64, u64)>>> {
    let mut lists: Vec<Vec<(u64, u64)>> = Vec::with_capacity(tables.len());
    for table in tables.iter_mut().rev() {
        let mut own: Vec<(u64, u64)> = table.iter().collect();
        if free {
            *table = KeyTable::default();
        } else {
            table.clear();
        }
        own.par_sort_unstable();
        let list = match lists.last() {
            None => own,
            Some(longer) => merge_sorted(own, prefix_sums(longer))?,
        };
        lists.push(list);
    }
    lists.reverse();
    Ok(lists)
}

/// The summed counts of the prefixes one byte shorter of the n-grams of `list` (sorted by
/// key), sorted by key: n-grams that share a prefix are next to each other.
fn prefix_sums(list: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(list.len() / 2);
    for &(k, c) in list {
        match out.last_mut() {
            Some((p, n)) if *p == k >> 8 => *n = n.wrapping_add(c),
            _ => out.push((k >> 8, c)),
        }
    }
    out
}

/// A run of (key, count) pairs sorted by key, in a temporary file deleted when dropped.
#[derive(Debug)]
struct Run {
    path: std::path::PathBuf,
}

impl Run {
    fn write(entries: &[(u64, u64)]) -> Result<Run> {
        use std::io::Write;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "bytepiece-ngrams-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let run = Run { path };
        let file = std::fs::File::create(&run.path).map_err(|e| Error::io(&run.path, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for &(k, c) in entries {
            w.write_all(&k.to_le_bytes())
                .and_then(|()| w.write_all(&c.to_le_bytes()))
                .map_err(|e| Error::io(&run.path, e))?;
        }
        w.flush().map_err(|e| Error::io(&run.path, e))?;
        Ok(run)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Merges sorted runs, calling `f(key, total count)` once per key, in key order.
fn merge_runs(runs: &[Run], mut f: impl FnMut(u64, u64)) -> Result<()> {
    use std::cmp::Reverse;
    use std::io::Read;
    let mut readers = runs
        .iter()
        .map(|r| {
            std::fs::File::open(&r.path)
                .map(|file| std::io::BufReader::with_capacity(1 << 16, file))
                .map_err(|e| Error::io(&r.path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut next = |i: usize| -> Result<Option<(u64, u64)>> {
        let mut buf = [0u8; 16];
        match readers[i].read_exact(&mut buf) {
            Ok(()) => Ok(Some((
                u64::from_le_bytes(buf[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(buf[8..].try_into().unwrap_or_default()),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::io(&runs[i].path, e)),
        }
    };
    let mut heap = std::collections::BinaryHeap::new();
    for i in 0..runs.len() {
        if let Some((k, c)) = next(i)? {
            heap.push(Reverse((k, c, i)));
        }
    }
    let mut current: Option<(u64, u64)> = None;
    while let Some(Reverse((k, c, i))) = heap.pop() {
        current = match current {
            Some((ck, cc)) if ck == k => Some((ck, cc + c)),
            Some((ck, cc)) => {
                f(ck, cc);
                Some((k, c))
            }
            None => Some((k, c)),
        };
        if let Some((k2, c2)) = next(i)? {
            heap.push(Reverse((k2, c2, i)));
        }
    }
    if let Some((k, c)) = current {
        f(k, c);
    }
    Ok(())
}

fn check_order(order: usize) -> Result<()> {
    if (1..=MAX_ORDER).contains(&order) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "order must be between 1 and {MAX_ORDER}, got {order}"
        )))
    }
}

/// The n-gram model: for every n-gram kept, the log-probability of its last byte given the
/// bytes before it, `ln(count) - ln(count of its prefix)` (for single bytes, the prefix count is
/// the number of positions).
#[derive(Debug)]
pub struct NgramModel {
    order: usize,
    /// `tables[j - 1]`: the kept n-grams of length `j`, their values the bits of an `f64`.
    tables: Vec<KeyTable>,
    /// [`NgramTable::fingerprint`] of the table the model was built from.
    fingerprint: u64,
}

impl NgramModel {
    /// Prunes counts as the original does (see [`NgramModel::from_table`]), keeping n-grams of
    /// 2 bytes or more counted at least `min_count` times.
    pub fn from_counts(
        counts: NgramCounts,
        min_count: u64,
        ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>,
    ) -> Result<NgramModel> {
        NgramModel::from_table(NgramCounts::table_of(vec![counts], 0, min_count.max(1))?, ln)
    }

    /// The model of a pruned table ([`NgramTable::pruned`], or [`NgramCounts::table_of`] with a
    /// `min_count`), as the original builds it: every byte value gets a count of at least 1 (a
    /// missing one counts 1 and one more position), and each kept n-gram the log of its count
    /// minus that of its prefix. `ln` computes natural logarithms elementwise (the bindings pass
    /// NumPy's, which the original uses). The table's lists are freed as they are loaded.
    pub fn from_table(table: NgramTable, ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>) -> Result<NgramModel> {
        if table.min_count() == 0 {
            return Err(Error::InvalidArgument("the n-gram model is built from a pruned table (prune it by min_count first)".into()));
        }
        let fingerprint = table.fingerprint();
        let mut positions = table.positions();
        let mut lists = table.into_entries();
        let order = lists.len();
        // every byte value is counted (lists[0] then holds the 256 bytes in order)
        let mut bytes = [0u64; 256];
        for &(k, c) in &lists[0] {
            bytes[k as usize] = c;
        }
        for c in bytes.iter_mut().filter(|c| **c == 0) {
            *c = 1;
            positions += 1;
        }
        lists[0] = (0..256u64).zip(bytes).collect();
        // One call for every logarithm.
        let kept: usize = lists.iter().map(Vec::len).sum();
        let mut xs: Vec<f64> = Vec::with_capacity(kept + 1);
        for list in &lists {
            xs.extend(list.iter().map(|&(_, c)| c as f64));
        }
        xs.push(positions as f64);
        let logs = ln(&xs)?;
        drop(xs);
        if logs.len() != kept + 1 {
            return Err(Error::InvalidArgument(
                "the logarithm function gave a wrong number of values".into(),
            ));
        }
        let mut raw: Vec<&[f64]> = Vec::with_capacity(order);
        let mut rest = &logs[..kept];
        for list in &lists {
            let (mine, after) = rest.split_at(list.len());
            raw.push(mine);
            rest = after;
        }
        let log_positions = logs[kept];
        // Each n-gram's log count minus its prefix's, found by walking the sorted list one byte
        // shorter alongside (prefixes of sorted keys are sorted); then one table per length.
        let tables = (0..order)
            .into_par_iter()
            .map(|j| {
                let mut table = KeyTable::with_capacity(lists[j].len() + lists[j].len() / 2);
                let mut p = 0;
                for (&(k, _), &l) in lists[j].iter().zip(raw[j]) {
                    let prefix = match j {
                        0 => log_positions,
                        _ => {
                            let shorter = &lists[j - 1];
                            while p < shorter.len() && shorter[p].0 < k >> 8 {
                                p += 1;
                            }
                            // A prefix occurs wherever its n-gram does, so it was counted at
                            // least as often and is kept too.
                            if p < shorter.len() && shorter[p].0 == k >> 8 {
                                raw[j - 1][p]
                            } else {
                                f64::NAN
                            }
                        }
                    };
                    table.add(k, (l - prefix).to_bits());
                }
                table
            })
            .collect();
        Ok(NgramModel { order, tables, fingerprint })
    }

    /// The order of the model.
    pub fn order(&self) -> usize {
        self.order
    }

    /// [`NgramTable::fingerprint`] of the table the model was built from: piece counts made
    /// with the model are tagged with it.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Number of n-grams kept, for each length 1 to `order`.
    pub fn sizes(&self) -> Vec<usize> {
        self.tables.iter().map(|t| t.len()).collect()
    }

    /// The conditional log-probability of the packed n-gram `key` of `len` bytes, if kept.
    #[inline]
    pub fn log_prob(&self, len: usize, key: u64) -> Option<f64> {
        self.tables[len - 1].get(key).map(f64::from_bits)
    }

    /// Starts loading what [`NgramModel::log_prob`] reads for the n-grams that end at byte `i`
    /// of `text` (a hint for the CPU: it changes no result).
    #[inline]
    pub fn prefetch_ending_at(&self, text: &[u8], i: usize) {
        let mut key = 0u64;
        for (j, &b) in text[..=i].iter().rev().take(self.order).enumerate() {
            key |= u64::from(b) << (8 * j);
            self.tables[j].prefetch(key);
        }
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

    #[test]
    fn spilled_counts_give_the_same_model() {
        let mut x = 7u64;
        let text: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b"abcdefgh"[(x >> 61) as usize]
            })
            .collect();
        let build = |budget: usize| {
            let mut parts: Vec<NgramCounts> = (0..3).map(|_| NgramCounts::with_budget(4, budget).unwrap()).collect();
            for (i, chunk) in text.chunks(333).enumerate() {
                parts[i % 3].add_chunk(chunk).unwrap();
            }
            let spilled = parts.iter().any(NgramCounts::spilled);
            let m = NgramModel::from_table(NgramCounts::table_of(parts, 0, 3).unwrap(), &ln).unwrap();
            let mut probs: Vec<(usize, u64, u64)> = vec![];
            for (j, t) in m.tables.iter().enumerate() {
                probs.extend(t.iter().map(|(k, v)| (j, k, v)));
            }
            probs.sort_unstable();
            (spilled, probs)
        };
        let (spilled, in_memory) = build(usize::MAX);
        assert!(!spilled);
        let (spilled, on_disk) = build(50);
        assert!(spilled);
        assert_eq!(in_memory, on_disk);
        assert!(in_memory.len() > 300);
    }

    #[test]
    fn model_is_conditional_and_pruned() {
        let mut c = NgramCounts::new(2).unwrap();
        c.add_chunk(b"aab").unwrap();
        let m = NgramModel::from_counts(c, 2, &ln).unwrap();
        // 3 positions + 254 missing bytes counted once each
        let total = (3.0f64 + 254.0).ln();
        assert_eq!(m.log_prob(1, pack(b"a")), Some(2f64.ln() - total));
        assert_eq!(m.log_prob(1, pack(b"z")), Some(0.0 - total));
        assert_eq!(m.log_prob(2, pack(b"aa")), None, "count 1 < min_count 2");
        let mut c = NgramCounts::new(2).unwrap();
        c.add_chunk(b"aaa").unwrap();
        let m = NgramModel::from_counts(c, 2, &ln).unwrap();
        assert_eq!(m.log_prob(2, pack(b"aa")), Some(2f64.ln() - 3f64.ln()));
        assert_eq!(m.sizes(), [256, 1]);
    }
}
