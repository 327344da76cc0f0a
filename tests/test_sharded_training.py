"""The engine-agnostic stages of bytepiece_rs.distributed run by hand, with no cluster (as a
Spark or Ray adapter would run them): the model equals the single-machine trainer's whatever the
shards and the merge tree, and count tables are checked when read."""

from __future__ import annotations

import pytest

import bytepiece_rs
from bytepiece_rs.distributed import (
    ShardError,
    count_ngrams,
    count_pieces,
    merge_counts,
    ngram_model_table,
    prune_counts,
)
from edge_cases import read_sample

ARGS = dict(order=5, max_vocab_size=[1500, 800], min_count=3)


@pytest.fixture(scope="module")
def lines(shared_dir):
    text = read_sample("en", shared_dir)[:150_000] + read_sample("zh", shared_dir)[:60_000]
    return text.splitlines(keepends=True)


def test_stages_by_hand_give_the_single_machine_model(lines):
    single = bytepiece_rs.Trainer(progress=False, **ARGS)
    single.train(lines)
    shards = [lines[:10], lines[10:1200], [], lines[1200:]]
    ngrams = [count_ngrams(s, ARGS, name=f"shard {i}") for i, s in enumerate(shards)]
    assert ngrams[0][:8] == b"BPCOUNT\0"
    # two merge trees give the same bytes
    left = merge_counts(merge_counts(ngrams[0], ngrams[1]), merge_counts(ngrams[2], ngrams[3]))
    right = merge_counts(ngrams[3], merge_counts(ngrams[1], ngrams[2], ngrams[0]))
    assert left == right
    model = ngram_model_table(left, ARGS)
    assert len(model) < len(left), "pruned"
    # the shards' tables merged and pruned in one task give the same bytes
    assert ngram_model_table(ngrams, ARGS) == ngram_model_table([right], ARGS) == model
    pieces = [count_pieces(s, model, ARGS, threads=2, batch_size=7) for s in reversed(shards)]
    trained = prune_counts(merge_counts(*pieces), ARGS)
    assert trained.pieces == single.pieces
    # the client merges the last tables as it prunes them
    assert prune_counts(pieces, ARGS, threads=2).pieces == single.pieces
    # within a memory bound, every stage goes through runs on disk, to the same bytes
    bounded = dict(ARGS, max_memory_mb=64, count_memory_mb=0)
    assert [count_ngrams(s, bounded) for s in shards] == ngrams
    assert [count_pieces(s, model, bounded) for s in reversed(shards)] == pieces
    assert prune_counts(pieces, bounded).pieces == single.pieces
    assert len(trained.pieces[0]) > 1000


def test_count_tables_are_checked(lines):
    table = count_ngrams(lines[:50], ARGS)
    broken = bytearray(table)
    broken[100] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        merge_counts(table, bytes(broken))
    with pytest.raises(ValueError, match="not a bytepiece count table"):
        merge_counts(table, b"hello")
    with pytest.raises(ValueError, match="^count table 1: made with other parameters"):
        merge_counts(table, count_ngrams(lines[:50], dict(ARGS, order=4)))
    with pytest.raises(ValueError, match="kind"):
        merge_counts(table, count_pieces(lines[:5], ngram_model_table(table, ARGS), ARGS))
    with pytest.raises(ValueError, match="other parameters"):
        ngram_model_table(table, dict(ARGS, isolate_digits=True))
    with pytest.raises(ValueError, match="other parameters"):
        count_pieces(lines[:5], ngram_model_table(table, ARGS), dict(ARGS, min_count=5))
    with pytest.raises(ValueError, match="already pruned"):
        ngram_model_table(ngram_model_table(table, ARGS), ARGS)


def test_bad_texts_name_their_shard():
    with pytest.raises(ShardError, match="^part 7: training texts must be str, got int"):
        count_ngrams(["ok", 3], ARGS, name="part 7")
    with pytest.raises(TypeError, match="a shard must be"):
        count_ngrams(42, ARGS)
