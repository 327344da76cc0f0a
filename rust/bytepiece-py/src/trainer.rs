//! The trainer's bindings: reading Python texts once, progress, Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use bytepiece::corpus::{for_each_file_texts, Spill, TextUnit};
use bytepiece::model::NgramModel;
use bytepiece::monitor::{Monitor, Unit};
use bytepiece::prune::{self, PruneConfig};
use bytepiece::table::{self, PieceTable};
use bytepiece::{model_io, parallel, Error, Result as CoreResult, Trainer, TrainerConfig, Vocab};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::progress::Progress;
use crate::{numpy_log, to_py};

/// NumPy's `log`, called from any thread (it takes the GIL for the call).
fn ln(xs: &[f64]) -> CoreResult<Vec<f64>> {
    Python::attach(|py| numpy_log(py, xs)).map_err(|e| Error::InvalidArgument(format!("numpy.log failed: {e}")))
}

/// Runs `work` on another thread while this one, holding the GIL only briefly, watches for
/// Ctrl-C (Python runs signal handlers on the main thread); on a signal the work is told to stop
/// and the signal's exception (`KeyboardInterrupt`) is raised once it has.
fn run_watched<R: Send>(
    py: Python<'_>,
    progress: &Progress,
    work: impl FnOnce() -> CoreResult<R> + Send,
) -> PyResult<R> {
    let result = std::thread::scope(|scope| {
        let handle = scope.spawn(work);
        while !handle.is_finished() {
            py.detach(|| std::thread::sleep(Duration::from_millis(20)));
            if let Err(e) = py.check_signals() {
                progress.stop();
                let _ = py.detach(|| handle.join());
                return Err(e);
            }
        }
        py.detach(|| handle.join())
            .unwrap_or_else(|_| Err(Error::InvalidArgument("training failed unexpectedly (a worker panicked)".into())))
            .map_err(to_py)
    });
    progress.finish();
    result
}

/// The compiled trainer behind `bytepiece_rs.Trainer`.
#[pyclass(module = "bytepiece_rs._core", name = "TrainerCore")]
pub struct PyTrainer {
    config: TrainerConfig,
    vocabs: Vec<Vocab>,
}

fn extract_str<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match obj.cast::<PyString>() {
        Ok(s) => s.encode_utf8(),
        Err(_) => Err(PyTypeError::new_err(format!("training texts must be str, got {}", obj.get_type().name()?))),
    }
}

