#!/usr/bin/env python3
"""Generate the golden fixtures in tests/golden/ with the ORIGINAL bytepiece 0.6.3.

The tests (tests/test_parity.py) compare bytepiece_rs against these files and never need the
original package. This script needs it (``shared/reference/install_original.sh``: bytepiece
0.6.3 + pyahocorasick 2.3.1 built with AHOCORASICK_BYTES=1) and numpy.

How the committed fixtures were made (2 CPUs, AVX512F; about 3 minutes)::

    python3 tests/golden/make_golden.py --shared /work/shared --corpus /work/corpus --jobs 2

with the corpus built by ``shared/corpus/build_corpus.sh /work/corpus`` (full mode; its
MANIFEST.tsv sha256 is stored in corpus.json.gz). Re-running with the same inputs, the same
CPU family and the same package versions gives byte-identical files (gzip mtime 0, no dates).

Files written (all gzip'd JSON, each with a "meta" block):

- edge_cases.json.gz: for every model and every text of tests/edge_cases.py:edge_cases():
  n ids, hash, the ids when n <= 5000; tokenize() output (base64 pieces) for TOKENIZE_CASES;
  decode() of chosen id lists (partial UTF-8 pieces, specials, random ids).
- ties.json.gz: small toy models (dicts in the original's format, all 256 bytes) whose pieces
  have equal or product-equal counts, so segmentations tie; texts over their letters and the
  original's ids.
- samples.json.gz: per model, [n, hash] of encode(whole text) of shared/corpus/sample/{zh,en,code}.txt.
- corpus.json.gz: per model, [n, hash] per document of edge_cases.parity_corpus(corpus)
  (>= 7,000,000 UTF-8 bytes per language, 21+ MB), plus the selection's sha256.

Hash of an id list (everywhere):
    hashlib.blake2b(np.asarray(ids, dtype='<u4').tobytes(), digest_size=8).hexdigest()

A note on np.log: the original scores a piece as np.log(count) - np.log(total). On CPUs with
AVX512F numpy uses its own SIMD log, which differs from the C library's log (what Rust's f64::ln
calls) in the last bit for a few integers (111 of 1..2,000,000; e.g. 9170, 19143). The metadata
records the CPU flags, the pieces of each model whose count is such an integer, and, for every
fixture, where the original would have given other ids had it used the C library's log
("libm_diff"). The toy model "numpy_log_tie" is built so that the two logs choose different
segmentations.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import multiprocessing as mp
import random
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import edge_cases as ec  # noqa: E402
from edge_cases import MODEL_NAMES  # noqa: E402
from golden_io import b64, environment, write_gz  # noqa: E402

MAX_STORED_IDS = 5000


def ids_hash(ids) -> str:
    return hashlib.blake2b(np.asarray(ids, dtype="<u4").tobytes(), digest_size=8).hexdigest()


def meta() -> dict:
    return {
        **environment("tests/golden/make_golden.py"),
        "hash": "blake2b(np.asarray(ids, dtype='<u4').tobytes(), digest_size=8).hexdigest()",
        "max_stored_ids": MAX_STORED_IDS,
    }


# --------------------------------------------------------------------------- models


def load_model_dict(shared: Path, name: str) -> tuple[dict, str, str]:
    zpath = shared / "models" / f"{name}.zip"
    with zipfile.ZipFile(zpath) as z:
        member = [n for n in z.namelist() if n.endswith(".model")]
        assert len(member) == 1, (zpath, z.namelist())
        data = z.read(member[0])
    return (json.loads(data), hashlib.sha256(zpath.read_bytes()).hexdigest(), hashlib.sha256(data).hexdigest())


def libm_variant(tok):
    """The same tokenizer, scores from math.log (the C library) instead of np.log."""
    import ahocorasick

    log_total = math.log(sum(tok._pieces.values()))
    a = ahocorasick.Automaton()
    for k, v in tok._pieces.items():
        a.add_word(k, (len(k), math.log(v) - log_total))
    a.make_automaton()
    other = object.__new__(type(tok))
    other.__dict__.update(tok.__dict__)
    other._automaton = a
    return other


def numpy_log_mismatches(pieces: dict) -> list:
    """[[b64 piece, count]] for the pieces whose np.log(count) != math.log(count) here."""
    out = []
    for k, v in pieces.items():
        c = v[-1]
        if float(np.log(c)) != math.log(c):
            out.append([k, c])
    total = sum(v[-1] for v in pieces.values())
    if float(np.log(total)) != math.log(total):
        out.append(["<total>", total])
    return out


# --------------------------------------------------------------------------- per model work


def decode_cases(tok, seed: int) -> tuple[list, int]:
    """(ids, expected text) pairs exercising decode(); partial UTF-8 pieces are dropped by the
    original's errors='ignore' only after all pieces are joined."""
    p2i = tok._piece2id
    by = lambda *bs: [p2i[bytes([b])] for b in bs]  # noqa: E731
    enc = tok.encode
    lists = [
        [],
        enc("中文abc"),
        by(0xE4, 0xB8, 0xAD),  # three 1-byte pieces forming 中
        by(0xE4) + by(ord("a")) + by(0xB8),  # lone lead byte, 'a', lone continuation
        by(0xE4, 0xB8) + enc("x"),  # truncated sequence then ascii
        [0, 1, 2] + enc("hi") + [2, 1],  # specials are skipped
        by(0xF0, 0x9F, 0x98) + enc("ok"),  # truncated 4-byte sequence
        by(0xF0, 0x9F, 0x98, 0x80),  # complete 😀 from bytes
        by(0xED, 0xA0, 0x80) + enc("s"),  # encoded surrogate: invalid
        by(0xFF, 0xC0, 0xAF, 0xC1, 0xBF, 0xF5) + enc("y"),  # never-valid bytes, overlong
        by(0xE0, 0x80, 0x80) + enc("z"),  # overlong 3-byte
        by(0xF4, 0x90, 0x80, 0x80) + enc("w"),  # > U+10FFFF
        enc("\ufffd") + by(0xE4) + enc("\ufffd"),  # real U+FFFD survives, junk goes
        by(0xE4) + by(0xE4, 0xB8, 0xAD),  # lead byte followed by a full char
        enc("a\n\nb") + by(0x80) + enc("\r\n"),
    ]
    # multi-byte pieces that are not valid UTF-8 on their own
    partial = []
    for i in range(3, tok.vocab_size):
        p = tok._id2piece[i]
        if len(p) > 1:
            try:
                p.decode("utf-8")
            except UnicodeDecodeError:
                partial.append(i)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(partial, min(40, len(partial))))
    lists += [[i] for i in chosen[:20]]
    lists.append(chosen)  # partial pieces glued together
    for _ in range(3):
        lists.append([rng.randrange(0, tok.vocab_size) for _ in range(300)])  # random ids
    return [[ids, tok.decode(ids)] for ids in lists], len(partial)


