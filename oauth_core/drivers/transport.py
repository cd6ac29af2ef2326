"""The one transport both drivers send through: from an :class:`HttpRequest` to an :class:`HttpResponse`.

Written once here: building the httpx request (no redirects, no ambient auth, timeouts cut to
the call deadline), the size-limited body read (:class:`BodyLimit`), the classification of httpx
errors (:func:`network_failure`: a retryable :class:`NetworkFailure`, else a final
``TransportError`` / ``ResponseFormatError``), the retryable-status check, the bookkeeping of a
call and its retries (:class:`Call`, which also words the error that ends one), and the
factories of the clients' own httpx clients (loopback skips environment proxies, sockets obey
the call deadline).

Written twice, because one awaits and the other does not, are only the thin loops: the send and
body iteration (:func:`fetch` / :func:`async_fetch`), and tenacity's ``Retrying`` /
``AsyncRetrying`` loop (:func:`send_with_retry` / :func:`async_send_with_retry`). The async
names carry an ``async_`` prefix here; :mod:`oauth_core.drivers.aio` keeps its own historic names
for them (``send_once``, ``send_with_retry``).

A single-use request (an authorization code) is resent only after a failure proving it never
left; when a failure that may have reached the service ends such a call, the error raised says
the code may have been used and to sign in again.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import AbstractSet, Any, Dict, List, Optional, Tuple, Type, Union

import httpx
import tenacity

from ..core.errors import ResponseFormatError, TransientError, TransportError
from ..core.protocol import HttpRequest, HttpResponse
from .deadline import CALL_DEADLINE, attempt_timeout, call_budget
from .httpclients import USER_AGENT, new_async_http_client, new_http_client
from .retry import (
    RETRY_STATUSES,
    DeadlineReached,
    NetworkFailure,
    RetryableResponse,
    Retrying,
    RetryPolicy,
    ended_error,
    is_retryable_response,
    retrying,
)

__all__ = [
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "BodyLimit",
    "Call",
    "Exchange",
    "async_fetch",
    "async_read_limited",
    "async_send_once",
    "async_send_with_retry",
    "clip_timeout",
    "fetch",
    "lost_code_error",
    "network_failure",
    "new_async_http_client",
    "new_http_client",
    "read_limited",
    "send_once",
    "send_with_retry",
    "to_http_response",
]

log = logging.getLogger("oauth_core")

MAX_RESPONSE_BYTES = 1024 * 1024
NO_AUTH = httpx.Auth()  # explicit: no credentials from the environment (.netrc) on token calls
# Errors after which the service may have acted on the request (its answer was lost).
_MAYBE_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)
_RETRYABLE_NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Errors that prove the request never left: no connection was made, so nothing was written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DEADLINE_SLACK = 0.005  # a timeout this close to the deadline is the deadline's


@dataclass(frozen=True)
class Exchange:
    """What one send, retries included, came back with: the response, the attempts sent, the waits slept."""

    response: HttpResponse
    attempts: int = 1
    waits: Tuple[float, ...] = ()


# -- one attempt ----------------------------------------------------------------------------


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


def response_too_large(limit: int = MAX_RESPONSE_BYTES) -> ResponseFormatError:
    return ResponseFormatError(f"the response is larger than {limit} bytes; refusing to read it")


def to_http_response(response: httpx.Response, body: bytes) -> HttpResponse:
    return HttpResponse(status=response.status_code, headers=tuple(response.headers.multi_items()), body=body)


class BodyLimit:
    """Counts a body's bytes as they arrive: one over ``limit`` is refused, one past ``until`` cut off.

    Raises (on creation): ResponseFormatError when the ``content-length`` already says too much.
    """

    __slots__ = ("limit", "size", "until")

    def __init__(self, response: httpx.Response, limit: int = MAX_RESPONSE_BYTES, until: Optional[float] = None):
        length = response.headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
            raise response_too_large(limit)
        self.limit, self.size, self.until = limit, 0, until

    def take(self, chunk: bytes) -> bytes:
        """``chunk``, counted.

        Raises:
            ResponseFormatError: the body grew over the limit.
            httpx.ReadTimeout: the call deadline ``until`` (time.monotonic()) passed.
        """
        self.size += len(chunk)
        if self.size > self.limit:
            raise response_too_large(self.limit)
        if self.until is not None and time.monotonic() >= self.until:
            raise httpx.ReadTimeout("the call's deadline was reached")
        return chunk


def read_limited(
    response: httpx.Response, limit: int = MAX_RESPONSE_BYTES, *, until: Optional[float] = None
) -> List[bytes]:
    """The body's chunks, refusing (before or while reading) a body over ``limit`` bytes (see :class:`BodyLimit`)."""
    counted, chunks = BodyLimit(response, limit, until), []
    for chunk in response.iter_bytes():
        chunks.append(counted.take(chunk))
    return chunks


