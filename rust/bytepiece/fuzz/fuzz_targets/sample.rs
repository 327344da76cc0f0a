//! Sampling with arbitrary alpha and seeds: valid ids that round-trip, the same draw for the
//! same seed, and an error (never a panic) for a non-finite alpha.
#![no_main]

use arbitrary::Arbitrary;
use bytepiece::{EncodeOptions, Text};
use bytepiece_fuzz::{check_encoding, default_encoder};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    alpha: f64,
    seed: u64,
    add_eos: bool,
    text: String,
}

fuzz_target!(|input: Input| {
    let encoder = default_encoder();
    let options = EncodeOptions { add_eos: input.add_eos, alpha: input.alpha, ..Default::default() };
    if !input.alpha.is_finite() {
        assert!(encoder.encode(Text::Str(&input.text), &options, input.seed).is_err());
        return;
    }
    let ids = check_encoding(encoder, Text::Str(&input.text), &options, input.seed);
    let again = encoder.encode(Text::Str(&input.text), &options, input.seed).unwrap();
    assert_eq!(ids, again, "the same seed drew another segmentation");
});
