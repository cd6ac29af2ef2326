"""The device code flow (RFC 8628): the pure flow stepped by hand, the sync and async drivers over
respx with fake sleeps, then end to end against the emulator (sync, async and the CLI in a subprocess).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from fixturelib import CLIENT_ID, TENANT_ID, token_response_body

from oauth_core import AsyncEntraClient, DeviceCode, EntraClient
from oauth_core.cli import main
from oauth_core.cli.exit_codes import exit_code_for
from oauth_core.core.authority import Authority
from oauth_core.core.device import (
    DEVICE_CODE_GRANT_TYPE,
    Wait,
    build_device_code_request,
    device_code_flow,
    device_code_grant,
    parse_device_code_response,
    poll_device_code,
)
from oauth_core.core.errors import (
    AuthorizationDeclined,
    BadVerificationCode,
    ConfigError,
    ExpiredToken,
    InteractionTimeout,
    InvalidRequest,
    ResponseFormatError,
    TransientError,
    UnauthorizedClient,
)
from oauth_core.core.flows import advance, request_headers, start
from oauth_core.core.protocol import HttpRequest, HttpResponse, TokenSet, build_token_request, normalize_scopes
from oauth_core.drivers.retry import RetryPolicy

REPO = Path(__file__).resolve().parent.parent
AUTHORITY = Authority.of(None, TENANT_ID)
DEVICE_URL = AUTHORITY.device_code_endpoint
TOKEN_URL = AUTHORITY.token_endpoint
SCOPES = normalize_scopes(normalize_scopes(None), offline_access=True)
DEVICE_CODE = "DAQABIQEAAAD-secret-device-code-value"
USER_CODE = "F7KQ2XRTN"
TOKEN_BODY: Dict[str, Any] = json.loads(token_response_body())


# -- helpers ------------------------------------------------------------------------------------


class FakeTime:
    """Epoch seconds that move only when a fake sleep says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def device_body(**changes: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "user_code": USER_CODE,
        "device_code": DEVICE_CODE,
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 5,
        "message": f"To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
        f"and enter the code {USER_CODE} to authenticate.",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def json_reply(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("content-type", "application/json; charset=utf-8"),), json.dumps(body).encode())


def device_error(error: str, code: int, status: int = 400) -> Dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: device flow state. Trace ID: t Correlation ID: c Timestamp: 2025-01-01",
        "error_codes": [code],
        "trace_id": "cccccccc-0000-0000-0000-000000000000",
        "correlation_id": "dddddddd-0000-0000-0000-000000000000",
    }


PENDING = device_error("authorization_pending", 70016)
SLOW_DOWN = device_error("slow_down", 0)
EXPIRED = device_error("expired_token", 70020)
DECLINED = device_error("authorization_declined", 65004)
BAD_CODE = device_error("bad_verification_code", 70018)


def poll_request(code: DeviceCode) -> HttpRequest:
    return build_token_request(AUTHORITY, CLIENT_ID, device_code_grant(code.device_code), scopes=SCOPES)


def a_code(clock: FakeTime, **changes: Any) -> DeviceCode:
    return parse_device_code_response(json_reply(device_body(**changes)), received_at=clock())


# -- requests and responses ----------------------------------------------------------------------


def test_device_code_request() -> None:
    request = build_device_code_request(AUTHORITY, CLIENT_ID, SCOPES, request_headers())
    assert (request.method, request.url) == (
        "POST",
        f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/devicecode",
    )
    assert request.form == (("client_id", CLIENT_ID), ("scope", " ".join(SCOPES)))
    headers = dict(request.headers)
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert "client-request-id" in headers
    with pytest.raises(ConfigError):
        build_device_code_request(AUTHORITY, "", SCOPES)


def test_parse_device_code_response() -> None:
    code = parse_device_code_response(json_reply(device_body()), received_at=1000.0)
    assert code == DeviceCode(
        user_code=USER_CODE,
        device_code=DEVICE_CODE,
        verification_uri="https://microsoft.com/devicelogin",
        expires_at=1900.0,
        interval=5.0,
        message=device_body()["message"],
    )
    assert DEVICE_CODE not in repr(code) and "<redacted>" in repr(code) and USER_CODE in repr(code)


