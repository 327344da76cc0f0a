"""Progress as a person sees it (the training's stages, the bars of ``encode`` and ``stats``):
run under a pseudo-terminal, the output replayed on a small terminal emulator, then read line by
line; and nothing at all when it must be quiet."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import edge_cases as ec
import pytest

#: The pseudo-terminal's size: wide enough that no line of the bars wraps.
COLUMNS, ROWS = 150, 60

UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
BYTES = r"(\d+(?:\.\d+)?) (B|kB|MB|GB)"
COUNT = r"([\d,]+)"


@pytest.fixture(scope="module")
def corpus(shared_dir, tmp_path_factory):
    """A text file of about 300 KB of real lines (zh, en, code)."""
    path = tmp_path_factory.mktemp("progress") / "corpus.txt"
    path.write_text(
        "".join(ec.read_sample(lang, shared_dir)[:100_000] for lang in ("zh", "en", "code")), encoding="utf-8"
    )
    return path


def run_in_terminal(argv, cwd=None):
    """Runs ``argv`` with stderr on a pseudo-terminal (stdout on a pipe); returns (stdout,
    everything written to the terminal, exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    out, chunks, sources = b"", [], [master, proc.stdout]
    while True:
        ready, _, _ = select.select(sources, [], [], 120)
        assert ready, "the training took too long"
        if proc.stdout in ready:
            data = os.read(proc.stdout.fileno(), 1 << 16)
            out += data
            if not data:
                sources.remove(proc.stdout)
        if master in ready:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if not data:
                break
            chunks.append(data)
    out += proc.stdout.read()
    status = proc.wait(timeout=60)
    os.close(master)
    return out.decode(), b"".join(chunks).decode(), status


def replay(stream: str, width: int = COLUMNS):
    """Replays terminal output (text, ``\\r``, ``\\n``, erase line, cursor up and down, and the
    wrap at the right margin); returns (every state a line was shown in, the final screen)."""
    rows, row, col, wrap = [[]], 0, 0, False
    shown = []

    def snapshot():
        text = "".join(rows[row]).rstrip()
        if text and (not shown or shown[-1] != text):
            shown.append(text)

    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|.", stream, flags=re.DOTALL):
        if token.startswith("\x1b"):
            n, cmd = int(token[2:-1] or 1) if token[2:-1].isdigit() else 1, token[-1]
            if cmd == "K":
                snapshot()
                rows[row] = []
            elif cmd == "A":
                row = max(row - n, 0)
            elif cmd == "B":
                row += n
            wrap = False
        elif token == "\r":
            snapshot()
            col, wrap = 0, False
        elif token == "\n":
            snapshot()
            row, wrap = row + 1, False
        else:
            if wrap:
                snapshot()
                row, col, wrap = row + 1, 0, False
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = token
            col += 1
            wrap = col == width
            if wrap:
                col -= 1
        while len(rows) <= row:
            rows.append([])
    snapshot()
    screen = ["".join(r).rstrip() for r in rows]
    return shown, [line for line in screen if line]


def in_bytes(number: str, unit: str) -> float:
    return float(number) * UNITS[unit]


def check_positions(shown):
    """No line ever shows a position past its total."""
    for line in shown:
        for done, du, total, tu in re.findall(BYTES + "/" + BYTES, line):
            assert in_bytes(done, du) <= in_bytes(total, tu), line
        for done, total in re.findall(COUNT + "/" + COUNT + r"(?: |$)", line):
            assert int(done.replace(",", "")) <= int(total.replace(",", "")), line


def stage_of(line: str) -> str:
    """The label of a stage's line: ``Prune Pieces: ...`` up to its bar, else two words."""
    return line.split(" [")[0] if line.startswith("Prune Pieces") else " ".join(line.split()[:2])


def train_script(method: str, path, progress, sizes=(1000, 600)) -> list:
    """``python -c`` training on ``path`` with ``method`` (``files`` or ``texts``); prints the
    trained vocabulary sizes on stdout."""
    data = f"[{str(path)!r}]" if method == "files" else f"open({str(path)!r}, encoding='utf-8').read().splitlines(True)"
    call = "train_from_files" if method == "files" else "train"
    code = (
        "from bytepiece_rs import Trainer\n"
        f"t = Trainer(order=4, max_vocab_size={list(sizes)}, progress={progress})\n"
        f"t.{call}({data}, workers=2)\n"
        "print(*(t._core.vocab_size(i) for i in range(len(t.pieces))))\n"
    )
    return [sys.executable, "-c", code]


def summary_lines(screen):
    return [line for line in screen if line.startswith("bytepiece: trained")]


@pytest.mark.parametrize("method", ["files", "texts"])
def test_each_stage_has_one_labelled_bar_in_order_that_ends_at_its_total(corpus, method):
    out, term, status = run_in_terminal(train_script(method, corpus, progress=True))
    assert status == 0, term
    shown, screen = replay(term)
    check_positions(shown)
    stages = [stage_of(line) for line in screen if not line.startswith("bytepiece:")]
    # one line per stage on the final screen, in the order of training
    assert stages[:4] == ["Count Ngrams", "Prune Ngrams", "Count Pieces", "Prune Pieces: split rare/long"], screen
    prune = stages[3:]
    assert len(set(prune)) == len(prune), screen
    size_rounds = [i for i, s in enumerate(prune) if re.fullmatch(r"Prune Pieces: size \d+", s)]
    assert [prune[i] for i in size_rounds] == ["Prune Pieces: size 1000", "Prune Pieces: size 600"], screen
    for i, stage in enumerate(prune[1:], 1):
        before = max([j for j in size_rounds if j < i], default=None)
        if i in size_rounds:
            continue
        # the rounds that drop wasted pieces are numbered from 1 after each split
        first = 1 if before is None else before + 1
        prefix = "Prune Pieces: " if before is None else prune[before] + ", "
        assert stage == f"{prefix}wasted round {i - first + 1}", screen
    # the counting stages end at the bytes of the corpus, with a rate and the time they took
    size = os.path.getsize(corpus)
    for label in ("Count Ngrams", "Count Pieces"):
        (line,) = [line for line in screen if line.startswith(label)]
        if method == "texts" and label == "Count Ngrams":
            # the texts are read once: their size is not known in advance
            m = re.search(BYTES + " " + BYTES + r"/s in \d+", line)
            assert m, line
            assert "/" not in line.split(label)[1].split("/s")[0], line
            done = in_bytes(*m.groups()[:2])
        else:
            m = re.search(r"\[#+\] " + BYTES + "/" + BYTES + " " + BYTES + r"/s in \d+", line)
            assert m, line
            done, total = in_bytes(*m.groups()[:2]), in_bytes(*m.groups()[2:4])
            assert m.group(1, 2) == m.group(3, 4), line
            assert abs(total - size) <= 0.005 * UNITS[m.group(4)], (line, size)
        assert abs(done - size) <= 0.005 * UNITS[m.group(2)], (line, size)
    # while running, a counting bar shows its ETA
    assert any(re.search(r"^Count Pieces .*/s ETA \d", line) for line in shown), shown
    # every pruning round ends at its total of pieces
    for line in screen:
        if line.startswith("Prune Pieces"):
            done, total = re.search(COUNT + "/" + COUNT + " in ", line).groups()
            assert done == total, line
    # one summary line, last, with the vocabulary sizes
    sizes = out.split()
    (summary,) = summary_lines(screen)
    assert screen[-1] == summary
    assert re.fullmatch(
        rf"bytepiece: trained vocab {sizes[0]}, {sizes[1]} in \d+\.\d s, peak memory \d+ MB", summary
    ), summary


@pytest.mark.parametrize("method", ["files", "texts"])
def test_progress_false_prints_nothing_even_on_a_terminal(corpus, method):
    out, term, status = run_in_terminal(train_script(method, corpus, progress=False))
    assert status == 0, term
    assert term == "" and len(out.split()) == 2


@pytest.mark.parametrize("method", ["files", "texts"])
def test_default_progress_prints_nothing_when_stderr_is_not_a_terminal(corpus, method):
    r = subprocess.run(train_script(method, corpus, progress=None), capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"" and len(r.stdout.split()) == 2


def test_forced_progress_off_a_terminal_writes_only_the_summary(corpus):
    r = subprocess.run(train_script("files", corpus, progress=True), capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode()
    sizes = r.stdout.decode().split()
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bytepiece: trained vocab {sizes[0]}, {sizes[1]} in "), lines


def cli(command, *args):
    return [sys.executable, "-m", "bytepiece_rs", command, *map(str, args)]


@pytest.mark.parametrize("jsonl", [False, True])
def test_cli_train_ends_with_one_summary_naming_the_models(corpus, tmp_path, jsonl):
    source = corpus
    if jsonl:  # read by Python, then trained from the texts
        import json

        source = tmp_path / "corpus.jsonl"
        lines = corpus.read_text(encoding="utf-8").splitlines()
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    _, term, status = run_in_terminal(
        cli("train", source, "-o", "m.model", "--vocab-size", "1000,600", "--order", "4"), cwd=tmp_path
    )
    assert status == 0, term
    shown, screen = replay(term)
    check_positions(shown)
    assert [stage_of(line) for line in screen[:3]] == ["Count Ngrams", "Prune Ngrams", "Count Pieces"], screen
    (summary,) = summary_lines(screen)
    assert screen[-1] == summary
    from bytepiece_rs import Tokenizer

    sizes = [Tokenizer(str(tmp_path / f"m.model.{n}")).vocab_size for n in (1000, 600)]
    m = re.fullmatch(
        r"bytepiece: trained (\S+) \(vocab (\d+)\), (\S+) \(vocab (\d+)\) in \d+\.\d s, peak memory \d+ MB", summary
    )
    assert m, summary
    assert m.groups() == ("m.model.1000", str(sizes[0]), "m.model.600", str(sizes[1]))


def test_cli_train_quiet_prints_nothing_on_a_terminal(corpus, tmp_path):
    out, term, status = run_in_terminal(
        cli("train", corpus, "-o", tmp_path / "m.model", "--vocab-size", "1000", "--order", "4", "-q")
    )
    assert status == 0, term
    assert term == "" and out == ""
    assert (tmp_path / "m.model").is_file()


def test_cli_train_prints_nothing_when_stderr_is_not_a_terminal(corpus, tmp_path):
    r = subprocess.run(
        cli("train", corpus, "-o", tmp_path / "m.model", "--vocab-size", "1000", "--order", "4"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"" and r.stdout == b""
    assert (tmp_path / "m.model").is_file()


@pytest.fixture(scope="module")
def big_corpus(corpus):
    """The corpus 20 times (about 6 MB): long enough for its bar to be drawn while it runs."""
    path = corpus.with_name("big.txt")
    path.write_text(corpus.read_text(encoding="utf-8") * 20, encoding="utf-8")
    return path


def encode_or_stats(command, corpus, folder, *options):
    """The command line of ``bytepiece encode`` (to a file in ``folder``) or ``stats`` on
    ``corpus``."""
    output = ["-o", folder / "out.ids"] if command == "encode" else []
    return cli(command, corpus, *output, *options)


@pytest.mark.parametrize("command", ["encode", "stats"])
def test_cli_encode_and_stats_draw_one_labelled_bar_of_bytes(big_corpus, tmp_path, command):
    out, term, status = run_in_terminal(encode_or_stats(command, big_corpus, tmp_path))
    assert status == 0, term
    shown, screen = replay(term)
    check_positions(shown)
    # while running: the bar, the bytes done of the total, their rate and the time left
    assert any(re.match(rf"{command} \[[#-]+\] {BYTES}/{BYTES} {BYTES}/s ETA \d", line) for line in shown), shown
    # once over, the one line on the screen: every byte of the file, its rate and the time taken
    (line,) = screen
    m = re.fullmatch(rf"{command} \[#+\] {BYTES}/{BYTES} \d+(?:\.\d+)? MB/s in \d+s", line)
    assert m, line
    assert m.group(1, 2) == m.group(3, 4), line
    assert abs(in_bytes(*m.group(3, 4)) - os.path.getsize(big_corpus)) <= 0.005 * UNITS[m.group(4)], line
    if command == "encode":
        assert (tmp_path / "out.ids").stat().st_size > 0
    else:
        assert out.startswith("documents"), out


def test_cli_encode_of_a_size_not_known_shows_the_bytes_and_their_rate():
    _, term, status = run_in_terminal(cli("encode", "--text", "hello world", "--text", "分词"))
    assert status == 0, term
    shown, screen = replay(term)
    assert re.fullmatch(rf"encode {BYTES} {BYTES}/s in \d+s", screen[0]), screen
    assert screen[0].startswith(f"encode {len('hello world') + len('分词'.encode())} B "), screen
    assert len(screen) == 1, screen


@pytest.mark.parametrize("command", ["encode", "stats"])
def test_cli_encode_and_stats_quiet_print_nothing_on_a_terminal(corpus, tmp_path, command):
    out, term, status = run_in_terminal(encode_or_stats(command, corpus, tmp_path, "-q"))
    assert status == 0, term
    assert term == ""


@pytest.mark.parametrize("command", ["encode", "stats"])
def test_cli_encode_and_stats_print_nothing_when_stderr_is_not_a_terminal(corpus, tmp_path, command):
    r = subprocess.run(encode_or_stats(command, corpus, tmp_path), capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""


def test_replay_wraps_at_the_margin_and_erases_lines():
    shown, screen = replay("abcd\r\x1b[2Kabcdefgh\r\x1b[2Kxy\r\nz", width=4)
    assert screen == ["abcd", "xy", "z"]
    assert shown == ["abcd", "efgh", "xy", "z"]
