//! Vocabulary training, stage by stage, as the original's `Trainer.train`: count byte n-grams,
//! prune them into an n-gram model, segment every text with it and count the pieces, then prune
//! the pieces into one vocabulary per requested size.
//!
//! Every stage works on batches of texts on the current rayon pool and adds into sums, so the
//! result does not depend on the number of threads or on how the texts are batched. Texts are
//! NFC-normalised and cut into chunks as in [`normalize::split_for_training`].
//!
//! Across machines, each stage is a map over shards of the corpus whose results are count tables
//! ([`crate::table`]) merged by sums: [`Trainer::ngram_table`] per shard, then
//! [`Trainer::model_table`] over them (merged and pruned: the table broadcast to build the model
//! with [`Trainer::model_of`]), [`Trainer::piece_table`] per shard, and [`Trainer::prune_tables`]
//! over them. [`Trainer::train`] takes the same path in one process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::{model_bytes, NgramModel};
use crate::monitor::{bytes_of, Monitor, Unit};
use crate::ngram::{check_model_fits, merge_list, KeptCounts, NgramCounts};
use crate::ngram_key::MAX_ORDER;
use crate::normalize::{self, nfc};
use crate::prune::{self, LogFn, PieceCounter, PruneConfig, MIN_VOCAB_SIZE};
use crate::runs::{merge_runs, Run, Scratch};
use crate::segment::{segment, Workspace};
use crate::table::{self, Hasher, Kind, NgramList, NgramTable};
use crate::vocab::Vocab;

/// The trainer's parameters, with the original's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    /// Longest n-gram of the language model, in bytes (1 to 8).
    pub order: usize,
    /// The vocabulary sizes to produce (reserved ids included), largest first.
    pub max_vocab_sizes: Vec<usize>,
    /// Longest piece, in bytes.
    pub max_piece_length: usize,
    /// Least count of an n-gram (of 2 bytes or more) and of a piece (of 2 bytes or more).
    pub min_count: u64,
    /// Make every Unicode decimal digit a chunk of its own.
    pub isolate_digits: bool,
    /// Never start a piece on a UTF-8 continuation byte.
    pub ensure_unicode: bool,
    /// Special tokens, reserved after `<pad>`, `<bos>` and `<eos>` (ids from 3, before the
    /// learned pieces); `max_vocab_sizes` count them.
    pub special_tokens: Vec<String>,
    /// Memory for the n-gram count tables (and, with `max_memory_mb`, the piece counters), in
    /// MB; past it, counts are spilled to disk as sorted runs (same result, bounded memory).
    pub count_memory_mb: usize,
    /// A bound on the memory of every stage, in MB (`None`: no bound, the fastest). Everything
    /// that grows with the corpus is then spilled to sorted runs on disk and merged, and the
    /// n-gram model is checked to fit as soon as the counts show it cannot; the model is the
    /// same. See [`Trainer::shares`] for how it is shared.
    pub max_memory_mb: Option<usize>,
    /// The folder for temporary files (`None`: the system's); each training makes a folder of
    /// its own in it, removed at the end whatever happens.
    pub temp_dir: Option<PathBuf>,
}

/// The least `max_memory_mb`.
pub const MIN_MEMORY_MB: usize = 64;

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            order: 6,
            max_vocab_sizes: vec![10_000],
            max_piece_length: 36,
            min_count: 2,
            isolate_digits: false,
            ensure_unicode: true,
            special_tokens: Vec::new(),
            count_memory_mb: 4096,
            max_memory_mb: None,
            temp_dir: None,
        }
    }
}

