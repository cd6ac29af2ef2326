"""The sans-I/O core: token requests as values, token responses parsed into values or typed errors.

Nothing here touches a socket or imports httpx. Builders return a frozen :class:`HttpRequest`;
:func:`parse_token_response` takes a frozen :class:`HttpResponse`. Each grant is a small
generator flow that yields the request it needs sent and returns the :class:`TokenSet`; the sync
and async clients drive the same flows (RFC 6749 §4, Entra's v2.0 token endpoint).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generator, Iterable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode

from .authority import Authority
from .claims import unverified_claims
from .errors import ConfigError, ResponseFormatError, TokenDecodeError, oauth_error_from_body

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DATABRICKS_SCOPE",
    "OIDC_SCOPES",
    "HttpRequest",
    "HttpResponse",
    "TokenFlow",
    "TokenSet",
    "authorization_code_grant",
    "build_token_request",
    "client_credentials_grant",
    "encode_form",
    "jwks_request",
    "normalize_scopes",
    "number_of_seconds",
    "parse_json_object",
    "parse_jwks_response",
    "parse_token_response",
    "password_grant",
    "redacted_snippet",
    "refresh_token_grant",
    "token_flow",
]

DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
# Asked for on user grants so that a refresh token and an id_token come back.
OIDC_SCOPES: Tuple[str, ...] = ("offline_access", "openid", "profile")
SECRET_FIELDS = frozenset(
    {"password", "client_secret", "refresh_token", "code", "code_verifier", "client_assertion", "device_code"}
)
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token characters

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Pairs = Tuple[Tuple[str, str], ...]


def encode_form(pairs: Iterable[Tuple[str, str]]) -> str:
    """``application/x-www-form-urlencoded`` with every reserved character percent-encoded once."""
    return urlencode(list(pairs), quote_via=quote, safe="")


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request to send: method, URL, headers and (for POSTs) form fields.

    ``single_use`` marks requests that redeem a one-time grant (an authorization code), whose
    retry after a lost response cannot succeed.
    """

    method: str
    url: str
    headers: Pairs = ()
    form: Pairs = ()
    single_use: bool = False

    @property
    def body(self) -> bytes:
        return encode_form(self.form).encode("ascii") if self.form else b""

    def __repr__(self) -> str:
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


def normalize_scopes(
    scopes: Union[None, str, Iterable[str]], *, default: str = DATABRICKS_SCOPE, offline_access: bool = False
) -> Tuple[str, ...]:
    """Split, check and de-duplicate scopes, keeping their order (the first resource wins at Entra).

    With ``offline_access=True`` the OIDC scopes ``offline_access openid profile`` are appended,
    so user grants get a refresh token and an id_token back.

    Raises:
        ConfigError: an empty scope list, or a scope with characters RFC 6749 forbids.
    """
    if scopes is None:
        items: Sequence[str] = [default]
    elif isinstance(scopes, str):
        items = scopes.split()
    else:
        items = [part for scope in scopes for part in str(scope).split()]
    result: Dict[str, None] = {}
    for scope in items:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise ConfigError("scope contains characters that are not allowed (RFC 6749 §3.3)")
        result[scope] = None
    if offline_access:
        for scope in OIDC_SCOPES:
            result.setdefault(scope, None)
    if not result:
        raise ConfigError("at least one scope is required")
    return tuple(result)


def authorization_code_grant(code: str, redirect_uri: str, code_verifier: str) -> Pairs:
    return (
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    )


def password_grant(username: str, password: str) -> Pairs:
    return (("grant_type", "password"), ("username", username), ("password", password))


def refresh_token_grant(refresh_token: str) -> Pairs:
    return (("grant_type", "refresh_token"), ("refresh_token", refresh_token))


def client_credentials_grant() -> Pairs:
    return (("grant_type", "client_credentials"),)


def _require_values(pairs: Pairs) -> None:
    for name, value in pairs:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{name} is not valid text (it holds undecodable bytes)") from None


def build_token_request(
    authority: Authority,
    client_id: str,
    grant: Pairs,
    *,
    scopes: Sequence[str],
    client_secret: Optional[str] = None,
    headers: Pairs = (),
    client_assertion: Optional[str] = None,
) -> HttpRequest:
    """The one builder of token-endpoint POSTs (every grant).

    Form order: ``client_id``, the grant's fields, ``scope``, ``client_info=1`` (so the response
    names the account), then the credential of a confidential client: ``client_secret``, or
    ``client_assertion_type`` + ``client_assertion`` (a signed JWT, RFC 7523 §2.2).

    Raises:
        ConfigError: an empty client id, grant value, secret or assertion, or both credentials.
    """
    form: Pairs = (("client_id", client_id), *grant, ("scope", " ".join(scopes)), ("client_info", "1"))
    if client_secret is not None and client_assertion is not None:
        raise ConfigError("pass a client secret or a client assertion, not both")
    if client_secret is not None:
        form += (("client_secret", client_secret),)
    if client_assertion is not None:
        form += (("client_assertion_type", CLIENT_ASSERTION_TYPE), ("client_assertion", client_assertion))
    _require_values(form)
    grant_type = dict(grant).get("grant_type")
    return HttpRequest(
        method="POST",
        url=authority.token_endpoint,
        headers=(("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json"), *headers),
        form=form,
        single_use=grant_type == "authorization_code",
    )


