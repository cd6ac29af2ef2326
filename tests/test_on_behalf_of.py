"""The on-behalf-of grant (``acquire_on_behalf_of``), sync and async, against the emulator's middle tier."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from oauth_core.core.errors import ConfigError, InvalidGrant, OAuthError
from oauth_core.drivers.aio import AsyncEntraClient
from oauth_core.drivers.retry import RetryPolicy
from oauth_core.drivers.stores import FileTokenCache
from oauth_core.drivers.sync import EntraClient
from oauth_core.emulator import Emulator, EmulatorConfig

GRAPH = "https://graph.microsoft.com"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
MIDDLE_TIER = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"
MIDDLE_TIER_SECRET = "emulator-middle-tier-secret"
API_SCOPE = "api://oauth-core-demo-api/access_as_user"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


@pytest.fixture
def no_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=1, jitter=False, sleep=lambda s: None)


class Recorder:
    def __init__(self) -> None:
        self.forms: List[Dict[str, str]] = []
        self.client = httpx.Client(trust_env=False, timeout=10, event_hooks={"request": [self.hook]})

    def hook(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.forms.append(dict(parse_qsl(request.read().decode())))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    try:
        yield rec
    finally:
        rec.client.close()


def claims_of(token: str) -> Dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def user_assertion(emu: Emulator, scope: str = API_SCOPE) -> str:
    """An access token Alice got for the middle tier (its audience), as a caller would present it."""
    with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url) as public:
        token = public.acquire_by_password(*ALICE, scopes=scope).access_token
    return token


def middle_tier(emu: Emulator, **kwargs: Any) -> EntraClient:
    return EntraClient(MIDDLE_TIER, emu.tenant_id, authority_host=emu.url, client_secret=MIDDLE_TIER_SECRET, **kwargs)


def test_obo_request_and_token(emu: Emulator, recorder: Recorder) -> None:
    incoming = user_assertion(emu)
    assert claims_of(incoming)["aud"] == MIDDLE_TIER
    with middle_tier(emu, http_client=recorder.client) as api:
        tokens = api.acquire_on_behalf_of(incoming, scopes=f"{GRAPH}/User.Read")
    (form,) = recorder.forms
    assert form["grant_type"] == JWT_BEARER_GRANT and form["requested_token_use"] == "on_behalf_of"
    assert form["assertion"] == incoming and form["client_id"] == MIDDLE_TIER
    assert f"{GRAPH}/User.Read" in form["scope"].split()
    assert [r.grant_type for r in emu.requests if r.endpoint == "token"][-1] == JWT_BEARER_GRANT
    claims, original = claims_of(tokens.access_token), claims_of(incoming)
    assert claims["aud"] == GRAPH and claims["appid"] == MIDDLE_TIER
    assert claims["oid"] == original["oid"] and claims["upn"] == ALICE[0] and claims["tid"] == original["tid"]


def test_obo_cache_hit_and_assertions_kept_apart(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first_assertion, second_assertion = user_assertion(emu), user_assertion(emu)
    assert first_assertion != second_assertion
    with middle_tier(emu, cache=FileTokenCache(path)) as api:
        before = emu.count("token", JWT_BEARER_GRANT)
        first = api.acquire_on_behalf_of(first_assertion, scopes=f"{GRAPH}/User.Read")
        again = api.acquire_on_behalf_of(first_assertion, scopes=f"{GRAPH}/User.Read")
        assert again.access_token == first.access_token
        assert emu.count("token", JWT_BEARER_GRANT) == before + 1  # the second call was a cache hit
        other = api.acquire_on_behalf_of(second_assertion, scopes=f"{GRAPH}/User.Read")
        assert other.access_token != first.access_token
        assert emu.count("token", JWT_BEARER_GRANT) == before + 2
    # a new client on the same file is served from it too
    with middle_tier(emu, cache=FileTokenCache(path)) as fresh:
        assert (
            fresh.acquire_on_behalf_of(first_assertion, scopes=f"{GRAPH}/User.Read").access_token == first.access_token
        )
    assert emu.count("token", JWT_BEARER_GRANT) == before + 2
    text = path.read_text()
    for assertion in (first_assertion, second_assertion):
        assert assertion not in text and assertion.split(".")[1] not in text
        assert hashlib.sha256(assertion.encode()).hexdigest() in text


@pytest.mark.parametrize(("make", "code"), [("garbage", 50013), ("graph", 500131)])
def test_bad_assertion_is_typed(emu: Emulator, no_retry: RetryPolicy, make: str, code: int) -> None:
    assertion = "not-a-jwt" if make == "garbage" else user_assertion(emu, f"{GRAPH}/User.Read")
    with middle_tier(emu, retry=no_retry) as api, pytest.raises(OAuthError) as raised:
        api.acquire_on_behalf_of(assertion)
    assert isinstance(raised.value, InvalidGrant) and code in raised.value.error_codes
    if make == "graph":
        assert assertion not in str(raised.value)


def test_obo_refused_before_sending(emu: Emulator) -> None:
    before = emu.count("token")
    with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url) as public:
        with pytest.raises(ConfigError, match="confidential"):
            public.acquire_on_behalf_of("x.y.z")
    with middle_tier(emu) as api:
        for empty in ("", "   "):
            with pytest.raises(ConfigError, match="user_assertion is empty"):
                api.acquire_on_behalf_of(empty)
    assert emu.count("token") == before


def test_async_obo(emu: Emulator) -> None:
    incoming = user_assertion(emu)

    async def main() -> Any:
        async with AsyncEntraClient(
            MIDDLE_TIER, emu.tenant_id, authority_host=emu.url, client_secret=MIDDLE_TIER_SECRET
        ) as api:
            first = await api.acquire_on_behalf_of(incoming, scopes=f"{GRAPH}/User.Read")
            middle = emu.count("token", JWT_BEARER_GRANT)
            second = await api.acquire_on_behalf_of(incoming, scopes=f"{GRAPH}/User.Read")
            return first, second, middle

    before = emu.count("token", JWT_BEARER_GRANT)
    first, second, middle = asyncio.run(main())
    assert middle == before + 1 and emu.count("token", JWT_BEARER_GRANT) == middle
    assert second.access_token == first.access_token
    claims = claims_of(first.access_token)
    assert claims["oid"] == claims_of(incoming)["oid"] and claims["aud"] == GRAPH and claims["appid"] == MIDDLE_TIER


def test_async_bad_assertion(emu: Emulator, no_retry: RetryPolicy) -> None:
    async def main() -> None:
        async with AsyncEntraClient(
            MIDDLE_TIER, emu.tenant_id, authority_host=emu.url, client_secret=MIDDLE_TIER_SECRET, retry=no_retry
        ) as api:
            await api.acquire_on_behalf_of("not-a-jwt")

    with pytest.raises(InvalidGrant) as raised:
        asyncio.run(main())
    assert 50013 in raised.value.error_codes
