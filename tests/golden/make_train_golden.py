#!/usr/bin/env python3
"""Generate the trainer golden fixtures tests/golden/train_*.json.gz with the ORIGINAL bytepiece 0.6.3.

tests/test_train_parity.py trains with bytepiece_rs on the same texts (tests/train_cases.py) and
compares the saved model files byte for byte with these. This script needs the original package
(``shared/reference/install_original.sh``) and numpy; the tests do not.

How the committed fixtures were made (2 CPUs, AVX512F; 681 s wall, of which the two corpus
cases ~190 s and ~290 s; the non-corpus cases are also re-run with math.log, see "libm")::

    python3 tests/golden/make_train_golden.py --shared /work/shared --corpus /work/corpus --jobs 2

Without --corpus the corpus cases are skipped (their fixtures are left as they are).
--only NAME[,NAME] regenerates some cases. Re-running on the same CPU family with the same
package versions gives byte-identical files (gzip mtime 0, no dates; wall times are stored, so
those fields differ).

Each case runs, exactly as a user would::

    trainer = bytepiece.Trainer(**params)
    trainer.train(texts, workers=1)          # texts: a list of str
    trainer.save(tmp / "model")              # model, or model.SIZE per size for a list

with observers attached to the trainer's own methods (they only look at return values, never
change them): prune_ngrams (n-grams kept per order and a sha256 of each order's log-probs),
count_pieces (the raw piece counts before pruning), _tokenize (where the Viterbi collapses, see
below) and split_pieces (sizes at every pruning step).

File train_<case>.json.gz::

    meta          versions, CPU flags (numpy's log differs from libm's on AVX512F), locale
    case          the tests/train_cases.py entry (name, recipe, params, needs_corpus, ...)
    texts         {n, utf8_bytes, sha256 of "\\x00".join(texts)}
    files         {suffix: content}: what save(path) wrote, path + suffix, decoded as UTF-8
                  (suffix "" for one size, ".SIZE" for each size of a list)
    n_pieces      {suffix: number of pieces in that file}
    time_s        the original's wall time: train(), save()
    debug         ngrams_kept[order] (after prune_ngrams, index = n-gram length),
                  ngrams_sha256[order] (sha256 over sorted "b64(key) float.hex(logp)\\n"),
                  raw_pieces_n, raw_pieces_total, raw_pieces (b64 -> count; only when
                  case["debug"]), split_calls [[len(keep), len(drop), len(result)], ...],
                  degenerate {...}, numpy_log_mismatches, libm (the same training with
                  math.log instead of np.log: identical or not)

train_convert.json.gz: bytepiece.convert_to_bytepiece(pieces, path) for each of
train_cases.convert_cases(): {name: {pieces: [[key, count], ...] (key as {"str": s} or
{"b64": ...}), file: content}}.

"degenerate": with ensure_unicode, Trainer._tokenize sets the unigram state of every UTF-8
continuation byte to -inf. If no longer n-gram ending at that byte survived prune_ngrams (for
example the second byte's bigram or the whole character's trigram has count < min_count), every
state of that byte is -inf, so are all later ones in the chunk, argmax returns state 0 from there
on and the rest of the chunk, from the lead byte of that character, comes out as single bytes.
A single-byte piece >= 0x80 can only appear there, so the observer finds these tails from
_tokenize's output; it reports chunks, bytes in such tails and a few example characters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import edge_cases as ec  # noqa: E402
import train_cases as tc  # noqa: E402
from golden_io import b64, environment, write_gz  # noqa: E402

N_EXAMPLES = 8


def meta() -> dict:
    return {
        **environment("tests/golden/make_train_golden.py"),
        "texts_sha256": 'sha256("\\x00".join(texts).encode("utf-8"))',
    }


# --------------------------------------------------------------------------- math.log variant


class _LibmNumpy(types.ModuleType):
    """numpy, except that log() is the C library's (math.log), for scalars only."""

    def __init__(self):
        super().__init__("numpy_libm_log")

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def log(x):
        if isinstance(x, np.ndarray):  # not used by the trainer or Tokenizer.__init__
            raise TypeError("array log in the libm variant")
        return math.log(x)


