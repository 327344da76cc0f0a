"""The ``bytepiece`` command, run as a user runs it: a subprocess, on real text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer, Trainer
from bytepiece_rs.formats import read_megatron


def run(*args, stdin=None, cwd=None):
    """Runs ``python -m bytepiece_rs ARGS``; returns the CompletedProcess (bytes)."""
    return subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", *map(str, args)], input=stdin, capture_output=True, cwd=cwd, timeout=600
    )


def ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, r.stderr.decode()
    return r


def fails(*args, **kw):
    """Runs a command that must fail: status 2 and one line on stderr; returns that line."""
    r = run(*args, **kw)
    assert r.returncode == 2, (r.returncode, r.stderr.decode())
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("bytepiece: error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def sample(shared_dir, tmp_path_factory):
    """A text file of real lines (zh, en, code samples) and its lines."""
    lines = []
    for lang in ("zh", "en", "code"):
        lines += ec.read_sample(lang, shared_dir).split("\n")[:700]
    path = tmp_path_factory.mktemp("cli") / "sample.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


@pytest.fixture(scope="module")
def default():
    return Tokenizer()


def test_version():
    import bytepiece_rs

    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == f"bytepiece-rs {bytepiece_rs.__version__}"


def test_skip_empty_drops_empty_documents(default, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("first\n\n  \nsecond\n\n", encoding="utf-8")
    every = ok("encode", src, "--add-eos").stdout.decode().splitlines()
    assert every[1] == "2" and len(every) == 5, every  # each empty line is a document: [<eos>]
    kept = ok("encode", src, "--add-eos", "--skip-empty").stdout.decode().splitlines()
    # a line of spaces is text; only the empty lines go
    assert kept == [every[0], every[2], every[3]]
    records = tmp_path / "in.jsonl"
    records.write_text('{"text": "a"}\n{"text": ""}\n{"text": "b"}\n', encoding="utf-8")
    assert len(ok("encode", records, "--skip-empty").stdout.decode().splitlines()) == 2


def test_an_empty_input_is_said_and_writes_no_dataset(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for fmt, files in (("bin", ["out.bin", "out.idx"]), ("npy", ["out.npy", "out.offsets.npy"])):
        line = fails("encode", empty, "--format", fmt, "-o", tmp_path / f"out.{fmt}")
        assert f"{empty}: no documents to encode; no {fmt} written" in line, line
        assert not any((tmp_path / f).exists() for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"], "no temporary file is left"
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n\n")
    assert "(all empty)" in fails("encode", blank, "--skip-empty", "--format", "bin", "-o", tmp_path / "b.bin")
    # text formats write nothing, and say so
    r = ok("encode", empty)
    assert r.stdout == b"" and b"no documents to encode" in r.stderr


def test_decode_reads_every_format_encode_writes(sample, tmp_path):
    src = tmp_path / "in.txt"
    lines = sample[1][:200] + sample[1][-200:] + ["", "日本語 and émigré"]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs = {
        "ids": tmp_path / "ids.txt",
        "jsonl": tmp_path / "ids.jsonl",
        "npy": tmp_path / "ids.npy",
        "bin": tmp_path / "corpus.bin",
    }
    for fmt, path in outputs.items():
        ok("encode", src, "--format", fmt, "-o", path, "--add-eos")
        decoded = ok("decode", path).stdout.decode("utf-8").split("\n")[:-1]
        assert decoded == lines, fmt
    # the index names the same dataset; --format overrides the extension; stdin takes jsonl too
    assert ok("decode", tmp_path / "corpus.idx").stdout == ok("decode", outputs["ids"]).stdout
    jsonl_copy = tmp_path / "records.txt"
    jsonl_copy.write_bytes(outputs["jsonl"].read_bytes())
    assert ok("decode", jsonl_copy, "--format", "jsonl").stdout == ok("decode", outputs["ids"]).stdout
    assert ok("decode", stdin=outputs["jsonl"].read_bytes()).stdout == ok("decode", outputs["ids"]).stdout
    # and says what is wrong with what it cannot read
    assert "no such file" in fails("decode", tmp_path / "missing.bin")
    assert "the offsets of an npy output" in fails("decode", tmp_path / "ids.offsets.npy")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ids": [1, 2]}\n{"text": "x"}\n', encoding="utf-8")
    assert f"{bad}:2: not a record" in fails("decode", bad)
    assert "reads files, not standard input" in fails("decode", "--format", "npy")


def fifo_with(tmp_path, name, data):
    """A named pipe that a thread fills with ``data`` once a reader opens it."""
    import threading

    path = tmp_path / name
    os.mkfifo(path)

    def fill():
        with open(path, "wb") as f:
            f.write(data)

    threading.Thread(target=fill, daemon=True).start()
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_pipes_are_inputs_as_files_are(sample, tmp_path):
    path, _ = sample
    data = path.read_bytes()
    # train reads its inputs twice: a pipe gives the model its file gives
    ok("train", path, "-o", tmp_path / "file.model", "--vocab-size", "2000", "-q")
    spool = tmp_path / "spool"
    spool.mkdir()
    ok(
        "train",
        fifo_with(tmp_path, "train.txt", data),
        "-o",
        tmp_path / "pipe.model",
        "--vocab-size",
        "2000",
        "-q",
        "--temp-dir",
        spool,
    )
    assert (tmp_path / "pipe.model").read_bytes() == (tmp_path / "file.model").read_bytes()
    assert list(spool.iterdir()) == [], "the copy is removed"
    assert ok("encode", fifo_with(tmp_path, "enc.txt", data)).stdout == ok("encode", path).stdout


def test_a_directory_is_said_the_same_way_for_models_and_inputs(tmp_path):
    assert fails("encode", "-m", tmp_path, "--text", "x").endswith(f"{tmp_path}: is a directory, not a model file")
    assert fails("encode", tmp_path).endswith(f"{tmp_path}: is a directory, not a file")


def test_outputs_are_checked_before_any_work(sample, tmp_path):
    import time

    path, _ = sample
    big = tmp_path / "big.txt"
    big.write_bytes(path.read_bytes() * 40)  # minutes of training, were it started
    nowhere = tmp_path / "nodir" / "m.model"
    commands = {
        "train": ["train", big, "--vocab-size", "8000", "-o"],
        "encode": ["encode", big, "--format", "bin", "-o"],
        "decode": ["decode", tmp_path / "missing-is-checked-later.txt", "-o"],
        "convert": ["convert", "--to", "hf", "-o"],
        "show": ["show", "--text", "x", "-o"],
    }
    for name, args in commands.items():
        t = time.monotonic()
        line = fails(*args, nowhere)
        assert line.endswith(f"{nowhere}: no such directory {nowhere.parent}"), (name, line)
        assert time.monotonic() - t < 5, name
        line = fails(*args, tmp_path)
        assert line.endswith(f"{tmp_path}: is a directory, not a file to write"), (name, line)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "is not writable" in fails("train", big, "--vocab-size", "8000", "-o", locked / "m.model")
    assert not nowhere.parent.exists()


def test_encode_ids_pieces_and_jsonl_equal_the_api(sample, default, tmp_path):
    path, lines = sample
    expected = [default.encode(line) for line in lines]
    ok("encode", path, "-o", tmp_path / "out.ids", "-q")
    got = [[int(x) for x in line.split()] for line in (tmp_path / "out.ids").read_text().splitlines()]
    assert got == expected
    ok("encode", path, "-o", tmp_path / "out.jsonl", "--format", "jsonl", "--add-bos", "--add-eos")
    got = [json.loads(line)["ids"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert got == [[1] + e + [2] for e in expected]
    out = ok("encode", path, "--format", "pieces").stdout.decode()
    pieces = [json.loads(line) for line in out.splitlines()]
    assert len(pieces) == len(lines)
    for ps, line in zip(pieces[:200], lines):
        assert [p.encode("utf-8", "surrogateescape") for p in ps] == [
            p.decode("utf-8", "backslashreplace").encode("utf-8", "surrogateescape") for p in default.tokenize(line)
        ]


def test_encode_bin_is_a_megatron_indexed_dataset(sample, default, tmp_path):
    path, lines = sample
    ok("encode", path, "-o", tmp_path / "corpus.bin", "--format", "bin", "--add-eos")
    ids, offsets = read_megatron(str(tmp_path / "corpus"))
    assert ids.dtype == np.uint16  # the default model fits
    assert len(offsets) == len(lines) + 1
    for i in (0, 1, len(lines) // 2, len(lines) - 1):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == default.encode(lines[i], add_eos=True)
    # the index as Megatron-LM reads it: magic, version 1, dtype code 8 (uint16), then sizes,
    # pointers (byte offsets) and the document index
    raw = (tmp_path / "corpus.idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00" and raw[9:17] == (1).to_bytes(8, "little") and raw[17] == 8
    n = int.from_bytes(raw[18:26], "little")
    sizes = np.frombuffer(raw, "<i4", n, 34)
    pointers = np.frombuffer(raw, "<i8", n, 34 + 4 * n)
    doc_idx = np.frombuffer(raw, "<i8", n + 1, 34 + 12 * n)
    assert (np.diff(offsets) == sizes).all() and (pointers == offsets[:-1] * 2).all()
    assert (doc_idx == np.arange(n + 1)).all()


def test_bin_and_npy_indexes_agree_with_the_ids(sample, default, tmp_path):
    """Megatron's index (its offsets computed by the core from the lengths read back in chunks,
    tested across chunks there) and the npy offsets hold each document's ids."""
    from bytepiece_rs import cli

    path, lines = sample
    assert cli.main(["encode", str(path), "-q", "-o", str(tmp_path / "c.bin"), "--format", "bin"]) == 0
    assert cli.main(["encode", str(path), "-q", "-o", str(tmp_path / "c.npy"), "--format", "npy"]) == 0
    ids, offsets = read_megatron(str(tmp_path / "c"))
    expected = default.encode_batch(lines)
    assert np.diff(offsets).tolist() == [len(x) for x in expected]
    assert ids.tolist() == [i for x in expected for i in x]
    raw = (tmp_path / "c.idx").read_bytes()
    n = len(lines)
    assert len(raw) == 34 + 4 * n + 8 * n + 8 * (n + 1)
    pointers = np.frombuffer(raw, "<i8", n, 34 + 4 * n)
    assert (pointers == offsets[:-1] * 2).all()
    assert (np.frombuffer(raw, "<i8", n + 1, 34 + 12 * n) == np.arange(n + 1)).all()
    assert (np.load(tmp_path / "c.npy") == ids).all()
    assert (np.load(tmp_path / "c.offsets.npy") == offsets).all()


