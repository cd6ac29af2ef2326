"""`oauth-core bench` against the emulator over real sockets: phases, rotation, throttling, stops, flags."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core.benchmark import BenchSettings, throttle_warning
from oauth_core.cli import main
from oauth_core.cli.demo import scripted_sign_in
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

JSON_KEYS = {"config", "summary", "phases", "statuses", "throttled", "errors", "samples"}
PHASE_NAMES = {"total", "ttfb", "connect", "tls", "dns"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Dict[str, Any]:
        data: Dict[str, Any] = json.loads(self.out)
        return data


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emulator.url)
    monkeypatch.setenv("AZURE_TENANT_ID", emulator.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emulator.config.clients[0].client_id)
    yield
    emulator.clear_faults()


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Any:
    def invoke(argv: List[str], stdin: Optional[str] = None) -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


def alice(emulator: Emulator) -> Any:
    return emulator.config.users[0]


def sign_in_by_password(run: Any, emulator: Emulator) -> str:
    """Put alice's tokens in the CLI's cache; returns the refresh token it got."""
    user = alice(emulator)
    result = run(["password", "-u", user.username, "--password-stdin", "--json"], stdin=user.password + "\n")
    assert result.code == 0, result.err
    token: str = result.json()["refresh_token"]
    return token


def assert_no_secret(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.out and secret not in result.err
    assert "eyJ" not in result.out + result.err  # no JWT (access or id token) either


def password_bench(run: Any, emulator: Emulator, *extra: str, password: Optional[str] = None) -> Result:
    user = alice(emulator)
    argv = ["bench", "--grant", "password", "-u", user.username, "--password-stdin", *extra]
    result: Result = run(argv, stdin=(password or user.password) + "\n")
    return result


# -- the grants -------------------------------------------------------------------------------------


def test_refresh_rotates_over_a_long_run(run: Any, emulator: Emulator) -> None:
    first = sign_in_by_password(run, emulator)
    before = emulator.count("token", "refresh_token")
    result = run(["bench", "--grant", "refresh", "-n", "30", "--json"])
    assert result.code == 0, result.err
    data = result.json()
    # The emulator revokes a redeemed refresh token: 32 successes mean each used the newest one.
    assert data["statuses"] == {"200": 32}
    assert data["summary"]["ok"] == 30 and data["errors"] == {}
    assert emulator.count("token", "refresh_token") - before == 32
    assert_no_secret(result, first, alice(emulator).password)
    after = run(["refresh", "--json"])  # the newest refresh token was saved back to the cache
    assert after.code == 0, after.err


def test_refresh_token_from_stdin(run: Any, emulator: Emulator) -> None:
    token = sign_in_by_password(run, emulator)
    result = run(["bench", "--grant", "refresh", "--refresh-token-stdin", "-n", "3", "--json"], stdin=token + "\n")
    assert result.code == 0, result.err
    assert result.json()["summary"]["ok"] == 3
    assert_no_secret(result, token)


def test_password_prints_percentiles_phases_and_a_histogram(run: Any, emulator: Emulator) -> None:
    result = password_bench(run, emulator, "-n", "10")
    assert result.code == 0, result.err
    for text in ("p50", "p90", "p99", "max", "total", "ttfb", "connect", "tls", "dns*", "req/s", "200 x12"):
        assert text in result.out
    assert "total latency (ms):" in result.out and "|#" in result.out
    assert "getaddrinfo" in result.out  # says how DNS is measured
    assert "warning:" not in result.err  # loopback: no throttling warning
    assert_no_secret(result, alice(emulator).password)


def test_password_from_the_environment(run: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", alice(emulator).password)
    result = run(["bench", "--grant", "password", "-u", alice(emulator).username, "-n", "2", "--json"])
    assert result.code == 0, result.err
    assert result.json()["summary"]["ok"] == 2


def test_client_credentials(run: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    confidential = emulator.config.clients[1]
    assert confidential.secret
    monkeypatch.setenv("AZURE_CLIENT_ID", confidential.client_id)
    argv = ["bench", "--grant", "client-credentials", "--client-secret-stdin", "-n", "4", "--json"]
    result = run(argv, stdin=confidential.secret + "\n")
    assert result.code == 0, result.err
    assert result.json()["statuses"] == {"200": 6}
    assert_no_secret(result, confidential.secret)


def test_auth_code_replay_measures_refusals(run: Any, emulator: Emulator) -> None:
    started = run(["authorize-url", "--json"])
    assert started.code == 0, started.err
    location = scripted_sign_in(started.json()["url"], alice(emulator).username, alice(emulator).password)
    query = parse_qs(urlsplit(location).query)
    code, state = query["code"][0], query["state"][0]
    argv = ["bench", "--grant", "auth-code-replay", f"--code={code}", f"--state={state}", "-n", "6", "--warmup", "0"]
    result = run([*argv, "--json"])
    assert result.code == 0, result.err  # refusals are what a replay measures: no stop
    data = result.json()
    assert data["statuses"] == {"200": 1, "400": 5}
    assert data["errors"]["AADSTS54005"]["count"] == 5
    assert data["errors"]["AADSTS54005"]["error"] == "invalid_grant"
    assert data["phases"]["total"]["count"] == 6  # refusal latency is measured
    assert_no_secret(result, code, state)


# -- measurements ------------------------------------------------------------------------------------


def test_json_is_complete_and_ordered(run: Any, emulator: Emulator) -> None:
    result = password_bench(run, emulator, "-n", "8", "--warmup", "1", "--json")
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1
    data = result.json()
    assert set(data) == JSON_KEYS
    assert set(data["phases"]) == PHASE_NAMES
    assert data["config"]["grant"] == "password" and data["config"]["n"] == 8
    assert data["summary"]["exchanges"] == 8 and data["summary"]["requests"] == 9
    assert data["summary"]["requests_per_second"] > 0
    for name, stats in data["phases"].items():
        if stats["count"]:
            assert stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"], name
    assert data["phases"]["tls"]["count"] == 0  # plain http
    samples = data["samples"]
    assert [s["index"] for s in samples] == list(range(9))
    assert [s["warmup"] for s in samples] == [True] + [False] * 8
    first, rest = samples[0], samples[1:]
    assert first["new_connection"] and first["phases"]["connect"] > 0
    for sample in rest:  # one worker, keep-alive: the connection is reused
        assert not sample["new_connection"]
        assert sample["phases"]["connect"] == sample["phases"]["tls"] == sample["phases"]["dns"] == 0
    for sample in samples:
        assert sample["status"] == 200 and sample["error"] is None and sample["error_code"] is None
        assert 0 < sample["phases"]["ttfb"] <= sample["phases"]["total"]
    text = json.dumps(data)
    assert alice(emulator).password not in text and "eyJ" not in text


def test_tls_phase_over_https(run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    with Emulator(EmulatorConfig.default(), port=0, tls=True, ca_dir=str(tmp_path)) as secure:
        assert secure.ca_bundle
        monkeypatch.setenv("SSL_CERT_FILE", secure.ca_bundle)
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", secure.url)
        result = password_bench(run, secure, "-n", "3", "--json")
    assert result.code == 0, result.err
    data = result.json()
    first, rest = data["samples"][0], data["samples"][1:]
    assert first["phases"]["tls"] > 0 and first["phases"]["connect"] > 0
    assert all(s["phases"]["tls"] == 0 for s in rest)
    assert data["phases"]["tls"]["count"] == 1


def test_concurrency_opens_one_connection_per_worker(run: Any, emulator: Emulator) -> None:
    result = password_bench(run, emulator, "-n", "20", "--concurrency", "4", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["summary"]["ok"] == 20
    assert data["summary"]["new_connections"] == 4
    assert {s["worker"] for s in data["samples"]} == {0, 1, 2, 3}
    assert data["phases"]["connect"]["count"] == 4


def test_429_storm_is_reported_as_throttling(run: Any, emulator: Emulator) -> None:
    emulator.inject("token", Fault("status", status=429, retry_after=1), times=3)
    result = password_bench(run, emulator, "-n", "10", "--warmup", "0", "--max-retry-after", "0.2", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["statuses"] == {"200": 7, "429": 3}
    assert data["throttled"] == {"count": 3, "retry_after": [1.0, 1.0, 1.0], "paused_s": 0.6}
    samples = data["samples"]
    for before, after in zip(samples, samples[1:]):
        if before["status"] == 429:  # the pause (capped at 0.2 s) came before the next request
            assert after["at"] - before["at"] >= 0.2
            assert before["retry_after"] == 1.0
    assert data["phases"]["total"]["count"] == 7  # 429s are not latency samples
    assert data["errors"] == {}


def test_429_storm_text(run: Any, emulator: Emulator) -> None:
    emulator.inject("token", Fault("status", status=429, retry_after=1), times=3)
    result = password_bench(run, emulator, "-n", "5", "--warmup", "0", "--max-retry-after", "0.1")
    assert result.code == 0, result.err
    assert "throttled:  3 x 429, Retry-After: 1 s, 1 s, 1 s" in result.out
    assert "429 x3" in result.out


# -- stops and safety --------------------------------------------------------------------------------


def test_repeated_invalid_grant_stops_the_run(run: Any, emulator: Emulator) -> None:
    result = password_bench(run, emulator, "-n", "20", "--json", password="not-the-password")
    assert result.code == 1
    data = result.json()
    assert len(data["samples"]) == 2
    assert data["errors"]["AADSTS50126"]["count"] == 2
    assert "twice in a row" in data["summary"]["stopped"]
    error = json.loads(result.err.strip().splitlines()[-1])
    assert error["error"] == "benchmark_stopped" and "lock the account" in error["hint"]
    assert_no_secret(result, "not-the-password")


def test_dead_refresh_token_stops_with_text(run: Any, emulator: Emulator) -> None:
    result = run(["bench", "--grant", "refresh", "--refresh-token-stdin"], stdin="not-a-refresh-token\n")
    assert result.code == 1
    assert "oauth-core: error: stopped: the service refused the grant twice in a row: invalid_grant" in result.err
    assert "hint:" in result.err
    assert_no_secret(result, "not-a-refresh-token")


def test_refused_refresh_with_workers_suggests_one(run: Any, emulator: Emulator) -> None:
    sign_in_by_password(run, emulator)
    emulator.revoke_refresh_tokens(alice(emulator).username)
    result = run(["bench", "--grant", "refresh", "-n", "20", "--concurrency", "2"])
    assert result.code == 1
    # Workers share the starting refresh token; where redeemed ones are revoked, one chain survives.
    assert "--concurrency 1" in result.err and "AADSTS50173" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--grant", "password", "-n", "0"],
        ["bench", "--grant", "password", "-n", "10001"],
        ["bench", "--grant", "password", "--concurrency", "0"],
        ["bench", "--grant", "password", "--concurrency", "65"],
        ["bench", "--grant", "password", "--warmup", "-1"],
        ["bench", "--grant", "password", "-n", "many"],
        ["bench", "--grant", "implicit"],
        ["bench"],
        ["bench", "--grant", "password", "-u", "a@b.c", "--password", "hunter2"],
        ["bench", "--grant", "refresh", "--password-stdin"],
        ["bench", "--grant", "refresh", "--code", "abc"],
        ["bench", "--grant", "auth-code-replay"],
        ["bench", "--grant", "password"],
        ["bench", "--grant", "refresh"],  # nothing cached
        ["bench", "--grant", "client-credentials"],  # no credential
    ],
)
def test_bad_flags_exit_2(run: Any, argv: List[str]) -> None:
    result = run(argv)
    assert result.code == 2, result.err
    assert result.err.startswith("oauth-core: error:")
    assert "hunter2" not in result.err


def test_progress_bar_on_request(run: Any, emulator: Emulator) -> None:
    result = password_bench(run, emulator, "-n", "5", "--progress")
    assert result.code == 0, result.err
    assert "\r[" in result.err and "7/7" in result.err and result.err.endswith("\n")
    quiet = password_bench(run, emulator, "-n", "2")
    assert "\r[" not in quiet.err  # stderr is not a terminal


def test_plot_without_matplotlib_names_the_extra(
    run: Any, emulator: Emulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra looks like
    target = tmp_path / "latency.png"
    sent = emulator.count("token")
    result = password_bench(run, emulator, "-n", "3", "--plot", str(target))
    assert result.code == 2
    assert "oauth-core[bench]" in result.err and "matplotlib" in result.err
    assert not target.exists()
    assert emulator.count("token") == sent  # checked before anything is sent


def test_plot(run: Any, emulator: Emulator, tmp_path: Any) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the bench extra)")
    target = tmp_path / "latency.png"
    result = password_bench(run, emulator, "-n", "3", "--plot", str(target))
    assert result.code == 0, result.err
    assert target.read_bytes().startswith(b"\x89PNG")
    assert f"plot written to {target}" in result.err


def test_warning_only_for_real_tenants() -> None:
    settings = BenchSettings(grant="refresh", n=100)
    warning = throttle_warning("https://login.microsoftonline.com/contoso/oauth2/v2.0/token", settings)
    assert warning is not None and "throttle" in warning and "-n" in warning and "102" in warning
    assert throttle_warning("http://127.0.0.1:8400/contoso/oauth2/v2.0/token", settings) is None
    assert throttle_warning("http://localhost:8400/contoso/oauth2/v2.0/token", settings) is None


def test_unreachable_authority_exits_3(run: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")  # discard port: connection refused
    result = password_bench(run, emulator, "-n", "2", "--warmup", "0", "--json")
    assert result.code == 3
    data = result.json()
    assert data["statuses"] == {"none": 2}
    assert data["errors"]["ConnectError"]["count"] == 2
