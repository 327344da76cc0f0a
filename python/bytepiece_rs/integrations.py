"""Bridges to HF ``transformers`` and ``datasets`` (optional: install them, or the extras
``bytepiece-rs[hf]`` / ``bytepiece-rs[datasets]``).

- :func:`to_transformers`: a ``transformers.PreTrainedTokenizerFast`` over the HF
  ``tokenizers`` export (:func:`bytepiece_rs.convert.to_hf_json`), with ``<pad>``, ``<bos>`` and
  ``<eos>`` (ids 0, 1, 2) as its pad, bos and eos tokens.
- :class:`DatasetTokenizer` (made by :func:`dataset_tokenizer`): the function to give
  ``datasets.Dataset.map(fn, batched=True)``; it encodes each batch on our thread pool with
  :meth:`Tokenizer.encode_batch_numpy <bytepiece_rs.Tokenizer.encode_batch_numpy>` and hands
  ``datasets`` one array of NumPy views of the flat ids, which it turns into an Arrow column
  without a Python object per token: faster than a function returning ``encode_batch``'s lists
  (``bench/datasets_map.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ._core import BOS_ID, EOS_ID, RESERVED
from ._files import AtomicOutput

if TYPE_CHECKING:
    from ._typing import TokenizerLike

#: The special tokens given to ``transformers`` unless overridden: ids 0, 1 and 2.
SPECIAL_TOKENS = dict(zip(("pad_token", "bos_token", "eos_token"), RESERVED))


def to_transformers(tokenizer: "TokenizerLike", add_bos: bool = False, add_eos: bool = False, **kwargs: Any) -> Any:
    """``tokenizer`` as a ``transformers.PreTrainedTokenizerFast``.

    It is built from the HF ``tokenizers`` export, so it gives our ids on real text except
    where :func:`~bytepiece_rs.convert.to_hf_json` documents otherwise (ties between two
    segmentations of equal score, which HF breaks the other way). Its ``pad_token``,
    ``bos_token`` and ``eos_token`` are ``<pad>`` (0), ``<bos>`` (1) and ``<eos>`` (2); other
    keyword arguments go to ``PreTrainedTokenizerFast`` and override these.

    Behaviour, chosen to match ours:

    - ``tok(text)`` adds no ``<bos>``/``<eos>``, like ``encode``; with ``add_bos=True`` /
      ``add_eos=True`` here, ``tok(text)`` adds them (a post-processor, so that
      ``add_special_tokens=False`` leaves them out again), like ``encode(text, add_bos=True)``;
    - text that contains ``"<bos>"``, or a special token of the model
      (:meth:`Tokenizer.add_special_tokens <bytepiece_rs.Tokenizer.add_special_tokens>`), is
      encoded as text (``split_special_tokens=True``), as ours with ``disallowed_special=()``;
      with ``split_special_tokens=False`` (HF's usual matching) the model's special tokens in
      text become their ids, as ours with ``allowed_special="all"``, and so do ``<pad>``,
      ``<bos>`` and ``<eos>`` (which ours always encodes as text);
    - ``decode`` does not clean up spaces (``clean_up_tokenization_spaces=False``), and with
      ``skip_special_tokens=True`` it gives our ``decode``'s text, except that bytes that do not
      form UTF-8 become U+FFFD there, where we drop them.
    """
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError as e:
        raise ImportError("to_transformers needs transformers: pip install 'bytepiece-rs[hf]'") from e
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.processors import TemplateProcessing

    from .convert import to_hf_json

    backend = HFTokenizer.from_str(to_hf_json(tokenizer))
    if add_bos or add_eos:
        bos_name, eos_name = RESERVED[BOS_ID], RESERVED[EOS_ID]
        bos, eos = (f"{bos_name} " if add_bos else ""), (f" {eos_name}" if add_eos else "")
        pair_b = (f"{bos_name}:1 " if add_bos else "") + "$B:1" + (f" {eos_name}:1" if add_eos else "")
        specials = ([(bos_name, BOS_ID)] if add_bos else []) + ([(eos_name, EOS_ID)] if add_eos else [])
        backend.post_processor = TemplateProcessing(
            single=f"{bos}$A{eos}", pair=f"{bos}$A{eos} {pair_b}", special_tokens=specials
        )
    options: Dict[str, Any] = dict(SPECIAL_TOKENS, clean_up_tokenization_spaces=False, split_special_tokens=True)
    options.update(kwargs)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **options)


class DatasetTokenizer:
    """A function for ``datasets.Dataset.map(fn, batched=True)``: the texts of ``column`` become
    a column ``output_column`` of ids (a list of ``uint32`` per row), encoded in parallel on
    ``num_threads`` threads (default: all cores) with the GIL released. Picklable (the
    tokenizer pickles as its model), so ``datasets`` can cache the result and use ``num_proc``.

    >>> ds = ds.map(dataset_tokenizer(tok, add_eos=True), batched=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        tokenizer: "TokenizerLike",
        column: str = "text",
        output_column: str = "input_ids",
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        num_threads: Optional[int] = None,
    ) -> None:
        if not isinstance(column, str) or not isinstance(output_column, str):
            raise TypeError("column and output_column must be str")
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        self.tokenizer = tokenizer
        self.column = column
        self.output_column = output_column
        self.add_bos = bool(add_bos)
        self.add_eos = bool(add_eos)
        self.alpha = float(alpha)
        self.num_threads = num_threads

    def __call__(self, batch: Dict[str, List[Any]]) -> Dict[str, Any]:
        """Encodes ``batch[column]`` (a batch as ``datasets`` gives it with ``batched=True``)."""
        if self.column not in batch:
            raise KeyError(f"no column {self.column!r} in the batch (columns: {sorted(batch)})")
        ids, offsets = self.tokenizer.encode_batch_numpy(
            batch[self.column], self.add_bos, self.add_eos, self.alpha, self.num_threads
        )
        return {self.output_column: _rows(ids, offsets)}


def _rows(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row ``i`` of the flat ``ids``, ``ids[offsets[i]:offsets[i + 1]]``, as a view, for every
    row, in a 1-D object array: ``datasets`` turns such an array into one Arrow list column
    with a copy of each row's ids, without a Python object per token (a list of the views costs
    more there: each row becomes an Arrow array of its own, then they are concatenated)."""
    bounds = offsets.tolist()
    rows = np.empty(len(bounds) - 1, dtype=object)
    # one at a time: from a list of rows of one length, NumPy would make a 2-D array
    for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
        rows[i] = ids[start:end]
    return rows


def dataset_tokenizer(tokenizer: "TokenizerLike", column: str = "text", **kwargs: Any) -> DatasetTokenizer:
    """A :class:`DatasetTokenizer` for ``ds.map(fn, batched=True)``; ``kwargs`` are its
    ``output_column``, ``add_bos``, ``add_eos``, ``alpha`` and ``num_threads``."""
    return DatasetTokenizer(tokenizer, column, **kwargs)


def save_transformers(tokenizer: "TokenizerLike", folder: str) -> None:
    """Writes the files of ``to_transformers(tokenizer).save_pretrained`` into ``folder`` (made
    if missing; other files there stay), each atomically. ``tokenizer.json`` comes last: a
    folder without it does not load, so a stopped run never leaves a new folder that loads
    half-written. A folder this made is removed again if writing fails."""
    with tempfile.TemporaryDirectory(prefix="bytepiece-") as staging:
        to_transformers(tokenizer).save_pretrained(staging)
        names = sorted(os.listdir(staging), key=lambda name: name == "tokenizer.json")
        made = not os.path.isdir(folder)
        if made:
            os.mkdir(folder)
        try:
            with AtomicOutput() as out:
                for name in names:
                    with open(os.path.join(staging, name), "rb") as src:
                        shutil.copyfileobj(src, out.open(os.path.join(folder, name)))
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            raise


def dataset_texts(source: Sequence[str], split: str = "train", column: str = "text") -> Iterator[str]:
    """The string ``column`` of a ``datasets`` source on disk (a directory, or parquet / arrow /
    json / text / csv files of one kind), streamed; ``ValueError`` on a source it cannot read or
    a row without the column."""
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "reading a dataset needs the `datasets` package (pip install 'bytepiece-rs[datasets]')"
        ) from None
    for s in source:
        if not os.path.exists(s):
            raise FileNotFoundError(f"{s}: no such file")
    builders = {
        ".parquet": "parquet",
        ".arrow": "arrow",
        ".jsonl": "json",
        ".json": "json",
        ".txt": "text",
        ".csv": "csv",
    }
    if len(source) == 1 and os.path.isdir(source[0]):
        ds = datasets.load_dataset(source[0], split=split, streaming=True)
    else:
        kinds = {builders.get(os.path.splitext(s)[1]) for s in source}
        if len(kinds) != 1 or None in kinds:
            raise ValueError("give files of one kind: " + ", ".join(sorted(builders)))
        ds = datasets.load_dataset(kinds.pop(), data_files=list(source), split=split, streaming=True)
    for i, row in enumerate(ds):
        text = row.get(column)
        if not isinstance(text, str):
            raise ValueError(f"row {i} has no string column {column!r}")
        yield text
