"""The file-to-file encode pipeline (``Encoder.encode_files``, what ``bytepiece encode`` and
``bytepiece stats`` run): the same ids as ``encode_batch`` whatever the blocks and threads, each
output format as the Python definition writes it, errors named by file and line, the writer's
exceptions passed on."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer, Trainer
from bytepiece_rs._files import AtomicOutput
from bytepiece_rs.formats import WRITERS, encoded_documents, read_megatron

WORDS = ["the", "tokenizer", "中文", "分词器", "def", "return", "x = 1;", "ÅÄÖ", "e\u0301", "🙂", "\t", "  ", "\r"]


def text_lines(n: int, seed: int = 0) -> list:
    """Lines of mixed text (some empty, some long, some needing NFC), reproducible."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        k = 0 if i % 17 == 0 else rng.randint(1, 400 if i % 101 == 0 else 20)
        lines.append(" ".join(rng.choice(WORDS) for _ in range(k)))
    return lines


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def encode_files(tok, inputs, fmt="uint32", **kw):
    """Runs the pipeline; returns (bytes written, lengths, summary)."""
    parts, lengths, seen = [], [], []

    def write(data, lens, nbytes):
        parts.append(data)
        lengths.extend(lens.tolist())
        seen.append(nbytes)

    run = tok._encoder.encode_files(inputs, write, fmt, **kw)
    assert sum(seen) == run["input_bytes"]
    return b"".join(parts), lengths, run


def test_the_ids_are_encode_batch_s_whatever_the_blocks_and_threads(tok, tmp_path):
    lines = text_lines(3000)
    path = tmp_path / "in.txt"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    want = tok.encode_batch(lines)
    flat = [i for d in want for i in d]
    for threads, block in [(1, None), (2, 1000), (3, 64)]:
        data, lengths, run = encode_files(tok, [(str(path), None)], num_threads=threads, block_bytes=block)
        assert np.frombuffer(data, "<u4").tolist() == flat, (threads, block)
        assert lengths == [len(d) for d in want]
        assert run["documents"] == len(lines) and run["tokens"] == len(flat)
        assert run["text_bytes"] == sum(len(x.encode()) for x in lines)


def test_text_and_jsonl_inputs_follow_one_another(tok, tmp_path):
    lines = text_lines(500, seed=1)
    a, b = tmp_path / "a.txt", tmp_path / "b.jsonl"
    a.write_bytes("\n".join(lines[:200]).encode())  # no final newline
    b.write_text(
        "".join(
            json.dumps({"id": i, "body": t}) + "\n" + ("\n" if i % 50 == 0 else "") for i, t in enumerate(lines[200:])
        ),
        encoding="utf-8",
    )
    data, lengths, _ = encode_files(
        tok, [(str(a), None), (str(b), "body")], "ids", add_bos=True, add_eos=True, block_bytes=300, num_threads=2
    )
    want = tok.encode_batch(lines, add_bos=True, add_eos=True)
    assert data.decode().splitlines() == [" ".join(map(str, d)) for d in want]
    empty = encode_files(tok, [(str(b), "body")], skip_empty=True)[1]
    assert len(empty) == sum(1 for t in lines[200:] if t)


@pytest.mark.parametrize("fmt", ["ids", "jsonl", "pieces", "npy", "bin"])
def test_each_format_reads_back_to_the_ids(tok, tmp_path, fmt):
    lines = text_lines(800, seed=2)
    src = tmp_path / "in.txt"
    src.write_bytes(("\n".join(lines) + "\n").encode())
    out = str(tmp_path / ("out." + {"ids": "txt", "pieces": "txt"}.get(fmt, fmt)))
    with AtomicOutput() as o:
        writer = WRITERS[fmt](o, out, np.dtype("uint16"))
        tok._encoder.encode_files(
            [(str(src), None)], lambda d, n, _: writer.write(d, n), writer.core_format, block_bytes=500, num_threads=2
        )
        writer.finish()
    want = tok.encode_batch(lines)
    if fmt == "pieces":
        names = [
            json.dumps(p if isinstance(p, str) else p.decode("utf-8", "backslashreplace"), ensure_ascii=False)
            for p in tok.ids_to_pieces(range(tok.vocab_size))
        ]
        got = open(out, encoding="utf-8").read().splitlines()
        assert got == ["[" + ", ".join(names[i] for i in d) + "]" for d in want]
        return
    if fmt == "npy":
        ids, offsets = np.load(out), np.load(out[:-4] + ".offsets.npy")
    elif fmt == "bin":
        ids, offsets = read_megatron(out[:-4])
    else:
        docs = [list(ids) for _, ids in encoded_documents(out, fmt)]
        assert docs == want
        return
    assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)] == want


def test_pieces_that_split_characters_are_written_as_python_writes_them(tmp_path):
    """A model with pieces that are not UTF-8 (ensure_unicode off): each id's JSON string is
    ``json.dumps(piece.decode("utf-8", "backslashreplace"), ensure_ascii=False)``."""
    trainer = Trainer(order=4, max_vocab_size=600, min_count=2, ensure_unicode=False, progress=False)
    trainer.train(text_lines(2000, seed=3) + ['"quoted" \\ back\\slash \x01 ctrl'] * 50)
    model = tmp_path / "m.model"
    trainer.save(str(model))
    tok = Tokenizer(str(model))
    pieces = tok.ids_to_pieces(range(tok.vocab_size))
    assert any(isinstance(p, bytes) and not ec.is_utf8(p) for p in pieces), "no piece splits a character"
    ids = np.arange(tok.vocab_size, dtype=np.uint32)
    data, _ = tok._encoder.format_ids(ids, np.array([0, len(ids)]), "pieces")
    names = [
        json.dumps(p if isinstance(p, str) else p.decode("utf-8", "backslashreplace"), ensure_ascii=False)
        for p in pieces
    ]
    assert data.decode("utf-8") == "[" + ", ".join(names) + "]\n"


