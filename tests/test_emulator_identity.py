"""The emulator's token sources without a user or a secret, over real loopback HTTP.

Managed identity (IMDS, App Service, Azure Arc, Cloud Shell, Azure ML, Service Fabric), the hosted
OIDC issuers with federated client assertions, and the on-behalf-of grant.
"""

from __future__ import annotations

import os
import ssl
import stat
import time
from dataclasses import replace
from typing import Any, Dict, Iterator, List

import httpx
import jwt
import pytest

from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

GRAPH = "https://graph.microsoft.com"
DEMO_API = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False, clock=clock) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def claims_of(token: str) -> Dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def tenant_key(emu: Emulator, http: httpx.Client, token: str) -> Any:
    keys = http.get(f"{emu.url}/{emu.tenant_id}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.PyJWK(next(k for k in keys if k["kid"] == kid)).key


def imds(emu: Emulator, http: httpx.Client, headers: Any = None, **params: str) -> httpx.Response:
    query = {"api-version": "2018-02-01", "resource": GRAPH, **params}
    return http.get(f"{emu.url}/metadata/identity/oauth2/token", params=query, headers=headers or {"Metadata": "true"})


# IMDS


def test_imds_system_identity_token_shape(emu: Emulator, http: httpx.Client) -> None:
    response = imds(emu, http)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    }
    assert all(isinstance(body[k], str) for k in ("expires_in", "expires_on", "ext_expires_in", "not_before"))
    system = emu.config.system_identity
    assert system is not None and body["client_id"] == system.client_id and body["resource"] == GRAPH
    token = body["access_token"]
    claims = jwt.decode(token, tenant_key(emu, http, token), algorithms=["RS256"], audience=GRAPH)
    assert claims["appid"] == system.client_id and claims["oid"] == claims["sub"] == system.object_id
    assert claims["idtyp"] == "app" and claims["tid"] == emu.tenant_id and claims["xms_mirid"] == system.resource_id
    assert claims["iss"] == f"https://sts.windows.net/{emu.tenant_id}/"
    assert int(body["expires_on"]) == claims["exp"] and int(body["expires_in"]) == claims["exp"] - int(emu_now(emu))


def emu_now(emu: Emulator) -> float:
    return emu._service.clock()


def test_imds_without_metadata_header_is_a_cheap_400(emu: Emulator, http: httpx.Client) -> None:
    response = http.get(f"{emu.url}/metadata/identity/oauth2/token", params={"resource": GRAPH})
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request_102",
        "error_description": "Required metadata header not specified",
    }
    record = emu.requests[-1]
    assert record.endpoint == "imds" and "metadata" not in record.header_names


@pytest.mark.parametrize("selector", ["client_id", "object_id", "msi_res_id"])
def test_imds_user_assigned_by_each_selector(emu: Emulator, http: httpx.Client, selector: str) -> None:
    uami = emu.config.user_identities[0]
    value = {"client_id": uami.client_id, "object_id": uami.object_id, "msi_res_id": uami.resource_id}[selector]
    response = imds(emu, http, **{selector: value})
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert claims["appid"] == uami.client_id and claims["xms_mirid"] == uami.resource_id
    record = emu.requests[-1]
    assert record.param("api-version") == "2018-02-01" and record.param(selector) == value
    assert record.param("resource") == GRAPH and "metadata" in record.header_names


