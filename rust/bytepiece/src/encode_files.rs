//! Encoding whole input streams (text or `.jsonl` files) to ids written in an [`IdFormat`], in
//! parallel and in input order.
//!
//! One thread reads each stream in blocks of whole lines ([`Blocks`]); `threads` workers split
//! a block into documents, check and encode them and format their ids; the calling thread hands
//! each block's output, in input order, to a sink (which writes it). Reading, splitting,
//! encoding and formatting all happen off the calling thread, so the only serial work per block
//! is a read and a write. At most a few blocks per worker are in flight: memory does not grow
//! with the input.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::blocks::{Blocks, Cut};
use crate::documents::{documents, DocumentFormat, LineError};
use crate::encoder::{EncodeOptions, Encoder};
use crate::error::{Error, Result};
use crate::id_format::IdFormat;
use crate::lattice::Lattice;
use crate::sampler::{document_seed, Rng};
use crate::text::Text;

/// A stream to encode, what its lines hold and the name its errors give.
pub struct Input {
    /// The name of the stream in messages (its path, or `-`).
    pub name: String,
    /// Its bytes.
    pub source: Box<dyn Read + Send>,
    /// What its lines hold.
    pub documents: DocumentFormat,
}

/// The output of one block of input: its documents' ids in the job's format.
#[derive(Debug, Default)]
pub struct Encoded {
    /// The formatted ids of the block's documents, one after the other.
    pub bytes: Vec<u8>,
    /// The number of ids of each document.
    pub lengths: Vec<u64>,
    /// The bytes of input the block held.
    pub input_bytes: u64,
    /// The bytes of its documents' text (UTF-8, before normalisation).
    pub text_bytes: u64,
}

/// What a run did and where its time went.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Documents encoded.
    pub documents: u64,
    /// Ids written.
    pub tokens: u64,
    /// Bytes of input read.
    pub input_bytes: u64,
    /// Bytes of the documents' text (UTF-8, before normalisation).
    pub text_bytes: u64,
    /// Seconds the reading thread spent reading (serial work).
    pub read_seconds: f64,
    /// Seconds the workers spent splitting, encoding and formatting, summed over workers.
    pub encode_seconds: f64,
    /// Seconds the calling thread spent in the sink (serial work).
    pub sink_seconds: f64,
    /// Seconds from start to end.
    pub wall_seconds: f64,
}

/// How to encode the documents of input streams.
pub struct EncodeFiles<'a> {
    /// The tokenizer.
    pub encoder: &'a Encoder,
    /// Leave empty documents out (instead of writing each as a document of no ids, or of just
    /// `<bos>` / `<eos>`).
    pub skip_empty: bool,
    /// `<bos>`, `<eos>`, sampling and the special tokens whose text becomes their id (the
    /// others are ordinary text: their policy's disallowed tokens are not checked).
    pub options: EncodeOptions<'a>,
    /// The seed of the draws when sampling: the ids depend on it and on the input only.
    pub seed: u64,
    /// How ids are written.
    pub format: IdFormat,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Bytes of input per block (about; a longer line makes a longer block).
    pub block: usize,
}

/// Bytes of input per block by default: a few milliseconds of encoding, and a write of a few
/// hundred kilobytes.
pub const BLOCK_BYTES: usize = 1 << 20;

/// A block of input handed to the workers.
struct Block {
    seq: usize,
    input: usize,
    data: Vec<u8>,
}

/// What a worker made of a block: its output and its number of lines, or its first bad line.
type Outcome = std::result::Result<(Encoded, usize), LineError>;

