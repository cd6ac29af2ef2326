"""What a token cache holds and how the flows read and change it: pure functions over a state.

A cache state is a JSON-shaped dict, the same in memory and in a file:

- ``access_tokens``: per authority host, tenant, client id, account and scope set (sorted), the
  token with its expiry and Entra's ``refresh_in``;
- ``refresh_tokens``: one per host, client and account (Entra refresh tokens are not bound to a
  resource, so one serves every scope set; a rotated one replaces the old);
- ``accounts``: who is signed in, without secrets;
- ``flags``: per access-token key, the scope sets that need a person to sign in again (after
  ``invalid_grant``) and when the last refresh was attempted (at most one proactive attempt per 30 s).

The flows never touch a cache themselves: they yield the effects below, which the drivers
perform (:mod:`oauth_core.drivers.sync`, :mod:`oauth_core.drivers.aio`), so no lock is ever held
and no file touched while a request is on the wire.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .cache_index import index_of as _index
from .cache_keys import (
    APP_ACCOUNT as APP_ACCOUNT,
    CacheScope as CacheScope,
    _is_guid,
    account_of as account_of,
    scope_key as scope_key,
    tenant_key as tenant_key,
    tokens_key as tokens_key,
)
from .claims import LazyClaims
from .errors import CacheError, ConfigError
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

VERSION = 1
REFUSAL_MEMORY = 60.0  # seconds a refused refresh is not resent (then it is tried again)
SECTIONS = ("access_tokens", "refresh_tokens", "accounts", "flags")
START_AFRESH = "delete the file to start afresh: only cached tokens are lost, and signing in again recreates it"

State = Dict[str, Any]


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


@dataclass(frozen=True)
class CacheEntry:
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


def fresh_token(
    state: State, where: CacheScope, account: Optional[str], scopes: Sequence[str], min_validity: float, now: float
) -> Optional[TokenSet]:
    """``get_token``'s fast path: the cached token of ``account`` (resolved already) for ``scopes``
    that needs nothing (not in its refresh window, at least ``min_validity`` left), or None."""
    if account is None:
        return None
    entry = find_access_token(state, where, account, scopes)
    if entry is None or freshness(entry, now, min_validity=min_validity) != "fresh":
        return None
    return token_set_of(entry)


def find_refresh_token(state: State, where: CacheScope, account: str) -> Optional[str]:
    """The account's refresh token, or None."""
    record = state["refresh_tokens"].get(where.account_key(account))
    token = record.get("refresh_token") if isinstance(record, dict) else None
    return token if isinstance(token, str) and token else None


def accounts(state: State, where: Optional[CacheScope] = None) -> List[Dict[str, Any]]:
    """The accounts the cache knows (all, or those of one host and client), without secrets."""
    if where is not None:
        return [dict(a) for a in _index(state).by_client.get((where.host, where.client_id), ())]
    found = [dict(v) for v in state["accounts"].values() if isinstance(v, dict) and isinstance(v.get("account"), str)]
    return sorted(found, key=lambda a: (str(a.get("username")), str(a.get("account"))))


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


def entries(state: State) -> List[Dict[str, Any]]:
    """The access-token records of a state (with their account and expiry), for listing."""
    return [dict(v) for v in state["access_tokens"].values() if isinstance(v, dict)]
