"""``python -m bench.fleet``: a fleet of processes sharing one user's token across its expiries, oauth_core vs MSAL.

N processes (``--processes``, default 16) each call for the same user's token in a loop
(``--pause`` seconds between calls, default 1 ms) for a few token expiries, against the emulator
(in this process, https with a throwaway CA) whose token endpoint answers after 50 ms (a
``delay`` fault on every token request). Three fleets, one after the other, in the same run:

``file``   oauth_core ``EntraClient.get_token`` on one shared ``FileTokenCache``
``redis``  oauth_core on ``RedisTokenCache(url)``, against a ``redis-server`` started here on a free
           loopback port (skipped, with the reason printed, when the module, the ``redis`` package
           or ``redis-server`` is missing)
``msal``   one ``PublicClientApplication`` per process with its default in-memory cache: each signs
           in (password grant) on the start signal, then ``acquire_token_silent``, which refreshes
           by itself (for ``<resource>/user_impersonation``, the scope Entra answers ``/.default``
           with: asked for ``/.default``, MSAL never finds its cached token, see :data:`MSAL_SCOPE`)

Expiries: the emulator issues tokens for ``300 + --period`` seconds and oauth_core asks for
``min_validity=300``, so a token needs replacing ``--period`` seconds after it was issued, for
every process at the same moment; MSAL treats a token with less than 5 minutes left as expired,
so its processes need a refresh at the same moment too. The oauth_core caches are signed in to
once, by this process, just before the start signal.

Reported per fleet: the token requests the emulator logged (its request log file, one JSON line
per request) per expiry (the goal: exactly one for the whole fleet), the latency of each process's
call that crossed an expiry (the one that made the refresh or waited for it: p50/p99), the hit
latency inside the loop (16 processes on this machine's cores) and errors. Then hit latency in one
quiet process (median of five timings): a memory cache hit, a file cache hit, a Redis L1 hit (the
in-process copy), a Redis L2 hit (a new ``RedisTokenCache`` whose first ``get_token`` reads Redis),
a Redis ``PING`` (one loopback round trip) and MSAL's silent hit.

Writes ``OUT/fleet.json`` and ``OUT/fleet.md`` (``--out``, default ``bench/out``). The workers run
in subprocesses (:mod:`bench.fleet_worker`), with this interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .fleet_worker import msal_app
from .meta import run_meta, say, write_results
from .redis_server import optional_redis
from .runner_base import trusting
from .stats import percentile, ratio

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"  # the emulator's public demo app
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")  # the emulator's test user
SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"  # Azure Databricks
# MSAL caches an access token under the scopes the response names, and the emulator (as Entra did
# in bench.entra's observed response) answers ``/.default`` with ``<resource>/user_impersonation``:
# acquire_token_silent never finds its token and refreshes on every call. MSAL asks for the
# scope it gets back.
MSAL_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/user_impersonation"
MIN_VALIDITY = 300.0
DELAY = 0.05
# A file cache re-reads a file changed in the last moments (two writes may share an mtime tick):
# the quiet hits are timed once the sign-in's write has settled.
SETTLE = 0.25
FLEETS = ("file", "redis", "msal")
TITLES = {
    "file": "oauth_core, FileTokenCache (one shared file)",
    "redis": "oauth_core, RedisTokenCache",
    "msal": "MSAL, in-memory cache per process",
}
PACKAGES = ("oauth-core", "httpx", "msal", "requests", "redis")
_CLEARED = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass(frozen=True)
class Sizes:
    processes: int
    period: float  # seconds a token is good for before every process needs a new one
    expiries: int  # expiries each fleet runs across
    pause: float  # seconds between one process's calls
    hit_calls: int  # calls per timing of the quiet hit figures
    l2_samples: int  # new RedisTokenCache instances timed for the L2 hit


FULL = Sizes(processes=16, period=6.0, expiries=5, pause=0.001, hit_calls=3000, l2_samples=300)
QUICK = Sizes(processes=16, period=3.0, expiries=2, pause=0.001, hit_calls=300, l2_samples=50)


def _environment(ca: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _CLEARED and not k.startswith("OAUTH_CORE_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update({"SSL_CERT_FILE": ca, "FLEET_USERNAME": ALICE[0], "FLEET_PASSWORD": ALICE[1]})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _log_lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _clusters(values: Sequence[float], gap: float) -> int:
    """How many groups ``values`` fall into when neighbours closer than ``gap`` share one."""
    ordered = sorted(values)
    return sum(1 for i, v in enumerate(ordered) if i == 0 or v - ordered[i - 1] >= gap)


def _us(ns: Optional[float]) -> Optional[float]:
    return None if ns is None else round(ns / 1000.0, 1)


# -- one fleet ------------------------------------------------------------------------------------


def run_fleet(kind: str, emu: Any, sizes: Sizes, log: Path, cache_spec: Optional[str]) -> Dict[str, Any]:
    """Start the workers, sign in (oauth_core), give the start signal, and read what happened."""
    from oauth_core import EntraClient, FileTokenCache

    ca = str(emu.ca_bundle)
    scope = MSAL_SCOPE if kind == "msal" else SCOPE
    args = [kind, emu.url, emu.tenant_id, PUBLIC, scope, str(MIN_VALIDITY), str(sizes.pause)]
    if cache_spec is not None:
        args.append(cache_spec)
    env = _environment(ca)
    children: List[subprocess.Popen[str]] = []
    try:
        for _ in range(sizes.processes):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.fleet_worker", *args],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            assert child.stdout is not None and child.stderr is not None
            if child.stdout.readline().strip() != "ready":
                child.wait()
                raise RuntimeError(f"a {kind} worker did not start: {child.stderr.read()[-800:]}")
        began = time.time()
        if kind != "msal":
            with trusting(ca):
                if kind == "file":
                    cache: Any = FileTokenCache(str(cache_spec))
                else:
                    from oauth_core.drivers.redis_store import RedisTokenCache

                    cache = RedisTokenCache(cache_spec)
                with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url, scopes=[SCOPE], cache=cache) as seed:
                    seed.acquire_by_password(*ALICE, scopes=[SCOPE])
        end = time.time() + sizes.expiries * (sizes.period + 0.15) + sizes.period / 2
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"go {end!r}\n")
            child.stdin.flush()
        answers = []
        for child in children:
            out, err = child.communicate(timeout=end - time.time() + 60)
            if child.returncode != 0:
                raise RuntimeError(f"a {kind} worker exited {child.returncode}: {err[-800:]}")
            answers.append(json.loads(out.strip().splitlines()[-1]))
        finished = time.time()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    requests = [r for r in _log_lines(log) if r["endpoint"] == "token" and began <= r["at"] <= finished]
    grants: Dict[str, int] = {}
    for r in requests:
        grants[str(r["grant_type"])] = grants.get(str(r["grant_type"]), 0) + 1
    exps = [e for a in answers for e in a["exps"]]
    expiries = max(0, _clusters(exps, sizes.period / 2) - 1)  # the first group: the tokens signed in with
    crossed = [ns for a in answers for ns in a["crossed_ns"]]
    hit_p50 = [a["hit_p50_ns"] for a in answers if a["hit_p50_ns"] is not None]
    hit_p99 = [a["hit_p99_ns"] for a in answers if a["hit_p99_ns"] is not None]
    refreshes = grants.get("refresh_token", 0)
    return {
        "processes": sizes.processes,
        "seconds": round(finished - began, 1),
        "calls": sum(a["calls"] for a in answers),
        "expiries": expiries,
        "token_requests": grants,
        "refreshes": refreshes,
        "refreshes_per_expiry": round(refreshes / expiries, 2) if expiries else None,
        "sign_ins": grants.get("password", 0),
        "crossing": {
            "n": len(crossed),
            "p50_us": _us(percentile(crossed, 50)) if crossed else None,
            "p99_us": _us(percentile(crossed, 99)) if crossed else None,
            "max_us": _us(max(crossed)) if crossed else None,
        },
        "loop_hit_p50_us": _us(percentile(hit_p50, 50)) if hit_p50 else None,
        "loop_hit_p99_us": _us(max(hit_p99)) if hit_p99 else None,
        "errors": sum(a["error_count"] for a in answers),
        "error_samples": sorted({e for a in answers for e in a["errors"]})[:5],
    }


# -- hits in one quiet process --------------------------------------------------------------------


def _median_timing(call: Callable[[], Any], calls: int, timings: int = 5) -> float:
    """The median over ``timings`` timings of ``calls`` calls, in microseconds per call."""
    for _ in range(max(10, calls // 10)):
        call()
    values = []
    for _ in range(timings):
        gc.collect()
        began = time.perf_counter_ns()
        for _ in range(calls):
            call()
        values.append((time.perf_counter_ns() - began) / calls / 1000.0)
    return round(percentile(values, 50), 2)


def run_hits(sizes: Sizes, redis_url: Optional[str], folder: Path) -> Dict[str, Any]:
    """Hit latency with nothing else running: memory, file, Redis L1 and L2, a Redis PING, MSAL."""
    from oauth_core import EntraClient, FileTokenCache, MemoryTokenCache
    from oauth_core.emulator import Emulator, EmulatorConfig

    results: Dict[str, Any] = {}
    config = replace(EmulatorConfig.default(), token_lifetime=3600)
    with Emulator(config, tls=True) as emu, trusting(str(emu.ca_bundle)), contextlib.ExitStack() as stack:

        def signed_in(cache: Any) -> Any:
            client = stack.enter_context(
                EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url, scopes=[SCOPE], cache=cache)
            )
            client.acquire_by_password(*ALICE, scopes=[SCOPE])
            time.sleep(SETTLE)
            return client

        memory = signed_in(MemoryTokenCache())
        results["memory_us"] = _median_timing(lambda: memory.get_token(), sizes.hit_calls)
        file = signed_in(FileTokenCache(folder / "hits.json"))
        results["file_us"] = _median_timing(lambda: file.get_token(), sizes.hit_calls)
        if redis_url is not None:
            import redis

            from oauth_core.drivers.redis_store import RedisTokenCache

            shared = redis.Redis.from_url(redis_url)
            shared.flushdb()
            l1 = signed_in(RedisTokenCache(client=shared))
            results["redis_l1_us"] = _median_timing(lambda: l1.get_token(), sizes.hit_calls)
            results["redis_ping_us"] = _median_timing(shared.ping, sizes.hit_calls)
            fresh = [
                stack.enter_context(
                    EntraClient(
                        PUBLIC,
                        emu.tenant_id,
                        authority_host=emu.url,
                        scopes=[SCOPE],
                        cache=RedisTokenCache(client=shared),
                    )
                )
                for _ in range(sizes.l2_samples)
            ]
            expected = l1.get_token().access_token
            samples = []
            for client in fresh:  # each one's first get_token: L1 empty, one read of Redis
                began = time.perf_counter_ns()
                got = client.get_token()
                samples.append(time.perf_counter_ns() - began)
                if got.access_token != expected:
                    raise RuntimeError("an L2 hit served another token")
            results["redis_l2_us"] = round(percentile(samples, 50) / 1000.0, 2)
            results["redis_l2_p90_us"] = round(percentile(samples, 90) / 1000.0, 2)
            shared.close()
        app = msal_app(emu.url, emu.tenant_id, PUBLIC, str(emu.ca_bundle))
        app.acquire_token_by_username_password(*ALICE, scopes=[MSAL_SCOPE])
        (account,) = app.get_accounts(username=ALICE[0])
        silent = lambda: app.acquire_token_silent([MSAL_SCOPE], account=account)  # noqa: E731
        results["msal_us"] = _median_timing(silent, sizes.hit_calls)
        if emu.count("token") != 3 + (1 if redis_url else 0):
            raise RuntimeError(f"a hit went to the token endpoint ({emu.count('token')} token requests)")
    return results


# -- the run and the report -----------------------------------------------------------------------


def run(sizes: Sizes, redis_url: Optional[str]) -> Dict[str, Any]:
    from oauth_core.emulator import Emulator, EmulatorConfig, Fault

    folder = Path(tempfile.mkdtemp(prefix="oauth-core-bench-fleet-"))
    log = folder / "requests.jsonl"
    fleets: Dict[str, Any] = {}
    config = replace(EmulatorConfig.default(), token_lifetime=int(300 + sizes.period))
    try:
        with Emulator(config, tls=True, request_log=str(log), workers=16) as emu:
            for kind in FLEETS:
                spec: Optional[str] = None
                if kind == "redis":
                    if redis_url is None:
                        continue
                    import redis

                    with contextlib.closing(redis.Redis.from_url(redis_url)) as admin:
                        admin.flushdb()
                    spec = redis_url
                elif kind == "file":
                    spec = str(folder / "tokens.json")
                emu.clear_faults()
                emu.inject("token", Fault("delay", seconds=DELAY), times=100_000)
                say(f"== fleet {kind}: {sizes.processes} processes, {sizes.expiries} expiries")
                fleets[kind] = got = run_fleet(kind, emu, sizes, log, spec)
                say(
                    f"   {got['refreshes']} refreshes for {got['expiries']} expiries "
                    f"({got['refreshes_per_expiry']} per expiry); crossing p50 {got['crossing']['p50_us']} us, "
                    f"p99 {got['crossing']['p99_us']} us; {got['errors']} errors; {got['seconds']} s"
                )
        say("== hits in one quiet process")
        hits = run_hits(sizes, redis_url, folder)
        say("   " + ", ".join(f"{k} {v}" for k, v in hits.items()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"fleets": fleets, "hits": hits}


def _num(value: Optional[float], unit: str = " us") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}"


def _x(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def tables(data: Dict[str, Any]) -> List[str]:
    sizes = data["sizes"]
    lines = [
        f"Fleet: {sizes['processes']} processes, a token every {sizes['period']:g} s, 50 ms token endpoint:",
        "",
        "| fleet | expiries | refresh requests | per expiry | sign-ins | expiry-crossing call p50 | p99 "
        "| hit p50 in the loop | calls | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in FLEETS:
        got = data["results"]["fleets"].get(kind)
        if got is None:
            continue
        cross = got["crossing"]
        lines.append(
            f"| {TITLES[kind]} | {got['expiries']} | {got['refreshes']} | {got['refreshes_per_expiry']} "
            f"| {got['sign_ins']} | {_num(cross['p50_us'])} | {_num(cross['p99_us'])} "
            f"| {_num(got['loop_hit_p50_us'])} | {got['calls']:,} | {got['errors']} |"
        )
    hits = data["results"]["hits"]
    lines += [
        "",
        "Hits in one quiet process (median of five timings; the L2 hit is the median of first calls):",
        "",
        "| memory hit | file hit | Redis L1 hit | Redis L2 hit | Redis PING | MSAL silent "
        "| L1 x memory | file x memory | L2 minus PING | memory x MSAL |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    l2, ping = hits.get("redis_l2_us"), hits.get("redis_ping_us")
    lines.append(
        f"| {_num(hits['memory_us'])} | {_num(hits['file_us'])} | {_num(hits.get('redis_l1_us'))} | {_num(l2)} "
        f"| {_num(ping)} | {_num(hits['msal_us'])} | {_x(ratio(hits.get('redis_l1_us'), hits['memory_us']))} "
        f"| {_x(ratio(hits['file_us'], hits['memory_us']))} "
        f"| {_num(None if l2 is None or ping is None else round(l2 - ping, 1))} "
        f"| {_x(ratio(hits['memory_us'], hits['msal_us']))} |"
    )
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 expiries 3 s apart, fewer hit calls (under a minute)")
    parser.add_argument("--processes", type=int, default=None, help="processes per fleet (default 16)")
    parser.add_argument("--period", type=float, default=None, help="seconds between expiries (default 6, quick 3)")
    parser.add_argument("--expiries", type=int, default=None, help="expiries per fleet (default 5, quick 2)")
    parser.add_argument("--pause", type=float, default=None, help="seconds between one process's calls (0.001)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "out", help="folder for JSON and Markdown (default bench/out)"
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    changes = {
        k: getattr(args, k) for k in ("processes", "period", "expiries", "pause") if getattr(args, k) is not None
    }
    sizes = replace(sizes, **changes)
    if sizes.processes < 1 or sizes.expiries < 1 or not sizes.period >= 1 or sizes.pause < 0:
        say("--processes and --expiries must be at least 1, --period at least 1 s, --pause not negative")
        return 2
    try:
        importlib.import_module("msal")
    except ImportError:
        say("msal is not installed (pip install '.[bench]')")
        return 1
    began = time.perf_counter()
    skipped: List[str] = []
    with optional_redis() as (redis_url, reason):
        if reason is not None:
            skipped.append(f"Redis fleet and hits: {reason}")
            say(f"skipped: Redis fleet and hits: {reason}")
        results = run(sizes, redis_url)
    data: Dict[str, Any] = {
        "meta": {
            **run_meta("bench.fleet", list(sys.argv[1:] if argv is None else argv), PACKAGES),
            "seconds": round(time.perf_counter() - began, 1),
        },
        "sizes": asdict(sizes),
        "skipped": skipped,
        "results": results,
    }
    lines = tables(data)
    print("\n".join(lines))
    written = write_results(args.out, "fleet", data, "\n".join(lines))
    say(f"took {data['meta']['seconds']} s; wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
