"""AsyncEntraClient: the sync client's key behaviours over respx (with an async fake sleep), then the
emulator on loopback: grants, interactive sign-in, and 200 concurrent get_token calls sharing one refresh.
Last, proof that aio.py only drives the shared flows.
"""

from __future__ import annotations

import ast
import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from fixturelib import CLIENT_ID, NONCE, TENANT_ID, load_claims, load_response, mint_jwt, token_response_body

from oauth_core.core.authority import Authority
from oauth_core.core.authorize import PendingAuthorization, build_authorization_request
from oauth_core.core.errors import (
    ConfigError,
    InteractionRequired,
    InvalidGrant,
    NonceMismatch,
    OAuthError,
    ResponseFormatError,
    TransientError,
)
from oauth_core.core.flows import ClientBase
from oauth_core.core.protocol import (
    HttpRequest,
    TokenSet,
    authorization_code_grant,
    build_token_request,
    normalize_scopes,
    password_grant,
    refresh_token_grant,
)
from oauth_core.drivers import aio, sync as client
from oauth_core.drivers.aio import AsyncEntraClient
from oauth_core.drivers.retry import RetryPolicy
from oauth_core.drivers.stores import FileTokenCache, MemoryTokenCache
from oauth_core.drivers.sync import MAX_RESPONSE_BYTES, EntraClient

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

HOST = "https://login.microsoftonline.com"
TOKEN_URL = f"{HOST}/{TENANT_ID}/oauth2/v2.0/token"
USERNAME = "someone@contoso.onmicrosoft.com"
PASSWORD = "correct horse battery staple"
REFRESH_TOKEN = "0.AXkA-fixture-refresh-token-value"
CODE = "0.AXkA-fixture-authorization-code"


# -- helpers ------------------------------------------------------------------------------------


