//! The n-gram language model the trainer segments with, held compactly.
//!
//! The model gives, for every n-gram kept, the log-probability of its last byte given the bytes
//! before it, `ln(count) - ln(count of its prefix)` (for single bytes, the prefix count is the
//! number of positions). It stores, per n-gram, only the logarithm of its own count: the
//! segmentation looks up the n-grams ending at a byte from the shortest, and the prefix of the
//! n-gram of `j + 1` bytes ending at byte `i` is the n-gram of `j` bytes ending at byte `i - 1`,
//! looked up one step before. The difference of the same two numbers is the same number, so the
//! scores are those of a table of differences, bit for bit.
//!
//! The n-grams are held in one of two ways ([`Levels`]):
//!
//! - hashed ([`HashedLevel`]): per length, an open-addressing table a quarter full, or fuller, to
//!   3/4, within a memory budget; a slot packs the key with the rank of its count among the
//!   length's distinct counts (32 bytes per n-gram; 64 where they do not fit, as `(key,
//!   logarithm)` pairs): one cache line per look-up, the fastest;
//! - compact, when the model must fit a memory budget that the hashed form exceeds: one array
//!   sorted by bucket, a bucket being the high bits of a bijective hash of the key, with an array
//!   of bucket offsets; a look-up reads one offset and scans a few slots. A slot holds the rest of
//!   the hash (the key is recovered from the bucket and the rest, so no key is stored) and the
//!   index of the n-gram's count in a table of logarithms of the distinct counts: 8 bytes per
//!   n-gram, plus about 1 for the offsets (and about twice as slow to segment with).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hashed_level::HashedLevel;
use crate::keytable::{prefetch, KeyTable};
use crate::runs::Run;
use crate::table::{NgramList, NgramTable, NgramTableView};

/// Counts below this are their own index in the table of logarithms.
const DENSE: u64 = 1 << 16;

/// Average n-grams per bucket (a bucket's slots share a cache line or two).
const PER_BUCKET: usize = 4;

/// A list of `(packed key, count)` by increasing key, read once or twice to build the model.
pub trait SortedCounts: Sync {
    /// Number of entries.
    fn entries(&self) -> usize;
    /// Calls `f` with every entry, in order.
    fn for_each(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()>;
    /// The entries' keys, in order, one at a time (by default collected first: lists that can
    /// should stream them).
    fn keys(&self) -> Box<dyn Iterator<Item = Result<u64>> + '_> {
        let mut keys = Vec::with_capacity(self.entries());
        match self.for_each(&mut |k, _| keys.push(k)) {
            Ok(()) => Box::new(keys.into_iter().map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

impl SortedCounts for Vec<(u64, u64)> {
    fn entries(&self) -> usize {
        self.len()
    }

    fn for_each(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        self.iter().for_each(|&(k, c)| f(k, c));
        Ok(())
    }

    fn keys(&self) -> Box<dyn Iterator<Item = Result<u64>> + '_> {
        Box::new(self.iter().map(|&(k, _)| Ok(k)))
    }
}

impl SortedCounts for NgramList<'_> {
    fn entries(&self) -> usize {
        self.len()
    }

    fn for_each(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        NgramList::for_each(self, f)
    }

    fn keys(&self) -> Box<dyn Iterator<Item = Result<u64>> + '_> {
        Box::new(self.records().map(|r| r.map(|(k, _)| k)))
    }
}

impl SortedCounts for Run<u64> {
    fn entries(&self) -> usize {
        self.len() as usize
    }

    fn for_each(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        Run::for_each(self, |k, c| {
            f(k, c);
            Ok(())
        })
    }
}

/// Checks that every n-gram's prefix (one byte shorter) is in the list before its own: a prefix
/// occurs wherever its n-gram does, so it was counted at least as often and is kept too; a
/// table where it is not was not counted from text.
fn check_prefixes(lists: &[&dyn SortedCounts]) -> Result<()> {
    for j in 1..lists.len() {
        let mut shorter = lists[j - 1].keys().peekable();
        for k in lists[j].keys() {
            let prefix = k? >> 8;
            while let Some(p) = shorter.next_if(|p| p.as_ref().is_ok_and(|&p| p < prefix)) {
                p?;
            }
            match shorter.peek() {
                Some(Ok(p)) if *p == prefix => {}
                Some(Err(_)) => return shorter.next().unwrap_or(Ok(0)).map(|_| ()),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "the n-gram table holds a {}-byte n-gram without its prefix: it was not counted from text",
                        j + 1
                    )))
                }
            }
        }
    }
    Ok(())
}

