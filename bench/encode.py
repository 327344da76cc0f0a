#!/usr/bin/env python3
"""Encode benchmark: bytepiece-rs against the original BytePiece and other tokenizers.

One run, one text, one machine. For every tokenizer it measures
  * model load time (median of up to 3 loads, file already in the page cache),
  * encode throughput in MB/s (UTF-8 bytes of input / wall seconds, MB = 10^6 bytes)
    on 1 thread and on N threads (default: all cores), median of >= 3 runs
    unless a run is long (see --repeat / --budget),
  * the number of ids produced (and UTF-8 bytes per id), and, per document, whether the ids
    equal the original's.

Peers: the original BytePiece, bytepiece-rs (ours), bytepiece-py, rs-bytepiece and SentencePiece
all use the same BytePiece model (--model; SentencePiece a conversion of it); tiktoken, only with
--tiktoken-hf, uses its own byte-level BPE vocabulary (see tiktoken_bpe.py).

The text is encoded document by document so that batch APIs apply. By default it is a
~20 MB mix of real documents from the corpus built by shared/corpus/build_corpus.sh:
zh / en / code documents interleaved at 3 : 5 : 0.5 by bytes (the same rule as the corpus'
mix.*.txt), each language taking its *.test.jsonl documents first, then *.train.jsonl ones.

Results go to stdout and to bench/results/encode.md (+ encode.json).

    python3 bench/encode.py                         # defaults: plus.80k model, 20 MB mix
    python3 bench/encode.py --mb 5 --peers ours,original
    python3 bench/encode.py --text some.txt --model bytepiece_80k.model

Exit status: 0; 1 if bytepiece-rs (ours) gives ids different from the original
(unless --no-check); 2 on a usage error.
"""

import argparse
import datetime
import gc
import hashlib
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback
import unicodedata
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import jsonl_texts  # noqa: E402
from machine import (  # noqa: E402
    add_corpus_argument,
    cpu_busy_seconds,
    cpu_model,
    own_cpu_seconds,
    shared_dir,
    take_capped,
    version_of,
    wait_idle,
)


HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1e6

ALL_PEERS = ["original", "ours", "bytepiece-py", "rs-bytepiece", "sentencepiece", "tiktoken"]
PEER_TITLES = {
    "ours": "bytepiece-rs (ours)",
    "original": "bytepiece 0.6.3 (original)",
    "bytepiece-py": "bytepiece-py",
    "rs-bytepiece": "rs-bytepiece",
    "sentencepiece": "SentencePiece",
    "tiktoken": "tiktoken",
}


# --------------------------------------------------------------------------- text


def corpus_mix(corpus, cap_bytes, shares=(("zh", 3.0), ("en", 5.0), ("code", 0.5))):
    """Greedy interleave (always the language furthest below its share), test docs first."""
    streams, got, names = {}, {}, []
    for lang, _ in shares:
        files = [os.path.join(corpus, "%s.%s.jsonl" % (lang, part)) for part in ("test", "train")]
        files = [p for p in files if os.path.exists(p)]
        if not files:
            raise SystemExit(
                "no %s.{test,train}.jsonl in %s (build it with "
                "shared/corpus/build_corpus.sh, or pass --text)" % (lang, corpus)
            )
        names += [os.path.basename(p) for p in files]
        streams[lang] = (d for p in files for d in jsonl_texts(p))
        got[lang] = 0
    weight = dict(shares)
    docs, langs, total = [], [], 0
    while streams:
        lang = min(streams, key=lambda lg: got[lg] / weight[lg])
        doc = next(streams[lang], None)
        if doc is None:
            break  # one language ran out: stop, like the corpus' mix
        n = len(doc.encode("utf-8"))
        if total + n > cap_bytes:
            if total:
                break
        docs.append(doc)
        langs.append(lang)
        got[lang] += n
        total += n
    return docs, {lg: got[lg] for lg in got}, names


