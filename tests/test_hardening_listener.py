"""Issue 11, the login listener: a dropped connection loses nothing, no traceback reaches the
terminal, and a ``localhost`` redirect holds its port on both 127.0.0.1 and ::1. Real loopback sockets."""

from __future__ import annotations

import errno
import socket
import struct
import threading
import time
from typing import Iterator, List, Tuple

import httpx
import pytest

from oauth_core.core.errors import ConfigError, InteractionTimeout
from oauth_core.drivers import loopback
from oauth_core.drivers.loopback import LoopbackListener

STATE = "expected-state-0123456789"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1")


class _Waiter:
    """``listener.wait`` in a thread, with its result or exception."""

    def __init__(self, listener: LoopbackListener, timeout: float) -> None:
        self.result: List[object] = []
        self.thread = threading.Thread(target=self._run, args=(listener, timeout), daemon=True)
        self.thread.start()
        time.sleep(0.05)

    def _run(self, listener: LoopbackListener, timeout: float) -> None:
        try:
            self.result.append(listener.wait(timeout))
        except Exception as exc:  # reported to the test
            self.result.append(exc)

    def join(self, seconds: float = 5.0) -> List[object]:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "wait() did not end"
        return self.result


def _request(sock: socket.socket, query: str) -> None:
    sock.sendall(f"GET /?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    sock.close()


def _free_port_on_both() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET6) as six:
            six.bind(("::1", 0))
            port = int(six.getsockname()[1])
            with socket.socket() as four:
                try:
                    four.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise AssertionError("no port free on both loopbacks")


