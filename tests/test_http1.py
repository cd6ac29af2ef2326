"""The sans-I/O HTTP/1.1 layer of the lean transports: request bytes, and the response parser."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from oauth_core.drivers.http1 import MAX_HEAD_BYTES, ResponseParser, WireError, chunked, request_head


def _parse(data: bytes, *, step: int = 0, no_body: bool = False, eof: bool = False) -> Tuple[ResponseParser, bytes]:
    """Feed ``data`` whole, or ``step`` bytes at a time: the parser, and the body it gave."""
    parser = ResponseParser(no_body=no_body)
    parts: List[bytes] = []
    pieces = [data] if not step else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        parser.feed(piece)
        parts.extend(parser.take_body())
    if eof:
        parser.eof()
        parts.extend(parser.take_body())
    return parser, b"".join(parts)


OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": "bc"}'


@pytest.mark.parametrize("step", [0, 1, 7])
def test_a_content_length_response_in_any_pieces(step: int) -> None:
    parser, body = _parse(OK, step=step)
    assert (parser.status, parser.reason, parser.complete, parser.keep_alive) == (200, b"OK", True, True)
    assert parser.headers == [(b"content-type", b"application/json"), (b"content-length", b"11")]
    assert body == b'{"a": "bc"}'


@pytest.mark.parametrize("step", [0, 1, 3])
def test_a_chunked_body_is_unframed_and_trailers_are_dropped(step: int) -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    parser, body = _parse(wire, step=step)
    assert parser.complete and parser.keep_alive
    assert body == b"Wikipedia"


def test_the_head_is_incomplete_until_its_blank_line() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
    assert not parser.head_done
    parser.feed(b"\r\nhi")
    assert parser.head_done and parser.complete


def test_interim_responses_are_skipped() -> None:
    parser, _body = _parse(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert parser.status == 200 and parser.complete


@pytest.mark.parametrize(
    "wire, no_body",
    [
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", False),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", True),
    ],
    ids=["204", "304", "HEAD"],
)
def test_answers_without_a_body(wire: bytes, no_body: bool) -> None:
    parser, _body = _parse(wire, no_body=no_body)
    assert parser.complete and parser.keep_alive and parser.take_body() == []


def test_a_body_until_close_is_complete_at_eof_and_the_connection_is_not_kept() -> None:
    parser, body = _parse(b"HTTP/1.1 200 OK\r\n\r\nsome body", eof=True)
    assert parser.complete and not parser.keep_alive
    assert body == b"some body"


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ],
    ids=["connection-close", "http/1.0", "both-framings"],
)
def test_connections_that_must_not_carry_another_request(wire: bytes) -> None:
    parser, _body = _parse(wire)
    assert parser.complete and not parser.keep_alive


@pytest.mark.parametrize(
    "wire, words",
    [
        (b"<html>proxy error</html>\r\n\r\n", "status line"),
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "three-digit"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "three-digit"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n", "CR, LF or NUL"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "two different"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "other than chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "two"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "hexadecimal"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc", "more body bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", "after the end"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "too many headers"),
    ],
)
def test_malformed_responses_are_refused(wire: bytes, words: str) -> None:
    with pytest.raises(WireError, match=words):
        _parse(wire)


def test_an_endless_head_is_refused_before_it_fills_memory() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(WireError, match="too large"):
        for _ in range(MAX_HEAD_BYTES // 1000 + 2):
            parser.feed(b"X-Padding: " + b"a" * 1000 + b"\r\n")


def test_endless_chunk_lines_and_trailers_are_refused() -> None:
    with pytest.raises(WireError, match="too long"):
        _parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000)
    with pytest.raises(WireError, match="too many trailers"):
        _parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: 1\r\n" * 200)


@pytest.mark.parametrize(
    "wire, words",
    [
        (b"", "without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before the end"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "before the end"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "before the end"),
    ],
)
def test_an_eof_before_the_end_is_an_error(wire: bytes, words: str) -> None:
    with pytest.raises(WireError, match=words):
        _parse(wire, eof=True)


def test_request_head_writes_the_request_line_and_headers() -> None:
    head = request_head(b"POST", b"/t/oauth2/v2.0/token?x=1", [(b"Host", b"h:1"), (b"Content-Length", b"3")])
    assert head == b"POST /t/oauth2/v2.0/token?x=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\n"


@pytest.mark.parametrize(
    "target, headers",
    [
        (b"/a\r\nX: 1", []),
        (b"/a", [(b"X-Evil", b"1\r\nSet-Cookie: a")]),
        (b"/a", [(b"X-Evil", b"1\nb")]),
        (b"/a", [(b"X-Evil\r", b"1")]),
        (b"/a", [(b"X", b"\0")]),
    ],
)
def test_request_head_refuses_injected_lines(target: bytes, headers: List[tuple]) -> None:
    with pytest.raises(WireError, match="CR, LF or NUL"):
        request_head(b"GET", target, headers)


def test_chunked_request_bodies() -> None:
    assert b"".join(chunked([b"abc", b"", b"defgh"])) == b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