fn as_strs<'a>(batch: &'a [Bound<'_, PyBytes>]) -> Vec<&'a str> {
    // SAFETY: made by Python's strict UTF-8 encoder from `str` objects.
    batch.iter().map(|b| unsafe { std::str::from_utf8_unchecked(b.as_bytes()) }).collect()
}

#[pymethods]
impl PyTrainer {
    #[new]
    #[pyo3(signature = (order, max_vocab_sizes, max_piece_length, min_count, isolate_digits, ensure_unicode,
                        count_memory_mb, special_tokens=Vec::new(), max_memory_mb=None, temp_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        order: usize,
        max_vocab_sizes: Vec<usize>,
        max_piece_length: usize,
        min_count: u64,
        isolate_digits: bool,
        ensure_unicode: bool,
        count_memory_mb: usize,
        special_tokens: Vec<String>,
        max_memory_mb: Option<usize>,
        temp_dir: Option<PathBuf>,
    ) -> PyResult<PyTrainer> {
        let config = TrainerConfig {
            order,
            max_vocab_sizes,
            max_piece_length,
            min_count,
            isolate_digits,
            ensure_unicode,
            special_tokens,
            count_memory_mb,
            max_memory_mb,
            temp_dir,
        }
        .validated()
        .map_err(to_py)?;
        Ok(PyTrainer { config, vocabs: Vec::new() })
    }

    /// The vocabulary sizes, largest first.
    #[getter]
    fn max_vocab_sizes(&self) -> Vec<usize> {
        self.config.max_vocab_sizes.clone()
    }

    /// Trains on an iterable of `str`, read once (the texts are spilled to a temporary file for
    /// the second pass).
    #[pyo3(signature = (texts, workers, batch_size, progress=None))]
    fn train(
        &mut self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        workers: usize,
        batch_size: usize,
        progress: Option<bool>,
    ) -> PyResult<()> {
        let progress = Progress::new(progress);
        let threads = Some(workers.max(1));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let mut spill = Spill::create(trainer.scratch()).map_err(to_py)?;
        let counter = parallel::run_with_threads(threads, || trainer.ngram_counter()).map_err(to_py)?;
        progress.stage("Count Ngrams", None, Unit::Bytes);
        for_each_batch(py, texts, batch_size, |strs| {
            strs.iter().try_for_each(|t| spill.push(t))?;
            parallel::run_with_threads(threads, || trainer.count_ngrams(&counter, strs))?
        })?;
        let total = spill.bytes();
        self.vocabs = run_watched(py, &progress, || {
            parallel::run_with_threads(threads, || {
                let model = trainer.ngram_model(counter)?;
                let pieces = trainer.piece_counter(&model);
                trainer.monitor().stage("Count Pieces", Some(total), Unit::Bytes);
                let mut reader = spill.read(batch_size)?;
                loop {
                    let batch = reader.next_batch()?;
                    if batch.is_empty() {
                        break;
                    }
                    let strs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    trainer.count_pieces(&model, &pieces, &strs)?;
                }
                trainer.finish(model, pieces)
            })?
        })?;
        Ok(())
    }

    /// Trains on UTF-8 text files read by Rust in blocks (twice), whose texts are each line
    /// (`text_unit` `"line"`) or each whole file (`"file"`).
    #[pyo3(signature = (paths, workers, text_unit, progress=None))]
    fn train_from_files(
        &mut self,
        py: Python<'_>,
        paths: Vec<PathBuf>,
        workers: usize,
        text_unit: &str,
        progress: Option<bool>,
    ) -> PyResult<()> {
        let unit: TextUnit = text_unit.parse().map_err(to_py)?;
        let progress = Progress::new(progress);
        let threads = Some(workers.max(1));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let mut total = 0u64;
        for path in &paths {
            let meta = std::fs::metadata(path).map_err(|e| to_py(Error::io(path, e)))?;
            total += meta.len();
        }
        self.vocabs = run_watched(py, &progress, || {
            parallel::run_with_threads(threads, || {
                let counter = trainer.ngram_counter();
                trainer.monitor().stage("Count Ngrams", Some(total), Unit::Bytes);
                for_each_file_texts(&paths, unit, trainer.monitor(), &mut |texts| {
                    trainer.count_ngrams(&counter, texts)
                })?;
                let model = trainer.ngram_model(counter)?;
                let pieces = trainer.piece_counter(&model);
                trainer.monitor().stage("Count Pieces", Some(total), Unit::Bytes);
                for_each_file_texts(&paths, unit, trainer.monitor(), &mut |texts| {
                    trainer.count_pieces(&model, &pieces, texts)
                })?;
                trainer.finish(model, pieces)
            })?
        })?;
        Ok(())
    }

    /// Stage 1 over one shard of a corpus: the n-gram counts of an iterable of `str` (read once,
    /// in batches) or, with a `text_unit` (`"line"` or `"file"`), of the texts of that unit of
    /// UTF-8 text files whose paths `texts` lists, as a serialised unpruned n-gram table (see the
    /// core's `table` module).
    #[pyo3(signature = (texts, workers, batch_size, text_unit=None))]
    fn ngram_table<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        workers: usize,
        batch_size: usize,
        text_unit: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let progress = Progress::new(Some(false));
        let threads = Some(workers.max(1));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let counter = parallel::run_with_threads(threads, || trainer.ngram_counter()).map_err(to_py)?;
        let count = |parts: &[&str]| parallel::run_with_threads(threads, || trainer.count_ngrams(&counter, parts))?;
        for_each_text(py, texts, batch_size, text_unit, trainer.monitor(), count)?;
        let table =
            py.detach(|| parallel::run_with_threads(threads, || trainer.ngram_table(counter))?).map_err(to_py)?;
        Ok(PyBytes::new(py, &table))
    }

    /// Stage 2 over the n-gram tables of every shard (or merges of them): merged and pruned in
    /// one pass into the serialised table that the n-gram model is built from (see
    /// `NgramModelCore`).
    fn model_table<'py>(&self, py: Python<'py>, tables: Vec<PyBackedBytes>) -> PyResult<Bound<'py, PyBytes>> {
        let progress = Progress::new(Some(false));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let views = slices(&tables);
        let table = py.detach(|| trainer.model_table(&views)).map_err(to_py)?;
        Ok(PyBytes::new(py, &table))
    }

    /// Stage 3 over one shard: the piece counts of the texts (as for `ngram_table`) segmented
    /// with `model`, as a serialised piece table.
    #[pyo3(signature = (model, texts, workers, batch_size, text_unit=None))]
    fn piece_table<'py>(
        &self,
        py: Python<'py>,
        model: &NgramModelCore,
        texts: &Bound<'py, PyAny>,
        workers: usize,
        batch_size: usize,
        text_unit: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let progress = Progress::new(Some(false));
        let threads = Some(workers.max(1));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        if model.tag != trainer.ngram_tag() || model.min_count != self.config.min_count.max(1) {
            return Err(to_py(Error::InvalidArgument("the n-gram model was made with other parameters".into())));
        }
        let counter = parallel::run_with_threads(threads, || trainer.piece_counter(&model.model)).map_err(to_py)?;
        let count = |parts: &[&str]| {
            parallel::run_with_threads(threads, || trainer.count_pieces(&model.model, &counter, parts))?
        };
        for_each_text(py, texts, batch_size, text_unit, trainer.monitor(), count)?;
        let table = py.detach(|| trainer.piece_table(&model.model, counter)).map_err(to_py)?;
        Ok(PyBytes::new(py, &table))
    }

    /// Stage 4: prunes the piece tables of every shard (or merges of them), merged as they are
    /// read, into the vocabularies (then `pieces`, `save`... give them, as after `train`).
    #[pyo3(signature = (tables, workers, progress=None))]
    fn train_from_tables(
        &mut self,
        py: Python<'_>,
        tables: Vec<PyBackedBytes>,
        workers: usize,
        progress: Option<bool>,
    ) -> PyResult<()> {
        let progress = Progress::new(progress);
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let views = slices(&tables);
        self.vocabs = run_watched(py, &progress, || {
            parallel::run_with_threads(Some(workers.max(1)), || trainer.prune_tables(&views))?
        })?;
        Ok(())
    }

    /// The n-gram model built from a serialised pruned table (what `model_table` returns).
    fn ngram_model(&self, py: Python<'_>, table: PyBackedBytes) -> PyResult<NgramModelCore> {
        let progress = Progress::new(Some(false));
        let trainer = Trainer::new(self.config.clone(), &ln, &progress).map_err(to_py)?;
        let tag = trainer.ngram_tag();
        let model = py.detach(|| trainer.model_of(&table)).map_err(to_py)?;
        Ok(NgramModelCore { model, tag, min_count: self.config.min_count.max(1) })
    }

    /// The number of ids of the trained vocabulary `i` (reserved ids and special tokens
    /// included; at most its `max_vocab_size`).
    fn vocab_size(&self, i: usize) -> PyResult<usize> {
        Ok(self.vocab(i)?.vocab_size())
    }

    /// Number of trained vocabularies (one per size).
    fn __len__(&self) -> usize {
        self.vocabs.len()
    }

    /// The trained vocabulary `i` as {piece: count}.
    fn pieces<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        let vocab = self.vocab(i)?;
        let d = PyDict::new(py);
        for (p, c) in vocab.pieces().iter().zip(vocab.counts()) {
            d.set_item(PyBytes::new(py, p), c)?;
        }
        Ok(d)
    }

    /// Saves vocabulary `i` in the original's format, atomically.
    fn save(&self, py: Python<'_>, i: usize, path: PathBuf) -> PyResult<()> {
        let vocab = self.vocab(i)?;
        py.detach(|| model_io::save(vocab, &path)).map_err(to_py)
    }

    /// Vocabulary `i` in the original's JSON format.
    fn to_json(&self, i: usize) -> PyResult<String> {
        Ok(model_io::to_json(self.vocab(i)?))
    }

    /// Replaces the trained vocabularies by models in the original's JSON format, one per size
    /// (largest first, as [`PyTrainer::to_json`] gives them): how a pickled trainer is restored.
    fn set_models(&mut self, py: Python<'_>, models: Vec<Vec<u8>>) -> PyResult<()> {
        if !models.is_empty() && models.len() != self.config.max_vocab_sizes.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "expected {} models (one per vocabulary size), got {}",
                self.config.max_vocab_sizes.len(),
                models.len()
            )));
        }
        let vocabs = py
            .detach(|| {
                models
                    .iter()
                    .enumerate()
                    .map(|(i, m)| model_io::parse(m, &format!("trained model {i}")))
                    .collect::<CoreResult<Vec<Vocab>>>()
            })
            .map_err(to_py)?;
        self.vocabs = vocabs;
        Ok(())
    }
}

