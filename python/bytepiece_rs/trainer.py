"""The Trainer class and convert_to_bytepiece: the original's API over the compiled trainer."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Dict, Iterable, List, Optional, Sequence, Union

from ._core import TrainerCore, prune_to_json
from ._files import write_atomic
from ._signals import terminations_raise

PathLike = Union[str, "os.PathLike[str]"]

#: A piece length that no piece reaches (the original accepts ``np.inf``).
_NO_LIMIT = 2**62

#: What a text of a text file can be (see :meth:`Trainer.train_from_files`), the default first.
TEXT_UNITS = ("line", "file")


def _length(value: float, name: str) -> int:
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return _NO_LIMIT
    if isinstance(value, bool) or not float(value).is_integer():
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


class Trainer:
    """BytePiece's vocabulary trainer (a byte n-gram language model segments the corpus; the
    pieces found are pruned into a Unigram vocabulary), with the original's parameters:

    - ``order``: longest n-gram of the language model, in bytes (1 to 8);
    - ``max_vocab_size``: the vocabulary size, reserved ids included, or a list of sizes (then
      :meth:`save` writes one model per size, ``PATH.SIZE``, as the original does);
    - ``max_piece_length``: longest piece, in bytes;
    - ``min_count``: least count of an n-gram and of a piece (single bytes are always kept);
    - ``isolate_digits``: every Unicode decimal digit is a piece of its own;
    - ``ensure_unicode``: no piece starts inside a UTF-8 character;
    - ``special_tokens``: control texts (``"<|im_start|>"``...) given ids 3, 4, ... before the
      learned pieces (``max_vocab_size`` counts them); segmentation never produces them, and a
      learned piece with the same text is dropped. See :meth:`Tokenizer.encode` for their use.

    ``progress`` shows a labelled bar per stage on stderr (bytes, MB/s and an ETA while counting;
    pieces while pruning) and ends a training with one summary line (vocabulary sizes, wall time,
    peak memory): ``None`` (default) when stderr is a terminal, ``False`` never, ``True`` always
    (bars need a terminal: elsewhere only the summary line is written).

    Memory: ``max_memory_mb`` bounds the memory of the whole training, every stage (``None``,
    the default: no bound, the fastest). Within it, everything that grows with the corpus (the
    n-gram and piece counts) is spilled to temporary files as sorted runs and merged, and the
    n-gram model is held compactly; the model is the same, byte for byte. The peak resident
    memory stays within ``1.15 * max_memory_mb + 150`` MB (the interpreter and libraries
    included). If the n-gram model alone cannot fit, training stops as soon as the counts show
    it, with a ``ValueError`` naming a ``max_memory_mb`` or a ``min_count`` that would fit.
    ``count_memory_mb`` bounds only the count tables. Temporary files go to a folder of their
    own in ``temp_dir`` (default: :func:`tempfile.gettempdir`), removed at the end, on an error,
    on Ctrl-C and on SIGTERM or SIGHUP.

    To train on a cluster, see :func:`bytepiece_rs.distributed.train_distributed`: the same
    model, from shards counted on many machines.
    """

    def __init__(
        self,
        order: int = 6,
        max_vocab_size: Union[int, Sequence[int]] = 10000,
        max_piece_length: float = 36,
        min_count: int = 2,
        isolate_digits: bool = False,
        ensure_unicode: bool = True,
        progress: Optional[bool] = None,
        count_memory_mb: int = 4096,
        special_tokens: Sequence[str] = (),
        max_memory_mb: Optional[int] = None,
        temp_dir: Optional[PathLike] = None,
    ) -> None:
        sizes = list(max_vocab_size) if isinstance(max_vocab_size, (list, tuple)) else [max_vocab_size]
        self._core = TrainerCore(
            _length(order, "order"),
            [_length(s, "max_vocab_size") for s in sizes],
            _length(max_piece_length, "max_piece_length"),
            _length(min_count, "min_count"),
            bool(isolate_digits),
            bool(ensure_unicode),
            _length(count_memory_mb, "count_memory_mb"),
            _special_list(special_tokens),
            None if max_memory_mb is None else _length(max_memory_mb, "max_memory_mb"),
            os.fspath(tempfile.gettempdir() if temp_dir is None else temp_dir),
        )
        self.order = order
        self.max_vocab_size: List[int] = self._core.max_vocab_sizes
        self.max_piece_length = max_piece_length
        self.min_count = min_count
        self.isolate_digits = isolate_digits
        self.ensure_unicode = ensure_unicode
        self.special_tokens = _special_list(special_tokens)
        self.progress = progress
        self.count_memory_mb = count_memory_mb
        self.max_memory_mb = max_memory_mb
        self.temp_dir = temp_dir
        self._report: list[str] | None = None  # the files saved in an open `reporting` block

    def train(self, texts: Iterable[str], workers: int = 1, batch_size: int = 1000) -> None:
        """Trains on ``texts``, any iterable of ``str`` (a list, a generator, a ``datasets``
        column...), read once. ``workers`` threads share the work; the model does not depend on
        ``workers`` or ``batch_size``. Ctrl-C stops it with ``KeyboardInterrupt``, SIGTERM and
        SIGHUP with its subclass ``Terminated`` (when they have their default action)."""
        workers, batch_size = _positive(workers, "workers"), _positive(batch_size, "batch_size")
        with terminations_raise(), self.reporting():
            self._core.train(texts, workers, batch_size, self._shows_progress())

    def train_from_files(
        self, paths: Union[PathLike, Sequence[PathLike]], workers: int = 1, text_unit: str = "line"
    ) -> None:
        """Trains on UTF-8 text files (a path or a list of them), read by Rust, streaming, in
        parallel; the model is :meth:`train`'s on the files' texts, which ``text_unit`` says:

        - ``"line"`` (the default): each line is a text, without its newline (only ``\\n`` ends a
          line, a ``\\r`` before it stays): :meth:`train` on
          ``[line.decode() for line in data.split(b"\\n")]`` for each file's bytes ``data``, as
          ``bytepiece train`` trains and ``bytepiece encode`` reads text files;
        - ``"file"``: each file is one text, its newlines part of it (pieces may span lines):
          :meth:`train` on ``[open(path, encoding="utf-8", newline="").read()]`` for each file
          (``bytepiece train --text-unit file``).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        workers = _positive(workers, "workers")
        with terminations_raise(), self.reporting():
            self._core.train_from_files([os.fspath(p) for p in paths], workers, text_unit, self._shows_progress())

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """A block whose training is summed up, when it ends without an error and progress is
        shown, by one line on stderr: the vocabulary sizes, the files :meth:`save` wrote in the
        block (if any), the wall time and the peak memory of the process. :meth:`train` and
        :meth:`train_from_files` open one themselves; inside an enclosing block they leave the
        line to it (so ``bytepiece train`` reports its training and the files it saved in one
        line)."""
        if self._report is not None:
            yield
            return
        self._report = []
        start = time.perf_counter()
        try:
            yield
            if len(self._core) and self._shows_progress():
                sizes = [self._core.vocab_size(i) for i in range(len(self._core))]
                print(_summary_line(sizes, time.perf_counter() - start, self._report), file=sys.stderr, flush=True)
        finally:
            self._report = None

    def _shows_progress(self) -> bool:
        if self.progress is None:
            return _stderr_is_terminal()
        return bool(self.progress)

    @property
    def pieces(self) -> List[Dict[bytes, int]]:
        """The trained vocabularies, one {piece: count} per size, largest first."""
        return [self._core.pieces(i) for i in range(len(self._core))]

    def save(self, path: PathLike) -> None:
        """Writes the model(s) in the original JSON format, atomically: to ``path`` for one
        size, else to ``PATH.SIZE`` for each size."""
        path = os.fspath(path)
        if len(self._core) == 0:
            raise RuntimeError("the trainer has not been trained yet: call train() first")
        if len(self._core) == 1:
            paths = [path]
        else:
            paths = [f"{path}.{size}" for size in self.max_vocab_size]
        with terminations_raise():  # a save under way finishes, then Terminated is raised
            for i, p in enumerate(paths):
                self._core.save(i, p)
        if self._report is not None:
            self._report.extend(paths)

    def __getstate__(self) -> dict:
        """Pickled as its parameters and, once trained, its models in the original's JSON format
        (so a trained trainer's copy can :meth:`save` and read :attr:`pieces`)."""
        state = dict(self.__dict__)
        core = state.pop("_core")
        del state["_report"]
        state["_models"] = [core.to_json(i).encode("utf-8") for i in range(len(core))]
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        models = state.pop("_models")
        Trainer.__init__(
            self,
            order=state["order"],
            max_vocab_size=state["max_vocab_size"],
            max_piece_length=state["max_piece_length"],
            min_count=state["min_count"],
            isolate_digits=state["isolate_digits"],
            ensure_unicode=state["ensure_unicode"],
            progress=state["progress"],
            count_memory_mb=state["count_memory_mb"],
            special_tokens=state["special_tokens"],
            max_memory_mb=state.get("max_memory_mb"),
            temp_dir=state.get("temp_dir"),
        )
        self.__dict__.update(state)
        self._core.set_models(models)


