"""The package as users install it (#18), built and installed as on a fresh machine:

1. ``maturin sdist`` makes the source tarball; it holds the core crate, the bindings, the Python
   package, the default model, the license and the README, and nothing else.
2. pip builds the wheel from that tarball, as ``pip install bytepiece_rs-X.tar.gz`` does (which
   proves the sdist builds), linked by zig against glibc 2.17: ``auditwheel show`` must agree
   with its ``manylinux_2_17`` tag.
3. The wheel is installed into a fresh virtualenv (no system site-packages) that runs with a
   PATH holding no ``cargo`` or ``rustc``: it brings numpy alone, and the README's main command,
   ``bytepiece --version`` and a train/encode/decode round trip work there.

It needs a Rust toolchain and PyPI (maturin, ziglang, auditwheel, numpy), and takes 1-2 minutes
on 2 cores (one release build, with fat LTO). CI runs it (``CI=true``); elsewhere
``BYTEPIECE_SKIP_PACKAGING=1`` skips it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_metadata import load_toml, workspace_package

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
#: zig links the wheel against an old glibc (this version tested with maturin 1.16)
ZIGLANG = "ziglang==0.17.1"
#: the oldest glibc that Rust's Linux targets support, as a wheel tag
MANYLINUX = "manylinux_2_17"
RUST_TOOLS = ("cargo", "rustc")
#: what would point a command at another venv's packages, or at a Rust toolchain
VENV_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
RUST_VARIABLES = ("CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN")

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds and checks a manylinux wheel"),
    pytest.mark.skipif(
        os.environ.get("BYTEPIECE_SKIP_PACKAGING") == "1" and not IN_CI,
        reason="BYTEPIECE_SKIP_PACKAGING=1 (CI never skips these)",
    ),
]


def run(*command, env: dict | None = None, cwd: Path | None = None) -> str:
    """Runs ``command`` and returns its stdout; a failure shows the command and its output."""
    command = [str(c) for c in command]
    r = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (
        f"{shlex.join(command)} exited with {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    )
    return r.stdout


@dataclass
class Venv:
    """A virtualenv and the environment its commands run with."""

    root: Path
    env: dict

    @classmethod
    def create(cls, root: Path, path: list[str], drop: tuple[str, ...] = ()) -> "Venv":
        """A new venv at ``root`` (no system site-packages) whose commands run with ``PATH``
        its bin folder, then ``path``, and without the variables of another venv or ``drop``."""
        run(sys.executable, "-m", "venv", root)
        env = {k: v for k, v in os.environ.items() if k not in (*VENV_VARIABLES, *drop)}
        env["PATH"] = os.pathsep.join([str(root / "bin"), *path])
        return cls(root, env)

    def run(self, *command, cwd: Path | None = None, extra_env: dict | None = None) -> str:
        return run(*command, env={**self.env, **(extra_env or {})}, cwd=cwd)

    def pip(self, *args, extra_env: dict | None = None) -> str:
        return self.run(self.root / "bin" / "python", "-m", "pip", *args, extra_env=extra_env)

    def python(self, code: str) -> str:
        return self.run(self.root / "bin" / "python", "-c", code)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def version() -> str:
    return workspace_package()["version"]


@pytest.fixture(scope="module")
def builder(work) -> Venv:
    """A venv with pyproject.toml's build requirements, zig and auditwheel; cargo stays on PATH."""
    venv = Venv.create(work / "build-venv", os.environ["PATH"].split(os.pathsep))
    requires = load_toml(REPO / "pyproject.toml")["build-system"]["requires"]
    venv.pip("install", "-q", *requires, ZIGLANG, "auditwheel")
    return venv


@pytest.fixture(scope="module")
def sdist(builder, work) -> Path:
    builder.run(builder.root / "bin" / "maturin", "sdist", "--out", work / "sdist", cwd=REPO)
    (tarball,) = (work / "sdist").glob("*.tar.gz")
    return tarball


@pytest.fixture(scope="module")
def wheel(builder, sdist, work) -> Path:
    """The wheel pip builds from the sdist (``pip install`` of the tarball builds the same)."""
    builder.pip(
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        work / "wheel",
        sdist,
        extra_env={"MATURIN_PEP517_ARGS": f"--zig --compatibility {MANYLINUX}"},
    )
    (whl,) = (work / "wheel").glob("*.whl")
    return whl


@pytest.fixture(scope="module")
def user(wheel, work) -> Venv:
    """A fresh venv with the wheel installed, as a user without a Rust toolchain has it: PATH is
    the venv's bin, then /usr/bin and /bin unless they hold cargo or rustc."""
    system = [d for d in ("/usr/bin", "/bin") if not any(Path(d, tool).exists() for tool in RUST_TOOLS)]
    venv = Venv.create(work / "user-venv", system, drop=RUST_VARIABLES)
    venv.pip("install", "-q", "--only-binary", ":all:", wheel)
    return venv


