"""Training within ``max_memory_mb``: the same model as an unbounded run, on real text; the
peak resident memory within the bound; an early, clear failure when the model cannot fit; no
temporary file left on success, on error or on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from bytepiece_rs import Trainer
from conftest import SHARED

SAMPLE = SHARED / "corpus" / "sample"


@pytest.fixture(scope="module")
def sample_files() -> list[str]:
    files = [str(SAMPLE / f"{lang}.txt") for lang in ("zh", "en", "code")]
    if not all(os.path.isfile(f) for f in files):
        pytest.skip("shared corpus sample not found")
    return files


def trained_json(paths, **params) -> list[str]:
    t = Trainer(order=6, max_vocab_size=[6000, 3000], min_count=2, progress=False, **params)
    t.train_from_files(paths, workers=2)
    return [t._core.to_json(i) for i in range(2)]


def test_a_small_bound_spills_every_stage_and_gives_the_same_models(sample_files, tmp_path):
    want = trained_json(sample_files)
    # count tables of 1 MB: the n-gram and the piece counts are spilled many times
    got = trained_json(sample_files, max_memory_mb=64, count_memory_mb=1, temp_dir=tmp_path)
    assert got == want
    assert list(tmp_path.iterdir()) == []
    # and from Python texts (spilled to the same folder for the second pass)
    texts = Path(sample_files[0]).read_text().split("\n")
    t = Trainer(order=6, max_vocab_size=3000, progress=False, max_memory_mb=64, count_memory_mb=1, temp_dir=tmp_path)
    t.train(texts, workers=2)
    u = Trainer(order=6, max_vocab_size=3000, progress=False)
    u.train(texts, workers=2)
    assert t._core.to_json(0) == u._core.to_json(0)
    assert list(tmp_path.iterdir()) == []


def test_without_a_bound_spilled_counts_go_to_temp_dir_too(sample_files, tmp_path):
    lines = Path(sample_files[1]).read_text().split("\n")
    seen = []

    def texts():
        for i, line in enumerate(lines):
            if i % 2000 == 1999:
                seen.extend(p.name for p in tmp_path.rglob("ngrams*"))
            yield line

    t = Trainer(order=6, max_vocab_size=3000, progress=False, count_memory_mb=1, temp_dir=tmp_path)
    t.train(texts(), batch_size=500)
    assert seen, "the n-gram runs were not written under temp_dir"
    assert list(tmp_path.iterdir()) == []


def test_terminated_is_exported_and_is_a_keyboard_interrupt():
    import signal as _signal

    import bytepiece_rs

    e = bytepiece_rs.Terminated(_signal.SIGTERM)
    assert isinstance(e, KeyboardInterrupt) and e.signum == _signal.SIGTERM and "SIGTERM" in str(e)


def test_bad_bounds_and_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="max_memory_mb must be at least 64"):
        Trainer(max_memory_mb=10)
    with pytest.raises(ValueError, match="is not an existing folder"):
        Trainer(max_memory_mb=512, temp_dir=tmp_path / "missing")


def test_a_model_that_cannot_fit_fails_early_and_says_what_would(tmp_path):
    # random printable characters: nearly every n-gram of 4 bytes or more is new, so with
    # min_count 1 the model needs far more than the 40 MB that 64 MB leaves it, and the first
    # count tables spilled (a tenth of the text) already show it
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + string.punctuation
    lines = ["".join(rng.choices(alphabet, k=100)) for _ in range(100_000)]
    read = 0

    def texts():
        nonlocal read
        for line in lines:
            read += 1
            yield line

    t = Trainer(order=8, max_vocab_size=3000, min_count=1, progress=False, max_memory_mb=64, temp_dir=tmp_path)
    with pytest.raises(ValueError) as e:
        t.train(texts(), batch_size=500)
    message = str(e.value)
    assert "the n-gram model needs at least" in message, message
    assert "raise max_memory_mb to at least" in message and "or min_count to at least 2" in message, message
    assert read < len(lines) / 4, f"failed only after {read} of {len(lines)} texts"
    assert list(tmp_path.iterdir()) == []


PEAK_SCRIPT = textwrap.dedent(
    """
    import re, sys
    from bytepiece_rs import Trainer
    path, bound, out = sys.argv[1], sys.argv[2], sys.argv[3]
    kw = {} if bound == "-" else {"max_memory_mb": int(bound)}
    t = Trainer(order=6, max_vocab_size=32000, min_count=2, progress=False, **kw)
    t.train_from_files(path, workers=2)
    t.save(out)
    # this program's own peak (ru_maxrss would count pytest's, forked before exec)
    print(int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024)
    """
)


@pytest.mark.corpus
def test_the_peak_memory_stays_within_the_bound_on_real_text(corpus_dir, tmp_path):
    # 60 MB of the mixed corpus: unbounded, the trainer's peak is several times 128 MB
    text = tmp_path / "mix60.txt"
    with open(corpus_dir / "mix.train.txt", "rb") as f:
        data = f.read(60_000_000)
    text.write_bytes(data[: data.rfind(b"\n\n") + 2])

    def peak(bound: str, out: Path) -> int:
        run = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, str(text), bound, str(out)], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return int(run.stdout.split()[-1])

    unbounded = peak("-", tmp_path / "a.model")
    bounded = peak("128", tmp_path / "b.model")
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert bounded <= 1.15 * 128 + 150, f"peak {bounded} MB with max_memory_mb=128 (unbounded: {unbounded} MB)"
    assert unbounded > 2 * bounded, f"the bound did bind: unbounded {unbounded} MB, bounded {bounded} MB"


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys
    from bytepiece_rs import Trainer
    t = Trainer(order=6, max_vocab_size=5000, progress=False, max_memory_mb=64, count_memory_mb=1, temp_dir=sys.argv[2])
    print("training", flush=True)
    t.train_from_files([sys.argv[1]] * 40, workers=2)
    """
)


