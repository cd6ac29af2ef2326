"""EntraAuth: bearer tokens on httpx requests, refresh ahead of expiry, one retry after a 401.

The API side is :class:`StandIn`, a real loopback HTTP server that records every request and
answers from a script; the identity side is the emulator (sign-in by password, refreshes counted
with ``emu.count("token", grant_type="refresh_token")``). The flow's branches are also stepped by
hand with a fake client, as encode/httpx:tests/test_auth.py does.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl

import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import ConfigError, EntraAuth, EntraClient, InteractionRequired, ResponseFormatError, TokenSet
from oauth_core.emulator import Emulator, EmulatorConfig, Fault
from oauth_core.integrations.httpx_auth import (
    APP_ACCOUNT,
    WORKSPACE_RESOURCE_ID_HEADER,
    bearer_challenge,
    build_workspace_resource_id,
    check_workspace_resource_id,
)

CLUSTERS = "/api/2.0/clusters/list"
SUBSCRIPTION = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
RESOURCE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourcegroups/analytics-rg/providers/microsoft.databricks/workspaces/adb-ws1"
)
CLAIMS = {"access_token": {"nbf": {"essential": True, "value": "1726077595"}}}
LIFETIME = 3600

# -- the stand-in API -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One request the stand-in received (header names in lower case)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


Reply = Tuple[int, Dict[str, str], bytes]


def json_reply(status: int, body: Any, **headers: str) -> Reply:
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


class StandIn:
    """A loopback HTTP server on 127.0.0.1:0 that records requests and answers from a script.

    ``queue(path, reply, times)`` answers the next ``times`` requests to ``path`` (query string
    ignored) with ``reply``; anything unscripted gets :attr:`default`.
    """

    def __init__(self) -> None:
        self.requests: List[Recorded] = []
        self.default: Reply = json_reply(200, {"clusters": [{"cluster_id": "0123-456789-abcde"}]})
        self._script: Dict[str, List[Reply]] = {}
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with stand_in._lock:
                    stand_in.requests.append(
                        Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    queued = stand_in._script.get(path)
                    status, headers, payload = queued.pop(0) if queued else stand_in.default
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, path: str, reply: Reply, times: int = 1) -> None:
        with self._lock:
            self._script.setdefault(path, []).extend([reply] * times)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def claims_challenge(claims: Any = CLAIMS) -> Reply:
    encoded = base64.b64encode(json.dumps(claims).encode()).decode()
    header = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        f'error="insufficient_claims", claims="{encoded}"'
    )
    return json_reply(401, {"error": "insufficient_claims"}, **{"www-authenticate": header})


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = dataclasses.replace(EmulatorConfig.default(), token_lifetime=LIFETIME)
    with Emulator(config, port=0) as emu:
        yield emu


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


class Clock:
    """The client's epoch clock, moved by hand."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(emulator: Emulator, clock: Optional[Clock] = None) -> EntraClient:
    kwargs: Dict[str, Any] = {"clock": clock} if clock is not None else {}
    return EntraClient(
        emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, timeout=5.0, **kwargs
    )


@pytest.fixture
def signed_in(emulator: Emulator, clock: Clock) -> Iterator[Tuple[EntraClient, TokenSet]]:
    """A client (on the fake clock) whose cache holds alice's tokens."""
    user = emulator.config.users[0]
    with make_client(emulator, clock) as client:
        tokens = client.acquire_by_password(user.username, user.password)
        yield client, tokens


def refreshes(emulator: Emulator) -> int:
    return emulator.count("token", grant_type="refresh_token")


def bearer(recorded: Recorded) -> str:
    return recorded.headers["authorization"]


# -- against the stand-in -----------------------------------------------------------------------------


def test_bearer_header_is_added(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator) -> None:
    client, tokens = signed_in
    before = refreshes(emulator)
    with httpx.Client(auth=EntraAuth(client)) as http:
        response = http.get(stand_in.url + CLUSTERS)
        http.get(stand_in.url + CLUSTERS)
    assert response.status_code == 200
    assert response.json()["clusters"][0]["cluster_id"] == "0123-456789-abcde"
    assert [bearer(r) for r in stand_in.requests] == [f"Bearer {tokens.access_token}"] * 2
    assert WORKSPACE_RESOURCE_ID_HEADER.lower() not in stand_in.requests[0].headers
    assert refreshes(emulator) == before  # served from the cache


