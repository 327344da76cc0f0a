"""Deterministic inputs shared by the golden-fixture generator and the tests.

Everything here is a pure function of its arguments and of files in the shared folder
(``shared/corpus/sample/*.txt``, the built corpus): the generator
(``tests/golden/make_golden.py``) and ``tests/test_parity.py`` import the same recipes,
so a fixture mismatch means the tokenizer differs, not the inputs. The fixtures also store a
sha256 of every input, so a drifted input is reported as such.

Standard library only (the tests must run without the original ``bytepiece``).
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
SAMPLE_LANGS = ("zh", "en", "code")
PARITY_LANGS = ("zh", "en", "code")
PARITY_MIN_BYTES = 7_000_000  # per language; >= 21 MB in all
LONG_LINE_CHARS = 1_000_000


def shared_dir() -> Path:
    """The shared folder: $BYTEPIECE_SHARED, else <repo>/../shared."""
    env = os.environ.get("BYTEPIECE_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def sample_path(lang: str, shared: Path | None = None) -> Path:
    return (shared or shared_dir()) / "corpus" / "sample" / f"{lang}.txt"


def read_sample(lang: str, shared: Path | None = None) -> str:
    """Whole text of shared/corpus/sample/{lang}.txt (bytes decoded as UTF-8, no newline translation)."""
    return sample_path(lang, shared).read_bytes().decode("utf-8")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ids_hash(ids) -> str:
    """blake2b-64 of the ids as little-endian uint32; equals
    hashlib.blake2b(np.asarray(ids, dtype='<u4').tobytes(), digest_size=8).hexdigest()."""
    a = array.array("I", ids)
    assert a.itemsize == 4
    if sys.byteorder == "big":
        a.byteswap()
    return hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest()


def long_line(shared: Path | None = None) -> str:
    """A 1,000,000-character single line of real text: zh sample + en sample, '\\n' -> ' ', cut."""
    text = (read_sample("zh", shared) + read_sample("en", shared)).replace("\n", " ")
    assert len(text) >= LONG_LINE_CHARS, "samples too small for the long line"
    return text[:LONG_LINE_CHARS]


def _all_controls() -> str:
    return "".join(chr(i) for i in range(0x20)) + "\x7f\x85\u2028\u2029"


def edge_cases(shared: Path | None = None) -> dict[str, str]:
    """Named edge-case texts (insertion order is stable). Needs the shared sample files."""
    ctrl = _all_controls()
    cases = {
        # empty / newline only
        "empty": "",
        "nl_1": "\n",
        "nl_3": "\n\n\n",
        "nl_150": "\n" * 150,  # the trainer caps runs at 100; the tokenizer does not
        "crlf_1": "\r\n",
        "cr_1": "\r",
        "crlf_3": "\r\n\r\n\r\n",
        "nl_crlf_mixed": "a\r\nb\r\n\r\nc\n\r\n\rd\r\r\n\n\ne\n\r",
        "nl_runs_text": "hello\n\n\nworld\n\nfoo\nbar\n\n\n\n\nbaz",
        "nl_runs_zh": "你好\n\n世界\r\n\r\n中文\n",
        "leading_trailing_nl": "\n\n\nleading and trailing\n\n\n",
        "leading_nl_zh": "\n\n这是一个测试。\n",
        "trailing_nl_only_one": "no newline at start\n",
        "space_1": " ",
        "spaces_run": "a    b        c  d" + " " * 64 + "e",
        "spaces_1000": " " * 1000,
        "tabs_run": "\t\tx\t\t\ty\t",
        "tabs_500": "\t" * 500,
        "spaces_tabs_mixed": "def f():\n\t  \t return  1\t\n    \n\t\n  x = [1,\t2 ,  3 ]  \n",
        "space_nl": " \n \n  \n",
        # emoji
        "emoji_simple": "😀😃😄 hello 🎉",
        "emoji_family_zwj": "👨\u200d👩\u200d👧\u200d👦 family 👩\u200d❤\ufe0f\u200d💋\u200d👨",
        "emoji_flags": "🇨🇳🇺🇸🇯🇵🇩🇪🇫🇷 🏳\ufe0f\u200d🌈 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "emoji_skin_tones": "👍🏻👍🏼👍🏽👍🏾👍🏿 🧑🏾\u200d💻",
        "emoji_keycaps_vs": "1\ufe0f\u20e3 #\ufe0f\u20e3 ☺\ufe0f ☺\ufe0e ❤\ufe0f",
        # normalization (NFC changes these)
        "nfc_e_acute": "e\u0301",
        "nfc_cafe": "Cafe\u0301 cafe\u0301s re\u0301sume\u0301",
        "nfc_a_ring": "A\u030a \u212b \u00c5",
        "nfc_hangul_jamo": "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af \u1100\u1161",
        "nfc_reorder_marks": "q\u0307\u0323 s\u0323\u0307 d\u0307\u0323",
        "nfc_singletons": "\u2126 \u212a \u1fef \u0340",
        "nfc_cjk_compat": "\uf900\uf901\uf9ff\ufa10 \U0002f800\U0002fa1d",
        "nfc_stacked_marks": "a" + "\u0301" * 50 + "b\u0300\u0301\u0302\u0303",
        "nfd_vietnamese": "Tie\u0302\u0301ng Vie\u0323\u0302t co\u0301 da\u0302\u0301u",
        "precomposed_vietnamese": "Tiếng Việt có dấu",
        # CJK extension planes
        "cjk_ext_b_g": "\U00020000\U00020001\U0002a6df\U0002a700\U0002b740\U0002b820\U0002ceb0"
        "\U0002ebe0\U00030000\U00030001\U0003134a\U00031350",
        "cjk_ext_mixed": "汉字\U00020000中文\U0002a700与\U00030000扩展区𠀀𪜀𫝀",
        "cjk_punct_fullwidth": "「你好」，『世界』！？（全角）ＡＢＣ１２３　空格",
        # control characters (the original splits lines only on '\n')
        "controls_all": ctrl,
        "controls_in_text": "a\x00b\x01c\x0bd\x0ce\x1cf\x1dg\x1eh\x1fi\x7fj\x85k\u2028l\u2029m\rn\to",
        "controls_each": "|".join(ctrl) + "|",
        "nul_run": "\x00" * 100,
        "bom_zw": "\ufeffBOM start \u200b zero\u200cwidth\u200djoiner \u2060 \u00ad soft",
        "noncharacters_pua": "\ufffd\uffff\ufffe\U0010ffff\U000f0000\ue000 \U0001fffe end",
        "rtl_bidi": "\u202eevil\u202c \u200fRLM \u061c",
        # scripts
        "mixed_scripts": (
            "Hello 世界! Привет, мир. مرحبا بالعالم. שלום עולם. こんにちは、カタカナ。"
            " 안녕하세요 세계. नमस्ते दुनिया। Γειά σου Κόσμε. สวัสดีชาวโลก. "
            "ሰላም ዓለም. Բարեւ աշխարհ. გამარჯობა. ᚠᚢᚦ. 𐌰𐌱𐌲. 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛"
        ),
        "mixed_code_zh": "def 函数(参数):\n    return 参数 * 2  # 注释：乘以二\n\nprint(函数(21))\n",
        "math_symbols": "∀x∈ℝ: x²≥0 ⇒ √(x²)=|x| ∑_{i=1}^{n} i = n(n+1)/2 ≈ ∞ ≠ ∅",
        "url_email": "https://example.com/path?q=1&r=%E4%B8%AD#frag user@example.org",
        # digits
        "digits_short": "0123456789",
        "digits_long": "31415926535897932384626433832795028841971693993751" * 20,
        "digits_mixed": "In 2023, 1,234,567.89 USD; v3.11.7; 0x1F; 1e-10; 2023年10月1日；第３章",
        "digits_unicode": "١٢٣٤٥ ۱۲۳ १२३ ０１２３ ①②③ ⅠⅡⅢ 𝟎𝟏𝟐",
        # long
        "long_line_1m": long_line(shared),
        "emoji_100k": "😀" * 100_000,
        "a_100k": "a" * 100_000,
        "zh_char_20k": "的" * 20_000,
        "space_a_10k": " a" * 10_000,
    }
    return cases


# Subsets of edge_cases() for which the generator also stores tokenize() output.
TOKENIZE_CASES = (
    "empty",
    "nl_1",
    "nl_3",
    "crlf_3",
    "nl_crlf_mixed",
    "nl_runs_zh",
    "spaces_run",
    "tabs_run",
    "emoji_family_zwj",
    "emoji_flags",
    "nfc_e_acute",
    "nfc_hangul_jamo",
    "nfc_reorder_marks",
    "nfc_cjk_compat",
    "cjk_ext_b_g",
    "controls_in_text",
    "mixed_scripts",
    "digits_mixed",
)


def random_texts(seed: int = 20240601, n: int = 40) -> list[str]:
    """Seeded random texts mixing scripts, emoji, combining marks and newlines (for the live oracle)."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ     .,;:!?'\"()-_/\\",
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研",
        "０１２３456789٠١٢३",
        "😀👍🏽🇨🇳👨\u200d👩\u200d👧✨🎉",
        "\u0301\u0308\u0323\u030a\u1161\u11a8e\u0301A",
        "\n\n\r\n\t \x00\x85\u2028",
        "\U00020000\U0002a700\U00030000\uf900",
    ]
    texts = []
    for _ in range(n):
        k = rng.randint(0, 400)
        weights = [rng.random() for _ in pools]
        chars = []
        for _ in range(k):
            pool = rng.choices(pools, weights)[0]
            if rng.random() < 0.3 and chars:  # repeat a short chunk to create long matches
                chars.extend(chars[-rng.randint(1, min(8, len(chars))) :])
            else:
                chars.append(rng.choice(pool))
        texts.append("".join(chars))
    return texts


