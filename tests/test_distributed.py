"""bytepiece_rs.distributed on a local Dask cluster (2 worker processes, loopback only): the
trained model equals the single-machine trainer's on the same text, whatever the shards, shard
format and worker failures; batch encoding writes one verified, resumable output per shard."""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'bytepiece-rs[dask]')"
)

import bytepiece_rs  # noqa: E402
from bytepiece_rs import cli, formats  # noqa: E402
from bytepiece_rs.distributed import ShardError, encode_distributed, shards_of, train_distributed, verify_manifest  # noqa: E402
from edge_cases import read_sample  # noqa: E402

ARGS = dict(order=6, max_vocab_size=[3000, 1200], min_count=4)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def texts(shared_dir):
    """Real text: a part of each sample (en, zh, code), as lines (newlines kept)."""
    parts = [
        read_sample("en", shared_dir)[:300_000],
        read_sample("zh", shared_dir)[:120_000],
        read_sample("code", shared_dir)[:200_000],
    ]
    return [line for part in parts for line in part.splitlines(keepends=True)]


def write_text_shards(directory, lines, cuts):
    paths = []
    for i, (a, b) in enumerate(zip([0] + cuts, cuts + [len(lines)])):
        p = directory / f"shard-{i}.txt"
        p.write_bytes("".join(lines[a:b]).encode("utf-8"))
        paths.append(str(p))
    return paths


def models_of(trainer, tmp_path, name):
    """Every model the trainer saves, as bytes (pieces, ids and counts)."""
    trainer.save(tmp_path / name)
    return [(tmp_path / f"{name}.{s}").read_bytes() for s in trainer.max_vocab_size]


def listening_addresses(pids):
    """The addresses that the processes ``pids`` listen on (TCP, from /proc)."""
    inodes = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ip, port = fields[1].split(":")
                    raw = bytes.fromhex(ip)
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                    found.append((ipaddress.ip_address(words), int(port, 16)))
    return found


def test_addresses_are_loopback_only(client):
    info = client.scheduler_info()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert len(info["workers"]) == 2
    for address, worker in info["workers"].items():
        assert address.startswith("tcp://127.0.0.1:"), address
        assert worker["nanny"].startswith("tcp://127.0.0.1:"), worker["nanny"]
    if not os.path.isdir("/proc/self/fd"):
        return
    # the scheduler and nannies run in this process, each worker in its own
    pids = [os.getpid(), *client.run(os.getpid).values()]
    found = listening_addresses(pids)
    assert len(found) >= 5, found  # scheduler, its HTTP server, 2 nannies, 2 workers
    assert all(ip.is_loopback for ip, _ in found), found


@pytest.mark.parametrize("text_unit", ["line", "file"])
def test_text_shards_give_the_single_machine_model(client, texts, tmp_path, text_unit):
    paths = write_text_shards(tmp_path, texts, [100, 101, 2000, 2500])  # a one-line shard too
    single = bytepiece_rs.Trainer(progress=False, **ARGS)
    single.train_from_files(paths, text_unit=text_unit)
    want = models_of(single, tmp_path, "single")
    assert len(single.pieces[0]) > 2000
    unit = {} if text_unit == "line" else {"text_unit": text_unit}  # lines by default
    got = train_distributed(client, paths, fan_in=2, **unit, **ARGS)
    assert models_of(got, tmp_path, "five") == want


def test_workers_within_a_memory_bound_give_the_single_machine_model(client, texts, tmp_path):
    paths = write_text_shards(tmp_path, texts, [900, 1800])
    single = bytepiece_rs.Trainer(progress=False, **ARGS)
    single.train_from_files(paths)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # counting tables of a few slots: every worker's stage goes through runs on disk, and so
    # does the client's pruning
    got = train_distributed(client, paths, fan_in=2, max_memory_mb=64, count_memory_mb=0, temp_dir=str(scratch), **ARGS)
    assert models_of(got, tmp_path, "bounded") == models_of(single, tmp_path, "single")
    assert list(scratch.iterdir()) == [], "temporary files are removed"