/// A bijective hash of the `bits`-bit keys (a multiplication by an odd number, then an
/// xor-shift, both modulo `2^bits`): its high bits pick the bucket, its low bits are stored.
#[inline]
fn mix(key: u64, bits: u32) -> u64 {
    let mask = u64::MAX >> (64 - bits);
    let x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask;
    x ^ (x >> (bits / 2))
}

/// The slots of one length: the rest of the hash in the high 32 bits and the count index in the
/// low 32 (narrow), or both apart when the rest is wider than 32 bits (n-grams of 7 or 8 bytes).
#[derive(Debug)]
enum Slots {
    Narrow(Vec<u64>),
    Wide(Vec<(u64, u32)>),
}

/// The n-grams of one length.
#[derive(Debug)]
struct Level {
    /// Bits of a key: 8 per byte.
    bits: u32,
    /// The bucket is the hash shifted right by this.
    shift: u32,
    /// `offsets[b]..offsets[b + 1]`: the slots of bucket `b`, by increasing rest of the hash.
    offsets: Vec<u32>,
    slots: Slots,
}

impl Level {
    /// An empty level for `n` n-grams of `len` bytes, its offsets all zero.
    fn plan(len: usize, n: usize) -> Result<Level> {
        if n >= u32::MAX as usize {
            return Err(Error::InvalidArgument(format!("too many {len}-byte n-grams for the n-gram model ({n})")));
        }
        let bits = 8 * len as u32;
        let mut bucket_bits = (n / PER_BUCKET).max(1).ilog2().min(bits);
        // up to 2^16 buckets more to keep the rest of the hash within 32 bits
        let narrow = bits - bucket_bits <= 32 || bits - 32 <= 16;
        if narrow {
            bucket_bits = bucket_bits.max(bits.saturating_sub(32));
        }
        let slots = if narrow { Slots::Narrow(vec![0; n]) } else { Slots::Wide(vec![(0, 0); n]) };
        Ok(Level { bits, shift: bits - bucket_bits, offsets: vec![0; (1usize << bucket_bits) + 1], slots })
    }

    /// The bucket and the rest of the hash of `key`.
    #[inline]
    fn locate(&self, key: u64) -> (usize, u64) {
        locate(key, self.bits, self.shift)
    }

    /// The count index of `key`, if kept.
    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let (b, rest) = self.locate(key);
        let range = self.offsets[b] as usize..self.offsets[b + 1] as usize;
        match &self.slots {
            Slots::Narrow(slots) => {
                for &s in &slots[range] {
                    let r = s >> 32;
                    if r >= rest {
                        return (r == rest).then_some(s as u32);
                    }
                }
            }
            Slots::Wide(slots) => {
                for &(r, i) in &slots[range] {
                    if r >= rest {
                        return (r == rest).then_some(i);
                    }
                }
            }
        }
        None
    }

    #[inline]
    fn prefetch_offset(&self, key: u64) {
        prefetch(&self.offsets[self.locate(key).0]);
    }

    /// Prefetches the first and the last slot of the bucket of `key` (a bucket may straddle
    /// two cache lines).
    #[inline]
    fn prefetch_slots(&self, key: u64) {
        let b = self.locate(key).0;
        let (first, end) = (self.offsets[b] as usize, self.offsets[b + 1] as usize);
        let last = end.max(first + 1) - 1;
        match &self.slots {
            Slots::Narrow(s) => {
                prefetch(s.get(first).unwrap_or(&0));
                prefetch(s.get(last).unwrap_or(&0));
            }
            Slots::Wide(s) => {
                prefetch(s.get(first).unwrap_or(&(0, 0)));
                prefetch(s.get(last).unwrap_or(&(0, 0)));
            }
        }
    }

    /// Number of n-grams.
    fn len(&self) -> usize {
        match &self.slots {
            Slots::Narrow(s) => s.len(),
            Slots::Wide(s) => s.len(),
        }
    }

    /// Bytes of memory held.
    fn bytes(&self) -> usize {
        4 * self.offsets.len()
            + match &self.slots {
                Slots::Narrow(s) => 8 * s.len(),
                Slots::Wide(s) => 16 * s.len(),
            }
    }
}

