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

A cache file is refused (:class:`~oauth_core.errors.CacheError`, with a ``hint``) when it is of
another version, damaged (NaN too), over its size cap, a symbolic link, or could have been
written by another user (see :mod:`oauth_core.files`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .errors import CacheError, ConfigError
from .files import (
    NotStrictJSON,
    check_private_file,
    make_private_dir,
    open_private,
    read_private_bytes,
    refusal,
    size_cap,
    strict_json,
    write_private,
)
from .protocol import TokenSet

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
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
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_BYTES_ENV = "OAUTH_CORE_CACHE_MAX_BYTES"
_SECTIONS = ("access_tokens", "refresh_tokens", "accounts", "flags")
_START_AFRESH = "delete the file to start afresh: only cached tokens are lost, and signing in again recreates it"
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


def _refused(message: str, hint: str) -> ConfigError:
    return refusal(CacheError, message, hint)


def _damaged(where: str, problem: str, hint: str = _START_AFRESH) -> ConfigError:
    return _refused(f"the token cache {where!r} {problem}; delete it to start afresh", hint)


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _validated(state: Any, where: str) -> State:
    if not isinstance(state, dict):
        raise _damaged(where, f"is not a token cache (its JSON is {_kind(state)}, not an object)")
    if "version" not in state:
        raise _damaged(where, "is not a token cache (it has no version)")
    version = state["version"]
    if version != _VERSION or type(version) is not int:
        shown = json.dumps(version)[:40] if not isinstance(version, (dict, list)) else _kind(version)
        raise _damaged(
            where,
            f"is of unknown version {shown} (this oauth-core reads version {_VERSION})",
            "it was written by another version of oauth-core: use that version, or delete the file to start afresh",
        )
    for section in _SECTIONS:
        if section not in state:
            raise _damaged(where, f"is damaged: section {section!r} is missing")
        if not isinstance(state[section], dict):
            kind = _kind(state[section])
            raise _damaged(where, f"is damaged: section {section!r} has the wrong type ({kind}, not an object)")
    return state


def _parsed(data: bytes, where: str) -> State:
    """The validated state of a cache file's bytes (an empty file is an empty cache)."""
    if not data.strip():
        return _empty()
    try:
        return _validated(strict_json(data), where)
    except NotStrictJSON as exc:
        raise _damaged(where, str(exc)) from None


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

    def check_usable(self) -> None:
        """Raise :class:`CacheError` unless the cache can be read and written now.

        Grants call this before they send anything, so a damaged cache never costs a token.
        """
        self._load()


class MemoryTokenCache(TokenCache):
    """Tokens kept in this process only (the default)."""


class FileTokenCache(TokenCache):
    """Tokens kept in a JSON file (0600), shared by every process that uses the same path.

    The file and its lock file are opened with ``O_NOFOLLOW``: a symbolic link there is refused.
    On POSIX systems the file must belong to this user and be private (no access for group or
    others, as ``chmod 600``), and its folder must not be writable by group or others; a folder
    created for it is 0700.

    Args:
        path: the cache file; its lock file is ``path`` + ``.lock``.
        max_bytes: the largest cache file read or written; else the environment variable
            ``OAUTH_CORE_CACHE_MAX_BYTES``, else 64 MiB (:data:`DEFAULT_MAX_BYTES`). The size is
            checked before the file is read.

    Raises:
        ConfigError: ``max_bytes`` (or ``OAUTH_CORE_CACHE_MAX_BYTES``) is not a positive integer.
        CacheError: (on use) the file is not a cache of this version, is damaged or too large, or
            it, its lock file or its folder is unsafe or unusable.
    """

    def __init__(self, path: os.PathLike[str] | str, *, max_bytes: Optional[int] = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_bytes = size_cap(max_bytes, MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def _load(self) -> State:
        found = read_private_bytes(
            self.path, max_bytes=self.max_bytes, what="the token cache", error=CacheError, check_mode=False
        )
        if found is None:
            return _empty()
        data, info = found
        state = _parsed(data, str(self.path))
        # The mode is checked after the content: deleting a damaged file fixes both at once.
        check_private_file(info, self.path, what="the token cache", error=CacheError)
        return state

    def _store(self, state: State) -> None:
        try:
            text = json.dumps(state, sort_keys=True, allow_nan=False)  # never write what _load refuses
        except ValueError:
            raise CacheError(f"the token cache {str(self.path)!r} was not saved: a number is not finite") from None
        size = len(text.encode("utf-8"))
        if size > self.max_bytes:
            raise _refused(
                f"the token cache {str(self.path)!r} would grow to {size} bytes, more than its cap of {self.max_bytes}",
                f"sign out of accounts no longer used, or raise the cap (max_bytes= or {MAX_BYTES_ENV})",
            )
        write_private(self.path, text, error=CacheError)

    def _open_lock(self, create: bool) -> int:
        what = "the token cache's lock file"
        fd = open_private(self._lock_path, os.O_RDWR | (os.O_CREAT if create else 0), what=what, error=CacheError)
        try:
            check_private_file(os.fstat(fd), self._lock_path, what=what, error=CacheError)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        make_private_dir(self.path.parent, error=CacheError)
        fd = self._open_lock(create=True)
        try:
            _lock_file(fd)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def check_usable(self) -> None:
        """Raise :class:`CacheError` unless the cache can be read and written now.

        Cheap: the folder is made (0700) if missing and checked (private, writable), the lock
        file is checked if present, and the file is loaded with every check of a read.
        """
        folder = self.path.parent
        make_private_dir(folder, error=CacheError)
        if not os.access(str(folder), os.W_OK | os.X_OK):
            raise _refused(f"the token cache's folder {str(folder)!r} is not writable", "use a folder you can write")
        with contextlib.suppress(FileNotFoundError):
            os.close(self._open_lock(create=False))
        self._load()


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
