"""One process of ``bench.fleet``: build a client, say ``ready``, wait for ``go END``, call it in a loop.

``python -m bench.fleet_worker KIND AUTHORITY TENANT CLIENT_ID SCOPE MIN_VALIDITY PAUSE [CACHE]``

``KIND`` is ``file`` or ``redis`` (oauth_core ``EntraClient.get_token(min_validity=...)`` on a
``FileTokenCache(CACHE)`` or ``RedisTokenCache(CACHE)`` the parent signed in to), or ``msal``
(one ``PublicClientApplication`` with its default in-memory cache: it signs in with the password
grant on ``go``, then ``acquire_token_silent``, which refreshes by itself; its user realm request
would drop the emulator's port, so the host is marked as one without user realm discovery). The emulator's CA
comes from ``SSL_CERT_FILE`` (httpx) and is given to MSAL as ``verify=``; the user's password
from ``FLEET_PASSWORD`` (MSAL only).

Each call is timed. The first call that returns a token other than the process's previous one is
the call that crossed an expiry (it made the refresh or waited for it): its latency is kept apart
from the hits. The answer, one JSON line on stdout: those latencies, the hits', the errors, and
every distinct access token's ``exp`` (the parent counts the expiries with them).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

__all__ = ["main", "msal_app"]


def _exp_of(token: str) -> float:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


def _oauth_core(
    kind: str, authority: str, tenant: str, client_id: str, scope: str, min_validity: float, where: str
) -> Tuple[Callable[[], None], Callable[[], str]]:
    from oauth_core import EntraClient, FileTokenCache

    if kind == "file":
        cache: Any = FileTokenCache(where)
    else:
        from oauth_core.drivers.redis_store import RedisTokenCache

        cache = RedisTokenCache(where)
    client = EntraClient(client_id, tenant, authority_host=authority, scopes=[scope], cache=cache)

    def start() -> None:
        return None

    def call() -> str:
        return client.get_token(min_validity=min_validity).access_token

    return start, call


def msal_app(authority: str, tenant: str, client_id: str, ca: str) -> Any:
    """A ``PublicClientApplication`` for the emulator at ``authority`` (https, trusting ``ca``)."""
    msal = importlib.import_module("msal")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they would override verify=
        os.environ.pop(name, None)
    app = msal.PublicClientApplication(
        client_id, authority=f"{authority}/{tenant}", instance_discovery=False, verify=ca
    )
    # MSAL's user realm request drops the authority's port (https://127.0.0.1/common/userrealm/...):
    # mark the host as one without user realm discovery, as MSAL itself does after a 404 there.
    type(app.authority)._domains_without_user_realm_discovery.add(app.authority.instance)
    return app


def _msal(authority: str, tenant: str, client_id: str, scope: str) -> Tuple[Callable[[], None], Callable[[], str]]:
    app = msal_app(authority, tenant, client_id, os.environ["SSL_CERT_FILE"])
    username = os.environ["FLEET_USERNAME"]
    held: Dict[str, Any] = {}

    def start() -> None:
        got = app.acquire_token_by_username_password(username, os.environ["FLEET_PASSWORD"], scopes=[scope])
        if "access_token" not in got:
            raise RuntimeError(f"MSAL sign-in failed: {got.get('error')}: {got.get('error_description')}")
        (held["account"],) = app.get_accounts(username=username)

    def call() -> str:
        got = app.acquire_token_silent([scope], account=held["account"])
        if not got or "access_token" not in got:
            raise RuntimeError(f"MSAL silent failed: {(got or {}).get('error')}")
        token: str = got["access_token"]
        return token

    return start, call


def main(argv: List[str]) -> int:
    kind, authority, tenant, client_id, scope, min_validity, pause = argv[:7]
    if kind == "msal":
        start, call = _msal(authority, tenant, client_id, scope)
    else:
        start, call = _oauth_core(kind, authority, tenant, client_id, scope, float(min_validity), argv[7])
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if not line or line[0] != "go":
        return 1
    end, wait = float(line[1]), float(pause)
    start()
    crossed: List[int] = []  # ns of the calls that crossed an expiry
    hits: List[int] = []
    errors: List[str] = []
    tokens: Dict[str, float] = {}
    previous = None
    calls = 0
    while time.time() < end:
        began = time.perf_counter_ns()
        try:
            token = call()
        except Exception as exc:  # counted and reported; the loop goes on, as a service would
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(wait or 0.001)
            continue
        took = time.perf_counter_ns() - began
        calls += 1
        if token != previous:
            if previous is not None:
                crossed.append(took)
            if token not in tokens:
                tokens[token] = _exp_of(token)
            previous = token
        else:
            hits.append(took)
        if wait:
            time.sleep(wait)
    hits.sort()
    answer = {
        "calls": calls,
        "crossed_ns": crossed,
        "hit_p50_ns": hits[len(hits) // 2] if hits else None,
        "hit_p99_ns": hits[min(len(hits) - 1, int(len(hits) * 0.99))] if hits else None,
        "hits": len(hits),
        "errors": errors[:20],
        "error_count": len(errors),
        "exps": sorted(tokens.values()),
    }
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