/// The n-grams of each length from 2 bytes (`[j - 2]`: of `j` bytes), with the logarithms of
/// their counts, in one of the two forms of the module documentation.
#[derive(Debug)]
enum Levels {
    /// Key -> the logarithm.
    Hashed(Vec<HashedLevel>),
    /// Key -> the index of the logarithm in the model's table.
    Compact(Vec<Level>),
}

impl Levels {
    fn sizes(&self) -> Vec<usize> {
        match self {
            Levels::Hashed(t) => t.iter().map(HashedLevel::len).collect(),
            Levels::Compact(l) => l.iter().map(Level::len).collect(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Levels::Hashed(t) => t.iter().map(HashedLevel::bytes).sum(),
            Levels::Compact(l) => l.iter().map(Level::bytes).sum(),
        }
    }
}

/// The bucket (the hash shifted right by `shift`) and the rest of the hash (its low `shift`
/// bits) of a key of `bits` bits.
#[inline]
fn locate(key: u64, bits: u32, shift: u32) -> (usize, u64) {
    let h = mix(key, bits);
    (h.checked_shr(shift).unwrap_or(0) as usize, h & rest_mask(shift))
}

/// The low `shift` bits.
#[inline]
fn rest_mask(shift: u32) -> u64 {
    if shift >= 64 {
        u64::MAX
    } else {
        (1u64 << shift) - 1
    }
}

/// The index of `count` in the table of logarithms: itself below [`DENSE`], else after the
/// dense part by its rank among the larger counts (`large`, sorted and distinct).
#[inline]
fn count_index(count: u64, large: &[u64]) -> u32 {
    if count < DENSE {
        count as u32
    } else {
        DENSE as u32
            + large.binary_search(&count).unwrap_or_else(|_| unreachable!("every large count was collected")) as u32
    }
}

/// The hashed level of the n-grams of `len` bytes in `list`, in `slots` slots: packed, with the
/// ranks of the level's distinct counts (those below [`DENSE`] marked in the bitmap `small`,
/// the larger ones in `level_large`), when they fit (see [`HashedLevel::packs`]); else pairs.
/// `logs` holds the logarithm of every count by [`count_index`] (with the model's `large`).
fn hashed_level(
    len: usize,
    slots: usize,
    list: &dyn SortedCounts,
    small: &[u64],
    level_large: &[u64],
    large: &[u64],
    logs: &[f64],
) -> Result<HashedLevel> {
    let distinct = small.iter().map(|w| w.count_ones() as usize).sum::<usize>() + level_large.len();
    // rank 0 marks an empty slot: the distinct counts are ranked from 1, the small ones first
    let mut rank_of_small = Vec::new();
    let mut level = if HashedLevel::packs(len, distinct + 1) {
        rank_of_small = vec![0u32; DENSE as usize];
        let mut level_logs = vec![f64::NAN];
        for c in (0..DENSE).filter(|&c| small[c as usize / 64] >> (c % 64) & 1 == 1) {
            rank_of_small[c as usize] = level_logs.len() as u32;
            level_logs.push(logs[c as usize]);
        }
        level_logs.extend(level_large.iter().map(|&c| logs[count_index(c, large) as usize]));
        HashedLevel::packed(len, slots, level_logs)
    } else {
        HashedLevel::Pairs(KeyTable::with_slots(slots))
    };
    let first_large = (distinct - level_large.len()) as u64 + 1;
    list.for_each(&mut |k, c| {
        let value = match &level {
            HashedLevel::Pairs(_) => logs[count_index(c, large) as usize].to_bits(),
            HashedLevel::Packed { .. } if c < DENSE => u64::from(rank_of_small[c as usize]),
            HashedLevel::Packed { .. } => {
                first_large + level_large.binary_search(&c).unwrap_or_else(|_| unreachable!("collected")) as u64
            }
        };
        level.insert(k, value);
    })?;
    Ok(level)
}

/// The bytes of memory a model of `ngrams` n-grams of 2 bytes or more takes, about, in its
/// compact form (the least it can take).
pub fn model_bytes(ngrams: usize) -> usize {
    ngrams * (8 + 4 * 2 / PER_BUCKET) + (DENSE as usize) * 8
}

/// The slots of the hashed form's table of `n` of the model's `ngrams` n-grams (of 2 bytes or
/// more) within `budget` bytes: a quarter full (fuller tables segment more slowly, see
/// `docs/DESIGN.md`), or as many as the budget gives them; `None` when that is fewer than 4/3 of
/// the n-grams (a table at most 3/4 full), so the compact form is needed.
fn hashed_slots(n: usize, ngrams: usize, budget: Option<usize>) -> Option<usize> {
    let most = 4 * n + 1;
    let Some(budget) = budget else { return Some(most) };
    let slots = budget.saturating_sub(8 * DENSE as usize) / KeyTable::SLOT_BYTES;
    (slots * 3 / 4 > ngrams)
        .then(|| ((n as u128 * slots as u128 / ngrams.max(1) as u128) as usize).clamp(n * 4 / 3 + 1, most))
}

/// See the module documentation.
#[derive(Debug)]
pub struct NgramModel {
    order: usize,
    /// The logarithm of every byte's count.
    byte_logs: Vec<f64>,
    log_positions: f64,
    levels: Levels,
    /// The logarithm of every count, by count index.
    logs: Vec<f64>,
    fingerprint: u64,
}

impl NgramModel {
    /// The model of pruned n-gram counts: `lists[j - 1]` holds the kept n-grams of `j` bytes
    /// (every prefix of a kept n-gram is kept), `positions` is the number of byte positions
    /// counted, and `fingerprint` is the table's ([`crate::table::NgramTable::fingerprint`]).
    /// As the original builds it, every byte value gets a count of at least 1 (a missing one
    /// counts 1 and one more position). `ln` computes natural logarithms elementwise (the
    /// bindings pass NumPy's, which the original uses); it is called once. The n-grams are
    /// hashed unless that takes more than `budget` bytes (then they are held compactly).
    pub fn build(
        lists: &[&dyn SortedCounts],
        positions: u64,
        fingerprint: u64,
        budget: Option<usize>,
        ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>,
    ) -> Result<NgramModel> {
        let order = lists.len();
        if !(1..=crate::ngram_key::MAX_ORDER).contains(&order) {
            return Err(Error::InvalidArgument(format!("an n-gram model of order {order}")));
        }
        let mut bytes = [0u64; 256];
        let mut bad = false;
        lists[0].for_each(&mut |k, c| match bytes.get_mut(k as usize) {
            Some(b) => *b = c,
            None => bad = true,
        })?;
        if bad {
            return Err(Error::InvalidArgument("a single byte's key is wider than a byte".into()));
        }
        let mut positions = positions;
        for c in bytes.iter_mut().filter(|c| **c == 0) {
            *c = 1;
            positions = positions.checked_add(1).ok_or_else(|| {
                Error::InvalidArgument("the n-gram counts' positions are past 2^64 - 1: they were not counted".into())
            })?;
        }
        let ngrams: usize = lists[1..].iter().map(|l| l.entries()).sum();
        let compact = hashed_slots(ngrams, ngrams, budget).is_none();
        // first pass: bucket sizes and the counts too large to be their own index
        let planned = lists[1..]
            .par_iter()
            .enumerate()
            .map(|(j, list)| {
                let mut level = if compact { Some(Level::plan(j + 2, list.entries())?) } else { None };
                let mut large = Vec::new();
                // which counts below DENSE occur (for the ranks of a packed hashed level)
                let mut small = if compact { Vec::new() } else { vec![0u64; DENSE as usize / 64] };
                let mut seen = 0usize;
                list.for_each(&mut |k, c| {
                    if let Some(level) = level.as_mut() {
                        let (b, _) = level.locate(k);
                        level.offsets[b + 1] += 1;
                    } else if c < DENSE {
                        small[c as usize / 64] |= 1 << (c % 64);
                    }
                    seen += 1;
                    if c >= DENSE {
                        large.push(c);
                    }
                })?;
                if seen != list.entries() {
                    return Err(Error::InvalidArgument("an n-gram list changed while the model was built".into()));
                }
                large.sort_unstable();
                large.dedup();
                Ok((level, large, small))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut large: Vec<u64> = planned.iter().flat_map(|(_, l, _)| l.iter().copied()).collect();
        large.sort_unstable();
        large.dedup();
        // one call for every logarithm: the dense counts (0 stands for 1, never used), the
        // large ones, the bytes' counts and the positions
        let mut xs: Vec<f64> = (0..DENSE).map(|c| c.max(1) as f64).collect();
        xs.extend(large.iter().map(|&c| c as f64));
        xs.extend(bytes.iter().map(|&c| c as f64));
        xs.push(positions as f64);
        let mut logs = ln(&xs)?;
        if logs.len() != xs.len() {
            return Err(Error::InvalidArgument("the logarithm function gave a wrong number of values".into()));
        }
        drop(xs);
        let log_positions = logs.pop().unwrap_or_default();
        let byte_logs = logs.split_off(logs.len() - 256);
        // second pass: every n-gram into its bucket, then each bucket by the rest of the hash
        let levels = planned
            .into_par_iter()
            .zip(&lists[1..])
            .enumerate()
            .map(|(j, ((level, level_large, small), list))| {
                let Some(mut level) = level else {
                    let slots =
                        hashed_slots(list.entries(), ngrams, budget).unwrap_or_else(|| unreachable!("not compact"));
                    return hashed_level(j + 2, slots, *list, &small, &level_large, &large, &logs).map(Err);
                };
                let mut total = 0u32;
                for o in level.offsets.iter_mut() {
                    total += *o;
                    *o = total;
                }
                let mut cursor = level.offsets[..level.offsets.len() - 1].to_vec();
                let (bits, shift, offsets) = (level.bits, level.shift, &level.offsets);
                let place = |k: u64| locate(k, bits, shift);
                match &mut level.slots {
                    Slots::Narrow(slots) => {
                        list.for_each(&mut |k, c| {
                            let (b, rest) = place(k);
                            slots[cursor[b] as usize] = rest << 32 | u64::from(count_index(c, &large));
                            cursor[b] += 1;
                        })?;
                        sort_buckets(slots, offsets);
                    }
                    Slots::Wide(slots) => {
                        list.for_each(&mut |k, c| {
                            let (b, rest) = place(k);
                            slots[cursor[b] as usize] = (rest, count_index(c, &large));
                            cursor[b] += 1;
                        })?;
                        sort_buckets(slots, offsets);
                    }
                }
                Ok(Ok(level))
            })
            .collect::<Result<Vec<std::result::Result<Level, HashedLevel>>>>()?;
        let levels = if compact {
            Levels::Compact(levels.into_iter().filter_map(|l| l.ok()).collect())
        } else {
            Levels::Hashed(levels.into_iter().filter_map(|l| l.err()).collect())
        };
        Ok(NgramModel { order, byte_logs, log_positions, levels, logs, fingerprint })
    }

    /// The model of a pruned table ([`NgramTable::pruned`], or
    /// [`crate::ngram::NgramCounts::table_of`] with a `min_count`); see [`NgramModel::build`].
    pub fn from_table(table: NgramTable, ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>) -> Result<NgramModel> {
        if table.min_count() == 0 {
            return Err(Error::InvalidArgument(
                "the n-gram model is built from a pruned table (prune it by min_count first)".into(),
            ));
        }
        let (fingerprint, positions) = (table.fingerprint(), table.positions());
        let lists = table.into_entries();
        let refs: Vec<&dyn SortedCounts> = lists.iter().map(|l| l as &dyn SortedCounts).collect();
        check_prefixes(&refs)?;
        NgramModel::build(&refs, positions, fingerprint, None, ln)
    }

    /// The model of a serialised pruned table read in place ([`NgramTable::view`]), as
    /// [`NgramModel::from_table`] builds it from the table, within `budget` bytes if given (see
    /// [`NgramModel::build`]).
    pub fn from_view(
        view: &NgramTableView<'_>,
        budget: Option<usize>,
        ln: &dyn Fn(&[f64]) -> Result<Vec<f64>>,
    ) -> Result<NgramModel> {
        if view.min_count() == 0 {
            return Err(Error::InvalidArgument(
                "the n-gram model is built from a pruned table (prune it by min_count first)".into(),
            ));
        }
        let refs: Vec<&dyn SortedCounts> = view.lists().iter().map(|l| l as &dyn SortedCounts).collect();
        check_prefixes(&refs)?;
        NgramModel::build(&refs, view.positions(), view.fingerprint()?, budget, ln)
    }

    /// The order of the model.
    pub fn order(&self) -> usize {
        self.order
    }

    /// [`crate::table::NgramTable::fingerprint`] of the table the model was built from: piece
    /// counts made with the model are tagged with it.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Number of n-grams kept, for each length 1 to `order`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(256).chain(self.levels.sizes()).collect()
    }

    /// Bytes of memory the model holds.
    pub fn bytes(&self) -> usize {
        8 * (self.logs.len() + self.byte_logs.len()) + self.levels.bytes()
    }

    /// The logarithm of the number of positions counted (the prefix count of single bytes).
    #[inline]
    pub fn log_positions(&self) -> f64 {
        self.log_positions
    }

    /// Writes to `raw[j]` the logarithm of the count of the n-gram `text[i - j..=i]`, from the
    /// single byte up, while they are kept (an n-gram whose suffix is not kept was counted no
    /// more often, so it is not either), and returns how many were written.
    #[inline]
    pub fn log_counts_ending_at(&self, text: &[u8], i: usize, raw: &mut [f64]) -> usize {
        raw[0] = self.byte_logs[usize::from(text[i])];
        match &self.levels {
            Levels::Hashed(tables) => self.walk_left(text, i, raw, |j, key| tables[j].get(key)),
            Levels::Compact(levels) => {
                self.walk_left(text, i, raw, |j, key| levels[j].get(key).map(|x| self.logs[x as usize]))
            }
        }
    }

    /// [`NgramModel::log_counts_ending_at`] from 2 bytes on, with `get(j, key)` the logarithm
    /// of the count of the `j + 2`-byte `key`.
    #[inline(always)]
    fn walk_left(&self, text: &[u8], i: usize, raw: &mut [f64], get: impl Fn(usize, u64) -> Option<f64>) -> usize {
        let mut key = u64::from(text[i]);
        let longest = self.order.min(i + 1);
        for j in 1..longest {
            key |= u64::from(text[i - j]) << (8 * j);
            match get(j - 1, key) {
                Some(l) => raw[j] = l,
                None => return j,
            }
        }
        longest
    }

    /// The conditional log-probability of the packed n-gram `key` of `len` bytes, if kept.
    pub fn log_prob(&self, len: usize, key: u64) -> Option<f64> {
        let raw = |len: usize, key: u64| match (len, &self.levels) {
            (1, _) => self.byte_logs.get(key as usize).copied(),
            (_, Levels::Hashed(t)) => t.get(len - 2)?.get(key),
            (_, Levels::Compact(l)) => l.get(len - 2)?.get(key).map(|x| self.logs[x as usize]),
        };
        let prefix = if len == 1 { Some(self.log_positions) } else { raw(len - 1, key >> 8) };
        Some(raw(len, key)? - prefix?)
    }

    /// Bytes ahead of a look-up that [`NgramModel::prefetch_ahead`] loads its lines.
    pub const PREFETCH: usize = 8;

    /// Starts loading what [`NgramModel::log_counts_ending_at`] will read at byte
    /// `i + PREFETCH` of `text` (and, for the compact form, the offsets it will read at
    /// `i + 2 * PREFETCH`): call it for every `i` in turn, from `-2 * PREFETCH` (a hint for the
    /// CPU: it changes no result).
    #[inline]
    pub fn prefetch_ahead(&self, text: &[u8], i: isize) {
        let at = |d: isize| usize::try_from(i + d).ok().filter(|&x| x < text.len());
        let p = Self::PREFETCH as isize;
        match &self.levels {
            Levels::Hashed(tables) => {
                if let Some(x) = at(p) {
                    self.keys_ending_at(text, x, |j, key| tables[j].prefetch(key));
                }
            }
            Levels::Compact(levels) => {
                if let Some(x) = at(2 * p) {
                    self.keys_ending_at(text, x, |j, key| levels[j].prefetch_offset(key));
                }
                if let Some(x) = at(p) {
                    self.keys_ending_at(text, x, |j, key| levels[j].prefetch_slots(key));
                }
            }
        }
    }

    /// Calls `f(j, key)` with the key of every n-gram of `j + 2` bytes ending at byte `at`.
    #[inline(always)]
    fn keys_ending_at(&self, text: &[u8], at: usize, mut f: impl FnMut(usize, u64)) {
        let mut key = u64::from(text[at]);
        for j in 1..self.order.min(at + 1) {
            key |= u64::from(text[at - j]) << (8 * j);
            f(j - 1, key);
        }
    }
}

/// Sorts the slots of every bucket (they are few: a sort of a handful each).
fn sort_buckets<T: Ord + Send>(slots: &mut [T], offsets: &[u32]) {
    let mut rest = slots;
    for w in offsets.windows(2) {
        let (bucket, after) = rest.split_at_mut((w[1] - w[0]) as usize);
        bucket.sort_unstable();
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::ln;

    #[test]
    fn every_key_is_found_with_its_count_and_no_other() {
        // every length, a narrow and (at 7 and 8 bytes) a wide level, keys 0 and all-ones
        for len in 1..=8usize {
            let mask = u64::MAX >> (64 - 8 * len);
            let mut keys: Vec<u64> =
                (0..3000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask).chain([0, mask]).collect();
            keys.sort_unstable();
            keys.dedup();
            let list: Vec<(u64, u64)> = keys.iter().map(|&k| (k, (k % 100_000) + 1)).collect();
            let level = {
                let mut lists: Vec<Vec<(u64, u64)>> = vec![(0..256).map(|b| (b, 1)).collect()];
                lists.extend((2..=len).map(|_| Vec::new()));
                if len > 1 {
                    lists[len - 1] = list.clone();
                }
                let refs: Vec<&dyn SortedCounts> = lists.iter().map(|l| l as &dyn SortedCounts).collect();
                // both forms: hashed without a budget, compact within a small one, and hashed
                // half full within one that gives it 2 slots per n-gram
                let half = 8 * DENSE as usize + KeyTable::SLOT_BYTES * 2 * list.len();
                [None, Some(1000), Some(half)].map(|budget| NgramModel::build(&refs, 1000, 0, budget, &ln).unwrap())
            };
            if len == 1 {
                continue;
            }
            for model in &level {
                let (l, logs) = (&model.levels, &model.logs);
                let get = |k: u64| match l {
                    Levels::Hashed(t) => t[len - 2].get(k),
                    Levels::Compact(c) => c[len - 2].get(k).map(|x| logs[x as usize]),
                };
                for &(k, c) in &list {
                    let got = get(k).unwrap_or_else(|| panic!("len {len}: key {k:x} not found"));
                    assert_eq!(got, (c as f64).ln());
                }
                for i in 0..5000u64 {
                    let probe = i.wrapping_mul(0x5555_1111_3333_7777) & mask;
                    if keys.binary_search(&probe).is_err() {
                        assert_eq!(get(probe), None, "len {len}");
                    }
                }
            }
            assert!(matches!(level[0].levels, Levels::Hashed(_)));
            match &level[2].levels {
                Levels::Hashed(t) => {
                    assert!(t[len - 2].slots() <= 2 * list.len() + 1, "len {len}: {} slots", t[len - 2].slots())
                }
                Levels::Compact(_) => panic!("len {len}: compact where a half-full table fits"),
            }
            match &level[1].levels {
                Levels::Compact(l) => assert_eq!(matches!(l[len - 2].slots, Slots::Wide(_)), len >= 7, "len {len}"),
                Levels::Hashed(_) => panic!("len {len}: not compact within the budget"),
            }
        }
    }

    #[test]
    fn scores_are_log_count_minus_log_prefix_count() {
        let lists: Vec<Vec<(u64, u64)>> =
            vec![vec![(b'a' as u64, 3), (b'b' as u64, 200_000)], vec![(0x6162, 2)], vec![]];
        let refs: Vec<&dyn SortedCounts> = lists.iter().map(|l| l as &dyn SortedCounts).collect();
        let m = NgramModel::build(&refs, 200_003, 7, None, &ln).unwrap();
        let positions = (200_003.0f64 + 254.0).ln();
        assert_eq!(m.log_prob(1, b'a' as u64), Some(3f64.ln() - positions));
        assert_eq!(m.log_prob(1, b'z' as u64), Some(0.0 - positions));
        assert_eq!(m.log_prob(2, 0x6162), Some(2f64.ln() - 3f64.ln()));
        assert_eq!(m.log_prob(2, 0x6261), None);
        assert_eq!(m.log_prob(3, 0x616263), None);
        assert_eq!(m.sizes(), [256, 1, 0]);
        assert_eq!(m.fingerprint(), 7);
        let mut raw = [0.0; 3];
        assert_eq!(m.log_counts_ending_at(b"ab", 1, &mut raw), 2);
        assert_eq!(raw[..2], [200_000f64.ln(), 2f64.ln()]);
        assert_eq!(m.log_counts_ending_at(b"ba", 1, &mut raw), 1);
        assert!(m.bytes() < 64 + 8 * (DENSE as usize + 4096));
    }
}
