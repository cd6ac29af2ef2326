"""Replay of issue 14's recorded-format fixtures: the step-up and federated-ROPC error bodies, the
user realm answers and AD FS's SOAP faults, through the parsers that meet them, and against what
the emulator sends for the same situations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any, Dict, Iterator, List

import httpx
import pytest
from fixturelib import FIXTURES, load_response

from oauth_core.core import errors
from oauth_core.emulator import Emulator, EmulatorConfig
from oauth_core.emulator.wstrust import WsTrustFault, fault_envelope

WSTRUST = FIXTURES / "wstrust"
TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default offline_access"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def wstrust_file(name: str) -> Dict[str, Any]:
    return dict(json.loads((WSTRUST / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    base = EmulatorConfig.default()
    users = tuple(replace(u, step_up=u.username == "alice@contoso.onmicrosoft.com") for u in base.users)
    with Emulator(EmulatorConfig(users=users, token_lifetime=3600)) as running:
        yield running


def keys(body: Dict[str, Any]) -> List[str]:
    return list(body)


def test_the_step_up_fixture_parses_with_its_claims() -> None:
    record = load_response("error-50076-refresh-claims")
    body = json.loads(record["body"])
    exc = errors.oauth_error_from_body(body, status=record["status"])
    assert type(exc).__name__ == record["expect"]["exception"] == "InteractionRequired"
    challenge = json.loads(body["claims"])
    assert challenge["access_token"]["capolids"]["essential"] is True
    assert len(challenge["access_token"]["capolids"]["values"]) == 1
    assert body["suberror"] == "basic_action" and record["grant_type"] == "refresh_token"


def test_the_emulator_sends_the_step_up_shape_of_the_fixture(emu: Emulator) -> None:
    recorded = json.loads(load_response("error-50076-refresh-claims")["body"])
    with httpx.Client(base_url=emu.url) as http:
        form = {"client_id": PUBLIC, "scope": DBX, "username": "alice@contoso.onmicrosoft.com"}
        rt = http.post(
            f"/{TENANT}/oauth2/v2.0/token", data={**form, "grant_type": "password", "password": "Alice-Passw0rd!"}
        ).json()["refresh_token"]
        sent = http.post(
            f"/{TENANT}/oauth2/v2.0/token",
            data={"grant_type": "refresh_token", "client_id": PUBLIC, "refresh_token": rt, "scope": DBX},
        ).json()
    assert keys(sent) == keys(recorded)
    assert sent["error"] == recorded["error"] and sent["error_codes"] == recorded["error_codes"]
    assert set(json.loads(sent["claims"])["access_token"]) == set(json.loads(recorded["claims"])["access_token"])


def test_the_federated_ropc_fixture_and_the_emulator_agree(emu: Emulator) -> None:
    record = load_response("error-50126-federated")
    recorded = json.loads(record["body"])
    assert type(errors.oauth_error_from_body(recorded, status=400)).__name__ == record["expect"]["exception"]
    form = {
        "grant_type": "password",
        "client_id": PUBLIC,
        "scope": DBX,
        "username": "bob@fabrikam.example",
        "password": "Bob-Passw0rd!",
    }
    sent = httpx.post(f"{emu.url}/{TENANT}/oauth2/v2.0/token", data=form).json()
    assert keys(sent) == keys(recorded) and sent["error_codes"] == recorded["error_codes"] == [50126]


@pytest.mark.parametrize("name", ["federated", "managed"])
def test_user_realm_fixtures_match_the_emulator(emu: Emulator, name: str) -> None:
    record = wstrust_file(f"userrealm-{name}")
    recorded = json.loads(record["body"])
    user = "bob@fabrikam.example" if name == "federated" else "alice@contoso.onmicrosoft.com"
    sent = httpx.get(f"{emu.url}/common/userrealm/{user}", params={"api-version": "1.0"}).json()
    assert keys(sent) == keys(recorded) and sent["account_type"] == record["expect"]["account_type"]
    assert ("federation_metadata_url" in recorded) is record["expect"]["federated"]


def soap_fault(body: str) -> Dict[str, str]:
    """The fault's (code, reason) read the way MSAL reads SOAP 1.2 faults, or SOAP 1.1's faultcode/faultstring."""
    root = ET.fromstring(body)
    ns = {"s": SOAP12}
    if root.tag == f"{{{SOAP11}}}Envelope":
        fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
        assert fault is not None
        return {"code": fault.findtext("faultcode", ""), "reason": fault.findtext("faultstring", "")}
    return {
        "code": root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", "", ns),
        "reason": root.findtext("s:Body/s:Fault/s:Reason/s:Text", "", ns),
    }


@pytest.mark.parametrize(("name", "soap"), [("soap12", SOAP12), ("soap11", SOAP11)])
def test_soap_fault_fixtures_replay(name: str, soap: str) -> None:
    record = wstrust_file(f"fault-failed-authentication-{name}")
    assert record["status"] == 500 and record["endpoint"] == "usernamemixed"
    expect = record["expect"]
    assert soap_fault(record["body"]) == {"code": expect["code"], "reason": expect["reason"]}
    emulated = fault_envelope(soap, WsTrustFault("a:FailedAuthentication", expect["reason"]), "urn:uuid:x")
    assert soap_fault(emulated) == soap_fault(record["body"])
    if soap == SOAP12:
        wstrust_response = pytest.importorskip("msal.wstrust_response")
        for body in (record["body"], emulated):
            assert wstrust_response.parse_error(body) == {"reason": expect["reason"], "code": expect["code"]}
