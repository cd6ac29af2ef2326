"""The retry rules on a real socket: EntraClient against the emulator's injected faults."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from typing import Iterator, List

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import EntraClient, InvalidGrant, ResponseFormatError, RetryPolicy, TransientError
from oauth_core.cli.demo import scripted_sign_in
from oauth_core.emulator import Emulator, EmulatorConfig, Fault


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def no_faults_left(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.clear_faults()


class Recorder:
    def __init__(self) -> None:
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)  # recorded, not slept: the socket part is what is under test


def _client(emulator: Emulator, recorder: Recorder, **policy: float) -> EntraClient:
    settings = {"jitter": False, "initial_backoff": 0.25, "max_backoff": 1.0, **policy}
    return EntraClient(
        emulator.config.clients[0].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        retry=RetryPolicy(sleep=recorder.sleep, **settings),  # type: ignore[arg-type]
        timeout=2.0,
    )


def _password(client: EntraClient, emulator: Emulator) -> str:
    user = emulator.config.users[0]
    tokens = client.acquire_by_password(user.username, user.password)
    assert tokens.refresh_token
    return tokens.refresh_token


def _token_posts(emulator: Emulator) -> int:
    return emulator.count("token")


def test_429_storm_with_retry_after_is_waited_out(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        before = _token_posts(emulator)
        emulator.inject("token", Fault("status", status=429, retry_after=2), times=3)
        _password(client, emulator)
    assert _token_posts(emulator) - before == 4
    assert recorder.waits == [2.0, 2.0, 2.0]


def test_429_storm_without_retry_after_backs_off_then_gives_up(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder, max_attempts=3) as client:
        emulator.inject("token", Fault("status", status=429, body="Too Many Requests"), times=5)
        with pytest.raises(TransientError) as caught:
            _password(client, emulator)
    assert caught.value.attempts == 3 and caught.value.status == 429
    assert recorder.waits == [0.25, 0.5]


def test_5xx_burst_is_retried(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        emulator.inject("token", Fault("status", status=503, retry_after=1), times=1)
        emulator.inject("token", Fault("status", status=500), times=1)
        _password(client, emulator)
    assert recorder.waits == [1.0, 0.5]


def test_delay_beyond_the_timeout_is_a_retried_timeout(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        emulator.inject("token", Fault("delay", seconds=3.0), times=1)
        started = time.monotonic()
        _password(client, emulator)
    assert recorder.waits == [0.25]
    assert 2.0 <= time.monotonic() - started < 8


def test_connection_dropped_before_the_answer_is_retried(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        emulator.inject("token", Fault("drop_before"), times=2)
        _password(client, emulator)
    assert recorder.waits == [0.25, 0.5]


def test_truncated_body_is_retried(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        emulator.inject("token", Fault("truncate"), times=1)
        _password(client, emulator)
    assert recorder.waits == [0.25]


def test_html_from_a_proxy_is_retried_then_reported(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder, max_attempts=2) as client:
        emulator.inject("token", Fault("html", status=502), times=2)
        with pytest.raises(TransientError) as caught:
            _password(client, emulator)
    assert caught.value.status == 502 and caught.value.attempts == 2


def test_html_with_status_200_is_a_format_error_not_retried(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        before = _token_posts(emulator)
        emulator.inject("token", Fault("html", status=200), times=1)
        with pytest.raises(ResponseFormatError, match="HTML"):
            _password(client, emulator)
    assert _token_posts(emulator) - before == 1 and recorder.waits == []


def test_lost_code_redemption_reports_the_lost_response(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        pending = client.authorization_request()
        user = emulator.config.users[0]
        location = scripted_sign_in(pending.url, user.username, user.password)
        emulator.inject("token", Fault("drop_after"), times=1)  # redeemed, answer lost
        with pytest.raises(TransientError, match="lost"):
            client.exchange_code(pending, location)
    assert recorder.waits == []  # sent once: the code may have been redeemed


def test_lost_refresh_response_with_rotation_is_invalid_grant() -> None:
    recorder = Recorder()
    strict = dataclasses.replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=True)
    with Emulator(strict, port=0, tls=False) as emulator, _client(emulator, recorder) as client:
        refresh_token = _password(client, emulator)
        emulator.inject("token", Fault("drop_after"), times=1)  # rotated server-side, answer lost
        with pytest.raises(InvalidGrant):
            client.refresh(refresh_token)
    assert recorder.waits == [0.25]


def test_lost_refresh_response_is_retried_through_as_entra_keeps_the_old_token(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        refresh_token = _password(client, emulator)
        emulator.inject("token", Fault("drop_after"), times=1)  # rotated server-side, answer lost
        assert client.refresh(refresh_token).access_token  # the old one still works, as in Entra
    assert recorder.waits == [0.25]


def test_oauth_errors_are_sent_once(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:
        before = _token_posts(emulator)
        with pytest.raises(InvalidGrant):
            client.acquire_by_password(emulator.config.users[0].username, "wrong password")
    assert _token_posts(emulator) - before == 1 and recorder.waits == []


def test_cli_emulator_starts_fast_and_prints_its_url() -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauth_core", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while "http://127.0.0.1:" not in line:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes
    assert elapsed < 2.0, f"took {elapsed:.2f}s to print its URL"
