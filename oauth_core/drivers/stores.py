"""Token caches: in memory, or a JSON file shared safely between processes.

What a cache holds, and every rule about it, is in :mod:`oauth_core.core.cache_rules` (re-exported
here). This module keeps the state somewhere and provides the locks:

- :meth:`TokenCache.save` (and :meth:`TokenCache.transaction`) hold the cache exclusively for
  the milliseconds of one change: a thread lock and, for the file cache, an exclusive ``flock``
  on a lock file beside it; the state is re-read, changed and written back atomically (temp
  file, fsync, rename; mode 0600). A process killed mid-write leaves the old file or the new
  one, never half of one, and a change is applied to the latest state, so nothing another
  process wrote meanwhile is lost.
- :meth:`TokenCache.entry_lock` is the single-flight lock of one entry, held across that entry's
  refresh only: a thread lock per entry and, for the file cache, a ``flock`` on a lock file of
  its own in the private folder ``<cache>.locks/``. Readers never wait on it.

A cache file is refused (:class:`~oauth_core.errors.CacheError`, with a ``hint``) when it is of
another version, damaged (NaN too), over its size cap, a symbolic link, or could have been
written by another user (see :mod:`oauth_core.drivers.files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple, TypeVar

from ..core.cache_lookup import START_AFRESH
from ..core.cache_rules import (
    CacheEntry as CacheEntry,
    CacheScope as CacheScope,
    State,
    account_of as account_of,
    accounts as accounts,
    empty_state,
    entries as entries,
    find_access_token as find_access_token,
    find_refresh_token as find_refresh_token,
    flag as flag,
    freshness as freshness,
    remove_account as remove_account,
    resolve_account as resolve_account,
    scope_key as scope_key,
    store as store,
    validated,
)
from ..core.errors import CacheError
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
from .throttle import FileThrottleMemory, ThrottleMemory

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
    "lock_entry_off_loop",
    "remove_account",
    "resolve_account",
    "scope_key",
    "store",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_BYTES_ENV = "OAUTH_CORE_CACHE_MAX_BYTES"

R = TypeVar("R")
Release = Callable[[], None]


def _nothing_to_release() -> None:
    return None


def _copy(state: State) -> State:
    # Copy-on-write: new section dicts; records are replaced, never changed in place (see flag()),
    # so a state a reader holds is never modified under it.
    return {k: dict(v) if isinstance(v, dict) else v for k, v in state.items()}


def _parsed(data: bytes, where: str) -> State:
    """The validated state of a cache file's bytes (an empty file is an empty cache)."""
    if not data.strip():
        return empty_state()
    try:
        parsed = strict_json(data)
    except NotStrictJSON as exc:
        raise refusal(CacheError, f"the token cache {where!r} {exc}; delete it to start afresh", START_AFRESH) from None
    return validated(parsed, where)