def _summary_line(sizes: Sequence[int], seconds: float, paths: Sequence[str] = ()) -> str:
    """The line that ends a training: ``bytepiece: trained model.json (vocab 32000) in 1:02:03,
    peak memory 2.1 GB``, or ``vocab 32000, 16000`` without the files (``paths``, one per size
    when given)."""
    if paths:
        what = ", ".join(f"{p} (vocab {n})" for p, n in zip(paths, sizes))
    else:
        what = "vocab " + ", ".join(str(n) for n in sizes)
    if seconds < 60:
        took = f"{seconds:.1f} s"
    else:
        minutes, secs = divmod(round(seconds), 60)
        took = f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
    line = f"bytepiece: trained {what} in {took}"
    peak = _peak_memory()
    if peak is not None:
        line += f", peak memory {peak / 1e9:.1f} GB" if peak >= 1e9 else f", peak memory {peak / 1e6:.0f} MB"
    return line


def _peak_memory() -> int | None:
    """The peak resident memory of this process in bytes, where the system reports it: Linux's
    ``VmHWM`` (of this program alone: ``ru_maxrss`` also counts the process it was forked from
    before ``exec``), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _special_list(tokens: Sequence[str]) -> List[str]:
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError("special_tokens must be a list of str")
    return list(tokens)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def convert_to_bytepiece(pieces: Dict[Union[str, bytes], int], path: PathLike) -> None:
    """Turns a {piece: count} dict (``str`` or ``bytes`` pieces) into a BytePiece model at
    ``path``, as the original's function: every byte is added, and pieces that the Unigram
    tokenizer of the others splits are dropped."""
    # as in the original, a bytes key replaces an earlier str key with the same bytes
    merged = {k.encode() if isinstance(k, str) else bytes(k): int(v) for k, v in pieces.items()}
    negative = [k for k, v in merged.items() if v < 0]
    if negative:
        raise ValueError(f"piece counts must not be negative: {negative[0]!r} has {merged[negative[0]]}")
    write_atomic(path, prune_to_json(list(merged.items())).encode("utf-8"))
