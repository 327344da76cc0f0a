"""What the training benchmarks (train.py, scale.py) share: running a trainer in its own
subprocess while the memory of its process tree is polled, the trainers themselves (one
function per trainer, run inside that subprocess), reading the corpus, and the held-out
evaluation.

A training is described by a job, a dict of plain values (see `train_job`); `run_training(job)`
runs `python3 common.py JOB.json` and returns the measurements.
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_times, loadavg

MB = 1e6


# --------------------------------------------------------------------------- machine


def meminfo():
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


# --------------------------------------------------------------------------- process-tree memory


def _children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(b")") + 2 :].split(None, 2)[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_pids(root):
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def rss_hwm(pid):
    """(VmRSS, VmHWM) of a process in bytes, from /proc/PID/status; (0, 0) if it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def reset_hwm():
    """Resets this process' VmHWM to its current RSS (Linux >= 4.0), so that the next
    `rss_hwm` gives the peak of what follows; False if the kernel refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def pss_bytes(pid):
    """PSS of a process; 0 if it is gone, None if the kernel has no smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
        return 0  # exiting process: empty file
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except (OSError, ValueError, IndexError):
        return None


PSS_SUPPORTED = os.path.exists("/proc/self/smaps_rollup")


class TreeMonitor(threading.Thread):
    """Polls the RSS / PSS of a process and its descendants; keeps the peaks of the sums."""

    def __init__(self, pid, interval, min_available):
        super().__init__(daemon=True)
        self.pid, self.interval, self.min_available = pid, interval, min_available
        self.peak_rss = self.peak_pss = 0
        self.peak_hwm = 0  # largest VmHWM of a single process of the tree
        self.peak_procs = 0
        self.samples = 0
        self.pss_ok = PSS_SUPPORTED
        self.low_memory = False
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            pids = tree_pids(self.pid)
            rss = 0
            for p in pids:
                r, h = rss_hwm(p)
                rss += r
                self.peak_hwm = max(self.peak_hwm, h)
            # PSS only differs from RSS when processes share pages (forked workers): reading
            # smaps_rollup walks the page tables under the process' memory-map lock, which
            # measured slowed a single-process trainer that maps memory often by up to 30%
            # (bytepiece-rs on 100 MB: 14.0 s alone, 18.2 s polled every 0.1 s). A single
            # process' PSS is taken as its RSS (an upper bound).
            pss = rss
            if PSS_SUPPORTED and len(pids) > 1:
                pss = sum(pss_bytes(p) or 0 for p in pids)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.samples += 1
            avail = meminfo().get("MemAvailable")
            if avail is not None and avail < self.min_available and not self.low_memory:
                self.low_memory = True
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


def run_measured(cmd, log_path, *, env=None, preexec=None, timeout=3 * 3600, poll=0.1, min_available_mb=800):
    """Runs `cmd` in its own session (output to `log_path`), polling the memory of its process
    tree, and kills the tree after `timeout` s or when the machine has less than
    `min_available_mb` MB available. Returns wall and CPU time, the peaks, the exit code, the
    share of the CPU other processes used meanwhile, and why it failed if it did."""
    (b0, st0), o0 = cpu_times(), os.times()
    t0 = time.perf_counter()
    with open(log_path, "wb") as lf:
        proc = subprocess.Popen(
            cmd, stdout=lf, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=preexec
        )  # noqa: PLW1509 (before the monitor thread)
        mon = TreeMonitor(proc.pid, poll, min_available_mb * 2**20)
        mon.start()
        status, ru, timed_out = None, None, False
        while True:
            pid, st, r = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, ru = st, r
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                _, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = 0  # reaped by wait4 above
        wall = time.perf_counter() - t0
        mon.stop()
    # kill strays of the tree (none expected: the trainers join their workers)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    o1 = os.times()
    own = (o1.user - o0.user) + (o1.system - o0.system)
    tree_cpu = ru.ru_utime + ru.ru_stime
    b1, st1 = cpu_times()
    ncpu = os.cpu_count() or 1
    rec = {
        "process_wall_s": wall,
        "tree_cpu_s": tree_cpu,
        "peak_rss_tree": mon.peak_rss,
        "peak_pss_tree": mon.peak_pss if mon.pss_ok else None,
        "peak_hwm_one_process": mon.peak_hwm,
        "peak_processes": mon.peak_procs,
        "samples": mon.samples,
        "others_cpu": max(0.0, b1 - b0 - tree_cpu - own) / (wall * ncpu),
        "steal": max(0.0, st1 - st0) / (wall * ncpu),
        "load_after": loadavg(),
        "exit": os.waitstatus_to_exitcode(status),
    }
    if rec["exit"] != 0 or timed_out or mon.low_memory:
        with open(log_path, "rb") as f:
            tail = f.read()[-3000:].decode("utf-8", "replace")
        rec["log_tail"] = "\n".join(line for line in re.split(r"[\r\n]", tail) if line.strip())[-1500:]
        rec["error"] = (
            f"timeout after {timeout:.0f} s"
            if timed_out
            else f"killed: less than {min_available_mb} MB of memory left"
            if mon.low_memory
            else f"exit {rec['exit']}"
        )
    return rec


