"""Timing: medians of repeated batches, several candidates round-robin so load drift hits all."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable


class Timer:
    def __init__(self, quick: bool) -> None:
        self.budget = 0.05 if quick else 0.2  # seconds per repeat
        self.repeat = 5 if quick else 7

    def _plan(self, once_ns: int) -> tuple[int, int]:
        number = max(1, int(self.budget * 1e9 / max(once_ns, 1)))
        repeat = self.repeat if once_ns < self.budget * 1e9 * 2 else 3
        return number, repeat

    def __call__(self, fn: Callable[[], object]) -> float:
        """Median seconds per call."""
        return self.compare({"": fn})[""]

    def compare(self, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
        """Median seconds per call of each, timed round-robin so load drift hits all alike."""
        plans = {}
        for name, fn in fns.items():
            fn()
            t0 = time.perf_counter_ns()
            fn()
            plans[name] = self._plan(time.perf_counter_ns() - t0)
        repeat = min(r for _, r in plans.values())
        times: dict[str, list[float]] = {name: [] for name in fns}
        gc.disable()
        try:
            for _ in range(repeat):
                for name, fn in fns.items():
                    number = plans[name][0]
                    t0 = time.perf_counter_ns()
                    for _ in range(number):
                        fn()
                    times[name].append((time.perf_counter_ns() - t0) / number)
        finally:
            gc.enable()
        return {name: statistics.median(ts) / 1e9 for name, ts in times.items()}

    def compare_async(
        self, loop: asyncio.AbstractEventLoop, fns: dict[str, Callable[[], Awaitable[object]]]
    ) -> dict[str, float]:
        """As :meth:`compare`, timed inside the loop (no per-call loop overhead)."""

        async def batch(fn: Callable[[], Awaitable[object]], n: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await fn()
            return time.perf_counter_ns() - t0

        plans = {}
        for name, fn in fns.items():
            loop.run_until_complete(batch(fn, 2))
            plans[name] = self._plan(loop.run_until_complete(batch(fn, 1)))
        repeat = min(r for _, r in plans.values())
        times: dict[str, list[float]] = {name: [] for name in fns}
        gc.disable()
        try:
            for _ in range(repeat):
                for name, fn in fns.items():
                    number = plans[name][0]
                    times[name].append(loop.run_until_complete(batch(fn, number)) / number)
        finally:
            gc.enable()
        return {name: statistics.median(ts) / 1e9 for name, ts in times.items()}