def run_original(params: dict, texts: list[str], observe: bool, keep_raw: bool, libm: bool = False):
    """Train + save with the original; returns (files, time_s, debug)."""
    import bytepiece.bytepiece as bpm

    tr = bpm.Trainer(**params)
    dbg: dict = {}
    overhead = [0.0]

    if observe:
        orig_prune_ngrams, orig_count_pieces = tr.prune_ngrams, tr.count_pieces
        orig_tokenize, orig_split = tr._tokenize, tr.split_pieces
        degen = {
            "chunks": 0,
            "bytes": 0,
            "degenerate_chunks": 0,
            "degenerate_bytes": 0,
            "tail_not_single_bytes": 0,
            "examples": [],
        }
        split_calls = []

        def prune_ngrams(ngrams):
            res = orig_prune_ngrams(ngrams)
            t0 = time.perf_counter()
            dbg["ngrams_kept"] = [len(d) for d in res]
            shas = []
            for d in res:
                h = hashlib.sha256()
                for k in sorted(d):
                    h.update(f"{b64(k)} {float(d[k]).hex()}\n".encode())
                shas.append(h.hexdigest())
            dbg["ngrams_sha256"] = shas
            overhead[0] += time.perf_counter() - t0
            return res

        def count_pieces(texts_):
            res = orig_count_pieces(texts_)
            t0 = time.perf_counter()
            dbg["raw_pieces_n"] = len(res)
            dbg["raw_pieces_total"] = sum(res.values())
            if keep_raw:
                dbg["raw_pieces"] = {b64(k): v for k, v in sorted(res.items())}
            overhead[0] += time.perf_counter() - t0
            return res

        def _tokenize(text):
            res = orig_tokenize(text)
            t0 = time.perf_counter()
            degen["chunks"] += 1
            degen["bytes"] += len(text)
            if tr.ensure_unicode:
                off = 0
                for i, p in enumerate(res):
                    if len(p) == 1 and p[0] >= 0x80:
                        # the analysis says: from here on, single bytes only
                        if any(len(q) != 1 for q in res[i:]):
                            degen["tail_not_single_bytes"] += 1
                        degen["degenerate_chunks"] += 1
                        degen["degenerate_bytes"] += len(text) - off
                        if len(degen["examples"]) < N_EXAMPLES:
                            ch = text[off : off + 4].decode("utf-8", errors="ignore")[:1]
                            degen["examples"].append(
                                {
                                    "char": ch,
                                    "chunk_bytes": len(text),
                                    "tail_bytes": len(text) - off,
                                    "context": text[max(0, off - 24) : off].decode("utf-8", errors="ignore"),
                                }
                            )
                        break
                    off += len(p)
            overhead[0] += time.perf_counter() - t0
            return res

        def split_pieces(keep, drop):
            n_drop = len(drop)
            res = orig_split(keep, drop)
            split_calls.append([len(keep), n_drop, len(res)])
            return res

        tr.prune_ngrams, tr.count_pieces = prune_ngrams, count_pieces
        tr._tokenize, tr.split_pieces = _tokenize, split_pieces

    saved_np = bpm.np
    if libm:
        bpm.np = _LibmNumpy()
    try:
        t0 = time.perf_counter()
        tr.train(texts, workers=1)
        t_train = time.perf_counter() - t0 - overhead[0]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            tr.save(os.path.join(tmp, "model"))
            t_save = time.perf_counter() - t0
            files = {}
            for name in sorted(os.listdir(tmp)):
                assert name.startswith("model"), name
                files[name[len("model") :]] = Path(tmp, name).read_bytes().decode("utf-8")
    finally:
        bpm.np = saved_np
    if observe:
        dbg["split_calls"] = split_calls
        dbg["degenerate"] = degen
        pieces_sets = tr.pieces
        mism = set()
        for pieces in pieces_sets:
            for k, c in pieces.items():
                if float(np.log(c)) != math.log(c):
                    mism.add((b64(k), c))
            tot = sum(pieces.values())
            if float(np.log(tot)) != math.log(tot):
                mism.add(("<total>", tot))
        dbg["numpy_log_mismatches"] = sorted(mism)
    return files, {"train": round(t_train, 2), "save": round(t_save, 3)}, dbg


def model_entries(content: str) -> list:
    """[(id, b64, count)] of a saved model file."""
    d = json.loads(content)
    return sorted((v[0], k, v[2]) for k, v in d.items())


