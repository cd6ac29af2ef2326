"""What a token cache holds and how the flows read and change it: pure functions over a state.

A cache state is a JSON-shaped dict, the same in memory and in a file:

- ``access_tokens``: per authority host, tenant, client id, account and scope set (sorted), the
  token with its expiry and Entra's ``refresh_in``;
- ``refresh_tokens``: one per host, client and account (Entra refresh tokens are not bound to a
  resource, so one serves every scope set; a rotated one replaces the old);
- ``accounts``: who is signed in, without secrets;
- ``flags``: per access-token key, the scope sets that need a person to sign in again (after
  ``invalid_grant``) and when the last refresh was attempted (at most one proactive attempt per 30 s).

Reading a state (validation, lookups, freshness) lives in :mod:`oauth_core.core.cache_lookup`,
re-exported here; this module adds the effects and the changes the flows make.

The flows never touch a cache themselves: they yield the effects below, which the drivers
perform (:mod:`oauth_core.drivers.sync`, :mod:`oauth_core.drivers.aio`), so no lock is ever held
and no file touched while a request is on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .cache_index import index_of as _index
from .cache_keys import (
    APP_ACCOUNT as APP_ACCOUNT,
    CacheScope as CacheScope,
    account_of as account_of,
    scope_key as scope_key,
    tenant_key as tenant_key,
    tokens_key as tokens_key,
)
from .cache_lookup import (
    SECTIONS as SECTIONS,
    VERSION as VERSION,
    CacheEntry as CacheEntry,
    State as State,
    _record,
    empty_state as empty_state,
    find_access_token as find_access_token,
    find_refresh_token as find_refresh_token,
    fresh_entry as fresh_entry,
    freshness as freshness,
    key_of as key_of,
    resolve_account as resolve_account,
    scope_of as scope_of,
    validated as validated,
)
from .claims import LazyClaims
from .protocol import TokenSet

__all__ = [
    "APP_ACCOUNT",
    "VERSION",
    "CacheEntry",
    "CacheScope",
    "Check",
    "Load",
    "Lock",
    "Save",
    "State",
    "account_of",
    "REFUSAL_MEMORY",
    "account_and_user",
    "clear_marks",
    "accounts",
    "empty_state",
    "entries",
    "find_access_token",
    "key_of",
    "scope_of",
    "tenant_key",
    "tokens_key",
    "find_refresh_token",
    "flag",
    "fresh_entry",
    "fresh_token",
    "freshness",
    "marks_of",
    "note_attempt",
    "refusal_of",
    "remove_account",
    "resolve_account",
    "scope_key",
    "store",
    "store_for",
    "token_set_of",
    "validated",
]

REFUSAL_MEMORY = 60.0  # seconds a refused refresh is not resent (then it is tried again)


# -- effects: what a flow asks its driver to do with the cache ------------------------------------


@dataclass(frozen=True)
class Check:
    """Make sure the cache can be read and written now (its ``check_usable``), or throw its error in.

    A grant asks for this before it spends a code or a refresh token.
    """


@dataclass(frozen=True)
class Load:
    """Send back the cache's current state (validated, read without a lock; treat it as read-only)."""


@dataclass(frozen=True)
class Save:
    """Run ``apply(state)`` in one short cache transaction and send back what it returned.

    The driver takes the cache's lock, re-reads the state, applies the change to that latest
    state (so nothing another process wrote meanwhile is lost), writes it and lets go. A cache
    that cannot be written has its error thrown into the flow.
    """

    apply: Callable[[State], Any]


@dataclass(frozen=True)
class Lock:
    """Hold the single-flight lock of one cache entry (threads and processes) until the flow ends."""

    key: str


# -- the state ------------------------------------------------------------------------------------


def account_and_user(tokens: TokenSet) -> Tuple[str, Optional[str]]:
    """The account ``tokens`` belong to, and its username if they name one."""
    claims = tokens.claims or None
    account = account_of(tokens.raw, claims, None)
    username = _username(claims, None)
    if tokens.id_token and (account == "unknown" or username is None):  # decode it only when needed
        id_claims = tokens.id_token_claims
        if account == "unknown":
            account = account_of(tokens.raw, claims, id_claims)
        username = _username(None, id_claims)
    return account, username


def store(
    state: State,
    where: CacheScope,
    tokens: TokenSet,
    requested: Sequence[str],
    who: Optional[Tuple[str, Optional[str]]] = None,
) -> str:
    """Record a token response; returns the account it belongs to.

    A new refresh token replaces the account's old one; a response without one keeps it. ``who``
    is :func:`account_and_user` of ``tokens`` when the caller has it already.
    """
    account, username = who or account_and_user(tokens)
    tid = (tokens.claims or {}).get("tid")
    tenant = tenant_key(where.tenant, tid if isinstance(tid, str) else None)
    store_for(state, CacheScope(where.host, tenant, where.client_id), tokens, requested, account)
    clear_marks(state, where, account)  # a refusal never outlives a successful grant, in any key
    account_key = where.account_key(account)
    previous = _record(state, "accounts", account_key)
    tenants = dict(previous.get("tenants") or {}) if isinstance(previous.get("tenants"), dict) else {}
    if tenant != where.tenant:
        tenants[where.tenant.lower()] = tenant  # this spelling (organizations, a domain) means that tenant
    state["accounts"][account_key] = {
        "account": account,
        "username": username or previous.get("username"),
        "host": where.host,
        "client_id": where.client_id,
        "tenant": previous.get("tenant") or where.tenant,
        **({"tenants": tenants} if tenants else {}),
    }
    return account


