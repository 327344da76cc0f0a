#!/usr/bin/env python3
"""One command for the whole comparison of bytepiece-rs with SentencePiece and the other peers.

    python3 bench/run_all.py --quick        # < 10 min on 2 cores (the corpus already built)
    python3 bench/run_all.py                # the full run: hours, see bench/README.md

Steps, all on this machine, one after the other, in one run (--steps to pick some):

  corpus    the corpus of shared/corpus/build_corpus.sh: --corpus DIR, else $BYTEPIECE_CORPUS,
            else ../corpus beside the repository; it is reused when DIR/MANIFEST.tsv exists,
            else built there (`build_corpus.sh DIR [--quick]`; PyPI and Debian only).
  install   the peers, unless --no-install: the pip packages of bench/requirements.txt that
            are missing (sentencepiece, tokenizers, tiktoken, bytepiece-py, rs-bytepiece,
            matplotlib, protobuf), the original BytePiece (shared/reference/install_original.sh),
            bytepiece-rs itself (pip install of this repository) and Debian's `sentencepiece`
            and `time` (for the CLI step) when missing.
  tiktoken  a byte-level BPE of the encode model's vocabulary size, trained by HF tokenizers on
            the corpus (bench/train.py's hf-bpe trainer), converted to a tiktoken.Encoding
            (bench/tiktoken_bpe.py); round trip and bytes/token of tiktoken on held-out zh, en, code.
  encode    bench/encode.py once per thread count (1, 2, 4, ..., all cores): MB/s of every
            tokenizer, tiktoken included, on the same text.
  train     bench/train.py: training time, peak memory and compression against corpus size.
  vocab     bench/train.py once per vocabulary size: bytes/token on held-out zh, en and code
            for bytepiece-rs, SentencePiece BPE and Unigram and HF BPE.
  cli       bench/cli.py: `bytepiece encode` against Debian's `spm_encode`.
  report    bench/RESULTS.md and the plots in bench/plots/ (from the JSON results of the steps,
            in bench/results/run_all/; `--steps report` redraws them without measuring).

Exit status: 0; 1 if a step failed (the report still shows the others); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import machine  # noqa: E402
import encode as encode_bench  # noqa: E402
import train as train_bench  # noqa: E402
import tiktoken_bpe  # noqa: E402

MB = 1e6
STEPS = ["corpus", "install", "tiktoken", "encode", "train", "vocab", "cli", "report"]

# What each mode runs. Full: the sizes of the earlier full runs of train.py and cli.py.
MODES = {
    "quick": {
        "encode_mb": 3,
        "encode_repeat": 3,
        "encode_budget": 20,
        # every trainer on 2 and 4 MB (SentencePiece Unigram cannot reach 32k pieces on 1 MB), held-out capped at 1 MB per language (train.py --quick, 2 and 5 MB
        # with 2 MB held-out, took 11 min in all when other processes used 60-80 % of this 2-core machine)
        "train_args": ["--mb", "4", "--sizes", "2,4", "--test-mb", "1"],
        "vocab_mb": 4,
        "vocabs": [8000, 16000, 32000],
        "vocab_args": [],
        "test_mb": 1,
        "tiktoken_mb": 4,
        "cli_mb": "10",
        "retries": 0,  # train.py re-runs a disturbed training once by default: not within 10 minutes
        "repeat": ["--repeat", "3", "--repeat-below", "3"],  # trainings under 3 s: median of 3
    },
    "full": {
        "encode_mb": 20,
        "encode_repeat": 5,
        "encode_budget": 60,
        "train_args": [
            "--mb",
            "100",
            "--sizes",
            "25,50,100,200",
            "--skip-original-above",
            "100",
            "--only",
            "original=25/100",
            "--skip-above",
            "spm-unigram=100,hf-unigram=50",
            "--peer-timeout",
            "spm-unigram=1800,hf-unigram=2400",
        ],
        "vocab_mb": 25,
        "vocabs": [16000, 32000, 64000, 128000],
        # SentencePiece Unigram on 25 MB at 128k ran > 19 min here (busy machine) without finishing
        "vocab_args": ["--peer-timeout", "spm-unigram=1800"],
        "test_mb": None,
        "tiktoken_mb": 25,
        "cli_mb": "50,200",
        "retries": 1,
        "repeat": ["--repeat", "3", "--repeat-below", "10"],
    },
}
VOCAB_PEERS = ["ours", "spm-bpe", "spm-unigram", "hf-bpe"]
PIP_MODULES = {  # import name -> distribution name in bench/requirements.txt
    "sentencepiece": "sentencepiece",
    "google.protobuf": "protobuf",
    "tokenizers": "tokenizers",
    "tiktoken": "tiktoken",
    "bytepiece_py": "bytepiece-py",
    "rs_bytepiece": "rs-bytepiece",
    "matplotlib": "matplotlib",
}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], **kw).returncode


# --------------------------------------------------------------------------- corpus / install


def default_corpus():
    env = os.environ.get("BYTEPIECE_CORPUS")
    return env or os.path.normpath(os.path.join(ROOT, "..", "corpus"))


def corpus_step(a):
    if os.path.exists(os.path.join(a.corpus, "MANIFEST.tsv")):
        log("corpus: reusing %s (MANIFEST.tsv present)" % a.corpus)
        return 0
    script = os.path.join(machine.shared_dir(), "corpus", "build_corpus.sh")
    if not os.path.exists(script):
        log("corpus: no %s and no build script %s (set BYTEPIECE_SHARED)" % (a.corpus, script))
        return 1
    return run(["bash", script, a.corpus] + (["--quick"] if a.quick else []))


def _pinned():
    """distribution -> 'name==version' from bench/requirements.txt"""
    out = {}
    with open(os.path.join(HERE, "requirements.txt")) as f:
        for line in f:
            spec = line.split("#", 1)[0].strip()
            if spec:
                out[spec.split("==")[0].strip().lower()] = spec
    return out


def _original_ok():
    code = (
        "import ahocorasick, bytepiece\n"
        "a = ahocorasick.Automaton(); a.add_word(b'ab', 1); a.make_automaton()\n"
        "assert list(a.iter(b'xab')) == [(2, 1)]\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _found(mod):
    try:
        return importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        return False


def install_step(a):
    rc = 0
    pins = _pinned()
    missing = [pins.get(d, d) for m, d in PIP_MODULES.items() if not _found(m)]
    if missing:
        rc |= run([sys.executable, "-m", "pip", "install", "-q"] + missing)
    else:
        log("pip peers: all present")
    if not _original_ok():
        # into this interpreter (the script installs into $PYTHON, else `python3` on the PATH)
        rc |= run(
            ["bash", os.path.join(machine.shared_dir(), "reference", "install_original.sh")],
            env={**os.environ, "PYTHON": sys.executable},
        )
    else:
        log("original bytepiece 0.6.3 (byte-mode pyahocorasick): present")
    if not _found("bytepiece_rs"):
        rc |= run([sys.executable, "-m", "pip", "install", "-q", ROOT])
    if "cli" in a.steps and (not shutil.which("spm_encode") or not os.path.exists("/usr/bin/time")):
        sudo = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else [])
        cmd = sudo + ["apt-get", "install", "-y", "-q", "sentencepiece", "time"]
        if run(cmd) != 0:
            run(sudo + ["apt-get", "update", "-q"])
            rc |= run(cmd)
    return 1 if rc else 0


# --------------------------------------------------------------------------- measuring steps


def thread_counts(spec):
    if spec:
        return sorted({int(x) for x in spec.split(",") if x.strip()})
    n, out, k = os.cpu_count() or 1, [1], 2
    while k < n:
        out.append(k)
        k *= 2
    return sorted(set(out + [n]))


def tiktoken_step(a, cfg):
    """HF byte-level BPE of the encode model's vocabulary size -> tiktoken; checks on held-out."""
    import bytepiece_rs

    vocab = bytepiece_rs.Tokenizer(a.model).vocab_size
    mb = cfg["tiktoken_mb"]
    targs = train_bench.parse_args(
        ["--corpus", a.corpus, "--vocab", str(vocab), "--mb", str(mb), "--wait-idle", str(a.wait_idle)]
    )
    info = train_bench.build_training_files(a.corpus, [mb], a.work, log)[mb]
    log("tiktoken: training HF byte-level BPE, vocab %d, on %g MB" % (vocab, mb))
    rec = train_bench.run_trainer("hf-bpe", mb, info, targs, a.work, log)
    out = {"vocab_requested": vocab, "train_mb": mb, "train_bytes": info["bytes"], "hf_bpe": rec}
    if rec["ok"]:
        held, files = train_bench.load_held_out(a.corpus, cfg["test_mb"])
        out["held_out"] = {}
        for lang in train_bench.LANGS:
            c = tiktoken_bpe.check(rec["model"], held[lang])
            c["bytes_per_token"] = c["bytes"] / max(1, c["tiktoken_tokens"])
            out["held_out"][lang] = c
            log(
                "   %s: %d docs, %.3f bytes/token (HF: %d tokens, tiktoken: %d), round-trip fails %d, "
                "same tokens as HF on %d docs"
                % (
                    lang,
                    c["docs"],
                    c["bytes_per_token"],
                    c["hf_tokens"],
                    c["tiktoken_tokens"],
                    c["roundtrip_fail"],
                    c["same_tokens_docs"],
                )
            )
        out["vocab"] = c["vocab"]
        a.tiktoken_hf = rec["model"]
    else:
        log("tiktoken: HF BPE training failed: %s\n%s" % (rec.get("error"), rec.get("log_tail", "")))
    with open(os.path.join(a.results, "tiktoken.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    return 0 if rec["ok"] and all(v["roundtrip_fail"] == 0 for v in out["held_out"].values()) else 1


def encode_step(a, cfg):
    rc = 0
    for old in glob.glob(os.path.join(a.results, "encode-t*.*")):
        os.remove(old)
    counts = [n for n in a.threads if n > 1] or [1]
    for n in counts:
        cmd = [
            sys.executable,
            os.path.join(HERE, "encode.py"),
            "--corpus",
            a.corpus,
            "--model",
            a.model,
            "--mb",
            cfg["encode_mb"],
            "--threads",
            n,
            "--repeat",
            cfg["encode_repeat"],
            "--budget",
            cfg["encode_budget"],
            "--wait-idle",
            a.wait_idle,
            "--out",
            os.path.join(a.results, "encode-t%d.md" % n),
        ]
        if getattr(a, "tiktoken_hf", None):
            cmd += ["--tiktoken-hf", a.tiktoken_hf]
        else:
            log("encode: no tiktoken vocabulary (the tiktoken step did not run or failed): tiktoken left out")
        rc |= run(cmd)
    return rc


def train_step(a, cfg):
    extra = shlex.split(a.train_args) if a.train_args is not None else cfg["train_args"]
    return run(
        [
            sys.executable,
            os.path.join(HERE, "train.py"),
            "--corpus",
            a.corpus,
            "--wait-idle",
            a.wait_idle,
            "--retries",
            cfg["retries"],
            *cfg["repeat"],
            "--out",
            os.path.join(a.results, "train.md"),
        ]
        + extra
    )


def train_covers(results, vocab, mb, test_mb):
    """bench/train.py's train.json in `results` if it holds every VOCAB_PEERS model at this vocabulary,
    size and held-out cap (then the vocab step need not train them again), else None."""
    js = _load(os.path.join(results, "train.json"))
    if not js or js["args"]["vocab"] != vocab or js["args"].get("test_mb") != test_mb:
        return None
    runs = train_runs(js)
    return js if all((p, mb) in runs and "eval" in runs[(p, mb)] for p in VOCAB_PEERS) else None


def vocab_step(a, cfg):
    rc = 0
    test = [] if cfg["test_mb"] is None else ["--test-mb", cfg["test_mb"]]
    for old in glob.glob(os.path.join(a.results, "vocab-*.*")):
        os.remove(old)
    for v in a.vocabs:
        if train_covers(a.results, v, a.vocab_mb, cfg["test_mb"]):
            log("vocab %d: taken from the train step (same size, vocabulary and held-out text)" % v)
            continue
        rc |= run(
            [
                sys.executable,
                os.path.join(HERE, "train.py"),
                "--corpus",
                a.corpus,
                "--mb",
                a.vocab_mb,
                "--sizes",
                a.vocab_mb,
                "--vocab",
                v,
                "--peers",
                ",".join(VOCAB_PEERS),
                "--wait-idle",
                a.wait_idle,
                "--retries",
                cfg["retries"],
                *cfg["repeat"],
                "--out",
                os.path.join(a.results, "vocab-%d.md" % v),
            ]
            + test
            + cfg["vocab_args"]
        )
    return rc


def cli_step(a, cfg):
    return run(
        [
            sys.executable,
            os.path.join(HERE, "cli.py"),
            "--corpus",
            a.corpus,
            "--mb",
            a.cli_mb,
            "--out",
            os.path.join(a.results, "cli.md"),
        ]
    )


# --------------------------------------------------------------------------- report


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_results(results):
    R = {"encode": {}, "vocab": {}}
    for p in glob.glob(os.path.join(results, "encode-t*.json")):
        n = int(os.path.basename(p)[len("encode-t") : -len(".json")])
        R["encode"][n] = _load(p)
    for p in glob.glob(os.path.join(results, "vocab-*.json")):
        R["vocab"][int(os.path.basename(p)[len("vocab-") : -len(".json")])] = _load(p)
    R["train"] = _load(os.path.join(results, "train.json"))
    run_args = (_load(os.path.join(results, "run_all.json")) or {}).get("args", {})
    for v in run_args.get("vocabs", []):
        if v not in R["vocab"] and R["train"]:
            mb = run_args["vocab_mb"]
            js = train_covers(results, v, mb, R["train"]["args"].get("test_mb"))
            if js:  # the vocab step skipped it: the train step's models at this size
                R["vocab"][v] = dict(
                    js, runs=[r for r in js["runs"] if r["peer"] in VOCAB_PEERS and r["size_mb"] == mb], from_train=True
                )
    R["tiktoken"] = _load(os.path.join(results, "tiktoken.json"))
    R["cli"] = _load(os.path.join(results, "cli.json"))
    R["run"] = _load(os.path.join(results, "run_all.json"))
    return R


ENCODE_LABELS = {
    "ours": "bytepiece-rs encode_batch",
    "ours-numpy": "bytepiece-rs encode_batch_numpy",
    "ours-loop": "bytepiece-rs encode() loop",
    "original": "bytepiece 0.6.3 (original)",
    "bytepiece-py": "bytepiece-py",
    "rs-bytepiece": "rs-bytepiece",
    "sentencepiece": "SentencePiece (converted model)",
    "tiktoken": "tiktoken (own BPE vocab)",
}


def encode_curves(R):
    """{row key: {threads: MB/s}}: 1 thread = median over the encode runs, then each N."""
    curves = {}
    for n, js in sorted(R["encode"].items()):
        if not js:
            continue
        for r in js["rows"]:
            if r.get("error"):
                continue
            c = curves.setdefault(r["key"], {"one": []})
            if r.get("mbps1"):
                c["one"].append(r["mbps1"])
            if r.get("mbpsn") and n > 1:
                c[n] = r["mbpsn"]
    out = {}
    for k, c in curves.items():
        one = sorted(c.pop("one"))
        d = dict(c)
        if one:
            d[1] = one[len(one) // 2]
        out[k] = dict(sorted(d.items()))
    return out


def train_runs(js):
    return {(r["peer"], r["size_mb"]): r for r in (js or {}).get("runs", []) if r.get("ok")}


def plot_all(R, plots):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    os.makedirs(plots, exist_ok=True)
    made = {}
    style = dict(marker="o", linewidth=1.5, markersize=4)
    run_info = R["run"] or {}
    m = run_info.get("machine") or machine.describe()
    stamp = "bench/run_all.py%s, %s, %s, %s cores" % (
        " --quick" if run_info.get("mode") == "quick" else "",
        (run_info.get("started") or "")[:10],
        m["cpu"],
        m["cores"],
    )
    plain = FuncFormatter(lambda v, _: "%g" % v)
    kilo = FuncFormatter(lambda v, _: "%.0fk" % (v / 1000) if v >= 1000 else "%g" % v)

    def ticks125(axis, values):
        """1-2-5 ticks over the range of `values` on a log axis (more legible than powers of ten)."""
        lo, hi = min(values), max(values)
        t = [m * 10**e for e in range(-2, 6) for m in (1, 2, 5)]
        axis.set_ticks([x for x in t if lo / 1.5 <= x <= hi * 1.5])
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())

    def finish(fig, name):
        fig.text(0.995, 0.005, stamp, ha="right", va="bottom", fontsize=6, color="0.4")
        made[name] = os.path.join(
            plots,
            {"encode": "encode-threads.png", "train": "train-size.png", "vocab": "vocab-bytes-per-token.png"}[name],
        )
        fig.savefig(made[name])
        plt.close(fig)

    curves = encode_curves(R)
    if curves:
        fig, ax = plt.subplots(figsize=(7.6, 4.0), dpi=100)
        for k, c in sorted(curves.items(), key=lambda kc: -max(kc[1].values())):
            ax.plot(list(c), list(c.values()), label=ENCODE_LABELS.get(k, k), **style)
        ax.set_xlabel("threads")
        ax.set_ylabel("encode MB/s (log scale)")
        ax.set_yscale("log")
        ticks125(ax.yaxis, [v for c in curves.values() for v in c.values()])
        ax.set_xticks(sorted({n for c in curves.values() for n in c}))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        enc_js = R["encode"][max(R["encode"])]
        ax.set_title(
            "Encode throughput, %.1f MB of zh/en/code documents, %s"
            % (enc_js["text"]["bytes"] / MB, os.path.basename(enc_js["model"]).replace(".model", "")),
            fontsize=9,
        )
        fig.tight_layout()
        finish(fig, "encode")

    runs = train_runs(R["train"])
    if runs:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.6), dpi=100)
        for p in train_bench.ALL_PEERS:
            pts = sorted((s, r) for (q, s), r in runs.items() if q == p)
            if not pts:
                continue
            xs = [s for s, _ in pts]
            ax1.plot(xs, [r["train_s"] for _, r in pts], label=train_bench.TITLES[p], **style)
            ax2.plot(xs, [r["peak_rss_tree"] / 2**20 for _, r in pts], label=train_bench.TITLES[p], **style)
        for ax, yl in ((ax1, "training time (s)"), (ax2, "peak RSS of the process tree (MiB)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(sorted({s for _, s in runs}))
            ax.set_xlabel("training text (MB)")
            ax.set_ylabel(yl)
            ax.grid(True, which="both", alpha=0.3)
        ticks125(ax1.yaxis, [r["train_s"] for r in runs.values()])
        ticks125(ax2.yaxis, [r["peak_rss_tree"] / 2**20 for r in runs.values()])
        ax1.legend(fontsize=7)
        fig.suptitle(
            "Training, vocabulary %s, %s workers" % (R["train"]["args"]["vocab"], R["train"]["args"]["workers"]),
            fontsize=10,
        )
        fig.tight_layout()
        finish(fig, "train")

    if R["vocab"]:
        fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.6), dpi=100)
        for ax, lang in zip(axes, train_bench.LANGS):
            for p in VOCAB_PEERS:
                pts = []
                for v, js in sorted(R["vocab"].items()):
                    for r in train_runs(js).values():
                        if r["peer"] == p and "eval" in r:
                            pts.append((r["eval"]["vocab_size"], r["eval"][lang]["bytes_per_token"]))
                if pts:
                    ax.plot(*zip(*sorted(pts)), label=train_bench.TITLES[p], **style)
            t = R.get("tiktoken") or {}
            if t.get("held_out"):
                ax.plot(
                    [t["vocab"]],
                    [t["held_out"][lang]["bytes_per_token"]],
                    "k*",
                    markersize=9,
                    label="tiktoken (HF BPE ranks, %g MB)" % t["train_mb"],
                )
            ax.set_xscale("log", base=2)
            t = R.get("tiktoken") or {}
            ax.set_xticks(sorted(set(R["vocab"]) | ({t["vocab"]} if t.get("vocab") else set())))
            ax.xaxis.set_major_formatter(kilo)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("vocabulary size (delivered)")
            ax.set_title("held-out %s" % lang, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("UTF-8 bytes / token (higher = better)")
        axes[0].legend(fontsize=7)
        js0 = next(iter(R["vocab"].values()))
        fig.suptitle(
            "Compression on held-out text, models trained on %g MB of the corpus' mix" % js0["args"]["mb"], fontsize=10
        )
        fig.tight_layout()
        finish(fig, "vocab")
    return made


def _f(x, nd=2):
    if x is None:
        return "—"
    return "%.1f" % x if x >= 10 else ("%%.%df" % nd) % x


def headline(R):
    """(rows of the headline table, notes)"""
    enc_js = R["encode"].get(max(R["encode"])) if R["encode"] else None
    n = max(R["encode"]) if R["encode"] else None
    enc = {r["key"]: r for r in (enc_js or {}).get("rows", []) if not r.get("error")}
    curves = encode_curves(R)
    tr = R["train"] or {}
    main = tr.get("args", {}).get("mb")
    runs = train_runs(tr)
    tk = R["tiktoken"] or {}
    text_bytes = (enc_js or {}).get("text", {}).get("bytes")
    rows = []

    def rt(train_r, enc_r):
        parts = []
        if train_r and "eval" in train_r:
            e = train_r["eval"]
            parts.append(
                "%d/%d"
                % (
                    sum(e[s]["roundtrip_fail"] for s in train_bench.HELD_OUT),
                    sum(e[s]["docs"] for s in train_bench.HELD_OUT),
                )
            )
        if enc_r and enc_r.get("roundtrip_fail") is not None:
            parts.append("%d/%d" % (enc_r["roundtrip_fail"], (enc_js or {}).get("text", {}).get("documents", 0)))
        return " · ".join(parts) or "—"

    spec = [
        ("bytepiece-rs (ours)", "ours", "ours"),
        ("bytepiece 0.6.3 (original)", "original", "original"),
        ("SentencePiece BPE", None, "spm-bpe"),
        ("SentencePiece Unigram", "sentencepiece", "spm-unigram"),
        ("HF tokenizers BPE", None, "hf-bpe"),
        ("HF tokenizers Unigram", None, "hf-unigram"),
        ("tiktoken", "tiktoken", None),
        ("bytepiece-py", "bytepiece-py", None),
        ("rs-bytepiece", "rs-bytepiece", None),
    ]
    for title, ek, tk_key in spec:
        e = enc.get(ek) if ek else None
        t = runs.get((tk_key, main)) if tk_key else None
        if not e and not t and not (ek == "tiktoken" and tk.get("held_out")):
            continue
        c = curves.get(ek, {}) if ek else {}
        cells = [
            title,
            _f(c.get(1)),
            _f(c.get(n)) if n and n > 1 else "—",
            "%.3f" % (text_bytes / e["tokens"]) if e and e.get("tokens") else "—",
            train_bench.fmt_s(t["train_s"]) if t else "—",
            train_bench.fmt_mb(t["peak_rss_tree"]) if t else "—",
        ]
        if t and "eval" in t:
            cells += ["%.3f" % t["eval"][lg]["bytes_per_token"] for lg in train_bench.LANGS]
        elif ek == "tiktoken" and tk.get("held_out"):
            cells += ["%.3f†" % tk["held_out"][lg]["bytes_per_token"] for lg in train_bench.LANGS]
        else:
            cells += ["—"] * 3
        if ek == "tiktoken" and tk.get("held_out"):
            h = tk["held_out"]
            r = "%d/%d · %s" % (
                sum(h[lg]["roundtrip_fail"] for lg in h),
                sum(h[lg]["docs"] for lg in h),
                "%d/%d" % (e["roundtrip_fail"], enc_js["text"]["documents"]) if e else "—",
            )
        else:
            r = rt(t, e)
        cells.append(r)
        rows.append(cells)
    head = [
        "tokenizer",
        "encode MB/s, 1 thread",
        "encode MB/s, %s threads" % n,
        "bytes/id, encode text",
        "train s, %s MB" % main if main is not None else "train s",
        "train peak RSS MiB",
        "bytes/token zh",
        "en",
        "code",
        "round-trip fails: held-out · encode text",
    ]
    return head, rows


def md_table(head, rows, right=None):
    L = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    L += ["| " + " | ".join(r) + " |" for r in rows]
    return L


def write_report(a, R, made):
    run_info = R["run"] or {}
    m = run_info.get("machine") or machine.describe()
    enc_js = R["encode"].get(max(R["encode"])) if R["encode"] else None
    tr = R["train"] or {}
    tk = R["tiktoken"] or {}

    def rel(p):
        return os.path.relpath(p, os.path.dirname(os.path.abspath(a.report)))

    L = ["# Benchmark results: bytepiece-rs and its peers, side by side", ""]
    L.append(
        "Produced by `%s` (%s mode); %s"
        % (
            run_info.get("command", "python3 bench/run_all.py"),
            run_info.get("mode", "?"),
            "a partial re-run, see below."
            if run_info.get("earlier_run")
            else "every figure below comes from this one run on one machine.",
        )
    )
    L.append("")
    L.append(
        "- date: %s (finished %s); wall time of the run: %s"
        % (
            run_info.get("started", "?"),
            run_info.get("finished", "?"),
            "%.1f min" % (run_info["wall_s"] / 60) if run_info.get("wall_s") else "?",
        )
    )
    if run_info.get("earlier_run"):
        e = run_info["earlier_run"]
        L.append(
            "- **partial re-run**: only the steps run by this command were measured now; the others come "
            "from `%s` (%s, %.1f min)" % (e.get("command"), e.get("started"), (e.get("wall_s") or 0) / 60)
        )
    L.append(
        "- machine: %s, %s cores, %s GiB RAM; %s; Python %s"
        % (m["cpu"], m["cores"], m["ram_gib"], m["os"], m["python"])
    )
    if run_info.get("versions"):
        L.append(
            "- versions: " + ", ".join("%s %s" % (k, v or "not installed") for k, v in run_info["versions"].items())
        )
    if run_info.get("corpus"):
        c = run_info["corpus"]
        L.append(
            "- corpus: `%s` (%s): %s"
            % (c["dir"], c.get("manifest", "?"), ", ".join("%s %.1f MB" % (k, v / MB) for k, v in c["files"].items()))
        )
    if run_info.get("steps"):
        L.append(
            "- steps (wall time, exit status): "
            + ", ".join(
                "%s %.0f s%s" % (s["name"], s["s"], "" if s["rc"] == 0 else " (**exit %s**)" % s["rc"])
                for s in run_info["steps"]
            )
        )
    if run_info.get("load"):
        L.append("- load average at start / end: %s / %s" % tuple(run_info["load"]))
    noise = []
    enc_share = [
        r["other_cpu_share"]
        for js in R["encode"].values()
        if js
        for r in js["rows"]
        if r.get("other_cpu_share") is not None
    ]
    if enc_share:
        noise.append("%.0f–%.0f %% during the encode rows" % (100 * min(enc_share), 100 * max(enc_share)))
    tr_share = [
        r["others_cpu"]
        for js in [R["train"]] + list(R["vocab"].values())
        if js
        for r in js.get("runs", [])
        if r.get("ok") and r.get("others_cpu") is not None
    ]
    if tr_share:
        noise.append("%.0f–%.0f %% during the trainings" % (100 * min(tr_share), 100 * max(tr_share)))
    if noise:
        L.append(
            "- other processes' share of the machine's CPU (noise; ~0 on a quiet machine): %s; per row in "
            "the detailed results" % ", ".join(noise)
        )
    L.append("")
    L.append("## Headline")
    L.append("")
    head, rows = headline(R)
    L += md_table(head, rows)
    L.append("")
    L.append(
        "- Encode: %s"
        % (
            "%s, model `%s`; MB/s = input bytes / wall s (MB = 10^6 B), median of up to %s runs. The BytePiece "
            "tokenizers and SentencePiece share one vocabulary (the BytePiece model; SentencePiece gets it "
            "converted to its format, so it acts as a Unigram model); **tiktoken has its own vocabulary** (%s "
            "tokens, a byte-level BPE trained by HF tokenizers on %g MB of the corpus, see below), so its "
            "bytes/id is not comparable with theirs."
            % (
                enc_js["text"]["desc"]
                + "; %d documents, %.2f MB" % (enc_js["text"]["documents"], enc_js["text"]["bytes"] / MB),
                os.path.basename(enc_js["model"]),
                MODES[run_info.get("mode", "quick")]["encode_repeat"],
                tk.get("vocab", "?"),
                tk.get("train_mb", 0),
            )
            if enc_js
            else "not run"
        )
    )
    if tr:
        L.append(
            "- Training: vocabulary %s, %s MB of the corpus' mix (zh:en:code = 3:5:0.5), %s workers; "
            "bytes/token = UTF-8 bytes / tokens on the held-out `{zh,en,code}.test.jsonl`%s (higher is better)."
            % (
                tr["args"]["vocab"],
                tr["args"]["mb"],
                tr["args"]["workers"],
                "" if tr["args"].get("test_mb") is None else ", each capped at %g MB" % tr["args"]["test_mb"],
            )
        )
    L.append(
        "- † tiktoken: bytes/token of its own %s-token vocabulary (not %s) on the same held-out text."
        % (tk.get("vocab", "?"), tr.get("args", {}).get("vocab", "?"))
    )
    L.append(
        "- Round-trip fails: documents whose decoded ids are not the document (NFC(document) for "
        "BytePiece, which normalises to NFC); first on the held-out sets of the training benchmark, then "
        "on the encode text. Every trainer is lossless by construction: SentencePiece with "
        "`byte_fallback=True`, `normalization_rule_name='identity'`, `remove_extra_whitespaces=False`, "
        "`max_sentence_length` = longest line + 1; HF with the ByteLevel pre-tokenizer and alphabet "
        "(HF Unigram with `unk_token`, in a thread with a large stack); settings in full in `%s`."
        % rel(os.path.join(a.results, "train.md"))
    )
    L.append("")
    if made:
        L.append("## Plots")
        L.append("")
        for k, title in (
            ("encode", "Encode MB/s against threads"),
            ("train", "Training time and peak memory against corpus size"),
            ("vocab", "Bytes per token against vocabulary size, held-out zh / en / code"),
        ):
            if k in made:
                L.append("**%s** (`%s`):" % (title, rel(made[k])))
                L.append("")
                L.append("![%s](%s)" % (title, rel(made[k])))
                L.append("")

    curves = encode_curves(R)
    if curves:
        ns = sorted({n for c in curves.values() for n in c})
        L.append("## Encode: MB/s against threads")
        L.append("")
        L += md_table(
            ["tokenizer / API"] + ["%d thread%s" % (n, "s" * (n > 1)) for n in ns],
            [[ENCODE_LABELS.get(k, k)] + [_f(c.get(n)) for n in ns] for k, c in curves.items()],
        )
        L.append("")
        L.append(
            "Details (load times, ids compared with the original's, other processes' CPU share, ratios): "
            + ", ".join("`%s`" % rel(os.path.join(a.results, "encode-t%d.md" % n)) for n in sorted(R["encode"]))
            + "."
        )
        L.append("")
    if tk.get("held_out"):
        L.append("## tiktoken")
        L.append("")
        h = tk["hf_bpe"]
        L.append(
            "A byte-level BPE with the encode model's vocabulary size (%d requested, %d delivered) trained "
            "by HF tokenizers (`%s` trainer of bench/train.py) on %s bytes of the corpus' mix in %s s, "
            "converted to a `tiktoken.Encoding` (`bench/tiktoken_bpe.py`: the 256 bytes first, then each "
            "merge's result in merge order, GPT-2's byte-to-character map undone; GPT-2's `pat_str`, the "
            "regex of HF's ByteLevel pre-tokenizer; no special tokens). Its vocabulary differs from the "
            "BytePiece model's."
            % (
                tk["vocab_requested"],
                tk["vocab"],
                "hf-bpe",
                "{:,}".format(tk["train_bytes"]),
                train_bench.fmt_s(h.get("train_s")),
            )
        )
        L.append("")
        L += md_table(
            [
                "held-out",
                "docs",
                "MB",
                "bytes/token",
                "tiktoken tokens",
                "HF tokens",
                "docs cut as HF does",
                "round-trip fails",
            ],
            [
                [
                    lg,
                    "{:,}".format(c["docs"]),
                    "%.2f" % (c["bytes"] / MB),
                    "%.3f" % c["bytes_per_token"],
                    "{:,}".format(c["tiktoken_tokens"]),
                    "{:,}".format(c["hf_tokens"]),
                    "%d/%d" % (c["same_tokens_docs"], c["docs"]),
                    str(c["roundtrip_fail"]),
                ]
                for lg, c in tk["held_out"].items()
            ],
        )
        L.append("")
    runs = train_runs(tr)
    if runs:
        sizes = sorted({s for _, s in runs})
        L.append("## Training against corpus size (vocabulary %s)" % tr["args"]["vocab"])
        L.append("")
        L.append(
            "Train time (s) / peak RSS of the process tree (MiB); details, failures and trainer settings: `%s`."
            % rel(os.path.join(a.results, "train.md"))
        )
        L.append("")
        peers = [p for p in train_bench.ALL_PEERS if any(q == p for q, _ in runs)]
        L += md_table(
            ["MB"] + [train_bench.TITLES[p] for p in peers],
            [
                ["%g" % s]
                + [
                    "%s / %s"
                    % (train_bench.fmt_s(runs[(p, s)]["train_s"]), train_bench.fmt_mb(runs[(p, s)]["peak_rss_tree"]))
                    if (p, s) in runs
                    else "—"
                    for p in peers
                ]
                for s in sizes
            ],
        )
        L.append("")
    if R["vocab"]:
        L.append("## Bytes per token against vocabulary size")
        L.append("")
        js0 = next(iter(R["vocab"].values()))
        L.append(
            "Trained on %s MB of the corpus' mix; held-out %s. Cells: bytes/token zh / en / code "
            "(delivered vocabulary size); round-trip fails over all held-out documents in brackets when "
            "not 0. Details: `%s`."
            % (
                js0["args"]["mb"] if js0 else "?",
                "capped at %g MB per language" % js0["args"]["test_mb"]
                if js0 and js0["args"].get("test_mb")
                else "in full",
                "`, `".join(
                    rel(os.path.join(a.results, "train.md" if js.get("from_train") else "vocab-%d.md" % v))
                    for v, js in sorted(R["vocab"].items())
                ),
            )
        )
        L.append("")
        body = []
        for v, js in sorted(R["vocab"].items()):
            rr = {r["peer"]: r for r in (js or {}).get("runs", [])}
            cells = ["{:,}".format(v)]
            for p in VOCAB_PEERS:
                r = rr.get(p)
                if r is None:
                    cells.append("—")
                elif not r.get("ok") or "eval" not in r:
                    cells.append("failed: %s" % r.get("error", "no evaluation"))
                else:
                    e = r["eval"]
                    fails = sum(e[s]["roundtrip_fail"] for s in train_bench.HELD_OUT)
                    cells.append(
                        "%s (%s)%s"
                        % (
                            " / ".join("%.3f" % e[lg]["bytes_per_token"] for lg in train_bench.LANGS),
                            "{:,}".format(e["vocab_size"]),
                            " [%d fails]" % fails if fails else "",
                        )
                    )
            body.append(cells)
        L += md_table(["vocab requested"] + [train_bench.TITLES[p] for p in VOCAB_PEERS], body)
        L.append("")
    if R["cli"]:
        L.append("## CLI: `bytepiece encode` against `spm_encode`")
        L.append("")
        body = []
        for row in R["cli"]:
            spm = row["runs"].get("spm_encode, 1 thread (ids)")
            for name, r in row["runs"].items():
                body.append(
                    [
                        "%.0f MB" % row["mb"],
                        name,
                        "%.2f" % r["s"],
                        "%.2f" % r["mb_s"],
                        "%.2f" % (r["mb_s"] / spm["mb_s"]) if spm else "—",
                        "{:,.0f}".format(r["rss_mib"]),
                    ]
                )
        L += md_table(["input", "command", "time (s)", "MB/s", "× spm_encode", "peak RSS (MiB)"], body)
        L.append("")
        L.append("One run per row (process start included); details: `%s`." % rel(os.path.join(a.results, "cli.md")))
        L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
    with open(a.report, "w") as f:
        f.write("\n".join(L))
    log("wrote %s" % a.report)


# --------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (< 10 min on 2 cores with the corpus built): encode 3 MB, train 2 and "
        "4 MB, vocab 8k/16k/32k on 4 MB, held-out capped at 1 MB per language, CLI 10 MB",
    )
    ap.add_argument(
        "--corpus",
        default=None,
        help="corpus dir; reused if it has MANIFEST.tsv, else built there "
        "(default $BYTEPIECE_CORPUS, else ../corpus beside the repository)",
    )
    ap.add_argument("--no-install", action="store_true", help="skip the install step (use what is installed)")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma list out of %s [all]" % ",".join(STEPS))
    ap.add_argument(
        "--model",
        default=None,
        help="BytePiece model of the encode benchmark [bytepiece.plus.80k from $BYTEPIECE_SHARED/models]",
    )
    ap.add_argument("--threads", default=None, help="thread counts of the encode curve [1,2,4,...,all cores]")
    ap.add_argument(
        "--vocabs",
        default=None,
        help="comma list of vocabulary sizes of the vocab step [quick 8000,16000,32000; full 16000,32000,64000,128000]",
    )
    ap.add_argument(
        "--vocab-mb", type=float, default=None, help="MB of training text of the vocab step [quick 4; full 25]"
    )
    ap.add_argument(
        "--train-args",
        default=None,
        help="arguments of bench/train.py in the train step, replacing the mode's (quoted string)",
    )
    ap.add_argument("--cli-mb", default=None, help="input sizes of the CLI step [quick 10; full 50,200]")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        help="passed to encode.py / train.py: before each measurement wait up to S s for other "
        "processes to go quiet [0: do not wait]",
    )
    ap.add_argument("--workdir", default=None, help="keep training files and models here [a temp dir, removed]")
    ap.add_argument(
        "--results",
        default=os.path.join(HERE, "results", "run_all"),
        help="folder of the steps' markdown / JSON results [%(default)s]",
    )
    ap.add_argument("--plots", default=os.path.join(HERE, "plots"), help="folder of the PNG plots [%(default)s]")
    ap.add_argument("--report", default=os.path.join(HERE, "RESULTS.md"), help="the summary [%(default)s]")
    a = ap.parse_args(argv)
    a.steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    bad = [s for s in a.steps if s not in STEPS]
    if bad:
        ap.error("unknown steps: %s" % ",".join(bad))
    if a.no_install and "install" in a.steps:
        a.steps.remove("install")
    cfg = MODES["quick" if a.quick else "full"]
    a.corpus = os.path.abspath(a.corpus or default_corpus())
    a.threads = thread_counts(a.threads)
    a.vocabs = [int(v) for v in a.vocabs.split(",")] if a.vocabs else cfg["vocabs"]
    a.vocab_mb = a.vocab_mb or cfg["vocab_mb"]
    a.vocab_mb = int(a.vocab_mb) if a.vocab_mb == int(a.vocab_mb) else a.vocab_mb
    a.cli_mb = a.cli_mb or cfg["cli_mb"]
    return a, cfg


