"""HTTP/1.1 on the wire, without I/O: the bytes of a request, and a parser fed the bytes of a response.

The lean transports (:mod:`~oauth_core.drivers.lean`, :mod:`~oauth_core.drivers.lean_async`) do
the socket work; everything about the protocol is here, once, for both. The parser is strict where
leniency would let a response be misread (a bad status line, two different Content-Lengths, an
unknown Transfer-Encoding, folded or unterminated header lines, an oversized head) and raises
:class:`WireError` for it; interim 1xx responses are skipped.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

__all__ = ["MAX_HEAD_BYTES", "MAX_HEADERS", "ResponseParser", "WireError", "chunked", "request_head"]

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
_MAX_CHUNK_LINE = 1024
_NO_BODY_STATUSES = frozenset((204, 304))
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class WireError(Exception):
    """The peer's bytes are not HTTP/1.1 this client can read safely (or ours would not be)."""


def request_head(method: bytes, target: bytes, headers: Iterable[Tuple[bytes, bytes]]) -> bytes:
    """The request line and header block, ready to write. Header names and values with CR, LF or NUL
    are refused (they would split the request).

    Raises:
        WireError: a header or the target would inject a line.
    """
    lines = [method + b" " + target + b" HTTP/1.1"]
    for name, value in headers:
        lines.append(name + b": " + value)
    content = b"".join(lines)  # what was given, before any line break of ours
    if b"\r" in content or b"\n" in content or b"\0" in content:
        raise WireError("a request header or the target contains CR, LF or NUL")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(parts: Iterable[bytes]) -> Iterable[bytes]:
    """A request body in chunked transfer coding (for bodies of unknown length)."""
    for part in parts:
        if part:
            yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


