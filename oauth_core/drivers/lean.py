"""A lean httpx transport: HTTP/1.1 over a pool of kept-alive sockets, for the clients' own httpx clients.

httpx's default transport runs every request through httpcore's connection pool, its network
backend and h11; a token POST spends more time there than in everything oauth_core does. This
transport keeps httpx's API (an ``httpx.BaseTransport``: the client, its requests, responses,
errors, timeouts and content decoding are httpx's) and does the wire itself: one socket per
request in flight, idle ones reused per origin, the protocol parsed by :mod:`.http1`.

It obeys the call deadline (:data:`~oauth_core.drivers.deadline.CALL_DEADLINE`) in every connect,
write and read, emits the httpcore ``trace`` events ``oauth-core bench`` reads, and raises the
httpx errors httpx's own transport would. It is the default for the clients oauth_core builds
when no proxy is configured; ``OAUTH_CORE_TRANSPORT=httpx`` puts httpx's own transport back.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import httpx

from .deadline import time_left
from .http1 import ResponseParser, WireError, chunked, request_head

__all__ = ["LeanTransport", "Origin", "Verify", "TrustStore", "origin_of", "request_bytes"]

Origin = Tuple[str, str, int]
Verify = Union[ssl.SSLContext, str, bool]
_READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(request: httpx.Request) -> Origin:
    """(scheme, host, port) of a request, its port filled in.

    Raises:
        httpx.UnsupportedProtocol: neither http nor https.
    """
    url = request.url
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"the URL scheme {scheme!r} is not http or https", request=request)
    return scheme, url.host, url.port or _DEFAULT_PORTS[scheme]


def request_bytes(request: httpx.Request, body: List[bytes]) -> bytes:
    """The request as written on the wire; ``body`` is its content, chunked unless its length is known.

    Raises:
        httpx.LocalProtocolError: a header or the target would split the request.
    """
    headers = request.headers.raw
    try:
        head = request_head(request.method.encode("ascii"), request.url.raw_path, headers)
    except WireError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from None
    if any(name.lower() == b"transfer-encoding" for name, _ in headers):
        return head + b"".join(chunked(body))
    return head + b"".join(body)


class TrustStore:
    """The TLS context for ``verify``, as httpx would build it, made on the first https connection.

    Like httpx's transports, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are read when the transport is
    built (``verify=True``); the certificates are loaded only once an https origin is reached, so a
    client that never leaves plain-http loopback never pays for them.
    """

    __slots__ = ("_cafile", "_capath", "_context", "_verify")

    def __init__(self, verify: Verify) -> None:
        self._verify = verify
        self._context = verify if isinstance(verify, ssl.SSLContext) else None
        self._cafile = os.environ.get("SSL_CERT_FILE") if verify is True else None
        self._capath = os.environ.get("SSL_CERT_DIR") if verify is True else None

    def context(self) -> ssl.SSLContext:
        """The context (built once; a race builds two equal ones, harmlessly)."""
        if self._context is None:
            if self._cafile:
                self._context = ssl.create_default_context(cafile=self._cafile)
            elif self._capath:
                self._context = ssl.create_default_context(capath=self._capath)
            else:
                self._context = httpx.create_ssl_context(verify=self._verify, trust_env=False)
        return self._context


class _Connection:
    __slots__ = ("idle_since", "origin", "sock")

    def __init__(self, sock: socket.socket, origin: Origin) -> None:
        self.sock, self.origin, self.idle_since = sock, origin, 0.0

    def usable(self, now: float, expiry: float) -> bool:
        """Whether an idle connection can carry a request: not expired, and the peer has not closed it
        (an idle socket that turns readable holds an EOF or bytes nobody asked for)."""
        if now - self.idle_since > expiry:
            return False
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        try:
            return not _readable(sock)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _readable(sock: socket.socket) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class _Timeouts:
    """One request's timeouts (httpx's ``timeout`` extension), each cut to the call deadline when used."""

    __slots__ = ("connect", "pool", "read", "write")

    def __init__(self, request: httpx.Request) -> None:
        parts = request.extensions.get("timeout") or {}
        self.connect: Optional[float] = parts.get("connect")
        self.read: Optional[float] = parts.get("read")
        self.write: Optional[float] = parts.get("write")
        self.pool: Optional[float] = parts.get("pool")


class _Trace:
    """httpcore's ``trace`` extension, its event names kept, for callers that time the phases."""

    __slots__ = ("callback", "request")

    def __init__(self, request: httpx.Request) -> None:
        self.callback: Optional[Callable[[str, Dict[str, Any]], Any]] = request.extensions.get("trace")
        self.request = request

    def __call__(self, name: str) -> None:
        if self.callback is not None:
            self.callback(name, {"request": self.request})


