"""Special tokens in input text, with ``tiktoken``'s rules.

A special token's text inside the input raises ``ValueError`` unless the token is *allowed*
(``allowed_special``: it becomes its one id) or the check is off for it (``disallowed_special``
does not name it: its text is encoded as ordinary text).
"""

from __future__ import annotations

import re
from typing import AbstractSet, Collection, Dict, List, Literal, Optional, Pattern, Tuple, Union

#: ``allowed_special`` / ``disallowed_special``: ``"all"`` or a collection of token texts.
SpecialSet = Union[Literal["all"], AbstractSet[str], Collection[str]]

Text = Union[str, bytes]
#: A text cut at special tokens: ``(start, part)`` with ``part`` a text or a special token's id.
Parts = List[Tuple[int, Union[Text, int]]]


class SpecialTokens:
    """The special tokens of a model (text -> id) and the patterns that find them."""

    def __init__(self, tokens: Dict[str, int]) -> None:
        self.ids = dict(tokens)
        self.texts = {i: t for t, i in self.ids.items()}
        self._patterns: Dict[Tuple[frozenset, bool], Pattern] = {}

    def __bool__(self) -> bool:
        return bool(self.ids)

    def _pattern(self, tokens: frozenset, raw: bool) -> Pattern:
        key = (tokens, raw)
        if key not in self._patterns:
            # longest first: of two tokens starting at one place, the longer wins
            alternatives = sorted(tokens, key=lambda t: (-len(t), t))
            if raw:
                self._patterns[key] = re.compile(b"|".join(re.escape(t.encode()) for t in alternatives))
            else:
                self._patterns[key] = re.compile("|".join(re.escape(t) for t in alternatives))
        return self._patterns[key]

    def _resolve(self, chosen: SpecialSet, name: str) -> frozenset:
        if chosen == "all":
            return frozenset(self.ids)
        if isinstance(chosen, (str, bytes)):
            raise TypeError(f'{name} must be "all" or a collection of token texts, got {chosen!r}')
        tokens = frozenset(chosen)
        unknown = sorted(t for t in tokens if t not in self.ids)
        if unknown:
            raise ValueError(f"{name}: {unknown[0]!r} is not a special token of this model")
        return tokens

    def split(self, text: Text, allowed_special: SpecialSet, disallowed_special: SpecialSet) -> Optional[Parts]:
        """``text`` cut at its allowed special tokens, or ``None`` when there is nothing to cut
        (the caller encodes ``text`` whole). Raises ``ValueError`` on a disallowed one."""
        allowed = self._resolve(allowed_special, "allowed_special")
        disallowed = self._resolve(disallowed_special, "disallowed_special") - allowed
        if not self.ids:
            return None
        raw = isinstance(text, bytes)
        if disallowed:
            found = self._pattern(disallowed, raw).search(text)
            if found:
                token = found.group()
                token = token.decode() if raw else token
                raise ValueError(
                    f"the text contains the special token {token!r} (at {found.start()}); pass "
                    f"allowed_special={{{token!r}}} (or 'all') to encode it as its id, or "
                    "disallowed_special=() to encode it as ordinary text"
                )
        if not allowed:
            return None
        parts: Parts = []
        start = 0
        for m in self._pattern(allowed, raw).finditer(text):
            if m.start() > start:
                parts.append((start, text[start : m.start()]))
            token = m.group()
            parts.append((m.start(), self.ids[token.decode() if raw else token]))
            start = m.end()
        if not parts:
            return None
        if start < len(text):
            parts.append((start, text[start:]))
        return parts
