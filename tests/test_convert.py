"""Exports to SentencePiece and HF tokenizers: the converted models load there and give our ids on
real text, except the documented cases, each checked for what it is:

- ``unused``: SentencePiece only; our segmentation uses a piece that is not valid UTF-8, which
  cannot be a SentencePiece piece (an UNUSED placeholder at its id);
- ``tie``: the peer picked another segmentation of the same bytes whose total score is equal
  (or, for SentencePiece, whose scores are float32, equal within 1e-3): ties break differently.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer
from conftest import GOLDEN_DIR, MODEL_NAMES

spm = pytest.importorskip("sentencepiece")
hf = pytest.importorskip("tokenizers")

from bytepiece_rs.convert import _scored_pieces, byte_level_alphabet, to_hf_json, to_sentencepiece  # noqa: E402


@pytest.fixture(scope="module")
def documents(shared_dir):
    """Real documents: paragraphs of the zh, en and code samples (1,500 of each)."""
    return ec.sample_documents(shared_dir, 1500)


def classify(tok, docs, got, unused=()):
    """Counts of documents by how the peer's ids ``got`` differ from ours."""
    scores = {i: s for i, (_, s) in enumerate(_scored_pieces(tok), 3)}
    unused = set(unused)
    kinds = {"same": 0, "unused": 0, "tie": 0, "other": 0}
    examples = []
    for doc, ids in zip(docs, got):
        ours = tok.encode(doc)
        if ours == ids:
            kinds["same"] += 1
        elif unused & set(ours):
            kinds["unused"] += 1
        elif (
            tok.decode_bytes(ids) == tok.decode_bytes(ours)
            and abs(sum(scores[i] for i in ours) - sum(scores.get(i, 0.0) for i in ids)) < 1e-3
        ):
            kinds["tie"] += 1
        else:
            kinds["other"] += 1
            examples.append(doc[:80])
    return kinds, examples


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_sentencepiece_loads_the_conversion_and_gives_our_ids(name, tokenizer, documents, tmp_path):
    tok = tokenizer(name)
    path = tmp_path / "m.model"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unused = tok.convert_to_sentencepiece(path)
    assert bool(unused) == bool(caught)
    for i in unused:  # placeholders only where a piece cannot be a SentencePiece string
        piece = tok.id_to_piece(i)
        with pytest.raises(UnicodeDecodeError):
            piece.decode("utf-8")
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert sp.get_piece_size() >= tok.vocab_size
    kinds, examples = classify(tok, documents, sp.encode(documents), unused)
    assert kinds["other"] == 0, examples
    assert kinds["tie"] <= 0.02 * len(documents), kinds
    if not unused:
        assert kinds["unused"] == 0
    assert kinds["same"] >= 0.85 * len(documents), kinds


def test_sentencepiece_conversion_of_the_original_is_byte_identical(tokenizer, oracle, tmp_path):
    expected = json.loads((GOLDEN_DIR / "spm_conversion.json").read_text())["sha256"]
    for name, digest in expected.items():
        ours = tokenizer(name)
        path = tmp_path / f"{name}.model"
        assert ours.convert_to_sentencepiece(path, exact_original=True) == []
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name


def test_exact_original_conversion_matches_golden_hashes(tokenizer):
    """The same check without the oracle: the committed hashes of the original's output."""
    expected = json.loads((GOLDEN_DIR / "spm_conversion.json").read_text())["sha256"]
    for name, digest in expected.items():
        proto, unused = to_sentencepiece(tokenizer(name), exact_original=True)
        assert unused == []
        assert hashlib.sha256(proto).hexdigest() == digest, name


def test_default_conversion_makes_ascii_bytes_ordinary_pieces(tokenizer):
    tok = tokenizer("bytepiece.zh.id.eu.80k")
    default, _ = to_sentencepiece(tok)
    exact, _ = to_sentencepiece(tok, exact_original=True)
    assert default != exact
    a = spm.SentencePieceProcessor(model_proto=default)
    b = spm.SentencePieceProcessor(model_proto=exact)
    newline = tok.piece_to_id(b"\n")
    assert not a.is_byte(newline) and a.id_to_piece(newline) == "\n"
    assert b.is_byte(newline) and b.id_to_piece(newline) == "<0x0A>"
    assert a.is_byte(tok.piece_to_id(b"\x00")) and a.is_byte(tok.piece_to_id(b"\xe4"))
    # a lone newline between words: the original's conversion pays the byte-fallback penalty
    text = "alpha\nbeta\n\tgamma"
    assert a.encode(text) == tok.encode(text)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hf_tokenizers_loads_the_export_and_gives_our_ids(name, tokenizer, documents, tmp_path):
    tok = tokenizer(name)
    path = tmp_path / "tokenizer.json"
    tok.convert_to_hf(path)
    t = hf.Tokenizer.from_file(str(path))
    assert t.get_vocab_size() == tok.vocab_size
    kinds, examples = classify(tok, documents, [e.ids for e in t.encode_batch(documents)])
    assert kinds["other"] == 0 and kinds["unused"] == 0, examples
    assert kinds["tie"] <= 0.01 * len(documents), kinds
    # pieces that are not valid UTF-8 are tokens too, and decoding gives the bytes back
    doc = documents[0]
    assert t.decode(tok.encode(doc)) == doc
    assert t.token_to_id("<bos>") == 1


def test_hf_export_declares_pad_bos_eos_special_tokens():
    """``<pad>``, ``<bos>`` and ``<eos>`` are special added tokens: ``skip_special_tokens=True``
    drops them. HF matches them in the input, as every special token (documented), unless
    ``encode_special_tokens`` is set: then their text is encoded as ours encodes it."""
    tok = Tokenizer()
    t = hf.Tokenizer.from_str(to_hf_json(tok))
    added = {i: (a.content, a.special) for i, a in t.get_added_tokens_decoder().items()}
    assert added == {0: ("<pad>", True), 1: ("<bos>", True), 2: ("<eos>", True)}
    ids = tok.encode("Hello", add_bos=True, add_eos=True) + [0, 0]
    assert t.decode(ids, skip_special_tokens=True) == tok.decode(ids) == "Hello"
    assert t.decode(ids, skip_special_tokens=False) == "<bos>Hello<eos><pad><pad>"
    text = "a <bos> b<eos><pad>"
    assert t.encode(text).ids == tok.encode("a ") + [1] + tok.encode(" b") + [2, 0]
    t.encode_special_tokens = True
    for text in ("a <bos> b<eos><pad>", "<bos>", "Hello, 世界\n\tdef f(x): return x"):
        assert t.encode(text).ids == tok.encode(text), text


def test_hf_export_edge_cases(tokenizer, shared_dir):
    tok = tokenizer("bytepiece.zh.id.eu.80k")
    t = hf.Tokenizer.from_str(to_hf_json(tok))
    for label, text in ec.edge_cases(shared_dir).items():
        if len(text) > 100_000:
            continue
        assert t.encode(text).ids == tok.encode(text), label


def test_byte_level_alphabet_is_gpt2s():
    table = byte_level_alphabet()
    assert len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord(" ")] == "\u0120" and table[0] == "\u0100"
