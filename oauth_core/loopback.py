"""A one-shot listener on a loopback address that catches the authorization redirect.

RFC 8252 §7.3: native apps receive the code on ``http://localhost:<port>`` (Entra accepts any
port for a ``http://localhost`` registration). The listener binds 127.0.0.1 by default, answers
only GET on the redirect path, ignores requests whose ``state`` is not the expected one (another
tab, a probe, an attacker's page), answers ``/favicon.ico`` and other paths with 404 without
ending the wait, and stops after the matching callback or the timeout.
"""

from __future__ import annotations

import html
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from .authority import is_loopback_host
from .errors import ConfigError, InteractionTimeout
from .pkce import values_match

__all__ = ["LoopbackListener"]

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body></html>"""


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")


class _Server(ThreadingHTTPServer):
    # Threads, because browsers open idle pre-connections that would block a one-at-a-time server.
    allow_reuse_address = sys.platform != "win32"  # never share a fixed port on Windows
    daemon_threads = True

    def __init__(self, address: Tuple[str, int], expected_path: str, state: str) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.expected_path = expected_path
        self.state = state
        self.callback: Optional[str] = None
        self.done = threading.Event()
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10  # seconds a connection may stay silent

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if (parts.path or "/") != self.server.expected_path:
            self._answer(404, "Not found", "This address only receives a sign-in response.")
            return
        params = parse_qs(parts.query, keep_blank_values=True)
        states = params.get("state", [])
        if len(states) != 1 or not values_match(self.server.state, states[0]):
            self._answer(400, "Unexpected response", "This response does not belong to the sign-in in progress.")
            return
        with self.server.lock:
            first = self.server.callback is None
            if first:
                self.server.callback = parts.query
        if not first:
            self._answer(409, "Already signed in", "This sign-in response was already received.")
            return
        errors = params.get("error")
        if errors:
            detail = (params.get("error_description") or [""])[0].split("Trace ID:")[0].strip()
            self._answer(200, "Sign-in failed", f"{errors[0]}: {detail} You can close this window.")
        else:
            self._answer(200, "Signed in", "Sign-in complete. You can close this window and return to the terminal.")
        self.server.done.set()

    def do_POST(self) -> None:
        self._answer(405, "Method not allowed", "Only GET is accepted here.")

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _page(title, text)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class LoopbackListener:
    """Listen for one authorization redirect on a loopback address.

    Args:
        redirect_uri: ``http://localhost[:port][/path]`` (or 127.0.0.1 / [::1]); without a
            port an ephemeral one is chosen and :attr:`redirect_uri` gets it.
        state: the pending request's state; only a callback carrying it ends the wait.
        listen_address: where to bind; loopback only unless ``allow_non_loopback``.

    Raises:
        ConfigError: a redirect URI that is not http on a loopback host, or a busy port.
    """

    def __init__(
        self,
        redirect_uri: str,
        state: str,
        *,
        listen_address: str = "127.0.0.1",
        allow_non_loopback: bool = False,
    ) -> None:
        try:
            parts = urlsplit(redirect_uri)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ConfigError("the redirect URI is not a valid URL (check its host and port)") from None
        if parts.scheme != "http" or not parts.hostname or not is_loopback_host(parts.hostname):
            raise ConfigError("interactive sign-in needs an http://localhost redirect URI")
        if parts.query or parts.fragment:
            raise ConfigError("the loopback redirect URI must have no query or fragment")
        if not allow_non_loopback and not is_loopback_host(listen_address):
            raise ConfigError("the listener binds only loopback addresses unless explicitly allowed")
        try:
            self._server = _Server((listen_address.strip("[]"), parts.port or 0), parts.path or "/", state)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen_address}:{parts.port or 0} ({exc.strerror})") from None
        port = self._server.server_address[1]
        netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.redirect_uri = f"http://{netloc}:{port}{parts.path}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def wait(self, timeout: float) -> str:
        """Serve until the matching callback arrives; return its query string.

        Raises:
            InteractionTimeout: no matching callback within ``timeout`` seconds.
        """
        thread = threading.Thread(target=self._serve, name="oauth-core-loopback", daemon=True)
        thread.start()
        try:
            if not self._server.done.wait(timeout):
                raise InteractionTimeout(f"no sign-in response within {timeout:g} s")
            assert self._server.callback is not None
            return self._server.callback
        finally:
            self._server.shutdown()
            thread.join()
            self.close()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
