"""Private files: the user's state directory and atomic, owner-only (0600) writes.

A write goes to a temporary file in the same directory, is flushed and fsynced, then renamed
over the target, so a reader (or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .errors import ConfigError

__all__ = ["read_private", "remove_quietly", "state_dir", "unusable", "write_private"]


def state_dir(override: Optional[str] = None) -> Path:
    """Where oauth-core keeps pending requests and tokens.

    ``OAUTH_CORE_HOME`` wins; else ``$XDG_STATE_HOME/oauth-core`` or ``~/.local/state/oauth-core``
    (``%LOCALAPPDATA%\\oauth-core`` on Windows).
    """
    chosen = (override or os.environ.get("OAUTH_CORE_HOME") or "").strip()  # blank means unset
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "oauth-core"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "oauth-core"


def _ensure_dir(path: Path) -> None:
    for directory in [*reversed(path.parents), path]:
        if not directory.exists():
            directory.mkdir(mode=0o700, exist_ok=True)


def unusable(path: Path, exc: BaseException) -> ConfigError:
    """The error for a state file or directory that cannot be used (a file where a directory
    should be, no permission, a NUL byte in the path ...)."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"
    return ConfigError(f"cannot use {str(path)!r}: {reason} (check OAUTH_CORE_HOME)")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (directories created 0700).

    Raises:
        ConfigError: the path cannot be written.
    """
    try:
        _write_private(path, text)
    except (OSError, ValueError) as exc:
        raise unusable(path, exc) from None


STALE_TEMP_SECONDS = 300.0  # a writer holds its temp file for milliseconds; older ones were killed


def _write_private(path: Path, text: str) -> None:
    _ensure_dir(path.parent)
    _remove_stale_temps(path)
    # mkstemp creates the file with mode 0600 before anything is written to it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(Path(tmp))
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(str(path.parent), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files that writers killed mid-write left beside ``path`` (copies of secrets)."""
    import time

    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()


def read_private(path: Path) -> Optional[str]:
    """The file's text, or None when it does not exist.

    Raises:
        ConfigError: the path exists but cannot be read (or is not valid UTF-8).
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # NotADirectoryError, PermissionError, NUL bytes, bad UTF-8
        raise unusable(path, exc) from None


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
