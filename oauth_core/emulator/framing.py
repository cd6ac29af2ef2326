"""Where one HTTP/1.1 request ends in a byte buffer: its head, then ``Content-Length`` bytes.

The emulator's pool reads requests whole before a worker sees them, so this is the only framing
it does; http.server parses the request itself. What cannot be framed safely (a chunked body, a
bad or too large ``Content-Length``, a head beyond http.server's own limits) is handed over as
far as it goes and ends the connection after its answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["HEAD_LIMIT", "Frame", "frame"]

HEAD_LIMIT = 256 * 1024  # more than http.server accepts (64 KiB lines, 100 headers)
_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Frame:
    """Where the first request in a buffer ends; ``final``: nothing after it can be framed."""

    size: Optional[int]  # None: incomplete
    final: bool = False
    expects_continue: bool = False


def frame(buf: Union[bytes, bytearray], max_body: int) -> Frame:
    """Find the end of the first request in ``buf`` (a head, then ``Content-Length`` bytes)."""
    match = _HEAD_END.search(buf, 0, HEAD_LIMIT)
    if match is None:
        return Frame(len(buf), final=True) if len(buf) >= HEAD_LIMIT else Frame(None)
    head_end = match.end()
    length: Optional[bytes] = None
    expects = False
    for line in bytes(buf[: match.start()]).split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        key = name.strip().lower()
        if key == b"content-length" and length is None:
            length = value.strip()
        elif key == b"transfer-encoding":
            return Frame(head_end, final=True)  # refused by the handler; the rest cannot be framed
        elif key == b"expect" and value.strip().lower() == b"100-continue":
            expects = True
    if length is None:
        return Frame(head_end)
    if not (length.isdigit() and int(length) <= max_body):
        return Frame(head_end, final=True)
    size = head_end + int(length)
    return Frame(size) if len(buf) >= size else Frame(None, expects_continue=expects)
