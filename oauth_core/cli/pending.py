"""Pending authorization requests: saved by ``authorize-url``, redeemed by ``exchange`` (and bench)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional, TextIO, Tuple

from ..core.errors import StateMismatch
from .usage import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from ..core.authorize import PendingAuthorization

__all__ = ["find_pending", "pending_path", "prune_pending"]


def _digest(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def _pending_dir() -> Path:
    from ..drivers.files import state_dir

    return state_dir() / "pending"


def pending_path(state: str) -> Path:
    """Where the pending request of ``state`` is kept (named by a digest: the state is not on disk)."""
    return _pending_dir() / f"{_digest(state)}.json"


def prune_pending(keep: Path, max_age: float = 86400.0) -> None:
    """Remove pending requests older than ``max_age`` seconds, except ``keep``."""
    from ..drivers.files import remove_quietly

    for path in _pending_dir().glob("*.json"):
        try:
            if path != keep and time.time() - path.stat().st_mtime > max_age:
                remove_quietly(path)
        except OSError:
            continue


def _load_pending(path: Path) -> PendingAuthorization:
    from ..core.authorize import PendingAuthorization
    from ..drivers.files import read_private

    text = read_private(path)
    if text is None:
        raise StateMismatch("no pending authorization request matches this state (tampered, or already used)")
    return PendingAuthorization.from_json(text)


def find_pending(state: Optional[str], latest: bool, err: TextIO) -> Tuple[Path, PendingAuthorization]:
    """The pending request of ``state``, or (``latest``) the newest one; reading it changes nothing."""
    if state is not None and not state.strip():
        raise UsageError("--state is empty")
    if state is not None and latest:
        raise UsageError("give --state or --latest, not both")
    if state is not None:
        path = pending_path(state)
        return path, _load_pending(path)
    if not latest:
        raise UsageError(
            "--code needs the --state that came with it (checked against the pending request), "
            "or --latest to redeem it for the newest pending request without that check"
        )
    candidates = sorted(_pending_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise UsageError("no pending authorization request: run `oauth-core authorize-url` first")
    err.write("warning: --latest: the redirect's state is not checked; using the newest pending request\n")
    return candidates[0], _load_pending(candidates[0])
