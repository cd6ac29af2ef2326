"""The one exception tree of oauth_core.

::

    OAuthCoreError                      base of everything raised on purpose; ``hint`` says what to do next
    ├── ConfigError                     a local mistake: bad argument, tenant, scope, file
    │   ├── InsecureAuthorityError      http to a non-loopback host, untrusted host
    │   └── CacheError                  the token cache is damaged, unsafe, too large or unwritable
    ├── TokensNotSaved                  tokens were issued but could not be cached (they ride on it)
    ├── RedirectError                   a redirect URL that is malformed or incomplete
    ├── SecurityCheckError              a protection fired
    │   ├── StateMismatch               redirect state differs from the pending request
    │   └── NonceMismatch               id_token nonce differs from the pending request
    ├── TokenDecodeError                a JWT that is not a JWT
    │   └── SignatureVerificationError  a JWT whose signature or issuer/audience failed
    │       └── UnknownSigningKey       its kid is not in the key set
    ├── InteractionTimeout              nobody finished the interactive sign-in in time
    ├── TransportError                  the service could not be reached or kept failing
    │   └── TransientError              retryable failures, retries spent (attempts, waits on it)
    ├── ResponseFormatError             the service answered something that is not Entra's format
    └── OAuthError                      Entra refused: error, AADSTS codes, trace and correlation ids
        ├── InvalidGrant                bad or dead code, refresh token or password
        ├── InteractionRequired         a person must sign in (MFA, consent, Conditional Access)
        ├── InvalidClient / UnauthorizedClient / InvalidScope / InvalidRequest
        │   └── FederatedCredentialRejected   (an InvalidClient) a federated token matched no credential
        ├── InvalidTenant / InvalidResource / AccessDenied / LoopDetected / ServerError
        └── AuthorizationPending / SlowDown / ExpiredToken / AuthorizationDeclined
            / BadVerificationCode   (device code polling states)

Messages never contain a secret: OAuth errors carry only what Entra said, and local errors
name what is wrong, not the value. The managed identity branch (``ManagedIdentityError`` and its
subclasses) lives in :mod:`oauth_core.core.identity_errors`. The AADSTS table lives in
:mod:`oauth_core.core.aadsts` (it names the classes here) and is re-exported as ``AADSTS``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional, Sequence, Tuple, Type

if TYPE_CHECKING:
    from .aadsts import AADSTS

__all__ = [
    "AADSTS",
    "AccessDenied",
    "AuthorizationDeclined",
    "AuthorizationPending",
    "BadVerificationCode",
    "CacheError",
    "ConfigError",
    "ExpiredToken",
    "FederatedCredentialRejected",
    "InsecureAuthorityError",
    "InteractionTimeout",
    "InteractionRequired",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidResource",
    "InvalidScope",
    "InvalidTenant",
    "LoopDetected",
    "NonceMismatch",
    "OAuthCoreError",
    "OAuthError",
    "RedirectError",
    "ResponseFormatError",
    "SecurityCheckError",
    "ServerError",
    "SignatureVerificationError",
    "SlowDown",
    "StateMismatch",
    "TokenDecodeError",
    "TokensNotSaved",
    "TransientError",
    "TransportError",
    "UnauthorizedClient",
    "UnknownSigningKey",
    "oauth_error_from_body",
]


class OAuthCoreError(Exception):
    """Base of every error oauth_core raises on purpose.

    Attributes:
        hint: what to do next, in library terms, when there is advice to give.
    """

    hint: Optional[str] = None


class ConfigError(OAuthCoreError, ValueError):
    """A local mistake: a bad argument, tenant, scope, URL or file."""


class InsecureAuthorityError(ConfigError):
    """The authority would receive credentials over plain http, or is not trusted."""


class CacheError(ConfigError):
    """The token cache cannot be used: damaged, of another version, unsafe permissions, too large."""


class TokensNotSaved(OAuthCoreError):
    """A grant succeeded but its tokens could not be written to the cache.

    Nothing is lost: the new tokens ride on the error (a rotated refresh token or a redeemed
    code cannot be had again), and ``cause`` says why the cache refused them.

    Attributes:
        tokens: the :class:`~oauth_core.core.protocol.TokenSet` the service issued.
        cause: the cache's error.
    """

    def __init__(self, tokens: Any, cause: OAuthCoreError) -> None:
        super().__init__(f"the new tokens could not be saved to the cache: {cause}")
        self.tokens = tokens
        self.cause = cause


class RedirectError(OAuthCoreError, ValueError):
    """The redirect URL (or query string) is malformed, hostile or incomplete."""


class SecurityCheckError(OAuthCoreError):
    """A protection of the protocol fired; nothing was sent after it."""


class StateMismatch(SecurityCheckError):
    """The redirect's ``state`` is missing or differs from the pending request's."""


class NonceMismatch(SecurityCheckError):
    """The id_token's ``nonce`` is missing or differs from the pending request's."""


class TokenDecodeError(OAuthCoreError, ValueError):
    """The value is not a well-formed JWT (segments, base64url, JSON objects)."""


class SignatureVerificationError(TokenDecodeError):
    """The JWT's signature, algorithm, key id, issuer or audience did not check out."""


