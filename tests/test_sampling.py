"""Exact sampling (alpha >= 0): every segmentation is drawn with probability proportional to
exp(alpha * score), checked with a chi-square test against full enumeration."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from bytepiece_rs import Tokenizer
from test_api import toy_model

scipy_stats = pytest.importorskip("scipy.stats")

COUNTS = {b"a": 60, b"b": 40, b"c": 30, b"ab": 25, b"bc": 20, b"ca": 15, b"abc": 10, b"cab": 8, b"bca": 5}


def make_model() -> dict:
    model = toy_model({p: c for p, c in COUNTS.items() if len(p) > 1})
    for key, value in model.items():
        piece = value[1].encode()
        if piece in COUNTS:
            value[2] = COUNTS[piece]
    return model


def segmentations(text: bytes, pieces: set[bytes]) -> list[tuple[bytes, ...]]:
    if not text:
        return [()]
    out = []
    for k in range(1, len(text) + 1):
        if text[:k] in pieces:
            out += [(text[:k],) + rest for rest in segmentations(text[k:], pieces)]
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("text", ["abcab", "cabca", "abcabc"])
def test_sampling_frequencies_match_exact_distribution(alpha, text):
    model = make_model()
    tokenizer = Tokenizer(model, seed=1234)
    counts = np.array([v[2] for v in model.values()], dtype=np.float64)
    log_total = np.log(counts.sum())
    score = {v[1].encode(): np.log(float(v[2])) - log_total for v in model.values() if v[1]}
    segs = segmentations(text.encode(), set(score))
    assert len(segs) >= 8
    weights = np.array([np.exp(alpha * sum(score[p] for p in s)) for s in segs])
    expected_p = weights / weights.sum()
    draws = 24_000
    seen = Counter(tuple(tokenizer.tokenize(text, alpha=alpha)) for _ in range(draws))
    assert set(seen) <= set(segs), "a draw is not a segmentation of the text"
    observed = np.array([seen[s] for s in segs], dtype=np.float64)
    expected = expected_p * draws
    # pool the rare segmentations so that every expected cell is at least 5
    rare = expected < 5
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    stat, p = scipy_stats.chisquare(observed, expected)
    assert p > 1e-3, f"alpha={alpha} text={text!r}: chi2={stat:.1f}, p={p:.2g}"


def test_alpha_zero_is_uniform_and_negative_alpha_is_the_best():
    tokenizer = Tokenizer(make_model(), seed=7)
    segs = segmentations(b"abcab", {p for p in COUNTS} | {bytes([b]) for b in range(256)})
    seen = Counter(tuple(tokenizer.tokenize("abcab", alpha=0)) for _ in range(len(segs) * 400))
    assert len(seen) == len(segs)  # every segmentation, even the improbable ones, is drawn
    best = tokenizer.tokenize("abcab")
    assert all(tokenizer.tokenize("abcab", alpha=-0.5) == best for _ in range(50))


def test_same_seed_same_draws():
    text = "abcabcabcab\ncabca" * 3
    a, b = Tokenizer(make_model(), seed=99), Tokenizer(make_model(), seed=99)
    draws_a = [a.encode(text, alpha=0.3) for _ in range(20)]
    assert draws_a == [b.encode(text, alpha=0.3) for _ in range(20)]
    assert len({tuple(d) for d in draws_a}) > 10
    a.set_seed(99)
    assert [a.encode(text, alpha=0.3) for _ in range(20)] == draws_a
    a.set_seed(100)
    assert [a.encode(text, alpha=0.3) for _ in range(20)] != draws_a
    # batches: reproducible and independent of the thread count
    docs = [text[i:] for i in range(40)]
    a.set_seed(5)
    one = a.encode_batch(docs, alpha=0.3, num_threads=1)
    a.set_seed(5)
    assert a.encode_batch(docs, alpha=0.3, num_threads=3) == one


def test_sampling_from_many_threads_is_safe():
    tokenizer = Tokenizer(make_model(), seed=3)
    text = "abcabcab" * 50
    bad = []

    def work():
        for _ in range(200):
            pieces = tokenizer.tokenize(text, alpha=0.1)
            if b"".join(pieces) != text.encode():
                bad.append(pieces)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_huge_alpha_still_gives_a_segmentation():
    tokenizer = Tokenizer(make_model(), seed=3)
    text = "abcab" * 10
    assert b"".join(tokenizer.tokenize(text, alpha=1e300)) == text.encode()
