//! What the fuzz targets share: the bundled default model, and the properties every encoding
//! must have.

use std::io::Read;
use std::sync::OnceLock;

use bytepiece::{model_io, EncodeOptions, Encoder, Text};
use unicode_normalization::UnicodeNormalization;

/// The package's default model (63,956 ids), loaded once.
pub fn default_encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        let gz = include_bytes!("../../../../python/bytepiece_rs/data/default.model.gz");
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut json)
            .expect("the bundled model is gzip");
        Encoder::new(model_io::parse(&json, "default model").expect("the bundled model is valid"))
            .expect("the bundled model builds")
    })
}

/// Encodes `text` with `options` and checks what must hold for any input: the ids are in the
/// vocabulary and no special or reserved id is produced but `<bos>`/`<eos>` where asked; they
/// decode to the text (NFC for `str`); the offsets cover the original in order.
pub fn check_encoding(encoder: &Encoder, text: Text<'_>, options: &EncodeOptions, seed: u64) -> Vec<u32> {
    let ids = encoder.encode(text, options, seed).expect("valid options encode");
    let vocab = encoder.vocab();
    let body = &ids[options.add_bos as usize..ids.len() - options.add_eos as usize];
    assert!(body.iter().all(|&id| vocab.piece(id).is_some() && !vocab.is_special(id)));
    let decoded = encoder.decode(&ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()).unwrap();
    let (expected, len) = match text {
        Text::Str(s) => (s.nfc().collect::<String>().into_bytes(), s.chars().count()),
        Text::Bytes(b) => (b.to_vec(), b.len()),
    };
    assert_eq!(decoded, expected, "decode(encode(x)) != NFC(x)");
    let (same, spans) = encoder.encode_with_offsets(text, options, seed).unwrap();
    assert_eq!(same, ids, "encode_with_offsets gives other ids");
    let inner = &spans[options.add_bos as usize..spans.len() - options.add_eos as usize];
    if let (Some(first), Some(last)) = (inner.first(), inner.last()) {
        assert_eq!((first.0, last.1), (0, len), "spans do not cover the text");
    }
    for w in inner.windows(2) {
        assert!(w[0].0 <= w[1].0 && w[1].0 <= w[0].1 && w[0].1 <= w[1].1, "spans out of order: {w:?}");
    }
    ids
}