class ResponseParser:
    """Fed a response's bytes as they arrive (:meth:`feed`, then :meth:`eof` when the peer closes).

    Once :attr:`head_done`: :attr:`status`, :attr:`reason`, :attr:`headers` (lower-cased names, in
    order) and :attr:`keep_alive` are set; :meth:`take_body` hands over the body bytes decoded so far
    (chunked framing removed); :attr:`complete` tells that the message ended.
    """

    __slots__ = (
        "_body",
        "_buffer",
        "_left",
        "_no_body",
        "_state",
        "buffered",
        "head_done",
        "headers",
        "keep_alive",
        "reason",
        "status",
    )

    def __init__(self, *, no_body: bool = False) -> None:
        self._buffer = b""
        self._body: List[bytes] = []
        self._left = 0
        self._no_body = no_body  # a HEAD request's answer has no body whatever its headers say
        self._state = _HEAD
        self.buffered = 0
        self.head_done = False
        self.status = 0
        self.reason = b""
        self.headers: List[Tuple[bytes, bytes]] = []
        self.keep_alive = False

    @property
    def complete(self) -> bool:
        """Whether the whole message (head and body) has been read."""
        return self._state == _DONE

    def take_body(self) -> List[bytes]:
        """The body bytes parsed since the last call (possibly none)."""
        body, self._body, self.buffered = self._body, [], 0
        return body

    def feed(self, data: bytes) -> None:
        """Parse more of the response.

        Raises:
            WireError: the response is malformed, or bytes follow its end.
        """
        if self._state == _DONE:
            if data:
                raise WireError("the server sent bytes after the end of the response")
            return
        if self._state == _LENGTH and not self._buffer:
            self._body_bytes(data)  # the common case: body bytes straight through
            return
        self._buffer += data
        while self._buffer and self._step():
            pass

    def eof(self) -> None:
        """The peer closed the connection.

        Raises:
            WireError: the response was cut short (or never started).
        """
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
        elif self._state != _DONE:
            if self._state == _HEAD and not self._buffer:
                raise WireError("the server closed the connection without sending a response")
            raise WireError("the server closed the connection before the end of the response")

    # -- states ---------------------------------------------------------------------------

    def _step(self) -> bool:
        """Advance one state with what is buffered; False when more bytes are needed."""
        state = self._state
        if state == _HEAD:
            return self._head()
        if state == _LENGTH:
            data, self._buffer = self._buffer, b""
            self._body_bytes(data)
            return True
        if state == _UNTIL_CLOSE:
            self._keep(self._buffer)
            self._buffer = b""
            return True
        if state == _DONE:
            raise WireError("the server sent bytes after the end of the response")
        return self._chunked_step(state)

    def _body_bytes(self, data: bytes) -> None:
        left = self._left
        if len(data) > left:
            raise WireError("the server sent more body bytes than its Content-Length")
        self._keep(data)
        self._left = left - len(data)
        if self._left == 0:
            self._state = _DONE

    def _keep(self, data: bytes) -> None:
        if data:
            self._body.append(data)
            self.buffered += len(data)

    def _head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise WireError("the response head is too large")
            return False
        if end > MAX_HEAD_BYTES:
            raise WireError("the response head is too large")
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        lines = head.split(b"\r\n")
        version, status, reason = _status_line(lines[0])
        if 100 <= status < 200:
            if status == 101:
                raise WireError("the server switched protocols, which was never asked for")
            return True  # an interim response: the real one follows
        self.status, self.reason = status, reason
        self.headers = _header_lines(lines[1:])
        self._frame(version)
        self.head_done = True
        return True

    def _frame(self, version: bytes) -> None:
        """Decide how the body is delimited, and whether the connection can carry another request."""
        length: Optional[bytes] = None
        coding: Optional[bytes] = None
        close = version != b"HTTP/1.1"
        for name, value in self.headers:
            if name == b"content-length":
                if length is not None and value != length:
                    raise WireError("the response has two different Content-Length headers")
                length = value
            elif name == b"transfer-encoding":
                if coding is not None:
                    raise WireError("the response has two Transfer-Encoding headers")
                coding = value.lower()
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if self._no_body or self.status in _NO_BODY_STATUSES:
            self._state = _DONE
        elif coding is not None:
            if coding != b"chunked":
                raise WireError("the response uses a Transfer-Encoding other than chunked")
            if length is not None:
                close = True  # both framings: read the chunks, never reuse a connection so confused
            self._state = _CHUNK_SIZE
        elif length is not None:
            if not length.isdigit() or len(length) > 18:
                raise WireError("the response's Content-Length is not a number")
            self._left = int(length)
            self._state = _LENGTH if self._left else _DONE
        else:
            close = True
            self._state = _UNTIL_CLOSE
        self.keep_alive = not close

    def _chunked_step(self, state: int) -> bool:
        buffer = self._buffer
        if state == _CHUNK_DATA:
            take = buffer[: self._left]
            self._keep(take)
            self._left -= len(take)
            self._buffer = buffer[len(take) :]
            if self._left == 0:
                self._state = _CHUNK_END
            return True
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > _MAX_CHUNK_LINE:
                raise WireError("a chunk size or trailer line is too long")
            return False
        line, self._buffer = buffer[:end], buffer[end + 2 :]
        if state == _CHUNK_END:
            if line:
                raise WireError("a chunk is longer than its size")
            self._state = _CHUNK_SIZE
        elif state == _CHUNK_SIZE:
            self._chunk_size(line)
        elif line:  # _TRAILERS: read and dropped, a bounded number of them
            self._left += 1
            if self._left > MAX_HEADERS:
                raise WireError("the response has too many trailers")
        else:  # the empty line that ends the trailers
            self._state = _DONE
            if self._buffer:
                raise WireError("the server sent bytes after the end of the response")
        return True

    def _chunk_size(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip(b" \t")
        if not size or len(size) > 16 or not _HEX.issuperset(size):
            raise WireError("a chunk size is not a hexadecimal number")
        self._left = int(size, 16)
        self._state = _CHUNK_DATA if self._left else _TRAILERS


def _status_line(line: bytes) -> Tuple[bytes, int, bytes]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise WireError("the server did not answer with an HTTP/1.x status line")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise WireError("the status line has no three-digit status code")
    return parts[0], int(code), parts[2] if len(parts) == 3 else b""


def _header_lines(lines: Sequence[bytes]) -> List[Tuple[bytes, bytes]]:
    if len(lines) > MAX_HEADERS:
        raise WireError("the response has too many headers")
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN.issuperset(name):
            raise WireError("a response header line is malformed")
        value = value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise WireError("a response header value contains CR, LF or NUL")
        headers.append((name.lower(), value))
    return headers
