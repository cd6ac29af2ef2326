"""The one-shot loopback listener, over real sockets."""

from __future__ import annotations

import socket
import threading
import time
from typing import List, Optional

import httpx
import pytest

from oauth_core.core.errors import ConfigError, InteractionTimeout
from oauth_core.drivers.loopback import LoopbackListener

STATE = "expected-state-0123456789"


def _wait_in_thread(listener: LoopbackListener, timeout: float) -> tuple[threading.Thread, List[object]]:
    result: List[object] = []

    def run() -> None:
        try:
            result.append(listener.wait(timeout))
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)
    return thread, result


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5.0)


def test_ephemeral_port_and_redirect_uri() -> None:
    with LoopbackListener("http://localhost", STATE) as listener:
        assert listener.port > 0
        assert listener.redirect_uri == f"http://localhost:{listener.port}"


def test_matching_callback_ends_the_wait_and_others_do_not() -> None:
    listener = LoopbackListener("http://localhost/callback", STATE)
    base = f"http://127.0.0.1:{listener.port}"
    thread, result = _wait_in_thread(listener, timeout=10)
    assert _get(f"{base}/favicon.ico").status_code == 404
    assert _get(f"{base}/callback?code=x&state=wrong").status_code == 400
    assert _get(f"{base}/callback?code=x&state={STATE}&state={STATE}").status_code == 400
    assert _get(f"{base}/other?code=x&state={STATE}").status_code == 404
    assert thread.is_alive(), "a wrong path or state must not end the wait"
    answer = _get(f"{base}/callback?code=the-code&state={STATE}&session_state=s")
    thread.join(5)
    assert answer.status_code == 200
    assert "Signed in" in answer.text
    assert result == [f"code=the-code&state={STATE}&session_state=s"]


def test_listener_is_closed_after_the_callback() -> None:
    listener = LoopbackListener("http://localhost", STATE)
    port = listener.port
    thread, _ = _wait_in_thread(listener, timeout=10)
    _get(f"http://127.0.0.1:{port}/?code=c&state={STATE}")
    thread.join(5)
    with pytest.raises(httpx.ConnectError):
        _get(f"http://127.0.0.1:{port}/?code=c&state={STATE}")


def test_error_page_escapes_reflected_text() -> None:
    listener = LoopbackListener("http://localhost", STATE)
    thread, result = _wait_in_thread(listener, timeout=10)
    hostile = "<script>alert(1)</script>"
    answer = httpx.get(
        f"http://127.0.0.1:{listener.port}/",
        params={"error": "access_denied", "error_description": hostile, "state": STATE},
    )
    thread.join(5)
    assert "<script>" not in answer.text
    assert "&lt;script&gt;" in answer.text
    assert isinstance(result[0], str) and "error=access_denied" in result[0]


def test_timeout_raises_and_frees_the_port() -> None:
    listener = LoopbackListener("http://localhost", STATE)
    port = listener.port
    started = time.monotonic()
    with pytest.raises(InteractionTimeout):
        listener.wait(0.3)
    assert time.monotonic() - started < 3
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again


def test_idle_preconnection_does_not_block_the_callback() -> None:
    listener = LoopbackListener("http://localhost", STATE)
    idle = socket.create_connection(("127.0.0.1", listener.port))  # like a browser's pre-connect
    try:
        thread, result = _wait_in_thread(listener, timeout=10)
        _get(f"http://127.0.0.1:{listener.port}/?code=c&state={STATE}")
        thread.join(5)
        assert not thread.is_alive()
        assert result == [f"code=c&state={STATE}"]
    finally:
        idle.close()


def test_binds_loopback_only() -> None:
    with LoopbackListener("http://localhost", STATE) as listener:
        assert listener._server.server_address[0] == "127.0.0.1"
    with pytest.raises(ConfigError):
        LoopbackListener("http://localhost", STATE, listen_address="0.0.0.0")


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://localhost", "http://example.com", "http://localhost/?x=1", "http://localhost/#f", "localhost"],
)
def test_refuses_redirect_uris_it_cannot_serve(redirect_uri: str) -> None:
    with pytest.raises(ConfigError):
        LoopbackListener(redirect_uri, STATE)


def test_busy_fixed_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen"):
            LoopbackListener(f"http://localhost:{port}", STATE)


def test_fixed_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free: Optional[int] = probe.getsockname()[1]
    with LoopbackListener(f"http://localhost:{free}/cb", STATE) as listener:
        assert listener.port == free
        assert listener.redirect_uri == f"http://localhost:{free}/cb"
