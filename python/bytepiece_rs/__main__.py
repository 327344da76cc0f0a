"""Command line: ``bytepiece`` (or ``python -m bytepiece_rs``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .tokenizer import Tokenizer


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bytepiece", description="BytePiece tokenizer (Rust engine)")
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="print the ids (or pieces) of text given as arguments or on stdin")
    enc.add_argument("text", nargs="*", help="texts to encode (default: each line of stdin)")
    enc.add_argument("-m", "--model", help="model file (default: the bundled model)")
    enc.add_argument("--pieces", action="store_true", help="print pieces (a JSON list) instead of ids")
    args = parser.parse_args(argv)
    try:
        tokenizer = Tokenizer(args.model)
    except (OSError, ValueError) as e:
        print(f"bytepiece: {e}", file=sys.stderr)
        return 2
    texts = args.text or (line.rstrip("\n") for line in sys.stdin)
    for text in texts:
        if args.pieces:
            pieces = [p.decode(errors="backslashreplace") for p in tokenizer.tokenize(text)]
            print(json.dumps(pieces, ensure_ascii=False))
        else:
            print(" ".join(map(str, tokenizer.encode(text))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
