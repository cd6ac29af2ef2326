"""MSAL Python, unchanged, signs a federated user in against the emulator over TLS (issue 14).

``acquire_token_by_username_password`` for a user of the federated domain goes: user realm
(``Federated``), the stand-in AD FS's MEX, an RST to the WS-Trust 1.3 ``usernamemixed`` endpoint
(MSAL prefers 1.3), then the SAML 2.0 bearer grant at the token endpoint. The two loopback lines
of tests/test_msal_fidelity.py apply here too (user realm host with the port; CA bundle variables).
"""

from __future__ import annotations

import ssl
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
BOB = ("bob@fabrikam.example", "Bob-Passw0rd!")
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"

pytestmark = pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), tls=True) as running:
        yield running


@pytest.fixture
def app(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    application = msal.PublicClientApplication(
        PUBLIC, authority=f"{emu.url}/{emu.tenant_id}", verify=emu.ca_bundle, instance_discovery=False
    )
    application.authority.instance = urlsplit(emu.url).netloc
    return application


def verified(emu: Emulator, token: str) -> Dict[str, Any]:
    assert emu.ca_bundle is not None
    context = ssl.create_default_context(cafile=emu.ca_bundle)
    jwks = httpx.get(f"{emu.url}/{emu.tenant_id}/discovery/v2.0/keys", verify=context).json()
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    return dict(
        jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=["RS256"],
            audience=DATABRICKS,
            issuer=f"https://sts.windows.net/{emu.tenant_id}/",
        )
    )


def test_msal_signs_a_federated_user_in_through_ws_trust(app: Any, emu: Emulator) -> None:
    before = {name: emu.count(name) for name in ("userrealm", "mex", "usernamemixed")}
    result = app.acquire_token_by_username_password(*BOB, scopes=SCOPES)
    assert "access_token" in result, result
    claims = verified(emu, result["access_token"])
    assert claims["upn"] == BOB[0] and "fed" in claims["amr"]
    assert result["id_token_claims"]["preferred_username"] == BOB[0]
    assert all(emu.count(name) == before[name] + 1 for name in before), emu.requests
    assert emu.count("token", SAML2_GRANT) >= 1
    assert emu.count("token", "password") == 0  # never plain ROPC for a federated user
    account = app.get_accounts(username=BOB[0])[0]
    silent = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert silent and "access_token" in silent, silent


def test_msal_reports_the_soap_fault_of_a_wrong_password(app: Any) -> None:
    with pytest.raises(RuntimeError, match="FailedAuthentication"):
        app.acquire_token_by_username_password(BOB[0], "wrong", scopes=SCOPES)
