//! Encoding throughput of the core alone (no Python), on one thread:
//! `cargo run --release --example encode_speed -- MODEL TEXT_FILE [MB]`.
//! Documents are the file's blank-line-separated blocks.

use std::time::Instant;

use bytepiece::{model_io, EncodeOptions, Encoder, Text};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: encode_speed MODEL TEXT_FILE [MB]".into());
    }
    let encoder = Encoder::new(model_io::load(&args[1])?)?;
    let mut text = std::fs::read_to_string(&args[2])?;
    if let Some(mb) = args.get(3) {
        let cap = (mb.parse::<f64>()? * 1e6) as usize;
        let mut cut = cap.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let docs: Vec<&str> = text.split("\n\n").collect();
    let options = EncodeOptions::default();
    for round in 0..3 {
        let start = Instant::now();
        let mut ids = 0;
        for d in &docs {
            ids += encoder.encode(Text::Str(d), &options, 0)?.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("round {round}: {:.1} MB/s, {ids} ids, {:.3} s", text.len() as f64 / 1e6 / secs, secs);
    }
    Ok(())
}
