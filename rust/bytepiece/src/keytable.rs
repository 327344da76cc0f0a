//! A hash table from packed n-gram keys to 64-bit values (counts, or the bits of log-probabilities),
//! built for the trainer, which adds or looks up one or several n-grams per byte of the corpus in
//! tables far larger than the CPU caches.
//!
//! Open addressing with linear probing in one flat array of `(key, value)` slots, at most three
//! quarters full, so that an access almost always touches one or two cache lines; and
//! [`KeyTable::prefetch`], so that a caller who knows its next keys (the trainer does: they
//! depend on the text only) can have their lines on the way while it works on the current ones.
//! The array may have any length (a slot is picked by scaling the hash, not masking it), so that
//! a table can fill a memory budget exactly.

/// Marks an empty slot. A key equal to it is kept aside, so every `u64` is a valid key. Zero, so
/// that a new table is zeroed memory, which the system gives without writing it.
const EMPTY: u64 = 0;

/// Fibonacci hashing, scaled to `slots`: the key times 2^64 / φ, as a fraction of 2^64, times
/// the number of slots.
#[inline]
pub(crate) fn slot_of(key: u64, slots: usize) -> usize {
    ((u128::from(key.wrapping_mul(0x9E37_79B9_7F4A_7C15)) * slots as u128) >> 64) as usize
}

/// The slots of a table with room for `n` keys: a power of two, at most three quarters full.
fn slots_for(n: usize) -> usize {
    (n + n / 3 + 1).next_power_of_two()
}

/// Asks the CPU to start loading `x` (a hint: it changes no result).
#[inline]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect on memory; the address is of a live value.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct KeyTable {
    slots: Vec<(u64, u64)>,
    len: usize,
    /// The value of the key [`EMPTY`], if present.
    empty_key: Option<u64>,
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable::with_capacity(0)
    }
}

impl KeyTable {
    /// An empty table with room for `n` keys before it grows.
    pub fn with_capacity(n: usize) -> KeyTable {
        KeyTable::with_slots(slots_for(n))
    }

    /// An empty table of `slots` slots (at least 16), which holds three quarters as many keys
    /// before it grows.
    pub fn with_slots(slots: usize) -> KeyTable {
        KeyTable { slots: vec![(EMPTY, 0); slots.max(16)], len: 0, empty_key: None }
    }

    /// The bytes of one slot.
    pub const SLOT_BYTES: usize = std::mem::size_of::<(u64, u64)>();

    /// How many more keys the table takes before it grows.
    pub fn room(&self) -> usize {
        (self.slots.len() * 3 / 4).saturating_sub(self.len)
    }

    /// Bytes of memory held.
    pub fn bytes(&self) -> usize {
        self.slots.len() * Self::SLOT_BYTES
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of `key` (not [`EMPTY`]): where it is, or the empty slot where it would go.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let n = self.slots.len();
        let mut i = slot_of(key, n);
        loop {
            let k = self.slots[i].0;
            if k == key || k == EMPTY {
                return i;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        if key == EMPTY {
            return self.empty_key;
        }
        let (k, v) = self.slots[self.find(key)];
        (k == key).then_some(v)
    }

    /// Adds `n` to the value of `key` (inserted with 0 if absent), with wrapping arithmetic.
    #[inline]
    pub fn add(&mut self, key: u64, n: u64) {
        if key == EMPTY {
            if self.empty_key.is_none() {
                self.len += 1;
            }
            let v = self.empty_key.get_or_insert(0);
            *v = v.wrapping_add(n);
            return;
        }
        let mut i = self.find(key);
        if self.slots[i].0 == EMPTY {
            if (self.len + 1) * 4 > self.slots.len() * 3 {
                self.reserve(1);
                i = self.find(key);
            }
            self.slots[i].0 = key;
            self.len += 1;
        }
        self.slots[i].1 = self.slots[i].1.wrapping_add(n);
    }

    /// Makes room for `additional` more keys without growing again.
    fn reserve(&mut self, additional: usize) {
        if (self.len + additional) * 4 <= self.slots.len() * 3 {
            return;
        }
        self.grow_to(slots_for(self.len + additional));
    }

    /// Grows to `slots` slots, if more than it has. Doubling grows the array in place (the
    /// system extends it without copying, see [`KeyTable::double`]); any other size moves the
    /// keys into a new array, both held meanwhile.
    pub fn grow_to(&mut self, slots: usize) {
        if slots == 2 * self.slots.len() {
            self.double();
        } else if slots > self.slots.len() {
            self.regrow(KeyTable::with_slots(slots));
        }
    }

    /// Doubles the array in place and moves each key to its slot in it.
    ///
    /// A table that doubles this way keeps its memory and touches only the new half fresh,
    /// where a new array would take twice the size fresh and hold both: fresh memory is what
    /// costs on the benchmark machines (`docs/performance.md`). The home slot of a key in the
    /// doubled array is twice its old one, or one more (the hash is scaled, not masked), so,
    /// from the end down, every key moves up, over slots that only keys already moved hold,
    /// and none is lost on the way. The few keys that would move down (near the start, pushed
    /// further than their home's index) or wrap around the end are set aside and put back last.
    fn double(&mut self) {
        let n = self.slots.len();
        self.slots.resize(2 * n, (EMPTY, 0));
        let mut aside = Vec::new();
        for i in 0..n {
            let key = self.slots[i].0;
            if key != EMPTY && (i < slot_of(key, n) || slot_of(key, 2 * n) < i) {
                aside.push(std::mem::replace(&mut self.slots[i], (EMPTY, 0)));
            }
        }
        for i in (0..n).rev() {
            let (key, value) = std::mem::replace(&mut self.slots[i], (EMPTY, 0));
            if key == EMPTY {
                continue;
            }
            let j = self.find(key);
            if j < slot_of(key, 2 * n) {
                aside.push((key, value)); // wrapped past the end, over keys not yet moved
            } else {
                self.slots[j] = (key, value);
            }
        }
        for (key, value) in aside {
            let j = self.find(key);
            self.slots[j] = (key, value);
        }
    }

    /// The number of slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Moves every key into `new`, which becomes this table.
    fn regrow(&mut self, new: KeyTable) {
        let old = std::mem::replace(self, new);
        self.empty_key = old.empty_key;
        self.len = old.len;
        for (key, value) in old.slots.into_iter().filter(|&(k, _)| k != EMPTY) {
            let i = self.find(key);
            self.slots[i] = (key, value);
        }
    }

    /// Asks the CPU to start loading the slot where an access to `key` begins (a hint: it
    /// changes no result).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        prefetch(&self.slots[slot_of(key, self.slots.len())]);
    }

    /// The `(key, value)` pairs by increasing key, sorted in the table's own array.
    pub fn into_sorted(mut self) -> SortedEntries {
        use rayon::slice::ParallelSliceMut;
        let mut n = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].0 != EMPTY {
                self.slots.swap(n, i);
                n += 1;
            }
        }
        // a table is never full: the key EMPTY (the smallest) has a free slot
        if let Some(v) = self.empty_key {
            self.slots[n] = (EMPTY, v);
            n += 1;
        }
        self.slots[..n].par_sort_unstable();
        SortedEntries { slots: self.slots, len: n }
    }

    /// Every `(key, value)`, in slot order (for the tests).
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots.iter().copied().filter(|&(k, _)| k != EMPTY).chain(self.empty_key.map(|v| (EMPTY, v)))
    }
}