class UnknownSigningKey(SignatureVerificationError):
    """The JWT names a key (``kid``) the key set does not hold."""


class InteractionTimeout(OAuthCoreError):
    """Nobody completed the interactive sign-in (or device code) before the timeout."""

    hint = "Sign in within the time allowed, or allow more time (timeout=)."


class TransportError(OAuthCoreError):
    """The identity service could not be reached, or answered with a transient failure."""


class TransientError(TransportError):
    """Retryable failures (timeouts, connection errors, 408/429/5xx) outlasted the retry policy.

    Attributes:
        attempts: how many requests were sent.
        waits: the seconds slept between them.
        status: the last HTTP status, or None when the last failure was a network error.
        retry_after: the last ``Retry-After`` the service asked for, in seconds, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 1,
        waits: Sequence[float] = (),
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.waits = tuple(waits)
        self.status = status
        self.retry_after = retry_after


class ResponseFormatError(OAuthCoreError):
    """The service answered with something that is not an Entra response.

    Attributes:
        status: the HTTP status.
        snippet: the start of the body, with anything token-like redacted.
    """

    def __init__(self, message: str, *, status: Optional[int] = None, snippet: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.snippet = snippet


class OAuthError(OAuthCoreError):
    """Entra refused the request; the fields are what its error body said.

    Attributes:
        error: the OAuth ``error`` value, e.g. ``invalid_grant``.
        error_description: Entra's text (``AADSTS50126: ...``).
        error_codes: the AADSTS numbers.
        suberror: Entra's ``suberror`` (``basic_action``, ``consent_required`` ...), if any.
        trace_id, correlation_id, timestamp, error_uri: Entra's diagnostics.
        claims: a claims challenge (JSON text) to send with the next interactive request.
        status: the HTTP status (None for errors that arrived in a redirect).
    """

    oauth_error: ClassVar[Optional[str]] = None

    def __init__(
        self,
        error: str,
        error_description: str = "",
        *,
        error_codes: Sequence[int] = (),
        suberror: Optional[str] = None,
        trace_id: Optional[str] = None,
        correlation_id: Optional[str] = None,
        timestamp: Optional[str] = None,
        error_uri: Optional[str] = None,
        claims: Optional[str] = None,
        status: Optional[int] = None,
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.error_codes: Tuple[int, ...] = tuple(error_codes)
        self.suberror = suberror
        self.trace_id = trace_id
        self.correlation_id = correlation_id
        self.timestamp = timestamp
        self.error_uri = error_uri
        self.claims = claims
        self.status = status
        from .aadsts import AADSTS  # imported here: that table names the classes of this module

        entry = next((AADSTS[c] for c in self.error_codes if c in AADSTS and AADSTS[c][0] is type(self)), None)
        self.hint = entry[2] if entry and entry[2] else type(self).hint
        if self.hint is None and self.error_codes:
            self.hint = f"See https://login.microsoftonline.com/error?code={self.error_codes[0]} for this AADSTS code."
        super().__init__(self._message())

    def _message(self) -> str:
        first_line = self.error_description.strip().split("\r\n")[0].split(" Trace ID:")[0]
        text = f"{self.error}: {first_line}" if first_line else self.error
        return text if len(text) <= 500 else text[:497] + "..."

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready dict (no secrets: only what Entra said)."""
        return {
            "error": self.error,
            "error_description": self.error_description,
            "error_codes": list(self.error_codes),
            "suberror": self.suberror,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "status": self.status,
            "claims": self.claims,  # a claims challenge: pass it back as claims=
        }