def test_bad_lines_are_named_by_file_and_line_across_blocks(tok, tmp_path):
    good = "".join(json.dumps({"text": t}) + "\n" for t in text_lines(3000, seed=4))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good + '{"text": "unterminated\n' + good, encoding="utf-8")
    with pytest.raises(ValueError, match=r"^.*bad\.jsonl:3001: invalid JSON"):
        encode_files(tok, [(str(bad), "text")], block_bytes=4096, num_threads=2)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(good + '{"title": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing\.jsonl:3001: no string field 'text'"):
        encode_files(tok, [(str(missing), "text")], block_bytes=4096)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"ok\n" * 5000 + b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin1\.txt:5001: not valid UTF-8 \(at byte 3\)"):
        encode_files(tok, [(str(latin), None)], block_bytes=1000, num_threads=2)
    with pytest.raises(FileNotFoundError, match="nowhere.txt: no such file"):
        encode_files(tok, [(str(tmp_path / "nowhere.txt"), None)])
    with pytest.raises(IsADirectoryError, match="is a directory"):
        encode_files(tok, [(str(tmp_path), None)])


def test_an_exception_of_the_writer_stops_the_run_and_is_raised(tok, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(("\n".join(text_lines(5000, seed=5)) + "\n").encode())
    calls = []

    def write(data, lengths, nbytes):
        calls.append(len(lengths))
        if len(calls) == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        tok._encoder.encode_files([(str(path), None)], write, "ids", block_bytes=2000, num_threads=2)
    assert len(calls) == 2


def test_sampling_is_reproducible_and_independent_of_threads(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(("\n".join(text_lines(2000, seed=6)) + "\n").encode())

    def sampled(seed, threads):
        return encode_files(
            Tokenizer(seed=seed), [(str(path), None)], alpha=0.1, num_threads=threads, block_bytes=5000
        )[0]

    assert sampled(7, 1) == sampled(7, 2)
    assert sampled(7, 2) != sampled(8, 2)


def test_allowed_special_tokens_become_their_ids(tmp_path):
    tok = Tokenizer()
    tok.add_special_tokens(["<|sep|>"])
    lines = ["a<|sep|>b", "<|sep|>", "no token", "x<|sep|><|sep|>y"]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data, _, _ = encode_files(tok, [(str(path), None)], "ids", allowed_special=["<|sep|>"])
    want = tok.encode_batch(lines, allowed_special={"<|sep|>"})
    assert data.decode().splitlines() == [" ".join(map(str, d)) for d in want]
    plain, _, _ = encode_files(tok, [(str(path), None)], "ids")
    assert plain.decode().splitlines() == [
        " ".join(map(str, d)) for d in tok.encode_batch(lines, disallowed_special=())
    ]
    with pytest.raises(ValueError, match="not a special token"):
        encode_files(tok, [(str(path), None)], allowed_special=["<bos>"])


def test_the_command_reads_standard_input_as_a_file(tok, tmp_path):
    lines = text_lines(1000, seed=7)
    text = ("\n".join(lines) + "\n").encode()
    r = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode", "-", "--threads", "2"],
        input=text,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [" ".join(map(str, d)) for d in tok.encode_batch(lines)]


def test_ids_written_to_a_file_descriptor_are_those_handed_over(tok, tmp_path):
    """With ``output``, the core writes each block's bytes to the file itself, after what the
    caller wrote and flushed; ``on_block`` gets the lengths only. A failed write names the file."""
    lines = text_lines(3000, seed=8)
    src = tmp_path / "in.txt"
    src.write_bytes(("\n".join(lines) + "\n").encode())
    via_callback, lengths, _ = encode_files(tok, [(str(src), None)], "ids", block_bytes=2000, num_threads=2)
    seen = []
    with open(tmp_path / "out.txt", "wb") as f:
        f.write(b"header\n")
        f.flush()
        tok._encoder.encode_files(
            [(str(src), None)],
            lambda data, lens, n: seen.append((data, lens.tolist())),
            "ids",
            block_bytes=2000,
            num_threads=2,
            output=(f.fileno(), "out.txt"),
        )
        f.write(b"footer\n")
    assert (tmp_path / "out.txt").read_bytes() == b"header\n" + via_callback + b"footer\n"
    assert all(data is None for data, _ in seen) and [n for _, lens in seen for n in lens] == lengths
    if os.path.exists("/dev/full"):
        with open("/dev/full", "wb") as full:
            with pytest.raises(OSError, match="^/dev/full: No space left on device"):
                tok._encoder.encode_files([(str(src), None)], lambda *a: None, output=(full.fileno(), "/dev/full"))


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """``bytepiece encode big.txt | head -1``: the closed pipe ends the run with status 0 and
    nothing on stderr, as with any Unix filter."""
    path = tmp_path / "big.txt"
    path.write_bytes(("\n".join(text_lines(20000, seed=9)) + "\n").encode() * 20)
    p = subprocess.Popen(
        [sys.executable, "-m", "bytepiece_rs", "encode", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert p.stdout.read(100)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0 and err == b"", err
