"""Fault injection: make one endpoint misbehave the way real networks and Entra's front end do.

Kinds:

``status``       answer with a status (429 with ``Retry-After``, 503, 500...) without processing.
``delay``        wait ``seconds``, then serve normally.
``drop_before``  close the connection without reading the body or answering.
``drop_after``   process the request (a code is redeemed, a refresh token rotated), then close
                 without answering: the "lost response".
``truncate``     process, send the headers with the full Content-Length but half the body, close.
``html``         answer with a proxy's HTML error page (a captive portal, a gateway error).

Faults queue per endpoint and are consumed in order. The CLI's text form is parsed by
:func:`parse_fault_spec`: ``token:429x3:retry-after=1``, ``token:503x2``, ``token:delay=2.5``,
``token:drop-after``, ``token:truncate``, ``token:html=502``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Deque, Dict, Optional, Tuple

from ..core.errors import ConfigError
from .aadsts import error_body, refusal
from .wire import HTML, Ctx, Pairs, Response, entra_headers

__all__ = ["FAULT_ENDPOINTS", "FAULT_KINDS", "Fault", "FaultQueue", "FaultSpec", "fault_response", "parse_fault_spec"]

FAULT_KINDS = ("status", "delay", "drop_before", "drop_after", "truncate", "html")
FAULT_ENDPOINTS = (
    "token",
    "authorize",
    "devicecode",
    "devicelogin",
    "discovery",
    "keys",
    "instance",
    "userrealm",
    # managed identity sources and the hosted federation issuers
    "imds",
    "appservice",
    "arc",
    "cloudshell",
    "azureml",
    "servicefabric",
    "federation",
    "federation_keys",
    "federation_mint",
    # the stand-in AD FS
    "mex",
    "usernamemixed",
    # the stand-in Azure Databricks workspace
    "workspace_config",
    "workspace_login",
    "workspace_me",
    "workspace_clusters",
)
MAX_DELAY = 600.0


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour (see the module docstring for the kinds).

    Attributes:
        kind: one of :data:`FAULT_KINDS`.
        status: the HTTP status for ``status`` (required, 400-599) and ``html`` (default 502; 200-599).
        retry_after: whole seconds for the ``Retry-After`` header.
        retry_after_ms: milliseconds for the ``retry-after-ms`` header.
        body: a body instead of the default one (JSON if it parses as JSON, else text).
        seconds: how long ``delay`` waits.
    """

    kind: str
    status: Optional[int] = None
    retry_after: Optional[int] = None
    retry_after_ms: Optional[int] = None
    body: Optional[str] = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.kind == "html" and self.status is None:
            object.__setattr__(self, "status", 502)
        lowest = 200 if self.kind == "html" else 400  # a captive portal answers 200 with HTML
        if self.kind in ("status", "html") and (self.status is None or not lowest <= self.status <= 599):
            raise ConfigError(f"a {self.kind} fault needs an HTTP status from {lowest} to 599")
        if self.kind == "delay" and not 0 <= self.seconds <= MAX_DELAY:
            raise ConfigError(f"a delay must be 0 to {MAX_DELAY:g} seconds")
        for name in ("retry_after", "retry_after_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole, non-negative number")


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``--fault`` value: which endpoint, what fault, how many times."""

    endpoint: str
    fault: Fault
    times: int = 1


class FaultQueue:
    """Per-endpoint queues of faults, consumed first in, first out (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: Dict[str, Deque[Fault]] = {}

    def inject(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint``.

        Raises:
            ConfigError: unknown endpoint, or ``times`` below 1.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ConfigError(f"unknown endpoint {endpoint!r}; use one of {', '.join(FAULT_ENDPOINTS)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ConfigError("times must be a whole number of at least 1")
        with self._lock:
            self._queues.setdefault(endpoint, deque()).extend([fault] * times)

    def next(self, endpoint: str) -> Optional[Fault]:
        """The next fault for ``endpoint`` (removed from its queue), or None."""
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None

    def pending(self, endpoint: str) -> int:
        """How many faults are still queued for ``endpoint``."""
        with self._lock:
            return len(self._queues.get(endpoint, ()))

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queues.clear()


_PROXY_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>proxy</center>\r\n</body>\r\n</html>\r\n"
)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_headers(fault: Fault) -> Pairs:
    headers: Tuple[Tuple[str, str], ...] = ()
    if fault.retry_after is not None:
        headers += (("Retry-After", str(fault.retry_after)),)
    if fault.retry_after_ms is not None:
        headers += (("retry-after-ms", str(fault.retry_after_ms)),)
    return headers


def _text(ctx: Ctx, text: str, content_type: str) -> Tuple[Pairs, bytes]:
    return entra_headers(ctx, content_type=content_type), text.encode("utf-8")


def fault_response(fault: Fault, ctx: Ctx) -> Response:
    """The response a ``status`` or ``html`` fault sends instead of the real one."""
    status = fault.status or 500
    if fault.kind == "html":
        page = fault.body or _PROXY_PAGE.format(status=status, phrase=_phrase(status))
        headers, body = _text(ctx, page, HTML)
    elif fault.body is not None:
        try:
            json.loads(fault.body)
            content_type = "application/json; charset=utf-8"
        except ValueError:
            content_type = "text/plain; charset=utf-8"
        headers, body = _text(ctx, fault.body, content_type)
    elif status == 503:
        data = error_body(refusal(90033), ctx)
        headers, body = _text(ctx, json.dumps(data, separators=(",", ":")), "application/json; charset=utf-8")
    else:
        headers, body = _text(ctx, _phrase(status), "text/plain; charset=utf-8")
    return Response(status, headers + _retry_headers(fault), body)


_STATUS_KIND = re.compile(r"^(?P<status>[1-5]\d\d)$")
_REPEAT = re.compile(r"^(?P<kind>.+?)x(?P<times>\d+)$")


def _number(text: str, what: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"fault {spec!r}: {what} must be a number, not {text!r}")


def _whole(text: str, what: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"fault {spec!r}: {what} must be a whole number, not {text!r}")
    return int(text)


def _retry(options: Dict[str, str], spec: str) -> Tuple[Optional[int], Optional[int]]:
    seconds, millis = options.pop("retry-after", None), options.pop("retry-after-ms", None)
    return (
        _whole(seconds, "retry-after", spec) if seconds is not None else None,
        _whole(millis, "retry-after-ms", spec) if millis is not None else None,
    )


def _kind(token: str, options: Dict[str, str], spec: str) -> Fault:
    name, _, value = token.partition("=")
    if (_STATUS_KIND.match(name) and not value) or (name == "status" and value):
        status = int(name) if not value else _whole(value, "status", spec)
        retry_after, retry_after_ms = _retry(options, spec)
        return Fault("status", status=status, retry_after=retry_after, retry_after_ms=retry_after_ms)
    if name == "delay":
        return Fault("delay", seconds=_number(value, "delay", spec))
    if name == "html":
        return Fault("html", status=_whole(value, "html status", spec) if value else 502)
    if name in ("drop-before", "drop-after", "truncate") and not value:
        return Fault(name.replace("-", "_"))
    raise ConfigError(
        f"fault {spec!r}: unknown kind {token!r}; use a status (429), delay=SECONDS, drop-before, drop-after, "
        "truncate or html[=STATUS]"
    )


def parse_fault_spec(spec: str) -> FaultSpec:
    """Parse ``ENDPOINT:KIND[xTIMES][:OPTION=VALUE...]``, e.g. ``token:429x3:retry-after=1``.

    Raises:
        ConfigError: the endpoint, kind, count or an option is not understood.
    """
    parts = [p.strip() for p in spec.strip().split(":")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError(f"fault {spec!r}: expected ENDPOINT:KIND, e.g. token:429x3:retry-after=1")
    endpoint, kind_token, option_tokens = parts[0], parts[1], parts[2:]
    if endpoint not in FAULT_ENDPOINTS:
        raise ConfigError(f"fault {spec!r}: unknown endpoint {endpoint!r}; use one of {', '.join(FAULT_ENDPOINTS)}")
    times = 1
    repeat = _REPEAT.match(kind_token)
    if repeat:
        kind_token, times = repeat.group("kind"), int(repeat.group("times"))
    options: Dict[str, str] = {}
    for token in option_tokens:
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"fault {spec!r}: option {token!r} must be NAME=VALUE")
        options[key.lower()] = value
    if "times" in options:
        times = _whole(options.pop("times"), "times", spec)
    fault = _kind(kind_token, options, spec)
    if options:
        raise ConfigError(f"fault {spec!r}: unknown option(s) {', '.join(sorted(options))}")
    if times < 1:
        raise ConfigError(f"fault {spec!r}: the count must be at least 1")
    return FaultSpec(endpoint=endpoint, fault=fault, times=times)