impl EncodeFiles<'_> {
    /// Encodes `inputs`, one after the other, and calls `sink` on each block's output in input
    /// order. An error (a bad line, named `NAME:LINE`, a failed read, or the sink's) stops the
    /// run; the sink has then received the output of every block before the one that failed.
    pub fn run(&self, inputs: Vec<Input>, mut sink: impl FnMut(Encoded) -> Result<()>) -> Result<Summary> {
        self.options.validate()?;
        let start = Instant::now();
        let threads = self.threads.max(1);
        let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
        let formats: Vec<DocumentFormat> = inputs.iter().map(|i| i.documents.clone()).collect();
        let in_flight = 2 * threads + 2;
        let (job_tx, job_rx) = sync_channel::<Block>(threads);
        let (done_tx, done_rx) = channel::<(usize, usize, Outcome, Duration)>();
        let (credit_tx, credit_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            credit_tx.send(()).map_err(|_| Error::Cancelled)?;
        }
        let mut summary = Summary::default();
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || self.read(inputs, &credit_rx, &job_tx));
            let job_rx = Arc::new(Mutex::new(job_rx));
            for _ in 0..threads {
                let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
                let formats = &formats;
                scope.spawn(move || self.work(formats, &job_rx, &done_tx));
            }
            // the workers hold the only receiver of jobs: when they stop, the reader stops too
            drop((job_rx, done_tx));
            let consumed = consume(done_rx, credit_tx, &names, &mut summary, &mut sink);
            let read = reader.join().unwrap_or_else(|_| Err(Error::InvalidArgument("the reader panicked".into())));
            consumed?;
            summary.read_seconds = read?.as_secs_f64();
            Ok(())
        })?;
        summary.wall_seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// The reading thread: blocks of every input, each sent once a credit allows (a credit comes
    /// back when the block's output has been consumed). Returns the time spent reading.
    fn read(&self, inputs: Vec<Input>, credits: &Receiver<()>, jobs: &SyncSender<Block>) -> Result<Duration> {
        let mut busy = Duration::ZERO;
        let mut seq = 0;
        let mut credit = false;
        for (input, Input { name, source, .. }) in inputs.into_iter().enumerate() {
            let mut blocks = Blocks::new(name, source, self.block, Cut::AfterNewline);
            loop {
                if !credit {
                    if credits.recv().is_err() {
                        return Ok(busy); // the consumer stopped
                    }
                    credit = true;
                }
                let t = Instant::now();
                let next = blocks.next_block()?;
                busy += t.elapsed();
                let Some(data) = next else { break };
                credit = false;
                if jobs.send(Block { seq, input, data }).is_err() {
                    return Ok(busy); // the workers stopped
                }
                seq += 1;
            }
        }
        Ok(busy)
    }

    /// A worker: encodes blocks until there are no more, or nobody to take the output.
    fn work(
        &self,
        formats: &[DocumentFormat],
        jobs: &Mutex<Receiver<Block>>,
        done: &Sender<(usize, usize, Outcome, Duration)>,
    ) {
        let mut lattice = Lattice::default();
        let mut ids = Vec::new();
        loop {
            let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(Block { seq, input, data }) = job else { return };
            let t = Instant::now();
            let outcome = self.encode_block(&data, &formats[input], seq, &mut lattice, &mut ids);
            if done.send((seq, input, outcome, t.elapsed())).is_err() {
                return;
            }
        }
    }

    /// Splits a block into documents, encodes them and formats their ids.
    fn encode_block(
        &self,
        data: &[u8],
        format: &DocumentFormat,
        seq: usize,
        lattice: &mut Lattice,
        ids: &mut Vec<u32>,
    ) -> Outcome {
        let (docs, lines) = documents(data, format, self.skip_empty)?;
        let mut out = Encoded {
            bytes: Vec::with_capacity(self.format.size_hint(data.len() / 3)),
            lengths: Vec::with_capacity(docs.len()),
            input_bytes: data.len() as u64,
            text_bytes: docs.iter().map(|d| d.len() as u64).sum(),
        };
        let block_seed = document_seed(self.seed, seq);
        for (i, doc) in docs.iter().enumerate() {
            ids.clear();
            let mut rng = Rng::new(document_seed(block_seed, i));
            self.encoder.append_document(Text::Str(doc), &self.options, &mut rng, lattice, ids);
            self.format.append(ids, &mut out.bytes);
            out.lengths.push(ids.len() as u64);
        }
        Ok((out, lines))
    }
}

