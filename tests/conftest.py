"""Shared pytest fixtures.

- The shared folder: $BYTEPIECE_SHARED, else <repo>/../shared (a clean clone with shared/ beside it).
- ``model_path(name)``: unzips shared/models/NAME.zip once per session, returns the .model path.
- ``tokenizer(name)``: a cached ``bytepiece_rs.Tokenizer`` for a released model.
- ``corpus_dir``: $BYTEPIECE_CORPUS (the output of shared/corpus/build_corpus.sh); tests skip without it.
- ``oracle``: the original ``bytepiece`` module; tests using it skip when it is not installed.
- ``golden(name)``: the parsed tests/golden/NAME.json.gz.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

# Tests never reach the network: `datasets` reads local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import edge_cases as ec  # noqa: E402

REPO_ROOT = TESTS_DIR.parent
GOLDEN_DIR = TESTS_DIR / "golden"
SHARED = ec.shared_dir()
MODEL_NAMES = ec.MODEL_NAMES

requires_oracle = pytest.mark.oracle
requires_corpus = pytest.mark.corpus


def pytest_configure(config):
    config.addinivalue_line("markers", "oracle: compares against the original bytepiece (skipped if not importable)")
    config.addinivalue_line("markers", "corpus: needs the built corpus in $BYTEPIECE_CORPUS (skipped if unset)")


@functools.lru_cache(maxsize=None)
def golden(name: str) -> dict:
    """tests/golden/NAME.json.gz, parsed (cached)."""
    with gzip.open(GOLDEN_DIR / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def as_list(ids) -> list[int]:
    """Our encode() may return a list or an array; compare as a list of ints."""
    return ids.tolist() if hasattr(ids, "tolist") else list(ids)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "models").is_dir():
        pytest.skip(f"shared folder not found at {SHARED} (set BYTEPIECE_SHARED or put shared/ beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def model_path(shared_dir, tmp_path_factory):
    """model_path(name) -> path of NAME.model, unzipped from shared/models/NAME.zip once per session."""
    cache = tmp_path_factory.mktemp("models")

    def get(name: str) -> str:
        out = cache / f"{name}.model"
        if not out.exists():
            zpath = shared_dir / "models" / f"{name}.zip"
            if not zpath.is_file():
                raise FileNotFoundError(f"model archive {zpath} is missing")
            with zipfile.ZipFile(zpath) as z:
                members = [n for n in z.namelist() if n.endswith(".model")]
                assert len(members) == 1, f"{zpath} should hold one .model, has {z.namelist()}"
                tmp = out.with_suffix(".tmp")
                tmp.write_bytes(z.read(members[0]))
                tmp.replace(out)
        return str(out)

    return get


@pytest.fixture(scope="session")
def tokenizer(model_path):
    """tokenizer(name) -> bytepiece_rs.Tokenizer for a released model (one per session)."""
    import bytepiece_rs

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = bytepiece_rs.Tokenizer(model_path(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    env = os.environ.get("BYTEPIECE_CORPUS")
    if not env:
        pytest.skip(
            "BYTEPIECE_CORPUS is not set: build the corpus with "
            "`shared/corpus/build_corpus.sh DIR` and export BYTEPIECE_CORPUS=DIR"
        )
    path = Path(env)
    missing = [f"{lang}.train.jsonl" for lang in ec.PARITY_LANGS if not (path / f"{lang}.train.jsonl").is_file()]
    if missing:
        pytest.skip(f"BYTEPIECE_CORPUS={path} lacks {', '.join(missing)}")
    return path


@pytest.fixture(scope="session")
def oracle():
    """The original bytepiece module (0.6.3 with a byte-mode pyahocorasick), or skip."""
    bp = pytest.importorskip(
        "bytepiece", reason="the original bytepiece is not installed (shared/reference/install_original.sh)"
    )
    import importlib.metadata

    try:
        version = importlib.metadata.version("bytepiece")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != "0.6.3":
        pytest.skip(f"installed bytepiece is {version}, the oracle must be 0.6.3")
    try:
        import ahocorasick

        a = ahocorasick.Automaton()
        a.add_word(b"ab", 1)
        a.make_automaton()
        assert list(a.iter(b"xab")) == [(2, 1)]
    except Exception:  # noqa: BLE001
        pytest.skip("pyahocorasick is not built in byte mode (AHOCORASICK_BYTES=1), the original cannot run")
    return bp