class AsyncFakeClock:
    """An async sleep that returns at once, recording the waits; a fake monotonic clock for deadlines."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: List[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake() -> AsyncFakeClock:
    return AsyncFakeClock()


@pytest.fixture
def policy(fake: AsyncFakeClock) -> RetryPolicy:
    def never(seconds: float) -> None:
        raise AssertionError("the async client must not use the blocking sleep")

    return RetryPolicy(jitter=False, sleep=never, async_sleep=fake.sleep, clock=fake.monotonic)


def recorded(name: str, *, status: Optional[int] = None) -> httpx.Response:
    record = load_response(name)
    headers = [(str(k), str(v)) for k, v in record["headers"]]
    return httpx.Response(record["status"] if status is None else status, headers=headers, content=record["body"])


def body_of(name: str) -> Dict[str, Any]:
    return dict(json.loads(load_response(name)["body"]))


Step = Any  # a fixture name, an httpx.Response factory, or an exception class or instance


def serve(route: respx.Route, *steps: Step) -> respx.Route:
    """Answer each call with the next step; the last step repeats."""
    queue = list(steps)

    def answer(request: httpx.Request) -> httpx.Response:
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(step, str):
            return recorded(step)
        if isinstance(step, type) and issubclass(step, httpx.HTTPError):
            raise step("mocked failure", request=request)
        if isinstance(step, BaseException):
            raise step
        response: httpx.Response = step()
        return response

    route.mock(side_effect=answer)
    return route


def form_of(request: httpx.Request) -> List[Tuple[str, str]]:
    return parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def user_scopes() -> Tuple[str, ...]:
    return normalize_scopes(normalize_scopes(None), offline_access=True)


def expected(grant: Tuple[Tuple[str, str], ...]) -> HttpRequest:
    return build_token_request(Authority.of(None, TENANT_ID), CLIENT_ID, grant, scopes=user_scopes())


def pending_request(entra: ClientBase, nonce: str = NONCE) -> PendingAuthorization:
    return build_authorization_request(entra.authority, CLIENT_ID, "http://localhost", user_scopes(), nonce=nonce)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def token_route(router: respx.MockRouter) -> respx.Route:
    return router.post(TOKEN_URL)


def run(coroutine_factory: Callable[[AsyncEntraClient], Any], policy: RetryPolicy, **kwargs: Any) -> Any:
    """Run ``coroutine_factory(client)`` on a fresh AsyncEntraClient in a fresh event loop."""

    async def main() -> Any:
        async with AsyncEntraClient(CLIENT_ID, TENANT_ID, retry=policy, **kwargs) as entra:
            return await coroutine_factory(entra)

    return asyncio.run(main())


# -- the grants over respx -------------------------------------------------------------------------


def test_acquire_by_password(policy: RetryPolicy, router: respx.MockRouter, token_route: respx.Route) -> None:
    serve(token_route, "success-password")
    tokens = run(lambda c: c.acquire_by_password(USERNAME, PASSWORD), policy)
    assert tokens.access_token == body_of("success-password")["access_token"]
    assert len(router.calls) == 1
    request = token_route.calls.last.request
    want = expected(password_grant(USERNAME, PASSWORD))
    assert form_of(request) == list(want.form) and request.content == want.body
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["user-agent"].startswith("oauth-core/")
    assert "authorization" not in request.headers and "cookie" not in request.headers
    assert str(uuid.UUID(request.headers["client-request-id"])) == request.headers["client-request-id"]


def test_refresh_is_cached_then_served_silently(policy: RetryPolicy, token_route: respx.Route) -> None:
    serve(token_route, "success-refresh")

    async def flow(entra: AsyncEntraClient) -> Tuple[TokenSet, TokenSet]:
        tokens = await entra.refresh(REFRESH_TOKEN)
        return tokens, await entra.get_token()

    tokens, silent = run(flow, policy)
    assert tokens.refresh_token == body_of("success-refresh")["refresh_token"]
    assert silent.access_token == tokens.access_token
    assert token_route.call_count == 1
    assert form_of(token_route.calls.last.request) == list(expected(refresh_token_grant(REFRESH_TOKEN)).form)


@pytest.mark.parametrize("how", ["redirect_url", "code"])
def test_exchange_code(policy: RetryPolicy, token_route: respx.Route, how: str) -> None:
    serve(token_route, "success-authorization-code")

    async def flow(entra: AsyncEntraClient) -> Tuple[TokenSet, PendingAuthorization]:
        pending = pending_request(entra)
        if how == "redirect_url":
            url = f"http://localhost/?code={CODE}&state={pending.state}&session_state=x#"
            return await entra.exchange_code(pending, url), pending
        return await entra.exchange_code(pending, code=CODE), pending

    tokens, pending = run(flow, policy)
    assert (tokens.id_token_claims or {})["nonce"] == NONCE
    want = build_token_request(
        pending.authority,
        CLIENT_ID,
        authorization_code_grant(CODE, "http://localhost", pending.code_verifier),
        scopes=pending.scopes,
    )
    assert form_of(token_route.calls.last.request) == list(want.form)


def test_exchange_code_checks_the_nonce(policy: RetryPolicy, token_route: respx.Route) -> None:
    claims = dict(load_claims("id-token-v2")["claims"], nonce="someone-elses-nonce")
    body = token_response_body(id_token=mint_jwt(claims, header={"x5t": None}))
    serve(token_route, lambda: httpx.Response(200, headers={"content-type": "application/json"}, content=body))
    with pytest.raises(NonceMismatch):
        run(lambda c: c.exchange_code(pending_request(c), code=CODE), policy)


def test_get_token_with_an_empty_cache_needs_a_person(policy: RetryPolicy, router: respx.MockRouter) -> None:
    with pytest.raises(InteractionRequired):
        run(lambda c: c.get_token(), policy)
    assert len(router.calls) == 0


# -- retries, with the async fake sleep --------------------------------------------------------------


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadTimeout])
def test_network_failure_then_success(
    policy: RetryPolicy, fake: AsyncFakeClock, token_route: respx.Route, failure: Any
) -> None:
    serve(token_route, failure, "success-refresh")
    run(lambda c: c.refresh(REFRESH_TOKEN), policy)
    assert token_route.call_count == 2
    assert fake.waits == [0.5]


def test_429_retry_after_then_503(policy: RetryPolicy, fake: AsyncFakeClock, token_route: respx.Route) -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "2"}, content=b"Too Many Requests")
    serve(token_route, lambda: throttled, lambda: httpx.Response(503), "success-refresh")
    run(lambda c: c.refresh(REFRESH_TOKEN), policy)
    assert token_route.call_count == 3
    assert fake.waits == [2.0, 1.0]


def test_retries_are_bounded(policy: RetryPolicy, fake: AsyncFakeClock, token_route: respx.Route) -> None:
    serve(token_route, httpx.ConnectError)
    with pytest.raises(TransientError) as caught:
        run(lambda c: c.refresh(REFRESH_TOKEN), policy)
    assert (caught.value.attempts, caught.value.waits) == (4, (0.5, 1.0, 2.0))
    assert fake.waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("fixture", ["error-50126", "error-7000218", "error-70008"])
def test_oauth_errors_are_never_retried(
    policy: RetryPolicy, fake: AsyncFakeClock, token_route: respx.Route, fixture: str
) -> None:
    serve(token_route, fixture)
    with pytest.raises(OAuthError) as caught:
        run(lambda c: c.acquire_by_password(USERNAME, PASSWORD), policy)
    assert token_route.call_count == 1 and fake.waits == []
    assert list(caught.value.error_codes) == body_of(fixture)["error_codes"]


def test_lost_code_redemption_response(policy: RetryPolicy, token_route: respx.Route) -> None:
    serve(token_route, httpx.ReadTimeout, "error-54005")
    with pytest.raises(TransientError) as caught:
        run(lambda c: c.exchange_code(pending_request(c), code=CODE), policy)
    assert not isinstance(caught.value, OAuthError)
    assert "lost" in str(caught.value) and caught.value.attempts == 1
    assert token_route.call_count == 1  # a code is single-use: a lost answer is never followed by a resend


def test_lost_refresh_response_is_a_plain_invalid_grant(policy: RetryPolicy, token_route: respx.Route) -> None:
    serve(token_route, httpx.ReadTimeout, "error-54005")
    with pytest.raises(InvalidGrant):
        run(lambda c: c.refresh(REFRESH_TOKEN), policy)


# -- response hygiene --------------------------------------------------------------------------------


def test_redirects_are_not_followed(policy: RetryPolicy, router: respx.MockRouter, token_route: respx.Route) -> None:
    elsewhere = router.post("https://elsewhere.example/token").mock(return_value=httpx.Response(200))
    serve(token_route, lambda: httpx.Response(307, headers={"Location": "https://elsewhere.example/token"}))

    async def flow() -> None:
        async with httpx.AsyncClient(follow_redirects=True) as http:  # even when the caller's client would
            async with AsyncEntraClient(CLIENT_ID, TENANT_ID, retry=policy, http_client=http) as entra:
                await entra.acquire_by_password(USERNAME, PASSWORD)

    with pytest.raises(ResponseFormatError) as caught:
        asyncio.run(flow())
    assert caught.value.status == 307
    assert not elsewhere.called and len(router.calls) == 1


def test_oversized_body_is_refused(policy: RetryPolicy, token_route: respx.Route) -> None:
    big = b"x" * (MAX_RESPONSE_BYTES + 1)
    serve(token_route, lambda: httpx.Response(200, content=big))
    with pytest.raises(ResponseFormatError, match="larger than"):
        run(lambda c: c.refresh(REFRESH_TOKEN), policy)


def test_no_netrc_credentials(
    policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token_route: respx.Route
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine login.microsoftonline.com login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    serve(token_route, "success-password")
    run(lambda c: c.acquire_by_password(USERNAME, PASSWORD), policy)
    assert "authorization" not in token_route.calls.last.request.headers


def test_http_client_ownership(policy: RetryPolicy, token_route: respx.Route) -> None:
    serve(token_route, "success-refresh")

    async def flow() -> Tuple[bool, bool]:
        async with httpx.AsyncClient() as theirs:
            async with AsyncEntraClient(CLIENT_ID, TENANT_ID, retry=policy, http_client=theirs) as entra:
                await entra.refresh(REFRESH_TOKEN)
            theirs_open = not theirs.is_closed
        own = AsyncEntraClient(CLIENT_ID, TENANT_ID, retry=policy)
        await own.refresh(REFRESH_TOKEN)
        await own.aclose()
        return theirs_open, own._http.is_closed

    assert asyncio.run(flow()) == (True, True)


def test_constructor_checks_like_the_sync_one() -> None:
    with pytest.raises(ConfigError):
        AsyncEntraClient(" ")
    assert "s3cret" not in repr(AsyncEntraClient(CLIENT_ID, TENANT_ID, client_secret="s3cret"))


# -- the emulator, on loopback ------------------------------------------------------------------------

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core.cli.demo import scripted_sign_in  # noqa: E402
from oauth_core.emulator import Emulator, EmulatorConfig, Fault  # noqa: E402


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default()) as running:
        yield running


def alice(emu: Emulator) -> Tuple[str, str]:
    user = emu.config.users[0]
    return user.username, user.password


class ShiftedClock:
    """Real epoch seconds plus an offset a test can move (to age cached tokens)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_emulator_grants(emu: Emulator) -> None:
    username, password = alice(emu)

    async def flow() -> Tuple[TokenSet, TokenSet, TokenSet]:
        async with AsyncEntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as entra:
            first = await entra.acquire_by_password(username, password)
            assert first.refresh_token
            second = await entra.refresh(first.refresh_token)
            return first, second, await entra.get_token()

    first, second, silent = asyncio.run(flow())
    assert second.refresh_token != first.refresh_token
    assert silent.access_token == second.access_token