def store_for(state: State, where: CacheScope, tokens: TokenSet, requested: Sequence[str], account: str) -> str:
    """Record tokens under a key that is not a signed-in user (an on-behalf-of assertion's hash, a
    managed identity): no account record is made, so such entries never show among the accounts."""
    scopes = tuple(requested) or tokens.scopes
    key = where.at_key(account, scopes)
    state["access_tokens"][key] = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "scopes": list(tokens.scopes),
        "scope_key": scope_key(scopes),
        "expires_at": tokens.expires_at,
        "refresh_at": tokens.refresh_at,
        "account": account,
    }
    if tokens.refresh_token:
        state["refresh_tokens"][where.account_key(account)] = {"refresh_token": tokens.refresh_token}
    state["flags"].pop(key, None)
    return account


def token_set_of(entry: CacheEntry) -> TokenSet:
    """A cached entry as the :class:`TokenSet` callers get; its claims are decoded only when read."""
    token = entry.access_token
    return TokenSet(
        access_token=token,
        token_type=entry.token_type,
        scopes=entry.scopes,
        expires_at=entry.expires_at,
        refresh_at=entry.refresh_at,
        claims=LazyClaims(token) if token.count(".") == 2 else None,
    )


def _username(claims: Optional[Mapping[str, Any]], id_claims: Optional[Mapping[str, Any]]) -> Optional[str]:
    for source in (id_claims, claims):
        for name in ("preferred_username", "upn", "unique_name", "email"):
            value = (source or {}).get(name)
            if isinstance(value, str) and value:
                return value
    return None


def fresh_token(
    state: State, where: CacheScope, account: Optional[str], scopes: Sequence[str], min_validity: float, now: float
) -> Optional[TokenSet]:
    """``get_token``'s fast path: :func:`fresh_entry` as the :class:`TokenSet` callers get, or None."""
    entry = fresh_entry(state, where, account, scopes, min_validity, now)
    return None if entry is None else token_set_of(entry)


def accounts(state: State, where: Optional[CacheScope] = None) -> List[Dict[str, Any]]:
    """The accounts the cache knows (all, or those of one host and client), without secrets."""
    if where is not None:
        return [dict(a) for a in _index(state).by_client.get((where.host, where.client_id), ())]
    found = [dict(v) for v in state["accounts"].values() if isinstance(v, dict) and isinstance(v.get("account"), str)]
    return sorted(found, key=lambda a: (str(a.get("username")), str(a.get("account"))))


def flag(state: State, key: str) -> Dict[str, Any]:
    """The mutable flags of one access-token key: ``interaction_required``, ``last_attempt``."""
    value = state["flags"].get(key)
    fresh: Dict[str, Any] = dict(value) if isinstance(value, dict) else {}  # copy-on-write; or hand-edited
    state["flags"][key] = fresh
    return fresh


def marks_of(state: State, key: str) -> Mapping[str, Any]:
    """The flags of one access-token key, read-only (empty when absent or hand-edited)."""
    value = state["flags"].get(key)
    return value if isinstance(value, dict) else {}


def note_attempt(state: State, key: str, at: float, refused: Optional[List[int]] = None) -> None:
    """Record a failed refresh of ``key`` at ``at``; ``refused`` (error codes) means a person must sign in."""
    marks = flag(state, key)
    marks["last_attempt"] = at
    if refused is not None:
        marks["interaction_required"] = refused
        marks["refused_at"] = at


def refusal_of(marks: Mapping[str, Any], now: float) -> Optional[List[int]]:
    """The error codes of a refusal still remembered at ``now``, or None.

    A refusal is remembered for :data:`REFUSAL_MEMORY` seconds only (as MSAL does not resend an
    identical refused request for about a minute): after that the refresh is tried again, since
    a sign-in elsewhere, a password reset or a Conditional Access change may have fixed it.
    """
    refused = marks.get("interaction_required")
    at = marks.get("refused_at", marks.get("last_attempt"))
    if not refused or not isinstance(at, (int, float)) or now - at >= REFUSAL_MEMORY:
        return None
    return list(refused) if isinstance(refused, list) else [0]


def _of_account(key: str, where: CacheScope, account: str) -> bool:
    """True for an access-token (or flags) key of ``account`` of this host and client, in any tenant."""
    parts = key.split("|")
    return len(parts) >= 5 and parts[0] == where.host and parts[2] == where.client_id and parts[3] == account


def clear_marks(state: State, where: CacheScope, account: str) -> None:
    """Forget every refusal and attempt mark of ``account``, whatever the tenant or scopes: a grant succeeded."""
    for key in [k for k in state["flags"] if _of_account(k, where, account)]:
        del state["flags"][key]


def remove_account(state: State, where: CacheScope, account: str) -> None:
    """Forget an account: its access tokens and flags in every tenant, its refresh token and record."""
    for section in ("access_tokens", "flags"):
        for key in [k for k in state[section] if _of_account(k, where, account)]:
            del state[section][key]
    state["refresh_tokens"].pop(where.account_key(account), None)
    state["accounts"].pop(where.account_key(account), None)


def entries(state: State) -> List[Dict[str, Any]]:
    """The access-token records of a state (with their account and expiry), for listing."""
    return [dict(v) for v in state["access_tokens"].values() if isinstance(v, dict)]
