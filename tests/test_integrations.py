"""transformers and datasets: ``Tokenizer.to_transformers()`` gives our ids on real text (the
documented exceptions checked for what they are), and ``dataset_tokenizer`` / ``Trainer.train``
work on ``datasets`` read from local parquet and json files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer, Trainer
from bytepiece_rs.integrations import DatasetTokenizer, dataset_tokenizer


@pytest.fixture(scope="module")
def docs():
    return ec.sample_documents(per_language=500)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def hf(tok):
    pytest.importorskip("transformers")
    return tok.to_transformers()


def _is_tie(tok, ours, theirs) -> bool:
    """``theirs`` is another segmentation of the same bytes with the same total score."""
    scores = tok._encoder.scores()
    total = lambda ids: sum(scores[i - 3] for i in ids)  # noqa: E731
    return tok.decode_bytes(theirs) == tok.decode_bytes(ours) and abs(total(ours) - total(theirs)) < 1e-9


def test_transformers_special_tokens(hf):
    from transformers import PreTrainedTokenizerFast

    assert isinstance(hf, PreTrainedTokenizerFast)
    assert (hf.pad_token, hf.bos_token, hf.eos_token) == ("<pad>", "<bos>", "<eos>")
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2)
    assert hf.unk_token is None
    assert len(hf) == Tokenizer().vocab_size


def test_transformers_gives_our_ids_on_real_text(tok, hf, docs):
    """The same ids as ours, except ties (documented), checked as ties; and exactly the ids of
    the HF tokenizers export it is built on."""
    from tokenizers import Tokenizer as HFTokenizer

    from bytepiece_rs.convert import to_hf_json

    got = hf(docs)["input_ids"]
    raw = HFTokenizer.from_str(to_hf_json(tok))
    raw.encode_special_tokens = True  # "<bos>" in the text is text, as split_special_tokens=True says
    assert got == [e.ids for e in raw.encode_batch(docs)]
    ours = tok.encode_batch(docs)
    differ = [(o, g) for o, g in zip(ours, got) if o != g]
    assert all(_is_tie(tok, o, g) for o, g in differ)
    assert len(differ) <= 0.01 * len(docs)
    assert sum(o == g for o, g in zip(ours, got)) > 0.99 * len(docs)


def test_transformers_tie_is_the_documented_exception(tok, hf):
    """An odd run of a repeated character: two segmentations of equal score, which HF breaks
    the other way (documented in docs/tools.md)."""
    text = "哈" * 7
    ours, got = tok.encode(text), hf(text)["input_ids"]
    assert got != ours and sorted(got) == sorted(ours)
    assert _is_tie(tok, ours, got)
    assert hf.decode(got) == tok.decode(ours) == text


def test_transformers_adds_no_bos_eos_by_default(tok, hf):
    text = "Hello, 世界"
    assert hf(text)["input_ids"] == tok.encode(text)
    assert hf(text, add_special_tokens=True)["input_ids"] == tok.encode(text)
    both = tok.to_transformers(add_bos=True, add_eos=True)
    assert both(text)["input_ids"] == tok.encode(text, add_bos=True, add_eos=True)
    assert both(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    eos = tok.to_transformers(add_eos=True)
    assert eos(text)["input_ids"] == tok.encode(text, add_eos=True)
    assert eos(text, "second")["input_ids"] == tok.encode(text, add_eos=True) + tok.encode("second", add_eos=True)


def test_transformers_encodes_special_token_names_as_text(tok, hf):
    text = "a <bos> b <eos><pad>"
    assert hf(text)["input_ids"] == tok.encode(text)
    assert 1 not in hf(text)["input_ids"]
    # HF's usual matching when asked
    matched = tok.to_transformers(split_special_tokens=False)
    assert matched("<bos>x")["input_ids"][0] == 1


def test_transformers_and_the_models_special_tokens():
    pytest.importorskip("transformers")
    tok = Tokenizer()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    text = "<|im_start|>user\nhi<|im_end|>"
    # by default, as ours with disallowed_special=(): the text of a special token is text
    assert tok.to_transformers()(text)["input_ids"] == tok.encode(text, disallowed_special=())
    # split_special_tokens=False: as ours with allowed_special="all"
    matched = tok.to_transformers(split_special_tokens=False)
    ids = tok.encode(text, allowed_special="all")
    assert matched(text)["input_ids"] == ids
    assert matched.decode(ids) == tok.decode(ids) == text
    assert matched.decode(ids, skip_special_tokens=True) == "user\nhi"


def test_transformers_padding_uses_id_0(tok, hf):
    texts = ["a", "Hello, 世界, and more words"]
    out = hf(texts, padding=True)
    n = len(tok.encode(texts[1]))
    assert out["input_ids"][0] == tok.encode(texts[0]) + [0] * (n - len(tok.encode(texts[0])))
    assert out["attention_mask"][0] == [1] * len(tok.encode(texts[0])) + [0] * (n - len(tok.encode(texts[0])))
    assert out["input_ids"][1] == tok.encode(texts[1])
    arrays = hf(texts, padding="max_length", max_length=40, return_tensors="np")
    assert arrays["input_ids"].shape == (2, 40) and (arrays["input_ids"][:, -1] == 0).all()


def test_transformers_decode(tok, hf, docs):
    for doc in docs[:50] + ["Hello ,  world .  x", "a\n\n\tb"]:
        ids = tok.encode(doc)
        # no clean-up of spaces before punctuation
        assert hf.decode(ids) == tok.decode(ids) == doc
    ids = tok.encode("hi", add_bos=True, add_eos=True)
    assert hf.decode(ids, skip_special_tokens=True) == tok.decode(ids) == "hi"
    assert hf.decode(ids) == "<bos>hi<eos>"


def test_transformers_decode_of_split_characters_is_the_documented_exception(tokenizer):
    """Bytes that do not form UTF-8 become U+FFFD in HF's decode; ours drops them."""
    pytest.importorskip("transformers")
    tok = tokenizer("bytepiece_80k")
    partial = [i for i in range(3, tok.vocab_size) if not ec.is_utf8(tok.id_to_piece(i))][:1]
    assert partial
    ids = tok.encode("ok") + partial
    hf = tok.to_transformers()
    assert tok.decode(ids) == "ok"
    assert hf.decode(ids).startswith("ok\ufffd")


