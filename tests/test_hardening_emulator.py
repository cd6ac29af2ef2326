"""Issue 11, the emulator: idle, silent and half-sent connections hold no thread, cannot starve a
real request and are closed after the idle timeout; delayed requests hold no worker; keep-alive,
pipelining and 100-continue still work. Real loopback sockets, bounded counts and times."""

from __future__ import annotations

import json
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from typing import Iterator, List, Tuple

import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
SCOPE = "openid offline_access"
WORKERS = 4
IDLE = 0.6  # seconds: the emulators here close idle connections quickly
MANY = 400  # idle connections: far more than WORKERS, bounded


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), workers=WORKERS, idle_timeout=IDLE) as running:
        yield running


def _address(emu: Emulator) -> Tuple[str, int]:
    return "127.0.0.1", emu.port


def _token_form() -> dict[str, str]:
    return {"grant_type": "password", "client_id": PUBLIC, "username": ALICE[0], "password": ALICE[1], "scope": SCOPE}


def _token_body() -> bytes:
    return "&".join(f"{k}={v}" for k, v in _token_form().items()).replace("@", "%40").replace("!", "%21").encode()


def _token_request(emu: Emulator, extra_headers: str = "") -> bytes:
    body = _token_body()
    return (
        f"POST /{emu.tenant_id}/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n{extra_headers}\r\n"
    ).encode() + body


def _keys_request(emu: Emulator) -> bytes:
    return f"GET /{emu.tenant_id}/discovery/v2.0/keys HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n\r\n".encode()


class _Reader:
    """Responses off one socket, by their Content-Length (interim 1xx ones too, as they come)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "connection closed before a whole response"
        self.data += chunk

    def response(self) -> Tuple[bytes, bytes]:
        while b"\r\n\r\n" not in self.data:
            self._fill()
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 1"):
            return head, b""
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        while len(self.data) < length:
            self._fill()
        body, self.data = self.data[:length], self.data[length:]
        return head, body


def _password_grant(emu: Emulator, verify: object = True) -> Tuple[int, float]:
    started = time.monotonic()
    with httpx.Client(timeout=5, verify=verify) as http:  # type: ignore[arg-type]
        status = http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=_token_form()).status_code
    return status, time.monotonic() - started


def _wait_closed(socks: List[socket.socket], within: float) -> int:
    """How many of ``socks`` the server closed (EOF or reset) within ``within`` seconds."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed, deadline = 0, time.monotonic() + within
    try:
        while closed < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    ended = sock.recv(4096) == b""
                except ConnectionError:
                    ended = True
                except BlockingIOError:
                    continue
                if ended:
                    selector.unregister(sock)
                    closed += 1
    finally:
        selector.close()
    return closed


def _open_idle(stack: ExitStack, address: Tuple[str, int], count: int) -> List[socket.socket]:
    return [stack.enter_context(socket.create_connection(address, timeout=5)) for _ in range(count)]


def test_idle_connections_hold_no_thread_and_do_not_starve_a_token_request(emu: Emulator) -> None:
    threads_before = threading.active_count()
    with ExitStack() as stack:
        idle = _open_idle(stack, _address(emu), MANY)
        half_sent = _open_idle(stack, _address(emu), 50)
        for index, sock in enumerate(half_sent):  # a head without all its body, or a head cut short
            sock.sendall(_token_request(emu)[:-5] if index % 2 else b"POST /x HTTP/1.1\r\nHost")
        time.sleep(0.2)  # all accepted by now
        assert threading.active_count() <= threads_before + 2, "a thread per connection"
        status, elapsed = _password_grant(emu)
        assert status == 200 and elapsed < 2.0
        assert _wait_closed(idle + half_sent, within=IDLE + 3) == MANY + 50


def test_an_idle_connection_is_closed_after_the_idle_timeout_not_before(emu: Emulator) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        sock.sendall(_keys_request(emu))
        assert _Reader(sock).response()[0].startswith(b"HTTP/1.1 200")
        began = time.monotonic()
        assert _wait_closed([sock], within=IDLE + 3) == 1
        waited = time.monotonic() - began
    assert IDLE * 0.8 <= waited <= IDLE + 1.0


def test_a_request_trickled_byte_by_byte_is_cut_off(emu: Emulator) -> None:
    request = _token_request(emu)  # ~300 bytes, one every 50 ms: 15 s, were every byte to extend the deadline
    cut_off = None
    with socket.create_connection(_address(emu), timeout=5) as sock:
        began = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # broken pipe or reset: the emulator closed it
                cut_off = time.monotonic() - began
                break
            if time.monotonic() - began > IDLE + 2.5:
                break
            time.sleep(0.05)
    assert cut_off is not None and cut_off < IDLE + 2.5


def test_an_active_keep_alive_client_keeps_its_connection(emu: Emulator) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        reader = _Reader(sock)
        for _ in range(6):  # pauses shorter than the idle timeout, 1.5 IDLE in all
            sock.sendall(_keys_request(emu))
            head, body = reader.response()
            assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["keys"]
            time.sleep(IDLE / 4)


def test_many_sequential_requests_on_one_connection_stay_fast(emu: Emulator) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        reader, began = _Reader(sock), time.monotonic()
        for _ in range(200):
            sock.sendall(_keys_request(emu))
            assert reader.response()[0].startswith(b"HTTP/1.1 200")
        assert time.monotonic() - began < 10  # no per-request wait (a 50 ms one would take 10 s)


