"""Files written atomically: complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, List, Optional, Tuple, Union

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
        if os.path.exists(target) and not os.path.isfile(target):
            f = open(target, "wb")
            self.files.append((target, None, f))
            return f
        real = os.path.realpath(target)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(real) + ".", suffix=".tmp",
                                   dir=os.path.dirname(real))
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
                os.replace(tmp, target)
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


def write_atomic(path: Union[str, "os.PathLike[str]"], data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file renamed into place."""
    with AtomicOutput() as out:
        out.open(os.fspath(path)).write(data)