impl TrainerConfig {
    /// Checks every parameter and sorts the sizes, largest first.
    pub fn validated(mut self) -> Result<TrainerConfig> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !(1..=MAX_ORDER).contains(&self.order) {
            return bad(format!("order must be between 1 and {MAX_ORDER}, got {}", self.order));
        }
        if self.max_vocab_sizes.is_empty() {
            return bad("max_vocab_size must name at least one size".into());
        }
        prune::check_special_tokens(&self.special_tokens)?;
        let least = MIN_VOCAB_SIZE + self.special_tokens.len();
        if let Some(s) = self.max_vocab_sizes.iter().find(|&&s| s < least) {
            return bad(format!(
                "max_vocab_size must be at least {least} (3 reserved ids, {} special tokens and the 256 bytes), \
                 got {s}",
                self.special_tokens.len()
            ));
        }
        if self.max_piece_length == 0 {
            return bad("max_piece_length must be at least 1".into());
        }
        if let Some(m) = self.max_memory_mb.filter(|&m| m < MIN_MEMORY_MB) {
            return bad(format!("max_memory_mb must be at least {MIN_MEMORY_MB}, got {m}"));
        }
        if let Some(dir) = &self.temp_dir {
            if !dir.is_dir() {
                return bad(format!("temp_dir {} is not an existing folder", dir.display()));
            }
        }
        self.max_vocab_sizes.sort_unstable_by(|a, b| b.cmp(a));
        Ok(self)
    }
}

/// The stages of training; see the module documentation.
pub struct Trainer<'a> {
    config: TrainerConfig,
    ln: LogFn<'a>,
    monitor: &'a dyn Monitor,
    scratch: Arc<Scratch>,
}

/// How `max_memory_mb` is shared, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// The n-gram count tables of all threads (stage 1).
    pub counts: usize,
    /// The n-gram model (stages 2 and 3).
    pub model: usize,
    /// The model and the piece counters of all threads together (stage 3).
    pub pieces: usize,
}

