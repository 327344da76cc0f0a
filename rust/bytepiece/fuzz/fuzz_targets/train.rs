//! The trainer on small arbitrary corpora with arbitrary parameters, with or without a memory
//! bound: an error for invalid parameters, else valid vocabularies (no larger than asked, every
//! byte a piece) whose encoders round-trip the corpus; never a panic.
#![no_main]

use arbitrary::Arbitrary;
use bytepiece::monitor::Silent;
use bytepiece::{EncodeOptions, Encoder, Text, Trainer, TrainerConfig};
use bytepiece_fuzz::check_encoding;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    order: u8,
    sizes: Vec<u16>,
    max_piece_length: u8,
    min_count: u8,
    isolate_digits: bool,
    ensure_unicode: bool,
    /// Within a memory bound, with count tables of a few slots: every stage spills to runs.
    bounded: bool,
    special_tokens: Vec<String>,
    texts: Vec<String>,
}

fn ln(xs: &[f64]) -> bytepiece::Result<Vec<f64>> {
    Ok(xs.iter().map(|x| x.ln()).collect())
}

fuzz_target!(|input: Input| {
    let config = TrainerConfig {
        order: usize::from(input.order % 10),
        max_vocab_sizes: input.sizes.iter().take(3).map(|&s| usize::from(s % 1200)).collect(),
        max_piece_length: usize::from(input.max_piece_length),
        min_count: u64::from(input.min_count % 8),
        isolate_digits: input.isolate_digits,
        ensure_unicode: input.ensure_unicode,
        special_tokens: input.special_tokens.into_iter().take(3).collect(),
        count_memory_mb: if input.bounded { 0 } else { 64 },
        max_memory_mb: input.bounded.then_some(bytepiece::MIN_MEMORY_MB),
        temp_dir: None,
    };
    let Ok(config) = config.validated() else { return };
    let texts: Vec<&str> = input.texts.iter().map(String::as_str).take(64).collect();
    let trainer = Trainer::new(config.clone(), &ln, &Silent).expect("validated parameters");
    let vocabs = trainer.train(&texts).expect("training valid parameters succeeds");
    assert_eq!(vocabs.len(), config.max_vocab_sizes.len());
    for (vocab, &size) in vocabs.into_iter().zip(&config.max_vocab_sizes) {
        assert!(vocab.vocab_size() <= size, "{} ids for a size of {size}", vocab.vocab_size());
        let encoder = Encoder::new(vocab).expect("a trained vocabulary builds");
        for t in &texts {
            check_encoding(&encoder, Text::Str(t), &EncodeOptions::default(), 0);
        }
    }
});