def test_parse_defaults_interval_and_message() -> None:
    code = parse_device_code_response(json_reply(device_body(interval=None, message=None)), received_at=0.0)
    assert code.interval == 5.0
    assert USER_CODE in code.message and "https://microsoft.com/devicelogin" in code.message
    strings = parse_device_code_response(json_reply(device_body(expires_in="900", interval="3")), received_at=0.0)
    assert (strings.expires_at, strings.interval) == (900.0, 3.0)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (json_reply(device_error("invalid_request", 900144)), InvalidRequest),
        (json_reply(device_error("unauthorized_client", 700016)), UnauthorizedClient),
        (json_reply(device_body(user_code=None)), ResponseFormatError),
        (json_reply(device_body(device_code="")), ResponseFormatError),
        (json_reply(device_body(verification_uri=5)), ResponseFormatError),
        (json_reply(device_body(expires_in=None)), ResponseFormatError),
        (json_reply(device_body(expires_in=True)), ResponseFormatError),
        (json_reply(device_body(interval=-1)), ResponseFormatError),
        (json_reply(device_body(), status=302), ResponseFormatError),
        (json_reply(["not", "an", "object"]), ResponseFormatError),
        (
            HttpResponse(200, (("content-type", "text/html"),), b"<html><title>Proxy</title></html>"),
            ResponseFormatError,
        ),
        (HttpResponse(400, (), b""), ResponseFormatError),
    ],
)
def test_parse_refuses_what_is_not_a_device_code(reply: HttpResponse, error: type) -> None:
    with pytest.raises(error):
        parse_device_code_response(reply, received_at=0.0)


def test_wait_is_bounded() -> None:
    with pytest.raises(ValueError):
        Wait(-1)


# -- the flow, stepped by hand ---------------------------------------------------------------------


def test_whole_flow_by_hand() -> None:
    clock = FakeTime()
    shown: List[DeviceCode] = []
    begin = build_device_code_request(AUTHORITY, CLIENT_ID, SCOPES)
    flow = device_code_flow(begin, poll_request, on_code=shown.append, clock=clock)
    assert next(flow) is begin
    assert flow.send(json_reply(device_body())) == Wait(5.0)
    assert [c.user_code for c in shown] == [USER_CODE]
    clock.now += 5
    poll = next(flow)
    assert isinstance(poll, HttpRequest) and poll.url == TOKEN_URL
    form = dict(poll.form)
    assert (form["grant_type"], form["device_code"], form["client_id"]) == (
        DEVICE_CODE_GRANT_TYPE,
        DEVICE_CODE,
        CLIENT_ID,
    )
    assert poll.form == poll_request(shown[0]).form  # the one token builder made it
    assert DEVICE_CODE not in repr(poll)
    assert flow.send(json_reply(PENDING, 400)) == Wait(5.0)
    clock.now += 5
    next(flow)
    assert flow.send(json_reply(SLOW_DOWN, 400)) == Wait(10.0)  # slow_down adds 5 s ...
    clock.now += 10
    next(flow)
    assert flow.send(json_reply(PENDING, 400)) == Wait(10.0)  # ... for good
    clock.now += 10
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(json_reply(TOKEN_BODY))
    tokens = done.value.value
    assert isinstance(tokens, TokenSet) and tokens.expires_at == clock.now + TOKEN_BODY["expires_in"]


@pytest.mark.parametrize(
    ("body", "error"),
    [(EXPIRED, ExpiredToken), (DECLINED, AuthorizationDeclined), (BAD_CODE, BadVerificationCode)],
)
def test_end_states_raise_their_typed_error(body: Dict[str, Any], error: type) -> None:
    clock = FakeTime()
    flow = poll_device_code(a_code(clock), poll_request, clock=clock)
    assert next(flow) == Wait(5.0)
    next(flow)
    with pytest.raises(error) as caught:
        flow.send(json_reply(body, 400))
    assert caught.value.status == 400


def test_caller_deadline_clips_the_waits_then_times_out() -> None:
    clock = FakeTime()
    flow = poll_device_code(a_code(clock), poll_request, clock=clock, deadline=clock() + 12)
    waits = []
    step = next(flow)
    with pytest.raises(InteractionTimeout) as caught:
        while True:
            assert isinstance(step, Wait)
            waits.append(step.seconds)
            clock.now += step.seconds
            assert isinstance(next(flow), HttpRequest)
            step = flow.send(json_reply(PENDING, 400))
    assert waits == [5.0, 5.0, 2.0]  # a last poll exactly at the deadline, none after it
    assert "within the time allowed" in str(caught.value)


def test_device_code_expiry_ends_the_polling() -> None:
    clock = FakeTime()
    flow = poll_device_code(a_code(clock, expires_in=8), poll_request, clock=clock, deadline=clock() + 60)
    assert next(flow) == Wait(5.0)
    clock.now += 5
    next(flow)
    assert flow.send(json_reply(PENDING, 400)) == Wait(3.0)
    clock.now += 3
    next(flow)
    with pytest.raises(InteractionTimeout) as caught:
        flow.send(json_reply(PENDING, 400))
    assert "expired" in str(caught.value)


def test_send_failures_thrown_in_end_the_flow() -> None:
    clock = FakeTime()
    flow = poll_device_code(a_code(clock), poll_request, clock=clock)
    next(flow)
    sent = next(flow)
    with pytest.raises(TransientError):
        advance(flow, sent, TransientError("kept failing"))


