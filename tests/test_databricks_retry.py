"""Azure Databricks' own 429 and 503: retried with its Retry-After, within the call's budget; typed errors after.

The workspace is :class:`test_auth.StandIn` on a loopback socket, tokens come from the emulator, and
waits are recorded by the client's :class:`RetryPolicy` instead of slept (except in the CLI runs).
Also here: the Azure Resource Manager scope of ``--sp-management-token`` follows the authority's cloud.
"""

from __future__ import annotations

import io
import json
import time
from types import SimpleNamespace
from typing import Any, Iterator, List, Optional, Tuple

import httpx
import pytest
import respx

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from test_auth import StandIn, json_reply

from oauth_core import EntraClient, RetryPolicy, TransientError, TransportError
from oauth_core.cli import main
from oauth_core.cli.databricks import _management_token
from oauth_core.core.throttle import Throttled
from oauth_core.emulator import Emulator, EmulatorConfig
from oauth_core.integrations.databricks import MANAGEMENT_SCOPE, call, management_scope

CLUSTERS = "/api/2.0/clusters/list"
BUSY = {"error_code": "TOO_MANY_REQUESTS", "message": "Too many requests"}


class Recorder:
    def __init__(self) -> None:
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture
def workspace() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _client(emulator: Emulator, recorder: Recorder, timeout: float = 5.0, **policy: Any) -> EntraClient:
    user = emulator.config.users[0]
    client = EntraClient(
        emulator.config.clients[0].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        timeout=timeout,
        retry=RetryPolicy(sleep=recorder.sleep, jitter=False, initial_backoff=0.25, **policy),
    )
    client.acquire_by_password(user.username, user.password)
    return client


def api_calls(server: StandIn) -> List[Any]:
    return [r for r in server.requests if r.path.startswith("/api/")]


def test_429_with_retry_after_is_waited_then_answered(
    emulator: Emulator, workspace: StandIn, recorder: Recorder
) -> None:
    workspace.queue(CLUSTERS, json_reply(429, BUSY, **{"retry-after": "2"}), times=2)
    with _client(emulator, recorder) as client:
        status, body = call(client, workspace.url, "GET", CLUSTERS)
    assert (status, body) == (200, {"clusters": [{"cluster_id": "0123-456789-abcde"}]})
    assert recorder.waits == [2.0, 2.0] and len(api_calls(workspace)) == 3


def test_503_without_retry_after_backs_off(emulator: Emulator, workspace: StandIn, recorder: Recorder) -> None:
    workspace.queue(CLUSTERS, json_reply(503, {"error_code": "TEMPORARILY_UNAVAILABLE"}), times=2)
    with _client(emulator, recorder) as client:
        assert call(client, workspace.url, "GET", CLUSTERS)[0] == 200
    assert recorder.waits == [0.25, 0.5]


def test_a_post_is_sent_again_whole_with_its_token(emulator: Emulator, workspace: StandIn, recorder: Recorder) -> None:
    path = "/api/2.0/clusters/start"
    workspace.queue(path, json_reply(503, {}, **{"retry-after": "1"}), times=1)
    workspace.queue(path, json_reply(200, {}), times=1)
    with _client(emulator, recorder) as client:
        assert call(client, workspace.url, "POST", path, json_body={"cluster_id": "c1"}) == (200, {})
    first, second = api_calls(workspace)
    assert json.loads(first.body) == json.loads(second.body) == {"cluster_id": "c1"}
    assert first.headers["authorization"] == second.headers["authorization"]


def test_a_retry_after_beyond_the_budget_fails_at_once(
    emulator: Emulator, workspace: StandIn, recorder: Recorder
) -> None:
    workspace.queue(CLUSTERS, json_reply(429, BUSY, **{"retry-after": "30"}), times=3)
    with _client(emulator, recorder, timeout=2.0) as client:  # a budget of 2 x 4 + 1.75 s
        started = time.monotonic()
        with pytest.raises(Throttled) as caught:
            call(client, workspace.url, "GET", CLUSTERS, timeout=2.0)
    assert time.monotonic() - started < 1.5 and recorder.waits == []
    error = caught.value
    assert (error.status, error.retry_after, error.attempts) == (429, 30.0, 1)
    assert str(error).startswith("Azure Databricks answered HTTP 429 and asked to wait 30 s")
    assert "deadline" in str(error) and error.until > time.time() + 25
    assert len(api_calls(workspace)) == 1


