"""A one-shot listener on a loopback address that catches the authorization redirect.

RFC 8252 §7.3: native apps receive the code on ``http://localhost:<port>`` (Entra accepts any
port for a ``http://localhost`` registration). The listener answers only GET on the redirect path,
ignores requests whose ``state`` is not the expected one (another tab, a probe, an attacker's
page), answers ``/favicon.ico`` and other paths with 404 without ending the wait, and stops after
the matching callback or the timeout.

Where it binds: a browser may resolve ``localhost`` to 127.0.0.1 or to ::1, so for a ``localhost``
redirect the listener holds the same port on both (another local user cannot take the other one
and receive the code). An ephemeral port is one free on both; a fixed port whose ::1 side is taken
is refused. Without any IPv6 loopback on the machine, 127.0.0.1 alone is safe. A literal
``127.0.0.1`` or ``[::1]`` redirect binds just that address.

The matching callback is recorded and ends the wait before its page is written, so a browser that
drops the connection early loses nothing; the same callback again gets the same page.
"""

from __future__ import annotations

import errno
import html
import logging
import socket
import socketserver
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from ..core.authority import is_loopback_host
from ..core.errors import ConfigError, InteractionTimeout
from ..core.pkce import new_state, values_match

if TYPE_CHECKING:
    from ..core.authorize import PendingAuthorization
    from ..core.flows import ClientBase

__all__ = ["LoopbackListener"]

_log = logging.getLogger(__name__)

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body></html>"""

# Binding ::1 fails like this where the machine has no IPv6 loopback: nobody else can take it either.
_NO_ADDRESS = {
    code
    for code in (
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
        getattr(errno, "WSAEADDRNOTAVAIL", None),
        getattr(errno, "WSAEAFNOSUPPORT", None),
    )
    if code is not None
}
# The port is held on the other address (EACCES: Windows' exclusive or reserved ports).
_TAKEN = {errno.EADDRINUSE, errno.EACCES}
_EPHEMERAL_ATTEMPTS = 8
_PAGE_GRACE = 2.0  # seconds wait() gives the matching callback's page to reach the browser


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")


class _Inbox:
    """What every socket of one listener shares: the expectation and the one callback."""

    def __init__(self, expected_path: str, state: str) -> None:
        self.expected_path = expected_path
        self.state = state
        self.callback: Optional[str] = None
        self.done = threading.Event()  # the matching callback was recorded
        self.answered = threading.Event()  # ... and its page was written (or the browser left)
        self.lock = threading.Lock()


class _Server(ThreadingHTTPServer):
    # Threads, because browsers open idle pre-connections that would block a one-at-a-time server.
    allow_reuse_address = sys.platform != "win32"  # never share a fixed port on Windows
    daemon_threads = True

    def __init__(self, address: Tuple[str, int], inbox: _Inbox) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.inbox = inbox
        self.done = inbox.done  # setting it ends the wait (what LoopbackListener.cancel does)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
            # ::1 and 127.0.0.1 are separate sockets; "::" must not swallow the IPv4 side either.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        socketserver.TCPServer.server_bind(self)  # HTTPServer's version adds a slow getfqdn()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that resets a connection is no news; never print a traceback into the terminal.
        _log.debug("loopback listener: a connection failed", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10  # seconds a connection may stay silent

    def do_GET(self) -> None:
        inbox = self.server.inbox
        parts = urlsplit(self.path)
        if (parts.path or "/") != inbox.expected_path:
            self._answer(404, "Not found", "This address only receives a sign-in response.")
            return
        params = parse_qs(parts.query, keep_blank_values=True)
        states = params.get("state", [])
        if len(states) != 1 or not values_match(inbox.state, states[0]):
            self._answer(400, "Unexpected response", "This response does not belong to the sign-in in progress.")
            return
        with inbox.lock:
            first = inbox.callback is None
            if first:
                inbox.callback = parts.query
            repeat = not first and inbox.callback == parts.query
        if not first and not repeat:
            self._answer(409, "Already signed in", "This sign-in response was already received.")
            return
        if first:
            inbox.done.set()  # before the page: a dropped connection must not lose the callback
        try:
            self._answer_callback(params)
        finally:
            if first:
                inbox.answered.set()

    def _answer_callback(self, params: Any) -> None:
        # The same page for the first callback and for a browser retrying it.
        errors = params.get("error")
        if errors:
            detail = (params.get("error_description") or [""])[0].split("Trace ID:")[0].strip()
            self._answer(200, "Sign-in failed", f"{errors[0]}: {detail} You can close this window.")
        else:
            self._answer(200, "Signed in", "Sign-in complete. You can close this window and return to the terminal.")

    def do_POST(self) -> None:
        self._answer(405, "Method not allowed", "Only GET is accepted here.")

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _page(title, text)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the browser went away (broken pipe, reset, timeout): nothing to tell it
            self.close_connection = True
            _log.debug("loopback listener: the browser left before the page was written", exc_info=True)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _bind_addresses(redirect_host: str, listen_address: str) -> Tuple[str, Optional[str]]:
    """The address to bind and, for ``localhost``, the other loopback family's address to hold too."""
    host = listen_address.strip("[]")
    literal = redirect_host.strip("[]").lower()
    if literal != "localhost":
        # The browser goes straight to the literal; a loopback listen address can only mean it.
        return (literal if is_loopback_host(host) else host), None
    return host, ("127.0.0.1" if ":" in host else "::1")


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _twin(twin: str, port: int, inbox: _Inbox) -> Optional[_Server]:
    """Bind the other loopback address; None where the machine has no such address at all."""
    try:
        return _Server((twin, port), inbox)
    except OSError as exc:
        if exc.errno in _NO_ADDRESS:
            return None
        raise


