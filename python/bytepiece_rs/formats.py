"""The files the package reads and writes around a model: documents in (text lines, ``.jsonl``
records) and ids out (lines of ids, ``jsonl``, pieces, ``.npy`` with offsets, Megatron-LM's
``.bin``/``.idx``), and reading those outputs back.

Used by the command line and by :mod:`bytepiece_rs.distributed`. Problems with an input are
:class:`FormatError` (a ``ValueError``) naming the file and line: ``PATH:LINE: what is wrong``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import sys
from typing import IO, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._core import MEGATRON_HEADER_BYTES, MEGATRON_MAGIC, complete_megatron_index
from ._files import AtomicOutput

#: Megatron-LM's ``MMapIndexedDataset`` index: the dtype codes we write.
MEGATRON_DTYPE_CODES = {"uint16": 8, "uint32": 4}  # uint32 ids (< 2**31) are read as int32

#: Documents are grouped in batches of about this many bytes of text (bounded memory).
BATCH_BYTES = 4 << 20


class FormatError(ValueError):
    """An input that is not what its format says, named: ``PATH[:LINE]: what is wrong``."""


# --------------------------------------------------------------------------- documents in


def is_jsonl(path: str, field: Optional[str]) -> bool:
    """Whether ``path`` holds JSON records (a ``field`` was named, or it ends in ``.jsonl`` /
    ``.json``) rather than lines of text."""
    return field is not None or path.endswith((".jsonl", ".json"))


def document_fields(paths: Sequence[str], field: Optional[str]) -> List[Tuple[str, Optional[str]]]:
    """``(path, field)`` for each input, as the core's file pipeline takes them: the JSON field
    holding a ``.jsonl`` file's documents (default ``"text"``), ``None`` for lines of text."""
    return [(p, (field or "text") if is_jsonl(p, field) else None) for p in paths]


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
    """``path`` opened for reading bytes; ``-`` is standard input."""
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def read_documents(
    paths: Sequence[str], field: Optional[str], keep_newlines: bool = False
) -> Iterator[Tuple[str, int]]:
    """Yields ``(document, bytes read)``: each line of a text file split at ``\\n`` (without
    it; a ``\\r`` before it stays), or the ``field`` (default ``"text"``) of each record of a
    ``.jsonl`` file. With ``keep_newlines``, a text file's lines keep their newline and blank
    lines join the line before them: texts that training chunks as the whole file (``bytepiece
    train --text-unit file``). (The command line's ``encode`` reads the same documents in Rust,
    in parallel.)"""
    for path in paths:
        jsonl = is_jsonl(path, field)
        key = field or "text"
        pending, pending_bytes = "", 0  # keep_newlines: blank lines join the line before them
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise FormatError(f"{path}:{lineno}: not valid UTF-8 (at byte {e.start})") from None
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
                    raise FormatError(f"{path}:{lineno}: invalid JSON ({e})") from None
                text = record.get(key) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise FormatError(f"{path}:{lineno}: no string field {key!r}")
                yield text, len(raw)
        if pending:
            yield pending, pending_bytes


