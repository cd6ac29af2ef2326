"""When to send a token request again, and how long to wait first (tenacity around the send).

Retried: connection failures, timeouts, dropped connections and HTTP 408/429/500/502/503/504.
Never retried: an OAuth error body below 500 (``invalid_grant``, ``interaction_required`` ...),
Entra's loop detection (AADSTS50196) at any status, TLS certificate failures, anything else.

The wait is the service's ``Retry-After`` (seconds, HTTP date, or ``retry-after-ms``) when it
gives one, else exponential backoff with jitter. A ``Retry-After`` longer than
``max_retry_after`` is not slept through: retrying stops and the error says how long to wait.
Attempts and a total deadline are both bounded.

A single-use request (an authorization code redemption) is sent again only after a failure that
proves it never reached the service (connection refused, connect or pool timeout); after a
408/429/5xx or a read failure the code may already be spent, so it is never resent.

The call deadline: one library call (a send with all its retries) ends by :func:`call_budget`
seconds after it starts: ``timeout x max_attempts`` plus the policy's backoff waits, capped at
``RetryPolicy.deadline`` (but never below one ``timeout``). It is held in :data:`CALL_DEADLINE`
while a request is on the wire; :class:`DeadlineBackend` (and its twin in :mod:`oauth_core.aio`),
wrapped around httpcore's sockets, cuts every connect, TLS handshake, write and read to the time
left, so a server dripping its headers or body a byte at a time is cut off at the deadline
(:class:`DeadlineReached`, never retried). No wait that would reach the deadline is started.

Environment proxies (``HTTP_PROXY``, ``ALL_PROXY``...) are mounted behind a router that sends
loopback destinations (127.0.0.0/8, ::1, localhost) direct: see :func:`proxy_mounts`.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import random
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Iterable, List, Optional, Type

import httpcore
import httpx
import tenacity

from .errors import ResponseFormatError, TransientError, TransportError
from .protocol import HttpResponse

__all__ = [
    "CALL_DEADLINE",
    "DeadlineBackend",
    "DeadlineReached",
    "DeadlineStream",
    "NetworkFailure",
    "RetryPolicy",
    "RetryableResponse",
    "call_budget",
    "env_proxy_urls",
    "install_deadline_backend",
    "is_retryable_response",
    "proxy_mounts",
    "retry_after_seconds",
    "time_left",
]

RETRY_STATUSES: FrozenSet[int] = frozenset({408, 429, 500, 502, 503, 504})
_LOOP_DETECTED = 50196


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures.

    Attributes:
        max_attempts: requests sent at most, the first included.
        deadline: seconds from the first attempt after which no new attempt starts.
        initial_backoff, max_backoff: exponential backoff bounds (seconds) when no Retry-After.
        max_retry_after: the longest Retry-After honoured; a longer one ends the retries.
        jitter: randomise backoff between 50% and 100% of its value.
        sleep / async_sleep: how to wait; clock: monotonic seconds for the deadline (injectable for tests).
    """

    max_attempts: int = 4
    deadline: float = 60.0
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    async_sleep: Optional[Callable[[float], Awaitable[None]]] = field(default=None, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.deadline < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("retry policy values must be positive (max_attempts >= 1)")

    def backoff(self, attempt: int) -> float:
        """The backoff before attempt ``attempt + 1`` when the service gave no Retry-After."""
        base = float(min(self.max_backoff, self.initial_backoff * 2.0 ** max(0, attempt - 1)))
        if not self.jitter:
            return base
        return float(base * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret


class RetryableResponse(Exception):
    """Internal: a response whose status says "try again"."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response
        self.retry_after = retry_after_seconds(response)


class NetworkFailure(Exception):
    """Internal: the request failed on the network (``kind`` names the failure, e.g. ReadTimeout).

    ``maybe_sent`` is True when the service may have received and acted on the request;
    ``not_sent`` is True only when the failure proves it did not (the connection was never made),
    the one case in which a single-use request may be sent again.
    """

    def __init__(self, kind: str, *, maybe_sent: bool, not_sent: bool = False) -> None:
        super().__init__(kind)
        self.kind = kind
        self.maybe_sent = maybe_sent
        self.not_sent = not_sent
        self.retry_after: Optional[float] = None


class DeadlineReached(NetworkFailure):
    """Internal: the call's deadline passed while a request was in flight (never retried)."""


# The time.monotonic() instant the current call must end by; set while a request is on the wire.
CALL_DEADLINE: contextvars.ContextVar[Optional[float]] = contextvars.ContextVar("oauth_core_deadline", default=None)


def call_budget(policy: RetryPolicy, timeout: Optional[float]) -> Optional[float]:
    """Seconds one call (a send with all its retries) may last: ``timeout x max_attempts``, capped.

    The policy's own backoff waits (without jitter) are added, so that a run of ordinary timeouts
    keeps all its attempts (timeout 3 s, default policy: 12 s + 0.5 + 1 + 2 = 15.5 s). The cap is
    ``policy.deadline``, but never less than one ``timeout`` (the first attempt keeps its full
    timeout). Without a timeout the budget is ``policy.deadline`` (None when that is 0).
    """
    if timeout is None:
        return policy.deadline or None
    waits, wait = 0.0, policy.initial_backoff
    for _ in range(policy.max_attempts - 1):
        if wait <= 0 or policy.max_backoff <= 0 or waits > policy.deadline:
            break  # no backoff at all, or already past the cap
        waits += min(wait, policy.max_backoff)
        wait *= 2
    budget, cap = timeout * policy.max_attempts + waits, policy.deadline if policy.deadline > timeout else timeout
    return budget if budget < cap else cap


def time_left(timeout: Optional[float], expired: Type[Exception]) -> Optional[float]:
    """``timeout`` cut to what is left of the current call's deadline; raises ``expired`` once it passed."""
    until = CALL_DEADLINE.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise expired("the call's deadline was reached")
    return left if timeout is None or left < timeout else timeout


class DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads, writes and TLS handshake all end by the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return self.stream.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self.stream.write(buffer, time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> httpcore.NetworkStream:
        tls = self.stream.start_tls(ssl_context, server_hostname, time_left(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Wraps httpcore's sync network backend so that every stream it opens obeys the call deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self.backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> httpcore.NetworkStream:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.backend.connect_tcp(host, port, limit, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Optional[Iterable[Any]] = None
    ) -> httpcore.NetworkStream:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.backend.connect_unix_socket(path, limit, socket_options))

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


def install_deadline_backend(transport: object, wrap: Type[Any]) -> bool:
    """Wrap the network backend of an httpx transport's httpcore pool in ``wrap`` (the deadline one).

    httpx has no public way to pass a network backend, so this reaches the transport's private
    ``_pool._network_backend``; when that layout is not found nothing changes and False is
    returned (the deadline is then enforced between reads only, not inside a dripped read).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, (httpcore.NetworkBackend, httpcore.AsyncNetworkBackend)):
        return False
    if not isinstance(backend, wrap):
        pool._network_backend = wrap(backend)  # type: ignore[union-attr]
    return True


def retry_after_seconds(response: HttpResponse, *, now: Optional[float] = None) -> Optional[float]:
    """The wait the service asked for: ``retry-after-ms``/``x-ms-retry-after-ms``, else ``Retry-After``."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = response.header(name)
        if value is not None:
            try:
                millis = float(value)
            except ValueError:
                continue
            if 0 <= millis < 1e12:
                return millis / 1000.0
    value = response.header("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if 0 <= seconds < 1e9 else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _error_body(response: HttpResponse) -> Optional[dict[str, Any]]:
    if not response.body.lstrip().startswith(b"{"):
        return None
    try:
        body = json.loads(response.body)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) and isinstance(body.get("error"), str) else None


def is_retryable_response(response: HttpResponse) -> bool:
    """True for 408/429/5xx, unless the body is an OAuth error below 500 or loop detection."""
    if response.status not in RETRY_STATUSES:
        return False
    body = _error_body(response)
    if body is None:
        return True
    codes = body.get("error_codes")
    if isinstance(codes, list) and _LOOP_DETECTED in codes:
        return False
    return response.status >= 500 or response.status == 429


# Errors after which the service may have acted on the request (its answer was lost).
_MAYBE_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)
_RETRYABLE_NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Errors that prove the request never left: no connection was made, so nothing was written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DEADLINE_SLACK = 0.005  # a timeout this close to the deadline is the deadline's


def network_failure(exc: httpx.HTTPError, *, until: Optional[float] = None) -> Exception:
    """Classify an httpx error: retryable :class:`NetworkFailure`, or a final :class:`TransportError`.

    A timeout at the call deadline ``until`` (a time.monotonic() instant) is a :class:`DeadlineReached`.
    """
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return TransportError(
            "TLS certificate verification failed: set SSL_CERT_FILE (or pass a CA bundle) for your proxy or emulator"
        )
    if isinstance(exc, _RETRYABLE_NETWORK):
        kind, sent, unsent = type(exc).__name__, isinstance(exc, _MAYBE_SENT), isinstance(exc, _NOT_SENT)
        if until is not None and isinstance(exc, httpx.TimeoutException):
            if time.monotonic() >= until - _DEADLINE_SLACK:
                return DeadlineReached(kind, maybe_sent=sent, not_sent=unsent)
        return NetworkFailure(kind, maybe_sent=sent, not_sent=unsent)
    if isinstance(exc, httpx.DecodingError):
        return ResponseFormatError("the response body could not be decoded (bad content encoding)")
    return TransportError(f"request failed: {type(exc).__name__}")


def transient_error(exc: BaseException, attempts: int, waits: List[float]) -> TransientError:
    """The error for retries spent on ``exc`` (a RetryableResponse or NetworkFailure)."""
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RetryableResponse):
        status: Optional[int] = exc.response.status
        what = f"HTTP {status}"
        if retry_after is not None:
            what += f" (Retry-After {retry_after:g}s)"
    else:
        status, what = None, str(exc)
    return TransientError(
        f"the identity service kept failing: {what} after {attempts} attempt(s), {sum(waits):.1f}s of waiting",
        attempts=attempts,
        waits=waits,
        status=status,
        retry_after=retry_after,
    )


def clip_timeout(timeout: httpx.Timeout, until: float) -> Optional[httpx.Timeout]:
    """``timeout`` with each part cut to the time left before ``until`` (None when none needs cutting).

    Raises:
        DeadlineReached: no time is left (nothing was sent).
    """
    left = until - time.monotonic()
    if left <= 0:
        raise DeadlineReached("PoolTimeout", maybe_sent=False, not_sent=True)
    connect, read, write, pool = timeout.connect, timeout.read, timeout.write, timeout.pool
    if connect == read == write == pool and connect is not None and connect <= left:
        return None  # the common case, kept cheap: one timeout for everything, and time for all of it
    parts = [left if part is None or part > left else part for part in (connect, read, write, pool)]
    if parts == [connect, read, write, pool]:
        return None
    return httpx.Timeout(connect=parts[0], read=parts[1], write=parts[2], pool=parts[3])


def attempt_timeout(timeout: httpx.Timeout) -> Optional[float]:
    """The longest of a client's timeouts (None when it has none): one attempt's share of the budget."""
    connect, read, write, pool = timeout.connect, timeout.read, timeout.write, timeout.pool
    if connect == read == write == pool:
        return connect  # the common case: one timeout for everything (or none)
    parts = [part for part in (connect, read, write, pool) if part is not None]
    return max(parts) if parts else None


def env_proxy_urls() -> Dict[str, str]:
    """The proxies httpx takes from the environment, by mount key (``http://``, ``https://``, ``all://``)."""
    found = urllib.request.getproxies()
    if "*" in (host.strip() for host in found.get("no", "").split(",")):
        return {}  # NO_PROXY=*: httpx uses no proxy at all
    urls = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            urls[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    return urls


def proxy_mounts(transport: Type[Any], bypass: Type[Any], backend: Type[Any]) -> Dict[str, Any]:
    """httpx ``mounts`` replacing its environment proxies by ones that loopback hosts bypass.

    ``transport`` is ``httpx.HTTPTransport`` or ``httpx.AsyncHTTPTransport``, ``bypass`` the
    matching loopback router and ``backend`` the matching deadline backend. httpx's own NO_PROXY
    mounts are left as they are; with no proxy in the environment there is nothing to mount.
    """
    urls = env_proxy_urls()
    if not urls:
        return {}
    verify = httpx.create_ssl_context()  # one CA load for all of them (SSL_CERT_FILE is honoured)
    direct = transport(verify=verify)
    install_deadline_backend(direct, backend)
    mounts: Dict[str, Any] = {}
    for key, url in urls.items():
        proxy = transport(verify=verify, proxy=url)
        install_deadline_backend(proxy, backend)
        mounts[key] = bypass(proxy, direct)
    return mounts


class _Wait(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return self.policy.backoff(retry_state.attempt_number)


class _Stop(tenacity.stop.stop_base):
    """Stop on attempts, on the deadline, or when the service asks for a wait above the cap.

    ``until`` is the call deadline (a time.monotonic() instant): no wait that would reach it.
    """

    def __init__(self, policy: RetryPolicy, started: Optional[float] = None, until: Optional[float] = None) -> None:
        self.policy = policy
        # One _Stop per call; the deadline counts from the first attempt's start.
        self.started = policy.clock() if started is None else started
        self.until = until

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        if retry_state.upcoming_sleep > self.policy.max_retry_after:
            return True
        if self.until is not None and time.monotonic() + retry_state.upcoming_sleep >= self.until:
            return True
        elapsed = self.policy.clock() - self.started
        return elapsed + retry_state.upcoming_sleep > self.policy.deadline


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (RetryableResponse, NetworkFailure)) and not isinstance(exc, DeadlineReached)


def _is_unsent(exc: BaseException) -> bool:
    """Retryable for a single-use request: a failure proving the request never left."""
    return isinstance(exc, NetworkFailure) and exc.not_sent and not isinstance(exc, DeadlineReached)


def _record(waits: List[float]) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        waits.append(retry_state.upcoming_sleep)

    return before_sleep


def sync_retrying(
    policy: RetryPolicy,
    waits: List[float],
    started: Optional[float] = None,
    *,
    until: Optional[float] = None,
    single_use: bool = False,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one call; the waits it sleeps are appended to ``waits``.

    ``until``: the call deadline (time.monotonic()); ``single_use``: retry only unsent failures.
    """
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_unsent if single_use else _is_transient),
        stop=_Stop(policy, started, until),
        wait=_Wait(policy),
        sleep=policy.sleep,
        before_sleep=_record(waits),
        reraise=True,
    )


def async_retrying(
    policy: RetryPolicy,
    waits: List[float],
    started: Optional[float] = None,
    *,
    until: Optional[float] = None,
    single_use: bool = False,
) -> tenacity.AsyncRetrying:
    """The ``AsyncRetrying`` twin of :func:`sync_retrying`."""
    kwargs: dict[str, Any] = {} if policy.async_sleep is None else {"sleep": policy.async_sleep}
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_is_unsent if single_use else _is_transient),
        stop=_Stop(policy, started, until),
        wait=_Wait(policy),
        before_sleep=_record(waits),
        reraise=True,
        **kwargs,
    )
