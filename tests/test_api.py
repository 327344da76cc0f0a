"""The Python API as a user calls it: loading and saving models, encoding and decoding, lookups,
batches and numpy output, errors."""

from __future__ import annotations

import base64
import json
import math
import pathlib
import threading
import unicodedata

import numpy as np
import pytest

import bytepiece_rs
from bytepiece_rs import Tokenizer


def toy_model(extra: dict[bytes, int] | None = None, byte_count: int = 1) -> dict:
    """A model dict in the original format: all 256 bytes plus `extra`, ids by (len, bytes)."""
    pieces = {bytes([b]): byte_count for b in range(256)}
    pieces.update(extra or {})
    ordered = sorted(pieces.items(), key=lambda kv: (len(kv[0]), kv[0]))
    return {base64.b64encode(p).decode(): [i + 3, p.decode(errors="ignore"), c] for i, (p, c) in enumerate(ordered)}


@pytest.fixture(scope="module")
def default() -> Tokenizer:
    return Tokenizer()


# --- loading -------------------------------------------------------------------------------


def test_default_model_is_bundled_and_works(default):
    assert default.vocab_size > 50_000
    text = "BytePiece 分词器, 2024!\n\n  code: x = [i for i in range(3)]\n"
    ids = default.encode(text)
    assert all(3 <= i < default.vocab_size for i in ids)
    assert default.decode(ids) == text


def test_loads_str_path_pathlib_and_dict_alike(tmp_path):
    model = toy_model({b"ab": 40, b"abc": 3})
    path = tmp_path / "toy.model"
    path.write_text(json.dumps(model))
    a, b, c = Tokenizer(str(path)), Tokenizer(path), Tokenizer(model)
    for t in (a, b, c):
        assert t.encode("abcab") == a.encode("abcab")
        assert t.vocab_size == 258 + 3


def test_save_writes_the_original_format_byte_for_byte(tmp_path, model_path):
    src = pathlib.Path(model_path("bytepiece_80k"))
    out = tmp_path / "copy.model"
    Tokenizer(src).save(out)
    original = json.loads(src.read_text())
    # The original writes json.dump(indent=4, ensure_ascii=False) in id order.
    ordered = dict(sorted(original.items(), key=lambda kv: kv[1][0]))
    assert out.read_text(encoding="utf-8") == json.dumps(ordered, indent=4, ensure_ascii=False)
    assert Tokenizer(out).encode("round trip 往返") == Tokenizer(src).encode("round trip 往返")


def test_save_of_a_toy_model_round_trips_through_dict(tmp_path):
    model = toy_model({b"\xe4\xb8": 5, "中文".encode(): 9, b'"\\\n': 2})
    t = Tokenizer(model)
    assert t.to_dict() == model
    t.save(tmp_path / "m.model")
    assert json.loads((tmp_path / "m.model").read_text()) == model