def parity_corpus(corpus_dir, min_bytes: int = PARITY_MIN_BYTES) -> list[tuple[str, str]]:
    """The corpus-parity selection: for each of zh, en, code, the documents of
    ``{corpus_dir}/{lang}.train.jsonl`` in file order until that language has reached
    ``min_bytes`` UTF-8 bytes (the document crossing the threshold is included).
    Returns [(lang, text), ...] in the order zh, en, code.
    """
    corpus_dir = Path(corpus_dir)
    out: list[tuple[str, str]] = []
    for lang in PARITY_LANGS:
        total = 0
        with open(corpus_dir / f"{lang}.train.jsonl", "rb") as f:
            for line in f:
                if total >= min_bytes:
                    break
                text = json.loads(line)["text"]
                out.append((lang, text))
                total += len(text.encode("utf-8"))
        if total < min_bytes:
            raise ValueError(f"{corpus_dir}/{lang}.train.jsonl has only {total} bytes < {min_bytes}")
    return out


def corpus_digest(docs: list[tuple[str, str]]) -> str:
    """sha256 over the selection: for each doc, lang, NUL, utf-8 text, NUL."""
    h = hashlib.sha256()
    for lang, text in docs:
        h.update(lang.encode())
        h.update(b"\0")
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


#: The models released with the original, in ../shared/models/NAME.zip.
MODEL_NAMES = [
    "bytepiece_80k",
    "bytepiece.plus.80k",
    "bytepiece.eu.plus.80k",
    "bytepiece.zh.id.eu.80k",
    "bytepiece.id.eu.plus.160k",
]


