"""The one transport both drivers send through, on real loopback sockets, sync and async alike.

Every test runs once per driver kind: the emulator, or a small server the test starts on
127.0.0.1, answers; nothing is sent anywhere else and no backoff is really slept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import socketserver
import threading
import time
from typing import Any, Iterator, List

import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import HttpRequest, ResponseFormatError, RetryPolicy, TransientError
from oauth_core.core.authority import Authority
from oauth_core.core.protocol import jwks_request
from oauth_core.drivers import aio, sync, transport
from oauth_core.drivers.proxies import LoopbackBypass
from oauth_core.drivers.retry import DeadlineReached
from oauth_core.drivers.transport import (
    Exchange,
    async_fetch,
    async_read_limited,
    async_send_with_retry,
    fetch,
    new_async_http_client,
    new_http_client,
    read_limited,
    send_with_retry,
)
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

KINDS = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


class Recorder:
    """A RetryPolicy ``sleep`` / ``async_sleep`` that records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(jitter=False, sleep=self.sleep, async_sleep=self.async_sleep)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def no_faults_left(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.clear_faults()


def _keys(emulator: Emulator, *, single_use: bool = False) -> HttpRequest:
    request = jwks_request(Authority.of(emulator.url, emulator.tenant_id))
    return dataclasses.replace(request, single_use=single_use)


def _send(asynchronous: bool, request: HttpRequest, policy: RetryPolicy) -> Exchange:
    """send_with_retry or its async twin, each over the client's own kind of httpx client."""
    if asynchronous:

        async def main() -> Exchange:
            async with new_async_http_client(5.0) as http:
                return await async_send_with_retry(http, request, policy)

        return asyncio.run(main())
    with new_http_client(5.0) as http:
        return send_with_retry(http, request, policy)


# -- one call: an Exchange with its attempts and waits ----------------------------------------


@KINDS
def test_a_first_answer_is_one_attempt_and_no_wait(emulator: Emulator, asynchronous: bool) -> None:
    recorder = Recorder()
    exchange = _send(asynchronous, _keys(emulator), recorder.policy())
    assert (exchange.response.status, exchange.attempts, exchange.waits) == (200, 1, ())
    assert json.loads(exchange.response.body)["keys"] and recorder.waits == []


@KINDS
def test_retries_are_counted_in_the_exchange(emulator: Emulator, asynchronous: bool) -> None:
    recorder = Recorder()
    emulator.inject("keys", Fault("status", status=500), times=1)
    emulator.inject("keys", Fault("drop_after"), times=1)  # a GET may be sent again after a lost answer
    before = emulator.count("keys")
    exchange = _send(asynchronous, _keys(emulator), recorder.policy())
    assert exchange.response.status == 200 and emulator.count("keys") - before == 3
    assert (exchange.attempts, exchange.waits) == (3, (0.5, 1.0)) and recorder.waits == [0.5, 1.0]


@KINDS
def test_retries_spent_end_in_a_transient_error(emulator: Emulator, asynchronous: bool) -> None:
    recorder = Recorder()
    emulator.inject("keys", Fault("status", status=502), times=4)
    with pytest.raises(TransientError) as caught:
        _send(asynchronous, _keys(emulator), recorder.policy())
    assert (caught.value.attempts, caught.value.waits, caught.value.status) == (4, (0.5, 1.0, 2.0), 502)
    assert "may have been used" not in str(caught.value)


@KINDS
@pytest.mark.parametrize("fault", [Fault("drop_after"), Fault("status", status=503)], ids=["lost", "503"])
def test_a_single_use_request_that_may_have_arrived_is_sent_once(
    emulator: Emulator, asynchronous: bool, fault: Fault
) -> None:
    recorder = Recorder()
    emulator.inject("keys", fault, times=2)
    before = emulator.count("keys")
    with pytest.raises(TransientError) as caught:
        _send(asynchronous, _keys(emulator, single_use=True), recorder.policy())
    assert emulator.count("keys") - before == 1 and recorder.waits == [] and caught.value.attempts == 1
    message = str(caught.value)
    assert "may have been used" in message and "sign in again" in message
    assert ("lost" in message) == (fault.kind == "drop_after")


# -- one attempt: the same body limit and deadline on both kinds ------------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class StallingServer:
    """Answers every request with ``head`` + ``body`` on 127.0.0.1, then holds the connection open.

    Whatever the client does next (stop reading, time out) it does without the server finishing.
    """

    def __init__(self, head: bytes, body: bytes) -> None:
        self.stop = threading.Event()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.serve(self.request, head, body)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def serve(self, sock: socket.socket, head: bytes, body: bytes) -> None:
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        try:
            sock.sendall(head + body)
            self.stop.wait(10)
        except OSError:
            return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> StallingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _read(asynchronous: bool, url: str, limit: int) -> bytes:
    """GET ``url`` and read its body through read_limited or its async twin."""
    if asynchronous:

        async def main() -> bytes:
            async with httpx.AsyncClient(timeout=5.0) as http, http.stream("GET", url) as response:
                return b"".join(await async_read_limited(response, limit))

        return asyncio.run(main())
    with httpx.Client(timeout=5.0) as http, http.stream("GET", url) as response:
        return b"".join(read_limited(response, limit))


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"x" * 4096 + b"\r\n"


@KINDS
def test_a_body_over_its_limit_is_refused_while_it_arrives(asynchronous: bool) -> None:
    # No length announced, and the server never finishes: only counting as it arrives can refuse it.
    with StallingServer(CHUNKED, b"") as server:
        started = time.monotonic()
        with pytest.raises(ResponseFormatError, match="larger than 1000 bytes"):
            _read(asynchronous, server.url, 1000)
    assert time.monotonic() - started < 2.0  # refused at once, not at the 5 s read timeout


@KINDS
def test_an_announced_length_over_the_limit_is_refused_before_reading(asynchronous: bool) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    with StallingServer(head, b"") as server:  # not one byte of the body is sent
        with pytest.raises(ResponseFormatError, match="larger than 4999 bytes"):
            _read(asynchronous, server.url, 4999)


@KINDS
def test_a_body_within_its_limit_is_read_whole(asynchronous: bool) -> None:
    body = b'{"keys": []}'
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    with StallingServer(head, body) as server:
        assert _read(asynchronous, server.url, len(body)) == body


@KINDS
def test_a_body_dripped_past_the_deadline_is_cut_there(asynchronous: bool) -> None:
    # Half the body at once, then silence: the call deadline, not the 5 s read timeout, ends the read.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    with StallingServer(head, b"{" * 50) as server:
        request = HttpRequest("GET", server.url)
        started = time.monotonic()
        with pytest.raises(DeadlineReached):
            if asynchronous:

                async def main() -> Any:
                    async with new_async_http_client(5.0) as http:
                        return await async_fetch(http, request, until=started + 0.5)

                asyncio.run(main())
            else:
                with new_http_client(5.0) as http:
                    fetch(http, request, until=started + 0.5)
    assert 0.4 <= time.monotonic() - started < 2.0


# -- the drivers' historic names are the transport's ------------------------------------------


def test_the_drivers_send_through_the_one_transport() -> None:
    assert sync.send_with_retry is transport.send_with_retry and sync.fetch is transport.fetch
    assert aio.send_with_retry is transport.async_send_with_retry and aio.send_once is transport.async_send_once
    assert sync.new_http_client is transport.new_http_client
    assert aio.new_async_http_client is transport.new_async_http_client
    assert sync.LoopbackBypass is aio.AsyncLoopbackBypass is LoopbackBypass
