"""Run the gateway with a memory-inspection thread, for bench/rss_probe.py only (never part of the product).

    python bench/rss_hook.py CONTROL_FIFO -m gateway --config ... --port ...

A daemon thread reads commands from the FIFO, one per line, and writes its answer as JSON to the path given:

  report PATH   VmRSS, glibc's mallinfo2 (in use / free in the heap, mmap'd), SQLite's own memory
                (sqlite3_memory_used), pymalloc blocks, gc object counts by type and their growth since the
                last report, and, when tracemalloc is on (PYTHONTRACEMALLOC=N), the top allocation sites
                that grew since the last report
  trim PATH     VmRSS before and after glibc's malloc_trim(0): how much of the RSS was freed memory the
                allocator kept

A thread, not a signal handler: uvloop runs its loop in C, and a thread answers whatever the loop is doing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import runpy
import sys
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

MALLINFO2_FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (every arena summed)."""

    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS.split()]


LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
LIBC.mallinfo2.restype = MallInfo2
LIBC.malloc_trim.argtypes = [ctypes.c_size_t]


def _sqlite() -> Any:
    # The library _sqlite3 is linked to (already loaded: dlopen returns the same copy).
    with contextlib.suppress(OSError):
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
        return lib
    return None


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, RssAnon, ...)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Inspector:
    """The state kept between reports: the last gc counts and the last tracemalloc snapshot."""

    def __init__(self) -> None:
        self.types: Counter[str] = Counter()
        self.snapshot: tracemalloc.Snapshot | None = None
        self.sqlite = _sqlite()

    def report(self) -> dict[str, Any]:
        """Everything the docstring lists."""
        m = LIBC.mallinfo2()
        gc.collect()
        types = Counter(type(o).__name__ for o in gc.get_objects())
        grown = (types - self.types).most_common(25)
        self.types = types
        out: dict[str, Any] = {
            "rss_kib": status_kib("VmRSS"),
            "rss_anon_kib": status_kib("RssAnon"),
            "threads": threading.active_count(),
            "malloc_in_use_kib": m.uordblks // 1024,
            "malloc_free_kib": m.fordblks // 1024,
            "malloc_heap_kib": m.arena // 1024,
            "malloc_mmap_kib": m.hblkhd // 1024,
            "pymalloc_blocks": sys.getallocatedblocks(),
            "gc_objects": sum(types.values()),
            "gc_frozen": gc.get_freeze_count(),
            "gc_grown": grown,
        }
        if self.sqlite is not None:
            out["sqlite_used_kib"] = self.sqlite.sqlite3_memory_used() // 1024
            out["sqlite_highwater_kib"] = self.sqlite.sqlite3_memory_highwater(0) // 1024
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            out["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
            if self.snapshot is not None:
                top = snap.compare_to(self.snapshot, "traceback")[:12]
                out["traced_grown"] = [
                    {"kib": s.size_diff // 1024, "count": s.count_diff, "where": s.traceback.format()[-6:]} for s in top
                ]
            self.snapshot = snap
        return out

    def trim(self) -> dict[str, Any]:
        """malloc_trim(0) and the RSS it gave back."""
        before = status_kib("VmRSS")
        LIBC.malloc_trim(0)
        return {"rss_before_kib": before, "rss_after_kib": status_kib("VmRSS")}


def serve(fifo: str) -> None:
    """Answer commands until the process ends."""
    inspector = Inspector()
    while True:
        with open(fifo) as commands:  # reopened after each writer closes it
            for line in commands:
                command, _, path = line.strip().partition(" ")
                try:
                    answer = inspector.trim() if command == "trim" else inspector.report()
                except Exception as exc:  # a broken report must not end the gateway
                    answer = {"error": repr(exc)}
                tmp = path + ".tmp"
                Path(tmp).write_text(json.dumps(answer))
                os.replace(tmp, path)


def main() -> None:
    """Start the thread, then run `-m module args` as python would."""
    fifo, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: rss_hook.py FIFO -m MODULE [ARGS...]")
    threading.Thread(target=serve, args=(fifo,), name="rss-hook", daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
