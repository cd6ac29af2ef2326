"""What flows yield, and the two calls that step them.

A flow is a generator: it yields effects (an :class:`~oauth_core.core.messages.HttpRequest` to
send, a :class:`~oauth_core.core.device.Wait`, the cache's :class:`~oauth_core.core.cache_rules.Check`,
:class:`~oauth_core.core.cache_rules.Load`, :class:`~oauth_core.core.cache_rules.Save` and
:class:`~oauth_core.core.cache_rules.Lock`, and Azure Arc's
:class:`~oauth_core.core.identity.ReadArcKey`) and is sent back their outcomes; a driver runs it with
:func:`start` and :func:`advance` and performs each effect its own way (sync or async).
"""

from __future__ import annotations

import os
from typing import Any, Generator, Optional, Tuple, TypeVar, Union

from .cache_rules import Check, Load, Lock, Save
from .device import Wait
from .identity import ReadArcKey
from .messages import HttpRequest, Pairs, TokenSet

__all__ = ["Effect", "StepFlow", "T", "advance", "request_headers", "start"]

T = TypeVar("T")
# What a flow yields for its driver to perform.
Effect = Union[HttpRequest, Wait, Check, Load, Save, Lock, ReadArcKey]
Step = TypeVar("Step", bound=Effect)
# What the drivers run: flows that yield effects and are sent back their outcomes.
StepFlow = Generator[Effect, Any, T]
CachedFlow = StepFlow[TokenSet]


def request_headers() -> Pairs:
    """Per-call headers: a fresh ``client-request-id`` and the throttling capability MSAL advertises."""
    return (("client-request-id", _request_id()), ("x-ms-lib-capability", "retry-after, h429"))


def _request_id() -> str:
    """A random (version 4) UUID as text: what ``str(uuid.uuid4())`` gives, for a third of its cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def start(flow: Generator[Step, Any, T]) -> Tuple[Optional[Step], Optional[T]]:
    """The flow's first effect, or ``(None, result)`` when it finished without needing one."""
    try:
        return next(flow), None
    except StopIteration as stop:
        return None, stop.value


def advance(flow: Generator[Step, Any, T], sent: Effect, outcome: Any) -> Tuple[Optional[Step], Optional[T]]:
    """Feed a flow the outcome of the effect ``sent``: an exception is thrown into it, anything else sent.

    The outcome of an :class:`HttpRequest` is its :class:`HttpResponse` (or the send's error), of a
    :class:`Wait` or a :class:`Check` None, of a :class:`Load` the state, of a :class:`Save` what its ``apply`` returned
    (or the cache's error). Returns ``(next_effect, None)``, or ``(None, result)`` when the flow is done.
    """
    try:
        if isinstance(outcome, BaseException):
            return flow.throw(outcome), None
        return flow.send(outcome), None
    except StopIteration as stop:
        return None, stop.value
