#!/usr/bin/env python3
"""Training benchmark: bytepiece-rs' Trainer against the original BytePiece and other trainers.

One run, one machine, the same training text and the same held-out text for every trainer.
For each trainer it measures
  * wall time of training (+ saving the model), and the CPU time of its whole process tree,
  * peak memory of the whole process tree: every trainer runs in its own subprocess and
    /proc is polled (every --poll s) for the RSS (and PSS, from /proc/PID/smaps_rollup, when
    the tree has several processes) of that process and all its descendants, summed at each
    poll (the original forks workers),
  * compression on held-out text: UTF-8 bytes / tokens, for zh, en, code and the mixed text,
  * a round-trip check on every held-out document: decode(encode(x)) == x
    (== NFC(x) for BytePiece, which normalises to NFC).

Trainers (--peers): ours (bytepiece-rs), original (bytepiece 0.6.3), spm-bpe, spm-unigram
(SentencePiece), hf-bpe, hf-unigram (HuggingFace tokenizers). Settings: see PEER_SETTINGS.

Text: the corpus built by shared/corpus/build_corpus.sh (--corpus, default $BYTEPIECE_CORPUS):

    bash ../shared/corpus/build_corpus.sh corpus       # full corpus, ~157 MB mix.train.txt
    export BYTEPIECE_CORPUS=$PWD/corpus

Training text of X MB = the first X MB of mix.train.txt (zh:en:code = 3:5:0.5 by bytes),
cut at a blank line; beyond its 157 MB it continues with the en / code training documents that
mix.train.txt does not hold (zh has run out), at en:code = 5:0.5.
Held-out text = {zh,en,code}.test.jsonl (documents) and mix.test.txt (cut at blank lines into
~16 KB documents), each capped at --test-mb.

    python3 bench/train.py --quick                              # < 10 min: 5 MB, all trainers
    python3 bench/train.py --mb 100 --sizes 25,50,100,200       # the full run (hours)
    python3 bench/train.py --mb 10 --sizes 10 --peers ours,spm-bpe

Results go to stdout and to bench/results/train.md (+ train.json with every measurement).
Exit status: 0; 1 if a trainer failed; 2 on a usage error.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (
    OURS_TEXT_UNIT,
    cut_at_blank_line,
    evaluate,
    fmt_mb,
    fmt_s,
    jsonl_texts,
    meminfo,  # noqa: E402
    ratio,
    run_training,
    split_docs,
    train_job,
)
from machine import add_corpus_argument, cpu_model, loadavg, take_capped, version_of, wait_idle  # noqa: E402


HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1e6

ALL_PEERS = ["ours", "original", "spm-bpe", "spm-unigram", "hf-bpe", "hf-unigram"]
TITLES = {
    "ours": "bytepiece-rs (ours)",
    "original": "bytepiece 0.6.3 (original)",
    "spm-bpe": "SentencePiece BPE",
    "spm-unigram": "SentencePiece Unigram",
    "hf-bpe": "HF tokenizers BPE",
    "hf-unigram": "HF tokenizers Unigram",
}
LANGS = ("zh", "en", "code")
HELD_OUT = ("mix",) + LANGS


def peer_settings(a):
    """What each trainer is told, in words (for the report)."""
    bp = "order=%d, max_vocab_size=%d, max_piece_length=%d, min_count=%d, isolate_digits=False, ensure_unicode=True" % (
        a.order,
        a.vocab,
        a.max_piece_length,
        a.min_count,
    )
    spm = (
        "vocab_size=%d, byte_fallback=True, normalization_rule_name='identity', "
        "remove_extra_whitespaces=False, add_dummy_prefix=False, split_digits=False, "
        "character_coverage=%s, input_sentence_size=0 (all lines), shuffle_input_sentence=False, "
        "max_sentence_length=<longest line in bytes + 1>, num_threads=%d; other options default "
        "(max_sentencepiece_length=16, split_by_whitespace=True, split_by_unicode_script=True, "
        "split_by_number=True)" % (a.vocab, a.spm_coverage, a.workers)
    )
    hf = (
        "ByteLevel(add_prefix_space=False, use_regex=True) pre-tokenizer (GPT-2 regex; every "
        "byte is a symbol, so no unknown tokens and lossless), ByteLevel decoder, no normalizer, "
        "initial_alphabet=ByteLevel.alphabet(), RAYON_NUM_THREADS=%d" % a.workers
    )
    return {
        "ours": "`Trainer(%s).train_from_files(file, workers=%d, text_unit=%r)`" % (bp, a.workers, OURS_TEXT_UNIT),
        "original": "`Trainer(%s).train(docs, workers=%d)` (batch_size=1000); docs = the training "
        "file cut after each blank line (separators kept, so the docs joined are the "
        "file); cutting them is not timed" % (bp, a.workers),
        "spm-bpe": "`SentencePieceTrainer.train(model_type='bpe', %s)`" % spm,
        "spm-unigram": "`SentencePieceTrainer.train(model_type='unigram', %s)`" % spm,
        "hf-bpe": "`BpeTrainer(vocab_size=%d, min_frequency=%d)`; %s" % (a.vocab, a.min_count, hf),
        "hf-unigram": "`UnigramTrainer(vocab_size=%d, unk_token='<unk>', special_tokens=['<unk>'])` "
        "(max_piece_length=16, shrinking_factor=0.75, n_sub_iterations=2: defaults); %s; "
        "trained in a thread with a %d MB stack, `ulimit -s unlimited` and "
        "RUST_MIN_STACK=%d MB, as a precaution (HF Unigram is known to overflow the default 8 MB stack on long inputs; with this ByteLevel set-up a 25 MB test also ran with the default)"
        % (a.vocab, hf, a.stack_mb, a.stack_mb),
    }


# --------------------------------------------------------------------------- machine


def wait_load(max_wait, max_load):
    """Wait (at most max_wait s) until the 1-minute load average is below max_load."""
    t0 = time.perf_counter()
    while os.getloadavg()[0] >= max_load and time.perf_counter() - t0 < max_wait:
        print("   load average %s >= %.2f, waiting ..." % (loadavg(), max_load), flush=True)
        time.sleep(30)
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- text


def _mix_extension(corpus, need, log):
    """Training documents (bytes, each + b"\\n") that mix.train.txt does not hold, interleaved
    en:code = 5:0.5 by bytes, continuing the corpus' greedy rule; at most `need` bytes."""
    W = {"zh": 3.0, "en": 5.0, "code": 0.5}
    lens = {}
    for lang in W:
        lens[lang] = [len(t.encode("utf-8")) + 1 for t in jsonl_texts(os.path.join(corpus, "%s.train.jsonl" % lang))]
    pos = {lang: 0 for lang in W}
    got = {lang: 0 for lang in W}
    while all(pos[lang] < len(lens[lang]) for lang in W):  # replay build_corpus.sh's mix
        lang = min(W, key=lambda k: (got[k] / W[k], k))
        got[lang] += lens[lang][pos[lang]]
        pos[lang] += 1
    mix_size = os.path.getsize(os.path.join(corpus, "mix.train.txt"))
    if sum(got.values()) != mix_size:
        raise SystemExit(
            "cannot extend mix.train.txt: replaying its mix gives %d bytes, not %d" % (sum(got.values()), mix_size)
        )
    log("   mix.train.txt ends at en document %d, code document %d; extending with the rest" % (pos["en"], pos["code"]))
    files = {lang: open(os.path.join(corpus, "%s.train.txt" % lang), "rb") for lang in ("en", "code")}
    for lang in files:
        files[lang].seek(sum(lens[lang][: pos[lang]]))
    W2 = {"en": 5.0, "code": 0.5}
    out, total = [], 0
    while total < need and any(pos[lang] < len(lens[lang]) for lang in W2):
        lang = min((k for k in W2 if pos[k] < len(lens[k])), key=lambda k: (got[k] / W2[k], k))
        n = lens[lang][pos[lang]]
        out.append(files[lang].read(n))
        got[lang] += n
        pos[lang] += 1
        total += n
    for f in files.values():
        f.close()
    return b"".join(out)


