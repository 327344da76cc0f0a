"""The README's examples run: every ```python block (except one preceded by an HTML comment
saying it is not run) is executed, the blocks of one section in one namespace, in a temporary
directory. A line ``expr  # value``, where ``value`` is a Python literal, asserts
``expr == value``, so the values the README shows are checked too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def sections() -> list[tuple[str, list[str]]]:
    """(heading, runnable python blocks) for each section with any."""
    out: dict[str, list[str]] = {}
    heading = "(top)"
    text = README.read_text(encoding="utf-8")
    pos = 0
    for m in FENCE.finditer(text):
        before = text[pos : m.start()]
        for line in before.splitlines():
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
        pos = m.end()
        if before.rstrip().endswith("-->") and "not run" in before.rstrip().splitlines()[-1]:
            continue
        out.setdefault(heading, []).append(m.group(1))
    return list(out.items())


def with_checks(block: str) -> str:
    """``expr  # literal`` lines become assertions."""
    lines = []
    for line in block.splitlines():
        code, sep, comment = line.partition("  #")
        if sep and code.strip() and not code.startswith((" ", "\t")):
            try:
                ast.parse(code.strip(), mode="eval")
                expected = ast.literal_eval(comment.strip())
            except (SyntaxError, ValueError):
                lines.append(line)
                continue
            lines.append(f"assert ({code.strip()}) == {expected!r}, ({code.strip()!r}, {code.strip()})")
        else:
            lines.append(line)
    return "\n".join(lines)


SECTIONS = sections()


def test_the_readme_has_checked_examples():
    names = [name for name, _ in SECTIONS]
    for wanted in (
        "Quick start",
        "Special tokens",
        "Offsets",
        "Streaming decode",
        "Vocabulary surgery",
        "Beyond one machine",
    ):
        assert wanted in names, names
    checks = sum(with_checks(b).count("assert (") for _, blocks in SECTIONS for b in blocks)
    assert checks >= 15


@pytest.mark.parametrize("name,blocks", SECTIONS, ids=[name for name, _ in SECTIONS])
def test_readme_section_runs(name, blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        exec(compile(with_checks(block), f"README.md ({name})", "exec"), namespace)
