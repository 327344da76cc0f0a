"""Files written atomically: complete, or not at all.

Each file is the core's :class:`~bytepiece_rs._core.AtomicFile` (the writer that the Rust saves
use too); this module groups several into one commit and writes them through Python file
objects."""

from __future__ import annotations

import contextlib
import os
from typing import IO, List, Tuple, Union

from ._core import AtomicFile


class AtomicOutput:
    """Files written under temporary names beside their targets and renamed into place, all
    together, by :meth:`commit`; removed if anything fails first.

    A symlink is followed: its target is replaced, beside itself, and the link stays. A FIFO, a
    device or another target that is no regular file (``/dev/stdout``) is written to as it is,
    streaming, never replaced."""

    def __init__(self) -> None:
        #: (the core's file, the Python file object writing to it)
        self.files: List[Tuple[AtomicFile, IO[bytes]]] = []

    def open(self, target: str) -> IO[bytes]:
        """A file to write ``target``'s bytes to (it can seek, and read back what it wrote
        through its descriptor). A failure names ``target`` (never the temporary file):
        ``TARGET: what is wrong``."""
        core = AtomicFile(target)
        try:
            f = os.fdopen(_descriptor(core.duplicate()), "wb")
        except BaseException:
            core.abort()
            raise
        self.files.append((core, f))
        return f

    def commit(self) -> None:
        """Renames every file into place once all of them are written and synced to disk."""
        for core, f in self.files:
            f.close()  # flushes what Python buffers
            core.sync()
        for core, _ in self.files:
            core.commit()
        self.files = []

    def abort(self) -> None:
        """Removes the files not committed; their targets stay as they were."""
        for core, f in self.files:
            with contextlib.suppress(OSError):
                f.close()
            core.abort()
        self.files = []

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.commit()
        finally:
            self.abort()


def _descriptor(duplicate: int) -> int:
    """A file descriptor for what :meth:`AtomicFile.duplicate` gives: a file descriptor on
    Unix, a handle on Windows."""
    if os.name == "nt":
        import msvcrt

        return msvcrt.open_osfhandle(duplicate, 0)
    return duplicate


def write_atomic(path: Union[str, "os.PathLike[str]"], data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file renamed into place."""
    with AtomicOutput() as out:
        out.open(os.fspath(path)).write(data)
