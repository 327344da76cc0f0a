//! A read-only hash table from packed n-gram keys to 64-bit values, built for the trainer's
//! segmentation, which looks up several n-grams per byte of the corpus in tables far larger than
//! the CPU caches.
//!
//! Open addressing with linear probing in one flat array of `(key, value)` slots, at most half
//! full, so that a lookup almost always reads one cache line; and [`KeyTable::prefetch`], so
//! that a caller who knows its next keys (the segmentation does: they depend on the text only)
//! can have their lines on the way while it works on the current ones.

/// Marks an empty slot. A key equal to it is kept aside, so every `u64` is a valid key.
const EMPTY: u64 = u64::MAX;

/// Fibonacci hashing: the high bits of the key times 2^64 / φ.
#[inline]
fn slot_of(key: u64, shift: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct KeyTable {
    slots: Vec<(u64, u64)>,
    /// `64 - log2(slots.len())`.
    shift: u32,
    len: usize,
    /// The value of the key [`EMPTY`], if present.
    empty_key: Option<u64>,
}

impl KeyTable {
    /// A table holding `entries` (each key once).
    pub fn from_entries(entries: impl ExactSizeIterator<Item = (u64, u64)>) -> KeyTable {
        let capacity = (entries.len() * 2).next_power_of_two().max(2);
        let mut table = KeyTable {
            slots: vec![(EMPTY, 0); capacity],
            shift: 64 - capacity.trailing_zeros(),
            len: entries.len(),
            empty_key: None,
        };
        let mask = capacity - 1;
        for (key, value) in entries {
            if key == EMPTY {
                table.empty_key = Some(value);
                continue;
            }
            let mut i = slot_of(key, table.shift);
            while table.slots[i].0 != EMPTY {
                i = (i + 1) & mask;
            }
            table.slots[i] = (key, value);
        }
        table
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        if key == EMPTY {
            return self.empty_key;
        }
        let mask = self.slots.len() - 1;
        let mut i = slot_of(key, self.shift);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Asks the CPU to start loading the slot where a lookup of `key` begins (a hint: it changes
    /// no result).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let slot = &self.slots[slot_of(key, self.shift)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults and has no effect on memory; the address is of a
        // live slot.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((slot as *const (u64, u64)).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// Every `(key, value)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots
            .iter()
            .copied()
            .filter(|&(k, _)| k != EMPTY)
            .chain(self.empty_key.map(|v| (EMPTY, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_no_other() {
        let keys: Vec<u64> = (0..5000u64).map(|i| i.wrapping_mul(0x1234_5678_9ABC_DEF1) >> (i % 60)).chain([0, EMPTY]).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        let table = KeyTable::from_entries(unique.iter().map(|&k| (k, k ^ 7)));
        assert_eq!(table.len(), unique.len());
        for &k in &unique {
            table.prefetch(k);
            assert_eq!(table.get(k), Some(k ^ 7));
        }
        for k in 1..2000u64 {
            let probe = k.wrapping_mul(0x5555_1111_3333_7777);
            if unique.binary_search(&probe).is_err() {
                assert_eq!(table.get(probe), None);
            }
        }
        let mut all: Vec<(u64, u64)> = table.iter().collect();
        all.sort_unstable();
        assert_eq!(all, unique.iter().map(|&k| (k, k ^ 7)).collect::<Vec<_>>());
        let empty = KeyTable::from_entries(std::iter::empty());
        assert!(empty.is_empty());
        assert_eq!(empty.get(3), None);
        assert_eq!(empty.get(EMPTY), None);
    }
}
