"""Termination signals turned into an exception while long work runs, so that the work stops
cleanly and removes its temporary files (a process killed by the default action of SIGTERM or
SIGHUP runs no clean-up)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """The process was asked to terminate (SIGTERM, SIGHUP) during long work; ``signum`` is
    the signal. A ``KeyboardInterrupt``, so that code that handles Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, _frame: object) -> None:
    raise Terminated(signum)


#: The signals handled: those whose default action ends the process without clean-up.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def terminations_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread,
    where they had their default action (handlers set by the program are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