def encode_record(tok, libm, text: str, store_ids: bool):
    ids = tok.encode(text)
    rec = {"n": len(ids), "hash": ids_hash(ids)}
    if store_ids and len(ids) <= MAX_STORED_IDS:
        rec["ids"] = ids
    ids2 = libm.encode(text)
    if ids2 != ids:
        rec["libm_diff"] = {"n": len(ids2), "hash": ids_hash(ids2)}
    return ids, rec


def check_roundtrip(tok, text: str, ids) -> None:
    nfc = unicodedata.normalize("NFC", text)
    assert tok.decode(ids) == nfc, "decode(encode(t)) != NFC(t)"
    assert sum(len(tok._id2piece[i]) for i in ids) == len(nfc.encode("utf-8"))


def work_model(args) -> dict:
    name, shared, corpus_dir, seed = args
    import bytepiece

    t0 = time.time()
    pieces, zip_sha, model_sha = load_model_dict(Path(shared), name)
    tok = bytepiece.Tokenizer(pieces)
    libm = libm_variant(tok)
    out = {
        "name": name,
        "zip_sha256": zip_sha,
        "model_sha256": model_sha,
        "vocab_size": tok.vocab_size,
        "numpy_log_mismatch": numpy_log_mismatches(pieces),
    }

    # edge cases
    cases = ec.edge_cases(Path(shared))
    edge = {}
    for cname, text in cases.items():
        ids, rec = encode_record(tok, libm, text, True)
        check_roundtrip(tok, text, ids)
        assert ec.ids_hash(ids) == rec["hash"]
        edge[cname] = rec
    out["edge"] = edge
    out["tokenize"] = {c: [b64(p) for p in tok.tokenize(cases[c])] for c in ec.TOKENIZE_CASES}
    out["decode"], out["n_partial_utf8_pieces"] = decode_cases(tok, seed)
    out["bos_eos"] = tok.encode("hi\n", add_bos=True, add_eos=True)
    t1 = time.time()

    # sample files: whole text as one string
    samples = {}
    for lang in ec.SAMPLE_LANGS:
        text = ec.read_sample(lang, Path(shared))
        ids, rec = encode_record(tok, libm, text, False)
        check_roundtrip(tok, text, ids)
        samples[lang] = rec
    out["samples"] = samples
    t2 = time.time()

    # corpus parity
    if corpus_dir:
        docs = ec.parity_corpus(corpus_dir)
        rows, libm_diff, bad_roundtrip = [], {}, 0
        for i, (_, text) in enumerate(docs):
            ids = tok.encode(text)
            rows.append([len(ids), ids_hash(ids)])
            if tok.decode(ids) != unicodedata.normalize("NFC", text):
                bad_roundtrip += 1
            ids2 = libm.encode(text)
            if ids2 != ids:
                libm_diff[str(i)] = [len(ids2), ids_hash(ids2)]
        out["corpus"] = {"rows": rows, "libm_diff": libm_diff, "roundtrip_failures": bad_roundtrip}
    t3 = time.time()
    out["seconds"] = {
        "edge": round(t1 - t0, 1),
        "samples": round(t2 - t1, 1),
        "corpus_incl_libm_variant": round(t3 - t2, 1),
    }
    print(f"[{name}] done: {out['seconds']}", flush=True)
    return out


