//! Loading a model: from arbitrary bytes, and from model files that the fuzzer builds item by
//! item around the 256 single bytes (odd ids, counts of 0 or near `u64::MAX`, special tokens,
//! duplicate or invalid pieces). Either an error or a model that saves and loads back the same
//! and encodes (never a panic).
#![no_main]

use std::fmt::Write;

use arbitrary::Arbitrary;
use bytepiece::{model_io, EncodeOptions, Encoder, Text};
use bytepiece_fuzz::check_encoding;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Item {
    piece: Vec<u8>,
    id: u16,
    count: u64,
    special: bool,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Items { items: Vec<Item>, drop_byte: Option<u8>, text: Vec<u8> },
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn check(json: &[u8], text: &[u8]) {
    let Ok(vocab) = model_io::parse(json, "fuzz") else { return };
    let saved = model_io::to_json(&vocab);
    let again = model_io::parse(saved.as_bytes(), "saved").expect("a saved model loads");
    assert_eq!(model_io::to_json(&again), saved, "save -> load -> save changed the model");
    let encoder = Encoder::new(vocab).expect("a valid vocabulary builds an encoder");
    check_encoding(&encoder, Text::Bytes(text), &EncodeOptions::default(), 0);
    check_encoding(&encoder, Text::Str(&String::from_utf8_lossy(text)), &EncodeOptions::default(), 0);
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(bytes) => check(&bytes, &bytes),
        Input::Items { items, drop_byte, text } => {
            let mut json = String::from("{");
            let mut id = 3;
            for b in 0..=255u8 {
                if Some(b) != drop_byte {
                    write!(json, "\"{}\": [{id}, \"\", 1],", base64(&[b])).unwrap();
                    id += 1;
                }
            }
            for item in items.iter().take(64) {
                let special = if item.special { "\"special\", " } else { "" };
                // mostly the next id (a valid model), sometimes any
                let item_id = if item.id & 15 == 0 { u32::from(item.id >> 4) } else { id };
                id += 1;
                write!(json, "\"{}\": [{item_id}, \"x\", {special}{}],", base64(&item.piece), item.count).unwrap();
            }
            json.pop();
            json.push('}');
            check(json.as_bytes(), &text);
        }
    }
});