def test_silent_tls_clients_do_not_stall_and_are_closed() -> None:
    with Emulator(EmulatorConfig.default(), tls=True, workers=WORKERS, idle_timeout=IDLE) as emu, ExitStack() as stack:
        assert emu.ca_bundle
        silent = _open_idle(stack, _address(emu), 200)  # TCP only: no ClientHello
        stalled = _open_idle(stack, _address(emu), 20)
        for sock in stalled:
            sock.sendall(b"\x16\x03\x01\x00\xc8\x01")  # the start of a ClientHello, then nothing
        status, elapsed = _password_grant(emu, verify=ssl.create_default_context(cafile=emu.ca_bundle))
        assert status == 200 and elapsed < 3.0
        assert _wait_closed(silent + stalled, within=IDLE + 3) == 220


def test_at_max_connections_the_oldest_idle_one_makes_room() -> None:
    with Emulator(EmulatorConfig.default(), workers=2, idle_timeout=30, max_connections=40) as emu, ExitStack() as st:
        idle = _open_idle(st, _address(emu), 60)
        time.sleep(0.2)
        status, elapsed = _password_grant(emu)
        assert status == 200 and elapsed < 2.0
        assert _wait_closed(idle[:20], within=2) == 20  # the oldest went first
        assert _wait_closed(idle[-10:], within=0.3) == 0  # the newest are still open


def test_delayed_requests_hold_no_worker() -> None:
    with Emulator(EmulatorConfig.default(), workers=2, idle_timeout=5) as emu:
        emu.inject("token", Fault("delay", seconds=0.5), times=12)
        results: List[int] = []
        lock = threading.Lock()

        def one() -> None:
            status, _ = _password_grant(emu)
            with lock:
                results.append(status)

        began = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        elapsed = time.monotonic() - began
    assert results == [200] * 12
    assert elapsed < 2.5  # 12 delays of 0.5 s on 2 workers, one after another, would take 3 s


def test_pipelined_requests_are_answered_in_order(emu: Emulator) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        sock.sendall(_keys_request(emu) + _token_request(emu) + _keys_request(emu))
        reader = _Reader(sock)
        first, second, third = (reader.response() for _ in range(3))
    assert json.loads(first[1])["keys"] and json.loads(third[1])["keys"]
    assert second[0].startswith(b"HTTP/1.1 200") and "access_token" in json.loads(second[1])


def test_expect_100_continue_gets_its_interim_answer(emu: Emulator) -> None:
    request = _token_request(emu, "Expect: 100-continue\r\n")
    head, body = request.split(b"\r\n\r\n", 1)
    with socket.create_connection(_address(emu), timeout=5) as sock:
        reader = _Reader(sock)
        sock.sendall(head + b"\r\n\r\n")
        interim, _ = reader.response()
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        final, answer = reader.response()
    assert final.startswith(b"HTTP/1.1 200") and "access_token" in json.loads(answer)


def test_a_half_closed_client_still_gets_its_answer(emu: Emulator) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        sock.sendall(_keys_request(emu))
        sock.shutdown(socket.SHUT_WR)
        head, body = _Reader(sock).response()
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["keys"]
        assert sock.recv(1) == b""  # then closed


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n" + b"X-Many: header\r\n" * 101 + b"\r\n", b"431"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"400"),
    ],
)
def test_requests_http_server_refuses_still_get_their_answer(
    emu: Emulator, request_bytes: bytes, status: bytes
) -> None:
    with socket.create_connection(_address(emu), timeout=5) as sock:
        sock.sendall(request_bytes)
        head, _ = _Reader(sock).response()
    assert head.startswith(b"HTTP/1.1 " + status)


def test_stop_closes_idle_connections() -> None:
    emu = Emulator(EmulatorConfig.default(), workers=2, idle_timeout=30).start()
    with ExitStack() as stack:
        idle = _open_idle(stack, ("127.0.0.1", emu.port), 30)
        time.sleep(0.2)
        emu.stop()
        assert _wait_closed(idle, within=2) == 30


@pytest.mark.parametrize("bad", [{"workers": 0}, {"idle_timeout": 0}, {"max_connections": 0}])
def test_pool_sizes_must_be_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Emulator(EmulatorConfig.default(), **bad)  # type: ignore[arg-type]


_FEW_DESCRIPTORS = """
import resource, sys
from oauth_core.emulator import Emulator, EmulatorConfig
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
with Emulator(EmulatorConfig.default(), workers=2, idle_timeout=30) as emu:
    print(emu.port, flush=True)
    sys.stdin.read()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
def test_out_of_descriptors_the_oldest_idle_connection_makes_room() -> None:
    # An emulator allowed ~120 descriptors, offered 300 idle connections (its max_connections is 1000).
    with subprocess.Popen(
        [sys.executable, "-c", _FEW_DESCRIPTORS, "120"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            with ExitStack() as stack:
                idle = _open_idle(stack, ("127.0.0.1", port), 300)
                time.sleep(0.5)
                started = time.monotonic()
                with httpx.Client(timeout=5) as http:
                    keys = http.get(f"http://127.0.0.1:{port}/{EmulatorConfig.default().tenant_id}/discovery/v2.0/keys")
                assert keys.status_code == 200 and time.monotonic() - started < 3.0
                assert _wait_closed(idle[:100], within=2) == 100  # the oldest made room
            assert proc.poll() is None, "the emulator died"
        finally:
            proc.kill()
