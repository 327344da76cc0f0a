"""Exports of a BytePiece model to SentencePiece and to HF ``tokenizers``.

- :func:`to_sentencepiece` writes the ``ModelProto`` the original's ``convert_to_sentencepiece``
  writes, byte for byte where the original succeeds, without needing ``protobuf``. SentencePiece
  pieces are Unicode strings: a piece that is not valid UTF-8 (or whose text, spaces written as
  ``▁``, repeats an earlier piece's) cannot be one, and the original raises
  ``UnicodeDecodeError``; here it becomes an ``UNUSED`` placeholder at its id, which
  SentencePiece never produces, and the ids listed in the result are the ones affected.
- :func:`to_hf_json` writes a ``tokenizer.json`` for HF ``tokenizers``: NFC, the original's
  line split (``.*\\n+|.+``), a byte-level alphabet (GPT-2's, so that every byte string, valid
  UTF-8 or not, is a token) and a Unigram model with the original's scores: its Viterbi runs over
  the same bytes and pieces as BytePiece's.

Special tokens become SentencePiece ``CONTROL`` pieces (never produced from text, so text that
holds one is encoded as ordinary text, as with ``disallowed_special=()``; SentencePiece decodes
them to ``""``) and HF *added tokens* with ``special: true``, skipped by
``decode(skip_special_tokens=True)``; in the HF export, so do ``<pad>``, ``<bos>`` and
``<eos>`` (ids 0-2).

HF matches special added tokens in the input before the model, and ``tokenizer.json`` has no
flag that keeps one out of this matching (the ``Tokenizer``'s ``encode_special_tokens``
setting keeps them all out, but the file does not store it). So, loaded as it is, the HF export
encodes the text of a special token as its id, as ours with ``allowed_special="all"``, and so
the texts ``<pad>``, ``<bos>`` and ``<eos>`` too, which ours always encodes as text. Set
``encode_special_tokens = True`` on the loaded ``tokenizers.Tokenizer`` to encode all of them as
text, as ours with ``disallowed_special=()``; the ``transformers`` tokenizer
(:func:`bytepiece_rs.integrations.to_transformers`, ``bytepiece convert --to transformers``)
does so (``split_special_tokens=True``).
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np

from ._core import NUM_RESERVED, RESERVED

if TYPE_CHECKING:
    from ._typing import TokenizerLike

#: SentencePiece piece types (``sentencepiece_model.proto``).
_UNKNOWN, _CONTROL, _UNUSED, _BYTE = 2, 3, 5, 6


def _scored_pieces(tokenizer: "TokenizerLike") -> List[Tuple[bytes, Optional[float]]]:
    """``(piece, score)`` for every id from ``NUM_RESERVED`` on, the score as the original
    computes it (NumPy's scalar ``log`` of the count minus that of the total); ``None`` for a
    special token."""
    counts = tokenizer.counts()
    log_total = np.log(sum(counts))
    pieces = [tokenizer.id_to_piece(i) for i in range(NUM_RESERVED, tokenizer.vocab_size)]
    return [(p, float(np.log(c) - log_total) if c else None) for p, c in zip(pieces, counts)]


# --------------------------------------------------------------------------- SentencePiece


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _bytes_field(number: int, value: bytes) -> bytes:
    return _field(number, 2, _varint(len(value)) + value)


def _piece(text: str, score: float, kind: int = 0) -> bytes:
    body = _bytes_field(1, text.encode("utf-8")) + _field(2, 5, struct.pack("<f", score))
    if kind:
        body += _field(3, 0, _varint(kind))
    return _bytes_field(1, body)


def to_sentencepiece(tokenizer: "TokenizerLike", exact_original: bool = False) -> Tuple[bytes, List[int]]:
    """The serialised SentencePiece ``ModelProto`` of the model (Unigram, byte fallback,
    identity normalisation), and the ids that became ``UNUSED`` placeholders (see the module
    documentation).

    The original makes only printable ASCII bytes (but ``\\``) ordinary pieces; the other single
    bytes are ``BYTE`` pieces, which SentencePiece only uses for a character no piece covers, at
    a penalty: a lone ``\\n`` or ``\\t`` then costs more than in BytePiece, and segmentations
    around it change (on 14% of real documents). By default every ASCII byte is an ordinary
    piece, which removes these differences; ``exact_original=True`` writes the original's bytes.
    """
    pieces = [_piece("<unk>", 0.0, _UNKNOWN), _piece("<s>", 0.0, _CONTROL), _piece("</s>", 0.0, _CONTROL)]
    extra_bytes: List[bytes] = []
    unused: List[int] = []
    seen = {"<unk>", "<s>", "</s>"}
    for i, (p, score) in enumerate(_scored_pieces(tokenizer), NUM_RESERVED):
        if score is None:  # a special token (unless SentencePiece names one of its own so)
            if p.decode() in seen:
                unused.append(i)
                pieces.append(_piece("<bytepiece-unused-%d>" % i, 0.0, _UNUSED))
            else:
                seen.add(p.decode())
                pieces.append(_piece(p.decode(), 0.0, _CONTROL))
            continue
        # single printable ASCII bytes (but the backslash) are ordinary pieces, as in the original
        # (NUL stays a BYTE piece: SentencePiece makes a "\\0" piece UNUSED)
        ordinary_byte = 0 < p[0] < 0x80 if not exact_original else 0x20 <= p[0] <= 0x7E and p[0] != 0x5C
        if len(p) > 1 or ordinary_byte:
            if len(p) == 1:
                extra_bytes.append(_piece("<0x%02X>" % p[0], -100.0, _BYTE))
            try:
                text = p.decode("utf-8").replace(" ", "\u2581")
            except UnicodeDecodeError:
                text = None
            if text is None or text in seen:
                unused.append(i)
                pieces.append(_piece("<bytepiece-unused-%d>" % i, score, _UNUSED))
            else:
                seen.add(text)
                pieces.append(_piece(text, score))
        else:
            pieces.append(_piece("<0x%02X>" % p[0], score, _BYTE))
    everything = pieces + extra_bytes
    trainer_spec = (
        _field(3, 0, _varint(1))  # model_type: UNIGRAM
        + _field(4, 0, _varint(len(everything)))  # vocab_size
        + _field(21, 0, _varint(0))  # split_by_unicode_script: false
        + _field(35, 0, _varint(1))  # byte_fallback: true
    )
    normalizer_spec = (
        _bytes_field(1, b"identity")
        + _bytes_field(2, b"")  # precompiled_charsmap
        + _field(3, 0, _varint(0))  # add_dummy_prefix: false
        + _field(4, 0, _varint(0))  # remove_extra_whitespaces: false
    )
    proto = b"".join(everything) + _bytes_field(2, trainer_spec) + _bytes_field(3, normalizer_spec)
    return proto, unused


# --------------------------------------------------------------------------- HF tokenizers


def byte_level_alphabet() -> Dict[int, str]:
    """GPT-2's map from bytes to printable characters (HF's ``ByteLevel``): printable Latin-1
    bytes stand for themselves, the others for code points from 256 up, in byte order."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


def _added_token(i: int, content: str) -> Dict:
    """An HF special added token: kept out of normalisation, dropped by
    ``decode(skip_special_tokens=True)``, matched in the input before the model."""
    return {
        "id": i,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def to_hf_json(tokenizer: "TokenizerLike") -> str:
    """The model as an HF ``tokenizers`` ``tokenizer.json`` (see the module documentation).
    ``<pad>``, ``<bos>`` and ``<eos>`` keep ids 0-2, with a score no segmentation ever picks, and
    are special added tokens, as are the model's special tokens."""
    alphabet = byte_level_alphabet()
    vocab: List[List] = [[name, -1e9] for name in RESERVED]
    added = [_added_token(i, name) for i, name in enumerate(RESERVED)]
    for i, (p, score) in enumerate(_scored_pieces(tokenizer), NUM_RESERVED):
        if score is None:  # a special token
            vocab.append([p.decode(), -1e9])
            added.append(_added_token(i, p.decode()))
        else:
            vocab.append(["".join(alphabet[b] for b in p), score])
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": ".*\n+|.+"}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "Unigram", "unk_id": None, "vocab": vocab, "byte_fallback": False},
    }
    return json.dumps(spec, ensure_ascii=False)
