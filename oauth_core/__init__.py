"""oauth_core: Microsoft Entra ID tokens over raw HTTP (httpx, pyjwt, tenacity), without MSAL.

The public surface is re-exported here, lazily (PEP 562): a name's module is imported on first
use, so ``import oauth_core`` costs almost nothing and ``oauth-core decode`` or ``--help`` never
load httpx, tenacity or pyjwt. Type checkers see every name through the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .aio import (
        AsyncEntraClient as AsyncEntraClient,
    )
    from .assertion import (
        ClientCertificate as ClientCertificate,
    )
    from .auth import (
        EntraAuth as EntraAuth,
    )
    from .authority import (
        Authority as Authority,
    )
    from .authorize import (
        PendingAuthorization as PendingAuthorization,
        build_authorization_request as build_authorization_request,
        parse_redirect as parse_redirect,
    )
    from .claims import (
        TokenInfo as TokenInfo,
        decode_claims as decode_claims,
        inspect_token as inspect_token,
        unverified_claims as unverified_claims,
        unverified_header as unverified_header,
        verify_signature as verify_signature,
        verify_with_refresh as verify_with_refresh,
    )
    from .client import (
        EntraClient as EntraClient,
    )
    from .databricks import (
        workspace_tenant as workspace_tenant,
    )
    from .device import (
        DeviceCode as DeviceCode,
    )
    from .errors import (
        AADSTS as AADSTS,
        AccessDenied as AccessDenied,
        AuthorizationDeclined as AuthorizationDeclined,
        AuthorizationPending as AuthorizationPending,
        BadVerificationCode as BadVerificationCode,
        CacheError as CacheError,
        ConfigError as ConfigError,
        ExpiredToken as ExpiredToken,
        InsecureAuthorityError as InsecureAuthorityError,
        InteractionRequired as InteractionRequired,
        InteractionTimeout as InteractionTimeout,
        InvalidClient as InvalidClient,
        InvalidGrant as InvalidGrant,
        InvalidRequest as InvalidRequest,
        InvalidResource as InvalidResource,
        InvalidScope as InvalidScope,
        InvalidTenant as InvalidTenant,
        LoopDetected as LoopDetected,
        NonceMismatch as NonceMismatch,
        OAuthCoreError as OAuthCoreError,
        OAuthError as OAuthError,
        RedirectError as RedirectError,
        ResponseFormatError as ResponseFormatError,
        SecurityCheckError as SecurityCheckError,
        ServerError as ServerError,
        SignatureVerificationError as SignatureVerificationError,
        SlowDown as SlowDown,
        StateMismatch as StateMismatch,
        TokenDecodeError as TokenDecodeError,
        TokensNotSaved as TokensNotSaved,
        TransientError as TransientError,
        TransportError as TransportError,
        UnauthorizedClient as UnauthorizedClient,
        UnknownSigningKey as UnknownSigningKey,
    )
    from .protocol import (
        DATABRICKS_SCOPE as DATABRICKS_SCOPE,
        HttpRequest as HttpRequest,
        HttpResponse as HttpResponse,
        TokenSet as TokenSet,
        build_token_request as build_token_request,
        parse_token_response as parse_token_response,
    )
    from .retry import (
        RetryPolicy as RetryPolicy,
    )

_LAZY = {
    "AADSTS": "errors",
    "AccessDenied": "errors",
    "AsyncEntraClient": "aio",
    "Authority": "authority",
    "AuthorizationDeclined": "errors",
    "AuthorizationPending": "errors",
    "BadVerificationCode": "errors",
    "ClientCertificate": "assertion",
    "CacheError": "errors",
    "ConfigError": "errors",
    "DATABRICKS_SCOPE": "protocol",
    "DeviceCode": "device",
    "EntraAuth": "auth",
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
    "TokensNotSaved": "errors",
    "TokenInfo": "claims",
    "TokenSet": "protocol",
    "TransientError": "errors",
    "TransportError": "errors",
    "UnauthorizedClient": "errors",
    "UnknownSigningKey": "errors",
    "build_authorization_request": "authorize",
    "build_token_request": "protocol",
    "decode_claims": "claims",
    "inspect_token": "claims",
    "parse_redirect": "authorize",
    "parse_token_response": "protocol",
    "unverified_claims": "claims",
    "unverified_header": "claims",
    "verify_signature": "claims",
    "verify_with_refresh": "claims",
    "workspace_tenant": "databricks",
}

__all__ = [
    "AADSTS",
    "AccessDenied",
    "AsyncEntraClient",
    "Authority",
    "AuthorizationDeclined",
    "AuthorizationPending",
    "BadVerificationCode",
    "CacheError",
    "ClientCertificate",
    "ConfigError",
    "DATABRICKS_SCOPE",
    "DeviceCode",
    "EntraAuth",
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
    "TokensNotSaved",
    "TransientError",
    "TransportError",
    "UnauthorizedClient",
    "UnknownSigningKey",
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
    "verify_with_refresh",
    "workspace_tenant",
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