def parquet_texts(path: str, column: str, batch_rows: int = 4096) -> Iterator[str]:
    """The string ``column`` of a parquet file, row by row, read ``batch_rows`` at a time
    (needs ``pyarrow``); raises :class:`FormatError` naming the file (and row) on bad input."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise FormatError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        f = pq.ParquetFile(path)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 (pyarrow raises several types for a bad file)
        raise FormatError(f"{path}: not a readable parquet file ({e})") from None
    if column not in f.schema_arrow.names:
        raise FormatError(f"{path}: no column {column!r} (it has: {', '.join(f.schema_arrow.names)})")
    row = 0
    try:
        for batch in f.iter_batches(batch_size=batch_rows, columns=[column]):
            for text in batch.column(0).to_pylist():
                if not isinstance(text, str):
                    raise FormatError(f"{path}: row {row}: {column!r} is not a string ({type(text).__name__})")
                row += 1
                yield text
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001
        raise FormatError(f"{path}: corrupt parquet data near row {row} ({e})") from None


def spooled(path: str, folder: str, i: int) -> str:
    """``path``, or for a pipe or other stream that reads once, a copy of it in ``folder`` (named
    ``input-I`` with its extension, which says its format)."""
    if path == "-" or os.path.isfile(path):
        return path
    copy = os.path.join(folder, f"input-{i}{os.path.splitext(path)[1]}")
    with open(path, "rb") as src, open(copy, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return copy


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


# --------------------------------------------------------------------------- ids out


class Writer:
    """Writes the ids of documents in one output format, a block of documents at a time: their
    ids as the core formats them (``data``) and each document's number of ids (``lengths``)."""

    #: The core's name of the bytes this writer takes (see ``Encoder.encode_files``).
    core_format = "ids"

    def __init__(self, out: AtomicOutput, path: str, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.path = path
        self.f = out.open(path) if path != "-" else sys.stdout.buffer

    def output(self) -> Optional[Tuple[int, str]]:
        """The file descriptor the ids' bytes go to, and its name, for the core to write them
        itself (then :meth:`write` gets ``None`` for ``data``); ``None`` where it cannot (not on
        Unix, or no file)."""
        if os.name != "posix":
            return None
        try:
            fd = self.f.fileno()  # none for a stream in memory (a captured sys.stdout)
        except (OSError, ValueError):
            return None
        self.f.flush()  # what was written here comes first
        return fd, self.path

    def write(self, data: Optional[bytes], lengths: np.ndarray) -> None:
        """Appends a block of documents (``data`` ``None``: already written to :meth:`output`)."""
        if data is not None:
            self.f.write(data)
        self.index(lengths)

    def index(self, lengths: np.ndarray) -> None:
        """Records the lengths of a block's documents (for the formats with an index)."""

    def finish(self) -> None:
        """Completes the output (headers, indexes) once every document is written."""


class IdsWriter(Writer):
    """One line per document: its ids separated by spaces."""


class PiecesWriter(Writer):
    """One line per document: a JSON list of its pieces (bytes that are not UTF-8 as ``\\xNN``)."""

    core_format = "pieces"


class JsonlWriter(Writer):
    """One JSON object per document: ``{"ids": [...]}``."""

    core_format = "jsonl"


class _BinaryWriter(Writer):
    """Ids as little-endian integers of ``dtype`` (``uint16`` or ``uint32``)."""

    def __init__(self, out: AtomicOutput, path: str, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.path = path
        self.core_format = self.dtype.name


class NpyWriter(_BinaryWriter):
    """A ``.npy`` array of every id, and ``PATH.offsets.npy`` (``int64``): document ``i`` is
    ``ids[offsets[i]:offsets[i + 1]]``. Both are streamed: memory does not grow with the input."""

    HEADER = 128  # bytes, room for any length

    def __init__(self, out: AtomicOutput, path: str, dtype: np.dtype) -> None:
        super().__init__(out, path, dtype)
        self.f = out.open(path)
        self.f.write(b"\0" * self.HEADER)
        self.n = 0
        self.docs = 0
        offsets_path = (path[:-4] if path.endswith(".npy") else path) + ".offsets.npy"
        self.offsets_file = out.open(offsets_path)
        self.offsets_file.write(b"\0" * self.HEADER)
        self.offsets_file.write(_little(np.zeros(1, np.int64)))

    def index(self, lengths: np.ndarray) -> None:
        ends = np.cumsum(lengths, dtype=np.int64) + self.n
        self.offsets_file.write(_little(ends))
        self.n = int(ends[-1]) if len(ends) else self.n
        self.docs += len(lengths)

    def finish(self) -> None:
        for f, dtype, n in ((self.f, self.dtype, self.n), (self.offsets_file, np.dtype(np.int64), self.docs + 1)):
            f.seek(0)
            f.write(_npy_header(dtype, n, self.HEADER))
            f.seek(0, os.SEEK_END)


def _little(a: np.ndarray) -> bytes:
    """The bytes of ``a`` in little-endian order (the formats' byte order on any machine)."""
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def _npy_header(dtype: np.dtype, n: int, size: int) -> bytes:
    """A version 1.0 ``.npy`` header of exactly ``size`` bytes for a 1-D array (little-endian)."""
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (np.dtype(dtype).newbyteorder("<").str, n)
    body = d.encode("latin1").ljust(size - 10 - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


class BinWriter(_BinaryWriter):
    """Megatron-LM's indexed dataset: ``PREFIX.bin`` (every id, little-endian) and ``PREFIX.idx``
    (the magic ``MMIDIDX``, version 1, a dtype code, then per document its length (``int32``)
    and byte offset (``int64``), and the document index ``0..n``).

    Streamed: the lengths go to the index as documents come; at the end the core computes the
    offsets from the lengths read back in chunks, so memory does not grow with the input."""

    def __init__(self, out: AtomicOutput, path: str, dtype: np.dtype) -> None:
        super().__init__(out, path, dtype)
        prefix = path[:-4] if path.endswith(".bin") else path
        self.f = out.open(prefix + ".bin")
        self.idx_path = prefix + ".idx"
        self.idx = out.open(self.idx_path)
        self.idx.write(b"\0" * MEGATRON_HEADER_BYTES)
        self.docs = 0

    def index(self, lengths: np.ndarray) -> None:
        self.idx.write(_little(lengths.astype(np.int32)))
        self.docs += len(lengths)

    def finish(self) -> None:
        self.idx.flush()
        code = MEGATRON_DTYPE_CODES[self.dtype.name]
        complete_megatron_index(self.idx.fileno(), self.idx_path, self.docs, self.dtype.itemsize, code)


class ParquetWriter(Writer):
    """A parquet file with one row per document: its ids in the list column ``ids`` (needs
    ``pyarrow``)."""

    def __init__(self, out: AtomicOutput, path: str, dtype: np.dtype) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(out, path, dtype)
        self.pa = pa
        self.core_format = self.dtype.name  # the bytes :meth:`write` takes: little-endian ids
        self.schema = pa.schema([("ids", pa.list_(pa.from_numpy_dtype(self.dtype)))])
        self.writer = pq.ParquetWriter(pa.PythonFile(self.f, mode="w"), self.schema)

    def output(self) -> Optional[Tuple[int, str]]:
        return None  # the ids become a parquet table here

    def write(self, data: Optional[bytes], lengths: np.ndarray) -> None:
        pa = self.pa
        ids = np.frombuffer(data, self.dtype.newbyteorder("<")).astype(self.dtype)  # given: no output()
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        column = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(ids))
        self.writer.write_table(pa.table({"ids": column.cast(self.schema.field("ids").type)}))

    def finish(self) -> None:
        self.writer.close()


#: The writer of each output format.
WRITERS = {"ids": IdsWriter, "pieces": PiecesWriter, "jsonl": JsonlWriter, "npy": NpyWriter, "bin": BinWriter}


# --------------------------------------------------------------------------- ids back in


def read_megatron(prefix: str) -> Tuple[np.ndarray, np.ndarray]:
    """Reads a Megatron-LM dataset that ``encode --format bin`` wrote: ``(ids, offsets)``."""
    with open(prefix + ".idx", "rb") as f:
        head = f.read(MEGATRON_HEADER_BYTES)
        if head[: len(MEGATRON_MAGIC)] != MEGATRON_MAGIC:
            raise FormatError(f"{prefix}.idx: not a Megatron index")
        version, code = struct.unpack_from("<QB", head, len(MEGATRON_MAGIC))
        n, _ = struct.unpack_from("<QQ", head, len(MEGATRON_MAGIC) + 9)
        sizes = np.frombuffer(f.read(4 * n), dtype="<i4")
    dtype = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}[code]
    ids = np.fromfile(prefix + ".bin", dtype=np.dtype(dtype).newbyteorder("<"))
    return ids, np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


#: The format of an encoded file, by extension (anything else: lines of ids).
ENCODED_FORMATS = {".jsonl": "jsonl", ".npy": "npy", ".bin": "bin", ".idx": "bin"}


def encoded_documents(path: str, fmt: str) -> Iterator[Tuple[str, Sequence[int]]]:
    """``(where, ids)`` of every document of a file that ``encode`` wrote, in order: lines of ids
    (``ids``), ``{"ids": [...]}`` records (``jsonl``), ``PATH`` + ``PATH.offsets.npy`` (``npy``)
    or ``PREFIX.bin`` + ``PREFIX.idx`` (``bin``)."""
    if fmt == "npy":
        if path.endswith(".offsets.npy"):
            raise FormatError(f"{path}: the offsets of an npy output; give its ids' .npy")
        offsets_path = path[:-4] + ".offsets.npy"
        try:
            ids, offsets = np.load(path, mmap_mode="r"), np.load(offsets_path)
        except FileNotFoundError:
            raise FormatError(f"{offsets_path}: no such file (encode --format npy writes it beside {path})") from None
        except ValueError as e:
            raise FormatError(f"{path}: not an npy output of encode ({e})") from None
        for i in range(len(offsets) - 1):
            yield f"{path}: document {i}", ids[offsets[i] : offsets[i + 1]]
        return
    if fmt == "bin":
        prefix = os.path.splitext(path)[0]
        try:
            ids, offsets = read_megatron(prefix)
        except (OSError, ValueError, KeyError, struct.error) as e:
            raise FormatError(f"{prefix}.bin/.idx: not a Megatron dataset that encode wrote ({e})") from None
        for i in range(len(offsets) - 1):
            yield f"{prefix}.bin: document {i}", ids[offsets[i] : offsets[i + 1]]
        return
    with open_binary(path) as src:
        for lineno, line in enumerate(src, 1):
            where = f"{path}:{lineno}"
            if fmt == "jsonl" or line.lstrip().startswith(b"{"):
                try:
                    ids = json.loads(line)["ids"]
                except (ValueError, KeyError, TypeError):
                    raise FormatError(f'{where}: not a record {{"ids": [...]}}') from None
            else:
                try:
                    ids = [int(x) for x in line.split()]
                except ValueError:
                    raise FormatError(f"{where}: not a line of integer ids") from None
            yield where, ids
