"""HTTP values of the emulator: requests and responses as frozen data, and Entra's response headers.

The header set follows entra-protocol.md §1.6: every response carries ``x-ms-request-id`` (the
trace id), ``x-ms-ests-server``, the no-cache trio (or the discovery cache policy), ``P3P``,
``Strict-Transport-Security``, ``X-Content-Type-Options`` and three ``Set-Cookie`` headers that
clients must ignore.
"""

from __future__ import annotations

import email.utils
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import SplitResult, parse_qsl, urlsplit

__all__ = [
    "HTML",
    "JSON",
    "MAX_BODY",
    "Ctx",
    "FormError",
    "Pairs",
    "Request",
    "RequestRecord",
    "Response",
    "entra_headers",
    "html_response",
    "json_response",
    "correlation_id_for",
    "is_form",
    "new_trace_id",
    "parse_form",
    "redirect_response",
    "split_url",
    "timestamp",
]

Pairs = Tuple[Tuple[str, str], ...]
MAX_BODY = 1024 * 1024
MAX_FIELDS = 64
NO_CACHE = "no-store, no-cache"
DISCOVERY_CACHE = "max-age=86400, private"
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Request:
    """A parsed HTTP request: header names are lower-case; ``origin`` is ``scheme://host:port``."""

    method: str
    path: str
    query: Pairs = ()
    headers: Pairs = ()
    body: bytes = b""
    origin: str = "http://127.0.0.1"

    def header(self, name: str) -> Optional[str]:
        """The first value of a header (case-insensitive name), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def param(self, name: str) -> Optional[str]:
        """The first value of a query parameter, or None."""
        return next((v for k, v in self.query if k == name), None)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path}, {len(self.body)} bytes)"


@dataclass(frozen=True)
class Response:
    """An HTTP response to send: status, headers in order (repeats allowed) and body."""

    status: int
    headers: Pairs = ()
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first value of a header (case-insensitive name), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it; no secrets (no query string, no body).

    Attributes:
        method, path: the request line (path without the query).
        endpoint: ``token``, ``authorize``, ... or ``notfound``.
        grant_type: the token request's ``grant_type``, if any.
        status: the status sent, or None when the connection was dropped without an answer.
        at: when it arrived (the emulator's clock, epoch seconds).
        params: the query parameters, kept only for the managed identity endpoints, whose queries
            carry no secrets (``api-version``, ``resource``, an identity selector).
        header_names: the lower-case names of the request's headers (never their values).
    """

    method: str
    path: str
    endpoint: str
    grant_type: Optional[str]
    status: Optional[int]
    at: float
    params: Pairs = ()
    header_names: Tuple[str, ...] = ()

    def param(self, name: str) -> Optional[str]:
        """The first recorded value of a query parameter, or None."""
        return next((v for k, v in self.params if k == name), None)


@dataclass(frozen=True)
class Ctx:
    """Per-request facts that responses quote: ids, time, origin, and the description style."""

    trace_id: str
    correlation_id: str
    now: float
    origin: str
    crlf: bool = False
    telemetry: bool = False
    region: str = "LOCAL"


def new_trace_id() -> str:
    """A GUID shaped like Entra's trace ids, which often end in ``00``."""
    return str(uuid.uuid4())[:-2] + "00"


def correlation_id_for(request: Request) -> str:
    """The client's ``client-request-id`` when it is a GUID, else a fresh GUID."""
    sent = (request.header("client-request-id") or "").strip()
    return sent.lower() if _GUID.match(sent) else str(uuid.uuid4())


def timestamp(now: float) -> str:
    """Entra's ``timestamp`` format: ``YYYY-MM-DD HH:MM:SSZ``."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))


def _cookies(now: float) -> Pairs:
    expires = email.utils.formatdate(now + 30 * 86400, usegmt=True)
    fpc = secrets.token_urlsafe(24)
    return (
        ("Set-Cookie", f"fpc={fpc}; expires={expires}; path=/; secure; HttpOnly; SameSite=None"),
        ("Set-Cookie", "x-ms-gateway-slice=estsfd; path=/; secure; samesite=none; httponly"),
        ("Set-Cookie", "stsservicecookie=estsfd; path=/; secure; samesite=none; httponly"),
    )


def entra_headers(ctx: Ctx, *, content_type: str = JSON, cache: str = NO_CACHE) -> Pairs:
    """The §1.6 header set for one response (Content-Length is added by the server)."""
    headers: Tuple[Tuple[str, str], ...] = (("Cache-Control", cache),)
    if cache == NO_CACHE:
        headers += (("Pragma", "no-cache"),)
    else:
        headers += (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, OPTIONS"))
    headers += (
        ("Content-Type", content_type),
        ("Expires", "-1"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"),
        ("P3P", 'CP="DSP CUR OTPi IND OTRi ONL FIN"'),
        ("x-ms-request-id", ctx.trace_id),
        ("x-ms-ests-server", f"2.1.20000.1 - {ctx.region} ProdSlices"),
    )
    if ctx.telemetry:
        headers += (("x-ms-clitelem", "1,0,0,,"),)
    return headers + _cookies(ctx.now)


def json_response(ctx: Ctx, body: Dict[str, Any], *, status: int = 200, cache: str = NO_CACHE) -> Response:
    """A JSON response; key order is kept as given."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, entra_headers(ctx, cache=cache), data)


def html_response(ctx: Ctx, page: str, *, status: int = 200) -> Response:
    """An HTML page that may not be framed and loads nothing from elsewhere."""
    headers = (
        *entra_headers(ctx, content_type=HTML),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
    )
    return Response(status, headers, page.encode("utf-8"))


def redirect_response(ctx: Ctx, location: str) -> Response:
    """A 302 to ``location`` with an empty body."""
    return Response(302, (*entra_headers(ctx, content_type=HTML), ("Location", location)), b"")


def split_url(url: str) -> Optional[SplitResult]:
    """``urlsplit`` for untrusted input: None instead of ValueError (bad IPv6 literal, bad port)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts


class FormError(ValueError):
    """The body is not a well-formed ``application/x-www-form-urlencoded`` form."""


def parse_form(body: bytes) -> Dict[str, str]:
    """Parse a form body strictly: UTF-8, well-formed percent-encoding, no repeated names.

    Raises:
        FormError: anything else.
    """
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
        if _BAD_PERCENT.search(text):
            raise FormError("malformed percent-encoding")
        pairs = parse_qsl(
            text.strip(),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("the body is not a form") from exc
    form: Dict[str, str] = {}
    for name, value in pairs:
        if not name:
            raise FormError("a parameter has no name")
        if name in form:
            raise FormError(f"the parameter {name!r} is repeated")
        form[name] = value
    return form


def is_form(request: Request) -> bool:
    """True when the request says its body is ``application/x-www-form-urlencoded``."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"
