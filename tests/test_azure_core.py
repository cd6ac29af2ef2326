"""AzureCoreCredential and AsyncAzureCoreCredential under a real azure-core pipeline.

Tokens come from the emulator (a user signed in by password, or a managed identity); the
resource is a loopback HTTP server that records the Bearer header it gets and answers from a
script (a CAE ``insufficient_claims`` challenge, say). azure-core's ``BearerTokenCredentialPolicy``
(and its async twin) does the asking, so what is tested is what an Azure SDK client would do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple, cast
from urllib.parse import parse_qsl

import httpx
import pytest

from oauth_core.core.errors import ConfigError
from oauth_core.core.messages import TokenSet
from oauth_core.drivers.aio import AsyncEntraClient
from oauth_core.drivers.identity import ManagedIdentity
from oauth_core.drivers.sync import EntraClient
from oauth_core.emulator import Emulator, EmulatorConfig
from oauth_core.integrations.azure_core import (
    AccessToken,
    AccessTokenInfo,
    AsyncAzureCoreCredential,
    AzureCoreCredential,
    ClaimsChallengeUnsupported,
    TenantNotAllowed,
)

azure_core = pytest.importorskip("azure.core")

from azure.core import AsyncPipelineClient, PipelineClient  # noqa: E402
from azure.core.credentials import (  # noqa: E402
    AccessToken as CoreAccessToken,
    SupportsTokenInfo,
    TokenCredential,
)
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential  # noqa: E402
from azure.core.pipeline.policies import (  # noqa: E402
    AsyncBearerTokenCredentialPolicy,
    BearerTokenCredentialPolicy,
)
from azure.core.pipeline.transport import AsyncioRequestsTransport, RequestsTransport  # noqa: E402
from azure.core.rest import HttpRequest  # noqa: E402

SCOPE = "https://graph.microsoft.com/User.Read"
MI_SCOPE = "https://graph.microsoft.com/.default"
CHALLENGE_CLAIMS = {"access_token": {"nbf": {"essential": True, "value": "1726000000"}}}
OTHER_TENANT = "0d3f1c2b-aaaa-4bbb-8ccc-123456789abc"

Reply = Tuple[int, Dict[str, str]]


class Resource:
    """A loopback API: records each request's Authorization header, answers 401 without a Bearer
    token, else the next scripted reply (or 200)."""

    def __init__(self) -> None:
        self.seen: List[Optional[str]] = []
        self._script: List[Reply] = []
        self._lock = threading.Lock()
        resource = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("authorization")
                with resource._lock:
                    resource.seen.append(authorization)
                    if not (authorization or "").startswith("Bearer ") or len(authorization or "") < 20:
                        status, headers = 401, {"WWW-Authenticate": 'Bearer realm=""'}
                    else:
                        status, headers = resource._script.pop(0) if resource._script else (200, {})
                body = b'{"ok":true}' if status == 200 else b'{"error":"unauthorized"}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def challenge(self, claims: Dict[str, Any] = CHALLENGE_CLAIMS) -> None:
        """The next authenticated request gets a CAE claims challenge."""
        encoded = base64.b64encode(json.dumps(claims).encode()).decode()
        header = f'Bearer realm="", error="insufficient_claims", claims="{encoded}"'
        with self._lock:
            self._script.append((401, {"WWW-Authenticate": header}))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class TokenForms:
    """An httpx event hook keeping the form of every token request a client sends."""

    def __init__(self) -> None:
        self.forms: List[Dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.forms.append(dict(parse_qsl(request.read().decode())))

    async def hook(self, request: httpx.Request) -> None:
        self(request)

    def claims(self) -> List[Optional[Dict[str, Any]]]:
        return [json.loads(form["claims"]) if "claims" in form else None for form in self.forms]


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emulator:
        yield emulator


@pytest.fixture
def resource() -> Iterator[Resource]:
    server = Resource()
    yield server
    server.close()


@pytest.fixture
def spied(emu: Emulator) -> Iterator[Tuple[EntraClient, TokenForms, TokenSet]]:
    """A client whose cache holds a user's tokens, and the forms of its token requests."""
    forms = TokenForms()
    http = httpx.Client(event_hooks={"request": [forms]}, trust_env=False)
    client = EntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url, http_client=http)
    user = emu.config.users[0]
    with http, client:
        tokens = client.acquire_by_password(user.username, user.password, scopes=[SCOPE])
        forms.forms.clear()
        yield client, forms, tokens


def pipeline(credential: Any, **policy: Any) -> PipelineClient[Any, Any]:
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback, never through a proxy
    return PipelineClient(
        base_url="http://127.0.0.1",
        policies=[BearerTokenCredentialPolicy(credential, SCOPE, **policy)],
        transport=RequestsTransport(session=session, session_owner=True),
    )


