"""CI jobs' OIDC tokens as federated client assertions (GitHub Actions, Azure Pipelines), over loopback."""

from __future__ import annotations

from typing import Iterator

import pytest

from oauth_core import (
    CiOidcToken,
    ConfigError,
    EntraClient,
    InsecureAuthorityError,
    ResponseFormatError,
    RetryPolicy,
)
from oauth_core.emulator import Emulator, EmulatorConfig
from tests.test_auth import StandIn, json_reply

TRUSTED = "system:serviceaccount:default:workload"  # the subject the emulator's workload app trusts


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emu:
        yield emu


@pytest.fixture
def ci() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


def github_env(ci: StandIn) -> dict:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{ci.url}/_apis/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "job-bearer-secret",
    }


def test_a_github_actions_token_gets_an_app_token(emulator: Emulator, ci: StandIn) -> None:
    ci.queue("/_apis/token", json_reply(200, {"value": emulator.mint_federated_token(subject=TRUSTED)}))
    env = emulator.identity_environment("workload")
    assertion = CiOidcToken(environ=github_env(ci))
    with EntraClient(
        env["AZURE_CLIENT_ID"], env["AZURE_TENANT_ID"], authority_host=emulator.url, client_assertion=assertion
    ) as app:
        tokens = app.acquire_for_client()
        again = app.acquire_for_client()
    assert tokens.claims is not None and tokens.claims["appid"] == env["AZURE_CLIENT_ID"]
    assert again.access_token
    [asked] = ci.requests  # the token is kept until it nears its exp: one request to the CI service
    assert asked.method == "GET" and asked.path.endswith("api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange")
    assert asked.headers["authorization"] == "Bearer job-bearer-secret"
    assert "job-bearer-secret" not in repr(assertion)


def test_azure_pipelines_posts_for_its_service_connection(emulator: Emulator, ci: StandIn) -> None:
    ci.queue("/oidc", json_reply(200, {"oidcToken": emulator.mint_federated_token(subject=TRUSTED)}))
    env = {"SYSTEM_OIDCREQUESTURI": f"{ci.url}/oidc", "SYSTEM_ACCESSTOKEN": "pipeline-secret"}
    token = CiOidcToken(environ=env, service_connection_id="conn 1")()
    assert token.count(".") == 2
    [asked] = ci.requests
    assert asked.method == "POST" and asked.path == "/oidc?api-version=7.1&serviceConnectionId=conn%201"
    assert asked.headers["x-tfs-fedauthredirect"] == "Suppress"


def test_missing_variables_are_named() -> None:
    with pytest.raises(ConfigError, match="ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        CiOidcToken(environ={})


def test_plain_http_to_a_remote_host_is_refused() -> None:
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": "http://example.com/t?x=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    with pytest.raises(InsecureAuthorityError):
        CiOidcToken(environ=env)


@pytest.mark.parametrize(
    "reply, error",
    [
        ((403, {"content-type": "application/json"}, b'{"message":"no id-token permission"}'), ConfigError),
        ((200, {"content-type": "text/html"}, b"<html>proxy</html>"), ResponseFormatError),
        ((200, {"content-type": "application/json"}, b'{"value": 3}'), ResponseFormatError),
    ],
)
def test_refusals_and_bad_answers_are_typed(ci: StandIn, reply: tuple, error: type) -> None:
    ci.queue("/_apis/token", reply)
    with pytest.raises(error) as caught:
        CiOidcToken(environ=github_env(ci), retry=RetryPolicy(max_attempts=1))()
    assert "job-bearer-secret" not in str(caught.value)
