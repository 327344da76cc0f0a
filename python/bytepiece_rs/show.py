"""Seeing tokens: one self-contained HTML page that colours each token of a text.

:func:`to_html` (also :meth:`Tokenizer.to_html <bytepiece_rs.Tokenizer.to_html>` and
``bytepiece show``) segments a text with one or more tokenizers and writes a page with, per
tokenizer, a column of coloured tokens and its token count. Hovering a token shows its id, its
bytes and its score (the Unigram log-probability of the piece, the score the segmentation
maximises). A piece that is not complete UTF-8 (it splits a character between tokens) is drawn
as its bytes in hex, outlined in red. Newlines show as ``↵``, tabs as ``→`` and other control
characters as their Unicode control pictures. The model's special tokens in the text are shown
as such (``allowed_special="all"``), in bold.

The page has no script at all and loads nothing (no fonts, no CSS or images from the network):
all text is HTML-escaped, so hostile input (``<script>``...) is shown, never run.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Optional, Sequence, Tuple, Union

from ._core import NUM_RESERVED

if TYPE_CHECKING:
    from ._typing import TokenizerLike

#: Background colours of tokens, in turn (light, so that black text stays readable).
PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad")

_CSS = """
body { font-family: sans-serif; margin: 1em; background: #fff; color: #111; }
h1 { font-size: 1.2em; }
.grid { display: grid; gap: 1em; }
.col { border: 1px solid #ccc; padding: 0.5em; min-width: 0; }
.col h2 { font-size: 1em; margin: 0 0 0.5em 0; overflow-wrap: anywhere; }
.count { font-weight: normal; color: #444; }
.tokens { font-family: monospace; white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.7; }
.t { border-radius: 3px; padding: 1px 0; }
.t:hover { outline: 2px solid #000; }
.split { outline: 2px dashed #d00; color: #900; }
.special { font-weight: bold; color: #555; }
.ws { color: #888; }
"""


def _visible(piece: str) -> str:
    """``piece`` as HTML, with newlines, tabs and other control characters visible."""
    out = []
    for ch in piece:
        code = ord(ch)
        if ch == "\n":
            out.append('<span class="ws">\u21b5</span>\n')
        elif ch == "\t":
            out.append('<span class="ws">\u2192</span>\t')
        elif code < 0x20:
            out.append(f'<span class="ws">{chr(0x2400 + code)}</span>')
        elif code == 0x7F:
            out.append('<span class="ws">\u2421</span>')
        else:
            out.append(html.escape(ch))
    return "".join(out)


def _tokens(tokenizer: "TokenizerLike", text: Union[str, bytes]) -> Tuple[str, int]:
    """The HTML of the tokens of ``text``, and their number."""
    ids = tokenizer.encode(text, allowed_special="all")
    special = set(tokenizer.special_tokens.values())
    scores = tokenizer.scores()
    spans = []
    for k, i in enumerate(ids):
        piece = tokenizer.id_to_piece(i)
        colour = PALETTE[k % len(PALETTE)]
        if isinstance(piece, str) or i in special:  # <pad>, <bos>, <eos> and the model's special tokens
            name = html.escape(piece if isinstance(piece, str) else piece.decode("utf-8"))
            spans.append(
                f'<span class="t special" style="background:{colour}" title="id {i} | special token">{name}</span>'
            )
            continue
        hexed = " ".join(f"{b:02x}" for b in piece)
        try:
            shown, split = _visible(piece.decode("utf-8")), False
        except UnicodeDecodeError:
            shown, split = html.escape(f"\u2039{hexed}\u203a"), True
        tip = f"id {i} | bytes {hexed}"
        if 0 <= i - NUM_RESERVED < len(scores):  # (pieces added after training may have no score)
            tip += f" | score {scores[i - NUM_RESERVED]:.4f}"
        if split:
            tip += " | splits a UTF-8 character"
        cls = "t split" if split else "t"
        spans.append(f'<span class="{cls}" style="background:{colour}" title="{html.escape(tip)}">{shown}</span>')
    return "".join(spans), len(ids)


def to_html(
    tokenizers: Sequence["TokenizerLike"],
    text: Union[str, bytes],
    names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
) -> str:
    """A self-contained HTML page of the tokens of ``text`` (``str``, or ``bytes`` segmented as
    they are) for each tokenizer, side by side, each with its token count (see the module
    documentation). ``names`` labels the columns (default: ``tokenizer 1``, ``tokenizer 2``...)."""
    tokenizers = list(tokenizers)
    if not tokenizers:
        raise ValueError("to_html needs at least one tokenizer")
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
    if names is None:
        names = [f"tokenizer {k + 1}" for k in range(len(tokenizers))]
    names = [str(n) for n in names]
    if len(names) != len(tokenizers):
        raise ValueError(f"{len(names)} names for {len(tokenizers)} tokenizers")
    n_bytes = len(text.encode("utf-8")) if isinstance(text, str) else len(text)
    columns = []
    for name, tok in zip(names, tokenizers):
        body, count = _tokens(tok, text)
        per = f", {n_bytes / count:.2f} bytes/token" if count else ""
        columns.append(
            f'<div class="col"><h2>{html.escape(name)} <span class="count">'
            f'<span class="n-tokens">{count}</span> tokens{per}, vocabulary {tok.vocab_size}</span></h2>'
            f'<div class="tokens">{body}</div></div>'
        )
    heading = html.escape(title if title is not None else "BytePiece tokens")
    grid = f"grid-template-columns: repeat({len(columns)}, minmax(0, 1fr));"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        # nothing may be fetched or run, even if escaping were ever wrong
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{heading}</title><style>{_CSS}</style></head>\n<body><h1>{heading}</h1>"
        f"<p>{n_bytes} bytes. Hover a token for its id, bytes and score; "
        '<span class="split">outlined</span> tokens split a UTF-8 character.</p>'
        f'<div class="grid" style="{grid}">{"".join(columns)}</div></body></html>\n'
    )