def build_training_files(corpus, sizes, workdir, log):
    """One file per size (nested prefixes). Returns {size: info}."""
    src = os.path.join(corpus, "mix.train.txt")
    if not os.path.exists(src):
        raise SystemExit(
            "no mix.train.txt in %s: build the corpus with "
            "`bash shared/corpus/build_corpus.sh DIR` and pass --corpus DIR "
            "(or set BYTEPIECE_CORPUS)" % corpus
        )
    biggest = int(max(sizes) * MB)
    with open(src, "rb") as f:
        data = f.read(biggest + 1)
    if len(data) < biggest:
        data += _mix_extension(corpus, biggest - len(data) + 1, log)
    out = {}
    for s in sorted(sizes):
        part = cut_at_blank_line(data, int(s * MB))
        part.decode("utf-8")  # strict: must be valid UTF-8
        path = os.path.join(workdir, "train.%gMB.txt" % s)
        with open(path, "wb") as f:
            f.write(part)
        lines = part.split(b"\n")
        out[s] = {
            "path": path,
            "bytes": len(part),
            "lines": part.count(b"\n"),
            "longest_line_bytes": max(len(x) for x in lines),
            "blank_line_docs": len(split_docs(part.decode("utf-8"))),
            "extended": len(part) > os.path.getsize(src),
        }
        if out[s]["bytes"] < s * MB * 0.98:
            log("   note: only %.1f MB of training text for --sizes %g" % (out[s]["bytes"] / MB, s))
    return out


