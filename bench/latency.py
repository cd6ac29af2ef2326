"""Exchange latency: every client warmed up, then timed in interleaved blocks (A B C ... repeated).

Interleaving spreads drift (CPU frequency, noisy neighbours, the page cache) over all clients
equally. Each exchange is timed with ``time.perf_counter_ns``; CPU per exchange is the block's
``time.process_time`` (user + system of this process only; the server runs in another process)
divided by its exchanges. A full garbage collection runs between blocks, outside the timing.
"""

from __future__ import annotations

import gc
import sys
from typing import Dict, List, Sequence, Tuple

from .clients import Endpoint, Runner, Skip, make_runner
from .stats import Samples

__all__ = ["interleaved"]


def interleaved(
    names: Sequence[str], endpoint: Endpoint, *, warmup: int, blocks: int, per_block: int
) -> Tuple[Dict[str, Samples], List[str]]:
    """Time ``names`` against ``endpoint``; returns samples per client and the skip lines."""
    runners: List[Runner] = []
    skipped: List[str] = []
    for name in names:
        try:
            runners.append(make_runner(name, endpoint))
        except Skip as why:
            skipped.append(f"{name}: {why}")
    samples = {runner.name: Samples() for runner in runners}
    try:
        for runner in runners:
            runner.block(warmup)
        for index in range(blocks):
            for runner in runners:
                gc.collect()
                samples[runner.name].add_block(*runner.block(per_block))
            if sys.stderr.isatty():
                print(f"    block {index + 1}/{blocks}", end="\r", file=sys.stderr, flush=True)
    finally:
        for runner in runners:
            runner.close()
    return samples, skipped
