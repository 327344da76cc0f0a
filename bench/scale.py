#!/usr/bin/env python3
"""Scale benchmark: training time, peak memory and held-out compression against corpus size,
on one machine and on a local Dask cluster, and a projection to 100 GB and 1 TB of text.

One command, three parts (each trainer runs in its own subprocess, measured by common.py):

1. Single-machine sweep over --sizes (MB of text; default 25, 100, 325, 1000): bytepiece-rs
   (ours), ours with a memory bound (`max_memory_mb`, when the installed Trainer has it),
   ours stage by stage (the stage functions of bytepiece_rs.distributed called one after the
   other on shards of the same text: time, memory and table size of each stage), SentencePiece
   BPE with its default settings and with its high-compression ones (no split at whitespace,
   pieces up to 36 bytes), and HF tokenizers BPE where it fits in memory. Held-out bytes/token
   for zh, en and code, per line and per document.
2. Dask sweep: train_distributed on a LocalCluster (127.0.0.1, no dashboard) with 1 and 2
   worker processes of 1 thread, against one process with 2 threads on the same shard files.
3. Projection: per-byte costs and table sizes fitted on the measurements, projected to 100 GB
   and 1 TB on 8, 64 and 512 workers.

Text: X MB = a prefix (cut at a document end) of the zh, en and code training documents of the
corpus (shared/corpus/build_corpus.sh; --corpus, default $BYTEPIECE_CORPUS) interleaved so that
every prefix keeps the three languages' shares of the whole; all of them (~325 MB) are the
zh + en + code train files; past that the Linux kernel sources of shared/corpus/build_large.sh
(--large DIR holding kernel.txt) are appended, distinct real text, never repeated text.

    python3 bench/scale.py --quick                # smoke test: 2 and 5 MB, a few minutes
    python3 bench/scale.py --large DIR            # the full run (hours; see bench/README.md)

Writes --out (default bench/SCALE.md), results/scale.json and plots/scale-*.png beside it.
Exit status: 0; 1 if a run failed; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime
import inspect
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import (  # noqa: E402 (bench/ is put on the path first)
    MB,
    OURS_TEXT_UNIT,
    evaluate,
    fmt_mb,
    fmt_s,
    jsonl_texts,
    longest_line,
    meminfo,
    ratio,
    reset_hwm,
    rss_hwm,
    run_job,
    run_training,
    train_job,
)
from machine import add_corpus_argument, describe, loadavg, take_capped, version_of, wait_idle  # noqa: E402

LANGS = ("zh", "en", "code")
HELD = tuple(f"{lang}/{unit}" for unit in ("line", "doc") for lang in LANGS)
GB = 1e9

#: The runs of the single-machine sweep: trainer of common.py, title, extra arguments.
PEERS = {
    "ours": {"trainer": "ours", "title": "bytepiece-rs (ours)"},
    "ours-mem": {"trainer": "ours", "title": "bytepiece-rs, max_memory_mb={mem}"},
    "ours-stages": {"trainer": None, "title": "bytepiece-rs stage by stage ({shards} shards)"},
    "spm-bpe": {"trainer": "spm-bpe", "title": "SentencePiece BPE (default)"},
    "spm-bpe-hc": {
        "trainer": "spm-bpe",
        "title": "SentencePiece BPE (high compression)",
        "spm_args": {"split_by_whitespace": False, "max_sentencepiece_length": 36},
    },
    "hf-bpe": {"trainer": "hf-bpe", "title": "HF tokenizers BPE"},
}
BASE = "spm-bpe"  # the ratios are against this run
DASK_RUNS = ("single", "dask-1", "dask-2", "dask-2-mem")

# Figures reported by others, quoted in the projection (not measured here).
ORIGINAL_REPORTED = (13 * GB, 51 * GB)  # the original BytePiece: 51 GB of RAM for 13 GB of text
SPM_REPORTED = 384 * GB  # SentencePiece: 384 GB of RAM quoted for its large runs


def log(msg):
    print(msg, flush=True)


def title(peer, a):
    return PEERS[peer]["title"].format(mem=a.max_memory_mb, shards=a.shards)


# --------------------------------------------------------------------------- text


def _doc_lengths(corpus, lang):
    """UTF-8 lengths (+ 1 for the newline) of the training documents of `lang`, in file order."""
    lens = [len(t.encode("utf-8")) + 1 for t in jsonl_texts(os.path.join(corpus, f"{lang}.train.jsonl"))]
    size = os.path.getsize(os.path.join(corpus, f"{lang}.train.txt"))
    if sum(lens) != size:
        raise SystemExit(f"{lang}.train.jsonl and {lang}.train.txt disagree ({sum(lens)} against {size} bytes)")
    return lens


def write_interleaved(corpus, out):
    """Writes every zh, en and code training document to `out`, interleaved greedily in
    proportion to each language's total size (always the language furthest below its share),
    so that every prefix has about the languages' shares of the whole. Returns the offsets at
    which documents end and the bytes per language."""
    lens = {lang: _doc_lengths(corpus, lang) for lang in LANGS}
    total = {lang: sum(v) for lang, v in lens.items()}
    pos = dict.fromkeys(LANGS, 0)
    got = dict.fromkeys(LANGS, 0)
    ends, at = [], 0
    with contextlib.ExitStack() as stack:
        files = {lang: stack.enter_context(open(os.path.join(corpus, f"{lang}.train.txt"), "rb")) for lang in LANGS}
        f = stack.enter_context(open(out, "wb"))
        while True:
            left = [lang for lang in LANGS if pos[lang] < len(lens[lang])]
            if not left:
                break
            lang = min(left, key=lambda k: (got[k] / total[k], k))
            n = lens[lang][pos[lang]]
            f.write(files[lang].read(n))
            pos[lang] += 1
            got[lang] += n
            at += n
            ends.append(at)
    return ends, total


def _copy_prefix(src, dst, n, mode="wb"):
    with open(src, "rb") as fi, open(dst, mode) as fo:
        left = n
        while left > 0:
            block = fi.read(min(left, 16 << 20))
            if not block:
                break
            fo.write(block)
            left -= len(block)


def _line_end_before(path, n):
    """The largest offset <= n of `path` just after a newline (n itself if the file is shorter)."""
    if os.path.getsize(path) <= n:
        return os.path.getsize(path)
    with open(path, "rb") as f:
        start = max(0, n - (1 << 20))
        f.seek(start)
        block = f.read(n - start)
    i = block.rfind(b"\n")
    return start + i + 1 if i >= 0 else 0


def build_texts(a, workdir):
    """One training file per size (nested prefixes; a size within 1 % of the corpus' whole
    training text is all of it). Returns {size: info}, notes, and the corpus' sizes."""
    base = os.path.join(workdir, "corpus.zh-en-code.txt")
    log("== interleaving the zh, en and code training documents ...")
    ends, per_lang = write_interleaved(a.corpus, base)
    total = ends[-1]
    kernel = os.path.join(a.large, "kernel.txt") if a.large else None
    out, notes = {}, []
    for s in a.sizes:
        want = int(s * MB)
        path = os.path.join(workdir, f"train.{s:g}MB.txt")
        info = {"path": path, "kernel_bytes": 0}
        if abs(want - total) <= 0.01 * total:  # "325 MB": the zh + en + code training files, all of them
            shutil.copyfile(base, path)
        elif want <= total:
            n = ends[bisect.bisect_right(ends, want) - 1] if want >= ends[0] else ends[0]
            _copy_prefix(base, path, n)
        else:
            if not kernel or not os.path.exists(kernel):
                notes.append(
                    f"{s:g} MB not run: more than the {total / MB:.0f} MB of the corpus and no kernel.txt "
                    f"(build it with shared/corpus/build_large.sh DIR and pass --large DIR)"
                )
                continue
            k = _line_end_before(kernel, want - total)
            shutil.copyfile(base, path)
            _copy_prefix(kernel, path, k, mode="ab")
            info["kernel_bytes"] = k
            if total + k < want * 0.98:
                notes.append(f"{s:g} MB: only {(total + k) / MB:.0f} MB of text (corpus + kernel.txt)")
        info["bytes"] = os.path.getsize(path)
        info["longest_line_bytes"] = longest_line(path)
        out[s] = info
        log(
            f"   {s:g} MB: {info['bytes']:,} bytes (kernel sources {info['kernel_bytes']:,}), "
            f"longest line {info['longest_line_bytes']:,} bytes"
        )
    os.remove(base)
    return out, notes, {"corpus_bytes": total, "per_language": per_lang}


