//! Python bindings of the bytepiece core: type conversion, releasing the GIL, NumPy arrays and
//! errors mapped to Python exceptions. No tokenizer logic lives here.

use pyo3::sync::PyOnceLock;
use std::io::Write;
use std::path::PathBuf;

use bytepiece::documents::DocumentFormat;
use bytepiece::encode_files::{EncodeFiles, Input, BLOCK_BYTES};
use bytepiece::id_format::IdFormat;
use bytepiece::rayon::prelude::*;
use bytepiece::special::{Selection, SpecialPolicy, SpecialTokens};
use bytepiece::vocab::RESERVED_NAMES;
use bytepiece::writeback::Writeback;
use bytepiece::Span;
use bytepiece::{
    megatron, model_io, parallel, EncodeOptions, Encoder as CoreEncoder, Error, SeedSequence, Text, Vocab,
};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyFileNotFoundError, PyIsADirectoryError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

mod files;
mod progress;
mod special;
mod trainer;

/// Huge pages for the trainer's large tables (see the core's `hugepages`).
#[global_allocator]
static ALLOCATOR: bytepiece::hugepages::HugePageAlloc = bytepiece::hugepages::HugePageAlloc;

/// Maps a core error to the Python exception a user expects.
pub(crate) fn to_py(err: Error) -> PyErr {
    if let Some(e) = special::error(&err) {
        return e;
    }
    match err {
        Error::NotFound { .. } | Error::NoDirectory { .. } => PyFileNotFoundError::new_err(err.to_string()),
        Error::IsADirectory { .. } => PyIsADirectoryError::new_err(err.to_string()),
        // the OSError subclass of the error's kind (PermissionError, BrokenPipeError...)
        Error::Io { ref source, .. } | Error::CannotWrite { ref source, .. } => {
            PyErr::from(std::io::Error::new(source.kind(), err.to_string()))
        }
        Error::UnknownId { .. } => PyKeyError::new_err(err.to_string()),
        Error::Cancelled => pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"),
        Error::InvalidModel { .. }
        | Error::InvalidArgument(_)
        | Error::UnknownSpecialToken { .. }
        | Error::DisallowedSpecialToken { .. } => PyValueError::new_err(err.to_string()),
    }
}

/// A text received from Python: a `str` as its UTF-8 encoding (a `bytes` object made by Python,
/// normalised later), or a `bytes` object as it is.
enum PyText<'py> {
    Str(Bound<'py, PyBytes>),
    Bytes(Bound<'py, PyBytes>),
}

impl PyText<'_> {
    fn as_text(&self) -> Text<'_> {
        match self {
            // SAFETY: the bytes come from Python's strict UTF-8 encoder, so they are valid UTF-8.
            PyText::Str(b) => Text::Str(unsafe { std::str::from_utf8_unchecked(b.as_bytes()) }),
            PyText::Bytes(b) => Text::Bytes(b.as_bytes()),
        }
    }
}

/// Reads a `str` (a lone surrogate raises `UnicodeEncodeError`, a `ValueError`) or `bytes`.
fn extract_text<'py>(obj: &Bound<'py, PyAny>) -> PyResult<PyText<'py>> {
    if let Ok(s) = obj.cast::<PyString>() {
        Ok(PyText::Str(s.encode_utf8()?))
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Ok(PyText::Bytes(b.clone()))
    } else {
        Err(PyTypeError::new_err(format!("expected str or bytes, got {}", obj.get_type().name()?)))
    }
}

/// Reads every text of an iterable, as [`extract_text`], checking for Ctrl-C as it goes.
fn extract_texts<'py>(texts: &Bound<'py, PyAny>) -> PyResult<Vec<PyText<'py>>> {
    let py = texts.py();
    texts
        .try_iter()?
        .enumerate()
        .map(|(i, t)| {
            if i % 65536 == 65535 {
                py.check_signals()?;
            }
            extract_text(&t?)
        })
        .collect()
}