def test_transformers_save_and_reload(hf, tok, tmp_path):
    from transformers import AutoTokenizer

    hf.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "Hello, 世界 <bos>"
    assert again(text)["input_ids"] == tok.encode(text)
    assert again.pad_token_id == 0


# --------------------------------------------------------------------------- datasets


@pytest.fixture(scope="module")
def local_files(tmp_path_factory, docs):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root = tmp_path_factory.mktemp("datasets")
    texts = docs[:300] + ["", "<script>", "a\n\nb"]
    pq.write_table(pa.table({"text": texts, "n": list(range(len(texts)))}), root / "data.parquet")
    with open(root / "data.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"content": t}, ensure_ascii=False) + "\n")
    return root, texts


def _load(kind, path, root, **kw):
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=str(root / "cache"), **kw)


def test_dataset_map_gives_our_ids(tok, local_files):
    root, texts = local_files
    ds = _load("parquet", root / "data.parquet", root)
    out = ds.map(dataset_tokenizer(tok, add_eos=True, num_threads=2), batched=True, batch_size=64)
    assert out.column_names == ["text", "n", "input_ids"]
    assert out.features["input_ids"].feature.dtype == "uint32"
    assert out["input_ids"][:] == tok.encode_batch(texts, add_eos=True)
    # removing the text column, another output name, json input
    js = _load("json", root / "data.jsonl", root)
    fn = dataset_tokenizer(tok, column="content", output_column="ids", add_bos=True)
    out = js.map(fn, batched=True, remove_columns=["content"])
    assert out.column_names == ["ids"]
    assert out["ids"][:] == tok.encode_batch(texts, add_bos=True)


