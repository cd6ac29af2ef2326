"""The emulator behaves as Entra does where clients meet it (issue 14), over real loopback HTTP.

Rotated refresh tokens stay valid (revocation is opt-in); ``refresh_in`` on long-lived tokens; a
step-up policy answering a refresh with AADSTS50076 and a ``claims`` challenge; ``claims`` on
token and authorize requests (``cp1`` → ``xms_cc``); ``foci`` for family apps; federated users
(user realm, MEX, WS-Trust 1.3 and 2005, SAML bearer grants, ROPC refused); a long Retry-After.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Fault, cli as emulator_cli

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
FAMILY = "f0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
GRAPH = "00000003-0000-0000-c000-000000000000"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
BOB = ("bob@fabrikam.example", "Bob-Passw0rd!")
DBX = f"{DATABRICKS}/.default offline_access openid profile"
POLICY = "c0a1f2e3-4b5c-4d6e-9f70-8a9b0c1d2e3f"
CP1 = json.dumps({"access_token": {"xms_cc": {"values": ["cp1"]}}})
ANSWER = json.dumps({"access_token": {"capolids": {"essential": True, "values": [POLICY]}}})
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
ACTION_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
ACTION_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue"
TRUST = {
    "13": "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    "2005": "http://schemas.xmlsoap.org/ws/2005/02/trust",
}
SAML1_GRANT = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"


def config(**changes: Any) -> EmulatorConfig:
    return replace(EmulatorConfig.default(), **{"token_lifetime": 3600, "device_code_interval": 1, **changes})


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(config()) as running:
        yield running


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as client:
        yield client


def token(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post(f"/{TENANT}/oauth2/v2.0/token", data=form)


def password(
    http: httpx.Client, user: Tuple[str, str] = ALICE, client_id: str = PUBLIC, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "client_id": client_id, "username": user[0], "password": user[1], "scope": DBX}
    return token(http, **{**form, **extra})


def refresh(http: httpx.Client, rt: str, client_id: str = PUBLIC, **extra: str) -> httpx.Response:
    return token(
        http, **{"grant_type": "refresh_token", "client_id": client_id, "refresh_token": rt, "scope": DBX, **extra}
    )


def claims_of(access_token: str) -> Dict[str, Any]:
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


def error(response: httpx.Response, status: int, code: int) -> Dict[str, Any]:
    assert response.status_code == status, response.text
    body: Dict[str, Any] = response.json()
    assert body["error_codes"] == [code], body
    return body


# --- 1. rotated refresh tokens ----------------------------------------------------------------------


def test_a_rotated_refresh_token_stays_valid_by_default(http: httpx.Client) -> None:
    assert EmulatorConfig.default().revoke_rotated_refresh_tokens is False
    first = password(http).json()["refresh_token"]
    second = refresh(http, first)
    assert second.status_code == 200 and second.json()["refresh_token"] != first
    again = refresh(http, first)  # the rotated-away token, redeemed a second time: Entra accepts it
    assert again.status_code == 200 and again.json()["refresh_token"] not in (first, second.json()["refresh_token"])
    assert refresh(http, second.json()["refresh_token"]).status_code == 200


def test_revocation_on_rotation_is_opt_in() -> None:
    with Emulator(config(revoke_rotated_refresh_tokens=True)) as emu, httpx.Client(base_url=emu.url) as http:
        first = password(http).json()["refresh_token"]
        assert refresh(http, first).status_code == 200
        error(refresh(http, first), 400, 70000)


def parse_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    emulator_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_flags_for_rotation_and_step_up() -> None:
    assert emulator_cli._config(parse_cli()).revoke_rotated_refresh_tokens is False
    assert emulator_cli._config(parse_cli("--keep-rotated-refresh-tokens")).revoke_rotated_refresh_tokens is False
    assert emulator_cli._config(parse_cli("--revoke-rotated-refresh-tokens")).revoke_rotated_refresh_tokens is True
    with pytest.raises(SystemExit):
        parse_cli("--keep-rotated-refresh-tokens", "--revoke-rotated-refresh-tokens")
    help_text = io.StringIO()
    parser = argparse.ArgumentParser()
    emulator_cli.add_arguments(parser)
    parser.print_help(help_text)
    assert "the default" in " ".join(help_text.getvalue().split())
    stepped = emulator_cli._config(parse_cli("--step-up", ALICE[0], "--step-up", "https://graph.microsoft.com"))
    assert stepped.user(ALICE[0]).step_up  # type: ignore[union-attr]
    assert [r.app_id for r in stepped.resources if r.step_up] == [GRAPH]
    with pytest.raises(ConfigError):
        emulator_cli._config(parse_cli("--step-up", "nobody@example.com"))


# --- 2. refresh_in ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lifetime", "refresh_in"), [(10800, 5400), (7201, 3600), (7200, None), (3600, None)])
def test_refresh_in_is_half_the_lifetime_above_two_hours(lifetime: int, refresh_in: Optional[int]) -> None:
    with Emulator(config(token_lifetime=lifetime)) as emu, httpx.Client(base_url=emu.url) as http:
        body = password(http).json()
        assert body["expires_in"] == lifetime and body.get("refresh_in") == refresh_in
        if refresh_in is not None:
            assert list(body)[:5] == ["token_type", "scope", "expires_in", "ext_expires_in", "refresh_in"]
        assert refresh(http, body["refresh_token"]).json().get("refresh_in") == refresh_in
        app = token(
            http,
            grant_type="client_credentials",
            client_id="c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f",
            client_secret="emulator-client-secret",
            scope=f"{DATABRICKS}/.default",
        ).json()
        assert app.get("refresh_in") == refresh_in


# --- 3. step-up and claims -----------------------------------------------------------------------------


def step_up_user() -> EmulatorConfig:
    base = config()
    return replace(base, users=tuple(replace(u, step_up=u.username == ALICE[0]) for u in base.users))


def test_a_refresh_under_step_up_gets_50076_with_claims() -> None:
    with Emulator(step_up_user()) as emu, httpx.Client(base_url=emu.url) as http:
        first = password(http)
        assert first.status_code == 200  # the policy asks on refresh; the sign-in itself passed
        body = error(refresh(http, first.json()["refresh_token"]), 400, 50076)
        assert body["error"] == "invalid_grant" and body["suberror"] == "basic_action"
        assert list(body)[-3:] == ["error_uri", "claims", "suberror"]
        assert json.loads(body["claims"]) == {"access_token": {"capolids": {"essential": True, "values": [POLICY]}}}
        assert body["error_description"].startswith("AADSTS50076: ") and DATABRICKS in body["error_description"]
        answered = refresh(http, first.json()["refresh_token"], claims=ANSWER)
        assert answered.status_code == 200, answered.text
        assert "mfa" in claims_of(answered.json()["access_token"])["amr"]
        # the refresh token issued after the step-up carries it: no challenge any more
        assert refresh(http, answered.json()["refresh_token"]).status_code == 200
        acrs = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1"}}})
        assert refresh(http, first.json()["refresh_token"], claims=acrs).status_code == 200


def test_an_interactive_sign_in_with_mfa_satisfies_step_up() -> None:
    with Emulator(step_up_user()) as emu, httpx.Client(base_url=emu.url) as http:
        flow = http.post(f"/{TENANT}/oauth2/v2.0/devicecode", data={"client_id": PUBLIC, "scope": DBX}).json()
        emu.approve_device_code(flow["user_code"], ALICE[0])
        signed_in = token(http, grant_type="urn:ietf:params:oauth:grant-type:device_code", client_id=PUBLIC,
                          device_code=flow["device_code"])  # fmt: skip
        assert "mfa" in claims_of(signed_in.json()["access_token"])["amr"]
        assert refresh(http, signed_in.json()["refresh_token"]).status_code == 200


def test_a_step_up_resource_challenges_every_user() -> None:
    base = config()
    resources = tuple(replace(r, step_up=r.app_id == GRAPH) for r in base.resources)
    with Emulator(replace(base, resources=resources)) as emu, httpx.Client(base_url=emu.url) as http:
        rt = password(http).json()["refresh_token"]
        assert refresh(http, rt).status_code == 200  # Databricks is not guarded
        graph = f"{GRAPH}/.default offline_access"
        assert error(refresh(http, rt, scope=graph), 400, 50076)["claims"]
        assert refresh(http, rt, scope=graph, claims=ANSWER).status_code == 200


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '"text"', "{"])
def test_claims_must_be_a_json_object(http: httpx.Client, bad: str) -> None:
    body = error(password(http, claims=bad), 400, 90100)
    assert body["error"] == "invalid_request" and "'claims'" in body["error_description"]


def test_bad_claims_on_authorize_come_back_as_an_error_redirect(http: httpx.Client) -> None:
    params = {
        "client_id": PUBLIC,
        "response_type": "code",
        "redirect_uri": "http://localhost:53123",
        "scope": DBX,
        "state": "s1",
        "claims": "nope",
    }
    response = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_request"] and query["error_description"][0].startswith("AADSTS90100")
    good = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params={**params, "claims": CP1})
    assert good.status_code == 200 and "<form" in good.text


def test_cp1_claims_put_xms_cc_in_the_access_token(http: httpx.Client) -> None:
    assert "xms_cc" not in claims_of(password(http).json()["access_token"])
    body = password(http, claims=CP1).json()
    assert claims_of(body["access_token"])["xms_cc"] == ["cp1"]
    refreshed = refresh(
        http, body["refresh_token"], claims=json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}})
    )
    assert claims_of(refreshed.json()["access_token"])["xms_cc"] == ["cp1"]
    graph_v1 = password(http, scope=f"{GRAPH}/.default", claims=CP1).json()
    assert claims_of(graph_v1["access_token"])["xms_cc"] == ["cp1"]


# --- 4. foci ---------------------------------------------------------------------------------------------


def test_family_apps_get_foci(http: httpx.Client) -> None:
    body = password(http, client_id=FAMILY).json()
    assert body["foci"] == "1"
    keys = list(body)
    assert keys.index("refresh_token") + 1 == keys.index("foci") == keys.index("id_token") - 1
    assert refresh(http, body["refresh_token"], client_id=FAMILY).json()["foci"] == "1"
    assert "foci" not in password(http).json()  # the demo public client is not a family app
    no_refresh = password(http, client_id=FAMILY, scope=f"{DATABRICKS}/.default").json()
    assert "refresh_token" not in no_refresh and "foci" not in no_refresh


# --- 5. federated users -----------------------------------------------------------------------------------


def test_user_realm(emu: Emulator, http: httpx.Client) -> None:
    federated = http.get(f"/common/userrealm/{BOB[0]}", params={"api-version": "1.0"})
    assert federated.status_code == 200
    assert federated.json() == {
        "ver": "1.0",
        "account_type": "Federated",
        "domain_name": "fabrikam.example",
        "federation_protocol": "WSTrust",
        "federation_metadata_url": f"{emu.url}/adfs/services/trust/mex",
        "federation_active_auth_url": f"{emu.url}/adfs/services/trust/2005/usernamemixed",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    }
    managed = http.get(f"/common/userrealm/{ALICE[0]}", params={"api-version": "1.0"}).json()
    assert managed["account_type"] == "Managed" and managed["domain_name"] == "contoso.onmicrosoft.com"
    assert "federation_metadata_url" not in managed
    assert http.get("/common/userrealm/someone@elsewhere.example").json()["account_type"] == "Unknown"


MEX_NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "wsp": "http://schemas.xmlsoap.org/ws/2004/09/policy",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "sp": "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702",
    "sp2005": "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy",
    "wsa": "http://www.w3.org/2005/08/addressing",
}


def test_mex_document(emu: Emulator, http: httpx.Client) -> None:
    response = http.get("/adfs/services/trust/mex")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/soap+xml")
    dom = ET.fromstring(response.content)
    policies = {p.get(f"{{{MEX_NS['wsu']}}}Id"): p for p in dom.findall("wsp:Policy", MEX_NS)}
    assert len(policies) == 2
    p13 = "wsp:ExactlyOne/wsp:All/sp:SignedEncryptedSupportingTokens/wsp:Policy/sp:UsernameToken/wsp:Policy/"
    p2005 = "wsp:ExactlyOne/wsp:All/sp2005:SignedSupportingTokens/wsp:Policy/sp2005:UsernameToken/wsp:Policy/"
    kinds = {
        pid: tuple(
            p.find(path, MEX_NS) is not None
            for path in (p13 + "sp:WssUsernameToken10", ".//sp:TransportBinding", p2005 + "sp2005:WssUsernameToken10")
        )
        for pid, p in policies.items()
    }
    assert sorted(kinds.values()) == [(False, False, True), (True, True, False)]
    actions = {}
    for binding in dom.findall("wsdl:binding", MEX_NS):
        assert binding.find("soap12:binding", MEX_NS).get("transport") == "http://schemas.xmlsoap.org/soap/http"  # type: ignore[union-attr]
        policy = binding.find("wsp:PolicyReference", MEX_NS).get("URI")  # type: ignore[union-attr]
        assert policy is not None and policy[1:] in policies
        actions[binding.get("name")] = binding.find("wsdl:operation/soap12:operation", MEX_NS).get("soapAction")  # type: ignore[union-attr]
    assert sorted(actions.values()) == sorted([ACTION_13, ACTION_2005])
    addresses = {}
    for port in dom.findall("wsdl:service/wsdl:port", MEX_NS):
        addresses[actions[port.get("binding", "").split(":")[-1]]] = port.findtext(
            "wsa:EndpointReference/wsa:Address", None, MEX_NS
        )
    assert addresses == {
        ACTION_13: f"{emu.url}/adfs/services/trust/13/usernamemixed",
        ACTION_2005: f"{emu.url}/adfs/services/trust/2005/usernamemixed",
    }


def rst(url: str, version: str, username: str, password_: str, soap: str = SOAP12) -> str:
    """An RST as MSAL writes it (SOAP 1.2 by default), username/password XML-escaped."""
    action = ACTION_13 if version == "13" else ACTION_2005
    key_type = (
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer"
        if version == "13"
        else "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"
    )
    trust = TRUST[version]
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = MEX_NS["wsu"]
    name, secret = (v.replace("&", "&amp;").replace("<", "&lt;") for v in (username, password_))
    return (
        f"<s:Envelope xmlns:s='{soap}' xmlns:wsa='http://www.w3.org/2005/08/addressing' xmlns:wsu='{wsu}'>"
        f"<s:Header><wsa:Action s:mustUnderstand='1'>{action}</wsa:Action>"
        "<wsa:MessageID>urn:uuid:11111111-2222-3333-4444-555555555555</wsa:MessageID>"
        f"<wsa:To s:mustUnderstand='1'>{url}</wsa:To><wsse:Security s:mustUnderstand='1' xmlns:wsse='{wsse}'>"
        "<wsu:Timestamp wsu:Id='_0'><wsu:Created>2026-01-01T00:00:00Z</wsu:Created></wsu:Timestamp>"
        f"<wsse:UsernameToken wsu:Id='t'><wsse:Username>{name}</wsse:Username><wsse:Password>{secret}</wsse:Password>"
        f"</wsse:UsernameToken></wsse:Security></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst='{trust}'>"
        "<wsp:AppliesTo xmlns:wsp='http://schemas.xmlsoap.org/ws/2004/09/policy'><wsa:EndpointReference>"
        "<wsa:Address>urn:federation:MicrosoftOnline</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>"
        f"<wst:KeyType>{key_type}</wst:KeyType><wst:RequestType>{trust}/Issue</wst:RequestType>"
        "</wst:RequestSecurityToken></s:Body></s:Envelope>"
    )


def post_rst(
    http: httpx.Client, emu: Emulator, version: str, user: Tuple[str, str], soap: str = SOAP12
) -> httpx.Response:
    url = f"{emu.url}/adfs/services/trust/{version}/usernamemixed"
    content_type = "application/soap+xml; charset=utf-8" if soap == SOAP12 else "text/xml; charset=utf-8"
    headers = {"Content-Type": content_type, "SOAPAction": ACTION_13 if version == "13" else ACTION_2005}
    return http.post(url, content=rst(url, version, *user, soap=soap), headers=headers)


def assertion_of(rstr: str) -> Tuple[str, str]:
    """(token type, raw assertion text) cut out of the RSTR as MSAL does (the text, not a re-serialisation)."""
    found = [
        re.search(rf"<(?:\w+:)?{tag}(?:[^>]*)>(.*)</(?:\w+:)?{tag}", rstr, re.DOTALL)
        for tag in ("TokenType", "RequestedSecurityToken")
    ]
    assert found[0] is not None and found[1] is not None
    return found[0].group(1), found[1].group(1)


def check_signature(assertion: str) -> None:
    """Verify the enveloped XML-DSig independently: digest of the canonical element without its
    signature, RSA-SHA256 over the canonical SignedInfo, with the certificate in KeyInfo."""
    start, end = assertion.index("<ds:Signature"), assertion.index("</ds:Signature>") + len("</ds:Signature>")
    unsigned = assertion[:start] + assertion[end:]
    assert ET.canonicalize(unsigned) == unsigned  # written in canonical form: the signed bytes are the sent bytes
    signature = ET.fromstring(assertion[start:end])
    ns = {"ds": DSIG}
    digest = base64.b64decode(signature.findtext("ds:SignedInfo/ds:Reference/ds:DigestValue", "", ns))
    assert digest == hashlib.sha256(unsigned.encode()).digest()
    signed_info = assertion[start:end].split("<ds:SignedInfo>", 1)[1].split("</ds:SignedInfo>", 1)[0]
    canonical = f'<ds:SignedInfo xmlns:ds="{DSIG}">{signed_info}</ds:SignedInfo>'
    assert ET.canonicalize(canonical) == canonical
    cert = x509.load_der_x509_certificate(base64.b64decode(signature.findtext(".//ds:X509Certificate", "", ns)))
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    value = base64.b64decode(signature.findtext("ds:SignatureValue", "", ns))
    key.verify(value, canonical.encode(), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("version", "soap", "token_type"), [("13", SOAP12, SAML2), ("2005", SOAP12, SAML1), ("2005", SOAP11, SAML1)]
)
def test_usernamemixed_issues_a_signed_assertion(
    emu: Emulator, http: httpx.Client, version: str, soap: str, token_type: str
) -> None:
    response = post_rst(http, emu, version, BOB, soap)
    assert response.status_code == 200, response.text
    envelope = ET.fromstring(response.content)
    assert envelope.tag == f"{{{soap}}}Envelope"
    trust = TRUST[version]
    path = f"{{{soap}}}Body/" + (f"{{{trust}}}RequestSecurityTokenResponseCollection/" if version == "13" else "")
    rstr = envelope.find(path + f"{{{trust}}}RequestSecurityTokenResponse")
    assert rstr is not None and rstr.findtext(f"{{{trust}}}TokenType") == token_type
    kind, assertion = assertion_of(response.text)
    assert kind == token_type
    root = ET.fromstring(assertion)
    assert root.tag == f"{{{token_type}}}Assertion"
    assert BOB[0] in assertion and "urn:federation:MicrosoftOnline" in assertion
    check_signature(assertion)


def test_a_wrong_password_gets_a_soap_fault(emu: Emulator, http: httpx.Client) -> None:
    for version in ("13", "2005"):
        response = post_rst(http, emu, version, (BOB[0], "wrong"))
        assert response.status_code == 500
        fault = ET.fromstring(response.content).find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
        assert fault is not None
        ns = {"s": SOAP12}
        assert fault.findtext("s:Code/s:Value", None, ns) == "s:Sender"
        assert fault.findtext("s:Code/s:Subcode/s:Value", None, ns) == "a:FailedAuthentication"
        assert fault.findtext("s:Reason/s:Text", "", ns).startswith("ID3242:")
    managed = post_rst(http, emu, "13", ALICE)  # a managed user has no account at the federated IdP
    assert managed.status_code == 500 and "FailedAuthentication" in managed.text
    old = post_rst(http, emu, "2005", (BOB[0], "wrong"), SOAP11)
    assert old.status_code == 500 and old.headers["content-type"].startswith("text/xml")
    assert (
        ET.fromstring(old.content).findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode") == "a:FailedAuthentication"
    )
    hostile = http.post(
        f"{emu.url}/adfs/services/trust/13/usernamemixed", content='<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    )
    assert hostile.status_code == 500 and "InvalidRequest" in hostile.text


def saml_grant(
    http: httpx.Client, grant: str, assertion: str, encode: Any = base64.urlsafe_b64encode
) -> httpx.Response:
    value = encode(assertion.encode()).decode().rstrip("=")
    return token(http, grant_type=grant, assertion=value, client_id=PUBLIC, scope=DBX, client_info="1")


def test_saml_bearer_grants_issue_the_users_tokens(emu: Emulator, http: httpx.Client) -> None:
    for version, grant in (("13", SAML2_GRANT), ("2005", SAML1_GRANT)):
        _, assertion = assertion_of(post_rst(http, emu, version, BOB).text)
        for encode in (base64.urlsafe_b64encode, base64.b64encode):
            body = saml_grant(http, grant, assertion, encode).json()
            claims = claims_of(body["access_token"])
            assert claims["upn"] == BOB[0] and claims["aud"] == DATABRICKS and "fed" in claims["amr"]
            assert {"refresh_token", "id_token", "client_info"} <= set(body)
            assert refresh(http, body["refresh_token"]).status_code == 200
    assert emu.count("token", SAML1_GRANT) >= 2 and emu.count("usernamemixed") >= 2


def test_bad_assertions_are_refused(emu: Emulator, http: httpx.Client) -> None:
    _, assertion = assertion_of(post_rst(http, emu, "13", BOB).text)
    error(saml_grant(http, SAML1_GRANT, assertion), 400, 70000)  # a SAML 2.0 assertion on the 1.1 grant
    tampered = assertion.replace(BOB[0], "mallory@fabrikam.example")
    error(saml_grant(http, SAML2_GRANT, tampered), 400, 70000)
    error(token(http, grant_type=SAML2_GRANT, assertion="!!!", client_id=PUBLIC, scope=DBX), 400, 70000)
    error(token(http, grant_type=SAML2_GRANT, client_id=PUBLIC, scope=DBX), 400, 900144)
    with Emulator(config()) as other, httpx.Client(base_url=other.url) as elsewhere:
        error(saml_grant(elsewhere, SAML2_GRANT, assertion), 400, 70000)  # signed, but never issued there


def test_plain_ropc_for_a_federated_user_is_refused(http: httpx.Client) -> None:
    body = error(password(http, BOB), 400, 50126)
    assert body["error"] == "invalid_grant" and "invalid username or password" in body["error_description"]


def test_the_banner_shows_the_federated_user_and_the_idp(emu: Emulator) -> None:
    lines = emulator_cli._describe(emu, [])
    assert any(BOB[0] in line and "(federated)" in line for line in lines)
    assert any(f"{emu.url}/adfs/services/trust/mex" in line for line in lines)
    assert any(f"{emu.url}/adfs/services/trust/13/usernamemixed" in line for line in lines)
    assert any(FAMILY in line and "family of client ids" in line for line in lines)


# --- 6. throttling ------------------------------------------------------------------------------------------


def test_429_with_a_long_retry_after_is_answered_at_once(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=429, retry_after=3600))
    started = time.monotonic()
    response = password(http)
    assert time.monotonic() - started < 2.0
    assert response.status_code == 429 and response.headers["Retry-After"] == "3600"
    emu.inject("token", Fault("status", status=429, retry_after=30), times=2)
    assert [password(http).headers.get("Retry-After") for _ in range(3)] == ["30", "30", None]
