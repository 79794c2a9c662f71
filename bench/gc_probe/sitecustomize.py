"""Loaded by `bench/live_objects.py` into the server process it starts (this folder on PYTHONPATH):
every garbage collection timed through `gc.callbacks`, and on SIGUSR1 a report written to the file
named by `GC_PROBE_OUT` (with the pid and a counter): the collections so far, the longest of each
generation since the last report, the CPU so far, then a full collection (not counted) and what
survives it, by type. Inert in any other process."""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

_OUT = os.environ.get("GC_PROBE_OUT")
# Per generation: collections, seconds, longest.
_stats: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
_started = [0.0]
_reports = [0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    entry = _stats[info["generation"]]
    entry[0] += 1
    entry[1] += took
    entry[2] = max(entry[2], took)


def _report(signum: int, frame: FrameType | None) -> None:
    stats = {g: list(v) for g, v in _stats.items()}
    for entry in _stats.values():
        entry[2] = 0.0  # the longest, from now on
    cpu = time.process_time()
    gc.callbacks.remove(_timed)
    try:
        gc.collect()
    finally:
        gc.callbacks.append(_timed)
    alive = gc.get_objects()  # what the collector walks: frozen objects are not in it
    by_type = collections.Counter(type(o).__qualname__ for o in alive)
    path = f"{_OUT}.{os.getpid()}.{_reports[0]}"
    _reports[0] += 1
    with open(path + ".tmp", "w") as f:
        json.dump({"stats": stats, "cpu": cpu, "live": len(alive), "types": by_type}, f)
    os.replace(path + ".tmp", path)


if _OUT and "server.py" in " ".join(sys.argv):
    gc.callbacks.append(_timed)
    signal.signal(signal.SIGUSR1, _report)
