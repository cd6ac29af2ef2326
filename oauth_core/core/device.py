"""The device authorization grant (RFC 8628), sans-I/O: start it, show the code, poll until done.

``POST /{tenant}/oauth2/v2.0/devicecode`` returns a user code and a device code
(entra-protocol.md §3.2); a person enters the user code at the verification URI while the
device polls the token endpoint with ``grant_type=urn:ietf:params:oauth:grant-type:device_code``.
Polling states (§4.5, RFC 8628 §3.5): ``authorization_pending`` polls again after ``interval``,
``slow_down`` adds 5 seconds to the interval for good, ``authorization_declined``,
``expired_token`` and ``bad_verification_code`` end the flow with their typed error.

The flow yields :class:`~oauth_core.protocol.HttpRequest` steps (answer with the response) and
:class:`Wait` steps (sleep, then resume with ``next``); the sync and async clients drive it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Generator, Mapping, Optional, Sequence, Union

from .authority import Authority
from .errors import (
    AuthorizationPending,
    ConfigError,
    InteractionTimeout,
    ResponseFormatError,
    SlowDown,
    oauth_error_from_body,
)
from .protocol import HttpRequest, HttpResponse, Pairs, TokenSet, number_of_seconds, parse_json_object, token_flow

__all__ = [
    "DEFAULT_INTERVAL",
    "DEVICE_CODE_GRANT_TYPE",
    "SLOW_DOWN_STEP",
    "DeviceCode",
    "DeviceFlow",
    "Wait",
    "build_device_code_request",
    "device_code_flow",
    "device_code_grant",
    "parse_device_code_response",
    "poll_device_code",
    "print_message",
]

DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0  # RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5: slow_down increases the interval by 5 seconds for all later polls
_MAX_SECONDS = 86400.0


@dataclass(frozen=True)
class Wait:
    """A flow step: sleep ``seconds``, then resume the flow with ``next(flow)``."""

    seconds: float

    def __post_init__(self) -> None:
        if not 0 <= self.seconds <= _MAX_SECONDS:
            raise ValueError("a wait must be between 0 and 86400 seconds")


@dataclass(frozen=True)
class DeviceCode:
    """What the device code endpoint answered; show :attr:`message` (or the URI and code) to the user.

    Attributes:
        user_code: what the person types at :attr:`verification_uri`.
        device_code: the secret the device polls with (redacted in ``repr``).
        verification_uri: where the person signs in.
        expires_at: epoch seconds after which the codes are dead (``expires_in`` from arrival).
        interval: seconds between polls.
        message: Entra's ready-made instructions (built from the URI and code when absent).
    """

    user_code: str
    device_code: str
    verification_uri: str
    expires_at: float
    interval: float
    message: str

    def __repr__(self) -> str:
        return (
            f"DeviceCode(user_code={self.user_code!r}, device_code=<redacted>, "
            f"verification_uri={self.verification_uri!r}, expires_at={self.expires_at!r}, interval={self.interval!r})"
        )


DeviceFlow = Generator[Union[HttpRequest, Wait], HttpResponse, TokenSet]


def build_device_code_request(
    authority: Authority, client_id: str, scopes: Sequence[str], headers: Pairs = (), claims: Optional[str] = None
) -> HttpRequest:
    """The device authorization request: a form POST of ``client_id`` and ``scope`` (no credential),
    and ``claims`` when a claims request goes with it.

    Raises:
        ConfigError: an empty client id or no scopes.
    """
    if not client_id or not scopes:
        raise ConfigError("the device code request needs a client id and at least one scope")
    return HttpRequest(
        method="POST",
        url=authority.device_code_endpoint,
        headers=(("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json"), *headers),
        form=(("client_id", client_id), ("scope", " ".join(scopes)), *((("claims", claims),) if claims else ())),
    )


def device_code_grant(device_code: str) -> Pairs:
    """The grant fields of a poll, for :func:`~oauth_core.protocol.build_token_request`."""
    return (("grant_type", DEVICE_CODE_GRANT_TYPE), ("device_code", device_code))


def _text(body: Mapping[str, Any], name: str, response: HttpResponse) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ResponseFormatError(f"device code response has no valid {name!r}", status=response.status)
    return value.strip()


def _number(body: Mapping[str, Any], name: str, response: HttpResponse, default: Optional[float]) -> float:
    value = body.get(name)
    if value is None and default is not None:
        return default
    seconds = number_of_seconds(value)
    if seconds is None or not 0 < seconds <= _MAX_SECONDS:
        raise ResponseFormatError(
            f"device code response field {name!r} is not a number of seconds", status=response.status
        )
    return seconds


def parse_device_code_response(response: HttpResponse, *, received_at: float) -> DeviceCode:
    """The device code endpoint's answer as a :class:`DeviceCode`.

    Args:
        response: what ``/devicecode`` answered.
        received_at: epoch seconds when it arrived; ``expires_in`` counts from it.

    Raises:
        OAuthError: (a subclass of) Entra's error body, e.g. InvalidRequest, UnauthorizedClient.
        ResponseFormatError: anything that is not a device code or error response.
    """
    body = parse_json_object(response)
    if isinstance(body.get("error"), str):
        raise oauth_error_from_body(body, status=response.status)
    if response.status != 200:
        raise ResponseFormatError(
            f"unexpected HTTP {response.status} from the device code endpoint", status=response.status
        )
    user_code = _text(body, "user_code", response)
    uri = _text(body, "verification_uri", response)
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        message = f"To sign in, use a web browser to open the page {uri} and enter the code {user_code}."
    return DeviceCode(
        user_code=user_code,
        device_code=_text(body, "device_code", response),
        verification_uri=uri,
        expires_at=received_at + _number(body, "expires_in", response, None),
        interval=_number(body, "interval", response, DEFAULT_INTERVAL),
        message=message,
    )


def poll_device_code(
    code: DeviceCode,
    poll_request: Callable[[DeviceCode], HttpRequest],
    *,
    clock: Callable[[], float],
    deadline: Optional[float] = None,
) -> DeviceFlow:
    """Wait ``interval``, poll, and repeat until tokens come back or time runs out.

    Each poll is a fresh request from ``poll_request`` (a new ``client-request-id``, and a new
    client assertion for certificate clients). The waits never pass the end: the device code's
    expiry or ``deadline`` (epoch seconds), whichever is first; one last poll happens there.

    Raises:
        InteractionTimeout: the end came before anyone finished signing in.
        AuthorizationDeclined / ExpiredToken / BadVerificationCode: the typed end states.
        (and everything :func:`~oauth_core.protocol.parse_token_response` raises)
    """
    end = code.expires_at if deadline is None else min(code.expires_at, deadline)
    interval = code.interval
    while True:
        left = end - clock()
        if left <= 0:
            if deadline is not None and deadline < code.expires_at:
                raise InteractionTimeout("nobody finished the device code sign-in within the time allowed")
            raise InteractionTimeout("the device code expired before anyone finished signing in")
        yield Wait(min(interval, left))
        try:
            return (yield from token_flow(poll_request(code), clock=clock))
        except AuthorizationPending:
            continue
        except SlowDown:
            interval += SLOW_DOWN_STEP


def device_code_flow(
    start: HttpRequest,
    poll_request: Callable[[DeviceCode], HttpRequest],
    *,
    on_code: Callable[[DeviceCode], None],
    clock: Callable[[], float],
    timeout: Optional[float] = None,
) -> DeviceFlow:
    """The whole grant: send ``start`` (see :func:`build_device_code_request`), show the code, poll.

    Args:
        start: the device authorization request.
        poll_request: builds each token request for the device code.
        on_code: called once with the :class:`DeviceCode`, before the first wait.
        clock: epoch seconds now.
        timeout: seconds from the start after which polling stops (the code's expiry otherwise).

    Raises:
        ConfigError: a timeout that is not positive.
        (and everything :func:`parse_device_code_response` and :func:`poll_device_code` raise)
    """
    if timeout is not None and not 0 < timeout <= _MAX_SECONDS:
        raise ConfigError("the device code timeout must be between 0 and 86400 seconds")
    deadline = None if timeout is None else clock() + timeout
    response = yield start
    code = parse_device_code_response(response, received_at=clock())
    on_code(code)
    return (yield from poll_device_code(code, poll_request, clock=clock, deadline=deadline))


def print_message(code: DeviceCode) -> None:
    """The default ``on_code``: print Entra's message to standard error."""
    sys.stderr.write(code.message + "\n")
    sys.stderr.flush()
