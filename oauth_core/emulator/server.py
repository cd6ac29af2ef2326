"""The socket side: a threading HTTP/1.1 server on a loopback address, optional TLS, and faults.

``http.server.ThreadingHTTPServer`` with keep-alive and a ``Content-Length`` on every response.
TLS handshakes run in the connection's own thread, so a silent client cannot stall the others.
Injected faults (:mod:`.faults`) act here, around :meth:`.app.App.handle`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, urlsplit

from .aadsts import error_response, refusal
from .app import App, grant_type_of, route
from .faults import FAULT_ENDPOINTS, Fault, FaultQueue, fault_response
from .keys import tls_material
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


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a burst of new connections (load tests, a pool
    # opening many at once) would overflow it, and each dropped SYN costs a client a 1 s retransmit.
    request_queue_size = 1024

    def __init__(self, address: Tuple[str, int], owner: EmulatorServer, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        try:
            if self.owner.tls is not None:
                request.settimeout(10)
                conn = self.owner.tls.context.wrap_socket(request, server_side=True)
            self.owner.track(conn, add=True)
            _Handler(conn, client_address, self)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            self.owner.track(conn, add=False)
            if conn is not request:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("emulator connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oauth-core-emulator"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        owner = self.server.owner
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
        grant_type = grant_type_of(request) if endpoint == "token" else None
        response = self._respond(owner, request, fault)
        if fault is not None and fault.kind == "drop_after":
            owner.record(self.command, path, endpoint, grant_type, None)
            self._drop()
            return
        owner.record(self.command, path, endpoint, grant_type, response.status)
        self._send(response, truncate=fault is not None and fault.kind == "truncate")

    def _respond(self, owner: EmulatorServer, request: Request, fault: Optional[Fault]) -> Response:
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind in ("status", "html"):
            return fault_response(fault, owner.app.service.ctx(request))
        return owner.app.handle(request)

    def _request(self, path: str, query: str) -> Optional[Request]:
        owner = self.server.owner
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
    """The listening socket, its serving thread, the fault queues and the request log."""

    def __init__(self, app: App, *, host: str, port: int, tls: Optional[TlsFiles]) -> None:
        self.app = app
        self.tls = tls
        self.faults = FaultQueue()
        self.records: List[RequestRecord] = []
        self._lock = threading.Lock()
        self._connections: Set[Any] = set()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._httpd = _HttpServer((host, port), self, family)
        self.port: int = self._httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.origin = f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-core-emulator", daemon=True
        )

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)  # the raw socket, even under TLS
            except OSError:
                pass

    def track(self, conn: Any, *, add: bool) -> None:
        """Remember (or forget) an open connection, so :meth:`stop` can close it."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def record(self, method: str, path: str, endpoint: str, grant_type: Optional[str], status: Optional[int]) -> None:
        """Append to the request log."""
        entry = RequestRecord(method, path, endpoint, grant_type, status, self.app.service.clock())
        with self._lock:
            self.records.append(entry)

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
