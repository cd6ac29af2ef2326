"""MSAL Python, unchanged, against the emulator over TLS: proof that the emulator speaks Entra.

Two loopback realities need a line each in the test, not in MSAL or the emulator:

* MSAL builds the user-realm URL from the authority's *hostname* (``Authority.instance``),
  dropping the port, so on a random loopback port it would call ``https://127.0.0.1/common/userrealm``.
  Real Entra always listens on 443. The test sets ``app.authority.instance`` to ``host:port``.
* requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override the ``verify=`` MSAL puts on
  its session, so the test removes both variables to make ``verify=emu.ca_bundle`` take effect.
"""

from __future__ import annotations

import ssl
from dataclasses import replace
from typing import Any, Dict, Iterator
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from oauth_core.emulator import Emulator, EmulatorConfig

msal = pytest.importorskip("msal")

PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
SCOPES = [f"{DATABRICKS}/.default"]
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
MFA = ("mfa@contoso.onmicrosoft.com", "Mfa-Passw0rd!")

# MSAL deprecates ROPC for public clients with a DeprecationWarning; the suite turns warnings into errors.
pytestmark = pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(replace(EmulatorConfig.default(), token_lifetime=3600), tls=True) as running:
        yield running


@pytest.fixture(scope="module")
def jwks(emu: Emulator) -> Dict[str, Any]:
    assert emu.ca_bundle is not None
    context = ssl.create_default_context(cafile=emu.ca_bundle)
    return httpx.get(f"{emu.url}/{emu.tenant_id}/discovery/v2.0/keys", verify=context).json()


@pytest.fixture
def app(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # see the module docstring
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    application = msal.PublicClientApplication(
        PUBLIC, authority=f"{emu.url}/{emu.tenant_id}", verify=emu.ca_bundle, instance_discovery=False
    )
    application.authority.instance = urlsplit(emu.url).netloc  # see the module docstring
    return application


def verified(token: str, jwks: Dict[str, Any], tenant: str) -> Dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=DATABRICKS,
        issuer=f"https://sts.windows.net/{tenant}/",
    )


def test_password_then_refresh_token(app: Any, emu: Emulator, jwks: Dict[str, Any]) -> None:
    result = app.acquire_token_by_username_password(*ALICE, scopes=SCOPES)
    assert "access_token" in result, result
    claims = verified(result["access_token"], jwks, emu.tenant_id)
    assert claims["aud"] == DATABRICKS and claims["upn"] == ALICE[0]
    assert result["id_token_claims"]["preferred_username"] == ALICE[0]
    assert emu.count("userrealm") >= 1 and emu.count("discovery") >= 1
    account = app.get_accounts()[0]
    assert account["username"] == ALICE[0] and account["home_account_id"].endswith(f".{emu.tenant_id}")

    refreshed = app.acquire_token_by_refresh_token(result["refresh_token"], scopes=SCOPES)
    assert "access_token" in refreshed, refreshed
    assert verified(refreshed["access_token"], jwks, emu.tenant_id)["oid"] == claims["oid"]
    assert refreshed["refresh_token"] != result["refresh_token"]
    assert emu.count("token", grant_type="refresh_token") >= 1


def test_silent_acquisition_uses_the_cache_or_the_refresh_token(app: Any, emu: Emulator) -> None:
    first = app.acquire_token_by_username_password(*ALICE, scopes=SCOPES)
    assert "access_token" in first
    silent = app.acquire_token_silent(SCOPES, account=app.get_accounts()[0])
    assert silent is not None and "access_token" in silent


def test_mfa_user_gets_msals_error_dict(app: Any) -> None:
    result = app.acquire_token_by_username_password(*MFA, scopes=SCOPES)
    assert "access_token" not in result
    assert result["error"] == "invalid_grant" and 50076 in result["error_codes"]
    assert result["suberror"] == "basic_action"


def test_wrong_password_is_msals_invalid_grant(app: Any) -> None:
    result = app.acquire_token_by_username_password(ALICE[0], "wrong", scopes=SCOPES)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50126]
