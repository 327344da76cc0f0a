"""Files written atomically: complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, List, Tuple, Union

#: The process' umask, for the permissions of new files (``mkstemp`` makes them private).
_UMASK = os.umask(0)
os.umask(_UMASK)


class AtomicOutput:
    """Files written under temporary names beside their targets and renamed into place, all
    together, by :meth:`commit`; removed if anything fails first."""

    def __init__(self) -> None:
        self.files: List[Tuple[str, str, IO[bytes]]] = []

    def open(self, target: str) -> IO[bytes]:
        directory = os.path.dirname(os.path.abspath(target))
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp", dir=directory)
        os.fchmod(fd, 0o666 & ~_UMASK)
        f = os.fdopen(fd, "wb")
        self.files.append((target, tmp, f))
        return f

    def commit(self) -> None:
        for _, _, f in self.files:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        for target, tmp, _ in self.files:
            os.replace(tmp, target)
        self.files = []

    def abort(self) -> None:
        for _, tmp, f in self.files:
            f.close()
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
