"""Throttling memory, the kept part: the windows :mod:`oauth_core.core.throttle` decides, remembered.

Both engines send every :class:`HttpRequest` inside ``with cache.throttle.watch(request) as
watch:``. Entering refuses a request whose window is not over (:class:`Throttled`, nothing
sent); a call that ends on a 429/503 (or a failure with ``Retry-After``) opens a window for
identical requests as it leaves, whether it ended in an error or in a response the flow reads.

Where the windows live:

- :class:`ThrottleMemory` (any cache): in this process, shared by the clients of one cache.
- :class:`FileThrottleMemory` (a :class:`~oauth_core.drivers.stores.FileTokenCache`): also in
  ``<cache>.throttle``, a private 0600 JSON file beside the cache, so the next process (the next
  CLI run) refuses too. It is written only when a window opens (atomically, under the cache's
  own lock), and re-read only when it changed (a ``stat`` per token request otherwise), so cache
  reads never touch it. It is advice: a damaged, unsafe or unwritable file is ignored (the
  windows are kept in process) and never fails a token request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, ContextManager, Dict, Optional, Tuple, Type

from ..core.errors import ConfigError, TransientError
from ..core.protocol import HttpRequest, HttpResponse
from ..core.throttle import Throttled, remaining, remember, throttle_key, throttle_window
from .files import NotStrictJSON, read_private_bytes, strict_json, write_private
from .retry import retry_after_seconds

__all__ = ["FILE_VERSION", "FileThrottleMemory", "ThrottleMemory", "Throttled", "Watch"]

log = logging.getLogger("oauth_core")

FILE_VERSION = 1
MAX_FILE_BYTES = 512 * 1024  # 1024 windows of ~100 bytes, with room to spare
_Signature = Tuple[int, int, int]  # inode, size, mtime_ns: the file changed when this did


class ThrottleMemory:
    """Throttling windows kept in this process (``clock``: epoch seconds, injectable for tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: Dict[str, Any] = {}

    def windows(self) -> Dict[str, Any]:
        """The windows in force (``key -> [until, status]``); read-only."""
        return self._windows

    def check(self, request: HttpRequest, now: Optional[float] = None) -> Optional[str]:
        """The request's throttle key, if no window refuses it (None when it is not throttled, or
        when no window is in force at all: the key is then not worth computing).

        Raises:
            Throttled: an identical request was throttled and the wait is not over (nothing sent).
        """
        if not self.windows():
            return None  # nothing is throttled: no key to compute (the watch makes one if it must note)
        key = throttle_key(request)
        if key is None:
            return None
        refusal = remaining(self.windows(), key, self.clock() if now is None else now)
        if refusal is not None:
            raise refusal
        return key

    def note(
        self,
        request: HttpRequest,
        key: str,
        status: Optional[int],
        retry_after: Optional[float],
        now: Optional[float] = None,
    ) -> None:
        """Open the window a call that ended on ``status`` (and ``Retry-After``) asks for, if any."""
        window = throttle_window(request, status, retry_after)
        if window is None:
            return
        now = self.clock() if now is None else now
        log.debug("throttled: HTTP %s, identical token requests refused for %.1f s", status, window)
        self._keep(key, now + window, status, now)

    def _keep(self, key: str, until: float, status: Optional[int], now: float) -> None:
        with self._lock:
            windows = dict(self._windows)  # copy-on-write: a reader's dict never changes under it
            self._windows = dict(remember(windows, key, until, status, now))

    def watch(self, request: HttpRequest, clock: Optional[Callable[[], float]] = None) -> Watch:
        """``with memory.watch(request) as watch:`` around one send (see the module's notes);
        ``clock`` is the client's (epoch seconds), the memory's own when None."""
        return Watch(self, request, clock or self.clock)


class FileThrottleMemory(ThrottleMemory):
    """:class:`ThrottleMemory`, also kept in ``path`` for other processes.

    Args:
        path: the file (``<cache>.throttle``).
        exclusive: the cache's exclusive hold (a context manager), taken while the file is rewritten.
    """

    def __init__(
        self, path: Path, exclusive: Callable[[], ContextManager[None]], clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.path = path
        self._exclusive = exclusive
        self._seen: Optional[_Signature] = None
        self._from_file: Dict[str, Any] = {}

    def windows(self) -> Dict[str, Any]:
        own = self._windows
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return own  # no file (nothing throttled yet), or no folder
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        if signature != self._seen:
            self._from_file, self._seen = self._read(), signature
        if not own:
            return self._from_file
        merged = dict(self._from_file)
        for key, entry in own.items():  # the later end wins
            if key not in merged or _until(entry) > _until(merged[key]):
                merged[key] = entry
        return merged

    def _read(self) -> Dict[str, Any]:
        try:
            found = read_private_bytes(self.path, max_bytes=MAX_FILE_BYTES, what="the throttling memory")
            data = strict_json(found[0]) if found is not None else {}
        except (ConfigError, NotStrictJSON) as exc:
            log.warning("ignoring the throttling memory %s: %s", self.path, exc)
            return {}
        windows = data.get("windows") if isinstance(data, dict) and data.get("version") == FILE_VERSION else None
        return windows if isinstance(windows, dict) else {}

    def _keep(self, key: str, until: float, status: Optional[int], now: float) -> None:
        super()._keep(key, until, status, now)
        try:
            with self._exclusive():
                windows = remember(self._read(), key, until, status, now)
                write_private(self.path, json.dumps({"version": FILE_VERSION, "windows": windows}, sort_keys=True))
        except ConfigError as exc:
            log.warning("the throttling window is kept in this process only: %s", exc)


def _until(entry: Any) -> float:
    until = entry[0] if isinstance(entry, list) and entry else None
    return float(until) if isinstance(until, (int, float)) and not isinstance(until, bool) else 0.0


class Watch:
    """One send under a :class:`ThrottleMemory`: refused on entry inside a window, noted on the way out.

    Entering raises :class:`Throttled` (nothing is sent); :meth:`seen` passes a response through,
    noting a throttling one; leaving with a :class:`TransientError` of a request that was sent
    notes its status and ``Retry-After``.
    """

    __slots__ = ("clock", "key", "memory", "request")

    def __init__(self, memory: ThrottleMemory, request: HttpRequest, clock: Callable[[], float]) -> None:
        self.memory, self.request, self.clock = memory, request, clock
        self.key: Optional[str] = None

    def __enter__(self) -> Watch:
        self.key = self.memory.check(self.request, self.clock())
        return self

    def _key(self) -> Optional[str]:
        if self.key is None:
            self.key = throttle_key(self.request)  # entering skipped it: no window was in force
        return self.key

    def seen(self, response: HttpResponse) -> HttpResponse:
        """``response``, after noting it when it asks to wait (a 429 answered with an OAuth error body)."""
        if response.status >= 400:
            key = self._key()
            if key is not None:
                self.memory.note(self.request, key, response.status, retry_after_seconds(response), self.clock())
        return response

    def __exit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        if isinstance(exc, TransientError) and exc.attempts > 0:
            key = self._key()
            if key is not None:
                self.memory.note(self.request, key, exc.status, exc.retry_after, self.clock())
