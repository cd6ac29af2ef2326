"""The async twin of :mod:`~oauth_core.drivers.lean`: HTTP/1.1 on asyncio protocols, a pool that stays O(1).

httpcore's async pool re-examines every queued request against every connection whenever one
frees up, so 200 gathered refreshes spend a third of their time there. Here a request takes an
idle connection of its origin or opens one, and a request over the limit waits in a FIFO queue
that a released connection wakes one at a time.

Each connection is an ``asyncio.Protocol`` feeding a :class:`~oauth_core.drivers.http1.ResponseParser`
from ``data_received``; waiting for bytes is one future and, with a timeout, one timer. Under an
event loop that is not asyncio's (trio), requests go to httpx's own async transport.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import Any, AsyncIterator, Deque, Dict, List, Optional

import httpx

from .deadline import install_deadline_backend, time_left
from .http1 import ResponseParser, WireError
from .lean import Origin, TrustStore, Verify, origin_of, request_bytes

__all__ = ["AsyncLeanTransport"]

_PAUSE_AT = 256 * 1024  # body bytes buffered before the socket stops being read


class _Connection(asyncio.Protocol):
    """One connection: the bytes it receives go to the parser of the request it carries."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop, self.origin = loop, origin
        self.transport: Optional[asyncio.Transport] = None
        self.parser: Optional[ResponseParser] = None
        self.error: Optional[httpx.HTTPError] = None  # raised by the request the connection carries
        self.closed = False
        self.stale = False
        self.paused = False
        self.idle_since = 0.0
        self._waiter: Optional[asyncio.Future[bool]] = None

    # -- asyncio's callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            self.stale = True  # bytes while idle: nobody asked for them
            return
        if self.error is None:
            try:
                parser.feed(data)
            except WireError as exc:
                self.error = httpx.RemoteProtocolError(str(exc))
        if parser.buffered > _PAUSE_AT and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False  # close the transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.closed:
            self._ended(exc)

    def _ended(self, failure: Optional[Exception] = None) -> None:
        self.closed = True
        parser = self.parser
        if parser is not None and self.error is None:
            if failure is not None and not parser.complete:
                self.error = httpx.ReadError(str(failure) or type(failure).__name__)
            else:
                try:
                    parser.eof()
                except WireError as exc:
                    self.error = httpx.RemoteProtocolError(str(exc))
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    # -- used by the transport ------------------------------------------------------------

    async def wait(self, timeout: Optional[float]) -> bool:
        """Wait for more bytes (or the end); False when ``timeout`` passed first."""
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def usable(self, now: float, expiry: float) -> bool:
        return not (self.closed or self.stale or self.error) and now - self.idle_since <= expiry

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            # abort, not close: a TLS transport's close() waits (up to 30 s) for the peer's
            # close_notify with the socket open, so a loop that ends first leaks it. Nothing is
            # ever left unsent when a connection is dropped (as httpcore drops them, too).
            self.transport.abort()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncLeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to http and https origins over kept-alive asyncio connections (no proxy, no HTTP/2).

    The settings of :class:`~oauth_core.drivers.lean.LeanTransport`: at most ``max_connections``
    requests in flight (the rest wait their turn, httpx.PoolTimeout after the pool timeout), at
    most ``max_keepalive`` idle connections kept per origin, each for ``keepalive_expiry`` seconds.
    Unlike the sync transport it keeps as many idle connections as it may have in flight (unless
    ``max_keepalive`` says otherwise): tasks gathered by the hundred reach the pool unevenly, and
    a smaller limit closed connections in a lull that the next burst had to open again (120 new
    TLS connections per round of 200 gathered refreshes with 20 kept, none with 100).
    """

    def __init__(
        self,
        *,
        verify: Verify = True,
        max_connections: int = 100,
        max_keepalive: Optional[int] = None,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._trust = TrustStore(verify)
        self._idle: Dict[Origin, List[_Connection]] = {}
        self._waiters: Deque[asyncio.Future[None]] = collections.deque()
        self._in_flight = 0
        self._max_connections = max_connections
        self._max_keepalive = max_connections if max_keepalive is None else max_keepalive
        self._expiry = keepalive_expiry
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fallback: Optional[httpx.AsyncHTTPTransport] = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its head; the body streams from the connection as httpx reads it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await self._other_loop().handle_async_request(request)
        if loop is not self._loop:
            self._adopt(loop)
        origin = origin_of(request)
        parts = request.extensions.get("timeout") or {}
        wire = request_bytes(request, [part async for part in request.stream])  # type: ignore[union-attr]
        await self._take_slot(request, parts.get("pool"))
        try:
            connection = self._checkout(origin) or await self._connect(request, loop, origin, parts.get("connect"))
        except BaseException:
            self._free_slot()
            raise
        try:
            parser = await self._exchange(request, connection, wire, parts.get("read"))
        except BaseException:
            connection.close()
            self._free_slot()
            raise
        stream = _AsyncBody(self, connection, request, parts.get("read"))
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": parser.reason}
        return httpx.Response(parser.status, headers=parser.headers, stream=stream, extensions=extensions)

    async def aclose(self) -> None:
        """Close every idle connection; those in use close when their response does."""
        self._closed = True
        self._drop_idle()
        if self._fallback is not None:
            await self._fallback.aclose()

    # -- the pool -------------------------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop: connections of the old one cannot serve it."""
        self._drop_idle()
        self._loop, self._waiters, self._in_flight = loop, collections.deque(), 0

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _other_loop(self) -> httpx.AsyncHTTPTransport:
        if self._fallback is None:
            self._fallback = httpx.AsyncHTTPTransport(verify=self._trust.context())
            install_deadline_backend(self._fallback)
        return self._fallback

    async def _take_slot(self, request: httpx.Request, timeout: Optional[float]) -> None:
        if self._in_flight < self._max_connections and not self._waiters:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, time_left(timeout, httpx.PoolTimeout))
        except asyncio.TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time", request=request) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # the slot was handed over as we were cancelled: pass it on
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in the queue
                return
        self._in_flight -= 1

    def _checkout(self, origin: Origin) -> Optional[_Connection]:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now, self._expiry):
                return connection
            connection.close()
        return None

    def release(self, connection: _Connection, reusable: bool) -> None:
        """A response is done with ``connection``: keep it for the next request, or close it."""
        connection.parser = None
        self._free_slot()
        if reusable and not self._closed and not connection.closed:
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self._max_keepalive:
                connection.idle_since = time.monotonic()
                idle.append(connection)
                return
        connection.close()

    # -- the wire -------------------------------------------------------------------------

    async def _connect(
        self, request: httpx.Request, loop: asyncio.AbstractEventLoop, origin: Origin, timeout: Optional[float]
    ) -> _Connection:
        scheme, host, port = origin
        context = self._trust.context() if scheme == "https" else None
        trace = request.extensions.get("trace")
        await _trace(trace, "connection.connect_tcp.started", request)
        connection = _Connection(loop, origin)
        opening = loop.create_connection(
            lambda: connection, host, port, ssl=context, server_hostname=host if context else None
        )
        try:
            await asyncio.wait_for(opening, time_left(timeout, httpx.ConnectTimeout))
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        await _trace(trace, "connection.connect_tcp.complete", request)
        return connection

    async def _exchange(
        self, request: httpx.Request, connection: _Connection, wire: bytes, timeout: Optional[float]
    ) -> ResponseParser:
        trace = request.extensions.get("trace")
        await _trace(trace, "http11.send_request_headers.started", request)
        parser = connection.parser = ResponseParser(no_body=request.method == "HEAD")
        if connection.closed or connection.transport is None:
            raise httpx.WriteError("the connection closed before the request was written", request=request)
        connection.transport.write(wire)
        while not parser.head_done:
            await receive(connection, request, timeout)
        await _trace(trace, "http11.receive_response_headers.complete", request)
        return parser


