"""oauth_core: Microsoft Entra ID tokens over raw HTTP (httpx, pyjwt, tenacity), without MSAL.

The public surface is re-exported here. The protocol core, claims and errors import only the
standard library; the clients (httpx, tenacity) load lazily on first use (PEP 562), so
``import oauth_core`` and ``oauth-core decode`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .authority import (
    Authority as Authority,
)
from .authorize import (
    PendingAuthorization as PendingAuthorization,
)
from .authorize import (
    build_authorization_request as build_authorization_request,
)
from .authorize import (
    parse_redirect as parse_redirect,
)
from .claims import (
    TokenInfo as TokenInfo,
)
from .claims import (
    decode_claims as decode_claims,
)
from .claims import (
    inspect_token as inspect_token,
)
from .claims import (
    unverified_claims as unverified_claims,
)
from .claims import (
    unverified_header as unverified_header,
)
from .claims import (
    verify_signature as verify_signature,
)
from .errors import (
    AADSTS as AADSTS,
)
from .errors import (
    AccessDenied as AccessDenied,
)
from .errors import (
    AuthorizationDeclined as AuthorizationDeclined,
)
from .errors import (
    AuthorizationPending as AuthorizationPending,
)
from .errors import (
    BadVerificationCode as BadVerificationCode,
)
from .errors import (
    ConfigError as ConfigError,
)
from .errors import (
    ExpiredToken as ExpiredToken,
)
from .errors import (
    InsecureAuthorityError as InsecureAuthorityError,
)
from .errors import (
    InteractionRequired as InteractionRequired,
)
from .errors import (
    InteractionTimeout as InteractionTimeout,
)
from .errors import (
    InvalidClient as InvalidClient,
)
from .errors import (
    InvalidGrant as InvalidGrant,
)
from .errors import (
    InvalidRequest as InvalidRequest,
)
from .errors import (
    InvalidResource as InvalidResource,
)
from .errors import (
    InvalidScope as InvalidScope,
)
from .errors import (
    InvalidTenant as InvalidTenant,
)
from .errors import (
    LoopDetected as LoopDetected,
)
from .errors import (
    NonceMismatch as NonceMismatch,
)
from .errors import (
    OAuthCoreError as OAuthCoreError,
)
from .errors import (
    OAuthError as OAuthError,
)
from .errors import (
    RedirectError as RedirectError,
)
from .errors import (
    ResponseFormatError as ResponseFormatError,
)
from .errors import (
    SecurityCheckError as SecurityCheckError,
)
from .errors import (
    ServerError as ServerError,
)
from .errors import (
    SignatureVerificationError as SignatureVerificationError,
)
from .errors import (
    SlowDown as SlowDown,
)
from .errors import (
    StateMismatch as StateMismatch,
)
from .errors import (
    TokenDecodeError as TokenDecodeError,
)
from .errors import (
    TransientError as TransientError,
)
from .errors import (
    TransportError as TransportError,
)
from .errors import (
    UnauthorizedClient as UnauthorizedClient,
)
from .protocol import (
    DATABRICKS_SCOPE as DATABRICKS_SCOPE,
)
from .protocol import (
    HttpRequest as HttpRequest,
)
from .protocol import (
    HttpResponse as HttpResponse,
)
from .protocol import (
    TokenSet as TokenSet,
)
from .protocol import (
    build_token_request as build_token_request,
)
from .protocol import (
    parse_token_response as parse_token_response,
)

if TYPE_CHECKING:  # pragma: no cover - the lazy names, for type checkers
    from .client import EntraClient as EntraClient
    from .retry import RetryPolicy as RetryPolicy

__version__ = "0.1.0"

_LAZY = {"EntraClient": "client", "RetryPolicy": "retry"}

__all__ = [
    "AADSTS",
    "AccessDenied",
    "Authority",
    "AuthorizationDeclined",
    "AuthorizationPending",
    "BadVerificationCode",
    "ConfigError",
    "DATABRICKS_SCOPE",
    "EntraClient",
    "ExpiredToken",
    "HttpRequest",
    "HttpResponse",
    "InsecureAuthorityError",
    "InteractionRequired",
    "InteractionTimeout",
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
    "PendingAuthorization",
    "RedirectError",
    "ResponseFormatError",
    "RetryPolicy",
    "SecurityCheckError",
    "ServerError",
    "SignatureVerificationError",
    "SlowDown",
    "StateMismatch",
    "TokenDecodeError",
    "TokenInfo",
    "TokenSet",
    "TransientError",
    "TransportError",
    "UnauthorizedClient",
    "__version__",
    "build_authorization_request",
    "build_token_request",
    "decode_claims",
    "inspect_token",
    "parse_redirect",
    "parse_token_response",
    "unverified_claims",
    "unverified_header",
    "verify_signature",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oauth_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"oauth_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
