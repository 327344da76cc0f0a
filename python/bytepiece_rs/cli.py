"""The ``bytepiece`` command (also ``python -m bytepiece_rs``): train, encode, decode, stats, info.

Every command reports a problem as one line on stderr and exits with status 2; outputs are
written to a temporary file beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from typing import IO, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._core import __version__, format_ids
from ._files import AtomicOutput
from ._signals import Terminated, terminations_raise
from .tokenizer import Tokenizer
from .trainer import TEXT_UNITS, Trainer

#: Documents are encoded in batches of about this many bytes of text (bounded memory).
BATCH_BYTES = 4 << 20

#: Megatron-LM's ``MMapIndexedDataset`` index: magic, version, and the dtype codes we write.
MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {"uint16": 8, "uint32": 4}  # uint32 ids (< 2**31) are read as int32


class CliError(Exception):
    """A problem to report on one line, exit status 2."""


def _open_output(out: AtomicOutput, target: str):
    try:
        return out.open(target)
    except OSError as e:
        raise CliError(f"{target}: cannot write ({e.strerror})") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        self.exit(2, f"bytepiece: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar on stderr with MB/s; silent when stderr is not a terminal or
    when ``quiet``."""

    def __init__(self, label: str, total_bytes: Optional[int], quiet: bool) -> None:
        self.label, self.total, self.done = label, total_bytes, 0
        self.show = not quiet and sys.stderr.isatty()
        self.start = self.last = time.perf_counter()

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        now = time.perf_counter()
        if self.show and now - self.last >= 0.1:
            self.last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        rate = self.done / 1e6 / max(now - self.start, 1e-9)
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"{self.label} [{bar:<30}] {frac:4.0%} {self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB {rate:,.1f} MB/s"
        else:
            text = f"{self.label} {self.done / 1e6:,.1f} MB {rate:,.1f} MB/s"
        sys.stderr.write("\r" + text + end)
        sys.stderr.flush()

    def close(self) -> None:
        if self.show:
            self._draw(time.perf_counter(), "\n")


# --------------------------------------------------------------------------- inputs


def _is_jsonl(path: str, field: Optional[str]) -> bool:
    return field is not None or path.endswith((".jsonl", ".json"))


def _input_size(paths: Sequence[str]) -> Optional[int]:
    """The bytes to read, when every input is a regular file (else unknown)."""
    if any(p == "-" or not os.path.isfile(p) for p in paths):
        return None
    try:
        return sum(os.path.getsize(p) for p in paths)
    except OSError:
        return None


