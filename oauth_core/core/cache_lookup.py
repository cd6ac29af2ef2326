"""Reading a token cache state: its validation, its keys' records, and whether a token is fresh.

Pure functions over the JSON-shaped state described in :mod:`oauth_core.core.cache_rules`, which
re-exports them. Nothing here loads dataclasses, the claims decoder or the token response types:
the ``token`` command's cache-hit path uses this module alone to find what it prints.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

from .cache_index import index_of as _index
from .cache_keys import CacheScope, _is_guid, scope_key, tenant_key
from .errors import CacheError, ConfigError

__all__ = [
    "SECTIONS",
    "START_AFRESH",
    "VERSION",
    "CacheEntry",
    "State",
    "empty_state",
    "find_access_token",
    "find_refresh_token",
    "fresh_entry",
    "freshness",
    "key_of",
    "resolve_account",
    "scope_of",
    "validated",
]

VERSION = 1
SECTIONS = ("access_tokens", "refresh_tokens", "accounts", "flags")
START_AFRESH = "delete the file to start afresh: only cached tokens are lost, and signing in again recreates it"

State = Dict[str, Any]


def empty_state() -> State:
    """A cache with nothing in it."""
    return {"version": VERSION, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}


def _damaged(where: str, problem: str, hint: str = START_AFRESH) -> CacheError:
    error = CacheError(f"the token cache {where!r} {problem}; delete it to start afresh")
    error.hint = hint
    return error


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def validated(state: Any, where: str) -> State:
    """``state`` when it is a cache of this version with every section; ``where`` names it in errors.

    Raises:
        CacheError: (with a ``hint``) not a cache, another version, or a section missing or not an object.
    """
    if not isinstance(state, dict):
        raise _damaged(where, f"is not a token cache (its JSON is {_kind(state)}, not an object)")
    if "version" not in state:
        raise _damaged(where, "is not a token cache (it has no version)")
    version = state["version"]
    if version != VERSION or type(version) is not int:
        shown = json.dumps(version)[:40] if not isinstance(version, (dict, list)) else _kind(version)
        raise _damaged(
            where,
            f"is of unknown version {shown} (this oauth-core reads version {VERSION})",
            "it was written by another version of oauth-core: use that version, or delete the file to start afresh",
        )
    for section in SECTIONS:
        if section not in state:
            raise _damaged(where, f"is damaged: section {section!r} is missing")
        if not isinstance(state[section], dict):
            kind = _kind(state[section])
            raise _damaged(where, f"is damaged: section {section!r} has the wrong type ({kind}, not an object)")
    return state


class CacheEntry(NamedTuple):
    """A cached access token (no refresh token here: those are kept per account)."""

    access_token: str
    token_type: str
    scopes: Tuple[str, ...]
    expires_at: float
    refresh_at: Optional[float]
    account: str
    username: Optional[str]

    def __repr__(self) -> str:
        return f"CacheEntry(account={self.account!r}, scopes={self.scopes!r}, expires_at={self.expires_at!r})"


def _record(state: State, section: str, key: str) -> Dict[str, Any]:
    """One record of a section, or an empty dict when it is absent or not an object (hand-edited)."""
    value = state[section].get(key)
    return value if isinstance(value, dict) else {}


def scope_of(state: State, where: CacheScope, account: str) -> CacheScope:
    """``where`` with the tenant its tokens for ``account`` are kept under (see :func:`tenant_key`)."""
    if _is_guid(where.tenant):
        return where
    known = _record(state, "accounts", where.account_key(account)).get("tenants")
    tid = known.get(where.tenant.lower()) if isinstance(known, dict) else None
    tenant = tenant_key(where.tenant, tid if isinstance(tid, str) else None)
    return where if tenant == where.tenant else CacheScope(where.host, tenant, where.client_id)


def key_of(state: State, where: CacheScope, account: str, scopes: Sequence[str]) -> str:
    """The key of ``account``'s access token for ``scopes`` (also its flags' and single-flight lock's)."""
    return scope_of(state, where, account).at_key(account, scopes)


