#!/usr/bin/env python3
"""CLI benchmark: `bytepiece encode` against Debian's `spm_encode` on the same files.

Both read text files (one document per line) and write the ids of each line. SentencePiece gets
the model converted by `bytepiece convert --to sentencepiece`. `spm_encode` (Debian's
sentencepiece package) has no thread option: it runs on one thread; bytepiece runs on 1 and on
N threads. Every row is one run per size, side by side, on the same files; MB/s = input bytes /
wall seconds of the whole command (process start included); peak RSS = the process' maxrss.
Several input sizes show that our memory stays bounded as the input grows.

    apt-get install sentencepiece        # spm_encode
    python3 bench/cli.py --mb 50,200     # ~5 min
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

MB = 10**6


def build_inputs(corpus: str, mb: float, workdir: str, files: int = 4) -> list:
    """`files` text files of about mb/files MB each, cut at line ends, from the corpus' train
    texts (mix.train.txt first, then the en, zh and code train texts, repeated if needed)."""
    sources = [os.path.join(corpus, f) for f in ("mix.train.txt", "en.train.txt", "zh.train.txt", "code.train.txt")]
    sources = [s for s in sources if os.path.exists(s)]
    if not sources:
        raise SystemExit(f"no corpus in {corpus}: build it with shared/corpus/build_corpus.sh")
    want = int(mb * MB)
    chunks, got = [], 0
    while got < want:  # whole sources in turn, repeated if needed, then cut at a line end
        for s in sources:
            with open(s, "rb") as f:
                data = f.read(want - got + 1_000_000)
            chunks.append(data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1])
            got += len(chunks[-1])
            if got >= want:
                break
    blob = b"".join(chunks)
    blob = blob[: blob.find(b"\n", want - 1) + 1 or len(blob)]
    paths, per = [], len(blob) // files + 1
    start = 0
    for i in range(files):
        end = min(len(blob), start + per)
        end = blob.find(b"\n", end - 1) + 1 if end < len(blob) else end
        path = os.path.join(workdir, f"input.{mb:g}MB.{i}.txt")
        with open(path, "wb") as f:
            f.write(blob[start:end])
        paths.append(path)
        start = end
    return paths


def timed(cmd, stdin=None, stdout=None) -> dict:
    """Runs `cmd` under GNU time (so that the peak RSS is the command's own, not that of this
    process forked before exec); wall seconds and the peak RSS (MiB)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE
        )
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
        return {"s": wall, "rss_mib": int(rss.read().split()[-1]) / 1024}


def run_spm(model: str, paths: list, out: str) -> dict:
    """spm_encode on each file in turn (it takes one input), appending to `out`."""
    total = {"s": 0.0, "rss_mib": 0.0}
    with open(out, "wb") as f:
        for p in paths:
            with open(p, "rb") as src:
                r = timed(["spm_encode", "--model", model, "--output_format", "id"], stdin=src, stdout=f)
            total["s"] += r["s"]
            total["rss_mib"] = max(total["rss_mib"], r["rss_mib"])
    return total


def run_ours(paths: list, out: str, fmt: str, threads: int) -> dict:
    exe = shutil.which("bytepiece") or sys.executable
    cmd = [exe] if exe != sys.executable else [exe, "-m", "bytepiece_rs"]
    return timed(cmd + ["encode", *paths, "-o", out, "--format", fmt, "--threads", str(threads), "-q"])


def same_lines(a: str, b: str) -> tuple:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        la, lb = fa.read().split(b"\n"), fb.read().split(b"\n")
    return sum(x == y for x, y in zip(la, lb)), max(len(la), len(lb)) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    machine.add_corpus_argument(ap)
    ap.add_argument("--mb", default="50,200", help="comma list of input sizes in MB (default 50,200)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cli.md"))
    a = ap.parse_args()
    if not shutil.which("spm_encode"):
        raise SystemExit("spm_encode not found: apt-get install sentencepiece")
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("GNU time not found: apt-get install time")
    work = a.workdir or tempfile.mkdtemp(prefix="bytepiece-cli-bench-")
    os.makedirs(work, exist_ok=True)
    import bytepiece_rs

    model = os.path.join(work, "default.spm.model")
    bytepiece_rs.Tokenizer().convert_to_sentencepiece(model)
    rows = []
    for mb in [float(x) for x in a.mb.split(",")]:
        paths = build_inputs(a.corpus, mb, work)
        size = sum(os.path.getsize(p) for p in paths)
        print(f"== {size / MB:,.1f} MB in {len(paths)} files", flush=True)
        spm_out = os.path.join(work, "spm.ids")
        runs = {"spm_encode, 1 thread (ids)": run_spm(model, paths, spm_out)}
        ours_ids = os.path.join(work, "ours.ids")
        for threads in sorted({1, a.threads}):
            runs[f"bytepiece encode, {threads} thread{'s' * (threads > 1)} (ids)"] = run_ours(
                paths, ours_ids, "ids", threads
            )
            runs[f"bytepiece encode, {threads} thread{'s' * (threads > 1)} (bin)"] = run_ours(
                paths, os.path.join(work, "ours.bin"), "bin", threads
            )
        same, lines = same_lines(spm_out, ours_ids)
        for name, r in runs.items():
            r["mb_s"] = size / MB / r["s"]
            print(f"   {name:<36} {r['s']:7.2f} s {r['mb_s']:7.2f} MB/s  peak RSS {r['rss_mib']:,.0f} MiB", flush=True)
        rows.append({"mb": size / MB, "files": len(paths), "runs": runs, "same_lines": same, "lines": lines})
        for p in paths:
            os.remove(p)
    write_report(rows, a)
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


def spm_version() -> str:
    r = subprocess.run(["spm_encode", "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip() or "sentencepiece"


def write_report(rows, a) -> None:
    L = ["# CLI benchmark: `bytepiece encode` against `spm_encode`", ""]
    L.append(
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine.cpu_model()}, "
        f"{os.cpu_count()} cores; bytepiece-rs {machine.version_of('bytepiece-rs')}, "
        f"spm_encode: Debian's {spm_version()}"
    )
    L.append(
        "- model: the bundled default (63,956 ids), converted with `bytepiece convert --to sentencepiece`; "
        "input: text files of the real corpus (one document per line), cut into 4 files per size"
    )
    L.append(
        "- MB/s: input bytes / wall time of the command (process start included); peak RSS: GNU time's maximum resident set size"
    )
    L.append("")
    L.append("| input | command | time (s) | MB/s | × spm_encode | peak RSS (MiB) |")
    L.append("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        spm = row["runs"]["spm_encode, 1 thread (ids)"]
        for name, r in row["runs"].items():
            L.append(
                f"| {row['mb']:,.0f} MB | {name} | {r['s']:.2f} | {r['mb_s']:.2f} | {r['mb_s'] / spm['mb_s']:.2f} | {r['rss_mib']:,.0f} |"
            )
    L.append("")
    for row in rows:
        L.append(
            f"- {row['mb']:,.0f} MB: {row['same_lines']:,} of {row['lines']:,} lines have the same ids in both "
            "(the others: ties broken differently and pieces that are not valid UTF-8, see docs/tools.md, Conversions)"
        )
    text = "\n".join(L) + "\n"
    machine.write_report(a.out, text, rows)


if __name__ == "__main__":
    main()