# --------------------------------------------------------------------------- text


def jsonl_texts(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)["text"]


def cut_at_blank_line(data, cap):
    """The longest prefix of `data` (bytes) of at most cap bytes that ends at a blank line
    (else at a line end)."""
    if len(data) <= cap:
        return data
    head = data[:cap]
    i = head.rfind(b"\n\n")
    if i > cap // 2:
        return head[: i + 2]
    return head[: head.rfind(b"\n") + 1]


def split_docs(text):
    """Cut after each blank line (runs of >= 2 newlines); separators kept, "".join(docs) == text."""
    return [d for d in re.findall(r"(?s).*?(?:\n\n+|\Z)", text) if d]


def longest_line(paths):
    """Length in bytes of the longest line of the files (SentencePiece skips longer ones)."""
    best = 0
    for p in [paths] if isinstance(paths, str) else paths:
        with open(p, "rb") as f:
            for line in f:
                best = max(best, len(line.rstrip(b"\n")))
    return best


# --------------------------------------------------------------------------- trainers (subprocess)

#: The trainers a job can name.
TRAINERS = ("ours", "original", "spm-bpe", "spm-unigram", "hf-bpe", "hf-unigram")

#: What a text of a training file is for ours: the whole file, as the original's documents are
#: (the file cut after blank lines, separators kept: the same model) and as the published
#: figures were measured.
OURS_TEXT_UNIT = "file"


def train_job(
    trainer,
    train_file,
    model,
    result,
    *,
    workers,
    vocab,
    order=6,
    min_count=2,
    max_piece_length=36,
    spm_coverage=0.9995,
    stack_mb=1024,
    max_line=None,
    ours_args=None,
    spm_args=None,
):
    """A training job for `run_training`. `train_file` is a path (a list of paths for ours);
    `ours_args` are more keyword arguments of ours' Trainer, `spm_args` of SentencePiece's
    trainer (they override the defaults of `train_model`)."""
    if max_line is None and not trainer.startswith("spm-"):
        max_line = 0
    elif max_line is None:
        max_line = longest_line(train_file)
    return {
        "trainer": trainer,
        "train_file": train_file,
        "model": model,
        "result": result,
        "workers": workers,
        "vocab": vocab,
        "order": order,
        "min_count": min_count,
        "max_piece_length": max_piece_length,
        "spm_coverage": spm_coverage,
        "stack_mb": stack_mb,
        "max_line": max_line,
        "ours_args": dict(ours_args or {}),
        "spm_args": dict(spm_args or {}),
    }


