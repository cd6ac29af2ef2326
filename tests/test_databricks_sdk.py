"""``DatabricksCredentials`` with a real databricks-sdk ``WorkspaceClient`` against the emulator's workspace.

The emulator serves a stand-in Azure Databricks workspace on its own origin (plain http on
loopback, which databricks-sdk accepts as a host): host metadata, SCIM ``Me`` and the clusters
list, checking each bearer token's RS256 signature with the emulator's keys and its audience.
databricks-sql-connector is not installed here (it pulls in pandas and pyarrow), so its
``credentials_provider`` contract is tested by shape: called with no argument for a header
factory, which is called before every request.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from oauth_core.core.errors import ConfigError
from oauth_core.core.messages import TokenSet
from oauth_core.drivers.sync import EntraClient
from oauth_core.emulator import Emulator, EmulatorConfig, Fault
from oauth_core.emulator.keys import signing_keys
from oauth_core.integrations.databricks_sdk import AUTH_TYPE, DatabricksCredentials

sdk = pytest.importorskip("databricks.sdk")
from databricks.sdk import WorkspaceClient  # noqa: E402
from databricks.sdk.errors import Unauthenticated  # noqa: E402

PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
CONFIDENTIAL = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
SECRET = "emulator-client-secret"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
RID = (
    "/subscriptions/0b5c3a1d-7e2f-4a6b-8c9d-1e2f3a4b5c6d/resourceGroups/oauth-core-rg"
    "/providers/Microsoft.Databricks/workspaces/oauth-core-ws"
)
RID_HEADER = "x-databricks-azure-workspace-resource-id"
CLUSTERS = ["shared-autoscaling", "etl-nightly", "ml-single-node"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emulator:
        yield emulator


@pytest.fixture
def service_principal(emu: Emulator) -> Iterator[EntraClient]:
    with EntraClient(CONFIDENTIAL, emu.tenant_id, authority_host=emu.url, client_secret=SECRET, timeout=5.0) as client:
        client.acquire_for_client()
        yield client


@pytest.fixture
def alice(emu: Emulator) -> Iterator[EntraClient]:
    with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url, timeout=5.0) as client:
        client.acquire_by_password(*ALICE)
        yield client


def workspace_requests(emu: Emulator, since: int) -> List[Any]:
    return [r for r in emu.requests[since:] if r.endpoint.startswith("workspace_")]


def sign(claims: Dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    def part(value: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'typ': 'JWT', 'alg': 'RS256', 'kid': kid})}.{part(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


# -- a real WorkspaceClient ----------------------------------------------------------------------


def test_workspace_client_as_a_service_principal(emu: Emulator, service_principal: EntraClient) -> None:
    since = len(emu.requests)
    credentials = DatabricksCredentials(service_principal, workspace_resource_id=RID, account="app")
    workspace = WorkspaceClient(host=emu.url, credentials_strategy=credentials)
    assert workspace.config.auth_type == AUTH_TYPE == credentials.auth_type() == "oauth-core"
    me = workspace.current_user.me()
    assert me.user_name == CONFIDENTIAL and me.display_name == "oauth-core confidential app" and me.active
    clusters = list(workspace.clusters.list())
    assert [c.cluster_name for c in clusters] == CLUSTERS
    assert {c.creator_user_name for c in clusters} == {CONFIDENTIAL}
    seen = workspace_requests(emu, since)
    # host metadata at construction, then Me, then the clusters list's two pages
    assert [r.endpoint for r in seen] == [
        "workspace_config",
        "workspace_me",
        "workspace_clusters",
        "workspace_clusters",
    ]
    assert all(r.status == 200 for r in seen)
    assert all(RID_HEADER in r.header_names and "authorization" in r.header_names for r in seen[1:])
    assert "authorization" not in seen[0].header_names  # metadata discovery sends no credentials


def test_workspace_client_as_a_user(emu: Emulator, alice: EntraClient) -> None:
    since = len(emu.requests)
    workspace = WorkspaceClient(host=emu.url, credentials_strategy=DatabricksCredentials(alice))
    me = workspace.current_user.me()
    assert me.user_name == ALICE[0] and me.display_name == "Alice Example"
    assert me.emails is not None and me.emails[0].value == ALICE[0]
    assert [c.creator_user_name for c in workspace.clusters.list(page_size=3)] == [ALICE[0]] * 3
    seen = workspace_requests(emu, since)
    assert [r.endpoint for r in seen][-1:] == ["workspace_clusters"] and len(seen) == 3  # one page of three
    assert not any(RID_HEADER in r.header_names for r in seen)  # no resource id given: none sent
    assert emu.count("token", "refresh_token") == 0  # the cached Databricks token was used


def test_a_token_for_another_audience_is_refused(emu: Emulator, alice: EntraClient) -> None:
    graph = DatabricksCredentials(alice, RID, scopes="https://graph.microsoft.com/User.Read")
    assert jwt.decode(graph.headers()["Authorization"][7:], options={"verify_signature": False})["aud"] == (
        "https://graph.microsoft.com"
    )
    since = len(emu.requests)
    workspace = WorkspaceClient(host=emu.url, credentials_strategy=graph)
    with pytest.raises(Unauthenticated, match="audience is not Azure Databricks"):
        workspace.current_user.me()
    with pytest.raises(Unauthenticated):
        list(workspace.clusters.list())
    assert [r.status for r in workspace_requests(emu, since)][1:] == [401, 401]


def test_the_sdk_retries_an_injected_429_with_fresh_headers(emu: Emulator) -> None:
    source = CountingSource()
    workspace = WorkspaceClient(host=emu.url, credentials_strategy=DatabricksCredentials(source, RID))
    limited = json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests."})
    emu.inject("workspace_clusters", Fault("status", status=429, retry_after=1, body=limited))
    since = len(emu.requests)
    with pytest.raises(Unauthenticated):  # the counting source's tokens are not JWTs
        list(workspace.clusters.list())
    assert [r.status for r in workspace_requests(emu, since)] == [429, 401]
    assert len(source.calls) == 2  # the header factory ran again for the retry


# -- the workspace endpoints over raw HTTP -------------------------------------------------------


def test_bearer_tokens_the_workspace_refuses(emu: Emulator, service_principal: EntraClient) -> None:
    me = f"{emu.url}/api/2.0/preview/scim/v2/Me"
    good = service_principal.get_token(scopes=f"{DATABRICKS}/.default", account="app").access_token
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    forged = sign(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)
    expired = dict(claims, exp=int(time.time()) - 10)
    header, _, signature = good.split(".")
    tampered = f"{header}.{base64.urlsafe_b64encode(json.dumps(expired).encode()).rstrip(b'=').decode()}.{signature}"
    ours = signing_keys()[0]  # the emulator's own signing key: well signed, wrong claims
    other_tenant = sign(dict(claims, tid=str(uuid.uuid4())), ours.private_key, ours.kid)
    other_issuer = sign(dict(claims, iss="https://sts.windows.net/other/"), ours.private_key, ours.kid)
    early = sign(dict(claims, nbf=int(time.time()) + 3600), ours.private_key, ours.kid)
    cases: Dict[Optional[str], str] = {
        f"Bearer {other_tenant}": "another tenant",
        f"Bearer {other_issuer}": "another tenant",
        f"Bearer {early}": "not valid yet",
        f"Bearer {sign(claims, ours.private_key, 'unknown-kid')}": "signature does not verify",
        None: "Credential was not sent",
        "Basic dXNlcjpwYXNz": "Credential was not sent",
        "Bearer not-a-jwt": "not a signed JWT",
        f"Bearer {forged}": "signature does not verify",
        f"Bearer {tampered}": "signature does not verify",
    }
    with httpx.Client(timeout=5.0) as http:
        for authorization, message in cases.items():
            response = http.get(me, headers={"Authorization": authorization} if authorization else {})
            assert response.status_code == 401, authorization
            body = response.json()
            assert body["error_code"] == "UNAUTHENTICATED" and message in body["message"]
            assert good not in response.text
        assert http.get(me, headers={"Authorization": f"Bearer {good}"}).status_code == 200
        bad_id = http.get(me, headers={"Authorization": f"Bearer {good}", RID_HEADER: "/subscriptions/x"})
        assert bad_id.status_code == 400 and bad_id.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert http.post(me, headers={"Authorization": f"Bearer {good}"}).status_code == 405


def test_an_expired_token_is_refused() -> None:
    now = [time.time()]
    with Emulator(EmulatorConfig.default(), port=0, clock=lambda: now[0]) as emu:
        form = {"grant_type": "client_credentials", "client_id": CONFIDENTIAL, "client_secret": SECRET}
        with httpx.Client(timeout=5.0) as http:
            token_url = f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token"
            token = http.post(token_url, data={**form, "scope": f"{DATABRICKS}/.default"}).json()["access_token"]
            me = f"{emu.url}/api/2.0/preview/scim/v2/Me"
            assert http.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            now[0] += 6000  # past any lifetime the emulator draws (3600-5400 s)
            response = http.get(me, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_clusters_pages_and_the_unpaged_api(emu: Emulator, service_principal: EntraClient) -> None:
    token = service_principal.get_token(scopes=f"{DATABRICKS}/.default", account="app").access_token
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=5.0, headers=auth) as http:
        names: List[str] = []
        page_token: Optional[str] = None
        pages = 0
        while True:
            params = {"page_size": "1", **({"page_token": page_token} if page_token else {})}
            body = http.get(f"{emu.url}/api/2.1/clusters/list", params=params).json()
            names += [c["cluster_name"] for c in body["clusters"]]
            pages += 1
            assert ("prev_page_token" in body) == (pages > 1)
            page_token = body.get("next_page_token")
            if not page_token:
                break
        assert names == CLUSTERS and pages == 3
        whole = http.get(f"{emu.url}/api/2.0/clusters/list").json()
        assert [c["cluster_name"] for c in whole["clusters"]] == CLUSTERS and "next_page_token" not in whole
        for params in ({"page_token": "bogus"}, {"page_size": "0"}, {"page_size": "1000"}):
            refused = http.get(f"{emu.url}/api/2.1/clusters/list", params=params)
            assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_host_metadata_and_the_tenant_redirect(emu: Emulator) -> None:
    with httpx.Client(timeout=5.0) as http:
        meta = http.get(f"{emu.url}/.well-known/databricks-config")
        login = http.get(f"{emu.url}/aad/auth", follow_redirects=False)
    assert meta.status_code == 200 and meta.headers["x-databricks-org-id"] == meta.json()["workspace_id"]
    assert meta.json()["cloud"] == "AZURE"
    assert login.status_code == 302
    assert login.headers["location"].startswith(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/authorize?")


# -- the credentials object itself (and the SQL connector's contract) -----------------------------


class CountingSource:
    """A token source of one's own: ``get_token`` without ``account``, counting calls."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []

    def get_token(self, *, scopes: Any = None, min_validity: float = 300.0) -> TokenSet:
        self.calls.append({"scopes": scopes, "min_validity": min_validity})
        return TokenSet(f"token-{len(self.calls)}", "Bearer", ("x/.default",), time.time() + 3600)


