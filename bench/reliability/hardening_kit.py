"""What the ``hardening`` part needs to attack for real: results, loopback servers, the CLI in a guarded subprocess.

Every server listens on 127.0.0.1 on a port the OS picks, reads with a socket timeout, drips for a
bounded time and is shut down by its ``with`` block. Every CLI run is ``python -m oauth_core`` in a
subprocess with a timeout, a scrubbed environment (no proxy, CA or Azure variables but the ones an
attack sets) and its own ``OAUTH_CORE_HOME``; a ``sitecustomize`` on its ``PYTHONPATH`` refuses and
records any name lookup or connection that is not loopback, so no attack can leave the machine.

Only the public API is used: top-level ``oauth_core`` names, ``oauth_core.emulator.Emulator`` and
the CLI as a process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urljoin

REPO = Path(__file__).resolve().parents[2]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
SCRUBBED = (
    *PROXY_VARIABLES,
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETRC",
    "XDG_STATE_HOME",
    "PYTHONPATH",
)
SCRUBBED_PREFIXES = ("AZURE_", "OAUTH_CORE_", "DATABRICKS_")
CONTROL_CHARS = ("\x1b", "\x9b", "\x07", "\x9d", "\x7f", "\u202e")
GUARD_LOG = "BENCH_HARDENING_GUARD_LOG"
CLI_TIMEOUT = 40.0

# Loaded by every CLI subprocess (it is the sitecustomize on its PYTHONPATH): a lookup or connect
# to anything but loopback is written to the log and fails, before a packet leaves.
GUARD_SOURCE = '''"""bench.reliability hardening: refuse and record every non-loopback lookup or connection."""
import errno
import ipaddress
import os
import socket

_LOG = os.environ.get("BENCH_HARDENING_GUARD_LOG")


def _loopback(host):
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    name = name.strip("[]").split("%")[0].lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(what):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(what + "\\n")


if _LOG:
    _getaddrinfo, _connect, _connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex
    _gethostbyname, _gethostbyname_ex = socket.gethostbyname, socket.gethostbyname_ex

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _loopback(host):
            _refuse(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "the bench allows loopback lookups only")
        return _getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):
        if not _loopback(host):
            _refuse(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "the bench allows loopback lookups only")
        return _gethostbyname(host)

    def gethostbyname_ex(host):
        if not _loopback(host):
            _refuse(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "the bench allows loopback lookups only")
        return _gethostbyname_ex(host)

    def _outward(sock, address):
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0])

    def connect(self, address):
        if _outward(self, address):
            _refuse(f"connect {address[0]}:{address[1]}")
            raise OSError(errno.ENETUNREACH, "the bench allows loopback connections only")
        return _connect(self, address)

    def connect_ex(self, address):
        if _outward(self, address):
            _refuse(f"connect {address[0]}:{address[1]}")
            return errno.ENETUNREACH
        return _connect_ex(self, address)

    socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex = getaddrinfo, gethostbyname, gethostbyname_ex
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
'''


@dataclasses.dataclass
class AttackResult:
    """One red-team attack: how many of its checks were tried, and which behaviours did not hold."""

    number: int
    attack: str
    tried: int = 0
    defects: List[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    note: str = ""


def printable(text: str) -> str:
    """``text`` on one line with every control character escaped (a report must not drive the terminal)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class Probe:
    """Counts each check of an attack as tried; a check whose behaviour does not hold is a defect."""

    def __init__(self, result: AttackResult) -> None:
        self.result = result

    def check(self, what: str, holds: bool, detail: Any = "") -> bool:
        self.result.tried += 1
        if not holds:
            shown = printable(str(detail))[:300]
            self.result.defects.append(f"{what}: {shown}" if shown else what)
        return holds

    def note(self, text: str) -> None:
        self.result.note = f"{self.result.note}; {text}" if self.result.note else text


# -- loopback servers ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Received:
    """One request a loopback server read: its head (request line and headers) and body."""

    head: bytes
    body: bytes

    def form(self) -> Dict[str, str]:
        pairs = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in pairs.items()}


def read_request(sock: socket.socket) -> Optional[Received]:
    """Read one request (head, then a Content-Length body) within the socket's timeout."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = min(int(value.strip()), 1 << 20)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Received(head, body)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class LoopbackServer:
    """A threaded TCP server on 127.0.0.1 that records each request and lets :meth:`answer` reply."""

    def __init__(self) -> None:
        self.received: List[Received] = []
        self.stop = threading.Event()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5.0)
                try:
                    request = read_request(sock)
                    if request is not None:
                        owner.received.append(request)
                        owner.answer(sock, request)
                except OSError:
                    return  # the client went away: nothing to answer

        self._server = _TCPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, sock: socket.socket, request: Received) -> None:
        raise NotImplementedError

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class CannedServer(LoopbackServer):
    """Answers every request with the same response and closes: a token endpoint, a workspace, a proxy."""

    def __init__(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        super().__init__()
        phrase = HTTPStatus(status).phrase
        head = f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.response = (head + "Connection: close\r\n\r\n").encode("ascii") + body

    def answer(self, sock: socket.socket, request: Received) -> None:
        sock.sendall(self.response)


class DripServer(LoopbackServer):
    """Sends a 200 head promising 100,000 bytes, then one body byte per ``interval`` for at most ``give_up`` s."""

    def __init__(self, interval: float, give_up: float) -> None:
        super().__init__()
        self.interval, self.give_up = interval, give_up

    def answer(self, sock: socket.socket, request: Received) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        ends = time.monotonic() + self.give_up
        while not self.stop.wait(self.interval) and time.monotonic() < ends:
            sock.sendall(b"a")  # raises once the client has given up and closed


@contextlib.contextmanager
def patched_env(values: Dict[str, str]) -> Iterator[None]:
    """Set environment variables in this process for the block (the library reads proxies from there)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- a person at the browser ---------------------------------------------------------------------------


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: Optional[str] = None
        self.fields: Dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def sign_in(url: str, username: str, password: str) -> str:
    """Open the emulator's sign-in page at ``url``, submit the credentials, return the redirect Location."""
    import httpx

    with httpx.Client(follow_redirects=False, timeout=10.0, trust_env=False) as browser:
        page = browser.get(url)
        form = _Form()
        form.feed(page.text)
        if form.action is None:
            raise RuntimeError(f"the sign-in page (HTTP {page.status_code}) has no form")
        fields = {**form.fields, "username": username, "password": password, "action": "signin"}
        answer = browser.post(urljoin(str(page.url), form.action), data=fields)
        location = answer.headers.get("location")
        if answer.status_code not in (302, 303) or not location:
            raise RuntimeError(f"the sign-in did not redirect (HTTP {answer.status_code})")
        return str(location)


