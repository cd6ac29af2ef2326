"""The ``kill`` part: a process rewriting the token cache in a loop is SIGKILLed at a random moment.

Many times over; after each kill the file must be a whole cache (the old version or the new one),
never a torn one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple


@dataclasses.dataclass
class KillResult:
    runs: int = 0
    corrupt: int = 0
    missing: int = 0
    versions_seen: int = 0
    temp_files_left: int = 0
    seconds: float = 0.0
    problems: List[str] = dataclasses.field(default_factory=list)


def write_until_killed(path: str, ready: int) -> None:
    """The child: rewrite the cache forever, each version a different size, until killed."""
    from oauth_core.drivers.stores import FileTokenCache

    cache = FileTokenCache(path)
    os.write(ready, b"r")
    n = 0
    while True:
        n += 1
        with cache.transaction() as state:
            state["access_tokens"] = {
                f"key{i}": {"access_token": "x" * (1000 + 37 * (n % 50)), "n": n} for i in range(50)
            }


def _check_cache_file(path: Path) -> Tuple[bool, Optional[int]]:
    """Whole (one writer's version, all 50 entries of it) or not; and which version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["access_tokens"]
        versions = {entry["n"] for entry in entries.values()}
        lengths = {len(entry["access_token"]) for entry in entries.values()}
        return data["version"] == 1 and len(entries) == 50 and len(versions) == 1 and len(lengths) == 1, versions.pop()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False, None


def run_kills(runs: int, rng: random.Random) -> KillResult:
    result = KillResult()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokens.json"
        seen = set()
        for _ in range(runs):
            pid = _spawn_writer(str(path))
            time.sleep(rng.uniform(0.0, 0.04))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            result.runs += 1
            if not path.exists():
                result.missing += 1
                continue
            whole, version = _check_cache_file(path)
            if whole:
                seen.add(version)
            else:
                result.corrupt += 1
                result.problems.append(path.read_text(encoding="utf-8", errors="replace")[:80])
                path.unlink()  # start the next run from nothing, as a user would after deleting it
        result.versions_seen = len(seen)
        result.temp_files_left = len([p for p in Path(folder).iterdir() if p.name.endswith(".tmp")])
    result.seconds = time.perf_counter() - started
    return result


def _spawn_writer(path: str) -> int:
    """A writer process (forked where possible: fast), returned once it is writing."""
    read, write = os.pipe()
    if hasattr(os, "fork"):
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.close(read)
                write_until_killed(path, write)
            finally:
                os._exit(1)
        os.close(write)
    else:  # pragma: no cover - platforms without fork
        import subprocess

        code = (
            "import sys, os; from bench.reliability.kill import write_until_killed; "
            "write_until_killed(sys.argv[1], int(sys.argv[2]))"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, path, str(write)], pass_fds=(write,))
        os.close(write)
        pid = proc.pid
    os.read(read, 1)
    os.close(read)
    return pid