@pytest.mark.parametrize(
    "how, sig", [("python", "SIGTERM"), ("cli", "SIGTERM"), ("cli", "SIGHUP"), ("python", "SIGINT"), ("cli", "SIGINT")]
)
def test_a_signal_stops_the_training_and_removes_its_files(sample_files, tmp_path, how, sig):
    sig = getattr(signal, sig)
    temp = tmp_path / "temp"
    temp.mkdir()
    stdin = subprocess.DEVNULL
    if how == "python":
        cmd = [sys.executable, "-c", SIGTERM_SCRIPT, sample_files[1], str(temp)]
    else:
        # texts from stdin are spilled to the temporary folder from the start
        big = tmp_path / "big.txt"
        big.write_bytes(Path(sample_files[1]).read_bytes() * 30)
        stdin = open(big, "rb")
        cmd = [
            sys.executable,
            "-m",
            "bytepiece_rs",
            "train",
            "-",
            "-o",
            str(tmp_path / "m.model"),
            "--vocab-size",
            "5000",
            "--max-memory",
            "64",
            "--temp-dir",
            str(temp),
            "-q",
        ]
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # wait until the training has spilled files to its folder
    while time.monotonic() < deadline and not any(p.is_file() for p in temp.rglob("*")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert any(p.is_file() for p in temp.rglob("*")), "the training never spilled"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if stdin is not subprocess.DEVNULL:
        stdin.close()
    if sig == signal.SIGINT:
        # Ctrl-C: KeyboardInterrupt (which Python, uncaught, ends by the signal itself), and the
        # CLI's status for it
        assert proc.returncode == (-signal.SIGINT if how == "python" else 130), err
        assert "KeyboardInterrupt" in err if how == "python" else "interrupted" in err, err
    elif how == "python":
        assert proc.returncode == 1 and f"Terminated: terminated by {sig.name}" in err, err
    else:
        assert proc.returncode == 128 + sig, err
        assert f"terminated by {sig.name}" in err
    assert not (tmp_path / "m.model").exists()
    assert list(temp.iterdir()) == [], "temporary files left behind"
