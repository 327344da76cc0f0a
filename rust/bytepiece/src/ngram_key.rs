//! How an n-gram is held: up to [`MAX_ORDER`] bytes packed into a `u64`, and which n-grams a
//! table pruned by `min_count` keeps. Shared by the counts, the count tables and the model.

/// The longest n-gram (and so the highest `order`) the trainer supports: 8 bytes fill a `u64`.
pub const MAX_ORDER: usize = 8;

/// Packs up to 8 bytes, first byte most significant.
#[inline]
pub fn pack(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |key, &b| (key << 8) | u64::from(b))
}

/// Whether an n-gram of `len` bytes counted `count` times is kept in a table pruned by
/// `min_count`: single bytes always are. The one pruning rule of the n-gram model.
#[inline]
pub fn keeps_ngram(len: usize, count: u64, min_count: u64) -> bool {
    len == 1 || count >= min_count
}
