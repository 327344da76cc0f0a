"""The Trainer as a user calls it: inputs of every kind, determinism, saving, errors, Ctrl-C.
Byte-for-byte equality with the original is in test_train_parity.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from bytepiece_rs import Tokenizer, Trainer, convert_to_bytepiece
from conftest import SHARED


@pytest.fixture(scope="module")
def docs() -> list[str]:
    sample = SHARED / "corpus" / "sample"
    if not sample.is_dir():
        pytest.skip("shared corpus sample not found")
    out = []
    for name in ("zh.txt", "en.txt", "code.txt"):
        out += [d for d in (sample / name).read_text()[:150_000].split("\n\n") if d]
    return out


def train(texts, workers=1, batch_size=1000, **params) -> str:
    params = {"order": 4, "max_vocab_size": 2000, "min_count": 2, "progress": False, **params}
    t = Trainer(**params)
    t.train(texts, workers=workers, batch_size=batch_size)
    return t


def model_json(trainer: Trainer, i: int = 0) -> str:
    return trainer._core.to_json(i)


def test_any_iterable_read_once_gives_the_same_model(docs):
    reference = model_json(train(docs))
    assert model_json(train(iter(docs))) == reference
    assert model_json(train(d for d in docs)) == reference
    assert model_json(train(tuple(docs))) == reference


def test_datasets_column_and_iterable_dataset(docs, tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    reference = model_json(train(docs))
    assert model_json(train(ds["text"])) == reference
    streamed = ds.to_iterable_dataset()
    assert model_json(train(row["text"] for row in streamed)) == reference


@pytest.mark.parametrize("workers, batch_size", [(2, 1000), (3, 7), (1, 1), (2, 100_000)])
def test_same_model_for_any_workers_and_batch_size(docs, workers, batch_size):
    assert model_json(train(docs, workers, batch_size)) == model_json(train(docs))


def test_a_small_count_memory_spills_to_disk_and_changes_nothing(docs):
    assert model_json(train(docs, count_memory_mb=1)) == model_json(train(docs))
    leftovers = [f for f in os.listdir(tempfile.gettempdir()) if f.startswith(f"bytepiece-{os.getpid()}-")]
    assert not leftovers


def test_trained_model_tokenizes_and_saves_in_the_original_format(docs, tmp_path):
    t = train(docs)
    path = tmp_path / "m.model"
    t.save(path)
    model = json.loads(path.read_text())
    assert len(model) <= 2000 - 3 and len(model) > 256
    ids = sorted(v[0] for v in model.values())
    assert ids == list(range(3, 3 + len(model)))
    tok = Tokenizer(path)
    assert tok.decode(tok.encode(docs[0])) == docs[0]
    pieces = t.pieces[0]
    assert len(pieces) == len(model) and all(isinstance(k, bytes) for k in pieces)


def test_a_list_of_sizes_saves_one_model_per_size(docs, tmp_path):
    t = train(docs, max_vocab_size=[600, 1500, 1000])
    assert t.max_vocab_size == [1500, 1000, 600]
    t.save(tmp_path / "m.model")
    sizes = {p.name: len(json.loads(p.read_text())) for p in tmp_path.iterdir()}
    assert set(sizes) == {"m.model.1500", "m.model.1000", "m.model.600"}
    assert sizes["m.model.1500"] >= sizes["m.model.1000"] >= sizes["m.model.600"]
    assert sizes["m.model.600"] <= 597


@pytest.mark.parametrize("text_unit", ["line", "file"])
def test_train_from_files_equals_training_on_the_file_texts(tmp_path, docs, text_unit):
    paths = []
    for i in range(3):
        p = tmp_path / f"part{i}.txt"
        p.write_text("\n\n".join(docs[i::3]))
        paths.append(p)
    t = Trainer(order=4, max_vocab_size=2000, min_count=2, progress=False)
    t.train_from_files(paths, workers=2, text_unit=text_unit)
    wholes = [p.read_bytes().decode() for p in paths]
    texts = [line for w in wholes for line in w.split("\n")] if text_unit == "line" else wholes
    assert model_json(t) == model_json(train(texts))


def test_bad_parameters_and_inputs(tmp_path):
    for params in (
        {"order": 0},
        {"order": 9},
        {"max_vocab_size": 100},
        {"max_vocab_size": []},
        {"max_piece_length": 0},
    ):
        with pytest.raises(ValueError):
            Trainer(**params)
    with pytest.raises(TypeError, match="must be str"):
        Trainer(progress=False).train(["fine", b"bytes"])
    with pytest.raises(ValueError, match="workers"):
        Trainer(progress=False).train(["x"], workers=0)
    with pytest.raises(RuntimeError, match="not been trained"):
        Trainer().save(tmp_path / "m.model")
    with pytest.raises(FileNotFoundError):
        Trainer(progress=False).train_from_files([tmp_path / "missing.txt"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe")
    with pytest.raises(ValueError, match="bad.txt: not valid UTF-8 at byte 5"):
        Trainer(progress=False).train_from_files([bad])


def test_empty_corpus_gives_the_byte_vocabulary(tmp_path):
    t = train([])
    assert len(t.pieces[0]) == 256


def test_convert_to_bytepiece(tmp_path):
    path = tmp_path / "c.model"
    convert_to_bytepiece({"hello": 10, b"wor": 5, "world": 3, "中文": 7}, path)
    tok = Tokenizer(path)
    assert tok.tokenize("hello 中文") == [b"hello", b" ", "中文".encode()]
    assert tok.vocab_size == 3 + 256 + 4


def test_ctrl_c_stops_training_within_a_second(tmp_path):
    script = (
        "import sys, time\n"
        "from bytepiece_rs import Trainer\n"
        "texts = ['the quick brown fox %d jumps over the lazy dog %d\\n' % (i, i * 7) for i in range(2_000_000)]\n"
        "t = Trainer(order=6, max_vocab_size=5000, progress=False)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    t.train(texts, workers=2)\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    # Ctrl-C's default disposition in the child, even if this test runs with it ignored
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    assert out.strip() == "interrupted"
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    leftovers = [f for f in os.listdir("/tmp") if f.startswith(f"bytepiece-spill-{proc.pid}-")]
    assert not leftovers
