"""The keys of a token cache: scope sets, accounts, tenants, and where one client's tokens live.

Pure and small: :mod:`oauth_core.core.cache_rules` (what a cache holds and how flows change it)
builds on these, and re-exports them.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from .messages import TokenSet

__all__ = ["APP_ACCOUNT", "CacheScope", "account_of", "scope_key", "tenant_key", "tokens_key"]

APP_ACCOUNT = "app"  # the account of app-only (client credentials) tokens
_OIDC = frozenset({"offline_access", "openid", "profile", "email"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def scope_key(scopes: Sequence[str]) -> str:
    """The scope set as a stable key: resource scopes only (OIDC ones never change the token), sorted."""
    return _scope_key(tuple(scopes))


@functools.lru_cache(maxsize=256)  # every lookup, save and lock computes it; a process uses a few scope sets
def _scope_key(scopes: Tuple[str, ...]) -> str:
    resource = sorted({s for s in scopes if s.lower() not in _OIDC})
    return " ".join(resource or sorted(set(scopes)))


def account_of(
    raw: Mapping[str, Any], claims: Optional[Mapping[str, Any]], id_claims: Optional[Mapping[str, Any]]
) -> str:
    """The account a token response belongs to: ``uid.utid`` from client_info, else ``oid.tid``.

    App-only tokens (client credentials) belong to the account ``app``.
    """
    info = raw.get("client_info")
    if isinstance(info, str):
        try:
            decoded = json.loads(base64.urlsafe_b64decode(info + "=" * (-len(info) % 4)))
            if (
                isinstance(decoded, dict)
                and isinstance(decoded.get("uid"), str)
                and isinstance(decoded.get("utid"), str)
            ):
                return f"{decoded['uid']}.{decoded['utid']}"
        except (ValueError, TypeError):
            pass
    for source in (id_claims, claims):
        if source and isinstance(source.get("oid"), str) and isinstance(source.get("tid"), str):
            if source.get("idtyp") == "app":
                return APP_ACCOUNT
            return f"{source['oid']}.{source['tid']}"
    return APP_ACCOUNT if claims is not None and "scp" not in claims else "unknown"


# A NamedTuple, not a dataclass: the ``token`` command's cache-hit path builds one without loading
# dataclasses (and inspect, which it imports).
class CacheScope(NamedTuple):
    """Which part of the cache one client uses: its authority host, tenant and client id."""

    host: str
    tenant: str
    client_id: str

    def at_key(self, account: str, scopes: Sequence[str]) -> str:
        """The key of the access token of ``account`` for ``scopes`` (also its single-flight lock)."""
        return "|".join((self.host, self.tenant, self.client_id, account, scope_key(scopes)))

    def account_key(self, account: str) -> str:
        """The key of an account's record and refresh token."""
        # Entra refresh tokens are bound to client and account, not to a resource or tenant.
        return "|".join((self.host, self.client_id, account))


@functools.lru_cache(maxsize=64)
def _is_guid(tenant: str) -> bool:
    return _GUID.match(tenant) is not None


def tenant_key(tenant: str, token_tenant: Optional[str] = None) -> str:
    """The tenant part of cache keys: a GUID as it is (lower-cased); for an alias or a domain the
    tenant id the tokens came from (``tid``), when known, so every spelling of one tenant shares keys."""
    if _is_guid(tenant):
        return tenant.lower()
    return token_tenant.lower() if token_tenant and _is_guid(token_tenant) else tenant


def tokens_key(where: CacheScope, tokens: TokenSet, account: str, scopes: Sequence[str]) -> str:
    """The key :func:`store` files ``tokens`` of ``account`` under."""
    tid = (tokens.claims or {}).get("tid")
    tenant = tenant_key(where.tenant, tid if isinstance(tid, str) else None)
    return CacheScope(where.host, tenant, where.client_id).at_key(account, tuple(scopes) or tokens.scopes)