/// NumPy's `log`, elementwise: what the original uses to score pieces.
pub(crate) fn numpy_log(py: Python<'_>, xs: &[f64]) -> PyResult<Vec<f64>> {
    let numpy = py.import("numpy")?;
    let arr = PyArray1::from_slice(py, xs);
    let logs = numpy.getattr("log")?.call1((arr,))?;
    let logs = logs.cast_into::<PyArray1<f64>>()?;
    Ok(logs.readonly().as_slice()?.to_vec())
}

fn options(add_bos: bool, add_eos: bool, alpha: f64, special: &SpecialPolicy) -> PyResult<EncodeOptions<'_>> {
    let options = EncodeOptions { add_bos, add_eos, alpha, special };
    options.validate().map_err(to_py)?;
    Ok(options)
}

/// A flat array of ids and the offsets of each text's ids in it.
type IdsAndOffsets<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>);

/// The compiled tokenizer behind `bytepiece_rs.Tokenizer`.
#[pyclass(module = "bytepiece_rs._core", name = "Encoder", frozen)]
struct PyEncoder {
    inner: CoreEncoder,
    seeds: SeedSequence,
    /// The special-token policies most calls use.
    policies: special::Policies,
    /// One Python `int` per id, made on first use: building a list of ids then costs a
    /// reference count per id instead of an allocation (ids are bounded by the vocabulary).
    id_objects: PyOnceLock<Vec<Py<PyAny>>>,
}

impl PyEncoder {
    fn build(py: Python<'_>, vocab: Vocab, seed: Option<u64>) -> PyResult<PyEncoder> {
        let mut log_error = None;
        let inner = CoreEncoder::with_log(vocab, |xs| {
            numpy_log(py, xs).map_err(|e| {
                let message = format!("numpy.log failed: {e}");
                log_error = Some(e);
                Error::InvalidArgument(message)
            })
        });
        let inner = match (inner, log_error) {
            (_, Some(e)) => return Err(e),
            (result, None) => result.map_err(to_py)?,
        };
        let seeds = seed.map_or_else(SeedSequence::from_entropy, SeedSequence::new);
        let policies = special::Policies::new(inner.vocab());
        Ok(PyEncoder { inner, seeds, policies, id_objects: PyOnceLock::new() })
    }

    /// `ids` as a Python list of `int`.
    fn id_list<'py>(&self, py: Python<'py>, ids: &[u32]) -> PyResult<Bound<'py, PyList>> {
        let objects = self.id_objects.get_or_init(py, || {
            (0..self.inner.vocab().vocab_size() as u32)
                .map(|i| i.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|e| match e {}))
                .collect()
        });
        PyList::new(py, ids.iter().map(|&i| objects[i as usize].bind(py)))
    }

    /// The special-token policy of a call's `allowed_special` and `disallowed_special`.
    fn policy(
        &self,
        allowed: Option<&Bound<'_, PyAny>>,
        disallowed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<std::borrow::Cow<'_, SpecialPolicy>> {
        self.policies.of(self.inner.vocab(), allowed, disallowed)
    }

    fn seed_for(&self, options: &EncodeOptions) -> u64 {
        if options.alpha >= 0.0 {
            self.seeds.next_seed()
        } else {
            0
        }
    }

    fn encode_ids(&self, py: Python<'_>, text: &Bound<'_, PyAny>, options: &EncodeOptions) -> PyResult<Vec<u32>> {
        let text = extract_text(text)?;
        let seed = self.seed_for(options);
        let t = text.as_text();
        py.detach(|| self.inner.encode(t, options, seed)).map_err(to_py)
    }

    fn encode_many(
        &self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        options: &EncodeOptions,
        num_threads: Option<usize>,
    ) -> PyResult<Vec<Vec<u32>>> {
        let owned = extract_texts(texts)?;
        let inputs: Vec<Text<'_>> = owned.iter().map(PyText::as_text).collect();
        let seed = self.seed_for(options);
        self.encode_interruptibly(py, &inputs, options, seed, num_threads)
    }

    /// Encodes `inputs` in parts of about [`INTERRUPT_BYTES`], checking for Ctrl-C between
    /// parts (the ids do not depend on the parts: documents are seeded by their index).
    fn encode_interruptibly(
        &self,
        py: Python<'_>,
        inputs: &[Text<'_>],
        options: &EncodeOptions,
        seed: u64,
        num_threads: Option<usize>,
    ) -> PyResult<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(inputs.len());
        for (first, part) in parts_of(inputs) {
            let ids = py
                .detach(|| {
                    parallel::run_with_threads(num_threads, || self.inner.encode_batch_at(part, options, seed, first))
                })
                .and_then(|r| r)
                .map_err(to_py)?;
            out.extend(ids);
            py.check_signals()?;
        }
        Ok(out)
    }
}

