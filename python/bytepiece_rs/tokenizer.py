"""The Tokenizer class: the original's API over the compiled encoder."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._core import Encoder
from ._files import write_atomic

#: The model bundled with the package, used when no model is given.
DEFAULT_MODEL = Path(__file__).with_name("data") / "default.model.gz"

#: The names of ids 0, 1 and 2, as the original names them.
RESERVED = ("<pad>", "<bos>", "<eos>")

Text = Union[str, bytes]
ModelSource = Union[str, "os.PathLike[str]", Mapping[str, Sequence[Any]], None]


def _load(model: ModelSource, seed: Optional[int]) -> Encoder:
    if model is None:
        model = DEFAULT_MODEL
    if isinstance(model, Mapping):
        data = json.dumps(dict(model)).encode()
        return Encoder.from_json(data, "model dict", seed)
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix == ".gz":
            try:
                with gzip.open(path, "rb") as f:
                    data = f.read()
            except (OSError, EOFError) as e:
                if isinstance(e, FileNotFoundError):
                    raise FileNotFoundError(f"{path}: no such file") from None
                raise ValueError(f"{path}: not a readable gzip file ({e})") from None
            return Encoder.from_json(data, str(path), seed)
        return Encoder.from_file(path, seed)
    raise TypeError(
        f"model must be a path (str or os.PathLike) or a dict, got {type(model).__name__}"
    )


def _check_seed(seed: Optional[int]) -> Optional[int]:
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return seed % 2**64


class Tokenizer:
    """BytePiece Unigram tokenizer.

    ``model`` is a model file in the original JSON format (``str`` or ``pathlib.Path``; ``.gz``
    files are decompressed), the same model as a ``dict`` (base64 piece -> ``[id, text, count]``),
    or ``None`` for the bundled default model. ``seed`` fixes the draws made when sampling
    (``alpha >= 0``).

    Text is NFC-normalised and split after each run of ``\\n``, and every line gets its
    highest-probability segmentation (or a sampled one), exactly as in the original. ``bytes``
    input is segmented as it is, without normalisation.
    """

    def __init__(self, model: ModelSource = None, seed: Optional[int] = None) -> None:
        seed = _check_seed(seed)
        self._encoder = _load(model, seed)
        self._seed = seed

    @property
    def vocab_size(self) -> int:
        """Number of ids, ``<pad>``, ``<bos>`` and ``<eos>`` included."""
        return self._encoder.vocab_size

    def set_seed(self, seed: Optional[int]) -> None:
        """Restarts the random draws used when sampling; ``None`` leaves them as they are."""
        seed = _check_seed(seed)
        if seed is not None:
            self._encoder.set_seed(seed)
            self._seed = seed

    def tokenize(self, text: Text, alpha: float = -1, iter: bool = False) -> Union[List[bytes], Iterator[bytes]]:
        """The pieces of ``text`` as ``bytes``.

        ``alpha < 0`` gives the best segmentation; ``alpha >= 0`` draws one with probability
        proportional to ``exp(alpha * score)`` (``alpha = 0``: uniformly). ``iter=True`` returns an
        iterator instead of a list.
        """
        pieces = self._encoder.tokenize(text, float(alpha))
        return (p for p in pieces) if iter else pieces

    def encode(
        self,
        text: Text,
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        iter: bool = False,
    ) -> Union[List[int], Iterator[int]]:
        """The ids of ``text``, with ``<bos>`` (1) first and ``<eos>`` (2) last when asked."""
        ids = self._encoder.encode(text, add_bos, add_eos, float(alpha))
        return (i for i in ids) if iter else ids

    def encode_batch(
        self,
        texts: Iterable[Text],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        num_threads: Optional[int] = None,
    ) -> List[List[int]]:
        """The ids of many texts, encoded in parallel (``num_threads``, default: all cores) with
        the GIL released; the same ids as encoding them one by one."""
        return self._encoder.encode_batch(texts, add_bos, add_eos, float(alpha), num_threads)

    def encode_batch_numpy(
        self,
        texts: Iterable[Text],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        num_threads: Optional[int] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Like :meth:`encode_batch`, as one flat ``uint32`` array of ids and ``int64`` offsets
        (``len(texts) + 1``): text ``i`` has ids ``ids[offsets[i]:offsets[i + 1]]``."""
        return self._encoder.encode_batch_numpy(texts, add_bos, add_eos, float(alpha), num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; ids 0-2 are skipped and bytes that do not form UTF-8 dropped."""
        return self._encoder.decode(_id_list(ids))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids`` joined, ids 0-2 skipped; nothing is dropped."""
        return self._encoder.decode_bytes(_id_list(ids))

    def piece_to_id(self, piece: Text) -> int:
        """The id of a piece (``bytes``; a ``str`` is taken as its UTF-8 bytes, and
        ``"<pad>"``, ``"<bos>"``, ``"<eos>"`` name ids 0-2). ``KeyError`` if unknown."""
        if isinstance(piece, str):
            if piece in RESERVED:
                return RESERVED.index(piece)
            key = piece.encode()
        elif isinstance(piece, (bytes, bytearray, memoryview)):
            key = bytes(piece)
        else:
            raise TypeError(f"a piece is bytes or str, got {type(piece).__name__}")
        found = self._encoder.piece_to_id(key)
        if found is None:
            raise KeyError(piece)
        return found

    def id_to_piece(self, id: int) -> Union[bytes, str]:
        """The piece (``bytes``) of an id; ids 0-2 give ``"<pad>"``, ``"<bos>"``, ``"<eos>"``.
        ``KeyError`` if unknown."""
        if isinstance(id, (int, np.integer)) and 0 <= id < len(RESERVED):
            return RESERVED[id]
        piece = self._encoder.id_to_piece(int(id))
        if piece is None:
            raise KeyError(id)
        return piece

    def pieces_to_ids(self, pieces: Iterable[Text]) -> List[int]:
        """:meth:`piece_to_id` of each piece."""
        return [self.piece_to_id(p) for p in pieces]

    def ids_to_pieces(self, ids: Iterable[int]) -> List[Union[bytes, str]]:
        """:meth:`id_to_piece` of each id."""
        return [self.id_to_piece(i) for i in ids]

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model in the original JSON format, atomically (a failed save leaves any
        previous file as it was)."""
        self._encoder.save(Path(path))

    def convert_to_sentencepiece(self, path: Union[str, "os.PathLike[str]"], exact_original: bool = False) -> List[int]:
        """Writes the model as a SentencePiece model (Unigram, byte fallback, identity
        normalisation) that ``sentencepiece.SentencePieceProcessor`` loads, as the original's
        method does (``exact_original=True``: byte for byte; by default every ASCII byte is an
        ordinary piece, see :func:`bytepiece_rs.convert.to_sentencepiece`). Pieces that are not
        valid UTF-8 cannot be SentencePiece pieces (the original raises ``UnicodeDecodeError``):
        they become ``UNUSED`` placeholders, with a warning; their ids are returned."""
        from .convert import to_sentencepiece

        proto, unused = to_sentencepiece(self, exact_original)
        write_atomic(path, proto)
        if unused:
            warnings.warn(
                f"{len(unused)} pieces are not valid UTF-8 (or repeat another piece's text) and cannot be "
                "SentencePiece pieces: they are UNUSED in the converted model, whose ids differ where "
                "BytePiece uses them",
                stacklevel=2,
            )
        return unused

    def convert_to_hf(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model as an HF ``tokenizers`` ``tokenizer.json`` (byte-level Unigram with
        the original's scores and line split), loaded by ``tokenizers.Tokenizer.from_file``; see
        :func:`bytepiece_rs.convert.to_hf_json` for what differs."""
        from .convert import to_hf_json

        write_atomic(path, to_hf_json(self).encode("utf-8"))

    def to_dict(self) -> dict:
        """The model as the original's dict: base64 piece -> ``[id, text, count]``."""
        return json.loads(self._encoder.to_json())

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"

    # ------------------------------------------------------------ pickling, integrations, HTML

    def __getstate__(self) -> dict:
        """Pickled as the model's JSON (the original format, exact ids and counts) and the last
        seed given (to the constructor or :meth:`set_seed`). A copy restarts the draws of that
        seed: it samples what a new ``Tokenizer(model, seed=seed)`` samples, not the draws that
        follow the original's; without a seed, each copy draws from fresh entropy (so the
        workers of a ``DataLoader`` sample differently)."""
        state = dict(self.__dict__)
        state["_encoder"] = self._encoder.to_json().encode("utf-8")
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        model = state.pop("_encoder")
        self.__dict__.update(state)
        self._encoder = Encoder.from_json(model, "pickled Tokenizer", state.get("_seed"))

    def to_transformers(self, **kwargs: Any) -> Any:
        """This tokenizer as a ``transformers.PreTrainedTokenizerFast``; see
        :func:`bytepiece_rs.integrations.to_transformers`."""
        from .integrations import to_transformers

        return to_transformers(self, **kwargs)

    def to_html(self, text: Text, title: Optional[str] = None) -> str:
        """A self-contained HTML page showing the tokens of ``text``; see
        :func:`bytepiece_rs.show.to_html`."""
        from .show import to_html

        return to_html([self], text, title=title)


def _id_list(ids: Iterable[int]) -> List[int]:
    if isinstance(ids, np.ndarray):
        return ids.tolist()
    return list(ids)
