"""The documentation's examples run: every ```python and ```bash block of README.md and of the
pages of docs/ is executed, except one preceded by an HTML comment ``<!-- not run: why -->``.

The blocks of one section (a page's text under one heading) run in order, in one temporary
directory and, for Python, in one namespace. A line ``expr  # value``, where ``value`` is a
Python literal, asserts ``expr == value``, so the values the pages show are checked too. A
```bash block runs in ``bash -euo pipefail``; for both, the installed ``bytepiece`` command (and
this interpreter as ``python3``) come first on PATH. A section that needs an optional package which is not
installed (Dask, transformers, datasets...; the test extras install them all) is skipped, naming
it. Blocks in other languages are shown, not run: only ```text (output, layouts) is allowed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run\b[^:>]*:\s*(\S.*?)\s*-->")
#: languages of the blocks that run; ```text blocks show output or a layout
RUN, SHOWN = ("python", "bash"), ("text",)
#: sections whose commands other tests run: the README's two commands (the first is
#: tests/test_packaging.py's, the second is what CI runs)
RUN_ELSEWHERE = {("README.md", "The two commands")}
#: packages of the extras that an example may need (all in the test extras)
OPTIONAL = ("dask", "distributed", "pyarrow", "transformers", "tokenizers", "datasets", "sentencepiece")
#: sections that must exist with checked examples (any of the names, in any page)
KEY_SECTIONS = (
    ("Quick start",),
    ("Special tokens",),
    ("Offsets",),
    ("Streaming decode",),
    ("Vocabulary surgery",),
    ("Beyond one machine", "Distributed"),
)


@dataclass
class Block:
    page: str
    heading: str
    lang: str
    code: str
    not_run: str | None  # why a block is not run ("" if the comment gives no reason); None: it runs


@dataclass
class Section:
    page: str
    heading: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page}: {self.heading}"


def page_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a page, each with the heading above it and its not-run reason."""
    page = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8")
    heading, pos, out = "(top)", 0, []
    for m in FENCE.finditer(text):
        before = text[pos : m.start()]
        for line in before.splitlines():
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
        pos = m.end()
        last = before.strip().splitlines()[-1].strip() if before.strip() else ""
        marked = NOT_RUN.fullmatch(last)
        reason = marked.group(1) if marked else "" if last.startswith("<!--") and "not run" in last else None
        out.append(Block(page, heading, m.group(1), m.group(2), reason))
    return out


BLOCKS = [block for path in PAGES for block in page_blocks(path)]


def sections() -> list[Section]:
    """The sections with blocks to run, in page order."""
    out: dict[tuple[str, str], Section] = {}
    for block in BLOCKS:
        key = (block.page, block.heading)
        if block.lang in RUN and block.not_run is None and not (block.lang == "bash" and key in RUN_ELSEWHERE):
            out.setdefault(key, Section(*key)).blocks.append(block)
    return list(out.values())


def with_checks(code: str) -> str:
    """``expr  # literal`` lines become assertions."""
    lines = []
    for line in code.splitlines():
        expr, sep, comment = line.partition("  #")
        if sep and expr.strip() and not expr.startswith((" ", "\t")):
            try:
                ast.parse(expr.strip(), mode="eval")
                expected = ast.literal_eval(comment.strip())
            except (SyntaxError, ValueError):
                lines.append(line)
                continue
            lines.append(f"assert ({expr.strip()}) == {expected!r}, ({expr.strip()!r}, {expr.strip()})")
        else:
            lines.append(line)
    return "\n".join(lines)


def checks(section: Section) -> int:
    return sum(with_checks(b.code).count("assert (") for b in section.blocks if b.lang == "python")


SECTIONS = sections()


def missing_optional(error: BaseException | None) -> str | None:
    """The optional package whose absence caused ``error``, if it is one and it is absent."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError) and error.name:
            top = error.name.split(".")[0]
            if top in OPTIONAL and importlib.util.find_spec(top) is None:
                return top
        error = error.__cause__ or error.__context__
    return None


@pytest.fixture(scope="session")
def command_dir(tmp_path_factory) -> Path:
    """A folder for the front of PATH: ``bytepiece``, the installed command of this interpreter's
    package (``python -m bytepiece_rs`` when it is installed elsewhere), and ``python3``."""
    folder = tmp_path_factory.mktemp("bin")
    installed = shutil.which("bytepiece", path=sysconfig.get_path("scripts"))
    scripts = {
        "bytepiece": f'exec "{installed}" "$@"' if installed else f'exec "{sys.executable}" -m bytepiece_rs "$@"',
        "python3": f'exec "{sys.executable}" "$@"',
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def run_bash(block: Block, cwd: Path) -> None:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        absent = [name for name in OPTIONAL if name in proc.stderr and importlib.util.find_spec(name) is None]
        if absent:
            pytest.skip(f"needs {absent[0]}, which is not installed")
        pytest.fail(
            f"{block.page} ({block.heading}): exit status {proc.returncode}\n"
            f"$ {block.code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}",
            pytrace=False,
        )


def test_the_docs_have_checked_examples():
    for names in KEY_SECTIONS:
        found = [s for s in SECTIONS if any(name in s.heading for name in names)]
        assert found, f"no section {' / '.join(names)} with examples"
        assert any(checks(s) for s in found), f"no value checked in {[s.name for s in found]}"
    assert sum(checks(s) for s in SECTIONS) >= 15


def test_every_block_runs_or_says_why_not():
    """A block is code that runs (python, bash), code that says why it does not, or text."""
    for block in BLOCKS:
        where = f"{block.page} ({block.heading})"
        assert block.lang in RUN + SHOWN, f"{where}: a ```{block.lang} block; tag it python, bash or text"
        if block.lang in SHOWN:
            assert block.not_run is None, f"{where}: a ```{block.lang} block is never run"
        assert block.not_run != "", f"{where}: say why the block is not run: <!-- not run: REASON -->"


def test_every_page_is_in_the_site():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in PAGES[1:]:
        page = path.relative_to(ROOT / "docs").as_posix()
        assert re.search(rf"^\s*- (?:[^:\n]+: )?{re.escape(page)}\s*$", config, re.M), (
            f"{page} is not in mkdocs.yml's nav"
        )


def headline(path: Path) -> list[str]:
    """The rows of the headline table of the benchmarks (the one that starts with its header)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| tokenizer | encode MB/s, 1 thread |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("page", ["README.md", "docs/performance.md"])
def test_the_headline_table_is_bench_results(page):
    assert headline(ROOT / page) == headline(ROOT / "bench" / "RESULTS.md")


@pytest.mark.parametrize("section", SECTIONS, ids=[s.name for s in SECTIONS])
def test_section_runs(section, tmp_path, monkeypatch, command_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.pathsep.join([str(command_dir), os.environ.get("PATH", "")]))
    namespace: dict = {"__name__": "__docs__"}
    for block in section.blocks:
        if block.lang == "bash":
            run_bash(block, tmp_path)
            continue
        try:
            exec(compile(with_checks(block.code), section.name, "exec"), namespace)
        except ImportError as e:
            absent = missing_optional(e)
            if absent:
                pytest.skip(f"needs {absent}, which is not installed")
            raise
