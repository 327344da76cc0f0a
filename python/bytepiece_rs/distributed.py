"""Training and batch encoding on a Dask cluster (``pip install bytepiece-rs[dask]``).

This module only schedules: every stage's work is done by the compiled core, which defines it
as a map over shards of the corpus whose results are count tables merged by sums (see the
core's ``table`` module and docs/distributed.md):

1. each shard's byte n-grams are counted into a serialised table (one task per shard);
2. the tables are merged in a tree (any order and grouping gives the same table), whose root
   prunes by ``min_count`` as it merges: the n-gram model's table, which every piece-counting
   task receives;
3. each shard is segmented with the model and its pieces counted into a table (one task per
   shard), and these are merged in a tree up to its last level;
4. the client merges the last ``fan_in`` piece tables as it reads them and prunes them into the
   vocabularies (re-segmenting dropped pieces is work on the piece table, not on the corpus: it
   runs on the client's cores).

Each merge streams through its tables once (a k-way merge); the root of the n-gram merge
merges the n-grams of each length in parallel on its worker's cores.

Every task is a pure function of its shard and of the tables it is given, so a task lost with a
worker, or retried, gives the same bytes: the model is the single-machine trainer's.

What a *text* is, per shard format (the unit that training normalises and chunks):

- ``text`` (any other extension): each line, without its newline, as
  :meth:`Trainer.train_from_files` and ``bytepiece train`` take text files by default; or, with
  ``text_unit="file"``, the whole file (``--text-unit file``). The core reads them in blocks;
- ``jsonl`` (``.jsonl``, ``.json``): the string field ``column`` of each record, one per line
  (blank lines are skipped);
- ``parquet`` (``.parquet``, ``.pq``): each row of the string column ``column``;
- a Dask DataFrame (training only): each value of ``column``; each partition is a shard.

For encoding, a document is a line of a text file (without its newline, as ``bytepiece encode``
reads text files), a record of a jsonl file or a row of a parquet file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._core import AtomicFile, merge_tables
from ._files import AtomicOutput, write_atomic
from .tokenizer import Tokenizer
from .trainer import TEXT_UNITS, Trainer

PathLike = Union[str, "os.PathLike[str]"]

#: The shard formats, by file extension (anything else is ``text``).
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
FORMATS = ("text", "jsonl", "parquet")
#: The output formats of :func:`encode_distributed`.
OUTPUT_FORMATS = ("bin", "parquet")
#: The manifest written beside each encoded shard, last.
MANIFEST_FORMAT = "bytepiece-encoded-shard"
MANIFEST_VERSION = 1


class ShardError(ValueError):
    """A shard could not be read or encoded; the message starts with the shard's name."""


@dataclass(frozen=True)
class Shard:
    """One input file of a sharded corpus: its ``path``, ``format`` (``text``, ``jsonl`` or
    ``parquet``) and, for ``jsonl`` and ``parquet``, the ``column`` holding the texts."""

    path: str
    format: str
    column: str = "text"


def shards_of(
    paths: Union[PathLike, Sequence[PathLike]], format: Optional[str] = None, column: str = "text"
) -> List[Shard]:
    """The shards of a list of paths (or of one path), in order, with their format: ``format``
    if given, else guessed from each extension (see :data:`EXTENSIONS`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, (list, tuple)):
        raise TypeError(f"shards must be a list of paths or a Dask DataFrame, got {type(paths).__name__}")
    if not paths:
        raise ValueError("no shards given")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if not isinstance(column, str) or not column:
        raise TypeError("column must be a non-empty str")
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"a shard must be a path (str or os.PathLike), got {type(p).__name__}")
        path = os.fspath(p)
        out.append(Shard(path, format or EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text"), column))
    return out


# --------------------------------------------------------------------------- reading shards


def _documents(shard: Shard, batch_rows: int = 4096) -> Iterator[str]:
    """The texts of a ``jsonl`` or ``parquet`` shard, or the lines of a ``text`` shard, in order;
    raises :class:`ShardError` naming the shard (and line or row) on bad input."""
    from .formats import FormatError, parquet_texts, read_documents  # the CLI's documents too

    try:
        if shard.format == "parquet":
            yield from parquet_texts(shard.path, shard.column, batch_rows)
            return
        for text, _ in read_documents([shard.path], shard.column if shard.format == "jsonl" else None):
            yield text
    except FormatError as e:
        raise ShardError(str(e)) from None
    except OSError as e:
        raise ShardError(f"{shard.path}: cannot read ({e.strerror or e})") from None


def _named(shard_name: str, e: Exception) -> ShardError:
    """``e`` as a :class:`ShardError` whose message starts with the shard's name."""
    message = str(e)
    if isinstance(e, ShardError) or message.startswith(shard_name):
        return e if isinstance(e, ShardError) else ShardError(message)
    return ShardError(f"{shard_name}: {message}")


