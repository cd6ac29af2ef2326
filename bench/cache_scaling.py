"""``python -m bench.cache_scaling``: a silent cache hit with 1, 100 and 1000 accounts cached, oauth_core vs MSAL.

Each cache holds N signed-in accounts of one client (an access token valid for an hour, a refresh
token, an id token and ``client_info`` each, shaped like Entra's responses: :mod:`bench.entra`),
and one of them is asked for its token again and again:

``memory``  ``EntraClient(cache=MemoryTokenCache()).get_token(account=...)``
``file``    the same with ``FileTokenCache(path)`` (a private temp dir)
``redis``   the same with ``oauth_core.drivers.redis_store.RedisTokenCache(url)``, against a
            ``redis-server`` started here on a free loopback port (skipped, with the reason
            printed, when the module, the ``redis`` package or ``redis-server`` is missing)
``msal``    ``PublicClientApplication.acquire_token_silent(scopes, account=...)`` with the same N
            accounts in its in-memory token cache (filled through MSAL's own ``TokenCache.add()``)

oauth_core's caches are filled in one ``TokenCache.transaction()`` through
:func:`oauth_core.core.cache_rules.store`, the function every grant records its response with.
The clients' HTTP layers refuse every request, so a figure is only ever a cache hit. Each
figure is the median of five timings (interleaved rounds: every column once per round) of many
calls each, in microseconds per call.

Prints a Markdown table and the ratios; writes ``OUT/cache_scaling.json`` and
``OUT/cache_scaling.md`` (``--out``, default ``bench/out``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .entra import ACCESS_TOKEN_CLAIMS, CLIENT_ID, RESOURCE, TENANT, b64url, discovery_body, mint_jwt
from .meta import run_meta, say, write_results
from .redis_server import optional_redis, redis_cache_class
from .stats import percentile, ratio

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ORIGIN = "https://login.microsoftonline.com"
SCOPE = f"{RESOURCE}/.default"
COLUMNS = ("memory", "file", "redis", "msal")
TITLES = {"memory": "memory cache hit", "file": "file cache hit", "redis": "Redis cache hit", "msal": "MSAL silent"}
PACKAGES = ("oauth-core", "httpx", "msal", "redis")
LIFETIME = 3600
# A file cache re-reads a file changed in the last moments (two writes may share an mtime tick):
# hits are timed once the fill's write has settled, as they are in a service that runs for a while.
SETTLE = 0.25


@dataclass(frozen=True)
class Sizes:
    accounts: Tuple[int, ...]
    timings: int  # the median of this many timings
    calls: int  # calls per timing
    warmup: int


FULL = Sizes(accounts=(1, 100, 1000), timings=5, calls=20000, warmup=1000)
QUICK = Sizes(accounts=(1, 100, 1000), timings=5, calls=300, warmup=50)


# -- the cached material ---------------------------------------------------------------------------


def _guid(i: int, kind: int) -> str:
    return f"{kind:08x}-{i >> 16 & 0xFFFF:04x}-4{i >> 4 & 0xFFF:03x}-8{i & 0xFFF:03x}-{i:012x}"


def user_of(i: int) -> Tuple[str, str]:
    """Account ``i``'s object id and username."""
    return _guid(i, 0xBBBB0000), f"user{i:05d}@contoso.onmicrosoft.com"


def token_response(i: int, now: int) -> Dict[str, Any]:
    """Entra's answer to account ``i``'s sign-in (§3.4 shape): tokens valid for an hour from ``now``."""
    oid, upn = user_of(i)
    access = {
        **ACCESS_TOKEN_CLAIMS,
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
        "oid": oid,
        "upn": upn,
        "unique_name": upn,
        "name": f"User {i}",
        "xms_tcdt": now - 86400 * 400,
    }
    id_claims = {
        "aud": CLIENT_ID,
        "iss": f"{ORIGIN}/{TENANT}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
        "name": f"User {i}",
        "oid": oid,
        "preferred_username": upn,
        "sub": b64url(f"sub-{i}".encode()),
        "tid": TENANT,
        "ver": "2.0",
    }
    kid = "J0jZvrdlukXQUCSKNgWi2fatGsI"
    return {
        "token_type": "Bearer",
        "scope": f"{RESOURCE}/user_impersonation",
        "expires_in": LIFETIME,
        "ext_expires_in": LIFETIME,
        "access_token": mint_jwt({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid}, access, f"access-{i}"),
        "refresh_token": "0.AXkA" + b64url(f"refresh-token-{i}".encode() * 20),
        "id_token": mint_jwt({"typ": "JWT", "alg": "RS256", "kid": kid}, id_claims, f"id-{i}"),
        "client_info": b64url(json.dumps({"uid": oid, "utid": TENANT}, separators=(",", ":")).encode()),
    }