# -- the lab: one emulator, private homes, the CLI in a subprocess -------------------------------------


@dataclasses.dataclass(frozen=True)
class CliRun:
    """One ``python -m oauth_core`` run: exit code, output, wall time, and what the network guard refused."""

    code: int
    out: str
    err: str
    seconds: float
    outward: Tuple[str, ...]

    @property
    def text(self) -> str:
        return self.out + self.err

    def brief(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f} s: {self.err.strip()[-200:]!r}"


class Lab:
    """The attacks' shared ground: a temp dir, one emulator, a signed-in home to copy, the CLI runner."""

    def __init__(self, quick: bool, environ: Optional[Dict[str, str]] = None) -> None:
        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix="oauth-core-hardening-"))
        self._master: Optional[Path] = None
        self._runs = 0
        self.emulator: Any = None
        self._environ = {  # the caller's copy: attack 1 changes os.environ while other lanes run the CLI
            name: value
            for name, value in (os.environ if environ is None else environ).items()
            if name not in SCRUBBED and not name.startswith(SCRUBBED_PREFIXES)
        }

    def __enter__(self) -> Lab:
        from oauth_core.emulator import Emulator, EmulatorConfig

        guard = self.tmp / "guard"
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(GUARD_SOURCE, encoding="utf-8")
        self.emulator = Emulator(EmulatorConfig.default(), port=0).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def user(self) -> Tuple[str, str]:
        user = self.emulator.config.users[0]
        return user.username, user.password

    @property
    def client_id(self) -> str:
        return str(self.emulator.config.clients[0].client_id)

    @property
    def tenant(self) -> str:
        return str(self.emulator.tenant_id)

    def token_requests(self) -> int:
        return int(self.emulator.count("token") + self.emulator.count("devicecode"))

    def client(self, **kwargs: Any) -> Any:
        from oauth_core import EntraClient

        return EntraClient(self.client_id, self.tenant, authority_host=self.emulator.url, **kwargs)

    def path(self, name: str) -> Path:
        """A fresh path under the lab's temp dir (not created)."""
        self._runs += 1
        return self.tmp / f"{self._runs:03d}-{name}"

    def home(self, name: str, *, signed_in: bool = False, own_tokens: bool = False) -> Path:
        """A private OAUTH_CORE_HOME (0700).

        With ``signed_in``, a copy of one after a password grant (its tokens shared by every copy);
        with ``own_tokens``, one after a grant of its own: the emulator revokes a refresh token once
        redeemed, so only a home with its own tokens may refresh.
        """
        home = self.path(name)
        if signed_in and not own_tokens:
            shutil.copytree(self._signed_in_master(), home)  # modes kept: 0700 folder, 0600 files
        else:
            home.mkdir(mode=0o700)
            if own_tokens:
                self._sign_in(home)
        return home

    def _sign_in(self, home: Path) -> None:
        username, password = self.user
        run = self.cli(["password", "-u", username, "--password-stdin"], home=home, stdin=password + "\n")
        if run.code != 0 or not (home / "tokens.json").is_file():
            raise RuntimeError(f"the password grant for a signed-in home failed: {run.brief()}")

    def _signed_in_master(self) -> Path:
        if self._master is None:
            master = self.path("signed-in")
            master.mkdir(mode=0o700)
            self._sign_in(master)
            self._master = master
        return self._master

    def cli(
        self,
        argv: Sequence[str],
        *,
        home: Path,
        stdin: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        drop: Sequence[str] = (),
        timeout: float = CLI_TIMEOUT,
    ) -> CliRun:
        """Run ``python -m oauth_core ARGV`` pointed at the emulator (``env`` and ``drop`` change that)."""
        log = self.path("guard.log")
        environment = dict(self._environ)
        environment.update(
            AZURE_AUTHORITY_HOST=self.emulator.url,
            AZURE_TENANT_ID=self.tenant,
            AZURE_CLIENT_ID=self.client_id,
            OAUTH_CORE_HOME=str(home),
            PYTHONPATH=os.pathsep.join([str(self.tmp / "guard"), str(REPO)]),
            PYTHONIOENCODING="utf-8",
            **{GUARD_LOG: str(log)},
        )
        environment.update(env or {})
        for name in drop:
            environment.pop(name, None)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "oauth_core", *argv],
                input=(stdin or "").encode("utf-8"),
                capture_output=True,
                env=environment,
                cwd=str(REPO),
                timeout=timeout,
                check=False,
            )
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:  # run() has killed it
            code, out, err = -9, expired.stdout or b"", (expired.stderr or b"") + b"\n[killed: timed out]"
        seconds = time.perf_counter() - started
        outward = tuple(log.read_text(encoding="utf-8").split("\n")[:-1]) if log.exists() else ()
        return CliRun(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), seconds, outward)
