"""``AsyncEntraClient.max_in_flight``: a bound on one client's requests on the wire at once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Optional

import pytest

from oauth_core import AsyncEntraClient, MemoryTokenCache

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
BODY = json.dumps(
    {"token_type": "Bearer", "scope": "x/.default", "expires_in": 3600, "access_token": "opaque-token"}
).encode()


class CountingServer:
    """A token endpoint that holds each request 50 ms and records how many were in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with counter.lock:
                    counter.now += 1
                    counter.most = max(counter.most, counter.now)
                time.sleep(0.05)
                with counter.lock:
                    counter.now -= 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    running = CountingServer()
    yield running
    running.close()


async def _refresh_all(url: str, bound: Optional[int], count: int) -> List[str]:
    async with AsyncEntraClient(CLIENT, TENANT, authority_host=url, cache=MemoryTokenCache()) as client:
        client.max_in_flight = bound
        done = await asyncio.gather(*(client.refresh(f"0.AXkA-{i}") for i in range(count)))
    return [t.access_token for t in done]


def test_a_bound_keeps_at_most_that_many_requests_on_the_wire(server: CountingServer) -> None:
    tokens = asyncio.run(_refresh_all(server.url, 3, 12))
    assert tokens == ["opaque-token"] * 12
    assert server.most <= 3


def test_without_a_bound_the_requests_overlap(server: CountingServer) -> None:
    asyncio.run(_refresh_all(server.url, None, 12))
    assert server.most > 3  # the pool's own limit (100) is the only bound