def test_token_is_refreshed_ahead_of_expiry(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator, clock: Clock
) -> None:
    client, tokens = signed_in
    before = refreshes(emulator)
    with httpx.Client(auth=EntraAuth(client, min_validity=600)) as http:
        clock.now = tokens.expires_at - 700  # still 700 s left: sent as it is
        http.get(stand_in.url + CLUSTERS)
        assert refreshes(emulator) == before
        clock.now = tokens.expires_at - 500  # below min_validity, not yet expired: refreshed first
        http.get(stand_in.url + CLUSTERS)
    assert refreshes(emulator) == before + 1
    first, second = stand_in.requests
    assert bearer(first) == f"Bearer {tokens.access_token}"
    assert bearer(second) != bearer(first)
    assert bearer(second) == f"Bearer {client.get_token(min_validity=600).access_token}"


def test_refresh_window_applies_with_the_default_min_validity(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator, clock: Clock
) -> None:
    client, tokens = signed_in
    before = refreshes(emulator)
    clock.now = tokens.expires_at - 200
    with httpx.Client(auth=EntraAuth(client)) as http:
        assert http.get(stand_in.url + CLUSTERS).status_code == 200
    assert refreshes(emulator) == before + 1
    assert bearer(stand_in.requests[0]) != f"Bearer {tokens.access_token}"