def test_encode_npy_and_uint16_refusal(sample, model_path, tmp_path):
    path, lines = sample
    big = model_path("bytepiece.plus.80k")
    out = tmp_path / "ids.npy"
    line = fails("encode", path, "-m", big, "-o", out, "--format", "npy", "--dtype", "uint16")
    assert "uint16" in line and f"{Tokenizer(big).vocab_size:,}" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []
    ok("encode", path, "-m", big, "-o", out, "--format", "npy")
    ids = np.load(out)
    offsets = np.load(tmp_path / "ids.offsets.npy")
    assert ids.dtype == np.uint32 and len(offsets) == len(lines) + 1
    tok = Tokenizer(big)
    assert ids[offsets[5] : offsets[6]].tolist() == tok.encode(lines[5])
    assert len(ids) == sum(len(x) for x in tok.encode_batch(lines))


def test_encode_stdin_text_and_jsonl_with_a_field(default, tmp_path):
    texts = ["Hello, 世界", "second\tline", "", "e\u0301"]  # NFC composes the last
    r = ok("encode", "-", stdin="\n".join(texts).encode() + b"\n")
    assert [list(map(int, x.split())) for x in r.stdout.decode().split("\n")[:-1]] == [default.encode(t) for t in texts]
    r = ok("encode", "--text", texts[0], "--text", texts[1])
    assert r.stdout.decode().splitlines() == [" ".join(map(str, default.encode(t))) for t in texts[:2]]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"body": t, "id": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    r = ok("encode", src, "--field", "body", "--format", "jsonl")
    assert [json.loads(x)["ids"] for x in r.stdout.decode().splitlines()] == [default.encode(t) for t in texts]


