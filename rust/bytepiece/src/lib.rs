//! # bytepiece
//!
//! The core of bytepiece-rs: BytePiece's byte-level Unigram tokenizer with the original's model
//! format and its exact segmentations, with no Python in it.
//!
//! ```no_run
//! use bytepiece::{model_io, EncodeOptions, Encoder, Text};
//! let encoder = Encoder::new(model_io::load("bytepiece_80k.model")?)?;
//! let ids = encoder.encode(Text::Str("Hello, 世界"), &EncodeOptions::default(), 0)?;
//! # Ok::<(), bytepiece::Error>(())
//! ```

#![warn(missing_docs)]

pub mod atomic;
mod blocks;
pub mod corpus;
mod digits;
pub mod documents;
pub mod encode_files;
mod encoder;
mod error;
mod hashed_level;
pub mod hugepages;
pub mod id_format;
mod keytable;
mod kmerge;
mod lattice;
mod matcher;
pub mod megatron;
pub mod model;
pub mod model_io;
pub mod monitor;
mod ngram;
mod ngram_key;
pub mod normalize;
mod offsets;
pub mod parallel;
pub mod prune;
mod runs;
mod sampler;
mod segment;
pub mod special;
pub mod table;
mod text;
mod trainer;
pub mod vocab;
pub mod writeback;

pub use encoder::{EncodeOptions, Encoder, Span};
pub use error::{Error, Result};
pub use lattice::Lattice;
/// The thread-pool crate the core runs on (for callers that add their own parallel work).
pub use rayon;
pub use sampler::SeedSequence;
pub use text::Text;
pub use trainer::{Trainer, TrainerConfig, MIN_MEMORY_MB};
pub use vocab::{Entry, Vocab};

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// Natural logarithms with Rust's `f64::ln`.
    pub(crate) fn ln(xs: &[f64]) -> crate::Result<Vec<f64>> {
        Ok(xs.iter().map(|x| x.ln()).collect())
    }

    /// A linear congruential generator from `seed`: each call steps it and gives its state.
    pub(crate) fn lcg(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed
        }
    }

    /// A xorshift generator from `seed` (not 0): each call steps it and gives its state.
    pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }
}
