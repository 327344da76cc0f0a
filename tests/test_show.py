"""Seeing tokens: ``Tokenizer.to_html`` / ``bytepiece show`` write one self-contained page; its
tokens are ours, hostile text stays text, and headless Chromium renders it in colour (those
tests skip without a ``chromium`` binary)."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys

import pytest

import edge_cases as ec
from bytepiece_rs import Tokenizer
from bytepiece_rs.show import PALETTE, to_html

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">&amp; \" ' </div>\n"


class Page(html.parser.HTMLParser):
    """The parts of a page the tests look at: tags, attributes, token spans and text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list = []
        self.attrs: list = []
        self.tokens: list = []  # (classes, title, text) per token span
        self.columns: list = []  # token counts
        self._in_token = 0
        self._in_count = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        d = dict(attrs)
        classes = (d.get("class") or "").split()
        if tag == "span" and "t" in classes:
            self.tokens.append([classes, d.get("title", ""), ""])
            self._in_token = 1
        elif self._in_token and tag == "span":
            self._in_token += 1
        self._in_count = "n-tokens" in classes

    def handle_endtag(self, tag):
        if self._in_token and tag == "span":
            self._in_token -= 1
        self._in_count = False

    def handle_data(self, data):
        if self._in_token:
            self.tokens[-1][2] += data
        if self._in_count:
            self.columns.append(int(data))


def token_ids(page: Page) -> list:
    return [int(title.split(" | ")[0].split()[1]) for _, title, _ in page.tokens]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def test_page_shows_our_tokens_with_id_bytes_and_score(tok, shared_dir):
    text = ec.read_sample("zh", shared_dir)[:2000] + "\n" + ec.read_sample("code", shared_dir)[:2000]
    page = Page(tok.to_html(text))
    ids = tok.encode(text)
    assert token_ids(page) == ids
    assert page.columns == [len(ids)]
    scores = tok._encoder.scores()
    for (classes, title, shown), i in zip(page.tokens, ids):
        piece = tok.id_to_piece(i)
        hexed = " ".join(f"{b:02x}" for b in piece)
        assert f"bytes {hexed} |" in title
        assert f"score {scores[i - 3]:.4f}" in title
        if ec.is_utf8(piece):
            # the text shown is the piece, with newlines and tabs made visible
            assert shown.replace("\u21b5", "").replace("\u2192", "") == piece.decode("utf-8")
            assert "split" not in classes
        else:
            assert shown == f"\u2039{hexed}\u203a" and "split" in classes
    # neighbours have different colours
    body = tok.to_html("abc def ghi")
    assert sum(c in body for c in PALETTE) >= 3


def test_pieces_that_split_a_character_are_marked(tokenizer, shared_dir):
    tok = Tokenizer()
    page = Page(to_html([tok], "世界".encode()[:4]))  # bytes input: a whole character and one byte
    (c1, _, s1), (c2, t2, s2) = page.tokens
    assert "split" not in c1 and s1 == "世"
    assert "split" in c2 and "e7" in s2 and "splits a UTF-8 character" in t2
    # a model with pieces that are not complete UTF-8, on real text
    tok = tokenizer("bytepiece_80k")
    text = ec.read_sample("zh", shared_dir)[:20000]
    pieces = tok.tokenize(text)
    partial = sum(1 for p in pieces if not ec.is_utf8(p))
    page = Page(tok.to_html(text))
    assert partial > 0
    assert sum("split" in classes for classes, _, _ in page.tokens) == partial


def test_hostile_text_is_escaped(tok):
    page_text = to_html([tok], HOSTILE, names=["<b>name</b>"], title="<script>x</script>")
    page = Page(page_text)
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    assert not any(name.startswith("on") for name, _ in page.attrs)
    assert "".join(shown for _, _, shown in page.tokens).replace("\u21b5", "") == HOSTILE
    assert "<b>name</b>" not in page_text and "&lt;b&gt;name&lt;/b&gt;" in page_text


def test_page_is_self_contained(tok):
    page_text = tok.to_html("Hello, 世界\n\x00\x7f")
    page = Page(page_text)
    assert "script" not in page.tags and "link" not in page.tags
    for marker in ("http:", "https:", "src=", "href=", "url(", "@import", "@font-face"):
        assert marker not in page_text
    assert "Content-Security-Policy" in page_text
    # control characters are shown as control pictures
    assert "\u2400" in page_text and "\u2421" in page_text and "\x00" not in page_text


def test_side_by_side(tokenizer):
    a, b = Tokenizer(), tokenizer("bytepiece.zh.id.eu.80k")
    text = "统一码联盟 the Unicode Consortium 维护 Unicode 标准。"
    page = Page(to_html([a, b], text, names=["default", "zh"]))
    assert page.columns == [len(a.encode(text)), len(b.encode(text))]
    assert token_ids(page) == a.encode(text) + b.encode(text)


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match="at least one tokenizer"):
        to_html([], "x")
    with pytest.raises(TypeError, match="str or bytes"):
        to_html([tok], 42)
    with pytest.raises(ValueError, match="2 names for 1 tokenizers"):
        to_html([tok], "x", names=["a", "b"])


