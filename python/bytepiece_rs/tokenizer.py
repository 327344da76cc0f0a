"""The Tokenizer class: the original's API over the compiled encoder."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import warnings
from pathlib import Path
from typing import (
    AbstractSet,
    Any,
    Collection,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from ._core import Encoder
from ._files import write_atomic
from ._signals import terminations_raise

#: The model bundled with the package, used when no model is given.
DEFAULT_MODEL = Path(__file__).with_name("data") / "default.model.gz"


Text = Union[str, bytes]
#: ``allowed_special`` / ``disallowed_special``: ``"all"`` or a collection of token texts.
SpecialSet = Union[Literal["all"], AbstractSet[str], Collection[str]]
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
    raise TypeError(f"model must be a path (str or os.PathLike) or a dict, got {type(model).__name__}")


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
        self._seed = _check_seed(seed)
        self._encoder = _load(model, self._seed)

    @property
    def special_tokens(self) -> Dict[str, int]:
        """The special tokens (text -> id); see :meth:`encode`."""
        return dict(self._encoder.special_tokens())

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

    def tokenize(
        self,
        text: Text,
        alpha: float = -1,
        iter: bool = False,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> Union[List[bytes], Iterator[bytes]]:
        """The pieces of ``text`` as ``bytes``.

        ``alpha < 0`` gives the best segmentation; ``alpha >= 0`` draws one with probability
        proportional to ``exp(alpha * score)`` (``alpha = 0``: uniformly). ``iter=True`` returns an
        iterator instead of a list. Special tokens: as in :meth:`encode`.
        """
        pieces = self._encoder.tokenize(text, float(alpha), allowed_special, disallowed_special)
        return (p for p in pieces) if iter else pieces

    def encode(
        self,
        text: Text,
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        iter: bool = False,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> Union[List[int], Iterator[int]]:
        """The ids of ``text``, with ``<bos>`` (1) first and ``<eos>`` (2) last when asked.

        Special tokens follow ``tiktoken``'s rules: the text of a special token in ``text``
        raises ``ValueError``, unless it is in ``allowed_special`` (a set of token texts, or
        ``"all"``: it becomes its one id) or not in ``disallowed_special`` (default ``"all"``;
        ``()`` encodes every special token's text as ordinary text). A model without special
        tokens never raises."""
        ids = self._encoder.encode(text, add_bos, add_eos, float(alpha), allowed_special, disallowed_special)
        return (i for i in ids) if iter else ids

    def encode_with_offsets(
        self,
        text: Text,
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> Tuple[List[int], List[Tuple[int, int]]]:
        """The ids of ``text`` (as :meth:`encode`) and, for each, its ``(start, end)`` span in
        ``text`` itself: character positions of a ``str`` as given (before NFC), byte positions
        of ``bytes``. The spans cover the text in order; a piece that starts or ends inside a
        character (or inside characters that NFC composed) gets that whole character (or those
        characters), so neighbours overlap only there. ``<bos>`` and ``<eos>`` get the empty spans
        ``(0, 0)`` and ``(len, len)``."""
        return self._encoder.encode_with_offsets(
            text, add_bos, add_eos, float(alpha), allowed_special, disallowed_special
        )

    def encode_batch(
        self,
        texts: Iterable[Text],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        num_threads: Optional[int] = None,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> List[List[int]]:
        """The ids of many texts, encoded in parallel (``num_threads``, default: all cores) with
        the GIL released; the same ids as encoding them one by one. Special tokens: as in
        :meth:`encode`."""
        return self._encoder.encode_batch(
            _batch(texts), add_bos, add_eos, float(alpha), num_threads, allowed_special, disallowed_special
        )

    def encode_batch_numpy(
        self,
        texts: Iterable[Text],
        add_bos: bool = False,
        add_eos: bool = False,
        alpha: float = -1,
        num_threads: Optional[int] = None,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Like :meth:`encode_batch`, as one flat ``uint32`` array of ids and ``int64`` offsets
        (``len(texts) + 1``): text ``i`` has ids ``ids[offsets[i]:offsets[i + 1]]``."""
        return self._encoder.encode_batch_numpy(
            _batch(texts), add_bos, add_eos, float(alpha), num_threads, allowed_special, disallowed_special
        )

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; ids 0-2 are skipped and bytes that do not form UTF-8 dropped."""
        return self._encoder.decode(_id_list(ids))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids`` joined, ids 0-2 skipped; nothing is dropped."""
        return self._encoder.decode_bytes(_id_list(ids))

    def decode_stream(self) -> "StreamDecoder":
        """A :class:`StreamDecoder` for ids that arrive one at a time (as an LLM generates them)."""
        return StreamDecoder(self)

    def scores(self) -> List[float]:
        """The score (log-probability) of each piece, in id order from id 3; ``-inf`` for a
        special token."""
        return self._encoder.scores()

    def counts(self) -> List[int]:
        """The training count of each piece, in id order from id 3 (0 for a special token): the
        counts the scores come from."""
        return self._encoder.counts()

    def piece_to_id(self, piece: Text) -> int:
        """The id of a piece (``bytes``; a ``str`` is taken as its UTF-8 bytes, and
        ``"<pad>"``, ``"<bos>"``, ``"<eos>"`` name ids 0-2). ``KeyError`` if unknown."""
        if isinstance(piece, (bytearray, memoryview)):
            piece = bytes(piece)
        elif not isinstance(piece, (str, bytes)):
            raise TypeError(f"a piece is bytes or str, got {type(piece).__name__}")
        found = self._encoder.piece_to_id(piece)
        if found is None:
            raise KeyError(piece)
        return found

    def id_to_piece(self, id: int) -> Union[bytes, str]:
        """The piece (``bytes``) of an id; ids 0-2 give ``"<pad>"``, ``"<bos>"``, ``"<eos>"``.
        ``KeyError`` if unknown."""
        return self._encoder.id_to_piece(int(id))

    def pieces_to_ids(self, pieces: Iterable[Text]) -> List[int]:
        """:meth:`piece_to_id` of each piece."""
        return [self.piece_to_id(p) for p in pieces]

    def ids_to_pieces(self, ids: Iterable[int]) -> List[Union[bytes, str]]:
        """:meth:`id_to_piece` of each id."""
        return [self.id_to_piece(i) for i in ids]

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model in the original JSON format, atomically (a failed save leaves any
        previous file as it was; SIGTERM or SIGHUP meanwhile lets it finish, then raises
        :class:`Terminated`)."""
        with terminations_raise():
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

    # -- vocabulary surgery: each changes this tokenizer in place and keeps the original format --

    def add_special_tokens(self, tokens: Iterable[str]) -> int:
        """Adds special tokens (control texts such as ``"<|im_start|>"``) with the next free ids;
        segmentation never produces them (see :meth:`encode`). Tokens already special are
        skipped; the text of an ordinary piece is refused. Returns how many were added."""
        tokens = [tokens] if isinstance(tokens, str) else list(tokens)
        for token in tokens:
            if not isinstance(token, str):
                raise ValueError(f"a special token is a str of 2 bytes or more, got {token!r}")
        self._encoder, added = self._encoder.with_special_tokens(tokens, self._seed)
        return added

    def add_pieces(
        self,
        pieces: Iterable[Text],
        counts: Union[int, Sequence[int], None] = None,
        texts: Optional[Iterable[str]] = None,
    ) -> List[int]:
        """Adds ordinary pieces (``str`` or ``bytes``) with the next free ids and returns their ids.

        Each needs a count, its score being ``log(count / total)`` as for trained pieces: give
        ``counts`` (one for all, or one per piece), or ``texts`` in the domain the pieces come
        from: a piece's count is then its share of that text (its occurrences over the number of
        tokens the model gives the text) times the model's total count, so that it scores as if
        training had seen it that often. Every score shifts a little with the new total."""
        new = _pieces(pieces)
        if (counts is None) == (texts is None):
            raise ValueError("give the pieces' counts or texts to count them on (one of the two)")
        if texts is not None:
            texts = [texts] if isinstance(texts, str) else list(texts)
        elif isinstance(counts, int):
            counts = [counts] * len(new)
        else:
            counts = list(counts)
        if counts is not None and (
            len(counts) != len(new) or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts)
        ):
            raise ValueError("counts must be positive integers, one per piece (or one for all)")
        self._encoder, ids = self._encoder.with_pieces(new, counts, texts, self._seed)
        return ids

    def remove_pieces(self, pieces: Iterable[Text]) -> None:
        """Removes pieces or special tokens; the ids after each removed one move down to stay
        contiguous. Single bytes cannot be removed (every text must stay encodable)."""
        self._encoder = self._encoder.without_pieces(_pieces(pieces), self._seed)

    def shrink(self, vocab_size: int) -> None:
        """Cuts the vocabulary to ``vocab_size`` ids (reserved ids and special tokens included)
        from its counts, without retraining: the trainer's last step for a smaller size (keep the
        most frequent pieces, re-split the dropped ones into them, drop pieces left unused).
        Training with ``max_vocab_size=[n, vocab_size]`` gives the same model as training with
        ``n`` and shrinking. Ids are renumbered as training numbers them."""
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
        self._encoder = self._encoder.shrunk(vocab_size, self._seed)

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


class StreamDecoder:
    """Decodes ids that arrive one at a time: :meth:`step` returns the text completed by each
    id, holding back the bytes of a character cut between pieces until its last byte comes, so
    nothing is ever a replacement character. Everything returned, joined, equals
    ``tokenizer.decode(ids)`` of all the ids (bytes that can never form UTF-8 are dropped, as
    :meth:`Tokenizer.decode` drops them)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._encoder = tokenizer._encoder
        self._utf8 = codecs.getincrementaldecoder("utf-8")("ignore")

    def step(self, id: int) -> str:
        """The text completed by one more id (often ``""`` mid-character)."""
        return self._utf8.decode(self._encoder.decode_bytes([int(id)]))

    def feed(self, ids: Iterable[int]) -> str:
        """The text completed by several more ids."""
        return self._utf8.decode(self._encoder.decode_bytes(_id_list(ids)))

    def flush(self) -> str:
        """Ends the stream: drops an unfinished character (as :meth:`Tokenizer.decode` does)
        and returns ``""``; the decoder can then start a new stream."""
        return self._utf8.decode(b"", final=True)


def _pieces(pieces: Union[Text, Iterable[Text]]) -> List[bytes]:
    """One piece or many, each as bytes (a ``str`` as its UTF-8)."""
    many = [pieces] if isinstance(pieces, (str, bytes)) else pieces
    return [p.encode() if isinstance(p, str) else bytes(p) for p in many]


def _batch(texts: Iterable[Text]) -> Iterable[Text]:
    """``texts``, refusing one text given where a batch is expected."""
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError(
            f"a batch is a list of texts, got one {type(texts).__name__}: encode it with encode(), or pass [text]"
        )
    return texts


def _id_list(ids: Iterable[int]) -> List[int]:
    if isinstance(ids, np.ndarray):
        return ids.tolist()
    return list(ids)