def write_shards(path, k, outdir):
    """Cuts `path` into `k` files of about equal size, each ending at a line end (at a blank
    line where one is near). Returns their paths."""
    os.makedirs(outdir, exist_ok=True)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        data_at = 0
        shards = []
        for i in range(k):
            target = size * (i + 1) // k
            if i == k - 1:
                n = size - data_at
            else:
                f.seek(data_at)
                chunk = f.read(target - data_at)
                j = chunk.rfind(b"\n\n", len(chunk) // 2)
                j = j + 2 if j >= 0 else chunk.rfind(b"\n") + 1
                n = j if j > 0 else len(chunk)
            out = os.path.join(outdir, f"shard-{i:03d}.txt")
            f.seek(data_at)
            with open(out, "wb") as fo:
                left = n
                while left > 0:
                    block = f.read(min(left, 16 << 20))
                    fo.write(block)
                    left -= len(block)
            data_at += n
            shards.append(out)
    return shards


def load_held_out(corpus, cap_mb):
    """Per language: the lines of {lang}.test.txt (each its own text, without its newline) and
    the documents of {lang}.test.jsonl, each set capped at cap_mb MB."""
    cap = float("inf") if cap_mb is None else cap_mb * MB
    held = {}
    for lang in LANGS:
        with open(os.path.join(corpus, f"{lang}.test.txt"), encoding="utf-8") as f:
            held[f"{lang}/line"] = take_capped((line.rstrip("\n") for line in f), cap)
        held[f"{lang}/doc"] = take_capped(jsonl_texts(os.path.join(corpus, f"{lang}.test.jsonl")), cap)
    return held


# --------------------------------------------------------------------------- subprocess bodies


def _stage(stages, name, fn, **info):
    """Runs one stage in this process: wall and CPU time, and its peak RSS (VmHWM reset first)."""
    reset_hwm()
    c0, t0 = os.times(), time.perf_counter()
    out = fn()
    c1 = os.times()
    rec = {
        "stage": name,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": (c1.user - c0.user) + (c1.system - c0.system),
        "peak_rss": rss_hwm(os.getpid())[1],
    }
    rec.update(info)
    if isinstance(out, bytes):
        rec["out_bytes"] = len(out)
    stages.append(rec)
    return out


def stages_main(job):
    """The stages of training one after the other on the shards, in this process, with the
    stage functions of bytepiece_rs.distributed (what its Dask tasks run)."""
    from bytepiece_rs.distributed import (
        count_ngrams,
        count_pieces,
        merge_counts,
        ngram_model_table,
        prune_counts,
    )

    args, threads, fan_in = job["trainer_args"], job["threads"], job["fan_in"]
    stages = []
    t0 = time.perf_counter()

    def merge_levels(tables, kind, covered):
        """train_distributed's merges: levels of fan_in tables until at most fan_in are left."""
        level = 0
        while len(tables) > fan_in:
            nxt, cov = [], []
            for i in range(0, len(tables), fan_in):
                group = tables[i : i + fan_in]
                nxt.append(
                    _stage(
                        stages,
                        f"merge-{kind}",
                        lambda g=group: merge_counts(*g),
                        level=level,
                        in_bytes=sum(map(len, group)),
                        covers_bytes=sum(covered[i : i + fan_in]),
                    )
                )
                cov.append(sum(covered[i : i + fan_in]))
            tables, covered = nxt, cov
            level += 1
        return tables

    sizes = [os.path.getsize(s) for s in job["shards"]]
    unit = OURS_TEXT_UNIT
    tables = [
        _stage(stages, "ngrams", lambda s=s: count_ngrams(s, args, threads=threads, text_unit=unit), shard_bytes=n)
        for s, n in zip(job["shards"], sizes)
    ]
    last_ngrams = merge_levels(tables, "ngrams", sizes)
    del tables
    # the last merge prunes as it merges
    model = _stage(stages, "model", lambda: ngram_model_table(last_ngrams, args), in_bytes=sum(map(len, last_ngrams)))
    # the first task of a process also builds the n-gram model from the table (once)
    tables = [
        _stage(
            stages, "pieces", lambda s=s: count_pieces(s, model, args, threads=threads, text_unit=unit), shard_bytes=n
        )
        for s, n in zip(job["shards"], sizes)
    ]
    last_pieces = merge_levels(tables, "pieces", sizes)
    del tables
    # the client merges the last piece tables as it prunes them
    trainer = _stage(
        stages, "prune", lambda: prune_counts(last_pieces, args, threads=threads), in_bytes=sum(map(len, last_pieces))
    )
    trainer.save(job["model"])
    train_s = time.perf_counter() - t0
    # for the projection, not part of the training: one merge task of each kind, on the last tables
    for kind, last in (("ngrams", last_ngrams), ("pieces", last_pieces)):
        _stage(stages, f"probe-merge-{kind}", lambda g=last: merge_counts(*g), in_bytes=sum(map(len, last)))
    res = {
        "train_s": train_s,
        "stages": stages,
        "hwm_self": rss_hwm(os.getpid())[1],
        "model_bytes": os.path.getsize(job["model"]),
    }
    with open(job["result"], "w") as f:
        json.dump(res, f)


def _worker_memory():
    """(VmRSS, VmHWM) of the process it runs in (sent to Dask workers: no imports of ours)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def _worker_sent(dask_worker):
    return getattr(dask_worker, "transfer_outgoing_bytes_total", None)


def dask_main(job):
    """train_distributed on a LocalCluster of job["workers"] processes x 1 thread; this
    process is the client (it also prunes the merged piece table)."""
    from bytepiece_rs.distributed import train_distributed
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=job["workers"],
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.WARNING,
    )
    client = Client(cluster)
    res = {"cluster_start_s": time.perf_counter() - t0}
    try:
        res["worker_rss_before"] = max(m["VmRSS"] for m in client.run(_worker_memory).values())
        res["client_rss_before"] = rss_hwm(os.getpid())[0]
        reset_hwm()
        c0, t1 = os.times(), time.perf_counter()
        trainer = train_distributed(
            client,
            job["shards"],
            threads=1,
            fan_in=job["fan_in"],
            text_unit=OURS_TEXT_UNIT,
            **job["trainer_args"],
            **job.get("bound", {}),
        )
        trainer.save(job["model"])
        c1 = os.times()
        res["train_s"] = time.perf_counter() - t1
        res["client_cpu_s"] = (c1.user - c0.user) + (c1.system - c0.system)
        res["client_peak_rss"] = rss_hwm(os.getpid())[1]
        mem = client.run(_worker_memory)
        res["worker_peak_rss"] = max(m["VmHWM"] for m in mem.values())
        res["workers_seen"] = len(mem)
        sent = client.run(_worker_sent)
        res["worker_sent_bytes"] = None if None in sent.values() else sum(sent.values())
        res["model_bytes"] = os.path.getsize(job["model"])
    finally:
        client.close()
        cluster.close()
    with open(job["result"], "w") as f:
        json.dump(res, f)


def run_sub(kind, job, log_path, a):
    """Runs stages_main or dask_main in a subprocess (common.run_job)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.workers))
    return run_job(
        [sys.executable, os.path.abspath(__file__), f"--_{kind}"],
        job,
        log_path,
        env=env,
        timeout=a.timeout,
        poll=a.poll,
        min_available_mb=a.min_available_mb,
    )


