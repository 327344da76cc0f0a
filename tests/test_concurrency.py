"""Fork, pickle and threads: what multiprocessing, PyTorch's DataLoader workers and threaded
servers do with a tokenizer.

- ``Tokenizer`` and ``Trainer`` pickle (spawned workers get them that way) and the copies give
  the same ids / models;
- a child forked after the parent used the thread pool encodes in parallel instead of waiting
  forever on the parent's pool (whose threads it does not have) — the HF ``tokenizers`` trap;
- many Python threads sharing one ``Tokenizer`` get the ids of a sequential run, and sampling
  from many threads works.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer, Trainer

TIMEOUT = 120  # seconds; a deadlocked child is killed and the test fails


@pytest.fixture(scope="module")
def docs():
    return ec.sample_documents(per_language=200)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


# --------------------------------------------------------------------------- pickle


def test_tokenizer_pickles_as_its_model(tok, docs):
    copy = pickle.loads(pickle.dumps(tok))
    assert isinstance(copy, Tokenizer) and copy is not tok
    assert copy.vocab_size == tok.vocab_size
    assert copy.to_dict() == tok.to_dict()
    assert copy.encode_batch(docs) == tok.encode_batch(docs)
    assert copy.decode(copy.encode(docs[0])) == docs[0]


def test_special_tokens_and_surgery_survive_pickling(docs):
    tok = Tokenizer()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    new = tok.add_pieces(["imatinib"], counts=1000)
    copy = pickle.loads(pickle.dumps(tok))
    assert copy.special_tokens == tok.special_tokens and copy.vocab_size == tok.vocab_size
    assert copy.encode("imatinib") == new
    text = "<|im_start|>user\n" + docs[0] + "<|im_end|>"
    assert copy.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    with pytest.raises(ValueError, match="special token"):
        copy.encode(text)
    trainer = pickle.loads(pickle.dumps(Trainer(max_vocab_size=400, special_tokens=["<sep>"])))
    assert trainer.special_tokens == ["<sep>"]


def test_released_model_pickles(tokenizer, docs):
    tok = tokenizer("bytepiece_80k")  # has pieces that are not valid UTF-8
    copy = pickle.loads(pickle.dumps(tok, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy.encode_batch(docs) == tok.encode_batch(docs)


def test_pickled_tokenizer_restarts_the_draws_of_its_seed(docs):
    text = docs[0]
    tok = Tokenizer(seed=5)
    tok.encode(text, alpha=0.1)  # the original moves on; a copy restarts at seed 5
    copy = pickle.loads(pickle.dumps(tok))
    fresh = Tokenizer(seed=5)
    assert [copy.encode(text, alpha=0.1) for _ in range(3)] == [fresh.encode(text, alpha=0.1) for _ in range(3)]
    tok.set_seed(9)
    copy = pickle.loads(pickle.dumps(tok))
    assert copy.encode_batch(docs[:20], alpha=0.1) == Tokenizer(seed=9).encode_batch(docs[:20], alpha=0.1)


def test_unseeded_copies_sample_independently(docs):
    tok = Tokenizer()
    a, b = (pickle.loads(pickle.dumps(tok)) for _ in range(2))
    text = "\n".join(docs[:30])
    # fresh entropy in each copy: 30 paragraphs sampled at alpha=0 never agree by chance
    assert a.encode(text, alpha=0) != b.encode(text, alpha=0)


def _train_small(trainer: Trainer, docs) -> None:
    trainer.train(docs, workers=2)


def test_trainer_pickles_its_parameters_and_trained_models(docs, tmp_path):
    trainer = Trainer(order=4, max_vocab_size=[400, 300], min_count=2, isolate_digits=True, count_memory_mb=64)
    untrained = pickle.loads(pickle.dumps(trainer))
    for name in (
        "order",
        "max_vocab_size",
        "max_piece_length",
        "min_count",
        "isolate_digits",
        "ensure_unicode",
        "count_memory_mb",
    ):
        assert getattr(untrained, name) == getattr(trainer, name), name
    with pytest.raises(RuntimeError, match="not been trained"):
        untrained.save(tmp_path / "none.model")

    _train_small(trainer, docs)
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy.pieces == trainer.pieces and len(copy.pieces) == 2
    trainer.save(tmp_path / "a.model")
    copy.save(tmp_path / "b.model")
    for size in (400, 300):
        assert (tmp_path / f"a.model.{size}").read_bytes() == (tmp_path / f"b.model.{size}").read_bytes()
    # the untrained copy trains to the same model
    _train_small(untrained, docs)
    assert untrained.pieces == trainer.pieces


def test_trainer_core_rejects_the_wrong_number_of_models():
    trainer = Trainer(max_vocab_size=[400, 300])
    with pytest.raises(ValueError, match="expected 2 models"):
        trainer._core.set_models([b"{}"])
    with pytest.raises(ValueError):
        trainer._core.set_models([b"not json", b"{}"])


# --------------------------------------------------------------------------- processes


def _encode_in_child(tok: Tokenizer, docs, queue) -> None:
    queue.put(tok.encode_batch(docs, num_threads=2))


def _encode_task(args):
    tok, docs = args
    return tok.encode_batch(docs, num_threads=2)


def _train_task(args):
    trainer, docs = args
    _train_small(trainer, docs)
    return trainer


def _run_child(ctx, target, args):
    queue = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, queue))
    p.start()
    try:
        result = queue.get(timeout=TIMEOUT)
    except Exception:
        p.kill()
        p.join()
        pytest.fail(f"the child gave no result in {TIMEOUT} s (deadlocked?); exit code {p.exitcode}")
    p.join(TIMEOUT)
    assert p.exitcode == 0
    return result


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork on this platform")
def test_forked_child_encodes_after_the_parent_used_the_thread_pool(tok, docs):
    expected = tok.encode_batch(docs, num_threads=2)  # the parent's pool of 2 threads now runs
    tok.encode_batch(docs[:10], num_threads=3)
    ctx = mp.get_context("fork")
    # the child inherits the tokenizer object itself (no pickling) and the parent's pools
    assert _run_child(ctx, _encode_in_child, (tok, docs)) == expected
    # a second child, after the parent used its pools again
    assert _run_child(ctx, _encode_in_child, (tok, docs)) == expected
    assert tok.encode_batch(docs, num_threads=2) == expected


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork on this platform")
def test_fork_while_other_threads_encode(tok, docs):
    """A fork while other threads are inside the pool (and may hold its lock)."""
    expected = tok.encode_batch(docs, num_threads=2)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            tok.encode_batch(docs[:50], num_threads=2)
            tok.encode_batch(docs[:5], num_threads=4)

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        ctx = mp.get_context("fork")
        for _ in range(3):
            assert _run_child(ctx, _encode_in_child, (tok, docs)) == expected
    finally:
        stop.set()
        for t in threads:
            t.join()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_workers_get_pickled_tokenizers(tok, docs, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    tok.encode_batch(docs[:10], num_threads=2)
    chunks = [docs[i::4] for i in range(4)]
    with mp.get_context(method).Pool(2) as pool:
        got = pool.map_async(_encode_task, [(tok, c) for c in chunks]).get(TIMEOUT)
    assert got == [tok.encode_batch(c) for c in chunks]


def test_trainer_trains_in_a_spawned_worker(docs):
    trainer = Trainer(order=4, max_vocab_size=400, min_count=2)
    with mp.get_context("spawn").Pool(1) as pool:
        trained = pool.map_async(_train_task, [(trainer, docs)]).get(TIMEOUT)[0]
    _train_small(trainer, docs)
    assert trained.pieces == trainer.pieces


# --------------------------------------------------------------------------- threads


def test_many_threads_share_one_tokenizer(tok, docs):
    expected_one = [tok.encode(d) for d in docs]
    expected_batch = tok.encode_batch(docs, num_threads=1)
    assert expected_batch == expected_one

    def work(k: int):
        mine = docs[k::8]
        ones = [tok.encode(d) for d in mine]
        batch = tok.encode_batch(mine, num_threads=2)
        ids, offsets = tok.encode_batch_numpy(mine, num_threads=2)
        flat = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(mine))]
        return ones, batch, flat

    barrier = threading.Barrier(8)

    def start(k: int):
        barrier.wait()  # all eight at once
        return [work(k) for _ in range(3)]

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(start, range(8)))
    for k, rounds in enumerate(results):
        want = expected_one[k::8]
        for ones, batch, flat in rounds:
            assert ones == want and batch == want and flat == want


def test_sampling_from_many_threads(docs):
    tok = Tokenizer(seed=1)
    texts = docs[:40]

    def work(k: int):
        out = []
        for alpha in (0.0, 0.1, 1.0):
            out.append(
                ([tok.encode(t, alpha=alpha) for t in texts[k::8]], tok.encode_batch(texts, alpha=alpha, num_threads=2))
            )
        return out

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(work, range(8)))
    for k, rounds in enumerate(results):
        for ones, batch in rounds:
            # every sample is a segmentation of its text
            assert [tok.decode(ids) for ids in ones] == texts[k::8]
            assert [tok.decode(ids) for ids in batch] == texts
    # sampling did sample: not every draw is the best segmentation
    best = tok.encode_batch(texts)
    assert any(batch != best for rounds in results for _, batch in rounds)
