"""Private files: the user's state directory and atomic, owner-only (0600) writes.

A write goes to a temporary file in the same directory, is flushed and fsynced, then renamed
over the target, so a reader (or a crash) sees the old file or the new one, never half of one.

Like ssh with its keys, these files are refused when someone else could have put them there
(POSIX only; Windows has no such modes):

- their folder must belong to this user (or root) and not be writable by group or others
  (folders above it are not checked: a sticky ``/tmp`` higher up is fine);
- the file must belong to this user (or root), be a regular file, not a symbolic link (files
  are opened with ``O_NOFOLLOW``), and have no permission bits for group or others (0600).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any, Optional, Tuple, Type

from ..core.errors import ConfigError

__all__ = [
    "check_private_dir",
    "check_private_file",
    "make_private_dir",
    "NotStrictJSON",
    "open_private",
    "read_private",
    "read_private_bytes",
    "refusal",
    "remove_quietly",
    "size_cap",
    "state_dir",
    "strict_json",
    "unusable",
    "write_private",
]

POSIX_MODES = sys.platform != "win32"  # Windows has no owner/mode bits to check
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted there must not hang
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def state_dir(override: Optional[str] = None) -> Path:
    """Where oauth-core keeps pending requests and tokens.

    ``OAUTH_CORE_HOME`` wins; else ``$XDG_STATE_HOME/oauth-core`` or ``~/.local/state/oauth-core``
    (``%LOCALAPPDATA%\\oauth-core`` on Windows). Folders created for it are private (0700).
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


def make_private_dir(directory: Path, *, error: Type[ConfigError] = ConfigError) -> None:
    """Create ``directory`` (and missing parents) with mode 0700, then :func:`check_private_dir` it.

    Raises:
        ConfigError: (or ``error``) it cannot be created, or is unsafe.
    """
    try:
        _ensure_dir(directory)
        check_private_dir(directory, error=error)
    except (OSError, ValueError) as exc:  # FileNotFoundError too: removed under us
        if isinstance(exc, ConfigError):
            raise
        raise unusable(directory, exc, error=error) from None


def _quote(text: str) -> str:
    """``text`` quoted for a shell command in a hint (shlex, imported only when a hint is written)."""
    import shlex

    return shlex.quote(text)


def refusal(error: Type[ConfigError], message: str, hint: str) -> ConfigError:
    """``error(message)`` with its ``hint`` set."""
    exc = error(message)
    exc.hint = hint
    return exc