def train_model(job):
    """Trains one model; runs in its own process. Writes a JSON with its own timings and
    memory (VmRSS before training, VmHWM = its own peak RSS, at the end)."""
    j = job
    res = {"peer": j["trainer"]}
    t0 = time.perf_counter()
    name, path, model = j["trainer"], j["train_file"], j["model"]
    if name == "ours":
        import bytepiece_rs

        res["import_s"] = time.perf_counter() - t0
        res["rss_before"] = rss_hwm(os.getpid())[0]
        t1 = time.perf_counter()
        tr = bytepiece_rs.Trainer(
            order=j["order"],
            max_vocab_size=j["vocab"],
            max_piece_length=j["max_piece_length"],
            min_count=j["min_count"],
            progress=False,
            **j["ours_args"],
        )
        tr.train_from_files(path, workers=j["workers"], text_unit=OURS_TEXT_UNIT)
        tr.save(model)
    elif name == "original":
        import bytepiece

        res["import_s"] = time.perf_counter() - t0
        tp = time.perf_counter()
        with open(path, encoding="utf-8") as f:
            docs = split_docs(f.read())
        res["prep_s"] = time.perf_counter() - tp
        res["docs"] = len(docs)
        gc.collect()
        res["rss_before"] = rss_hwm(os.getpid())[0]
        t1 = time.perf_counter()
        tr = bytepiece.Trainer(
            order=j["order"],
            max_vocab_size=j["vocab"],
            max_piece_length=j["max_piece_length"],
            min_count=j["min_count"],
        )
        tr.train(docs, workers=j["workers"])
        tr.save(model)
    elif name in ("spm-bpe", "spm-unigram"):
        import sentencepiece as spm

        res["import_s"] = time.perf_counter() - t0
        res["rss_before"] = rss_hwm(os.getpid())[0]
        t1 = time.perf_counter()
        assert model.endswith(".model")
        kw = {
            "input": path,
            "model_prefix": model[: -len(".model")],
            "model_type": name[4:],
            "vocab_size": j["vocab"],
            "byte_fallback": True,
            "normalization_rule_name": "identity",
            "remove_extra_whitespaces": False,
            "add_dummy_prefix": False,
            "split_digits": False,
            "character_coverage": j["spm_coverage"],
            "input_sentence_size": 0,
            "shuffle_input_sentence": False,
            "max_sentence_length": j["max_line"] + 1,
            "num_threads": j["workers"],
            "minloglevel": 1,
        }
        kw.update(j["spm_args"])
        spm.SentencePieceTrainer.train(**kw)
    elif name in ("hf-bpe", "hf-unigram"):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        res["import_s"] = time.perf_counter() - t0
        res["rss_before"] = rss_hwm(os.getpid())[0]
        t1 = time.perf_counter()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if name == "hf-bpe":
            tok = Tokenizer(models.BPE())
            trainer = trainers.BpeTrainer(
                vocab_size=j["vocab"],
                min_frequency=j["min_count"],
                show_progress=False,
                initial_alphabet=alphabet,
                special_tokens=[],
            )
        else:
            tok = Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(
                vocab_size=j["vocab"],
                show_progress=False,
                unk_token="<unk>",
                special_tokens=["<unk>"],
                initial_alphabet=alphabet,
            )
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        err = []

        def run():
            try:
                tok.train([path], trainer)
                tok.save(model)
            except BaseException as e:  # noqa: BLE001 - reported by the parent
                err.append(e)

        if name == "hf-unigram":
            threading.stack_size(j["stack_mb"] << 20)
        th = threading.Thread(target=run)
        th.start()
        th.join()
        if err:
            raise err[0]
    else:
        raise SystemExit(f"unknown trainer {name!r}")
    res["train_s"] = time.perf_counter() - t1
    res["model_bytes"] = os.path.getsize(model)
    res["hwm_self"] = rss_hwm(os.getpid())[1]
    with open(j["result"], "w") as f:
        json.dump(res, f)


def _unlimited_stack():
    try:
        resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))


def run_job(cmd, job, log_path, *, env=None, preexec=None, timeout=3 * 3600, poll=0.1, min_available_mb=800):
    """Runs `cmd + [JOB.json]` under `run_measured`, the job being a dict with the paths
    `model` and `result` that the subprocess writes (the result: a JSON object of its own
    measurements, `hwm_self` its VmHWM). Returns the measurements, the result merged in, and
    `ok`: the subprocess succeeded and wrote both."""
    for p in (job["model"], job["result"]):
        if os.path.exists(p):
            os.remove(p)
    job_path = os.path.splitext(job["result"])[0] + ".job.json"
    with open(job_path, "w") as f:
        json.dump(job, f)
    rec = run_measured(
        cmd + [job_path],
        log_path,
        env=env,
        preexec=preexec,
        timeout=timeout,
        poll=poll,
        min_available_mb=min_available_mb,
    )
    ok = "error" not in rec and os.path.exists(job["result"]) and os.path.exists(job["model"])
    if ok:
        with open(job["result"]) as f:
            rec.update({k: v for k, v in json.load(f).items() if k != "peer"})
        # the subprocess' own peak (VmHWM) is exact; polling can miss a short peak
        rec["peak_rss_polled"] = rec["peak_rss_tree"]
        rec["peak_rss_tree"] = max(rec["peak_rss_tree"], rec.get("hwm_self", 0))
        rec["peak_hwm_one_process"] = max(rec["peak_hwm_one_process"], rec.get("hwm_self", 0))
    elif "error" not in rec:
        rec["error"] = "no model or result written"
        rec.setdefault("log_tail", "")
    rec["ok"] = ok
    return rec


