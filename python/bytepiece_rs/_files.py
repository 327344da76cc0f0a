"""Files written atomically: complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Callable, List, Optional, Tuple, TypeVar, Union

T = TypeVar("T")

#: The process' umask, for the permissions of new files (``mkstemp`` makes them private).
_UMASK = os.umask(0)
os.umask(_UMASK)


class AtomicOutput:
    """Files written under temporary names beside their targets and renamed into place, all
    together, by :meth:`commit`; removed if anything fails first.

    A symlink is followed: its target is replaced, beside itself, and the link stays. A FIFO, a
    device or another target that is no regular file (``/dev/stdout``) is written to as it is,
    streaming, never replaced."""

    def __init__(self) -> None:
        #: (target, temporary file or None when written in place, file)
        self.files: List[Tuple[str, Optional[str], IO[bytes]]] = []

    def open(self, target: str) -> IO[bytes]:
        """A file to write ``target``'s bytes to. A failure names ``target`` (never the
        temporary file): ``TARGET: what is wrong``."""
        if os.path.isdir(target):
            raise IsADirectoryError(f"{target}: is a directory, not a file")
        if os.path.exists(target) and not os.path.isfile(target):
            f = _named(target, lambda: open(target, "wb"))
            self.files.append((target, None, f))
            return f
        real = os.path.realpath(target)
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{target}: no such directory {folder}")
        fd, tmp = _named(
            target, lambda: tempfile.mkstemp(prefix="." + os.path.basename(real) + ".", suffix=".tmp", dir=folder)
        )
        os.fchmod(fd, 0o666 & ~_UMASK)
        f = os.fdopen(fd, "wb")
        self.files.append((real, tmp, f))
        return f

    def commit(self) -> None:
        for _, tmp, f in self.files:
            f.flush()
            if tmp is not None:
                os.fsync(f.fileno())
            f.close()
        for target, tmp, _ in self.files:
            if tmp is not None:
                _named(target, lambda: os.replace(tmp, target))
        self.files = []

    def abort(self) -> None:
        for _, tmp, f in self.files:
            with contextlib.suppress(OSError):
                f.close()
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.files = []

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.commit()
        self.abort()


def _named(target: str, make: Callable[[], T]) -> T:
    """``make()``, with an ``OSError`` it raises reworded to name ``target``."""
    try:
        return make()
    except OSError as e:
        raise type(e)(f"{target}: cannot write ({e.strerror or e})") from None


def write_atomic(path: Union[str, "os.PathLike[str]"], data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file renamed into place."""
    with AtomicOutput() as out:
        out.open(os.fspath(path)).write(data)