class TokenCache:
    """An in-process token cache; subclasses decide where the state lives between changes."""

    blocking = False  # does its I/O block? (the async client then runs it off the event loop)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state: State = empty_state()
        self._entry_locks: Dict[str, threading.Lock] = {}
        self._entry_locks_guard = threading.Lock()

    # -- storage hooks ---------------------------------------------------------------------

    def _load(self) -> State:
        return self._state

    def _store(self, state: State) -> None:
        self._state = state

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        yield

    @property
    def throttle(self) -> ThrottleMemory:
        """The windows in which throttled token requests are refused unsent (made on first use).

        Shared by every client of this cache; see :mod:`oauth_core.drivers.throttle`.
        """
        memory: Optional[ThrottleMemory] = self.__dict__.get("_throttle")
        if memory is None:
            with self._lock:
                memory = self.__dict__.setdefault("_throttle", self._new_throttle())
        return memory

    def _new_throttle(self) -> ThrottleMemory:
        return ThrottleMemory()

    # -- reading and changing ----------------------------------------------------------------

    def snapshot(self) -> State:
        """The current state, read without any lock. Treat it as read-only.

        The fast path of ``get_token`` reads this: a cache with a local copy in front of a shared
        store (Redis) answers from the copy.
        """
        return self._load()

    def latest(self) -> State:
        """The state as the shared store holds it now (flows read this after taking an entry's
        lock, to pick up a refresh another process just made). The same as :meth:`snapshot` for
        caches without a local copy."""
        return self.snapshot()

    def check_usable(self) -> None:
        """Raise :class:`CacheError` unless the cache can be read and written now.

        Grants call this before they send anything, so a damaged cache never costs a token.
        """
        self._load()

    def save(self, apply: Callable[[State], R]) -> R:
        """Apply one change to the latest state and write it, holding the cache for that only.

        Returns what ``apply`` returned. Nothing is written when ``apply`` raises or changes nothing.
        """
        with self._lock, self._exclusive():
            current = self._load()
            state = _copy(current)
            result = apply(state)
            if state != current:
                self._store(state)
        return result

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Hold the cache exclusively (threads and, for files, processes) and save what changed.

        The state yielded is a private copy: readers of :meth:`snapshot` never see a half change.
        Keep it short: nothing else can change the cache meanwhile.
        """
        with self._lock, self._exclusive():
            current = self._load()
            state = _copy(current)
            try:
                yield state
            finally:  # also when the body raised
                if state != current:
                    self._store(state)

    # -- single flight -----------------------------------------------------------------------

    def entry_lock(self, key: str) -> _EntryHold:
        """Hold the single-flight lock of the entry ``key``: one thread (and one process) at a time."""
        return _EntryHold(self, key)

    def _entry_lock_of(self, key: str) -> threading.Lock:
        lock = self._entry_locks.get(key)
        if lock is None:
            with self._entry_locks_guard:
                lock = self._entry_locks.setdefault(key, threading.Lock())
        return lock

    def lock_entry(self, key: str) -> Release:
        """Take the entry's lock across processes (blocking until it is free); returns its release.

        A memory cache is seen by this process only: there is nothing to take.
        """
        return _nothing_to_release


class _EntryHold:
    """``with cache.entry_lock(key):`` this thread's lock of the entry, then the other processes' one.

    A class rather than a generator context manager: every grant and refresh takes one.
    """

    __slots__ = ("_cache", "_key", "_lock", "_release")

    def __init__(self, cache: TokenCache, key: str) -> None:
        self._cache, self._key = cache, key
        self._lock = cache._entry_lock_of(key)
        self._release: Release = _nothing_to_release

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._release = self._cache.lock_entry(self._key)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._release()
        finally:
            self._lock.release()


class MemoryTokenCache(TokenCache):
    """Tokens kept in this process only (the default)."""


class FileTokenCache(TokenCache):
    """Tokens kept in a JSON file (0600), shared by every process that uses the same path.

    The file and its lock files are opened with ``O_NOFOLLOW``: a symbolic link there is refused.
    On POSIX systems the file must belong to this user and be private (no access for group or
    others, as ``chmod 600``), and its folder must not be writable by group or others; a folder
    created for it is 0700.

    Args:
        path: the cache file; its lock file is ``path`` + ``.lock``, the entries' lock files
            (one per entry, taken while it is refreshed) live in the folder ``path`` + ``.locks``,
            and throttled token requests are remembered in ``path`` + ``.throttle``.
        max_bytes: the largest cache file read or written; else the environment variable
            ``OAUTH_CORE_CACHE_MAX_BYTES``, else 64 MiB (:data:`DEFAULT_MAX_BYTES`). The size is
            checked before the file is read.

    Raises:
        ConfigError: ``max_bytes`` (or ``OAUTH_CORE_CACHE_MAX_BYTES``) is not a positive integer.
        CacheError: (on use) the file is not a cache of this version, is damaged or too large, or
            it, its lock files or its folders are unsafe or unusable.
    """

    blocking = True

    def __init__(self, path: os.PathLike[str] | str, *, max_bytes: Optional[int] = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_bytes = size_cap(max_bytes, MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._entry_lock_dir = self.path.with_name(self.path.name + ".locks")
        # The last state read, and the file's identity then: a hit re-reads only what changed.
        self._seen: Optional[Tuple[Tuple[int, int, int, int], State]] = None

    def _new_throttle(self) -> ThrottleMemory:
        """Kept in ``<cache>.throttle`` too, for the next process (rewritten under the cache's lock)."""
        return FileThrottleMemory(self.path.with_name(self.path.name + ".throttle"), self._exclusive)

    def _load(self) -> State:
        """The file's state: the one read last while the file is unchanged (same inode, size,
        mtime and ctime, and not changed in the last :data:`SETTLE_SECONDS`), else read again."""
        seen = self._seen
        if seen is not None:
            try:
                info = os.stat(self.path, follow_symlinks=False)
            except OSError:
                info = None
            if info is not None and _signature(info) == seen[0] and time.time() - info.st_mtime > SETTLE_SECONDS:
                check_private_file(info, self.path, what="the token cache", error=CacheError)
                return seen[1]
        self._seen = None
        state = self._read()
        return state

    def _read(self) -> State:
        found = read_private_bytes(
            self.path, max_bytes=self.max_bytes, what="the token cache", error=CacheError, check_mode=False
        )
        if found is None:
            return empty_state()
        data, info = found
        state = _parsed(data, str(self.path))
        # The mode is checked after the content: deleting a damaged file fixes both at once.
        check_private_file(info, self.path, what="the token cache", error=CacheError)
        self._seen = (_signature(info), state)
        return state

    def _store(self, state: State) -> None:
        try:
            text = json.dumps(state, sort_keys=True, allow_nan=False)  # never write what _load refuses
        except ValueError:
            raise CacheError(f"the token cache {str(self.path)!r} was not saved: a number is not finite") from None
        size = len(text.encode("utf-8"))
        if size > self.max_bytes:
            raise refusal(
                CacheError,
                f"the token cache {str(self.path)!r} would grow to {size} bytes, more than its cap of {self.max_bytes}",
                f"sign out of accounts no longer used, or raise the cap (max_bytes= or {MAX_BYTES_ENV})",
            )
        self._seen = None
        write_private(self.path, text, error=CacheError)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        make_private_dir(self.path.parent, error=CacheError)
        release = _hold(self._lock_path, "the token cache's lock file")
        try:
            yield
        finally:
            release()

    def lock_entry(self, key: str) -> Release:
        """``flock`` the entry's own lock file, ``<cache>.locks/<sha256(key)[:32]>.lock`` (0600, folder 0700)."""
        make_private_dir(self._entry_lock_dir, error=CacheError)
        name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".lock"
        return _hold(self._entry_lock_dir / name, "the token cache's entry lock file")

    def check_usable(self) -> None:
        """Raise :class:`CacheError` unless the cache can be read and written now.

        Cheap: the folder is made (0700) if missing and checked (private, writable), the lock
        file is checked if present, and the file is loaded with every check of a read.
        """
        folder = self.path.parent
        make_private_dir(folder, error=CacheError)
        if not os.access(str(folder), os.W_OK | os.X_OK):
            raise refusal(
                CacheError, f"the token cache's folder {str(folder)!r} is not writable", "use a folder you can write"
            )
        with contextlib.suppress(FileNotFoundError):
            os.close(_open_lock(self._lock_path, "the token cache's lock file", create=False))
        self._load()


SETTLE_SECONDS = 0.1  # a file changed more recently is read again: two writes may share an mtime tick


def _signature(info: os.stat_result) -> Tuple[int, int, int, int]:
    """What changes whenever the file does: inode (writes replace the file), size, mtime, ctime."""
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _open_lock(path: Path, what: str, *, create: bool) -> int:
    fd = open_private(path, os.O_RDWR | (os.O_CREAT if create else 0), what=what, error=CacheError)
    try:
        check_private_file(os.fstat(fd), path, what=what, error=CacheError)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _hold(path: Path, what: str) -> Release:
    """Open (0600, no symlinks) and exclusively lock ``path``; the release closes it (which unlocks)."""
    fd = _open_lock(path, what, create=True)
    try:
        _lock_file(fd)
    except OSError as exc:
        os.close(fd)
        raise CacheError(f"could not lock {str(path)!r}: {exc.strerror or exc}") from None
    except BaseException:
        os.close(fd)
        raise
    return lambda: os.close(fd)


def _lock_file(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


async def lock_entry_off_loop(cache: TokenCache, key: str) -> Release:
    """:meth:`TokenCache.lock_entry` for async code: a blocking cache waits in a worker thread.

    If the waiting task is cancelled, the lock is let go as soon as the thread gets it.
    """
    if not cache.blocking:
        return cache.lock_entry(key)
    waiting = asyncio.get_running_loop().run_in_executor(None, cache.lock_entry, key)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        waiting.add_done_callback(_release_when_taken)
        raise


def _release_when_taken(future: asyncio.Future[Release]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()()