def is_utf8(b: bytes) -> bool:
    """True when ``b`` is valid UTF-8 (a piece that does not split a character)."""
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def sample_documents(shared: Path | None = None, per_language: int = 500) -> list[str]:
    """Real documents: the first ``per_language`` paragraphs of the zh, en and code samples, or,
    without the shared folder, of the clone's own text (:func:`clone_documents`)."""
    if not sample_path("zh", shared).is_file():
        return clone_documents(per_language)
    docs: list[str] = []
    for lang in ("zh", "en", "code"):
        docs += [d for d in read_sample(lang, shared).split("\n\n") if d][:per_language]
    return docs


def clone_documents(per_language: int = 500) -> list[str]:
    """Real text in any clone, paragraphs of at most ``per_language`` per kind: Chinese prose
    written for the tests (``tests/data/zh.txt``), the English of the README and the docs, and
    the package's Python and Rust sources."""
    sources = {
        "zh": [TESTS_DIR / "data" / "zh.txt"],
        "en": [REPO_ROOT / "README.md"] + sorted((REPO_ROOT / "docs").glob("*.md")),
        "code": sorted((REPO_ROOT / "python" / "bytepiece_rs").glob("*.py"))
        + sorted((REPO_ROOT / "rust" / "bytepiece" / "src").glob("*.rs")),
    }
    docs: list[str] = []
    for paths in sources.values():
        text = "\n\n".join(p.read_text(encoding="utf-8") for p in paths)
        docs += [d for d in text.split("\n\n") if d.strip()][:per_language]
    return docs