def run_training(job, log_path, *, timeout=3 * 3600, poll=0.1, min_available_mb=800):
    """Runs `train_model(job)` in a subprocess (`run_job`)."""
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(job["workers"])
    env["TOKENIZERS_PARALLELISM"] = "true"
    preexec = None
    if job["trainer"] == "hf-unigram":
        env["RUST_MIN_STACK"] = str(job["stack_mb"] << 20)
        preexec = _unlimited_stack
    return run_job(
        [sys.executable, os.path.abspath(__file__)],
        job,
        log_path,
        env=env,
        preexec=preexec,
        timeout=timeout,
        poll=poll,
        min_available_mb=min_available_mb,
    )


# --------------------------------------------------------------------------- evaluation


class Model:
    """Encoder / decoder of a trained model, for held-out evaluation. `peer`: a trainer of
    TRAINERS (ours and original: a BytePiece model; spm-*: SentencePiece; hf-*: HF)."""

    def __init__(self, peer, path, workers):
        self.peer, self.path, self.n = peer, path, workers
        if peer in ("ours", "original"):
            import bytepiece_rs

            self.tok = bytepiece_rs.Tokenizer(path)
            self.vocab_size = self.tok.vocab_size
        elif peer.startswith("spm-"):
            import sentencepiece as spm

            self.tok = spm.SentencePieceProcessor(model_file=path)
            self.vocab_size = self.tok.get_piece_size()
        else:
            from tokenizers import Tokenizer

            self.tok = Tokenizer.from_file(path)
            self.vocab_size = self.tok.get_vocab_size()

    def encode(self, docs):
        """-> list of id lists"""
        if self.peer in ("ours", "original"):
            flat, off = self.tok.encode_batch_numpy(docs, num_threads=self.n)
            flat = flat.tolist()
            off = [int(o) for o in off]
            return [flat[x:y] for x, y in zip(off, off[1:])]
        if self.peer.startswith("spm-"):
            return self.tok.encode(docs, out_type=int, num_threads=self.n)
        return [e.ids for e in self.tok.encode_batch(docs, add_special_tokens=False)]

    def roundtrip(self, ids, doc):
        if self.peer in ("ours", "original"):
            return self.tok.decode_bytes(ids) == unicodedata.normalize("NFC", doc).encode("utf-8")
        if self.peer.startswith("spm-"):
            return self.tok.decode(ids) == doc
        return self.tok.decode(ids, skip_special_tokens=False) == doc


def evaluate(peer, model_path, held, workers, names=None):
    """Bytes per token and round trip of a model on each held-out set `held[name]` (a list of
    documents, each encoded on its own), for the names `names` (default: all of `held`)."""
    m = Model(peer, model_path, workers)
    out = {"vocab_size": m.vocab_size}
    t0 = time.perf_counter()
    for name in names or list(held):
        docs = held[name]
        nbytes = ntok = bad = 0
        first_bad = None
        for i in range(0, len(docs), 500):
            chunk = docs[i : i + 500]
            ids = m.encode(chunk)
            for d, x in zip(chunk, ids):
                nbytes += len(d.encode("utf-8"))
                ntok += len(x)
                if not m.roundtrip(x, d):
                    bad += 1
                    if first_bad is None:
                        first_bad = i + chunk.index(d)
        out[name] = {
            "bytes": nbytes,
            "tokens": ntok,
            "bytes_per_token": nbytes / max(ntok, 1),
            "docs": len(docs),
            "roundtrip_fail": bad,
            "first_fail_doc": first_bad,
        }
    out["eval_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- report


def fmt_mb(b):
    return "—" if b is None else f"{b / 2**20:,.0f}"


def fmt_s(s):
    if s is None:
        return "—"
    return f"{s:.2f}" if s < 10 else f"{s:.1f}" if s < 100 else f"{s:,.0f}"


def ratio(x, y):
    return None if not x or not y else x / y


if __name__ == "__main__":
    # python3 common.py JOB.json: the subprocess of run_training
    with open(sys.argv[1]) as f:
        train_model(json.load(f))