impl PyTrainer {
    fn vocab(&self, i: usize) -> PyResult<&Vocab> {
        self.vocabs.get(i).ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("the trainer has not been trained yet: call train() first")
        })
    }
}

/// An n-gram model, built once per process and used for the piece counts of many shards.
#[pyclass(module = "bytepiece_rs._core", name = "NgramModelCore", frozen)]
pub struct NgramModelCore {
    model: NgramModel,
    /// The n-gram tag and `min_count` of the trainer that built it.
    tag: u64,
    min_count: u64,
}

#[pymethods]
impl NgramModelCore {
    /// The fingerprint of the table the model was built from.
    #[getter]
    fn fingerprint(&self) -> u64 {
        self.model.fingerprint()
    }
}

/// Merges serialised count tables of one kind (n-gram or piece counts of shards) into one, by
/// sums: the result does not depend on their order or grouping.
#[pyfunction]
pub fn merge_tables<'py>(py: Python<'py>, tables: Vec<PyBackedBytes>) -> PyResult<Bound<'py, PyBytes>> {
    let views = slices(&tables);
    let merged = py.detach(|| table::merge_serialised(&views, 0, "count table")).map_err(to_py)?;
    Ok(PyBytes::new(py, &merged))
}

/// The bytes of serialised tables passed from Python, borrowed.
fn slices(tables: &[PyBackedBytes]) -> Vec<&[u8]> {
    tables.iter().map(|t| &t[..]).collect()
}