def call(client: PipelineClient[Any, Any], resource: Resource) -> int:
    response = client.send_request(HttpRequest("GET", resource.url + "/items"), enforce_https=False)
    return int(response.status_code)


def refreshes(emu: Emulator) -> int:
    return emu.count("token", grant_type="refresh_token")


# -- protocols and values -------------------------------------------------------------------------------


class PlainSource:
    """A source of our own: get_token without claims or account, and a close() to count."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        self.calls: List[Dict[str, Any]] = []
        self.closed = 0

    def get_token(self, *, scopes: Any = None, min_validity: float = 300.0) -> TokenSet:
        self.calls.append({"scopes": scopes, "min_validity": min_validity})
        return self.tokens

    def close(self) -> None:
        self.closed += 1


class AsyncPlainSource(PlainSource):
    async def get_token(self, *, scopes: Any = None, min_validity: float = 300.0) -> TokenSet:  # type: ignore[override]
        return PlainSource.get_token(self, scopes=scopes, min_validity=min_validity)

    async def aclose(self) -> None:
        self.closed += 1


def token_set(lifetime: float = 3600.0, refresh_in: Optional[float] = None) -> TokenSet:
    now = time.time()
    return TokenSet(
        access_token="header.payload.signature-0123456789",
        token_type="Bearer",
        scopes=(SCOPE,),
        expires_at=now + lifetime,
        refresh_at=None if refresh_in is None else now + refresh_in,
    )


def test_the_credentials_meet_azure_cores_protocols() -> None:
    sync = AzureCoreCredential(PlainSource(token_set()))
    assert isinstance(sync, TokenCredential) and isinstance(sync, SupportsTokenInfo)
    aio = AsyncAzureCoreCredential(AsyncPlainSource(token_set()))
    assert isinstance(aio, AsyncTokenCredential) and isinstance(aio, AsyncSupportsTokenInfo)


def test_access_token_is_azure_cores_shape() -> None:
    tokens = token_set()
    token = AzureCoreCredential(PlainSource(tokens)).get_token(SCOPE)
    theirs: Any = CoreAccessToken(tokens.access_token, int(tokens.expires_at))  # NamedTuples compare as tuples
    assert isinstance(token, tuple) and token == theirs
    assert token.token == tokens.access_token and token.expires_on == int(tokens.expires_at)
    assert AccessToken._fields == CoreAccessToken._fields
    assert tokens.access_token not in repr(token)


def test_refresh_on_comes_from_the_refresh_window() -> None:
    with_refresh_in = token_set(lifetime=7200, refresh_in=3600)
    info = AzureCoreCredential(PlainSource(with_refresh_in)).get_token_info(SCOPE)
    assert isinstance(info, AccessTokenInfo)
    assert (info.token_type, info.refresh_on) == ("Bearer", int(with_refresh_in.refresh_at or 0))
    plain = token_set(lifetime=3600)
    info = AzureCoreCredential(PlainSource(plain)).get_token_info(SCOPE)
    assert info.refresh_on == int(plain.expires_at - 300) and info.expires_on == int(plain.expires_at)
    short = token_set(lifetime=200)  # already inside the last 5 minutes: no refresh time to give
    assert AzureCoreCredential(PlainSource(short)).get_token_info(SCOPE).refresh_on is None
    assert "signature" not in repr(info)


def test_scopes_and_min_validity_reach_the_source() -> None:
    source = PlainSource(token_set())
    credential = AzureCoreCredential(source, min_validity=600)
    credential.get_token(SCOPE, "offline_access", enable_cae=True, unknown_option=1)  # CAE ignored here
    credential.get_token_info()
    assert source.calls == [
        {"scopes": [SCOPE, "offline_access"], "min_validity": 600.0},
        {"scopes": None, "min_validity": 600.0},
    ]


def test_close_closes_the_source_only_when_owned() -> None:
    shared = PlainSource(token_set())
    with AzureCoreCredential(shared) as credential:
        credential.get_token(SCOPE)
    assert shared.closed == 0
    owned = PlainSource(token_set())
    with AzureCoreCredential(owned, owns_source=True):
        pass
    assert owned.closed == 1

    async def run() -> Tuple[int, int]:
        shared, owned = AsyncPlainSource(token_set()), AsyncPlainSource(token_set())
        async with AsyncAzureCoreCredential(shared) as credential:
            await credential.get_token(SCOPE)
        async with AsyncAzureCoreCredential(owned, owns_source=True):
            pass
        return shared.closed, owned.closed

    assert asyncio.run(run()) == (0, 1)


def test_wrong_sources_are_refused() -> None:
    with pytest.raises(ConfigError, match="token source"):
        AzureCoreCredential(object())
    with pytest.raises(ConfigError, match="AsyncAzureCoreCredential"):
        AzureCoreCredential(AsyncPlainSource(token_set()))
    with pytest.raises(ConfigError, match="account"):
        AzureCoreCredential(PlainSource(token_set()), account="alice@contoso.example")


def test_async_credential_runs_a_sync_source_off_the_loop() -> None:
    source = PlainSource(token_set())

    async def run() -> AccessTokenInfo:
        return await AsyncAzureCoreCredential(source).get_token_info(SCOPE)

    assert asyncio.run(run()).token == source.tokens.access_token


# -- a user client through azure-core's pipeline -------------------------------------------------------


def test_pipeline_sends_the_cached_token(
    spied: Tuple[EntraClient, TokenForms, TokenSet], resource: Resource, emu: Emulator
) -> None:
    client, forms, tokens = spied
    with pipeline(AzureCoreCredential(client)) as http:
        assert [call(http, resource), call(http, resource)] == [200, 200]
    assert resource.seen == [f"Bearer {tokens.access_token}"] * 2
    assert forms.forms == []  # served from the client's cache


def test_get_token_info_from_a_signed_in_client(spied: Tuple[EntraClient, TokenForms, TokenSet]) -> None:
    client, _, tokens = spied
    info = AzureCoreCredential(client).get_token_info(SCOPE)
    assert (info.token, info.expires_on, info.token_type) == (tokens.access_token, int(tokens.expires_at), "Bearer")
    expected = tokens.refresh_at if tokens.refresh_at is not None else tokens.expires_at - 300
    assert info.refresh_on == int(expected)


def test_a_cae_claims_challenge_is_answered_through_the_credential(
    spied: Tuple[EntraClient, TokenForms, TokenSet], resource: Resource, emu: Emulator
) -> None:
    client, forms, tokens = spied
    resource.challenge()
    before = refreshes(emu)
    with pipeline(AzureCoreCredential(client)) as http:
        assert call(http, resource) == 200  # challenged, answered with a fresh token, retried
    assert forms.claims() == [CHALLENGE_CLAIMS]  # the token request carried the challenge's claims
    assert refreshes(emu) == before + 1
    first, retried = resource.seen
    assert first == f"Bearer {tokens.access_token}" and retried != first


def test_enable_cae_declares_cp1_and_keeps_the_cae_token(
    spied: Tuple[EntraClient, TokenForms, TokenSet], resource: Resource
) -> None:
    client, forms, _ = spied
    credential = AzureCoreCredential(client)
    for _ in range(2):  # two SDK clients sharing one credential
        with pipeline(credential, enable_cae=True) as http:
            assert call(http, resource) == 200
    cp1 = {"access_token": {"xms_cc": {"values": ["cp1"]}}}
    assert forms.claims() == [cp1]  # asked for once, then kept until its refresh time
    assert resource.seen[0] == resource.seen[1]

    resource.challenge()
    with pipeline(credential, enable_cae=True) as http:
        assert call(http, resource) == 200
    merged = {"access_token": {**CHALLENGE_CLAIMS["access_token"], "xms_cc": {"values": ["cp1"]}}}
    assert forms.claims() == [cp1, merged]


def test_enable_cae_with_a_client_that_declares_cp1_uses_its_cache(emu: Emulator, resource: Resource) -> None:
    forms = TokenForms()
    http = httpx.Client(event_hooks={"request": [forms]}, trust_env=False)
    client_id = emu.config.clients[0].client_id
    user = emu.config.users[0]
    with (
        http,
        EntraClient(
            client_id, emu.tenant_id, authority_host=emu.url, http_client=http, client_capabilities=["cp1"]
        ) as client,
    ):
        client.acquire_by_password(user.username, user.password, scopes=[SCOPE])
        with pipeline(AzureCoreCredential(client), enable_cae=True) as pipe:
            assert call(pipe, resource) == 200
    assert len(forms.forms) == 1  # the sign-in only: the CAE-capable token came from the cache


def test_tenant_id_is_honoured_or_refused(spied: Tuple[EntraClient, TokenForms, TokenSet]) -> None:
    client, forms, tokens = spied
    credential = AzureCoreCredential(client)
    assert credential.get_token(SCOPE, tenant_id=client.authority.tenant.upper()).token == tokens.access_token
    assert credential.get_token_info(SCOPE, options={"tenant_id": client.authority.tenant}).token == tokens.access_token
    with pytest.raises(TenantNotAllowed, match=f"bound to tenant {client.authority.tenant}") as refused:
        credential.get_token(SCOPE, tenant_id=OTHER_TENANT)
    assert OTHER_TENANT in str(refused.value) and isinstance(refused.value, ConfigError)
    with pytest.raises(TenantNotAllowed):
        credential.get_token_info(SCOPE, options={"tenant_id": OTHER_TENANT})
    assert forms.forms == []  # refused before asking anyone


def test_tenant_of_an_organizations_client_is_read_from_its_token(
    spied: Tuple[EntraClient, TokenForms, TokenSet], emu: Emulator
) -> None:
    client, _, _ = spied
    with EntraClient(client.client_id, "organizations", authority_host=emu.url) as multi:
        user = emu.config.users[0]
        tokens = multi.acquire_by_password(user.username, user.password, scopes=[SCOPE])
        credential = AzureCoreCredential(multi)
        assert credential.get_token(SCOPE, tenant_id=emu.tenant_id).token == tokens.access_token
        with pytest.raises(TenantNotAllowed, match=OTHER_TENANT):
            credential.get_token(SCOPE, tenant_id=OTHER_TENANT)


# -- a managed identity source --------------------------------------------------------------------------


@pytest.fixture
def identity(emu: Emulator) -> Iterator[ManagedIdentity]:
    with ManagedIdentity(environ=emu.identity_environment("appservice")) as source:
        yield source


def mi_pipeline(credential: Any) -> PipelineClient[Any, Any]:
    import requests

    session = requests.Session()
    session.trust_env = False
    return PipelineClient(
        base_url="http://127.0.0.1",
        policies=[BearerTokenCredentialPolicy(credential, MI_SCOPE, enable_cae=True)],
        transport=RequestsTransport(session=session, session_owner=True),
    )


def test_managed_identity_serves_plain_tokens(identity: ManagedIdentity, resource: Resource, emu: Emulator) -> None:
    credential = AzureCoreCredential(identity)
    with mi_pipeline(credential) as http:  # enable_cae is ignored: a managed identity declares nothing
        assert call(http, resource) == 200
    token = identity.get_token(scopes=MI_SCOPE).access_token
    assert resource.seen == [f"Bearer {token}"]
    info = credential.get_token_info(MI_SCOPE, options={"tenant_id": emu.tenant_id})  # its token's tid
    assert info.token == token and info.token_type == "Bearer"
    other = str(uuid.uuid4())
    with pytest.raises(TenantNotAllowed, match=f"bound to tenant {emu.tenant_id}") as refused:
        credential.get_token(MI_SCOPE, tenant_id=other)
    assert other in str(refused.value)


def test_managed_identity_refuses_claims_clearly(identity: ManagedIdentity, resource: Resource) -> None:
    credential = AzureCoreCredential(identity)
    claims = json.dumps(CHALLENGE_CLAIMS)
    with pytest.raises(ClaimsChallengeUnsupported, match="cannot answer a claims challenge") as refused:
        credential.get_token(MI_SCOPE, claims=claims)
    assert refused.value.claims == claims
    resource.challenge()
    with mi_pipeline(credential) as http, pytest.raises(ClaimsChallengeUnsupported):
        call(http, resource)  # azure-core's policy asks with the claims; the refusal reaches the caller


# -- async --------------------------------------------------------------------------------------------


def test_async_pipeline_with_an_async_entra_client(emu: Emulator, resource: Resource) -> None:
    forms = TokenForms()
    user = emu.config.users[0]

    async def run() -> Tuple[List[int], str, AccessTokenInfo]:
        http = httpx.AsyncClient(event_hooks={"request": [forms.hook]}, trust_env=False)
        client = AsyncEntraClient(
            emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url, http_client=http
        )
        async with http, client:
            tokens = await client.acquire_by_password(user.username, user.password, scopes=[SCOPE])
            forms.forms.clear()
            async with AsyncAzureCoreCredential(client) as credential:
                pipe: AsyncPipelineClient[Any, Any] = AsyncPipelineClient(
                    base_url="http://127.0.0.1",
                    policies=[AsyncBearerTokenCredentialPolicy(cast(Any, credential), SCOPE)],
                    transport=AsyncioRequestsTransport(),
                )
                statuses = []
                async with pipe:
                    for challenged in (False, True):
                        if challenged:
                            resource.challenge()
                        request = HttpRequest("GET", resource.url + "/items")
                        response = await pipe.send_request(request, enforce_https=False)
                        statuses.append(int(response.status_code))
                info = await credential.get_token_info(SCOPE)
            assert isinstance(credential, AsyncTokenCredential)
            return statuses, tokens.access_token, info

    statuses, first_token, info = asyncio.run(run())
    assert statuses == [200, 200]
    assert forms.claims() == [CHALLENGE_CLAIMS]
    assert resource.seen[:2] == [f"Bearer {first_token}"] * 2  # the second call was challenged...
    assert resource.seen[2] != resource.seen[1]  # ...and retried with the fresh token
    assert f"Bearer {info.token}" == resource.seen[2]  # the answered token is the one the client now caches
    assert info.refresh_on is not None and info.refresh_on < info.expires_on
