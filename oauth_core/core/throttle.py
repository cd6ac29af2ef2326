"""Throttling memory, the pure part: which token requests are throttled, for how long, and the error.

When Entra answers a token request with 429 or 503 (or any failure carrying ``Retry-After``),
the client remembers it and refuses an identical request, without sending it, until the wait
is over (MSAL does the same; entra-protocol-2.md §6.1). Identical means the same
:func:`throttle_key`: token endpoint (so authority and tenant), client id, grant type, scopes,
and a hash of what names the account (refresh token, username, code, user assertion, device
code). A client's own credential (secret, client assertion) is not part of it: an app's
client-credentials requests share one window, as in MSAL. Keys are SHA-256 digests: no secret,
and no token, is ever kept.

The window (:func:`throttle_window`):

- ``Retry-After`` (seconds or an HTTP date; ``retry-after-ms`` too), capped at one hour;
- without one, a 429 or 503 waits MSAL Python's default: 60 s for a public client, 5 s for a
  confidential one (a request carrying ``client_secret`` or ``client_assertion``);
- other failures (500, 502, 504, 408) are remembered only when they carry ``Retry-After``: the
  retries inside the call already covered a blip, and a public client should not be blocked a
  minute for one.

The state is a plain mapping ``key -> [until, status]`` (``until`` in epoch seconds), changed
by :func:`remember` and read by :func:`remaining`; where it is kept is the drivers' business.
This module reads no clock: ``now`` is always passed in.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Dict, MutableMapping, Optional, Sequence

from .errors import TransientError
from .messages import HttpRequest

__all__ = [
    "CONFIDENTIAL_WINDOW",
    "MAX_ENTRIES",
    "MAX_WINDOW",
    "PUBLIC_WINDOW",
    "THROTTLE_STATUSES",
    "Throttled",
    "is_confidential",
    "remaining",
    "remember",
    "throttle_key",
    "throttle_window",
]

MAX_WINDOW = 3600.0  # MSAL's cap on a remembered Retry-After
PUBLIC_WINDOW = 60.0  # MSAL Python's default for a PublicClientApplication
CONFIDENTIAL_WINDOW = 5.0  # ... and for every other client
MAX_ENTRIES = 1024  # MSAL's response cache holds as many
THROTTLE_STATUSES = frozenset({429, 503})  # remembered even without Retry-After
# The form field that names the account, in MSAL's order (its key uses the first one present).
_ACCOUNT_FIELDS = ("refresh_token", "code", "username", "user_id", "assertion", "device_code")
_CREDENTIAL_FIELDS = ("client_secret", "client_assertion")


class Throttled(TransientError):
    """The service asked to wait before this request is sent again, and the wait is not over.

    Raised without sending (``attempts`` 0) while a remembered window lasts, and by a call whose
    ``Retry-After`` is longer than the call may wait.

    Attributes:
        retry_after: seconds left to wait.
        until: when the wait ends, in epoch seconds (``time.time()``).
        status: the HTTP status that asked for it (429, 503 ...).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        until: float,
        status: Optional[int] = None,
        attempts: int = 0,
        waits: Sequence[float] = (),
    ) -> None:
        super().__init__(message, attempts=attempts, waits=waits, status=status, retry_after=retry_after)
        self.retry_after: float = retry_after
        self.until = until
        self.hint = f"Wait {seconds_text(retry_after)}: send it again after {clock_text(until)}."

    @classmethod
    def remembered(cls, retry_after: float, until: float, status: Optional[int]) -> Throttled:
        """The refusal of a request inside a remembered window (nothing was sent)."""
        asked = f"HTTP {status}" if status else "a throttling answer"
        return cls(
            f"not sent: the identity service answered an identical request with {asked} and asked to wait; "
            f"{seconds_text(retry_after)} left (until {clock_text(until)})",
            retry_after=retry_after,
            until=until,
            status=status,
        )


