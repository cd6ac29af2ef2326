"""Azure Arc's key files: a private folder of one-use-per-challenge secrets (entra-protocol-2.md §1.6).

The real agent writes ``<guid>.key`` into a folder only administrators may read, names it in a
``WWW-Authenticate: Basic realm=<path>`` challenge, and accepts the file's content as the Basic
credential of the retry. Here the folder is a 0700 temp dir and each file is 0600.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import uuid
from typing import Callable, Dict, Optional, Tuple

__all__ = ["ArcKeys", "KEY_LIFETIME"]

KEY_LIFETIME = 300


class ArcKeys:
    """Issued Arc keys: :meth:`challenge` writes a fresh key file, :meth:`accept` checks a presented key."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._folder: Optional[str] = None
        self._keys: Dict[str, Tuple[str, float]] = {}  # secret -> (file path, issued at)

    @property
    def folder(self) -> str:
        """The private key folder (made on first use; ``mkdtemp`` creates it 0700)."""
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="oauth-core-arc-tokens-")
            return self._folder

    def challenge(self) -> str:
        """Write a new random key to ``<folder>/<guid>.key`` (0600) and return the file's path."""
        folder = self.folder
        secret = secrets.token_hex(32)
        path = os.path.join(folder, f"{uuid.uuid4()}.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret)
        with self._lock:
            self._prune()
            self._keys[secret] = (path, self._clock())
        return path

    def accept(self, presented: str) -> bool:
        """True when ``presented`` is a key issued in the last :data:`KEY_LIFETIME` seconds."""
        with self._lock:
            self._prune()
            return any(secrets.compare_digest(presented.encode(), key.encode()) for key in self._keys)

    def _prune(self) -> None:
        now = self._clock()
        for secret, (path, issued) in list(self._keys.items()):
            if now - issued > KEY_LIFETIME:
                del self._keys[secret]
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def close(self) -> None:
        """Forget every key and remove the folder."""
        with self._lock:
            self._keys.clear()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
