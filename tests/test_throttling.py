"""Throttling memory: a 429/503 ``Retry-After`` refuses identical token requests, unsent, until it is over.

The keys and windows are pure (``core/throttle.py``); the memory is kept in process and, for a file
cache, in ``<cache>.throttle`` for the next process. The requests go over loopback to the emulator,
and the command line's runs (in process and as subprocesses) are the done-when check: two
``oauth-core token --timeout 5`` runs against a service answering 429 ``Retry-After: 30`` both exit 3
at once, say when to retry, and send one request between them.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import AsyncEntraClient, EntraClient, FileTokenCache, MemoryTokenCache, RetryPolicy, TransientError
from oauth_core.cli import main
from oauth_core.cli.exit_codes import EXIT_SERVICE, exit_code_for
from oauth_core.core.protocol import HttpRequest
from oauth_core.core.throttle import (
    CONFIDENTIAL_WINDOW,
    MAX_ENTRIES,
    MAX_WINDOW,
    PUBLIC_WINDOW,
    Throttled,
    remaining,
    remember,
    throttle_key,
    throttle_window,
)
from oauth_core.drivers.throttle import FileThrottleMemory, ThrottleMemory
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

TOKEN_URL = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"


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
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def _request(**fields: str) -> HttpRequest:
    form = {"client_id": CLIENT, "grant_type": "refresh_token", "refresh_token": "rt-1", "scope": "a b", **fields}
    return HttpRequest("POST", TOKEN_URL, form=tuple((k, v) for k, v in form.items() if v))


# -- 1. keys and windows (pure) ---------------------------------------------------------------------------


def test_identical_requests_share_a_key_and_it_holds_no_secret() -> None:
    key = throttle_key(_request())
    assert key is not None and key.startswith("t1:")
    assert throttle_key(_request(scope="b a a")) == key  # a scope set, in any order
    assert throttle_key(HttpRequest("POST", TOKEN_URL.replace("login", "LOGIN"), form=_request().form)) == key
    assert throttle_key(_request(client_secret="s3cret")) == key  # the client's credential is not the account
    assert throttle_key(_request(client_assertion="eyJ.a.b")) == throttle_key(_request(client_assertion="eyJ.c.d"))
    assert "rt-1" not in key and "s3cret" not in key


@pytest.mark.parametrize(
    "change",
    [
        {"refresh_token": "rt-2"},
        {"client_id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"},
        {"scope": "a"},
        {"grant_type": "password", "refresh_token": "", "username": "alice", "password": "x"},
    ],
    ids=["account", "client", "scopes", "grant"],
)
def test_another_account_client_scope_or_grant_is_another_key(change: Dict[str, str]) -> None:
    assert throttle_key(_request(**change)) != throttle_key(_request())


def test_another_authority_is_another_key() -> None:
    other = HttpRequest("POST", TOKEN_URL.replace("contoso.onmicrosoft.com", "fabrikam.example"), form=_request().form)
    assert throttle_key(other) != throttle_key(_request())


def test_requests_that_are_not_token_requests_are_not_throttled() -> None:
    assert throttle_key(HttpRequest("GET", "http://169.254.169.254/metadata/identity/oauth2/token")) is None
    device = HttpRequest("POST", TOKEN_URL.replace("token", "devicecode"), form=(("client_id", CLIENT),))
    assert throttle_key(device) is None
    assert throttle_key(HttpRequest("POST", TOKEN_URL)) is None


def test_windows_follow_retry_after_or_msal_defaults() -> None:
    public, confidential = _request(), _request(client_secret="s")
    assert throttle_window(public, 429, 30.0) == 30.0
    assert throttle_window(public, 503, 7200.0) == MAX_WINDOW == 3600.0
    assert throttle_window(public, 429, None) == PUBLIC_WINDOW == 60.0
    assert throttle_window(confidential, 503, None) == CONFIDENTIAL_WINDOW == 5.0
    assert throttle_window(public, 500, 10.0) == 10.0  # any failure asking for a wait
    assert throttle_window(public, 500, None) is None  # a blip the retries covered
    assert throttle_window(public, 400, None) is None
    assert throttle_window(public, None, None) is None  # a network failure
    assert throttle_window(public, 429, 0.0) is None


def test_remembered_windows_end_and_are_bounded() -> None:
    state: Dict[str, Any] = {}
    remember(state, "k", 1030.0, 429, now=1000.0)
    refusal = remaining(state, "k", 1010.0)
    assert isinstance(refusal, Throttled) and refusal.retry_after == 20.0 and refusal.until == 1030.0
    assert refusal.attempts == 0 and refusal.status == 429
    assert remaining(state, "k", 1030.0) is None
    assert remaining(state, "k", 1030.0 - MAX_WINDOW - 1) is None  # the clock went back: ignored
    assert remaining({"k": "junk"}, "k", 0.0) is None and remaining([], "k", 0.0) is None
    remember(state, "other", 2000.0, 503, now=1500.0)
    assert list(state) == ["other"]  # the ended window was dropped
    for n in range(MAX_ENTRIES + 5):
        remember(state, f"k{n}", 1600.0 + n, 429, now=1500.0)
    assert len(state) == MAX_ENTRIES and "k0" not in state and f"k{MAX_ENTRIES + 4}" in state


def test_throttled_is_a_transient_error_the_cli_exits_3_for() -> None:
    error = Throttled.remembered(12.5, time.time() + 12.5, 429)
    assert isinstance(error, TransientError) and exit_code_for(error) == EXIT_SERVICE == 3
    assert "13 s" in str(error) and "UTC" in str(error) and error.hint and "13 s" in error.hint


# -- 2. over loopback: one process -------------------------------------------------------------------------


def _client(emulator: Emulator, recorder: Recorder, *, cache: object = None, **policy: float) -> EntraClient:
    return EntraClient(
        emulator.config.clients[0].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        retry=RetryPolicy(sleep=recorder.sleep, jitter=False, **policy),  # type: ignore[arg-type]
        timeout=2.0,
        cache=cache,  # type: ignore[arg-type]
    )


def _user(emulator: Emulator) -> Tuple[str, str]:
    user = emulator.config.users[0]
    return user.username, user.password


def test_a_retry_after_beyond_the_deadline_fails_at_once_and_is_remembered(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder) as client:  # timeout 2 s: a budget of 9.5 s
        emulator.inject("token", Fault("status", status=429, retry_after=30), times=5)
        before, started = emulator.count("token"), time.monotonic()
        with pytest.raises(Throttled) as first:
            client.acquire_by_password(*_user(emulator))
        assert first.value.attempts == 1 and first.value.status == 429 and first.value.retry_after == 30
        assert "left of this call's deadline" in str(first.value) and recorder.waits == []
        with pytest.raises(Throttled) as second:
            client.acquire_by_password(*_user(emulator))
        assert second.value.attempts == 0 and 28 < second.value.retry_after <= 30
        assert abs(second.value.until - first.value.until) < 1
        assert time.monotonic() - started < 1.5
        assert emulator.count("token") - before == 1  # the second was refused unsent
        emulator.clear_faults()
        other = client.acquire_by_password(*_user(emulator), scopes=["https://graph.microsoft.com/User.Read"])
        assert other.access_token  # other scopes: another key, sent


def test_a_retry_after_above_max_retry_after_is_not_waited(emulator: Emulator) -> None:
    recorder = Recorder()
    with _client(emulator, recorder, max_retry_after=5) as client:
        emulator.inject("token", Fault("status", status=503, retry_after=8), times=1)
        with pytest.raises(Throttled) as caught:
            client.acquire_by_password(*_user(emulator))
    assert "max_retry_after 5 s" in str(caught.value) and recorder.waits == []


def test_a_short_retry_after_is_waited_and_nothing_is_remembered(emulator: Emulator) -> None:
    recorder = Recorder()
    cache = MemoryTokenCache()
    with _client(emulator, recorder, cache=cache) as client:
        emulator.inject("token", Fault("status", status=429, retry_after=1), times=2)
        assert client.acquire_by_password(*_user(emulator)).access_token
    assert recorder.waits == [1.0, 1.0] and cache.throttle.windows() == {}


def test_429_without_retry_after_remembers_msal_public_default(emulator: Emulator) -> None:
    recorder = Recorder()
    cache = MemoryTokenCache()
    with _client(emulator, recorder, cache=cache, max_attempts=2) as client:
        emulator.inject("token", Fault("status", status=429, body="Too Many Requests"), times=2)
        with pytest.raises(TransientError) as caught:
            client.acquire_by_password(*_user(emulator))
        assert not isinstance(caught.value, Throttled) and caught.value.attempts == 2
        with pytest.raises(Throttled) as refused:
            client.acquire_by_password(*_user(emulator))
    assert PUBLIC_WINDOW - 2 < refused.value.retry_after <= PUBLIC_WINDOW


def test_a_confidential_client_waits_5_s_and_the_window_ends(emulator: Emulator) -> None:
    app = emulator.config.clients[1]
    cache = MemoryTokenCache()
    policy = RetryPolicy(max_attempts=1, sleep=Recorder().sleep)
    shift = [0.0]  # the windows run on the client's clock
    with EntraClient(
        app.client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        client_secret=app.secret,
        cache=cache,
        retry=policy,
        clock=lambda: time.time() + shift[0],
    ) as client:
        emulator.inject("token", Fault("status", status=503), times=1)
        with pytest.raises(TransientError):
            client.acquire_for_client()
        with pytest.raises(Throttled) as refused:
            client.acquire_for_client()
        assert CONFIDENTIAL_WINDOW - 1 < refused.value.retry_after <= CONFIDENTIAL_WINDOW
        shift[0] = CONFIDENTIAL_WINDOW  # the window is over
        assert client.acquire_for_client().access_token


def test_clients_of_one_cache_share_the_memory(emulator: Emulator) -> None:
    cache = MemoryTokenCache()
    emulator.inject("token", Fault("status", status=429, retry_after=20), times=1)
    with _client(emulator, Recorder(), cache=cache) as first, pytest.raises(Throttled):
        first.acquire_by_password(*_user(emulator))
    before = emulator.count("token")
    with _client(emulator, Recorder(), cache=cache) as second, pytest.raises(Throttled):
        second.acquire_by_password(*_user(emulator))
    with _client(emulator, Recorder()) as separate:  # its own cache, its own memory
        assert separate.acquire_by_password(*_user(emulator)).access_token
    assert emulator.count("token") - before == 1


def test_the_async_client_refuses_the_same_way(emulator: Emulator) -> None:
    recorder = Recorder()

    async def scenario() -> Tuple[Throttled, Throttled, int]:
        policy = RetryPolicy(sleep=recorder.sleep, async_sleep=recorder.async_sleep)
        async with AsyncEntraClient(
            emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, retry=policy
        ) as client:
            emulator.inject("token", Fault("status", status=429, retry_after=90), times=3)
            before = emulator.count("token")
            with pytest.raises(Throttled) as first:
                await client.acquire_by_password(*_user(emulator))
            with pytest.raises(Throttled) as second:
                await client.acquire_by_password(*_user(emulator))
            return first.value, second.value, emulator.count("token") - before

    first, second, sent = asyncio.run(scenario())
    assert (first.attempts, second.attempts, sent) == (1, 0, 1) and recorder.waits == []
    assert "max_retry_after" in str(first)


# -- 3. across processes: the file cache's <cache>.throttle -------------------------------------------------


def test_a_file_cache_remembers_for_the_next_process(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "state" / "tokens.json"
    username, password = _user(emulator)
    emulator.inject("token", Fault("status", status=429, retry_after=30), times=2)
    with _client(emulator, Recorder(), cache=FileTokenCache(path)) as client, pytest.raises(Throttled):
        client.acquire_by_password(username, password)
    memory_file = tmp_path / "state" / "tokens.json.throttle"
    text = memory_file.read_text()
    assert stat.S_IMODE(memory_file.stat().st_mode) == 0o600
    assert username not in text and password not in text and CLIENT not in text
    assert json.loads(text)["version"] == 1
    before = emulator.count("token")
    with _client(emulator, Recorder(), cache=FileTokenCache(path)) as later, pytest.raises(Throttled) as refused:
        later.acquire_by_password(username, password)  # a new cache object: what a new process has
    assert refused.value.attempts == 0 and emulator.count("token") == before
    assert not path.exists()  # nothing was cached: the cache file itself was never written


def test_a_damaged_or_unsafe_memory_file_is_ignored(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    memory_file = tmp_path / "tokens.json.throttle"
    memory_file.write_text("{not json")
    memory_file.chmod(0o600)
    with _client(emulator, Recorder(), cache=FileTokenCache(path)) as client:
        assert client.acquire_by_password(*_user(emulator)).access_token
    memory_file.write_text(json.dumps({"version": 1, "windows": {throttle_key(_request()): [time.time() + 60, 429]}}))
    memory_file.chmod(0o644)  # others could have written it: not trusted
    memory = FileThrottleMemory(memory_file, FileTokenCache(path)._exclusive)
    assert memory.windows() == {}  # its window is not trusted
    memory.check(_request())  # so nothing is refused


def test_an_unwritable_memory_file_keeps_the_window_in_process(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)  # not private: the file is not written there
    memory = FileThrottleMemory(folder / "tokens.json.throttle", FileTokenCache(folder / "tokens.json")._exclusive)
    memory.note(_request(), str(throttle_key(_request())), 429, 30.0)
    assert not (folder / "tokens.json.throttle").exists()
    with pytest.raises(Throttled):
        memory.check(_request())


def test_memory_reads_the_file_only_when_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FileTokenCache(tmp_path / "tokens.json")
    memory = cache.throttle
    assert isinstance(memory, FileThrottleMemory) and cache.throttle is memory
    writer = FileThrottleMemory(memory.path, cache._exclusive)
    writer.note(_request(), str(throttle_key(_request())), 429, 30.0)
    reads: List[int] = []
    real = FileThrottleMemory._read

    def counted(self: FileThrottleMemory) -> Dict[str, Any]:
        reads.append(1)
        return real(self)

    monkeypatch.setattr(FileThrottleMemory, "_read", counted)
    for _ in range(3):
        with pytest.raises(Throttled):
            memory.check(_request())
    assert reads == [1]
    assert isinstance(MemoryTokenCache().throttle, ThrottleMemory)


# -- 4. the command line: the done-when check -------------------------------------------------------------


def run(*argv: str) -> Tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


@pytest.fixture
def cli_signed_in(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """alice signed in with `oauth-core password` (the state dir's cache); the common options."""
    username, password = _user(emulator)
    common = ["--client-id", CLIENT, "--authority-host", emulator.url, "--tenant", emulator.tenant_id]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", password)
    code, _, err, _ = run("password", *common, "-u", username)
    assert code == 0, err
    return common


# --min-validity above the token's lifetime: `token` must refresh, so it asks the token endpoint.
TOKEN_RUN = ("token", "--timeout", "5", "--min-validity", "86400")


def test_two_token_runs_exit_3_at_once_and_send_one_request(emulator: Emulator, cli_signed_in: List[str]) -> None:
    emulator.inject("token", Fault("status", status=429, retry_after=30), times=5)
    before = emulator.count("token")
    first = run(*TOKEN_RUN, *cli_signed_in)
    second = run(*TOKEN_RUN, *cli_signed_in)
    assert emulator.count("token") - before == 1
    for code, out, err, elapsed in (first, second):
        assert code == 3 and out == "" and elapsed < 5, err
        assert "hint: " in err and "run the command again after " in err and " UTC (in " in err
    assert "asked to wait 30 s" in first[2] and "deadline" in first[2]
    assert "not sent" in second[2] and "Nothing was sent" in second[2]


def test_the_json_error_says_when_to_retry(emulator: Emulator, cli_signed_in: List[str]) -> None:
    emulator.inject("token", Fault("status", status=503, retry_after=40), times=1)
    run(*TOKEN_RUN, *cli_signed_in)
    code, _, err, _ = run(*TOKEN_RUN, *cli_signed_in, "--json")
    payload = json.loads(err)
    assert code == 3 and payload["error"] == "throttled" and payload["status"] == 503
    assert "run the command again after" in payload["hint"]


def test_two_token_processes_send_one_request(emulator: Emulator, cli_signed_in: List[str]) -> None:
    emulator.inject("token", Fault("status", status=429, retry_after=30), times=5)
    before = emulator.count("token")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(2):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "oauth_core", *TOKEN_RUN, *cli_signed_in],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode == 3 and time.monotonic() - started < 5, done.stderr
        assert "run the command again after" in done.stderr
    assert emulator.count("token") - before == 1