async def receive(connection: _Connection, request: httpx.Request, timeout: Optional[float]) -> None:
    """Wait until ``connection`` has more of its response, httpx's errors for what goes wrong.

    A connection that closed has either completed its parser or recorded the error that cut it short.
    """
    if connection.error is None and not connection.closed:
        if not await connection.wait(time_left(timeout, httpx.ReadTimeout)):
            raise httpx.ReadTimeout("read timed out", request=request)
    error = connection.error
    if error is not None:
        error.request = request
        raise error


async def _trace(callback: Any, name: str, request: httpx.Request) -> None:
    if callback is not None:
        result = callback(name, {"request": request})
        if asyncio.iscoroutine(result):
            await result


class _AsyncBody(httpx.AsyncByteStream):
    """A response body read from its connection as httpx iterates; closing it frees the connection."""

    def __init__(
        self, transport: AsyncLeanTransport, connection: _Connection, request: httpx.Request, timeout: Optional[float]
    ) -> None:
        self._transport, self._connection = transport, connection
        self._request, self._timeout = request, timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        parser = connection.parser
        assert parser is not None
        for part in parser.take_body():
            yield part
        while not parser.complete:
            connection.resume()
            await receive(connection, self._request, self._timeout)
            for part in parser.take_body():
                yield part

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            parser = self._connection.parser
            reusable = parser is not None and parser.complete and parser.keep_alive
            self._transport.release(self._connection, reusable)
