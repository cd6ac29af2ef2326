"""Token caches: in memory, or a JSON file shared safely between processes.

What is kept, per authority host, tenant, client id and account:
- access tokens, per scope set (sorted), with their expiry and Entra's ``refresh_in``;
- one refresh token per host, client and account (Entra refresh tokens are not bound to a
  resource, so one serves every scope set; a rotated one replaces the old before anyone sees the
  new access token);
- the scope sets that need a person to sign in again (after ``invalid_grant``), and when the
  last refresh was attempted (at most one proactive attempt per 30 s).

Every change happens in :meth:`TokenCache.transaction`, which holds a thread lock and, for the
file cache, an exclusive ``flock`` on a lock file beside it, re-reads the file, and writes it
back atomically (temp file, fsync, rename; mode 0600). A process killed mid-write leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .errors import ConfigError
from .files import read_private, unusable, write_private
from .protocol import TokenSet

__all__ = [
    "CacheEntry",
    "CacheScope",
    "FileTokenCache",
    "MemoryTokenCache",
    "TokenCache",
    "account_of",
    "accounts",
    "entries",
    "find_access_token",
    "find_refresh_token",
    "freshness",
    "remove_account",
    "resolve_account",
    "scope_key",
    "store",
]

_VERSION = 1
_OIDC = frozenset({"offline_access", "openid", "profile", "email"})

State = Dict[str, Any]


def scope_key(scopes: Sequence[str]) -> str:
    """The scope set as a stable key: resource scopes only (OIDC ones never change the token), sorted."""
    resource = sorted({s for s in scopes if s.lower() not in _OIDC})
    return " ".join(resource or sorted(set(scopes)))


def account_of(raw: Dict[str, Any], claims: Optional[Dict[str, Any]], id_claims: Optional[Dict[str, Any]]) -> str:
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
                return "app"
            return f"{source['oid']}.{source['tid']}"
    return "app" if claims is not None and "scp" not in claims else "unknown"


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


def _empty() -> State:
    return {"version": _VERSION, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}


def _validated(state: Any, where: str) -> State:
    if not isinstance(state, dict) or state.get("version") != _VERSION:
        raise ConfigError(f"the token cache {where} has an unknown format; delete it to start afresh")
    for section in ("access_tokens", "refresh_tokens", "accounts", "flags"):
        if not isinstance(state.get(section), dict):
            raise ConfigError(f"the token cache {where} is damaged ({section}); delete it to start afresh")
    return state


class TokenCache:
    """An in-process token cache; subclasses decide where the state lives between transactions."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state: State = _empty()

    # -- storage hooks ---------------------------------------------------------------------

    def _load(self) -> State:
        return self._state

    def _store(self, state: State) -> None:
        self._state = state

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        yield

    # -- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Hold the cache exclusively (threads and, for files, processes) and save what changed.

        The state yielded is a private copy: readers of :meth:`snapshot` never see a half change.
        """
        with self._lock, self._exclusive():
            current = self._load()
            # Copy-on-write: new section dicts; records are replaced, never changed in place
            # (see flag()), so the state readers hold is never modified under them.
            state = {k: dict(v) if isinstance(v, dict) else v for k, v in current.items()}
            try:
                yield state
            finally:  # also when the body raised: e.g. a refused refresh still marks its entry
                if state != current:
                    self._store(state)

    def snapshot(self) -> State:
        """The current state, read without any lock. Treat it as read-only."""
        return self._load()


class MemoryTokenCache(TokenCache):
    """Tokens kept in this process only (the default)."""


class FileTokenCache(TokenCache):
    """Tokens kept in a JSON file (0600), shared by every process that uses the same path.

    Args:
        path: the cache file; its lock file is ``path`` + ``.lock``.

    Raises:
        ConfigError: (on use) the file is not a cache of this version, or is damaged.
    """

    def __init__(self, path: os.PathLike[str] | str) -> None:
        super().__init__()
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def _load(self) -> State:
        text = read_private(self.path)
        if text is None or not text.strip():
            return _empty()
        try:
            return _validated(json.loads(text), str(self.path))
        except (ValueError, RecursionError):
            raise ConfigError(f"the token cache {self.path} is not valid JSON; delete it to start afresh") from None

    def _store(self, state: State) -> None:
        write_private(self.path, json.dumps(state, sort_keys=True))

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(str(self._lock_path), os.O_RDWR | os.O_CREAT, 0o600)
        except (OSError, ValueError) as exc:
            raise unusable(self._lock_path, exc) from None
        try:
            _lock_file(fd)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _lock_file(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


@dataclass(frozen=True)
class CacheScope:
    """Which part of the cache one client uses: its authority host, tenant and client id."""

    host: str
    tenant: str
    client_id: str

    def at_key(self, account: str, scopes: Sequence[str]) -> str:
        return "|".join((self.host, self.tenant, self.client_id, account, scope_key(scopes)))

    def account_key(self, account: str) -> str:
        # Entra refresh tokens are bound to client and account, not to a resource or tenant.
        return "|".join((self.host, self.client_id, account))


def store(state: State, where: CacheScope, tokens: TokenSet, requested: Sequence[str]) -> str:
    """Record a token response; returns the account it belongs to.

    A new refresh token replaces the account's old one; a response without one keeps it.
    """
    claims = dict(tokens.claims) if tokens.claims else None
    account = account_of(dict(tokens.raw), claims, None)
    username = _username(claims, None)
    if tokens.id_token and (account == "unknown" or username is None):  # decode it only when needed
        id_claims = tokens.id_token_claims
        if account == "unknown":
            account = account_of(dict(tokens.raw), claims, id_claims)
        username = _username(None, id_claims)
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
    account_key = where.account_key(account)
    if tokens.refresh_token:
        state["refresh_tokens"][account_key] = {"refresh_token": tokens.refresh_token}
    previous = _record(state, "accounts", account_key)
    state["accounts"][account_key] = {
        "account": account,
        "username": username or previous.get("username"),
        "host": where.host,
        "client_id": where.client_id,
        "tenant": where.tenant,
    }
    state["flags"].pop(key, None)
    return account


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


def find_access_token(state: State, where: CacheScope, account: str, scopes: Sequence[str]) -> Optional[CacheEntry]:
    record = state["access_tokens"].get(where.at_key(account, scopes))
    if not isinstance(record, dict) or not isinstance(record.get("access_token"), str):
        return None
    try:
        return CacheEntry(
            access_token=record["access_token"],
            token_type=str(record.get("token_type") or "Bearer"),
            scopes=tuple(record.get("scopes") or ()),
            expires_at=float(record["expires_at"]),
            refresh_at=None if record.get("refresh_at") is None else float(record["refresh_at"]),
            account=account,
            username=_record(state, "accounts", where.account_key(account)).get("username"),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited entry: treat it as absent, a refresh replaces it


def find_refresh_token(state: State, where: CacheScope, account: str) -> Optional[str]:
    record = state["refresh_tokens"].get(where.account_key(account))
    token = record.get("refresh_token") if isinstance(record, dict) else None
    return token if isinstance(token, str) and token else None


def accounts(state: State, where: Optional[CacheScope] = None) -> List[Dict[str, Any]]:
    """The accounts the cache knows (all, or those of one host and client), without secrets."""
    found = [dict(v) for v in state["accounts"].values() if isinstance(v, dict) and isinstance(v.get("account"), str)]
    if where is not None:
        found = [a for a in found if a.get("host") == where.host and a.get("client_id") == where.client_id]
    return sorted(found, key=lambda a: (str(a.get("username")), str(a.get("account"))))


def resolve_account(state: State, where: CacheScope, wanted: Optional[str]) -> Optional[str]:
    """The account id to use: the one named (by id or username), or the only one there is.

    Raises:
        ConfigError: several accounts match and none was named.
    """
    known = accounts(state, where)
    if wanted is not None:
        match = [a["account"] for a in known if wanted in (a.get("account"), a.get("username"))]
        return str(match[0]) if match else None
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


def remove_account(state: State, where: CacheScope, account: str) -> None:
    prefix = "|".join((where.host, where.tenant, where.client_id, account)) + "|"
    for section in ("access_tokens", "flags"):
        for key in [k for k in state[section] if k.startswith(prefix)]:
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
    left = entry.expires_at - now
    if left <= max(min_validity, hard_margin):
        return "hard"
    window_opens = entry.expires_at - refresh_window
    if entry.refresh_at is not None:
        window_opens = min(window_opens, entry.refresh_at)
    return "soft" if now >= window_opens else "fresh"


def entries(state: State) -> List[Dict[str, Any]]:
    """The access-token records of a state (with their account and expiry), for listing."""
    return [dict(v) for v in state["access_tokens"].values() if isinstance(v, dict)]