/// Reads an iterable of `str` in batches of `batch_size` and calls `f` on each batch with the
/// GIL released.
fn for_each_batch(
    py: Python<'_>,
    texts: &Bound<'_, PyAny>,
    batch_size: usize,
    mut f: impl FnMut(&[&str]) -> CoreResult<()> + Send,
) -> PyResult<()> {
    let mut iter = texts.try_iter()?;
    loop {
        let mut batch = Vec::with_capacity(batch_size.max(1));
        for item in iter.by_ref().take(batch_size.max(1)) {
            batch.push(extract_str(&item?)?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let strs = as_strs(&batch);
        py.detach(|| f(&strs)).map_err(to_py)?;
        py.check_signals()?;
    }
}

/// Calls `f` on batches of the texts of a shard: `texts` an iterable of `str` read in batches of
/// `batch_size` or, with a `text_unit`, the paths of text files read by the core in blocks.
fn for_each_text(
    py: Python<'_>,
    texts: &Bound<'_, PyAny>,
    batch_size: usize,
    text_unit: Option<&str>,
    monitor: &dyn Monitor,
    mut f: impl FnMut(&[&str]) -> CoreResult<()> + Send,
) -> PyResult<()> {
    let Some(unit) = text_unit else { return for_each_batch(py, texts, batch_size, f) };
    let unit: TextUnit = unit.parse().map_err(to_py)?;
    let paths: Vec<PathBuf> = texts.extract()?;
    py.detach(|| for_each_file_texts(&paths, unit, monitor, &mut f)).map_err(to_py)
}

/// The piece pruning of training, from given counts: prunes {piece: count} (no length limit,
/// pieces counted fewer than `min_count` times re-split) to `max_vocab_size` ids, special tokens
/// first, and returns the model in the original's JSON format. The core of the original's
/// `convert_to_bytepiece` (min_count 1, a size that keeps every piece).
#[pyfunction]
#[pyo3(signature = (pieces, max_vocab_size=None, min_count=1, special_tokens=Vec::new()))]
pub fn prune_to_json(
    py: Python<'_>,
    pieces: Vec<(Vec<u8>, u64)>,
    max_vocab_size: Option<usize>,
    min_count: u64,
    special_tokens: Vec<String>,
) -> PyResult<String> {
    Ok(model_io::to_json(&prune_vocab(py, pieces, max_vocab_size, min_count, special_tokens)?))
}

/// The vocabulary of [`prune_to_json`].
pub(crate) fn prune_vocab(
    py: Python<'_>,
    pieces: Vec<(Vec<u8>, u64)>,
    max_vocab_size: Option<usize>,
    min_count: u64,
    special_tokens: Vec<String>,
) -> PyResult<Vocab> {
    let size = max_vocab_size.unwrap_or(pieces.len() + special_tokens.len() + 259);
    let counts = PieceTable::new(0, pieces);
    let config = PruneConfig { max_piece_length: usize::MAX, min_count, max_vocab_sizes: vec![size], special_tokens };
    let progress = Progress::new(Some(false));
    run_watched(py, &progress, || {
        let kept = prune::prune_pieces(counts, &config, &ln, &progress)?;
        prune::vocab_of(&kept[0], &config.special_tokens, "pruned pieces")
    })
}
