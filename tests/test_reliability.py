"""Hostile input, interrupts and full disks, each with a measured bound (tests/RELIABILITY.md).

Heavy cases run in a subprocess that reports its own wall time and peak RSS, so that the bound
is measured on that case alone; the bounds asserted are generous multiples of what was measured
(on 2 cores), so that a loaded machine does not fail them but a quadratic cost or a leak would.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
import unicodedata

import pytest

from bytepiece_rs import Tokenizer

MB = 10**6


def measure(body: str, timeout: float = 600) -> dict:
    """Runs ``body`` (Python, which sets ``result``, a dict) in a fresh interpreter; returns
    ``result`` with ``seconds`` (wall time of the body) and ``rss_mb`` (peak RSS of the process)."""
    script = (
        "import json, resource, time\n"
        "result = {}\n"
        "_t = time.perf_counter()\n" + body + "\nresult['seconds'] = time.perf_counter() - _t\n"
        "result['rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(result))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss() -> float:
    """Peak RSS of an interpreter that loaded the default model and encoded a little."""
    return measure("from bytepiece_rs import Tokenizer\nTokenizer().encode('warm up')")["rss_mb"]


# -- hostile input -----------------------------------------------------------------------------


def test_a_100_mb_single_line(shared_dir):
    """Memory linear in the line: ~18 bytes per byte of line (the line as str and UTF-8, the
    lattice's score and route per byte); the ids decode back to the line. (Time linear in a
    line's length: test_hostile.py's ratio of two sizes.)"""
    base = baseline_rss()
    r = measure(
        "import hashlib, sys\n"
        f"sys.path.insert(0, {str(os.path.dirname(__file__))!r})\n"
        "import edge_cases as ec\n"
        "from pathlib import Path\n"
        "from bytepiece_rs import Tokenizer\n"
        f"text = ec.read_sample('en', Path({str(shared_dir)!r})).replace('\\n', ' ')\n"
        "line = (text * (100_000_000 // len(text.encode()) + 1)).encode()[:100_000_000].decode('utf-8', 'ignore')\n"
        "tok = Tokenizer()\n"
        "t = time.perf_counter()\n"
        "ids = tok.encode_batch_numpy([line])[0]\n"
        "result['encode_seconds'] = time.perf_counter() - t\n"
        "result['ids'] = len(ids)\n"
        "result['same'] = hashlib.sha256(tok.decode_bytes(ids)).digest() == hashlib.sha256(line.encode()).digest()\n"
        "result['bytes'] = len(line.encode())\n",
    )
    assert r["same"] and r["ids"] > 10 * MB
    per_byte = (r["rss_mb"] - base) * 2**20 / r["bytes"]
    assert per_byte < 30, f"{per_byte:.1f} bytes of memory per byte of line"
    print(f"100 MB line: encode {r['encode_seconds']:.1f} s, {per_byte:.1f} bytes of memory per byte, {r}")


@pytest.mark.parametrize("unit", ["😀", "\u0301", "a\u0301"])
def test_ten_megabytes_of_one_character(unit):
    """10 MB of one emoji, of one combining mark, of a base + mark (NFC composes each pair):
    correct (offsets checked on a tenth), and twice the input costs about twice the time (no
    quadratic step)."""
    seconds = []
    for mb in (5, 10):
        r = measure(
            "import unicodedata\n"
            "from bytepiece_rs import Tokenizer\n"
            "tok = Tokenizer()\n"
            f"text = {unit!r} * ({mb} * 1_000_000 // len({unit!r}.encode()))\n"
            "t = time.perf_counter()\n"
            "ids = tok.encode(text)\n"
            "result['encode_seconds'] = time.perf_counter() - t\n"
            "result['ok'] = tok.decode(ids) == unicodedata.normalize('NFC', text)\n"
            "small = text[:len(text) // 10]\n"
            "ids, spans = tok.encode_with_offsets(small)\n"
            "result['covers'] = ids == tok.encode(small) and spans[0][0] == 0 and spans[-1][1] == len(small)\n"
        )
        assert r["ok"] and r["covers"]
        seconds.append(r["encode_seconds"])
    assert seconds[1] < 3.5 * seconds[0] + 0.5, seconds
    print(f"{unit!r}: 5 MB {seconds[0]:.2f} s, 10 MB {seconds[1]:.2f} s, peak RSS {r['rss_mb']:.0f} MiB")


def test_a_model_with_one_million_pieces(tmp_path):
    """Loads in seconds with memory linear in the model (~0.4 KB per piece, the JSON included);
    encodes; saves back byte for byte."""
    rng = random.Random(7)
    pieces = set()
    while len(pieces) < 1_000_000:
        pieces.add(bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz ", k=rng.randint(2, 12))))
    model = {
        base64.b64encode(bytes([b])).decode(): [b + 3, bytes([b]).decode("utf-8", "ignore"), 1] for b in range(256)
    }
    for i, p in enumerate(sorted(pieces)):
        model[base64.b64encode(p).decode()] = [259 + i, p.decode(), rng.randint(1, 10**6)]
    path = tmp_path / "big.model"
    path.write_text(json.dumps(model, indent=4, ensure_ascii=False), encoding="utf-8")
    del model, pieces
    r = measure(
        "from bytepiece_rs import Tokenizer\n"
        "t = time.perf_counter()\n"
        f"tok = Tokenizer({str(path)!r})\n"
        "result['load_seconds'] = time.perf_counter() - t\n"
        "result['vocab_size'] = tok.vocab_size\n"
        "text = 'the quick brown fox jumps over the lazy dog ' * 1000\n"
        "result['ok'] = tok.decode(tok.encode(text)) == text\n"
        f"tok.save({str(tmp_path / 'again.model')!r})\n"
    )
    assert r["vocab_size"] == 1_000_259 and r["ok"]
    assert (tmp_path / "again.model").read_bytes() == path.read_bytes()
    assert r["load_seconds"] < 20 and r["rss_mb"] < 2000, r
    print(f"1M pieces: {r}")


def test_pieces_of_ten_thousand_bytes(tmp_path):
    """A walk from each position may follow a piece to its end: time is O(n * L) for pieces of L
    bytes, linear in the text for a given model (measured ~5 ns per byte per byte of piece)."""
    model = {base64.b64encode(bytes([b])).decode(): [b + 3, "", 1] for b in range(256)}
    for i, p in enumerate([b"a" * 10_000, b"ab" * 5_000, b"b" * 9_999 + b"c"]):
        model[base64.b64encode(p).decode()] = [259 + i, p.decode(), 1000]
    tok = Tokenizer(model)
    assert tok.encode("a" * 20_000) == [259, 259]
    times = []
    for n in (20_000, 40_000):
        start = time.perf_counter()
        ids = tok.encode("a" * n + "b" * 3)
        times.append(time.perf_counter() - start)
        assert tok.decode(ids) == "a" * n + "b" * 3
    assert times[1] < 3.5 * times[0] + 0.2, times
    print(f"10k-byte pieces: {times}")


def test_counts_near_the_u64_limit(tmp_path):
    """Counts up to 2**64 - 1 load, score and save exactly (their total is summed in 128 bits);
    a count past it is refused."""
    model = {base64.b64encode(bytes([b])).decode(): [b + 3, "", 2**64 - 1 - b] for b in range(256)}
    model[base64.b64encode(b"ab").decode()] = [259, "ab", 2**64 - 1]
    tok = Tokenizer(model)
    assert tok.encode("abab") == [259, 259]
    tok.save(tmp_path / "m.model")
    assert json.loads((tmp_path / "m.model").read_text())["YWI="] == [259, "ab", 2**64 - 1]
    model[base64.b64encode(b"ab").decode()] = [259, "ab", 2**64]
    with pytest.raises(ValueError, match="count"):
        Tokenizer(model)


def test_truncated_and_corrupt_model_files(tmp_path):
    """Every prefix of a model file and random byte flips: a ValueError naming the file, or (a
    flip that keeps it valid) a model that works; never a crash."""
    good = tmp_path / "good.model"
    Tokenizer().save(good)
    data = good.read_bytes()
    rng = random.Random(3)
    bad = tmp_path / "bad.model"
    for cut in sorted(rng.sample(range(1, len(data)), 40)) + [len(data) - 1, 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="bad.model"):
            Tokenizer(bad)
    for _ in range(40):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        bad.write_bytes(bytes(flipped))
        try:
            tok = Tokenizer(bad)
        except ValueError as e:
            assert "bad.model" in str(e)
        else:
            assert tok.decode(tok.encode("still works")) == "still works"


def run_cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", *map(str, args)], capture_output=True, text=True, timeout=300, **kw
    )


def test_cli_jsonl_with_a_broken_line(tmp_path):
    src = tmp_path / "docs.jsonl"
    src.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": "broken\n{"text": "never read"}\n')
    out = tmp_path / "out.bin"
    r = run_cli("encode", src, "-o", out, "--format", "bin", "-q")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "docs.jsonl:3: invalid JSON" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl"]


# -- interrupts and partial writes ------------------------------------------------------------


def default_sigint():
    """preexec_fn: Ctrl-C's default disposition in the child, even where this test runs with it
    ignored (as a background job of a non-interactive shell is)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after(args, ready: str, delay: float = 1.0, **kw):
    """Starts a Python process, waits for the line ``ready`` and ``delay`` s, sends Ctrl-C;
    returns (the next line it prints, the rest of stderr, its return code, seconds from the
    signal to that line — or to its exit if it prints none)."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        **kw,
    )
    line = proc.stdout.readline().strip()
    assert line == ready, (line, proc.stderr.read() if proc.poll() is not None else "")
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    after = proc.stdout.readline().strip()
    elapsed = time.monotonic() - sent
    _, err = proc.communicate(timeout=60)
    if not after:
        elapsed = time.monotonic() - sent
    return after, err, proc.returncode, elapsed


@pytest.mark.parametrize("call", ["encode_batch", "encode_batch_numpy"])
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_batch_encoding_within_a_second(call, threads):
    script = (
        "from bytepiece_rs import Tokenizer\n"
        "tok = Tokenizer()\n"
        "texts = ['the quick brown fox %d jumps over the lazy dog, 敏捷的棕色狐狸 %d' % (i, i) for i in range(3_000_000)]\n"
        "print('ready', flush=True)\n"
        "try:\n"
        f"    tok.{call}(texts, num_threads={threads})\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    out, err, code, elapsed = interrupt_after(["-c", script], "ready")
    assert out.strip() == "interrupted", err
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"


def big_input(tmp_path, mb: int = 60):
    path = tmp_path / "big.txt"
    line = "the quick brown fox jumps over the lazy dog, 敏捷的棕色狐狸跳过了懒狗 %d\n"
    with open(path, "w", encoding="utf-8") as f:
        n = 0
        while n < mb * MB:
            chunk = "".join(line % i for i in range(n, n + 10_000))
            f.write(chunk)
            n += len(chunk.encode())
    return path


def test_ctrl_c_stops_the_cli_and_leaves_nothing_half_written(tmp_path):
    src = big_input(tmp_path, mb=100)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "corpus.bin").write_bytes(b"previous")
    script = (
        "import sys\n"
        "from bytepiece_rs.cli import main\n"
        "print('ready', flush=True)\n"
        f"sys.exit(main(['encode', {str(src)!r}, '-o', {str(out_dir / 'corpus.bin')!r}, '--format', 'bin', '-q', '--threads', '1']))\n"
    )
    out, err, code, elapsed = interrupt_after(["-c", script], "ready", delay=0.7)
    assert code == 130 and "interrupted" in err
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert sorted(p.name for p in out_dir.iterdir()) == ["corpus.bin"]  # no temporary left, no .idx
    assert (out_dir / "corpus.bin").read_bytes() == b"previous"


def limited(limit: int):
    """preexec_fn: a file-size limit (writes past it fail with EFBIG, as on a full disk)."""

    def apply():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_fails_the_cli_cleanly(tmp_path):
    src = big_input(tmp_path, mb=5)
    out = tmp_path / "ids.npy"
    out.write_bytes(b"previous")
    r = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "encode", str(src), "-o", str(out), "--format", "npy", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited(1_000_000),
    )
    assert r.returncode == 2 and r.stderr.startswith("bytepiece: error: ") and "too large" in r.stderr.lower(), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "ids.npy"]


@pytest.mark.parametrize(
    "make",
    [
        "from bytepiece_rs import Tokenizer\nt = Tokenizer()\n",
        "from bytepiece_rs import Trainer\n"
        "t = Trainer(order=4, max_vocab_size=2000, min_count=1, progress=False)\n"
        "t.train(['some text %d to learn from, 学习的文本 %d' % (i, i * 3) for i in range(5000)])\n",
    ],
    ids=["Tokenizer.save", "Trainer.save"],
)
def test_a_full_disk_fails_save_and_keeps_the_previous_model(tmp_path, make):
    target = tmp_path / "m.model"
    target.write_text("previous")
    script = (
        "import resource, signal, sys\n" + make + "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "try:\n"
        "    t.save(sys.argv[1])\n"
        "except OSError as e:\n"
        "    print('OSError', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OSError") and "m.model" in r.stdout
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.model"]


def test_nul_bytes_and_invalid_utf8_round_trip():
    tok = Tokenizer()
    rng = random.Random(11)
    for _ in range(50):
        data = bytes(rng.choice([0, 0xFF, 0xC3, 0x80, 0xE4, 0x0A, 0x61]) for _ in range(rng.randint(0, 300)))
        assert tok.decode_bytes(tok.encode(data)) == data
        text = data.decode("utf-8", "replace")
        assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)