def test_retries_spent_raise_a_transient_error(emulator: Emulator, workspace: StandIn, recorder: Recorder) -> None:
    workspace.queue(CLUSTERS, json_reply(503, {"error_code": "TEMPORARILY_UNAVAILABLE"}), times=5)
    with _client(emulator, recorder, max_attempts=3) as client:
        with pytest.raises(TransientError) as caught:
            call(client, workspace.url, "GET", CLUSTERS)
    assert not isinstance(caught.value, Throttled)
    assert (caught.value.status, caught.value.attempts, caught.value.waits) == (503, 3, (0.25, 0.5))
    assert str(caught.value).startswith("Azure Databricks kept failing: HTTP 503 after 3 attempt(s)")


def test_retries_spent_on_retry_after_raise_throttled(
    emulator: Emulator, workspace: StandIn, recorder: Recorder
) -> None:
    workspace.queue(CLUSTERS, json_reply(429, BUSY, **{"retry-after": "1"}), times=5)
    with _client(emulator, recorder, max_attempts=2) as client:
        with pytest.raises(Throttled) as caught:
            call(client, workspace.url, "GET", CLUSTERS)
    assert caught.value.attempts == 2 and recorder.waits == [1.0] and "2 attempt(s) were spent" in str(caught.value)


def test_other_failures_are_answers_not_retried(emulator: Emulator, workspace: StandIn, recorder: Recorder) -> None:
    workspace.queue(CLUSTERS, json_reply(500, {"error_code": "INTERNAL_ERROR"}), times=2)
    with _client(emulator, recorder) as client:
        assert call(client, workspace.url, "GET", CLUSTERS) == (500, {"error_code": "INTERNAL_ERROR"})
    assert recorder.waits == [] and len(api_calls(workspace)) == 1


def test_a_given_policy_wins_over_the_clients(emulator: Emulator, workspace: StandIn, recorder: Recorder) -> None:
    workspace.queue(CLUSTERS, json_reply(503, {}), times=2)
    own = Recorder()
    with _client(emulator, recorder) as client:
        with pytest.raises(TransientError):
            call(client, workspace.url, "GET", CLUSTERS, retry=RetryPolicy(max_attempts=2, sleep=own.sleep))
    assert recorder.waits == [] and len(own.waits) == 1


# -- unit: the client over respx ---------------------------------------------------------------------------


class FakeClient:
    """Just enough of a client for DatabricksAuth: a token, a retry policy."""

    def __init__(self, recorder: Recorder) -> None:
        self.retry = RetryPolicy(sleep=recorder.sleep, jitter=False)
        self.scopes = ("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",)

    def get_token(self, **options: Any) -> Any:
        return SimpleNamespace(access_token="t0ken", expires_at=time.time() + 3600)


HOST = "https://adb-1234567890123456.7.azuredatabricks.net"


@respx.mock
def test_retry_after_ms_and_http_date_are_understood(recorder: Recorder) -> None:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
    route = respx.get(HOST + CLUSTERS).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after-ms": "1500"}),
            httpx.Response(503, headers={"retry-after": later}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    assert call(FakeClient(recorder), HOST, "GET", CLUSTERS) == (200, {"ok": True})  # type: ignore[arg-type]
    assert route.call_count == 3 and recorder.waits[0] == 1.5 and 1 < recorder.waits[1] <= 3


@respx.mock
def test_a_network_failure_is_not_retried(recorder: Recorder) -> None:
    respx.get(HOST + CLUSTERS).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransportError, match="ConnectError") as caught:
        call(FakeClient(recorder), HOST, "GET", CLUSTERS)  # type: ignore[arg-type]
    assert not isinstance(caught.value, TransientError) and recorder.waits == []