def readme_main_command() -> tuple[str, str]:
    """The README's main command (first of "The two commands"): its install and its run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The two commands", 1)[1]
    block = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M).group(1)
    install, command = block.strip().splitlines()[0].split(" && ")
    return install, command


def test_the_sdist_holds_the_sources_the_model_the_license_and_the_readme(sdist, version):
    assert sdist.name == f"bytepiece_rs-{version}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {
        "PKG-INFO",
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "rust/bytepiece/Cargo.toml",
        "rust/bytepiece-py/Cargo.toml",
        "python/bytepiece_rs/data/default.model.gz",
        "python/bytepiece_rs/py.typed",
    }
    for pattern in ("rust/bytepiece/src/*.rs", "rust/bytepiece-py/src/*.rs", "python/bytepiece_rs/*.py*"):
        wanted |= {path.relative_to(REPO).as_posix() for path in REPO.glob(pattern)}
    assert wanted - names == set(), "missing from the sdist"
    assert {n for n in names if "/" in n and not n.startswith(("rust/", "python/"))} == set(), "not for the sdist"


def test_the_wheel_is_abi3_and_needs_glibc_2_17_only(wheel, builder, version):
    tag = f"{MANYLINUX}_{platform.machine()}"
    assert wheel.name.startswith(f"bytepiece_rs-{version}-cp39-abi3-") and tag in wheel.name, wheel.name
    report = " ".join(builder.run(builder.root / "bin" / "auditwheel", "show", wheel).split())
    assert f'consistent with the following platform tag: "{tag}"' in report, report


def test_the_wheel_holds_the_engine_the_model_the_license_and_the_command(wheel, version):
    dist_info = f"bytepiece_rs-{version}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    assert {
        "bytepiece_rs/_core.abi3.so",
        "bytepiece_rs/data/default.model.gz",
        "bytepiece_rs/py.typed",
        f"{dist_info}/licenses/LICENSE",
    } <= names
    assert "bytepiece=bytepiece_rs.__main__:main" in entry_points.replace(" ", "")
    assert wheel.stat().st_size < 5_000_000  # 2.0 MB, half of it the default model


def test_a_bare_install_brings_numpy_alone_and_no_rust_toolchain(user):
    assert [shutil.which(tool, path=user.env["PATH"]) for tool in RUST_TOOLS] == [None, None]
    listed = {p["name"].lower() for p in json.loads(user.pip("list", "--format", "json"))}
    assert listed - {"pip", "setuptools"} == {"bytepiece-rs", "numpy"}
    user.python("import bytepiece_rs; t = bytepiece_rs.Tokenizer(); assert t.decode(t.encode('hi')) == 'hi'")


def test_the_readme_main_command_runs_from_the_wheel(user, tmp_path):
    install, command = readme_main_command()
    assert install == "pip install ."  # which the wheel stands for here
    args = shlex.split(command)
    assert shutil.which(args[0], path=user.env["PATH"]) == str(user.root / "bin" / args[0])
    pieces = json.loads(user.run(*args, cwd=tmp_path))
    assert "".join(pieces) == args[args.index("--text") + 1]


def test_train_encode_decode_round_trip_from_the_wheel(user, tmp_path):
    # the README and the documentation's pages: 90 KB of English, some Chinese and code, each line a text
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(page.read_text(encoding="utf-8") for page in pages), encoding="utf-8")
    lines = corpus.read_text(encoding="utf-8").split("\n")
    model, ids = tmp_path / "my.model", tmp_path / "ids.txt"
    user.run("bytepiece", "train", corpus, "-o", model, "--vocab-size", "2000", "-q")
    user.run("bytepiece", "encode", corpus, "-m", model, "-o", ids, "-q")
    assert user.run("bytepiece", "decode", ids, "-m", model, "-q").split("\n") == lines
    text = "BytePiece 是一个字节级的 Unigram 分词器。"
    user.python(
        f"import bytepiece_rs; t = bytepiece_rs.Tokenizer({str(model)!r}); "
        f"assert t.vocab_size > 1000 and t.decode(t.encode({text!r})) == {text!r}"
    )


def test_one_version_in_the_sdist_the_wheel_and_the_installed_package(user, sdist, wheel, version):
    code = "import importlib.metadata as m, bytepiece_rs; print(m.version('bytepiece-rs'), bytepiece_rs.__version__)"
    assert user.python(code).split() == [version, version]
    assert user.run("bytepiece", "--version").strip() == f"bytepiece-rs {version}"
    assert sdist.name.startswith(f"bytepiece_rs-{version}.") and wheel.name.startswith(f"bytepiece_rs-{version}-")