async def async_read_limited(
    response: httpx.Response, limit: int = MAX_RESPONSE_BYTES, *, until: Optional[float] = None
) -> List[bytes]:
    """The async twin of :func:`read_limited`."""
    counted, chunks = BodyLimit(response, limit, until), []
    async for chunk in response.aiter_bytes():
        chunks.append(counted.take(chunk))
    return chunks


@functools.lru_cache(maxsize=64)
def parsed_url(url: str) -> httpx.URL:
    """``url`` as an ``httpx.URL``, parsed once per URL (a client calls a few endpoints, again and again).

    httpx parses a URL string anew for every request it builds, about half of building one (some
    40 us on a small machine). It copies a URL given as an ``httpx.URL`` instead (they are
    immutable), so sharing them is safe. Request URLs hold no secrets (those go in bodies and headers).
    """
    return httpx.URL(url)


class Attempt:
    """One request on the wire: the call deadline in force, its httpx request, its httpx errors classified.

    Used as ``with Attempt(http, request, until, extensions) as sent:`` around the send and the
    body read, ``sent`` being the httpx request; an httpx error leaving the block is raised again
    as :func:`network_failure` classifies it.
    """

    __slots__ = ("_token", "extensions", "http", "request", "started", "until")

    def __init__(
        self,
        http: Union[httpx.Client, httpx.AsyncClient],
        request: HttpRequest,
        until: Optional[float],
        extensions: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.http, self.request, self.until, self.extensions = http, request, until, extensions
        self._token: Optional[contextvars.Token[Optional[float]]] = None
        self.started = 0.0

    def __enter__(self) -> httpx.Request:
        """The httpx request, its timeouts cut to the time left before the deadline (now in force)."""
        until, request, http = self.until, self.request, self.http
        self.started = time.perf_counter()
        if until is not None:
            self._token = CALL_DEADLINE.set(until)
        clipped = None if until is None else clip_timeout(http.timeout, until)
        return http.build_request(
            request.method,
            parsed_url(request.url),
            headers=request.headers,
            content=request.body or None,
            extensions=self.extensions,
            timeout=httpx.USE_CLIENT_DEFAULT if clipped is None else clipped,
        )

    def __exit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        if self._token is not None:
            CALL_DEADLINE.reset(self._token)
        if isinstance(exc, httpx.HTTPError):
            log.debug("%s %s failed: %s", self.request.method, self.request.url, type(exc).__name__)
            raise network_failure(exc, until=self.until) from None

    def answer(
        self, response: httpx.Response, chunks: List[bytes], raise_retryable: bool, also: AbstractSet[int] = frozenset()
    ) -> HttpResponse:
        """The :class:`HttpResponse` read, logged; with ``raise_retryable``, a 408/429/5xx (or a status in
        ``also``) is raised instead.

        Raises:
            RetryableResponse: ``raise_retryable`` and a status that says "try again".
        """
        request = self.request
        result = HttpResponse(
            status=response.status_code, headers=tuple(response.headers.multi_items()), body=b"".join(chunks)
        )
        if log.isEnabledFor(logging.DEBUG):
            elapsed = (time.perf_counter() - self.started) * 1000
            log.debug("%s %s -> %d in %.1f ms", request.method, request.url, result.status, elapsed)
        if raise_retryable and (
            result.status in also or (result.status in RETRY_STATUSES and is_retryable_response(result))
        ):
            raise RetryableResponse(result)
        return result


def fetch(
    http: httpx.Client,
    request: HttpRequest,
    *,
    extensions: Optional[Dict[str, Any]] = None,
    until: Optional[float] = None,
    raise_retryable: bool = False,
    also_retry: AbstractSet[int] = frozenset(),
) -> HttpResponse:
    """Send one request and read its answer: no redirects, no ambient auth, at most MAX_RESPONSE_BYTES.

    ``extensions`` go to httpx (``oauth-core bench`` passes a ``trace`` callback). ``until`` is the
    call deadline, a ``time.monotonic()`` instant: connect, headers and body all end by then.

    Raises:
        NetworkFailure: a retryable network failure (DeadlineReached: the deadline passed).
        RetryableResponse: with ``raise_retryable``, a status that says "try again" (408/429/5xx, or
            one of ``also_retry``).
        TransportError / ResponseFormatError: final.
    """
    attempt = Attempt(http, request, until, extensions)
    with attempt as sent:
        response = http.send(sent, auth=NO_AUTH, follow_redirects=False, stream=True)
        try:
            chunks = read_limited(response, until=until)
        finally:
            response.close()
    return attempt.answer(response, chunks, raise_retryable, also_retry)


async def async_fetch(
    http: httpx.AsyncClient,
    request: HttpRequest,
    *,
    extensions: Optional[Dict[str, Any]] = None,
    until: Optional[float] = None,
    raise_retryable: bool = False,
    also_retry: AbstractSet[int] = frozenset(),
) -> HttpResponse:
    """The async twin of :func:`fetch`."""
    attempt = Attempt(http, request, until, extensions)
    with attempt as sent:
        response = await http.send(sent, auth=NO_AUTH, follow_redirects=False, stream=True)
        try:
            chunks = await async_read_limited(response, until=until)
        finally:
            await response.aclose()
    return attempt.answer(response, chunks, raise_retryable, also_retry)


def send_once(http: httpx.Client, request: HttpRequest, *, until: Optional[float] = None) -> HttpResponse:
    """:func:`fetch`, with a retryable status (408/429/5xx) raised for the retry layer.

    Raises:
        RetryableResponse / NetworkFailure: transient; the retry layer decides.
        TransportError / ResponseFormatError: final.
    """
    return fetch(http, request, until=until, raise_retryable=True)


async def async_send_once(
    http: httpx.AsyncClient, request: HttpRequest, *, until: Optional[float] = None
) -> HttpResponse:
    """The async twin of :func:`send_once`."""
    return await async_fetch(http, request, until=until, raise_retryable=True)


# -- one call, retries included ---------------------------------------------------------------


def lost_code_error(
    original: Exception, attempts: int, waits: List[float], *, what: Optional[str] = None
) -> TransientError:
    """The error for a code redemption whose outcome is unknown: the code may be spent, so it is not resent.

    ``original`` is the failure that ended the call (a :class:`NetworkFailure` or a retryable HTTP
    status); ``what`` describes it instead (e.g. the call deadline was reached).
    """
    status: Optional[int] = None
    retry_after: Optional[float] = None
    if isinstance(original, RetryableResponse):
        status, retry_after = original.response.status, original.retry_after
        what = what or f"the service answered HTTP {status}"
    elif isinstance(original, NetworkFailure):
        what = what or f"the response was lost ({original.kind})"
    return TransientError(
        f"the authorization code redemption failed: {what or original}. The code may have been used (a code "
        "works once), so it was not sent again: sign in again to get a new one.",
        attempts=attempts,
        waits=waits,
        status=status,
        retry_after=retry_after,
    )


class Call:
    """One send with its retries: its deadline, the attempts and waits counted, the error that ends it.

    ``deadline`` (seconds) defaults to :func:`~oauth_core.drivers.deadline.call_budget` of the
    client's timeout; :attr:`until` is the same as a time.monotonic() instant.
    """

    __slots__ = ("_replay", "attempts", "budget", "policy", "request", "started", "until", "waits")

    def __init__(
        self, timeout: httpx.Timeout, request: HttpRequest, policy: RetryPolicy, deadline: Optional[float] = None
    ) -> None:
        self.budget = call_budget(policy, attempt_timeout(timeout)) if deadline is None else deadline
        self.until = None if self.budget is None else time.monotonic() + self.budget
        self.started = policy.clock()
        self.request, self.policy = request, policy
        self.attempts = 0
        self.waits: List[float] = []
        self._replay: Optional[Exception] = None

    def retries(self, first: Exception, kind: Type[Retrying]) -> Retrying:
        """The tenacity loop after the ``first`` failure, which its first attempt replays (it was sent)."""
        self._replay = first
        single_use = self.request.single_use
        return retrying(kind, self.policy, self.waits, self.started, until=self.until, single_use=single_use)

    def attempt(self) -> None:
        """Count an attempt; the first one raises the first failure again instead of sending."""
        self.attempts += 1
        replay, self._replay = self._replay, None
        if replay is not None:
            raise replay

    def exchange(self, response: HttpResponse) -> Exchange:
        return Exchange(response, self.attempts, tuple(self.waits))

    def final_error(self, exc: Union[RetryableResponse, NetworkFailure]) -> TransientError:
        """The error that ends the call: a spent deadline, a code that may be used, a wait the service
        asked for that is not waited (:class:`~oauth_core.core.throttle.Throttled`), or retries spent."""
        attempts, waits, deadline = self.attempts, self.waits, None
        if isinstance(exc, DeadlineReached):
            budget = self.budget or 0
            deadline = f"the call's deadline of {budget:g}s was reached ({exc.kind}) after {attempts} attempt(s)"
        if self.request.single_use and not (isinstance(exc, NetworkFailure) and exc.not_sent):
            return lost_code_error(exc, attempts, waits, what=deadline)
        if deadline is not None:
            return TransientError(f"timed out: {deadline}", attempts=attempts, waits=waits)
        return ended_error(exc, attempts, waits, self.policy, self.until)


def send_with_retry(
    http: httpx.Client, request: HttpRequest, policy: RetryPolicy, *, deadline: Optional[float] = None
) -> Exchange:
    """Send with tenacity's retries: the response, with the attempts sent and the waits slept.

    The whole call ends within ``deadline`` seconds (see :class:`Call`). A single-use request (a
    code) is resent only if it never left.

    Raises:
        TransientError: retries spent, the deadline reached, or a code whose outcome is unknown.
        OAuthCoreError: a final failure (TransportError, ResponseFormatError).
    """
    call = Call(http.timeout, request, policy, deadline)
    retryable = not request.once  # a request sent once gets every answer back, 5xx included
    try:  # the common case: no tenacity machinery for a request that succeeds at once
        return Exchange(
            fetch(http, request, until=call.until, raise_retryable=retryable, also_retry=policy.extra_statuses)
        )
    except (RetryableResponse, NetworkFailure) as exc:
        if request.once:
            raise call.final_error(exc) from None
        retries = call.retries(exc, tenacity.Retrying)
    try:
        for attempt in retries:
            with attempt:
                call.attempt()
                return call.exchange(
                    fetch(http, request, until=call.until, raise_retryable=True, also_retry=policy.extra_statuses)
                )
    except (RetryableResponse, NetworkFailure) as exc:
        raise call.final_error(exc) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


async def async_send_with_retry(
    http: httpx.AsyncClient, request: HttpRequest, policy: RetryPolicy, *, deadline: Optional[float] = None
) -> Exchange:
    """The async twin of :func:`send_with_retry` (tenacity's ``AsyncRetrying``)."""
    call = Call(http.timeout, request, policy, deadline)
    retryable = not request.once
    try:
        return Exchange(
            await async_fetch(
                http, request, until=call.until, raise_retryable=retryable, also_retry=policy.extra_statuses
            )
        )
    except (RetryableResponse, NetworkFailure) as exc:
        if request.once:
            raise call.final_error(exc) from None
        retries = call.retries(exc, tenacity.AsyncRetrying)
    try:
        async for attempt in retries:
            with attempt:
                call.attempt()
                return call.exchange(
                    await async_fetch(
                        http, request, until=call.until, raise_retryable=True, also_retry=policy.extra_statuses
                    )
                )
    except (RetryableResponse, NetworkFailure) as exc:
        raise call.final_error(exc) from None
    raise AssertionError("unreachable: tenacity either returns or raises")
