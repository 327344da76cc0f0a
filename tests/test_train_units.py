"""What a text of a text file is when training: each line without its newline (the default of
``bytepiece train``, ``Trainer.train_from_files`` and ``train_distributed``), or each whole file
with its newlines (``--text-unit file``, ``text_unit="file"``). Each way equals ``Trainer.train``
on the corresponding texts, byte for byte, from files, from stdin and mixed with .jsonl inputs.

The texts are generated here (no shared folder needed); the corpus samples are used too when
``../shared/corpus/sample`` is there."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import pytest

from bytepiece_rs import Trainer
from bytepiece_rs.cli import main
from bytepiece_rs.formats import read_documents
from conftest import SHARED

PARAMS = dict(order=4, max_vocab_size=1500, min_count=2)
CLI_PARAMS = ["--order", "4", "--vocab-size", "1500", "--min-count", "2", "--threads", "2", "-q"]
WORDS = [
    "the",
    "model",
    "learns",
    "pieces",
    "of",
    "bytes",
    "from",
    "text",
    "字节",
    "分词器",
    "中文文本",
    "café",
    "cafe\u0301",
    "naïve",
    "🙂",
    "x = f(y)",
    "return",
    "{",
    "}",
    "。",
    "，",
    ".",
]


def generated_text(seed: int, final_newline: bool) -> str:
    """Lines of words ended by ``\\n`` or ``\\r\\n``, blank lines and a run of 150 newlines, a
    25,000-character line (training cuts lines at 10,000 characters), non-ASCII text (CJK, an
    emoji, a combining accent that NFC composes), and a last line with or without a newline."""
    rng = random.Random(seed)
    lines = []
    for i in range(6000):
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
        lines.append(line + ("\r\n" if i % 7 == 0 else "\n") + ("\n" if i % 11 == 0 else ""))
        if i == 3000:
            lines.append(" ".join(rng.choice(WORDS) for _ in range(8000))[:25_000] + "\n" * 150)
    lines.append("the last line, 中文" + ("\n" if final_newline else ""))
    return "".join(lines)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> List[Path]:
    """Two text files: one ending without a newline, one with."""
    folder = tmp_path_factory.mktemp("units")
    paths = [folder / "a.txt", folder / "b.txt"]
    for i, path in enumerate(paths):
        path.write_bytes(generated_text(i, final_newline=i == 1).encode("utf-8"))
    return paths


def lines_of(paths: Sequence[Path]) -> List[str]:
    """The line texts of files: split at ``\\n`` only, without it (a ``\\r`` before it stays), no
    empty text after a final newline."""
    out = []
    for path in paths:
        data = path.read_bytes()
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        out += [line.decode("utf-8") for line in lines]
    return out


def wholes_of(paths: Sequence[Path]) -> List[str]:
    """The whole-file texts of files, as ``open(path, encoding="utf-8", newline="").read()``."""
    out = []
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            out.append(f.read())
    return out


def saved(trainer: Trainer, folder: Path, name: str) -> bytes:
    trainer.save(folder / name)
    return (folder / name).read_bytes()


def trained(texts: Sequence[str], folder: Path, name: str) -> bytes:
    t = Trainer(progress=False, **PARAMS)
    t.train(texts, workers=2)
    return saved(t, folder, name)


def from_files(paths: Sequence[Path], folder: Path, name: str, **kw) -> bytes:
    t = Trainer(progress=False, **PARAMS)
    t.train_from_files(paths, workers=2, **kw)
    return saved(t, folder, name)


def cli(inputs: Sequence, folder: Path, name: str, *args: str) -> bytes:
    assert main(["train", *map(str, inputs), "-o", str(folder / name), *CLI_PARAMS, *args]) == 0
    return (folder / name).read_bytes()


def cli_stdin(data: bytes, folder: Path, name: str, *args: str) -> bytes:
    run = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "train", "-", "-o", str(folder / name), *CLI_PARAMS, *args],
        input=data,
        capture_output=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr.decode()
    return (folder / name).read_bytes()


def multi_byte_pieces(model: bytes) -> List[str]:
    """The pieces of a saved model that are not single bytes, as text."""
    import base64

    pieces = [base64.b64decode(k) for k in json.loads(model)]
    return [p.decode("utf-8", "replace") for p in pieces if len(p) > 1]


@pytest.fixture(scope="module")
def models(files, tmp_path_factory):
    """The reference models of the generated files: ``Trainer.train`` on their lines and on
    their whole texts."""
    folder = tmp_path_factory.mktemp("reference")
    return {
        "line": trained(lines_of(files), folder, "lines.model"),
        "file": trained(wholes_of(files), folder, "wholes.model"),
    }


def test_the_files_cover_the_edge_cases(files):
    a, b = (p.read_bytes() for p in files)
    assert b"\r\n" in a and b"\n\n" in a and b"\n" * 150 in a and not a.endswith(b"\n") and b.endswith(b"\n")
    assert max(len(line) for line in lines_of(files)) >= 25_000 and "中文" in a.decode()


def test_a_text_file_is_its_lines_the_same_in_the_cli_and_the_python_reader(files):
    docs = list(read_documents([str(p) for p in files], None))
    assert [d for d, _ in docs] == lines_of(files)
    assert sum(n for _, n in docs) == sum(p.stat().st_size for p in files)
    assert any(d.endswith("\r") for d, _ in docs) and "" in [d for d, _ in docs]


def test_by_default_each_line_is_a_text(files, models, tmp_path):
    assert cli(files, tmp_path, "cli.model") == models["line"]
    assert cli(files, tmp_path, "cli-line.model", "--text-unit", "line") == models["line"]
    assert from_files(files, tmp_path, "api.model") == models["line"]
    assert from_files(files, tmp_path, "api-line.model", text_unit="line") == models["line"]


def test_text_unit_file_makes_each_file_one_text(files, models, tmp_path):
    assert cli(files, tmp_path, "cli.model", "--text-unit", "file") == models["file"]
    assert from_files(files, tmp_path, "api.model", text_unit="file") == models["file"]


def test_the_two_units_give_different_models_on_text_with_newlines(models):
    assert models["line"] != models["file"]
    # pieces never span a line in the line model; the whole-file model learns some that do
    assert not [p for p in multi_byte_pieces(models["line"]) if "\n" in p]
    assert [p for p in multi_byte_pieces(models["file"]) if "\n" in p]


def test_stdin_follows_the_unit(files, tmp_path):
    data = files[0].read_bytes()
    assert cli_stdin(data, tmp_path, "line.model") == trained(lines_of(files[:1]), tmp_path, "lines.model")
    assert cli_stdin(data, tmp_path, "file.model", "--text-unit", "file") == trained(
        wholes_of(files[:1]), tmp_path, "wholes.model"
    )


def test_jsonl_records_are_one_text_each_in_either_unit(files, tmp_path):
    records = [t for t in generated_text(7, final_newline=True).split("\n\n") if t]
    assert any("\n" in r for r in records)
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("".join(json.dumps({"text": r}, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    want = trained(records, tmp_path, "records.model")
    assert cli([jsonl], tmp_path, "line.model") == want
    assert cli([jsonl], tmp_path, "file.model", "--text-unit", "file") == want
    # mixed with a text file: the text file's texts follow the unit, the records do not
    mixed = [files[0], jsonl]
    assert cli(mixed, tmp_path, "mixed-line.model") == trained(lines_of(files[:1]) + records, tmp_path, "l.model")
    assert cli(mixed, tmp_path, "mixed-file.model", "--text-unit", "file") == trained(
        wholes_of(files[:1]) + records, tmp_path, "f.model"
    )


def test_the_corpus_samples(tmp_path):
    sample = SHARED / "corpus" / "sample"
    paths = [sample / f"{lang}.txt" for lang in ("zh", "en", "code")]
    if not all(p.is_file() for p in paths):
        pytest.skip("shared corpus sample not found")
    assert cli(paths, tmp_path, "line.model") == trained(lines_of(paths), tmp_path, "lines.model")
    assert cli(paths, tmp_path, "file.model", "--text-unit", "file") == trained(
        wholes_of(paths), tmp_path, "wholes.model"
    )


def test_an_unknown_unit_is_refused(files, tmp_path, capsys):
    with pytest.raises(ValueError, match='text unit must be "line" or "file", got "lines"'):
        Trainer(progress=False).train_from_files(files, text_unit="lines")
    with pytest.raises(SystemExit) as e:
        main(["train", str(files[0]), "-o", str(tmp_path / "m.model"), "--vocab-size", "300", "--text-unit", "lines"])
    assert e.value.code == 2 and "--text-unit" in capsys.readouterr().err
