"""Trains the model bundled with the package (python/bytepiece_rs/data/default.model.gz).

    shared/corpus/build_corpus.sh CORPUS
    python3 tools/train_default_model.py CORPUS/mix.train.txt

The training text is the first 100,000,000 bytes of the corpus' mix.train.txt (Chinese, English
and code interleaved 3 : 5 : 0.5 by bytes; see shared/corpus/README.md), cut at the last newline
before that size, trained as one text (``text_unit="file"``: pieces may span lines, such as runs
of newlines and the indentation after one). Parameters: order 6, min_count 2, max_piece_length
36, ensure_unicode, max_vocab_size 64000.
"""

import gzip
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from bytepiece_rs import Trainer

SIZE = 100_000_000
OUT = Path(__file__).resolve().parents[1] / "python" / "bytepiece_rs" / "data" / "default.model.gz"


def main() -> None:
    source = Path(sys.argv[1])
    with open(source, "rb") as f:
        data = f.read(SIZE)
    data = data[: data.rindex(b"\n") + 1]
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "train.txt"
        text.write_bytes(data)
        start = time.time()
        trainer = Trainer(order=6, max_vocab_size=64000, min_count=2, max_piece_length=36)
        trainer.train_from_files([text], workers=2, text_unit="file")
        model = Path(tmp) / "default.model"
        trainer.save(model)
        seconds = time.time() - start
        OUT.write_bytes(gzip.compress(model.read_bytes(), compresslevel=9, mtime=0))
    print(f"trained on {len(data):,} bytes (sha256 {hashlib.sha256(data).hexdigest()[:16]}) in {seconds:.0f} s")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
