#!/usr/bin/env python3
"""The file-to-file pipeline (`bytepiece encode FILE -o OUT`) against the engine
(`Tokenizer.encode_batch_numpy` on the same lines, already in memory), and what the pipeline's
serial work lets it reach on many cores.

For each thread count (1 and N) and output format, in alternating runs:

- **pipeline**: the whole `bytepiece encode` command as a process (start, model load, reading,
  splitting, encoding, formatting, writing); MB/s = input bytes / wall seconds;
- **engine**: `encode_batch_numpy(lines, num_threads=T)` in this process, timing that call only
  (the lines are read and split before the clock starts).

Then, in this process, the pipeline's own account of where one thread's time goes per MB:
reading (the reader thread: `read`, cutting blocks at a newline) and writing (the calling thread:
the Python writer's `write`, the formats' bytes to the file). Both are serial, each on its own
thread; everything else (splitting into documents, UTF-8 checks, JSON, encoding, formatting)
runs on the workers. The ceiling on C cores is min(C x one core's encode speed, the slower of
the two serial rates).

    python3 bench/pipeline.py                       # mix.train.txt of the corpus, 80k model, ~6 min
    python3 bench/pipeline.py --repeats 1 --mb 40   # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

MB = 10**6
CORES = (16, 64, 128)


def model_path(shared: str, name: str, work: str) -> str:
    """The released model `name` (unzipped from shared/models into `work`)."""
    with zipfile.ZipFile(os.path.join(shared, "models", name + ".zip")) as z:
        member = next(m for m in z.namelist() if m.endswith(".model"))
        return z.extract(member, work)


def input_file(corpus: str, mb: float, work: str) -> str:
    """The corpus' mix.train.txt, or its first `mb` MB cut at a line end."""
    src = os.path.join(corpus, "mix.train.txt")
    if not os.path.exists(src):
        raise SystemExit(f"no {src}: build the corpus with shared/corpus/build_corpus.sh")
    if not mb:
        return src
    with open(src, "rb") as f:
        data = f.read(int(mb * MB))
    path = os.path.join(work, f"mix.{mb:g}MB.txt")
    with open(path, "wb") as f:
        f.write(data[: data.rfind(b"\n") + 1])
    return path


def run_pipeline(path: str, model: str, fmt: str, threads: int, out: str) -> float:
    """Wall seconds of the whole `bytepiece encode` process."""
    cmd = [
        sys.executable,
        "-m",
        "bytepiece_rs",
        "encode",
        path,
        "-m",
        model,
        "--format",
        fmt,
        "-o",
        out,
        "--threads",
        str(threads),
        "-q",
    ]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def run_engine(tok, lines, threads: int) -> float:
    t = time.perf_counter()
    tok.encode_batch_numpy(lines, num_threads=threads)
    return time.perf_counter() - t