class LeanTransport(httpx.BaseTransport):
    """HTTP/1.1 to http and https origins over kept-alive sockets (no proxy, no HTTP/2).

    ``verify`` is what httpx's transports take (a context, a CA bundle path, or a bool); its TLS
    context is built on the first https connection. At most ``max_connections`` requests are in
    flight at once (httpx.PoolTimeout after the pool timeout), and at most ``max_keepalive`` idle
    connections per origin are kept, each for ``keepalive_expiry`` seconds.
    """

    def __init__(
        self,
        *,
        verify: Verify = True,
        max_connections: int = 100,
        max_keepalive: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._trust = TrustStore(verify)
        self._idle: Dict[Origin, List[_Connection]] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_keepalive = max_keepalive
        self._expiry = keepalive_expiry
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its head; the body streams from the socket as httpx reads it."""
        origin = origin_of(request)
        timeouts = _Timeouts(request)
        wire = request_bytes(request, list(request.stream))  # type: ignore[arg-type]
        self._take_slot(request, timeouts)
        try:
            connection = self._checkout(origin) or self._connect(request, origin, timeouts)
        except BaseException:
            self._slots.release()
            raise
        try:
            parser = self._exchange(request, connection, wire, timeouts)
        except BaseException:
            connection.close()
            self._slots.release()
            raise
        stream = _Body(self, connection, parser, request, timeouts)
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": parser.reason}
        return httpx.Response(parser.status, headers=parser.headers, stream=stream, extensions=extensions)

    def close(self) -> None:
        """Close every idle connection; those in use close when their response does."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- the pool -------------------------------------------------------------------------

    def _take_slot(self, request: httpx.Request, timeouts: _Timeouts) -> None:
        if self._slots.acquire(blocking=False):
            return
        wait = time_left(timeouts.pool, httpx.PoolTimeout)
        if not self._slots.acquire(timeout=-1 if wait is None else wait):
            raise httpx.PoolTimeout("no connection became free in time", request=request)

    def _checkout(self, origin: Origin) -> Optional[_Connection]:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if connection.usable(now, self._expiry):
                return connection
            connection.close()

    def release(self, connection: _Connection, reusable: bool) -> None:
        """A response is done with ``connection``: keep it for the next request, or close it."""
        self._slots.release()
        if reusable:
            connection.idle_since = time.monotonic()
            with self._lock:
                idle = self._idle.setdefault(connection.origin, [])
                if not self._closed and len(idle) < self._max_keepalive:
                    idle.append(connection)
                    return
        connection.close()

    # -- the wire -------------------------------------------------------------------------

    def _connect(self, request: httpx.Request, origin: Origin, timeouts: _Timeouts) -> _Connection:
        scheme, host, port = origin
        trace = _Trace(request)
        trace("connection.connect_tcp.started")
        try:
            sock = socket.create_connection((host, port), time_left(timeouts.connect, httpx.ConnectTimeout))
        except socket.timeout as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        trace("connection.connect_tcp.complete")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = self._start_tls(request, sock, host, timeouts, trace)
        return _Connection(sock, origin)

    def _start_tls(
        self, request: httpx.Request, sock: socket.socket, host: str, timeouts: _Timeouts, trace: _Trace
    ) -> socket.socket:
        trace("connection.start_tls.started")
        try:
            context = self._trust.context()
            sock.settimeout(time_left(timeouts.connect, httpx.ConnectTimeout))
            tls = context.wrap_socket(sock, server_hostname=host)
        except socket.timeout as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "TLS handshake timed out", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise httpx.ConnectError(str(exc), request=request) from None
        except BaseException:
            sock.close()
            raise
        trace("connection.start_tls.complete")
        return tls

    def _exchange(
        self, request: httpx.Request, connection: _Connection, wire: bytes, timeouts: _Timeouts
    ) -> ResponseParser:
        trace = _Trace(request)
        sock = connection.sock
        trace("http11.send_request_headers.started")
        try:
            sock.settimeout(time_left(timeouts.write, httpx.WriteTimeout))
            sock.sendall(wire)
        except socket.timeout as exc:
            raise httpx.WriteTimeout(str(exc) or "write timed out", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from None
        parser = ResponseParser(no_body=request.method == "HEAD")
        while not parser.head_done:
            _receive(sock, parser, request, timeouts)
        trace("http11.receive_response_headers.complete")
        return parser


def _receive(sock: socket.socket, parser: ResponseParser, request: httpx.Request, timeouts: _Timeouts) -> None:
    """Read once from ``sock`` into ``parser`` (an EOF included), httpx's errors for what goes wrong."""
    try:
        sock.settimeout(time_left(timeouts.read, httpx.ReadTimeout))
        data = sock.recv(_READ_SIZE)
    except socket.timeout as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from None
    except OSError as exc:
        raise httpx.ReadError(str(exc), request=request) from None
    try:
        if data:
            parser.feed(data)
        else:
            parser.eof()
    except WireError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from None


class _Body(httpx.SyncByteStream):
    """A response body read from its connection as httpx iterates; closing it frees the connection."""

    def __init__(
        self,
        transport: LeanTransport,
        connection: _Connection,
        parser: ResponseParser,
        request: httpx.Request,
        timeouts: _Timeouts,
    ) -> None:
        self._transport, self._connection, self._parser = transport, connection, parser
        self._request, self._timeouts = request, timeouts
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        parser = self._parser
        yield from parser.take_body()
        while not parser.complete:
            _receive(self._connection.sock, parser, self._request, self._timeouts)
            yield from parser.take_body()

    def close(self) -> None:
        if not self._released:
            self._released = True
            parser = self._parser
            self._transport.release(self._connection, parser.complete and parser.keep_alive)