def test_advance_resumes_after_a_wait() -> None:
    clock = FakeTime()
    flow = poll_device_code(a_code(clock, interval=2), poll_request, clock=clock)
    step, result = start(flow)
    assert step == Wait(2.0) and result is None
    step, result = advance(flow, Wait(2.0), None)
    assert isinstance(step, HttpRequest) and result is None


def test_a_bad_timeout_is_refused_before_sending() -> None:
    flow = device_code_flow(
        build_device_code_request(AUTHORITY, CLIENT_ID, SCOPES), poll_request, on_code=print, clock=time.time, timeout=0
    )
    with pytest.raises(ConfigError):
        next(flow)


# -- the drivers, over respx ---------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def serve_polls(
    router: respx.MockRouter, *bodies: Dict[str, Any], device: Optional[Dict[str, Any]] = None
) -> respx.Route:
    router.post(DEVICE_URL).mock(return_value=httpx.Response(200, json=device or device_body()))
    replies = [httpx.Response(400 if "error" in b else 200, json=b) for b in bodies]
    return router.post(TOKEN_URL).mock(side_effect=replies)


def fake_policy(clock: FakeTime, **changes: Any) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, async_sleep=clock.async_sleep, clock=clock, jitter=False, **changes)


def test_sync_driver_sleeps_in_one_second_slices(router: respx.MockRouter) -> None:
    clock = FakeTime()
    token = serve_polls(router, PENDING, SLOW_DOWN, TOKEN_BODY)
    shown: List[DeviceCode] = []
    with EntraClient(CLIENT_ID, TENANT_ID, retry=fake_policy(clock, max_attempts=1), clock=clock) as client:
        tokens = client.acquire_by_device_code(on_code=shown.append)
        assert client.get_token().access_token == tokens.access_token  # stored in the cache
    assert [c.user_code for c in shown] == [USER_CODE]
    assert clock.sleeps == [1.0] * (5 + 5 + 10)
    assert token.call_count == 3  # pending and slow_down were polled through, never retried as errors
    polls = [dict(parse_qsl(call.request.content.decode())) for call in token.calls]
    assert {p["device_code"] for p in polls} == {DEVICE_CODE}
    # one client-request-id for the whole call (as MSAL): Entra's logs tie the polls to the flow
    ids = {call.request.headers["client-request-id"] for call in token.calls}
    assert len(ids) == 1 and str(uuid.UUID(ids.pop())) != ""


def test_sync_driver_timeout(router: respx.MockRouter) -> None:
    clock = FakeTime()
    token = serve_polls(router, *[PENDING] * 10)
    with EntraClient(CLIENT_ID, TENANT_ID, retry=fake_policy(clock), clock=clock) as client:
        with pytest.raises(InteractionTimeout):
            client.acquire_by_device_code(on_code=lambda code: None, timeout=7)
    assert sum(clock.sleeps) == 7.0 and max(clock.sleeps) <= 1.0
    assert token.call_count == 2


def test_transient_failures_of_a_poll_are_retried(router: respx.MockRouter) -> None:
    clock = FakeTime()
    router.post(DEVICE_URL).mock(return_value=httpx.Response(200, json=device_body(interval=1)))
    token = router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(400, json=PENDING),
            httpx.Response(200, json=TOKEN_BODY),
        ]
    )
    with EntraClient(CLIENT_ID, TENANT_ID, retry=fake_policy(clock), clock=clock) as client:
        client.acquire_by_device_code(on_code=lambda code: None)
    assert token.call_count == 3
    assert clock.sleeps == [1.0, 0.5, 1.0]  # interval, retry backoff, interval


def test_ctrl_c_stops_the_wait_at_once(router: respx.MockRouter) -> None:
    clock = FakeTime()
    token = serve_polls(router, *[PENDING] * 10)
    calls: List[float] = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 3:
            raise KeyboardInterrupt

    policy = RetryPolicy(sleep=sleep, clock=clock)
    with EntraClient(CLIENT_ID, TENANT_ID, retry=policy, clock=clock) as client:
        with pytest.raises(KeyboardInterrupt):
            client.acquire_by_device_code(on_code=lambda code: None)
    assert calls == [1.0, 1.0, 1.0]
    assert token.call_count == 0


def test_async_driver(router: respx.MockRouter) -> None:
    clock = FakeTime()
    token = serve_polls(router, PENDING, SLOW_DOWN, TOKEN_BODY)

    async def run() -> TokenSet:
        async with AsyncEntraClient(
            CLIENT_ID, TENANT_ID, retry=fake_policy(clock, max_attempts=1), clock=clock
        ) as client:
            tokens = await client.acquire_by_device_code(on_code=lambda code: None)
            assert (await client.get_token()).access_token == tokens.access_token
            return tokens

    assert asyncio.run(run()).access_token == TOKEN_BODY["access_token"]
    assert clock.sleeps == [5.0, 5.0, 10.0]
    assert token.call_count == 3


