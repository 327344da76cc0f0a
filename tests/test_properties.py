"""Properties that must hold for any input (hypothesis): round trips, batches, seeds, saving,
and the trainer's independence of workers and batch sizes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bytepiece_rs import Tokenizer, Trainer

# any code point but surrogates, with the hard cases made common
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60) | st.lists(
    st.sampled_from(
        [
            "a",
            "é",
            "e\u0301",
            "\u0301",
            "世",
            "😀",
            "\n",
            "\n\n",
            " ",
            "\t",
            "1",
            "١",
            "\x00",
            "\u212b",
            "\u1100\u1161",
            "ﬁ",
            "<|x|>",
        ]
    ),
    max_size=30,
).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def default():
    return Tokenizer()


@SETTINGS
@given(TEXT)
def test_decode_of_encode_is_the_nfc_text(default, text):
    ids = default.encode(text)
    assert default.decode(ids) == unicodedata.normalize("NFC", text)
    assert default.decode_bytes(default.encode(text.encode())) == text.encode()


@SETTINGS
@given(TEXT, st.integers(min_value=0, max_value=60), st.sampled_from(["\ud800", "\udfff", "\udc80"]))
def test_lone_surrogates_raise_value_error(default, text, at, surrogate):
    bad = text[:at] + surrogate + text[at:]
    with pytest.raises(ValueError):
        default.encode(bad)
    with pytest.raises(ValueError):
        default.encode_batch(["ok", bad])


@SETTINGS
@given(st.lists(TEXT, max_size=12), st.integers(min_value=1, max_value=3), st.booleans())
def test_encode_batch_equals_one_by_one(default, texts, threads, eos):
    one = [default.encode(t, add_eos=eos) for t in texts]
    assert default.encode_batch(texts, add_eos=eos, num_threads=threads) == one
    flat, offsets = default.encode_batch_numpy(texts, add_eos=eos, num_threads=threads)
    assert [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))] == one


@SETTINGS
@given(TEXT, st.integers(min_value=0, max_value=2**64 - 1), st.floats(min_value=0, max_value=5))
def test_sampling_with_a_seed_is_reproducible(default, text, seed, alpha):
    default.set_seed(seed)
    first = [default.encode(text, alpha=alpha) for _ in range(3)]
    default.set_seed(seed)
    assert [default.encode(text, alpha=alpha) for _ in range(3)] == first
    assert all(default.decode(ids) == unicodedata.normalize("NFC", text) for ids in first)
    # a batch draws the same whatever the number of threads
    default.set_seed(seed)
    one_thread = default.encode_batch([text, text + "x"], alpha=alpha, num_threads=1)
    default.set_seed(seed)
    assert default.encode_batch([text, text + "x"], alpha=alpha, num_threads=2) == one_thread


CORPUS = st.lists(TEXT, min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    CORPUS,
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=7),
    st.sampled_from([2, 3, 6]),
    st.booleans(),
)
def test_trainer_same_model_for_any_workers_and_batch_size_and_saves_identically(texts, workers, batch, order, digits):
    def train(w, b):
        t = Trainer(order=order, max_vocab_size=400, min_count=1, isolate_digits=digits, progress=False)
        t.train(texts, workers=w, batch_size=b)
        return t

    base = train(1, 1000)
    other = train(workers, batch)
    assert other.pieces == base.pieces
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        base.save(os.path.join(d, "a.model"))
        tok = Tokenizer(os.path.join(d, "a.model"))
        tok.save(os.path.join(d, "b.model"))
        a = open(os.path.join(d, "a.model"), "rb").read()
        assert a == open(os.path.join(d, "b.model"), "rb").read()
    for text in texts:
        assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)
