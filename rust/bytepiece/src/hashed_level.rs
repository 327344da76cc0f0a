//! One length of the n-gram model's hashed form: the n-grams of `len` bytes and the logarithms
//! of their counts, in an open-addressing table looked up once per byte of the corpus.
//!
//! The n-grams of one length have few distinct counts (a few thousand in 100 MB of text), so a
//! slot need not hold a logarithm: it packs the key (`8 * len` bits) and the rank of its count
//! among the level's distinct counts in one `u64`, and the level keeps the logarithm of each
//! distinct count in a small array that stays in cache. That halves the table against a
//! `(key, logarithm)` pair per slot ([`KeyTable`]), and with it the memory the system must
//! provide and the cache and TLB misses of a look-up. A level whose key and rank do not fit in 64
//! bits (n-grams of 7 or 8 bytes, or too many distinct counts) keeps the pairs.

use rayon::prelude::*;

use crate::keytable::{prefetch, slot_of, KeyTable};

/// `n` zeroed slots whose pages every thread of the pool has faulted in. On some machines memory
/// new to the process is slow to come by (on the benchmark machines, 15 ms per MB of huge pages:
/// `docs/performance.md`), and a level is then filled by one thread at random: the faults are
/// shared out first, by pages.
fn faulted_in(n: usize) -> Vec<u64> {
    let mut slots = vec![0u64; n];
    slots.par_chunks_mut(4096 / 8).for_each(|page| {
        // SAFETY: a write of the value already there, through a valid pointer; volatile, so that
        // it is not dropped as a store of zero to zeroed memory
        unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 0) }
    });
    slots
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) enum HashedLevel {
    /// Key and rank in one `u64` (0: an empty slot; ranks start at 1).
    Packed {
        slots: Vec<u64>,
        /// The bits of the rank: `64 - 8 * len`.
        rank_bits: u32,
        /// The logarithm of each distinct count, by rank (`logs[0]` is never read).
        logs: Vec<f64>,
        len: usize,
    },
    /// Key -> the bits of the logarithm.
    Pairs(KeyTable),
}

impl HashedLevel {
    /// Whether keys of `len` bytes and `distinct` distinct counts pack into one `u64`.
    pub(crate) fn packs(len: usize, distinct: usize) -> bool {
        8 * len < 64 && distinct < 1usize << (64 - 8 * len)
    }

    /// An empty packed level of `slots` slots for keys of `len` bytes (see
    /// [`HashedLevel::packs`]) whose counts have the logarithms `logs` (by rank, from 1).
    pub(crate) fn packed(len: usize, slots: usize, logs: Vec<f64>) -> HashedLevel {
        debug_assert!(HashedLevel::packs(len, logs.len()));
        HashedLevel::Packed { slots: faulted_in(slots.max(16)), rank_bits: 64 - 8 * len as u32, logs, len: 0 }
    }

    /// Adds `key` with `value`: the rank of its count (packed) or the bits of its logarithm
    /// (pairs). A key is added once.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, value: u64) {
        match self {
            HashedLevel::Packed { slots, rank_bits, len, .. } => {
                let n = slots.len();
                let mut i = slot_of(key, n);
                while slots[i] != 0 {
                    i = if i + 1 == n { 0 } else { i + 1 };
                }
                slots[i] = key << *rank_bits | value;
                *len += 1;
            }
            HashedLevel::Pairs(table) => table.add(key, value),
        }
    }

    /// The logarithm of the count of `key`, if kept.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<f64> {
        match self {
            HashedLevel::Packed { slots, rank_bits, logs, .. } => {
                let n = slots.len();
                let mut i = slot_of(key, n);
                loop {
                    let slot = slots[i];
                    if slot == 0 {
                        return None;
                    }
                    if slot >> *rank_bits == key {
                        return Some(logs[(slot & ((1 << *rank_bits) - 1)) as usize]);
                    }
                    i = if i + 1 == n { 0 } else { i + 1 };
                }
            }
            HashedLevel::Pairs(table) => table.get(key).map(f64::from_bits),
        }
    }

    /// Asks the CPU to start loading the slot where a look-up of `key` begins (a hint).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        match self {
            HashedLevel::Packed { slots, .. } => prefetch(&slots[slot_of(key, slots.len())]),
            HashedLevel::Pairs(table) => table.prefetch(key),
        }
    }

    /// Number of n-grams.
    pub(crate) fn len(&self) -> usize {
        match self {
            HashedLevel::Packed { len, .. } => *len,
            HashedLevel::Pairs(table) => table.len(),
        }
    }

    /// Bytes of memory held.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            HashedLevel::Packed { slots, logs, .. } => 8 * (slots.len() + logs.len()),
            HashedLevel::Pairs(table) => table.bytes(),
        }
    }

    /// The number of slots.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        match self {
            HashedLevel::Packed { slots, .. } => slots.len(),
            HashedLevel::Pairs(table) => table.slots(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_of_every_fitting_length_are_found_with_their_logarithm() {
        for len in 1..=7usize {
            let mask = u64::MAX >> (64 - 8 * len);
            let logs = vec![f64::NAN, 0.5, 1.5, 2.5];
            assert!(HashedLevel::packs(len, logs.len()), "len {len}");
            let mut level = HashedLevel::packed(len, 64, logs);
            let keys = [0, 1, mask, mask - 1, 0x1234 & mask];
            for (r, &k) in keys.iter().enumerate() {
                level.insert(k, 1 + r as u64 % 3);
            }
            assert_eq!(level.len(), keys.len());
            for (r, &k) in keys.iter().enumerate() {
                assert_eq!(level.get(k), Some([0.5, 1.5, 2.5][r % 3]), "len {len} key {k:x}");
            }
            assert_eq!(level.get(2), None);
        }
        assert!(!HashedLevel::packs(8, 2) && !HashedLevel::packs(6, 1 << 16) && HashedLevel::packs(6, (1 << 16) - 1));
    }
}