def _superset(state: State, where: CacheScope, account: str, scopes: Sequence[str]) -> Any:
    """The longest-lived access token of ``account`` whose scopes include all of ``scopes``, or None."""
    wanted = set(scope_key(scopes).split(" "))
    prefix = "|".join((where.host, where.tenant, where.client_id, account))
    best: Any = None
    for key in _index(state).keys_of.get(prefix, ()):
        record = state["access_tokens"].get(key)
        if not isinstance(record, dict):
            continue
        held = record.get("scope_key")
        if isinstance(held, str) and wanted <= set(held.split(" ")):
            if best is None or (_finite(record.get("expires_at")) or 0) > (_finite(best.get("expires_at")) or 0):
                best = record
    return best


def find_access_token(state: State, where: CacheScope, account: str, scopes: Sequence[str]) -> Optional[CacheEntry]:
    """The cached access token of ``account`` for ``scopes`` (or for a superset of them), or None
    (also for a hand-edited entry)."""
    scope = scope_of(state, where, account)
    record = state["access_tokens"].get(scope.at_key(account, scopes))
    if record is None:
        record = _superset(state, scope, account, scopes)
    if not isinstance(record, dict) or not isinstance(record.get("access_token"), str):
        return None
    expires_at, refresh_at = _finite(record.get("expires_at")), _finite(record.get("refresh_at"))
    if expires_at is None or (refresh_at is None and record.get("refresh_at") is not None):
        return None  # a hand-edited expiry ("soon", NaN, a string): treat it as absent, a refresh replaces it
    try:
        return CacheEntry(
            access_token=record["access_token"],
            token_type=str(record.get("token_type") or "Bearer"),
            scopes=tuple(record.get("scopes") or ()),
            expires_at=expires_at,
            refresh_at=refresh_at,
            account=account,
            username=_record(state, "accounts", where.account_key(account)).get("username"),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited entry: treat it as absent, a refresh replaces it


def _finite(value: Any) -> Optional[float]:
    """A JSON number as a finite float; None for anything else (strings, booleans, NaN, huge)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def find_refresh_token(state: State, where: CacheScope, account: str) -> Optional[str]:
    """The account's refresh token, or None."""
    record = state["refresh_tokens"].get(where.account_key(account))
    token = record.get("refresh_token") if isinstance(record, dict) else None
    return token if isinstance(token, str) and token else None


def resolve_account(state: State, where: CacheScope, wanted: Optional[str]) -> Optional[str]:
    """The account id to use: the one named (by id or username), or the only one there is.

    Raises:
        ConfigError: several accounts match and none was named.
    """
    index = _index(state)
    if wanted is not None:
        return index.named.get((where.host, where.client_id, wanted))
    known = index.by_client.get((where.host, where.client_id), [])
    if len(known) > 1:
        names = ", ".join(str(a.get("username") or a.get("account")) for a in known)
        raise ConfigError(f"several accounts are signed in ({names}): name one with account= / --account")
    return str(known[0]["account"]) if known else None


def freshness(
    entry: CacheEntry, now: float, *, min_validity: float, refresh_window: float = 300.0, hard_margin: float = 40.0
) -> str:
    """``"fresh"``: serve it. ``"soft"``: refresh, but serve it if that fails. ``"hard"``: refresh or fail.

    Hard below ``max(min_validity, hard_margin)`` seconds left (Azure Databricks refuses tokens
    with 30 s or less); soft from ``refresh_window`` before expiry, or Entra's ``refresh_in``.
    """
    if not math.isfinite(entry.expires_at):  # NaN compares false with everything: never "fresh"
        return "hard"
    left = entry.expires_at - now
    if left <= max(min_validity, hard_margin):
        return "hard"
    window_opens = entry.expires_at - refresh_window
    if entry.refresh_at is not None and math.isfinite(entry.refresh_at):
        window_opens = min(window_opens, entry.refresh_at)
    return "soft" if now >= window_opens else "fresh"


def fresh_entry(
    state: State, where: CacheScope, account: Optional[str], scopes: Sequence[str], min_validity: float, now: float
) -> Optional[CacheEntry]:
    """``get_token``'s fast path: the cached token of ``account`` (resolved already) for ``scopes``
    that needs nothing (not in its refresh window, at least ``min_validity`` left), or None."""
    if account is None:
        return None
    entry = find_access_token(state, where, account, scopes)
    if entry is None or freshness(entry, now, min_validity=min_validity) != "fresh":
        return None
    return entry
