"""A token cache shared through Redis, with an in-process copy in front (the ``redis`` extra).

:class:`RedisTokenCache` keeps two levels, as Microsoft.Identity.Web does with ``IDistributedCache``:

- L1, a copy of the state in this process: :meth:`~RedisTokenCache.snapshot` (the fast path of
  ``get_token``) answers from it without a round trip, so a hit costs what a memory-cache hit costs;
- L2, Redis, shared by every process of the fleet: :meth:`~RedisTokenCache.latest` (what a flow
  reads once it holds an entry's lock) reads it and refreshes L1; a change is a read-modify-write
  under a short Redis lock that writes only what changed, so nothing another process wrote is lost.

Single flight across the fleet: an entry's refresh holds ``SET <ns>:lock:<sha256(key)> <id> NX PX``
(at most ``lock_timeout``), released only by its owner; waiters poll with a short back-off, then
read the token the winner stored. The key layout is in :mod:`oauth_core.drivers.redis_codec`.

Redis down or slow (refused, reset, a 1 s socket timeout, refused credentials): the cache warns
once through the ``oauth_core`` logger and works as a memory cache, serving what L1 holds, saving to
L1 and taking in-process locks only; it tries Redis again after ``retry_interval`` seconds, and once
back it writes what changed meanwhile (a token stored in Redis meanwhile that lives longer wins).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from ..core.cache_rules import State, empty_state
from ..core.errors import ConfigError
from .redis_codec import (
    HASHED,
    KEY_ENV,
    READ_SCRIPT,
    RELEASE_SCRIPT,
    Sealer,
    connect,
    decode_reply,
    hide,
    redact_url,
    write_changes,
)
from .stores import Release, TokenCache

__all__ = ["RedisTokenCache"]

log = logging.getLogger("oauth_core")

R = TypeVar("R")
_GONE = object()  # a removal made while Redis was away


class _Down(Exception):
    """Redis cannot be used now (it failed, or the back-off after a failure is not over)."""


def _nothing() -> None:
    return None


def _copy(state: State) -> State:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in state.items()}


class RedisTokenCache(TokenCache):
    """Tokens shared by every process that uses the same Redis and namespace, with a copy in each.

    Args:
        url: ``redis://[user[:password]@]host[:port][/db]`` or ``rediss://`` (TLS); the ACL user
            and password, when the URL has none, come from ``OAUTH_CORE_REDIS_USERNAME`` and
            ``OAUTH_CORE_REDIS_PASSWORD``. Without ``url`` (and ``client``): ``OAUTH_CORE_CACHE``
            when it is a Redis URL. The password is never shown (``url`` is kept redacted).
        namespace: the prefix of every key (``<namespace>:...``), to keep apart caches sharing a Redis.
        lock_timeout: seconds an entry's refresh lock lives at most, and a waiter waits at most.
        encryption_key: a Fernet key (else ``OAUTH_CORE_CACHE_KEY``): refresh tokens are stored
            encrypted with it (the crypto extra). One that fails to decrypt reads as absent.
        client: a ready ``redis.Redis`` client (with ``decode_responses=False``) instead of ``url``.

    Raises:
        ConfigError: the redis package (or, for encryption, cryptography) is missing, the URL is
            not a Redis URL, the namespace is empty, or the key is not a Fernet key.
        CacheError: (on use) the namespace holds a cache of another version.
    """

    blocking = True
    socket_timeout = 1.0  # seconds a Redis call may take before Redis counts as down
    retry_interval = 5.0  # seconds to serve from memory after a failure before trying Redis again
    state_lock_timeout = 5.0  # seconds the lock of one write lives at most

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        namespace: str = "oauth-core",
        lock_timeout: float = 30.0,
        encryption_key: Optional[str] = None,
        client: Any = None,
    ) -> None:
        super().__init__()
        if not namespace or not namespace.isprintable() or " " in namespace:
            raise ConfigError("the Redis cache namespace must be a non-empty word (no spaces)")
        if not lock_timeout > 0:
            raise ConfigError("lock_timeout must be a positive number of seconds")
        self.namespace, self.lock_timeout = namespace, float(lock_timeout)
        key = encryption_key or (os.environ.get(KEY_ENV) or "").strip() or None
        self._sealer = Sealer(key) if key else None
        self._secrets: List[str] = []
        if client is None:
            url = url or _url_from_env()
            self.url: Optional[str] = redact_url(url)
            client, self._secrets = connect(url, self.socket_timeout)
        else:
            self.url = None
        self._client = client
        self._read_script = client.register_script(READ_SCRIPT)
        self._release_script = client.register_script(RELEASE_SCRIPT)
        self._l1: State = empty_state()
        self._l1_loaded = False
        self._generation = 0  # bumped by each change of L1 made here
        self._base: State = empty_state()  # L2 as the current change read it
        self._gone: List[str] = []
        self._pending: Dict[Tuple[str, str], Any] = {}  # changes made while Redis was away
        self._health = threading.Lock()
        self._resync = False  # Redis is back: give it what L1 holds and it lacks (it may have restarted empty)
        self._down = False
        self._retry_at = 0.0

    def __repr__(self) -> str:
        where = f"{self.url!r}, " if self.url else ""
        return f"RedisTokenCache({where}namespace={self.namespace!r})"

    @property
    def where(self) -> str:
        """The cache as errors name it (the URL redacted, and the namespace)."""
        return f"{self.url or 'redis'} ({self.namespace})"

    @property
    def available(self) -> bool:
        """False while Redis is counted down (the cache then works from memory)."""
        return not self._down

    # -- Redis, or the memory fallback -------------------------------------------------------

    def _redis(self, call: Callable[[], R]) -> R:
        """``call()``, unless Redis is down; a failure counts it down (warned once) and raises _Down."""
        if self._down and time.monotonic() < self._retry_at:
            raise _Down
        import redis

        try:
            result = call()
        except (redis.RedisError, OSError) as exc:
            self._went_down(exc)
            raise _Down from None
        if self._down:
            self._came_back()
        return result

    def _went_down(self, exc: BaseException) -> None:
        with self._health:
            self._retry_at = time.monotonic() + self.retry_interval
            if self._down:
                return
            self._down = True
        reason = hide(f"{type(exc).__name__}: {exc}", self._secrets)[:200]
        log.warning(
            "the Redis token cache %s is unreachable (%s): serving tokens from memory, retrying every %g s",
            self.where,
            reason,
            self.retry_interval,
        )

    def _came_back(self) -> None:
        with self._health:
            was_down, self._down = self._down, False
            self._resync = self._resync or was_down
        if was_down:
            log.info("the Redis token cache %s is reachable again: tokens are shared again", self.where)

    def _read(self) -> Tuple[State, List[str]]:
        return decode_reply(self._read_script(args=[self.namespace]), self.where, self._sealer)

    def _set_l1(self, state: State) -> None:
        self._l1, self._l1_loaded = state, True
        self._generation += 1

    # -- storage hooks ---------------------------------------------------------------------

    def _load(self) -> State:
        """L2 as it is now (L1 while Redis is down); called by save and transaction, under their locks.

        Just back from an outage, L1's entries that Redis lacks and the changes it missed are laid
        over it, so the next write gives them to Redis.
        """
        try:
            self._base, self._gone = self._redis(self._read)
        except _Down:
            self._base, self._gone = self._l1, []
            return self._base
        if not (self._pending or self._resync):
            return self._base
        merged = _copy(self._base)
        _overlay(merged, self._l1, self._pending)
        return merged

    def _store(self, state: State) -> None:
        base, gone = self._base, self._gone
        try:
            self._redis(lambda: self._write(base, state, gone))
            self._pending, self._resync = {}, False
        except _Down:
            self._remember(base, state)
        self._set_l1(state)

    def _write(self, base: State, state: State, gone: List[str]) -> None:
        pipe = self._client.pipeline(transaction=True)
        write_changes(pipe, self.namespace, base, state, gone, self._sealer, self.where)
        pipe.execute()

    def _remember(self, base: State, state: State) -> None:
        """Keep a change Redis missed, to write it once Redis is back."""
        for section in (*HASHED, "access_tokens"):
            old, new = base[section], state[section]
            for key, record in new.items():
                if key not in old or old[key] != record:
                    self._pending[(section, key)] = record
            for key in old:
                if key not in new:
                    self._pending[(section, key)] = _GONE

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        release = self._acquire(f"{self.namespace}:lock:state", self.state_lock_timeout)
        try:
            yield
        finally:
            release()

    # -- reading and changing ----------------------------------------------------------------

    def snapshot(self) -> State:
        """L1, without a round trip (read from Redis once, the first time)."""
        if not self._l1_loaded:
            return self.latest()
        return self._l1

    def latest(self) -> State:
        """Redis's state now (L1 refreshed with it); L1 while Redis is down."""
        generation = self._generation
        try:
            state, _ = self._redis(self._read)
        except _Down:
            return self._l1
        if self._pending or self._resync:
            self._flush()
        elif self._generation == generation:  # no change of ours landed meanwhile
            self._l1, self._l1_loaded = state, True
        return self._l1

    def check_usable(self) -> None:
        """Raise :class:`CacheError` if the namespace holds a cache of another version (Redis down is usable)."""
        if not self._l1_loaded:
            self.latest()

    def _flush(self) -> None:
        """Redis is back: write the changes made while it was away (a longer-lived token stored there
        meanwhile wins), and what L1 holds that it lacks (it may have restarted empty)."""
        with self._lock, self._exclusive():
            merged = self._load()
            if merged != self._base:
                self._store(merged)
            elif not self._down:
                self._pending, self._resync = {}, False

    # -- single flight -----------------------------------------------------------------------

    def lock_entry(self, key: str) -> Release:
        """``SET <ns>:lock:<sha256(key)> <id> NX PX``, waiting (at most ``lock_timeout``) until it is free.

        With Redis down, only this process's lock is held (the caller holds it already).
        """
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self._acquire(f"{self.namespace}:lock:{digest}", self.lock_timeout)

    def _acquire(self, name: str, lifetime: float) -> Release:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + lifetime
        pause = 0.002
        while True:
            try:
                taken = self._redis(lambda: self._client.set(name, owner, nx=True, px=max(1, int(lifetime * 1000))))
            except _Down:
                return _nothing
            if taken:
                return lambda: self._release(name, owner)
            if time.monotonic() >= deadline:  # its holder's lock has expired by now: go on without
                return _nothing
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _release(self, name: str, owner: str) -> None:
        with contextlib.suppress(_Down):  # it expires by itself
            self._redis(lambda: self._release_script(keys=[name], args=[owner]))


def _url_from_env() -> str:
    from_env = (os.environ.get("OAUTH_CORE_CACHE") or "").strip()
    if from_env.startswith(("redis://", "rediss://")):
        return from_env
    raise ConfigError("RedisTokenCache needs a url (redis://... or rediss://), or OAUTH_CORE_CACHE set to one")


def _overlay(state: State, held: State, pending: Dict[Tuple[str, str], Any]) -> None:
    for section in (*HASHED, "access_tokens"):
        for key, record in held[section].items():
            state[section].setdefault(key, record)
    for (section, key), record in pending.items():
        if record is _GONE:
            state[section].pop(key, None)
            continue
        theirs = state[section].get(key)
        if section == "access_tokens" and _lives_longer(theirs, record):
            continue
        state[section][key] = record


def _lives_longer(theirs: Any, ours: Any) -> bool:
    def expiry(record: Any) -> float:
        value = record.get("expires_at") if isinstance(record, dict) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    return theirs is not None and expiry(theirs) > expiry(ours)