def in_process(tok, path: str, fmt: str, out: str, threads: int) -> dict:
    """The pipeline's account of one run in this process, written as the command writes it
    (without the command's start, the index's completion and the outputs' fsync)."""
    from bytepiece_rs._files import AtomicOutput
    from bytepiece_rs.formats import WRITERS

    dtype = "uint16" if tok.vocab_size <= 1 << 16 else "uint32"
    with AtomicOutput() as o:
        writer = WRITERS[fmt](o, out, dtype)
        run = tok._encoder.encode_files(
            [(path, None)],
            lambda data, lengths, n: writer.write(data, lengths),
            writer.core_format,
            num_threads=threads,
            output=writer.output(),
        )
        writer.finish()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    machine.add_corpus_argument(ap)
    ap.add_argument(
        "--shared",
        default=machine.shared_dir(),
    )
    ap.add_argument("--model", default="bytepiece.plus.80k", help="a released model of shared/models")
    ap.add_argument("--mb", type=float, default=0, help="use the first MB of mix.train.txt (default: all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--formats", default="bin,ids")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--serial-dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the serial costs' outputs go (default /dev/shm: memory, so that the figure is the "
        "pipeline's own work, not the disk's write-back)",
    )
    ap.add_argument("--serial-only", action="store_true", help="measure the serial costs only")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pipeline.md"))
    a = ap.parse_args()
    import bytepiece_rs

    work = tempfile.mkdtemp(prefix="bytepiece-pipeline-")
    model = model_path(a.shared, a.model, work)
    path = input_file(a.corpus, a.mb, work)
    size = os.path.getsize(path)
    tok = bytepiece_rs.Tokenizer(model)
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    print(f"== {size / MB:,.1f} MB, {len(lines):,} lines, model {a.model}", flush=True)
    out = os.path.join(work, "out")
    rows = []
    for threads in [] if a.serial_only else sorted({1, a.threads}):
        for fmt in a.formats.split(","):
            pipe, engine = [], []
            for _ in range(a.repeats):  # alternating, the machine's speed drifts
                pipe.append(run_pipeline(path, model, fmt, threads, out + "." + fmt))
                engine.append(run_engine(tok, lines, threads))
            p, e = statistics.median(pipe), statistics.median(engine)
            rows.append(
                {
                    "threads": threads,
                    "format": fmt,
                    "pipeline_s": pipe,
                    "engine_s": engine,
                    "pipeline_mb_s": size / MB / p,
                    "engine_mb_s": size / MB / e,
                    "ratio": e / p,
                }
            )
            print(
                f"   {threads} thread(s) {fmt:>4}: pipeline {size / MB / p:6.1f} MB/s, engine {size / MB / e:6.1f} MB/s, "
                f"pipeline/engine {e / p:.2f}",
                flush=True,
            )
    alone = {}
    if a.threads > 1 and not a.serial_only:
        for fmt in a.formats.split(","):
            walls = {1: [], a.threads: []}
            for _ in range(a.repeats):
                for t in walls:
                    walls[t].append(in_process(tok, path, fmt, out + ".alone." + fmt, t)["wall_seconds"])
            alone[fmt] = {t: statistics.median(w) for t, w in walls.items()}
    costs = {}
    serial_out = os.path.join(tempfile.mkdtemp(dir=a.serial_dir), "out") if a.serial_dir else out
    for fmt in a.formats.split(","):  # the run of median wall time among `repeats`
        runs = sorted(
            (in_process(tok, path, fmt, serial_out + "." + fmt, 1) for _ in range(a.repeats)),
            key=lambda r: r["wall_seconds"],
        )
        costs[fmt] = runs[len(runs) // 2]
    if a.serial_dir:
        subprocess.run(["rm", "-rf", os.path.dirname(serial_out)])
    subprocess.run(["rm", "-rf", work])
    report(rows, alone, costs, size, len(lines), a)


def report(rows, alone, costs, size, n_lines, a) -> None:
    L = ["# The file-to-file pipeline against the engine", ""]
    L.append(
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine.cpu_model()}, "
        f"{os.cpu_count()} cores; bytepiece-rs {machine.version_of('bytepiece-rs')}"
    )
    L.append(
        f"- input: `mix.train.txt` of the corpus{f' (first {a.mb:g} MB)' if a.mb else ''}: {size / MB:,.1f} MB, "
        f"{n_lines:,} lines; model `{a.model}`; {a.repeats} alternating runs each, medians"
    )
    L.append(
        "- pipeline: the whole `bytepiece encode FILE -m MODEL --format F -o OUT --threads T -q` process; "
        "engine: the `encode_batch_numpy(lines, num_threads=T)` call alone, lines in memory"
    )
    L.append("")
    L.append("| threads | format | pipeline MB/s | engine MB/s | pipeline / engine |")
    L.append("|---:|---|---:|---:|---:|")
    for r in rows:
        L.append(
            f"| {r['threads']} | {r['format']} | {r['pipeline_mb_s']:.1f} | {r['engine_mb_s']:.1f} | {r['ratio']:.2f} |"
        )
    by = {(r["threads"], r["format"]): r for r in rows}
    top = max((r["threads"] for r in rows), default=1)
    L.append("")
    for fmt in a.formats.split(","):
        if top > 1:
            s = by[(top, fmt)]["pipeline_mb_s"] / by[(1, fmt)]["pipeline_mb_s"]
            L.append(f"- the command `{fmt}`, {top} threads against 1: {s:.2f}x")
        if fmt in alone:
            w = alone[fmt]
            L.append(
                f"- the pipeline alone (in this process: no start, index completion or fsync) `{fmt}`, "
                f"{top} threads against 1: {w[1] / w[top]:.2f}x ({w[1]:.2f} s against {w[top]:.2f} s)"
            )
    L.append("")
    L.append("## Serial work per MB, and the ceiling it sets")
    L.append("")
    L.append(
        "| format | encode (1 core) ms/MB | read ms/MB | write ms/MB | serial ceiling MB/s | "
        "x one core | " + " | ".join(f"{c} cores MB/s" for c in CORES) + " |"
    )
    L.append("|---|---:|---:|---:|---:|---:|" + "---:|" * len(CORES))
    for fmt, c in costs.items():
        mb = c["input_bytes"] / MB
        enc, rd, wr = (1e3 * c[k] / mb for k in ("encode_seconds", "read_seconds", "write_seconds"))
        ceiling = 1e3 / max(rd, wr)
        one = 1e3 / enc
        cells = " | ".join(f"{min(n * one, ceiling):,.0f}" for n in CORES)
        L.append(f"| {fmt} | {enc:.1f} | {rd:.2f} | {wr:.2f} | {ceiling:,.0f} | {ceiling / one:,.0f} | {cells} |")
    L.append("")
    L.append(
        f"Serial costs written to `{a.serial_dir or 'the work folder'}` (memory: the pipeline's own work; "
        "a disk adds its write bandwidth as a further limit)."
    )
    L.append("")
    L.append(
        "Reading and writing each run on a thread of their own, beside the workers: on C cores the pipeline "
        "runs at about min(C x one core's encode speed, the serial ceiling), assuming the encode scales "
        "with cores (it shares nothing but the model) and the disk keeps up (page cache here)."
    )
    text = "\n".join(L) + "\n"
    machine.write_report(a.out, text, {"rows": rows, "alone": alone, "serial": costs, "bytes": size, "lines": n_lines})


if __name__ == "__main__":
    main()
