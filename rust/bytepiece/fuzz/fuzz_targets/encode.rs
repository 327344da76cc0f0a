//! Encoding arbitrary bytes and strings with a real model: round trip, offsets, no panic.
#![no_main]

use bytepiece::{EncodeOptions, Text};
use bytepiece_fuzz::{check_encoding, default_encoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let encoder = default_encoder();
    let options = EncodeOptions { add_bos: data.first().is_some_and(|b| b & 1 == 1), ..Default::default() };
    check_encoding(encoder, Text::Bytes(data), &options, 0);
    let text = String::from_utf8_lossy(data);
    check_encoding(encoder, Text::Str(&text), &options, 0);
});