class InvalidGrant(OAuthError):
    """The code, refresh token or password was refused (wrong, expired, reused or revoked)."""

    oauth_error = "invalid_grant"
    hint = "Sign in again: the grant you used is no longer valid."


class InteractionRequired(OAuthError):
    """A person must complete an interactive sign-in (MFA, consent, Conditional Access)."""

    oauth_error = "interaction_required"
    hint = "A person must sign in interactively (acquire_interactive, or the authorization code flow)."


class InvalidClient(OAuthError):
    """Client authentication failed (missing, wrong or expired secret or assertion)."""

    oauth_error = "invalid_client"
    hint = "Check the client id and its credential (secret or certificate)."


class FederatedCredentialRejected(InvalidClient):
    """A federated token (workload identity, GitHub OIDC) matched no federated credential, or expired."""

    hint = "Compare the token's iss, sub and aud with the app's federated credentials; they must match exactly."


class UnauthorizedClient(OAuthError):
    """The application is unknown in this tenant, or may not use this grant."""

    oauth_error = "unauthorized_client"
    hint = "Check the client id and the tenant: the app must be registered in (or consented to by) that tenant."


class InvalidScope(OAuthError):
    """The requested scope is not valid for this resource or grant."""

    oauth_error = "invalid_scope"
    hint = "Check the scopes: one resource per request, and `<resource>/.default` for client credentials."


class InvalidRequest(OAuthError):
    """The request was malformed or used an endpoint that does not support it."""

    oauth_error = "invalid_request"


class InvalidTenant(OAuthError):
    """The tenant does not exist in this cloud."""

    oauth_error = "invalid_tenant"
    hint = "Check the tenant and the authority host (the tenant must exist in that cloud)."


class InvalidResource(OAuthError):
    """The resource named by the scope does not exist in the tenant."""

    oauth_error = "invalid_resource"


class AccessDenied(OAuthError):
    """The user or an administrator declined."""

    oauth_error = "access_denied"


class LoopDetected(OAuthError):
    """Entra saw too many identical requests (AADSTS50196); never retried."""

    hint = "Stop repeating the same request; wait a few minutes before trying again."


class ServerError(OAuthError):
    """Entra reported a server-side failure in a redirect or error body."""

    oauth_error = "server_error"


class AuthorizationPending(OAuthError):
    """Device code flow: the user has not finished signing in yet."""

    oauth_error = "authorization_pending"


class SlowDown(OAuthError):
    """Device code flow: poll less often."""

    oauth_error = "slow_down"


class ExpiredToken(OAuthError):
    """Device code flow: the device code expired before the user signed in."""

    oauth_error = "expired_token"


class AuthorizationDeclined(OAuthError):
    """Device code flow: the user declined."""

    oauth_error = "authorization_declined"


class BadVerificationCode(OAuthError):
    """Device code flow: the device code is not recognised."""

    oauth_error = "bad_verification_code"