# --------------------------------------------------------------------------- toy tie models


def toy_model(counts: dict[bytes, int], default: int = 1) -> dict:
    """A model dict in the original's format: all 256 bytes (count `default` unless given) plus the
    given pieces; ids from 3 in (len, bytes) order, as Trainer.dump writes them."""
    allc = {bytes([i]): default for i in range(256)}
    allc.update(counts)
    items = sorted(allc.items(), key=lambda t: (len(t[0]), t[0]))
    return {b64(k): [i + 3, k.decode(errors="ignore"), v] for i, (k, v) in enumerate(items)}


def toy_models() -> dict[str, dict]:
    C = 10
    equal = {p.encode(): C for p in "a b c d ab bc cd da abc bcd cda dab abcd bcda cdab dabc ac bd".split()}
    runs = {p.encode(): 7 for p in "a b c d aa aaa aaaa ab ba aba bab abab bb bbb cd dc cdc dcd cc".split()}
    # product-equal counts: a|bc vs ab|c (3*4 == 2*6); c|d vs cd where c*d == cd*total
    near = {
        b"a": 3,
        b"b": 5,
        b"c": 6,
        b"d": 400,
        b"ab": 2,
        b"bc": 4,
        b"cd": 2,
        b"abc": 1,
        b"bcd": 8,
        b"da": 12,
        b"dab": 24,
    }
    total = 1200
    other_bytes = 256 - len([k for k in near if len(k) == 1]) - 1  # count 1 each; b"z" fills up
    near[b"z"] = total - sum(near.values()) - other_bytes
    assert near[b"z"] > 0
    # a*b == ab*total mathematically; with AVX512F np.log 'a|b' wins, with libm log 'ab' wins
    # (log(9170) differs in the last bit between numpy's SIMD log and glibc's).
    A, B, Z, T = 22008, 22455, 9170, 53892
    nl = {b"a": A, b"b": B, b"ab": Z}
    nl[b"z"] = T - (A + B + Z + 253)
    models = {
        "equal_counts": toy_model(equal),
        "runs": toy_model(runs),
        "product_ties": toy_model(near),
        "numpy_log_tie": toy_model(nl),
    }
    assert sum(v[-1] for v in models["product_ties"].values()) == total
    assert sum(v[-1] for v in models["numpy_log_tie"].values()) == T
    return models


def toy_texts(letters: str, seed: int) -> list[str]:
    texts = []
    for n in range(1, 6 if len(letters) <= 4 else 5):
        # all strings of length n over letters, in lexicographic order
        idx = [0] * n
        while True:
            texts.append("".join(letters[i] for i in idx))
            j = n - 1
            while j >= 0 and idx[j] == len(letters) - 1:
                idx[j] = 0
                j -= 1
            if j < 0:
                break
            idx[j] += 1
    rng = random.Random(seed)
    for n in [6, 7, 8, 10, 13, 17, 25, 40, 64, 100, 200, 500] * 4 + [1000, 5000, 20000]:
        texts.append("".join(rng.choice(letters) for _ in range(n)))
    for n in [10, 50, 300]:  # with newlines, spaces and other bytes mixed in
        texts.append("".join(rng.choice(letters + " \n\nxé中") for _ in range(n)))
    texts += [letters[0] * n for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 100, 1001)]
    texts += ["", "\n", letters + "\n" + letters[::-1] + "\n\n" + letters]
    return texts


