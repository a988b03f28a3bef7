"""The one timing helper of the benchmarks: wall-clock and process-CPU seconds of a block or a call.

CPU time (``time.process_time``, this process only) is reported next to wall time because it is
the steadier of the two on a shared, loaded machine. A GPU benchmark synchronizes the device
inside the block before it ends.

    with Timer() as t:
        work()
    print(t.wall, t.cpu)

    wall, cpu = timed(work, arg)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Timer:
    """Context manager: ``wall`` and ``cpu`` seconds of its block (0.0 until the block ends)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of ``fn(*args, **kwargs)``."""
    with Timer() as t:
        fn(*args, **kwargs)
    return t.wall, t.cpu