def _check_file(path: str, what: str = "file") -> None:
    """Fails unless ``path`` can be read as a ``what``: it exists and is no directory (a pipe,
    such as bash's ``<(zcat corpus.gz)``, is fine)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a {what}")


def check_output(path: Optional[str]) -> None:
    """Fails at once, before any work, if ``path`` cannot be written: its folder must exist and
    be writable, and it must not be a folder itself (``-`` and ``None``, standard output, can)."""
    if path in (None, "-"):
        return
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a file to write")
    if os.path.exists(path) and not os.path.isfile(path):
        return  # a FIFO or a device: written to as it is
    target = os.path.dirname(os.path.realpath(path))  # a symlink's target is what is replaced
    if not os.path.isdir(target):
        raise CliError(f"{path}: no such directory {target}")
    if not os.access(target, os.W_OK | os.X_OK):
        raise CliError(f"{path}: directory {target} is not writable")


def _check_inputs(paths: Sequence[str]) -> None:
    for p in paths:
        if p != "-":
            _check_file(p)


@contextlib.contextmanager
def _open_binary(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def read_documents(paths: Sequence[str], field: Optional[str], keep_newlines: bool = False) -> Iterator[Tuple[str, int]]:
    """Yields ``(document, bytes read)``: each line of a text file split at ``\\n`` (without
    it; a ``\\r`` before it stays), or the ``field`` (default ``"text"``) of each record of a
    ``.jsonl`` file. With ``keep_newlines``, a text file's lines keep their newline and blank
    lines join the line before them: texts that training chunks as the whole file (``bytepiece
    train --text-unit file``)."""
    for path in paths:
        jsonl = _is_jsonl(path, field)
        key = field or "text"
        pending, pending_bytes = "", 0  # keep_newlines: blank lines join the line before them
        with _open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise CliError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
                if not jsonl and keep_newlines:
                    # texts cut where training cuts them anyway: after a run of newlines
                    if line != "\n" and pending:
                        yield pending, pending_bytes
                        pending, pending_bytes = "", 0
                    pending += line
                    pending_bytes += len(raw)
                    continue
                if not jsonl:
                    yield line[:-1] if line.endswith("\n") else line, len(raw)
                    continue
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as e:
                    raise CliError(f"{path}:{lineno}: invalid JSON ({e})") from None
                text = record.get(key) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise CliError(f"{path}:{lineno}: no string field {key!r}")
                yield text, len(raw)
        if pending:
            yield pending, pending_bytes


def batches(docs: Iterator[Tuple[str, int]], limit: int = BATCH_BYTES) -> Iterator[Tuple[List[str], int]]:
    """Groups documents into lists of about ``limit`` bytes; yields ``(texts, bytes read)``."""
    texts: List[str] = []
    size = 0
    for text, n in docs:
        texts.append(text)
        size += n
        if size >= limit:
            yield texts, size
            texts, size = [], 0
    if texts:
        yield texts, size


def prefetched(it: Iterator, depth: int = 2) -> Iterator:
    """Runs ``it`` in a thread, ``depth`` items ahead (reading overlaps encoding, which
    releases the GIL); exceptions reach the consumer."""
    import queue

    q: "queue.Queue" = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def run() -> None:
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put((True, item))
            q.put((True, done))
        except BaseException as e:  # handed to the consumer
            q.put((False, e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()


# --------------------------------------------------------------------------- outputs


class Writer:
    """Writes the ids of batches of documents in one output format."""

    def __init__(self, out: AtomicOutput, path: str, tokenizer: Tokenizer, dtype: np.dtype) -> None:
        self.tokenizer, self.dtype = tokenizer, dtype

    def write(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass


class IdsWriter(Writer):
    """One line per document: its ids separated by spaces."""

    PREFIX, SEP, SUFFIX = "", " ", "\n"

    def __init__(self, out: AtomicOutput, path: str, tokenizer: Tokenizer, dtype: np.dtype) -> None:
        super().__init__(out, path, tokenizer, dtype)
        self.f = _open_output(out, path) if path != "-" else sys.stdout.buffer

    def write(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.f.write(format_ids(ids, offsets, self.PREFIX, self.SEP, self.SUFFIX))


class PiecesWriter(IdsWriter):
    """One line per document: a JSON list of its pieces (invalid UTF-8 as ``\\xNN``)."""

    PREFIX, SEP, SUFFIX = "[", ", ", "]\n"

    def __init__(self, out: AtomicOutput, path: str, tokenizer: Tokenizer, dtype: np.dtype) -> None:
        super().__init__(out, path, tokenizer, dtype)
        pieces = tokenizer.ids_to_pieces(range(tokenizer.vocab_size))
        self.names = [
            json.dumps(p if isinstance(p, str) else p.decode("utf-8", "backslashreplace"), ensure_ascii=False)
            for p in pieces
        ]

    def write(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        name, flat, o = self.names.__getitem__, ids.tolist(), offsets.tolist()
        pre, sep, suf = self.PREFIX, self.SEP, self.SUFFIX
        text = "".join(pre + sep.join(map(name, flat[o[i]:o[i + 1]])) + suf for i in range(len(o) - 1))
        self.f.write(text.encode("utf-8"))


class JsonlWriter(IdsWriter):
    """One JSON object per document: ``{"ids": [...]}``."""

    PREFIX, SEP, SUFFIX = '{"ids": [', ", ", "]}\n"


class NpyWriter(Writer):
    """A ``.npy`` array of every id, and ``PATH.offsets.npy`` (``int64``): document ``i`` is
    ``ids[offsets[i]:offsets[i + 1]]``. Both are streamed: memory does not grow with the input."""

    HEADER = 128  # bytes, room for any length

    def __init__(self, out: AtomicOutput, path: str, tokenizer: Tokenizer, dtype: np.dtype) -> None:
        super().__init__(out, path, tokenizer, dtype)
        self.f = _open_output(out, path)
        self.f.write(b"\0" * self.HEADER)
        self.n = 0
        self.docs = 0
        offsets_path = (path[:-4] if path.endswith(".npy") else path) + ".offsets.npy"
        self.offsets_file = _open_output(out, offsets_path)
        self.offsets_file.write(b"\0" * self.HEADER)
        self.offsets_file.write(_little(np.zeros(1, np.int64)))

    def write(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.f.write(ids.astype(self.dtype).tobytes())
        self.offsets_file.write(_little(offsets[1:].astype(np.int64) + self.n))
        self.n += len(ids)
        self.docs += len(offsets) - 1

    def finish(self) -> None:
        for f, dtype, n in ((self.f, self.dtype, self.n), (self.offsets_file, np.dtype(np.int64), self.docs + 1)):
            f.seek(0)
            f.write(_npy_header(dtype, n, self.HEADER))
            f.seek(0, os.SEEK_END)


def _little(a: np.ndarray) -> bytes:
    """The bytes of ``a`` in little-endian order (the formats' byte order on any machine)."""
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def _npy_header(dtype: np.dtype, n: int, size: int) -> bytes:
    """A version 1.0 ``.npy`` header of exactly ``size`` bytes for a 1-D array."""
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (np.dtype(dtype).str, n)
    body = d.encode("latin1").ljust(size - 10 - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


class BinWriter(Writer):
    """Megatron-LM's indexed dataset: ``PREFIX.bin`` (every id, little-endian) and ``PREFIX.idx``
    (the magic ``MMIDIDX``, version 1, a dtype code, then per document its length (``int32``)
    and byte offset (``int64``), and the document index ``0..n``).

    Streamed: the lengths go to the index as documents come; at the end the offsets are
    computed from the lengths read back in chunks, so memory does not grow with the input."""

    HEADER = len(MEGATRON_MAGIC) + struct.calcsize("<QBQQ")
    CHUNK = 1 << 20  # documents per read-back

    def __init__(self, out: AtomicOutput, path: str, tokenizer: Tokenizer, dtype: np.dtype) -> None:
        super().__init__(out, path, tokenizer, dtype)
        prefix = path[:-4] if path.endswith(".bin") else path
        self.f = _open_output(out, prefix + ".bin")
        self.idx = _open_output(out, prefix + ".idx")
        self.idx.write(b"\0" * self.HEADER)
        self.docs = 0

    def write(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.f.write(ids.astype(self.dtype).tobytes())
        self.idx.write(_little(np.diff(offsets).astype(np.int32)))
        self.docs += len(offsets) - 1

    def finish(self) -> None:
        idx, n = self.idx, self.docs
        idx.flush()
        pointer = 0
        for start in range(0, n, self.CHUNK):
            count = min(self.CHUNK, n - start)
            raw = os.pread(idx.fileno(), 4 * count, self.HEADER + 4 * start)
            sizes = np.frombuffer(raw, dtype="<i4").astype(np.int64) * self.dtype.itemsize
            pointers = np.cumsum(sizes) - sizes + pointer
            pointer = int(pointers[-1] + sizes[-1])
            idx.write(_little(pointers))
        for start in range(0, n + 1, self.CHUNK):
            idx.write(_little(np.arange(start, min(start + self.CHUNK, n + 1), dtype=np.int64)))
        idx.seek(0)
        idx.write(MEGATRON_MAGIC + struct.pack("<QBQQ", 1, MEGATRON_DTYPE_CODES[self.dtype.name], n, n + 1))
        idx.seek(0, os.SEEK_END)


WRITERS = {"ids": IdsWriter, "pieces": PiecesWriter, "jsonl": JsonlWriter, "npy": NpyWriter, "bin": BinWriter}


def read_megatron(prefix: str) -> Tuple[np.ndarray, np.ndarray]:
    """Reads what ``bytepiece encode --format bin`` wrote: ``(ids, offsets)``."""
    with open(prefix + ".idx", "rb") as f:
        head = f.read(len(MEGATRON_MAGIC) + 9 + 16)
        if head[: len(MEGATRON_MAGIC)] != MEGATRON_MAGIC:
            raise ValueError(f"{prefix}.idx: not a Megatron index")
        version, code = struct.unpack_from("<QB", head, len(MEGATRON_MAGIC))
        n, _ = struct.unpack_from("<QQ", head, len(MEGATRON_MAGIC) + 9)
        sizes = np.frombuffer(f.read(4 * n), dtype="<i4")
    dtype = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}[code]
    ids = np.fromfile(prefix + ".bin", dtype=np.dtype(dtype).newbyteorder("<"))
    return ids, np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


# --------------------------------------------------------------------------- commands


def _tokenizer(model: Optional[str], seed: Optional[int] = None) -> Tokenizer:
    if model is not None:
        _check_file(model, "model file")
    return Tokenizer(model, seed=seed)


def _dtype(name: Optional[str], tokenizer: Tokenizer) -> np.dtype:
    if name is None:
        name = "uint16" if tokenizer.vocab_size <= 1 << 16 else "uint32"
    if name == "uint16" and tokenizer.vocab_size > 1 << 16:
        raise CliError(f"the model has {tokenizer.vocab_size:,} ids, more than uint16 holds: use --dtype uint32")
    return np.dtype(name)


def _allowed_special(value: Optional[str], tokenizer: Tokenizer):
    if value is None:
        return frozenset()
    if value == "all":
        return "all"
    tokens = frozenset(t for t in value.split(",") if t)
    unknown = sorted(tokens - set(tokenizer.special_tokens))
    if unknown:
        have = ", ".join(tokenizer.special_tokens) or "none"
        raise CliError(f"--allow-special: {unknown[0]!r} is not a special token of the model (it has: {have})")
    return tokens


def cmd_encode(a: argparse.Namespace) -> None:
    check_output(a.output)
    tokenizer = _tokenizer(a.model, a.seed)
    if a.text is None and not a.inputs:
        a.inputs = ["-"]  # like spm_encode: standard input
    _check_inputs(a.inputs)
    if a.format in ("npy", "bin") and a.output in (None, "-"):
        raise CliError(f"--format {a.format} needs -o OUT")
    dtype = _dtype(a.dtype, tokenizer)
    allowed = _allowed_special(a.allow_special, tokenizer)
    if a.text is not None:
        docs: Iterator[Tuple[str, int]] = iter([(t, len(t.encode())) for t in a.text])
    else:
        docs = read_documents(a.inputs, a.field)
    if a.skip_empty:
        docs = ((text, n) for text, n in docs if text)
    progress = Progress("encode", _input_size(a.inputs), a.quiet)
    n_docs = 0
    with AtomicOutput() as out:  # renamed into place only if everything succeeds
        writer = WRITERS[a.format](out, a.output or "-", tokenizer, dtype)
        for texts, nbytes in prefetched(batches(docs)):
            ids, offsets = tokenizer.encode_batch_numpy(texts, a.add_bos, a.add_eos, a.alpha, a.threads,
                                                        allowed_special=allowed, disallowed_special=())
            writer.write(ids, offsets)
            n_docs += len(texts)
            progress.advance(nbytes)
        if n_docs == 0 and a.format in ("bin", "npy"):
            # an empty dataset is no dataset: Megatron-LM's loader cannot map an empty .bin
            source = "the --text given" if a.text is not None else ", ".join(a.inputs)
            raise CliError(f"{source}: no documents to encode{' (all empty)' if a.skip_empty else ''}; "
                           f"no {a.format} written")
        writer.finish()
    progress.close()
    if n_docs == 0 and not a.quiet:
        print(f"bytepiece: warning: {', '.join(a.inputs or ['--text'])}: no documents to encode", file=sys.stderr)


#: What ``decode`` reads, by file extension (anything else: lines of ids).
DECODE_FORMATS = {".jsonl": "jsonl", ".npy": "npy", ".bin": "bin", ".idx": "bin"}


def _encoded_documents(path: str, fmt: str) -> Iterator[Tuple[str, Sequence[int]]]:
    """``(where, ids)`` of every document of a file that ``encode`` wrote, in order: lines of ids
    (``ids``), ``{"ids": [...]}`` records (``jsonl``), ``PATH`` + ``PATH.offsets.npy`` (``npy``)
    or ``PREFIX.bin`` + ``PREFIX.idx`` (``bin``)."""
    if fmt == "npy":
        if path.endswith(".offsets.npy"):
            raise CliError(f"{path}: the offsets of an npy output; give its ids' .npy")
        offsets_path = path[:-4] + ".offsets.npy"
        try:
            ids, offsets = np.load(path, mmap_mode="r"), np.load(offsets_path)
        except FileNotFoundError:
            raise CliError(f"{offsets_path}: no such file (encode --format npy writes it beside {path})") from None
        except ValueError as e:
            raise CliError(f"{path}: not an npy output of encode ({e})") from None
        for i in range(len(offsets) - 1):
            yield f"{path}: document {i}", ids[offsets[i]:offsets[i + 1]]
        return
    if fmt == "bin":
        prefix = os.path.splitext(path)[0]
        try:
            ids, offsets = read_megatron(prefix)
        except (OSError, ValueError, KeyError, struct.error) as e:
            raise CliError(f"{prefix}.bin/.idx: not a Megatron dataset that encode wrote ({e})") from None
        for i in range(len(offsets) - 1):
            yield f"{prefix}.bin: document {i}", ids[offsets[i]:offsets[i + 1]]
        return
    with _open_binary(path) as src:
        for lineno, line in enumerate(src, 1):
            where = f"{path}:{lineno}"
            if fmt == "jsonl" or line.lstrip().startswith(b"{"):
                try:
                    ids = json.loads(line)["ids"]
                except (ValueError, KeyError, TypeError):
                    raise CliError(f"{where}: not a record {{\"ids\": [...]}}") from None
            else:
                try:
                    ids = [int(x) for x in line.split()]
                except ValueError:
                    raise CliError(f"{where}: not a line of integer ids") from None
            yield where, ids


def cmd_decode(a: argparse.Namespace) -> None:
    check_output(a.output)
    tokenizer = _tokenizer(a.model)
    sources = [(path, a.format if a.format != "auto" else DECODE_FORMATS.get(os.path.splitext(path)[1].lower(), "ids"))
               for path in a.inputs or ["-"]]
    for path, fmt in sources:
        if path == "-" and fmt in ("npy", "bin"):
            raise CliError(f"--format {fmt}: reads files, not standard input")
        _check_inputs([os.path.splitext(path)[0] + ext for ext in (".bin", ".idx")] if fmt == "bin" else [path])
    with AtomicOutput() as out:
        f = _open_output(out, a.output) if a.output not in (None, "-") else sys.stdout.buffer
        for path, fmt in sources:
            for where, ids in _encoded_documents(path, fmt):
                try:
                    f.write(tokenizer.decode(ids).encode() + b"\n")
                except (ValueError, KeyError, OverflowError, TypeError) as e:
                    raise CliError(f"{where}: {e}") from None


def cmd_stats(a: argparse.Namespace) -> None:
    tokenizer = _tokenizer(a.model)
    _check_inputs(a.inputs)
    used = np.zeros(tokenizer.vocab_size, np.int64)
    n_bytes = n_tokens = n_docs = 0
    progress = Progress("stats", _input_size(a.inputs), a.quiet)
    for texts, nbytes in prefetched(batches(read_documents(a.inputs, a.field))):
        ids, offsets = tokenizer.encode_batch_numpy(texts, num_threads=a.threads)
        used += np.bincount(ids, minlength=tokenizer.vocab_size)
        n_bytes += sum(len(t.encode()) for t in texts)
        n_tokens += len(ids)
        n_docs += len(texts)
        progress.advance(nbytes)
    progress.close()
    stats = {
        "documents": n_docs,
        "bytes": n_bytes,
        "tokens": n_tokens,
        "bytes_per_token": n_bytes / n_tokens if n_tokens else None,
        "vocab_size": tokenizer.vocab_size,
        "ids_used": int(np.count_nonzero(used)),
        "vocab_used": float(np.count_nonzero(used[3:]) / max(tokenizer.vocab_size - 3, 1)),
    }
    _print_report(stats, a.json)


def cmd_info(a: argparse.Namespace) -> None:
    tokenizer = _tokenizer(a.model)
    model = tokenizer.to_dict()
    pieces = [tokenizer.id_to_piece(i) for i in range(3, tokenizer.vocab_size)]
    raw = [p if isinstance(p, bytes) else p.encode() for p in pieces]
    lengths = np.array([len(p) for p in raw])
    counts = np.array([v[-1] for v in model.values()], dtype=np.float64)
    invalid = 0
    for p in raw:
        try:
            p.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
    info = {
        "model": a.model or "(bundled default)",
        "vocab_size": tokenizer.vocab_size,
        "reserved": {"<pad>": 0, "<bos>": 1, "<eos>": 2},
        "special_tokens": tokenizer.special_tokens,
        "pieces": len(pieces) - len(tokenizer.special_tokens),
        "piece_bytes_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "piece_bytes_max": int(lengths.max()) if len(lengths) else 0,
        "pieces_not_utf8": invalid,
        "total_count": int(counts.sum()),
    }
    _print_report(info, a.json)


def cmd_convert(a: argparse.Namespace) -> None:
    check_output(a.output)
    tokenizer = _tokenizer(a.model)
    if a.to == "sentencepiece":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unused = tokenizer.convert_to_sentencepiece(a.output, exact_original=a.exact_original)
        if unused and not a.quiet:
            print(
                f"bytepiece: note: {len(unused)} pieces are not valid UTF-8 and are UNUSED in the "
                "SentencePiece model (its ids differ where BytePiece uses them)",
                file=sys.stderr,
            )
    else:
        tokenizer.convert_to_hf(a.output)


def _print_report(d: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(d, ensure_ascii=False))
        return
    for k, v in d.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, int):
            v = f"{v:,}"
        print(f"{k:<18} {v}")


def cmd_train(a: argparse.Namespace) -> None:
    check_output(a.output)
    sizes = _sizes(a.vocab_size)
    trainer = Trainer(
        order=a.order,
        max_vocab_size=sizes if len(sizes) > 1 else sizes[0],
        max_piece_length=a.max_piece_length,
        min_count=a.min_count,
        isolate_digits=a.isolate_digits,
        ensure_unicode=not a.no_ensure_unicode,
        progress=False if a.quiet else None,
        max_memory_mb=a.max_memory,
        temp_dir=a.temp_dir,
    )
    workers = a.threads or os.cpu_count() or 1
    with trainer.reporting():  # one summary line, naming the files written
        if a.dataset:
            trainer.train(_dataset_texts(a.dataset, a.split, a.column), workers=workers)
        else:
            if not a.inputs:
                raise CliError("nothing to train on: give INPUT files, - for stdin, or --dataset")
            _check_inputs(a.inputs)
            with tempfile.TemporaryDirectory(prefix="bytepiece-", dir=a.temp_dir) as spool:
                # training reads its files twice: a pipe is copied to a file first, to be the same text
                inputs = [_spooled(p, spool, i) for i, p in enumerate(a.inputs)]
                plain = [p for p in inputs if p != "-" and not _is_jsonl(p, a.field)]
                if len(plain) == len(inputs):  # read by Rust, streaming
                    trainer.train_from_files(plain, workers=workers, text_unit=a.text_unit)
                else:
                    whole = a.text_unit == "file"
                    texts = (t for t, _ in read_documents(inputs, a.field, keep_newlines=whole))
                    trainer.train(texts, workers=workers)
        check_output(a.output)  # again: it may have gone while training
        trainer.save(a.output)


def _spooled(path: str, folder: str, i: int) -> str:
    """``path``, or for a pipe or other stream that reads once, a copy of it in ``folder`` (with
    its extension, which says its format)."""
    if path == "-" or os.path.isfile(path):
        return path
    copy = os.path.join(folder, f"input-{i}{os.path.splitext(path)[1]}")
    with open(path, "rb") as src, open(copy, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return copy


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--vocab-size: not a size or a comma list of sizes: {text!r}") from None
    if not sizes:
        raise CliError("--vocab-size: no size given")
    return sizes


def _dataset_texts(source: Sequence[str], split: str, column: str) -> Iterator[str]:
    """The ``column`` of a ``datasets`` source on disk (a directory, or parquet / arrow / json /
    text / csv files), streamed."""
    try:
        import datasets
    except ImportError:
        raise CliError("--dataset needs the `datasets` package (pip install datasets)") from None
    _check_inputs([s for s in source if not os.path.isdir(s)])
    builders = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".txt": "text", ".csv": "csv"}
    try:
        if len(source) == 1 and os.path.isdir(source[0]):
            ds = datasets.load_dataset(source[0], split=split, streaming=True)
        else:
            kinds = {builders.get(os.path.splitext(s)[1]) for s in source}
            if len(kinds) != 1 or None in kinds:
                raise CliError("--dataset: give files of one kind: " + ", ".join(sorted(builders)))
            ds = datasets.load_dataset(kinds.pop(), data_files=list(source), split=split, streaming=True)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(f"--dataset: {e}") from None
    for i, row in enumerate(ds):
        text = row.get(column)
        if not isinstance(text, str):
            raise CliError(f"--dataset: row {i} has no string column {column!r}")
        yield text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bytepiece", description="BytePiece tokenizer (Rust engine): train, encode, decode, inspect.")
    p.add_argument("--version", action="version", version=f"bytepiece-rs {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(s: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            s.add_argument("-m", "--model", help="model file (default: the bundled model)")
        s.add_argument("--threads", type=_positive_int, default=None, help="threads (default: all cores)")
        s.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr (bars, the summary of a training)")

    t = sub.add_parser("train", help="train a model on text files, jsonl, stdin or a datasets source",
                       description="Train a model. A text of a text file (or of stdin) is a line, without its "
                                   "newline (see --text-unit); a text of a .jsonl file is the --field of a record; "
                                   "a text of --dataset is the --column of a row.")
    t.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="text files (each line a text), .jsonl files (each record a text), - for stdin")
    t.add_argument("-o", "--output", required=True, help="model file to write (with a list of sizes: OUTPUT.SIZE each)")
    t.add_argument("--vocab-size", required=True, help="vocabulary size, or a comma list of sizes")
    t.add_argument("--order", type=_positive_int, default=6)
    t.add_argument("--min-count", type=_positive_int, default=2)
    t.add_argument("--max-piece-length", type=_positive_int, default=36)
    t.add_argument("--isolate-digits", action="store_true")
    t.add_argument("--no-ensure-unicode", action="store_true")
    t.add_argument("--text-unit", choices=TEXT_UNITS, default=TEXT_UNITS[0],
                   help="what a text of a text file or stdin is: 'line', each line without its newline "
                        "(default; as encode reads them), or 'file', the whole file with its newlines "
                        "(pieces may span lines); .jsonl records and --dataset rows are one text each either way")
    t.add_argument("--field", help="the text field of .jsonl records (default: text)")
    t.add_argument("--dataset", nargs="+", metavar="DIR_OR_FILE", help="a datasets source on disk")
    t.add_argument("--split", default="train", help="the dataset split (default: train)")
    t.add_argument("--column", default="text", help="the dataset column (default: text)")
    t.add_argument("--max-memory", type=_positive_int, metavar="MB",
                   help="bound the memory of the whole training to about MB megabytes (spilling to disk; same model); "
                        "default: no bound, the fastest")
    t.add_argument("--temp-dir", metavar="DIR", help="folder for temporary files (default: the system's)")
    common(t, model=False)
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("encode", help="encode files (one document per line, or per .jsonl record)")
    e.add_argument("inputs", nargs="*", metavar="INPUT", help="text or .jsonl files, - for stdin (the default)")
    e.add_argument("--text", action="append", help="encode this text (repeatable) instead of files")
    e.add_argument("-o", "--output", help="output file (default: stdout; bin: PREFIX[.bin])")
    e.add_argument("--format", choices=sorted(WRITERS), default="ids")
    e.add_argument("--dtype", choices=["uint16", "uint32"], help="npy / bin ids (default: uint16 if the vocabulary fits)")
    e.add_argument("--add-bos", action="store_true")
    e.add_argument("--add-eos", action="store_true")
    e.add_argument("--allow-special", metavar="TOKENS",
                   help="special tokens whose text becomes their id: 'all' or a comma list "
                        "(default: none; their text is encoded as ordinary text)")
    e.add_argument("--alpha", type=float, default=-1, help="sample with this alpha (>= 0); default: best segmentation")
    e.add_argument("--seed", type=int, default=None, help="seed of the draws when sampling")
    e.add_argument("--field", help="the text field of .jsonl records (default: text)")
    e.add_argument("--skip-empty", action="store_true",
                   help="drop empty documents (lines with nothing before the newline, empty .jsonl texts) "
                        "instead of encoding each as a document of no ids (or just --add-bos/--add-eos)")
    common(e)
    e.set_defaults(run=cmd_encode)

    d = sub.add_parser("decode", help="decode what encode wrote back to text, one line per document")
    d.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="files that encode wrote: lines of ids, .jsonl, .npy (with its .offsets.npy), .bin/.idx "
                        "(default: stdin, lines of ids or jsonl records)")
    d.add_argument("--format", choices=["auto", "ids", "jsonl", "npy", "bin"], default="auto",
                   help="what the inputs hold (default: by extension; anything else is lines of ids)")
    d.add_argument("-o", "--output", help="output file (default: stdout)")
    common(d)
    d.set_defaults(run=cmd_decode)

    s = sub.add_parser("stats", help="bytes, tokens, bytes/token and vocabulary use on files")
    s.add_argument("inputs", nargs="+", metavar="INPUT")
    s.add_argument("--field", help="the text field of .jsonl records (default: text)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    common(s)
    s.set_defaults(run=cmd_stats)

    i = sub.add_parser("info", help="describe a model")
    i.add_argument("-m", "--model", help="model file (default: the bundled model)")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(run=cmd_info)
    c = sub.add_parser("convert", help="write the model for SentencePiece or HF tokenizers")
    c.add_argument("-m", "--model", help="model file (default: the bundled model)")
    c.add_argument("--to", choices=["sentencepiece", "hf"], required=True)
    c.add_argument("-o", "--output", required=True, help="file to write (.model, or tokenizer.json)")
    c.add_argument("--exact-original", action="store_true", help="sentencepiece: the original's conversion, byte for byte")
    c.add_argument("-q", "--quiet", action="store_true", help="no note on unconvertible pieces")
    c.set_defaults(run=cmd_convert)

    from .show import add_command as add_show

    add_show(sub)
    return p


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {v}")
    return v


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # SIGTERM and SIGHUP (timeout, schedulers, docker stop, a closed terminal) stop every
        # command as Ctrl-C does: temporary files removed, the previous output intact
        with terminations_raise():
            args.run(args)
    except CliError as e:
        print(f"bytepiece: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, TypeError, KeyError) as e:
        msg = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename and e.strerror else str(e)
        print(f"bytepiece: error: {msg}", file=sys.stderr)
        return 2
    except Terminated as e:
        print(f"bytepiece: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("bytepiece: interrupted", file=sys.stderr)
        return 130
    return 0
