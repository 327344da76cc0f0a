//! The seeded random numbers that sampling draws (see [`crate::lattice::sample_path`]).
//!
//! Randomness never comes from global state: every call draws from its own generator, seeded
//! from a [`SeedSequence`] and, in a batch, from the document's index, so results depend only on
//! the seed and the order of calls, not on threads.

use std::sync::atomic::{AtomicU64, Ordering};

/// A small, fast generator (xoshiro256++), seeded through SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *word = splitmix64(x);
        }
        Rng { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform draw from `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of document `index` in a call seeded with `call_seed`.
#[inline]
pub fn document_seed(call_seed: u64, index: usize) -> u64 {
    splitmix64(call_seed ^ splitmix64(index as u64 ^ 0xD1B5_4A32_D192_ED03))
}

/// Hands out one seed per sampling call, in a reproducible sequence; safe to share between
/// threads (a call takes its seed with one atomic increment).
#[derive(Debug)]
pub struct SeedSequence {
    seed: AtomicU64,
    calls: AtomicU64,
}

impl SeedSequence {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> SeedSequence {
        SeedSequence { seed: AtomicU64::new(seed), calls: AtomicU64::new(0) }
    }

    /// A sequence seeded from the clock and the process id (for `seed=None`).
    pub fn from_entropy() -> SeedSequence {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        SeedSequence::new(splitmix64(nanos ^ (u64::from(std::process::id()) << 32)))
    }

    /// Restarts the sequence from `seed`: the calls that follow draw as after [`SeedSequence::new`].
    pub fn reset(&self, seed: u64) {
        self.seed.store(seed, Ordering::SeqCst);
        self.calls.store(0, Ordering::SeqCst);
    }

    /// The seed for the next call.
    pub fn next_seed(&self) -> u64 {
        let k = self.calls.fetch_add(1, Ordering::SeqCst);
        splitmix64(self.seed.load(Ordering::SeqCst) ^ splitmix64(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_uniform_enough() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.next_f64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_f64() && (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_ne!(Rng::new(8).next_u64(), Rng::new(7).next_u64());
    }

    #[test]
    fn seed_sequence_restarts() {
        let s = SeedSequence::new(3);
        let first: Vec<u64> = (0..3).map(|_| s.next_seed()).collect();
        s.reset(3);
        let again: Vec<u64> = (0..3).map(|_| s.next_seed()).collect();
        assert_eq!(first, again);
        assert_ne!(first[0], first[1]);
    }
}
