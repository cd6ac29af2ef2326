"""Token servers for the benchmark, each run in its own process so it never shares the client's GIL or CPU time.

``fast``: a pre-rendered Entra token endpoint on ``http.server.ThreadingHTTPServer`` with
HTTP/1.1 keep-alive, plain and TLS. Each request is parsed just enough to find its end
(request line, headers, ``Content-Length`` body) and answered with bytes rendered at start-up
(:mod:`bench.entra`: the real headers and cookies), so the server costs a few microseconds and
what is measured is the client.

``emulator``: :class:`oauth_core.emulator.Emulator` over TLS (real RS256 tokens, a new token per
request), for end-to-end runs; stdin takes ``delay SECONDS TIMES`` to inject
``Fault("delay", ...)`` on the token endpoint.

Run as ``python -m bench.server fast|emulator``: it prints one JSON line (where it listens),
then serves until stdin closes (``connections`` asks the fast one how many it has accepted).
:class:`ServerProcess` does that from the parent.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from socketserver import StreamRequestHandler
from typing import Any, Dict, List, Optional, Tuple

from .entra import TENANT, discovery_body, material, render

__all__ = ["FastTokenServer", "ServerProcess", "main", "token_url"]

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 65536


class _Handler(StreamRequestHandler):
    """Keep-alive loop: read one request, write its pre-rendered answer, repeat until the peer closes."""

    disable_nagle_algorithm = True
    server: _Server

    def handle(self) -> None:
        rfile, send = self.rfile, self.connection.sendall
        answer = self.server.answer
        while True:
            line = rfile.readline(MAX_LINE)
            if not line:
                return
            length, close = 0, False
            while True:
                header = rfile.readline(MAX_LINE)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if length:
                rfile.read(length)
            send(answer(line))
            if close:
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # bursts of hundreds of new connections (the concurrency runs)

    def __init__(self, host: str, port: int, tls: Optional[ssl.SSLContext]) -> None:
        self.tls = tls
        self.accepted = 0  # connections accepted so far (the concurrency rows report new ones per round)
        self._counting = threading.Lock()
        super().__init__((host, port), _Handler)
        origin = f"{'https' if tls else 'http'}://{host}:{self.server_address[1]}"
        tokens = material()
        self.origin = origin
        self.token = render(200, "OK", tokens.headers, tokens.body)
        discovery = discovery_body(origin)
        self.discovery = render(
            200,
            "OK",
            [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(discovery)))],
            discovery,
        )
        self.missing = render(404, "Not Found", [("Content-Length", "0")], b"")

    def answer(self, request_line: bytes) -> bytes:
        if request_line.startswith(b"POST ") and b"/oauth2/v2.0/token" in request_line:
            return self.token
        if b"/.well-known/openid-configuration" in request_line:
            return self.discovery
        return self.missing

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._counting:
            self.accepted += 1
        conn = request
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)
            _Handler(conn, client_address, self)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            if conn is not request:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client closing mid-request is normal at the end of a run


_RUNNING: List[FastTokenServer] = []  # the fast servers of this process, for the ``connections`` command


class FastTokenServer:
    """The pre-rendered token endpoint on a loopback port, served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: Optional[ssl.SSLContext] = None) -> None:
        self._httpd = _Server(host, port, tls)
        self.origin = self._httpd.origin
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> FastTokenServer:
        self._thread.start()
        _RUNNING.append(self)
        return self

    @property
    def accepted(self) -> int:
        """Connections accepted since the server started."""
        return self._httpd.accepted

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _serve_fast() -> Tuple[Dict[str, Any], Any]:
    plain = FastTokenServer().start()
    info: Dict[str, Any] = {"http": plain.origin, "https": None, "ca": None, "tls_skipped": None}
    cleanup: Any = None
    try:
        from oauth_core.emulator.server import make_tls  # the emulator's throwaway CA (needs cryptography)
    except ImportError as exc:
        info["tls_skipped"] = f"TLS rows need cryptography ({exc.name} not importable)"
    else:
        files = make_tls(None)
        secure = FastTokenServer(tls=files.context).start()
        info.update(https=secure.origin, ca=files.ca_bundle)
        cleanup = files.temp_dir
    return info, cleanup


def _serve_emulator() -> Tuple[Dict[str, Any], Any]:
    from oauth_core.emulator import Emulator, EmulatorConfig

    # Entra keeps a redeemed refresh token valid; the emulator's stricter default would refuse reuse.
    config = replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=False, token_lifetime=3600)
    emulator = Emulator(config, tls=True).start()
    client_id = config.clients[0].client_id
    user = config.users[0]
    info = {
        "url": emulator.url,
        "tenant": emulator.tenant_id,
        "ca": emulator.ca_bundle,
        "client_id": client_id,
        "username": user.username,
        "password": user.password,
    }
    return info, emulator


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m bench.server fast|emulator``: print where it listens, serve until stdin closes."""
    kind = (argv if argv is not None else sys.argv[1:] or ["fast"])[0]
    if kind == "fast":
        info, state = _serve_fast()
    elif kind == "emulator":
        info, state = _serve_emulator()
    else:
        print(f"unknown server kind {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["delay"] and kind == "emulator":
            from oauth_core.emulator import Fault

            state.inject("token", Fault("delay", seconds=float(words[1])), times=int(words[2]))
        elif words[:1] == ["clear"] and kind == "emulator":
            state.clear_faults()
        elif words[:1] == ["connections"] and kind == "fast":
            print(f"ok {sum(server.accepted for server in _RUNNING)}", flush=True)
            continue
        print("ok", flush=True)
    if kind == "emulator":
        state.stop()
    elif state is not None:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    return 0


class ServerProcess:
    """A ``python -m bench.server KIND`` child: its JSON line as :attr:`info`, commands over stdin."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.server", kind],
            cwd=str(ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=10)
            raise RuntimeError(f"the {kind} token server did not start (exit {self._proc.returncode})")
        self.info: Dict[str, Any] = json.loads(line)

    def command(self, text: str) -> str:
        """Send one stdin command and wait for its ``ok``; returns what follows it (``connections``: a count)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(text + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().split(maxsplit=1)
        if answer[:1] != ["ok"]:
            raise RuntimeError(f"the {self.kind} server did not acknowledge {text!r}")
        return answer[1].strip() if len(answer) > 1 else ""

    def connections(self) -> int:
        """Connections the fast server has accepted so far."""
        return int(self.command("connections"))

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def token_url(origin: str) -> str:
    """The token endpoint of the benchmark tenant at ``origin``."""
    return f"{origin}/{TENANT}/oauth2/v2.0/token"


if __name__ == "__main__":
    sys.exit(main())