impl<'a> Trainer<'a> {
    /// A trainer computing logarithms with `ln` (the bindings pass NumPy's, as the original uses)
    /// and reporting to `monitor`, which may stop the work between batches.
    pub fn new(config: TrainerConfig, ln: LogFn<'a>, monitor: &'a dyn Monitor) -> Result<Trainer<'a>> {
        let config = config.validated()?;
        let scratch = Arc::new(Scratch::new(config.temp_dir.as_deref()));
        Ok(Trainer { config, ln, monitor, scratch })
    }

    /// How `max_memory_mb` is shared between the stages (`None` without a bound): the rest of
    /// it, and the 15% above it that the bound allows, go to text buffers, the allocator's
    /// slack and the pieces kept by the pruning.
    pub fn shares(&self) -> Option<Shares> {
        self.config.max_memory_mb.map(|mb| {
            let m = mb << 20;
            Shares { counts: m / 4 * 3, model: m / 8 * 5, pieces: m / 4 * 3 }
        })
    }

    /// The `max_memory_mb` whose share leaves the n-gram model `bytes` (see [`Trainer::shares`]).
    fn memory_mb_for_model(bytes: usize) -> usize {
        (bytes / 5 * 8).div_ceil(1 << 20)
    }

    /// The monitor the stages report to.
    pub fn monitor(&self) -> &dyn Monitor {
        self.monitor
    }

    /// Stage 1's accumulator of n-gram counts, one per thread, each within its share of
    /// `count_memory_mb`.
    pub fn ngram_counter(&self) -> PerThread<NgramCounts> {
        let slots = PerThread::<()>::slots();
        let order = self.config.order;
        // the order was validated
        PerThread::new(|| {
            match self.shares() {
                Some(shares) => {
                    let bytes = (shares.counts / slots).min((self.config.count_memory_mb << 20) / slots);
                    NgramCounts::with_memory(order, bytes, self.scratch.clone(), self.config.min_count)
                }
                // about 40 bytes of hash table per entry, with its growth
                None => NgramCounts::with_budget(
                    order,
                    (self.config.count_memory_mb << 20) / 40 / slots,
                    self.scratch.clone(),
                ),
            }
            .unwrap_or_else(|_| unreachable!())
        })
    }

    /// Stage 1: adds the n-grams of `texts` to `counter`, in parallel.
    pub fn count_ngrams(&self, counter: &PerThread<NgramCounts>, texts: &[&str]) -> Result<()> {
        let isolate = self.config.isolate_digits;
        texts.par_iter().try_for_each(|text| {
            let text = nfc(text);
            counter.with(|counts| {
                normalize::split_for_training(&text, isolate).try_for_each(|chunk| counts.add_chunk(chunk))
            })
        })?;
        if let Some(shares) = self.shares() {
            // counts only grow: a model that does not fit already never will
            counter
                .map(|c| check_model_fits(c.least_kept(), shares.model, false, &Self::memory_mb_for_model))
                .into_iter()
                .collect::<Result<()>>()?;
        }
        self.monitor.advance(bytes_of(texts));
        self.monitor.check()
    }

    /// The fingerprint of the parameters that n-gram counts depend on, which their tables carry.
    pub fn ngram_tag(&self) -> u64 {
        Hasher::default()
            .word(Kind::Ngrams as u64)
            .word(self.config.order as u64)
            .word(u64::from(self.config.isolate_digits))
            .finish()
    }

    /// The fingerprint of the parameters and n-gram model that piece counts depend on, which
    /// their tables carry.
    pub fn piece_tag(&self, model: &NgramModel) -> u64 {
        Hasher::default()
            .word(Kind::Pieces as u64)
            .word(model.fingerprint())
            .word(u64::from(self.config.isolate_digits))
            .word(u64::from(self.config.ensure_unicode))
            .finish()
    }

    /// Stage 1's result for one shard of a corpus: the complete (unpruned) n-gram counts as a
    /// serialised table, to be merged with the other shards' ([`Trainer::model_table`]). Within
    /// `max_memory_mb`, the counts go to runs on disk and are merged from there into the table,
    /// so that no list of them is held beside it.
    pub fn ngram_table(&self, counter: PerThread<NgramCounts>) -> Result<Vec<u8>> {
        let tag = self.ngram_tag();
        if self.shares().is_none() {
            return Ok(NgramCounts::table_of(counter.into_inner(), tag, 0)?.to_bytes());
        }
        let (runs, positions) = NgramCounts::into_runs(counter.into_inner())?;
        table::ngram_bytes(runs.len(), tag, 0, positions, |j, push| merge_list(&runs[j], j + 1, 0, push))
    }

    /// Stage 2 over serialised shard tables ([`Trainer::ngram_table`]'s, or merges of them):
    /// merged and pruned by `min_count` in one streaming pass into the serialised table that
    /// the n-gram model is built from ([`Trainer::model_of`]); small enough to broadcast.
    pub fn model_table(&self, tables: &[&[u8]]) -> Result<Vec<u8>> {
        if tables.iter().any(|t| table::ngram_tag_of(t).is_some_and(|tag| tag != self.ngram_tag())) {
            return Err(Error::InvalidArgument(
                "the n-gram table was counted with other parameters (order, isolate_digits)".into(),
            ));
        }
        table::merge_serialised(tables, self.config.min_count.max(1), "n-gram table")
    }

    /// The n-gram model of a serialised pruned table made with this trainer's parameters
    /// ([`Trainer::model_table`]'s). Within `max_memory_mb`, the table is read in place (not
    /// decoded beside the model) and the model built within its share (held compactly if it
    /// must be), or refused, saying what would fit; without, the table is decoded once, which
    /// builds faster than reading it in place for each pass.
    pub fn model_of(&self, table: &[u8]) -> Result<NgramModel> {
        let origin = "n-gram model table";
        let made_here = |tag: u64, min_count: u64| {
            if tag != self.ngram_tag() || min_count != self.config.min_count.max(1) {
                return Err(Error::InvalidArgument(
                    "the n-gram model table was made with other parameters (order, isolate_digits, min_count)".into(),
                ));
            }
            Ok(())
        };
        let ln = |xs: &[f64]| (self.ln)(xs);
        let Some(budget) = self.shares().map(|s| s.model) else {
            let table = NgramTable::from_bytes(table, origin)?;
            made_here(table.tag(), table.min_count())?;
            return NgramModel::from_table(table, &ln);
        };
        let view = NgramTable::view(table, origin)?;
        made_here(view.tag(), view.min_count())?;
        let ngrams: usize = view.lists()[1..].iter().map(NgramList::len).sum();
        if model_bytes(ngrams) > budget {
            // counts of the kept n-grams, for what would fit
            let mut kept = KeptCounts::new(view.min_count());
            for list in &view.lists()[1..] {
                list.for_each(|_, c| kept.add(c))?;
            }
            check_model_fits(&kept, budget, true, &Self::memory_mb_for_model)?;
        }
        NgramModel::from_view(&view, Some(budget), &ln)
    }

    /// Stage 2: the n-gram model of the counts, through the same pruned table as
    /// [`Trainer::model_table`] makes of merged shards.
    /// Within `max_memory_mb`, the counts are merged from runs on disk into the model, which is
    /// checked to fit first.
    pub fn ngram_model(&self, counter: PerThread<NgramCounts>) -> Result<NgramModel> {
        self.monitor.stage("Prune Ngrams", None, Unit::Items);
        let (tag, min_count) = (self.ngram_tag(), self.config.min_count.max(1));
        if let Some(shares) = self.shares() {
            let parts = counter.into_inner();
            let ln = |xs: &[f64]| (self.ln)(xs);
            return NgramCounts::model_of(
                parts,
                &self.scratch,
                tag,
                min_count,
                shares.model,
                &Self::memory_mb_for_model,
                &ln,
            );
        }
        NgramModel::from_table(NgramCounts::table_of(counter.into_inner(), tag, min_count)?, &|xs| (self.ln)(xs))
    }

    /// Stage 3's accumulator of piece counts, one per thread; within `max_memory_mb`, each
    /// within its share of what `model` leaves.
    pub fn piece_counter(&self, model: &NgramModel) -> PerThread<(PieceCounter, Workspace)> {
        let slots = PerThread::<()>::slots();
        PerThread::new(|| {
            let counter = match self.shares() {
                Some(shares) => {
                    let left = shares.pieces.saturating_sub(model.bytes()).max(shares.pieces / 8);
                    let bytes = left.min(self.config.count_memory_mb << 20) / slots;
                    PieceCounter::with_memory(bytes, self.scratch.clone())
                }
                None => PieceCounter::default(),
            };
            (counter, Workspace::default())
        })
    }

    /// Stage 3: segments `texts` with the model and adds the pieces to `counter`, in parallel.
    pub fn count_pieces(
        &self,
        model: &NgramModel,
        counter: &PerThread<(PieceCounter, Workspace)>,
        texts: &[&str],
    ) -> Result<()> {
        let TrainerConfig { isolate_digits, ensure_unicode, .. } = self.config;
        texts.par_iter().try_for_each(|text| {
            let text = nfc(text);
            counter.with(|(counts, ws)| {
                normalize::split_for_training(&text, isolate_digits).try_for_each(|chunk| {
                    counts.make_room(chunk.len())?;
                    segment(model, chunk, ensure_unicode, ws, |p| counts.add(p));
                    Ok(())
                })
            })
        })?;
        self.monitor.advance(bytes_of(texts));
        self.monitor.check()
    }

    /// Stage 3's result (for one shard, or the whole corpus): the piece counts as a table
    /// tagged with the model, serialised, to be merged with other shards'
    /// ([`crate::table::merge_serialised`]). Within `max_memory_mb`, the counts go to runs on
    /// disk and are merged from there into the table.
    pub fn piece_table(&self, model: &NgramModel, counter: PerThread<(PieceCounter, Workspace)>) -> Result<Vec<u8>> {
        let tag = self.piece_tag(model);
        if self.shares().is_none() {
            let parts = Self::piece_counters(counter);
            return table::piece_bytes(tag, 0, |push| PieceCounter::for_each_merged(parts, push));
        }
        let runs = Self::piece_runs(counter)?;
        table::piece_bytes(tag, 0, |push| merge_runs(&runs, |p, c| push(&p, c)))
    }

    /// The piece counters of every thread.
    fn piece_counters(counter: PerThread<(PieceCounter, Workspace)>) -> Vec<PieceCounter> {
        counter.into_inner().into_iter().map(|(pieces, _)| pieces).collect()
    }

    /// The runs on disk of counters within `max_memory_mb`, every counter spilled.
    fn piece_runs(counter: PerThread<(PieceCounter, Workspace)>) -> Result<Vec<Run<Vec<u8>>>> {
        PieceCounter::into_runs(Self::piece_counters(counter))
    }

    fn prune_config(&self) -> PruneConfig {
        PruneConfig {
            max_piece_length: self.config.max_piece_length,
            min_count: self.config.min_count,
            max_vocab_sizes: self.config.max_vocab_sizes.clone(),
            special_tokens: self.config.special_tokens.clone(),
        }
    }

    /// Stage 4 over the piece tables of every shard (or merges of them), serialised: merged as
    /// they are read, the pieces kept at first held in memory and the dropped ones split in
    /// batches (within `max_memory_mb`, from a run on disk), as one process prunes its own.
    pub fn prune_tables(&self, tables: &[&[u8]]) -> Result<Vec<Vocab>> {
        if tables.is_empty() {
            return Err(Error::InvalidArgument("no piece table to prune".into()));
        }
        let config = self.prune_config();
        let each = |f: &mut dyn FnMut(&[u8], u64) -> Result<()>| table::for_each_piece(tables, "piece table", f);
        let scratch = self.shares().map(|_| &self.scratch);
        vocabs_of(prune::prune_sorted(each, scratch, &config, self.ln, self.monitor)?, &config)
    }

    /// Stages 3 and 4 of one process, once every text was counted into `pieces`: the model is
    /// freed, then the pieces pruned (within `max_memory_mb`, from runs on disk).
    pub fn finish(&self, model: NgramModel, pieces: PerThread<(PieceCounter, Workspace)>) -> Result<Vec<Vocab>> {
        drop(model);
        let config = self.prune_config();
        let pruned = if self.shares().is_none() {
            prune::prune_counters(Self::piece_counters(pieces), &config, self.ln, self.monitor)?
        } else {
            prune::prune_runs(Self::piece_runs(pieces)?, &self.scratch, &config, self.ln, self.monitor)?
        };
        vocabs_of(pruned, &config)
    }

    /// All stages over texts held in memory.
    pub fn train(&self, texts: &[&str]) -> Result<Vec<Vocab>> {
        let counter = self.ngram_counter();
        self.monitor.stage("Count Ngrams", Some(bytes_of(texts)), Unit::Bytes);
        self.count_ngrams(&counter, texts)?;
        let model = self.ngram_model(counter)?;
        let pieces = self.piece_counter(&model);
        self.monitor.stage("Count Pieces", Some(bytes_of(texts)), Unit::Bytes);
        self.count_pieces(&model, &pieces, texts)?;
        self.finish(model, pieces)
    }

    /// The folder where this training's temporary files go.
    pub fn scratch(&self) -> &Arc<Scratch> {
        &self.scratch
    }
}

