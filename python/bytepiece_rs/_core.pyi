"""Type stubs of the compiled core (``bytepiece_rs._core``); use :class:`bytepiece_rs.Tokenizer`."""

from os import PathLike
from typing import AbstractSet, Callable, Collection, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
UNICODE_VERSION: Tuple[int, int, int]
MEGATRON_MAGIC: bytes
MEGATRON_HEADER_BYTES: int

def complete_megatron_index(fd: int, name: str, docs: int, id_bytes: int, dtype_code: int) -> None:
    """Completes the Megatron-LM index open at ``fd`` (``name`` in errors), which holds a
    placeholder header and the lengths of ``docs`` documents: appends each document's byte offset
    (ids of ``id_bytes`` bytes) and the boundaries, then writes the header with ``dtype_code``."""

#: The names of the reserved ids 0, 1 and 2 (``RESERVED[i]`` names id ``i``).
RESERVED: List[str]
#: The number of reserved ids: the first piece has this id.
NUM_RESERVED: int
BOS_ID: int
EOS_ID: int

#: ``allowed_special`` / ``disallowed_special``: ``"all"`` or a collection of token texts.
SpecialSet = Union[Literal["all"], AbstractSet[str], Collection[str]]

class Encoder:
    @staticmethod
    def from_file(path: Union[str, PathLike[str]], seed: Optional[int] = None) -> Encoder: ...
    @staticmethod
    def from_json(data: bytes, origin: str, seed: Optional[int] = None) -> Encoder: ...
    def set_seed(self, seed: int) -> None: ...
    @property
    def vocab_size(self) -> int: ...
    def encode(
        self,
        text: Union[str, bytes],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1.0,
        allowed_special: Optional[SpecialSet] = None,
        disallowed_special: Optional[SpecialSet] = None,
    ) -> List[int]: ...
    def encode_with_offsets(
        self,
        text: Union[str, bytes],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1.0,
        allowed_special: Optional[SpecialSet] = None,
        disallowed_special: Optional[SpecialSet] = None,
    ) -> Tuple[List[int], List[Tuple[int, int]]]: ...
    def tokenize(
        self,
        text: Union[str, bytes],
        alpha: float = -1.0,
        allowed_special: Optional[SpecialSet] = None,
        disallowed_special: Optional[SpecialSet] = None,
    ) -> List[bytes]: ...
    def encode_batch(
        self,
        texts: Iterable[Union[str, bytes]],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1.0,
        num_threads: Optional[int] = None,
        allowed_special: Optional[SpecialSet] = None,
        disallowed_special: Optional[SpecialSet] = None,
    ) -> List[List[int]]: ...
    def encode_batch_numpy(
        self,
        texts: Iterable[Union[str, bytes]],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1.0,
        num_threads: Optional[int] = None,
        allowed_special: Optional[SpecialSet] = None,
        disallowed_special: Optional[SpecialSet] = None,
    ) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...
    def encode_files(
        self,
        inputs: Sequence[Tuple[str, Optional[str]]],
        on_block: Callable[[Optional[bytes], npt.NDArray[np.uint64], int], object],
        format: str = "ids",
        skip_empty: bool = False,
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1.0,
        allowed_special: Sequence[str] = (),
        num_threads: Optional[int] = None,
        block_bytes: Optional[int] = None,
        output: Optional[Tuple[int, str]] = None,
    ) -> Dict[str, float]: ...
    def format_ids(
        self, ids: npt.NDArray[np.uint32], offsets: npt.NDArray[np.int64], format: str
    ) -> Tuple[bytes, npt.NDArray[np.int64]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def decode_bytes(self, ids: Sequence[int]) -> bytes: ...
    def piece_to_id(self, piece: Union[str, bytes]) -> Optional[int]: ...
    def id_to_piece(self, id: int) -> Union[bytes, str]: ...
    # vocabulary surgery: each returns a new encoder, seeded with `seed`
    def with_special_tokens(self, tokens: Sequence[str], seed: Optional[int] = None) -> Tuple[Encoder, int]: ...
    def with_pieces(
        self,
        pieces: Sequence[bytes],
        counts: Optional[Sequence[int]] = None,
        texts: Optional[Iterable[Union[str, bytes]]] = None,
        seed: Optional[int] = None,
    ) -> Tuple[Encoder, List[int]]: ...
    def without_pieces(self, pieces: Sequence[bytes], seed: Optional[int] = None) -> Encoder: ...
    def shrunk(self, vocab_size: int, seed: Optional[int] = None) -> Encoder: ...
    def pieces(self) -> List[bytes]: ...
    def counts(self) -> List[int]: ...
    def special_tokens(self) -> List[Tuple[str, int]]: ...
    def scores(self) -> List[float]: ...
    def to_json(self) -> str: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...

class TrainerCore:
    def __init__(
        self,
        order: int,
        max_vocab_sizes: Sequence[int],
        max_piece_length: int,
        min_count: int,
        isolate_digits: bool,
        ensure_unicode: bool,
        count_memory_mb: int,
        special_tokens: Sequence[str] = ...,
        max_memory_mb: Optional[int] = ...,
        temp_dir: Optional[str] = ...,
    ) -> None: ...
    @property
    def max_vocab_sizes(self) -> List[int]: ...
    def train(self, texts: Iterable[str], workers: int, batch_size: int, progress: Optional[bool] = None) -> None: ...
    def train_from_files(
        self, paths: Sequence[str], workers: int, text_unit: str, progress: Optional[bool] = None
    ) -> None: ...
    def __len__(self) -> int: ...
    def vocab_size(self, i: int) -> int: ...
    def pieces(self, i: int) -> Dict[bytes, int]: ...
    def save(self, i: int, path: Union[str, PathLike[str]]) -> None: ...
    def to_json(self, i: int) -> str: ...
    def set_models(self, models: Sequence[bytes]) -> None: ...
    # the per-shard stages of training (see bytepiece_rs.distributed); tables are serialised
    # count tables (the core's `table` module); with a text_unit ("line" or "file"), texts are
    # the paths of text files
    def ngram_table(
        self, texts: Iterable[str], workers: int, batch_size: int, text_unit: Optional[str] = None
    ) -> bytes: ...
    def model_table(self, tables: Sequence[bytes]) -> bytes: ...
    def ngram_model(self, table: bytes) -> NgramModelCore: ...
    def piece_table(
        self,
        model: NgramModelCore,
        texts: Iterable[str],
        workers: int,
        batch_size: int,
        text_unit: Optional[str] = None,
    ) -> bytes: ...
    def train_from_tables(self, tables: Sequence[bytes], workers: int, progress: Optional[bool] = None) -> None: ...

class NgramModelCore:
    @property
    def fingerprint(self) -> int: ...

def merge_tables(tables: Sequence[bytes]) -> bytes: ...
def prune_to_json(
    pieces: Sequence[Tuple[bytes, int]],
    max_vocab_size: Optional[int] = None,
    min_count: int = 1,
    special_tokens: Sequence[str] = ...,
) -> str: ...

class AtomicFile:
    """A file written under a temporary name beside its target and renamed into place by
    ``commit_all()``; see ``bytepiece_rs._files``."""

    def __init__(self, path: Union[str, PathLike[str]]) -> None: ...
    def duplicate(self) -> int: ...
    @staticmethod
    def commit_all(files: Sequence[AtomicFile]) -> None: ...
    def abort(self) -> None: ...
    @staticmethod
    def remove_leftovers(path: Union[str, PathLike[str]]) -> int: ...

class ProgressBar:
    """A bar of bytes on stderr, as the training's stages draw them; shown as ``show`` says, else
    when stderr is a terminal. A context manager that closes it."""

    def __init__(self, label: str, total_bytes: Optional[int] = None, show: Optional[bool] = None) -> None: ...
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> ProgressBar: ...
    def __exit__(self, *exc: object) -> None: ...
