"""Cold start of whole processes: wall time from spawn to exit, and peak RSS, per command.

Each command runs once untimed (it must exit 0, and its bytecode caches get written), then the
commands run interleaved ``repeats`` times. Wall time is ``perf_counter_ns`` around fork, exec
and reap; peak RSS is the child's own ``ru_maxrss`` from ``os.wait4`` (see ``_REAPER``). The children get this
process's environment minus the variables that change how Python starts (bytecode writing,
import tracing, dev mode), so they start the way an installed command does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .stats import percentile

__all__ = ["commands", "measure"]

_STARTUP_VARIABLES = (
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONTRACEMALLOC",
    "PYTHONDEVMODE",
    "PYTHONMALLOC",
    "PYTHONVERBOSE",
    "PYTHONINSPECT",
    "PYTHONWARNINGS",
)


def _oauth_core_command() -> List[str]:
    """The installed ``oauth-core`` script next to this interpreter, else ``python -m oauth_core``."""
    folder = Path(sys.executable).parent
    for candidate in (folder / "oauth-core", folder / "oauth-core.exe"):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("oauth-core")
    if found and Path(found).resolve().parent == folder.resolve():
        return [found]
    return [sys.executable, "-m", "oauth_core"]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def commands(token: str) -> Tuple[Dict[str, List[str]], List[str]]:
    """The commands to time (label -> argv) and skip lines for those whose peer is missing."""
    py = sys.executable
    script = _oauth_core_command()
    found: Dict[str, List[str]] = {
        "python -c pass": [py, "-c", "pass"],
        "oauth-core --version": [*script, "--version"],
        "oauth-core decode TOKEN": [*script, "decode", token],
        "import oauth_core": [py, "-c", "import oauth_core"],
        "import httpx, jwt, tenacity": [py, "-c", "import httpx, jwt, tenacity"],
        "oauth-core token (a cache hit)": [*script, "token", "--tenant", HIT_TENANT, "--client-id", HIT_CLIENT],
    }
    skipped: List[str] = []
    if _has("msal"):
        found["import msal"] = [py, "-c", "import msal"]
    else:
        skipped.append("import msal: msal is not installed (pip install '.[bench]')")
    return found, skipped


HIT_TENANT = "a1bc2d34-5e67-8f89-01ab-c2345d6c78de"
HIT_CLIENT = "12a34b56-789c-0d12-e3fa-b456789c0123"


def _cache_with_a_fresh_token(home: Path, token: str) -> None:
    """A private state folder whose 0600 cache holds ``token``, valid for an hour, for ``token`` to print."""
    import time

    from oauth_core import EntraClient, FileTokenCache, TokenSet
    from oauth_core.core.cache_rules import store
    from oauth_core.core.claims import unverified_claims

    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cache = FileTokenCache(home / "tokens.json")
    with EntraClient(HIT_CLIENT, HIT_TENANT, cache=cache) as client:
        claims = dict(unverified_claims(token), tid=HIT_TENANT, oid="bbbbbbbb-0000-0000-0000-000000000002")
        tokens = TokenSet(token, "Bearer", client.scopes, time.time() + 3600, refresh_token="0.AXkA-r", claims=claims)
        cache.save(lambda state: store(state, client.cache_scope, tokens, client.scopes))


def _environment() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _STARTUP_VARIABLES}


# Forks and execs the command, then reports wall ns, the child's ru_maxrss and its exit code. The
# fork happens in this small interpreter (python -S) rather than in the benchmark: Linux records the
# old address space's high-water mark at exec, so spawning from the big benchmark process would
# report the benchmark's RSS for every small command.
_REAPER = """
import os, sys, time
argv = sys.argv[1:]
began = time.perf_counter_ns()
pid = os.fork()
if pid == 0:
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0); os.dup2(null, 1); os.dup2(null, 2)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter_ns() - began, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def _run(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, Optional[float], int]:
    """Wall seconds, peak RSS in MiB (None without ``os.fork``/``os.wait4``) and the exit code."""
    if hasattr(os, "fork") and hasattr(os, "wait4"):
        out = subprocess.run([sys.executable, "-S", "-c", _REAPER, *argv], capture_output=True, text=True, env=env)
        wall_ns, maxrss, code = (int(x) for x in out.stdout.split())
        scale = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KiB on Linux
        return wall_ns / 1e9, maxrss * scale / 2**20, code
    began = time.perf_counter_ns()
    code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env).returncode
    return (time.perf_counter_ns() - began) / 1e9, None, code


def measure(token: str, *, repeats: int) -> Tuple[Dict[str, Dict[str, object]], List[str]]:
    """Time each command ``repeats`` times, interleaved, after one untimed run that must succeed."""
    found, skipped = commands(token)
    env = _environment()
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="oauth-core-coldstart-")) / "home"
    _cache_with_a_fresh_token(home, token)
    env["OAUTH_CORE_HOME"] = str(home)
    runnable: Dict[str, List[str]] = {}
    for label, argv in found.items():
        check = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if check.returncode != 0:
            skipped.append(f"{label}: exited {check.returncode}: {check.stderr.strip()[:200]}")
        else:
            runnable[label] = argv
    walls: Dict[str, List[float]] = {label: [] for label in runnable}
    rss: Dict[str, List[float]] = {label: [] for label in runnable}
    for _ in range(repeats):
        for label, argv in runnable.items():
            wall, peak, code = _run(argv, env)
            if code != 0:
                raise RuntimeError(f"{label} exited {code} during the timed runs")
            walls[label].append(wall * 1000.0)
            if peak is not None:
                rss[label].append(peak)
    results: Dict[str, Dict[str, object]] = {}
    for label in runnable:
        results[label] = {
            "argv": [Path(runnable[label][0]).name, *("TOKEN" if a == token else a for a in runnable[label][1:])],
            "n": len(walls[label]),
            "wall_p50_ms": round(percentile(walls[label], 50), 1),
            "wall_p10_ms": round(percentile(walls[label], 10), 1),
            "wall_p90_ms": round(percentile(walls[label], 90), 1),
            "rss_p50_mib": round(percentile(rss[label], 50), 1) if rss[label] else None,
            "walls_ms": [round(w, 2) for w in walls[label]],
        }
    return results, skipped
