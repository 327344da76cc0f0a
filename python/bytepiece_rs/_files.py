"""Files written atomically: complete, or not at all.

Each file is the core's :class:`~bytepiece_rs._core.AtomicFile` (the writer that the Rust saves
use too); this module groups several into one commit and writes them through Python file
objects."""

from __future__ import annotations

import contextlib
import os
from typing import IO, List, Optional, Tuple, Union

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
        for _, f in self.files:
            f.close()  # flushes what Python buffers
        AtomicFile.commit_all([core for core, _ in self.files])
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


def check_writable(path: Optional[str]) -> None:
    """Fails at once, before any work, if ``path`` cannot be written: its folder must exist and
    be writable, and it must not be a folder itself (``-`` and ``None``, standard output, can)."""
    if path in (None, "-"):
        return
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not a file to write")
    if os.path.exists(path) and not os.path.isfile(path):
        return  # a FIFO or a device: written to as it is
    target = os.path.dirname(os.path.realpath(path))  # a symlink's target is what is replaced
    if not os.path.isdir(target):
        raise FileNotFoundError(f"{path}: no such directory {target}")
    if not os.access(target, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: directory {target} is not writable")


def check_writable_folder(path: str) -> None:
    """Fails at once, before any work, unless ``path`` is a writable folder or can be made one
    (it does not exist, its parent folder does and is writable)."""
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path}: directory is not writable")
    elif os.path.lexists(path):
        raise NotADirectoryError(f"{path}: is not a directory")
    else:
        check_writable(path)  # the parent folder
