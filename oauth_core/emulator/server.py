"""The socket side: an HTTP/1.1 server on a loopback address, optional TLS, and faults.

``http.server``'s request parsing with keep-alive and a ``Content-Length`` on every response,
served by :mod:`.pool`: a reactor thread buffers each request whole, a fixed number of workers
answer them, and idle or half-sent connections (TLS handshakes included) are closed after
``idle_timeout`` without ever holding a thread. Injected faults (:mod:`.faults`) act here, around
:meth:`.app.App.handle`; a ``delay`` parks the request on the pool's timers.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl, urlsplit

from .aadsts import error_response, refusal
from .app import IDENTITY_ENDPOINTS, App, grant_type_of, route
from .faults import FAULT_ENDPOINTS, Fault, FaultQueue, fault_response
from .keys import tls_material
from .pool import CLOSE, KEEP, Conn, Deferred, Outcome, Pool
from .requestlog import RequestLog, client_id_of, log_line
from .wire import MAX_BODY, Request, RequestRecord, Response

__all__ = ["EmulatorServer", "TlsFiles", "make_tls"]

_log = logging.getLogger(__name__)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """A server-side TLS context and where the CA bundle that trusts it was written."""

    context: ssl.SSLContext
    ca_bundle: str
    temp_dir: Optional[str]


def make_tls(ca_dir: Optional[str]) -> TlsFiles:
    """Write ``ca.pem`` (to ``ca_dir`` or a new private temp dir) and build the server context."""
    material = tls_material()
    temp_dir = None if ca_dir else tempfile.mkdtemp(prefix="oauth-core-emulator-")
    target = Path(ca_dir or str(temp_dir))
    target.mkdir(parents=True, exist_ok=True)
    ca_path = target / "ca.pem"
    ca_path.write_bytes(material.ca_pem)
    key_dir = tempfile.mkdtemp(prefix="oauth-core-emulator-key-")
    try:
        cert_file, key_file = Path(key_dir) / "cert.pem", Path(key_dir) / "key.pem"
        cert_file.write_bytes(material.cert_pem)
        fd = os.open(str(key_file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(material.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert_file), str(key_file))
    finally:
        shutil.rmtree(key_dir, ignore_errors=True)
    return TlsFiles(context=context, ca_bundle=str(ca_path), temp_dir=temp_dir)


class _Out(io.BufferedIOBase):
    """The response side of a connection: collects one answer, sends it whole on ``flush``."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._parts: List[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        if self._parts:
            out, self._parts = b"".join(self._parts), []
            self._sock.sendall(out)


class _Handler(BaseHTTPRequestHandler):
    """One request, already read whole by the pool, answered on the connection's socket."""

    protocol_version = "HTTP/1.1"
    server_version = "oauth-core-emulator"
    sys_version = ""

    def __init__(self, conn: Conn, raw: bytes, owner: EmulatorServer) -> None:
        # Not BaseRequestHandler's constructor: that one reads and answers a whole connection.
        self.request = self.connection = conn.sock
        self.client_address = conn.address
        self.owner = owner
        self.rfile = io.BytesIO(raw)
        self.wfile = _Out(conn.sock)
        self.close_connection = True
        self.deferred: Optional[Deferred] = None

    def run(self) -> Outcome:
        """Answer the request; what the connection does next."""
        self.handle_one_request()
        return self.deferred or self._outcome()

    def _outcome(self) -> Outcome:
        self.wfile.flush()  # also the answers http.server writes itself (400, 414, 431, 501)
        return CLOSE if self.close_connection else KEEP

    def handle_expect_100(self) -> bool:
        return True  # the pool already sent "100 Continue" while the body was on its way

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        owner = self.owner
        target = urlsplit(self.path)
        path = target.path or "/"
        endpoint, _ = route(path)
        fault = owner.faults.next(endpoint) if endpoint in FAULT_ENDPOINTS else None
        if fault is not None and fault.kind == "drop_before":
            owner.record(self.command, path, endpoint, None, None)
            self._drop()
            return
        request = self._request(path, target.query)
        if request is None:
            return
        if fault is not None and fault.kind == "delay":
            # Parked on the pool's timers, not asleep in a worker: delayed requests hold no thread.
            self.deferred = Deferred(fault.seconds, lambda: self._finish_later(request, path, endpoint, fault))
            return
        self._finish(request, path, endpoint, fault)

    def _finish_later(self, request: Request, path: str, endpoint: str, fault: Optional[Fault]) -> Outcome:
        self._finish(request, path, endpoint, fault)
        return self._outcome()

    def _finish(self, request: Request, path: str, endpoint: str, fault: Optional[Fault]) -> None:
        owner = self.owner
        grant_type = grant_type_of(request) if endpoint == "token" else None
        if fault is not None and fault.kind in ("status", "html"):
            response = fault_response(fault, owner.app.service.ctx(request))
        else:
            response = owner.app.handle(request)
        if fault is not None and fault.kind == "drop_after":
            owner.record(self.command, path, endpoint, grant_type, None, request)
            self._drop()
            return
        owner.record(self.command, path, endpoint, grant_type, response.status, request)
        self._send(response, truncate=fault is not None and fault.kind == "truncate")

    def _request(self, path: str, query: str) -> Optional[Request]:
        owner = self.owner
        headers = tuple((k.lower(), v) for k, v in self.headers.items())
        base = Request(self.command, path, (), headers, b"", owner.origin_for(self.headers.get("Host")))
        problem = self._body_problem()
        if problem is not None:
            ctx = owner.app.service.ctx(base)
            owner.record(self.command, path, route(path)[0], None, 400)
            self._send(error_response(refusal(9002313, error="invalid_request"), ctx), close=True)
            self._drain()
            return None
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return None
        pairs = tuple(parse_qsl(query, keep_blank_values=True, errors="replace"))
        return Request(self.command, path, pairs, headers, body, base.origin)

    def _body_problem(self) -> Optional[str]:
        if self.headers.get("Transfer-Encoding"):
            return "chunked bodies are not accepted"
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not (raw.strip().isascii() and raw.strip().isdigit()):
            return "bad Content-Length"
        return "body too large" if int(raw) > MAX_BODY else None

    def _send(self, response: Response, *, truncate: bool = False, close: bool = False) -> None:
        body = response.body
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close or truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        if truncate:
            self._drop()

    def _drain(self, limit: int = 4 * MAX_BODY, seconds: float = 0.5) -> None:
        """Read (and discard) what the client is still sending, so closing does not reset the answer."""
        deadline = time.monotonic() + seconds
        try:
            self.wfile.flush()
            socket.socket.shutdown(self.connection, socket.SHUT_WR)
            while limit > 0 and time.monotonic() < deadline:
                self.connection.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.connection.recv(min(65536, limit))
                if not chunk:
                    break
                limit -= len(chunk)
        except OSError:
            pass

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass


