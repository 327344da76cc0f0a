#!/usr/bin/env python3
"""datasets benchmark: `Dataset.map(fn, batched=True)` with our `dataset_tokenizer` against the
naive function `lambda b: {"input_ids": tok.encode_batch(b["text"])}`.

Both encode the same in-memory `datasets.Dataset` with the bundled model, on all cores, in
batches of 1,000 rows (`datasets`' default), with `keep_in_memory=True` and a fresh fingerprint
each time (no cache file is read or written, and the function is not hashed: both do the same
work). The two are run alternately, `--repeat` times each, and the median is reported, since
the speed of a shared machine drifts. Two kinds of rows, zh, en and code in equal numbers:
`lines` (non-empty lines of the corpus' *.train.txt: short rows, where the cost per row shows)
and `documents` (records of its *.train.jsonl). The ids of the two columns are checked to be
equal.

    python3 bench/datasets_map.py                    # 150,000 lines, 15,000 documents, 5 runs each
    python3 bench/datasets_map.py --lines 60000 --documents 6000 --repeat 3

Results go to stdout and to bench/results/datasets_map.md (+ .json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
from common import jsonl_texts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LANGS = ("zh", "en", "code")
MB = 1e6


def corpus_rows(corpus: str, kind: str, n: int) -> list:
    """`n` rows, a third of each language: non-empty lines of LANG.train.txt (`lines`) or the
    texts of LANG.train.jsonl (`documents`)."""
    rows = []
    for lang in LANGS:
        want = n // len(LANGS)
        if kind == "lines":
            with open(os.path.join(corpus, f"{lang}.train.txt"), encoding="utf-8") as f:
                texts = (line.rstrip("\n") for line in f if line.strip())
                rows += [t for t, _ in zip(texts, range(want))]
        else:
            rows += [t for t, _ in zip(jsonl_texts(os.path.join(corpus, f"{lang}.train.jsonl")), range(want))]
    return rows


def timed_map(ds, fn) -> tuple:
    """(seconds, result) of one batched map, in memory, with a fresh fingerprint."""
    t = time.perf_counter()
    out = ds.map(fn, batched=True, keep_in_memory=True, new_fingerprint=f"bench-{time.perf_counter_ns()}")
    return time.perf_counter() - t, out


def measure(kind: str, texts: list, repeat: int) -> dict:
    """Both routes on `texts`, alternately, `repeat` times each; their seconds and column types."""
    import datasets
    from bytepiece_rs import Tokenizer
    from bytepiece_rs.integrations import dataset_tokenizer

    tok = Tokenizer()
    routes = {
        "naive": lambda b: {"input_ids": tok.encode_batch(b["text"])},
        "dataset_tokenizer": dataset_tokenizer(tok),
    }
    ds = datasets.Dataset.from_dict({"text": texts})
    seconds = {name: [] for name in routes}
    columns = {}
    for _ in range(repeat):
        for name, fn in routes.items():
            s, out = timed_map(ds, fn)
            seconds[name].append(s)
            columns[name] = out
    if columns["naive"]["input_ids"][:] != columns["dataset_tokenizer"]["input_ids"][:]:
        raise SystemExit(f"{kind}: the two routes give different ids")
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    row = {"kind": kind, "rows": len(texts), "mb": nbytes / MB, "routes": {}}
    for name, runs in seconds.items():
        median = statistics.median(runs)
        row["routes"][name] = {
            "runs_s": runs,
            "median_s": median,
            "rows_s": len(texts) / median,
            "mb_s": nbytes / MB / median,
            "type": str(columns[name].features["input_ids"]),
        }
    row["speedup"] = row["routes"]["naive"]["median_s"] / row["routes"]["dataset_tokenizer"]["median_s"]
    return row


def report(rows: list, repeat: int) -> str:
    m = machine.describe()
    lines = [
        "# datasets benchmark: `dataset_tokenizer` against the naive `encode_batch` lambda",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {m['cpu']}, {m['cores']} cores; "
        f"Python {m['python']}; bytepiece-rs {machine.version_of('bytepiece-rs')}, "
        f"datasets {machine.version_of('datasets')}, pyarrow {machine.version_of('pyarrow')}",
        f"- `Dataset.map(fn, batched=True, keep_in_memory=True)`, batches of 1,000 rows, all cores; "
        f"median of {repeat} runs each, the two routes alternating",
        "",
        "| rows | count | MB | route | median (s) | rows/s | MB/s | column | × naive |",
        "|---|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        for name, r in row["routes"].items():
            speedup = row["speedup"] if name == "dataset_tokenizer" else 1.0
            lines.append(
                f"| {row['kind']} | {row['rows']:,} | {row['mb']:.1f} | {name} | {r['median_s']:.2f} | "
                f"{r['rows_s']:,.0f} | {r['mb_s']:.1f} | `{r['type']}` | {speedup:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--corpus",
        default=os.environ.get("BYTEPIECE_CORPUS", os.path.join(HERE, "..", "..", "corpus")),
        help="the corpus of shared/corpus/build_corpus.sh (default: $BYTEPIECE_CORPUS, else ../corpus)",
    )
    ap.add_argument("--lines", type=int, default=150_000, help="rows of the lines workload (0: skip it)")
    ap.add_argument("--documents", type=int, default=15_000, help="rows of the documents workload (0: skip it)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each route per workload")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "datasets_map.md"))
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.corpus, "MANIFEST.tsv")):
        raise SystemExit(
            f"no corpus in {a.corpus}: build it with shared/corpus/build_corpus.sh DIR, set BYTEPIECE_CORPUS=DIR"
        )
    import datasets

    datasets.disable_progress_bars()
    rows = []
    for kind, n in (("lines", a.lines), ("documents", a.documents)):
        if n > 0:
            print(f"== {kind}: {n:,} rows", flush=True)
            rows.append(measure(kind, corpus_rows(a.corpus, kind, n), a.repeat))
    text = report(rows, a.repeat)
    machine.write_report(a.out, text, rows)


if __name__ == "__main__":
    main()
