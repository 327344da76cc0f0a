"""Deterministic training inputs and cases for the trainer-parity fixtures.

Shared by the generator (``tests/golden/make_train_golden.py``, which runs the ORIGINAL
``bytepiece.Trainer``) and ``tests/test_train_parity.py`` (which runs ours), so a fixture
mismatch means the trainer differs, not the inputs. Every fixture stores the sha256 of its
training texts (``texts_sha256``), so drifted inputs are reported as such.

Texts come only from ``shared/corpus/sample/{zh,en,code}.txt`` (available offline; see
``edge_cases.shared_dir``) and, for the cases with ``needs_corpus``, from the built corpus
($BYTEPIECE_CORPUS, the output of ``shared/corpus/build_corpus.sh``).

Standard library only (the tests must run without the original ``bytepiece``).

What the original does with these texts (bytepiece 0.6.3, ``Trainer.norm``): each text is
NFC-normalized and cut by ``re.findall`` with
``'.{,10000}\\n{1,100}|.{1,10000}'`` (or, with isolate_digits,
``'\\d|[^\\n\\d]{,10000}\\n{1,100}|[^\\n\\d]{1,10000}'``; ``\\d`` is Unicode Nd as of Python's
Unicode 14.0), so lines longer than 10000 characters (not bytes) are cut, and runs of more than
100 newlines are split into chunks of at most 100. n-grams never cross chunk boundaries.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from pathlib import Path

import edge_cases as ec

# A document boundary: after a blank line (two or more newlines), before the next non-newline.
# Splitting there keeps every character: "".join(sample_docs(lang)) == the whole sample file.
_BLANK_LINE_SPLIT = re.compile(r"(?<=\n\n)(?=[^\n])")


def texts_sha256(texts: list[str]) -> str:
    """sha256 of "\\x00".join(texts) encoded as UTF-8 (what the fixtures store)."""
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()


def sample_docs(lang: str, shared: Path | None = None) -> list[str]:
    """shared/corpus/sample/{lang}.txt split into documents after each blank line.
    Each document keeps its trailing newlines."""
    return [d for d in _BLANK_LINE_SPLIT.split(ec.read_sample(lang, shared)) if d]


def head_bytes(docs: list[str], max_bytes: int) -> list[str]:
    """The first documents whose UTF-8 sizes sum to at most max_bytes (the first one always)."""
    out, total = [], 0
    for d in docs:
        n = len(d.encode("utf-8"))
        if out and total + n > max_bytes:
            break
        out.append(d)
        total += n
    return out


def interleave(*lists: list[str]) -> list[str]:
    """Round-robin: a[0], b[0], c[0], a[1], b[1], ... (shorter lists simply run out)."""
    out = []
    for i in range(max(map(len, lists))):
        for lst in lists:
            if i < len(lst):
                out.append(lst[i])
    return out


# --------------------------------------------------------------------------- recipes


def _mixed(shared):
    return interleave(sample_docs("zh", shared), sample_docs("en", shared), sample_docs("code", shared))


def _mixed_small(shared):
    """~100 KB of each sample language, interleaved (~300 KB)."""
    return interleave(*(head_bytes(sample_docs(lang, shared), 100_000) for lang in ec.SAMPLE_LANGS))


# Decimal digit sets (category Nd in Unicode 14.0, so Python's `\d` matches them), zero first:
# ASCII, fullwidth, Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali, Thai, Myanmar,
# and MATHEMATICAL BOLD DIGIT (4-byte UTF-8).
DIGIT_ZEROS = (0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1040, 0x1D7CE)
# Look like digits but are NOT `\d` for Python 3.11: No/Nl characters, and Nd digits added after
# Unicode 14.0 (Kawi, Nag Mundari: 15.0; Garay, Outlined digits: 16.0), which Python 3.11 sees as
# unassigned. A `\d` from a newer Unicode table would isolate them.
NON_DIGITS = (
    "²",
    "³",
    "¹",
    "½",
    "①",
    "②",
    "⑩",
    "Ⅻ",
    "ⅷ",
    "〇",
    "零",
    "\U00011f50",
    "\U00011f53",
    "\U0001e4f0",
    "\U0001e4f5",
    "\U00010d40",
    "\U0001ccf0",
    "\U0001ccf9",
)
# Decomposed text: NFC changes it (the original normalizes before anything else).
NFD_WORDS = tuple(
    unicodedata.normalize("NFD", w)
    for w in (
        "café",
        "résumé",
        "naïve",
        "Tiếng Việt",
        "Ångström",
        "São Paulo",
        "façade",
        "Øre",
        "한국어",
        "가나다",
        "élève",
        "Dvořák",
        "Łódź",
        "crème brûlée",
    )
)


def _redigit(text: str, zero: int) -> str:
    return re.sub(r"[0-9]", lambda m: chr(zero + ord(m.group()) - 0x30), text) if zero != 0x30 else text


def _digits_unicode(shared):
    """Real zh/en/code paragraphs whose ASCII digits are rewritten into one of DIGIT_ZEROS
    (paragraph i uses DIGIT_ZEROS[i % 9]), interleaved with seeded synthetic number-heavy lines
    mixing digit scripts, look-alike non-digits and NFD words. ~500 KB."""
    rng = random.Random(31337)
    docs = interleave(
        head_bytes(sample_docs("zh", shared), 150_000),
        head_bytes(sample_docs("en", shared), 150_000),
        head_bytes(sample_docs("code", shared), 60_000),
    )
    docs = [_redigit(d, DIGIT_ZEROS[i % len(DIGIT_ZEROS)]) for i, d in enumerate(docs)]
    templates = (
        "{d}年{d}月{d}日，价格{d}.{d}元，第{d}章{nd}\n",
        "Version {d}.{d}.{d} released on {d}-{d}-{d}; {d}% of {d} tests pass {nd}\n",
        "x = {d} + {d} * {d}  # {w} {nd}{d}\n",
        "Tel: +{d} ({d}) {d}-{d}, room {d}{nd}, {w}\n",
        "{w} {d}{d}{d} {nd}{nd} {d}\n",
    )

    def number(zero):
        s = str(rng.choice((rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 99999), rng.randint(1900, 2030))))
        return _redigit(s, zero)

    synth = []
    for _ in range(4000):
        zero = rng.choice(DIGIT_ZEROS)
        t = rng.choice(templates)
        while "{d}" in t or "{nd}" in t or "{w}" in t:
            t = (
                t.replace("{d}", number(zero), 1)
                .replace("{nd}", rng.choice(NON_DIGITS), 1)
                .replace("{w}", rng.choice(NFD_WORDS), 1)
            )
        synth.append(t)
    per_doc = 8
    synth_docs = ["".join(synth[i : i + per_doc]) for i in range(0, len(synth), per_doc)]
    return interleave(docs, synth_docs)


LONG_LINE_SPECS = ((9_999, 1), (10_000, 100), (10_001, 101), (15_000, 150), (25_000, 250), (40_000, 1_000))


def _long_lines(shared):
    """Lines longer than 10000 characters (training cuts there) and runs of > 100 newlines, plus
    ordinary paragraphs so the vocabulary is realistic. ~800 KB."""
    zh = [d for d in sample_docs("zh", shared)]
    en = [d for d in sample_docs("en", shared)]
    code = [d for d in sample_docs("code", shared)]
    zh_line = "".join(zh[:1500]).replace("\n", "")
    en_line = " ".join(en[:600]).replace("\n", " ")
    texts = []
    pos = 0
    for n_chars, n_nl in LONG_LINE_SPECS:  # zh lines of exactly n_chars, then n_nl newlines
        texts.append(zh_line[pos : pos + n_chars] + "\n" * n_nl)
        pos += n_chars
    # several long lines in one text, separated by long newline runs; ends without a newline
    texts.append(
        en_line[:12_000]
        + "\n" * 120
        + en_line[12_000:35_000]
        + "\n" * 100
        + en_line[35_000:47_000]
        + "\n" * 201
        + en_line[47_000:90_000]
    )
    # code paragraphs separated by 130 newlines instead of one blank line
    texts.append(("\n" * 130).join(d.rstrip("\n") for d in code[:300]))
    # digits inside a long line (isolate_digits cuts at each digit), CRLF runs, lone CRs
    texts.append(("2024年" + zh_line[100_000:103_000] + " 12345 " + en_line[90_000:100_000]) * 2 + "\r\n" * 150)
    texts.append("\r" * 50 + "x\r\n" * 40 + "\n" * 333)
    # repetitive long lines
    texts.append("的" * 30_000)
    texts.append("ab" * 15_000 + "\n")
    texts.append("😀" * 12_000 + "\n" * 2)
    texts.append(" " * 25_000 + "\n")
    # only newlines, empty texts
    texts.extend(["\n" * 300, "", "\n", ""])
    # ordinary paragraphs, so the pieces are not all from the oddities above
    texts.extend(
        interleave(head_bytes(zh[1500:], 150_000), head_bytes(en[600:], 150_000), head_bytes(code[300:], 100_000))
    )
    return texts


def _corpus_mixed(corpus_dir, per_lang_bytes):
    docs = ec.parity_corpus(corpus_dir, min_bytes=per_lang_bytes)
    by_lang = {lang: [t for lg, t in docs if lg == lang] for lang in ec.PARITY_LANGS}
    return interleave(*(by_lang[lang] for lang in ec.PARITY_LANGS))


def live_oracle_texts(seed: int) -> list[str]:
    """Small seeded text set for the live-oracle test: random paragraphs of the samples plus
    edge_cases.random_texts (scripts, emoji, combining marks, odd newlines). ~60-100 KB."""
    rng = random.Random(seed)
    texts = []
    for lang in ec.SAMPLE_LANGS:
        docs = sample_docs(lang)
        texts.extend(rng.sample(docs, 50))
    texts.extend(ec.random_texts(seed=seed, n=60))
    texts.append("\n" * rng.randint(95, 260))
    # one line longer than 10000 characters, with ASCII and non-ASCII digits
    texts.append("".join(rng.choice("0123456789٣５৩𝟕 ab") for _ in range(rng.randint(10_005, 12_000))))
    rng.shuffle(texts)
    return texts


def live_oracle_params(seed: int) -> dict:
    rng = random.Random(seed)
    size = rng.choice([600, 1000, 2000, [1500, 700], [900, 2500, 500]])
    return dict(
        order=rng.choice([3, 4, 5, 6]),
        max_vocab_size=size,
        max_piece_length=rng.choice([3, 8, 36]),
        min_count=rng.choice([2, 3, 5]),
        isolate_digits=rng.random() < 0.5,
        ensure_unicode=rng.random() < 0.5,
    )


RECIPES = {
    "zh": lambda shared, corpus: sample_docs("zh", shared),
    "en": lambda shared, corpus: sample_docs("en", shared),
    "code": lambda shared, corpus: sample_docs("code", shared),
    "mixed": lambda shared, corpus: _mixed(shared),
    "mixed_small": lambda shared, corpus: _mixed_small(shared),
    "digits_unicode": lambda shared, corpus: _digits_unicode(shared),
    "long_lines": lambda shared, corpus: _long_lines(shared),
    # the corpus-parity selection (edge_cases.parity_corpus), languages interleaved
    "corpus_mixed_9m": lambda shared, corpus: _corpus_mixed(corpus, 3_000_000),
    "corpus_mixed_21m": lambda shared, corpus: _corpus_mixed(corpus, ec.PARITY_MIN_BYTES),
}


def make_texts(recipe: str, shared: Path | None = None, corpus_dir: Path | None = None) -> list[str]:
    """The training texts of a recipe (a list of str). Corpus recipes need corpus_dir."""
    if recipe.startswith("corpus") and corpus_dir is None:
        raise ValueError(f"recipe {recipe!r} needs the built corpus")
    return RECIPES[recipe](shared, corpus_dir)


def _case(
    name,
    recipe,
    *,
    order=6,
    max_vocab_size=10000,
    max_piece_length=36,
    min_count=2,
    isolate_digits=False,
    ensure_unicode=True,
    debug=False,
    workers_check=False,
):
    return {
        "name": name,
        "recipe": recipe,
        "params": dict(
            order=order,
            max_vocab_size=max_vocab_size,
            max_piece_length=max_piece_length,
            min_count=min_count,
            isolate_digits=isolate_digits,
            ensure_unicode=ensure_unicode,
        ),
        "needs_corpus": recipe.startswith("corpus"),
        # the generator also stores the raw count_pieces() output (base64 piece -> count)
        "debug": debug,
        # test_train_parity also trains these with workers=2 and another batch_size
        "workers_check": workers_check,
    }


CASES = [
    # small (~300 KB), with the raw piece counts stored for debugging
    _case("small_o6_mc2", "mixed_small", order=6, min_count=2, max_vocab_size=5000, debug=True, workers_check=True),
    _case(
        "small_o4_mc8_iso_noeu_list",
        "mixed_small",
        order=4,
        min_count=8,
        isolate_digits=True,
        ensure_unicode=False,
        max_vocab_size=[1000, 2500],
        debug=True,
        workers_check=True,
    ),
    # vocabulary larger than what training finds: no size pruning
    _case("small_o6_mc32_nosizeprune", "mixed_small", order=6, min_count=32, max_vocab_size=8000, debug=True),
    _case(
        "small_o3_mc2_mpl8", "mixed_small", order=3, min_count=2, max_piece_length=8, max_vocab_size=2000, debug=True
    ),
    # one language each (~1 MB)
    _case("zh_o6_mc2", "zh", order=6, min_count=2, max_vocab_size=6000),
    _case("en_o4_mc8_iso", "en", order=4, min_count=8, isolate_digits=True, max_vocab_size=4000),
    _case("code_o6_mc32_noeu", "code", order=6, min_count=32, ensure_unicode=False, max_vocab_size=3000),
    _case("zh_o6_mc8_mpl4", "zh", order=6, min_count=8, max_piece_length=4, max_vocab_size=3000),
    # mixed (~3 MB), several sizes (saved as path.SIZE); the second list is unsorted
    _case("mixed_o6_mc8_sizes", "mixed", order=6, min_count=8, max_vocab_size=[3000, 1500, 800], workers_check=True),
    _case(
        "mixed_o4_mc32_iso_noeu_sizes",
        "mixed",
        order=4,
        min_count=32,
        isolate_digits=True,
        ensure_unicode=False,
        max_vocab_size=[2000, 5000, 1000],
    ),
    # Unicode digits (isolate_digits on and off), look-alike non-digits, NFD input
    _case(
        "digits_o6_mc2_iso",
        "digits_unicode",
        order=6,
        min_count=2,
        isolate_digits=True,
        max_vocab_size=3000,
        debug=True,
        workers_check=True,
    ),
    _case(
        "digits_o4_mc2_noiso_noeu",
        "digits_unicode",
        order=4,
        min_count=2,
        isolate_digits=False,
        ensure_unicode=False,
        max_vocab_size=3000,
    ),
    # long lines (> 10000 chars) and > 100 newlines; a one-element list saves to the path itself
    _case("longlines_o6_mc2", "long_lines", order=6, min_count=2, max_vocab_size=4000, workers_check=True),
    _case(
        "longlines_o4_mc8_iso_noeu_list1",
        "long_lines",
        order=4,
        min_count=8,
        isolate_digits=True,
        ensure_unicode=False,
        max_vocab_size=[2000],
    ),
    # the built corpus (skipped without $BYTEPIECE_CORPUS)
    _case("corpus9m_o6_mc8_sizes", "corpus_mixed_9m", order=6, min_count=8, max_vocab_size=[8000, 4000]),
    _case("corpus21m_o4_mc32_iso", "corpus_mixed_21m", order=4, min_count=32, isolate_digits=True, max_vocab_size=8000),
]
CASE_BY_NAME = {c["name"]: c for c in CASES}
assert len(CASE_BY_NAME) == len(CASES)


def saved_names(max_vocab_size) -> list[str]:
    """Suffixes of the files Trainer.save(path) writes: [""] for one size, else [".SIZE", ...]
    in decreasing size order."""
    sizes = sorted(max_vocab_size)[::-1] if isinstance(max_vocab_size, list) else [max_vocab_size]
    return [""] if len(sizes) == 1 else [f".{s}" for s in sizes]


# --------------------------------------------------------------------------- convert_to_bytepiece


def convert_cases() -> dict[str, dict]:
    """Inputs of bytepiece.convert_to_bytepiece(pieces, path): name -> pieces dict (str and bytes
    keys; insertion order matters when a str and a bytes key collide: the later one wins)."""
    simple = {
        "hello": 10,
        b"wor": 5,
        "world": 7,
        "ld": 4,
        "l": 100,
        "o": 50,
        " ": 200,
        "你好": 3,
        "世界": 2,
        b"\xe4\xbd": 2,
        "the": 30,
        "th": 1,
        "e": 80,
    }
    tricky = {
        "ab": 1,
        "a": 1000,
        b"b": 1000,  # "ab" is always cheaper as a + b: pruned as wasted
        "xy": 5,
        b"xy": 7,  # the bytes key overrides the str key
        "zz": 0,  # count 0 < min_count 1: dropped and split (adds 0)
        "😀": 9,
        b"\xf0\x9f": 4,
        "\n\n": 12,
        "\t": 3,
        "\x00": 2,
        '"q"': 6,
        "\\": 5,
        "é": 4,
        "e\u0301": 3,  # not normalized by convert
        "a" * 40: 2,  # longer than the trainer's default max_piece_length
        b"\xff\xfe": 8,
        "mixed ✓ text": 11,
    }
    return {"simple": simple, "tricky": tricky}
