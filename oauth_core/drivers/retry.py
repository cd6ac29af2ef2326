"""When to send a token request again, and how long to wait first (tenacity around the send).

Retried: connection failures, timeouts, dropped connections and HTTP 408/429/500/502/503/504.
Never retried: an OAuth error body below 500 (``invalid_grant``, ``interaction_required`` ...),
Entra's loop detection (AADSTS50196) at any status, TLS certificate failures, anything else.

The wait is the service's ``Retry-After`` (seconds, HTTP date, or ``retry-after-ms``) when it
gives one, else exponential backoff with jitter. A ``Retry-After`` longer than
``max_retry_after``, or than what is left of the call deadline, is not slept through: the call
fails at once with :class:`~oauth_core.core.throttle.Throttled`, saying how long to wait and until
when (:func:`ended_error`). :func:`with_retries` runs the same loop for a service's own REST calls.
Attempts and a total deadline are both bounded.

A single-use request (an authorization code redemption) is sent again only after a failure that
proves it never reached the service (connection refused, connect or pool timeout); after a
408/429/5xx or a read failure the code may already be spent, so it is never resent.

One call also ends by its call deadline (:mod:`oauth_core.drivers.deadline`): no wait that would
reach it is started, and a failure at it (:class:`DeadlineReached`) is never retried. Sending,
and classifying what went wrong on the wire, is :mod:`oauth_core.drivers.transport`'s.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, FrozenSet, List, Optional, Type, TypeVar

import tenacity

from ..core.errors import TransientError
from ..core.protocol import HttpResponse
from ..core.throttle import Throttled, clock_text, seconds_text

__all__ = [
    "RETRY_STATUSES",
    "DeadlineReached",
    "NetworkFailure",
    "RetryPolicy",
    "RetryableResponse",
    "is_retryable_response",
    "ended_error",
    "retry_after_seconds",
    "retrying",
    "transient_error",
    "with_retries",
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
        extra_statuses: statuses retried besides 408/429/5xx (a managed identity endpoint's 404 and 410).
        sleep / async_sleep: how to wait; clock: monotonic seconds for the deadline (injectable for tests).
    """

    max_attempts: int = 4
    deadline: float = 60.0
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: bool = True
    extra_statuses: FrozenSet[int] = frozenset()
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


def transient_error(
    exc: BaseException, attempts: int, waits: List[float], *, service: str = "the identity service"
) -> TransientError:
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
        f"{service} kept failing: {what} after {attempts} attempt(s), {sum(waits):.1f}s of waiting",
        attempts=attempts,
        waits=waits,
        status=status,
        retry_after=retry_after,
    )


def ended_error(
    exc: BaseException,
    attempts: int,
    waits: List[float],
    policy: RetryPolicy,
    until: Optional[float],
    *,
    service: str = "the identity service",
) -> TransientError:
    """The error that ends a call on ``exc``: :class:`Throttled` when the service asked for a wait
    (``Retry-After``) that is not waited for, else :func:`transient_error`.

    ``until`` is the call deadline (time.monotonic()); a wait longer than what is left of it, or
    than ``policy.max_retry_after``, is never started, so the call fails at once.
    """
    retry_after = getattr(exc, "retry_after", None)
    if not isinstance(exc, RetryableResponse) or retry_after is None:
        return transient_error(exc, attempts, waits, service=service)
    left = None if until is None else max(0.0, until - time.monotonic())
    if retry_after > policy.max_retry_after:
        why = f"longer than a call waits (max_retry_after {policy.max_retry_after:g} s), so it was not waited for"
    elif left is not None and retry_after >= left:
        why = f"more than the {left:.1f} s left of this call's deadline, so it was not waited for"
    else:
        why = f"{attempts} attempt(s) were spent ({sum(waits):.1f} s of waiting)"
    status, wall = exc.response.status, time.time() + retry_after
    return Throttled(
        f"{service} answered HTTP {status} and asked to wait {seconds_text(retry_after)}: {why}; "
        f"send it again after {clock_text(wall)}",
        retry_after=retry_after,
        until=wall,
        status=status,
        attempts=attempts,
        waits=waits,
    )


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


Retrying = TypeVar("Retrying", tenacity.Retrying, tenacity.AsyncRetrying)


def retrying(
    kind: Type[Retrying],
    policy: RetryPolicy,
    waits: List[float],
    started: Optional[float] = None,
    *,
    until: Optional[float] = None,
    single_use: bool = False,
) -> Retrying:
    """A tenacity loop (``kind``: ``Retrying`` or ``AsyncRetrying``) for one call.

    The waits it sleeps are appended to ``waits``; ``started`` is when the call's first attempt
    began (``policy.clock()``), ``until`` the call deadline (time.monotonic()), and a
    ``single_use`` request is retried only after failures proving it never left. It sleeps with
    ``policy.sleep``, or for ``AsyncRetrying`` with ``policy.async_sleep`` (asyncio's when None).
    """
    options: Dict[str, Any] = {
        "retry": tenacity.retry_if_exception(_is_unsent if single_use else _is_transient),
        "stop": _Stop(policy, started, until),
        "wait": _Wait(policy),
        "before_sleep": _record(waits),
        "reraise": True,
    }
    sleep = policy.async_sleep if issubclass(kind, tenacity.AsyncRetrying) else policy.sleep
    if sleep is not None:
        options["sleep"] = sleep
    return kind(**options)


R = TypeVar("R")


def with_retries(send: Callable[[], R], policy: RetryPolicy, until: Optional[float], *, service: str) -> R:
    """``send()``, sent again while it raises :class:`RetryableResponse`, by ``policy``, until ``until``.

    For a service's own REST calls (Azure Databricks): ``send`` raises RetryableResponse for a
    status worth retrying; a ``Retry-After`` is waited when it fits before ``until`` (the call
    deadline, a time.monotonic() instant) and ``policy.max_retry_after``.

    Raises:
        Throttled: the last answer asked for a wait that is not waited (``Retry-After``).
        TransientError: retries spent on answers without one.
    """
    waits: List[float] = []
    attempts = 0
    try:
        for attempt in retrying(tenacity.Retrying, policy, waits, policy.clock(), until=until):
            with attempt:
                attempts += 1
                return send()
    except RetryableResponse as exc:
        raise ended_error(exc, attempts, waits, policy, until, service=service) from None
    raise AssertionError("unreachable: tenacity either returns or raises")