/// The vocabularies of pruned piece counts.
fn vocabs_of(pruned: Vec<prune::PieceCounts>, config: &PruneConfig) -> Result<Vec<Vocab>> {
    pruned.iter().map(|p| prune::vocab_of(p, &config.special_tokens, "trained vocabulary")).collect()
}

/// Accumulators, one per thread of the pool, so that workers add without contention and the
/// partial results are merged once, at the end.
pub struct PerThread<T> {
    slots: Vec<Mutex<T>>,
}

impl<T: Send> PerThread<T> {
    /// One accumulator per thread of the current pool (and at least one per core).
    pub fn new(init: impl Fn() -> T) -> PerThread<T> {
        PerThread { slots: (0..Self::slots()).map(|_| Mutex::new(init())).collect() }
    }

    /// How many accumulators [`PerThread::new`] makes.
    pub fn slots() -> usize {
        rayon::current_num_threads().max(crate::parallel::default_threads())
    }

    /// The accumulators.
    pub fn into_inner(self) -> Vec<T> {
        self.slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect()
    }

    /// `f` of every accumulator, in turn.
    pub fn map<R>(&self, f: impl Fn(&T) -> R) -> Vec<R> {
        self.slots.iter().map(|m| f(&m.lock().unwrap_or_else(|p| p.into_inner()))).collect()
    }

