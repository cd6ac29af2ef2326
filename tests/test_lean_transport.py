"""The lean transports on real loopback sockets, sync and async: keep-alive, framing, errors, limits.

A small scripted server on 127.0.0.1 answers each request with the next bytes of its script and
counts the connections it accepted; nothing is sent anywhere else.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

import httpx
import pytest

from oauth_core import ConfigError, HttpRequest, ResponseFormatError, RetryPolicy, TransientError, TransportError
from oauth_core.drivers.httpclients import new_async_http_client, new_http_client, transport_choice
from oauth_core.drivers.lean import LeanTransport
from oauth_core.drivers.lean_async import AsyncLeanTransport
from oauth_core.drivers.transport import async_fetch, async_send_with_retry, fetch, send_with_retry

KINDS = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
JSON = b'{"ok": true}'
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n" + JSON


class Close(bytes):
    """An answer after which the server closes the connection."""


class ScriptedServer:
    """Answers request n with ``answers[n]`` (the last one repeats); counts accepted connections."""

    def __init__(self, answers: List[Any]) -> None:
        self.answers = answers
        self.requests: List[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/t/oauth2/v2.0/token"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket, buffer: bytes) -> Optional[bytes]:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return None
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    request = self._read_request(conn, b"")
                except OSError:
                    return
                if request is None:
                    return
                index = len(self.requests)
                self.requests.append(request)
                answer = self.answers[min(index, len(self.answers) - 1)]
                if callable(answer):
                    answer = answer(request)
                if answer is None:
                    return  # close without answering
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                if isinstance(answer, Close):
                    return

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[List[Any]], ScriptedServer]]:
    servers: List[ScriptedServer] = []

    def start(answers: List[Any]) -> ScriptedServer:
        servers.append(ScriptedServer(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _get(asynchronous: bool, urls: List[str], **options: Any) -> List[httpx.Response]:
    """GET each URL in turn through one lean client of the kind asked; each response read and closed."""
    if asynchronous:

        async def run() -> List[httpx.Response]:
            async with httpx.AsyncClient(transport=AsyncLeanTransport(**options), timeout=5) as http:
                return [await http.get(url) for url in urls]

        return asyncio.run(run())
    with httpx.Client(transport=LeanTransport(**options), timeout=5) as http:
        return [http.get(url) for url in urls]


@KINDS
def test_keep_alive_reuses_one_connection(asynchronous: bool, serve: Any) -> None:
    server = serve([OK])
    responses = _get(asynchronous, [server.url] * 3)
    assert [r.json() for r in responses] == [{"ok": True}] * 3
    assert server.connections == 1
    assert responses[0].http_version == "HTTP/1.1" and responses[0].reason_phrase == "OK"
    assert server.requests[0].startswith(b"GET /t/oauth2/v2.0/token HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in server.requests[0].lower()


@KINDS
def test_connection_close_is_honoured(asynchronous: bool, serve: Any) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 12\r\n\r\n" + JSON
    server = serve([closing])
    assert [r.status_code for r in _get(asynchronous, [server.url] * 2)] == [200, 200]
    assert server.connections == 2


@KINDS
def test_a_connection_the_server_closed_while_idle_is_not_reused(asynchronous: bool, serve: Any) -> None:
    server = serve([Close(OK), OK])  # the server drops the connection after its answer

    async def run() -> List[int]:
        async with httpx.AsyncClient(transport=AsyncLeanTransport(), timeout=5) as http:
            first = (await http.get(server.url)).status_code
            await asyncio.sleep(0.1)
            return [first, (await http.get(server.url)).status_code]

    if asynchronous:
        codes = asyncio.run(run())
    else:
        with httpx.Client(transport=LeanTransport(), timeout=5) as http:
            codes = [http.get(server.url).status_code]
            time.sleep(0.1)
            codes.append(http.get(server.url).status_code)
    assert codes == [200, 200] and server.connections == 2


@KINDS
def test_an_expired_idle_connection_is_replaced(asynchronous: bool, serve: Any) -> None:
    server = serve([OK])
    _get(asynchronous, [server.url] * 2, keepalive_expiry=0.0)
    assert server.connections == 2


@KINDS
def test_chunked_and_until_close_bodies(asynchronous: bool, serve: Any) -> None:
    chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    until_close = Close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    server = serve([chunks, until_close, OK])
    responses = _get(asynchronous, [server.url] * 3)
    assert [r.content for r in responses] == [b"hello world", b"until the end", JSON]
    assert server.connections == 2  # the body that ran to the close cost its connection


@KINDS
def test_a_gzip_body_is_decoded_by_httpx(asynchronous: bool, serve: Any) -> None:
    import gzip

    packed = gzip.compress(JSON)
    server = serve(
        [b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed)]
    )
    assert _get(asynchronous, [server.url])[0].json() == {"ok": True}


@KINDS
@pytest.mark.parametrize(
    "answer",
    [b"<html><body>502 Bad Gateway</body></html>\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", None],
    ids=["html", "bad-length", "closed"],
)
def test_a_broken_answer_is_a_remote_protocol_error(asynchronous: bool, answer: Optional[bytes], serve: Any) -> None:
    server = serve([answer])
    with pytest.raises(httpx.RemoteProtocolError):
        _get(asynchronous, [server.url])


@KINDS
def test_a_body_cut_short_is_a_remote_protocol_error(asynchronous: bool, serve: Any) -> None:
    server = serve([Close(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")])
    with pytest.raises(httpx.RemoteProtocolError, match="before the end"):
        _get(asynchronous, [server.url])


@KINDS
def test_a_silent_server_is_a_read_timeout(asynchronous: bool, serve: Any) -> None:
    server = serve([lambda request: time.sleep(1.0) or OK])
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        if asynchronous:

            async def run() -> None:
                async with httpx.AsyncClient(transport=AsyncLeanTransport(), timeout=0.2) as http:
                    await http.get(server.url)

            asyncio.run(run())
        else:
            with httpx.Client(transport=LeanTransport(), timeout=0.2) as http:
                http.get(server.url)
    assert time.monotonic() - started < 0.9


@KINDS
def test_a_refused_connection_is_a_connect_error(asynchronous: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(httpx.ConnectError):
            _get(asynchronous, [f"http://127.0.0.1:{port}/"])


@KINDS
def test_an_injected_header_never_reaches_the_wire(asynchronous: bool, serve: Any) -> None:
    server = serve([OK])
    request = HttpRequest("GET", server.url, headers=(("x-evil", "1\r\nSet-Cookie: a"),))
    with pytest.raises(TransportError, match="LocalProtocolError"):
        if asynchronous:

            async def run() -> None:
                async with new_async_http_client(5) as http:
                    await async_fetch(http, request)

            asyncio.run(run())
        else:
            with new_http_client(5) as http:
                fetch(http, request)
    assert server.requests == []


@KINDS
def test_a_body_over_the_limit_is_refused_and_its_connection_dropped(asynchronous: bool, serve: Any) -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (3 * 1024 * 1024) + b"a" * (3 * 1024 * 1024)
    server = serve([big, OK])
    request = HttpRequest("GET", server.url)

    async def run() -> int:
        async with new_async_http_client(5) as http:
            with pytest.raises(ResponseFormatError, match="larger than"):
                await async_fetch(http, request)
            return (await async_fetch(http, request)).status

    if asynchronous:
        status = asyncio.run(run())
    else:
        with new_http_client(5) as http:
            with pytest.raises(ResponseFormatError, match="larger than"):
                fetch(http, request)
            status = fetch(http, request).status
    assert status == 200 and server.connections == 2


@KINDS
def test_a_post_body_and_a_chunked_upload_arrive_whole(asynchronous: bool, serve: Any) -> None:
    server = serve([OK])

    def parts() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    async def aparts() -> Any:
        yield b"abc"
        yield b"def"

    async def run() -> None:
        async with httpx.AsyncClient(transport=AsyncLeanTransport(), timeout=5) as http:
            await http.post(server.url, content=b"grant_type=x")
            await http.post(server.url, content=aparts())

    if asynchronous:
        asyncio.run(run())
    else:
        with httpx.Client(transport=LeanTransport(), timeout=5) as http:
            http.post(server.url, content=b"grant_type=x")
            http.post(server.url, content=parts())
    assert server.requests[0].endswith(b"\r\n\r\ngrant_type=x")
    assert b"transfer-encoding: chunked" in server.requests[1].lower()


def test_sync_requests_over_the_limit_wait_and_then_time_out(serve: Any) -> None:
    server = serve([lambda request: time.sleep(0.3) or OK])
    transport = LeanTransport(max_connections=1)
    with httpx.Client(transport=transport, timeout=httpx.Timeout(5, pool=0.1)) as http:
        holder = threading.Thread(target=http.get, args=(server.url,))
        holder.start()
        time.sleep(0.1)
        with pytest.raises(httpx.PoolTimeout):
            http.get(server.url)
        holder.join()
        assert http.get(server.url).status_code == 200  # the slot came back


def test_async_requests_over_the_limit_queue_in_order(serve: Any) -> None:
    server = serve([lambda request: time.sleep(0.05) or OK])

    async def run() -> List[int]:
        transport = AsyncLeanTransport(max_connections=2)
        async with httpx.AsyncClient(transport=transport, timeout=5) as http:
            answers = await asyncio.gather(*(http.get(server.url) for _ in range(6)))
            return [answer.status_code for answer in answers]

    assert asyncio.run(run()) == [200] * 6
    assert server.connections == 2  # never more than the limit, each reused


def test_async_pool_timeout(serve: Any) -> None:
    server = serve([lambda request: time.sleep(0.3) or OK])

    async def run() -> None:
        transport = AsyncLeanTransport(max_connections=1)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=0.05)) as http:
            slow = asyncio.ensure_future(http.get(server.url))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await http.get(server.url)
            assert (await slow).status_code == 200
            assert (await http.get(server.url)).status_code == 200

    asyncio.run(run())


def test_the_trace_events_oauth_core_bench_reads(serve: Any) -> None:
    server = serve([OK])
    seen: List[str] = []
    with httpx.Client(transport=LeanTransport(), timeout=5) as http:
        http.get(server.url, extensions={"trace": lambda name, info: seen.append(name)})
    assert seen == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "http11.send_request_headers.started",
        "http11.receive_response_headers.complete",
    ]


@KINDS
def test_retries_go_through_the_lean_transport(asynchronous: bool, serve: Any) -> None:
    busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    server = serve([busy, busy, OK])
    policy = RetryPolicy(jitter=False, sleep=lambda s: None, async_sleep=_no_sleep)
    request = HttpRequest("GET", server.url)
    if asynchronous:

        async def run() -> Any:
            async with new_async_http_client(5) as http:
                return await async_send_with_retry(http, request, policy)

        exchange = asyncio.run(run())
    else:
        with new_http_client(5) as http:
            exchange = send_with_retry(http, request, policy)
    assert (exchange.response.status, exchange.attempts, server.connections) == (200, 3, 1)


async def _no_sleep(seconds: float) -> None:
    return None


def test_a_lost_response_on_every_attempt_ends_in_a_transient_error(serve: Any) -> None:
    server = serve([None])
    policy = RetryPolicy(jitter=False, sleep=lambda s: None, max_attempts=3)
    with new_http_client(5) as http, pytest.raises(TransientError):
        send_with_retry(http, HttpRequest("GET", server.url), policy)
    assert len(server.requests) == 3


def test_the_transport_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OAUTH_CORE_TRANSPORT", raising=False)
    assert transport_choice() == "lean"
    with new_http_client(5) as http:
        assert isinstance(http._transport, LeanTransport)  # type: ignore[attr-defined]
    monkeypatch.setenv("OAUTH_CORE_TRANSPORT", "httpx")
    with new_http_client(5) as http:
        assert isinstance(http._transport, httpx.HTTPTransport)  # type: ignore[attr-defined]
    assert isinstance(new_async_http_client(5)._transport, httpx.AsyncHTTPTransport)  # type: ignore[attr-defined]
    monkeypatch.setenv("OAUTH_CORE_TRANSPORT", "curl")
    with pytest.raises(ConfigError, match="unknown transport 'curl'"):
        new_http_client(5)


def test_a_proxy_in_the_environment_keeps_httpx_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OAUTH_CORE_TRANSPORT", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with new_http_client(5) as http:
        assert isinstance(http._transport, httpx.HTTPTransport)  # type: ignore[attr-defined]


@KINDS
def test_tls_trusts_the_ca_bundle_named_when_the_transport_was_built(
    asynchronous: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # SSL_CERT_FILE is read at construction (as httpx's transports read it), though the certificates
    # load only at the first https connection: a caller that restores its environment in between
    # (the benchmark does) still verifies against the bundle it named.
    from oauth_core.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig.default(), port=0, tls=True, ca_dir=str(tmp_path)) as secure:
        assert secure.ca_bundle
        url = f"{secure.url}/{secure.tenant_id}/v2.0/.well-known/openid-configuration"
        monkeypatch.setenv("SSL_CERT_FILE", secure.ca_bundle)
        transport = AsyncLeanTransport() if asynchronous else LeanTransport()
        monkeypatch.delenv("SSL_CERT_FILE")

        async def get_async() -> int:
            async with httpx.AsyncClient(transport=transport, timeout=5) as http:  # type: ignore[arg-type]
                return (await http.get(url)).status_code

        def get() -> int:
            if asynchronous:
                return asyncio.run(get_async())
            with httpx.Client(transport=transport, timeout=5) as http:  # type: ignore[arg-type]
                return http.get(url).status_code

        assert get() == 200
        # Without the bundle the emulator's certificate is unknown: the handshake fails, typed.
        transport = AsyncLeanTransport() if asynchronous else LeanTransport()
        with pytest.raises(httpx.ConnectError):
            get()


def test_async_bursts_reuse_every_connection_the_last_burst_opened(serve: Any) -> None:
    # Gathered tasks reach the pool unevenly; connections freed in a lull are kept (up to as many
    # as may be in flight), so the next burst opens none.
    server = serve([OK])

    async def run() -> List[int]:
        opened = []
        async with httpx.AsyncClient(transport=AsyncLeanTransport(max_connections=40), timeout=5) as http:
            for _ in range(3):
                before = server.connections
                await asyncio.gather(*(http.get(server.url) for _ in range(60)))
                opened.append(server.connections - before)
        return opened

    first, *later = asyncio.run(run())
    assert 1 <= first <= 40 and later == [0, 0]