def main(argv=None):
    a, cfg = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    load0 = machine.loadavg()
    os.makedirs(a.results, exist_ok=True)
    own_work = a.workdir is None
    a.work = tempfile.mkdtemp(prefix="bench-run-all-") if own_work else os.path.abspath(a.workdir)
    os.makedirs(a.work, exist_ok=True)
    steps, status = [], 0
    measuring = [s for s in a.steps if s not in ("report",)]
    try:
        for name in STEPS:
            if name not in measuring:
                continue
            if name in ("tiktoken", "encode") and a.model is None:
                a.model = encode_bench.released_model("bytepiece.plus.80k")
            log("==== step %s" % name)
            s0 = time.perf_counter()
            try:
                rc = {
                    "corpus": lambda: corpus_step(a),
                    "install": lambda: install_step(a),
                    "tiktoken": lambda: tiktoken_step(a, cfg),
                    "encode": lambda: encode_step(a, cfg),
                    "train": lambda: train_step(a, cfg),
                    "vocab": lambda: vocab_step(a, cfg),
                    "cli": lambda: cli_step(a, cfg),
                }[name]()
            except Exception as e:  # noqa: BLE001 - a failed step is reported, the others still run
                import traceback

                traceback.print_exc()
                rc = "%s: %s" % (type(e).__name__, e)
            steps.append({"name": name, "s": time.perf_counter() - s0, "rc": rc})
            log("==== step %s: %.0f s, %s" % (name, steps[-1]["s"], "ok" if rc == 0 else "FAILED (%s)" % rc))
            if rc != 0:
                status = 1
                if name == "corpus":
                    break
        if set(measuring) & {"tiktoken", "encode", "train", "vocab", "cli"}:  # something was measured
            corpus_files = (
                {
                    f: os.path.getsize(os.path.join(a.corpus, f))
                    for f in sorted(os.listdir(a.corpus))
                    if f.endswith((".txt", ".jsonl"))
                }
                if os.path.isdir(a.corpus)
                else {}
            )
            manifest = os.path.join(a.corpus, "MANIFEST.tsv")
            mode_line = open(manifest).readline().strip("# \n") if os.path.exists(manifest) else None
            info = {
                "command": "python3 bench/run_all.py "
                + " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv)),
                "mode": "quick" if a.quick else "full",
                "started": started,
                "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "wall_s": time.perf_counter() - t0,
                "machine": machine.describe(),
                "load": [load0, machine.loadavg()],
                "steps": steps,
                "corpus": {"dir": a.corpus, "manifest": mode_line, "files": corpus_files},
                "versions": {
                    k: machine.version_of(*d)
                    for k, d in (
                        ("bytepiece-rs", ("bytepiece-rs",)),
                        ("bytepiece (original)", ("bytepiece",)),
                        ("sentencepiece", ("sentencepiece",)),
                        ("tokenizers", ("tokenizers",)),
                        ("tiktoken", ("tiktoken",)),
                        ("bytepiece-py", ("bytepiece-py",)),
                        ("rs-bytepiece", ("rs-bytepiece", "rs_bytepiece")),
                        ("numpy", ("numpy",)),
                        ("matplotlib", ("matplotlib",)),
                    )
                },
                "args": {k: v for k, v in vars(a).items() if k not in ("work",)},
            }
            info["versions"]["spm_encode (Debian)"] = _spm_encode_version()
            old = _load(os.path.join(a.results, "run_all.json"))
            if old and set(STEPS[2:-1]) - set(measuring):
                # a partial run: the results of the other steps stay, and so does their record
                done = {s["name"] for s in steps}
                info["steps"] = [s for s in old.get("steps", []) if s["name"] not in done] + steps
                info["earlier_run"] = {k: old.get(k) for k in ("command", "started", "finished", "wall_s")}
            with open(os.path.join(a.results, "run_all.json"), "w") as f:
                json.dump(info, f, indent=1, default=str)
        if "report" in a.steps:
            R = load_results(a.results)
            made = plot_all(R, a.plots)
            write_report(a, R, made)
    finally:
        if own_work:
            shutil.rmtree(a.work, ignore_errors=True)
    log("run_all: %.1f min, %s" % ((time.perf_counter() - t0) / 60, "ok" if status == 0 else "some step failed"))
    return status


def _spm_encode_version():
    if not shutil.which("spm_encode"):
        return None
    r = subprocess.run(["spm_encode", "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip() or None


if __name__ == "__main__":
    sys.exit(main())