def test_encode_sampling_is_reproducible_with_a_seed(sample):
    path, _ = sample
    a = ok("encode", path, "--alpha", "0.1", "--seed", "7").stdout
    b = ok("encode", path, "--alpha", "0.1", "--seed", "7").stdout
    c = ok("encode", path, "--alpha", "0.1", "--seed", "8").stdout
    best = ok("encode", path).stdout
    assert a == b and a != c and a != best


def test_decode_round_trips(sample, tmp_path):
    path, lines = sample
    ok("encode", path, "-o", tmp_path / "ids.txt")
    ok("decode", tmp_path / "ids.txt", "-o", tmp_path / "back.txt")
    back = (tmp_path / "back.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert back == [unicodedata.normalize("NFC", line) for line in lines]
    assert "line 2" in fails("decode", "-", stdin=b"5 6 7\n5 x\n").replace(":2:", " line 2")


def test_stats_and_info(sample, default):
    path, lines = sample
    stats = json.loads(ok("stats", path, "--json").stdout)
    all_ids = default.encode_batch(lines)
    assert stats["documents"] == len(lines)
    assert stats["tokens"] == sum(map(len, all_ids))
    assert stats["bytes"] == sum(len(x.encode()) for x in lines)
    assert stats["bytes_per_token"] == pytest.approx(stats["bytes"] / stats["tokens"])
    assert stats["ids_used"] == len({i for ids in all_ids for i in ids})
    info = json.loads(ok("info", "--json").stdout)
    assert info["vocab_size"] == default.vocab_size and info["pieces"] == default.vocab_size - 3
    assert "vocab_size" in ok("info").stdout.decode()


def test_convert_commands(model_path, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    hf = pytest.importorskip("tokenizers")
    m = model_path("bytepiece.plus.80k")
    r = ok("convert", "-m", m, "--to", "sentencepiece", "-o", tmp_path / "m.model")
    assert "UNUSED" in r.stderr.decode()
    tok = Tokenizer(m)
    text = "Tokenizers 很有用. Tokenizers are useful."
    assert spm.SentencePieceProcessor(model_file=str(tmp_path / "m.model")).encode(text) == tok.encode(text)
    ok("convert", "-m", m, "--to", "hf", "-o", tmp_path / "tokenizer.json")
    assert hf.Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(text).ids == tok.encode(text)


def test_convert_to_transformers_writes_a_folder_autotokenizer_loads(default, tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "tok"
    ok("convert", "--to", "transformers", "-o", folder)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    assert (hf.pad_token, hf.bos_token, hf.eos_token) == ("<pad>", "<bos>", "<eos>")
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2)
    assert hf.split_special_tokens
    texts = ["Hello, 世界!", "a <bos> b<eos><pad>", "def f(x):\n\treturn x  # ok\n", ""]
    assert hf(texts)["input_ids"] == default.encode_batch(texts)
    batch = hf(texts[:2], padding=True)
    short, long = default.encode(texts[0]), default.encode(texts[1])
    assert len(short) < len(long)
    assert batch["input_ids"][0] == short + [0] * (len(long) - len(short))
    assert batch["attention_mask"][0] == [1] * len(short) + [0] * (len(long) - len(short))
    ids = default.encode("hi", add_bos=True, add_eos=True)
    assert hf.decode(ids, skip_special_tokens=True) == "hi"


def test_convert_to_transformers_writes_into_an_existing_folder(default, tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    tok = Tokenizer()
    tok.add_special_tokens(["<|im_end|>"])
    tok.save(tmp_path / "special.model")
    ok("convert", "--to", "transformers", "-o", folder)
    ok("convert", "-m", tmp_path / "special.model", "--to", "transformers", "-o", folder)  # replaces ours
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "tokenizer.json", "tokenizer_config.json"]
    assert (folder / "config.json").read_text() == "{}"
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    assert len(hf) == default.vocab_size + 1 and hf.convert_tokens_to_ids("<|im_end|>") == default.vocab_size


def test_convert_to_transformers_checks_its_folder_first(tmp_path):
    pytest.importorskip("transformers")
    nowhere = tmp_path / "nodir" / "tok"
    assert fails("convert", "--to", "transformers", "-o", nowhere).endswith(
        f"{nowhere}: no such directory {nowhere.parent}"
    )
    afile = tmp_path / "tokenizer.json"
    afile.write_text("x")
    assert fails("convert", "--to", "transformers", "-o", afile).endswith(f"{afile}: is not a directory")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert fails("convert", "--to", "transformers", "-o", locked).endswith(f"{locked}: directory is not writable")
        assert "is not writable" in fails("convert", "--to", "transformers", "-o", locked / "tok")
    assert not nowhere.parent.exists() and afile.read_text() == "x"


def test_convert_to_transformers_without_transformers(tmp_path, monkeypatch, capsys):
    from bytepiece_rs.cli import main

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    assert main(["convert", "--to", "transformers", "-o", str(tmp_path / "tok")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bytepiece: error: --to transformers needs the transformers package (pip install 'bytepiece-rs[hf]')"
    ]
    assert not (tmp_path / "tok").exists()


def test_convert_to_transformers_leaves_no_folder_when_it_fails(tmp_path, monkeypatch):
    """A folder the command made is removed again if writing fails; no temporary file stays."""
    pytest.importorskip("transformers")
    from bytepiece_rs import cli
    from bytepiece_rs._files import AtomicOutput

    real_open = AtomicOutput.open

    def failing(out, target):
        if target.endswith("tokenizer.json"):
            raise OSError(f"{target}: cannot write (simulated)")
        return real_open(out, target)

    monkeypatch.setattr(AtomicOutput, "open", failing)
    assert cli.main(["convert", "--to", "transformers", "-o", str(tmp_path / "tok")]) == 2
    assert list(tmp_path.iterdir()) == []


def test_train_from_files_jsonl_stdin_and_dataset(shared_dir, tmp_path):
    text = ec.read_sample("en", shared_dir)[:300_000]
    # lines with their runs of newlines: where training cuts a text into chunks anyway
    lines = re.findall(r"[^\n]*\n+|[^\n]+", text)
    assert "".join(lines) == text
    src = tmp_path / "train.txt"
    src.write_text(text, encoding="utf-8")
    # the whole file one text (each line one text: test_train_units.py)
    args = ["--vocab-size", "600", "--order", "4", "-q", "--text-unit", "file"]
    ok("train", src, "-o", tmp_path / "a.model", *args)
    api = Trainer(order=4, max_vocab_size=600, progress=False)
    api.train_from_files([src], text_unit="file")
    api.save(tmp_path / "api.model")
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "api.model").read_bytes()
    # the same text as jsonl records, on stdin, and as a parquet dataset: the same model
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines), encoding="utf-8")
    ok("train", jsonl, "-o", tmp_path / "b.model", *args)
    ok("train", "-", "-o", tmp_path / "c.model", *args, stdin=text.encode())
    assert (tmp_path / "b.model").read_bytes() == (tmp_path / "api.model").read_bytes()
    assert (tmp_path / "c.model").read_bytes() == (tmp_path / "api.model").read_bytes()
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"content": lines}).to_parquet(str(tmp_path / "d.parquet"))
    ok("train", "--dataset", tmp_path / "d.parquet", "--column", "content", "-o", tmp_path / "d.model", *args)
    assert (tmp_path / "d.model").read_bytes() == (tmp_path / "api.model").read_bytes()
    # a list of sizes writes one model per size
    ok("train", src, "-o", tmp_path / "s.model", "--vocab-size", "400,600", "--order", "4", "-q", "--text-unit", "file")
    assert (tmp_path / "s.model.600").read_bytes() == (tmp_path / "api.model").read_bytes()
    assert Tokenizer(tmp_path / "s.model.400").vocab_size <= 400