def seconds_text(seconds: float) -> str:
    """``28 s`` (whole seconds, rounded up; at least 1)."""
    whole = int(seconds) + (1 if seconds > int(seconds) else 0)
    return f"{max(1, whole)} s"


def clock_text(epoch: float) -> str:
    """``2024-05-01 12:00:30 UTC``: a wall-clock instant for people (formats; reads no clock)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch + 0.999))


def _form(request: HttpRequest) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for name, value in request.form:
        fields.setdefault(name, value)  # the first one, as a server reads it
    return fields


def is_confidential(request: HttpRequest) -> bool:
    """True when the request carries a client credential (a confidential client's request)."""
    names = {name for name, _ in request.form}
    return any(name in names for name in _CREDENTIAL_FIELDS)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def throttle_key(request: HttpRequest) -> Optional[str]:
    """The key identical token requests share, or None for a request that is not throttled.

    Throttled: POSTs with ``grant_type`` and ``client_id`` form fields (token requests). Not:
    GETs (discovery, keys, managed identity), device code authorization, anything else.
    """
    if request.method.upper() != "POST" or not request.form:
        return None
    form = _form(request)
    grant, client_id = form.get("grant_type"), form.get("client_id")
    if not grant or not client_id:
        return None
    account = next((form[name] for name in _ACCOUNT_FIELDS if form.get(name)), "")
    scopes = " ".join(sorted(set(form.get("scope", "").split())))
    url = request.url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    url = scheme.lower() + sep + host.lower() + slash + path  # the host is case-insensitive, the path not
    parts = [url, client_id, grant, scopes, _digest(account) if account else ""]
    return "t1:" + _digest(json.dumps(parts))


def throttle_window(request: HttpRequest, status: Optional[int], retry_after: Optional[float]) -> Optional[float]:
    """Seconds to refuse identical requests after a failed call (None: not remembered).

    ``status`` is the HTTP status the call ended with, ``retry_after`` the service's ``Retry-After``
    in seconds (None when it gave none).
    """
    if status is None or status < 400:
        return None
    if retry_after is not None:
        return min(max(0.0, retry_after), MAX_WINDOW) or None
    if status in THROTTLE_STATUSES:
        return CONFIDENTIAL_WINDOW if is_confidential(request) else PUBLIC_WINDOW
    return None


def _left(entry: Any, now: float) -> Optional[float]:
    """Seconds left of a stored window ``[until, status]``, None when over, too far away or malformed."""
    if not isinstance(entry, list) or len(entry) != 2:
        return None
    until = entry[0]
    if isinstance(until, bool) or not isinstance(until, (int, float)):
        return None
    left = float(until) - now
    return left if 0 < left <= MAX_WINDOW else None


def remaining(state: Any, key: str, now: float) -> Optional[Throttled]:
    """The refusal of ``key`` at ``now`` when ``state`` holds a window for it that is not over.

    A window further away than :data:`MAX_WINDOW` (the clock was set back, or the state was
    edited) is ignored, as is anything malformed.
    """
    entry = state.get(key) if isinstance(state, dict) else None
    left = _left(entry, now)
    if left is None or not isinstance(entry, list):
        return None
    status = entry[1]
    code = status if isinstance(status, int) and not isinstance(status, bool) else None
    return Throttled.remembered(left, now + left, code)


def remember(
    state: MutableMapping[str, Any], key: str, until: float, status: Optional[int], now: float
) -> MutableMapping[str, Any]:
    """``state`` with ``key`` refused until ``until``; windows over by ``now`` are dropped, and the
    soonest-ending ones past :data:`MAX_ENTRIES`."""
    live = {k: v for k, v in state.items() if k != key and _left(v, now) is not None}
    live[key] = [until, status]
    if len(live) > MAX_ENTRIES:
        ordered = sorted(live.items(), key=lambda item: float(item[1][0]))
        live = dict(ordered[len(live) - MAX_ENTRIES :])
    state.clear()
    state.update(live)
    return state