def file_docs(path, cap_bytes, doc_bytes):
    """Documents of any file: a .jsonl's "text" fields, else paragraphs grouped to ~doc_bytes."""
    if path.endswith(".jsonl"):
        return take_capped(jsonl_texts(path), cap_bytes)
    with open(path, encoding="utf-8", errors="strict") as f:
        text = f.read(int(cap_bytes) + 1)  # characters >= bytes; trimmed below
    # paragraphs keep their separators, so "".join(docs) == text
    paras = re.findall(r"(?s).*?(?:\n[ \t]*\n+|\Z)", text)
    docs, cur, cur_n, total = [], [], 0, 0
    for p in paras:
        if not p:
            continue
        n = len(p.encode("utf-8"))
        if total + n > cap_bytes and total:
            break
        cur.append(p)
        cur_n += n
        total += n
        if cur_n >= doc_bytes:
            docs.append("".join(cur))
            cur, cur_n = [], 0
    if cur:
        docs.append("".join(cur))
    return docs


# --------------------------------------------------------------------------- machine


# --------------------------------------------------------------------------- timing


def timed_loads(loader, repeat, budget):
    times, obj = [], None
    while True:
        obj = None
        gc.collect()
        t0 = time.perf_counter()
        obj = loader()
        times.append(time.perf_counter() - t0)
        if len(times) >= repeat or sum(times) >= budget:
            break
    return statistics.median(times), times, obj


# --------------------------------------------------------------------------- peers

# worker state for multiprocessing pools (set before the pool forks, so workers inherit it)
_POOL_ENCODE = None


def _pool_encode(doc):
    return _POOL_ENCODE(doc)


