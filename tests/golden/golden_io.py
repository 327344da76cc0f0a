"""What both fixture generators share: base64, compact gzip JSON, and the environment the
original ran in (its ids can depend on the CPU through NumPy's log)."""

from __future__ import annotations

import base64
import gzip
import importlib.metadata
import io
import json
import locale
import platform
import sys
import unicodedata
from pathlib import Path

import numpy as np


def b64(p: bytes) -> str:
    return base64.b64encode(p).decode()


def write_gz(path: Path, obj) -> None:
    """Writes `obj` as compact JSON, gzipped reproducibly (no name, no time)."""
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(raw)
    path.write_bytes(buf.getvalue())
    print(f"wrote {path.name} ({len(buf.getvalue())} bytes, {len(raw)} raw)", flush=True)


def cpu_flags() -> list[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def environment(generator: str) -> dict:
    """Versions and CPU features of the run that made a fixture."""
    flags = cpu_flags()
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats  # numpy >= 2
    except ImportError:  # pragma: no cover
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        except ImportError:
            feats = {}
    return {
        "generator": generator,
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "numpy": np.__version__,
        "bytepiece": importlib.metadata.version("bytepiece"),
        "pyahocorasick": importlib.metadata.version("pyahocorasick"),
        "machine": platform.machine(),
        "cpu_avx512f": "avx512f" in flags,
        "cpu_avx2": "avx2" in flags,
        "numpy_cpu_features_enabled": sorted(k for k, v in feats.items() if v and k.startswith("AVX")),
        "locale_encoding": locale.getpreferredencoding(False),
    }