/// A table's pairs sorted by key in its own array ([`KeyTable::into_sorted`]).
#[derive(Debug)]
pub struct SortedEntries {
    slots: Vec<(u64, u64)>,
    len: usize,
}

impl SortedEntries {
    /// The `(key, value)` pairs by increasing key.
    pub fn entries(&self) -> &[(u64, u64)] {
        &self.slots[..self.len]
    }

    /// An empty table in the same memory.
    pub fn into_table(mut self) -> KeyTable {
        self.slots.fill((EMPTY, 0));
        KeyTable { slots: self.slots, len: 0, empty_key: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_in_place_keeps_every_key_of_clusters_that_wrap_or_crowd_the_start() {
        // keys whose home is one of the last slots or the first of a small table: clusters that
        // wrap around the end and keys pushed far from home at the start
        let homes = |slots: usize, pick: &dyn Fn(usize) -> bool| {
            (1..u64::MAX).filter(move |&k| pick(slot_of(k, slots))).take(12).collect::<Vec<u64>>()
        };
        let mut keys = homes(64, &|h| h >= 62);
        keys.extend(homes(64, &|h| h == 0));
        let mut table = KeyTable::with_slots(64);
        for (i, &k) in keys.iter().enumerate() {
            table.add(k, i as u64 + 1);
        }
        for doublings in 0..4 {
            for (i, &k) in keys.iter().enumerate() {
                assert_eq!(table.get(k), Some(i as u64 + 1), "after {doublings} doublings");
            }
            assert_eq!(table.len(), keys.len());
            assert_eq!(table.iter().count(), keys.len());
            table.grow_to(2 * table.slots());
        }
        assert_eq!(table.slots(), 64 << 4);
        assert_eq!(table.get(u64::MAX), None);
    }

    #[test]
    fn adds_finds_every_key_and_no_other() {
        let keys: Vec<u64> =
            (0..5000u64).map(|i| i.wrapping_mul(0x1234_5678_9ABC_DEF1) >> (i % 60)).chain([0, u64::MAX]).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        // grows from empty, or not
        let mut table = KeyTable::default();
        for &k in &keys {
            table.prefetch(k);
            table.add(k, k ^ 7);
        }
        let mut doubled = KeyTable::with_capacity(keys.len());
        for &k in keys.iter().chain(&keys) {
            doubled.add(k, k ^ 7);
        }
        assert_eq!(table.len(), unique.len());
        assert_eq!(doubled.len(), unique.len());
        for &k in &unique {
            let n = keys.iter().filter(|&&x| x == k).count() as u64;
            assert_eq!(table.get(k), Some((k ^ 7).wrapping_mul(n)));
            assert_eq!(doubled.get(k), Some((k ^ 7).wrapping_mul(2 * n)));
        }
        for k in 1..2000u64 {
            let probe = k.wrapping_mul(0x5555_1111_3333_7777);
            if unique.binary_search(&probe).is_err() {
                assert_eq!(table.get(probe), None);
            }
        }
        let mut all: Vec<(u64, u64)> = table.iter().collect();
        all.sort_unstable();
        assert_eq!(all.iter().map(|e| e.0).collect::<Vec<_>>(), unique);
    }
}
