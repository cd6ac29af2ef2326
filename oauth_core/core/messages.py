"""Protocol messages as values: HTTP requests and responses, token sets, and their parsers.

Builders elsewhere return a frozen :class:`HttpRequest`; :func:`parse_token_response` and
:func:`parse_jwks_response` take a frozen :class:`HttpResponse` and return values or raise typed
errors. Nothing here touches a socket or imports httpx.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

from .authority import Authority
from .claims import unverified_claims
from .errors import ResponseFormatError, TokenDecodeError, oauth_error_from_body
from .redaction import SECRET_FIELDS, redacted_snippet

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "Pairs",
    "TokenSet",
    "encode_form",
    "jwks_request",
    "number_of_seconds",
    "parse_json_object",
    "parse_jwks_response",
    "parse_token_response",
]

Pairs = Tuple[Tuple[str, str], ...]


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what percent-encoding leaves as it is (RFC 3986 §2.3)


def _quoted(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def encode_form(pairs: Iterable[Tuple[str, str]]) -> str:
    """``application/x-www-form-urlencoded`` with every reserved character percent-encoded once.

    Client ids, grant types and most tokens need no encoding: they are passed through as they are.
    """
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in pairs)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request to send: method, URL, headers and (for POSTs) form fields or a raw body.

    ``single_use`` marks requests that redeem a one-time grant (an authorization code), whose
    retry after a lost response cannot succeed. ``once`` marks requests sent exactly once, whose
    every answer (a 5xx included) goes back to the flow: a password sent to a federation server,
    where each retry would count toward the account's lockout. ``content`` is a body that is not
    a form (a SOAP envelope, which may hold a password): when set it is the body, and ``repr``
    shows only its length. A request carries a form or content, not both.
    """

    method: str
    url: str
    headers: Pairs = ()
    form: Pairs = ()
    single_use: bool = False
    content: bytes = b""
    once: bool = False

    @property
    def body(self) -> bytes:
        if self.content:
            return self.content
        return encode_form(self.form).encode("ascii") if self.form else b""

    def __repr__(self) -> str:
        if self.content:
            return f"HttpRequest({self.method} {self.url} [{len(self.content)} bytes])"
        fields = ", ".join(f"{k}={'<redacted>' if k in SECRET_FIELDS else v!r}" for k, v in self.form)
        return f"HttpRequest({self.method} {self.url} [{fields}])"


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP response as received: status, headers (names lower-cased) and the body bytes."""

    status: int
    headers: Pairs = ()
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, {len(self.body)} bytes)"


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one successful token response.

    Attributes:
        access_token: the bearer token to send to the resource.
        token_type: normally ``Bearer``.
        scopes: the granted scopes as Entra echoed them (requested ones when it echoed none).
        expires_at: epoch seconds, from the moment the response arrived plus ``expires_in``.
        ext_expires_at: the same for ``ext_expires_in`` (Entra's outage extension), if given.
        refresh_at: when Entra asks the client to refresh (``refresh_in``), if given.
        refresh_token, id_token: present when ``offline_access`` / ``openid`` were granted.
        claims: the access token's claims (unverified), or None when it is not a JWT.
        raw: the whole parsed response body.
    """

    access_token: str
    token_type: str
    scopes: Tuple[str, ...]
    expires_at: float
    ext_expires_at: Optional[float] = None
    refresh_at: Optional[float] = None
    refresh_token: Optional[str] = None
    id_token: Optional[str] = None
    claims: Optional[Mapping[str, Any]] = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def expires_in(self, now: Optional[float] = None) -> int:
        """Whole seconds left at ``now`` (negative once expired)."""
        return int(self.expires_at - (time.time() if now is None else now))

    @property
    def id_token_claims(self) -> Optional[Dict[str, Any]]:
        """The id_token's claims (unverified), or None without an id_token."""
        return unverified_claims(self.id_token) if self.id_token else None

    def __repr__(self) -> str:
        return (
            f"TokenSet(token_type={self.token_type!r}, scopes={self.scopes!r}, expires_at={self.expires_at!r}, "
            f"access_token=<redacted>, refresh_token={'<redacted>' if self.refresh_token else None}, "
            f"id_token={'<redacted>' if self.id_token else None})"
        )

    __str__ = __repr__


def _looks_like_html(response: HttpResponse) -> bool:
    ctype = (response.header("content-type") or "").lower()
    return "html" in ctype or response.body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))


def _format_error(response: HttpResponse, what: str) -> ResponseFormatError:
    if not response.body.strip():
        problem = "an empty body"
    elif _looks_like_html(response):
        problem = "an HTML page (a proxy, captive portal or gateway answered, not Entra)"
    else:
        problem = what
    return ResponseFormatError(
        f"HTTP {response.status} with {problem}", status=response.status, snippet=redacted_snippet(response.body)
    )