def test_jsonl_parquet_and_dataframe_shards_give_the_single_machine_model(client, texts, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = [t.rstrip("\n") for t in texts[:3000]]
    single = bytepiece_rs.Trainer(progress=False, **ARGS)
    single.train(records)
    want = models_of(single, tmp_path, "single")
    jsonl, parquet = [], []
    for i, (a, b) in enumerate([(0, 900), (900, 901), (901, 3000)]):
        p = tmp_path / f"part-{i}.jsonl"
        p.write_text(
            "".join(json.dumps({"id": k, "body": r}, ensure_ascii=False) + "\n" for k, r in enumerate(records[a:b])),
            encoding="utf-8",
        )
        jsonl.append(str(p))
        q = tmp_path / f"part-{i}.parquet"
        pq.write_table(pa.table({"body": records[a:b]}), q, row_group_size=500)
        parquet.append(str(q))
    assert models_of(train_distributed(client, jsonl, column="body", **ARGS), tmp_path, "jsonl") == want
    assert models_of(train_distributed(client, parquet[::-1], column="body", **ARGS), tmp_path, "pq") == want
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = dd.from_pandas(pd.DataFrame({"body": records}), npartitions=4)
    assert models_of(train_distributed(client, frame, column="body", **ARGS), tmp_path, "df") == want
    holed = dd.from_pandas(pd.DataFrame({"body": ["a", "b", None, "c"]}), npartitions=2)
    with pytest.raises(ShardError, match=r"^DataFrame partition 1: training texts must be str"):
        train_distributed(client, holed, column="body", retries=0, **ARGS)
    with pytest.raises(ValueError, match="no column 'text'"):
        train_distributed(client, frame, **ARGS)


class KillOnce(distributed.WorkerPlugin):
    """Kills the worker process (os._exit) that starts executing the first task whose key starts
    with ``prefix``: at once, or when a file matching ``when_glob`` appears (within 20 s); once
    per ``marker`` file."""

    name = "bytepiece-kill-once"

    def __init__(self, prefix, marker, when_glob=None):
        self.prefix, self.marker, self.when_glob = prefix, marker, when_glob

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not str(key).startswith(self.prefix):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        if self.when_glob is None:
            os._exit(1)

        def watch():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if glob.glob(self.when_glob):
                    os._exit(1)
                time.sleep(0.0005)

        threading.Thread(target=watch, daemon=True).start()


def killing(client, prefix, marker, when_glob=None):
    """Registers a KillOnce plugin; returns the worker addresses before it."""
    before = set(client.scheduler_info()["workers"])
    client.register_plugin(KillOnce(prefix, str(marker), when_glob))
    return before


def restored(client, before):
    """Waits until 2 workers are up again; returns True if a worker was replaced."""
    client.unregister_worker_plugin(KillOnce.name)
    client.wait_for_workers(2, timeout=60)
    return set(client.scheduler_info()["workers"]) != before


@pytest.mark.parametrize("stage", ["ngrams", "pieces"])
def test_a_worker_killed_mid_training_changes_nothing(client, texts, tmp_path, stage):
    paths = write_text_shards(tmp_path, texts, [700, 1400, 2100, 2800])
    single = bytepiece_rs.Trainer(progress=False, **ARGS)
    single.train_from_files(paths)
    marker = tmp_path / "killed"
    before = killing(client, f"bytepiece-{stage}-", marker)
    try:
        got = train_distributed(client, paths, fan_in=2, **ARGS)
    finally:
        replaced = restored(client, before)
    assert marker.exists(), "no task of the stage ran"
    assert replaced, "the worker was not killed"
    assert models_of(got, tmp_path, "got") == models_of(single, tmp_path, "single")


def test_corrupt_shards_name_the_shard(client, texts, tmp_path):
    good = write_text_shards(tmp_path, texts[:50], [])[0]
    bad_text = tmp_path / "bad.txt"
    bad_text.write_bytes(b"fine\n" * 10 + b"\xff\xfe broken")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "a"}\n{"text": "b"\n', encoding="utf-8")
    no_field = tmp_path / "nofield.jsonl"
    no_field.write_text('{"text": "a"}\n{"other": "b"}\n', encoding="utf-8")
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"PAR1 this is not parquet at all PAR1")
    cases = [
        (bad_text, "not valid UTF-8"),
        (bad_json, ":2: invalid JSON"),
        (no_field, ":2: no string field 'text'"),
        (bad_parquet, "not a readable parquet file"),
        (tmp_path / "missing.txt", "no such file"),
    ]
    for path, message in cases:
        if path.suffix == ".parquet":
            pytest.importorskip("pyarrow")
        with pytest.raises(ShardError) as e:
            train_distributed(client, [good, str(path)], retries=0, **ARGS)
        assert str(e.value).startswith(str(path)), str(e.value)
        assert message in str(e.value), str(e.value)