# --------------------------------------------------------------------------- training stages
#
# Engine-agnostic: each function is one task of a stage, a pure function of its arguments
# (picklable: paths, dicts of trainer arguments, bytes). Any scheduler (Dask below, Spark, Ray,
# a shell loop) runs them; see docs/distributed.md.


def _trainer(trainer_args: Dict[str, Any]) -> Trainer:
    return Trainer(progress=False, **trainer_args)


#: What a worker process builds once per job (the n-gram model, the tokenizer): kind ->
#: (key, object), one object per kind at a time, so memory stays bounded.
_CACHE: Dict[str, Tuple[Any, Any]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(kind: str, key: Any, make: Callable[[], Any]) -> Any:
    with _CACHE_LOCK:
        hit = _CACHE.get(kind)
        if hit is None or hit[0] != key:
            _CACHE.pop(kind, None)  # free the old one before building the new one
            _CACHE[kind] = hit = (key, make())
        return hit[1]


def _model(core: Any, table: bytes, trainer_args: Dict[str, Any]) -> Any:
    key = (hashlib.blake2b(table, digest_size=16).digest(), repr(sorted(trainer_args.items())))
    return _cached("model", key, lambda: core.ngram_model(table))


def _count(
    stage: str,
    source: Any,
    trainer_args: Dict[str, Any],
    threads: int,
    batch_size: int,
    model_table: Optional[bytes],
    name: Optional[str],
    text_unit: str = "line",
) -> bytes:
    core = _trainer(trainer_args)._core
    if isinstance(source, (str, os.PathLike)):
        source = shards_of([source])[0]
    files: Optional[str] = None  # the text unit of a text shard, read by the core
    if isinstance(source, Shard):
        name = source.path
        files = text_unit if source.format == "text" else None
        texts: Any = [source.path] if files else _documents(source)
    elif isinstance(source, (bytes, dict)) or not hasattr(source, "__iter__"):
        raise TypeError(f"a shard must be a path, a Shard or an iterable of str, got {type(source).__name__}")
    else:
        name = name or "texts"
        texts = iter(source)
    try:
        if stage == "ngrams":
            return core.ngram_table(texts, threads, batch_size, files)
        return core.piece_table(_model(core, model_table, trainer_args), texts, threads, batch_size, files)
    except (ValueError, TypeError, OSError) as e:
        raise _named(name, e) from None


def count_ngrams(
    source: Any,
    trainer_args: Dict[str, Any],
    *,
    threads: int = 1,
    batch_size: int = 1000,
    name: Optional[str] = None,
    text_unit: str = "line",
) -> bytes:
    """Stage 1, one task: the byte n-gram counts of one shard (a path, a :class:`Shard`, or an
    iterable of ``str`` named ``name`` in errors) as a serialised count table. ``trainer_args``
    are :class:`Trainer`'s; ``text_unit`` says what a text of a text shard is (``"line"`` or
    ``"file"``, see the module documentation)."""
    return _count("ngrams", source, trainer_args, threads, batch_size, None, name, text_unit)


def merge_counts(*tables: bytes) -> bytes:
    """Merges serialised count tables of one kind (the results of :func:`count_ngrams`, or of
    :func:`count_pieces`, or merges of them) by sums: any order and grouping gives the same
    bytes."""
    return merge_tables(list(tables))


def _table_list(tables: Any) -> List[bytes]:
    """One serialised table or a sequence of them, as a list of ``bytes``."""
    if isinstance(tables, (bytes, bytearray, memoryview)):
        return [bytes(tables)]
    return [bytes(t) if isinstance(t, (bytearray, memoryview)) else t for t in tables]


def ngram_model_table(tables: Union[bytes, Sequence[bytes]], trainer_args: Dict[str, Any]) -> bytes:
    """Stage 2, one task: the n-gram tables of every shard (results of :func:`count_ngrams`, or
    merges of them; one table or a list) merged and pruned by ``min_count`` in one pass into
    the table the n-gram model is built from, which every :func:`count_pieces` task takes."""
    return _trainer(trainer_args)._core.model_table(_table_list(tables))


def count_pieces(
    source: Any,
    model_table: bytes,
    trainer_args: Dict[str, Any],
    *,
    threads: int = 1,
    batch_size: int = 1000,
    name: Optional[str] = None,
    text_unit: str = "line",
) -> bytes:
    """Stage 3, one task: the piece counts of one shard (as for :func:`count_ngrams`) segmented
    with the n-gram model of ``model_table`` (built once per process), serialised."""
    return _count("pieces", source, trainer_args, threads, batch_size, model_table, name, text_unit)


def prune_counts(
    tables: Union[bytes, Sequence[bytes]],
    trainer_args: Dict[str, Any],
    *,
    threads: Optional[int] = None,
    progress: Optional[bool] = False,
) -> Trainer:
    """Stage 4, on the client: prunes the piece tables of every shard (results of
    :func:`count_pieces`, or merges of them; one table or a list), merged as they are read, into
    the vocabularies; returns the trained :class:`Trainer` (``.save``, ``.pieces``)."""
    trainer = Trainer(progress=progress, **trainer_args)
    trainer._core.train_from_tables(_table_list(tables), threads or os.cpu_count() or 1, progress)
    return trainer


def _identity(x: Any) -> Any:
    return x


def _partition_count(
    stage: str,
    index: int,
    series: Any,
    trainer_args: Dict[str, Any],
    threads: int,
    batch_size: int,
    model_table: Optional[bytes],
) -> bytes:
    return _count(stage, series, trainer_args, threads, batch_size, model_table, f"DataFrame partition {index}")


def _merge_levels(client: Any, futures: List[Any], fan_in: int, name: str, retries: int) -> List[Any]:
    """Merges count tables in levels of tasks of ``fan_in`` tables each until at most ``fan_in``
    are left (each merge streams through its tables once); the last merge is the caller's."""
    level = 0
    while len(futures) > fan_in:
        merged = []
        for i in range(0, len(futures), fan_in):
            group = futures[i : i + fan_in]
            # a lone table goes up as it is
            merged.append(
                group[0]
                if len(group) == 1
                else client.submit(merge_counts, *group, key=f"{name}-{level}-{i}", retries=retries)
            )
        futures = merged
        level += 1
    return futures


def _fetch_as_done(futures: List[Any]) -> List[Any]:
    """The results of ``futures``, in their order, each fetched as soon as its task is done: the
    transfers overlap the tasks still running instead of all following the last one."""
    from distributed import as_completed

    position = {future.key: i for i, future in enumerate(futures)}
    results: List[Any] = [None] * len(futures)
    for future in as_completed(futures):
        results[position[future.key]] = future.result()
    return results


def _check_positive(**values: Any) -> None:
    for what, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")


def train_distributed(
    client: Any,
    data: Any,
    *,
    column: str = "text",
    format: Optional[str] = None,
    text_unit: str = "line",
    threads: int = 1,
    batch_size: int = 1000,
    fan_in: int = 8,
    retries: int = 1,
    progress: Optional[bool] = False,
    **trainer_args: Any,
) -> Trainer:
    """Trains a vocabulary on a Dask cluster and returns the trained :class:`Trainer` (call
    ``.save(path)``, or read ``.pieces``): the same model as ``Trainer(**trainer_args)`` trained
    on one machine on the same texts, for any number of workers and shards.

    ``data`` is a list of shard paths (text, jsonl or parquet; see the module documentation for
    what a text is in each; ``format`` forces one format; ``text_unit`` is what a text of a text
    shard is: ``"line"``, each line without its newline, by default, or ``"file"``, as for
    :meth:`Trainer.train_from_files`) or a Dask DataFrame whose ``column`` holds the texts (each
    partition a shard). The workers must see the paths. ``threads`` is the
    number of threads each task uses; ``fan_in`` the number of tables merged per task;
    ``retries`` the retries of a failed task (a task lost with a worker is always rerun).
    ``trainer_args`` are :class:`Trainer`'s (``order``, ``max_vocab_size``, ``min_count``...).

    The client holds no text: only the last (at most ``fan_in``) piece tables, which it merges as
    it prunes them; they are held whole while it prunes, beside what ``max_memory_mb`` bounds.
    With ``max_memory_mb`` among ``trainer_args``, every task is bounded as one process is (see
    docs/distributed.md).
    """
    Trainer(progress=False, **trainer_args)  # checks every argument here, before any task
    _check_positive(threads=threads, batch_size=batch_size, fan_in=fan_in)
    if text_unit not in TEXT_UNITS:
        raise ValueError(f"text_unit must be one of {', '.join(TEXT_UNITS)}, got {text_unit!r}")
    if fan_in < 2:
        raise ValueError("fan_in must be at least 2")
    job = uuid.uuid4().hex[:12]
    columns = getattr(data, "columns", None)
    if columns is not None and hasattr(data, "to_delayed"):  # a Dask DataFrame
        if column not in columns:
            raise ValueError(f"the DataFrame has no column {column!r} (it has: {', '.join(map(str, columns))})")
        import dask

        parts = data[column].to_delayed()
        if not parts:
            raise ValueError("the DataFrame has no partitions")

        def count(stage: str, model: Any = None) -> List[Any]:
            tasks = [
                dask.delayed(_partition_count)(stage, i, p, trainer_args, threads, batch_size, model)
                for i, p in enumerate(parts)
            ]
            return client.compute(tasks, retries=retries)
    else:
        shards = shards_of(data, format, column)

        def count(stage: str, model: Any = None) -> List[Any]:
            return [
                client.submit(
                    _count,
                    stage,
                    s,
                    trainer_args,
                    threads,
                    batch_size,
                    model,
                    None,
                    text_unit,
                    key=f"bytepiece-{stage}-{job}-{i}",
                    retries=retries,
                )
                for i, s in enumerate(shards)
            ]

    ngram_tables = _merge_levels(client, count("ngrams"), fan_in, f"bytepiece-merge-ngrams-{job}", retries)
    # the last merge prunes as it merges: the model's table, in the same pass
    model = client.submit(ngram_model_table, ngram_tables, trainer_args, key=f"bytepiece-model-{job}", retries=retries)
    del ngram_tables  # their memory on the workers is released once the model is made
    piece_tables = _merge_levels(client, count("pieces", model), fan_in, f"bytepiece-merge-pieces-{job}", retries)
    tables = _fetch_as_done(piece_tables)
    del piece_tables, model
    # the last merge is the pruning's first pass, here
    return prune_counts(tables, trainer_args, progress=progress)


# --------------------------------------------------------------------------- encoding


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _input_identity(shard: Shard) -> Dict[str, Any]:
    try:
        st = os.stat(shard.path)
    except OSError as e:
        raise ShardError(f"{shard.path}: cannot read ({e.strerror or e})") from None
    return {
        "path": shard.path,
        "format": shard.format,
        "column": shard.column,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


def _outputs(prefix: str, output_format: str) -> List[str]:
    return [prefix + ".bin", prefix + ".idx"] if output_format == "bin" else [prefix + ".parquet"]


def verify_manifest(manifest_path: str, expect: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The manifest at ``manifest_path`` if it vouches for complete outputs (every file it
    lists exists with its size and SHA-256) and, when ``expect`` is given, was made from the same
    input, model and options; else ``None``."""
    try:
        with open(manifest_path, "rb") as f:
            manifest = json.loads(f.read())
        if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
            return None
        if expect is not None and any(manifest.get(k) != v for k, v in expect.items()):
            return None
        directory = os.path.dirname(manifest_path)
        for name, meta in manifest["files"].items():
            path = os.path.join(directory, name)
            if os.path.getsize(path) != meta["size"] or _sha256(path) != meta["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest


def encode_shard(
    index: int,
    shard: Shard,
    output_dir: str,
    output_format: str,
    model_json: str,
    model_sha256: str,
    options: Dict[str, Any],
    threads: int,
    batch_bytes: int,
) -> Dict[str, Any]:
    """One task of :func:`encode_distributed` (engine-agnostic): encodes shard ``index`` to
    ``part-{index:05d}.*`` in ``output_dir`` unless a verified manifest says it is done; returns
    the manifest (with ``"skipped"``). ``model_json`` is the model in the original's JSON format,
    ``model_sha256`` its SHA-256 (the tokenizer is built once per process); ``options`` holds
    ``output_format``, ``dtype``, ``add_bos`` and ``add_eos``."""
    from .formats import BinWriter, ParquetWriter, batches

    prefix = os.path.join(output_dir, f"part-{index:05d}")
    manifest_path = prefix + ".manifest.json"
    expect = {"input": _input_identity(shard), "model_sha256": model_sha256, "options": options}
    done = verify_manifest(manifest_path, expect)
    if done is not None:
        return dict(done, skipped=True)
    # a manifest never outlives the outputs it vouches for; leftovers of killed attempts go
    if os.path.exists(manifest_path):
        os.unlink(manifest_path)
    for target in _outputs(prefix, output_format):
        AtomicFile.remove_leftovers(target)
    tokenizer = _cached("tokenizer", model_sha256, lambda: Tokenizer(json.loads(model_json)))
    dtype = np.dtype(options["dtype"])
    docs = tokens = 0
    docs_iter = ((t, len(t)) for t in _documents(shard))
    try:
        with AtomicOutput() as out:
            if output_format == "bin":
                writer: Any = BinWriter(out, prefix + ".bin", dtype)
            else:
                writer = ParquetWriter(out, prefix + ".parquet", dtype)
            for texts, _ in batches(docs_iter, batch_bytes):
                ids, offsets = tokenizer.encode_batch_numpy(
                    texts,
                    options["add_bos"],
                    options["add_eos"],
                    -1,
                    threads,
                    allowed_special=frozenset(),
                    disallowed_special=(),
                )
                writer.write(*tokenizer._encoder.format_ids(ids, offsets, writer.core_format))
                docs += len(texts)
                tokens += len(ids)
            writer.finish()
    except (ValueError, TypeError, OSError) as e:
        raise _named(shard.path, e) from None
    files = {
        os.path.basename(p): {"size": os.path.getsize(p), "sha256": _sha256(p)} for p in _outputs(prefix, output_format)
    }
    manifest = dict(
        expect,
        format=MANIFEST_FORMAT,
        version=MANIFEST_VERSION,
        index=index,
        documents=docs,
        tokens=tokens,
        files=files,
    )
    write_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return dict(manifest, skipped=False)


def encode_distributed(
    client: Any,
    paths: Union[PathLike, Sequence[PathLike]],
    model: Any,
    output_dir: PathLike,
    *,
    output_format: str = "bin",
    format: Optional[str] = None,
    column: str = "text",
    dtype: Optional[str] = None,
    add_bos: bool = False,
    add_eos: bool = False,
    threads: int = 1,
    batch_bytes: int = 4 << 20,
    retries: int = 1,
) -> List[Dict[str, Any]]:
    """Encodes every shard of ``paths`` with ``model`` (a model path, a model dict or a
    :class:`Tokenizer`) on a Dask cluster: shard ``i`` becomes ``part-{i:05d}.bin`` + ``.idx``
    (Megatron-LM's indexed dataset, as ``bytepiece encode --format bin`` writes) or
    ``part-{i:05d}.parquet`` (column ``ids``, one row per document), documents in their input
    order, then ``part-{i:05d}.manifest.json`` (input, model, options, counts, and each file's
    size and SHA-256), written last.

    Outputs are written under temporary names and renamed into place, so a failed or killed
    task leaves no partial shard and its retry writes each document once. A rerun skips the
    shards whose manifest verifies (same input, model and options; files complete) and encodes
    the others. Returns the manifests in shard order (``"skipped"``: already done), also written
    to ``output_dir/index.json``."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    shards = shards_of(paths, format, column)
    tokenizer = model if isinstance(model, Tokenizer) else Tokenizer(model)
    if dtype is None:
        dtype = "uint16" if tokenizer.vocab_size <= 1 << 16 else "uint32"
    if dtype not in ("uint16", "uint32"):
        raise ValueError(f"dtype must be uint16 or uint32, got {dtype!r}")
    if dtype == "uint16" and tokenizer.vocab_size > 1 << 16:
        raise ValueError(f"the model has {tokenizer.vocab_size:,} ids, more than uint16 holds: use dtype='uint32'")
    _check_positive(threads=threads, batch_bytes=batch_bytes)
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    model_json = tokenizer._encoder.to_json()
    digest = hashlib.sha256(model_json.encode()).hexdigest()
    options = {"output_format": output_format, "dtype": dtype, "add_bos": bool(add_bos), "add_eos": bool(add_eos)}
    job = uuid.uuid4().hex[:12]
    # a task rather than scattered data: if the worker holding it dies, it is made again
    model_future = client.submit(_identity, model_json, key=f"bytepiece-model-json-{job}")
    futures = [
        client.submit(
            encode_shard,
            i,
            s,
            output_dir,
            output_format,
            model_future,
            digest,
            options,
            threads,
            batch_bytes,
            key=f"bytepiece-encode-{job}-{i}",
            retries=retries,
        )
        for i, s in enumerate(shards)
    ]
    manifests = client.gather(futures)
    index = {
        "format": "bytepiece-encoded-corpus",
        "version": MANIFEST_VERSION,
        "shards": [{k: m[k] for k in ("index", "input", "documents", "tokens", "files")} for m in manifests],
    }
    write_atomic(os.path.join(output_dir, "index.json"), json.dumps(index, indent=1).encode())
    return manifests


__all__ = [
    "Shard",
    "ShardError",
    "shards_of",
    "train_distributed",
    "encode_distributed",
    "encode_shard",
    "verify_manifest",
    "count_ngrams",
    "merge_counts",
    "ngram_model_table",
    "count_pieces",
    "prune_counts",
]