def compare_files(a: dict, b: dict) -> dict:
    if a == b:
        return {"identical": True}
    out = {"identical": False, "files": {}}
    for suf in sorted(set(a) | set(b)):
        if a.get(suf) == b.get(suf):
            continue
        if suf not in a or suf not in b:
            out["files"][suf] = "missing in one"
            continue
        ea, eb = model_entries(a[suf]), model_entries(b[suf])
        pa, pb = {k: c for _, k, c in ea}, {k: c for _, k, c in eb}
        out["files"][suf] = {
            "n_pieces": [len(ea), len(eb)],
            "pieces_only_numpy": len(set(pa) - set(pb)),
            "pieces_only_libm": len(set(pb) - set(pa)),
            "count_diffs": sum(1 for k in set(pa) & set(pb) if pa[k] != pb[k]),
        }
    return out


def run_case(job) -> dict:
    case, shared, corpus, libm = job
    t0 = time.perf_counter()
    texts = tc.make_texts(case["recipe"], Path(shared), Path(corpus) if corpus else None)
    t_texts = time.perf_counter() - t0
    files, times, dbg = run_original(case["params"], texts, observe=True, keep_raw=case["debug"])
    expected = tc.saved_names(case["params"]["max_vocab_size"])
    assert sorted(files) == sorted(expected), (case["name"], sorted(files), expected)
    if libm:
        t0 = time.perf_counter()
        files2, _, _ = run_original(case["params"], texts, observe=False, keep_raw=False, libm=True)
        dbg["libm"] = compare_files(files, files2)
        dbg["libm"]["time_s"] = round(time.perf_counter() - t0, 2)
    rec = {
        "meta": meta(),
        "case": case,
        "texts": {
            "n": len(texts),
            "utf8_bytes": sum(len(t.encode("utf-8")) for t in texts),
            "sha256": tc.texts_sha256(texts),
            "build_time_s": round(t_texts, 2),
        },
        "files": files,
        "n_pieces": {suf: len(json.loads(c)) for suf, c in files.items()},
        "time_s": times,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "debug": dbg,
    }
    return rec


def key_json(k) -> dict:
    return {"b64": b64(k)} if isinstance(k, bytes) else {"str": k}


def make_convert() -> dict:
    import bytepiece

    out = {}
    for name, pieces in tc.convert_cases().items():
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model")
            bytepiece.convert_to_bytepiece(dict(pieces), path)
            assert os.listdir(tmp) == ["model"], os.listdir(tmp)
            content = Path(path).read_bytes().decode("utf-8")
        out[name] = {
            "pieces": [[key_json(k), v] for k, v in pieces.items()],
            "file": content,
            "n_pieces": len(json.loads(content)),
        }
    return {"meta": meta(), "cases": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ec.shared_dir()))
    ap.add_argument("--corpus", default=None, help="built corpus dir; omit to skip the corpus cases")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--only", default="", help="comma-separated case names (and/or 'convert')")
    ap.add_argument("--no-libm", action="store_true", help="skip the math.log re-runs (small cases)")
    args = ap.parse_args()
    out = Path(args.out)
    only = set(filter(None, args.only.split(",")))
    unknown = only - set(tc.CASE_BY_NAME) - {"convert"}
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}")

    if not only or "convert" in only:
        write_gz(out / "train_convert.json.gz", make_convert())

    cases = [c for c in tc.CASES if (not only or c["name"] in only) and (args.corpus or not c["needs_corpus"])]
    # longest first; the math.log re-run only for the non-corpus cases
    cases.sort(key=lambda c: (not c["needs_corpus"], c["recipe"] not in ("mixed",)))
    jobs = [(c, args.shared, args.corpus, not args.no_libm and not c["needs_corpus"]) for c in cases]
    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
        for rec in pool.imap_unordered(run_case, jobs):
            name = rec["case"]["name"]
            print(
                f"{name}: {rec['texts']['utf8_bytes']} bytes, train {rec['time_s']['train']} s, "
                f"pieces {rec['n_pieces']}, rss {rec['max_rss_mb']} MB, "
                f"degenerate {rec['debug']['degenerate']['degenerate_chunks']}/"
                f"{rec['debug']['degenerate']['chunks']} chunks, "
                f"libm {rec['debug'].get('libm', {}).get('identical')}",
                flush=True,
            )
            write_gz(out / f"train_{name}.json.gz", rec)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