_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_LONG_OPAQUE = re.compile(r"[A-Za-z0-9._~+/=-]{32,}")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# A URL, or an absolute path (with its query) standing on its own, as in an HTTP request line.
_LOCATION = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+|(?<![^\s\"'(\[])/[^\s\"'<>`]*")
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?")
_GUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SECRET_NAMES = frozenset(
    {*SECRET_FIELDS, "access_token", "id_token", "token", "assertion", "secret", "sig", "signature", "state", "nonce"}
)
_SECRET_PARTS = ("token", "secret", "password", "passwd", "assertion", "verifier")
# Form and query pairs (``name=value``) and JSON members (``"name": "value"``) that may hold a secret.
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
_SECRET_PAIR = re.compile(
    rf"""(?P<key>(?P<quote>["'])(?P<quoted>{_NAME})(?P=quote)\s*:\s*|(?<![A-Za-z0-9_.-])(?P<name>{_NAME})=)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;"'}<>]+)"""
)
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI (colours, cursor moves)
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # the other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # 8-bit string controls
)
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: unprintable, and unencodable as UTF-8


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """Server-provided text made safe to print: escape sequences and control characters removed.

    With ``multiline``, line ends (``\\n``, and ``\\r\\n`` as ``\\n``) and tabs are kept; otherwise
    they become spaces, so the text stays on one line.
    """
    text = _SURROGATE.sub("\ufffd", _ESCAPE_SEQUENCE.sub("", text))
    if multiline:
        text = text.replace("\r\n", "\n")
        return _CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else "", text)
    return _CONTROL.sub(lambda m: " " if m.group() in "\n\r\t" else "", text)


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def _redact_words(text: str) -> str:
    """JWTs and long opaque strings (not GUIDs: tenant, correlation and trace ids) become ``[redacted]``."""
    text = _JWT_LIKE.sub("[redacted]", text)
    return _LONG_OPAQUE.sub(lambda m: m.group() if _GUID_TEXT.fullmatch(m.group()) else "[redacted]", text)


def _redact_pairs(text: str) -> str:
    def pair(match: re.Match[str]) -> str:
        name = match.group("quoted") or match.group("name")
        return match.group("key") + "[redacted]" if _is_secret_name(name) else match.group()

    return _SECRET_PAIR.sub(pair, text)


def _redact_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        name, sep, value = item.partition("=")
        pairs.append(name + sep + ("[redacted]" if sep and _is_secret_name(name) else _redact_words(value)))
    return "&".join(pairs)


def _redact_target(target: str) -> str:
    """``/path?query#fragment``: path segments kept unless token-like, secret-named values redacted."""
    target, hash_sign, fragment = target.partition("#")
    path, question, query = target.partition("?")
    path = "/".join(_redact_words(segment) for segment in path.split("/"))
    return (
        f"{path}{question}{_redact_query(query) if question else ''}"
        f"{hash_sign}{_redact_query(fragment) if hash_sign else ''}"
    )


def _redact_location(location: str) -> str:
    """A URL (or path) with its scheme, host, port and path kept readable, and its secrets redacted."""
    if "://" not in location:
        return _redact_target(location)
    scheme, _, rest = location.partition("://")
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = "[redacted]@" + authority.rpartition("@")[2]  # user:password@
    if not _HOST_PORT.fullmatch(authority.rpartition("@")[2]):
        authority = _redact_words(authority)
    return f"{scheme}://{authority}{_redact_target(tail)}"


def _redact_text(text: str) -> str:
    """URLs and paths kept readable (their secrets redacted), anything token-like elsewhere redacted."""
    text = _redact_pairs(text)
    pieces, last = [], 0
    for match in _LOCATION.finditer(text):
        pieces += [_redact_words(text[last : match.start()]), _redact_location(match.group())]
        last = match.end()
    pieces.append(_redact_words(text[last:]))
    return "".join(pieces)


def redacted_snippet(body: bytes, limit: int = 160) -> str:
    """A short, printable start of a body with anything token-like replaced by ``[redacted]``.

    Tokens, passwords, codes, assertions and secrets are redacted: JWTs, long opaque strings, and
    the values of secret-named fields (``password=``, ``"refresh_token": ...``, a URL's ``code=``).
    URLs keep their scheme, host, port and path, so a log line still says where a request went.
    """
    text = body[: limit * 8].decode("utf-8", errors="replace")
    title = _TITLE.search(text)
    if title:
        text = "<title>" + title.group(1) + "</title> " + _TITLE.sub("", text)
    text = _redact_text(text)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


TokenFlow = Generator[HttpRequest, HttpResponse, TokenSet]


def token_flow(request: HttpRequest, *, clock: Callable[[], float] = time.time) -> TokenFlow:
    """Send one token request and parse its answer; the result is the generator's return value."""
    scopes = tuple(dict(request.form).get("scope", "").split())
    response = yield request
    return parse_token_response(response, received_at=clock(), requested_scopes=scopes)


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
