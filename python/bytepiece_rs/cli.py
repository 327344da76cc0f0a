"""The ``bytepiece`` command (also ``python -m bytepiece_rs``): train, encode, decode, stats, info.

Every command reports a problem as one line on stderr and exits with status 2; outputs are
written to a temporary file beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
import tempfile
from typing import Iterator, List, NoReturn, Optional, Sequence

import numpy as np

from ._core import NUM_RESERVED, RESERVED, ProgressBar, __version__
from ._files import AtomicOutput, check_writable, check_writable_folder
from ._signals import Terminated, terminations_raise
from .formats import (
    ENCODED_FORMATS,
    WRITERS,
    document_fields,
    encoded_documents,
    is_jsonl,
    read_documents,
    spooled,
)
from .tokenizer import Tokenizer
from .trainer import TEXT_UNITS, Trainer


class CliError(Exception):
    """A problem to report on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        self.exit(2, f"bytepiece: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- inputs


def _input_size(paths: Sequence[str]) -> Optional[int]:
    """The bytes to read, when there are inputs and every one is a regular file (else unknown)."""
    if not paths or any(p == "-" or not os.path.isfile(p) for p in paths):
        return None
    try:
        return sum(os.path.getsize(p) for p in paths)
    except OSError:
        return None


def _shows_progress(a: argparse.Namespace) -> Optional[bool]:
    """Whether a command draws its progress bar: never with ``--quiet``, else (``None``) when
    stderr is a terminal."""
    return False if a.quiet else None


def _check_file(path: str, what: str = "file") -> None:
    """Fails unless ``path`` can be read as a ``what``: it exists and is no directory (a pipe,
    such as bash's ``<(zcat corpus.gz)``, is fine)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a {what}")


def _check_inputs(paths: Sequence[str]) -> None:
    for p in paths:
        if p != "-":
            _check_file(p)


# --------------------------------------------------------------------------- commands


def _tokenizer(model: Optional[str], seed: Optional[int] = None) -> Tokenizer:
    if model is not None:
        _check_file(model, "model file")
    return Tokenizer(model, seed=seed)


def _dtype(name: Optional[str], tokenizer: Tokenizer) -> np.dtype:
    if name is None:
        name = "uint16" if tokenizer.vocab_size <= 1 << 16 else "uint32"
    if name == "uint16" and tokenizer.vocab_size > 1 << 16:
        raise CliError(f"the model has {tokenizer.vocab_size:,} ids, more than uint16 holds: use --dtype uint32")
    return np.dtype(name)


def _allowed_special(value: Optional[str], tokenizer: Tokenizer):
    if value is None:
        return frozenset()
    if value == "all":
        return "all"
    tokens = frozenset(t for t in value.split(",") if t)
    unknown = sorted(tokens - set(tokenizer.special_tokens))
    if unknown:
        have = ", ".join(tokenizer.special_tokens) or "none"
        raise CliError(f"--allow-special: {unknown[0]!r} is not a special token of the model (it has: {have})")
    return tokens


def cmd_encode(a: argparse.Namespace) -> None:
    check_writable(a.output)
    tokenizer = _tokenizer(a.model, a.seed)
    if a.text is None and not a.inputs:
        a.inputs = ["-"]  # like spm_encode: standard input
    _check_inputs(a.inputs)
    if a.format in ("npy", "bin") and a.output in (None, "-"):
        raise CliError(f"--format {a.format} needs -o OUT")
    dtype = _dtype(a.dtype, tokenizer)
    allowed = _allowed_special(a.allow_special, tokenizer)
    # the output is renamed into place only if everything succeeds; then the bar ends
    with ProgressBar("encode", _input_size(a.inputs), show=_shows_progress(a)) as progress, AtomicOutput() as out:
        writer = WRITERS[a.format](out, a.output or "-", dtype)

        def write(data: Optional[bytes], lengths: np.ndarray, nbytes: int) -> None:
            writer.write(data, lengths)
            progress.advance(nbytes)

        if a.text is not None:
            texts = [t for t in a.text if t or not a.skip_empty]
            ids, offsets = tokenizer.encode_batch_numpy(
                texts, a.add_bos, a.add_eos, a.alpha, a.threads, allowed_special=allowed, disallowed_special=()
            )
            write(*tokenizer._encoder.format_ids(ids, offsets, writer.core_format), sum(len(t.encode()) for t in texts))
            n_docs = len(texts)
        else:
            # read, split, encode and format in Rust on every thread; written here, in order
            n_docs = tokenizer._encoder.encode_files(
                document_fields(a.inputs, a.field),
                write,
                writer.core_format,
                a.skip_empty,
                a.add_bos,
                a.add_eos,
                a.alpha,
                sorted(tokenizer.special_tokens) if allowed == "all" else sorted(allowed),
                a.threads,
                output=writer.output(),
            )["documents"]
        if n_docs == 0 and a.format in ("bin", "npy"):
            # an empty dataset is no dataset: Megatron-LM's loader cannot map an empty .bin
            source = "the --text given" if a.text is not None else ", ".join(a.inputs)
            raise CliError(
                f"{source}: no documents to encode{' (all empty)' if a.skip_empty else ''}; no {a.format} written"
            )
        writer.finish()
    if n_docs == 0 and not a.quiet:
        print(f"bytepiece: warning: {', '.join(a.inputs or ['--text'])}: no documents to encode", file=sys.stderr)


def cmd_decode(a: argparse.Namespace) -> None:
    check_writable(a.output)
    tokenizer = _tokenizer(a.model)
    sources = [
        (path, a.format if a.format != "auto" else ENCODED_FORMATS.get(os.path.splitext(path)[1].lower(), "ids"))
        for path in a.inputs or ["-"]
    ]
    for path, fmt in sources:
        if path == "-" and fmt in ("npy", "bin"):
            raise CliError(f"--format {fmt}: reads files, not standard input")
        _check_inputs([os.path.splitext(path)[0] + ext for ext in (".bin", ".idx")] if fmt == "bin" else [path])
    with AtomicOutput() as out:
        f = out.open(a.output) if a.output not in (None, "-") else sys.stdout.buffer
        for path, fmt in sources:
            for where, ids in encoded_documents(path, fmt):
                try:
                    f.write(tokenizer.decode(ids).encode() + b"\n")
                except (ValueError, KeyError, OverflowError, TypeError) as e:
                    raise CliError(f"{where}: {_message(e)}") from None


def cmd_stats(a: argparse.Namespace) -> None:
    tokenizer = _tokenizer(a.model)
    _check_inputs(a.inputs)
    used = np.zeros(tokenizer.vocab_size, np.int64)
    inputs = document_fields(a.inputs, a.field)
    with ProgressBar("stats", _input_size(a.inputs), show=_shows_progress(a)) as progress:

        def count(data: bytes, lengths: np.ndarray, nbytes: int) -> None:
            used[:] += np.bincount(np.frombuffer(data, "<u4"), minlength=tokenizer.vocab_size)
            progress.advance(nbytes)

        run = tokenizer._encoder.encode_files(inputs, count, "uint32", num_threads=a.threads)
    n_bytes, n_tokens = run["text_bytes"], run["tokens"]
    stats = {
        "documents": run["documents"],
        "bytes": n_bytes,
        "tokens": n_tokens,
        "bytes_per_token": n_bytes / n_tokens if n_tokens else None,
        "vocab_size": tokenizer.vocab_size,
        "ids_used": int(np.count_nonzero(used)),
        "vocab_used": float(np.count_nonzero(used[NUM_RESERVED:]) / max(tokenizer.vocab_size - NUM_RESERVED, 1)),
    }
    _print_report(stats, a.json)


def cmd_info(a: argparse.Namespace) -> None:
    tokenizer = _tokenizer(a.model)
    pieces = [tokenizer.id_to_piece(i) for i in range(NUM_RESERVED, tokenizer.vocab_size)]
    raw = [p if isinstance(p, bytes) else p.encode() for p in pieces]
    lengths = np.array([len(p) for p in raw])
    counts = np.array(tokenizer.counts(), dtype=np.float64)
    invalid = 0
    for p in raw:
        try:
            p.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
    info = {
        "model": a.model or "(bundled default)",
        "vocab_size": tokenizer.vocab_size,
        "reserved": {name: i for i, name in enumerate(RESERVED)},
        "special_tokens": tokenizer.special_tokens,
        "pieces": len(pieces) - len(tokenizer.special_tokens),
        "piece_bytes_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "piece_bytes_max": int(lengths.max()) if len(lengths) else 0,
        "pieces_not_utf8": invalid,
        "total_count": int(counts.sum()),
    }
    _print_report(info, a.json)


def cmd_convert(a: argparse.Namespace) -> None:
    if a.to == "transformers":
        check_writable_folder(a.output)
        _require_transformers()
    else:
        check_writable(a.output)
    tokenizer = _tokenizer(a.model)
    if a.to == "sentencepiece":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unused = tokenizer.convert_to_sentencepiece(a.output, exact_original=a.exact_original)
        if unused and not a.quiet:
            print(
                f"bytepiece: note: {len(unused)} pieces are not valid UTF-8 and are UNUSED in the "
                "SentencePiece model (its ids differ where BytePiece uses them)",
                file=sys.stderr,
            )
    elif a.to == "hf":
        tokenizer.convert_to_hf(a.output)
    else:
        from .integrations import save_transformers

        save_transformers(tokenizer, a.output)


def _require_transformers() -> None:
    # its advice that PyTorch is missing concerns models, not a tokenizer: not shown
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise CliError("--to transformers needs the transformers package (pip install 'bytepiece-rs[hf]')") from None


def cmd_show(a: argparse.Namespace) -> None:
    from ._files import write_atomic
    from .show import to_html

    check_writable(a.output)

    models: List[Optional[str]] = a.model or [None]
    tokenizers = [_tokenizer(m) for m in models]
    names = [os.path.basename(m) if m else "default model" for m in models]
    if (a.input is None) == (a.text is None):
        raise CliError("show: give a FILE or --text TEXT (one of them)")
    if a.text is not None:
        text = a.text
    elif os.path.isfile(a.input):
        try:
            with open(a.input, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise CliError(f"{a.input}: not UTF-8 text ({e})") from None
    else:
        # the original form of this command: text in place of a file (said, so a mistyped path is seen)
        what = "a directory" if os.path.isdir(a.input) else "no such file"
        print(f"bytepiece: note: {a.input}: {what}; showing it as text (--text TEXT says so)", file=sys.stderr)
        text = a.input
    write_atomic(a.output, to_html(tokenizers, text, names=names, title=a.title).encode("utf-8"))


def _print_report(d: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(d, ensure_ascii=False))
        return
    for k, v in d.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, int):
            v = f"{v:,}"
        print(f"{k:<18} {v}")


def cmd_train(a: argparse.Namespace) -> None:
    check_writable(a.output)
    sizes = _sizes(a.vocab_size)
    trainer = Trainer(
        order=a.order,
        max_vocab_size=sizes if len(sizes) > 1 else sizes[0],
        max_piece_length=a.max_piece_length,
        min_count=a.min_count,
        isolate_digits=a.isolate_digits,
        ensure_unicode=not a.no_ensure_unicode,
        progress=_shows_progress(a),
        max_memory_mb=a.max_memory,
        temp_dir=a.temp_dir,
    )
    workers = a.threads or os.cpu_count() or 1
    with trainer.reporting():  # one summary line, naming the files written
        if a.dataset:
            trainer.train(_dataset_texts(a.dataset, a.split, a.column), workers=workers)
        else:
            if not a.inputs:
                raise CliError("nothing to train on: give INPUT files, - for stdin, or --dataset")
            _check_inputs(a.inputs)
            with tempfile.TemporaryDirectory(prefix="bytepiece-", dir=a.temp_dir) as spool:
                # training reads its files twice: a pipe is copied to a file first, to be the same text
                inputs = [spooled(p, spool, i) for i, p in enumerate(a.inputs)]
                plain = [p for p in inputs if p != "-" and not is_jsonl(p, a.field)]
                if len(plain) == len(inputs):  # read by Rust, streaming
                    trainer.train_from_files(plain, workers=workers, text_unit=a.text_unit)
                else:
                    whole = a.text_unit == "file"
                    texts = (t for t, _ in read_documents(inputs, a.field, keep_newlines=whole))
                    trainer.train(texts, workers=workers)
        check_writable(a.output)  # again: it may have gone while training
        trainer.save(a.output)


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--vocab-size: not a size or a comma list of sizes: {text!r}") from None
    if not sizes:
        raise CliError("--vocab-size: no size given")
    return sizes


def _dataset_texts(source: Sequence[str], split: str, column: str) -> Iterator[str]:
    """:func:`~bytepiece_rs.integrations.dataset_texts`, its errors named for ``--dataset``."""
    from .integrations import dataset_texts

    try:
        yield from dataset_texts(source, split, column)
    except (ImportError, OSError, ValueError) as e:
        raise CliError(f"--dataset: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bytepiece", description="BytePiece tokenizer (Rust engine): train, encode, decode, inspect.")
    p.add_argument("--version", action="version", version=f"bytepiece-rs {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(s: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            s.add_argument("-m", "--model", help="model file (default: the bundled model)")
        s.add_argument("--threads", type=_positive_int, default=None, help="threads (default: all cores)")
        s.add_argument(
            "-q", "--quiet", action="store_true", help="no progress output on stderr (bars, the summary of a training)"
        )

    t = sub.add_parser(
        "train",
        help="train a model on text files, jsonl, stdin or a datasets source",
        description="Train a model. A text of a text file (or of stdin) is a line, without its "
        "newline (see --text-unit); a text of a .jsonl file is the --field of a record; "
        "a text of --dataset is the --column of a row.",
    )
    t.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="text files (each line a text), .jsonl files (each record a text), - for stdin",
    )
    t.add_argument("-o", "--output", required=True, help="model file to write (with a list of sizes: OUTPUT.SIZE each)")
    t.add_argument("--vocab-size", required=True, help="vocabulary size, or a comma list of sizes")
    t.add_argument("--order", type=_positive_int, default=6)
    t.add_argument("--min-count", type=_positive_int, default=2)
    t.add_argument("--max-piece-length", type=_positive_int, default=36)
    t.add_argument("--isolate-digits", action="store_true")
    t.add_argument("--no-ensure-unicode", action="store_true")
    t.add_argument(
        "--text-unit",
        choices=TEXT_UNITS,
        default=TEXT_UNITS[0],
        help="what a text of a text file or stdin is: 'line', each line without its newline "
        "(default; as encode reads them), or 'file', the whole file with its newlines "
        "(pieces may span lines); .jsonl records and --dataset rows are one text each either way",
    )
    t.add_argument("--field", help="the text field of .jsonl records (default: text)")
    t.add_argument("--dataset", nargs="+", metavar="DIR_OR_FILE", help="a datasets source on disk")
    t.add_argument("--split", default="train", help="the dataset split (default: train)")
    t.add_argument("--column", default="text", help="the dataset column (default: text)")
    t.add_argument(
        "--max-memory",
        type=_positive_int,
        metavar="MB",
        help="bound the memory of the whole training to about MB megabytes (spilling to disk; same model); "
        "default: no bound, the fastest",
    )
    t.add_argument("--temp-dir", metavar="DIR", help="folder for temporary files (default: the system's)")
    common(t, model=False)
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("encode", help="encode files (one document per line, or per .jsonl record)")
    e.add_argument("inputs", nargs="*", metavar="INPUT", help="text or .jsonl files, - for stdin (the default)")
    e.add_argument("--text", action="append", help="encode this text (repeatable) instead of files")
    e.add_argument("-o", "--output", help="output file (default: stdout; bin: PREFIX[.bin])")
    e.add_argument("--format", choices=sorted(WRITERS), default="ids")
    e.add_argument(
        "--dtype", choices=["uint16", "uint32"], help="npy / bin ids (default: uint16 if the vocabulary fits)"
    )
    e.add_argument("--add-bos", action="store_true")
    e.add_argument("--add-eos", action="store_true")
    e.add_argument(
        "--allow-special",
        metavar="TOKENS",
        help="special tokens whose text becomes their id: 'all' or a comma list "
        "(default: none; their text is encoded as ordinary text)",
    )
    e.add_argument("--alpha", type=float, default=-1, help="sample with this alpha (>= 0); default: best segmentation")
    e.add_argument("--seed", type=int, default=None, help="seed of the draws when sampling")
    e.add_argument("--field", help="the text field of .jsonl records (default: text)")
    e.add_argument(
        "--skip-empty",
        action="store_true",
        help="drop empty documents (lines with nothing before the newline, empty .jsonl texts) "
        "instead of encoding each as a document of no ids (or just --add-bos/--add-eos)",
    )
    common(e)
    e.set_defaults(run=cmd_encode)

    d = sub.add_parser("decode", help="decode what encode wrote back to text, one line per document")
    d.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="files that encode wrote: lines of ids, .jsonl, .npy (with its .offsets.npy), .bin/.idx "
        "(default: stdin, lines of ids or jsonl records)",
    )
    d.add_argument(
        "--format",
        choices=["auto", "ids", "jsonl", "npy", "bin"],
        default="auto",
        help="what the inputs hold (default: by extension; anything else is lines of ids)",
    )
    d.add_argument("-o", "--output", help="output file (default: stdout)")
    common(d)
    d.set_defaults(run=cmd_decode)

    s = sub.add_parser("stats", help="bytes, tokens, bytes/token and vocabulary use on files")
    s.add_argument("inputs", nargs="+", metavar="INPUT")
    s.add_argument("--field", help="the text field of .jsonl records (default: text)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    common(s)
    s.set_defaults(run=cmd_stats)

    i = sub.add_parser("info", help="describe a model")
    i.add_argument("-m", "--model", help="model file (default: the bundled model)")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(run=cmd_info)
    c = sub.add_parser(
        "convert",
        help="write the model for SentencePiece, HF tokenizers or transformers",
        description="Writes the model for another library: sentencepiece: a SentencePiece .model; "
        "hf: an HF tokenizers tokenizer.json; transformers: a folder that "
        "transformers.AutoTokenizer.from_pretrained loads, with <pad>, <bos>, <eos> as its "
        "pad, bos and eos tokens (needs transformers).",
    )
    c.add_argument("-m", "--model", help="model file (default: the bundled model)")
    c.add_argument("--to", choices=["sentencepiece", "hf", "transformers"], required=True)
    c.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write (.model, or tokenizer.json); transformers: the folder to write into "
        "(made if missing, its other files kept)",
    )
    c.add_argument(
        "--exact-original", action="store_true", help="sentencepiece: the original's conversion, byte for byte"
    )
    c.add_argument("-q", "--quiet", action="store_true", help="no note on unconvertible pieces")
    c.set_defaults(run=cmd_convert)

    s = sub.add_parser("show", help="write an HTML page showing the tokens of a text (one column per model)")
    s.add_argument(
        "input",
        metavar="FILE",
        nargs="?",
        help="a text file (read as UTF-8); an argument that is no file is shown as text, with a note",
    )
    s.add_argument("--text", help="show this text (rather than a file's)")
    s.add_argument(
        "-m",
        "--model",
        action="append",
        help="model file, repeatable for side-by-side columns (default: the bundled model)",
    )
    s.add_argument("-o", "--output", required=True, help="the HTML file to write")
    s.add_argument("--title", help="the page's title")
    s.set_defaults(run=cmd_show)
    return p


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {v}")
    return v


def _message(e: BaseException) -> str:
    """An exception's message as one ``PATH: what is wrong`` line (a ``KeyError``'s without the
    quotes its ``str`` adds, an ``OSError``'s with its file first)."""
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        return e.args[0]
    return str(e)


def run() -> NoReturn:
    """The ``bytepiece`` command: :func:`main`, then an exit that skips the interpreter's
    teardown, which frees every object one at a time (tens of milliseconds after a large job).
    By then the outputs are committed; the exit handlers still run and the streams are flushed."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # SIGTERM and SIGHUP (timeout, schedulers, docker stop, a closed terminal) stop every
        # command as Ctrl-C does: temporary files removed, the previous output intact
        with terminations_raise():
            args.run(args)
    except CliError as e:
        print(f"bytepiece: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, TypeError, KeyError) as e:
        print(f"bytepiece: error: {_message(e)}", file=sys.stderr)
        return 2
    except Terminated as e:
        print(f"bytepiece: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("bytepiece: interrupted", file=sys.stderr)
        return 130
    return 0
