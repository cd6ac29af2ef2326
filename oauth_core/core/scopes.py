"""Scopes: checked, de-duplicated, and the one default a client asks for when given none.

The default is the only product choice in the core: oauth_core was made first for Azure
Databricks, so :data:`DEFAULT_SCOPES` is the Azure Databricks scope. Everything else about
Databricks (workspace hosts, headers, REST calls) lives in :mod:`oauth_core.integrations.databricks`.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Sequence, Tuple, Union

from .errors import ConfigError

__all__ = ["DATABRICKS_SCOPE", "DEFAULT_SCOPES", "OIDC_SCOPES", "normalize_scopes"]

# The Azure Databricks resource (a fixed, first-party application id) and its v2.0 scope.
DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
# What a client asks for when nobody named a scope: the one place that default is decided.
DEFAULT_SCOPES: Tuple[str, ...] = (DATABRICKS_SCOPE,)
# Asked for on user grants so that a refresh token and an id_token come back.
OIDC_SCOPES: Tuple[str, ...] = ("offline_access", "openid", "profile")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token characters


def normalize_scopes(
    scopes: Union[None, str, Iterable[str]],
    *,
    default: Union[str, Iterable[str]] = DEFAULT_SCOPES,
    offline_access: bool = False,
) -> Tuple[str, ...]:
    """Split, check and de-duplicate scopes, keeping their order (the first resource wins at Entra).

    ``scopes`` None means ``default`` (:data:`DEFAULT_SCOPES` unless given). With
    ``offline_access=True`` the OIDC scopes ``offline_access openid profile`` are appended, so
    user grants get a refresh token and an id_token back.

    Raises:
        ConfigError: an empty scope list, or a scope with characters RFC 6749 forbids.
    """
    if scopes is None:
        scopes = default
    items: Sequence[str]
    if isinstance(scopes, str):
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