def pool_runner(encode, docs, n):
    """A Pool of n processes over documents; pool start-up is not timed."""
    global _POOL_ENCODE
    _POOL_ENCODE = encode
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(n)
    pool.map(_pool_encode, docs[: n * 4], chunksize=1)  # make sure every worker is up
    chunk = max(1, min(16, len(docs) // (n * 8) or 1))

    def run():
        return pool.map(_pool_encode, docs, chunksize=chunk)

    def close():
        global _POOL_ENCODE
        pool.close()
        pool.join()
        _POOL_ENCODE = None

    return run, close


def thread_runner(encode, docs, n):
    ex = ThreadPoolExecutor(n)
    list(ex.map(encode, docs[: n * 4]))

    def run():
        return list(ex.map(encode, docs))

    return run, lambda: ex.shutdown()


class Peer:
    """One tokenizer + API under test. Subclasses fill load(), one(), many()."""

    key = ""
    api1 = ""
    apin = ""
    notes = ""

    def __init__(self, args):
        self.args = args

    def load(self):
        raise NotImplementedError

    def one(self, tok, docs):
        """returns a zero-argument callable encoding all docs on 1 thread"""
        raise NotImplementedError

    def many(self, tok, docs, n):
        """returns (callable, cleanup) encoding all docs on n threads/processes"""
        raise NotImplementedError

    @staticmethod
    def as_lists(result):
        return result

    # BytePiece normalises to NFC: its round trip gives NFC(text); the others give the text
    nfc = True

    def decode(self, tok, ids):
        """ids of one document -> str"""
        return tok.decode(ids)


def roundtrip_fails(peer, tok, docs, ids):
    """Documents whose decoded ids differ from the document (from NFC(document) for BytePiece)."""
    bad = 0
    for d, x in zip(docs, ids):
        want = unicodedata.normalize("NFC", d) if peer.nfc else d
        if peer.decode(tok, x) != want:
            bad += 1
    return bad


class Original(Peer):
    key = "original"
    api1 = "`encode(doc)` loop"
    apin = "`multiprocessing.Pool(N).map(encode, docs)`"

    def load(self):
        import bytepiece

        return bytepiece.Tokenizer(self.args.model)

    def one(self, tok, docs):
        return lambda: [tok.encode(d) for d in docs]

    def many(self, tok, docs, n):
        return pool_runner(tok.encode, docs, n)


class Ours(Peer):
    key = "ours"
    api1 = "`encode_batch(docs, num_threads=1)`"
    apin = "`encode_batch(docs, num_threads=N)`"

    def load(self):
        import bytepiece_rs

        return bytepiece_rs.Tokenizer(self.args.model)

    def one(self, tok, docs):
        return lambda: tok.encode_batch(docs, num_threads=1)

    def many(self, tok, docs, n):
        return (lambda: tok.encode_batch(docs, num_threads=n)), (lambda: None)


class OursNumpy(Ours):
    key = "ours-numpy"
    api1 = "`encode_batch_numpy(docs, num_threads=1)`"
    apin = "`encode_batch_numpy(docs, num_threads=N)`"

    def one(self, tok, docs):
        return lambda: tok.encode_batch_numpy(docs, num_threads=1)

    def many(self, tok, docs, n):
        return (lambda: tok.encode_batch_numpy(docs, num_threads=n)), (lambda: None)

    @staticmethod
    def as_lists(result):
        flat, offsets = result
        flat = flat.tolist()
        offsets = [int(o) for o in offsets]
        if offsets and offsets[0] != 0:
            offsets = [0] + offsets
        if not offsets or offsets[-1] != len(flat):
            offsets = offsets + [len(flat)]
        return [flat[a:b] for a, b in zip(offsets, offsets[1:])]


class OursLoop(Ours):
    key = "ours-loop"
    api1 = "`encode(doc)` loop"
    apin = "`ThreadPoolExecutor(N).map(encode, docs)`"

    def one(self, tok, docs):
        return lambda: [tok.encode(d) for d in docs]

    def many(self, tok, docs, n):
        return thread_runner(tok.encode, docs, n)


class NoBatchPeer(Peer):
    """A Rust port with only a per-text encode; it releases the GIL, so threads scale."""

    def many(self, tok, docs, n):
        if self.args.peer_parallel == "processes":
            return pool_runner(self.encode_fn(tok), docs, n)
        return thread_runner(self.encode_fn(tok), docs, n)

    def one(self, tok, docs):
        enc = self.encode_fn(tok)
        return lambda: [enc(d) for d in docs]

    @property
    def apin(self):
        if self.args.peer_parallel == "processes":
            return "`multiprocessing.Pool(N).map(encode, docs)`"
        return "`ThreadPoolExecutor(N).map(encode, docs)`"


class BytepiecePy(NoBatchPeer):
    key = "bytepiece-py"
    api1 = "`encode(doc)` loop"

    def load(self):
        import bytepiece_py

        return bytepiece_py.Tokenizer(self.args.model)

    def encode_fn(self, tok):
        return tok.encode


class RsBytepiece(NoBatchPeer):
    key = "rs-bytepiece"
    api1 = "`encode(doc)` loop"

    def load(self):
        import rs_bytepiece

        return rs_bytepiece.Tokenizer(self.args.model)

    def encode_fn(self, tok):
        return tok.encode  # norm=True (NFC) by default, like the original


class SentencePiece(Peer):
    key = "sentencepiece"
    api1 = "`encode(docs, out_type=int, num_threads=1)`"
    apin = "`encode(docs, out_type=int, num_threads=N)`"

    def prepare(self):
        """Convert the model once (not timed); returns the .model path."""
        import bytepiece

        out = os.path.join(self.args.tmpdir, "spm-" + os.path.basename(self.args.model))
        bp = bytepiece.Tokenizer(self.args.model)
        try:
            bp.convert_to_sentencepiece(out)
            self.notes = "model converted by the original's `convert_to_sentencepiece`"
        except UnicodeDecodeError:
            import bytepiece_rs

            # ours with exact_original: the original's conversion, the pieces it cannot hold UNUSED
            lost = len(bytepiece_rs.Tokenizer(self.args.model).convert_to_sentencepiece(out, exact_original=True))
            self.notes = (
                "the original's `convert_to_sentencepiece` fails on this model "
                "(UnicodeDecodeError: %d pieces are not valid UTF-8, which a "
                "SentencePiece model cannot hold); converted with the same code, "
                "those pieces made UNUSED placeholders" % lost
            )
        self.path = out

    nfc = False  # identity normaliser

    def load(self):
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=self.path)

    def one(self, tok, docs):
        return lambda: tok.encode(docs, out_type=int, num_threads=1)

    def many(self, tok, docs, n):
        return (lambda: tok.encode(docs, out_type=int, num_threads=n)), (lambda: None)


class Tiktoken(Peer):
    """tiktoken with a byte-level BPE trained by HF tokenizers (--tiktoken-hf): its own
    vocabulary, not the BytePiece model's (see tiktoken_bpe.py)."""

    key = "tiktoken"
    api1 = "`encode_ordinary_batch(docs, num_threads=1)`"
    apin = "`encode_ordinary_batch(docs, num_threads=N)`"

    def prepare(self):
        """Convert the HF model to tiktoken's ranks once (not timed)."""
        from tiktoken_bpe import ranks_from_hf

        if not self.args.tiktoken_hf:
            raise RuntimeError("needs --tiktoken-hf (a HF byte-level BPE tokenizer.json)")
        self.ranks = ranks_from_hf(self.args.tiktoken_hf)
        self.notes = (
            "a different vocabulary: the %d-token byte-level BPE trained by HF tokenizers in `%s`, "
            "converted to tiktoken ranks (GPT-2 pat_str, no special tokens); its ids cannot "
            "equal the original's, compare bytes/token instead"
            % (len(self.ranks), os.path.basename(self.args.tiktoken_hf))
        )

    def load(self):
        import tiktoken
        from tiktoken_bpe import GPT2_PAT

        return tiktoken.Encoding("hf-bytelevel-bpe", pat_str=GPT2_PAT, mergeable_ranks=self.ranks, special_tokens={})

    nfc = False

    def decode(self, tok, ids):
        return tok.decode_bytes(ids).decode("utf-8", "replace")

    def one(self, tok, docs):
        return lambda: tok.encode_ordinary_batch(docs, num_threads=1)

    def many(self, tok, docs, n):
        return (lambda: tok.encode_ordinary_batch(docs, num_threads=n)), (lambda: None)


PEER_CLASSES = {
    "original": [Original],
    "ours": [Ours, OursNumpy, OursLoop],
    "bytepiece-py": [BytepiecePy],
    "rs-bytepiece": [RsBytepiece],
    "sentencepiece": [SentencePiece],
    "tiktoken": [Tiktoken],
}


def compare(ref, got):
    """(documents equal, documents, ids that differ in count)"""
    same = sum(1 for a, b in zip(ref, got) if a == b)
    return same, len(ref)


# --------------------------------------------------------------------------- main


def fmt(x, nd=2):
    if x is None:
        return "—"
    if isinstance(x, float):
        if x >= 100:
            return "%.0f" % x
        if x >= 10:
            return "%.1f" % x
        return ("%%.%df" % nd) % x
    return str(x)


def released_model(name):
    """NAME.model unzipped from SHARED/models/NAME.zip (see shared_dir) into a cache folder; its path."""
    import tempfile
    import zipfile

    cache = os.path.join(tempfile.gettempdir(), "bytepiece-bench-models")
    out = os.path.join(cache, name + ".model")
    if not os.path.exists(out):
        archive = os.path.join(shared_dir(), "models", name + ".zip")
        os.makedirs(cache, exist_ok=True)
        with zipfile.ZipFile(archive) as z:
            member = next(m for m in z.namelist() if m.endswith(".model"))
            with open(out + ".tmp", "wb") as f:
                f.write(z.read(member))
        os.replace(out + ".tmp", out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model",
        default=os.environ.get("BYTEPIECE_MODEL"),
        help="BytePiece model (JSON) [$BYTEPIECE_MODEL, else bytepiece.plus.80k unzipped from ../shared/models]",
    )
    add_corpus_argument(ap)
    ap.add_argument(
        "--text",
        help='encode this file instead (a .jsonl\'s "text" fields, '
        "else paragraphs grouped into documents of ~--doc-kb)",
    )
    ap.add_argument("--mb", type=float, default=20.0, help="cap on the text size, MB of UTF-8 [%(default)s]")
    ap.add_argument("--doc-kb", type=float, default=16.0, help="document size for --text files [%(default)s]")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="N for the 'all cores' column [%(default)s = all cores]",
    )
    ap.add_argument(
        "--peers",
        default=None,
        help="comma list out of %s [all; tiktoken only with --tiktoken-hf]" % ",".join(ALL_PEERS),
    )
    ap.add_argument(
        "--tiktoken-hf",
        metavar="JSON",
        help="HF tokenizers byte-level BPE (tokenizer.json) that tiktoken's Encoding is built "
        "from (bench/tiktoken_bpe.py); without it tiktoken is not run",
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median) [%(default)s]")
    ap.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop repeating a measurement once its runs took this many seconds [%(default)s]",
    )
    ap.add_argument(
        "--peer-parallel",
        choices=["threads", "processes"],
        default="threads",
        help="N-core mode for bytepiece-py / rs-bytepiece, which have no batch API [%(default)s]",
    )
    ap.add_argument(
        "--out",
        default=os.path.join(HERE, "results", "encode.md"),
        help="markdown results file (a .json is written beside it) [%(default)s]",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each tokenizer, wait up to this long for other processes to use < 10%% of the CPU [%(default)s]",
    )
    ap.add_argument("--no-check", action="store_true", help="do not fail when ours differs from the original")
    args = ap.parse_args(argv)

    if args.peers is None:
        args.peers = ",".join(p for p in ALL_PEERS if p != "tiktoken" or args.tiktoken_hf)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in peers if p not in ALL_PEERS]
    if bad:
        ap.error("unknown peers: %s" % ", ".join(bad))
    if args.model is None:
        args.model = released_model("bytepiece.plus.80k")
    if not os.path.exists(args.model):
        ap.error("model not found: %s" % args.model)
    n = max(1, args.threads)
    cap = args.mb * MB

    # ---- text
    t0 = time.perf_counter()
    if args.text:
        docs = file_docs(args.text, cap, args.doc_kb * 1000)
        by_lang = None
        text_desc = "`%s`" % args.text
    else:
        docs, by_lang, files = corpus_mix(args.corpus, cap)
        text_desc = "corpus `%s` (%s): zh/en/code documents interleaved 3:5:0.5 by bytes, test documents first" % (
            args.corpus,
            ", ".join(files),
        )
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    sha = hashlib.sha256("\n".join(docs).encode("utf-8")).hexdigest()
    print(
        "text: %d documents, %.2f MB UTF-8, %d chars (read in %.1f s)%s"
        % (
            len(docs),
            nbytes / MB,
            sum(map(len, docs)),
            time.perf_counter() - t0,
            "" if not by_lang else "; " + ", ".join("%s %.2f MB" % (lg, b / MB) for lg, b in by_lang.items()),
        ),
        flush=True,
    )
    if not docs:
        raise SystemExit("no text")

    machine = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }

    def versions_later():
        return {
            "bytepiece-rs (ours)": version_of("bytepiece-rs", "bytepiece_rs"),
            "bytepiece": version_of("bytepiece"),
            "bytepiece-py": version_of("bytepiece-py", "bytepiece_py"),
            "rs-bytepiece": version_of("rs-bytepiece", "rs_bytepiece"),
            "sentencepiece": version_of("sentencepiece"),
            "tiktoken": version_of("tiktoken"),
            "protobuf": version_of("protobuf"),
            "numpy": version_of("numpy"),
            "pyahocorasick": version_of("pyahocorasick"),
        }

    warm = docs[: max(n * 4, 16)]
    busy0, own0 = cpu_busy_seconds(), own_cpu_seconds()
    wall0 = time.perf_counter()

    rows, live, ref, row_tok = [], [], None, {}
    tmp = tempfile.TemporaryDirectory()
    args.tmpdir = tmp.name

    def fail(row, e):
        row["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        print("   FAILED: %s" % row["error"], flush=True)
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()

    # ---- set-up: convert, load (timed), warm up, start pools; original first (the reference)
    if args.wait_idle > 0:
        wait_idle(args.wait_idle)
    for name in [p for p in ALL_PEERS if p in peers]:
        for cls in PEER_CLASSES[name]:
            peer = cls(args)
            row = {
                "key": peer.key,
                "tokenizer": PEER_TITLES[name],
                "api1": peer.api1,
                "apin": peer.apin,
                "load_s": None,
                "load_runs": [],
                "mbps1": None,
                "mbpsn": None,
                "runs1": [],
                "runsn": [],
                "cpu1": [],
                "tokens": None,
                "tokens_n": None,
                "same_docs": None,
                "same_docs_n": None,
                "roundtrip_fail": None,
                "error": None,
                "notes": "",
                "_busy": 0.0,
                "_own": 0.0,
                "_wall": 0.0,
            }
            rows.append(row)
            print("== %s %s" % (row["tokenizer"], peer.api1), flush=True)
            try:
                if isinstance(peer, (SentencePiece, Tiktoken)):
                    peer.prepare()
                load_s, load_runs, tok = timed_loads(peer.load, 3, 15.0)
                row_tok[row["key"]] = tok
                row["load_s"], row["load_runs"] = load_s, load_runs
                print("   load %.3f s %s" % (load_s, ["%.3f" % x for x in load_runs]), flush=True)
                peer.one(tok, warm)()  # warm-up (lazy initialisation, caches), untimed
                run1 = peer.one(tok, docs)
                runn, close = peer.many(tok, docs, n)
                live.append((row, peer, {"1": run1, "n": runn}, close))
            except Exception as e:  # a peer that cannot run is reported, not fatal
                fail(row, e)
                if isinstance(e, ImportError):
                    break  # the package is missing: skip its other APIs
            finally:
                row["notes"] = peer.notes

    # ---- measurement: interleaved rounds, so a drift in machine speed hits every row alike
    try:
        for rnd in range(max(1, args.repeat)):
            if args.wait_idle > 0 and rnd:
                wait_idle(args.wait_idle)
            print("-- round %d/%d" % (rnd + 1, args.repeat), flush=True)
            for mode in ("1", "n"):
                for row, peer, runs, close in live:
                    times = row["runs" + mode]
                    if row["error"] or (times and sum(times) >= args.budget):
                        continue
                    gc.collect()
                    b0, o0 = cpu_busy_seconds(), own_cpu_seconds()
                    try:
                        t0 = time.perf_counter()
                        res = runs[mode]()
                        dt = time.perf_counter() - t0
                    except Exception as e:
                        fail(row, e)
                        continue
                    row["_busy"] += cpu_busy_seconds() - b0
                    own = own_cpu_seconds() - o0
                    row["_own"] += own
                    row["_wall"] += dt
                    times.append(dt)
                    if mode == "1":
                        row["cpu1"].append(own)
                    suffix = "" if mode == "1" else "_n"
                    if len(times) == 1:  # first run: count and compare the ids
                        res = type(peer).as_lists(res)
                        row["tokens" + suffix] = sum(map(len, res))
                        if ref is None and row["key"] == "original" and mode == "1":
                            ref = res
                        if ref is not None:
                            row["same_docs" + suffix] = compare(ref, res)
                        if mode == "1":
                            row["roundtrip_fail"] = roundtrip_fails(peer, row_tok[row["key"]], docs, res)
                    del res
                    mbps = nbytes / dt / MB
                    same = row["same_docs" + suffix]
                    print(
                        "   %-14s %-10s %7.2f MB/s  %d ids%s"
                        % (
                            row["key"],
                            "1 thread" if mode == "1" else "%d threads" % n,
                            mbps,
                            row["tokens" + suffix] or 0,
                            "" if same is None or len(times) > 1 else ", ids = original's on %d/%d docs" % same,
                        ),
                        flush=True,
                    )
    finally:
        for row, peer, runs, close in live:
            try:
                close()
            except Exception:
                pass
        live = row_tok = None
        tmp.cleanup()
    for row in rows:
        for mode in ("1", "n"):
            if row["runs" + mode]:
                row["mbps" + mode] = nbytes / statistics.median(row["runs" + mode]) / MB
        row["mbps_cpu1"] = (
            nbytes / statistics.median(row["cpu1"]) / MB if row["cpu1"] and min(row["cpu1"]) > 0 else None
        )
        other = row.pop("_busy") - row.pop("_own")
        wall_r = row.pop("_wall")
        row["other_cpu_share"] = max(0.0, other) / (wall_r * (os.cpu_count() or 1)) if wall_r > 0 else None

    wall = time.perf_counter() - wall0
    other = cpu_busy_seconds() - busy0 - (own_cpu_seconds() - own0)
    machine["loadavg_end"] = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None
    machine["other_cpu_share"] = max(0.0, other) / (wall * (os.cpu_count() or 1)) if wall > 0 else None

    versions = versions_later()
    md = render(args, machine, versions, rows, docs, nbytes, by_lang, sha, text_desc, n)
    print()
    print(md)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "machine": machine,
                "versions": versions,
                "model": args.model,
                "text": {"desc": text_desc, "documents": len(docs), "bytes": nbytes, "by_lang": by_lang, "sha256": sha},
                "threads": n,
                "tiktoken_hf": args.tiktoken_hf,
                "rows": rows,
            },
            f,
            indent=1,
            default=str,
        )
    print("written: %s" % args.out)

    ours = next((r for r in rows if r["key"] == "ours"), None)
    if ours and not args.no_check and ref is not None:
        problems = []
        for r in rows:
            if r["key"].startswith("ours") and not r["error"]:
                for k in ("same_docs", "same_docs_n"):
                    if r[k] is not None and r[k][0] != r[k][1]:
                        problems.append(
                            "%s %s: ids differ from the original on %d of %d documents"
                            % (r["key"], k, r[k][1] - r[k][0], r[k][1])
                        )
        if problems:
            print("CHECK FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
    return 0


def render(args, machine, versions, rows, docs, nbytes, by_lang, sha, text_desc, n):
    L = []
    L.append("# Encode benchmark\n")
    L.append("- date: %s" % machine["date"])
    L.append(
        "- machine: %s, %s cores, %s; Python %s"
        % (machine["cpu"], machine["cores"], machine["platform"], machine["python"])
    )
    share = machine.get("other_cpu_share")
    L.append(
        "- load average at start / end: %s / %s; CPU used by other processes during the run: %s"
        % (
            " ".join(machine["loadavg_start"] or []),
            " ".join(machine["loadavg_end"] or []),
            "n/a" if share is None else "%.0f%% of the machine" % (100 * share),
        )
    )
    L.append("- model: `%s`" % args.model)
    L.append(
        "- text: %s; %d documents, %.2f MB (UTF-8)%s; sha256 of the documents joined by `\\n`: `%s`"
        % (
            text_desc,
            len(docs),
            nbytes / MB,
            "" if not by_lang else " = " + " + ".join("%s %.2f MB" % (lg, b / MB) for lg, b in by_lang.items()),
            sha[:16],
        )
    )
    L.append("- versions: " + ", ".join("%s %s" % (k, v or "not installed") for k, v in versions.items()))
    L.append(
        "- MB/s = UTF-8 bytes of input / wall seconds (MB = 10^6 bytes), median of the runs shown "
        "(at most %d runs; fewer once a measurement took %g s), the tokenizers taking turns round by "
        "round. Load = median of up to 3 loads "
        'of the model file (in the page cache), imports excluded. N = %d. "others\' CPU" = share of '
        "the machine's CPU time used by other processes while that row was measured (noise; "
        'should be ~0%%). "MB/CPU-s" = the same bytes / CPU seconds of this process in the '
        "1-thread runs (median): less sensitive to other load than wall time. Round-trip fails: documents "
        "whose 1-thread ids decode to something else than the document (than NFC(document) for the "
        "BytePiece tokenizers, which normalise to NFC)." % (args.repeat, args.budget, n)
    )
    L.append("")
    L.append(
        "| tokenizer | API: 1 thread | API: N = %d | load (s) | 1 thread MB/s | %d threads MB/s | 1 thread MB/CPU-s | runs | ids | bytes/id | round-trip fails (docs) | same ids as original (docs) | others' CPU |"
        % (n, n)
    )
    L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        if r["error"]:
            L.append(
                "| %s | %s | %s | %s | — | — | — | — | — | — | — | failed: %s | |"
                % (r["tokenizer"], r["api1"], r["apin"], fmt(r["load_s"], 3), r["error"].replace("|", "\\|"))
            )
            continue
        same = []
        for k in ("same_docs", "same_docs_n"):
            if r[k] is not None:
                same.append("%d/%d" % r[k])
        same_s = " / ".join(same) if same else "reference"
        if r["key"] == "original":
            same_s = "reference (Pool: %s)" % ("%d/%d" % r["same_docs_n"] if r["same_docs_n"] else "?")
        oc = r.get("other_cpu_share")
        L.append(
            "| %s | %s | %s | %s | %s | %s | %s | %d / %d | %s | %s | %s | %s | %s |"
            % (
                r["tokenizer"],
                r["api1"],
                r["apin"],
                fmt(r["load_s"], 3),
                fmt(r["mbps1"]),
                fmt(r["mbpsn"]),
                fmt(r.get("mbps_cpu1")),
                len(r["runs1"]),
                len(r["runsn"]),
                "{:,}".format(r["tokens"]) if r["tokens"] is not None else "—",
                "%.3f" % (nbytes / r["tokens"]) if r["tokens"] else "—",
                "—" if r["roundtrip_fail"] is None else "%d/%d" % (r["roundtrip_fail"], len(docs)),
                same_s,
                "—" if oc is None else "%.0f%%" % (100 * oc),
            )
        )
    notes = [(r["tokenizer"], r["notes"]) for r in rows if r["notes"]]
    if notes:
        L.append("")
        for t, s in dict(notes).items():
            L.append("- %s: %s" % (t, s))

    by = {r["key"]: r for r in rows if not r["error"]}

    def ratio(a, ka, b, kb):
        """speed of a / speed of b: (ratio of the medians, (min, max) over the rounds)"""
        ra, rb = by.get(a), by.get(b)
        if not ra or not rb or not ra.get(ka) or not rb.get(kb):
            return None

        def src(k):
            return "cpu1" if k == "mbps_cpu1" else "runs" + k[4:]

        ta, tb = ra[src(ka)], rb[src(kb)]
        per = [y / x for x, y in zip(ta, tb)]  # runs are paired by round
        return ra[ka] / rb[kb], (min(per), max(per)) if per else None

    L.append("")
    L.append("| ratio (ours = `encode_batch`) | value | per round (min–max) | target | met |")
    L.append("|---|---:|---:|---:|---|")
    checks = [
        ("ours / original, 1 thread", ratio("ours", "mbps1", "original", "mbps1"), 15.0),
        ("ours / SentencePiece, 1 thread", ratio("ours", "mbps1", "sentencepiece", "mbps1"), 4.0),
        ("ours / original, 1 thread, by CPU time", ratio("ours", "mbps_cpu1", "original", "mbps_cpu1"), None),
        ("ours / SentencePiece, 1 thread, by CPU time", ratio("ours", "mbps_cpu1", "sentencepiece", "mbps_cpu1"), None),
        ("ours %d threads / ours 1 thread" % n, ratio("ours", "mbpsn", "ours", "mbps1"), 1.8 if n >= 2 else None),
        (
            "ours / original, %d threads (original: Pool of %d processes)" % (n, n),
            ratio("ours", "mbpsn", "original", "mbpsn"),
            None,
        ),
        ("ours / SentencePiece, %d threads" % n, ratio("ours", "mbpsn", "sentencepiece", "mbpsn"), None),
        ("ours / bytepiece-py, 1 thread", ratio("ours", "mbps1", "bytepiece-py", "mbps1"), None),
        ("ours / rs-bytepiece, 1 thread", ratio("ours", "mbps1", "rs-bytepiece", "mbps1"), None),
        ("ours / tiktoken (own vocabulary), 1 thread", ratio("ours", "mbps1", "tiktoken", "mbps1"), None),
        ("ours / tiktoken (own vocabulary), %d threads" % n, ratio("ours", "mbpsn", "tiktoken", "mbpsn"), None),
        ("ours `encode_batch_numpy` / `encode_batch`, 1 thread", ratio("ours-numpy", "mbps1", "ours", "mbps1"), None),
    ]
    for label, rv, target in checks:
        v, rng = rv if rv else (None, None)
        L.append(
            "| %s | %s | %s | %s | %s |"
            % (
                label,
                "—" if v is None else "%.2f×" % v,
                "—" if not rng else "%.2f–%.2f" % rng,
                "—" if target is None else "≥ %g×" % target,
                "" if target is None or v is None else ("yes" if v >= target else "**no**"),
            )
        )
    o = by.get("ours")
    load = o["load_s"] if o else None
    L.append(
        "| ours model load (s) | %s | %s | ≤ 0.1 s | %s |"
        % (
            "—" if load is None else "%.3f" % load,
            "—" if not o or not o.get("load_runs") else "%.3f–%.3f" % (min(o["load_runs"]), max(o["load_runs"])),
            "" if load is None else ("yes" if load <= 0.1 else "**no**"),
        )
    )
    if o and by.get("original"):
        L.append("")
        L.append(
            "ids: ours %s, original %s -> %s."
            % (
                "{:,}".format(o["tokens"]),
                "{:,}".format(by["original"]["tokens"]),
                "same count" if o["tokens"] == by["original"]["tokens"] else "**DIFFERENT COUNT**",
            )
        )
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
