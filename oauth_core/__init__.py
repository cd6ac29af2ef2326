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
    from .core.assertion import (
        ClientCertificate as ClientCertificate,
    )
    from .core.authority import (
        Authority as Authority,
    )
    from .core.authorize import (
        PendingAuthorization as PendingAuthorization,
        build_authorization_request as build_authorization_request,
        parse_redirect as parse_redirect,
    )
    from .core.claims import (
        TokenInfo as TokenInfo,
        decode_claims as decode_claims,
        inspect_token as inspect_token,
        unverified_claims as unverified_claims,
        unverified_header as unverified_header,
        verify_signature as verify_signature,
        verify_with_refresh as verify_with_refresh,
    )
    from .core.device import (
        DeviceCode as DeviceCode,
    )
    from .core.errors import (
        AADSTS as AADSTS,
        AccessDenied as AccessDenied,
        AuthorizationDeclined as AuthorizationDeclined,
        AuthorizationPending as AuthorizationPending,
        BadVerificationCode as BadVerificationCode,
        CacheError as CacheError,
        ConfigError as ConfigError,
        ExpiredToken as ExpiredToken,
        FederatedCredentialRejected as FederatedCredentialRejected,
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
    from .core.grants import (
        build_token_request as build_token_request,
    )
    from .core.identity import (
        IdentitySource as IdentitySource,
    )
    from .core.identity_errors import (
        IdentityNotFound as IdentityNotFound,
        IdentityUnavailable as IdentityUnavailable,
        ManagedIdentityError as ManagedIdentityError,
        NoIdentityAssigned as NoIdentityAssigned,
        ResourceNotPermitted as ResourceNotPermitted,
    )
    from .core.managed import (
        CredentialUnavailable as CredentialUnavailable,
        LinkReport as LinkReport,
    )
    from .core.messages import (
        HttpRequest as HttpRequest,
        HttpResponse as HttpResponse,
        TokenSet as TokenSet,
        parse_token_response as parse_token_response,
    )
    from .core.scopes import (
        DATABRICKS_SCOPE as DATABRICKS_SCOPE,
    )
    from .core.throttle import (
        Throttled as Throttled,
    )
    from .core.wstrust_errors import (
        FederatedSignInFailed as FederatedSignInFailed,
        FederationError as FederationError,
        FederationNotSupported as FederationNotSupported,
    )
    from .drivers.aio import (
        AsyncEntraClient as AsyncEntraClient,
    )
    from .drivers.chain import (
        DefaultCredential as DefaultCredential,
    )
    from .drivers.federated import (
        CiOidcToken as CiOidcToken,
        FederatedTokenFile as FederatedTokenFile,
        WorkloadIdentity as WorkloadIdentity,
    )
    from .drivers.identity import (
        AsyncManagedIdentity as AsyncManagedIdentity,
        ManagedIdentity as ManagedIdentity,
    )
    from .drivers.redis_store import (
        RedisTokenCache as RedisTokenCache,
    )
    from .drivers.retry import (
        RetryPolicy as RetryPolicy,
    )
    from .drivers.stores import (
        FileTokenCache as FileTokenCache,
        MemoryTokenCache as MemoryTokenCache,
    )
    from .drivers.sync import (
        EntraClient as EntraClient,
    )
    from .integrations.azure_core import (
        AsyncAzureCoreCredential as AsyncAzureCoreCredential,
        AzureCoreCredential as AzureCoreCredential,
    )
    from .integrations.databricks import (
        DatabricksAuth as DatabricksAuth,
        workspace_tenant as workspace_tenant,
    )
    from .integrations.databricks_sdk import (
        DatabricksCredentials as DatabricksCredentials,
    )
    from .integrations.httpx_auth import (
        EntraAuth as EntraAuth,
    )

_LAZY = {
    "AADSTS": "core.aadsts",
    "AccessDenied": "core.errors",
    "AsyncEntraClient": "drivers.aio",
    "Authority": "core.authority",
    "AuthorizationDeclined": "core.errors",
    "AuthorizationPending": "core.errors",
    "BadVerificationCode": "core.errors",
    "ClientCertificate": "core.assertion",
    "CacheError": "core.errors",
    "ConfigError": "core.errors",
    "DATABRICKS_SCOPE": "core.scopes",
    "DatabricksAuth": "integrations.databricks",
    "DeviceCode": "core.device",
    "EntraAuth": "integrations.httpx_auth",
    "EntraClient": "drivers.sync",
    "ExpiredToken": "core.errors",
    "FileTokenCache": "drivers.stores",
    "HttpRequest": "core.messages",
    "HttpResponse": "core.messages",
    "InsecureAuthorityError": "core.errors",
    "InteractionRequired": "core.errors",
    "InteractionTimeout": "core.errors",
    "InvalidClient": "core.errors",
    "InvalidGrant": "core.errors",
    "InvalidRequest": "core.errors",
    "InvalidResource": "core.errors",
    "InvalidScope": "core.errors",
    "InvalidTenant": "core.errors",
    "LoopDetected": "core.errors",
    "MemoryTokenCache": "drivers.stores",
    "NonceMismatch": "core.errors",
    "OAuthCoreError": "core.errors",
    "OAuthError": "core.errors",
    "PendingAuthorization": "core.authorize",
    "RedirectError": "core.errors",
    "RedisTokenCache": "drivers.redis_store",
    "ResponseFormatError": "core.errors",
    "RetryPolicy": "drivers.retry",
    "SecurityCheckError": "core.errors",
    "ServerError": "core.errors",
    "SignatureVerificationError": "core.errors",
    "SlowDown": "core.errors",
    "StateMismatch": "core.errors",
    "TokenDecodeError": "core.errors",
    "TokensNotSaved": "core.errors",
    "TokenInfo": "core.claims",
    "TokenSet": "core.messages",
    "TransientError": "core.errors",
    "TransportError": "core.errors",
    "UnauthorizedClient": "core.errors",
    "UnknownSigningKey": "core.errors",
    "build_authorization_request": "core.authorize",
    "build_token_request": "core.grants",
    "decode_claims": "core.claims",
    "inspect_token": "core.claims",
    "parse_redirect": "core.authorize",
    "parse_token_response": "core.messages",
    "unverified_claims": "core.claims",
    "unverified_header": "core.claims",
    "verify_signature": "core.claims",
    "verify_with_refresh": "core.claims",
    "ManagedIdentity": "drivers.identity",
    "AsyncManagedIdentity": "drivers.identity",
    "WorkloadIdentity": "drivers.federated",
    "FederatedTokenFile": "drivers.federated",
    "CiOidcToken": "drivers.federated",
    "DefaultCredential": "drivers.chain",
    "CredentialUnavailable": "core.managed",
    "LinkReport": "core.managed",
    "ManagedIdentityError": "core.identity_errors",
    "IdentityUnavailable": "core.identity_errors",
    "IdentityNotFound": "core.identity_errors",
    "NoIdentityAssigned": "core.identity_errors",
    "ResourceNotPermitted": "core.identity_errors",
    "FederatedCredentialRejected": "core.errors",
    "IdentitySource": "core.identity",
    "Throttled": "core.throttle",
    "FederationError": "core.wstrust_errors",
    "FederatedSignInFailed": "core.wstrust_errors",
    "FederationNotSupported": "core.wstrust_errors",
    "AzureCoreCredential": "integrations.azure_core",
    "AsyncAzureCoreCredential": "integrations.azure_core",
    "DatabricksCredentials": "integrations.databricks_sdk",
    "workspace_tenant": "integrations.databricks",
}

__all__ = [
    "AADSTS",
    "AccessDenied",
    "AsyncAzureCoreCredential",
    "AsyncEntraClient",
    "AsyncManagedIdentity",
    "Authority",
    "AuthorizationDeclined",
    "AuthorizationPending",
    "AzureCoreCredential",
    "BadVerificationCode",
    "CacheError",
    "CiOidcToken",
    "ClientCertificate",
    "ConfigError",
    "CredentialUnavailable",
    "DATABRICKS_SCOPE",
    "DatabricksAuth",
    "DatabricksCredentials",
    "DefaultCredential",
    "DeviceCode",
    "EntraAuth",
    "EntraClient",
    "ExpiredToken",
    "FederatedCredentialRejected",
    "FederatedSignInFailed",
    "FederatedTokenFile",
    "FederationError",
    "FederationNotSupported",
    "FileTokenCache",
    "HttpRequest",
    "HttpResponse",
    "IdentityNotFound",
    "IdentitySource",
    "IdentityUnavailable",
    "InsecureAuthorityError",
    "InteractionRequired",
    "InteractionTimeout",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidResource",
    "InvalidScope",
    "InvalidTenant",
    "LinkReport",
    "LoopDetected",
    "ManagedIdentity",
    "ManagedIdentityError",
    "MemoryTokenCache",
    "NoIdentityAssigned",
    "NonceMismatch",
    "OAuthCoreError",
    "OAuthError",
    "PendingAuthorization",
    "RedirectError",
    "RedisTokenCache",
    "ResourceNotPermitted",
    "ResponseFormatError",
    "RetryPolicy",
    "SecurityCheckError",
    "ServerError",
    "SignatureVerificationError",
    "SlowDown",
    "StateMismatch",
    "Throttled",
    "TokenDecodeError",
    "TokenInfo",
    "TokenSet",
    "TokensNotSaved",
    "TransientError",
    "TransportError",
    "UnauthorizedClient",
    "UnknownSigningKey",
    "WorkloadIdentity",
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