# -- the CLI ------------------------------------------------------------------------------------------


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_signed_in(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    user = emulator.config.users[0]
    common = ["--client-id", emulator.config.clients[0].client_id, "--authority-host", emulator.url]
    common += ["--tenant", emulator.tenant_id]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", user.password)
    code, _, err = run("password", *common, "-u", user.username)
    assert code == 0, err
    return common


def test_cli_waits_out_a_short_retry_after(cli_signed_in: List[str], workspace: StandIn) -> None:
    workspace.queue(CLUSTERS, json_reply(429, BUSY, **{"retry-after": "1"}), times=1)
    started = time.monotonic()
    code, out, err = run("databricks", *cli_signed_in, "--host", workspace.url, "GET", CLUSTERS)
    assert code == 0, err
    assert json.loads(out)["clusters"] and 1 <= time.monotonic() - started < 4
    assert len(api_calls(workspace)) == 2


def test_cli_exits_3_and_says_when_to_retry(cli_signed_in: List[str], workspace: StandIn) -> None:
    workspace.queue(CLUSTERS, json_reply(429, BUSY, **{"retry-after": "120"}), times=2)
    started = time.monotonic()
    code, out, err = run("databricks", *cli_signed_in, "--timeout", "3", "--host", workspace.url, "GET", CLUSTERS)
    assert code == 3 and out == "" and time.monotonic() - started < 2
    assert "Azure Databricks answered HTTP 429 and asked to wait 120 s" in err
    assert "hint: The service asked to wait: run the command again after" in err
    assert len(api_calls(workspace)) == 1


# -- the Azure Resource Manager scope of each cloud ----------------------------------------------------


@pytest.mark.parametrize(
    ("authority", "scope"),
    [
        (None, "https://management.core.windows.net//.default"),
        ("https://login.microsoftonline.com", "https://management.core.windows.net//.default"),
        ("login.windows.net", "https://management.core.windows.net//.default"),
        ("public", "https://management.core.windows.net//.default"),
        ("https://login.microsoftonline.us", "https://management.core.usgovcloudapi.net//.default"),
        ("https://LOGIN.USGOVCLOUDAPI.NET/", "https://management.core.usgovcloudapi.net//.default"),
        ("usgov", "https://management.core.usgovcloudapi.net//.default"),
        ("https://login.partner.microsoftonline.cn", "https://management.core.chinacloudapi.cn//.default"),
        ("login.chinacloudapi.cn", "https://management.core.chinacloudapi.cn//.default"),
        ("china", "https://management.core.chinacloudapi.cn//.default"),
        ("http://127.0.0.1:8400", "https://management.core.windows.net//.default"),
        ("https://[::1", "https://management.core.windows.net//.default"),
    ],
)
def test_management_scope_follows_the_cloud(authority: Optional[str], scope: str) -> None:
    assert management_scope(authority) == scope


@pytest.mark.parametrize(
    ("host", "scope"),
    [
        ("https://login.microsoftonline.us", "https://management.core.usgovcloudapi.net//.default"),
        ("https://login.partner.microsoftonline.cn", "https://management.core.chinacloudapi.cn//.default"),
        ("https://login.microsoftonline.com", MANAGEMENT_SCOPE),
    ],
)
def test_sp_management_token_asks_for_the_clouds_scope(host: str, scope: str) -> None:
    asked: List[Any] = []

    class ServicePrincipal:
        authority = SimpleNamespace(host=host)

        def acquire_for_client(self, *, scopes: Any) -> Any:
            asked.append(scopes)
            return SimpleNamespace(access_token="arm")

    class Identity:  # a managed identity knows no authority: the public cloud's scope
        def get_token(self, *, scopes: Any) -> Any:
            asked.append(scopes)
            return SimpleNamespace(access_token="arm")

    assert _management_token(ServicePrincipal(), io.StringIO()) == "arm"
    assert _management_token(Identity(), io.StringIO()) == "arm"
    assert asked == [scope, MANAGEMENT_SCOPE]