def test_async_cancellation_stops_polling_at_once(router: respx.MockRouter) -> None:
    token = serve_polls(router, *[PENDING] * 10, device=device_body(interval=30))

    async def run() -> float:
        shown = asyncio.Event()
        async with AsyncEntraClient(CLIENT_ID, TENANT_ID) as client:
            task = asyncio.create_task(client.acquire_by_device_code(on_code=lambda code: shown.set()))
            await asyncio.wait_for(shown.wait(), 5)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - started

    assert asyncio.run(run()) < 1.0
    assert token.call_count == 0


# -- end to end: the emulator ----------------------------------------------------------------------

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core.emulator import Emulator, EmulatorConfig  # noqa: E402

ALICE = "alice@contoso.onmicrosoft.com"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(replace(EmulatorConfig.default(), device_code_interval=1)) as running:
        yield running


@pytest.fixture(scope="module")
def public_client(emu: Emulator) -> str:
    return emu.config.clients[0].client_id


def approve_later(emu: Emulator, delay: float = 0.3) -> Callable[[DeviceCode], None]:
    def on_code(code: DeviceCode) -> None:
        threading.Timer(delay, emu.approve_device_code, (code.user_code, ALICE)).start()

    return on_code


def test_emulator_sync(emu: Emulator, public_client: str) -> None:
    polls = emu.count("token", grant_type=DEVICE_CODE_GRANT_TYPE)
    with EntraClient(public_client, emu.tenant_id, authority_host=emu.url) as client:
        tokens = client.acquire_by_device_code(on_code=approve_later(emu), timeout=30)
        assert tokens.refresh_token and (tokens.id_token_claims or {})["preferred_username"] == ALICE
        assert client.get_token().access_token == tokens.access_token
    assert emu.count("token", grant_type=DEVICE_CODE_GRANT_TYPE) - polls >= 1


def test_emulator_declined(emu: Emulator, public_client: str) -> None:
    def decline(code: DeviceCode) -> None:
        threading.Timer(0.2, emu.decline_device_code, (code.user_code,)).start()

    with EntraClient(public_client, emu.tenant_id, authority_host=emu.url) as client:
        with pytest.raises(AuthorizationDeclined):
            client.acquire_by_device_code(on_code=decline, timeout=30)


def test_emulator_async(emu: Emulator, public_client: str) -> None:
    async def run() -> TokenSet:
        codes: asyncio.Queue[DeviceCode] = asyncio.Queue()

        async def approver() -> None:
            code = await codes.get()
            await asyncio.sleep(0.3)
            emu.approve_device_code(code.user_code, ALICE)

        async with AsyncEntraClient(public_client, emu.tenant_id, authority_host=emu.url) as client:
            helper = asyncio.create_task(approver())
            tokens = await client.acquire_by_device_code(on_code=codes.put_nowait, timeout=30)
            await helper
            assert (await client.get_token()).access_token == tokens.access_token
            return tokens

    tokens = asyncio.run(run())
    assert (tokens.id_token_claims or {})["preferred_username"] == ALICE


def test_cli_timeout_in_process(emu: Emulator, public_client: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["device-code", "--tenant", emu.tenant_id, "--client-id", public_client, "--authority-host", emu.url]
    code = main([*argv, "--timeout", "1"], stdout=out, stderr=err)
    assert code == exit_code_for(InteractionTimeout) == 3
    assert "enter the code" in err.getvalue() and "within the time allowed" in err.getvalue()
    assert out.getvalue() == ""


def test_cli_subprocess(emu: Emulator, public_client: str) -> None:
    argv = ["device-code", "--tenant", emu.tenant_id, "--client-id", public_client, "--authority-host", emu.url]
    seen: List[str] = []

    def approve_from_stderr(stream: Any) -> None:
        for line in stream:
            seen.append(line)
            match = re.search(r"enter the code ([A-Z0-9]+)", line)
            if match:
                emu.approve_device_code(match.group(1), ALICE)

    command = [sys.executable, "-m", "oauth_core", *argv, "--json", "--timeout", "60"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        reader = threading.Thread(target=approve_from_stderr, args=(process.stderr,), daemon=True)
        reader.start()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.stdout is not None
        stdout = process.stdout.read()
        reader.join(5)
    assert process.returncode == 0, "".join(seen)
    data = json.loads(stdout)
    assert set(data) == {
        "token_type",
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "expires_in",
        "expires_at",
        "claims",
    }
    assert data["claims"]["upn"] == ALICE or data["claims"].get("unique_name") == ALICE
    assert any(f"{emu.url}/devicelogin" in line for line in seen)
