"""Transport hardening on real loopback sockets: no proxy for loopback, one deadline per call, codes sent once.

Every server here is started by the test on 127.0.0.1 (the emulator, a recording proxy, a
server that drips its answer); nothing is sent anywhere else.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from typing import Any, Iterator, List, Tuple

import httpcore
import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import AsyncEntraClient, EntraClient, RetryPolicy, TransientError
from oauth_core.cli.demo import scripted_sign_in
from oauth_core.core.authority import Authority
from oauth_core.drivers.aio import AsyncLoopbackBypass, new_async_http_client
from oauth_core.drivers.deadline import CALL_DEADLINE, call_budget, time_left
from oauth_core.drivers.proxies import env_proxy_urls
from oauth_core.drivers.sync import LoopbackBypass, fetch_jwks, new_http_client
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class Recorder:
    """A RetryPolicy ``sleep`` that records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """A threaded TCP server on 127.0.0.1:0 whose connections ``handle(sock)`` serves."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.received: List[bytes] = []
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.handle(self.request)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def read_request(self, sock: socket.socket) -> bytes:
        """Read one request (head and Content-Length body) and record it."""
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                while len(body) < int(value):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    body += chunk
        if data:
            self.received.append(data)
        return data

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class RecordingProxy(LoopbackServer):
    """Records whatever reaches it and answers 502, as a proxy that cannot reach the target would."""

    def handle(self, sock: socket.socket) -> None:
        if self.read_request(sock):
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class SilentServer(LoopbackServer):
    """Reads each request and never answers (the client's read times out)."""

    def handle(self, sock: socket.socket) -> None:
        if self.read_request(sock):
            self.stop.wait(10)


class DripServer(LoopbackServer):
    """Answers each request a byte at a time: in the body (``body``) or in the headers (``headers``).

    It gives up after ``give_up`` seconds, so a client without a deadline fails slowly instead of hanging.
    """

    def __init__(self, mode: str, interval: float, give_up: float = 8.0) -> None:
        super().__init__()
        self.mode = mode
        self.interval = interval
        self.give_up = give_up

    def handle(self, sock: socket.socket) -> None:
        if not self.read_request(sock):
            return
        try:
            if self.mode == "body":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            ends = time.monotonic() + self.give_up
            while not self.stop.wait(self.interval) and time.monotonic() < ends:
                sock.sendall(b"a")
        except OSError:
            return  # the client gave up: what the test wants


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def no_faults_left(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.clear_faults()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A recording proxy on loopback, named by every proxy variable httpx reads."""
    with RecordingProxy() as recording:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, recording.url)
        yield recording


def _client(emulator: Emulator, **kwargs: Any) -> EntraClient:
    return EntraClient(emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, **kwargs)


def _async_client(emulator: Emulator, **kwargs: Any) -> AsyncEntraClient:
    client_id = emulator.config.clients[0].client_id
    return AsyncEntraClient(client_id, emulator.tenant_id, authority_host=emulator.url, **kwargs)


def _user(emulator: Emulator) -> Tuple[str, str]:
    user = emulator.config.users[0]
    return user.username, user.password


# -- 1. environment proxies never see loopback traffic ---------------------------------------------


def test_the_recording_proxy_records_a_plain_httpx_client(emulator: Emulator, proxy: RecordingProxy) -> None:
    # The control: an httpx.Client that trusts the environment really does send loopback traffic there.
    with httpx.Client() as plain:
        answer = plain.get(f"{emulator.url}/{emulator.tenant_id}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 502
    assert len(proxy.received) == 1 and emulator.url.encode() in proxy.received[0]


def test_loopback_password_grant_skips_the_env_proxy(emulator: Emulator, proxy: RecordingProxy) -> None:
    with _client(emulator) as client:
        tokens = client.acquire_by_password(*_user(emulator))
    assert tokens.access_token and tokens.refresh_token
    assert proxy.received == []


def test_async_loopback_password_grant_skips_the_env_proxy(emulator: Emulator, proxy: RecordingProxy) -> None:
    async def main() -> str:
        async with _async_client(emulator) as client:
            return (await client.acquire_by_password(*_user(emulator))).access_token

    assert asyncio.run(main())
    assert proxy.received == []


def test_https_loopback_grant_skips_the_env_proxy(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # TLS on loopback: the handshake runs through the deadline wrapper's start_tls, and no CONNECT tunnel.
    with Emulator(EmulatorConfig.default(), port=0, tls=True, ca_dir=str(tmp_path)) as secure:
        assert secure.ca_bundle and secure.url.startswith("https://127.0.0.1:")
        monkeypatch.setenv("SSL_CERT_FILE", secure.ca_bundle)
        with _client(secure, timeout=5.0) as client:
            assert client.acquire_by_password(*_user(secure)).access_token

        async def main() -> str:
            async with _async_client(secure, timeout=5.0) as client:
                return (await client.acquire_by_password(*_user(secure))).access_token

        assert asyncio.run(main())
    assert proxy.received == []


def test_fetch_jwks_from_loopback_skips_the_env_proxy(emulator: Emulator, proxy: RecordingProxy) -> None:
    keys = fetch_jwks(Authority.of(emulator.url, emulator.tenant_id), timeout=5)
    assert keys["keys"]
    assert proxy.received == []


@pytest.mark.parametrize("host", ["127.0.0.1:8400", "127.9.8.7", "localhost:1", "[::1]:443"])
def test_every_loopback_host_goes_direct(proxy: RecordingProxy, host: str) -> None:
    url = httpx.URL(f"http://{host}/tenant/oauth2/v2.0/token")
    with new_http_client(5) as http:
        router = http._transport_for_url(url)
        assert isinstance(router, LoopbackBypass) and router.route(url) is router.direct


def test_entra_hosts_still_use_the_env_proxy(proxy: RecordingProxy) -> None:
    url = httpx.URL("https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
    with new_http_client(5) as http:
        router = http._transport_for_url(url)
        assert isinstance(router, LoopbackBypass)
        chosen = router.route(url)
        assert chosen is router.proxy and chosen is not router.direct
        assert isinstance(chosen._pool, httpcore.HTTPProxy)  # type: ignore[attr-defined]


def test_async_entra_hosts_still_use_the_env_proxy(proxy: RecordingProxy) -> None:
    url = httpx.URL("https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
    loopback = httpx.URL("http://127.0.0.1:9/x")

    async def main() -> None:
        async with new_async_http_client(5) as http:
            router = http._transport_for_url(url)
            assert isinstance(router, AsyncLoopbackBypass)
            assert router.route(url) is router.proxy
            assert isinstance(router.proxy._pool, httpcore.AsyncHTTPProxy)  # type: ignore[attr-defined]
            assert router.route(loopback) is router.direct

    asyncio.run(main())


def test_non_loopback_traffic_really_goes_to_the_env_proxy(proxy: RecordingProxy, monkeypatch: Any) -> None:
    # Only the loopback proxy may be dialled: a routing mistake fails here instead of leaving the machine.
    dial = socket.create_connection

    def loopback_only(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        assert address[0] == "127.0.0.1", f"refusing to dial {address!r}"
        return dial(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)
    with new_http_client(5) as http:
        assert http.get("http://entra-host.invalid/organizations/v2.0/keys").status_code == 502
    assert len(proxy.received) == 1
    assert proxy.received[0].startswith(b"GET http://entra-host.invalid/organizations/v2.0/keys HTTP/1.1")


def test_no_proxy_keeps_its_meaning(proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "entra-host.invalid")
    monkeypatch.setenv("no_proxy", "entra-host.invalid")
    with new_http_client(5) as http:
        assert not isinstance(http._transport_for_url(httpx.URL("http://entra-host.invalid/")), LoopbackBypass)
        assert isinstance(http._transport_for_url(httpx.URL("http://other.invalid/")), LoopbackBypass)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    assert env_proxy_urls() == {}


# -- 2. one deadline per call ----------------------------------------------------------------------


def test_call_budget_is_timeout_times_attempts_plus_backoff_capped_by_the_deadline() -> None:
    assert call_budget(RetryPolicy(), 3.0) == 3.0 * 4 + 0.5 + 1.0 + 2.0
    assert call_budget(RetryPolicy(max_attempts=3, jitter=False), 0.3) == 0.3 * 3 + 0.5 + 1.0
    assert call_budget(RetryPolicy(max_attempts=1), 3.0) == 3.0
    assert call_budget(RetryPolicy(), 30.0) == 60.0  # capped at RetryPolicy.deadline
    assert call_budget(RetryPolicy(deadline=1.0), 3.0) == 3.0  # never below one timeout
    assert call_budget(RetryPolicy(), None) == 60.0


def test_time_left_cuts_and_then_refuses() -> None:
    assert time_left(5.0, httpcore.ReadTimeout) == 5.0  # no call deadline: unchanged
    token = CALL_DEADLINE.set(time.monotonic() + 1.0)
    try:
        left = time_left(5.0, httpcore.ReadTimeout)
        assert left is not None and 0.5 < left <= 1.0
        assert time_left(0.25, httpcore.ReadTimeout) == 0.25
    finally:
        CALL_DEADLINE.reset(token)
    token = CALL_DEADLINE.set(time.monotonic() - 0.01)
    try:
        with pytest.raises(httpcore.ReadTimeout):
            time_left(5.0, httpcore.ReadTimeout)
    finally:
        CALL_DEADLINE.reset(token)


def _sync_drip(mode: str, interval: float, timeout: float, attempts: int) -> Tuple[TransientError, float, int]:
    recorder = Recorder()
    with DripServer(mode, interval, give_up=timeout * attempts + 3) as server:
        policy = RetryPolicy(max_attempts=attempts, sleep=recorder.sleep)
        with EntraClient(CLIENT_ID, authority_host=server.url, timeout=timeout, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises(TransientError) as caught:
                client.acquire_by_password("someone@example.test", "pw")
            elapsed = time.monotonic() - started
        return caught.value, elapsed, len(server.received)


def _async_drip(mode: str, interval: float, timeout: float, attempts: int) -> Tuple[TransientError, float, int]:
    recorder = Recorder()

    async def main() -> Tuple[TransientError, float]:
        policy = RetryPolicy(max_attempts=attempts, sleep=recorder.sleep, async_sleep=recorder.async_sleep)
        async with AsyncEntraClient(CLIENT_ID, authority_host=server.url, timeout=timeout, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises(TransientError) as caught:
                await client.acquire_by_password("someone@example.test", "pw")
            return caught.value, time.monotonic() - started

    with DripServer(mode, interval, give_up=timeout * attempts + 3) as server:
        error, elapsed = asyncio.run(main())
        return error, elapsed, len(server.received)


def test_a_body_dripped_a_byte_a_second_is_cut_at_the_deadline() -> None:
    # The red-team case: a byte a second with timeout=3 (3 attempts: 9 s + 1.5 s of backoff = 10.5 s).
    error, elapsed, requests = _sync_drip("body", interval=1.0, timeout=3.0, attempts=3)
    assert "deadline" in str(error) and "10.5s" in str(error)
    assert 10.4 <= elapsed < 13.5
    assert requests == 1 and error.attempts == 1  # the deadline is final, not retried


def test_headers_dripped_are_cut_at_the_deadline() -> None:
    error, elapsed, requests = _sync_drip("headers", interval=0.25, timeout=1.5, attempts=2)
    assert "deadline" in str(error)
    assert 3.4 <= elapsed < 5.5 and requests == 1


def test_async_body_dripped_is_cut_at_the_deadline() -> None:
    error, elapsed, requests = _async_drip("body", interval=0.5, timeout=1.5, attempts=2)
    assert "deadline" in str(error)
    assert 3.4 <= elapsed < 5.5 and requests == 1


def test_async_headers_dripped_are_cut_at_the_deadline() -> None:
    error, elapsed, requests = _async_drip("headers", interval=0.25, timeout=1.5, attempts=2)
    assert "deadline" in str(error)
    assert 3.4 <= elapsed < 5.5 and requests == 1


def test_a_code_redemption_cut_by_the_deadline_says_to_sign_in_again() -> None:
    with DripServer("headers", 0.2) as server:
        policy = RetryPolicy(max_attempts=2, sleep=Recorder().sleep)
        with EntraClient(CLIENT_ID, authority_host=server.url, timeout=1.0, retry=policy) as client:
            pending = client.authorization_request()
            with pytest.raises(TransientError) as caught:
                client.exchange_code(pending, code="0.a-code")
        assert len(server.received) == 1
    assert "deadline" in str(caught.value) and "sign in again" in str(caught.value)


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, timeout=1.0, retry=RetryPolicy(max_attempts=3, sleep=recorder.sleep)) as client:
        before = emulator.count("token")
        emulator.inject("token", Fault("status", status=503, retry_after=5), times=1)
        with pytest.raises(TransientError) as caught:
            client.acquire_by_password(*_user(emulator))
        assert caught.value.status == 503 and caught.value.retry_after == 5
        assert emulator.count("token") - before == 1 and recorder.waits == []
    # A new client and cache: the first one remembers the 5 s window and would refuse unsent.
    with _client(emulator, timeout=1.0, retry=RetryPolicy(max_attempts=3, sleep=recorder.sleep)) as client:
        emulator.inject("token", Fault("status", status=503, retry_after=1), times=1)
        assert client.acquire_by_password(*_user(emulator)).access_token  # within the budget: waited out
    assert recorder.waits == [1.0]


# -- 3. an authorization code is sent again only if it never left ----------------------------------


def _signed_in(client: EntraClient, emulator: Emulator) -> Tuple[Any, str]:
    pending = client.authorization_request()
    return pending, scripted_sign_in(pending.url, *_user(emulator))


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=502),
        Fault("status", status=504),
        Fault("status", status=503),
        Fault("status", status=500),
        Fault("status", status=408),
        Fault("status", status=429, retry_after=1),
        Fault("html", status=502),
        Fault("drop_after"),
        Fault("truncate"),
    ],
    ids=["502", "504", "503", "500", "408", "429", "html-502", "drop-after", "truncate"],
)
def test_a_code_answered_by_a_transient_failure_is_sent_once(emulator: Emulator, fault: Fault) -> None:
    recorder = Recorder()
    with _client(emulator, timeout=5.0, retry=RetryPolicy(sleep=recorder.sleep)) as client:
        pending, location = _signed_in(client, emulator)
        before = emulator.count("token")
        emulator.inject("token", fault, times=3)
        with pytest.raises(TransientError) as caught:
            client.exchange_code(pending, location)
    assert emulator.count("token") - before == 1
    assert caught.value.attempts == 1 and recorder.waits == []
    message = str(caught.value)
    assert "may have been used" in message and "sign in again" in message
    if fault.kind == "status":
        assert caught.value.status == fault.status and f"HTTP {fault.status}" in message


def test_a_code_whose_answer_timed_out_is_sent_once() -> None:
    recorder = Recorder()
    with SilentServer() as server:
        policy = RetryPolicy(sleep=recorder.sleep)
        with EntraClient(CLIENT_ID, authority_host=server.url, timeout=0.5, retry=policy) as client:
            with pytest.raises(TransientError, match="ReadTimeout") as caught:
                client.exchange_code(client.authorization_request(), code="0.a-code")
        time.sleep(0.2)  # a resend, had there been one, would have arrived by now
        assert len(server.received) == 1
    assert recorder.waits == [] and caught.value.attempts == 1
    assert "may have been used" in str(caught.value)


def test_async_code_answered_502_is_sent_once(emulator: Emulator) -> None:
    recorder = Recorder()
    policy = RetryPolicy(sleep=recorder.sleep, async_sleep=recorder.async_sleep)
    with _client(emulator) as sync_client:
        pending, location = _signed_in(sync_client, emulator)

    async def main() -> None:
        async with _async_client(emulator, retry=policy) as client:
            await client.exchange_code(pending, location)

    before = emulator.count("token")
    emulator.inject("token", Fault("status", status=502), times=3)
    with pytest.raises(TransientError, match="may have been used") as caught:
        asyncio.run(main())
    assert emulator.count("token") - before == 1 and caught.value.status == 502 and recorder.waits == []


def test_a_code_is_sent_again_when_the_connection_was_refused(emulator: Emulator) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: every connect is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    policy = RetryPolicy(max_attempts=3, sleep=recorder.sleep, jitter=False)
    with EntraClient(CLIENT_ID, authority_host=f"http://127.0.0.1:{port}", retry=policy, timeout=2.0) as client:
        with pytest.raises(TransientError) as caught:
            client.exchange_code(client.authorization_request(), code="0.a-code")
    assert caught.value.attempts == 3 and len(recorder.waits) == 2
    assert "ConnectError" in str(caught.value) and "may have been used" not in str(caught.value)


def test_refresh_and_password_grants_keep_retrying_5xx(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, retry=RetryPolicy(sleep=recorder.sleep, jitter=False)) as client:
        before = emulator.count("token")
        emulator.inject("token", Fault("status", status=502), times=1)
        refresh_token = client.acquire_by_password(*_user(emulator)).refresh_token
        assert refresh_token
        emulator.inject("token", Fault("status", status=504), times=1)
        assert client.refresh(refresh_token).access_token
    assert emulator.count("token") - before == 4 and recorder.waits == [0.5, 0.5]