def test_sql_connector_credentials_provider_shape() -> None:
    source = CountingSource()
    credentials = DatabricksCredentials(source, RID)
    # The connector calls credentials_provider() once, then the header factory before each request.
    header_factory = credentials()
    assert callable(header_factory) and source.calls == []  # no token until a request needs one
    first, second = header_factory(), header_factory()
    assert first == {"Authorization": "Bearer token-1", "X-Databricks-Azure-Workspace-Resource-Id": RID}
    assert second["Authorization"] == "Bearer token-2"  # asked each time: the source's cache decides
    assert source.calls[0] == {"scopes": (f"{DATABRICKS}/.default",), "min_validity": 300.0}
    assert credentials.auth_type() == "oauth-core"
    # databricks-sdk passes its Config: the same factory comes back.
    assert credentials(object())() == {
        "Authorization": "Bearer token-3",
        "X-Databricks-Azure-Workspace-Resource-Id": RID,
    }


def test_options_and_refusals(alice: EntraClient) -> None:
    source = CountingSource()
    assert DatabricksCredentials(source, scopes="api://x/read", min_validity=60)() is not None
    assert "Authorization" in DatabricksCredentials(source, scopes="api://x/read", min_validity=60)()()
    assert source.calls[-1] == {"scopes": ("api://x/read",), "min_validity": 60.0}
    assert DatabricksCredentials(alice, account=ALICE[0])()()["Authorization"].startswith("Bearer ")
    assert "X-Databricks-Azure-Workspace-Resource-Id" not in DatabricksCredentials(source)()()

    class AsyncSource:
        async def get_token(self, **_: Any) -> TokenSet:
            raise AssertionError

    with pytest.raises(ConfigError, match="synchronous"):
        DatabricksCredentials(AsyncSource())
    with pytest.raises(ConfigError, match="token source"):
        DatabricksCredentials(object())
    with pytest.raises(ConfigError):
        DatabricksCredentials(source, "/subscriptions/not-an-arm-id")
    with pytest.raises(ConfigError, match="min_validity"):
        DatabricksCredentials(source, min_validity=-1)
    shown = repr(DatabricksCredentials(source, RID))
    assert RID in shown and "token-" not in shown


def test_the_package_never_imports_databricks() -> None:
    code = (
        "import sys, oauth_core.integrations.databricks_sdk as m; "
        "assert not [n for n in sys.modules if n == 'databricks' or n.startswith('databricks.')], sys.modules.keys(); "
        "print(m.__all__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
