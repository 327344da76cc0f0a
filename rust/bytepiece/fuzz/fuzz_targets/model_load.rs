//! Loading a model from arbitrary bytes: an error or a model that saves and loads back the same,
//! and encodes (never a panic).
#![no_main]

use bytepiece::{model_io, EncodeOptions, Encoder, Text};
use bytepiece_fuzz::check_encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(vocab) = model_io::parse(data, "fuzz") else { return };
    let json = model_io::to_json(&vocab);
    let again = model_io::parse(json.as_bytes(), "saved").expect("a saved model loads");
    assert_eq!(model_io::to_json(&again), json, "save -> load -> save changed the model");
    let encoder = Encoder::new(vocab).expect("a valid vocabulary builds an encoder");
    check_encoding(&encoder, Text::Bytes(data), &EncodeOptions::default(), 0);
});