def unusable(path: Path, exc: BaseException, *, error: Type[ConfigError] = ConfigError) -> ConfigError:
    """The error for a state file or directory that cannot be used (a file where a directory
    should be, no permission, a NUL byte in the path ...)."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"
    return error(f"cannot use {str(path)!r}: {reason} (check OAUTH_CORE_HOME)")


def _trusted(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def check_private_dir(directory: Path, *, error: Type[ConfigError] = ConfigError) -> None:
    """Refuse a folder that group or others can write, or that another user owns.

    Raises:
        ConfigError: (or ``error``) the folder is unsafe, or is not a usable folder.
        FileNotFoundError: the folder does not exist.
    """
    try:
        info = os.stat(str(directory))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise unusable(directory, exc, error=error) from None
    if not stat.S_ISDIR(info.st_mode):
        raise unusable(directory, NotADirectoryError(errno.ENOTDIR, "Not a directory"), error=error)
    if not POSIX_MODES:  # pragma: no cover - Windows
        return
    if not _trusted(info.st_uid):
        raise refusal(
            error,
            f"the folder {str(directory)!r} belongs to another user (uid {info.st_uid}), "
            "who could swap in their own files",
            "use a folder of your own (or have its owner hand it over to you)",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise refusal(
            error,
            f"the folder {str(directory)!r} is writable by group or others (mode {_mode(info)}), "
            "so another user could swap in their own files",
            f"chmod 700 {_quote(str(directory))}",
        )


def check_private_file(
    info: os.stat_result,
    path: Path,
    *,
    what: str = "the file",
    error: Type[ConfigError] = ConfigError,
    mode: bool = True,
) -> None:
    """Refuse a file (from its ``fstat``) that is not a regular file, that another user owns, or
    (when ``mode``) that group or others may read or write: it holds secrets.

    Raises:
        ConfigError: (or ``error``) the file is unsafe.
    """
    if not stat.S_ISREG(info.st_mode):
        raise refusal(error, f"{what} {str(path)!r} is not a regular file", f"remove {_quote(str(path))}")
    if not POSIX_MODES:  # pragma: no cover - Windows
        return
    if not _trusted(info.st_uid):
        raise refusal(
            error,
            f"{what} {str(path)!r} belongs to another user (uid {info.st_uid}), "
            "who could have put their own data in it",
            f"delete the file (rm {_quote(str(path))}) if you did not put it there",
        )
    if mode and info.st_mode & 0o077:
        raise refusal(
            error,
            f"{what} {str(path)!r} can be read or written by group or others (mode {_mode(info)}); it holds secrets",
            f"chmod 600 {_quote(str(path))}",
        )


def _mode(info: os.stat_result) -> str:
    return format(stat.S_IMODE(info.st_mode), "04o")


def open_private(path: Path, flags: int, *, what: str = "the file", error: Type[ConfigError] = ConfigError) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` (``O_NOFOLLOW``; new files 0600).

    Raises:
        FileNotFoundError: ``path`` does not exist (and ``flags`` do not create it).
        ConfigError: (or ``error``) ``path`` is a symbolic link, or cannot be opened.
    """
    try:
        return os.open(str(path), flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(str(path)):
            raise refusal(
                error,
                f"{what} {str(path)!r} is a symbolic link, which is refused (someone could point it anywhere)",
                f"delete the link (rm {_quote(str(path))}) if you did not put it there",
            ) from None
        raise unusable(path, exc, error=error) from None
    except ValueError as exc:  # a NUL byte in the path
        raise unusable(path, exc, error=error) from None


def read_private_bytes(
    path: Path,
    *,
    max_bytes: Optional[int] = None,
    what: str = "the file",
    error: Type[ConfigError] = ConfigError,
    check_mode: bool = True,
) -> Optional[Tuple[bytes, os.stat_result]]:
    """The file's bytes and its ``fstat``, or None when it (or its folder) does not exist.

    The folder and the file are checked (:func:`check_private_dir`, :func:`check_private_file`;
    the mode only when ``check_mode``, so a caller may report what is wrong with the content
    first), and the size is checked against ``max_bytes`` before anything is read.

    Raises:
        ConfigError: (or ``error``) the folder or file is unsafe, too large, or cannot be read.
    """
    try:
        check_private_dir(path.parent, error=error)
        fd = open_private(path, os.O_RDONLY, what=what, error=error)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        check_private_file(info, path, what=what, error=error, mode=check_mode)
        if max_bytes is not None and info.st_size > max_bytes:
            raise _too_large(path, info.st_size, max_bytes, what, error)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as exc:
        raise unusable(path, exc, error=error) from None
    finally:
        os.close(fd)
    if max_bytes is not None and len(data) > max_bytes:  # it grew after fstat
        raise _too_large(path, len(data), max_bytes, what, error)
    return data, info


def read_arc_key(path: str, max_bytes: int) -> str:
    """An Azure Arc key file's text: a regular file, no symbolic link, in a folder no one else can
    write, at most ``max_bytes`` (checked before reading). Its mode is the agent's (group ``himds``).

    Raises:
        ConfigError: the file is missing, unsafe, too large or not text.
    """
    found = read_private_bytes(Path(path), max_bytes=max_bytes, what="the Azure Arc key file", check_mode=False)
    if found is None:
        raise ConfigError(f"the Azure Arc key file {path!r} does not exist")
    try:
        return found[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the Azure Arc key file {path!r} is not text") from None


def size_cap(value: Optional[int], env: str, default: int) -> int:
    """A size cap in bytes: ``value``, else the environment variable ``env``, else ``default``.

    Raises:
        ConfigError: the value (or the variable) is not a positive whole number of bytes.
    """
    where = "max_bytes"
    if value is None:
        raw = (os.environ.get(env) or "").strip()
        if not raw:
            return default
        where = env
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{env} must be a whole number of bytes, not {raw[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where} must be a positive whole number of bytes, not {value!r}")
    return value


def _too_large(path: Path, size: int, limit: int, what: str, error: Type[ConfigError]) -> ConfigError:
    return refusal(
        error,
        f"{what} {str(path)!r} is {size} bytes, more than the {limit} allowed",
        "delete the file to start afresh, or raise the limit (max_bytes= or OAUTH_CORE_CACHE_MAX_BYTES)",
    )


def read_private(path: Path) -> Optional[str]:
    """The file's text, or None when it does not exist.

    The file and its folder must be private (see the module's notes); a symbolic link is refused.

    Raises:
        ConfigError: the path exists but is unsafe, cannot be read, or is not valid UTF-8.
    """
    found = read_private_bytes(path)
    if found is None:
        return None
    try:
        return found[0].decode("utf-8")
    except ValueError as exc:
        raise unusable(path, exc) from None


def write_private(path: Path, text: str, *, error: Type[ConfigError] = ConfigError) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (directories created 0700).

    The folder must be private (see the module's notes); a symbolic link at ``path`` is
    replaced, never followed.

    Raises:
        ConfigError: (or ``error``) the folder is unsafe, or the path cannot be written.
    """
    make_private_dir(path.parent, error=error)
    try:
        _write_private(path, text)
    except (OSError, ValueError) as exc:
        raise unusable(path, exc, error=error) from None


STALE_TEMP_SECONDS = 300.0  # a writer holds its temp file for milliseconds; older ones were killed


def _write_private(path: Path, text: str) -> None:
    _remove_stale_temps(path)
    # mkstemp creates the file with mode 0600 before anything is written to it.
    import tempfile  # imported here: a cache read (a `token` hit) never writes

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


class NotStrictJSON(ValueError):
    """Bytes that :func:`strict_json` refuses; the message says what they are (``is not JSON ...``)."""


def _no_constant(name: str) -> Any:
    raise NotStrictJSON("is damaged: it holds a number that is not finite (NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf
        _no_constant(text)
    return value


def strict_json(data: bytes) -> Any:
    """Parse UTF-8 JSON, refusing NaN, Infinity and numbers that overflow a float.

    Raises:
        NotStrictJSON: ``str()`` says what is wrong: not UTF-8, not JSON, non-finite numbers,
            integers of thousands of digits or nesting too deep.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotStrictJSON("is not JSON (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except NotStrictJSON:
        raise
    except json.JSONDecodeError as exc:
        raise NotStrictJSON(f"is not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError):  # an integer of thousands of digits, nesting too deep
        raise NotStrictJSON("is damaged: it holds a number too long, or nesting too deep, to read") from None


def remove_quietly(path: Path) -> None:
    """Delete ``path``; nothing happens when it is already gone."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
