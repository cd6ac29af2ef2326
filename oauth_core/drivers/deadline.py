"""The call deadline: one library call (a send with all its retries) ends by a fixed instant.

The instant is a ``time.monotonic()`` value, held in :data:`CALL_DEADLINE` while a request is on
the wire. :class:`DeadlineBackend`, wrapped around httpcore's network backend, cuts every connect,
TLS handshake, write and read to the time left, so a server dripping its headers or body a byte at
a time is cut off at the deadline and not one read timeout after each byte.

The same two wrapper classes serve the sync and the async httpcore backends: each method cuts the
timeout and hands back what the wrapped one returns (a value, or an awaitable the caller awaits).
Only a newly opened stream must be wrapped after the fact, which for async means once awaited.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import ssl
import time
from typing import Any, Awaitable, Iterable, Optional, Type

import httpcore
import httpx

from .retry import RetryPolicy

__all__ = [
    "CALL_DEADLINE",
    "DeadlineBackend",
    "DeadlineStream",
    "attempt_timeout",
    "call_budget",
    "install_deadline_backend",
    "time_left",
]

# The time.monotonic() instant the current call must end by; set while a request is on the wire.
CALL_DEADLINE: contextvars.ContextVar[Optional[float]] = contextvars.ContextVar("oauth_core_deadline", default=None)


def call_budget(policy: RetryPolicy, timeout: Optional[float]) -> Optional[float]:
    """Seconds one call (a send with all its retries) may last: ``timeout x max_attempts``, capped.

    The policy's own backoff waits (without jitter) are added, so that a run of ordinary timeouts
    keeps all its attempts (timeout 3 s, default policy: 12 s + 0.5 + 1 + 2 = 15.5 s). The cap is
    ``policy.deadline``, but never less than one ``timeout`` (the first attempt keeps its full
    timeout). Without a timeout the budget is ``policy.deadline`` (None when that is 0).
    """
    return _budget(policy.max_attempts, policy.deadline, policy.initial_backoff, policy.max_backoff, timeout)


@functools.lru_cache(maxsize=64)  # computed on every send; a process has a few policies and timeouts
def _budget(
    attempts: int, deadline: float, initial_backoff: float, max_backoff: float, timeout: Optional[float]
) -> Optional[float]:
    if timeout is None:
        return deadline or None
    waits, wait = 0.0, initial_backoff
    for _ in range(attempts - 1):
        if wait <= 0 or max_backoff <= 0 or waits > deadline:
            break  # no backoff at all, or already past the cap
        waits += min(wait, max_backoff)
        wait *= 2
    budget, cap = timeout * attempts + waits, deadline if deadline > timeout else timeout
    return budget if budget < cap else cap


def attempt_timeout(timeout: httpx.Timeout) -> Optional[float]:
    """The longest of a client's timeouts (None when it has none): one attempt's share of the budget."""
    connect, read, write, pool = timeout.connect, timeout.read, timeout.write, timeout.pool
    if connect == read == write == pool:
        return connect  # the common case: one timeout for everything (or none)
    parts = [part for part in (connect, read, write, pool) if part is not None]
    return max(parts) if parts else None


def time_left(timeout: Optional[float], expired: Type[Exception]) -> Optional[float]:
    """``timeout`` cut to what is left of the current call's deadline; raises ``expired`` once it passed."""
    until = CALL_DEADLINE.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise expired("the call's deadline was reached")
    return left if timeout is None or left < timeout else timeout


def _wrap_opened(opened: Any) -> Any:
    """A stream just opened (or, from an async backend, the awaitable of one) in a DeadlineStream."""
    if inspect.isawaitable(opened):
        return _wrap_when_open(opened)
    return DeadlineStream(opened)


async def _wrap_when_open(opened: Awaitable[Any]) -> DeadlineStream:
    return DeadlineStream(await opened)


class DeadlineStream:
    """A socket stream (httpcore's sync or async one) whose reads, writes and TLS handshake end by the deadline."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream  # an httpcore.NetworkStream or AsyncNetworkStream

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> Any:
        return self.stream.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> Any:
        return self.stream.write(buffer, time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> Any:
        return self.stream.close()

    def aclose(self) -> Any:
        return self.stream.aclose()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> Any:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return _wrap_opened(self.stream.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class DeadlineBackend:
    """Wraps httpcore's network backend (sync or async) so that every stream it opens obeys the deadline."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend  # an httpcore.NetworkBackend or AsyncNetworkBackend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> Any:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return _wrap_opened(self.backend.connect_tcp(host, port, limit, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Optional[Iterable[Any]] = None
    ) -> Any:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return _wrap_opened(self.backend.connect_unix_socket(path, limit, socket_options))

    def sleep(self, seconds: float) -> Any:
        return self.backend.sleep(seconds)


def install_deadline_backend(transport: object) -> bool:
    """Wrap the network backend of an httpx transport's httpcore pool in a :class:`DeadlineBackend`.

    httpx has no public way to pass a network backend, so this reaches the transport's private
    ``_pool._network_backend``; when that layout is not found nothing changes and False is
    returned (the deadline is then enforced between reads only, not inside a dripped read).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, DeadlineBackend):
        return True
    if not isinstance(backend, (httpcore.NetworkBackend, httpcore.AsyncNetworkBackend)):
        return False
    pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return True
