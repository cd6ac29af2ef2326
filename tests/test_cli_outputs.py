"""``oauth-core token --output plain|json|exec-credential|az`` against the emulator, over loopback.

The shapes are exact: kubectl's ``client.authentication.k8s.io/v1`` ExecCredential (with an RFC
3339 UTC expiry to the second, as Go's metav1.Time parses it) and what ``az account
get-access-token`` prints (sorted keys, two-space indent, ``expiresOn`` in local time).
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from oauth_core.cli import main
from oauth_core.core.claims import unverified_claims
from oauth_core.emulator import Emulator, EmulatorConfig

USER, PASSWORD = "alice@contoso.onmicrosoft.com", "Alice-Passw0rd!"
PUBLIC_CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
RFC3339_UTC_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
AZ_LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emu:
        yield emu


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def signed_in(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The options naming the emulator's tenant and public client, with alice signed in (cached)."""
    where = ["--authority-host", emulator.url, "--tenant", emulator.tenant_id, "--client-id", PUBLIC_CLIENT]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", PASSWORD)
    code, _, err = run("password", "--username", USER, *where)
    assert code == 0, err
    return where


def token_json(where: List[str]) -> Dict[str, Any]:
    code, out, err = run("token", "--json", *where)
    assert code == 0, err
    data: Dict[str, Any] = json.loads(out)
    return data


def test_exec_credential_is_what_kubectl_reads(signed_in: List[str]) -> None:
    reference = token_json(signed_in)
    code, out, err = run("token", "--output", "exec-credential", *signed_in)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == 1  # one JSON object on one line
    credential = json.loads(out)
    assert credential == {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {"interactive": False},
        "status": {
            "token": reference["access_token"],
            "expirationTimestamp": credential["status"]["expirationTimestamp"],
        },
    }
    stamp = credential["status"]["expirationTimestamp"]
    assert RFC3339_UTC_SECONDS.match(stamp), stamp
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert int(parsed.timestamp()) == reference["expires_at"]
    assert parsed.timestamp() > time.time() + 300  # --min-validity's default


def test_az_is_what_az_account_get_access_token_prints(signed_in: List[str], emulator: Emulator) -> None:
    reference = token_json(signed_in)
    code, out, err = run("token", "--output", "az", *signed_in)
    assert code == 0, err
    data = json.loads(out)
    assert out == json.dumps(data, indent=2, sort_keys=True) + "\n"  # az's layout
    assert list(data) == ["accessToken", "expiresOn", "expires_on", "tenant", "tokenType"]  # no subscription
    assert data["accessToken"] == reference["access_token"]
    assert data["expires_on"] == reference["expires_at"] and isinstance(data["expires_on"], int)
    assert AZ_LOCAL_TIME.match(data["expiresOn"]), data["expiresOn"]
    assert data["expiresOn"] == datetime.fromtimestamp(data["expires_on"]).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert data["tenant"] == emulator.tenant_id == unverified_claims(data["accessToken"])["tid"]
    assert data["tokenType"] == "Bearer"


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset is POSIX only")
def test_az_expires_on_is_local_time(signed_in: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with monkeypatch.context() as patch:
            for zone, offset in (("UTC0", 0), ("EST+5", -5 * 3600), ("IST-5:30", 5 * 3600 + 1800)):
                patch.setenv("TZ", zone)
                time.tzset()
                code, out, err = run("token", "--output", "az", *signed_in)
                assert code == 0, err
                data = json.loads(out)
                utc = datetime.fromtimestamp(data["expires_on"], tz=timezone.utc).replace(tzinfo=None)
                local = datetime.strptime(data["expiresOn"], "%Y-%m-%d %H:%M:%S.%f")
                assert (local - utc).total_seconds() == offset, zone
    finally:
        time.tzset()  # TZ is back as it was


def test_plain_and_json_outputs(signed_in: List[str]) -> None:
    reference = token_json(signed_in)
    assert run("token", *signed_in) == (0, reference["access_token"] + "\n", "")
    assert run("token", "--output", "plain", *signed_in) == (0, reference["access_token"] + "\n", "")
    code, out, _ = run("token", "--output", "json", *signed_in)
    assert code == 0 and json.loads(out)["access_token"] == reference["access_token"]
    assert set(json.loads(out)) == set(reference)
    code, out, _ = run("token", "--output", "json", "--json", *signed_in)  # the same thing said twice
    assert code == 0 and json.loads(out)["access_token"] == reference["access_token"]


@pytest.mark.parametrize("output", ["plain", "exec-credential", "az"])
def test_json_with_another_output_is_a_usage_error(output: str) -> None:
    code, out, err = run("token", "--output", output, "--json")
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert (
        json.loads(line)["error_description"]
        == f"--json means --output json: give --output {output} or --json, not both"
    )
    code, out, err = run("token", "--json", "--output", output)
    assert code == 2 and out == "" and len(err.splitlines()) == 1


@pytest.mark.parametrize("value", ["yaml", "", "AZ", "exec_credential"])
def test_an_unknown_output_is_a_usage_error(value: str) -> None:
    code, out, err = run("token", "--output", value)
    assert code == 2 and out == ""
    assert err.startswith("oauth-core: error: argument --output: invalid choice") and len(err.splitlines()) == 1
    assert "exec-credential" in err


def test_an_error_prints_no_credential(emulator: Emulator) -> None:
    """Nothing cached: exit 1 with the hint on stderr, and nothing on stdout for kubectl to misread."""
    where = ["--authority-host", emulator.url, "--tenant", emulator.tenant_id, "--client-id", PUBLIC_CLIENT]
    code, out, err = run("token", "--output", "exec-credential", *where)
    assert code == 1 and out == "" and err.startswith("oauth-core: error:")


def use(monkeypatch: pytest.MonkeyPatch, env: Dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("source", "argv"),
    [
        ("appservice", ["--managed-identity"]),
        ("imds", ["--managed-identity"]),
        ("workload", ["--workload-identity"]),
        ("workload", ["--auto"]),
    ],
)
def test_every_token_source(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, source: str, argv: List[str]) -> None:
    use(monkeypatch, emulator.identity_environment(source))
    scope = ["--scope", "https://management.azure.com/.default"]
    code, out, err = run("token", *argv, *scope, "--json")
    assert code == 0, err
    reference = json.loads(out)
    code, out, err = run("token", *argv, *scope, "--output", "exec-credential")
    assert code == 0, err
    status = json.loads(out)["status"]
    assert status["token"] == reference["access_token"]
    assert (
        datetime.strptime(status["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        == reference["expires_at"]
    )
    code, out, err = run("token", *argv, *scope, "--output", "az")
    assert code == 0, err
    data = json.loads(out)
    assert data["accessToken"] == reference["access_token"] and data["expires_on"] == reference["expires_at"]
    assert data["tenant"] == emulator.tenant_id and data["tokenType"] == "Bearer"
    assert unverified_claims(data["accessToken"])["aud"] == "https://management.azure.com"
