"""Workload identity and federated client assertions against the emulator, over loopback HTTP.

An ``httpx.Client`` of the test's own (its request hook reads each token request's form) shows
what the client really sent.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from oauth_core.core.errors import ConfigError, FederatedCredentialRejected
from oauth_core.drivers.federated import FederatedTokenFile, WorkloadIdentity
from oauth_core.drivers.retry import RetryPolicy
from oauth_core.drivers.sync import EntraClient
from oauth_core.emulator import Emulator, EmulatorConfig

GRAPH = "https://graph.microsoft.com"
ARM = "https://management.azure.com"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUBJECT = "system:serviceaccount:default:workload"


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False, clock=clock) as running:
        yield running


class Recorder:
    """An httpx.Client whose request hook keeps each token request's form."""

    def __init__(self) -> None:
        self.forms: List[Dict[str, str]] = []
        self.client = httpx.Client(trust_env=False, timeout=10, event_hooks={"request": [self.hook]})

    def hook(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.forms.append(dict(parse_qsl(request.read().decode())))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    try:
        yield rec
    finally:
        rec.client.close()


@pytest.fixture
def no_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=1, jitter=False, sleep=lambda s: None)


def claims_of(token: str) -> Dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_token_file_sent_as_client_assertion(emu: Emulator, recorder: Recorder, tmp_path: Any) -> None:
    path = emu.write_federated_token_file(str(tmp_path / "token"))
    env = dict(emu.identity_environment("workload"), AZURE_FEDERATED_TOKEN_FILE=path)
    with open(path) as handle:
        in_file = handle.read()
    client = WorkloadIdentity(environ=env, scopes=f"{GRAPH}/.default", http_client=recorder.client)
    tokens = client.get_token()
    (form,) = recorder.forms
    assert form["client_assertion"] == in_file and form["client_assertion_type"] == JWT_BEARER
    assert form["client_id"] == env["AZURE_CLIENT_ID"] and form["grant_type"] == "client_credentials"
    assert form["scope"] == f"{GRAPH}/.default" and "client_secret" not in form
    record = [r for r in emu.requests if r.endpoint == "token"][-1]
    assert record.path == f"/{env['AZURE_TENANT_ID']}/oauth2/v2.0/token" and record.status == 200
    claims = claims_of(tokens.access_token)
    assert claims["appid"] == env["AZURE_CLIENT_ID"] and claims["tid"] == env["AZURE_TENANT_ID"]
    assert claims["aud"] == GRAPH and claims["idtyp"] == "app"
    assert in_file not in repr(client) and "client_assertion=<redacted>" in repr(client)
    assert client.get_token().access_token == tokens.access_token and len(recorder.forms) == 1  # cached


def test_untrusted_subject_rejected(emu: Emulator, tmp_path: Any, no_retry: RetryPolicy) -> None:
    path = emu.write_federated_token_file(str(tmp_path / "token"), subject="system:serviceaccount:default:intruder")
    env = dict(emu.identity_environment("workload"), AZURE_FEDERATED_TOKEN_FILE=path)
    client = WorkloadIdentity(environ=env, retry=no_retry)
    with pytest.raises(FederatedCredentialRejected) as raised:
        client.get_token(scopes=f"{GRAPH}/.default")
    assert 700213 in raised.value.error_codes
    with open(path) as handle:
        assert handle.read() not in str(raised.value)
    client.close()


def test_file_reread_when_token_nears_expiry(
    emu: Emulator, recorder: Recorder, clock: Clock, tmp_path: Any, no_retry: RetryPolicy
) -> None:
    path = str(tmp_path / "token")
    start = clock.now
    emu.write_federated_token_file(path, lifetime=900)
    env = dict(emu.identity_environment("workload"), AZURE_FEDERATED_TOKEN_FILE=path)
    client = WorkloadIdentity(environ=env, http_client=recorder.client, clock=clock, retry=no_retry)
    try:
        client.get_token(scopes=f"{GRAPH}/.default")
        first = claims_of(recorder.forms[-1]["client_assertion"])
        assert first["sub"] == SUBJECT and first["exp"] == int(start) + 900

        # Far from exp: the file is not read again, even though it changed.
        emu.write_federated_token_file(path, lifetime=900)
        client.get_token(scopes=f"{ARM}/.default")
        assert claims_of(recorder.forms[-1]["client_assertion"])["jti"] == first["jti"]

        # Within 5 minutes of exp: the rotated file is read, its token is the one sent.
        clock.now = start + 700
        emu.write_federated_token_file(path, lifetime=3600)
        with open(path) as handle:
            rotated = handle.read()
        client.get_token()  # the default scope: Azure Databricks
        sent = recorder.forms[-1]["client_assertion"]
        assert sent == rotated and claims_of(sent)["jti"] != first["jti"]
        assert len(recorder.forms) == 3
    finally:
        clock.now = start
        client.close()


