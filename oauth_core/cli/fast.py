"""``oauth-core token``'s cache-hit path: the cached token, found without the HTTP stack.

A shell loop (``curl -H "Authorization: Bearer $(oauth-core token)"``) runs ``token`` once per
request, and nearly always the cache holds a fresh token. This path reads the 0600 cache file with
the same checks as :class:`~oauth_core.drivers.stores.FileTokenCache` and applies the same rules as
``get_token``'s fast path, importing neither httpx, tenacity, pyjwt nor cryptography. Whenever it
cannot answer for sure (no fresh token, a claims request, another cache, anything odd), it returns
None and the ordinary path runs, which reports any problem properly.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING, Optional

from .settings import authority_host, client_id, read_env, tenant, trusted_hosts
from .usage import UsageError

if TYPE_CHECKING:
    from ..core.cache_lookup import CacheEntry

__all__ = ["cached_entry"]


def _file_cache_selected(args: argparse.Namespace) -> bool:
    if getattr(args, "no_cache", False) or getattr(args, "claims", None):
        return False
    spec = getattr(args, "cache", None) or read_env("OAUTH_CORE_CACHE") or "file"
    return spec == "file"


def cached_entry(args: argparse.Namespace) -> Optional[CacheEntry]:
    """The fresh cached token ``token`` would print for these options, or None (take the ordinary path).

    The modules it loads hold no dataclasses: importing those (and inspect) would cost a shell loop
    more than the rest of the lookup.
    """
    if not _file_cache_selected(args):
        return None
    from ..core.cache_keys import CacheScope, tenant_key
    from ..core.cache_lookup import fresh_entry, resolve_account, validated
    from ..core.errors import CacheError, OAuthCoreError
    from ..core.hosts import DEFAULT_AUTHORITY_HOST, DEFAULT_TENANT, check_tenant, normalise_host, require_trusted_host
    from ..core.scopes import normalize_scopes
    from ..drivers.files import read_private_bytes, size_cap, state_dir, strict_json

    try:
        host = normalise_host(authority_host(args) or DEFAULT_AUTHORITY_HOST)
        require_trusted_host(host, trusted_hosts(args))
        where = CacheScope(host, tenant_key(check_tenant(tenant(args) or DEFAULT_TENANT)), client_id(args))
        path = state_dir() / "tokens.json"
        limit = size_cap(None, "OAUTH_CORE_CACHE_MAX_BYTES", 64 * 1024 * 1024)
        found = read_private_bytes(path, max_bytes=limit, what="the token cache", error=CacheError)
        if found is None:
            return None
        state = validated(strict_json(found[0]), os.fspath(path))
        account = resolve_account(state, where, getattr(args, "account", None))
        return fresh_entry(state, where, account, normalize_scopes(args.scope), args.min_validity, time.time())
    except (OAuthCoreError, UsageError, OSError, ValueError):
        return None  # the ordinary path meets the same problem and reports it