def _open(host: str, twin: Optional[str], port: int, inbox: _Inbox) -> List[_Server]:
    attempts = _EPHEMERAL_ATTEMPTS if port == 0 else 1
    for _ in range(attempts):
        try:
            primary = _Server((host, port), inbox)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {_shown(host)}:{port} ({exc.strerror})") from None
        if twin is None:
            return [primary]
        bound = int(primary.server_address[1])
        try:
            second = _twin(twin, bound, inbox)
        except OSError as exc:
            primary.server_close()
            if port == 0 and exc.errno in _TAKEN:
                continue  # another program has this port on the other address: pick another
            raise ConfigError(
                f"cannot listen on {_shown(twin)}:{bound} ({exc.strerror}): another program holds that address, "
                "and a browser resolving localhost to it would hand that program the sign-in response; "
                "choose another port"
            ) from None
        return [primary] if second is None else [primary, second]
    raise ConfigError(f"cannot find a port free on both {_shown(host)} and {_shown(twin or '')}")


class LoopbackListener:
    """Listen for one authorization redirect on a loopback address.

    Args:
        redirect_uri: ``http://localhost[:port][/path]`` (or 127.0.0.1 / [::1]); without a
            port an ephemeral one is chosen and :attr:`redirect_uri` gets it.
        state: the pending request's state; only a callback carrying it ends the wait.
        listen_address: where to bind; loopback only unless ``allow_non_loopback``. For a
            ``localhost`` redirect the same port is also held on the other loopback family
            (::1 beside an IPv4 address, 127.0.0.1 beside an IPv6 one); a literal loopback
            redirect host is bound as it is.

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
        self._inbox = _Inbox(parts.path or "/", state)
        host, twin = _bind_addresses(parts.hostname, listen_address)
        self._servers = _open(host, twin, parts.port or 0, self._inbox)
        self._server = self._servers[0]
        netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.redirect_uri = f"http://{netloc}:{self.port}{parts.path}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def addresses(self) -> List[Tuple[str, int]]:
        """Every (host, port) the listener holds."""
        return [(str(s.server_address[0]), int(s.server_address[1])) for s in self._servers]

    def wait(self, timeout: float) -> str:
        """Serve until the matching callback arrives; return its query string.

        Raises:
            InteractionTimeout: no matching callback within ``timeout`` seconds.
        """
        threads = [
            threading.Thread(target=self._serve, args=(server,), name="oauth-core-loopback", daemon=True)
            for server in self._servers
        ]
        for thread in threads:
            thread.start()
        try:
            if not self._inbox.done.wait(timeout):
                raise InteractionTimeout(f"no sign-in response within {timeout:g} s")
            callback = self._inbox.callback
            if callback is None:
                raise InteractionTimeout("the sign-in was cancelled")
            self._inbox.answered.wait(_PAGE_GRACE)  # bounded: a stalled browser cannot hold us
            return callback
        finally:
            for server in self._servers:
                server.shutdown()
            for thread in threads:
                thread.join()
            self.close()

    def cancel(self) -> None:
        """End a running :meth:`wait` now, from any thread (it raises :class:`InteractionTimeout`)."""
        self._inbox.done.set()

    @staticmethod
    def _serve(server: _Server) -> None:
        server.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        for server in self._servers:
            server.server_close()

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def signing_in(
    client: ClientBase,
    redirect_uri: str,
    *,
    listen_address: str,
    on_url: Optional[Callable[[str], None]],
    **authorization: Any,
) -> Iterator[Tuple[LoopbackListener, PendingAuthorization]]:
    """A listener on ``redirect_uri`` and the pending request whose redirect comes back to it.

    ``authorization`` holds :meth:`ClientBase.authorization_request`'s options (scopes, prompt,
    hints); ``on_url`` is called with the sign-in URL. Both drivers' ``acquire_interactive`` open
    the browser and wait on the listener their own way.
    """
    state = new_state()
    with LoopbackListener(redirect_uri, state, listen_address=listen_address) as listener:
        pending = client.authorization_request(listener.redirect_uri, state=state, **authorization)
        if on_url is not None:
            on_url(pending.url)
        yield listener, pending