def group_docs(paras, doc_bytes):
    docs, cur, n = [], [], 0
    for p in paras:
        cur.append(p)
        n += len(p.encode("utf-8"))
        if n >= doc_bytes:
            docs.append("".join(cur))
            cur, n = [], 0
    if cur:
        docs.append("".join(cur))
    return docs


def load_held_out(corpus, cap_mb):
    cap = float("inf") if cap_mb is None else cap_mb * MB
    sets, files = {}, {}
    for lang in LANGS:
        p = os.path.join(corpus, "%s.test.jsonl" % lang)
        sets[lang] = take_capped(jsonl_texts(p), cap)
        files[lang] = os.path.basename(p)
    p = os.path.join(corpus, "mix.test.txt")
    with open(p, "rb") as f:
        data = f.read() if cap_mb is None else cut_at_blank_line(f.read(int(cap) + 1), int(cap))
    sets["mix"] = group_docs(split_docs(data.decode("utf-8")), 16000)
    files["mix"] = os.path.basename(p)
    return sets, files


# --------------------------------------------------------------------------- one training


def run_trainer(peer, size, info, a, workdir, log):
    """Trains `peer` on the training file `info["path"]` in its own subprocess (common.run_training)."""
    ext = {"spm-bpe": ".model", "spm-unigram": ".model"}.get(peer, ".json")
    base = os.path.join(workdir, "%s.%gMB" % (peer, size))
    model, result, logf = base + ext, base + ".result.json", base + ".log"
    job = train_job(
        peer,
        info["path"],
        model,
        result,
        workers=a.workers,
        vocab=a.vocab,
        order=a.order,
        min_count=a.min_count,
        max_piece_length=a.max_piece_length,
        spm_coverage=a.spm_coverage,
        stack_mb=a.stack_mb,
        max_line=info["longest_line_bytes"],
    )
    rec = {"peer": peer, "size_mb": size, "train_bytes": info["bytes"], "model": model, "log": logf}
    if a.wait_idle > 0:
        rec["others_cpu_before"] = wait_idle(a.wait_idle, a.idle_threshold)
    rec["load_before"] = loadavg()
    rec.update(
        run_training(
            job, logf, timeout=a.peer_timeout.get(peer, a.timeout), poll=a.poll, min_available_mb=a.min_available_mb
        )
    )
    return rec


# --------------------------------------------------------------------------- evaluation


def check_against_original_encoder(model_path, docs):
    """Do bytepiece-rs' Tokenizer and the original's give the same ids with this model?"""
    try:
        import bytepiece
        import bytepiece_rs

        a = bytepiece.Tokenizer(model_path)
        b = bytepiece_rs.Tokenizer(model_path)
        same = sum(a.encode(d) == b.encode(d) for d in docs)
        return "%d/%d" % (same, len(docs))
    except Exception as e:  # noqa: BLE001
        return "error: %s" % e


def same_model(path_a, path_b):
    try:
        with open(path_a) as f:
            x = json.load(f)
        with open(path_b) as f:
            y = json.load(f)
        if x == y:
            return "identical"
        if set(x) == set(y):
            return "same pieces, %d counts differ" % sum(x[k] != y[k] for k in x)
        return "different: %d pieces only in ours, %d only in the original" % (
            len(set(x) - set(y)),
            len(set(y) - set(x)),
        )
    except Exception as e:  # noqa: BLE001
        return "error: %s" % e


# --------------------------------------------------------------------------- report


def skip_reason(p, a):
    lim = a.skip_above.get(p)
    if p in a.only:
        return "--only %s=%s" % (p, "/".join("%g" % x for x in sorted(a.only[p])))
    if p == "original":
        return "--skip-original-above %g" % a.skip_original_above
    return "--skip-above %s=%g" % (p, lim) if lim is not None else "not requested"