@pytest.fixture(scope="module")
def repo_texts():
    """Real text in any clone: the lines of the README and of the package's sources, empty ones
    included, and runs of rows of one length (a batch of them must not become a 2-D array)."""
    root = Path(__file__).resolve().parent.parent
    paths = [root / "README.md", *sorted((root / "python" / "bytepiece_rs").glob("*.py"))]
    lines = [line for path in paths for line in path.read_text(encoding="utf-8").split("\n")]
    return lines + ["ab"] * 8 + [""] * 8


def test_dataset_tokenizer_column_equals_encode_batch(tok, repo_texts):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": repo_texts})
    for batch_size in (1, 7, 1000):
        out = ds.map(dataset_tokenizer(tok, add_eos=True), batched=True, batch_size=batch_size, keep_in_memory=True)
        assert out.features["input_ids"].feature.dtype == "uint32"
        assert out["input_ids"][:] == tok.encode_batch(repo_texts, add_eos=True), batch_size


def test_dataset_tokenizer_hands_datasets_one_array_of_views(tok):
    """A batch's ids go to ``datasets`` as one object array of views of the flat ids, the
    output it turns into an Arrow column cheaply (no Python object per token)."""
    for texts in (["Hello, 世界", "", "def f(x):\n    return x"], ["ab", "ab"], []):
        column = dataset_tokenizer(tok)({"text": texts})["input_ids"]
        assert isinstance(column, np.ndarray) and column.dtype == object and column.shape == (len(texts),)
        assert [row.tolist() for row in column] == tok.encode_batch(texts)
        assert len({id(row.base) for row in column}) <= 1, "views of one array"


def test_dataset_map_is_cached_and_picklable(tok, local_files):
    root, texts = local_files
    ds = _load("parquet", root / "data.parquet", root)
    fn = dataset_tokenizer(tok)
    copy = pickle.loads(pickle.dumps(fn))
    assert isinstance(copy, DatasetTokenizer)
    assert copy({"text": texts[:5]})["input_ids"][0].tolist() == tok.encode(texts[0])
    a = ds.map(fn, batched=True)
    b = ds.map(dataset_tokenizer(tok), batched=True)  # the same function: datasets' cache is reused
    assert a.cache_files and a.cache_files == b.cache_files
    c = ds.map(dataset_tokenizer(tok, add_eos=True), batched=True)
    assert c.cache_files != a.cache_files


def test_dataset_map_with_processes(tok, local_files):
    root, texts = local_files
    ds = _load("parquet", root / "data.parquet", root)
    out = ds.map(dataset_tokenizer(tok, num_threads=1), batched=True, num_proc=2)
    assert out["input_ids"][:] == tok.encode_batch(texts)


def test_streaming_dataset_map(tok, local_files):
    root, texts = local_files
    ids = _load("parquet", root / "data.parquet", root, streaming=True)
    rows = list(ids.map(dataset_tokenizer(tok), batched=True))
    assert [np.asarray(r["input_ids"]).tolist() for r in rows] == tok.encode_batch(texts)


def test_dataset_tokenizer_bad_input(tok):
    with pytest.raises(KeyError, match="no column 'text'"):
        dataset_tokenizer(tok)({"content": ["a"]})
    with pytest.raises(ValueError, match="num_threads"):
        dataset_tokenizer(tok, num_threads=0)
    with pytest.raises(TypeError, match="expected str or bytes"):
        dataset_tokenizer(tok)({"text": [1]})


def test_trainer_trains_on_dataset_columns(local_files, tmp_path):
    root, texts = local_files
    params = dict(order=4, max_vocab_size=500, min_count=2)
    expected = Trainer(**params)
    expected.train(texts)
    for kind, path, column, streaming in [
        ("parquet", root / "data.parquet", "text", False),
        ("parquet", root / "data.parquet", "text", True),
        ("json", root / "data.jsonl", "content", False),
        ("json", root / "data.jsonl", "content", True),
    ]:
        ds = _load(kind, path, root, streaming=streaming)
        trainer = Trainer(**params)
        trainer.train(ds[column], workers=2)
        assert trainer.pieces == expected.pieces, (kind, streaming)