def test_bad_arguments_are_clear_errors(client, tmp_path):
    with pytest.raises(ValueError, match="no shards"):
        train_distributed(client, [], **ARGS)
    with pytest.raises(ValueError, match="format must be one of"):
        train_distributed(client, ["a.txt"], format="csv", **ARGS)
    with pytest.raises(TypeError, match="a shard must be a path"):
        train_distributed(client, [3], **ARGS)
    with pytest.raises(ValueError, match="order"):
        train_distributed(client, ["a.txt"], order=9)
    with pytest.raises(ValueError, match="fan_in"):
        train_distributed(client, ["a.txt"], fan_in=1, **ARGS)
    with pytest.raises(ValueError, match="text_unit must be one of line, file, got 'lines'"):
        train_distributed(client, ["a.txt"], text_unit="lines", **ARGS)
    with pytest.raises(ValueError, match="output_format"):
        encode_distributed(client, ["a.txt"], None, tmp_path, output_format="npy")
    assert [s.format for s in shards_of(["a.jsonl", "b.PARQUET", "c.txt", "d"])] == ["jsonl", "parquet", "text", "text"]


@pytest.fixture(scope="module")
def small_model(texts, tmp_path_factory):
    trainer = bytepiece_rs.Trainer(progress=False, order=6, max_vocab_size=2000, min_count=4)
    trainer.train(texts[:1500])
    path = tmp_path_factory.mktemp("model") / "small.model"
    trainer.save(path)
    return str(path)


def cli_bin(model, path, out):
    cli.main(["encode", "-m", model, "--format", "bin", "-o", str(out), "-q", path])
    return (out.with_suffix(".bin")).read_bytes(), (out.with_suffix(".idx")).read_bytes()


