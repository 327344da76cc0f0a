"""Parity of bytepiece_rs with the original bytepiece 0.6.3, against committed golden fixtures.

The fixtures (tests/golden/*.json.gz) were made by tests/golden/make_golden.py with the original
package; these tests never run it, except ``test_live_oracle`` (skipped when it is not installed).

Hash of an id list: blake2b(little-endian uint32 ids, digest_size=8) (edge_cases.ids_hash).

About "libm": the original scores pieces with np.log, which on the AVX512F machine that made the
fixtures differs from the C library's log in the last bit for a few counts. Where that changes
the original's output, the fixtures also hold the output the original gives with the C library's
log ("libm_diff"), and failure messages say when our ids match that instead.
"""

from __future__ import annotations

import base64
import unicodedata

import pytest

import edge_cases as ec
from conftest import MODEL_NAMES, as_list, golden, requires_corpus, requires_oracle

EDGE = golden("edge_cases")
TIES = golden("ties")
SAMPLES = golden("samples")
EDGE_CASE_NAMES = list(EDGE["texts_sha256"])
TIE_MODELS = list(TIES["models"])


def first_diff(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe(ours: list[int], rec: dict) -> str:
    """Why ours differs from a fixture record {n, hash[, ids][, libm_diff]}."""
    msg = f"ours: {len(ours)} ids, hash {ec.ids_hash(ours)}; original: {rec['n']} ids, hash {rec['hash']}"
    if "ids" in rec:
        i = first_diff(ours, rec["ids"])
        msg += f"; first difference at id #{i}: ours {ours[i : i + 8]} vs original {rec['ids'][i : i + 8]}"
    alt = rec.get("libm_diff")
    if alt and (len(ours), ec.ids_hash(ours)) == (alt["n"], alt["hash"]):
        msg += " (ours equals the original run with the C library's log instead of numpy's AVX512 log)"
    return msg


def check_record(ours, rec: dict, what: str) -> None:
    ours = as_list(ours)
    if "ids" in rec:
        ok = ours == rec["ids"]
    else:
        ok = len(ours) == rec["n"] and ec.ids_hash(ours) == rec["hash"]
    assert ok, f"{what}: {describe(ours, rec)}"


# --------------------------------------------------------------------------- fixture sanity


def test_hash_definition():
    import hashlib

    np = pytest.importorskip("numpy")
    ids = [0, 1, 255, 256, 65535, 65536, 159867, 2**32 - 1]
    want = hashlib.blake2b(np.asarray(ids, dtype="<u4").tobytes(), digest_size=8).hexdigest()
    assert ec.ids_hash(ids) == want
    assert EDGE["models"]["bytepiece_80k"]["edge"]["empty"]["hash"] == ec.ids_hash([])


def test_edge_case_texts_unchanged(shared_dir):
    """edge_cases() must still produce the texts the fixtures were made from."""
    cases = ec.edge_cases(shared_dir)
    assert list(cases) == EDGE_CASE_NAMES
    changed = [name for name, text in cases.items() if ec.sha256_text(text) != EDGE["texts_sha256"][name]]
    assert not changed, f"edge-case texts differ from the fixtures' (sample files changed?): {changed}"


@pytest.fixture(scope="module")
def cases(shared_dir):
    return ec.edge_cases(shared_dir)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("case", EDGE_CASE_NAMES)
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_edge_case_encode(tokenizer, cases, model, case):
    text = cases[case]
    if ec.sha256_text(text) != EDGE["texts_sha256"][case]:
        pytest.fail(f"edge case {case!r} text differs from the one the fixture was made from")
    rec = EDGE["models"][model]["edge"][case]
    ids = as_list(tokenizer(model).encode(text))
    check_record(ids, rec, f"{model} encode({case})")
    # decode(encode(t)) is the NFC text (every byte has a piece)
    assert tokenizer(model).decode(ids) == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_tokenize(tokenizer, cases, model):
    tok = tokenizer(model)
    for case, want in EDGE["models"][model]["tokenize"].items():
        got = [bytes(p) for p in tok.tokenize(cases[case])]
        want = [base64.b64decode(p) for p in want]
        assert got == want, f"{model} tokenize({case}): first difference at piece #{first_diff(got, want)}"


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_decode(tokenizer, model):
    """decode joins the pieces' bytes, skips ids 0-2 and drops invalid UTF-8 (errors='ignore')."""
    tok = tokenizer(model)
    for ids, want in EDGE["models"][model]["decode"]:
        got = tok.decode(ids)
        assert got == want, f"{model} decode({ids[:10]}...) = {got[:40]!r}, original {want[:40]!r}"


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_bos_eos_and_iter(tokenizer, cases, model):
    tok = tokenizer(model)
    assert as_list(tok.encode("hi\n", add_bos=True, add_eos=True)) == EDGE["models"][model]["bos_eos"]
    rec = EDGE["models"][model]["edge"]["mixed_scripts"]
    assert list(tok.encode(cases["mixed_scripts"], iter=True)) == rec["ids"]


# --------------------------------------------------------------------------- tie-breaking


@pytest.mark.parametrize("toy", [t for t in TIE_MODELS if t != "numpy_log_tie"])
def test_tie_breaking(toy):
    """Toy models with equal (or product-equal) counts: segmentations with bitwise-equal scores."""
    import bytepiece_rs

    m = TIES["models"][toy]
    tok = bytepiece_rs.Tokenizer(m["pieces"])
    bad = []
    for j, (text, want) in enumerate(zip(m["texts"], m["ids"])):
        got = as_list(tok.encode(text))
        if got != want:
            bad.append((j, text[:40], got[:12], want[:12]))
    assert not bad, (
        f"{toy}: {len(bad)} of {len(m['texts'])} texts differ; first (index, text, ours, original): {bad[0]}"
    )
    for text, want in zip(m["texts"], m["tokenize"]):
        assert [bytes(p) for p in tok.tokenize(text)] == [base64.b64decode(p) for p in want], text


def test_numpy_log_tie():
    """A toy model where a|b and ab tie mathematically (count(a)*count(b) == count(ab)*total) and only
    the last bit of log(9170) decides. The original on an AVX512F CPU (numpy's SIMD log, what made
    the fixture) picks a|b; with the C library's log it picks ab ("libm_diff")."""
    import bytepiece_rs

    m = TIES["models"]["numpy_log_tie"]
    tok = bytepiece_rs.Tokenizer(m["pieces"])
    got = [as_list(tok.encode(t)) for t in m["texts"]]
    bad = [j for j, (g, w) in enumerate(zip(got, m["ids"])) if g != w]
    if bad:
        libm = [j for j in bad if m["libm_diff"].get(str(j)) == got[j]]
        note = (
            " all of them equal the original run with the C library's log (not numpy's AVX512 log)"
            if len(libm) == len(bad)
            else ""
        )
        pytest.fail(
            f"{len(bad)} of {len(got)} texts differ from the original (AVX512F numpy log);{note} "
            f"first: {m['texts'][bad[0]][:20]!r} ours {got[bad[0]][:8]} original {m['ids'][bad[0]][:8]}"
        )


# --------------------------------------------------------------------------- sample files


@pytest.mark.parametrize("lang", ec.SAMPLE_LANGS)
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_sample_file(tokenizer, shared_dir, model, lang):
    """The whole of shared/corpus/sample/{lang}.txt encoded as one string."""
    text = ec.read_sample(lang, shared_dir)
    assert ec.sha256_text(text) == SAMPLES["sha256"][lang], (
        f"sample {lang}.txt is not the one the fixture was made from"
    )
    check_record(tokenizer(model).encode(text), SAMPLES["models"][model][lang], f"{model} sample {lang}.txt")


# --------------------------------------------------------------------------- corpus (>= 21 MB)


@pytest.fixture(scope="session")
def corpus_golden():
    return golden("corpus")


@pytest.fixture(scope="session")
def parity_docs(corpus_dir, corpus_golden):
    docs = ec.parity_corpus(corpus_dir)
    sel = corpus_golden["selection"]
    digest = ec.corpus_digest(docs)
    if digest != sel["sha256"]:
        pytest.fail(
            f"the corpus in {corpus_dir} is not the one the fixtures were made with: the selection "
            f"({len(docs)} docs) has sha256 {digest}, the fixture {sel['sha256']} ({sel['n_docs']} docs). "
            "Rebuild it with shared/corpus/build_corpus.sh (full mode) or regenerate the fixtures."
        )
    return docs


@requires_corpus
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_corpus_parity(tokenizer, parity_docs, corpus_golden, model):
    rec = corpus_golden["models"][model]
    rows, libm = rec["rows"], rec["libm_diff"]
    tok = tokenizer(model)
    bad, bad_libm = [], 0
    for i, (lang, text) in enumerate(parity_docs):
        ids = as_list(tok.encode(text))
        mine = [len(ids), ec.ids_hash(ids)]
        if mine != rows[i]:
            bad.append((i, lang, len(text.encode("utf-8")), mine[0], rows[i][0]))
            bad_libm += libm.get(str(i)) == mine
    if bad:
        i, lang, nbytes, n_ours, n_orig = bad[0]
        note = (
            f"; {bad_libm} of them equal the original run with the C library's log instead of numpy's"
            if bad_libm
            else ""
        )
        pytest.fail(
            f"{model}: {len(bad)} of {len(parity_docs)} documents differ{note}. First: document #{i} "
            f"({lang}, {nbytes} bytes): ours {n_ours} ids, original {n_orig} ids"
        )


# --------------------------------------------------------------------------- live oracle


@requires_oracle
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_live_oracle(oracle, tokenizer, model_path, model):
    """Seeded random texts (scripts, emoji, combining marks, newlines) against the installed original."""
    ref = oracle.Tokenizer(model_path(model))
    tok = tokenizer(model)
    for text in ec.random_texts():
        want = ref.encode(text)
        got = as_list(tok.encode(text))
        assert got == want, f"{model}: {text[:40]!r}: first difference at id #{first_diff(got, want)}"
        assert [bytes(p) for p in tok.tokenize(text)] == ref.tokenize(text)
        assert tok.decode(want) == ref.decode(want)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text", ["\ud800", "ab\udfffcd", "\U0001f600\ud83d"])
def test_lone_surrogate_raises(tokenizer, text):
    """The original raises UnicodeEncodeError (a ValueError) for text that is not encodable as UTF-8."""
    with pytest.raises(ValueError):
        tokenizer(MODEL_NAMES[0]).encode(text)
