"""The installed package as the index shows it and as it reports itself (#18): one version,
set in Cargo.toml's [workspace.package], read everywhere; the metadata of pyproject.toml; extras
that each bring one feature's packages. Run against what is installed, so a stale install fails."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

import bytepiece_rs

REPO = Path(__file__).resolve().parent.parent
DIST = "bytepiece-rs"

#: what each extra brings (package names), for the feature in its comment in pyproject.toml
EXTRAS = {
    "hf": {"tokenizers", "transformers"},
    "transformers": {"tokenizers", "transformers"},  # the former name of [hf]
    "datasets": {"datasets"},
    "dask": {"dask", "pyarrow"},
}


def load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(path, "rb") as f:
        return tomllib.load(f)


def workspace_package() -> dict:
    """[workspace.package] of Cargo.toml: the version and the repository, set there once."""
    return load_toml(REPO / "Cargo.toml")["workspace"]["package"]


def changelog_version() -> str:
    """The newest release of CHANGELOG.md: its first ``## [X.Y.Z] - YYYY-MM-DD`` heading."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    m = re.search(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
    assert m, "CHANGELOG.md has no release heading '## [X.Y.Z] - YYYY-MM-DD'"
    return m.group(1)


def cli_version() -> str:
    """What ``bytepiece --version`` prints after ``bytepiece-rs ``: the console script installed
    with this interpreter's packages (``python -m bytepiece_rs`` where it is elsewhere, e.g. --user)."""
    script = shutil.which("bytepiece", path=sysconfig.get_path("scripts"))
    command = [script] if script else [sys.executable, "-m", "bytepiece_rs"]
    out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("bytepiece-rs "), out
    return out.strip().removeprefix("bytepiece-rs ")


def requirements() -> dict[str, set[str]]:
    """The installed distribution's requirements: package names by extra ("" for a bare install)."""
    by_extra: dict[str, set[str]] = {}
    for req in metadata.requires(DIST) or []:
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower()
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", req)
        by_extra.setdefault(extra.group(1) if extra else "", set()).add(name)
    return by_extra


def test_the_crates_take_the_workspace_version():
    for crate in ("bytepiece", "bytepiece-py"):
        package = load_toml(REPO / "rust" / crate / "Cargo.toml")["package"]
        assert package["version"] == {"workspace": True}, crate
    assert "version" not in load_toml(REPO / "pyproject.toml")["project"]  # maturin reads Cargo.toml


def test_one_version_everywhere():
    version = workspace_package()["version"]
    seen = {
        "package metadata": metadata.version(DIST),
        "bytepiece_rs.__version__": bytepiece_rs.__version__,
        "bytepiece --version": cli_version(),
        "CHANGELOG.md": changelog_version(),
    }
    assert seen == dict.fromkeys(seen, version), f"Cargo.toml says {version}"


def test_the_index_shows_the_license_classifiers_urls_and_keywords():
    meta = metadata.metadata(DIST)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Description-Content-Type"].startswith("text/markdown")
    # the README: the body of METADATA, which importlib_metadata (once another package has
    # imported it, its finder answers for the standard library's too) gives as "Description"
    readme = meta.get_payload() or meta.get("Description") or ""
    assert readme.lstrip().startswith("# bytepiece-rs\n")
    classifiers = set(meta.get_all("Classifier"))
    wanted = {f"Programming Language :: Python :: 3.{minor}" for minor in range(9, 14)}
    wanted |= {
        "Programming Language :: Rust",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Operating System :: Microsoft :: Windows",
    }
    assert wanted <= classifiers, wanted - classifiers
    assert meta["Requires-Python"] == ">=3.9"
    assert "tokenizer" in meta["Keywords"].split(",")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    repository = workspace_package()["repository"]
    assert urls["Repository"] == repository
    assert all(u.startswith(repository) for u in urls.values()), urls


def test_a_bare_install_needs_numpy_and_each_extra_its_feature():
    reqs = requirements()
    assert reqs[""] == {"numpy"}
    assert {extra: reqs.get(extra) for extra in EXTRAS} == EXTRAS
    assert set().union(*EXTRAS.values()) <= reqs["test"]  # the tests cover every feature


def test_the_extras_named_in_messages_and_the_docs_exist():
    provided = set(metadata.metadata(DIST).get_all("Provides-Extra"))
    texts = [
        REPO / "README.md",
        *sorted((REPO / "docs").rglob("*.md")),
        *sorted((REPO / "python" / "bytepiece_rs").glob("*.py")),
    ]
    named = {
        (path.name, extra)
        for path in texts
        for group in re.findall(r"bytepiece-rs\[([a-z,]+)\]", path.read_text(encoding="utf-8"))
        for extra in group.split(",")
    }
    assert named and {(name, extra) for name, extra in named if extra not in provided} == set()


def test_ci_builds_the_docs_with_the_docs_extra():
    """.ci/run builds the site in a throwaway venv with the [docs] extra's requirements, as
    pyproject.toml lists them (the extra itself would build the package first)."""
    extra = load_toml(REPO / "pyproject.toml")["project"]["optional-dependencies"]["docs"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    install = [shlex.split(line) for line in ci.splitlines() if line.startswith('"$DOCS_VENV/bin/pip" install')]
    assert [args[3:] for args in install] == [extra]
    assert re.search(r'^"\$DOCS_VENV/bin/mkdocs" build --strict .*-d "\$DOCS_SITE"$', ci, re.M)
