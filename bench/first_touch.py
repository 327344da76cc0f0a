"""What fresh memory costs on this machine: the time to write a page the process never had.

On a virtual machine whose host backs the guest's memory lazily, and takes freed memory back
(a balloon's free page reporting, after a couple of seconds), the first write of a page costs the
host's work as well as the kernel's clearing of it; memory freed and taken again at once does
not. So a trainer's time grows with the memory it touches, not only with its work. This measures
it with anonymous mappings, of small pages and of transparent huge pages (where the kernel gives
them when advised): the first touch of every page, a rewrite, the same size mapped again at once
after a free, and again after a pause.

    python3 bench/first_touch.py [--mb 512] [--pause 5]
"""

from __future__ import annotations

import argparse
import mmap
import time
from typing import Tuple

PAGE = 4096


def touch(mb: int, huge: bool) -> Tuple[float, float]:
    """Maps ``mb`` MB (advised to use 2 MiB pages if ``huge``), writes one byte of every 4 KiB,
    then again, and returns the ms per MB of each pass (the mapping is freed on return)."""
    with mmap.mmap(-1, mb << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as m:
        if huge:
            m.madvise(mmap.MADV_HUGEPAGE)
        t = time.perf_counter()
        for i in range(0, mb << 20, PAGE):
            m[i] = 1
        first = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(0, mb << 20, PAGE):
            m[i] = 2
        again = time.perf_counter() - t
    return first * 1000 / mb, again * 1000 / mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="the size of each mapping (MB)")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between a free and the last mapping")
    a = parser.parse_args()
    print(f"| {a.mb} MB, one byte written per 4 KiB | 4 KiB pages, ms per MB | 2 MiB pages, ms per MB |")
    print("|---|---:|---:|")
    rows = {}
    for huge in (False, True):
        time.sleep(a.pause)
        first, rewrite = touch(a.mb, huge)
        rows.setdefault("new to the process", []).append(first)
        rows.setdefault("written again (the cost of the loop itself)", []).append(rewrite)
        rows.setdefault("mapped again at once after a free", []).append(touch(a.mb, huge)[0])
        time.sleep(a.pause)
        rows.setdefault(f"mapped again {a.pause:g} s after a free", []).append(touch(a.mb, huge)[0])
    for what, (small, large) in rows.items():
        print(f"| {what} | {small:.2f} | {large:.2f} |")


if __name__ == "__main__":
    main()
