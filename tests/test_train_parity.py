"""Parity of bytepiece_rs.Trainer with the original bytepiece 0.6.3 Trainer: same model files, byte
for byte (same pieces, ids, counts and JSON text).

Fixtures: tests/golden/train_<case>.json.gz, made by tests/golden/make_train_golden.py with the
original (``Trainer(**params).train(texts, workers=1)`` then ``.save(path)``); the cases and their
texts are in tests/train_cases.py. These tests never run the original, except
``test_live_oracle`` (skipped when it is not installed).

The API under test::

    from bytepiece_rs import Trainer, convert_to_bytepiece
    t = Trainer(order=6, max_vocab_size=10000, max_piece_length=36, min_count=2,
                isolate_digits=False, ensure_unicode=True)
    t.train(texts, workers=1, batch_size=1000)
    t.save(path)        # path itself for one size, path.SIZE per size when max_vocab_size is a list
    convert_to_bytepiece(pieces, path)

About np.log: the original's n-gram and piece scores use np.log, which on AVX512F CPUs differs from
the C library's log in the last bit for some integers. Every fixture says whether the original,
re-run with math.log, gives the same files (``debug.libm``); failure messages mention it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import train_cases as tc
from conftest import GOLDEN_DIR, golden, requires_corpus, requires_oracle

try:
    import bytepiece_rs
except ImportError:  # pragma: no cover - the package is not built
    bytepiece_rs = None

HAVE_TRAINER = bytepiece_rs is not None and hasattr(bytepiece_rs, "Trainer")
HAVE_CONVERT = bytepiece_rs is not None and hasattr(bytepiece_rs, "convert_to_bytepiece")
needs_trainer = pytest.mark.skipif(
    not HAVE_TRAINER, reason="bytepiece_rs.Trainer does not exist yet (trainer not implemented)"
)
needs_convert = pytest.mark.skipif(not HAVE_CONVERT, reason="bytepiece_rs.convert_to_bytepiece does not exist yet")

SAMPLE_CASES = [c for c in tc.CASES if not c["needs_corpus"]]
CORPUS_CASES = [c for c in tc.CASES if c["needs_corpus"]]
ALL_CASES = [pytest.param(c, id=c["name"]) for c in SAMPLE_CASES] + [
    pytest.param(c, id=c["name"], marks=requires_corpus) for c in CORPUS_CASES
]
WORKER_CASES = [pytest.param(c, id=c["name"]) for c in tc.CASES if c["workers_check"]]


def fixture(case: dict) -> dict:
    path = GOLDEN_DIR / f"train_{case['name']}.json.gz"
    assert path.is_file(), f"missing fixture {path}: run tests/golden/make_train_golden.py"
    rec = golden(f"train_{case['name']}")
    assert rec["case"]["params"] == case["params"], (
        f"tests/train_cases.py changed the params of {case['name']} since the fixture was made: "
        f"{case['params']} vs {rec['case']['params']}"
    )
    assert rec["case"]["recipe"] == case["recipe"]
    return rec


_TEXTS: dict[str, list[str]] = {}


def texts_for(case: dict, shared: Path, corpus: Path | None, rec: dict) -> list[str]:
    key = case["recipe"]
    if key not in _TEXTS:
        _TEXTS.clear()  # keep at most one recipe (the corpus ones are large)
        _TEXTS[key] = tc.make_texts(key, shared, corpus)
    texts = _TEXTS[key]
    assert tc.texts_sha256(texts) == rec["texts"]["sha256"], (
        f"recipe {key!r} no longer gives the texts of the fixture (sample files or corpus changed?): "
        f"{len(texts)} texts vs {rec['texts']['n']}"
    )
    return texts


# --------------------------------------------------------------------------- diff reporting


def _fmt_piece(b64: str) -> str:
    return repr(base64.b64decode(b64))


def describe_model_diff(ours: bytes, want: str, label: str = "") -> str:
    """A readable account of how our saved model differs from the original's."""
    want_b = want.encode("utf-8")
    head = f"{label}: " if label else ""
    try:
        o = json.loads(ours.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{head}our file is not UTF-8 JSON ({e}); {len(ours)} bytes vs {len(want_b)}"
    w = json.loads(want)
    msgs = [f"{head}ours has {len(o)} pieces, the original {len(w)}"]
    by_id_o = {v[0]: (k, v) for k, v in o.items()}
    by_id_w = {v[0]: (k, v) for k, v in w.items()}
    only_o, only_w = set(o) - set(w), set(w) - set(o)
    if only_o or only_w:
        ex_o = sorted(only_o, key=lambda k: o[k][0])[:5]
        ex_w = sorted(only_w, key=lambda k: w[k][0])[:5]
        msgs.append(
            f"piece sets differ: {len(only_o)} only in ours (e.g. "
            f"{[(_fmt_piece(k), o[k][2]) for k in ex_o]}), {len(only_w)} only in the original "
            f"(e.g. {[(_fmt_piece(k), w[k][2]) for k in ex_w]})"
        )
    else:
        msgs.append("same set of pieces")
    for i in sorted(set(by_id_o) | set(by_id_w)):
        a, b = by_id_o.get(i), by_id_w.get(i)
        if a != b:
            fa = f"{_fmt_piece(a[0])} {a[1][1:]}" if a else "none"
            fb = f"{_fmt_piece(b[0])} {b[1][1:]}" if b else "none"
            msgs.append(f"first differing id {i}: ours {fa}, original {fb}")
            break
    common = set(o) & set(w)
    cdiff = sorted((k for k in common if o[k][2] != w[k][2]), key=lambda k: w[k][0])
    if cdiff:
        msgs.append(
            f"{len(cdiff)} common pieces with other counts, e.g. "
            + ", ".join(f"{_fmt_piece(k)}: ours {o[k][2]} vs {w[k][2]}" for k in cdiff[:5])
        )
    tdiff = [k for k in common if o[k][1] != w[k][1]]
    if tdiff:
        msgs.append(
            f"{len(tdiff)} pieces with another text field, e.g. {_fmt_piece(tdiff[0])}: "
            f"ours {o[tdiff[0]][1]!r} vs {w[tdiff[0]][1]!r}"
        )
    if o == w:
        i = next((j for j, (x, y) in enumerate(zip(ours, want_b)) if x != y), min(len(ours), len(want_b)))
        msgs.append(
            f"same JSON content but other bytes (formatting): first difference at byte {i}: "
            f"ours {ours[max(0, i - 30) : i + 30]!r} vs original {want_b[max(0, i - 30) : i + 30]!r}"
        )
    return "; ".join(msgs)


def saved_files(directory: Path, stem: str = "model") -> dict[str, bytes]:
    return {p.name[len(stem) :]: p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith(stem)}


def check_files(ours: dict[str, bytes], want: dict[str, str], what: str, rec: dict | None = None) -> None:
    assert sorted(ours) == sorted(want), (
        f"{what}: save() wrote {['model' + s for s in sorted(ours)]}, the original "
        f"{['model' + s for s in sorted(want)]}"
    )
    bad = [suf for suf in sorted(want) if ours[suf] != want[suf].encode("utf-8")]
    if bad:
        msgs = [describe_model_diff(ours[suf], want[suf], f"model{suf}") for suf in bad]
        libm = (rec or {}).get("debug", {}).get("libm")
        if libm and not libm.get("identical"):
            msgs.append(
                f"note: for this case the original with math.log instead of np.log gives other "
                f"files too ({libm.get('files')})"
            )
        pytest.fail(f"{what}: {len(bad)} of {len(want)} files differ\n  " + "\n  ".join(msgs), pytrace=False)


def train_ours(params: dict, texts: list[str], out_dir: Path, **train_kw) -> dict[str, bytes]:
    trainer = bytepiece_rs.Trainer(**params)
    trainer.train(texts, **train_kw)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save(str(out_dir / "model"))
    return saved_files(out_dir)


# --------------------------------------------------------------------------- fixture sanity


def test_fixtures_cover_all_cases():
    names = {c["name"] for c in tc.CASES}
    have = {p.name[len("train_") : -len(".json.gz")] for p in GOLDEN_DIR.glob("train_*.json.gz")}
    assert names - have == set(), f"cases without a fixture: {sorted(names - have)}"
    assert "convert" in have


@pytest.mark.parametrize("case", ALL_CASES)
def test_fixture_consistent(case, shared_dir, request):
    """The recipe still gives the fixture's texts, and the fixture has the files save() should write."""
    rec = fixture(case)
    corpus = request.getfixturevalue("corpus_dir") if case["needs_corpus"] else None
    texts_for(case, shared_dir, corpus, rec)
    assert sorted(rec["files"]) == sorted(tc.saved_names(case["params"]["max_vocab_size"]))
    for suf, content in rec["files"].items():
        model = json.loads(content)
        assert len(model) == rec["n_pieces"][suf]
        ids = sorted(v[0] for v in model.values())
        assert ids == list(range(3, 3 + len(model)))
        assert sum(len(base64.b64decode(k)) == 1 for k in model) == 256


# --------------------------------------------------------------------------- parity


@needs_trainer
@pytest.mark.parametrize("case", ALL_CASES)
def test_train_matches_original(case, shared_dir, tmp_path, request):
    rec = fixture(case)
    corpus = request.getfixturevalue("corpus_dir") if case["needs_corpus"] else None
    texts = texts_for(case, shared_dir, corpus, rec)
    ours = train_ours(case["params"], texts, tmp_path, workers=1)
    check_files(ours, rec["files"], f"{case['name']} (workers=1)", rec)


@needs_trainer
@pytest.mark.parametrize("case", WORKER_CASES)
@pytest.mark.parametrize("workers,batch_size", [(2, 1000), (2, 7), (1, 3)])
def test_workers_and_batch_size(case, workers, batch_size, shared_dir, tmp_path):
    """workers/batch_size only change how the work is split: the files must not change."""
    rec = fixture(case)
    texts = texts_for(case, shared_dir, None, rec)
    ours = train_ours(case["params"], texts, tmp_path, workers=workers, batch_size=batch_size)
    check_files(ours, rec["files"], f"{case['name']} (workers={workers}, batch_size={batch_size})", rec)


@needs_trainer
def test_default_params_and_single_size_naming(tmp_path):
    """Trainer() defaults are the original's; an int or a one-element list saves to the path itself,
    a list saves path.SIZE for each size."""
    texts = tc.head_bytes(tc.sample_docs("en"), 30_000)
    a = train_ours({}, texts, tmp_path / "a")
    b = train_ours(
        dict(
            order=6, max_vocab_size=10000, max_piece_length=36, min_count=2, isolate_digits=False, ensure_unicode=True
        ),
        texts,
        tmp_path / "b",
    )
    assert a == b and list(a) == [""]
    c = train_ours(dict(max_vocab_size=[10000]), texts, tmp_path / "c")
    assert c == a
    d = train_ours(dict(max_vocab_size=[700, 10000, 500]), texts, tmp_path / "d")
    assert sorted(d) == [".10000", ".500", ".700"]
    assert d[".10000"] == a[""]


# --------------------------------------------------------------------------- convert_to_bytepiece


def _convert_inputs() -> list:
    rec = golden("train_convert")
    return [pytest.param(name, id=name) for name in rec["cases"]]


@needs_convert
@pytest.mark.parametrize("name", _convert_inputs())
def test_convert_to_bytepiece(name, tmp_path):
    rec = golden("train_convert")["cases"][name]
    pieces = {}
    for key, count in rec["pieces"]:
        pieces[key["str"] if "str" in key else base64.b64decode(key["b64"])] = count
    assert list(pieces.items()) == list(tc.convert_cases()[name].items()), (
        "tests/train_cases.py convert_cases() changed since the fixture was made"
    )
    path = tmp_path / "model"
    bytepiece_rs.convert_to_bytepiece(pieces, str(path))
    check_files(saved_files(tmp_path), {"": rec["file"]}, f"convert_to_bytepiece[{name}]")


# --------------------------------------------------------------------------- live oracle


@requires_oracle
@needs_trainer
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_oracle(seed, oracle, tmp_path):
    """Small random text sets and random params: ours and the installed original must save the same files."""
    texts = tc.live_oracle_texts(seed)
    params = tc.live_oracle_params(seed)
    original = oracle.Trainer(**params)
    original.train(list(texts), workers=1)
    (tmp_path / "orig").mkdir()
    original.save(str(tmp_path / "orig" / "model"))
    want = {suf: data.decode("utf-8") for suf, data in saved_files(tmp_path / "orig").items()}
    ours = train_ours(params, texts, tmp_path / "ours", workers=1)
    check_files(ours, want, f"live oracle seed={seed} params={params}")
