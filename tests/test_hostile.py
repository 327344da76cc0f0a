"""Inputs that knock over naive tokenizers: huge single lines, long runs of one character or
emoji. Encoding must be correct and must not recurse (the original's backtracking is quadratic on
such lines). Throughput against length is measured by bench/linear.py, not timed here."""

from __future__ import annotations

import numpy as np
import pytest

from bytepiece_rs import Tokenizer


@pytest.fixture(scope="module")
def default() -> Tokenizer:
    return Tokenizer()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 10**7, id="a*1e7"),
        pytest.param("\U0001f600" * 250_000, id="1MB-one-emoji"),
        pytest.param("e\u0301" * 300_000, id="combining-marks"),
        pytest.param("\n" * 1_000_000, id="newlines"),
    ],
)
def test_long_runs_round_trip(default, text):
    ids, offsets = default.encode_batch_numpy([text], num_threads=1)
    assert offsets.tolist() == [0, len(ids)]
    import unicodedata

    assert default.decode(ids) == unicodedata.normalize("NFC", text)


def test_ten_megabyte_line_of_real_text(default):
    from conftest import SHARED

    sample = SHARED / "corpus" / "sample"
    if not sample.is_dir():
        pytest.skip("shared corpus sample not found")
    text = " ".join((sample / f).read_text() for f in ("en.txt", "zh.txt", "code.txt")).replace("\n", " ")
    line = text * (10_000_000 // len(text.encode()) + 1)
    assert len(line.encode()) > 10_000_000 and "\n" not in line
    ids = default.encode(line)
    assert default.decode(ids) == line
    # one chunk, encoded whole: the same ids as the text's own encoding repeated (the seams may
    # differ by a few pieces)
    assert abs(len(ids) - len(default.encode(text)) * (len(line) // len(text))) < 100


def test_doubling_a_text_doubles_its_ids(default):
    # Doubling a text of repeated content doubles the ids exactly (no quadratic blow-up in
    # memory either: encode_batch_numpy holds one uint32 per id).
    unit = "The quick brown fox 跳过了 lazy dogs. " * 1000
    n1 = len(default.encode(unit * 4))
    n2 = len(default.encode(unit * 8))
    assert abs(n2 - 2 * n1) <= 4
    ids, _ = default.encode_batch_numpy([unit * 8])
    assert ids.dtype == np.uint32 and ids.nbytes == 4 * n2


def test_the_cost_of_one_long_line_grows_linearly(default):
    """The original's backtracking is quadratic on a long line: 8 times the text costs 64 times
    as much there, 8 times here. CPU time, best of 3, against a generous bound of 20."""
    import time

    line = ("The quick brown fox 跳过了 lazy dogs, " * 6000)[:200_000]

    def cost(text):
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            default.encode(text)
            best = min(best, time.process_time() - t)
        return best

    small, large = cost(line), cost(line * 8)
    assert large < 20 * max(small, 1e-3), (small, large)