# --------------------------------------------------------------------------- sweeps


def trainer_args(a):
    return {
        "order": a.order,
        "max_vocab_size": a.vocab,
        "min_count": a.min_count,
        "max_piece_length": a.max_piece_length,
    }


def _job(a, trainer, files, model, result, max_line, **extra):
    return train_job(
        trainer,
        files,
        model,
        result,
        workers=a.workers,
        vocab=a.vocab,
        order=a.order,
        min_count=a.min_count,
        max_piece_length=a.max_piece_length,
        max_line=max_line,
        **extra,
    )


def predicted_peak(done, size):
    """Peak memory at `size` extrapolated (power law) from the successful runs `done` of one
    peer at smaller sizes: {size: peak bytes}; None without any."""
    pts = sorted((s, p) for s, p in done.items() if s < size and p)
    if not pts:
        return None
    if len(pts) == 1:
        return pts[0][1] * size / pts[0][0]
    (s0, p0), (s1, p1) = pts[-2], pts[-1]
    b = max(0.5, math.log(p1 / p0) / math.log(s1 / s0))
    return p1 * (size / s1) ** b


def run_one(peer, size, info, a, workdir, rep):
    spec = PEERS[peer]
    tag = f"{peer}.{size:g}MB.r{rep}"
    base = os.path.join(workdir, tag)
    rec = {"peer": peer, "size_mb": size, "train_bytes": info["bytes"], "repeat": rep}
    if a.wait_idle > 0:
        rec["others_cpu_before"] = wait_idle(a.wait_idle)
    rec["load_before"] = loadavg()
    if peer == "ours-stages":
        shards = write_shards(info["path"], a.shards, os.path.join(workdir, f"shards.{size:g}MB"))
        job = {
            "shards": shards,
            "trainer_args": trainer_args(a),
            "threads": a.workers,
            "fan_in": a.fan_in,
            "model": base + ".json",
            "result": base + ".result.json",
        }
        rec.update(run_sub("stages", job, base + ".log", a))
        rec["model"] = job["model"]
        shutil.rmtree(os.path.dirname(shards[0]), ignore_errors=True)
        return rec
    ext = ".model" if spec["trainer"].startswith("spm-") else ".json"
    extra = {}
    if peer == "ours-mem":
        extra["ours_args"] = {"max_memory_mb": a.max_memory_mb}
    if "spm_args" in spec:
        extra["spm_args"] = spec["spm_args"]
    job = _job(a, spec["trainer"], info["path"], base + ext, base + ".result.json", info["longest_line_bytes"], **extra)
    rec.update(run_training(job, base + ".log", timeout=a.timeout, poll=a.poll, min_available_mb=a.min_available_mb))
    rec["model"] = job["model"]
    return rec


def single_machine_sweep(a, texts, held, workdir, skipped):
    runs, evals = [], {}
    peaks = {p: {} for p in a.peers}
    for size in a.sizes:
        if size not in texts:
            continue
        for rep in range(a.repeat):
            for peer in a.peers:  # interleaved: each peer once per round
                if size > a.max_peer_mb.get(peer, float("inf")):
                    skipped.setdefault((peer, size), f"--max-peer-mb {peer}={a.max_peer_mb[peer]:g}")
                    continue
                if (peer, size) in skipped:
                    continue
                pred, avail = predicted_peak(peaks[peer], size), meminfo().get("MemAvailable", 0)
                if pred and pred > 0.85 * avail:
                    skipped[(peer, size)] = (
                        f"would not fit: {pred / 2**30:.1f} GiB predicted from the smaller "
                        f"sizes, {avail / 2**30:.1f} GiB available"
                    )
                    log(f"== {title(peer, a)}, {size:g} MB: skipped ({skipped[(peer, size)]})")
                    continue
                log(f"== {title(peer, a)}, {size:g} MB" + (f" (round {rep + 1}/{a.repeat})" if a.repeat > 1 else ""))
                try:
                    r = run_one(peer, size, texts[size], a, workdir, rep)
                except Exception:  # noqa: BLE001 - reported in the results
                    r = {
                        "peer": peer,
                        "size_mb": size,
                        "ok": False,
                        "error": "benchmark error",
                        "log_tail": traceback.format_exc(),
                    }
                runs.append(r)
                if not r["ok"]:
                    log(f"   FAILED: {r['error']}\n{r.get('log_tail', '')}")
                    skipped[(peer, size)] = f"failed: {r['error']}"
                    continue
                peaks[peer][size] = max(peaks[peer].get(size, 0), r["peak_rss_tree"])
                log(
                    f"   {r['train_s']:.2f} s, peak RSS {fmt_mb(r['peak_rss_tree'])} MiB, "
                    f"others' CPU {100 * r['others_cpu']:.0f}%"
                )
                kind = PEERS[peer]["trainer"]
                if kind and (peer, size) not in evals:
                    try:
                        evals[(peer, size)] = evaluate(kind, r["model"], held, a.workers, HELD)
                        e = evals[(peer, size)]
                        log(
                            "   bytes/token per doc "
                            + " / ".join(f"{e[f'{x}/doc']['bytes_per_token']:.3f}" for x in LANGS)
                            + ", per line "
                            + " / ".join(f"{e[f'{x}/line']['bytes_per_token']:.3f}" for x in LANGS)
                            + f" (zh/en/code; evaluated in {e['eval_s']:.0f} s)"
                        )
                    except Exception:  # noqa: BLE001
                        evals[(peer, size)] = {"error": traceback.format_exc()}
                        log(evals[(peer, size)]["error"])
        for p in a.peers:
            for rep in range(a.repeat):
                path = os.path.join(workdir, f"{p}.{size:g}MB.r{rep}")
                for ext in (".json", ".model", ".vocab"):
                    if rep < a.repeat - 1 and os.path.exists(path + ext):
                        os.remove(path + ext)
    return runs, evals


def same_bytes(x, y):
    try:
        with open(x, "rb") as f, open(y, "rb") as g:
            return f.read() == g.read()
    except OSError:
        return None