def test_401_once_refreshes_once_and_retries(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    """The acceptance test: one 401, exactly one refresh at the emulator, one retry, success."""
    client, tokens = signed_in
    stand_in.queue(CLUSTERS, json_reply(401, {"error_code": "401", "message": "token revoked"}))
    before = refreshes(emulator)
    with httpx.Client(auth=EntraAuth(client)) as http:
        response = http.get(stand_in.url + CLUSTERS)
    assert response.status_code == 200
    assert refreshes(emulator) == before + 1
    assert len(stand_in.requests) == 2
    first, retry = stand_in.requests
    assert bearer(first) == f"Bearer {tokens.access_token}"
    assert bearer(retry) == f"Bearer {client.get_token().access_token}" != bearer(first)
    assert [r.status_code for r in response.history] == [401]


def test_second_401_is_returned_as_it_is(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    client, _ = signed_in
    stand_in.queue(CLUSTERS, json_reply(401, {"message": "no"}), times=2)
    before = refreshes(emulator)
    with httpx.Client(auth=EntraAuth(client)) as http:
        response = http.get(stand_in.url + CLUSTERS)
    assert response.status_code == 401
    assert response.json() == {"message": "no"}
    assert refreshes(emulator) == before + 1
    assert len(stand_in.requests) == 2


def test_the_retry_sends_the_body_again(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn) -> None:
    client, _ = signed_in
    stand_in.queue("/api/2.0/clusters/start", json_reply(401, {}))
    with httpx.Client(auth=EntraAuth(client)) as http:
        response = http.post(stand_in.url + "/api/2.0/clusters/start", json={"cluster_id": "c1"})
    assert response.status_code == 200
    assert [r.body for r in stand_in.requests] == [b'{"cluster_id":"c1"}'] * 2


def test_claims_challenge_is_answered_by_one_refresh_with_the_claims(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    client, _ = signed_in
    stand_in.queue(CLUSTERS, claims_challenge())
    before = refreshes(emulator)
    sent: List[Dict[str, str]] = []

    def spy(request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            sent.append(dict(parse_qsl(request.read().decode())))

    spy_http = httpx.Client(event_hooks={"request": [spy]}, trust_env=False)
    spied = EntraClient(
        client.client_id,
        client.authority.tenant,
        authority_host=client.authority.host,
        cache=client.cache,
        http_client=spy_http,
    )
    with spy_http, spied, httpx.Client(auth=EntraAuth(spied)) as http:
        response = http.get(stand_in.url + CLUSTERS)
    assert response.status_code == 200  # answered: one silent acquisition with the claims, one retry
    assert refreshes(emulator) == before + 1
    assert [json.loads(form["claims"]) for form in sent] == [CLAIMS]
    assert len(stand_in.requests) == 2
    first, retried = (r.headers["authorization"] for r in stand_in.requests)
    assert first != retried


def test_claims_challenge_raises_with_the_claims_when_a_person_must_sign_in(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    client, _ = signed_in
    stand_in.queue(CLUSTERS, claims_challenge())
    refusal = json.dumps(
        {"error": "interaction_required", "error_description": "AADSTS50076: MFA.", "error_codes": [50076]}
    )
    emulator.inject("token", Fault("status", status=400, body=refusal), times=1)
    with httpx.Client(auth=EntraAuth(client)) as http, pytest.raises(InteractionRequired) as caught:
        http.get(stand_in.url + CLUSTERS)
    assert caught.value.error == "insufficient_claims"
    assert caught.value.status == 401
    assert caught.value.claims is not None and json.loads(caught.value.claims) == CLAIMS
    assert len(stand_in.requests) == 1


def test_claims_challenge_that_is_not_base64_json(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn) -> None:
    client, _ = signed_in
    header = 'Bearer error="insufficient_claims", claims="not base64 json!"'
    stand_in.queue(CLUSTERS, json_reply(401, {}, **{"www-authenticate": header}))
    with httpx.Client(auth=EntraAuth(client)) as http, pytest.raises(ResponseFormatError):
        http.get(stand_in.url + CLUSTERS)


def test_existing_authorization_header_is_left_alone(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    client, _ = signed_in
    stand_in.queue(CLUSTERS, json_reply(401, {}))
    before = refreshes(emulator)
    auth = EntraAuth(client, workspace_resource_id=RESOURCE_ID)
    with httpx.Client(auth=auth) as http:
        response = http.get(stand_in.url + CLUSTERS, headers={"Authorization": "Bearer caller-token"})
    assert response.status_code == 401  # not retried: the caller's credentials are the caller's business
    assert len(stand_in.requests) == 1
    assert bearer(stand_in.requests[0]) == "Bearer caller-token"
    assert WORKSPACE_RESOURCE_ID_HEADER.lower() not in stand_in.requests[0].headers
    assert refreshes(emulator) == before


def test_workspace_header_from_resource_id(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn) -> None:
    client, _ = signed_in
    with httpx.Client(auth=EntraAuth(client, workspace_resource_id=RESOURCE_ID)) as http:
        http.get(stand_in.url + CLUSTERS)
    assert stand_in.requests[0].headers[WORKSPACE_RESOURCE_ID_HEADER.lower()] == RESOURCE_ID


def test_workspace_header_from_names(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn) -> None:
    client, _ = signed_in
    auth = EntraAuth(client, subscription_id=SUBSCRIPTION, resource_group="analytics-rg", workspace_name="adb-ws1")
    assert auth.workspace_resource_id == RESOURCE_ID  # the seed's format
    with httpx.Client(auth=auth) as http:
        http.get(stand_in.url + CLUSTERS, headers={"x-other": "1"})
    assert stand_in.requests[0].headers[WORKSPACE_RESOURCE_ID_HEADER.lower()] == RESOURCE_ID


def test_a_workspace_header_the_caller_set_wins(signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn) -> None:
    client, _ = signed_in
    other = RESOURCE_ID.replace("adb-ws1", "adb-ws2")
    with httpx.Client(auth=EntraAuth(client, workspace_resource_id=RESOURCE_ID)) as http:
        http.get(stand_in.url + CLUSTERS, headers={WORKSPACE_RESOURCE_ID_HEADER: other})
    assert stand_in.requests[0].headers[WORKSPACE_RESOURCE_ID_HEADER.lower()] == other


def test_databricks_auth_sends_the_workspace_headers(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn
) -> None:
    from oauth_core import DatabricksAuth
    from oauth_core.integrations.databricks import SP_MANAGEMENT_TOKEN_HEADER

    client, tokens = signed_in
    auth = DatabricksAuth(client, workspace_resource_id=RESOURCE_ID, management_token="arm-token-value")
    with httpx.Client(auth=auth) as http:
        http.get(stand_in.url + CLUSTERS)
    sent = stand_in.requests[0].headers
    assert sent[WORKSPACE_RESOURCE_ID_HEADER.lower()] == RESOURCE_ID
    assert sent[SP_MANAGEMENT_TOKEN_HEADER.lower()] == "arm-token-value"
    assert bearer(stand_in.requests[0]) == f"Bearer {tokens.access_token}"
    assert auth.workspace_resource_id == RESOURCE_ID
    assert "arm-token-value" not in repr(auth) and RESOURCE_ID in repr(auth)


def test_generic_headers_do_not_override_the_callers(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn
) -> None:
    client, _ = signed_in
    auth = EntraAuth(client, headers={"x-route": "default", "x-tenant-hint": "contoso"})
    with httpx.Client(auth=auth) as http:
        http.get(stand_in.url + CLUSTERS, headers={"x-route": "mine"})
    sent = stand_in.requests[0].headers
    assert (sent["x-route"], sent["x-tenant-hint"]) == ("mine", "contoso")
    assert WORKSPACE_RESOURCE_ID_HEADER.lower() not in sent and auth.workspace_resource_id is None


def test_nobody_signed_in_raises_interaction_required(emulator: Emulator, stand_in: StandIn) -> None:
    with make_client(emulator) as client, httpx.Client(auth=EntraAuth(client)) as http:
        with pytest.raises(InteractionRequired):
            http.get(stand_in.url + CLUSTERS)
    assert stand_in.requests == []


def test_async_client_with_a_sync_entra_client(
    signed_in: Tuple[EntraClient, TokenSet], stand_in: StandIn, emulator: Emulator
) -> None:
    client, tokens = signed_in
    stand_in.queue(CLUSTERS, json_reply(401, {}))
    before = refreshes(emulator)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(auth=EntraAuth(client, workspace_resource_id=RESOURCE_ID)) as http:
            return await http.get(stand_in.url + CLUSTERS)

    response = asyncio.run(run())
    assert response.status_code == 200
    assert refreshes(emulator) == before + 1
    first, retry = stand_in.requests
    assert bearer(first) == f"Bearer {tokens.access_token}" != bearer(retry)
    assert retry.headers[WORKSPACE_RESOURCE_ID_HEADER.lower()] == RESOURCE_ID


def _async_client_class() -> Any:
    try:
        from oauth_core.drivers.aio import AsyncEntraClient
    except ImportError:
        pytest.skip("oauth_core.drivers.aio (AsyncEntraClient) is not in this tree yet")
    return AsyncEntraClient


def test_async_client_with_an_async_entra_client(stand_in: StandIn, emulator: Emulator) -> None:
    async_client_class = _async_client_class()
    user = emulator.config.users[0]

    async def run() -> Tuple[httpx.Response, str, int]:
        async with async_client_class(
            emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, timeout=5.0
        ) as client:
            tokens = await client.acquire_by_password(user.username, user.password)
            before = refreshes(emulator)
            stand_in.queue(CLUSTERS, json_reply(401, {}))
            async with httpx.AsyncClient(auth=EntraAuth(client)) as http:
                response = await http.get(stand_in.url + CLUSTERS)
            return response, tokens.access_token, refreshes(emulator) - before

    response, first_token, refreshed = asyncio.run(run())
    assert response.status_code == 200
    assert refreshed == 1
    first, retry = stand_in.requests
    assert bearer(first) == f"Bearer {first_token}" != bearer(retry)


def test_async_entra_client_refuses_a_sync_httpx_client(emulator: Emulator) -> None:
    async_client_class = _async_client_class()
    client = async_client_class(emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url)
    try:
        with httpx.Client(auth=EntraAuth(client)) as http, pytest.raises(ConfigError, match="AsyncClient"):
            http.get("http://127.0.0.1:9/")
    finally:
        asyncio.run(client.aclose())


# -- the flow stepped by hand ---------------------------------------------------------------------------


class ScriptedClient(EntraClient):
    """An EntraClient whose get_token hands out the tokens given, recording each min_validity asked for."""

    def __init__(self, *tokens: str) -> None:
        super().__init__("a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21", authority_host="http://127.0.0.1:9")
        self.tokens = list(tokens)
        self.asked: List[float] = []

    def get_token(self, *, scopes: Any = None, min_validity: float = 300.0, account: Optional[str] = None) -> TokenSet:
        self.asked.append(min_validity)
        token = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        return TokenSet(access_token=token, token_type="Bearer", scopes=("s",), expires_at=2e9)


def step(auth: EntraAuth, request: httpx.Request, *responses: httpx.Response) -> List[httpx.Headers]:
    """Drive sync_auth_flow by hand: the headers of each request it yields, answering with ``responses``."""
    flow = auth.sync_auth_flow(request)
    sent = [next(flow).headers.copy()]
    for response in responses:
        try:
            sent.append(flow.send(response).headers.copy())
        except StopIteration:
            break
    return sent


def test_by_hand_a_plain_401_forces_a_refresh() -> None:
    with ScriptedClient("one", "one", "two") as client:
        auth = EntraAuth(client, min_validity=120)
        request = httpx.Request("GET", "https://adb-1.2.azuredatabricks.net" + CLUSTERS)
        sent = step(auth, request, httpx.Response(401), httpx.Response(200))
    assert [h["authorization"] for h in sent] == ["Bearer one", "Bearer two"]
    assert client.asked == [120, 120, float("inf")]  # the second ask found the same token: forced


def test_by_hand_a_token_refreshed_meanwhile_is_used_without_forcing() -> None:
    with ScriptedClient("one", "newer") as client:
        sent = step(EntraAuth(client), httpx.Request("GET", "https://h.example/api/x"), httpx.Response(401))
    assert [h["authorization"] for h in sent] == ["Bearer one", "Bearer newer"]
    assert client.asked == [300.0, 300.0]


def test_by_hand_success_ends_the_flow() -> None:
    with ScriptedClient("one") as client:
        flow = EntraAuth(client).sync_auth_flow(httpx.Request("GET", "https://h.example/api/x"))
        next(flow)
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(403))  # only 401 is retried


def test_repr_shows_no_token() -> None:
    with ScriptedClient("secret-token-value") as client:
        auth = EntraAuth(client, workspace_resource_id=RESOURCE_ID)
        step(auth, httpx.Request("GET", "https://h.example/api/x"), httpx.Response(200))
        assert "secret-token-value" not in repr(auth)
        assert "secret-token-value" not in str(vars(auth))
        assert RESOURCE_ID in repr(auth)


def test_by_hand_an_invalid_token_challenge_is_a_plain_401() -> None:
    with ScriptedClient("one", "two") as client:
        challenge = httpx.Response(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        sent = step(EntraAuth(client), httpx.Request("GET", "https://h.example/api/x"), challenge)
    assert [h["authorization"] for h in sent] == ["Bearer one", "Bearer two"]


def test_by_hand_deeply_nested_claims_are_a_format_error() -> None:
    nested = base64.b64encode(b'{"a":' * 5000 + b"1" + b"}" * 5000).decode()
    header = f'Bearer error="insufficient_claims", claims="{nested}"'
    with ScriptedClient("one") as client, pytest.raises(ResponseFormatError):
        step(
            EntraAuth(client),
            httpx.Request("GET", "https://h.example/api/x"),
            httpx.Response(401, headers={"www-authenticate": header}),
        )


def test_by_hand_insufficient_claims_without_claims() -> None:
    with ScriptedClient("one") as client:
        challenge = httpx.Response(401, headers={"www-authenticate": 'Bearer error="insufficient_claims"'})
        with pytest.raises(InteractionRequired) as caught:
            step(EntraAuth(client), httpx.Request("GET", "https://h.example/api/x"), challenge)
    assert caught.value.claims is None and caught.value.error == "insufficient_claims"


# -- service principals (account="app") ----------------------------------------------------------------------


def confidential(emulator: Emulator) -> EntraClient:
    app = emulator.config.clients[1]
    return EntraClient(
        app.client_id, emulator.tenant_id, authority_host=emulator.url, client_secret=app.secret, timeout=5.0
    )


def test_app_account_uses_client_credentials(emulator: Emulator, stand_in: StandIn) -> None:
    stand_in.queue(CLUSTERS, json_reply(401, {}))
    before = emulator.count("token", grant_type="client_credentials")
    with confidential(emulator) as client, httpx.Client(auth=EntraAuth(client, account=APP_ACCOUNT)) as http:
        assert http.get(stand_in.url + CLUSTERS).status_code == 200
        assert http.get(stand_in.url + CLUSTERS).status_code == 200  # from the cache
    # one to start with, one after the 401 (an app-only token has no refresh token to redeem)
    assert emulator.count("token", grant_type="client_credentials") == before + 2
    first, retry, cached = (bearer(r) for r in stand_in.requests)
    assert first != retry == cached


def test_app_account_with_the_async_client(emulator: Emulator, stand_in: StandIn) -> None:
    async_client_class = _async_client_class()
    app = emulator.config.clients[1]
    stand_in.queue(CLUSTERS, json_reply(401, {}))
    before = emulator.count("token", grant_type="client_credentials")

    async def run() -> int:
        async with async_client_class(
            app.client_id, emulator.tenant_id, authority_host=emulator.url, client_secret=app.secret, timeout=5.0
        ) as client:
            async with httpx.AsyncClient(auth=EntraAuth(client, account=APP_ACCOUNT)) as http:
                return (await http.get(stand_in.url + CLUSTERS)).status_code

    assert asyncio.run(run()) == 200
    assert emulator.count("token", grant_type="client_credentials") == before + 2


def test_app_account_needs_a_credential(emulator: Emulator, stand_in: StandIn) -> None:
    with make_client(emulator) as client, httpx.Client(auth=EntraAuth(client, account=APP_ACCOUNT)) as http:
        with pytest.raises(ConfigError, match="client_secret"):
            http.get(stand_in.url + CLUSTERS)
    assert stand_in.requests == []


# -- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource_id",
    [
        "",
        "adb-ws1",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg/providers/microsoft.storage/storageAccounts/x",
        "/subscriptions/not-a-guid/resourcegroups/rg/providers/microsoft.databricks/workspaces/ws",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg/providers/microsoft.databricks/workspaces/",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg/providers/microsoft.databricks/workspaces/ws/extra",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg./providers/microsoft.databricks/workspaces/ws",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg/providers/microsoft.databricks/workspaces/ws\r\nX-Evil: 1",
        f"https://management.azure.com/subscriptions/{SUBSCRIPTION}/resourcegroups/rg"
        "/providers/microsoft.databricks/workspaces/ws",
    ],
)
def test_bad_resource_id_is_a_config_error(resource_id: str) -> None:
    with ScriptedClient("t") as client, pytest.raises(ConfigError, match="resource id"):
        EntraAuth(client, workspace_resource_id=resource_id)


def test_resource_id_accepts_the_portal_spelling() -> None:
    portal = RESOURCE_ID.replace("resourcegroups", "resourceGroups").replace(
        "microsoft.databricks", "Microsoft.Databricks"
    )
    assert check_workspace_resource_id(f"  {portal}/ ") == portal


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workspace_resource_id": RESOURCE_ID, "workspace_name": "ws"},
        {"subscription_id": SUBSCRIPTION, "resource_group": "rg"},
        {"workspace_name": "ws"},
        {"subscription_id": "nope", "resource_group": "rg", "workspace_name": "ws"},
        {"subscription_id": SUBSCRIPTION, "resource_group": "rg/x", "workspace_name": "ws"},
        {"min_validity": -1},
        {"min_validity": float("inf")},
        {"scopes": "bad\u00e9scope"},
    ],
)
def test_bad_configuration_is_a_config_error(kwargs: Dict[str, Any]) -> None:
    with ScriptedClient("t") as client, pytest.raises(ConfigError):
        EntraAuth(client, **kwargs)


def test_build_workspace_resource_id() -> None:
    assert build_workspace_resource_id(SUBSCRIPTION, "analytics-rg", "adb-ws1") == RESOURCE_ID


def test_only_entra_clients_are_accepted() -> None:
    with pytest.raises(ConfigError, match="EntraClient"):
        EntraAuth(object())  # type: ignore[arg-type]


# -- WWW-Authenticate parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (['Basic realm="x"'], None),
        (["Bearer"], {}),
        (['Bearer realm="", error="invalid_token"'], {"realm": "", "error": "invalid_token"}),
        (
            ['Basic realm="a", Bearer error=insufficient_claims, claims="e30="'],
            {"error": "insufficient_claims", "claims": "e30="},
        ),
        (['Basic realm="a"', 'bearer Error="x\\"y"'], {"error": 'x"y'}),
        (['Bearer error="a", error="b"'], {"error": "a"}),
        (['PoP nonce="n", Bearer realm="r"'], {"realm": "r"}),
        (["Bearer  ,  "], {}),
        (['="x" Bearer'], None),
    ],
)
def test_bearer_challenge(values: List[str], expected: Optional[Dict[str, str]]) -> None:
    assert bearer_challenge(values) == expected