/// An input of [`PyEncoder::encode_files`]: the file at `path` (`-`: standard input), its lines
/// documents (`field` `None`) or JSON records whose `field` is the document.
fn open_input(path: String, field: Option<String>) -> PyResult<Input> {
    let source: Box<dyn std::io::Read + Send> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        let file = std::fs::File::open(&path).map_err(|e| to_py(Error::io(&path, e)))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(PyIsADirectoryError::new_err(format!("{path}: is a directory, not a file")));
        }
        Box::new(file)
    };
    let documents = field.map_or(DocumentFormat::Lines, |field| DocumentFormat::Jsonl { field });
    Ok(Input { name: path, source, documents })
}

/// A file of our own (a duplicate) for the open file descriptor `fd`: writes go where the
/// caller's file object would write them, after what it wrote and flushed.
#[cfg(unix)]
fn output_file(fd: i32) -> PyResult<std::fs::File> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err(PyValueError::new_err(format!("output must be an open file descriptor, got {fd}")));
    }
    // SAFETY: only borrowed to be duplicated at once; the duplicate is ours to close.
    let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().map_err(PyErr::from)?;
    Ok(std::fs::File::from(owned))
}

/// Writing to a file descriptor is for Unix; elsewhere the data goes through `on_block`.
#[cfg(not(unix))]
fn output_file(_fd: i32) -> PyResult<std::fs::File> {
    Err(PyValueError::new_err("output file descriptors are supported on Unix only"))
}

/// Completes the index of Megatron-LM's indexed dataset open at descriptor `fd` (named `name` in
/// errors), where a placeholder header and the lengths of `docs` documents were written and
/// flushed: appends each document's byte offset, with ids of `id_bytes` bytes, and the
/// boundaries, then writes the header with `dtype_code` (see the core's `megatron` module).
#[pyfunction]
fn complete_megatron_index(
    py: Python<'_>,
    fd: i32,
    name: PathBuf,
    docs: u64,
    id_bytes: u8,
    dtype_code: u8,
) -> PyResult<()> {
    let file = output_file(fd)?;
    py.detach(|| megatron::complete_index(&file, docs, id_bytes, dtype_code)).map_err(|e| to_py(Error::io(name, e)))
}

/// Text encoded between two checks for Ctrl-C (about 0.2 s on one thread).
const INTERRUPT_BYTES: usize = 4 << 20;

/// Consecutive parts of `inputs` of about [`INTERRUPT_BYTES`] each (a longer text alone), with
/// the index of their first text.
fn parts_of<'a, 'b>(inputs: &'a [Text<'b>]) -> impl Iterator<Item = (usize, &'a [Text<'b>])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= inputs.len() {
            return None;
        }
        let mut end = start;
        let mut bytes = 0;
        while end < inputs.len() && (end == start || bytes < INTERRUPT_BYTES) {
            bytes += match inputs[end] {
                Text::Str(s) => s.len(),
                Text::Bytes(b) => b.len(),
            };
            end += 1;
        }
        let part = (start, &inputs[start..end]);
        start = end;
        Some(part)
    })
}

