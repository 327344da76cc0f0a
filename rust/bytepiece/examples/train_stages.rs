//! Times each stage of training on a text file (one text per line):
//! `cargo run --release --example train_stages -- FILE [MB] [THREADS] [VOCAB] [MAX_MEMORY_MB]`.

use std::sync::Mutex;
use std::time::Instant;

use bytepiece::monitor::{Monitor, Unit};
use bytepiece::{Trainer, TrainerConfig};

/// Prints the time each stage took, and the resident memory at its end and the peak so far.
struct Timer(Mutex<(String, Instant)>);

/// `VmRSS` and `VmHWM` of this process, in MB (0 where /proc is not there).
fn memory_mb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

impl Monitor for Timer {
    fn check(&self) -> bytepiece::Result<()> {
        Ok(())
    }
    fn stage(&self, name: &str, _total: Option<u64>, _unit: Unit) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (rss, peak) = memory_mb();
        eprintln!("{:<14} {:7.2} s  rss {rss} MB, peak {peak} MB", s.0, s.1.elapsed().as_secs_f64());
        *s = (name.to_string(), Instant::now());
    }
}

fn main() -> bytepiece::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: train_stages FILE [MB] [THREADS] [VOCAB] [MAX_MEMORY_MB]");
    let mb: usize = args.get(2).map_or(25, |s| s.parse().expect("MB"));
    let threads: usize = args.get(3).map_or(2, |s| s.parse().expect("THREADS"));
    let vocab: usize = args.get(4).map_or(32_000, |s| s.parse().expect("VOCAB"));
    let max_memory_mb: Option<usize> = args.get(5).map(|s| s.parse().expect("MAX_MEMORY_MB"));
    let text = std::fs::read_to_string(path).map_err(|e| bytepiece::Error::io(path, e))?;
    let mut end = text.len().min(mb << 20);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let texts: Vec<&str> = text[..end].lines().collect();
    let config = TrainerConfig { max_vocab_sizes: vec![vocab], max_memory_mb, ..TrainerConfig::default() };
    let ln = |xs: &[f64]| -> bytepiece::Result<Vec<f64>> { Ok(xs.iter().map(|x| x.ln()).collect()) };
    let timer = Timer(Mutex::new(("start".into(), Instant::now())));
    let t0 = Instant::now();
    let vocabs =
        bytepiece::parallel::run_with_threads(Some(threads), || Trainer::new(config, &ln, &timer)?.train(&texts))??;
    timer.stage("", None, Unit::Items);
    eprintln!("total          {:7.2} s, {} pieces", t0.elapsed().as_secs_f64(), vocabs[0].len());
    Ok(())
}

#[global_allocator]
static GLOBAL: bytepiece::hugepages::HugePageAlloc = bytepiece::hugepages::HugePageAlloc;
