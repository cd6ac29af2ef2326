"""Where a refresh's client CPU goes: oauth_core's refresh beside a bare httpx POST, under cProfile.

``python -m bench.profile_refresh [--calls N]`` runs both over httpx's mock transport (no socket,
the same pre-rendered Entra response), profiles them, and prints the time per call grouped by
what does it: httpx itself, building the request, the send and retry wrapper, parsing the
response (claims included), the cache save, and the flow plumbing. ``--loopback`` sends over
loopback http to the pre-rendered server instead (its own process), oauth_core on its lean
transport and on httpx's beside bare httpx. The profiler inflates every figure alike; the
shares are what to read. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import httpx

from .entra import material
from .runner_base import NoJar, environment

__all__ = ["main"]

# (group, path fragments): the first match names where a function's own time goes.
GROUPS: List[Tuple[str, Tuple[str, ...]]] = [
    ("lean transport and HTTP/1.1 parser", ("drivers/lean", "drivers/http1")),
    ("request building", ("core/grants.py", "core/messages.py:encode", "core/effects.py", "core/scopes.py")),
    ("send and retry wrapper", ("drivers/transport.py", "drivers/retry.py", "drivers/deadline.py", "drivers/throttle")),
    ("response parsing", ("core/messages.py", "core/claims.py", "core/redaction.py")),
    ("cache save", ("core/cache_rules.py", "core/cache_keys.py", "core/cache_index.py", "drivers/stores.py")),
    ("flow plumbing", ("core/flows.py", "core/silent.py", "drivers/sync.py", "drivers/common.py")),
    ("httpx", ("httpx/",)),
    ("httpcore, h11, anyio", ("httpcore/", "h11/", "anyio/", "sniffio/")),
    ("json (stdlib)", ("json/",)),
    ("uuid, urllib, other stdlib", ("python3.", "lib/python")),
]
TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default offline_access openid profile"


_MATERIAL = material()


def _reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=_MATERIAL.body, headers=_MATERIAL.headers)


def _oauth_core(origin: Optional[str] = None, transport: Optional[str] = None) -> Callable[[], object]:
    from oauth_core import EntraClient, MemoryTokenCache

    if origin is None:  # configured as oauth_core's own clients are (no cookie jar: Entra sets three)
        http = httpx.Client(transport=httpx.MockTransport(_reply), cookies=NoJar(), follow_redirects=False)
        client = EntraClient(
            CLIENT, TENANT, authority_host="http://127.0.0.1:1", cache=MemoryTokenCache(), http_client=http
        )
    else:
        with environment("OAUTH_CORE_TRANSPORT", transport or "lean"):
            client = EntraClient(CLIENT, TENANT, authority_host=origin, cache=MemoryTokenCache())
    return lambda: client.refresh("0.AXkA-refresh")


def _httpx(origin: Optional[str] = None) -> Callable[[], object]:
    mock = {"transport": httpx.MockTransport(_reply)} if origin is None else {}
    http = httpx.Client(cookies=NoJar(), **mock)
    url = f"{origin or 'http://127.0.0.1:1'}/{TENANT}/oauth2/v2.0/token"
    form = {"client_id": CLIENT, "grant_type": "refresh_token", "refresh_token": "0.AXkA-refresh", "scope": SCOPE}

    def send() -> object:
        return http.post(url, data=form).json()

    return send


def _group(path: str) -> str:
    if path.startswith("~"):
        return "builtins (C: str, bytes, dict methods, socket waits)"
    for name, fragments in GROUPS:
        if any(fragment in path for fragment in fragments):
            return name
    return "other"


def profile(call: Callable[[], object], calls: int) -> Tuple[float, Dict[str, float]]:
    """(wall microseconds per call without the profiler, own time per group in microseconds per call)."""
    for _ in range(200):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    plain = (time.perf_counter() - started) / calls * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    groups: Dict[str, float] = {}
    for (path, _line, name), row in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        where = f"{path}:{name}" if "messages.py" in path and name.startswith("encode") else path
        group = _group(where.replace("\\", "/"))
        groups[group] = groups.get(group, 0.0) + row[2]
    return plain, {k: v / calls * 1e6 for k, v in groups.items()}


def _table(title: str, columns: Dict[str, Tuple[float, Dict[str, float]]]) -> None:
    names = list(columns)
    print(f"{title}\n")
    print("| | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    print("| wall, unprofiled | " + " | ".join(f"{columns[n][0]:.1f} us" for n in names) + " |")
    for group in [g for g, _ in GROUPS] + ["builtins (C: str, bytes, dict methods, socket waits)", "other"]:
        if any(group in columns[n][1] for n in names):
            print(f"| {group} | " + " | ".join(f"{columns[n][1].get(group, 0.0):.1f} us" for n in names) + " |")
    totals = " | ".join(f"{sum(columns[n][1].values()):.1f} us" for n in names)
    print(f"| **total, profiled** | {totals} |")
    bare = columns[names[-1]][0]
    print("\nunprofiled: " + ", ".join(f"{n} {columns[n][0] / bare:.2f}x" for n in names[:-1]) + f" {names[-1]}")


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_refresh", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls profiled per client (default 3000)")
    parser.add_argument("--loopback", action="store_true", help="over loopback http to the pre-rendered server")
    args = parser.parse_args(argv)
    if not args.loopback:
        columns = {"oauth_core": profile(_oauth_core(), args.calls), "bare httpx": profile(_httpx(), args.calls)}
        _table(f"refresh over httpx's mock transport, {args.calls} calls each (profiled figures are inflated)", columns)
        return 0
    from .server import ServerProcess

    with ServerProcess("fast") as server:
        origin = server.info["http"]
        columns = {
            "oauth_core": profile(_oauth_core(origin), args.calls),
            "oauth_core, httpx's transport": profile(_oauth_core(origin, "httpx"), args.calls),
            "bare httpx": profile(_httpx(origin), args.calls),
        }
    _table(f"refresh over loopback http, {args.calls} calls each (profiled figures are inflated)", columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