def make_ties(seed: int) -> dict:
    import bytepiece

    out = {}
    for name, pieces in toy_models().items():
        tok = bytepiece.Tokenizer(pieces)
        libm = libm_variant(tok)
        letters = "".join(
            sorted(
                {
                    chr(b)
                    for k in pieces
                    for b in base64.b64decode(k)
                    if pieces[k][-1] > 1 and len(base64.b64decode(k)) > 1
                }
            )
        )
        texts = toy_texts(letters, seed)
        ids = [tok.encode(t) for t in texts]
        libm_ids = [libm.encode(t) for t in texts]
        for t, i in zip(texts, ids):
            check_roundtrip(tok, t, i)
        diff = {str(j): b for j, (a, b) in enumerate(zip(ids, libm_ids)) if a != b}
        out[name] = {
            "pieces": pieces,
            "letters": letters,
            "texts": texts,
            "ids": ids,
            "libm_diff": diff,
            "tokenize": [[b64(p) for p in tok.tokenize(t)] for t in texts[:30]],
        }
        print(
            f"[ties] {name}: {len(texts)} texts, {sum(map(len, ids))} ids, {len(diff)} differ with libm log", flush=True
        )
    assert out["numpy_log_tie"]["libm_diff"] or not meta()["cpu_avx512f"]
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ec.shared_dir()), help="shared folder (models/, corpus/sample/)")
    ap.add_argument("--corpus", default=None, help="built corpus dir ({lang}.train.jsonl); omit to skip corpus.json.gz")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    shared, out_dir = Path(args.shared), Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    m = meta()
    print(json.dumps(m), flush=True)

    ties = make_ties(args.seed)
    write_gz(out_dir / "ties.json.gz", {"meta": m, "models": ties})

    order = sorted(MODEL_NAMES, key=lambda n: "160k" not in n)  # biggest first
    work = [(n, str(shared), args.corpus, args.seed) for n in order]
    if args.jobs > 1:
        with mp.get_context("fork").Pool(args.jobs) as pool:
            results = {r["name"]: r for r in pool.imap_unordered(work_model, work)}
    else:
        results = {r["name"]: r for r in map(work_model, work)}
    results = {n: results[n] for n in MODEL_NAMES}

    cases = ec.edge_cases(shared)
    models_meta = {
        n: {
            k: r[k] for k in ("zip_sha256", "model_sha256", "vocab_size", "numpy_log_mismatch", "n_partial_utf8_pieces")
        }
        for n, r in results.items()
    }
    m_edge = dict(m, models=models_meta)
    write_gz(
        out_dir / "edge_cases.json.gz",
        {
            "meta": m_edge,
            "texts_sha256": {c: ec.sha256_text(t) for c, t in cases.items()},
            "texts_len": {c: len(t) for c, t in cases.items()},
            "models": {
                n: {"edge": r["edge"], "tokenize": r["tokenize"], "decode": r["decode"], "bos_eos": r["bos_eos"]}
                for n, r in results.items()
            },
        },
    )
    write_gz(
        out_dir / "samples.json.gz",
        {
            "meta": m_edge,
            "sha256": {lang: ec.sha256_text(ec.read_sample(lang, shared)) for lang in ec.SAMPLE_LANGS},
            "models": {n: r["samples"] for n, r in results.items()},
        },
    )
    if args.corpus:
        docs = ec.parity_corpus(args.corpus)
        sel = {}
        for lang, text in docs:
            s = sel.setdefault(lang, {"docs": 0, "bytes": 0, "chars": 0})
            s["docs"] += 1
            s["bytes"] += len(text.encode("utf-8"))
            s["chars"] += len(text)
        manifest = Path(args.corpus) / "MANIFEST.tsv"
        write_gz(
            out_dir / "corpus.json.gz",
            {
                "meta": dict(
                    m_edge,
                    corpus_manifest_sha256=hashlib.sha256(manifest.read_bytes()).hexdigest()
                    if manifest.exists()
                    else None,
                ),
                "selection": {
                    "min_bytes_per_lang": ec.PARITY_MIN_BYTES,
                    "sha256": ec.corpus_digest(docs),
                    "n_docs": len(docs),
                    "per_lang": sel,
                    "langs": [lang for lang, _ in docs],
                },
                "models": {n: r["corpus"] for n, r in results.items()},
            },
        )
        for n, r in results.items():
            c = r["corpus"]
            print(
                f"{n}: {sum(x[0] for x in c['rows'])} ids, libm differs on {len(c['libm_diff'])} docs, "
                f"roundtrip failures {c['roundtrip_failures']}"
            )
        print("selection:", json.dumps(sel))
    for n, r in results.items():
        diffs = [c for c, rec in r["edge"].items() if "libm_diff" in rec]
        sd = [lang for lang, rec in r["samples"].items() if "libm_diff" in rec]
        print(f"{n}: edge cases differing with libm log: {diffs}; samples: {sd}")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