def test_encode_to_megatron_bin_matches_the_cli_and_resumes(client, texts, small_model, tmp_path):
    paths = write_text_shards(tmp_path, texts, [1000, 1001, 2600])
    out = tmp_path / "out"
    manifests = encode_distributed(client, paths, small_model, out, add_eos=True)
    assert [m["skipped"] for m in manifests] == [False] * 4
    assert [m["input"]["path"] for m in manifests] == paths
    expect = {}
    for i, p in enumerate(paths):
        cli.main(
            ["encode", "-m", small_model, "--format", "bin", "--add-eos", "-o", str(tmp_path / f"cli{i}.bin"), "-q", p]
        )
        expect[i] = ((tmp_path / f"cli{i}.bin").read_bytes(), (tmp_path / f"cli{i}.idx").read_bytes())
        assert (out / f"part-{i:05d}.bin").read_bytes() == expect[i][0]
        assert (out / f"part-{i:05d}.idx").read_bytes() == expect[i][1]
        ids, offsets = formats.read_megatron(str(out / f"part-{i:05d}"))
        assert manifests[i]["documents"] == len(offsets) - 1 == len(open(p, encoding="utf-8").read().splitlines())
        assert manifests[i]["tokens"] == len(ids)
    index = json.loads((out / "index.json").read_text())
    assert [s["input"]["path"] for s in index["shards"]] == paths
    # a rerun skips every verified shard and rewrites nothing
    stamps = {f: os.stat(out / f).st_mtime_ns for f in os.listdir(out) if f.startswith("part-")}
    assert all(m["skipped"] for m in encode_distributed(client, paths, small_model, out, add_eos=True))
    assert stamps == {f: os.stat(out / f).st_mtime_ns for f in stamps}
    # a truncated output, a lost manifest and a leftover temporary file: only those shards redo
    with open(out / "part-00000.bin", "r+b") as f:
        f.truncate(10)
    (out / "part-00002.manifest.json").unlink()
    (out / ".part-00002.bin.abc123.tmp").write_bytes(b"partial")
    assert verify_manifest(str(out / "part-00000.manifest.json")) is None
    again = encode_distributed(client, paths, small_model, out, add_eos=True)
    assert [m["skipped"] for m in again] == [False, True, False, True]
    assert not (out / ".part-00002.bin.abc123.tmp").exists()
    for i in range(4):
        assert (out / f"part-{i:05d}.bin").read_bytes() == expect[i][0]
        assert verify_manifest(str(out / f"part-{i:05d}.manifest.json")) is not None
    # other options are another job: nothing is skipped
    assert not any(m["skipped"] for m in encode_distributed(client, paths, small_model, out))
    # a corrupt shard is named, with its line, and leaves no output
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"one\ntwo\n\xc3(\n")
    with pytest.raises(ShardError, match=f"^{bad}:3: not valid UTF-8"):
        encode_distributed(client, [paths[0], str(bad)], small_model, tmp_path / "out2", retries=0)
    assert not (tmp_path / "out2" / "part-00001.bin").exists()
    assert not (tmp_path / "out2" / "part-00001.manifest.json").exists()


def test_encode_jsonl_to_parquet_keeps_every_document_in_order(client, texts, small_model, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    records = [t.rstrip("\n") for t in texts[:1200]]
    paths = []
    for i, (a, b) in enumerate([(0, 500), (500, 1200)]):
        p = tmp_path / f"in-{i}.jsonl"
        p.write_text(
            "".join(json.dumps({"text": r}, ensure_ascii=False) + "\n" for r in records[a:b]), encoding="utf-8"
        )
        paths.append(str(p))
    out = tmp_path / "out"
    encode_distributed(client, paths, small_model, out, output_format="parquet")
    got = [row for i in range(2) for row in pq.read_table(out / f"part-{i:05d}.parquet").column("ids").to_pylist()]
    tokenizer = bytepiece_rs.Tokenizer(small_model)
    assert got == tokenizer.encode_batch(records)
    assert pq.read_schema(out / "part-00000.parquet").field("ids").type.value_type == "uint16"


def test_a_worker_killed_mid_encoding_loses_and_duplicates_nothing(client, texts, small_model, tmp_path):
    paths = write_text_shards(tmp_path, texts * 2, [1500, 3000, 4500])
    out = tmp_path / "out"
    marker = tmp_path / "killed"
    # killed while it writes: its temporary outputs exist
    before = killing(client, "bytepiece-encode-", marker, when_glob=str(out / ".part-*.tmp"))
    try:
        manifests = encode_distributed(client, paths, small_model, out)
    finally:
        replaced = restored(client, before)
    assert marker.exists() and replaced
    tokenizer = bytepiece_rs.Tokenizer(small_model)
    for i, p in enumerate(paths):
        docs = open(p, encoding="utf-8").read().splitlines()
        ids, offsets = formats.read_megatron(str(out / f"part-{i:05d}"))
        want_ids, want_offsets = tokenizer.encode_batch_numpy(docs)
        assert np.array_equal(offsets, want_offsets) and np.array_equal(ids, want_ids)
        assert manifests[i]["documents"] == len(docs)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