def dask_sweep(a, texts, workdir):
    size = a.dask_mb
    if size not in texts:
        return {"error": f"no training text of {size:g} MB (--dask-mb must be one of --sizes)"}
    shards = write_shards(texts[size]["path"], a.shards, os.path.join(workdir, "dask-shards"))
    out = {
        "size_mb": size,
        "bytes": texts[size]["bytes"],
        "shards": len(shards),
        "shard_bytes": [os.path.getsize(s) for s in shards],
        "runs": [],
    }
    max_line = max(longest_line(s) for s in shards)
    for rep in range(a.repeat):
        for name in DASK_RUNS:
            base = os.path.join(workdir, f"dask.{name}.r{rep}")
            log(
                f"== {name}, {size:g} MB in {len(shards)} shards"
                + (f" (round {rep + 1}/{a.repeat})" if a.repeat > 1 else "")
            )
            if name == "single":
                job = _job(a, "ours", shards, base + ".json", base + ".result.json", max_line)
                r = run_training(
                    job, base + ".log", timeout=a.timeout, poll=a.poll, min_available_mb=a.min_available_mb
                )
            else:
                job = {
                    "shards": shards,
                    "workers": int(name.split("-")[1]),
                    "trainer_args": trainer_args(a),
                    "fan_in": a.fan_in,
                    "model": base + ".json",
                    "result": base + ".result.json",
                    "bound": {"max_memory_mb": a.max_memory_mb} if name.endswith("-mem") else {},
                }
                r = run_sub("dask", job, base + ".log", a)
            r.update({"run": name, "repeat": rep, "model": job["model"]})
            if r["ok"]:
                log(
                    f"   {r['train_s']:.2f} s, peak RSS of the tree {fmt_mb(r['peak_rss_tree'])} MiB"
                    + (
                        f", worker peak {fmt_mb(r['worker_peak_rss'])} MiB, client peak {fmt_mb(r['client_peak_rss'])} MiB"
                        if name != "single"
                        else ""
                    )
                )
            else:
                log(f"   FAILED: {r['error']}\n{r.get('log_tail', '')}")
            out["runs"].append(r)
    ref = next((r["model"] for r in out["runs"] if r["run"] == "single" and r["ok"]), None)
    for r in out["runs"]:
        r["same_model_as_single"] = same_bytes(r["model"], ref) if r["ok"] and ref else None
    shutil.rmtree(os.path.dirname(shards[0]), ignore_errors=True)
    return out


# --------------------------------------------------------------------------- projection