class EmulatorServer:
    """The listening socket, the connection pool serving it, the fault queues and the request log.

    ``workers``, ``idle_timeout`` and ``max_connections`` size the pool (:mod:`.pool`): idle or
    half-sent connections are closed after ``idle_timeout`` seconds and never hold a worker.
    ``request_log`` is a file where every request is also appended as one JSON line, with no
    secret (:mod:`.requestlog`).
    """

    def __init__(
        self,
        app: App,
        *,
        host: str,
        port: int,
        tls: Optional[TlsFiles],
        workers: int = 16,
        idle_timeout: float = 5.0,
        max_connections: int = 1000,
        request_log: Optional[str] = None,
    ) -> None:
        self.app = app
        self.tls = tls
        self.faults = FaultQueue()
        self.records: List[RequestRecord] = []
        self._lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # A deep listen backlog: a burst of new connections (load tests, a pool opening many at once)
        # would overflow a short one, and each dropped SYN costs a client a 1 s retransmit.
        listener = socket.create_server((host, port), family=family, backlog=1024)
        self.port: int = listener.getsockname()[1]
        self.scheme = "https" if tls else "http"
        self.origin = f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"
        self._log_file: Optional[RequestLog] = None
        try:
            self._log_file = RequestLog(request_log) if request_log is not None else None
            self._pool = Pool(
                listener,
                lambda conn, raw: _Handler(conn, raw, self).run(),
                tls=tls.context if tls else None,
                workers=workers,
                idle_timeout=idle_timeout,
                max_connections=max_connections,
                max_body=MAX_BODY,
            )
        except BaseException:
            listener.close()
            if self._log_file is not None:
                self._log_file.close()
            raise
        self._started = False

    def start(self) -> None:
        """Serve: a reactor thread and the worker threads (daemons)."""
        if not self._started:
            self._started = True
            self._pool.start()

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        self._pool.stop()
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def stats(self) -> Dict[str, int]:
        """How many connections are open and how many workers are idle."""
        return self._pool.stats()

    def record(
        self,
        method: str,
        path: str,
        endpoint: str,
        grant_type: Optional[str],
        status: Optional[int],
        request: Optional[Request] = None,
    ) -> None:
        """Append to the request log (with the query of managed identity requests, and header names)."""
        params = request.query if request is not None and endpoint in IDENTITY_ENDPOINTS else ()
        names = tuple(dict.fromkeys(k for k, _ in request.headers)) if request is not None else ()
        entry = RequestRecord(method, path, endpoint, grant_type, status, self.app.service.clock(), params, names)
        line = None
        if self._log_file is not None:
            client_id = client_id_of(request)
            line = log_line(
                at=entry.at, method=method, endpoint=endpoint, grant_type=grant_type, status=status, client_id=client_id
            )
        with self._lock:
            self.records.append(entry)
            if line is not None and self._log_file is not None:
                self._log_file.write(line)

    def snapshot(self) -> List[RequestRecord]:
        """A copy of the request log."""
        with self._lock:
            return list(self.records)

    def origin_for(self, host_header: Optional[str]) -> str:
        """The origin a client addressed (``localhost`` or a loopback IP on our port), else ours."""
        if host_header:
            try:
                parts = urlsplit(f"//{host_header.strip()}")
                if parts.hostname in _LOOPBACK_NAMES and parts.port == self.port:
                    return f"{self.scheme}://{host_header.strip()}"
            except ValueError:
                pass
        return self.origin