    /// Runs `f` on the calling thread's accumulator.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.slots.len();
        f(&mut self.slots[i].lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::ln;

    #[test]
    fn same_model_for_any_threads_and_batches() {
        let texts: Vec<String> = (0..200)
            .map(|i| {
                format!("document {i}: the quick brown fox jumps over the lazy dog {}\n中文文本 {}\n", i % 7, i % 3)
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let config = TrainerConfig { max_vocab_sizes: vec![400, 300], ..Default::default() };
        let trainer = Trainer::new(config, &ln, &crate::monitor::Silent).unwrap();
        let one = crate::parallel::run_with_threads(Some(1), || trainer.train(&refs)).unwrap().unwrap();
        let three = crate::parallel::run_with_threads(Some(3), || {
            let counter = trainer.ngram_counter();
            for part in refs.chunks(17) {
                trainer.count_ngrams(&counter, part).unwrap();
            }
            let model = trainer.ngram_model(counter).unwrap();
            let pieces = trainer.piece_counter(&model);
            for part in refs.chunks(5) {
                trainer.count_pieces(&model, &pieces, part).unwrap();
            }
            trainer.finish(model, pieces).unwrap()
        })
        .unwrap();
        assert_eq!(one.len(), 2);
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(crate::model_io::to_json(a), crate::model_io::to_json(b));
        }
        assert!(one[0].len() <= 397 && one[1].len() <= 297 && one[0].len() > 256);
    }

    #[test]
    fn shards_merged_in_any_tree_give_the_single_machine_model() {
        use crate::table::merge_serialised;
        let texts: Vec<String> = (0..240)
            .map(|i| format!("doc {i}: {} 数据{}\n\nmore text {}\n", "abc ".repeat(i % 5), i % 9, i * 31 % 17))
            .collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let config = TrainerConfig { max_vocab_sizes: vec![420, 300], ..Default::default() };
        let trainer = Trainer::new(config.clone(), &ln, &crate::monitor::Silent).unwrap();
        let want: Vec<String> = trainer.train(&refs).unwrap().iter().map(crate::model_io::to_json).collect();
        // one shard spills its counts to disk
        let spilling =
            Trainer::new(TrainerConfig { count_memory_mb: 0, ..config.clone() }, &ln, &crate::monitor::Silent).unwrap();
        let shards: Vec<&[&str]> = vec![&refs[..7], &refs[7..100], &refs[100..101], &refs[101..], &[]];
        let ngram_tables: Vec<Vec<u8>> = shards
            .iter()
            .enumerate()
            .map(|(i, shard)| {
                let t = if i == 1 { &spilling } else { &trainer };
                let counter = t.ngram_counter();
                t.count_ngrams(&counter, shard).unwrap();
                t.ngram_table(counter).unwrap()
            })
            .collect();
        let refs_of =
            |v: &[Vec<u8>], order: &[usize]| -> Vec<Vec<u8>> { order.iter().map(|&i| v[i].clone()).collect() };
        let flat = merge_serialised(&ngram_tables.iter().map(Vec::as_slice).collect::<Vec<_>>(), 0, "n").unwrap();
        let left = merge_serialised(&[&ngram_tables[4], &ngram_tables[2]], 0, "n").unwrap();
        let right =
            merge_serialised(&refs_of(&ngram_tables, &[3, 0, 1]).iter().map(Vec::as_slice).collect::<Vec<_>>(), 0, "n")
                .unwrap();
        assert_eq!(merge_serialised(&[&right, &left], 0, "n").unwrap(), flat);
        let model_bytes = trainer.model_table(&[&flat]).unwrap();
        let pruned = NgramTable::from_bytes(&flat, "merged").unwrap().pruned(config.min_count).unwrap();
        assert_eq!(model_bytes, pruned.to_bytes());
        // merged and pruned in one pass, from the shards or from merges of them
        assert_eq!(trainer.model_table(&[&right, &left]).unwrap(), model_bytes);
        let shard_refs: Vec<&[u8]> = ngram_tables.iter().map(Vec::as_slice).collect();
        assert_eq!(trainer.model_table(&shard_refs).unwrap(), model_bytes);
        let model = trainer.model_of(&model_bytes).unwrap();
        let piece_tables: Vec<Vec<u8>> = shards
            .iter()
            .map(|shard| {
                let counter = trainer.piece_counter(&model);
                trainer.count_pieces(&model, &counter, shard).unwrap();
                trainer.piece_table(&model, counter).unwrap()
            })
            .collect();
        let a =
            merge_serialised(&refs_of(&piece_tables, &[2, 4, 0]).iter().map(Vec::as_slice).collect::<Vec<_>>(), 0, "p")
                .unwrap();
        let b = merge_serialised(&[&piece_tables[3], &piece_tables[1], &a], 0, "p").unwrap();
        let got: Vec<String> = trainer.prune_tables(&[&b]).unwrap().iter().map(crate::model_io::to_json).collect();
        assert_eq!(got, want);
        // within a memory bound every stage goes through runs on disk, to the same bytes
        let bounded_config = TrainerConfig { max_memory_mb: Some(MIN_MEMORY_MB), count_memory_mb: 0, ..config.clone() };
        let bounded = Trainer::new(bounded_config, &ln, &crate::monitor::Silent).unwrap();
        for (shard, (ngrams, pieces)) in shards.iter().zip(ngram_tables.iter().zip(&piece_tables)) {
            let counter = bounded.ngram_counter();
            bounded.count_ngrams(&counter, shard).unwrap();
            assert_eq!(&bounded.ngram_table(counter).unwrap(), ngrams);
            let bounded_model = bounded.model_of(&model_bytes).unwrap();
            assert_eq!(bounded_model.fingerprint(), model.fingerprint());
            let counter = bounded.piece_counter(&bounded_model);
            bounded.count_pieces(&bounded_model, &counter, shard).unwrap();
            assert_eq!(&bounded.piece_table(&bounded_model, counter).unwrap(), pieces);
        }
        let got: Vec<String> = bounded.prune_tables(&[&b]).unwrap().iter().map(crate::model_io::to_json).collect();
        assert_eq!(got, want);
        // the client merges the last tables as it prunes them
        let last: Vec<&[u8]> = piece_tables.iter().map(Vec::as_slice).collect();
        let got: Vec<String> = bounded.prune_tables(&last).unwrap().iter().map(crate::model_io::to_json).collect();
        assert_eq!(got, want);
        assert!(trainer.prune_tables(&[]).is_err());
        // tables of other parameters are refused
        let other =
            Trainer::new(TrainerConfig { order: 4, ..Default::default() }, &ln, &crate::monitor::Silent).unwrap();
        assert!(other.model_table(&[&flat]).is_err());
        assert!(other.model_of(&model_bytes).is_err());
        let wrong_min =
            Trainer::new(TrainerConfig { min_count: 3, ..Default::default() }, &ln, &crate::monitor::Silent).unwrap();
        assert!(wrong_min.model_of(&model_bytes).is_err());
    }

    #[test]
    fn a_small_count_memory_spills_and_changes_nothing() {
        let texts: Vec<String> = (0..300).map(|i| format!("line {i} of text, with {} words\n", i * 37 % 101)).collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let model = |mb| {
            let config = TrainerConfig { max_vocab_sizes: vec![500], count_memory_mb: mb, ..Default::default() };
            let trainer = Trainer::new(config, &ln, &crate::monitor::Silent).unwrap();
            crate::model_io::to_json(&trainer.train(&refs).unwrap()[0])
        };
        assert_eq!(model(0), model(4096));
    }

    #[test]
    fn a_memory_bound_spills_every_stage_and_changes_nothing() {
        let texts: Vec<String> = (0..400)
            .map(|i| {
                format!(
                    "line {i} of text, with {} words 中文{}\n\nand a second {} paragraph\n",
                    i * 37 % 101,
                    i % 13,
                    i * 7 % 29
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let dir = std::env::temp_dir().join(format!("bp-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train = |config: TrainerConfig| {
            let trainer = Trainer::new(config, &ln, &crate::monitor::Silent).unwrap();
            let out: Vec<String> = trainer.train(&refs).unwrap().iter().map(crate::model_io::to_json).collect();
            out
        };
        let sizes = vec![700, 400];
        let want = train(TrainerConfig { max_vocab_sizes: sizes.clone(), ..Default::default() });
        // count tables of a few slots: every stage spills to runs, many times
        let bounded = TrainerConfig {
            max_vocab_sizes: sizes,
            max_memory_mb: Some(MIN_MEMORY_MB),
            count_memory_mb: 0,
            temp_dir: Some(dir.clone()),
            ..Default::default()
        };
        for threads in [1, 3] {
            let got = crate::parallel::run_with_threads(Some(threads), || train(bounded.clone())).unwrap();
            assert_eq!(got, want, "{threads} threads");
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "temporary files are removed");
        }
        // an error on the way removes them too
        let failing = |xs: &[f64]| -> Result<Vec<f64>> {
            if xs.len() > 65_000 {
                Err(Error::InvalidArgument("no logarithms today".into()))
            } else {
                ln(xs)
            }
        };
        let trainer = Trainer::new(bounded.clone(), &failing, &crate::monitor::Silent).unwrap();
        assert!(trainer.train(&refs).is_err());
        drop(trainer);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        assert!(Trainer::new(bounded, &ln, &crate::monitor::Silent).is_err(), "a missing temp_dir is refused");
    }

    #[test]
    fn bounded_and_unbounded_agree_on_arbitrary_small_corpora() {
        // what the train fuzz target draws: every order, tiny sizes, min_count 0, empty texts,
        // texts of one repeated byte, multi-byte characters, digits
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let alphabet = ['a', 'b', ' ', '\n', '中', '文', '1', '٣', 'é', '\u{1F600}'];
        for case in 0..150 {
            let texts: Vec<String> = (0..next(12))
                .map(|_| (0..next(40)).map(|_| alphabet[next(alphabet.len() as u64) as usize]).collect())
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let config = TrainerConfig {
                order: 1 + next(MAX_ORDER as u64) as usize,
                max_vocab_sizes: vec![259 + next(300) as usize, 259 + next(50) as usize],
                max_piece_length: 1 + next(12) as usize,
                min_count: next(4),
                isolate_digits: next(2) == 0,
                ensure_unicode: next(2) == 0,
                ..Default::default()
            };
            let train = |config: TrainerConfig| -> Vec<String> {
                let trainer = Trainer::new(config, &ln, &crate::monitor::Silent).unwrap();
                trainer.train(&refs).unwrap().iter().map(crate::model_io::to_json).collect()
            };
            let bounded = TrainerConfig { max_memory_mb: Some(MIN_MEMORY_MB), count_memory_mb: 0, ..config.clone() };
            assert_eq!(train(bounded), train(config.clone()), "case {case}: {config:?}, {texts:?}");
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        for config in [
            TrainerConfig { order: 0, ..Default::default() },
            TrainerConfig { order: 9, ..Default::default() },
            TrainerConfig { max_vocab_sizes: vec![], ..Default::default() },
            TrainerConfig { max_vocab_sizes: vec![1000, 100], ..Default::default() },
            TrainerConfig { max_piece_length: 0, ..Default::default() },
            TrainerConfig { max_memory_mb: Some(MIN_MEMORY_MB - 1), ..Default::default() },
        ] {
            assert!(Trainer::new(config, &ln, &crate::monitor::Silent).is_err());
        }
    }
}
