"""The command line's credentials of the place: --managed-identity, --workload-identity, --auto.

Real HTTP over loopback to the emulator; IMDS is always a loopback address (the conftest points
AZURE_POD_IDENTITY_AUTHORITY_HOST at a closed port unless a test names the emulator).
"""

from __future__ import annotations

import io
import json
import socket
import stat
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from oauth_core.cli import main
from oauth_core.core.claims import unverified_claims
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emu:
        yield emu


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def records_since(emulator: Emulator, mark: int, endpoint: str) -> List[object]:
    return [r for r in emulator.requests[mark:] if r.endpoint == endpoint]


def use(monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_app_service_token_is_cached_and_the_header_never_shows(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    env = emulator.identity_environment("appservice")
    use(monkeypatch, env)
    mark = len(emulator.requests)
    code, out, err = run("token", "--managed-identity", "--json", "--verbose")
    assert code == 0, err
    printed = json.loads(out)
    assert unverified_claims(printed["access_token"])["aud"] == DATABRICKS
    [seen] = records_since(emulator, mark, "appservice")
    assert seen.param("api-version") == "2019-08-01" and seen.param("resource") == DATABRICKS
    assert "x-identity-header" in seen.header_names
    assert env["IDENTITY_HEADER"] not in out + err
    cache = isolated_env / "tokens.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600 and env["IDENTITY_HEADER"] not in cache.read_text()

    mark = len(emulator.requests)
    code, out2, err2 = run("token", "--managed-identity", "--verbose")
    assert code == 0 and out2.strip() == printed["access_token"]
    assert records_since(emulator, mark, "appservice") == []  # the second call sends nothing
    assert env["IDENTITY_HEADER"] not in out2 + err2


def test_imds_user_assigned_with_two_429s_retried(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, fast_retries: object
) -> None:
    use(monkeypatch, emulator.identity_environment("imds"))
    user = emulator.config.user_identities[0]
    emulator.inject("imds", Fault("status", status=429, retry_after=1), times=2)
    mark = len(emulator.requests)
    code, out, err = run("token", "--mi-client-id", user.client_id, "--no-cache")
    assert code == 0, err
    assert unverified_claims(out.strip())["appid"] == user.client_id
    seen = records_since(emulator, mark, "imds")
    assert [r.status for r in seen] == [429, 429, 200]
    assert all(r.param("client_id") == user.client_id and r.param("api-version") == "2018-02-01" for r in seen)
    assert all("metadata" in r.header_names for r in seen)


def test_management_scope_becomes_the_resource(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, emulator.identity_environment("appservice"))
    mark = len(emulator.requests)
    code, out, err = run("token", "--managed-identity", "--scope", "https://management.azure.com/.default")
    assert code == 0, err
    assert unverified_claims(out.strip())["aud"] == "https://management.azure.com"
    [seen] = records_since(emulator, mark, "appservice")
    assert seen.param("resource") == "https://management.azure.com"


def test_workload_identity_sends_the_file_as_a_client_assertion(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = emulator.identity_environment("workload")
    use(monkeypatch, env)
    mark = len(emulator.requests)
    code, out, err = run("token", "--workload-identity", "--json")
    assert code == 0, err
    claims = unverified_claims(json.loads(out)["access_token"])
    assert claims["appid"] == env["AZURE_CLIENT_ID"] and claims["tid"] == env["AZURE_TENANT_ID"]
    [grant] = [r for r in emulator.requests[mark:] if r.endpoint == "token"]
    assert grant.grant_type == "client_credentials"


def test_workload_identity_with_an_untrusted_subject_exits_1(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = emulator.identity_environment("workload")
    intruder = tmp_path / "token"
    intruder.write_text(emulator.mint_federated_token(subject="system:serviceaccount:default:intruder"))
    use(monkeypatch, {**env, "AZURE_FEDERATED_TOKEN_FILE": str(intruder)})
    code, out, err = run("token", "--workload-identity", "--no-cache")
    assert code == 1 and out == ""
    assert "AADSTS700213" in err and "Traceback" not in err


def test_auto_picks_workload_identity_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, emulator.identity_environment("workload"))
    code, out, err = run("token", "--auto", "--explain", "--no-cache")
    assert code == 0, err
    assert "yes workload_identity" in err and "no  environment" in err
    assert unverified_claims(out.strip())["appid"] == emulator.identity_environment("workload")["AZURE_CLIENT_ID"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("kind", ["closed", "silent"])
def test_auto_with_nothing_available_exits_1_fast_and_explains(
    kind: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    port = closed_port() if kind == "closed" else request.getfixturevalue("silent_port")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    code, out, err = run("token", "--auto", "--explain")
    elapsed = time.monotonic() - started
    assert code == 1 and out == ""
    assert elapsed < 3.0  # the goal is under 1 s: the probe waits 0.5 s at most
    lines = [line for line in err.splitlines() if line.startswith("oauth-core: no ")]
    names = [line.split(":")[1].split()[-1] for line in lines]
    assert names == ["environment", "workload_identity", "managed_identity", "shared_cache", "(IMDS)"]
    assert f"127.0.0.1:{port}" in lines[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--managed-identity", "--workload-identity"], "choose one"),
        (["--mi-client-id", "a", "--mi-object-id", "b"], "once"),
        (["--workload-identity", "--mi-client-id", "a"], "goes with --managed-identity"),
        (["--explain"], "--explain goes with --auto"),
        (["--mi-client-id", " "], "is empty"),
        (["--auto", "--account", "x"], "do not go with"),
    ],
)
def test_flag_mixes_are_usage_errors(argv: List[str], message: str) -> None:
    code, out, err = run("token", *argv)
    assert code == 2 and message in err and out == ""


def test_databricks_with_a_managed_identity(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_auth import StandIn

    use(monkeypatch, emulator.identity_environment("appservice"))
    workspace = StandIn()
    try:
        code, out, err = run(
            "databricks", "--managed-identity", "--host", workspace.url, "--no-cache", "GET", "/api/2.0/clusters/list"
        )
        assert code == 0, err
        assert json.loads(out)["clusters"][0]["cluster_id"] == "0123-456789-abcde"
        [call] = workspace.requests
        token = call.headers["authorization"].split(" ", 1)[1]
        assert unverified_claims(token)["aud"] == DATABRICKS
        assert not any(r.path.startswith("/aad/auth") for r in workspace.requests)  # no tenant lookup
    finally:
        workspace.close()
