//! Byte n-gram counts and the n-gram language model the trainer segments with.
//!
//! An n-gram of up to [`MAX_ORDER`] bytes is packed into a `u64` (first byte most significant),
//! one flat hash table per length: no heap object per n-gram. Counting is a sum, so tables
//! counted on any split of the text merge into the same result in any order.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::keytable::KeyTable;
use crate::table::{keeps_ngram, NgramTable};

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
/// windows it begins, which [`propagate`] adds up, longest n-grams first, once per table rather
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
        propagate(&mut self.tables);
        for (table, runs) in self.tables.iter_mut().zip(&mut self.runs) {
            if !table.is_empty() {
                let mut entries: Vec<(u64, u64)> = table.iter().collect();
                table.clear();
                entries.sort_unstable();
                runs.push(Run::write(&entries)?);
            }
        }
        Ok(())
    }

    /// True when some counts are on disk.
    pub fn spilled(&self) -> bool {
        self.runs.iter().any(|r| !r.is_empty())
    }

    /// Adds `other`'s counts to these (in memory, or as runs if either has spilled).
    pub fn merge(&mut self, mut other: NgramCounts) -> Result<()> {
        self.positions += other.positions;
        if self.spilled() || other.spilled() {
            self.spill()?;
            other.spill()?;
            for (mine, theirs) in self.runs.iter_mut().zip(other.runs) {
                mine.extend(theirs);
            }
            return Ok(());
        }
        self.tables.par_iter_mut().zip(other.tables.par_iter_mut()).for_each(|(mine, theirs)| {
            if mine.len() < theirs.len() {
                std::mem::swap(mine, theirs);
            }
            mine.reserve(theirs.len());
            for (k, v) in std::mem::take(theirs).iter() {
                mine.add(k, v);
            }
        });
        Ok(())
    }

    /// The complete n-gram counts as a sorted [`NgramTable`] tagged `tag`, keeping the n-grams
    /// that [`keeps_ngram`] keeps with `min_count` (0: every n-gram, an unpruned table that
    /// merges with others). The runs on disk are read once, in key order; in memory, each
    /// length's table is pruned, sorted and freed in turn.
    pub fn into_table(mut self, tag: u64, min_count: u64) -> Result<NgramTable> {
        let keep = |len: usize, c: u64| min_count == 0 || keeps_ngram(len, c, min_count);
        let mut entries = Vec::with_capacity(self.order);
        if !self.spilled() {
            propagate(&mut self.tables);
            for (j, table) in self.tables.iter_mut().enumerate() {
                let table = std::mem::take(table);
                let mut list: Vec<(u64, u64)> = table.iter().filter(|&(_, c)| keep(j + 1, c)).collect();
                drop(table);
                list.par_sort_unstable();
                entries.push(list);
            }
        } else {
            self.spill()?;
            for (j, runs) in self.runs.iter().enumerate() {
                let mut list = Vec::new();
                merge_runs(runs, |k, c| {
                    if keep(j + 1, c) {
                        list.push((k, c));
                    }
                })?;
                entries.push(list);
            }
        }
        NgramTable::new(self.order, tag, min_count, self.positions, entries)
    }
}

/// Turns window counts into n-gram counts: every n-gram adds its count to its prefix one byte
/// shorter, longest first, so that each table is complete before it is added down.
fn propagate(tables: &mut [KeyTable]) {
    for j in (1..tables.len()).rev() {
        let (shorter, rest) = tables.split_at_mut(j);
        let prefixes = &mut shorter[j - 1];
        prefixes.reserve(rest[0].len() / 2);
        let mut ahead = rest[0].iter().skip(PREFETCH);
        for (k, c) in rest[0].iter() {
            if let Some((next, _)) = ahead.next() {
                prefixes.prefetch(next >> 8);
            }
            prefixes.add(k >> 8, c);
        }
    }
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
        NgramModel::from_table(counts.into_table(0, min_count.max(1))?, ln)
    }

    /// The model of a pruned table ([`NgramTable::pruned`], or [`NgramCounts::into_table`] with a
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
        let mut tables: Vec<KeyTable> = Vec::with_capacity(table.order());
        for list in table.into_entries() {
            // at most half full, as look-ups that miss stay short
            let mut t = KeyTable::with_capacity(list.len() + list.len() / 2);
            for (k, c) in list {
                t.add(k, c);
            }
            tables.push(t);
        }
        for b in 0..=255u64 {
            if tables[0].get(b).is_none() {
                tables[0].add(b, 1);
                positions += 1;
            }
        }
        // One call for every logarithm; a table's values are visited in the same order when
        // read and when written back, as it is not changed in between.
        let kept: usize = tables.iter().map(|t| t.len()).sum();
        let mut xs: Vec<f64> = Vec::with_capacity(kept + 1);
        for table in &tables {
            xs.extend(table.iter().map(|(_, c)| c as f64));
        }
        xs.push(positions as f64);
        let logs = ln(&xs)?;
        drop(xs);
        if logs.len() != kept + 1 {
            return Err(Error::InvalidArgument("the logarithm function gave a wrong number of values".into()));
        }
        let mut next = logs.iter();
        for table in tables.iter_mut() {
            for ((_, v), l) in table.iter_mut().zip(next.by_ref()) {
                *v = l.to_bits();
            }
        }
        let log_positions = logs[kept];
        drop(logs);
        // Condition from the longest n-grams down, so that each level still holds the raw log
        // counts of its prefixes when it is used.
        let order = tables.len();
        for j in (0..order).rev() {
            let (shorter, rest) = tables.split_at_mut(j);
            for (k, v) in rest[0].iter_mut() {
                let prefix = match shorter.last() {
                    None => log_positions,
                    // A prefix occurs wherever its n-gram does, so it was counted at least as
                    // often and is kept too.
                    Some(t) => t.get(k >> 8).map_or(f64::NAN, f64::from_bits),
                };
                *v = (f64::from_bits(*v) - prefix).to_bits();
            }
        }
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

    /// The n-gram counts of `c` (which must not have spilled): `(count of n-gram, distinct per length)`.
    fn complete(c: &NgramCounts) -> (impl Fn(&[u8]) -> u64, Vec<usize>) {
        assert!(!c.spilled());
        let mut tables = c.tables.clone();
        propagate(&mut tables);
        let distinct = tables.iter().map(|t| t.len()).collect();
        let positions = c.positions;
        let count = move |g: &[u8]| match g.len() {
            0 => positions,
            n if n <= tables.len() => tables[n - 1].get(pack(g)).unwrap_or(0),
            _ => 0,
        };
        (count, distinct)
    }

    #[test]
    fn counts_every_ngram_within_chunks_and_merges() {
        let mut a = NgramCounts::new(3).unwrap();
        a.add_chunk(b"abab").unwrap();
        let mut b = NgramCounts::new(3).unwrap();
        b.add_chunk(b"ba").unwrap();
        let (count, _) = complete(&a);
        assert_eq!(count(b"ab"), 2);
        assert_eq!(count(b"aba"), 1);
        assert_eq!(count(b"b"), 2);
        assert_eq!(count(b""), 4);
        a.merge(b).unwrap();
        let (count, distinct) = complete(&a);
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
            let (count, distinct) = complete(&c);
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
            let mut all = parts.pop().unwrap();
            for p in parts {
                all.merge(p).unwrap();
            }
            let spilled = all.spilled();
            let m = NgramModel::from_counts(all, 3, &ln).unwrap();
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
