"""oauth_core: Microsoft Entra ID tokens over raw HTTP (httpx, pyjwt, tenacity), without MSAL.

The public surface is re-exported here. Imports are lazy (PEP 562), so ``import oauth_core``
and claim decoding stay cheap: httpx and tenacity load only when a client is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AADSTS": "errors",
    "AccessDenied": "errors",
    "Authority": "authority",
    "AuthorizationDeclined": "errors",
    "AuthorizationPending": "errors",
    "BadVerificationCode": "errors",
    "ConfigError": "errors",
    "DATABRICKS_SCOPE": "protocol",
    "EntraClient": "client",
    "ExpiredToken": "errors",
    "HttpRequest": "protocol",
    "HttpResponse": "protocol",
    "InsecureAuthorityError": "errors",
    "InteractionRequired": "errors",
    "InteractionTimeout": "errors",
    "InvalidClient": "errors",
    "InvalidGrant": "errors",
    "InvalidRequest": "errors",
    "InvalidResource": "errors",
    "InvalidScope": "errors",
    "InvalidTenant": "errors",
    "LoopDetected": "errors",
    "NonceMismatch": "errors",
    "OAuthCoreError": "errors",
    "OAuthError": "errors",
    "PendingAuthorization": "authorize",
    "RedirectError": "errors",
    "ResponseFormatError": "errors",
    "RetryPolicy": "retry",
    "SecurityCheckError": "errors",
    "ServerError": "errors",
    "SignatureVerificationError": "errors",
    "SlowDown": "errors",
    "StateMismatch": "errors",
    "TokenDecodeError": "errors",
    "TokenInfo": "claims",
    "TokenSet": "protocol",
    "TransientError": "errors",
    "TransportError": "errors",
    "UnauthorizedClient": "errors",
    "build_authorization_request": "authorize",
    "build_token_request": "protocol",
    "decode_claims": "claims",
    "inspect_token": "claims",
    "parse_redirect": "authorize",
    "parse_token_response": "protocol",
    "unverified_claims": "claims",
    "unverified_header": "claims",
    "verify_signature": "claims",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oauth_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"oauth_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .authority import Authority
    from .authorize import PendingAuthorization, build_authorization_request, parse_redirect
    from .claims import TokenInfo, decode_claims, inspect_token, unverified_claims, unverified_header, verify_signature
    from .client import EntraClient
    from .errors import (
        AADSTS,
        AccessDenied,
        AuthorizationDeclined,
        AuthorizationPending,
        BadVerificationCode,
        ConfigError,
        ExpiredToken,
        InsecureAuthorityError,
        InteractionRequired,
        InvalidClient,
        InvalidGrant,
        InvalidRequest,
        InvalidResource,
        InvalidScope,
        InvalidTenant,
        LoopDetected,
        NonceMismatch,
        OAuthCoreError,
        OAuthError,
        RedirectError,
        ResponseFormatError,
        SecurityCheckError,
        ServerError,
        SignatureVerificationError,
        SlowDown,
        StateMismatch,
        TokenDecodeError,
        TransientError,
        TransportError,
        UnauthorizedClient,
    )
    from .protocol import (
        DATABRICKS_SCOPE,
        HttpRequest,
        HttpResponse,
        TokenSet,
        build_token_request,
        parse_token_response,
    )
    from .retry import RetryPolicy