@pytest.fixture
def ipv6_holder() -> Iterator[Tuple[socket.socket, int]]:
    """Another program listening on [::1]:PORT, with 127.0.0.1:PORT free."""
    for _ in range(50):
        holder = socket.socket(socket.AF_INET6)
        holder.bind(("::1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        with socket.socket() as four:
            try:
                four.bind(("127.0.0.1", port))
            except OSError:
                holder.close()
                continue
        try:
            yield holder, port
        finally:
            holder.close()
        return
    raise AssertionError("no port free on 127.0.0.1 beside a ::1 one")


def test_callback_whose_browser_leaves_early_still_ends_the_wait(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A page far larger than the socket buffers: writing it to a browser that closed must fail.
    monkeypatch.setattr(loopback, "_page", lambda title, text: b"x" * 16_000_000)
    listener = LoopbackListener("http://localhost", STATE)
    waiter = _Waiter(listener, timeout=10)
    with socket.create_connection(("127.0.0.1", listener.port)) as browser:
        _request(browser, f"code=the-code&state={STATE}")
        time.sleep(0.2)  # the listener has read the request; leave before the page
    started = time.monotonic()
    assert waiter.join() == [f"code=the-code&state={STATE}"]
    assert time.monotonic() - started < 4
    assert "Traceback" not in capfd.readouterr().err


def test_reset_connections_print_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    listener = LoopbackListener("http://localhost", STATE)
    waiter = _Waiter(listener, timeout=10)
    for partial in (b"", b"GET /?code=c&st", b"GET / HTTP/1.1\r\nHost: x\r\n"):
        sock = socket.create_connection(("127.0.0.1", listener.port))
        sock.sendall(partial)
        time.sleep(0.1)  # accepted and reading
        _reset(sock)
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", listener.port)) as browser:
        _request(browser, f"code=c&state={STATE}")
        assert _read_all(browser).startswith(b"HTTP/1.0 200")
    assert waiter.join() == [f"code=c&state={STATE}"]
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Exception" not in captured.err


def test_the_same_callback_again_gets_the_same_page_not_a_conflict() -> None:
    listener = LoopbackListener("http://localhost", STATE)
    waiter = _Waiter(listener, timeout=10)
    # Pre-connections (as a browser keeps) are accepted while serving and outlive the wait.
    retry = socket.create_connection(("127.0.0.1", listener.port))
    other = socket.create_connection(("127.0.0.1", listener.port))
    time.sleep(0.2)
    try:
        first = httpx.get(f"http://127.0.0.1:{listener.port}/?code=c&state={STATE}", timeout=5)
        assert first.status_code == 200 and "Signed in" in first.text
        assert waiter.join() == [f"code=c&state={STATE}"]
        _request(retry, f"code=c&state={STATE}")
        again = _read_all(retry)
        assert again.startswith(b"HTTP/1.0 200") and b"Signed in" in again
        _request(other, f"code=another&state={STATE}")
        assert _read_all(other).startswith(b"HTTP/1.0 409")
    finally:
        retry.close()
        other.close()


@needs_ipv6
def test_localhost_holds_the_port_on_both_loopbacks_and_serves_both() -> None:
    listener = LoopbackListener("http://localhost/cb", STATE)
    port = listener.port
    with socket.socket(socket.AF_INET6) as squatter, pytest.raises(OSError) as taken:
        squatter.bind(("::1", port))
    assert taken.value.errno == errno.EADDRINUSE
    assert sorted(listener.addresses) == sorted([("127.0.0.1", port), ("::1", port)])
    waiter = _Waiter(listener, timeout=10)
    assert httpx.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=5).status_code == 404
    answer = httpx.get(f"http://[::1]:{port}/cb?code=six&state={STATE}", timeout=5)
    assert answer.status_code == 200
    assert waiter.join() == [f"code=six&state={STATE}"]
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
            probe.bind((host, port))  # both are released after the wait


@needs_ipv6
def test_fixed_port_taken_on_ipv6_loopback_is_refused(ipv6_holder: Tuple[socket.socket, int]) -> None:
    _, port = ipv6_holder
    with pytest.raises(ConfigError, match=rf"\[::1\]:{port} .*another program holds"):
        LoopbackListener(f"http://localhost:{port}", STATE)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the IPv4 side was released again


@needs_ipv6
def test_ephemeral_port_skips_one_taken_on_ipv6_loopback(
    monkeypatch: pytest.MonkeyPatch, ipv6_holder: Tuple[socket.socket, int]
) -> None:
    _, taken = ipv6_holder
    real = loopback._Server
    forced = iter([taken])  # the first "ephemeral" IPv4 port is one whose ::1 side is held

    class FirstPickCollides(real):  # type: ignore[misc, valid-type]
        def __init__(self, address: Tuple[str, int], inbox: object) -> None:
            if address[1] == 0:
                address = (address[0], next(forced, 0))
            super().__init__(address, inbox)

    monkeypatch.setattr(loopback, "_Server", FirstPickCollides)
    with LoopbackListener("http://localhost", STATE) as listener:
        assert listener.port != taken
        assert {host for host, _ in listener.addresses} == {"127.0.0.1", "::1"}
    assert next(forced, None) is None, "the colliding port was tried first"


def test_no_ipv6_loopback_at_all_falls_back_to_ipv4(monkeypatch: pytest.MonkeyPatch) -> None:
    real = loopback._Server

    class NoIpv6(real):  # type: ignore[misc, valid-type]
        def __init__(self, address: Tuple[str, int], inbox: object) -> None:
            if ":" in address[0]:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            super().__init__(address, inbox)

    monkeypatch.setattr(loopback, "_Server", NoIpv6)
    listener = LoopbackListener("http://localhost", STATE)
    assert listener.addresses == [("127.0.0.1", listener.port)]
    waiter = _Waiter(listener, timeout=10)
    httpx.get(f"http://127.0.0.1:{listener.port}/?code=c&state={STATE}", timeout=5)
    assert waiter.join() == [f"code=c&state={STATE}"]


@needs_ipv6
def test_literal_redirect_hosts_bind_just_that_address() -> None:
    port = _free_port_on_both()
    with LoopbackListener(f"http://127.0.0.1:{port}", STATE) as four:
        assert four.addresses == [("127.0.0.1", port)]
        assert four.redirect_uri == f"http://127.0.0.1:{port}"
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", port))
    six = LoopbackListener("http://[::1]", STATE)  # the default listen_address is IPv4: the literal wins
    assert six.addresses == [("::1", six.port)]
    assert six.redirect_uri == f"http://[::1]:{six.port}"
    waiter = _Waiter(six, timeout=10)
    httpx.get(f"http://[::1]:{six.port}/?code=c&state={STATE}", timeout=5)
    assert waiter.join() == [f"code=c&state={STATE}"]


@needs_ipv6
def test_ipv6_listen_address_for_localhost_also_holds_ipv4() -> None:
    with LoopbackListener("http://localhost", STATE, listen_address="::1") as listener:
        assert listener.addresses == [("::1", listener.port), ("127.0.0.1", listener.port)]
        assert listener.redirect_uri == f"http://localhost:{listener.port}"


@pytest.mark.parametrize("how", ["cancel", "done event"])
def test_a_cancelled_wait_ends_at_once_as_a_timeout(how: str) -> None:
    listener = LoopbackListener("http://localhost", STATE)
    waiter = _Waiter(listener, timeout=30)
    started = time.monotonic()
    if how == "cancel":
        listener.cancel()
    else:
        listener._server.done.set()  # what the async client does when its task is cancelled
    (outcome,) = waiter.join()
    assert isinstance(outcome, InteractionTimeout) and "cancelled" in str(outcome)
    assert time.monotonic() - started < 2
