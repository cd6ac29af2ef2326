"""The refusals of a federated password sign-in (user realm, MEX, WS-Trust), under :class:`OAuthCoreError`.

::

    OAuthCoreError
    └── FederationError                     the federated sign-in could not be completed
        ├── FederationNotSupported          the realm's federation cannot take a password here
        │   └── NoUsernamePasswordEndpoint  the MEX document lists no usernamemixed endpoint
        ├── FederatedSignInFailed           the federation service answered a SOAP fault (bad password ...)
        ├── UserRealmLookupFailed           (a ResponseFormatError) the user realm lookup failed
        └── MalformedFederationResponse     (a ResponseFormatError) MEX or RSTR that is not WS-Trust

No message or attribute holds the password: the fault's text comes from the federation service,
and :func:`oauth_core.core.wstrust.parse_rstr` removes the values it is told to redact.
"""

from __future__ import annotations

from typing import Optional

from .errors import OAuthCoreError, ResponseFormatError

__all__ = [
    "FederatedSignInFailed",
    "FederationError",
    "FederationNotSupported",
    "MalformedFederationResponse",
    "NoUsernamePasswordEndpoint",
    "UserRealmLookupFailed",
]


class FederationError(OAuthCoreError):
    """A federated user's password sign-in (WS-Trust) could not be completed."""


class FederationNotSupported(FederationError):
    """The user's domain is federated in a way this client cannot use with a password.

    For example a federation protocol other than WS-Trust, no metadata or sign-in address, an
    endpoint that is not https, or an assertion type other than SAML 1.1 and 2.0.
    """

    hint = "Sign in interactively (browser or device code): the organisation's sign-in service takes no password here."


class NoUsernamePasswordEndpoint(FederationNotSupported):
    """The federation metadata (MEX) lists no WS-Trust username/password (``usernamemixed``) endpoint."""


class FederatedSignInFailed(FederationError):
    """The federation service (e.g. AD FS) refused the request with a SOAP fault, typically a wrong password.

    Attributes:
        code: the SOAP fault code (``s:Sender``, ``s:Receiver``, or SOAP 1.1's ``faultcode``).
        subcode: the fault's subcode, e.g. ``a:FailedAuthentication``, if any.
        reason: the service's text, e.g. ``MSIS7068: Access denied.`` (made printable, shortened).
        status: the HTTP status it came with (AD FS sends 500 for a wrong password).
    """

    hint = "Check the username and password: the organisation's own sign-in service (e.g. AD FS) refused them."

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        subcode: Optional[str] = None,
        reason: Optional[str] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.status = status


class UserRealmLookupFailed(FederationError, ResponseFormatError):
    """The user realm lookup (``/common/userrealm/{user}``) answered an error or something that is not JSON.

    Attributes (from :class:`ResponseFormatError`): ``status`` and a redacted ``snippet`` of the body.
    """


class MalformedFederationResponse(FederationError, ResponseFormatError):
    """A MEX document or WS-Trust response that is not well-formed XML, holds a DTD, or is not WS-Trust.

    Attributes (from :class:`ResponseFormatError`): ``status`` and a redacted ``snippet`` of the body.
    """
