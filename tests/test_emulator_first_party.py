"""The emulator's Microsoft first-party resources: tokens for the Azure SDKs' scopes, offline.

Every tenant has Azure Resource Manager, Storage, Key Vault, Microsoft Graph, Azure SQL and Azure
Databricks; the emulator's default tenant does too, and issues their v1 tokens (``sts.windows.net``
issuer, ``ver`` 1.0, ``aud`` the identifier the request used) for client credentials, a user's
password grant and a managed identity, all over loopback and verified against the emulator's JWKS.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

import httpx
import jwt
import pytest

from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Resource
from oauth_core.emulator.cli import _with_step_up

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
CONFIDENTIAL = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
SECRET = "emulator-client-secret"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
GRAPH_ID = "00000003-0000-0000-c000-000000000000"
FIRST_PARTY = {
    "797f4846-ba00-4fd7-ba43-dac1f8f63013": "https://management.azure.com",
    "e406a681-f3d4-42a8-90b6-c2b029497af1": "https://storage.azure.com",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": "https://vault.azure.net",
    "00000003-0000-0000-c000-000000000000": "https://graph.microsoft.com",
    "022907d3-0f1b-48f7-badc-1ba6abab6d66": "https://database.windows.net/",
    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d": None,
}
# (scope asked for, expected aud, resource app id)
APP_SCOPES = [
    ("https://storage.azure.com/.default", "https://storage.azure.com", "e406a681-f3d4-42a8-90b6-c2b029497af1"),
    ("https://vault.azure.net/.default", "https://vault.azure.net", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"),
    ("https://management.azure.com/.default", "https://management.azure.com", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    (
        "https://management.core.windows.net//.default",
        "https://management.core.windows.net/",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    ("https://database.windows.net//.default", "https://database.windows.net/", "022907d3-0f1b-48f7-badc-1ba6abab6d66"),
    ("https://database.windows.net/.default", "https://database.windows.net", "022907d3-0f1b-48f7-badc-1ba6abab6d66"),
    ("https://graph.microsoft.com/.default", "https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"),
    ("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default", "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d", None),
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emulator:
        yield emulator


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def token_url(emu: Emulator) -> str:
    return f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token"


def verified(emu: Emulator, http: httpx.Client, token: str, audience: str) -> Dict[str, Any]:
    """The token's claims, its RS256 signature checked against the emulator's published keys."""
    keys = http.get(f"{emu.url}/{emu.tenant_id}/discovery/v2.0/keys").json()["keys"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["x5t"] == header["kid"]  # a v1 token's header
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == header["kid"])).key
    claims: Dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=V1_ISSUER)
    assert claims["ver"] == "1.0" and claims["tid"] == TENANT
    return claims


def test_the_default_tenant_has_every_first_party_resource_with_v1_tokens() -> None:
    resources = {r.app_id: r for r in EmulatorConfig.default().resources}
    for app_id, uri in FIRST_PARTY.items():
        assert resources[app_id].app_id_uri == uri
        assert resources[app_id].access_token_version == 1
    assert all(resources[a].scopes == ("user_impersonation",) for a in FIRST_PARTY if a != GRAPH_ID)
    assert resources[GRAPH_ID].scopes[0] == "User.Read"
    arm = resources["797f4846-ba00-4fd7-ba43-dac1f8f63013"]
    assert arm.known_as("https://management.core.windows.net") and arm.known_as("HTTPS://MANAGEMENT.AZURE.COM/")
    assert not arm.known_as("https://management.example.com")


@pytest.mark.parametrize(("scope", "audience", "app_id"), APP_SCOPES)
def test_client_credentials_tokens_for_first_party_scopes(
    emu: Emulator, http: httpx.Client, scope: str, audience: str, app_id: Any
) -> None:
    form = {"grant_type": "client_credentials", "client_id": CONFIDENTIAL, "client_secret": SECRET, "scope": scope}
    response = http.post(token_url(emu), data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["token_type", "expires_in", "ext_expires_in", "access_token"]
    claims = verified(emu, http, body["access_token"], audience)
    assert claims["aud"] == audience
    assert claims["appid"] == CONFIDENTIAL and claims["appidacr"] == "1" and claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"] and claims["idp"] == V1_ISSUER
    assert "scp" not in claims and "upn" not in claims


@pytest.mark.parametrize(
    ("resource", "audience"),
    [
        ("https://storage.azure.com", "https://storage.azure.com"),
        ("https://vault.azure.net", "https://vault.azure.net"),
        ("https://management.azure.com", "https://management.azure.com"),
        ("https://database.windows.net", "https://database.windows.net"),
    ],
)
def test_user_tokens_for_first_party_resources(emu: Emulator, http: httpx.Client, resource: str, audience: str) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC,
        "username": ALICE[0],
        "password": ALICE[1],
        "scope": f"{resource}/user_impersonation offline_access openid profile",
    }
    response = http.post(token_url(emu), data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == f"{resource}/user_impersonation openid profile"
    assert "refresh_token" in body and "id_token" in body
    claims = verified(emu, http, body["access_token"], audience)
    assert claims["scp"] == "user_impersonation"
    assert claims["upn"] == ALICE[0] == claims["unique_name"] and claims["appid"] == PUBLIC
    assert claims["amr"] == ["pwd"] and claims["appidacr"] == "0"
    # The refresh token is good for another first-party resource (one refresh token, many APIs).
    refresh = {
        "grant_type": "refresh_token",
        "client_id": PUBLIC,
        "refresh_token": body["refresh_token"],
        "scope": "https://vault.azure.net/.default",
    }
    renewed = http.post(token_url(emu), data=refresh)
    assert renewed.status_code == 200, renewed.text
    vault = verified(emu, http, renewed.json()["access_token"], "https://vault.azure.net")
    assert vault["scp"] == "user_impersonation" and vault["upn"] == ALICE[0]


def test_user_default_scope_on_the_classic_management_uri(emu: Emulator, http: httpx.Client) -> None:
    """Azure CLI's spelling: the double slash is real, and it is echoed."""
    form = {
        "grant_type": "password",
        "client_id": PUBLIC,
        "username": ALICE[0],
        "password": ALICE[1],
        "scope": "https://management.core.windows.net//.default",
    }
    body = http.post(token_url(emu), data=form).json()
    assert body["scope"] == "https://management.core.windows.net//user_impersonation"
    claims = verified(emu, http, body["access_token"], "https://management.core.windows.net/")
    assert claims["scp"] == "user_impersonation"


