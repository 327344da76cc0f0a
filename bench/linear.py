"""Encoding time against input length on inputs without newlines (one chunk each).

    python bench/linear.py [--sizes 1,2,4,8,16] [--original]

Prints, for each kind of input and size in MB, the seconds and the MB/s of
`Tokenizer().encode_batch_numpy([text], num_threads=1)`: linear cost shows as a flat MB/s. With
`--original`, also times the original bytepiece on the 1 MB real-text line (its backtracking is
quadratic in the line's length).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bytepiece_rs import Tokenizer

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "sample"


def real_line(nbytes: int) -> str:
    text = " ".join((SAMPLE / f).read_text() for f in ("en.txt", "zh.txt", "code.txt")).replace("\n", " ")
    line = text * (nbytes // len(text.encode()) + 1)
    return line.encode()[:nbytes].decode(errors="ignore")


KINDS = {
    "real text, one line": real_line,
    "'a' repeated": lambda n: "a" * n,
    "one emoji repeated": lambda n: "\U0001f600" * (n // 4),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8,16", help="sizes in MB")
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--original", action="store_true", help="also time the original on 1 MB")
    args = parser.parse_args()
    tok = Tokenizer(args.model)
    sizes = [float(s) for s in args.sizes.split(",")]
    print("| input | " + " | ".join(f"{s:g} MB" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, make in KINDS.items():
        cells = []
        for mb in sizes:
            text = make(int(mb * 1e6))
            t = time.perf_counter()
            tok.encode_batch_numpy([text], num_threads=1)
            dt = time.perf_counter() - t
            cells.append(f"{dt:.2f} s ({mb / dt:.0f} MB/s)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.original:
        import bytepiece

        if not args.model:
            parser.error("--original needs --model (a plain .model file the original can read)")
        orig = bytepiece.Tokenizer(args.model)
        text = real_line(1_000_000)
        t = time.perf_counter()
        orig.encode(text)
        print(f"\noriginal, 1 MB real-text line: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