def build_report(meta, runs, a):
    L = []
    w = L.append
    w("# Training benchmark\n")
    for k, v in meta["header"]:
        w("- %s: %s" % (k, v))
    w("")
    main = a.mb
    by = {(r["peer"], r["size_mb"]): r for r in runs}
    peers = [p for p in a.peers]
    w("## Training on %g MB (%s bytes), vocabulary %d\n" % (main, "{:,}".format(meta["train"][main]["bytes"]), a.vocab))
    w(
        "| trainer | train time (s) | CPU time (s) | peak RSS, tree (MiB) | peak PSS, tree (MiB) | "
        "largest process peak (MiB) | RSS before training (MiB) | procs | vocab | bytes/token mix | zh | en | code | "
        "round-trip fails | others' CPU / steal |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for p in peers:
        r = by.get((p, main))
        if r is None:
            w("| %s | not run at %g MB (%s) ||||||||||||||" % (TITLES[p], main, skip_reason(p, a)))
            continue
        if not r["ok"]:
            w(
                "| %s | **failed**: %s (after %s s, peak RSS %s MiB) ||||||||||||||"
                % (TITLES[p], r["error"], fmt_s(r["process_wall_s"]), fmt_mb(r["peak_rss_tree"]))
            )
            continue
        e = r.get("eval", {})
        bpt = ["%.3f" % e[n]["bytes_per_token"] if n in e else "—" for n in HELD_OUT]
        fails = "/".join(str(e[n]["roundtrip_fail"]) for n in HELD_OUT) if e else "—"
        w(
            "| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %.0f%% / %.0f%% |"
            % (
                TITLES[p],
                fmt_s(r["train_s"]),
                fmt_s(r["tree_cpu_s"]),
                fmt_mb(r["peak_rss_tree"]),
                fmt_mb(r["peak_pss_tree"]),
                fmt_mb(r["peak_hwm_one_process"]),
                fmt_mb(r.get("rss_before")),
                r["peak_processes"],
                "{:,}".format(e.get("vocab_size", 0)),
                *bpt,
                fails,
                100 * r["others_cpu"],
                100 * r.get("steal", 0),
            )
        )
    w("")
    w(
        "- train time: wall time of the training call + saving the model, inside the trainer's "
        "subprocess (interpreter start and imports excluded; the original's cutting of the file into "
        "documents excluded, reading the file included for all others). CPU time: user + system of "
        "the subprocess and all its descendants.%s"
        % (
            ""
            if a.repeat <= 1
            else " A training shorter than %g s is run %d times: its row is the run of "
            "median time (all times in the .json, `repeats`)." % (a.repeat_below, a.repeat)
        )
    )
    w(
        "- peak RSS / PSS, tree: the largest sum over the trainer's subprocess and all its descendants, "
        "polled every %g s from /proc (VmRSS of status; Pss of smaps_rollup only while the tree has "
        "several processes, a single process' PSS being taken as its RSS, since reading smaps_rollup "
        "slows the process it reads: bytepiece-rs trained 100 MB in 14.0 s alone and 18.2 s polled every "
        "0.1 s); the RSS peak is raised to "
        "the subprocess' own VmHWM if polling missed a short peak. RSS counts the pages that forked "
        "workers share with their parent once per process; PSS divides them among the sharers. Largest "
        "process peak: the largest VmHWM of one process of the tree. RSS before training: the subprocess "
        "after its imports (and, for the original, after reading the documents): Python, the library, "
        "numpy for the BytePiece packages." % a.poll
    )
    w(
        "- bytes/token: UTF-8 bytes of the held-out documents (before any normalisation) / tokens; "
        "higher is better. Held-out: %s." % meta["held_out_desc"]
    )
    w(
        "- round-trip fails: documents (mix/zh/en/code) where decode(encode(x)) != x (!= NFC(x) for the "
        "BytePiece models). BytePiece models are encoded with bytepiece-rs' Tokenizer (ids equal to "
        "the original's Tokenizer: %s)." % meta.get("encoder_check", "not checked")
    )
    w(
        "- others' CPU / steal: share of the machine's CPU used by other processes during that training, "
        "and share stolen by the hypervisor (this is a VM); both are noise and should be ~0%%. A run "
        "disturbed by more than %d%% is repeated (up to %d times) and the least disturbed run is kept "
        "(all are in the .json)." % (100 * a.retry_above, a.retries)
    )
    if meta.get("same_model"):
        w("- ours vs original model (%s): %s" % (meta["same_model"][0], meta["same_model"][1]))
    w("")

    # ratio / target table
    ours_sizes = {r["size_mb"] for r in runs if r["peer"] == "ours" and r["ok"]}

    def common(p):
        """size where both ours and p succeeded: the main size if possible, else the largest."""
        sizes = sorted(s for s in ours_sizes if by.get((p, s), {}).get("ok"))
        if not sizes:
            return None
        return main if main in sizes else sizes[-1]

    rows = []
    s = common("original")
    if s is not None and "original" in peers:
        o, u = by[("original", s)], by[("ours", s)]
        rows.append(
            (
                "time: original / ours (same %d workers)" % a.workers,
                s,
                ratio(o["train_s"], u["train_s"]),
                "≥ 20×",
                lambda v: v >= 20,
            )
        )
        rows.append(
            (
                "peak RSS tree: ours / original",
                s,
                ratio(u["peak_rss_tree"], o["peak_rss_tree"]),
                "≤ 0.25",
                lambda v: v <= 0.25,
            )
        )
        rows.append(
            (
                "peak PSS tree: ours / original",
                s,
                ratio(u["peak_pss_tree"], o["peak_pss_tree"]),
                "≤ 0.25",
                lambda v: v <= 0.25,
            )
        )
        if "eval" in u and "eval" in o:
            rows.append(
                (
                    "bytes/token mix: ours / original",
                    s,
                    ratio(u["eval"]["mix"]["bytes_per_token"], o["eval"]["mix"]["bytes_per_token"]),
                    "= 1 (±0.2 %)",
                    lambda v: abs(v - 1) <= 0.002,
                )
            )
    for p in peers:
        if p in ("ours", "original"):
            continue
        s = common(p)
        if s is None:
            continue
        o, u = by[(p, s)], by[("ours", s)]
        rows.append(("time: %s / ours" % TITLES[p], s, ratio(o["train_s"], u["train_s"]), "> 1×", lambda v: v > 1))
        rows.append(
            (
                "peak RSS tree: ours / %s" % TITLES[p],
                s,
                ratio(u["peak_rss_tree"], o["peak_rss_tree"]),
                "< 1",
                lambda v: v < 1,
            )
        )
        if p == "spm-bpe" and "eval" in u and "eval" in o:
            rows.append(
                (
                    "bytes/token mix: ours / %s" % TITLES[p],
                    s,
                    ratio(u["eval"]["mix"]["bytes_per_token"], o["eval"]["mix"]["bytes_per_token"]),
                    "> 1",
                    lambda v: v > 1,
                )
            )
    if rows:
        w("### Targets\n")
        w("| ratio | at MB | value | target | met |")
        w("|---|---:|---:|---|---|")
        for name, s, v, target, test in rows:
            if v is None:
                w("| %s | %g | — | %s | — |" % (name, s, target))
            else:
                met = test(v)
                w(
                    "| %s | %g | %s | %s | %s |"
                    % (name, s, ("%.2f×" % v if "time" in name else "%.3f" % v), target, "yes" if met else "**no**")
                )
        w("")

    sizes = sorted({r["size_mb"] for r in runs})
    if len(sizes) > 1 or sizes != [main]:
        w("### Scaling: train time (s) / peak RSS of the tree (MiB) / bytes per token on mix\n")
        w("| MB | " + " | ".join(TITLES[p] for p in peers) + " |")
        w("|---:|" + "---|" * len(peers))
        for s in sizes:
            cells = []
            for p in peers:
                r = by.get((p, s))
                if r is None:
                    cells.append("not run")
                elif not r["ok"]:
                    cells.append("failed (%s)" % r["error"])
                else:
                    bpt = r.get("eval", {}).get("mix", {}).get("bytes_per_token")
                    cells.append(
                        "%s / %s / %s" % (fmt_s(r["train_s"]), fmt_mb(r["peak_rss_tree"]), "%.3f" % bpt if bpt else "—")
                    )
            w("| %g | %s |" % (s, " | ".join(cells)))
        w("")

    w("### Trainer settings\n")
    st = peer_settings(a)
    for p in peers:
        w("- **%s**: %s" % (TITLES[p], st[p]))
    w("")
    fails = [r for r in runs if not r["ok"]]
    if fails:
        w("### Failures\n")
        for r in fails:
            w(
                "- %s at %g MB: %s\n\n```\n%s\n```"
                % (TITLES[r["peer"]], r["size_mb"], r["error"], r.get("log_tail", ""))
            )
        w("")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    add_corpus_argument(ap)
    ap.add_argument(
        "--mb", type=float, default=None, help="MB of training text of the main table (default 25; --quick 5)"
    )
    ap.add_argument("--sizes", default=None, help="comma list of MB for the scaling table (default: only --mb)")
    ap.add_argument("--vocab", type=int, default=32000, help="vocabulary size of every trainer (default 32000)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help="comma list of: " + ",".join(ALL_PEERS))
    ap.add_argument(
        "--skip-original-above",
        type=float,
        default=25,
        help="do not run the original on more than this many MB (default 25)",
    )
    ap.add_argument(
        "--skip-above",
        dest="skip_above_str",
        default="",
        metavar="PEER=MB,...",
        help="PEER=MB[,PEER=MB]: do not run PEER on more than MB (e.g. hf-unigram=50)",
    )
    ap.add_argument(
        "--only",
        dest="only_str",
        default="",
        metavar="PEER=MB/MB,...",
        help="run PEER only at these sizes (e.g. original=25/100,spm-unigram=100)",
    )
    ap.add_argument(
        "--peer-timeout",
        dest="peer_timeout_str",
        default="",
        metavar="PEER=S,...",
        help="stop PEER's training after S seconds (reported as not finished), instead of --timeout",
    )
    ap.add_argument(
        "--quick", action="store_true", help="< 10 min on 2 cores: --mb 5 --sizes 2,5 --test-mb 2 (unless given)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="workers / threads of every trainer (default: all cores)",
    )
    ap.add_argument(
        "--test-mb",
        type=float,
        default=None,
        help="cap of each held-out set (mix, zh, en, code) in MB (default: all of it)",
    )
    ap.add_argument("--order", type=int, default=6)
    ap.add_argument("--min-count", type=int, default=2, help="BytePiece min_count (and HF BPE min_frequency)")
    ap.add_argument("--max-piece-length", type=int, default=36)
    ap.add_argument("--spm-coverage", type=float, default=0.9995, help="SentencePiece character_coverage")
    ap.add_argument("--stack-mb", type=int, default=1024, help="stack of the HF Unigram training thread")
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="per training run, seconds (default 3 h)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run a training shorter than --repeat-below s this many times in all and report "
        "the run of median time (default 1: once)",
    )
    ap.add_argument("--repeat-below", type=float, default=10.0, help="see --repeat (default 10 s)")
    ap.add_argument(
        "--retries", type=int, default=1, help="re-run a training disturbed by other processes / steal (default 1)"
    )
    ap.add_argument(
        "--retry-above",
        type=float,
        default=0.25,
        help="disturbance (others' CPU + steal, share of the machine) that triggers a re-run",
    )
    ap.add_argument(
        "--min-available-mb",
        type=int,
        default=800,
        help="kill a trainer when the machine has less memory available than this",
    )
    ap.add_argument("--poll", type=float, default=0.1, help="memory polling interval, seconds")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=600,
        help="before each training wait up to S s until other processes use < --idle-threshold "
        "of the CPU (default 600; 0: do not wait)",
    )
    ap.add_argument("--idle-threshold", type=float, default=0.1)
    ap.add_argument(
        "--max-load",
        type=float,
        default=0.5,
        help="before the first training wait (up to --wait-idle s) for the 1-min load average to drop below this",
    )
    ap.add_argument(
        "--workdir", default=None, help="keep training files, models and logs here (default: a temp dir, removed)"
    )
    ap.add_argument("--out", default=os.path.join(HERE, "results", "train.md"))
    a = ap.parse_args(argv)
    if a.quick:
        a.mb = 5 if a.mb is None else a.mb
        a.sizes = a.sizes or "2,5"
        a.test_mb = 2 if a.test_mb is None else a.test_mb
    a.mb = 25 if a.mb is None else a.mb
    try:
        a.sizes = sorted({float(x) for x in a.sizes.split(",") if x.strip()} | {a.mb}) if a.sizes else [a.mb]
    except ValueError:
        ap.error("--sizes: a comma list of numbers")
    a.sizes = [int(s) if s == int(s) else s for s in a.sizes]
    a.mb = int(a.mb) if a.mb == int(a.mb) else a.mb
    a.peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    bad = [p for p in a.peers if p not in ALL_PEERS]
    if bad:
        ap.error("unknown peer(s) %s; choose from %s" % (",".join(bad), ",".join(ALL_PEERS)))
    if "ours" not in a.peers:
        a.peers.insert(0, "ours")
    a.skip_above = {}
    for item in filter(None, (x.strip() for x in a.skip_above_str.split(","))):
        k, _, v = item.partition("=")
        if k not in ALL_PEERS:
            ap.error("--skip-above: unknown peer %r" % k)
        try:
            a.skip_above[k] = float(v)
        except ValueError:
            ap.error("--skip-above: PEER=MB")
    a.skip_above.setdefault("original", a.skip_original_above)
    a.skip_above["original"] = min(a.skip_above["original"], a.skip_original_above)
    a.only, a.peer_timeout = {}, {}
    for opt, text, target, conv in (
        ("--only", a.only_str, a.only, lambda v: {float(x) for x in v.split("/")}),
        ("--peer-timeout", a.peer_timeout_str, a.peer_timeout, float),
    ):
        for item in filter(None, (x.strip() for x in text.split(","))):
            k, _, v = item.partition("=")
            if k not in ALL_PEERS:
                ap.error("%s: unknown peer %r" % (opt, k))
            try:
                target[k] = conv(v)
            except ValueError:
                ap.error("%s: bad value %r" % (opt, item))
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)

    def log(msg):
        print(msg, flush=True)

    if not os.path.isdir(a.corpus):
        log(
            "no corpus at %s: build it with `bash shared/corpus/build_corpus.sh DIR` "
            "(downloads from PyPI and Debian only; ~157 MB mix.train.txt) and pass --corpus DIR "
            "or set BYTEPIECE_CORPUS" % a.corpus
        )
        return 2
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).astimezone()
    own_tmp = a.workdir is None
    workdir = tempfile.mkdtemp(prefix="bench-train-") if own_tmp else a.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        log("== training files (%s MB) in %s" % (",".join(map(str, a.sizes)), workdir))
        train = build_training_files(a.corpus, a.sizes, workdir, log)
        for s, i in train.items():
            log(
                "   %g MB: %s bytes, %s lines, longest line %s bytes, %s blank-line documents"
                % (
                    s,
                    "{:,}".format(i["bytes"]),
                    "{:,}".format(i["lines"]),
                    "{:,}".format(i["longest_line_bytes"]),
                    "{:,}".format(i["blank_line_docs"]),
                )
            )
        held, held_files = load_held_out(a.corpus, a.test_mb)
        held_desc = ", ".join(
            "%s = %s (%d docs, %.2f MB)" % (n, held_files[n], len(held[n]), sum(len(d.encode()) for d in held[n]) / MB)
            for n in HELD_OUT
        )
        if a.test_mb is not None:
            held_desc += "; each capped at %g MB (--test-mb)" % a.test_mb
        log("== held-out: " + held_desc)

        load0 = loadavg()
        if a.wait_idle > 0 and a.max_load > 0:
            wait_load(a.wait_idle, a.max_load)
        runs = []
        for s in a.sizes:
            for p in a.peers:
                if s > a.skip_above.get(p, float("inf")) or (p in a.only and s not in a.only[p]):
                    continue
                attempts = []
                while True:
                    log("== %s, %g MB ...%s" % (TITLES[p], s, " (again)" if attempts else ""))
                    try:
                        r = run_trainer(p, s, train[s], a, workdir, log)
                    except Exception:  # noqa: BLE001
                        r = {
                            "peer": p,
                            "size_mb": s,
                            "ok": False,
                            "error": "benchmark error",
                            "log_tail": traceback.format_exc(),
                            "process_wall_s": None,
                            "peak_rss_tree": None,
                        }
                    attempts.append(r)
                    noise = r.get("others_cpu", 0) + r.get("steal", 0)
                    if not r["ok"] or noise <= a.retry_above or len(attempts) > a.retries:
                        break
                    log(
                        "   disturbed: others' CPU %.0f%%, steal %.0f%% (%.2f s, peak RSS %s MiB); running it again"
                        % (100 * r["others_cpu"], 100 * r["steal"], r["train_s"], fmt_mb(r["peak_rss_tree"]))
                    )
                ok_attempts = [x for x in attempts if x["ok"]]
                if ok_attempts:
                    r = min(ok_attempts, key=lambda x: x["others_cpu"] + x["steal"])
                if len(attempts) > 1:
                    r = dict(r)
                    r["attempts"] = [{k: v for k, v in x.items() if k != "log_tail"} for x in attempts]
                if r["ok"] and a.repeat > 1 and r["train_s"] < a.repeat_below:
                    # a short training: run it --repeat times in all, keep the run of median time
                    reps = [r]
                    for i in range(a.repeat - 1):
                        log("== %s, %g MB ... (repeat %d/%d, short training)" % (TITLES[p], s, i + 2, a.repeat))
                        x = run_trainer(p, s, train[s], a, workdir, log)
                        if x["ok"]:
                            reps.append(x)
                    med = sorted(reps, key=lambda x: x["train_s"])[(len(reps) - 1) // 2]
                    r = dict(med, attempts=r.get("attempts"))
                    r["repeats"] = [
                        {k: x.get(k) for k in ("train_s", "tree_cpu_s", "peak_rss_tree", "others_cpu", "steal")}
                        for x in reps
                    ]
                if r["ok"]:
                    try:
                        r["eval"] = evaluate(p, r["model"], held, a.workers, HELD_OUT)
                    except Exception:  # noqa: BLE001
                        r["eval_error"] = traceback.format_exc()
                        log(r["eval_error"])
                    e = r.get("eval", {})
                    log(
                        "   %.2f s (CPU %.1f s), peak RSS %s MiB, PSS %s MiB, vocab %s, bytes/token mix %s, "
                        "round-trip fails %s, others' CPU %.0f%%, steal %.0f%%"
                        % (
                            r["train_s"],
                            r["tree_cpu_s"],
                            fmt_mb(r["peak_rss_tree"]),
                            fmt_mb(r["peak_pss_tree"]),
                            e.get("vocab_size"),
                            "%.3f" % e["mix"]["bytes_per_token"] if e else "—",
                            "/".join(str(e[n]["roundtrip_fail"]) for n in HELD_OUT) if e else "—",
                            100 * r["others_cpu"],
                            100 * r["steal"],
                        )
                    )
                else:
                    log("   FAILED: %s\n%s" % (r["error"], r.get("log_tail", "")))
                runs.append(r)

        meta = {"header": []}
        # cross-checks of the BytePiece models
        sample = held["mix"][:40]
        checks = []
        for r in runs:
            if (
                r["ok"]
                and r["peer"] in ("ours", "original")
                and r["size_mb"] == max(x["size_mb"] for x in runs if x["ok"] and x["peer"] == r["peer"])
            ):
                checks.append(
                    "%s %g MB model: %s docs"
                    % (r["peer"], r["size_mb"], check_against_original_encoder(r["model"], sample))
                )
        meta["encoder_check"] = (
            "; ".join(checks) + " (first %d mix documents)" % len(sample) if checks else "not checked"
        )
        ok_o = {r["size_mb"]: r for r in runs if r["peer"] == "original" and r["ok"]}
        ok_u = {r["size_mb"]: r for r in runs if r["peer"] == "ours" and r["ok"]}
        both = sorted(set(ok_o) & set(ok_u))
        if both:
            s = both[-1]
            meta["same_model"] = ("%g MB" % s, same_model(ok_u[s]["model"], ok_o[s]["model"]))

        mem = meminfo()
        versions = {
            "bytepiece-rs (ours)": version_of("bytepiece-rs", "bytepiece_rs"),
            "bytepiece": version_of("bytepiece"),
            "sentencepiece": version_of("sentencepiece"),
            "tokenizers": version_of("tokenizers"),
            "numpy": version_of("numpy"),
            "pyahocorasick": version_of("pyahocorasick"),
        }
        corpus_files = {}
        for fn in sorted(os.listdir(a.corpus)):
            if fn.endswith((".txt", ".jsonl")):
                corpus_files[fn] = os.path.getsize(os.path.join(a.corpus, fn))
        meta["header"] = [
            ("date", started.isoformat(timespec="seconds")),
            (
                "machine",
                "%s, %d cores, %.1f GiB RAM, %s; Python %s"
                % (
                    cpu_model(),
                    os.cpu_count() or 0,
                    mem.get("MemTotal", 0) / 2**30,
                    platform.platform(),
                    platform.python_version(),
                ),
            ),
            ("command", "`python3 bench/train.py %s`" % " ".join(sys.argv[1:])),
            ("load average at start / end", "%s / %s" % (load0, loadavg())),
            ("versions", ", ".join("%s %s" % (k, v) for k, v in versions.items())),
            ("corpus", "`%s`: %s" % (a.corpus, ", ".join("%s %.1f MB" % (k, v / MB) for k, v in corpus_files.items()))),
            (
                "training text",
                "; ".join(
                    "%g MB = %s bytes, %s lines (longest %s bytes), %s documents for the original%s"
                    % (
                        s,
                        "{:,}".format(i["bytes"]),
                        "{:,}".format(i["lines"]),
                        "{:,}".format(i["longest_line_bytes"]),
                        "{:,}".format(i["blank_line_docs"]),
                        " (beyond mix.train.txt: + en/code training documents)" if i["extended"] else "",
                    )
                    for s, i in train.items()
                )
                + "; the first bytes of mix.train.txt cut at a blank line (MB = 10^6 bytes)",
            ),
            ("workers", "%d for every trainer" % a.workers),
            ("total run time", "%.0f s" % (time.perf_counter() - t_start)),
        ]
        meta["held_out_desc"] = held_desc
        meta["train"] = train
        report = build_report(meta, runs, a)
        print()
        print(report)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(report)
        js = os.path.splitext(a.out)[0] + ".json"
        with open(js, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "args": {k: v for k, v in vars(a).items() if not k.startswith("_")},
                    "meta": meta,
                    "versions": versions,
                    "corpus_files": corpus_files,
                    "settings": peer_settings(a),
                    "runs": runs,
                },
                f,
                indent=1,
                default=str,
            )
        log("wrote %s and %s" % (a.out, js))
        return 0 if all(r["ok"] for r in runs) else 1
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
