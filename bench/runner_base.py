"""What every client runner shares: where to send the refresh, how a block is timed, cookies, CA trust.

``Endpoint`` (a loopback server or the in-process mock), ``Skip`` (this client cannot run here),
``Runner`` / ``AsyncRunner`` (``block(n)`` times ``n`` sequential refreshes), ``NoJar`` (a cookie
jar that stores nothing), ``trusting`` (a private CA while clients are built), the refresh form
every client sends and the check that its answer carries an access token.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import time
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, Iterator, List, Optional, Tuple

from .entra import CLIENT_ID, REFRESH_TOKEN, SCOPE, TENANT

__all__ = [
    "AsyncRunner",
    "Endpoint",
    "NoJar",
    "Runner",
    "Skip",
    "environment",
    "refresh_form",
    "require_access_token",
    "trusting",
]


class Skip(Exception):
    """This client cannot run here (a peer is not installed, or the transport does not apply)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the clients send their refresh: a loopback server, or nowhere (``mock``)."""

    origin: str
    ca: Optional[str] = None
    tenant: str = TENANT
    client_id: str = CLIENT_ID
    refresh_token: str = REFRESH_TOKEN
    scope: str = SCOPE
    mock: bool = False

    @property
    def tls(self) -> bool:
        return self.origin.startswith("https:")

    @property
    def authority(self) -> str:
        return f"{self.origin}/{self.tenant}"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"


class NoJar(http.cookiejar.CookieJar):
    """A cookie jar that stores nothing (what oauth_core's own httpx client uses)."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


@contextlib.contextmanager
def environment(name: str, value: Optional[str]) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block, as it was after (``None``: left alone)."""
    if value is None:
        yield
        return
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def trusting(ca: Optional[str]) -> ContextManager[None]:
    """Trust ``ca`` while clients are built: httpx reads ``SSL_CERT_FILE`` when it makes its SSL context.

    ``SSL_CERT_FILE`` is what oauth_core tells users to set for a private CA; httpx-based peers
    (bare httpx, authlib) read it the same way, so every httpx client gets the same trust.
    """
    return environment("SSL_CERT_FILE", ca)


def require_access_token(data: Dict[str, Any]) -> None:
    if "access_token" not in data:
        raise RuntimeError(f"no access token in the answer: {data.get('error')} {data.get('error_description')}")


class Runner:
    """A client ready to refresh; :meth:`block` times ``n`` refreshes one after another."""

    name = ""
    is_async = False

    def once(self) -> None:
        raise NotImplementedError

    def block(self, n: int) -> Tuple[List[int], float, float]:
        """Per-exchange wall times (ns), the block's process CPU (s) and its wall time (s)."""
        latencies: List[int] = []
        append, once, clock = latencies.append, self.once, time.perf_counter_ns
        cpu0, start = time.process_time(), clock()
        for _ in range(n):
            began = clock()
            once()
            append(clock() - began)
        return latencies, time.process_time() - cpu0, (clock() - start) / 1e9

    def close(self) -> None:
        return None


class AsyncRunner(Runner):
    """An async client with its own event loop; each block runs inside it."""

    is_async = True

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    async def aonce(self) -> None:
        raise NotImplementedError

    async def _block(self, n: int) -> Tuple[List[int], float, float]:
        latencies: List[int] = []
        append, aonce, clock = latencies.append, self.aonce, time.perf_counter_ns
        cpu0, start = time.process_time(), clock()
        for _ in range(n):
            began = clock()
            await aonce()
            append(clock() - began)
        return latencies, time.process_time() - cpu0, (clock() - start) / 1e9

    def block(self, n: int) -> Tuple[List[int], float, float]:
        return self.loop.run_until_complete(self._block(n))

    async def aclose(self) -> None:
        return None

    def close(self) -> None:
        self.loop.run_until_complete(self.aclose())
        self.loop.close()


def refresh_form(endpoint: Endpoint) -> Dict[str, str]:
    return {
        "client_id": endpoint.client_id,
        "grant_type": "refresh_token",
        "refresh_token": endpoint.refresh_token,
        "scope": f"{endpoint.scope} offline_access openid profile",
        "client_info": "1",
    }
