"""Outputs never replace what they should not: a symlink is followed (its target is written
atomically, the link stays), a FIFO or a device is written to as it is, streaming."""

import os
import stat
import subprocess
import sys
import threading

import pytest

import bytepiece_rs

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX files")


def cli(*args):
    r = subprocess.run([sys.executable, "-m", "bytepiece_rs", *map(str, args)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r


def read_fifo(path):
    """Starts a reader of the FIFO ``path``; returns a function giving all it read."""
    got = []
    t = threading.Thread(target=lambda: got.append(open(path, "rb").read()), daemon=True)
    t.start()

    def result():
        t.join(60)
        return got[0]

    return result


@pytest.fixture(scope="module")
def tok():
    return bytepiece_rs.Tokenizer()


def writers(tok, tmp_path):
    """Every way the package writes a file, as (name, write(path), what a fresh file gets)."""
    model = tmp_path / "m.model"
    tok.save(model)
    text = tmp_path / "in.txt"
    text.write_text("hello world\nBytePiece\n", encoding="utf-8")
    trainer = bytepiece_rs.Trainer(max_vocab_size=300, min_count=1, progress=False)
    trainer.train(["hello world hello world", "BytePiece BytePiece"])
    return [
        ("Tokenizer.save", lambda p: tok.save(p)),
        ("Trainer.save", lambda p: trainer.save(p)),
        ("encode", lambda p: cli("encode", text, "-o", p)),
        ("convert", lambda p: cli("convert", "-m", model, "--to", "hf", "-o", p)),
        ("show", lambda p: cli("show", "--text", "hello", "-o", p)),
    ]


def test_a_symlink_is_followed_and_stays(tok, tmp_path):
    for name, write in writers(tok, tmp_path):
        target, link = tmp_path / f"{name}.target", tmp_path / f"{name}.link"
        os.symlink(target.name, link)
        write(link)
        assert link.is_symlink(), name
        assert target.is_file() and target.stat().st_size > 0, name
        fresh = tmp_path / f"{name}.fresh"
        write(fresh)
        assert target.read_bytes() == fresh.read_bytes(), name
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left"


def test_a_fifo_is_written_to_as_it_is(tok, tmp_path):
    for name, write in writers(tok, tmp_path):
        fifo = tmp_path / f"{name}.fifo"
        os.mkfifo(fifo)
        got = read_fifo(fifo)
        write(fifo)
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), name
        fresh = tmp_path / f"{name}.fresh"
        write(fresh)
        assert got() == fresh.read_bytes(), name


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_is_written_to_and_stays_a_device(tok, tmp_path):
    for name, write in writers(tok, tmp_path):
        null = tmp_path / f"{name}.null"
        try:
            os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a node of /dev/null's device
        except PermissionError:
            pytest.skip("no device nodes here")
        write(null)
        assert stat.S_ISCHR(os.lstat(null).st_mode), name


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("fmt", ["bin", "ids"])
def test_a_termination_signal_leaves_no_litter_and_the_previous_output(tmp_path, fmt, sig):
    import signal
    import time

    big = tmp_path / "big.txt"
    line = "BytePiece splits text into pieces of bytes, 分词器 and all. " * 4 + "\n"
    big.write_text(line * 400_000, encoding="utf-8")  # about 100 MB: seconds of encoding
    out = tmp_path / "out"
    cli("encode", __file__, "-o", out, "--format", fmt)  # a previous output, small
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("out")}
    p = subprocess.Popen(
        [sys.executable, "-m", "bytepiece_rs", "encode", str(big), "-o", str(out), "--format", fmt, "--threads", "1"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out*.tmp")) and time.monotonic() < deadline:  # writing has begun
        time.sleep(0.02)
    time.sleep(0.2)
    assert p.poll() is None, "the encoding ended before the signal"
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + getattr(signal, sig), err
    assert f"terminated by {sig}".encode() in err
    after = {q.name: q.read_bytes() for q in tmp_path.iterdir() if q.name.startswith("out")}
    assert after == before, "the previous output is intact"
    assert not [q.name for q in tmp_path.iterdir() if q.name.endswith(".tmp")], "no temporary file is left"


@pytest.mark.parametrize("fmt", ["bin", "parquet"])
def test_the_distributed_writers_follow_a_symlink(tok, tmp_path, fmt):
    """A shard's outputs and manifest that are symlinks (to a bigger disk, say) stay links; their
    targets get the files, the same as fresh outputs."""
    import hashlib
    import json

    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    from bytepiece_rs.distributed import encode_shard, shards_of

    text = tmp_path / "shard.txt"
    text.write_text("hello world\nBytePiece 分词\n" * 100, encoding="utf-8")
    model = json.dumps(tok.to_dict())
    sha = hashlib.sha256(model.encode()).hexdigest()
    options = {"output_format": fmt, "dtype": "uint16", "add_bos": False, "add_eos": True}

    def encode(folder):
        folder.mkdir(exist_ok=True)
        encode_shard(0, shards_of([str(text)])[0], str(folder), fmt, model, sha, options, 1, 1 << 20)
        return folder

    fresh = encode(tmp_path / "fresh")
    linked, elsewhere = tmp_path / "linked", tmp_path / "elsewhere"
    linked.mkdir()
    elsewhere.mkdir()
    names = sorted(p.name for p in fresh.iterdir())
    for name in names:
        os.symlink(elsewhere / name, linked / name)
    encode(linked)
    for name in names:
        assert (linked / name).is_symlink(), name
        assert (elsewhere / name).read_bytes() == (fresh / name).read_bytes() or name.endswith("manifest.json"), name
    assert sorted(p.name for p in elsewhere.iterdir()) == names, "no temporary file is left"


def test_several_outputs_are_renamed_together_or_not_at_all(tmp_path):
    from bytepiece_rs._files import AtomicOutput

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    with pytest.raises(KeyboardInterrupt), AtomicOutput() as out:
        out.open(str(a)).write(b"new a")
        out.open(str(b)).write(b"new b")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"] and a.read_bytes() == b"old a"
    with AtomicOutput() as out:
        out.open(str(a)).write(b"new a")
        f = out.open(str(b))
        f.write(b"new b")
        f.seek(0)
        f.write(b"N")
        assert a.read_bytes() == b"old a" and not b.exists()
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"New b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"], "no temporary file is left"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o666 & ~umask
