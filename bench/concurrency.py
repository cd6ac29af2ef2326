"""Many refreshes at once: sequential, a thread pool over one shared client, and ``asyncio.gather``.

Every mode redeems the same refresh token ``n`` times with one client object (as an application
would share it) after a short sequential warm-up, a few times over, and reports the median wall
time, throughput and CPU.
With ``delay`` the server holds each token request that long before answering (the emulator's
``Fault("delay")``).

The ideal time of a mode that keeps ``c`` requests in flight, given its time ``T`` for the same
``n`` refreshes without the delay ``D``: ``max(T + D, ceil(n / c) * (D + T / n))``. The server's
own work (one process) cannot overlap with itself and starts only after the first delay; each
in-flight slot waits its delays one after another. Sequential: ``T + n * D``; all at once:
``T + D``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from .clients import AsyncRunner, Endpoint, Runner, Skip, make_runner

__all__ = ["Mode", "add_ideal", "modes", "run_modes"]


@dataclass(frozen=True)
class Mode:
    """A way of running ``n`` refreshes: which client, and how many in flight (0 = all of them)."""

    label: str
    client: str
    in_flight: int  # 1 sequential; k threads; 0 asyncio.gather of all

    def concurrency(self, n: int) -> int:
        return n if self.in_flight == 0 else self.in_flight


def modes(threads: int) -> List[Mode]:
    return [
        Mode("oauth_core sync, sequential", "oauth_core", 1),
        Mode(f"oauth_core sync, {threads} threads", "oauth_core", threads),
        Mode("oauth_core async, gather", "oauth_core-async", 0),
        Mode("oauth_core async, gather, max_in_flight=8", "oauth_core-async-8", 0),
        Mode("httpx.AsyncClient, gather (reference)", "httpx-async", 0),
        Mode(f"MSAL, {threads} threads", "msal", threads),
    ]


def _timed(action: Callable[[], Any]) -> Tuple[float, float]:
    cpu0, began = time.process_time(), time.perf_counter()
    action()
    return time.perf_counter() - began, time.process_time() - cpu0


def _run(mode: Mode, runner: Runner, n: int) -> Tuple[float, float]:
    if mode.in_flight == 0:
        if not isinstance(runner, AsyncRunner):
            raise TypeError(f"{mode.label}: gather needs an async client")
        target = runner

        async def gather() -> None:
            await asyncio.gather(*(target.aonce() for _ in range(n)))

        return _timed(lambda: runner.loop.run_until_complete(gather()))
    if mode.in_flight == 1:

        def sequential() -> None:
            for _ in range(n):
                runner.once()

        return _timed(sequential)
    with ThreadPoolExecutor(max_workers=mode.in_flight) as pool:
        list(pool.map(lambda _: None, range(mode.in_flight * 2)))  # start the threads before timing

        def threaded() -> None:
            for _ in pool.map(lambda _: runner.once(), range(n)):
                pass

        return _timed(threaded)


def run_modes(
    endpoint: Endpoint,
    chosen: List[Mode],
    n: int,
    *,
    repeats: int = 1,
    delay: float = 0.0,
    inject: Optional[Callable[[str], Any]] = None,
    connections: Optional[Callable[[], int]] = None,
) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
    """Run each mode ``repeats`` times and keep the median; ``inject`` queues the server's delays,
    ``connections`` counts the connections the server accepted (reported as new ones per round)."""
    results: Dict[str, Dict[str, Any]] = {}
    skipped: List[str] = []
    for mode in chosen:
        try:
            runner = make_runner(mode.client, endpoint)
        except Skip as why:
            skipped.append(f"{mode.label}: {why}")
            continue
        walls: List[float] = []
        cpus: List[float] = []
        opened: List[int] = []
        try:
            runner.block(3)  # discovery (MSAL), a first connection, imports
            for _ in range(repeats):
                if delay and inject is not None:
                    inject(f"delay {delay} {n}")
                before = connections() if connections else 0
                wall, cpu = _run(mode, runner, n)
                if connections:
                    opened.append(connections() - before)
                if delay and inject is not None:
                    inject("clear")
                walls.append(wall)
                cpus.append(cpu)
        finally:
            runner.close()
        wall = statistics.median(walls)
        results[mode.label] = {
            "client": mode.client,
            "in_flight": mode.concurrency(n),
            "n": n,
            "delay_s": delay,
            "wall_s": round(wall, 4),
            "per_s": round(n / wall, 1),
            "cpu_us_per_refresh": round(statistics.median(cpus) / n * 1e6, 1),
            "walls_s": [round(w, 4) for w in walls],
            "new_connections": statistics.median(opened) if opened else None,
        }
    return results, skipped


def add_ideal(delayed: Dict[str, Dict[str, Any]], undelayed: Dict[str, Dict[str, Any]], delay: float) -> None:
    """Annotate delayed rows with their ideal time (see the module docstring) and the ratio to it."""
    for label, row in delayed.items():
        base = undelayed.get(label)
        if base is None:
            continue
        n, work = row["n"], base["wall_s"]
        ideal = max(work + delay, math.ceil(n / row["in_flight"]) * (delay + work / n))
        row["ideal_s"] = round(ideal, 4)
        row["vs_ideal"] = round(row["wall_s"] / ideal, 3)