@pytest.mark.parametrize(
    "resource",
    [
        "https://storage.azure.com/",
        "https://vault.azure.net",
        "https://management.azure.com/",
        "https://database.windows.net/",
    ],
)
def test_managed_identity_tokens_for_first_party_resources(emu: Emulator, http: httpx.Client, resource: str) -> None:
    response = http.get(
        f"{emu.url}/metadata/identity/oauth2/token",
        params={"api-version": "2018-02-01", "resource": resource},
        headers={"Metadata": "true"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resource"] == resource
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"].rstrip("/") == resource.rstrip("/") and claims["ver"] == "1.0"


def test_the_same_scope_from_two_resources_is_still_refused(emu: Emulator, http: httpx.Client) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC,
        "username": ALICE[0],
        "password": ALICE[1],
        "scope": "https://storage.azure.com/user_impersonation https://vault.azure.net/user_impersonation",
    }
    response = http.post(token_url(emu), data=form)
    assert response.status_code == 400 and response.json()["error_codes"] == [70011]


def test_resource_aliases_from_a_json_config(tmp_path: Any) -> None:
    data = {
        "resources": [
            {
                "app_id": "11111111-2222-4333-8444-555555555555",
                "display_name": "Contoso API",
                "app_id_uri": "api://contoso",
                "aliases": ["https://api.contoso.example/"],
                "scopes": ["read"],
            }
        ]
    }
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(data))
    (resource,) = EmulatorConfig.from_file(str(path)).resources
    assert resource.aliases == ("https://api.contoso.example/",)
    assert resource.identifiers == (
        "11111111-2222-4333-8444-555555555555",
        "api://contoso",
        "https://api.contoso.example",
    )
    with pytest.raises(ConfigError, match="aliases are URIs"):
        Resource("11111111-2222-4333-8444-555555555555", "x", aliases=("not a uri",))
    with pytest.raises(ConfigError, match="GUID"):
        Resource("not-a-guid", "x")


def test_step_up_names_a_resource_by_an_alias() -> None:
    stepped = _with_step_up(EmulatorConfig.default(), ["https://management.core.windows.net/"])
    assert [r.display_name for r in stepped.resources if r.step_up] == ["Windows Azure Service Management API"]
    with pytest.raises(ConfigError, match="no user or resource"):
        _with_step_up(EmulatorConfig.default(), ["https://nowhere.example"])