_BY_ERROR: Mapping[str, Type[OAuthError]] = {
    cls.oauth_error: cls
    for cls in (
        InvalidGrant,
        InteractionRequired,
        InvalidClient,
        UnauthorizedClient,
        InvalidScope,
        InvalidRequest,
        InvalidTenant,
        InvalidResource,
        AccessDenied,
        ServerError,
        AuthorizationPending,
        SlowDown,
        ExpiredToken,
        AuthorizationDeclined,
        BadVerificationCode,
    )
    if cls.oauth_error
}
_BY_ERROR = {
    **_BY_ERROR,
    "consent_required": InteractionRequired,
    "login_required": InteractionRequired,
    "temporarily_unavailable": ServerError,
}

_AADSTS_IN_TEXT = re.compile(r"AADSTS(\d{4,9})")


def _codes(body: Mapping[str, Any]) -> Tuple[int, ...]:
    raw = body.get("error_codes")
    if isinstance(raw, list):
        codes = tuple(c for c in raw if isinstance(c, int) and not isinstance(c, bool))
        if codes:
            return codes
    description = body.get("error_description")
    if isinstance(description, str):
        match = _AADSTS_IN_TEXT.search(description)
        if match:
            return (int(match.group(1)),)
    return ()


def _optional_str(body: Mapping[str, Any], key: str) -> Optional[str]:
    value = body.get(key)
    return value if isinstance(value, str) else None


# RFC 8628 §3.5: in device code polling the `error` value itself is the signal.
_DEVICE_FLOW_ERRORS = frozenset(
    {"authorization_pending", "slow_down", "expired_token", "authorization_declined", "bad_verification_code"}
)


def _class_for(error: str, codes: Sequence[int]) -> Type[OAuthError]:
    """Pick the exception class for an error body.

    Loop detection (50196) always wins, then a federated credential mismatch (700211 ...). RFC
    8628's device-flow ``error`` values come next. Then the first known AADSTS code whose class
    agrees with ``error`` (old bodies list a generic code first, e.g. ``[70002, 54005]``), then the
    first known code (``invalid_grant`` carrying MFA's 50076 is :class:`InteractionRequired`), then
    the ``error`` value.
    """
    from .aadsts import AADSTS

    known = [AADSTS[code][0] for code in codes if code in AADSTS]
    if LoopDetected in known:
        return LoopDetected
    if FederatedCredentialRejected in known:  # more telling than a generic 70002 listed before it
        return FederatedCredentialRejected
    if error in _DEVICE_FLOW_ERRORS:
        return _BY_ERROR[error]
    agreeing = [cls for cls in known if cls.oauth_error == error]
    if agreeing:
        return agreeing[0]
    return known[0] if known else _BY_ERROR.get(error, OAuthError)


def oauth_error_from_body(body: Mapping[str, Any], *, status: Optional[int] = None) -> OAuthError:
    """Build the typed error for an Entra error body (token endpoint JSON or redirect query).

    The class comes from the first AADSTS code when the table knows it, else from ``error``.
    Only string fields are taken, so a hostile body cannot smuggle other types in.
    """
    error = _optional_str(body, "error") or "unknown_error"
    codes = _codes(body)
    cls = _class_for(error, codes)
    return cls(
        error,
        _optional_str(body, "error_description") or "",
        error_codes=codes,
        suberror=_optional_str(body, "suberror"),
        trace_id=_optional_str(body, "trace_id"),
        correlation_id=_optional_str(body, "correlation_id"),
        timestamp=_optional_str(body, "timestamp"),
        error_uri=_optional_str(body, "error_uri"),
        claims=_optional_str(body, "claims"),
        status=status,
    )


def __getattr__(name: str) -> Any:
    """``AADSTS`` is loaded on first use (PEP 562), so that its module can import the classes above."""
    if name == "AADSTS":
        from .aadsts import AADSTS

        return AADSTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