def test_a_dataset_that_cannot_be_read_is_one_line_naming_the_option(tmp_path):
    """``--dataset`` (``integrations.dataset_texts``): a missing file, files of two kinds, a row
    without the string column."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"content": ["a b c"] * 50, "n": [1] * 50}).to_parquet(str(tmp_path / "d.parquet"))
    (tmp_path / "e.txt").write_text("x\n", encoding="utf-8")
    out = ["-o", tmp_path / "m.model", "--vocab-size", "300", "-q"]
    missing = tmp_path / "none.parquet"
    assert fails("train", "--dataset", missing, *out).endswith(f"--dataset: {missing}: no such file")
    mixed = fails("train", "--dataset", tmp_path / "d.parquet", tmp_path / "e.txt", *out)
    assert mixed.endswith("--dataset: give files of one kind: .arrow, .csv, .json, .jsonl, .parquet, .txt")
    column = fails("train", "--dataset", tmp_path / "d.parquet", "--column", "n", *out)
    assert column.endswith("--dataset: row 0 has no string column 'n'")
    assert not (tmp_path / "m.model").exists()


def test_bad_input_gives_one_line_and_status_2(sample, tmp_path):
    path, _ = sample
    assert "no such file" in fails("encode", tmp_path / "missing.txt")
    bad_model = tmp_path / "bad.model"
    bad_model.write_text("{not json")
    assert "bad.model" in fails("encode", "-m", bad_model, path)
    assert "--format" in fails("encode", path, "--format", "xml")
    fails("encode", path, "--threads", "0")
    fails("train", path, "-o", tmp_path / "x.model", "--vocab-size", "ten")
    assert "no such directory" in fails("encode", path, "-o", tmp_path / "no" / "dir" / "out.ids")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": "cut\n{"text": "after"}\n', encoding="utf-8")
    out = tmp_path / "out.ids"
    line = fails("encode", broken, "-o", out)
    assert "broken.jsonl:2" in line and "JSON" in line
    assert not out.exists()
    assert "broken.jsonl:2" in fails("train", broken, "-o", tmp_path / "m.model", "--vocab-size", "300")
    assert not (tmp_path / "m.model").exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_output(sample, tmp_path):
    path, _ = sample
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "cannot write" in fails("encode", path, "-o", ro / "out.ids")
    finally:
        ro.chmod(0o700)


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("bytepiece")
    assert exe, "the bytepiece console script is not on PATH"
    r = subprocess.run([exe, "encode", "--text", "hello"], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == [str(i).encode() for i in Tokenizer().encode("hello")]


def test_format_ids_formats_documents_and_checks_offsets():
    format_ids = Tokenizer()._encoder.format_ids
    ids = np.array([0, 7, 4294967295, 10, 123456], dtype=np.uint32)
    data, lengths = format_ids(ids, np.array([0, 2, 2, 5]), "ids")
    assert data == b"0 7\n\n4294967295 10 123456\n" and lengths.tolist() == [2, 0, 3]
    assert format_ids(ids, np.array([1, 3]), "jsonl")[0] == b'{"ids": [7, 4294967295]}\n'
    assert format_ids(ids, np.array([1, 2]), "uint32")[0] == b"\x07\0\0\0"
    assert format_ids(ids, np.array([0]), "ids")[0] == b""
    for bad in ([0, 6], [3, 2], [-1, 2]):
        with pytest.raises(ValueError):
            format_ids(ids, np.array(bad), "ids")
    with pytest.raises(ValueError):
        format_ids(ids[::2], np.array([0, 1]), "ids")  # not contiguous
    with pytest.raises(ValueError, match="unknown id format"):
        format_ids(ids, np.array([0, 1]), "int8")


@pytest.mark.parametrize("argv, code", [(["encode", "--text", "hello world"], 0), (["encode", "no/such/file"], 2)])
def test_the_command_exits_with_its_status_after_exit_handlers_and_flushed_output(tmp_path, argv, code):
    """The command skips the interpreter's teardown, not what a caller expects of an exit: its
    status, the exit handlers, and what is buffered on stdout and stderr."""
    marker = tmp_path / "handler-ran"
    script = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').close())\n"
        "sys.stdout.write('buffered:')\n"
        "sys.stderr.write('buffered:')\n"
        f"sys.argv = ['bytepiece', *{argv!r}]\n"
        "from bytepiece_rs.__main__ import main\n"
        "main()\n"
        "print('never reached')\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == code and marker.exists()
    assert r.stdout.startswith("buffered:") and r.stderr.startswith("buffered:")
    if code == 0:
        assert r.stdout == "buffered:" + " ".join(map(str, Tokenizer().encode("hello world"))) + "\n"
    else:
        assert "no/such/file" in r.stderr and "never reached" not in r.stdout


@pytest.mark.parametrize("preset", [None, "3"])
def test_the_command_loads_numpy_without_blas_threads_unless_the_user_asked(preset):
    """Importing the package does not import NumPy; the command then tells OpenBLAS to start no
    threads of its own (they would spin on the cores that encode), keeping a value the user set."""
    script = (
        "import atexit, os, sys\n"
        "import bytepiece_rs\n"
        "assert 'numpy' not in sys.modules, 'the package imported NumPy'\n"
        "atexit.register(lambda: print('blas', os.environ.get('OPENBLAS_NUM_THREADS'), file=sys.stderr))\n"
        "sys.argv = ['bytepiece', 'encode', '--text', 'hello world']\n"
        "from bytepiece_rs.__main__ import main\n"
        "assert 'numpy' not in sys.modules, 'the entry point imported NumPy'\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == " ".join(map(str, Tokenizer().encode("hello world"))) + "\n"
    assert r.stderr.splitlines()[-1] == f"blas {preset or 1}"


def test_the_package_gives_its_classes_when_first_asked():
    import bytepiece_rs

    assert bytepiece_rs.Tokenizer is Tokenizer
    assert {"Tokenizer", "Trainer", "DEFAULT_MODEL", "convert_to_bytepiece"} <= set(dir(bytepiece_rs))
    with pytest.raises(AttributeError, match="no attribute 'Tokeniser'"):
        bytepiece_rs.Tokeniser  # noqa: B018