/// The calling thread's part: hands each block's output to `sink` in input order, turning a bad
/// line into an error that names it, and gives a credit back for each block consumed.
fn consume(
    done: Receiver<(usize, usize, Outcome, Duration)>,
    credits: SyncSender<()>,
    names: &[String],
    summary: &mut Summary,
    sink: &mut impl FnMut(Encoded) -> Result<()>,
) -> Result<()> {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    let (mut input, mut lines_before) = (0, 0);
    for (seq, block_input, outcome, took) in done.iter() {
        summary.encode_seconds += took.as_secs_f64();
        pending.insert(seq, (block_input, outcome));
        while let Some((block_input, outcome)) = pending.remove(&next) {
            if block_input != input {
                (input, lines_before) = (block_input, 0);
            }
            let (encoded, lines) = outcome.map_err(|e| {
                Error::InvalidArgument(format!("{}:{}: {}", names[input], lines_before + e.line, e.message))
            })?;
            lines_before += lines;
            summary.documents += encoded.lengths.len() as u64;
            summary.tokens += encoded.lengths.iter().sum::<u64>();
            summary.input_bytes += encoded.input_bytes;
            summary.text_bytes += encoded.text_bytes;
            let t = Instant::now();
            sink(encoded)?;
            summary.sink_seconds += t.elapsed().as_secs_f64();
            next += 1;
            // the reader may have stopped (its input ended): a credit nobody takes is fine
            let _ = credits.try_send(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;
    use crate::vocab::{Entry, Vocab};

    fn tiny_vocab() -> Vocab {
        let pieces: [(&[u8], u64); 5] =
            [(b"line", 50), (b"li", 9), ("中文".as_bytes(), 20), (b"xx", 30), (b"text", 40)];
        Vocab::from_entries(entries_with(&pieces), "tiny").unwrap()
    }

    fn job<'a>(encoder: &'a Encoder, format: &str, threads: usize, block: usize) -> EncodeFiles<'a> {
        EncodeFiles {
            encoder,
            skip_empty: false,
            options: EncodeOptions::default(),
            seed: 0,
            format: IdFormat::by_name(format, encoder.vocab()).unwrap(),
            threads,
            block,
        }
    }

    fn input(name: &str, text: &[u8]) -> Input {
        Input {
            name: name.into(),
            source: Box::new(std::io::Cursor::new(text.to_vec())),
            documents: DocumentFormat::Lines,
        }
    }

    fn run(job: &EncodeFiles<'_>, inputs: Vec<Input>) -> Result<(Vec<u8>, Vec<u64>)> {
        let (mut bytes, mut lengths) = (vec![], vec![]);
        job.run(inputs, |e| {
            bytes.extend(e.bytes);
            lengths.extend(e.lengths);
            Ok(())
        })?;
        Ok((bytes, lengths))
    }

    fn corpus() -> Vec<u8> {
        (0..3000).map(|i| format!("line {i} 中文 text{}\n", "x".repeat(i % 50))).collect::<String>().into_bytes()
    }

    #[test]
    fn the_output_is_that_of_each_line_encoded_alone_whatever_the_threads_and_blocks() {
        let encoder = Encoder::new(tiny_vocab()).unwrap();
        let text = corpus();
        let mut want = vec![];
        for line in text.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n') {
            let ids = encoder.encode(Text::Str(std::str::from_utf8(line).unwrap()), &EncodeOptions::default(), 0);
            IdFormat::by_name("ids", encoder.vocab()).unwrap().append(&ids.unwrap(), &mut want);
        }
        for (threads, block) in [(1, 1 << 20), (2, 100), (4, 7), (3, 4096)] {
            let (got, lengths) = run(&job(&encoder, "ids", threads, block), vec![input("a", &text)]).unwrap();
            assert_eq!(got, want, "threads {threads} block {block}");
            assert_eq!(lengths.len(), 3000);
        }
    }

    #[test]
    fn sampling_depends_on_the_seed_and_input_only() {
        let encoder = Encoder::new(tiny_vocab()).unwrap();
        let text = corpus();
        let sampled = |threads, seed| {
            let mut j = job(&encoder, "uint32", threads, 4096);
            j.options.alpha = 0.1;
            j.seed = seed;
            run(&j, vec![input("a", &text)]).unwrap()
        };
        assert_eq!(sampled(1, 7), sampled(3, 7));
        assert_ne!(sampled(2, 7), sampled(2, 8));
    }

    #[test]
    fn a_bad_line_is_named_by_its_input_and_line_after_the_blocks_before_it() {
        let encoder = Encoder::new(tiny_vocab()).unwrap();
        let mut second = b"ok\n".repeat(1000);
        second.extend_from_slice(b"bad \xff\nok\n");
        let mut written = 0;
        let err = job(&encoder, "ids", 2, 64)
            .run(vec![input("first.txt", b"a\nb\n"), input("second.txt", &second)], |e| {
                written += e.lengths.len();
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert_eq!(err, "second.txt:1001: not valid UTF-8 (at byte 4)");
        assert!((2..1002).contains(&written), "{written}");
    }

    #[test]
    fn a_failing_sink_stops_the_run() {
        let encoder = Encoder::new(tiny_vocab()).unwrap();
        let text = corpus();
        let mut calls = 0;
        let err = job(&encoder, "ids", 2, 256).run(vec![input("a", &text)], |_| {
            calls += 1;
            if calls == 3 {
                Err(Error::Cancelled)
            } else {
                Ok(())
            }
        });
        assert!(matches!(err, Err(Error::Cancelled)));
        assert_eq!(calls, 3);
    }

    #[test]
    fn special_tokens_bos_eos_and_empty_documents() {
        use crate::special::{Selection, SpecialPolicy, SpecialTokens};
        use crate::vocab::{BOS_ID, EOS_ID};
        let mut vocab_entries = tiny_vocab().entries();
        let next = vocab_entries.len() as u64 + 3;
        vocab_entries.push(Entry::special("<sep>", next));
        let encoder = Encoder::new(Vocab::from_entries(vocab_entries, "t").unwrap()).unwrap();
        let sep = next as u32;
        let mut j = job(&encoder, "uint32", 2, 1 << 20);
        j.options.add_bos = true;
        j.options.add_eos = true;
        let sep_only = SpecialTokens::select(encoder.vocab(), Selection::Named(&["<sep>"]), "allowed").unwrap();
        let policy = SpecialPolicy::allowing(sep_only);
        j.options.special = &policy;
        let (bytes, lengths) = run(&j, vec![input("a", b"ab<sep>c\n\n")]).unwrap();
        let ids: Vec<u32> = bytes.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let plain = |t: &str| encoder.encode(Text::Str(t), &EncodeOptions::default(), 0).unwrap();
        let want: Vec<u32> = [vec![BOS_ID], plain("ab"), vec![sep], plain("c"), vec![EOS_ID, BOS_ID, EOS_ID]].concat();
        assert_eq!(ids, want);
        assert_eq!(lengths, [want.len() as u64 - 2, 2]);
        j.skip_empty = true;
        assert_eq!(run(&j, vec![input("a", b"ab<sep>c\n\n")]).unwrap().1.len(), 1);
    }
}