def fit_power(points):
    """Least-squares fit of y = c * x^b on log-log axes; (c, b), or None with < 2 points."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return math.exp(my - b * mx), b


def power(f, x):
    return None if f is None else f[0] * x ** f[1]


def projection(a, runs):
    """The cost model fitted on the stage-by-stage runs, and its projection (see the report)."""
    st = [r for r in runs if r["peer"] == "ours-stages" and r["ok"]]
    if not st:
        return None
    m = {"points": []}
    tables = {"ngrams": [], "pieces": [], "model": []}
    rates = {}
    for r in sorted(st, key=lambda r: r["train_bytes"]):
        n = r["train_bytes"]
        by = {}
        for s in r["stages"]:
            by.setdefault(s["stage"], []).append(s)
            if s["stage"] in ("ngrams", "pieces"):
                tables[s["stage"]].append((s["shard_bytes"], s["out_bytes"]))
            elif s["stage"].startswith("merge-"):
                tables[s["stage"][6:]].append((s["covers_bytes"], s["out_bytes"]))
            elif s["stage"].startswith("probe-merge-"):  # a merge of the whole corpus' tables
                tables[s["stage"][12:]].append((n, s["out_bytes"]))
            elif s["stage"] == "model":
                tables["model"].append((n, s["out_bytes"]))
        cpu = {k: sum(s["cpu_s"] for s in v) for k, v in by.items()}
        point = {
            "bytes": n,
            "cpu_s": cpu,
            "merge_in_bytes": {
                k: sum(s["in_bytes"] for s in by.get(f"merge-{k}", []) + by[f"probe-merge-{k}"])
                for k in ("ngrams", "pieces")
            },
            "last_pieces_bytes": by["prune"][0]["in_bytes"],
            "last_ngrams_bytes": by["model"][0]["in_bytes"],
            "prune_wall_s": by["prune"][0]["wall_s"],
            "prune_peak_rss": by["prune"][0]["peak_rss"],
            "count_peak_rss": max(s["peak_rss"] for s in by["ngrams"] + by["pieces"]),
            "shard_bytes": max(s["shard_bytes"] for s in by["ngrams"]),
        }
        m["points"].append(point)
    big = m["points"][-1]
    rates["ngrams"] = big["cpu_s"]["ngrams"] / big["bytes"]
    rates["pieces"] = big["cpu_s"]["pieces"] / big["bytes"]
    for k in ("ngrams", "pieces"):
        merge_cpu = big["cpu_s"].get(f"merge-{k}", 0) + big["cpu_s"][f"probe-merge-{k}"]
        rates[f"merge-{k}"] = merge_cpu / big["merge_in_bytes"][k]
    rates["model"] = big["cpu_s"]["model"] / big["last_ngrams_bytes"]
    m["rates"] = rates
    m["exponents"] = {
        k: (fit_power([(p["bytes"], p["cpu_s"][k]) for p in m["points"]]) or (None, None))[1]
        for k in ("ngrams", "pieces", "prune")
    }
    m["fits"] = {
        "ngram_table": fit_power(tables["ngrams"]),
        "piece_table": fit_power(tables["pieces"]),
        "model_table": fit_power(tables["model"]),
        "prune_s": fit_power([(p["last_pieces_bytes"], p["prune_wall_s"]) for p in m["points"]]),
        "prune_rss": fit_power([(p["last_pieces_bytes"], p["prune_peak_rss"]) for p in m["points"]]),
        "count_rss": fit_power([(p["shard_bytes"], p["count_peak_rss"]) for p in m["points"]]),
    }
    single = {}
    for peer in ("ours", "spm-bpe", "spm-bpe-hc", "hf-bpe", "ours-mem"):
        pts_t = [(r["train_bytes"], r["train_s"]) for r in runs if r["peer"] == peer and r["ok"]]
        pts_m = [(r["train_bytes"], r["peak_rss_tree"]) for r in runs if r["peer"] == peer and r["ok"]]
        single[peer] = {"time": fit_power(pts_t), "memory": fit_power(pts_m)}
    m["single"] = single
    f = m["fits"]
    if None in (f["ngram_table"], f["piece_table"], f["model_table"], f["prune_s"], f["prune_rss"]):
        m["rows"] = []
        return m
    F, s = a.fan_in, a.project_shard_gb * GB
    rows = []
    for n in (100 * GB, 1000 * GB):
        k = max(1, math.ceil(n / s))
        for w in (8, 64, 512):
            row = {"bytes": n, "workers": w, "shards": k}
            waves = math.ceil(k / w)
            row["count_ngrams_s"] = waves * rates["ngrams"] * s
            row["count_pieces_s"] = waves * rates["pieces"] * s
            for kind, fit in (("ngrams", f["ngram_table"]), ("pieces", f["piece_table"])):
                t = shipped = largest = 0.0
                tasks, cover = k, s
                while tasks > F:
                    groups = math.ceil(tasks / F)
                    size_in = power(fit, cover)
                    t += math.ceil(groups / w) * rates[f"merge-{kind}"] * F * size_in
                    shipped += tasks * size_in
                    largest = max(largest, F * size_in + power(fit, min(cover * F, n)))
                    tasks, cover = groups, cover * F
                # the last (at most F) tables: merged by the model task, or by the client as it prunes
                last = tasks * power(fit, min(cover, n))
                row[f"merge_{kind}_s"] = t
                row[f"shipped_{kind}"] = shipped + last
                row[f"last_{kind}_bytes"] = last
                row[f"largest_merge_{kind}"] = largest
            row["model_table_bytes"] = power(f["model_table"], n)
            row["model_s"] = rates["model"] * row["last_ngrams_bytes"]
            row["shipped_model"] = min(w, k) * row["model_table_bytes"]
            row["client_prune_s"] = power(f["prune_s"], row["last_pieces_bytes"])
            row["client_rss"] = power(f["prune_rss"], row["last_pieces_bytes"])
            row["total_s"] = sum(
                row[x]
                for x in (
                    "count_ngrams_s",
                    "merge_ngrams_s",
                    "model_s",
                    "count_pieces_s",
                    "merge_pieces_s",
                    "client_prune_s",
                )
            )
            row["worker_rss"] = max(
                power(f["count_rss"], s) or 0,
                row["last_ngrams_bytes"] + row["model_table_bytes"],
                row["largest_merge_ngrams"],
                row["largest_merge_pieces"],
            )
            rows.append(row)
    m["rows"] = rows
    return m


# --------------------------------------------------------------------------- report


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, evals):
    """{(peer, size): {time, peak, runs, eval}} over the repeats: median time, largest peak."""
    out = {}
    for r in runs:
        if not r["ok"]:
            continue
        k = (r["peer"], r["size_mb"])
        s = out.setdefault(k, {"times": [], "peaks": [], "others": []})
        s["times"].append(r["train_s"])
        s["peaks"].append(r["peak_rss_tree"])
        s["others"].append(r["others_cpu"])
    for k, s in out.items():
        s["time"], s["peak"] = med(s["times"]), max(s["peaks"])
        s["eval"] = evals.get(k)
    return out


def bpt_all(e, unit):
    if not e or "error" in e:
        return None
    b = sum(e[f"{x}/{unit}"]["bytes"] for x in LANGS)
    t = sum(e[f"{x}/{unit}"]["tokens"] for x in LANGS)
    return b / t if t else None


def fmt_bpt(v):
    return "—" if v is None else f"{v:.3f}"


def fmt_x(v):
    return "—" if v is None else f"{v:.2f}×"


def fmt_gb(b):
    if b is None:
        return "—"
    return f"{b / GB:,.1f} GB" if b >= 0.1 * GB else f"{b / 1e6:,.0f} MB"


def fmt_h(s):
    if s is None:
        return "—"
    return f"{s / 3600:,.1f} h" if s >= 3600 else f"{s / 60:,.1f} min" if s >= 60 else f"{s:.0f} s"


def plots(a, summary, dask, plot_dir, prefix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    os.makedirs(plot_dir, exist_ok=True)
    plain = FuncFormatter(lambda v, _: f"{v:,.4g}")
    colors = {p: f"C{i}" for i, p in enumerate(PEERS)}
    sizes = sorted({s for _, s in summary})
    paths = []
    for what, key, unit, scale in (
        ("time", "time", "training time (s)", 1),
        ("memory", "peak", "peak RSS of the process tree (MiB)", 2**20),
    ):
        fig, ax = plt.subplots(figsize=(10, 4.8))
        for peer in a.peers:
            pts = sorted((s, v[key] / scale) for (p, s), v in summary.items() if p == peer and v.get(key))
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colors[peer], label=title(peer, a))
        if dask and dask.get("runs"):
            for name, marker in zip(DASK_RUNS[1:], ("s", "D", "^")):
                ok = [r for r in dask["runs"] if r["run"] == name and r["ok"]]
                if ok:
                    y = (
                        med([r["train_s"] for r in ok])
                        if key == "time"
                        else max(r["peak_rss_tree"] for r in ok) / scale
                    )
                    n = int(name.split("-")[1])
                    bound = f", max_memory_mb={a.max_memory_mb}" if name.endswith("-mem") else ""
                    ax.plot(
                        [dask["size_mb"]],
                        [y],
                        marker=marker,
                        color="black",
                        linestyle="none",
                        fillstyle="none",
                        markersize=8,
                        label=f"Dask, {n} worker{'s' if n > 1 else ''} × 1 thread, {dask['shards']} shards{bound}",
                    )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training text (MB; log scale)")
        ax.set_ylabel(unit + "; log scale")
        ax.set_title(
            f"Training {what} against corpus size, {os.cpu_count()} cores" + (" (smoke run)" if a.quick else "")
        )
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        fig.tight_layout()
        path = os.path.join(plot_dir, f"{prefix}-{what}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report(a, meta, runs, evals, skipped, dask, proj, plot_paths, out_path):
    L = []
    w = L.append
    summary = summarize(runs, evals)
    w("# Scale benchmark" + (" — SMOKE RUN (--quick: tiny sizes, not a result)" if a.quick else "") + "\n")
    w(
        f"Generated by `python3 bench/scale.py {' '.join(meta['argv'])}`; raw results in "
        f"`{os.path.relpath(meta['json'], os.path.dirname(out_path))}`.\n"
    )
    for k, v in meta["header"]:
        w(f"- {k}: {v}")
    w("")
    w("## Single machine\n")
    w(
        f"Each training runs in its own subprocess with {a.workers} threads; time = the training call + saving "
        "the model inside it; peak = the largest RSS of the process tree (polled, raised to its VmHWM). "
        f"{'Each size ran ' + str(a.repeat) + ' rounds, the trainers taking turns in each; time = median (min–max), peak = largest. ' if a.repeat > 1 else ''}"
        f"×SPM = this run against {title(BASE, a)} on the same text in the same run (time and memory: lower is "
        "better; bytes/token: higher is better); others' CPU: the largest share of the machine's CPU other "
        "processes used during a run of that row (this machine is shared: well above 0 % means disturbed). Held-out bytes/token (UTF-8 bytes / tokens) per line (each line of "
        "`{lang}.test.txt` encoded on its own, without its newline) and per document (each document of `{lang}.test.jsonl` whole).\n"
    )
    w(
        "| MB | trainer | time (s) | ×SPM | peak (MiB) | ×SPM | per line zh / en / code | per doc zh / en / code | "
        "per doc, all | ×SPM | round-trip fails / note | others' CPU |"
    )
    w("|---:|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|")
    for size in a.sizes:
        b = summary.get((BASE, size))
        for peer in a.peers:
            s = summary.get((peer, size))
            if s is None:
                why = skipped.get((peer, size), "not run")
                w(f"| {size:g} | {title(peer, a)} | {why} ||||||||||")
                continue
            e = s["eval"]
            if e and "error" not in e:
                line = " / ".join(f"{e[f'{x}/line']['bytes_per_token']:.3f}" for x in LANGS)
                doc = " / ".join(f"{e[f'{x}/doc']['bytes_per_token']:.3f}" for x in LANGS)
                fails = str(sum(e[h]["roundtrip_fail"] for h in HELD))
            elif peer == "ours-stages":
                same = same_bytes(s_model(runs, peer, size), s_model(runs, "ours", size))
                line = doc = "—"
                fails = "same model as ours" if same else ("model differs from ours" if same is False else "—")
            else:
                line = doc = fails = "—"
            bb = b["eval"] if b else None
            spread = f" ({fmt_s(min(s['times']))}–{fmt_s(max(s['times']))})" if len(s["times"]) > 1 else ""
            w(
                f"| {size:g} | {title(peer, a)} | {fmt_s(s['time'])}{spread} | {fmt_x(ratio(s['time'], b and b['time']))} | "
                f"{fmt_mb(s['peak'])} | {fmt_x(ratio(s['peak'], b and b['peak']))} | {line} | {doc} | "
                f"{fmt_bpt(bpt_all(e, 'doc'))} | {fmt_x(ratio(bpt_all(e, 'doc'), bpt_all(bb, 'doc')))} | {fails} | "
                f"{100 * max(s['others']):.0f}% |"
            )
    w("")
    if not meta["has_max_memory"]:
        w(f"- {title('ours-mem', a)}: n/a — the installed `bytepiece_rs.Trainer` has no `max_memory_mb` parameter.")
    for n in meta["notes"]:
        w(f"- {n}")
    w(
        f"- Trainer settings: ours `Trainer(order={a.order}, max_vocab_size={a.vocab}, min_count={a.min_count}, "
        f"max_piece_length={a.max_piece_length}).train_from_files(path, workers={a.workers}, "
        f"text_unit={OURS_TEXT_UNIT!r})`; SentencePiece BPE "
        "as in train.py (`byte_fallback=True`, identity normalisation, no extra-whitespace removal or dummy prefix, "
        "`max_sentence_length` = longest line + 1, all lines), default: `split_by_whitespace=True, "
        "max_sentencepiece_length=16`; high compression: `split_by_whitespace=False, max_sentencepiece_length=36`; "
        "HF BPE as in train.py (ByteLevel). Stage by stage: the text cut into shards, then count_ngrams per shard, "
        f"merge_counts in levels (fan-in {a.fan_in}) down to {a.fan_in} tables, ngram_model_table of those, "
        "count_pieces per shard, merge_counts in levels, prune_counts of the last tables, one after the other in one "
        "process (train_distributed's tasks); then, for the projection only, one merge_counts of each kind "
        "(probe-merge)."
    )
    w("")
    if plot_paths:
        rel = [os.path.relpath(p, os.path.dirname(out_path)) for p in plot_paths]
        w(" ".join(f"![{os.path.basename(p)}]({p})" for p in rel) + "\n")

    st = [r for r in runs if r["peer"] == "ours-stages" and r["ok"]]
    if st:
        w("### Stage by stage (ours)\n")
        w("| MB | stage | tasks | wall (s) | CPU (s) | CPU µs / byte of text | table out | peak RSS (MiB) |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|")
        seen = set()
        for r in sorted(st, key=lambda r: r["size_mb"]):
            if r["size_mb"] in seen:
                continue
            seen.add(r["size_mb"])
            order = []
            for s in r["stages"]:
                if s["stage"] not in order:
                    order.append(s["stage"])
            for name in order:
                xs = [s for s in r["stages"] if s["stage"] == name]
                cpu = sum(s["cpu_s"] for s in xs)
                outb = (
                    sum(s.get("out_bytes", 0) for s in xs) if name in ("ngrams", "pieces") else xs[-1].get("out_bytes")
                )
                w(
                    f"| {r['size_mb']:g} | {name} | {len(xs)} | {sum(s['wall_s'] for s in xs):.2f} | {cpu:.2f} | "
                    f"{1e6 * cpu / r['train_bytes']:.3f} | {fmt_gb(outb)} | {fmt_mb(max(s['peak_rss'] for s in xs))} |"
                )
        w("")
        w(
            "Table out: the serialised count tables a stage produces (for the per-shard stages, all shards together); "
            "for prune, none (it returns the vocabulary). Peak RSS: the process' VmHWM reset before each stage, so it "
            "includes the tables held from the earlier stages.\n"
        )

    w("## Dask\n")
    if not dask:
        w("Not run (--skip-dask).\n")
    elif "error" in dask:
        w(f"Not run: {dask['error']}\n")
    else:
        w(
            f"{dask['size_mb']:g} MB ({dask['bytes']:,} bytes) cut into {dask['shards']} shard files "
            f"({min(dask['shard_bytes']) / MB:.1f}–{max(dask['shard_bytes']) / MB:.1f} MB). single: "
            f"`Trainer(...).train_from_files(shards, workers={a.workers}, text_unit={OURS_TEXT_UNIT!r})` in one "
            f"process; dask-N: `train_distributed(client, shards, threads=1, fan_in={a.fan_in}, "
            f"text_unit={OURS_TEXT_UNIT!r}, ...)` (dask-N-mem: with "
            f"`max_memory_mb={a.max_memory_mb}`, so every worker's stage and the client's are bounded) on a "
            "`LocalCluster(n_workers=N, threads_per_worker=1, processes=True, host='127.0.0.1', "
            "dashboard_address=None)`; this process is the client, which merges the last piece tables as it prunes them. Time: the "
            "training call + saving (the cluster's start is not included; it is given apart).\n"
        )
        w(
            "| run | time (s) | × single | cluster start (s) | worker peak (MiB) | client peak (MiB) | tree peak (MiB) | "
            "bytes sent by workers | same model as single |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        t_single = med([r["train_s"] for r in dask["runs"] if r["run"] == "single" and r["ok"]])
        for name in DASK_RUNS:
            rs = [r for r in dask["runs"] if r["run"] == name]
            ok = [r for r in rs if r["ok"]]
            if not ok:
                w(f"| {name} | failed: {rs[0]['error'] if rs else 'not run'} ||||||||")
                continue
            t = med([r["train_s"] for r in ok])
            same = {r["same_model_as_single"] for r in ok}
            w(
                f"| {name} | {fmt_s(t)} | {fmt_x(ratio(t, t_single))} | "
                f"{fmt_s(med([r.get('cluster_start_s') for r in ok]))} | "
                f"{fmt_mb(max(r.get('worker_peak_rss') or 0 for r in ok) or None)} | "
                f"{fmt_mb(max(r.get('client_peak_rss') or 0 for r in ok) or None)} | {fmt_mb(max(r['peak_rss_tree'] for r in ok))} | "
                f"{fmt_gb(med([r.get('worker_sent_bytes') for r in ok]))} | "
                f"{'—' if name == 'single' else 'yes (byte-identical)' if same == {True} else 'NO'} |"
            )
        w("")
        st_d = [r for r in runs if r["peer"] == "ours-stages" and r["ok"] and r["size_mb"] == dask["size_mb"]]
        if st_d:
            by = {}
            for x in st_d[-1]["stages"]:
                by.setdefault(x["stage"], []).append(x)
            w(
                f"- Bytes per stage at this size (stage-by-stage run on {a.shards} shards of the same text): n-gram "
                f"tables {fmt_gb(sum(x['out_bytes'] for x in by['ngrams']))} in all, "
                f"{fmt_gb(by['model'][0]['in_bytes'])} into the model task (merged and pruned in one pass), model "
                f"table {fmt_gb(by['model'][0]['out_bytes'])} (sent to each worker), piece tables "
                f"{fmt_gb(sum(x['out_bytes'] for x in by['pieces']))} in all, {fmt_gb(by['prune'][0]['in_bytes'])} "
                "sent to the client (which merges them as it prunes)."
            )
        w(
            "- worker peak: the largest VmHWM of a worker process (Python, Dask and the tables of its tasks); client "
            "peak: the client's VmHWM during training (reset before it), i.e. the piece tables and their pruning; "
            "tree peak: the largest sum of RSS over the client, the nannies and the workers. Bytes sent by workers: "
            "`Worker.transfer_outgoing_bytes_total` summed (count tables sent to other workers' merge tasks and the "
            "last tables fetched by the client); the tables' sizes are in the stage-by-stage table.\n"
        )

    w("## Projection\n")
    if not proj:
        w("No stage-by-stage run succeeded: nothing to fit.\n")
    else:
        r, fits = proj["rates"], proj["fits"]
        big = proj["points"][-1]
        sizes = ", ".join(f"{p['bytes'] / MB:.0f}" for p in proj["points"])
        w(
            f"Fitted by the script on the stage-by-stage runs ({sizes} MB); "
            f"per-byte costs from the largest ({big['bytes'] / MB:.0f} MB). Model:\n"
        )
        expo = proj["exponents"]
        w(
            f"- **Counting** (stages 1 and 3) is a map over shards: CPU time = c × bytes, c = "
            f"{1e9 * r['ngrams']:.0f} ns/byte for the n-grams and {1e9 * r['pieces']:.0f} ns/byte for the pieces "
            f"(CPU seconds; fitted exponents of CPU time against size: {expo['ngrams'] or float('nan'):.2f} and "
            f"{expo['pieces'] or float('nan'):.2f}, 1 = linear)."
        )
        w(
            f"- **Count tables** grow with the text they cover as a power law: n-gram table = "
            f"{fits['ngram_table'][0]:.3g} × bytes^{fits['ngram_table'][1]:.2f}, piece table = "
            f"{fits['piece_table'][0]:.3g} × bytes^{fits['piece_table'][1]:.2f}, n-gram model table (after "
            f"`min_count`) = {fits['model_table'][0]:.3g} × bytes^{fits['model_table'][1]:.2f} (serialised bytes; "
            "fitted on every shard and merged table measured)."
        )
        w(
            f"- **Merges** are levels of tasks of fan-in {a.fan_in} until at most {a.fan_in} tables are left: merge "
            f"CPU = {1e9 * r['merge-ngrams']:.1f} ns (n-grams) and {1e9 * r['merge-pieces']:.1f} ns (pieces) per "
            "byte of input tables (measured on one merge of the whole corpus' tables); each table is shipped once to "
            "the task that merges it. The last n-gram tables are merged and pruned in one task, the model's table "
            f"({1e9 * r['model']:.1f} ns per byte of its input tables), which is broadcast to every worker."
        )
        w(
            f"- **Client**: receives the last piece tables, merges them as it prunes: time = {fits['prune_s'][0]:.3g} × "
            f"bytes^{fits['prune_s'][1]:.2f}, peak RSS = {fits['prune_rss'][0]:.3g} × bytes^{fits['prune_rss'][1]:.2f} "
            "of those tables."
        )
        w(
            f"- Shards of {a.project_shard_gb:g} GB, one core per worker (as in the Dask sweep), no time for "
            "scheduling, reading from storage or the network (bytes shipped are given instead)."
        )
        w("")
        if proj["rows"]:
            w(
                "| text | workers | shards | count n-grams | merge n-grams | model | count pieces | merge pieces | "
                "client prune | total | shipped: n-gram tables / model / piece tables | last n-gram tables | "
                "worker memory (largest task) | client RSS |"
            )
            w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
            for x in proj["rows"]:
                w(
                    f"| {x['bytes'] / GB:,.0f} GB | {x['workers']} | {x['shards']:,} | {fmt_h(x['count_ngrams_s'])} | "
                    f"{fmt_h(x['merge_ngrams_s'])} | {fmt_h(x['model_s'])} | {fmt_h(x['count_pieces_s'])} | "
                    f"{fmt_h(x['merge_pieces_s'])} | {fmt_h(x['client_prune_s'])} | **{fmt_h(x['total_s'])}** | "
                    f"{fmt_gb(x['shipped_ngrams'])} / {fmt_gb(x['shipped_model'])} / {fmt_gb(x['shipped_pieces'])} | "
                    f"{fmt_gb(x['last_ngrams_bytes'])} | {fmt_gb(x['worker_rss'])} | "
                    f"{fmt_gb(x['client_rss'])} |"
                )
            w("")
        w(
            "Single machine, extrapolated from the sweep (power law of time and peak memory against size, "
            f"{a.workers} threads):\n"
        )
        w("| trainer | time ∝ size^b | memory ∝ size^b | at 13 GB | at 100 GB | at 1 TB |")
        w("|---|---:|---:|---|---|---|")
        for peer, f in proj["single"].items():
            if not f["time"] or not f["memory"]:
                continue
            cells = [
                f"{fmt_h(power(f['time'], n))}, {fmt_gb(power(f['memory'], n))}" for n in (13 * GB, 100 * GB, 1000 * GB)
            ]
            w(f"| {title(peer, a)} | {f['time'][1]:.2f} | {f['memory'][1]:.2f} | " + " | ".join(cells) + " |")
        w("")
        if proj["rows"]:
            w(
                "Worker memory (largest task): the largest of a counting task's peak (fitted against shard size), the "
                "model task's tables (its inputs and output) and a merge task's; client RSS: the pruning stage's "
                "peak, fitted against the piece tables it merges. Times are one wave of tasks after another (a stage's tasks "
                "beyond the workers wait), so past the number of shards more workers do not help, and the merges and "
                "the client's pruning, which do not shrink with more workers, set the floor. These are the memories "
                "without a bound: with `max_memory_mb=M`, a task's own work stays within `1.15·M + 150` MB (the "
                "dask-2-mem run above), its counts and the client's dropped pieces going to runs on disk; what a "
                "worker still holds are the count tables that Dask keeps as task results.\n"
            )
        ours = proj["single"].get("ours") or {}
        if ours.get("memory"):
            n0, m0 = ORIGINAL_REPORTED
            mine = power(ours["memory"], n0)
            w(
                f"At the original's {n0 / GB:.0f} GB, ours on one machine would need {fmt_gb(mine)} by this fit, "
                f"{m0 / mine:.1f}× less than the {m0 / GB:.0f} GB reported for the original."
            )
        mem_rows = [x for x in proj["rows"] if x["bytes"] == 1000 * GB]
        if mem_rows:
            x = mem_rows[0]
            w(
                f"At 1 TB, distributed: the largest worker task needs {fmt_gb(x['worker_rss'])} and the client "
                f"{fmt_gb(x['client_rss'])}, against the {SPM_REPORTED / GB:.0f} GB reported for SentencePiece's "
                "large runs (on far less text)."
            )
        w("")
        w(
            f"Reported by others, for comparison (not measured here): the original BytePiece needed "
            f"{ORIGINAL_REPORTED[1] / GB:.0f} GB of RAM to train on {ORIGINAL_REPORTED[0] / GB:.0f} GB of text; "
            f"SentencePiece's large runs are reported to need {SPM_REPORTED / GB:.0f} GB of RAM (it loads every "
            "sentence into memory; its issue tracker has many such reports, e.g. google/sentencepiece#680, out of "
            "memory at 290 GB with 70 M sentences, and #704, 500 GB not enough for 150 M sentences)."
        )
        w("")
        w(
            f"**Caveat.** The fits span {proj['points'][0]['bytes'] / MB:.0f}–{big['bytes'] / MB:.0f} MB of one "
            "corpus; 100 GB and 1 TB are 2–4 orders of magnitude beyond, and table growth depends on the text "
            "(more languages and sources mean more distinct n-grams). Read the projection as the shape of the costs "
            "(which stage dominates, where memory concentrates), not as a promise.\n"
        )
    return "\n".join(L) + "\n", summary


def s_model(runs, peer, size):
    ok = [r for r in runs if r["peer"] == peer and r["size_mb"] == size and r["ok"]]
    return ok[-1]["model"] if ok else None


# --------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    add_corpus_argument(ap)
    ap.add_argument(
        "--large",
        default=None,
        help="dir of kernel.txt (shared/corpus/build_large.sh), for sizes past the corpus' ~325 MB",
    )
    ap.add_argument("--sizes", default=None, help="comma list of MB (default 25,100,325,1000; --quick 2,5)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: --sizes 2,5 --dask-mb 5 --test-mb 0.5 (unless given); a few minutes",
    )
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list of: {','.join(PEERS)} (default all)")
    ap.add_argument(
        "--max-peer-mb",
        dest="max_peer_str",
        default="hf-bpe=1000",
        metavar="PEER=MB,...",
        help="do not run PEER above MB (default hf-bpe=1000); any run is also skipped when its peak, "
        "extrapolated from the smaller sizes, would not fit in the available memory",
    )
    ap.add_argument(
        "--max-memory-mb",
        type=int,
        default=768,
        help="max_memory_mb of the ours-mem run (when the Trainer accepts it; default 768)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds per size; in each round every trainer runs once, in turn (default 1)",
    )
    ap.add_argument("--skip-dask", action="store_true", help="no Dask sweep")
    ap.add_argument(
        "--dask-mb", type=float, default=None, help="MB of the Dask sweep, one of --sizes (default 100; --quick 5)"
    )
    ap.add_argument("--shards", type=int, default=8, help="shard files of the Dask and stage-by-stage runs (default 8)")
    ap.add_argument(
        "--fan-in", type=int, default=8, help="tables merged per merge task (default 8, train_distributed's)"
    )
    ap.add_argument("--project-shard-gb", type=float, default=1.0, help="shard size of the projection (default 1 GB)")
    ap.add_argument("--workers", type=int, default=2, help="threads of the single-machine trainers (default 2)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--order", type=int, default=6)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--max-piece-length", type=int, default=36)
    ap.add_argument("--test-mb", type=float, default=None, help="cap of each held-out set, MB (default: all)")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="per run, seconds (default 4 h)")
    ap.add_argument(
        "--min-available-mb",
        type=int,
        default=1500,
        help="kill a run when the machine has less memory available than this (default 1500)",
    )
    ap.add_argument("--poll", type=float, default=0.1, help="memory polling interval, seconds")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        help="before each run wait up to S s for other processes to use < 10%% of the CPU (default 0)",
    )
    ap.add_argument(
        "--workdir", default=None, help="keep training files, models and logs here (default: a temp dir, removed)"
    )
    ap.add_argument(
        "--out",
        default=os.path.join(HERE, "SCALE.md"),
        help="the report (default bench/SCALE.md); results/scale.json and plots/scale-*.png go beside it",
    )
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes = a.sizes or "2,5"
        a.dask_mb = 5 if a.dask_mb is None else a.dask_mb
        a.test_mb = 0.5 if a.test_mb is None else a.test_mb
    try:
        a.sizes = sorted({float(x) for x in (a.sizes or "25,100,325,1000").split(",") if x.strip()})
    except ValueError:
        ap.error("--sizes: a comma list of numbers")
    a.dask_mb = 100.0 if a.dask_mb is None else a.dask_mb
    a.peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    bad = [p for p in a.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer(s) {','.join(bad)}; choose from {','.join(PEERS)}")
    if BASE not in a.peers:
        a.peers.append(BASE)
    a.peers = [p for p in PEERS if p in a.peers]
    a.max_peer_mb = {}
    for item in filter(None, (x.strip() for x in a.max_peer_str.split(","))):
        k, _, v = item.partition("=")
        if k not in PEERS:
            ap.error(f"--max-peer-mb: unknown peer {k!r}")
        try:
            a.max_peer_mb[k] = float(v)
        except ValueError:
            ap.error("--max-peer-mb: PEER=MB")
    if a.shards < 1 or a.fan_in < 2 or a.repeat < 1:
        ap.error("--shards >= 1, --fan-in >= 2 and --repeat >= 1")
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] in ("--_stages", "--_dask"):
        with open(argv[1]) as f:
            job = json.load(f)
        (stages_main if argv[0] == "--_stages" else dask_main)(job)
        return 0
    a = parse_args(argv)
    if not os.path.exists(os.path.join(a.corpus, "zh.train.jsonl")):
        log(
            f"no corpus at {a.corpus}: build it with `bash shared/corpus/build_corpus.sh DIR` and pass --corpus DIR "
            "(or set BYTEPIECE_CORPUS)"
        )
        return 2
    import bytepiece_rs

    has_max_memory = "max_memory_mb" in inspect.signature(bytepiece_rs.Trainer).parameters
    if not has_max_memory and "ours-mem" in a.peers:
        log("note: the installed Trainer has no max_memory_mb parameter: the ours-mem run is n/a")
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).astimezone()
    own_tmp = a.workdir is None
    workdir = tempfile.mkdtemp(prefix="bench-scale-") if own_tmp else a.workdir
    os.makedirs(workdir, exist_ok=True)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    json_path = os.path.join(out_dir, "results", "scale.json")
    plot_dir = os.path.join(out_dir, "plots")
    try:
        texts, notes, corpus_info = build_texts(a, workdir)
        held = load_held_out(a.corpus, a.test_mb)
        log(
            "== held-out: "
            + ", ".join(f"{k} {len(v):,} texts, {sum(len(t.encode()) for t in v) / MB:.2f} MB" for k, v in held.items())
        )
        skipped = {}
        if not has_max_memory:
            for s in a.sizes:
                skipped[("ours-mem", s)] = "n/a (Trainer has no max_memory_mb)"
        load0 = loadavg()
        runs, evals = single_machine_sweep(a, texts, held, workdir, skipped)
        dask = None if a.skip_dask else dask_sweep(a, texts, workdir)
        proj = projection(a, runs)
        summary = summarize(runs, evals)
        plot_paths = []
        try:
            plot_paths = plots(a, summary, dask, plot_dir, "scale")
        except Exception:  # noqa: BLE001
            log("plots failed:\n" + traceback.format_exc())
        m = describe()
        versions = {
            d: version_of(d)
            for d in ("bytepiece-rs", "sentencepiece", "tokenizers", "dask", "distributed", "numpy", "matplotlib")
        }
        meta = {
            "argv": argv,
            "json": json_path,
            "notes": notes,
            "has_max_memory": has_max_memory,
            "header": [
                ("date", started.isoformat(timespec="seconds")),
                ("machine", f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}"),
                ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
                ("load average at start / end", f"{load0} / {loadavg()}"),
                (
                    "text",
                    f"`{a.corpus}`: the zh, en and code training documents interleaved in proportion "
                    f"({', '.join(f'{k} {v / MB:.1f} MB' for k, v in corpus_info['per_language'].items())}; "
                    f"{corpus_info['corpus_bytes'] / MB:.1f} MB in all), each size a prefix cut at a document "
                    "end; past that, + kernel.txt (`"
                    + (a.large or "—")
                    + "`) cut at a line end. "
                    + "; ".join(
                        f"{s:g} MB = {i['bytes']:,} bytes"
                        + (f" ({i['kernel_bytes']:,} of kernel sources)" if i["kernel_bytes"] else "")
                        for s, i in texts.items()
                    ),
                ),
                (
                    "held-out",
                    ", ".join(
                        f"{k} {len(v):,} texts ({sum(len(t.encode()) for t in v) / MB:.2f} MB)" for k, v in held.items()
                    )
                    + (f"; each capped at {a.test_mb:g} MB" if a.test_mb is not None else ""),
                ),
                ("total run time", f"{time.perf_counter() - t_start:.0f} s"),
            ],
        }
        text, _ = report(a, meta, runs, evals, skipped, dask, proj, plot_paths, os.path.abspath(a.out))
        print()
        print(text)
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        with open(os.path.abspath(a.out), "w", encoding="utf-8") as f:
            f.write(text)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "args": vars(a),
                    "meta": meta,
                    "versions": versions,
                    "texts": texts,
                    "corpus": corpus_info,
                    "skipped": {f"{p} {s:g}": v for (p, s), v in skipped.items()},
                    "runs": runs,
                    "evals": {f"{p} {s:g}": v for (p, s), v in evals.items()},
                    "dask": dask,
                    "projection": proj,
                },
                f,
                indent=1,
                default=str,
            )
        log(f"wrote {a.out}, {json_path} and {', '.join(plot_paths)}")
        failed = [r for r in runs if not r["ok"]] + [r for r in (dask or {}).get("runs", []) if not r["ok"]]
        return 1 if failed else 0
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