def parse_json_object(response: HttpResponse) -> Dict[str, Any]:
    """The body as a JSON object, or :class:`ResponseFormatError` (HTML, empty, not JSON, not an object)."""
    try:
        value = json.loads(response.body)
    except (ValueError, RecursionError):
        raise _format_error(response, "a body that is not JSON") from None
    if not isinstance(value, dict):
        raise _format_error(response, "JSON that is not an object")
    return value


def number_of_seconds(value: Any) -> Optional[float]:
    """A JSON number of seconds in [0, 10**9), or a v1-style numeric string; None for anything else.

    Strings are bounded before conversion, so a 5,000-digit "number" costs nothing; NaN and
    infinities fail the range check.
    """
    if isinstance(value, str):
        text = value.strip()
        if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()):
            return None
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10**9:
        return None
    return float(value)


def _seconds(body: Mapping[str, Any], name: str, response: HttpResponse) -> Optional[float]:
    value = body.get(name)
    if value is None:
        return None
    seconds = number_of_seconds(value)
    if seconds is None:
        raise ResponseFormatError(f"token response field {name!r} is not a number of seconds", status=response.status)
    return seconds


def _string(body: Mapping[str, Any], name: str, response: HttpResponse, *, required: bool) -> Optional[str]:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ResponseFormatError(f"token response has no valid {name!r}", status=response.status)
    return value


def _access_token_claims(token: str) -> Optional[Dict[str, Any]]:
    try:
        return unverified_claims(token)
    except TokenDecodeError:
        return None  # opaque or encrypted access tokens are legitimate


def _raise_for_error(response: HttpResponse) -> None:
    if response.status == 200:
        return
    if response.status >= 400:
        body = parse_json_object(response)
        if isinstance(body.get("error"), str):
            raise oauth_error_from_body(body, status=response.status)
        raise _format_error(response, "a JSON body that is not an OAuth error")
    hint = " (redirects are not followed)" if 300 <= response.status < 400 else ""
    raise ResponseFormatError(
        f"unexpected HTTP {response.status}{hint}", status=response.status, snippet=redacted_snippet(response.body)
    )


def parse_token_response(
    response: HttpResponse, *, received_at: float, requested_scopes: Sequence[str] = ()
) -> TokenSet:
    """The one parser of token-endpoint responses.

    Args:
        response: what the token endpoint answered.
        received_at: epoch seconds when the response arrived; expiries count from it.
        requested_scopes: reported as the granted scopes when Entra echoes none.

    Raises:
        OAuthError: (a subclass of) Entra's error body, with its AADSTS codes and ids.
        ResponseFormatError: anything that is not an Entra token or error response.
    """
    _raise_for_error(response)
    body = parse_json_object(response)
    if isinstance(body.get("error"), str):
        raise oauth_error_from_body(body, status=response.status)
    access_token = _string(body, "access_token", response, required=True)
    assert access_token is not None
    token_type = _string(body, "token_type", response, required=False) or "Bearer"
    claims = _access_token_claims(access_token)
    expires_in = _seconds(body, "expires_in", response)
    if expires_in is None:
        exp = claims.get("exp") if claims else None  # a decoded exp is a finite number (claims checks it)
        if not isinstance(exp, (int, float)):
            raise ResponseFormatError("token response has no 'expires_in'", status=response.status)
        expires_at = float(exp)
    else:
        expires_at = received_at + expires_in
    ext_expires_in = _seconds(body, "ext_expires_in", response)
    refresh_in = _seconds(body, "refresh_in", response)
    scope = body.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) and scope.strip() else tuple(requested_scopes)
    return TokenSet(
        access_token=access_token,
        token_type=token_type,
        scopes=scopes,
        expires_at=expires_at,
        ext_expires_at=None if ext_expires_in is None else received_at + ext_expires_in,
        refresh_at=None if refresh_in is None else received_at + refresh_in,
        refresh_token=_string(body, "refresh_token", response, required=False),
        id_token=_string(body, "id_token", response, required=False),
        claims=claims,
        raw=body,
    )


def jwks_request(authority: Authority) -> HttpRequest:
    """GET the tenant's signing keys (JWKS)."""
    return HttpRequest(method="GET", url=authority.jwks_endpoint, headers=(("accept", "application/json"),))


def parse_jwks_response(response: HttpResponse) -> Dict[str, Any]:
    """A JWKS document: a JSON object with a ``keys`` list of objects.

    Raises:
        OAuthError: an Entra error body (unknown tenant ...).
        ResponseFormatError: anything else that is not a JWKS.
    """
    _raise_for_error(response)
    body = parse_json_object(response)
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ResponseFormatError("the JWKS has no 'keys' list of objects", status=response.status)
    return body
