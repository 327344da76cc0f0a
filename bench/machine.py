"""What the benchmarks share: the machine's description and how busy other processes keep it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time

CLK = os.sysconf("SC_CLK_TCK")


def add_corpus_argument(ap) -> None:
    """``--corpus DIR``: the output of ``shared/corpus/build_corpus.sh`` (default
    ``$BYTEPIECE_CORPUS``, else ``./corpus``)."""
    ap.add_argument(
        "--corpus",
        default=os.environ.get("BYTEPIECE_CORPUS", "corpus"),
        help="output dir of shared/corpus/build_corpus.sh (default $BYTEPIECE_CORPUS or ./corpus)",
    )


def shared_dir() -> str:
    """The project's shared folder: $BYTEPIECE_SHARED, else ../shared beside the repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("BYTEPIECE_SHARED") or os.path.normpath(os.path.join(here, "..", "..", "shared"))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    """The machine and interpreter, for the header of a report."""
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    os_name = platform.platform()
    try:
        with open("/etc/os-release") as f:
            rel = dict(lg.rstrip("\n").split("=", 1) for lg in f if "=" in lg)
        os_name = "%s (%s)" % (rel.get("PRETTY_NAME", "").strip('"'), os_name)
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "ram_gib": round(mem / 2**30, 1),
        "os": os_name,
        "python": platform.python_version(),
    }


def version_of(*dists):
    """The installed version of the first of `dists` that is installed, or None."""
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_times():
    """(busy, steal) CPU seconds of the whole machine (all cores), from /proc/stat. Steal: time
    the hypervisor gave this VM's virtual CPUs to someone else."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK, (v[7] if len(v) > 7 else 0) / CLK
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine (all cores), steal included."""
    return sum(cpu_times())


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loadavg() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


def other_cpu_share(window: float) -> float:
    """Share of the machine's CPU used by other processes over `window` seconds (0..1)."""
    b0, o0, t0 = cpu_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    time.sleep(window)
    other = cpu_busy_seconds() - b0 - (own_cpu_seconds() - o0)
    return max(0.0, other) / ((time.perf_counter() - t0) * (os.cpu_count() or 1))


def wait_idle(max_wait: float, threshold: float = 0.1, window: float = 5.0) -> float:
    """Wait (at most max_wait s) until other processes use < threshold of the machine."""
    t0 = time.perf_counter()
    while True:
        share = other_cpu_share(window)
        if share < threshold or time.perf_counter() - t0 >= max_wait:
            return share
        print(
            "   machine busy (%.0f%% used by other processes, load %s), waiting ..." % (100 * share, loadavg()),
            flush=True,
        )


def take_capped(texts, cap_bytes):
    """The first texts whose UTF-8 sizes add up to at most `cap_bytes` (at least one)."""
    out, total = [], 0
    for t in texts:
        n = len(t.encode("utf-8"))
        if total + n > cap_bytes and out:
            break
        out.append(t)
        total += n
    return out


def write_report(path: str, text: str, data) -> None:
    """Writes a benchmark's report: ``text`` (Markdown) to ``path``, ``data`` as JSON beside it
    (``.json`` for ``.md``), and prints the text."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    print(text)