def test_special_tokens_are_shown_as_such():
    tok = Tokenizer()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    text = "<|im_start|>user <b>hi</b><|im_end|>"
    page = Page(tok.to_html(text))
    ids = tok.encode(text, allowed_special="all")
    assert token_ids(page) == ids
    assert page.tokens[0][2] == "<|im_start|>" and "special" in page.tokens[0][0]
    assert page.tokens[-1][2] == "<|im_end|>" and "special" in page.tokens[-1][0]
    assert sum("special" in classes for classes, _, _ in page.tokens) == 2
    assert "b" not in page.tags


def test_special_ids_are_shown():
    class WithBos(Tokenizer):
        def encode(self, text, **kw):
            return super().encode(text, add_bos=True, add_eos=True)

    page = Page(WithBos().to_html("hi"))
    assert page.tokens[0][2] == "<bos>" and page.tokens[-1][2] == "<eos>"
    assert "special" in page.tokens[0][0]


# --------------------------------------------------------------------------- command line


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bytepiece_rs", *args], capture_output=True, text=True, timeout=120)


def test_cli_show(tmp_path, model_path):
    out = tmp_path / "page.html"
    r = run_cli("show", "--text", "Hello, 世界", "-o", str(out))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    page = Page(out.read_text(encoding="utf-8"))
    assert token_ids(page) == Tokenizer().encode("Hello, 世界")
    # an argument that is no file is shown as text, and the command says so
    missing = tmp_path / "typo.txt"
    r = run_cli("show", str(missing), "-o", str(out))
    assert r.returncode == 0 and f"{missing}: no such file; showing it as text" in r.stderr, r.stderr
    assert token_ids(Page(out.read_text(encoding="utf-8"))) == Tokenizer().encode(str(missing))
    # a file, two models side by side
    src = tmp_path / "in.txt"
    src.write_text(HOSTILE, encoding="utf-8")
    m = model_path("bytepiece.zh.id.eu.80k")
    r = run_cli("show", str(src), "-m", m, "-m", m, "-o", str(out), "--title", "two")
    assert r.returncode == 0, r.stderr
    page = Page(out.read_text(encoding="utf-8"))
    n = len(Tokenizer(m).encode(HOSTILE))
    assert page.columns == [n, n] and "script" not in page.tags


def test_cli_show_errors(tmp_path):
    r = run_cli("show", "x", "-m", str(tmp_path / "missing.model"), "-o", str(tmp_path / "p.html"))
    assert r.returncode == 2 and "no such model file" in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    r = run_cli("show", str(bad), "-o", str(tmp_path / "p.html"))
    assert r.returncode == 2 and "not UTF-8" in r.stderr
    r = run_cli("show", "--text", "x", "-o", str(tmp_path / "nowhere" / "p.html"))
    assert r.returncode == 2 and "no such directory" in r.stderr
    assert not (tmp_path / "p.html").exists()
    for args in ([], [str(bad), "--text", "x"]):
        r = run_cli("show", *args, "-o", str(tmp_path / "p.html"))
        assert r.returncode == 2 and "give a FILE or --text TEXT" in r.stderr, r.stderr


# --------------------------------------------------------------------------- headless Chromium


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium binary (apt-get install chromium)")


def run_chromium(tmp_path, page, *args):
    cmd = [chromium(), "--headless", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    r = subprocess.run(cmd, capture_output=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r


def test_chromium_renders_the_tokens_in_colour(tmp_path, tok, shared_dir):
    image = pytest.importorskip("PIL.Image")
    page = tmp_path / "page.html"
    text = ec.read_sample("en", shared_dir)[:1500]
    page.write_text(to_html([tok, tok], text), encoding="utf-8")
    png = tmp_path / "shot.png"
    run_chromium(tmp_path, page, f"--screenshot={png}", "--window-size=1200,900")
    assert png.stat().st_size > 1000
    with image.open(png) as im:
        rgb = im.convert("RGB")
        colours = {c for _, c in rgb.getcolors(maxcolors=1 << 20)}
    assert len(colours) > 20  # not blank
    palette = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in PALETTE}
    assert len(palette & colours) >= 6  # the token backgrounds are drawn


def test_chromium_keeps_hostile_text_inert(tmp_path, tok):
    page = tmp_path / "page.html"
    page.write_text(tok.to_html(HOSTILE), encoding="utf-8")
    dom = run_chromium(tmp_path, page, "--dump-dom").stdout.decode("utf-8")
    assert "<title>BytePiece tokens</title>" in dom and "pwned</title>" not in dom
    assert "<script" not in dom and "<img" not in dom
    parsed = Page(dom)
    assert token_ids(parsed) == tok.encode(HOSTILE)
    assert "".join(shown for _, _, shown in parsed.tokens).replace("\u21b5", "") == HOSTILE