def test_imds_refusals(emu: Emulator, http: httpx.Client) -> None:
    unknown = imds(emu, http, client_id="00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    resource = imds(emu, http, resource="https://nowhere.example")
    assert resource.status_code == 400 and resource.json()["error"] == "invalid_resource"
    assert "AADSTS500011" in resource.json()["error_description"]
    assert imds(emu, http, **{"api-version": "2099-01-01"}).status_code == 400


def test_imds_no_identity_assigned() -> None:
    config = replace(EmulatorConfig.default(), system_identity=None, user_identities=())
    with Emulator(config) as bare, httpx.Client(trust_env=False) as http:
        response = imds(bare, http)
        assert response.status_code == 400 and response.json()["error_description"] == "Identity not found"


def test_imds_faults_throttle_and_starting(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("imds", Fault("status", status=429, retry_after=1), times=2)
    emu.inject("imds", Fault("status", status=410))
    statuses = [imds(emu, http).status_code for _ in range(4)]
    assert statuses == [429, 429, 410, 200]


# App Service, Azure ML, Cloud Shell, Service Fabric


def app_service(emu: Emulator, http: httpx.Client, header: Any = None, **params: str) -> httpx.Response:
    env = emu.identity_environment("appservice")
    query = {"api-version": "2019-08-01", "resource": GRAPH, **params}
    sent = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"] if header is None else header}
    return http.get(env["IDENTITY_ENDPOINT"], params=query, headers=sent)


def test_app_service_shape_and_selectors(emu: Emulator, http: httpx.Client) -> None:
    response = app_service(emu, http)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str) and body["expires_on"].isdigit()
    uami = emu.config.user_identities[0]
    for name, value in (
        ("client_id", uami.client_id),
        ("principal_id", uami.object_id),
        ("mi_res_id", uami.resource_id),
    ):
        picked = app_service(emu, http, **{name: value})
        assert picked.status_code == 200 and claims_of(picked.json()["access_token"])["oid"] == uami.object_id


def test_app_service_refusals(emu: Emulator, http: httpx.Client) -> None:
    wrong = app_service(emu, http, header="not-the-secret")
    assert wrong.status_code == 401 and set(wrong.json()) == {"statusCode", "message", "correlationId"}
    env = emu.identity_environment("appservice")
    missing = http.get(env["IDENTITY_ENDPOINT"], params={"api-version": "2019-08-01", "resource": GRAPH})
    assert missing.status_code == 401
    unknown = app_service(emu, http, client_id="00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 400 and unknown.json()["message"] == "Unable to load the proper Managed Identity."
    assert app_service(emu, http, **{"api-version": "2017-09-01"}).status_code == 400


def test_azure_ml(emu: Emulator, http: httpx.Client) -> None:
    env = emu.identity_environment("azureml")
    uami = emu.config.user_identities[0]
    query = {"api-version": "2017-09-01", "resource": GRAPH, "clientid": uami.client_id}
    response = http.get(env["MSI_ENDPOINT"], params=query, headers={"secret": env["MSI_SECRET"]})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["expires_on"], str)
    assert claims_of(response.json()["access_token"])["appid"] == uami.client_id
    assert http.get(env["MSI_ENDPOINT"], params=query, headers={"secret": "wrong"}).status_code == 401


def test_cloud_shell(emu: Emulator, http: httpx.Client) -> None:
    endpoint = emu.identity_environment("cloudshell")["MSI_ENDPOINT"]
    response = http.post(endpoint, data={"resource": GRAPH}, headers={"Metadata": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resource"] == GRAPH and isinstance(body["expires_in"], str)
    claims = claims_of(body["access_token"])
    assert claims["upn"] == ALICE[0] and claims["aud"] == GRAPH
    assert http.post(endpoint, data={"resource": GRAPH}).status_code == 400


def test_service_fabric_needs_tls_and_its_secret() -> None:
    with Emulator(tls=True) as emu:
        assert emu.ca_bundle is not None
        env = emu.identity_environment("servicefabric")
        assert len(env["IDENTITY_SERVER_THUMBPRINT"]) == 40
        with httpx.Client(verify=ssl.create_default_context(cafile=emu.ca_bundle), trust_env=False) as http:
            query = {"api-version": "2019-07-01-preview", "resource": GRAPH}
            ok = http.get(env["IDENTITY_ENDPOINT"], params=query, headers={"Secret": env["IDENTITY_HEADER"]})
            assert ok.status_code == 200 and isinstance(ok.json()["expires_on"], int)
            bad = http.get(env["IDENTITY_ENDPOINT"], params=query)
            assert bad.status_code == 401 and bad.json()["error"]["code"] == "SecretHeaderNotFound"
    with Emulator() as plain, pytest.raises(ConfigError, match="https only"):
        plain.identity_environment("servicefabric")


# Azure Arc


def test_arc_challenge_key_file_and_token(emu: Emulator, http: httpx.Client) -> None:
    env = emu.identity_environment("arc")
    uami = emu.config.user_identities[0]
    query = {"api-version": "2020-06-01", "resource": GRAPH, "client_id": uami.client_id}
    first = http.get(env["IDENTITY_ENDPOINT"], params=query, headers={"Metadata": "true"})
    assert first.status_code == 401
    scheme, _, path = first.headers["WWW-Authenticate"].partition("=")
    assert scheme == "Basic realm" and os.path.dirname(path) == emu.arc_key_folder and path.endswith(".key")
    assert stat.S_IMODE(os.stat(emu.arc_key_folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        key = handle.read()
    wrong = http.get(env["IDENTITY_ENDPOINT"], params=query, headers={"Metadata": "true", "Authorization": "Basic x"})
    assert wrong.status_code == 401
    sent = {"Metadata": "true", "Authorization": f"Basic {key}"}
    second = http.get(env["IDENTITY_ENDPOINT"], params=query, headers=sent)
    assert second.status_code == 200, second.text
    assert second.json()["client_id"] == uami.client_id and isinstance(second.json()["expires_in"], str)
    assert http.get(env["IDENTITY_ENDPOINT"], params=query).status_code == 400  # no Metadata header


def test_arc_folder_removed_on_stop() -> None:
    emu = Emulator().start()
    folder = emu.arc_key_folder
    assert os.path.isdir(folder)
    emu.stop()
    assert not os.path.exists(folder)


# Federation


def federated(emu: Emulator, http: httpx.Client, assertion: str) -> httpx.Response:
    form = {
        "client_id": emu.identity_environment("workload")["AZURE_CLIENT_ID"],
        "grant_type": "client_credentials",
        "scope": f"{GRAPH}/.default",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    return http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)


def test_issuer_discovery_jwks_and_mint(emu: Emulator, http: httpx.Client) -> None:
    doc = http.get(f"{emu.url}/federation/cluster/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{emu.url}/federation/cluster"
    jwks = http.get(doc["jwks_uri"]).json()
    tenant_kids = {k["kid"] for k in http.get(f"{emu.url}/{emu.tenant_id}/discovery/v2.0/keys").json()["keys"]}
    assert jwks["keys"] and not {k["kid"] for k in jwks["keys"]} & tenant_kids
    minted = http.post(f"{emu.url}/federation/cluster/mint", data={"subject": "system:serviceaccount:ns:sa"})
    assert minted.status_code == 200
    token = minted.json()["token"]
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="api://AzureADTokenExchange", issuer=doc["issuer"])
    assert claims["sub"] == "system:serviceaccount:ns:sa" and claims["kubernetes.io"]["namespace"] == "ns"
    assert http.post(f"{emu.url}/federation/cluster/mint", data={"subject": ""}).status_code == 400
    assert http.get(f"{emu.url}/federation/nope/.well-known/openid-configuration").status_code == 404


def test_federated_assertion_accepted(emu: Emulator, http: httpx.Client) -> None:
    path = emu.identity_environment("workload")["AZURE_FEDERATED_TOKEN_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        response = federated(emu, http, handle.read())
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert claims["appid"] == emu.identity_environment("workload")["AZURE_CLIENT_ID"] and claims["appidacr"] == "2"


def assert_refused(response: httpx.Response, code: int, error: str = "invalid_client") -> Dict[str, Any]:
    assert response.status_code == (401 if error == "invalid_client" else 400), response.text
    body: Dict[str, Any] = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert f"AADSTS{code}:" in body["error_description"] and "Trace ID:" in body["error_description"]
    assert body["trace_id"] and body["correlation_id"] and body["timestamp"]
    return body


def test_federated_mismatches(emu: Emulator, http: httpx.Client, clock: Clock) -> None:
    audience = emu.mint_federated_token(audience="api://SomethingElse")
    assert_refused(federated(emu, http, audience), 700212)
    subject = emu.mint_federated_token(subject="system:serviceaccount:default:Workload")  # case-sensitive
    assert "Workload" in assert_refused(federated(emu, http, subject), 700213)["error_description"]
    foreign = jwt.encode(
        {"iss": "https://elsewhere.example", "sub": "x", "aud": "api://AzureADTokenExchange"}, "k" * 32
    )
    assert_refused(federated(emu, http, foreign), 700027)
    head, payload, signature = emu.mint_federated_token().split(".")
    tampered = ".".join((head, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")))
    assert_refused(federated(emu, http, tampered), 700027)
    old = emu.mint_federated_token(lifetime=60)
    clock.now += 3600
    try:
        assert_refused(federated(emu, http, old), 700024)
    finally:
        clock.now -= 3600


def test_federated_issuer_not_trusted() -> None:
    config = replace(EmulatorConfig.default(), federation_issuers=("cluster", "github"))
    with Emulator(config) as emu, httpx.Client(trust_env=False) as http:
        token = emu.mint_federated_token(issuer="github")
        body = assert_refused(federated(emu, http, token), 700211)
        assert f"{emu.url}/federation/github" in body["error_description"]


def test_certificate_clients_unaffected(emu: Emulator, http: httpx.Client) -> None:
    form = {
        "client_id": emu.config.clients[1].client_id,
        "grant_type": "client_credentials",
        "scope": f"{GRAPH}/.default",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": emu.mint_federated_token(),
    }
    response = http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)
    assert_refused(response, 700027)  # no federated credential: the certificate rules apply as before


# On-behalf-of


def user_token(emu: Emulator, http: httpx.Client, scope: str) -> str:
    form = {"client_id": PUBLIC, "grant_type": "password", "username": ALICE[0], "password": ALICE[1], "scope": scope}
    response = http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def obo(emu: Emulator, http: httpx.Client, assertion: str, scope: str = f"{GRAPH}/User.Read offline_access") -> Any:
    middle = next(c for c in emu.config.clients if c.client_id == DEMO_API)
    form = {
        "client_id": middle.client_id,
        "client_secret": middle.secret or "",
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of",
        "assertion": assertion,
        "scope": scope,
    }
    return http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)


def test_obo_happy_path(emu: Emulator, http: httpx.Client) -> None:
    incoming = user_token(emu, http, "api://oauth-core-demo-api/access_as_user")
    assert claims_of(incoming)["aud"] == DEMO_API
    response = obo(emu, http, incoming)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"token_type", "scope", "expires_in", "ext_expires_in", "access_token", "refresh_token"} <= set(body)
    claims = claims_of(body["access_token"])
    original = claims_of(incoming)
    assert claims["aud"] == GRAPH and claims["appid"] == DEMO_API and claims["upn"] == ALICE[0]
    assert claims["oid"] == original["oid"] and claims["tid"] == original["tid"]
    no_refresh = obo(emu, http, incoming, scope=f"{GRAPH}/User.Read")
    assert no_refresh.status_code == 200 and "refresh_token" not in no_refresh.json()


def test_obo_refusals(emu: Emulator, http: httpx.Client, clock: Clock) -> None:
    for_graph = user_token(emu, http, f"{GRAPH}/User.Read")
    body = assert_refused(obo(emu, http, for_graph), 500131, "invalid_grant")
    assert GRAPH in body["error_description"]
    assert_refused(obo(emu, http, "not-a-jwt"), 50013, "invalid_grant")
    foreign = jwt.encode({"aud": DEMO_API, "iss": "https://elsewhere.example", "exp": 9999999999}, "k" * 32)
    assert_refused(obo(emu, http, foreign), 50013, "invalid_grant")
    incoming = user_token(emu, http, "api://oauth-core-demo-api/access_as_user")
    clock.now += 3 * 3600
    try:
        assert_refused(obo(emu, http, incoming), 500133, "invalid_grant")
    finally:
        clock.now -= 3 * 3600
    missing: List[str] = []
    form = {"client_id": DEMO_API, "client_secret": "emulator-middle-tier-secret", "assertion": incoming}
    form.update({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "scope": f"{GRAPH}/User.Read"})
    response = http.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)
    assert_refused(response, 900144, "invalid_request")
    assert not missing


def test_environment_sources(emu: Emulator) -> None:
    assert emu.identity_environment("imds") == {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emu.url}
    assert set(emu.identity_environment("workload")) == {
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_AUTHORITY_HOST",
    }
    with pytest.raises(ConfigError, match="unknown identity source"):
        emu.identity_environment("nowhere")
