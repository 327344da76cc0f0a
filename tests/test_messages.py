"""Error messages in one style: ``PATH[:LINE]: what is wrong``, the path the user gave (never a
temporary file's), "is a directory" the same wherever a file was wanted, and the Python
exception a user expects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bytepiece_rs import Tokenizer
from bytepiece_rs.cli import main


@pytest.fixture
def files(tmp_path):
    (tmp_path / "in.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": 1}\n', encoding="utf-8")
    (tmp_path / "bad.model").write_text("{not json", encoding="utf-8")
    (tmp_path / "ids.txt").write_text("3 4\n1 2 99999999\n", encoding="utf-8")
    return tmp_path


def cli_error(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("bytepiece: error: "), lines
    assert ".tmp" not in lines[0], lines
    return lines[0][len("bytepiece: error: ") :]


def test_every_command_names_the_path_first(files, capsys):
    d, nodir = files / "folder", files / "nowhere" / "out"
    cases = [
        (("encode", files / "absent.txt"), f"{files / 'absent.txt'}: no such file"),
        (("encode", d), f"{d}: is a directory, not a file"),
        (("encode", "-m", d, files / "in.txt"), f"{d}: is a directory, not a model file"),
        (("encode", "-m", files / "bad.model", files / "in.txt"), f"{files / 'bad.model'}: not a BytePiece model"),
        (("encode", files / "bad.jsonl"), f"{files / 'bad.jsonl'}:2: no string field 'text'"),
        (("encode", files / "in.txt", "-o", nodir), f"{nodir}: no such directory {nodir.parent}"),
        (("encode", files / "in.txt", "-o", d), f"{d}: is a directory, not a file to write"),
        (
            ("decode", files / "ids.txt"),
            f"{files / 'ids.txt'}:2: id 99999999 is not in the vocabulary (ids are 0 to {Tokenizer().vocab_size - 1})",
        ),
        (("train", files / "in.txt", "-o", nodir, "--vocab-size", "300"), f"{nodir}: no such directory"),
        (("convert", "--to", "hf", "-o", nodir), f"{nodir}: no such directory"),
        (("stats", d), f"{d}: is a directory, not a file"),
        (("info", "-m", files / "absent.model"), f"{files / 'absent.model'}: no such model file"),
    ]
    for args, want in cases:
        got = cli_error(capsys, *args)
        assert got.startswith(want), (args, got)
        assert "'" not in got.split(":")[0], got  # no quoted repr of a KeyError or path


def test_python_saves_name_their_target_not_a_temporary_file(files):
    tok = Tokenizer()
    nodir = files / "nowhere" / "x"
    for save in (tok.save, tok.convert_to_hf, tok.convert_to_sentencepiece):
        with pytest.raises(FileNotFoundError) as e:
            save(str(nodir))
        assert str(e.value) == f"{nodir}: no such directory {nodir.parent}", save
        with pytest.raises(IsADirectoryError) as e:
            save(str(files / "folder"))
        assert str(e.value) == f"{files / 'folder'}: is a directory, not a file", save
    assert sorted(os.listdir(files)) == ["bad.jsonl", "bad.model", "folder", "ids.txt", "in.txt"]


def test_loading_a_folder_or_a_missing_model_says_so(files):
    with pytest.raises(IsADirectoryError, match=r"folder: is a directory, not a file$"):
        Tokenizer(str(files / "folder"))
    with pytest.raises(FileNotFoundError, match=r"absent\.model: no such file$"):
        Tokenizer(str(files / "absent.model"))
    with pytest.raises(KeyError) as e:
        Tokenizer().decode([Tokenizer().vocab_size])
    assert e.value.args[0].endswith(f"(ids are 0 to {Tokenizer().vocab_size - 1})")
    with pytest.raises(TypeError, match="a batch is a list of texts"):
        Tokenizer().encode_batch("a string")


def test_the_console_script_prints_one_line_for_an_unreadable_record(files):
    r = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode", "--format", "jsonl", str(files / "bad.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        r.returncode == 2 and r.stderr.strip() == f"bytepiece: error: {files / 'bad.jsonl'}:2: no string field 'text'"
    )