#[pymethods]
impl PyEncoder {
    /// Loads a model file in the original JSON format.
    #[staticmethod]
    #[pyo3(signature = (path, seed=None))]
    fn from_file(py: Python<'_>, path: PathBuf, seed: Option<u64>) -> PyResult<PyEncoder> {
        let vocab = py.detach(|| model_io::load(&path)).map_err(to_py)?;
        PyEncoder::build(py, vocab, seed)
    }

    /// Parses a model from the bytes of a model file; `origin` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (data, origin, seed=None))]
    fn from_json(py: Python<'_>, data: &[u8], origin: &str, seed: Option<u64>) -> PyResult<PyEncoder> {
        let vocab = py.detach(|| model_io::parse(data, origin)).map_err(to_py)?;
        PyEncoder::build(py, vocab, seed)
    }

    /// Restarts the random draws used when sampling (`alpha >= 0`).
    fn set_seed(&self, seed: u64) {
        self.seeds.reset(seed);
    }

    /// Number of ids, `<pad>`, `<bos>` and `<eos>` included.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab().vocab_size()
    }

    /// Ids of `text` (`str`, NFC-normalised, or `bytes`, as is). `allowed_special` (default:
    /// none) and `disallowed_special` (default: `"all"`) as tiktoken's.
    #[pyo3(signature = (text, add_bos=false, add_eos=false, alpha=-1.0, allowed_special=None, disallowed_special=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        add_bos: bool,
        add_eos: bool,
        alpha: f64,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let special = self.policy(allowed_special, disallowed_special)?;
        let ids = self.encode_ids(py, text, &options(add_bos, add_eos, alpha, &special)?)?;
        self.id_list(py, &ids)
    }

    /// Ids of `text` and the span of each in `text` (characters of a `str` before NFC, bytes of
    /// a `bytes`).
    #[pyo3(signature = (text, add_bos=false, add_eos=false, alpha=-1.0, allowed_special=None, disallowed_special=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_with_offsets<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        add_bos: bool,
        add_eos: bool,
        alpha: f64,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyList>, Vec<Span>)> {
        let special = self.policy(allowed_special, disallowed_special)?;
        let options = options(add_bos, add_eos, alpha, &special)?;
        let text = extract_text(text)?;
        let seed = self.seed_for(&options);
        let t = text.as_text();
        let (ids, spans) = py.detach(|| self.inner.encode_with_offsets(t, &options, seed)).map_err(to_py)?;
        Ok((self.id_list(py, &ids)?, spans))
    }

    /// Pieces (as bytes) of `text`.
    #[pyo3(signature = (text, alpha=-1.0, allowed_special=None, disallowed_special=None))]
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        alpha: f64,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let special = self.policy(allowed_special, disallowed_special)?;
        let ids = self.encode_ids(py, text, &options(false, false, alpha, &special)?)?;
        let vocab = self.inner.vocab();
        PyList::new(py, ids.iter().filter_map(|&i| vocab.piece(i)).map(|p| PyBytes::new(py, p)))
    }

    /// Ids of many texts, encoded in parallel with the GIL released.
    #[pyo3(signature = (texts, add_bos=false, add_eos=false, alpha=-1.0, num_threads=None, allowed_special=None,
                        disallowed_special=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        add_bos: bool,
        add_eos: bool,
        alpha: f64,
        num_threads: Option<usize>,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let special = self.policy(allowed_special, disallowed_special)?;
        let options = options(add_bos, add_eos, alpha, &special)?;
        let owned = extract_texts(texts)?;
        let inputs: Vec<Text<'_>> = owned.iter().map(PyText::as_text).collect();
        let seed = self.seed_for(&options);
        // Blocks of documents are encoded on the pool while this thread turns the finished
        // ones, in order, into Python lists (which needs the GIL): the conversion overlaps the
        // encoding instead of following it.
        let threads = num_threads.unwrap_or_else(parallel::default_threads);
        if threads <= 1 {
            // one thread does it all, encoding then conversion
            let docs = self.encode_interruptibly(py, &inputs, &options, seed, num_threads)?;
            let lists = docs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    if i % 65536 == 65535 {
                        py.check_signals()?;
                    }
                    self.id_list(py, d)
                })
                .collect::<PyResult<Vec<_>>>()?;
            return PyList::new(py, lists);
        }
        let block = (inputs.len() / (8 * threads)).clamp(1, 4096);
        let out = PyList::empty(py);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<Vec<u32>>)>();
        // waited on without the GIL, from this thread only; dropped on Ctrl-C, which stops the
        // workers at their next block
        let rx = std::sync::Mutex::new(Some(rx));
        std::thread::scope(|scope| -> PyResult<()> {
            let inputs = &inputs;
            let options = &options;
            let worker = scope.spawn(move || {
                parallel::run_with_threads(num_threads, || {
                    inputs.par_chunks(block).enumerate().try_for_each_with(tx, |tx, (b, docs)| {
                        let ids = self.inner.encode_batch_at(docs, options, seed, b * block)?;
                        // the receiver hangs up on Ctrl-C or an error of its own
                        tx.send((b, ids)).map_err(|_| Error::Cancelled)
                    })
                })?
            });
            let mut pending = std::collections::BTreeMap::new();
            let mut next = 0;
            let receive = || rx.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|r| r.recv());
            let mut failed = None;
            while let Some(Ok((b, ids))) = py.detach(receive) {
                pending.insert(b, ids);
                let appended = (|| -> PyResult<()> {
                    while let Some(docs) = pending.remove(&next) {
                        for d in &docs {
                            out.append(self.id_list(py, d)?)?;
                        }
                        next += 1;
                    }
                    py.check_signals()
                })();
                if let Err(e) = appended {
                    failed = Some(e);
                    rx.lock().unwrap_or_else(|p| p.into_inner()).take();
                    break;
                }
            }
            let joined = py.detach(|| worker.join());
            if let Some(e) = failed {
                return Err(e);
            }
            joined
                .unwrap_or_else(|_| {
                    Err(Error::InvalidArgument("encoding failed unexpectedly (a worker panicked)".into()))
                })
                .map_err(to_py)
        })?;
        Ok(out)
    }

    /// Ids of many texts as one flat `uint32` array, and `int64` offsets (`len(texts) + 1` of
    /// them) such that text `i` has ids `ids[offsets[i]:offsets[i + 1]]`.
    #[pyo3(signature = (texts, add_bos=false, add_eos=false, alpha=-1.0, num_threads=None, allowed_special=None,
                        disallowed_special=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_batch_numpy<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        add_bos: bool,
        add_eos: bool,
        alpha: f64,
        num_threads: Option<usize>,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<IdsAndOffsets<'py>> {
        let special = self.policy(allowed_special, disallowed_special)?;
        let docs = self.encode_many(py, texts, &options(add_bos, add_eos, alpha, &special)?, num_threads)?;
        let (flat, offsets) = py.detach(|| {
            let mut offsets = Vec::with_capacity(docs.len() + 1);
            offsets.push(0i64);
            let total: usize = docs.iter().map(Vec::len).sum();
            let mut flat = Vec::with_capacity(total);
            for d in &docs {
                flat.extend_from_slice(d);
                offsets.push(flat.len() as i64);
            }
            (flat, offsets)
        });
        Ok((flat.into_pyarray(py), offsets.into_pyarray(py)))
    }

    /// The bytes of `ids` joined (ids 0-2 and negative ids skipped).
    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.inner.decode(&ids).map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The text of `ids`: their bytes decoded as UTF-8, invalid bytes dropped.
    fn decode(&self, ids: Vec<i64>) -> PyResult<String> {
        let bytes = self.inner.decode(&ids).map_err(to_py)?;
        Ok(bytepiece::normalize::decode_utf8_ignore(&bytes).into_owned())
    }

    /// The id of a piece (`bytes`; a `str` is its UTF-8 bytes, or the name of a reserved id,
    /// `"<pad>"`, `"<bos>"`, `"<eos>"`), or None.
    fn piece_to_id(&self, piece: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        match extract_text(piece)?.as_text() {
            Text::Str(s) => Ok(RESERVED_NAMES
                .iter()
                .position(|&r| r == s)
                .map(|i| i as u32)
                .or_else(|| self.inner.vocab().id(s.as_bytes()))),
            Text::Bytes(b) => Ok(self.inner.vocab().id(b)),
        }
    }

    /// The piece (`bytes`) of an id, or the name (`str`) of a reserved id; `KeyError` for an
    /// id past the vocabulary.
    fn id_to_piece<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyAny>> {
        let vocab = self.inner.vocab();
        let unknown = || to_py(Error::UnknownId { id, vocab_size: vocab.vocab_size() });
        let id = u32::try_from(id).map_err(|_| unknown())?;
        if let Some(name) = RESERVED_NAMES.get(id as usize) {
            return Ok(PyString::new(py, name).into_any());
        }
        vocab.piece(id).map(|p| PyBytes::new(py, p).into_any()).ok_or_else(unknown)
    }

    /// This model with special tokens added at the next free ids (see the core's
    /// `Vocab::with_special_tokens`), and how many were added; `seed` seeds its draws.
    #[pyo3(signature = (tokens, seed=None))]
    fn with_special_tokens(
        &self,
        py: Python<'_>,
        tokens: Vec<String>,
        seed: Option<u64>,
    ) -> PyResult<(PyEncoder, usize)> {
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let (vocab, added) = self.inner.vocab().with_special_tokens(&tokens).map_err(to_py)?;
        Ok((PyEncoder::build(py, vocab, seed)?, added))
    }

    /// This model with ordinary pieces added at the next free ids, and their ids: each with its
    /// count in `counts`, or with the count `texts` give it (see the core's
    /// `Encoder::estimate_counts`).
    #[pyo3(signature = (pieces, counts=None, texts=None, seed=None))]
    fn with_pieces(
        &self,
        py: Python<'_>,
        pieces: Vec<Vec<u8>>,
        counts: Option<Vec<u64>>,
        texts: Option<&Bound<'_, PyAny>>,
        seed: Option<u64>,
    ) -> PyResult<(PyEncoder, Vec<u32>)> {
        let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let counts = match (counts, texts) {
            (Some(counts), None) if counts.len() == pieces.len() => counts,
            (None, Some(texts)) => {
                let owned = extract_texts(texts)?;
                let texts: Vec<Text<'_>> = owned.iter().map(PyText::as_text).collect();
                py.detach(|| self.inner.estimate_counts(&pieces, &texts)).map_err(to_py)?
            }
            _ => return Err(PyValueError::new_err("give one count per piece, or texts to count them on")),
        };
        let added: Vec<(&[u8], u64)> = pieces.into_iter().zip(counts).collect();
        let (vocab, ids) = self.inner.vocab().with_pieces(&added).map_err(to_py)?;
        Ok((PyEncoder::build(py, vocab, seed)?, ids))
    }

    /// This model without `pieces` (pieces or special tokens); the ids after each removed one
    /// move down.
    #[pyo3(signature = (pieces, seed=None))]
    fn without_pieces(&self, py: Python<'_>, pieces: Vec<Vec<u8>>, seed: Option<u64>) -> PyResult<PyEncoder> {
        let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let vocab = self.inner.vocab().without_pieces(&pieces).map_err(to_py)?;
        PyEncoder::build(py, vocab, seed)
    }

    /// This model cut to `vocab_size` ids from its counts, as training's last step cuts it
    /// (special tokens kept first).
    #[pyo3(signature = (vocab_size, seed=None))]
    fn shrunk(&self, py: Python<'_>, vocab_size: usize, seed: Option<u64>) -> PyResult<PyEncoder> {
        let vocab = self.inner.vocab();
        let pieces: Vec<(Vec<u8>, u64)> =
            vocab.pieces().iter().zip(vocab.counts()).filter(|(_, &c)| c > 0).map(|(p, &c)| (p.to_vec(), c)).collect();
        let specials: Vec<String> =
            vocab.special_ids().iter().filter_map(|&id| String::from_utf8(vocab.piece(id)?.to_vec()).ok()).collect();
        let shrunk = trainer::prune_vocab(py, pieces, Some(vocab_size), 1, specials)?;
        PyEncoder::build(py, shrunk, seed)
    }

    /// The pieces in id order (from id 3).
    fn pieces<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.vocab().pieces().iter().map(|p| PyBytes::new(py, p)))
    }

    /// The counts in id order (from id 3).
    fn counts(&self) -> Vec<u64> {
        self.inner.vocab().counts().to_vec()
    }

    /// Encodes text files and `.jsonl` files to ids in `format` (`ids`, `jsonl`, `pieces`,
    /// `uint16` or `uint32`, see the core's `IdFormat`), in parallel with the GIL released, and
    /// calls `on_block(data, lengths, input_bytes)` with each block's output in input order:
    /// `data` the ids' bytes (`None` when they were written to `output`: an open file
    /// descriptor and the name of its file in errors), `lengths` each document's number of ids (`uint64`). `inputs` are
    /// `(path, field)`: `path` `-` is standard input; `field` `None` makes every line a
    /// document, else the named string field of each JSON record. Input is read in blocks of
    /// about `block_bytes` (the ids do not depend on it unless sampling). Returns what the run
    /// did (`documents`, `tokens`, `input_bytes`, `text_bytes`) and the seconds spent reading,
    /// encoding (summed over threads), writing (the calling thread's share: `output` and
    /// `on_block`) and in all.
    #[pyo3(signature = (inputs, on_block, format="ids", skip_empty=false, add_bos=false, add_eos=false, alpha=-1.0,
                        allowed_special=Vec::new(), num_threads=None, block_bytes=None, output=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_files<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<(String, Option<String>)>,
        on_block: Bound<'py, PyAny>,
        format: &str,
        skip_empty: bool,
        add_bos: bool,
        add_eos: bool,
        alpha: f64,
        allowed_special: Vec<String>,
        num_threads: Option<usize>,
        block_bytes: Option<usize>,
        output: Option<(i32, PathBuf)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let vocab = self.inner.vocab();
        let allowed: Vec<&str> = allowed_special.iter().map(String::as_str).collect();
        let special = SpecialTokens::select(vocab, Selection::Named(&allowed), "allowed_special").map_err(to_py)?;
        let special = SpecialPolicy::allowing(special);
        let options = options(add_bos, add_eos, alpha, &special)?;
        let job = EncodeFiles {
            encoder: &self.inner,
            skip_empty,
            seed: self.seed_for(&options),
            options,
            format: IdFormat::by_name(format, vocab).map_err(to_py)?,
            threads: num_threads.unwrap_or_else(parallel::default_threads),
            block: block_bytes.unwrap_or(BLOCK_BYTES),
        };
        if job.threads == 0 {
            return Err(PyValueError::new_err("num_threads must be at least 1"));
        }
        let inputs = inputs.into_iter().map(|(path, field)| open_input(path, field)).collect::<PyResult<Vec<_>>>()?;
        let mut output = output.map(|(fd, name)| output_file(fd).map(|f| (f, name))).transpose()?;
        let mut writeback = output.as_ref().map(|(file, _)| Writeback::new(file));
        let on_block = on_block.unbind();
        let mut failed = None;
        let ran = py.detach(|| {
            job.run(inputs, |encoded| {
                if let Some((file, name)) = output.as_mut() {
                    file.write_all(&encoded.bytes).map_err(|e| Error::io(&*name, e))?;
                    writeback.iter_mut().for_each(|w| w.written(encoded.bytes.len()));
                }
                Python::attach(|py| {
                    let data = match output {
                        Some(_) => None,
                        None => Some(PyBytes::new(py, &encoded.bytes)),
                    };
                    let args = (data, encoded.lengths.into_pyarray(py), encoded.input_bytes);
                    on_block.bind(py).call1(args).and_then(|_| py.check_signals())
                })
                .map_err(|e| {
                    failed = Some(e);
                    Error::Cancelled
                })
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let summary = ran.map_err(to_py)?;
        let out = PyDict::new(py);
        out.set_item("documents", summary.documents)?;
        out.set_item("tokens", summary.tokens)?;
        out.set_item("input_bytes", summary.input_bytes)?;
        out.set_item("text_bytes", summary.text_bytes)?;
        out.set_item("read_seconds", summary.read_seconds)?;
        out.set_item("encode_seconds", summary.encode_seconds)?;
        out.set_item("write_seconds", summary.sink_seconds)?;
        out.set_item("wall_seconds", summary.wall_seconds)?;
        Ok(out)
    }

    /// The ids of documents (document `i` is `ids[offsets[i]:offsets[i + 1]]`) written in
    /// `format` (as [`Self::encode_files`] writes them), and each document's number of ids.
    fn format_ids<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, u32>,
        offsets: PyReadonlyArray1<'py, i64>,
        format: &str,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyArray1<i64>>)> {
        let ids = ids.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let offsets = offsets.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let valid = offsets.first().is_none_or(|&o| o >= 0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_none_or(|&o| o as u64 <= ids.len() as u64);
        if !valid {
            return Err(PyValueError::new_err("offsets must rise from 0 or more to at most len(ids)"));
        }
        let format = IdFormat::by_name(format, self.inner.vocab()).map_err(to_py)?;
        let out = py.detach(|| {
            let mut out = Vec::with_capacity(format.size_hint(ids.len()));
            for w in offsets.windows(2) {
                format.append(&ids[w[0] as usize..w[1] as usize], &mut out);
            }
            out
        });
        let lengths: Vec<i64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        Ok((PyBytes::new(py, &out), lengths.into_pyarray(py)))
    }

    /// The special tokens: (text, id) in id order.
    fn special_tokens(&self) -> Vec<(String, u32)> {
        let vocab = self.inner.vocab();
        vocab
            .special_ids()
            .iter()
            .filter_map(|&id| Some((String::from_utf8(vocab.piece(id)?.to_vec()).ok()?, id)))
            .collect()
    }

    /// The scores (log-probabilities) in id order (from id 3).
    fn scores(&self) -> Vec<f64> {
        self.inner.scores().to_vec()
    }

    /// The model in the original's JSON format.
    fn to_json(&self) -> String {
        model_io::to_json(self.inner.vocab())
    }

    /// Saves the model in the original's JSON format, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| model_io::save(self.inner.vocab(), &path)).map_err(to_py)
    }
}

/// The compiled core of bytepiece_rs.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEncoder>()?;
    m.add_class::<files::PyAtomicFile>()?;
    m.add_class::<progress::PyProgressBar>()?;
    m.add_class::<trainer::PyTrainer>()?;
    m.add_function(wrap_pyfunction!(trainer::prune_to_json, m)?)?;
    m.add_class::<trainer::NgramModelCore>()?;
    m.add_function(wrap_pyfunction!(trainer::merge_tables, m)?)?;
    m.add_function(wrap_pyfunction!(complete_megatron_index, m)?)?;
    m.add("MEGATRON_MAGIC", PyBytes::new(m.py(), megatron::MAGIC))?;
    m.add("MEGATRON_HEADER_BYTES", megatron::HEADER_BYTES)?;
    m.add("UNICODE_VERSION", bytepiece::normalize::UNICODE_VERSION)?;
    m.add("RESERVED", bytepiece::vocab::RESERVED_NAMES)?;
    m.add("NUM_RESERVED", bytepiece::vocab::NUM_RESERVED)?;
    m.add("BOS_ID", bytepiece::vocab::BOS_ID)?;
    m.add("EOS_ID", bytepiece::vocab::EOS_ID)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
