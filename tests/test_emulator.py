"""The local Entra emulator over real loopback sockets: endpoints, grants, tokens and error shapes.

Everything goes through httpx to a real ``Emulator`` (port 0). Lifetimes are pinned and the
device-code interval is 1 s; time-dependent expiry uses an injected clock instead of sleeping.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from oauth_core.core.errors import ConfigError
from oauth_core.core.pkce import code_challenge, new_code_verifier
from oauth_core.emulator import Client, Emulator, EmulatorConfig, Fault, RequestRecord

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
DOMAIN = "contoso.onmicrosoft.com"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
CONFIDENTIAL = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
SECRET = "emulator-client-secret"
CERT_CLIENT = "e7d6c5b4-a392-4817-8f6e-5d4c3b2a1f00"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
GRAPH = "00000003-0000-0000-c000-000000000000"
DEMO_API = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
MFA = ("mfa@contoso.onmicrosoft.com", "Mfa-Passw0rd!")
DBX = f"{DATABRICKS}/.default offline_access openid profile"
REDIRECT = "http://localhost:53123"
LIFETIME = 3600
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
DISCOVERY_KEYS = [
    "token_endpoint",
    "token_endpoint_auth_methods_supported",
    "jwks_uri",
    "response_modes_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "response_types_supported",
    "scopes_supported",
    "issuer",
    "request_uri_parameter_supported",
    "userinfo_endpoint",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "http_logout_supported",
    "frontchannel_logout_supported",
    "end_session_endpoint",
    "claims_supported",
    "kerberos_endpoint",
    "tenant_region_scope",
    "cloud_instance_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "rbac_url",
]
ERROR_KEYS = ["error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"]


class EmuClock:
    """A settable clock for the emulator (epoch seconds)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def cert() -> Dict[str, Any]:
    """An RSA key and self-signed certificate registered on the certificate client."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator test client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "key": key,
        "pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "x5t": b64url(hashlib.sha1(der).digest()),
        "x5t#S256": b64url(hashlib.sha256(der).digest()),
    }


def make_config(cert_pem: Optional[str] = None, **changes: Any) -> EmulatorConfig:
    base = EmulatorConfig.default()
    clients = base.clients
    if cert_pem:
        clients = (*clients, Client(CERT_CLIENT, "certificate app", (), certificates=(cert_pem,)))
    return replace(base, token_lifetime=LIFETIME, device_code_interval=1, clients=clients, **changes)


@pytest.fixture(scope="module")
def emu(cert: Dict[str, Any]) -> Iterator[Emulator]:
    with Emulator(make_config(cert["pem"])) as running:
        yield running


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def jwks(emu: Emulator) -> Dict[str, Any]:
    return httpx.get(f"{emu.url}/{TENANT}/discovery/v2.0/keys").json()


@pytest.fixture
def clocked() -> Iterator[Tuple[Emulator, EmuClock, httpx.Client]]:
    clock = EmuClock()
    with Emulator(make_config(), clock=clock) as running:
        with httpx.Client(base_url=running.url, follow_redirects=False, timeout=10) as client:
            yield running, clock, client


def token(http: httpx.Client, tenant: str = TENANT, **form: str) -> httpx.Response:
    return http.post(f"/{tenant}/oauth2/v2.0/token", data=form)


def password(
    http: httpx.Client, user: Tuple[str, str] = ALICE, scope: str = DBX, tenant: str = TENANT, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "client_id": PUBLIC, "username": user[0], "password": user[1], "scope": scope}
    return token(http, tenant, **{**form, **extra})


def assert_error(
    resp: httpx.Response, status: int, error: str, code: int, suberror: Optional[str] = None
) -> Dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body)[:7] == ERROR_KEYS
    assert body["error"] == error
    assert body["error_codes"] == [code] and all(type(c) is int for c in body["error_codes"])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert TIMESTAMP.match(body["timestamp"])
    assert GUID.match(body["trace_id"]) and GUID.match(body["correlation_id"])
    assert resp.headers["x-ms-request-id"] == body["trace_id"]
    assert (
        f"Trace ID: {body['trace_id']} Correlation ID: {body['correlation_id']} Timestamp: "
        in (body["error_description"])
    )
    assert body["error_uri"].endswith(f"/error?code={code}")
    assert body.get("suberror") == suberror
    return body


def verify(tok: str, jwks: Dict[str, Any], audience: str, issuer: str, *, check_time: bool = True) -> Dict[str, Any]:
    kid = jwt.get_unverified_header(tok)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    options = {"verify_exp": check_time, "verify_nbf": check_time, "verify_iat": check_time}
    return jwt.decode(tok, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience, issuer=issuer, options=options)


def pkce_pair() -> Tuple[str, str]:
    verifier = new_code_verifier()
    return verifier, code_challenge(verifier)


def authorize_params(**changes: str) -> Dict[str, str]:
    params = {
        "client_id": PUBLIC,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": DBX,
        "state": "st-123",
        "nonce": "nonce-456",
    }
    params.update(changes)
    return params


def flow_token(page: str) -> str:
    match = re.search(r'name="flowtoken" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(
    http: httpx.Client, params: Dict[str, str], user: Tuple[str, str] = ALICE, tenant: str = TENANT
) -> httpx.Response:
    page = http.get(f"/{tenant}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {"flowtoken": flow_token(page.text), "username": user[0], "password": user[1], "action": "signin"}
    return http.post(f"/{tenant}/oauth2/v2.0/authorize", data=form)


def code_from(resp: httpx.Response) -> str:
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]


def redeem(
    http: httpx.Client, code: str, verifier: Optional[str], tenant: str = TENANT, **extra: str
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "client_id": PUBLIC, "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    return token(http, tenant, **{**form, **extra})


# --- metadata endpoints --------------------------------------------------------------------------


def test_discovery_document_has_entras_keys_in_order(http: httpx.Client, emu: Emulator) -> None:
    resp = http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert resp.status_code == 200
    doc = resp.json()
    assert list(doc) == DISCOVERY_KEYS
    assert doc["issuer"] == f"{emu.url}/{TENANT}/v2.0"
    assert doc["token_endpoint"] == f"{emu.url}/{TENANT}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{emu.url}/{TENANT}/discovery/v2.0/keys"
    assert doc["device_authorization_endpoint"] == f"{emu.url}/{TENANT}/oauth2/v2.0/devicecode"
    assert doc["tenant_region_scope"] == "WW" and doc["request_uri_parameter_supported"] is False
    assert resp.headers["cache-control"] == "max-age=86400, private"
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["content-type"] == "application/json; charset=utf-8"


def test_discovery_for_the_domain_uses_the_tenant_id(http: httpx.Client, emu: Emulator) -> None:
    doc = http.get(f"/{DOMAIN}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{emu.url}/{TENANT}/v2.0"
    assert doc["authorization_endpoint"] == f"{emu.url}/{TENANT}/oauth2/v2.0/authorize"


@pytest.mark.parametrize("alias", ["organizations", "common"])
def test_discovery_for_aliases_keeps_the_alias_and_templates_the_issuer(
    http: httpx.Client, emu: Emulator, alias: str
) -> None:
    doc = http.get(f"/{alias}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{emu.url}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{emu.url}/{alias}/oauth2/v2.0/token"
    assert doc["tenant_region_scope"] is None and "kerberos_endpoint" not in doc


def test_discovery_for_consumers_uses_the_msa_tenant(http: httpx.Client, emu: Emulator) -> None:
    doc = http.get("/consumers/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{emu.url}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"


def test_discovery_for_an_unknown_tenant_is_invalid_tenant(http: httpx.Client) -> None:
    resp = http.get("/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    body = assert_error(resp, 400, "invalid_tenant", 90002)
    assert "Tenant 'fabrikam.onmicrosoft.com' not found" in body["error_description"]


def test_jwks_has_two_keys_whose_kid_is_the_cert_thumbprint(jwks: Dict[str, Any], emu: Emulator) -> None:
    keys = jwks["keys"]
    assert len(keys) == 2 and keys[0]["kid"] != keys[1]["kid"]
    for key in keys:
        assert list(key) == ["kty", "use", "kid", "x5t", "n", "e", "x5c", "cloud_instance_name", "issuer"]
        der = base64.b64decode(key["x5c"][0])
        assert key["kid"] == key["x5t"] == b64url(hashlib.sha1(der).digest())
        assert len(key["kid"]) == 27
        assert key["issuer"] == f"{emu.url}/{{tenantid}}/v2.0"
        public = x509.load_der_x509_certificate(der).public_key()
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
        assert jwt.PyJWK(key).key.public_numbers() == public.public_numbers()


def test_jwks_for_an_unknown_tenant(http: httpx.Client) -> None:
    assert_error(http.get("/nobody/discovery/v2.0/keys"), 400, "invalid_tenant", 90002)


def test_instance_discovery_lists_the_emulator_host(http: httpx.Client, emu: Emulator) -> None:
    host = urlsplit(emu.url).netloc
    resp = http.get(
        "/common/discovery/instance",
        params={"api-version": "1.1", "authorization_endpoint": f"{emu.url}/{TENANT}/oauth2/v2.0/authorize"},
    )
    body = resp.json()
    assert list(body) == ["tenant_discovery_endpoint", "api-version", "metadata"]
    assert body["tenant_discovery_endpoint"] == f"{emu.url}/{TENANT}/v2.0/.well-known/openid-configuration"
    assert host in body["metadata"][0]["aliases"] and body["metadata"][0]["preferred_network"] == host
    assert any("login.microsoftonline.com" in m["aliases"] for m in body["metadata"])
    assert resp.headers["cache-control"] == "max-age=86400, private"


def test_instance_discovery_refuses_an_unknown_host(http: httpx.Client) -> None:
    resp = http.get(
        "/common/discovery/instance",
        params={"authorization_endpoint": "https://login.example.org/tenant/oauth2/v2.0/authorize"},
    )
    assert_error(resp, 400, "invalid_instance", 50049)


def test_user_realm_managed_and_unknown(http: httpx.Client) -> None:
    managed = http.get(f"/common/userrealm/{ALICE[0]}", params={"api-version": "1.0"}).json()
    assert managed == {
        "ver": "1.0",
        "account_type": "Managed",
        "domain_name": DOMAIN,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    }
    unknown = http.get("/common/userrealm/bob@example.org", params={"api-version": "1.0"}).json()
    assert unknown["account_type"] == "Unknown" and "domain_name" not in unknown


def test_unknown_paths_get_a_json_404(http: httpx.Client) -> None:
    for path in ("/", "/nope", f"/{TENANT}/oauth2/token", f"/{TENANT}/oauth2/v2.0/logout"):
        resp = http.get(path)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found"
        assert resp.headers["x-ms-request-id"] == resp.json()["trace_id"]


def test_metadata_endpoints_accept_get_only(http: httpx.Client) -> None:
    resp = http.post(f"/{TENANT}/v2.0/.well-known/openid-configuration", data={"a": "b"})
    assert resp.status_code == 405 and resp.headers["allow"] == "GET"
    preflight = http.options(f"/{TENANT}/discovery/v2.0/keys")
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-methods"] == "GET, OPTIONS"
    head = http.head(f"/{TENANT}/discovery/v2.0/keys")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 100


# --- headers and error bodies --------------------------------------------------------------------


def test_token_responses_carry_entras_headers(http: httpx.Client) -> None:
    resp = password(http, user=(ALICE[0], "wrong"))
    headers = resp.headers
    assert headers["cache-control"] == "no-store, no-cache" and headers["pragma"] == "no-cache"
    assert headers["expires"] == "-1" and headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["p3p"] == 'CP="DSP CUR OTPi IND OTRi ONL FIN"'
    assert headers["strict-transport-security"].startswith("max-age=")
    assert re.match(r"^2\.1\.\d+\.\d+ - \w+ ProdSlices$", headers["x-ms-ests-server"])
    cookies = [c.split("=")[0] for c in headers.get_list("set-cookie")]
    assert cookies == ["fpc", "x-ms-gateway-slice", "stsservicecookie"]
    assert "x-ms-clitelem" not in headers
    assert int(headers["content-length"]) == len(resp.content)
    ok = password(http, scope=f"{DATABRICKS}/.default")
    assert ok.headers["x-ms-request-id"] and ok.headers["cache-control"] == "no-store, no-cache"


def test_correlation_id_echoes_a_guid_client_request_id(http: httpx.Client) -> None:
    sent = str(uuid.uuid4())
    form = {"grant_type": "password", "client_id": PUBLIC, "username": ALICE[0], "password": "x", "scope": DBX}
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        data=form,
        headers={"client-request-id": sent, "x-client-current-telemetry": "4|0,1|,"},
    )
    assert resp.json()["correlation_id"] == sent
    assert resp.headers["x-ms-clitelem"] == "1,0,0,,"
    other = http.post(f"/{TENANT}/oauth2/v2.0/token", data=form, headers={"client-request-id": "not-a-guid"})
    assert GUID.match(other.json()["correlation_id"]) and other.json()["correlation_id"] != "not-a-guid"


def test_crlf_error_descriptions_can_be_switched_on() -> None:
    with Emulator(make_config(crlf_error_descriptions=True)) as emu, httpx.Client(base_url=emu.url) as http:
        body = password(http, user=(ALICE[0], "wrong")).json()
    assert "\r\nTrace ID: " in body["error_description"] and "\r\nTimestamp: " in body["error_description"]


# --- the password grant and token contents -------------------------------------------------------


def test_password_grant_body_keys_order_and_types(http: httpx.Client) -> None:
    body = password(http, client_info="1").json()
    assert list(body) == [
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
        "refresh_token",
        "id_token",
        "client_info",
    ]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == LIFETIME and type(body["expires_in"]) is int
    assert body["scope"] == f"{DATABRICKS}/user_impersonation openid profile"
    assert body["refresh_token"].startswith("0.A") and len(body["refresh_token"]) > 200


def test_optional_fields_follow_the_request(http: httpx.Client) -> None:
    body = password(http, scope=f"{DATABRICKS}/user_impersonation").json()
    assert list(body) == ["token_type", "scope", "expires_in", "ext_expires_in", "access_token"]
    assert body["scope"] == f"{DATABRICKS}/user_impersonation"
    with_email = password(http, scope=f"{DATABRICKS}/.default openid email").json()
    assert "refresh_token" not in with_email and "id_token" in with_email
    assert with_email["scope"] == f"{DATABRICKS}/user_impersonation email openid"


def test_databricks_access_token_is_v1_and_verifies(http: httpx.Client, jwks: Dict[str, Any]) -> None:
    body = password(http).json()
    header = jwt.get_unverified_header(body["access_token"])
    assert list(header) == ["typ", "alg", "x5t", "kid"] and header["x5t"] == header["kid"] == jwks["keys"][0]["kid"]
    claims = verify(body["access_token"], jwks, DATABRICKS, f"https://sts.windows.net/{TENANT}/")
    assert list(claims)[:5] == ["aud", "iss", "iat", "nbf", "exp"]
    assert claims["iat"] == claims["nbf"] and claims["exp"] - claims["iat"] == LIFETIME + 300
    assert abs(claims["iat"] - (time.time() - 300)) < 30
    assert claims["scp"] == "user_impersonation" and claims["ver"] == "1.0"
    assert claims["upn"] == claims["unique_name"] == ALICE[0]
    assert claims["tid"] == TENANT and GUID.match(claims["oid"])
    assert claims["appid"] == PUBLIC and claims["appidacr"] == "0" and claims["amr"] == ["pwd"]
    assert claims["name"] == "Alice Example" and len(claims["uti"]) == 22
    assert claims["rh"].startswith("0.A") and claims["aio"]
    assert "idtyp" not in claims and "idp" not in claims


def test_id_token_is_v2_for_the_client(http: httpx.Client, jwks: Dict[str, Any], emu: Emulator) -> None:
    body = password(http).json()
    header = jwt.get_unverified_header(body["id_token"])
    assert list(header) == ["typ", "alg", "kid", "rh"]
    claims = verify(body["id_token"], jwks, PUBLIC, f"{emu.url}/{TENANT}/v2.0")
    assert claims["ver"] == "2.0" and claims["tid"] == TENANT and claims["preferred_username"] == ALICE[0]
    assert claims["name"] == "Alice Example" and claims["sub"] and "nonce" not in claims
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["oid"] == access["oid"] and claims["rh"] == header["rh"]
    assert claims["exp"] - claims["iat"] == 3600 + 300


def test_client_info_only_on_request(http: httpx.Client) -> None:
    body = password(http, client_info="1").json()
    raw = body["client_info"]
    assert "=" not in raw
    info = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert list(info) == ["uid", "utid"] and info == {"uid": claims["oid"], "utid": TENANT}
    assert "client_info" not in password(http).json()


def test_graph_short_scopes_are_qualified(http: httpx.Client, jwks: Dict[str, Any]) -> None:
    body = password(http, scope="User.Read offline_access openid").json()
    assert body["scope"] == "https://graph.microsoft.com/User.Read openid"
    claims = verify(body["access_token"], jwks, "https://graph.microsoft.com", f"https://sts.windows.net/{TENANT}/")
    assert claims["scp"] == "User.Read"


def test_v2_resources_get_v2_access_tokens(http: httpx.Client, jwks: Dict[str, Any], emu: Emulator) -> None:
    body = password(http, scope="api://oauth-core-demo-api/access_as_user").json()
    assert list(jwt.get_unverified_header(body["access_token"])) == ["typ", "alg", "kid"]
    claims = verify(body["access_token"], jwks, DEMO_API, f"{emu.url}/{TENANT}/v2.0")
    assert claims["ver"] == "2.0" and claims["azp"] == PUBLIC and claims["azpacr"] == "0"
    assert claims["scp"] == "access_as_user" and claims["preferred_username"] == ALICE[0]


def test_random_lifetime_by_default() -> None:
    with Emulator(EmulatorConfig.default()) as emu, httpx.Client(base_url=emu.url) as http:
        lifetimes = {password(http, scope=f"{DATABRICKS}/.default").json()["expires_in"] for _ in range(6)}
    assert all(3600 <= n <= 5400 for n in lifetimes) and len(lifetimes) > 1


@pytest.mark.parametrize(
    ("user", "tenant", "error", "code", "suberror"),
    [
        ((ALICE[0], "wrong"), TENANT, "invalid_grant", 50126, None),
        (("nobody@contoso.onmicrosoft.com", "x"), TENANT, "invalid_grant", 50034, None),
        (("disabled@contoso.onmicrosoft.com", "Disabled-Passw0rd!"), TENANT, "invalid_grant", 50057, None),
        (MFA, TENANT, "invalid_grant", 50076, "basic_action"),
        (
            ("noconsent@contoso.onmicrosoft.com", "NoConsent-Passw0rd!"),
            TENANT,
            "invalid_grant",
            65001,
            "consent_required",
        ),
        (ALICE, "common", "invalid_request", 9001023, None),
        (ALICE, "consumers", "invalid_request", 9001023, None),
    ],
)
def test_password_grant_refusals(
    http: httpx.Client, user: Tuple[str, str], tenant: str, error: str, code: int, suberror: Optional[str]
) -> None:
    assert_error(password(http, user=user, tenant=tenant), 400, error, code, suberror)


def test_password_grant_works_on_organizations_and_the_domain(http: httpx.Client) -> None:
    assert password(http, tenant="organizations").status_code == 200
    assert password(http, tenant=DOMAIN).status_code == 200


def test_mfa_message_names_the_resource(http: httpx.Client) -> None:
    body = assert_error(password(http, user=MFA), 400, "invalid_grant", 50076, "basic_action")
    assert f"to access '{DATABRICKS}'" in body["error_description"]


@pytest.mark.parametrize("missing", ["username", "password", "scope"])
def test_missing_parameters_are_named(http: httpx.Client, missing: str) -> None:
    form = {"grant_type": "password", "client_id": PUBLIC, "username": ALICE[0], "password": ALICE[1], "scope": DBX}
    del form[missing]
    body = assert_error(token(http, **form), 400, "invalid_request", 900144)
    assert f"parameter: '{missing}'" in body["error_description"]


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        (f"{DATABRICKS}/user_impersonation User.Read", "invalid_scope", 70011),
        (f"{DATABRICKS}/not_a_permission", "invalid_scope", 70011),
        ("11111111-2222-3333-4444-555555555555/.default", "invalid_resource", 500011),
        ("https://unknown.example.org/.default", "invalid_resource", 500011),
    ],
)
def test_scope_refusals(http: httpx.Client, scope: str, error: str, code: int) -> None:
    assert_error(password(http, scope=scope), 400, error, code)


# --- token endpoint input handling ---------------------------------------------------------------


def test_json_bodies_are_refused_like_entra(http: httpx.Client) -> None:
    resp = http.post(f"/{TENANT}/oauth2/v2.0/token", json={"grant_type": "password", "client_id": PUBLIC})
    body = assert_error(resp, 400, "invalid_request", 900144)
    assert "'grant_type'" in body["error_description"]


@pytest.mark.parametrize(
    "body",
    [b"grant_type=password&client_id=%zz", b"grant_type=password&client_id=\xff", b"a=1&a=2", b"=x", b"a=1&&b"],
)
def test_malformed_forms_are_400_not_500(http: httpx.Client, body: bytes) -> None:
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_error(resp, 400, "invalid_request", 9002313)


def test_huge_bodies_are_refused_without_reading(http: httpx.Client) -> None:
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        content=b"a=" + b"x" * (1024 * 1024 + 10),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(resp, 400, "invalid_request", 9002313)
    assert resp.headers["connection"] == "close"


def test_token_endpoint_refusals(http: httpx.Client) -> None:
    assert_error(token(http, client_id=PUBLIC), 400, "invalid_request", 900144)
    assert_error(token(http, grant_type="magic", client_id=PUBLIC), 400, "unsupported_grant_type", 70003)
    assert_error(http.get(f"/{TENANT}/oauth2/v2.0/token"), 400, "invalid_request", 900561)
    assert_error(password(http, tenant="fabrikam.com"), 400, "invalid_request", 90002)
    assert_error(password(http, client_id=str(uuid.uuid4())), 400, "unauthorized_client", 700016)
    assert_error(password(http, client_secret="x"), 401, "invalid_client", 700025)
    assert_error(password(http, resource=DATABRICKS), 400, "invalid_request", 901002)
    form = {"grant_type": "password", "username": ALICE[0], "password": ALICE[1], "scope": DBX}
    assert_error(token(http, **form), 400, "invalid_request", 900144)


# --- authorization code flow ---------------------------------------------------------------------


def test_authorize_page_flow_end_to_end(http: httpx.Client, jwks: Dict[str, Any], emu: Emulator) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(code_challenge=challenge, code_challenge_method="S256", login_hint=ALICE[0])
    page = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    for element in ('id="username"', 'id="password"', 'id="signin"', 'id="cancel"'):
        assert element in page.text
    assert f'value="{ALICE[0]}"' in page.text
    form = {"flowtoken": flow_token(page.text), "username": ALICE[0], "password": ALICE[1], "action": "signin"}
    resp = http.post(f"/{TENANT}/oauth2/v2.0/authorize", data=form)
    location = resp.headers["location"]
    assert resp.status_code == 302 and location.startswith(f"{REDIRECT}/?code=0.A") and location.endswith("#")
    query = parse_qs(urlsplit(location).query)
    assert list(query) == ["code", "state", "session_state"]
    assert query["state"] == ["st-123"] and GUID.match(query["session_state"][0])
    body = redeem(http, query["code"][0], verifier, client_info="1").json()
    assert body["scope"] == f"{DATABRICKS}/user_impersonation openid profile" and "refresh_token" in body
    id_claims = verify(body["id_token"], jwks, PUBLIC, f"{emu.url}/{TENANT}/v2.0")
    assert id_claims["nonce"] == "nonce-456"
    assert_error(redeem(http, query["code"][0], verifier), 400, "invalid_grant", 54005)


def test_authorize_sign_in_page_refuses_a_wrong_password(http: httpx.Client) -> None:
    page = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params())
    flow = flow_token(page.text)
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/authorize",
        data={"flowtoken": flow, "username": ALICE[0], "password": "nope", "action": "signin"},
    )
    assert resp.status_code == 200 and "location" not in resp.headers
    assert "Your account or password is incorrect" in resp.text and flow in resp.text
    retry = http.post(
        f"/{TENANT}/oauth2/v2.0/authorize",
        data={"flowtoken": flow, "username": ALICE[0], "password": ALICE[1], "action": "signin"},
    )
    assert retry.status_code == 302


def test_cancel_redirects_access_denied(http: httpx.Client) -> None:
    page = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params())
    resp = http.post(f"/{TENANT}/oauth2/v2.0/authorize", data={"flowtoken": flow_token(page.text), "action": "cancel"})
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location.startswith(f"{REDIRECT}/?error=access_denied&error_description=AADSTS65004")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-123"] and "Trace ID: " in query["error_description"][0]


def test_prompt_none_redirects_login_required(http: httpx.Client) -> None:
    resp = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(prompt="none"))
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert resp.status_code == 302 and query["error"] == ["login_required"]
    assert query["error_description"][0].startswith("AADSTS50058: ") and query["state"] == ["st-123"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"client_id": "11111111-1111-1111-1111-111111111111"}, 700016),
        ({"redirect_uri": "https://evil.example.org/cb"}, 50011),
        ({"redirect_uri": "http://localhost:53123/other-path"}, 50011),
        ({"redirect_uri": "http://127.0.0.2:8080"}, 50011),
        ({"redirect_uri": "not a uri"}, 90102),
        ({"client_id": ""}, 900144),
    ],
)
def test_untrusted_authorize_requests_get_an_html_page_not_a_redirect(
    http: httpx.Client, changes: Dict[str, str], code: int
) -> None:
    resp = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(**changes))
    assert resp.status_code == 400 and "location" not in resp.headers
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert f"AADSTS{code}: " in resp.text and resp.headers["x-ms-request-id"] in resp.text


def test_authorize_unknown_tenant_is_an_html_page(http: httpx.Client) -> None:
    resp = http.get("/fabrikam.com/oauth2/v2.0/authorize", params=authorize_params())
    assert resp.status_code == 400 and "AADSTS90002" in resp.text and "location" not in resp.headers


@pytest.mark.parametrize("redirect", ["http://localhost", "http://localhost:1", "http://127.0.0.1:65000/"])
def test_loopback_redirect_ports_are_free(http: httpx.Client, redirect: str) -> None:
    resp = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(redirect_uri=redirect))
    assert resp.status_code == 200 and 'id="signin"' in resp.text


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type", 700054),
        ({"scope": ""}, "invalid_request", 900144),
        ({"scope": "https://unknown.example.org/x"}, "invalid_resource", 500011),
        ({"code_challenge": "x" * 43, "code_challenge_method": "S512"}, "invalid_request", 9002313),
    ],
)
def test_bad_authorize_parameters_redirect_with_an_error(
    http: httpx.Client, changes: Dict[str, str], error: str, code: int
) -> None:
    resp = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(**changes))
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert resp.status_code == 302 and query["error"] == [error]
    assert query["error_description"][0].startswith(f"AADSTS{code}: ")


def test_hostile_values_are_escaped(http: httpx.Client) -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = http.get(
        f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(login_hint=hostile, state=hostile, nonce=hostile)
    )
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img" not in page.text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    bad = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(redirect_uri=f"https://x.org/{hostile}"))
    assert bad.status_code == 400 and "<script>alert" not in bad.text
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/authorize",
        data={"flowtoken": flow_token(page.text), "username": hostile, "password": "x", "action": "signin"},
    )
    assert "<script>alert" not in resp.text and "&lt;script&gt;" in resp.text
    redirected = sign_in(http, authorize_params(state=hostile))
    assert redirected.status_code == 302 and "<script>" not in redirected.headers["location"]


def test_hostile_state_round_trips_encoded(http: httpx.Client) -> None:
    state = "a&b=c#d <e>"
    resp = sign_in(http, authorize_params(state=state))
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"] == [state] and "<" not in resp.headers["location"]


def test_code_is_bound_to_pkce_redirect_tenant_and_client(http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(code_challenge=challenge, code_challenge_method="S256")
    code = code_from(sign_in(http, params))
    assert_error(redeem(http, code, new_code_verifier()), 400, "invalid_grant", 501481)
    assert_error(redeem(http, code, None), 400, "invalid_grant", 501481)
    assert_error(redeem(http, code, "short"), 400, "invalid_grant", 501481)
    assert_error(redeem(http, code, verifier, redirect_uri="http://localhost:1"), 400, "invalid_grant", 500112)
    assert_error(redeem(http, code, verifier, tenant="common"), 400, "invalid_grant", 700005)
    other = redeem(http, code, verifier, client_id=CONFIDENTIAL, client_secret=SECRET)
    assert_error(other, 400, "invalid_grant", 70000)
    assert redeem(http, code, verifier).status_code == 200
    assert_error(redeem(http, "0.Anot-a-code", verifier), 400, "invalid_grant", 9002313)
    assert_error(redeem(http, "", verifier), 400, "invalid_request", 900144)


def test_plain_pkce_and_codes_without_pkce(http: httpx.Client) -> None:
    verifier = new_code_verifier()
    code = code_from(sign_in(http, authorize_params(code_challenge=verifier)))
    assert redeem(http, code, verifier).status_code == 200
    code = code_from(sign_in(http, authorize_params()))
    assert redeem(http, code, None).status_code == 200


def test_codes_from_organizations_redeem_at_the_tenant(http: httpx.Client) -> None:
    code = code_from(sign_in(http, authorize_params(), tenant="organizations"))
    assert redeem(http, code, None, tenant=TENANT).status_code == 200


def test_codes_expire_after_ten_minutes(clocked: Tuple[Emulator, EmuClock, httpx.Client]) -> None:
    _emu, clock, http = clocked
    code = code_from(sign_in(http, authorize_params()))
    clock.advance(601)
    assert_error(redeem(http, code, None), 400, "invalid_grant", 70008)


def test_interactive_mfa_user_gets_mfa_amr(http: httpx.Client) -> None:
    code = code_from(sign_in(http, authorize_params(), user=MFA))
    body = redeem(http, code, None).json()
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["amr"] == ["pwd", "mfa"]


def test_confidential_client_redeems_with_its_secret(http: httpx.Client) -> None:
    code = code_from(sign_in(http, authorize_params(client_id=CONFIDENTIAL)))
    form = {"client_id": CONFIDENTIAL}
    assert_error(redeem(http, code, None, **form), 401, "invalid_client", 7000218)
    assert_error(redeem(http, code, None, client_secret="wrong", **form), 401, "invalid_client", 7000215)
    body = redeem(http, code, None, client_secret=SECRET, **form).json()
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["appidacr"] == "1"


def test_fragment_and_form_post_response_modes(http: httpx.Client) -> None:
    fragment = sign_in(http, authorize_params(response_mode="fragment"))
    assert fragment.headers["location"].startswith(f"{REDIRECT}/#code=0.A")
    posted = sign_in(http, authorize_params(response_mode="form_post"))
    assert posted.status_code == 200 and f'action="{REDIRECT}"' in posted.text and 'name="code"' in posted.text


# --- refresh tokens ------------------------------------------------------------------------------


def refresh(http: httpx.Client, rt: str, scope: Optional[str] = DBX, **extra: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": PUBLIC, "refresh_token": rt}
    if scope is not None:
        form["scope"] = scope
    return token(http, **{**form, **extra})


def test_refresh_rotates_and_revokes_the_redeemed_token() -> None:
    # Revocation on rotation is opt-in (Entra keeps a rotated-away refresh token valid).
    config = make_config(revoke_rotated_refresh_tokens=True)
    with Emulator(config) as emu, httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as http:
        _refresh_rotates_and_revokes(http)


def _refresh_rotates_and_revokes(http: httpx.Client) -> None:
    first = password(http).json()["refresh_token"]
    second = refresh(http, first).json()
    assert second["refresh_token"] != first and second["scope"] == f"{DATABRICKS}/user_impersonation openid profile"
    body = assert_error(refresh(http, first), 400, "invalid_grant", 70000)
    assert "'refresh_token' or 'assertion' is not valid" in body["error_description"]
    third = refresh(http, second["refresh_token"], scope=None).json()
    assert "refresh_token" in third and "id_token" in third


def test_rotated_refresh_tokens_stay_valid_when_configured() -> None:
    with Emulator(make_config(revoke_rotated_refresh_tokens=False)) as emu, httpx.Client(base_url=emu.url) as http:
        first = password(http).json()["refresh_token"]
        assert refresh(http, first).status_code == 200
        assert refresh(http, first).status_code == 200


def test_refresh_token_redeems_for_another_resource(http: httpx.Client, jwks: Dict[str, Any]) -> None:
    rt = password(http).json()["refresh_token"]
    body = refresh(http, rt, scope="https://graph.microsoft.com/User.Read offline_access").json()
    assert body["scope"] == "https://graph.microsoft.com/User.Read" and "refresh_token" in body
    verify(body["access_token"], jwks, "https://graph.microsoft.com", f"https://sts.windows.net/{TENANT}/")


def test_revoked_users_refresh_tokens_fail_50173(http: httpx.Client, emu: Emulator) -> None:
    rt = password(http, user=("noconsent@contoso.onmicrosoft.com", "x"), scope=DBX)
    assert rt.status_code == 400
    code = code_from(
        sign_in(http, authorize_params(), user=("noconsent@contoso.onmicrosoft.com", "NoConsent-Passw0rd!"))
    )
    rt_text = redeem(http, code, None).json()["refresh_token"]
    emu.revoke_refresh_tokens("NoConsent@contoso.onmicrosoft.com")
    body = assert_error(refresh(http, rt_text), 400, "invalid_grant", 50173)
    assert "TokensValidFrom" in body["error_description"]
    code = code_from(
        sign_in(http, authorize_params(), user=("noconsent@contoso.onmicrosoft.com", "NoConsent-Passw0rd!"))
    )
    assert refresh(http, redeem(http, code, None).json()["refresh_token"]).status_code == 200


def test_refresh_tokens_expire_by_inactivity(clocked: Tuple[Emulator, EmuClock, httpx.Client]) -> None:
    _emu, clock, http = clocked
    rt = password(http).json()["refresh_token"]
    clock.advance(89 * 86400)
    rt = refresh(http, rt).json()["refresh_token"]
    clock.advance(90 * 86400 + 1)
    body = assert_error(refresh(http, rt), 400, "invalid_grant", 700082, "bad_token")
    assert "inactive for 90.00:00:00" in body["error_description"]


def test_refresh_tokens_are_bound_to_the_client(http: httpx.Client) -> None:
    rt = password(http).json()["refresh_token"]
    assert_error(refresh(http, rt, client_id=CONFIDENTIAL, client_secret=SECRET), 400, "invalid_grant", 70000)
    assert_error(refresh(http, "0.Aunknown"), 400, "invalid_grant", 70000)
    assert_error(refresh(http, "garbage"), 400, "invalid_grant", 9002313)


# --- client credentials --------------------------------------------------------------------------


def client_credentials(http: httpx.Client, tenant: str = TENANT, **form: str) -> httpx.Response:
    base = {"grant_type": "client_credentials", "client_id": CONFIDENTIAL, "scope": f"{DATABRICKS}/.default"}
    return token(http, tenant, **{**base, **form})


def test_client_credentials_with_a_secret(http: httpx.Client, jwks: Dict[str, Any]) -> None:
    body = client_credentials(http, client_secret=SECRET).json()
    assert list(body) == ["token_type", "expires_in", "ext_expires_in", "access_token"]
    issuer = f"https://sts.windows.net/{TENANT}/"
    claims = verify(body["access_token"], jwks, DATABRICKS, issuer)
    assert claims["idtyp"] == "app" and claims["idp"] == issuer and claims["appidacr"] == "1"
    assert claims["appid"] == CONFIDENTIAL and claims["oid"] == claims["sub"] and "scp" not in claims
    assert list(jwt.get_unverified_header(body["access_token"])) == ["typ", "alg", "x5t", "kid"]


def test_client_credentials_with_http_basic(http: httpx.Client) -> None:
    resp = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{DATABRICKS}/.default"},
        auth=(CONFIDENTIAL, SECRET),
    )
    assert resp.status_code == 200


def test_client_credentials_refusals(http: httpx.Client) -> None:
    assert_error(client_credentials(http, client_secret="wrong"), 401, "invalid_client", 7000215)
    assert_error(client_credentials(http), 401, "invalid_client", 7000218)
    assert_error(client_credentials(http, client_id=PUBLIC), 401, "invalid_client", 7000218)
    scope = f"{DATABRICKS}/user_impersonation"
    assert_error(client_credentials(http, client_secret=SECRET, scope=scope), 400, "invalid_scope", 1002012)
    unknown = "11111111-2222-3333-4444-555555555555/.default"
    assert_error(client_credentials(http, client_secret=SECRET, scope=unknown), 400, "invalid_resource", 500011)
    assert_error(client_credentials(http, "organizations", client_secret=SECRET), 400, "invalid_request", 50059)


def assertion(
    emu: Emulator, cert: Dict[str, Any], *, alg: str = "RS256", header: Optional[Dict[str, str]] = None, **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "aud": f"{emu.url}/{TENANT}/oauth2/v2.0/token",
        "iss": CERT_CLIENT,
        "sub": CERT_CLIENT,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    }
    body.update(claims)
    return jwt.encode(body, cert["key"], algorithm=alg, headers=header or {"x5t": cert["x5t"]})


def with_assertion(http: httpx.Client, signed: str, **extra: str) -> httpx.Response:
    form = {
        "client_id": CERT_CLIENT,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    return client_credentials(http, **{**form, **extra})


def test_client_credentials_with_certificate_assertions(
    http: httpx.Client, emu: Emulator, cert: Dict[str, Any], jwks: Dict[str, Any]
) -> None:
    rs256 = with_assertion(http, assertion(emu, cert)).json()
    claims = verify(rs256["access_token"], jwks, DATABRICKS, f"https://sts.windows.net/{TENANT}/")
    assert claims["appidacr"] == "2" and claims["appid"] == CERT_CLIENT
    ps256 = assertion(emu, cert, alg="PS256", header={"x5t#S256": cert["x5t#S256"]})
    assert with_assertion(http, ps256).status_code == 200


def test_bad_certificate_assertions_are_700027(http: httpx.Client, emu: Emulator, cert: Dict[str, Any]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        assertion(emu, cert, aud=f"{emu.url}/common/oauth2/v2.0/token"),
        assertion(emu, cert, exp=int(time.time()) - 3600),
        assertion(emu, cert, iss=PUBLIC),
        assertion(emu, cert, sub=PUBLIC),
        assertion(emu, cert, header={"x5t": "AAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
        assertion(emu, {**cert, "key": other}),
        "not.a.jwt",
    ]
    for signed in cases:
        assert_error(with_assertion(http, signed), 401, "invalid_client", 700027)
    wrong_type = with_assertion(http, assertion(emu, cert), client_assertion_type="urn:x")
    assert_error(wrong_type, 401, "invalid_client", 700027)
    assert_error(with_assertion(http, assertion(emu, cert), client_id=PUBLIC), 401, "invalid_client", 700025)


# --- device code ---------------------------------------------------------------------------------


def device_code(http: httpx.Client, scope: str = DBX, tenant: str = TENANT) -> httpx.Response:
    return http.post(f"/{tenant}/oauth2/v2.0/devicecode", data={"client_id": PUBLIC, "scope": scope})


def poll(http: httpx.Client, code: str, tenant: str = TENANT) -> httpx.Response:
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    return token(http, tenant, grant_type=grant, client_id=PUBLIC, device_code=code)


def test_device_code_from_start_to_tokens(http: httpx.Client, emu: Emulator) -> None:
    body = device_code(http).json()
    assert list(body) == ["user_code", "device_code", "verification_uri", "expires_in", "interval", "message"]
    assert body["verification_uri"] == f"{emu.url}/devicelogin" and body["expires_in"] == 900 and body["interval"] == 1
    assert body["user_code"] in body["message"] and body["verification_uri"] in body["message"]
    assert_error(poll(http, body["device_code"]), 400, "authorization_pending", 70016)
    emu.approve_device_code(body["user_code"].lower(), ALICE[0])
    tokens = poll(http, body["device_code"]).json()
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    assert_error(poll(http, body["device_code"]), 400, "bad_verification_code", 70018)
    assert emu.count("token", grant_type="urn:ietf:params:oauth:grant-type:device_code") >= 3


def test_device_code_through_the_devicelogin_page(http: httpx.Client) -> None:
    body = device_code(http).json()
    first = http.get("/devicelogin")
    assert first.status_code == 200 and 'id="otc"' in first.text
    wrong = http.post("/devicelogin", data={"otc": "NOPE"})
    assert "That code didn" in wrong.text
    second = http.post("/devicelogin", data={"otc": body["user_code"]})
    assert 'id="username"' in second.text and "oauth-core demo app" in second.text
    flow = flow_token(second.text)
    bad = http.post("/devicelogin", data={"flowtoken": flow, "username": MFA[0], "password": "x"})
    assert "incorrect" in bad.text
    done = http.post("/devicelogin", data={"flowtoken": flow, "username": MFA[0], "password": MFA[1]})
    assert "You have signed in" in done.text
    tokens = poll(http, body["device_code"]).json()
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["amr"] == ["pwd", "mfa"]


def test_device_code_declined_unknown_and_bad_requests(http: httpx.Client, emu: Emulator) -> None:
    body = device_code(http).json()
    second = http.post("/devicelogin", data={"otc": body["user_code"]})
    http.post("/devicelogin", data={"flowtoken": flow_token(second.text), "action": "cancel"})
    assert_error(poll(http, body["device_code"]), 400, "authorization_declined", 65004)
    assert_error(poll(http, "DAQABunknown"), 400, "bad_verification_code", 70018)
    other_tenant = device_code(http).json()["device_code"]
    assert_error(poll(http, other_tenant, tenant="organizations"), 400, "bad_verification_code", 70018)
    assert_error(device_code(http, scope=""), 400, "invalid_request", 900144)
    assert_error(device_code(http, tenant="nowhere"), 400, "invalid_request", 90002)
    with pytest.raises(ConfigError):
        emu.approve_device_code("ZZZZZZZZZ", ALICE[0])
    with pytest.raises(ConfigError):
        emu.approve_device_code(device_code(http).json()["user_code"], "nobody@contoso.onmicrosoft.com")


def test_device_codes_expire(clocked: Tuple[Emulator, EmuClock, httpx.Client]) -> None:
    emu, clock, http = clocked
    body = device_code(http).json()
    clock.advance(901)
    assert_error(poll(http, body["device_code"]), 400, "expired_token", 70020)
    with pytest.raises(ConfigError):
        emu.approve_device_code(body["user_code"], ALICE[0])


# --- server, TLS, CLI, config --------------------------------------------------------------------


def test_tls_mode_serves_https_trusted_by_the_ca_bundle() -> None:
    with Emulator(make_config(), tls=True) as emu:
        assert emu.url.startswith("https://127.0.0.1:") and emu.ca_bundle
        assert "BEGIN CERTIFICATE" in Path(emu.ca_bundle).read_text()
        with httpx.Client(verify=ssl.create_default_context(cafile=emu.ca_bundle)) as http:
            doc = http.get(f"{emu.url}/{TENANT}/v2.0/.well-known/openid-configuration").json()
            assert doc["issuer"] == f"{emu.url}/{TENANT}/v2.0"
            via_name = emu.url.replace("127.0.0.1", "localhost")
            doc = http.get(f"{via_name}/{TENANT}/v2.0/.well-known/openid-configuration").json()
            assert doc["token_endpoint"].startswith(via_name)
        with pytest.raises(httpx.ConnectError), httpx.Client() as untrusting:
            untrusting.get(f"{emu.url}/{TENANT}/discovery/v2.0/keys")
        bundle = Path(emu.ca_bundle)
    assert not bundle.exists()


def test_ca_dir_is_kept(tmp_path: Path) -> None:
    with Emulator(make_config(), tls=True, ca_dir=str(tmp_path / "ca")) as emu:
        assert emu.ca_bundle == str(tmp_path / "ca" / "ca.pem")
        with httpx.Client(verify=ssl.create_default_context(cafile=emu.ca_bundle)) as http:
            http.get(f"{emu.url}/{TENANT}/discovery/v2.0/keys")
    assert (tmp_path / "ca" / "ca.pem").exists()
    assert emu.count("keys") == 1 and emu.requests[0].status == 200
    with pytest.raises(ConfigError, match="not running"):
        emu.inject("token", Fault("status", status=500))


def test_start_up_is_fast() -> None:
    started = time.perf_counter()
    emu = Emulator(EmulatorConfig.default(), tls=True).start()
    elapsed = time.perf_counter() - started
    emu.stop()
    assert elapsed < 2.0


def test_keep_alive_and_content_length_on_one_connection(emu: Emulator) -> None:
    import socket

    port = urlsplit(emu.url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        request = f"GET /{TENANT}/discovery/v2.0/keys HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for _ in range(2):
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            body = b""
            while len(body) < length:
                body += sock.recv(length - len(body))
            assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["keys"]


def test_listen_address_must_be_loopback() -> None:
    with pytest.raises(ConfigError):
        Emulator(host="0.0.0.0")
    with pytest.raises(ConfigError):
        Emulator(host="example.org")


def test_ipv6_loopback_when_available() -> None:
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        emu = Emulator(make_config(), host="::1").start()
    except OSError:
        pytest.skip("::1 is not configured")
    try:
        assert emu.url.startswith("http://[::1]:")
        with httpx.Client() as http:
            assert http.get(f"{emu.url}/{TENANT}/discovery/v2.0/keys").status_code == 200
    finally:
        emu.stop()


def test_missing_cryptography_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ConfigError, match=r"pip install 'oauth-core\[crypto\]'"):
        Emulator()


def test_request_log_has_no_secrets(http: httpx.Client, emu: Emulator) -> None:
    before = len(emu.requests)
    password(http, user=(ALICE[0], "S3cret-in-the-body"))
    http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=authorize_params(state="secret-state"))
    records = emu.requests[before:]
    assert [r.endpoint for r in records] == ["token", "authorize"]
    assert isinstance(records[0], RequestRecord) and records[0].grant_type == "password"
    assert records[0].status == 400 and records[1].status == 200 and records[1].method == "GET"
    assert "S3cret" not in repr(records) and "secret-state" not in repr(records) and "?" not in records[1].path
    assert emu.count("authorize") >= 1


def test_inject_validates_its_arguments(emu: Emulator) -> None:
    with pytest.raises(ConfigError):
        emu.inject("nowhere", Fault("status", status=500))
    with pytest.raises(ConfigError):
        emu.inject("token", Fault("status", status=500), times=0)


def test_config_from_file(tmp_path: Path, cert: Dict[str, Any]) -> None:
    (tmp_path / "client.pem").write_text(cert["pem"])
    data = {
        "token_lifetime": 1234,
        "users": [
            {
                "username": "zoe@contoso.onmicrosoft.com",
                "password": "pw",
                "display_name": "Zoe",
                "object_id": str(uuid.uuid4()),
            }
        ],
        "clients": [{"client_id": CERT_CLIENT, "display_name": "cert", "certificates": ["client.pem"]}],
    }
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(data))
    config = EmulatorConfig.from_file(str(path))
    assert config.token_lifetime == 1234 and config.users[0].username == "zoe@contoso.onmicrosoft.com"
    assert config.clients[0].certificates == (cert["pem"],) and config.clients[0].is_confidential
    assert config.tenant_id == TENANT and len(config.resources) == 7
    path.write_text(json.dumps({"tenant": "x"}))
    with pytest.raises(ConfigError, match="unknown key"):
        EmulatorConfig.from_file(str(path))
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        EmulatorConfig.from_file(str(path))
    with pytest.raises(ConfigError):
        EmulatorConfig.from_file(str(tmp_path / "missing.json"))


def read_banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, "the emulator exited early"
        lines.append(line)
        if line.startswith("Press Ctrl+C"):
            return "".join(lines)


def test_python_dash_m_prints_its_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauth_core.emulator", "--port", "0", "--token-lifetime", "3600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = read_banner(proc)
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner.splitlines()[0]).group(1)  # type: ignore[union-attr]
        assert TENANT in banner and PUBLIC in banner and SECRET in banner and ALICE[1] in banner
        with httpx.Client(base_url=url) as http:
            assert password(http).json()["expires_in"] == 3600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()


def test_python_dash_m_with_tls_and_faults(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauth_core.emulator", "--tls", "--ca-dir", str(tmp_path), "--fault", "token:503x2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = read_banner(proc)
        assert f"SSL_CERT_FILE={tmp_path / 'ca.pem'}" in banner
        url = re.search(r"(https://127\.0\.0\.1:\d+)", banner).group(1)  # type: ignore[union-attr]
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))) as http:
            assert [password(http).status_code for _ in range(3)] == [503, 503, 200]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()


def test_python_dash_m_refuses_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oauth_core.emulator", "--fault", "token:teapot"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "unknown kind" in result.stderr
