"""The request log file: one JSON line per request, with no secret, for counting in benchmarks and tests.

Each line is an object with the keys ``time`` (UTC, ISO 8601 with microseconds), ``at`` (the same
instant in epoch seconds, the emulator's clock), ``method``, ``endpoint`` (``token``,
``authorize``, ``imds``... or ``notfound``), ``grant_type``, ``client_id`` and ``status`` (None
when the connection was dropped without an answer). Nothing else of a request is written: no
path, query, body, header value, token, code, password or assertion. A ``client_id`` that is not
a GUID (it is client input) is written as ``"(not a GUID)"``, and a ``grant_type`` that does not
look like one as ``"(other)"``, so a secret pasted into either field never reaches the file.

The file is opened for appending (created 0600; an existing file is made 0600; a symbolic link
is refused) and line-buffered: each line is written whole, under the server's lock, so the
worker threads never interleave and a reader sees complete lines.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import IO, Any, Dict, Optional

from ..core.errors import ConfigError
from .clientauth import _basic
from .wire import Request, parse_form

__all__ = ["RequestLog", "client_id_of", "log_line"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GRANT = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
NOT_A_GUID = "(not a GUID)"
OTHER_GRANT = "(other)"


def _guid(value: Optional[str]) -> Optional[str]:
    if value is None or value == "":
        return None
    return value.lower() if _GUID.match(value) else NOT_A_GUID


def client_id_of(request: Optional[Request]) -> Optional[str]:
    """The client id a request names (form, query or HTTP Basic user name), as logged."""
    if request is None:
        return None
    named: Optional[str] = None
    if request.body:
        try:
            named = parse_form(request.body).get("client_id")
        except ValueError:
            named = None
    if not named:
        named = request.param("client_id") or request.param("clientid")
    if not named:
        basic = _basic(request)
        named = basic[0] if basic else None
    return _guid(named)


def log_line(
    *, at: float, method: str, endpoint: str, grant_type: Optional[str], status: Optional[int], client_id: Optional[str]
) -> str:
    """One line of the log (with its newline)."""
    whole = int(at)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((at - whole) * 1e6):06d}Z"
    grant = grant_type if grant_type is None or _GRANT.match(grant_type) else OTHER_GRANT
    entry: Dict[str, Any] = {
        "time": stamp,
        "at": round(at, 6),
        "method": method if method.isalpha() and len(method) <= 16 else "(other)",
        "endpoint": endpoint,
        "grant_type": grant,
        "client_id": client_id,
        "status": status,
    }
    return json.dumps(entry, separators=(",", ":")) + "\n"


class RequestLog:
    """An open request log file; :meth:`write` is called under the server's lock.

    Raises:
        ConfigError: the file cannot be opened for appending (or is a symbolic link).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o600)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a valid path"
            raise ConfigError(f"cannot open the request log {path!r}: {reason}") from None
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            self._file: IO[str] = open(fd, "a", buffering=1, encoding="utf-8", newline="\n")
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"cannot open the request log {path!r}: {exc.strerror}") from None

    def write(self, line: str) -> None:
        """Append one line (a full disk is not the client's problem: the request is still answered)."""
        try:
            self._file.write(line)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