def test_rotated_untrusted_token_is_used(emu: Emulator, clock: Clock, tmp_path: Any, no_retry: RetryPolicy) -> None:
    """The re-read is real: a rotated file whose subject is not trusted makes the next request fail."""
    path = str(tmp_path / "token")
    start = clock.now
    emu.write_federated_token_file(path, lifetime=600)
    env = dict(emu.identity_environment("workload"), AZURE_FEDERATED_TOKEN_FILE=path)
    client = WorkloadIdentity(environ=env, clock=clock, retry=no_retry)
    try:
        client.get_token(scopes=f"{GRAPH}/.default")
        clock.now = start + 400
        emu.write_federated_token_file(path, subject="system:serviceaccount:other:app")
        with pytest.raises(FederatedCredentialRejected) as raised:
            client.get_token(scopes=f"{ARM}/.default")
        assert 700213 in raised.value.error_codes
    finally:
        clock.now = start
        client.close()


def test_federated_token_file_counts_reads(tmp_path: Any, emu: Emulator, clock: Clock) -> None:
    path = tmp_path / "token"
    start = clock.now
    path.write_text(emu.mint_federated_token(lifetime=600) + "\n")
    source = FederatedTokenFile(str(path), clock=clock)
    first = source()
    assert "\n" not in first and source() == first
    path.write_text(emu.mint_federated_token(lifetime=600))
    assert source() == first  # 600 s left: kept
    clock.now = start + 301
    try:
        assert source() == path.read_text() != first
    finally:
        clock.now = start
    assert str(path) in repr(source) and first not in repr(source)


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"]),
        (
            {"AZURE_CLIENT_ID": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"},
            ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID"],
        ),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/x", "AZURE_CLIENT_ID": "a", "AZURE_TENANT_ID": " "}, ["AZURE_TENANT_ID"]),
    ],
)
def test_missing_variables_named(given: Dict[str, str], missing: List[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        WorkloadIdentity(environ=given)
    message = str(raised.value)
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        assert (name in message) == (name in missing), (name, message)


def test_arguments_replace_variables(emu: Emulator, tmp_path: Any) -> None:
    path = emu.write_federated_token_file(str(tmp_path / "token"))
    env = emu.identity_environment("workload")
    client = WorkloadIdentity(
        environ={"AZURE_AUTHORITY_HOST": emu.url},
        client_id=env["AZURE_CLIENT_ID"],
        tenant_id=env["AZURE_TENANT_ID"],
        token_file=path,
    )
    with client:
        assert claims_of(client.get_token(scopes=f"{GRAPH}/.default").access_token)["appid"] == env["AZURE_CLIENT_ID"]


def test_missing_token_file_is_config_error(emu: Emulator, tmp_path: Any) -> None:
    env = dict(emu.identity_environment("workload"), AZURE_FEDERATED_TOKEN_FILE=str(tmp_path / "absent"))
    before = emu.count("token")
    with WorkloadIdentity(environ=env) as client, pytest.raises(ConfigError, match="cannot read the federated token"):
        client.get_token(scopes=f"{GRAPH}/.default")
    assert emu.count("token") == before


def test_callable_assertion_on_plain_client(emu: Emulator, recorder: Recorder) -> None:
    app = emu.identity_environment("workload")["AZURE_CLIENT_ID"]
    handed: List[str] = []

    def assertion() -> str:
        handed.append(emu.mint_federated_token())
        return handed[-1]

    client = EntraClient(
        app, emu.tenant_id, authority_host=emu.url, client_assertion=assertion, http_client=recorder.client
    )
    graph = client.acquire_for_client(scopes=f"{GRAPH}/.default")
    arm = client.acquire_for_client(scopes=f"{ARM}/.default")
    assert [f["client_assertion"] for f in recorder.forms] == handed and len(set(handed)) == 2  # one per request
    assert all(f["client_assertion_type"] == JWT_BEARER for f in recorder.forms)
    assert claims_of(graph.access_token)["appid"] == app and claims_of(arm.access_token)["aud"] == ARM


def test_raising_callable_becomes_config_error(emu: Emulator) -> None:
    app = emu.identity_environment("workload")["AZURE_CLIENT_ID"]
    secret = "hunter2-the-callables-secret"

    def assertion() -> str:
        raise RuntimeError(f"could not fetch the OIDC token with {secret}")

    client = EntraClient(app, emu.tenant_id, authority_host=emu.url, client_assertion=assertion)
    before = emu.count("token")
    with client, pytest.raises(ConfigError) as raised:
        client.acquire_for_client(scopes=f"{GRAPH}/.default")
    assert "RuntimeError" in str(raised.value) and emu.count("token") == before
    printed = "".join(traceback.format_exception(type(raised.value), raised.value, raised.value.__traceback__))
    assert secret not in printed and secret not in str(raised.value)


@pytest.mark.parametrize("returned", ["", "   ", None, 42])
def test_callable_returning_no_assertion(emu: Emulator, returned: Any) -> None:
    app = emu.identity_environment("workload")["AZURE_CLIENT_ID"]
    with EntraClient(app, emu.tenant_id, authority_host=emu.url, client_assertion=lambda: returned) as client:
        with pytest.raises(ConfigError, match="returned no assertion"):
            client.acquire_for_client(scopes=f"{GRAPH}/.default")


def test_assertion_and_secret_together_refused(emu: Emulator) -> None:
    with pytest.raises(ConfigError, match="one client credential"):
        EntraClient("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", emu.tenant_id, client_secret="s", client_assertion="a.b.c")
