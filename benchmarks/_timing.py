"""Side-by-side timing for the benchmarks: blocks of calls alternate between the contenders, so a machine that
slows down or speeds up during the run affects them alike."""

from __future__ import annotations

import time
from typing import Callable


def alternate(calls: dict[str, Callable[[], None]], steps: int, blocks: int) -> dict[str, list[float]]:
    """Seconds per call of each contender: `blocks` rounds (after one warm-up round that is not timed), each
    running `steps` calls of every contender in turn."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for block in range(blocks + 1):  # block 0 warms up
        for name, call in calls.items():
            for _ in range(steps):
                start = time.perf_counter()
                call()
                if block:
                    times[name].append(time.perf_counter() - start)
    return times