def test_gzipped_model_loads(tmp_path):
    import gzip

    model = toy_model({b"ab": 7})
    path = tmp_path / "m.model.gz"
    with gzip.open(path, "wt") as f:
        json.dump(model, f)
    assert Tokenizer(path).encode("ab") == [Tokenizer(model).piece_to_id(b"ab")]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.__setitem__("!!", [999, "", 1]), "not valid base64"),
        (lambda m: m.__setitem__("YWI=", [3, "ab", 1]), "used by more than one piece"),
        (lambda m: m.__setitem__("YWI=", [900, "ab", 1]), "has id 900 and id 259 is missing"),
        (lambda m: m.__setitem__("YWI=", [259, "ab", 0]), "count 0 is not a positive integer"),
        (lambda m: m.__setitem__("YWI=", [259, "ab", -5]), "count -5 is not a positive integer"),
        (lambda m: m.__setitem__("YWI=", [259, "ab", 1.5]), "count 1.5 is not a positive integer"),
        (lambda m: m.__setitem__("YWI=", [259, 1]), "not [id, text, count]"),
        (lambda m: m.__setitem__("YWI=", m.pop("QQ==")), "single-byte piece(s) missing (0x41)"),
        (lambda m: m.pop("QQ=="), "id 68 is missing"),
        (lambda m: m.clear(), "the vocabulary is empty"),
    ],
)
def test_bad_models_raise_value_error_naming_file_and_problem(tmp_path, mutate, message):
    model = toy_model()
    mutate(model)
    path = tmp_path / "bad.model"
    path.write_text(json.dumps(model))
    with pytest.raises(ValueError) as err:
        Tokenizer(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unreadable_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Tokenizer(tmp_path / "missing.model")
    (tmp_path / "junk.model").write_text("{ this is not json")
    with pytest.raises(ValueError, match="junk.model: not a BytePiece model"):
        Tokenizer(tmp_path / "junk.model")
    (tmp_path / "list.model").write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="JSON object"):
        Tokenizer(tmp_path / "list.model")
    (tmp_path / "bad.model.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="gzip"):
        Tokenizer(tmp_path / "bad.model.gz")
    with pytest.raises(OSError):
        Tokenizer(tmp_path)  # a directory
    with pytest.raises(TypeError):
        Tokenizer(42)


def test_failed_save_leaves_previous_file_and_no_temporary(tmp_path):
    t = Tokenizer(toy_model({b"ab": 2}))
    with pytest.raises(FileNotFoundError):
        t.save(tmp_path / "no" / "such" / "dir" / "m.model")
    with pytest.raises(OSError):
        t.save(tmp_path)  # a folder cannot be replaced by a file
    assert list(tmp_path.iterdir()) == []


def test_encode_matches_tokenize_and_ids(default):
    text = "Hello world\n你好，世界\n\n"
    pieces = default.tokenize(text)
    assert isinstance(pieces, list) and all(isinstance(p, bytes) for p in pieces)
    assert b"".join(pieces) == text.encode()
    assert default.pieces_to_ids(pieces) == default.encode(text)
    assert default.ids_to_pieces(default.encode(text)) == pieces
    assert list(default.tokenize(text, iter=True)) == pieces
    assert list(default.encode(text, iter=True)) == default.encode(text)


def test_bos_eos_and_reserved_ids(default):
    ids = default.encode("abc", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert ids[1:-1] == default.encode("abc")
    assert default.encode("", add_bos=True, add_eos=True) == [1, 2]
    assert default.encode("") == []
    assert [default.id_to_piece(i) for i in (0, 1, 2)] == ["<pad>", "<bos>", "<eos>"]
    assert [default.piece_to_id(p) for p in ("<pad>", "<bos>", "<eos>")] == [0, 1, 2]


def test_nfc_normalisation_for_str_but_not_bytes(default):
    decomposed = "Cafe\u0301 \u1100\u1161\u11a8"
    composed = unicodedata.normalize("NFC", decomposed)
    assert default.encode(decomposed) == default.encode(composed)
    assert default.decode(default.encode(decomposed)) == composed
    raw = decomposed.encode()
    assert default.decode_bytes(default.encode(raw)) == raw


def test_bytes_input_may_be_invalid_utf8_and_hold_nul(default):
    raw = b"\x00\xff\xfe abc \xe4\xb8 \x00\n\x80"
    ids = default.encode(raw)
    assert default.decode_bytes(ids) == raw
    assert default.decode(ids) == raw.decode(errors="ignore")


def test_lone_surrogate_is_a_value_error(default):
    with pytest.raises(ValueError, match="surrogates not allowed"):
        default.encode("abc\ud800def")
    with pytest.raises(ValueError):
        default.encode_batch(["fine", "bad \udfff"])
    with pytest.raises(TypeError, match="str or bytes"):
        default.encode(123)


def test_decode_skips_reserved_and_negative_ids_like_the_original(default):
    ids = default.encode("你好 world")
    assert default.decode([0, 1] + ids + [2, -7]) == "你好 world"
    # a piece that is half a character decodes to nothing, as with errors="ignore"
    half = default.piece_to_id(b"\xe4")
    assert default.decode([half]) == ""
    assert default.decode_bytes([half]) == b"\xe4"
    assert default.decode(np.array(ids, dtype=np.uint32)) == "你好 world"


def test_scores_and_counts_are_the_pieces_in_id_order(default):
    """``counts()`` are the model file's counts, ``scores()`` their logarithms less that of the
    total (``-inf`` for a special token), both from id 3."""
    tok = Tokenizer(seed=0)
    tok.add_special_tokens(["<|sep|>"])
    counts, scores = tok.counts(), tok.scores()
    assert len(counts) == len(scores) == tok.vocab_size - 3
    by_id = {v[0]: v[-1] for v in tok.to_dict().values()}
    assert counts == [by_id[i] for i in range(3, tok.vocab_size)]
    total = sum(counts)
    the = tok.piece_to_id("the") - 3
    assert scores[the] == pytest.approx(math.log(counts[the]) - math.log(total), abs=1e-12)
    assert scores[tok.special_tokens["<|sep|>"] - 3] == -math.inf


def test_unknown_ids_and_pieces_raise_key_error(default):
    last = default.vocab_size - 1
    default.id_to_piece(last)
    # the message names the last valid id
    with pytest.raises(KeyError, match=f"not in the vocabulary \\(ids are 0 to {last}\\)"):
        default.decode([default.vocab_size])
    with pytest.raises(KeyError, match=f"ids are 0 to {last}\\)"):
        default.id_to_piece(default.vocab_size)
    with pytest.raises(KeyError):
        default.id_to_piece(-1)
    with pytest.raises(KeyError):
        default.piece_to_id(b"\x00" * 50)
    # str pieces are looked up by their UTF-8 bytes
    assert default.piece_to_id("a") == default.piece_to_id(b"a")


def test_a_batch_is_a_list_not_one_text(default):
    for one in ("a string", b"some bytes"):
        for method in (default.encode_batch, default.encode_batch_numpy):
            with pytest.raises(TypeError, match="a batch is a list of texts"):
                method(one)
    assert default.encode_batch(["a string"]) == [default.encode("a string")]


def test_alpha_must_be_finite(default):
    for alpha in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha"):
            default.encode("abc", alpha=alpha)


def test_original_line_splitting_only_on_newline(default):
    # The original encodes each run of non-newlines plus the newlines after it separately.
    text = "line one\r\n\r\nline two\u2028same line\n\n\nlast"
    chunks = ["line one\r\n", "\r\n", "line two\u2028same line\n\n\n", "last"]
    assert default.encode(text) == [i for c in chunks for i in default.encode(c)]


# --- batches -------------------------------------------------------------------------------


def sample_docs(n=300):
    from conftest import SHARED

    path = SHARED / "corpus" / "sample" / "en.txt"
    zh = SHARED / "corpus" / "sample" / "zh.txt"
    if not path.is_file():
        pytest.skip("shared corpus sample not found")
    docs = path.read_text().split("\n\n")[: n // 2] + zh.read_text().split("\n\n")[: n // 2]
    return docs + ["", "\n", "x" * 5000]


@pytest.mark.parametrize("threads", [None, 1, 2, 3])
def test_encode_batch_equals_one_by_one(default, threads):
    docs = sample_docs()
    expected = [default.encode(d, add_bos=True) for d in docs]
    assert default.encode_batch(docs, add_bos=True, num_threads=threads) == expected
    ids, offsets = default.encode_batch_numpy(docs, add_bos=True, num_threads=threads)
    assert ids.dtype == np.uint32 and offsets.dtype == np.int64
    assert len(offsets) == len(docs) + 1 and offsets[0] == 0 and offsets[-1] == len(ids)
    for i, e in enumerate(expected):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == e


def test_encode_batch_takes_any_iterable_and_mixed_types(default):
    docs = ["a b", b"c d", "e"]
    assert default.encode_batch(iter(docs)) == [default.encode(d) for d in docs]
    assert default.encode_batch([]) == []
    ids, offsets = default.encode_batch_numpy([])
    assert ids.shape == (0,) and offsets.tolist() == [0]
    with pytest.raises(ValueError, match="at least 1"):
        default.encode_batch(docs, num_threads=0)


def test_many_python_threads_share_one_tokenizer(default):
    docs = sample_docs(100)
    expected = default.encode_batch(docs)
    errors = []

    def work():
        try:
            for _ in range(3):
                assert [default.encode(d) for d in docs[:30]] == expected[:30]
                assert default.encode_batch(docs, num_threads=2) == expected
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_version_and_unicode_version():
    assert isinstance(bytepiece_rs.__version__, str)
    assert len(bytepiece_rs.UNICODE_VERSION) == 3


def test_the_readme_main_command_runs_on_the_bundled_model():
    import subprocess
    import sys

    text = "BytePiece 是一个字节级的 Unigram 分词器。"
    out = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode", "--text", text, "--format", "pieces"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "".join(json.loads(out.stdout)) == text
    ids = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode"],
        input="hello\nworld\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [list(map(int, line.split())) for line in ids.stdout.splitlines()] == [
        Tokenizer().encode("hello"),
        Tokenizer().encode("world"),
    ]
    bad = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode", "-m", "/no/such.model", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "no such" in bad.stderr