def _refuse(request: Any) -> Any:
    raise RuntimeError(f"the benchmark expected a cache hit, and the client sent {request.method} {request.url}")


# -- oauth_core ----------------------------------------------------------------------------------


def _fill(cache: Any, responses: Sequence[Dict[str, Any]], now: float) -> None:
    """Record every response in one transaction, as the grants do (``cache_rules.store``)."""
    from oauth_core.core.cache_rules import CacheScope, store, tenant_key
    from oauth_core.core.claims import unverified_claims
    from oauth_core.core.messages import TokenSet

    where = CacheScope(ORIGIN, tenant_key(TENANT), CLIENT_ID)
    with cache.transaction() as state:
        for body in responses:
            tokens = TokenSet(
                access_token=body["access_token"],
                token_type=body["token_type"],
                scopes=(f"{RESOURCE}/user_impersonation",),
                expires_at=now + body["expires_in"],
                ext_expires_at=now + body["ext_expires_in"],
                refresh_token=body["refresh_token"],
                id_token=body["id_token"],
                claims=unverified_claims(body["access_token"]),
                raw=body,
            )
            store(state, where, tokens, (SCOPE,))


def oauth_core_hit(cache: Any, count: int, now: float) -> Tuple[Callable[[], Any], Callable[[], None]]:
    """The timed call (a hit for the middle account of ``count``) and how to close the client."""
    import httpx

    from oauth_core import EntraClient
    from oauth_core.core.cache_rules import accounts

    _fill(cache, [token_response(i, int(now)) for i in range(count)], now)
    if len(accounts(cache.snapshot())) != count:
        raise RuntimeError(f"the cache holds {len(accounts(cache.snapshot()))} accounts, not {count}")
    http = httpx.Client(transport=httpx.MockTransport(_refuse))
    client = EntraClient(CLIENT_ID, TENANT, authority_host=ORIGIN, scopes=[SCOPE], cache=cache, http_client=http)
    oid, _ = user_of(count // 2)
    account = f"{oid}.{TENANT}"
    expected = token_response(count // 2, int(now))["access_token"]

    def call() -> Any:
        return client.get_token(account=account)

    got = call()
    if got.access_token != expected:
        raise RuntimeError("oauth_core served another account's token")

    def close() -> None:
        client.close()
        http.close()

    return call, close


# -- MSAL ----------------------------------------------------------------------------------------


class _MsalDiscoveryOnly:
    """MSAL's duck-typed ``http_client``: the tenant's discovery document, and no token request."""

    def __init__(self) -> None:
        self.body = discovery_body(ORIGIN).decode()

    def get(self, url: str, **kwargs: Any) -> Any:
        return _Answer(self.body)

    def post(self, url: str, **kwargs: Any) -> Any:
        raise RuntimeError(f"the benchmark expected a cache hit, and MSAL posted to {url}")

    def close(self) -> None:
        return None


class _Answer:
    def __init__(self, text: str) -> None:
        self.status_code, self.text, self.headers = 200, text, {"Content-Type": "application/json"}

    def raise_for_status(self) -> None:
        return None


def msal_hit(count: int, now: float) -> Tuple[Callable[[], Any], Callable[[], None]]:
    msal = importlib.import_module("msal")
    app = msal.PublicClientApplication(
        CLIENT_ID, authority=f"{ORIGIN}/{TENANT}", instance_discovery=False, http_client=_MsalDiscoveryOnly()
    )
    endpoint = f"{ORIGIN}/{TENANT}/oauth2/v2.0/token"
    for i in range(count):
        body = token_response(i, int(now))
        event = {
            "client_id": CLIENT_ID,
            "scope": [SCOPE],
            "token_endpoint": endpoint,
            "response": body,
            "params": {},
            "data": {"scope": [SCOPE], "username": user_of(i)[1]},
            "grant_type": "password",
        }
        app.token_cache.add(event, now=int(now))
    if len(app.get_accounts()) != count:
        raise RuntimeError(f"MSAL holds {len(app.get_accounts())} accounts, not {count}")
    wanted = user_of(count // 2)[1]
    (account,) = app.get_accounts(username=wanted)  # what a caller keeps and passes on each call
    expected = token_response(count // 2, int(now))["access_token"]

    def call() -> Any:
        return app.acquire_token_silent([SCOPE], account=account)

    got = call()
    if not got or got.get("access_token") != expected or got.get("token_source") != "cache":
        raise RuntimeError(f"MSAL did not serve the cached token: {sorted(got or {})}")
    return call, lambda: None


# -- the run ------------------------------------------------------------------------------------


def _timing(call: Callable[[], Any], calls: int) -> float:
    """Microseconds per call over ``calls`` calls."""
    began = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - began) / calls / 1000.0


@contextlib.contextmanager
def _columns(count: int, redis_url: Optional[str], folder: Path) -> Iterator[Dict[str, Callable[[], Any]]]:
    """The timed call of every column, for ``count`` accounts (closed afterwards)."""
    from oauth_core import FileTokenCache, MemoryTokenCache

    now = time.time()
    calls: Dict[str, Callable[[], Any]] = {}
    closers: List[Callable[[], None]] = []
    try:
        for column in COLUMNS:
            if column == "memory":
                call, close = oauth_core_hit(MemoryTokenCache(), count, now)
            elif column == "file":
                call, close = oauth_core_hit(FileTokenCache(folder / f"tokens-{count}.json"), count, now)
            elif column == "redis":
                if redis_url is None:
                    continue
                import redis

                redis.Redis.from_url(redis_url).flushdb()
                call, close = oauth_core_hit(redis_cache_class()(redis_url), count, now)
            else:
                call, close = msal_hit(count, now)
            calls[column] = call
            closers.append(close)
        yield calls
    finally:
        for close in closers:
            close()


def run(sizes: Sizes, redis_url: Optional[str]) -> Dict[str, Any]:
    """Per account count, per column: the median and every timing (us per hit)."""
    results: Dict[str, Any] = {}
    folder = Path(tempfile.mkdtemp(prefix="oauth-core-bench-cache-"))
    try:
        for count in sizes.accounts:
            with _columns(count, redis_url, folder) as calls:
                time.sleep(SETTLE)
                for call in calls.values():
                    for _ in range(sizes.warmup):
                        call()
                timings: Dict[str, List[float]] = {name: [] for name in calls}
                for _ in range(sizes.timings):
                    for name, call in calls.items():  # interleaved: drift hits every column alike
                        gc.collect()
                        timings[name].append(_timing(call, sizes.calls))
            results[str(count)] = {
                name: {"median_us": round(percentile(values, 50), 2), "timings_us": [round(v, 2) for v in values]}
                for name, values in timings.items()
            }
            got = results[str(count)]
            say(f"   {count} accounts: " + ", ".join(f"{n} {v['median_us']} us" for n, v in got.items()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


# -- report --------------------------------------------------------------------------------------


def _us(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} us" if value >= 100 else f"{value:.1f} us"


def _x(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _median(data: Dict[str, Any], count: int, column: str) -> Optional[float]:
    got = data["results"].get(str(count), {}).get(column)
    return None if got is None else float(got["median_us"])


def table(data: Dict[str, Any]) -> List[str]:
    counts = data["sizes"]["accounts"]
    lines = [
        "| accounts | memory cache hit | file cache hit | Redis cache hit | MSAL acquire_token_silent "
        "| memory x MSAL | file x memory | Redis x memory |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count in counts:
        mem, file, red, ms = (_median(data, count, c) for c in COLUMNS)
        lines.append(
            f"| {count:,} | {_us(mem)} | {_us(file)} | {_us(red)} | {_us(ms)} | {_x(ratio(mem, ms))}"
            f" | {_x(ratio(file, mem))} | {_x(ratio(red, mem))} |"
        )
    first, last = counts[0], counts[-1]
    growth = ", ".join(
        f"{TITLES[c]} {_x(ratio(_median(data, last, c), _median(data, first, c)))}"
        for c in COLUMNS
        if _median(data, first, c) is not None
    )
    lines += ["", f"{last:,} vs {first:,} accounts: {growth}."]
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per timing: a smoke run in seconds")
    parser.add_argument(
        "--out", type=Path, default=HERE / "out", help="folder for JSON and Markdown (default bench/out)"
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    began = time.perf_counter()
    skipped: List[str] = []
    try:
        importlib.import_module("msal")
    except ImportError:
        say("msal is not installed (pip install '.[bench]')")
        return 1
    with optional_redis() as (redis_url, reason):
        if reason is not None:
            skipped.append(f"Redis column: {reason}")
            say(f"skipped: Redis column: {reason}")
        results = run(sizes, redis_url)
    data: Dict[str, Any] = {
        "meta": {
            **run_meta("bench.cache_scaling", list(sys.argv[1:] if argv is None else argv), PACKAGES),
            "seconds": round(time.perf_counter() - began, 1),
        },
        "sizes": asdict(sizes),
        "skipped": skipped,
        "results": results,
    }
    lines = table(data)
    print("\n".join(lines))
    written = write_results(args.out, "cache_scaling", data, "\n".join(lines))
    say(f"took {data['meta']['seconds']} s; wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