def test_200_concurrent_get_token_share_one_refresh(emu: Emulator) -> None:
    username, password = alice(emu)
    clock = ShiftedClock()

    async def flow() -> Tuple[TokenSet, List[TokenSet], int]:
        async with AsyncEntraClient(
            emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url, clock=clock
        ) as entra:
            first = await entra.acquire_by_password(username, password)
            clock.offset = first.expires_at - time.time() - 20  # 20 s left: below the 40 s hard margin
            before = emu.count("token", grant_type="refresh_token")
            results = await asyncio.gather(*(entra.get_token() for _ in range(200)))
            return first, list(results), emu.count("token", grant_type="refresh_token") - before

    first, results, refreshes = asyncio.run(flow())
    assert refreshes == 1
    assert len(results) == 200
    assert {r.access_token for r in results} == {results[0].access_token}
    assert results[0].access_token != first.access_token


def test_a_grant_finishing_during_a_silent_refresh_waits_for_it(emu: Emulator, tmp_path: Path) -> None:
    # The silent refresh keeps the file cache's transaction (and its flock) open across its request.
    # A grant finishing meanwhile on the same event-loop thread must wait for it: taking the flock
    # from that thread would block the loop for good (and a memory cache would lose an update).
    username, password = alice(emu)
    clock = ShiftedClock()
    outcome: Dict[str, Any] = {}

    async def flow() -> None:
        cache = FileTokenCache(tmp_path / "tokens.json")
        async with AsyncEntraClient(
            emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url, clock=clock, cache=cache
        ) as entra:
            first = await entra.acquire_by_password(username, password)
            clock.offset = first.expires_at - time.time() - 20
            emu.inject("token", Fault("delay", seconds=1.0))  # the refresh below answers after 1 s
            refreshing = asyncio.create_task(entra.get_token())
            await asyncio.sleep(0.3)  # the refresh is in flight, holding the cache transaction
            fresh = await entra.acquire_by_password(username, password)
            refreshed = await refreshing
            outcome["tokens"] = (fresh.access_token, refreshed.access_token)
            outcome["cached"] = (await entra.get_token()).access_token

    thread = threading.Thread(target=lambda: asyncio.run(flow()), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the event loop deadlocked on the cache lock"
    fresh, refreshed = outcome["tokens"]
    assert outcome["cached"] == fresh != refreshed  # the grant stored after the refresh, not under it


def test_acquire_interactive(emu: Emulator) -> None:
    username, password = alice(emu)

    def browser(url: str) -> None:
        def sign_in() -> None:
            location = scripted_sign_in(url, username, password)
            httpx.get(location, timeout=10)

        threading.Thread(target=sign_in, daemon=True).start()

    async def flow() -> TokenSet:
        async with AsyncEntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as entra:
            return await entra.acquire_interactive(open_browser=False, on_url=browser, timeout=30)

    tokens = asyncio.run(flow())
    assert (tokens.id_token_claims or {})["preferred_username"] == username


def test_acquire_interactive_cancellation_frees_the_listener(emu: Emulator) -> None:
    async def flow() -> float:
        shown = asyncio.Event()
        async with AsyncEntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as entra:
            task = asyncio.create_task(
                entra.acquire_interactive(open_browser=False, on_url=lambda url: shown.set(), timeout=300)
            )
            await asyncio.wait_for(shown.wait(), 5)
            await asyncio.sleep(0.1)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - started

    assert asyncio.run(flow()) < 1.0
    deadline = time.monotonic() + 5
    while any(t.name == "oauth-core-loopback" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "oauth-core-loopback" for t in threading.enumerate())


# -- aio.py drives the shared flows and has no protocol logic of its own -------------------------------

PROTOCOL_NAMES = {
    "build_token_request",
    "parse_token_response",
    "token_flow",
    "parse_json_object",
    "encode_form",
    "oauth_error_from_body",
    "password_grant",
    "refresh_token_grant",
    "authorization_code_grant",
    "client_credentials_grant",
    "device_code_grant",
    "build_device_code_request",
    "parse_device_code_response",
    "device_code_flow",
    "poll_device_code",
    "exchange_code_flow",
    "parse_redirect",
    "store",
    "transaction",
    "json",
    "urlencode",
    "is_transient",
}


def _tree(module: Any) -> ast.Module:
    return ast.parse(Path(module.__file__).read_text(encoding="utf-8"))


def _names(tree: ast.Module) -> Set[str]:
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(alias.asname or alias.name for alias in node.names)
    return found


def _driven_flows(tree: ast.Module) -> Set[str]:
    """The ``self._x_flow`` methods passed to ``self._drive(...)``."""
    flows = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_drive":
            inner = node.args[0]
            assert isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
            flows.add(inner.func.attr)
    return flows


def _methods(tree: ast.Module, class_name: str) -> Set[str]:
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_aio_builds_and_parses_nothing_itself() -> None:
    tree = _tree(aio)
    assert not PROTOCOL_NAMES & _names(tree)
    constructed = {
        node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not {"HttpRequest", "HttpResponse", "TokenSet", "DeviceCode"} & constructed


def test_aio_drives_the_same_flows_as_the_sync_client() -> None:
    async_flows, sync_flows = _driven_flows(_tree(aio)), _driven_flows(_tree(client))
    assert (
        async_flows
        == sync_flows
        == {
            "_exchange_flow",
            "_password_flow",
            "_refresh_flow",
            "_device_code_flow",
            "_client_credentials_flow",
            "_on_behalf_of_flow",
            "_silent_flow",
        }
    )
    assert all(name in vars(ClientBase) for name in async_flows)
    # Neither driver overrides a flow or writes its own constructor: ClientDriver's is theirs.
    for tree, name in ((_tree(aio), "AsyncEntraClient"), (_tree(client), "EntraClient")):
        assert not _methods(tree, name) & (set(vars(ClientBase)) | {"__init__"})


def test_public_methods_mirror_the_sync_client() -> None:
    sync_public = {n for n in vars(EntraClient) if not n.startswith("_")} - {"close"}
    async_public = {n for n in vars(AsyncEntraClient) if not n.startswith("_")} - {"aclose"}
    assert sync_public == async_public
    for name in async_public:
        assert asyncio.iscoroutinefunction(getattr(AsyncEntraClient, name)), name


def test_the_send_helpers_are_shared() -> None:
    assert aio.network_failure is client.network_failure
    assert aio.transient_error is client.transient_error
    assert aio.to_http_response is client.to_http_response
    assert aio.MAX_RESPONSE_BYTES == client.MAX_RESPONSE_BYTES


def test_memory_cache_is_the_default() -> None:
    assert isinstance(AsyncEntraClient(CLIENT_ID, TENANT_ID).cache, MemoryTokenCache)
