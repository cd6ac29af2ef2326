"""Claims requests and client capabilities, and the routing headers MSAL sends (X-AnchorMailbox)."""

from __future__ import annotations

import io
import json
from typing import Dict, Iterator, List, Tuple
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from oauth_core import ConfigError, EntraClient, InteractionRequired, MemoryTokenCache
from oauth_core.cli import main
from oauth_core.core.grants import claims_parameter
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

CP1 = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
STEP_UP_CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["c1b1c1d1-0000-0000-0000-000000000001"]}}}'
STEP_UP = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": "AADSTS50076: Due to a configuration change made by your administrator, "
        "you must use multi-factor authentication to access the resource.",
        "error_codes": [50076],
        "suberror": "basic_action",
        "claims": STEP_UP_CLAIMS,
        "trace_id": "00000000-0000-0000-0000-00000000000a",
        "correlation_id": "00000000-0000-0000-0000-00000000000b",
    }
)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


class Spy:
    """An httpx client that records the token requests' forms and headers."""

    def __init__(self) -> None:
        self.sent: List[Tuple[Dict[str, str], httpx.Headers]] = []
        self.http = httpx.Client(trust_env=False, timeout=10, event_hooks={"request": [self.hook]})

    def hook(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.sent.append((dict(parse_qsl(request.read().decode())), request.headers))


@pytest.fixture
def spy() -> Iterator[Spy]:
    recorder = Spy()
    yield recorder
    recorder.http.close()


def signed_in(emu: Emulator, spy: Spy, **options: object) -> EntraClient:
    client = EntraClient(
        emu.config.clients[0].client_id,
        emu.tenant_id,
        authority_host=emu.url,
        http_client=spy.http,
        cache=MemoryTokenCache(),
        **options,  # type: ignore[arg-type]
    )
    user = emu.config.users[0]
    client.acquire_by_password(user.username, user.password)
    return client


def test_capabilities_are_merged_into_every_claims_request() -> None:
    assert claims_parameter(None) is None
    assert json.loads(claims_parameter(None, ["cp1"]) or "") == json.loads(CP1)
    merged = json.loads(claims_parameter(STEP_UP_CLAIMS, ["cp1"]) or "")
    assert merged["access_token"]["xms_cc"] == {"values": ["cp1"]}
    assert merged["access_token"]["capolids"]["values"] == ["c1b1c1d1-0000-0000-0000-000000000001"]
    for bad in ("not json", "[1]", '{"access_token": 3}'):
        with pytest.raises(ConfigError):
            claims_parameter(bad, ["cp1"])


def test_a_claims_request_is_sent_although_a_fresh_token_is_cached(emu: Emulator, spy: Spy) -> None:
    client = signed_in(emu, spy)
    cached = client.get_token()
    sent = len(spy.sent)
    assert client.get_token().access_token == cached.access_token and len(spy.sent) == sent  # a cache hit
    fresh = client.get_token(claims=CP1)
    assert len(spy.sent) == sent + 1
    form, _ = spy.sent[-1]
    assert form["grant_type"] == "refresh_token" and json.loads(form["claims"]) == json.loads(CP1)
    assert fresh.access_token != cached.access_token


def test_capabilities_go_with_every_grant_without_bypassing_the_cache(emu: Emulator, spy: Spy) -> None:
    client = signed_in(emu, spy, client_capabilities=["cp1"])
    form, _ = spy.sent[-1]
    assert form["grant_type"] == "password" and json.loads(form["claims"]) == json.loads(CP1)
    sent = len(spy.sent)
    client.get_token()
    assert len(spy.sent) == sent  # capabilities alone are not a challenge


def test_silent_refreshes_carry_the_anchor_mailbox(emu: Emulator, spy: Spy) -> None:
    client = signed_in(emu, spy)
    [account] = [a["account"] for a in client.cache.snapshot()["accounts"].values()]
    client.get_token(scopes=["https://graph.microsoft.com/User.Read"])  # not cached: a silent refresh
    form, headers = spy.sent[-1]
    uid, utid = account.split(".")
    assert form["grant_type"] == "refresh_token"
    assert headers["x-anchormailbox"] == f"Oid:{uid}@{utid}"
    password_headers = spy.sent[0][1]  # the password grant names the user by upn, as MSAL does
    assert password_headers["x-anchormailbox"] == f"upn:{emu.config.users[0].username}"


def test_a_step_up_refusal_carries_entras_claims(emu: Emulator, spy: Spy) -> None:
    client = signed_in(emu, spy)
    emu.inject("token", Fault("status", status=400, body=STEP_UP), times=1)
    with pytest.raises(InteractionRequired) as caught:
        client.get_token(scopes=["https://graph.microsoft.com/User.Read"])
    assert list(caught.value.error_codes) == [50076]
    assert json.loads(str(caught.value.claims))["access_token"]["capolids"]["essential"] is True
    assert caught.value.to_dict()["claims"] == STEP_UP_CLAIMS


# -- the command line ----------------------------------------------------------------------------


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


@pytest.fixture
def cli_signed_in(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    user = emu.config.users[0]
    common = ["--authority-host", emu.url, "--tenant", emu.tenant_id, "--client-id", emu.config.clients[0].client_id]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", user.password)
    code, _, err = run("password", *common, "--username", user.username)
    assert code == 0, err
    return common


def test_token_with_claims_asks_anew(emu: Emulator, cli_signed_in: List[str]) -> None:
    code, cached, err = run("token", *cli_signed_in)
    assert code == 0, err
    before = emu.count("token")
    code, fresh, err = run("token", *cli_signed_in, "--claims", CP1)
    assert code == 0, err
    assert emu.count("token") == before + 1 and fresh != cached


def test_a_step_up_refusal_shows_the_claims_in_json(emu: Emulator, cli_signed_in: List[str]) -> None:
    emu.inject("token", Fault("status", status=400, body=STEP_UP), times=1)
    code, out, err = run("token", *cli_signed_in, "--scope", "https://graph.microsoft.com/User.Read", "--json")
    assert code == 1 and out == ""
    payload = json.loads(err)
    assert payload["error_codes"] == [50076] and "capolids" in payload["claims"]


def test_authorize_url_puts_the_claims_in_the_url(emu: Emulator, cli_signed_in: List[str]) -> None:
    code, out, err = run(
        "authorize-url", *cli_signed_in, "--claims", STEP_UP_CLAIMS, "--client-capability", "cp1", "--json"
    )
    assert code == 0, err
    query = parse_qs(urlsplit(json.loads(out)["url"]).query)
    claims = json.loads(query["claims"][0])
    assert claims["access_token"]["capolids"]["essential"] is True and claims["access_token"]["xms_cc"] == {
        "values": ["cp1"]
    }


@pytest.mark.parametrize("bad", ["not json", "[1, 2]"])
def test_bad_claims_are_a_usage_error(cli_signed_in: List[str], bad: str) -> None:
    code, out, err = run("token", *cli_signed_in, "--claims", bad)
    assert code == 2 and "--claims" in err and out == ""
